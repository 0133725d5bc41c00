"""Scenario files (TOML and JSON) and --set overrides: errors name the file and
the field, on one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msixcore import SCENARIOS, InvalidArgument, load_file
from msixcore.cli import main
from msixcore.scenario_file import apply_config_override, parse_assignment, parse_spec


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_toml_scenario_file(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "s.toml",
        'base = "storm"\npolicy = "noresize"\nseed = 7\nresizes = 64\n'
        '[params]\ndevices = 2\ngap = "2ms"\nrate = 5000.0\n',
    )
    spec = load_file(p)
    assert spec.scenario is SCENARIOS["storm"] and spec.variant is None
    assert spec.params == {"devices": 2, "gap": "2ms", "rate": 5000.0}
    assert (spec.policy, spec.seed, spec.resizes) == ("noresize", 7, 64)
    assert spec.config is None


def test_json_scenario_file_with_variant(tmp_path: Path) -> None:
    p = write(tmp_path, "h.json", json.dumps({"base": "host-packing:no-reservation"}))
    spec = load_file(p)
    assert spec.scenario is SCENARIOS["host-packing"] and spec.variant == "no-reservation"


def test_full_config_files(tmp_path: Path) -> None:
    config = {
        "devices": [{"entries": 2, "program": [{"action": {"op": "enable"}}]}],
        "stop": {"max_time_ns": 1_000_000},
    }
    bare = load_file(write(tmp_path, "bare.json", json.dumps(config)))
    assert bare.config == config and bare.scenario is None
    toml = (
        'name = "tiny"\n[config]\nstop = { max_time_ns = 1000000 }\n'
        '[[config.devices]]\nentries = 2\nprogram = [{ action = { op = "enable" } }]\n'
    )
    wrapped = load_file(write(tmp_path, "w.toml", toml))
    assert wrapped.name == "tiny" and wrapped.config == config


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.toml", 'base = "storm"\n[params]\ndevices = 0\n', "params.devices: must be ≥ 1, got 0"),
        ("b.toml", 'base = "storm"\n[params]\ntable = 4096\n', "params.table: must be ≤ 2048"),
        ("c.toml", 'base = "storm"\n[params]\nrate = -1\n', "params.rate: must be ≥ 0 /s"),
        ("d.toml", 'base = "storm"\n[params]\nspeed = 1\n', "params.speed: unknown parameter"),
        ("e.toml", 'base = "storm"\ncolour = "red"\n', "colour: unknown key"),
        ("f.toml", 'base = "tempest"\n', "scenario: unknown scenario 'tempest'"),
        ("g.toml", 'base = "storm:x"\n', "variant: storm has no variant 'x'"),
        ("h.toml", 'base = "storm"\npolicy = "qemu"\n', "policy: unknown policy 'qemu'"),
        ("i.toml", 'base = "storm"\nresizes = 0\n', "resizes: must be an integer ≥ 1"),
        ("j.toml", 'base = "storm"\nseed = -3\n', "seed: must be an integer ≥ 0"),
        ("k.toml", "base = \n", "invalid TOML: "),
        ("l.json", "{", "invalid JSON: "),
        ("m.json", "[1]", "must hold a table/object"),
        ("n.toml", 'base = "storm"\n[config]\n', "base: give base"),
        (
            "q.toml",
            'base = "host-packing"\n[params]\nduration = "10us"\n',
            "params.duration: duration must exceed the longest resize",
        ),
        ("r.txt", "", "unknown file type (use .toml or .json)"),
    ],
)
def test_file_errors_name_file_and_field(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    p = write(tmp_path, name, text)
    with pytest.raises(InvalidArgument) as info:
        load_file(p)
    got = str(info.value)
    assert got.startswith(f"{p}: {message}"), got
    assert "\n" not in got


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "o.json",
            json.dumps(
                {
                    "config": {
                        "devices": [{"entries": 2, "rate": -1.0, "program": []}],
                        "stop": {"max_time_ns": 5},
                    }
                }
            ),
            "config.devices[0].rate: must be a rate in 0..=1e9 per second, got -1",
        ),
        (
            "p.json",
            json.dumps(
                {
                    "devices": [{"entries": 64, "program": []}],
                    "timing": {"w0_ns": 20000, "w_alloc_ns": 500},
                    "stop": {"max_time_ns": 50000},
                }
            ),
            "config.stop.max_time_ns: the run (50000 ns) must be longer than the longest resize",
        ),
    ],
)
def test_full_config_errors_name_file_and_field_when_run(
    tmp_path: Path, name: str, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full engine config is validated once, by the engine, when it runs;
    the error still names the file and the field, on one line."""
    p = write(tmp_path, name, text)
    load_file(p)
    assert main(["run", "--file", str(p), "--policy", "noresize"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"msixcore: error: {p}: {message}"), line


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read"):
        load_file(tmp_path / "nope.toml")


def test_params_only_spec() -> None:
    spec = parse_spec({"params": {"devices": 3}}, "x")
    assert spec.scenario is None and spec.params == {"devices": 3}


def test_assignment_and_config_override() -> None:
    assert parse_assignment("gap = 2ms") == ("gap", "2ms")
    with pytest.raises(InvalidArgument, match=r"^--set: expected key=value"):
        parse_assignment("gap")
    with pytest.raises(InvalidArgument, match=r"^--set: expected key=value"):
        parse_assignment("=3")
    config = {"devices": [{"rate": 1.0}], "host": {}}
    apply_config_override(config, "devices[0].rate", "250.5")
    apply_config_override(config, "host.ncpus", "16")
    apply_config_override(config, "host.iommu", "amd")
    apply_config_override(config, "policy.kind", '"dynamic"')
    assert config == {
        "devices": [{"rate": 250.5}],
        "host": {"ncpus": 16, "iommu": "amd"},
        "policy": {"kind": "dynamic"},
    }
    with pytest.raises(InvalidArgument, match=r"^devices\.3: no such list element"):
        apply_config_override(config, "devices.3.rate", "1")
    with pytest.raises(InvalidArgument, match=r"^host\.ncpus\.x: cannot set"):
        apply_config_override(config, "host.ncpus.x", "1")
