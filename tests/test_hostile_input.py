"""Hostile documents and values: deep nesting, cycles, sub-nanosecond
durations and cross-parameter errors. Each is one typed error (one line and
exit 2 at the CLI) that names what the user gave."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_cli import cli

from msixcore import InvalidArgument, get_scenario, validate_engine_config
from msixcore.nesting import MAX_DEPTH, check_depth
from msixcore.scenario_file import apply_config_override, parse_spec
from msixcore.sweep_spec import parse_sweep_spec


def _nested(depth: int) -> Any:
    doc: Any = 1
    for _ in range(depth):
        doc = [doc]
    return doc


def _one_line_status_2(out: subprocess.CompletedProcess[str], match: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert match in out.stderr, out.stderr


def test_check_depth_accepts_the_limit_and_refuses_past_it() -> None:
    check_depth(_nested(MAX_DEPTH), "x")
    with pytest.raises(InvalidArgument, match=f"^x: nested deeper than {MAX_DEPTH} levels"):
        check_depth(_nested(MAX_DEPTH + 1), "x")
    wide: dict[str, Any] = {"a": [{"b": [1, 2, {"c": None}]}] * 1000}
    check_depth(wide, "wide")


def test_cycles_end() -> None:
    loop: list[Any] = []
    loop.append(loop)
    loop.append(loop)
    check_depth(loop, "loop")  # walked once: a cycle adds no depth
    with pytest.raises(InvalidArgument, match="config: "):
        validate_engine_config({"devices": loop})


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000, 200_000])
def test_deep_documents_are_one_error_through_every_api(depth: int) -> None:
    doc = _nested(depth)
    with pytest.raises(InvalidArgument, match="nested deeper"):
        validate_engine_config({"devices": doc})
    with pytest.raises(InvalidArgument, match="nested deeper"):
        parse_spec({"base": "storm", "params": {"table": doc}}, "f.toml")
    with pytest.raises(InvalidArgument, match="nested deeper"):
        parse_sweep_spec({"base": "storm", "grid": {"table": doc}})
    storm, _ = get_scenario("storm")
    with pytest.raises(InvalidArgument, match="nested deeper"):
        storm.resolve({"table": doc})


def test_deep_set_values_are_one_error() -> None:
    cfg: dict[str, Any] = {"devices": [{}]}
    with pytest.raises(InvalidArgument, match=r"^devices\.0\.rate: nested deeper"):
        apply_config_override(cfg, "devices[0].rate", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(InvalidArgument, match=r"^devices\.0\.rate: nested deeper"):
        apply_config_override(cfg, "devices[0].rate", "[" * 40 + "]" * 40)


def test_the_cli_refuses_deep_files_and_set_values_in_one_line(tmp_path: Path) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    (tmp_path / "deep.json").write_text('{"base": "storm", "params": {"table": ' + deep + "}}")
    (tmp_path / "deep.toml").write_text('base = "storm"\n[params]\ntable = ' + deep + "\n")
    (tmp_path / "mid.json").write_text(
        json.dumps({"base": "storm", "params": {"table": _nested(100)}})
    )
    for name in ("deep.json", "deep.toml", "mid.json"):
        _one_line_status_2(cli("run", "--file", name, cwd=tmp_path), "nested deeper")
    cfg = {"devices": [{"entries": 2}], "stop": {"max_time_ns": 1_000_000}}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    out = cli("run", "--file", "c.json", "--set", f"devices[0].rate={deep}", cwd=tmp_path)
    _one_line_status_2(out, "nested deeper")


def test_sub_nanosecond_durations_run_and_report_whole_nanoseconds() -> None:
    storm, _ = get_scenario("storm")
    with pytest.raises(InvalidArgument, match=r"^w0: '0\.4ns' is below the engine's resolution"):
        storm.resolve({"w0": "0.4ns"})
    with pytest.raises(InvalidArgument, match="below the engine's resolution"):
        storm.resolve({"w_free": 1e-10})
    p = storm.resolve({"w0": "1.4ns", "w_free": 2.6e-9, "w_alloc": 0})
    assert (p["w0"], p["w_free"], p["w_alloc"]) == (1e-9, 3e-9, 0.0)
    # The config carries exactly what the report shows.
    cfg = storm.build(p, "noresize", seed=0, resizes=10)
    assert cfg["timing"]["w0_ns"] == 1 and cfg["timing"]["w_free_ns"] == 3


def test_a_cross_parameter_error_names_what_the_user_set() -> None:
    fpga, _ = get_scenario("fpga")
    # The user shrank the table under the default ip_entry (31): the error
    # leads with table, the one they set, and shows both values.
    with pytest.raises(InvalidArgument, match=r"^table: ip_entry \(31\) must be < table \(16\)"):
        fpga.resolve({"table": 16})
    with pytest.raises(InvalidArgument, match=r"^ip_entry: ip_entry \(40\) must be < table"):
        fpga.resolve({"ip_entry": 40})
    nvme, _ = get_scenario("nvme")
    with pytest.raises(InvalidArgument, match=r"^table: vcpus \+ 1 \(\d+\) must be ≤ table \(4\)"):
        nvme.resolve({"table": 4})
