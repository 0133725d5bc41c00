"""The command line: every user error is one line on stderr with exit status
2 and no traceback (checked in a subprocess); compare/run output and JSON from the
real engine (in process)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from msixcore import SCENARIOS, storm_closed_form_lost
from msixcore.cli import compare_jobs, main


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "msixcore", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("files")
    (d / "bad.toml").write_text('base = "storm"\n[params]\ndevices = 0\n')
    (d / "storm.toml").write_text('base = "storm"\npolicy = "noresize"\n')
    (d / "broken.toml").write_text("base = = 1\n")
    (d / "config.json").write_text(
        json.dumps(
            {
                "devices": [{"entries": 2, "program": [{"action": {"op": "enable"}}]}],
                "stop": {"max_time_ns": 1_000_000},
            }
        )
    )
    return d


ERRORS: list[tuple[list[str], str]] = [
    (["run", "tempest", "--policy", "noresize"], "scenario: unknown scenario 'tempest'"),
    (["run", "storm", "--policy", "bogus"], "policy: unknown policy 'bogus'"),
    (["run", "storm", "--policy", "ims"], "policy: storm applies to noresize"),
    (["run", "storm"], "--policy: required"),
    (["run"], "run: give a SCENARIO or --file PATH"),
    (["run", "storm:x", "--policy", "noresize"], "variant: storm has no variant 'x'"),
    (["run", "storm:", "--policy", "noresize"], "variant: 'storm:' names no variant after ':'"),
    (["run", "storm", "--policy", "noresize", "--set", "gap"], "--set: expected key=value"),
    (["run", "storm", "--policy", "noresize", "--set", "speed=3"], "speed: unknown parameter"),
    (["run", "storm", "--policy", "noresize", "--set", "gap=soon"], "gap: must be a duration"),
    (["run", "storm", "--policy", "noresize", "--set", "table=4096"], "table: must be ≤ 2048"),
    (["run", "storm", "--policy", "noresize", "--set", "rate=-1"], "rate: must be ≥ 0 /s"),
    (
        ["run", "storm", "--policy", "noresize", "--set", "init=100"],
        "init: init (100) must be ≤ table",
    ),
    (["run", "storm", "--policy", "noresize", "--resizes", "0"], "--resizes: must be ≥ 1"),
    (["run", "host-packing", "--policy", "upfront", "--resizes", "9"], "resizes: host-packing"),
    (["run", "storm", "--policy", "noresize", "--seed", "-1"], "--seed: must be ≥ 0, got -1"),
    (["run", "storm", "--policy", "noresize", "--seed", "abc"], "--seed: not an integer: 'abc'"),
    (["run", "storm", "--policy", "noresize", "--replications", "0"], "--replications: must"),
    (["run", "--file", "nope.toml"], "nope.toml: cannot read"),
    (["run", "--file", "bad.toml"], "bad.toml: params.devices: must be ≥ 1, got 0"),
    (["run", "--file", "broken.toml"], "broken.toml: invalid TOML"),
    (["run", "fpga", "--file", "storm.toml"], "storm.toml: base: the file is for 'storm'"),
    (["run", "storm", "--file", "config.json"], "config.json: config: a full engine config"),
    (["run", "--file", "config.json", "--set", "host.ncpus=0"], "host.ncpus: must be 1..=8192"),
    (["run", "--file", "config.json", "--policy", "nope"], "--policy: unknown policy 'nope'"),
    (["run", "storm", "--policy", "noresize", "--json", "no/such/dir/x.json"], "--json: direct"),
    (["compare", "--resizes", "0"], "--resizes: must be ≥ 1, got 0"),
    (["compare", "--seed", "-1"], "--seed: must be ≥ 0, got -1"),
    (
        ["run", "storm", "--policy", "noresize", "--resizes", "99999999999999999999999"],
        "--resizes: must be ≤ 18,446,744,073,709,551,615",
    ),
    (
        ["run", "storm", "--policy", "noresize", "--replications", "100000000000"],
        "--replications: must be ≤ 100,000, got 100000000000",
    ),
    (
        [
            *("run", "storm", "--policy", "noresize", "--seed", "18446744073709551615"),
            *("--replications", "2", "--resizes", "16"),
        ],
        "seeds[] = 18446744073709551616 is out of range",
    ),
    (["run", "storm", "--policy", "noresize", "--seed", "1e3"], "--seed: not an integer: '1e3'"),
    (["compare", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "argument command: invalid choice"),
]


@pytest.mark.parametrize(("args", "message"), ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_user_errors_are_one_line_with_status_2(files: Path, args: list[str], message: str) -> None:
    proc = cli(*args, cwd=files)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("msixcore: error: "), lines[0]
    assert message in lines[0], lines[0]
    assert proc.stdout == ""


def test_scenarios_lists_parameters_defaults_and_units() -> None:
    proc = cli("scenarios")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for s in SCENARIOS.values():
        assert f"{s.name}: " in out
        for p in s.params:
            assert f"    {p.name} " in out
    assert re.search(r"\n    gap +1 ms  s ", out)
    assert re.search(r"\n    kernel +6\.12 +- +host kernel", out)
    assert "20,000/s  /s" in out
    assert "host-packing:no-reservation: reservation_mode=false" in out


def test_compare_jobs_cover_every_scenario_and_policy() -> None:
    jobs = compare_jobs(seed=3, resizes=None, quick=False)
    pairs = [(j.scenario, j.policy) for j in jobs]
    expected = [
        (f"{s.name}:{v}" if v else s.name, p)
        for s in SCENARIOS.values()
        for v in ([*s.variants] or [None])
        for p in s.policies
    ]
    assert pairs == expected
    storm = [j for j in jobs if j.scenario == "storm"]
    assert all(j.config["stop"]["max_resizes"] == 20_480 for j in storm)
    assert storm[0].closed_form_lost == pytest.approx(storm_closed_form_lost(None, 20_480))
    assert all(j.closed_form_lost == 0.0 for j in storm[1:])
    quick = compare_jobs(seed=3, resizes=None, quick=True)
    assert quick[0].config["stop"]["max_resizes"] == 2_048
    fixed = compare_jobs(seed=3, resizes=500, quick=False)
    for j in fixed:
        if SCENARIOS[j.scenario.split(":")[0]].time_bounded:
            assert j.config["stop"]["max_resizes"] is None
        else:
            assert j.config["stop"]["max_resizes"] == 500


def _compare(tmp_path: Path, name: str, *extra: str) -> tuple[str, bytes]:
    path = tmp_path / name
    rc = main(["compare", "--quick", "--json", str(path), *extra])
    assert rc == 0
    return name, path.read_bytes()


def test_compare_with_engine_spy(
    tmp_path: Path, engine_spy: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, first = _compare(tmp_path, "a.json")
    out, err = capsys.readouterr()
    jobs = compare_jobs(0, None, True)
    assert len(engine_spy) == len(jobs)
    lines = out.splitlines()
    assert lines[0].startswith("scenario") and "lost/M resizes [95% CI]" in lines[0]
    table = lines[: lines.index("")]  # the version-pair matrix follows a blank line
    rows = [line for line in table[2:] if not line.startswith("storm/")]
    assert len(rows) == len(jobs)
    assert "Which kernel/QEMU pairs resize" in out
    assert {(p["kernel"], p["qemu"]) for p in json.loads(first)["version_pairs"]} >= {
        ("5.10", "7.2"),
        ("6.12", "8.2"),
    }
    assert "msixcore:" in err  # progress on stderr
    doc = json.loads(first)
    assert doc["command"] == "compare" and doc["quick"] is True and doc["seed"] == 0
    assert [(r["scenario"], r["policy"]) for r in doc["runs"]] == [
        (j.scenario, j.policy) for j in jobs
    ]
    storm = doc["runs"][0]
    assert storm["closed_form_lost"] > 0 and storm["params"]["devices"] == 16
    # Same inputs, same bytes; another seed, other bytes.
    _, again = _compare(tmp_path, "b.json")
    assert again == first
    _, other = _compare(tmp_path, "c.json", "--seed", "1")
    assert other != first


def test_run_with_engine_spy(
    tmp_path: Path, engine_spy: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.json"
    args = ["run", "storm", "--policy", "noresize", "--resizes", "128", "--seed", "4"]
    rc = main([*args, "--set", "devices=2", "--set", "gap=2ms", "--json", str(path)])
    assert rc == 0
    (config,) = engine_spy
    assert len(config["devices"]) == 2 and config["seed"] == 4
    assert config["stop"]["max_resizes"] == 128
    assert config["devices"][0]["program"][-1]["delay_ns"] == 2_000_000
    doc = json.loads(path.read_text())
    (run,) = doc["runs"]
    assert run["params"]["gap"] == 0.002 and run["replications"] == 1
    assert "storm/noresize: lost" in capsys.readouterr().out


def test_run_replications_merge(tmp_path: Path) -> None:
    """--replications runs seeds S..S+N-1 in parallel and merges them: the merged
    books are the sum of the single-seed runs."""

    def run_json(seed: int, reps: int) -> dict[str, Any]:
        path = tmp_path / f"rep-{seed}-{reps}.json"
        args = ["run", "fpga", "--policy", "noresize", "--resizes", "9", "--seed", str(seed)]
        assert main([*args, "--replications", str(reps), "--json", str(path)]) == 0
        (run,) = json.loads(path.read_text())["runs"]
        return dict(run)

    merged = run_json(10, 3)
    singles = [run_json(s, 1) for s in (10, 11, 12)]
    assert merged["replications"] == 3 and merged["seed"] == 10
    assert merged["resizes"] == 27
    for outcome in ("delivered", "lost"):
        assert merged["outcomes"][outcome] == sum(r["outcomes"][outcome] for r in singles)


def test_run_full_config_file(
    tmp_path: Path, engine_spy: list[dict[str, Any]], files: Path
) -> None:
    rc = main(
        [
            "run",
            "--file",
            str(files / "config.json"),
            "--policy",
            "upfront",
            "--set",
            "host.ncpus=4",
            "--seed",
            "2",
        ]
    )
    assert rc == 0
    (config,) = engine_spy
    assert config["policy"] == {"kind": "upfront"} and config["host"] == {"ncpus": 4}
    assert config["seed"] == 2


def test_mode_selects_aggregated_sampling(tmp_path: Path) -> None:
    out = tmp_path / "agg.json"
    proc = cli(
        "run",
        "storm",
        "--policy",
        "noresize",
        "--resizes",
        "1024",
        "--mode",
        "aggregated",
        "--set",
        "devices=2",
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["mode"] == "aggregated"
    (run,) = data["runs"]
    assert run["outcomes"]["lost"] > 0
    # CPU queues are not simulated in aggregated mode: only the few fires latched
    # while the function was masked, and delivered when unmasked, reach them.
    assert run["stats"]["handled"] < run["fired"] / 20
    bad = cli("run", "storm", "--policy", "noresize", "--mode", "warp")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
