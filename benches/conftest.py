"""Benchmark session plumbing: figures measured in this session are collected
so the terminal summary can print each as a ratio against its baseline from
the same run (msixcore events/s ÷ SimPy events/s, core call ÷ Python no-op)."""

from __future__ import annotations

from typing import Any

import pytest

FIGURES: dict[str, float] = {}
"""name → value, filled by the benchmarks (events/s, seconds per call, ...)."""


@pytest.fixture
def figures() -> dict[str, float]:
    """The session's figures (a plain dict shared by every benchmark)."""
    return FIGURES


def pytest_benchmark_update_json(config: Any, benchmarks: Any, output_json: dict[str, Any]) -> None:
    """Keep the statistics, drop every round's raw time: the per-call benchmarks run ~10^5
    rounds, which would make the JSON tens of megabytes (``benches/results`` is committed)."""
    for bench in output_json.get("benchmarks", []):
        bench.get("stats", {}).pop("data", None)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the session's figures and their ratios to the same-run baselines."""
    if not FIGURES:
        return
    tr = terminalreporter
    tr.section("msixcore figures (this session)")
    for name, value in sorted(FIGURES.items()):
        tr.write_line(f"{name:40s} {value:14.6g}")
    pairs = [
        (
            "storm events/s: msixcore run_simulation / SimPy",
            "msixcore_storm_eps",
            "simpy_storm_eps",
        ),
        (
            "storm events/s: aggregated mode (fired / time) / SimPy",
            "aggregated_storm_eps",
            "simpy_storm_eps",
        ),
        ("per-call: VectorTable.is_pending / py no-op", "call_is_pending_s", "call_py_noop_s"),
        ("per-call: IrqMatrix.reserved / py no-op", "call_reserved_s", "call_py_noop_s"),
    ]
    for label, num, den in pairs:
        if num in FIGURES and den in FIGURES and FIGURES[den] > 0:
            tr.write_line(f"{label:56s} {FIGURES[num] / FIGURES[den]:10.2f}x")
