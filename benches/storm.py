"""The resize storm of DESIGN.md §5: parameters, the closed-form loss, and the
msixcore config that runs it (per-event mode, ``noresize``).

Shared by the pytest-benchmark benchmarks, the SimPy baseline and the smoke
tests so that both simulators run exactly the same storm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Storm:
    """D devices with T-entry tables; times in ns, ``rate`` per live vector per second."""

    devices: int = 16
    table: int = 64
    init: int = 4
    gap_ns: int = 1_000_000
    rate: float = 20_000.0
    w0_ns: int = 20_000
    w1_ns: int = 500

    @property
    def cycle_resizes(self) -> int:
        """Resizes in one cycle: every device unmasks its whole table."""
        return self.devices * self.table

    def window_ns(self, k: int) -> int:
        """Length of the device-wide window W2 of the resize that unmasks entry ``k``."""
        return self.w0_ns + self.w1_ns * (k + 1)


DEFAULT = Storm()
"""DESIGN.md §5 defaults: D=16, T=64, init=4, gap=1 ms, rate=20,000/s, w0=20 µs, w1=0.5 µs."""


def closed_form_lost(s: Storm, resizes: int) -> float:
    """Expected lost fires over ``resizes`` (whole cycles): ``rate · Σ k·(w0 + w1·(k+1))``."""
    if resizes % s.cycle_resizes:
        raise ValueError(f"{resizes} resizes is not a whole number of cycles")
    cycles = resizes // s.cycle_resizes
    per_device = sum(k * s.window_ns(k) * 1e-9 for k in range(s.table))
    return s.rate * per_device * s.devices * cycles


def msixcore_config(s: Storm, resizes: int, seed: int = 1) -> dict[str, Any]:
    """The storm as an msixcore ``SimConfig`` (what ``rust/core/tests/engine_storm.rs`` builds)."""
    program: list[dict[str, Any]] = [
        {"delay_ns": 0, "action": {"op": "negotiate", "minvec": 1, "maxvec": s.table}},
        {"delay_ns": 0, "action": {"op": "enable"}},
    ]
    program += [
        {"delay_ns": 0 if k < s.init else s.gap_ns, "action": {"op": "unmask", "entry": k}}
        for k in range(s.table)
    ]
    program.append({"delay_ns": s.gap_ns, "action": {"op": "disable"}})
    device = {
        "entries": s.table,
        "semantics": "edge",
        "rate": s.rate,
        "program": program,
        "repeat": True,
    }
    return {
        "seed": seed,
        "mode": "event",
        "policy": {"kind": "noresize"},
        "timing": {"w0_ns": s.w0_ns, "w1_ns": s.w1_ns, "w_active_ns": 0, "t_request_ns": 0},
        "devices": [device] * s.devices,
        "stop": {"max_time_ns": 3_600_000_000_000, "max_resizes": resizes},
    }


def msixcore_config_json(s: Storm, resizes: int, seed: int = 1) -> str:
    """:func:`msixcore_config` as the JSON text ``run_simulation`` takes."""
    return json.dumps(msixcore_config(s, resizes, seed))
