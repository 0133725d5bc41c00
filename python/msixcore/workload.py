"""Static estimates of what an engine config asks for, without running it:
how long a device program's cycle lasts, how many resize requests and
interrupts it produces, and so how long a run to N resizes takes.

Used to set a generous ``stop.max_time_ns`` safety bound under a
``stop.max_resizes`` target, and to size the default runs (the engine's cost is
about one unit per fired interrupt).

Host operation times are estimated as on a NORESIZE host (``noresize``): a
guest unmask of a new highest entry ``k`` costs ``w0 + w_free·live +
w_alloc·(k+1)`` plus ``(t_free_irq + t_request)`` per live vector; enable costs
``w0 + w_alloc``. The time
bound instead charges every step the most any policy can spend on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from msixcore.engine_config import TIMING_DEFAULTS

__all__ = ["DeviceWorkload", "Workload", "analyse"]


@dataclass(frozen=True)
class DeviceWorkload:
    """One device program, walked once (one cycle when it repeats)."""

    start_ns: int
    repeat: bool
    cycle_ns: float
    """Estimated duration of one pass, ns (delays plus NORESIZE host time)."""
    cycle_ns_max: float
    """Upper bound of one pass, ns, under any policy."""
    requests: int
    """Resize requests per pass: unmasks of a new highest entry since enable."""
    fires: float
    """Expected interrupts fired during one pass."""
    tail_rate: float
    """Interrupts per second of the vectors still live when the pass ends."""


@dataclass(frozen=True)
class Workload:
    """Every device of a config."""

    devices: tuple[DeviceWorkload, ...]

    def time_to(self, resizes: int) -> float:
        """Estimated simulated time (ns) until ``resizes`` requests complete,
        with the devices running concurrently (``inf`` if never)."""
        once = sum(d.requests for d in self.devices if not d.repeat)
        speed = sum(d.requests / d.cycle_ns for d in self.devices if d.repeat and d.requests)
        if resizes <= once:
            ends = [d.start_ns + d.cycle_ns for d in self.devices if not d.repeat]
            return max(ends, default=0.0)
        if speed <= 0:
            return math.inf
        lead = sum(d.requests * d.start_ns / d.cycle_ns for d in self.devices if d.repeat)
        return (resizes - once + lead) / speed

    def time_bound_ns(self, resizes: int) -> int:
        """A generous ``stop.max_time_ns`` for a run to ``resizes`` requests:
        twice the time every device needs, at its slowest, to do its share,
        plus one second."""
        once = sum(d.requests for d in self.devices if not d.repeat)
        per_round = sum(d.requests for d in self.devices if d.repeat)
        rounds = math.ceil(max(resizes - once, 0) / per_round) + 1 if per_round else 0
        ends = [d.start_ns + (rounds if d.repeat else 1) * d.cycle_ns_max for d in self.devices]
        return int(2 * max(ends, default=0.0)) + 1_000_000_000

    def fires_until(self, t_ns: float) -> float:
        """Expected interrupts fired from 0 to ``t_ns``."""
        total = 0.0
        for d in self.devices:
            span = max(t_ns - d.start_ns, 0.0)
            if d.repeat:
                total += d.fires * span / d.cycle_ns
            elif span >= d.cycle_ns:
                total += d.fires + d.tail_rate * (span - d.cycle_ns) * 1e-9
            else:
                total += d.fires * span / d.cycle_ns
        return total

    def expected_fires(self, stop: Mapping[str, Any]) -> float:
        """Expected interrupts fired by a run with this ``stop`` table."""
        t = math.inf
        if stop.get("max_resizes") is not None:
            t = self.time_to(int(stop["max_resizes"]))
        if stop.get("max_time_ns") is not None:
            t = min(t, float(stop["max_time_ns"]))
        return self.fires_until(t) if math.isfinite(t) else math.inf


def _walk(device: Mapping[str, Any], timing: Mapping[str, int]) -> DeviceWorkload:
    entries = int(device["entries"])
    rate = float(device.get("rate", 0.0))
    rates = {int(e): float(r) for e, r in device.get("rates", [])}
    w0, w_free, w_alloc = timing["w0_ns"], timing["w_free_ns"], timing["w_alloc_ns"]
    per_live = timing["t_free_irq_ns"] + timing["t_request_ns"]
    step_max = (
        timing["t_hypercall_ns"]
        + w0
        + (w_free + w_alloc + per_live + timing["t_dynamic_ns"]) * entries
    )
    live: set[int] = set()
    high: int | None = None
    t = t_max = fires = 0.0
    requests = 0

    def live_rate() -> float:
        return sum(rates.get(k, rate) for k in live)

    for step in device["program"]:
        delay = float(step.get("delay_ns", 0))
        fires += live_rate() * delay * 1e-9
        t += delay
        t_max += delay + step_max
        action = step["action"]
        op = action["op"]
        cost = 0.0
        if op == "enable":
            cost = w0 + w_alloc
        elif op == "unmask":
            k = int(action["entry"])
            if high is None or k > high:
                high = k
                requests += 1
                cost = w0 + w_free * len(live) + w_alloc * (k + 1) + per_live * len(live)
            fires += live_rate() * cost * 1e-9
            live.add(k)
        elif op == "free":
            live.discard(int(action["entry"]))
        elif op in ("disable", "reset"):
            live.clear()
            high = None
        t += cost
    cycle = max(t, 1.0)
    return DeviceWorkload(
        start_ns=int(device.get("start_ns", 0)),
        repeat=bool(device.get("repeat", False)),
        cycle_ns=cycle,
        cycle_ns_max=max(t_max, cycle),
        requests=requests,
        fires=fires,
        tail_rate=live_rate(),
    )


def analyse(config: Mapping[str, Any]) -> Workload:
    """Walk every device program of an engine config (``stop`` not needed)."""
    timing = {**TIMING_DEFAULTS, **config.get("timing", {})}
    return Workload(tuple(_walk(d, timing) for d in config["devices"]))
