"""pytest-benchmark benchmarks of the Python-visible costs (issue 4).

Not part of the default test run (pytest's testpaths are ``tests`` and the
README). Run with::

    pytest benches --benchmark-enable

The SimPy baseline runs in the same session as msixcore's ``run_simulation``;
the terminal summary prints every figure as a ratio to its same-run baseline.
``MSIXCORE_BENCH_SMOKE=1`` shrinks every size so that the smoke test in
``tests/test_bench_smoke.py`` runs each function once in well under a second.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from simpy_storm import run_storm
from storm import DEFAULT, Params, cycle_resizes, msixcore_config_json

from msixcore import IrqMatrix, VectorTable
from msixcore._core import Simulation, run_simulation

SMOKE = os.environ.get("MSIXCORE_BENCH_SMOKE") == "1"

STORM: Params = {"devices": 2, "table": 8, "init": 2} if SMOKE else DEFAULT
"""The storm both simulators run: the CLI's (``msixcore run storm``: 16 devices × 64
entries, 32 host CPUs, 1 µs handler; docs/storm.md#parameters) unless smoke. Figures
recorded before it came from ``SCENARIOS["storm"]`` ran a bench-only copy with the same
devices, table, rates and windows but 8 host CPUs and a 200 ns handler."""
MSIX_CYCLES = 1 if SMOKE else 5
"""Storm cycles per msixcore run (5 cycles ≈ 3.4 M events)."""
SIMPY_CYCLES = 1
"""Storm cycles per SimPy run (1 cycle ≈ 0.67 M events)."""
MILLION = 64 if SMOKE else 1_000_000
"""Resizes of the issue's "1,000,000 storm resizes from Python" target."""
DRAIN_ITEMS = 64 if SMOKE else 65_536
"""Deliveries waiting on the CPU that ``Simulation.drain`` empties."""


def _median_s(benchmark: Any) -> float | None:
    """Median seconds per call, or None when timing is disabled (smoke)."""
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return None
    return float(stats.stats.median)


def _record(benchmark: Any, figures: dict[str, float], key: str, per_call: float = 1.0) -> None:
    """Store median seconds (÷ ``per_call`` units) as ``key`` in the session figures."""
    s = _median_s(benchmark)
    if s is not None:
        figures[key] = s / per_call
        benchmark.extra_info[key] = s / per_call


# ---- per-call overhead ----------------------------------------------------------


class _Plain:
    """A pure-Python object with a trivial method: the baseline call cost."""

    def __init__(self) -> None:
        self.pending = False

    def is_pending(self, k: int) -> bool:
        return self.pending


def test_call_py_noop(benchmark: Any, figures: dict[str, float]) -> None:
    """Baseline: a pure-Python method call with one int argument returning a bool."""
    obj = _Plain()
    assert benchmark(obj.is_pending, 0) is False
    _record(benchmark, figures, "call_py_noop_s")


def test_call_is_pending(benchmark: Any, figures: dict[str, float]) -> None:
    """A trivial core call: ``VectorTable.is_pending(0)`` (argument check, one PBA bit)."""
    vt = VectorTable(2048)
    assert benchmark(vt.is_pending, 0) is False
    _record(benchmark, figures, "call_is_pending_s")


def test_call_reserved(benchmark: Any, figures: dict[str, float]) -> None:
    """A trivial core call without arguments: ``IrqMatrix.reserved()``."""
    m = IrqMatrix.x86(8)
    assert benchmark(m.reserved) == 0
    _record(benchmark, figures, "call_reserved_s")


# ---- bulk numpy -----------------------------------------------------------------


def _drain_ready() -> tuple[tuple[Simulation], dict[str, Any]]:
    """A one-CPU simulation with ``DRAIN_ITEMS`` deliveries waiting (no handler)."""
    program = [
        {"action": {"op": "enable"}},
        *({"action": {"op": "unmask", "entry": k}} for k in range(8)),
        {"action": {"op": "wait"}},
    ]
    cfg = {
        "seed": 3,
        "host": {"ncpus": 1},
        "handler": {"service_ns": None, "queue_capacity": DRAIN_ITEMS},
        "devices": [{"entries": 8, "rate": 1e6, "program": program}],
        "stop": {"max_time_ns": 10**12},
    }
    sim = Simulation(json.dumps(cfg))
    t = 0
    while sim.books()["delivered"] < DRAIN_ITEMS:
        t += 1_000_000
        sim.step_until(t)
    return (sim,), {}


def test_drain_numpy(benchmark: Any, figures: dict[str, float]) -> None:
    """``Simulation.drain``: ``DRAIN_ITEMS`` deliveries out as five numpy arrays."""

    def drain(sim: Simulation) -> dict[str, Any]:
        return sim.drain(0)

    out = benchmark.pedantic(drain, setup=_drain_ready, rounds=1 if SMOKE else 20)
    assert len(out["time_ns"]) == DRAIN_ITEMS
    assert out["time_ns"].dtype == np.uint64 and out["vector"].dtype == np.uint8
    _record(benchmark, figures, "drain_s_per_item", DRAIN_ITEMS)


# ---- the storm: msixcore vs SimPy in the same session ----------------------------


def test_storm_simpy(benchmark: Any, figures: dict[str, float]) -> None:
    """The SimPy baseline (benches/simpy_storm.py) on the same storm: events/s."""
    resizes = SIMPY_CYCLES * cycle_resizes(STORM)
    c = benchmark.pedantic(run_storm, args=(STORM, resizes), rounds=1 if SMOKE else 3)
    assert c.resizes >= resizes and c.lost > 0
    s = _median_s(benchmark)
    if s is not None:
        figures["simpy_storm_eps"] = c.fired / s
        benchmark.extra_info.update(fired=c.fired, events_per_s=c.fired / s)


def test_storm_msixcore(benchmark: Any, figures: dict[str, float]) -> None:
    """``run_simulation`` on the storm, per-event mode: events/s (``books.fired`` / time)."""
    resizes = MSIX_CYCLES * cycle_resizes(STORM)
    cfg = msixcore_config_json(STORM, resizes)
    out = benchmark.pedantic(run_simulation, args=(cfg,), rounds=1 if SMOKE else 5)
    r = json.loads(out)
    assert r["stats"]["resizes"] == resizes
    fired = r["books"]["fired"]
    s = _median_s(benchmark)
    if s is not None:
        figures["msixcore_storm_eps"] = fired / s
        benchmark.extra_info.update(fired=fired, events_per_s=fired / s)


def test_storm_million_resizes(benchmark: Any, figures: dict[str, float]) -> None:
    """The issue's target: 1,000,000 storm resizes from Python, per-event mode (once)."""
    cfg = msixcore_config_json(STORM, MILLION)
    out = benchmark.pedantic(run_simulation, args=(cfg,), rounds=1)
    r = json.loads(out)
    assert r["stats"]["resize_requests"] == MILLION
    s = _median_s(benchmark)
    if s is not None:
        figures["million_resizes_s"] = s
        figures["million_resizes_eps"] = r["books"]["fired"] / s
        benchmark.extra_info.update(fired=r["books"]["fired"], seconds=s)


AGG_MILLION = 64 if SMOKE else 1_000_000
"""Resizes of the aggregated-mode "1,000,000 storm resizes in ≤ 1 s" target."""
BOTH_CORES = 128 if SMOKE else 4_000_000
"""Resizes run on both cores (two replications); 100 M is extrapolated from it."""


def test_storm_million_resizes_aggregated(benchmark: Any, figures: dict[str, float]) -> None:
    """1,000,000 storm resizes from Python in aggregated mode (once)."""
    cfg = msixcore_config_json(STORM, AGG_MILLION, mode="aggregated")
    out = benchmark.pedantic(run_simulation, args=(cfg,), rounds=1)
    r = json.loads(out)
    assert r["stats"]["resize_requests"] == AGG_MILLION
    assert r["books"]["fired"] == sum(r["books"]["outcomes"].values())
    s = _median_s(benchmark)
    if s is not None:
        figures["million_resizes_aggregated_s"] = s
        figures["aggregated_storm_eps"] = r["books"]["fired"] / s
        benchmark.extra_info.update(seconds=s, lost=r["books"]["outcomes"]["lost"])


def test_storm_both_cores_aggregated(benchmark: Any, figures: dict[str, float]) -> None:
    """Aggregated storm on both cores: two replications of ``BOTH_CORES / 2`` resizes
    each, merged; reports resizes/s, the 100 M extrapolation and lost per million
    resizes with its 95% interval."""
    from msixcore import per_million
    from msixcore._core import run_replications

    text = msixcore_config_json(STORM, BOTH_CORES // 2, mode="aggregated")
    out = benchmark.pedantic(run_replications, args=(text, [1, 2], 2), rounds=1)
    r = json.loads(out)
    resizes = r["stats"]["resize_requests"]
    assert resizes == BOTH_CORES
    lost = r["books"]["outcomes"]["lost"]
    rate = per_million(lost, resizes)
    s = _median_s(benchmark)
    if s is not None:
        figures["both_cores_resizes_per_s"] = resizes / s
        figures["hundred_million_extrapolated_s"] = 1e8 / (resizes / s)
        benchmark.extra_info.update(
            resizes=resizes,
            seconds=s,
            lost_per_million=rate.value,
            ci_low=rate.lower,
            ci_high=rate.upper,
        )
