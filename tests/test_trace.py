"""``msixcore run --trace``: a Trace Event Format file that ui.perfetto.dev
opens, whose lost, INTx and blocked instants are the run's books, bounded by
a window and a cap, and that leaves the books where they were."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from msixcore import SCENARIOS, InvalidArgument, run_config
from msixcore.cli import main
from msixcore.trace import TraceOptions, run_traced

STORM = ["run", "storm", "--policy", "noresize", "--resizes", "64"]


def run_cli(tmp_path: Path, *extra: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the storm with ``--trace`` and ``--json``: (trace, the run's record)."""
    trace, result = tmp_path / "out.json", tmp_path / "result.json"
    rc = main([*STORM, "--trace", str(trace), "--json", str(result), *extra])
    assert rc == 0
    (run,) = json.loads(result.read_text())["runs"]
    return json.loads(trace.read_text()), run


def check_format(trace: dict[str, Any]) -> None:
    """Every event has its phase's keys; every process and thread is named;
    slices on one thread never overlap."""
    assert trace["displayTimeUnit"] == "ns"
    pids, threads, named_pids, named_threads = set(), set(), set(), set()
    slices: dict[int, list[tuple[float, float]]] = {}
    for e in trace["traceEvents"]:
        assert {"name", "ph", "ts", "pid"} <= e.keys(), e
        assert isinstance(e["ts"], int | float) and e["ts"] >= 0, e
        pids.add(e["pid"])
        ph = e["ph"]
        if ph == "M":
            if e["name"] == "process_name":
                named_pids.add(e["pid"])
            elif e["name"] == "thread_name":
                named_threads.add(e["tid"])
            else:
                assert e["name"] in ("process_sort_index", "thread_sort_index"), e
        elif ph == "X":
            assert e["dur"] >= 0 and "tid" in e, e
            threads.add(e["tid"])
            slices.setdefault(e["tid"], []).append((e["ts"], e["ts"] + e["dur"]))
        elif ph == "i":
            assert e["s"] == "t" and "tid" in e, e
            threads.add(e["tid"])
        elif ph == "C":
            assert e["args"] and all(isinstance(v, int | float) for v in e["args"].values())
        else:
            pytest.fail(f"unexpected phase {ph}")
    assert pids == named_pids
    assert threads <= named_threads
    # An event without a tid stands for its process's main thread (tid = pid).
    assert not named_threads & pids
    for spans in slices.values():
        spans.sort()
        assert all(b[0] >= a[1] for a, b in pairwise(spans))


def instants(trace: dict[str, Any]) -> Counter[str]:
    return Counter(e["name"] for e in trace["traceEvents"] if e["ph"] == "i")


def test_a_storm_trace_is_valid_and_its_instants_are_the_books(tmp_path: Path) -> None:
    trace, run = run_cli(tmp_path)
    check_format(trace)
    # Perfetto reads displayTimeUnit from the start of the file.
    assert (tmp_path / "out.json").read_text().startswith('{"displayTimeUnit":"ns","traceEvents":[')
    other = trace["otherData"]
    assert other["dropped"] == 0 and other["outside_window"] == 0
    marks = instants(trace)
    assert run["outcomes"]["lost"] > 0
    for outcome in ("lost", "intx", "blocked"):
        assert marks[outcome] == run["outcomes"][outcome], outcome
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}
    assert {"cpu 0", "cpu 31", "MSI-X", "resize requests", "entry 1 W1"} <= names
    processes = [e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"]
    assert processes[0].startswith("host") and len(processes) == 1 + 16
    slices = Counter(e["name"] for e in trace["traceEvents"] if e["ph"] == "X")
    assert slices["resize request"] >= run["resizes"]
    assert slices["W2"] > 0 and slices["W1"] > 0 and slices["stale"] > 0
    counters = {e["name"] for e in trace["traceEvents"] if e["ph"] == "C"}
    assert {"host", "cpu 0"} <= counters


def test_intx_instants_are_the_books(tmp_path: Path) -> None:
    trace, run = run_cli(tmp_path, "--set", "semantics=edge_intx")
    assert run["outcomes"]["intx"] > 0
    assert instants(trace)["intx"] == run["outcomes"]["intx"]
    assert instants(trace)["lost"] == run["outcomes"]["lost"] == 0


def test_hypercalls_are_slices(tmp_path: Path) -> None:
    trace, _ = run_cli(tmp_path, "--policy", "hypercall")
    check_format(trace)
    calls = [e for e in trace["traceEvents"] if e["name"] == "hypercall"]
    assert calls and all(e["dur"] == pytest.approx(20.0) for e in calls)  # t_hypercall, µs


def test_tracing_leaves_the_books_alone(tmp_path: Path) -> None:
    config = SCENARIOS["storm"].build({"devices": 4}, "noresize", seed=3, resizes=256)
    plain = run_config(config)
    traced, summary = run_traced(config, tmp_path / "t.json")
    assert traced == plain
    assert summary.events > 0 and summary.dropped == 0


def test_a_window_bounds_the_trace(tmp_path: Path) -> None:
    whole, run = run_cli(tmp_path)
    # The 64 requests end within 0.1 ms: four back-to-back unmasks per device.
    trace, _ = run_cli(tmp_path, "--trace-from", "45us", "--trace-to", "0.00007")
    check_format(trace)
    for e in trace["traceEvents"]:
        if e["ph"] != "M":
            assert e["ts"] + e.get("dur", 0) >= 45 and e["ts"] <= 70, e
    other = trace["otherData"]
    assert other["window_from_ns"] == 45_000 and other["window_to_ns"] == 70_000
    assert other["outside_window"] > 0
    assert 0 < instants(trace)["lost"] < instants(whole)["lost"] == run["outcomes"]["lost"]


def test_the_cap_caps_and_reports_what_it_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace, _ = run_cli(tmp_path, "--trace-max-events", "40")
    check_format(trace)
    events = [e for e in trace["traceEvents"] if e["ph"] != "M"]
    other = trace["otherData"]
    assert len(events) == other["events"] == 40
    assert other["dropped"] > 0 and other["max_events"] == 40
    assert all(e["ts"] * 1_000 <= other["first_dropped_ns"] for e in events)
    assert "more dropped by the cap" in capsys.readouterr().err


def test_python_api_checks_its_options(tmp_path: Path) -> None:
    config = SCENARIOS["storm"].build({"devices": 2}, "noresize", seed=1, resizes=8)
    for bad in (
        TraceOptions(from_ns=-1),
        TraceOptions(from_ns=10, to_ns=5),
        TraceOptions(max_events=0),
    ):
        with pytest.raises(InvalidArgument, match="trace: "):
            run_traced(config, tmp_path / "x.json", bad)
    with pytest.raises(InvalidArgument, match="aggregated"):
        run_traced({**config, "mode": "aggregated"}, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


TRACE_ERRORS: list[tuple[list[str], str]] = [
    (["--trace", "t.json", "--trace-from", "soon"], "--trace-from: must be a duration"),
    (["--trace", "t.json", "--trace-to=-1ms"], "--trace-to: must be ≥ 0 s"),
    (["--trace", "t.json", "--trace-from", "5ms", "--trace-to", "2ms"], "--trace-to: must be"),
    (["--trace", "t.json", "--trace-max-events", "0"], "--trace-max-events: must be ≥ 1"),
    (["--trace", "t.json", "--trace-max-events", "x"], "--trace-max-events: not an integer"),
    (["--trace-from", "1ms"], "--trace-from: needs --trace PATH"),
    (["--trace", "t.json", "--mode", "aggregated"], "--trace: aggregated mode"),
    (["--trace", "t.json", "--replications", "2"], "--trace: traces one run"),
    (["--trace", "no/such/dir/t.json"], "--trace: directory of"),
    (["--trace", "."], "--trace: '.' is a directory"),
]


@pytest.mark.parametrize(
    ("extra", "message"), TRACE_ERRORS, ids=[" ".join(a) for a, _ in TRACE_ERRORS]
)
def test_trace_errors_are_one_line_with_status_2(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "msixcore", *STORM, *extra],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("msixcore: error: "), proc.stderr
    assert message in lines[0], lines[0]
    assert proc.stdout == ""
    assert not (tmp_path / "t.json").exists()


def test_the_trace_cap_is_bounded_by_the_core() -> None:
    from msixcore.engine_config import MAX_TRACE_EVENTS

    assert MAX_TRACE_EVENTS == 10_000_000
    with pytest.raises(InvalidArgument, match=r"max_events must be 1\.\.=10000000"):
        TraceOptions(max_events=MAX_TRACE_EVENTS + 1).check()
