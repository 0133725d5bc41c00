"""Sweeps: the spec's runs and their order, the tables, determinism across
workers and Dask, resuming, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from msixcore import InvalidArgument, parse_sweep_spec, sweep
from msixcore.sweep import FIXED_COLUMNS, _require, run_sweep

# The acceptance sweep: 3 policies × 4 rates × 2 QEMUs × 3 seeds = 72 runs, on
# a small storm so that it takes about a second.
SPEC: dict[str, Any] = {
    "scenario": "storm",
    "policies": ["noresize", "hypercall", "dynamic"],
    "seeds": [1, 2, 3],
    "resizes": 256,
    "params": {"devices": 2, "table": 16},
    "grid": {"rate": [5000, 10000, 20000, 40000], "qemu": ["7.2", "8.2"]},
}


def _write_spec(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def test_runs_follow_points_zip_grid_policy_seed_order() -> None:
    spec = parse_sweep_spec(
        {
            "scenario": "storm",
            "policies": ["noresize", "dynamic"],
            "seeds": [4, 5],
            "grid": {"rate": [1, 2], "qemu": ["8.2"]},
            "zip": {"w0": ["10us", "20us"], "w_free": ["1us", "2us"]},
            "points": [{"devices": 1}, {"devices": 3}],
        }
    )
    runs = spec.runs()
    assert len(runs) == 2 * 2 * 2 * 2 * 2
    assert spec.axes == ("devices", "w0", "w_free", "rate", "qemu")
    assert [r.index for r in runs] == list(range(len(runs)))
    first = runs[0]
    assert (first.policy, first.seed) == ("noresize", 4)
    assert first.swept == {
        "devices": 1,
        "w0": pytest.approx(1e-05),
        "w_free": pytest.approx(1e-06),
        "rate": 1.0,
        "qemu": "8.2",
    }
    # Seeds vary fastest, then policies, then the grid's last key, ...
    assert [(r.policy, r.seed) for r in runs[:4]] == [
        ("noresize", 4),
        ("noresize", 5),
        ("dynamic", 4),
        ("dynamic", 5),
    ]
    assert runs[4].swept["rate"] == 2.0
    assert runs[8].swept["w0"] == pytest.approx(2e-05)
    assert runs[8].swept["w_free"] == pytest.approx(2e-06)
    assert runs[16].swept["devices"] == 3
    # Every run has its own key; equal runs would share one.
    assert len({r.key for r in runs}) == len(runs)
    assert spec.runs()[7].key == runs[7].key


BAD_SPECS: list[tuple[dict[str, Any], str]] = [
    ({"policies": ["noresize"]}, "scenario: must name a built-in scenario"),
    ({"scenario": "nope"}, "scenario: unknown scenario 'nope'"),
    ({"scenario": "storm", "colour": 1}, "colour: unknown key"),
    ({"scenario": "storm", "policies": ["ims"]}, "policies[0]: storm does not apply to 'ims'"),
    ({"scenario": "storm", "policies": []}, "policies: must be a non-empty list"),
    ({"scenario": "storm", "seeds": [1, 1]}, "seeds: a seed is listed twice"),
    ({"scenario": "storm", "seeds": [-1]}, "seeds[0]: must be an integer"),
    ({"scenario": "storm", "seeds": [True]}, "seeds[0]: must be an integer"),
    ({"scenario": "storm", "resizes": 0}, "resizes: must be an integer ≥ 1"),
    ({"scenario": "nvme", "resizes": 10}, "resizes: nvme runs for a fixed time"),
    ({"scenario": "storm", "mode": "warp"}, "mode: must be event or aggregated"),
    ({"scenario": "storm", "grid": {"devices": [1, 0]}}, "grid.devices[1]: devices: must be ≥ 1"),
    ({"scenario": "storm", "grid": {"colour": [1]}}, "grid.colour: colour: unknown parameter"),
    ({"scenario": "storm", "grid": {"rate": []}}, "grid.rate: must be a non-empty list"),
    ({"scenario": "storm", "grid": {"qemu": ["x"]}}, "grid.qemu[0]: qemu:"),
    ({"scenario": "storm", "params": {"rate": 1}, "grid": {"rate": [2]}}, "grid.rate: also set"),
    ({"scenario": "storm", "zip": {"rate": [1, 2], "gap": ["1ms"]}}, "zip: every list must"),
    ({"scenario": "storm", "points": [{"gap": "fast"}]}, "points[0].gap[0]: gap: must be"),
    ({"scenario": "storm", "points": 3}, "points: must be a list of tables"),
    (
        {"scenario": "storm", "grid": {"rate": list(range(1, 1001)), "gap": list(range(1, 1001))}},
        "at most 1,000,000 are allowed",
    ),
]


@pytest.mark.parametrize(("doc", "message"), BAD_SPECS, ids=[m for _, m in BAD_SPECS])
def test_bad_specs_are_one_line_errors_naming_the_field(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_sweep_spec(doc, "s.toml")
    text = str(exc.value)
    assert "\n" not in text
    assert text.startswith("s.toml: "), text
    assert message in text, text


def test_a_cross_parameter_error_names_the_point() -> None:
    spec = parse_sweep_spec(
        {"scenario": "storm", "grid": {"init": [2, 70]}, "params": {"table": 64}}, "s.toml"
    )
    with pytest.raises(InvalidArgument, match=r"^s\.toml: point 1 \(init=70\): "):
        spec.runs()


def test_the_table_has_one_row_per_run_with_outcomes_phases_and_intervals() -> None:
    df = sweep(SPEC)
    assert len(df) == 72
    assert list(df.columns[: len(FIXED_COLUMNS)]) == list(FIXED_COLUMNS)
    assert list(df["run"]) == list(range(72))
    for col in [
        "rate",
        "qemu",
        "status",
        "lost",
        "lost_per_million",
        "lost_per_million_lower",
        "lost_per_million_upper",
        "probe_lost",
        "runtime_lost",
        "probe_resizes",
        "runtime_lost_per_million_upper",
        "peak_usage_cpu_vectors",
        "alloc_failures",
        "config_sha256",
    ]:
        assert col in df.columns, col
    ok = df[df.status == "ok"]
    # dynamic needs QEMU 8.2: those 12 runs are refused rows with the reason.
    refused = df[df.status == "refused"]
    assert len(refused) == 12
    assert set(refused.policy) == {"dynamic"} and set(refused.qemu) == {"7.2"}
    assert all("dynamic needs QEMU 8.2+" in e for e in refused.error)
    assert refused.lost.isna().all()
    # Books balance per row, phases sum to the totals.
    outcomes = ["delivered", "pending", "coalesced", "lost", "intx", "blocked", "failed"]
    assert (ok[outcomes].sum(axis=1) == ok.fired).all()
    assert (ok.probe_lost + ok.runtime_lost == ok.lost).all()
    assert (ok.probe_resizes + ok.runtime_resizes == ok.resize_requests).all()
    # Only noresize loses, and more with a higher rate.
    assert (ok[ok.policy != "noresize"].lost == 0).all()
    lost = ok[ok.policy == "noresize"].groupby("rate").lost.mean()
    assert lost.is_monotonic_increasing and lost.iloc[-1] > 4 * lost.iloc[0]
    assert (ok.lost_per_million_lower <= ok.lost_per_million).all()
    assert (ok.lost_per_million <= ok.lost_per_million_upper).all()
    assert df.lost.dtype == "Int64" and df.rate.dtype == "float64"


def _sweep_dir(
    tmp_path: Path, name: str, **kw: Any
) -> tuple[Path, bytes, pd.DataFrame, float, int]:
    out = tmp_path / name
    t0 = time.monotonic()
    outcome = run_sweep(parse_sweep_spec(SPEC), out, **kw)
    seconds = time.monotonic() - t0
    return (
        out,
        (out / "results.json").read_bytes(),
        pd.read_parquet(out / "results.parquet"),
        seconds,
        outcome.ran,
    )


def test_local_and_dask_local_cluster_give_the_same_files(tmp_path: Path) -> None:
    _, json_local, pq_local, t_local, ran = _sweep_dir(tmp_path, "local")
    assert ran == 72
    _, json_one, pq_one, _, _ = _sweep_dir(tmp_path, "one", workers=1)
    _, json_dask, pq_dask, t_dask, _ = _sweep_dir(tmp_path, "dask", cluster="local", workers=2)
    assert json_local == json_one == json_dask
    pd.testing.assert_frame_equal(pq_local, pq_one)
    pd.testing.assert_frame_equal(pq_local, pq_dask)
    doc = json.loads(json_local)
    assert doc["spec"]["axes"] == ["rate", "qemu"]
    assert len(doc["runs"]) == 72 and doc["columns"][0] == "run"
    print(f"72-run sweep: local {t_local:.2f} s, Dask LocalCluster (2 workers) {t_dask:.2f} s")


def test_an_existing_cluster_by_its_scheduler_address_gives_the_same_files(
    tmp_path: Path,
) -> None:
    from distributed import LocalCluster

    _, json_local, _, _, _ = _sweep_dir(tmp_path, "local")
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        _, json_remote, _, _, ran = _sweep_dir(
            tmp_path, "remote", scheduler=cluster.scheduler_address
        )
    assert ran == 72
    assert json_remote == json_local


def test_a_rerun_does_only_the_missing_runs_and_writes_the_same_files(tmp_path: Path) -> None:
    out, first, _, _, _ = _sweep_dir(tmp_path, "out")
    files = sorted((out / "runs").glob("*.json"))
    assert len(files) == 72
    for f in files[::5]:
        f.unlink()
    (out / "results.json").unlink()
    (out / "results.parquet").unlink()
    _, again, _, _, ran = _sweep_dir(tmp_path, "out")
    assert ran == len(files[::5])
    assert again == first
    _, third, _, _, ran = _sweep_dir(tmp_path, "out")
    assert ran == 0 and third == first


def test_a_directory_of_another_sweep_is_refused(tmp_path: Path) -> None:
    _sweep_dir(tmp_path, "out")
    other = parse_sweep_spec({**SPEC, "seeds": [9]})
    with pytest.raises(InvalidArgument, match="holds the results of another sweep"):
        run_sweep(other, tmp_path / "out")


def _cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "msixcore", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_an_interrupted_sweep_finishes_the_remaining_runs_on_rerun(tmp_path: Path) -> None:
    # One worker and runs of a few hundred ms: Ctrl-C lands mid-sweep.
    spec = {**SPEC, "policies": ["noresize"], "resizes": 4096, "params": {"devices": 4}}
    path = _write_spec(tmp_path / "sweep.json", spec)
    proc = _cli("sweep", str(path), "--out", "out", "--workers", "1", cwd=tmp_path)
    runs = tmp_path / "out" / "runs"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(runs.glob("*.json"))) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    saved = len(list(runs.glob("*.json")))
    if proc.returncode == 0:
        pytest.skip("the sweep finished before the interrupt")
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "msixcore: error: interrupted", err
    assert 3 <= saved < 24
    assert not (tmp_path / "out" / "results.json").exists()
    rerun = _cli("sweep", str(path), "--out", "out", "--no-progress", cwd=tmp_path)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert f"({24 - saved} run now, {saved} already in out)" in out, out
    fresh = _cli("sweep", str(path), "--out", "fresh", "--no-progress", cwd=tmp_path)
    _, err = fresh.communicate(timeout=300)
    assert fresh.returncode == 0, err
    resumed = (tmp_path / "out" / "results.json").read_bytes()
    assert resumed == (tmp_path / "fresh" / "results.json").read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep", "missing.toml", "--out", "o"], "missing.toml: cannot read"),
        (["sweep", "spec.json", "--out", "o", "--workers", "0"], "--workers: must be ≥ 1"),
        (
            ["sweep", "spec.json", "--out", "o", "--cluster", "local", "--scheduler", "tcp://x:1"],
            "--cluster and --scheduler",
        ),
        (["sweep", "bad.json", "--out", "o"], "bad.json: grid.rate[0]: rate:"),
    ],
)
def test_cli_errors_are_one_line_with_status_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    _write_spec(tmp_path / "spec.json", SPEC)
    _write_spec(tmp_path / "bad.json", {"scenario": "storm", "grid": {"rate": ["fast"]}})
    proc = _cli(*args, cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("msixcore: error: "), err
    assert message in lines[0], err
    assert out == ""


def test_the_cli_reports_what_it_did(tmp_path: Path) -> None:
    _write_spec(tmp_path / "spec.json", SPEC)
    proc = _cli("sweep", "spec.json", "--out", "o", cwd=tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "72 runs (72 run now, 0 already in o), 12 refused by the engine" in out
    assert "refused: policy.kind: dynamic needs QEMU 8.2+" in out
    assert (tmp_path / "o" / "results.parquet").exists()


def test_a_missing_extra_says_what_to_install() -> None:
    with pytest.raises(InvalidArgument, match=r"pip install 'msixcore\[sweep\]'"):
        _require("msixcore_no_such_module")


def test_sweep_takes_a_file_a_dict_or_a_spec(tmp_path: Path) -> None:
    small = {**SPEC, "policies": ["noresize"], "seeds": [1], "grid": {"rate": [1000, 2000]}}
    path = _write_spec(tmp_path / "s.json", small)
    a = sweep(path)
    b = sweep(small)
    c = sweep(parse_sweep_spec(small))
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    assert os.path.exists(path)
