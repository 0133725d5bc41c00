"""A guest driver written in SimPy on top of msixcore: SimPy runs the guest, msixcore the
host and the device.

SimPy's clock counts nanoseconds, like msixcore's. Two SimPy processes make the guest:

- the driver enables MSI-X, probes (unmasks its vectors one at a time, each a trapped
  access that holds it until the host is done), enters its runtime phase, then masks any
  vector the handler reports as too busy, polls for a while and unmasks it again (interrupt
  moderation in the manner of NAPI: stop the interrupts, poll, start them again);
- the interrupt handler wakes every 100 µs, drains the host CPUs' delivery queues and
  counts what arrived per CPU and per vector; a vector with more than its budget in one
  poll is reported to the driver.

Before every action and every drain, msixcore is stepped to SimPy's clock
(``Simulation.step_until``); ``Simulation.act`` runs the action and says when its trapped
access returns. At the end the books are printed and checked: every fired interrupt is in
one outcome, and every delivered one was drained by the handler, except the one QEMU held
for each masked stretch and sent to the guest at the unmask.

    python examples/simpy_guest.py [--seed S] [--policy noresize|dynamic|...]
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from msixcore import Simulation
from msixcore.engine_config import ActionConfig, SimConfig, config_json

ENTRIES = 8
NCPUS = 4
RATE = 10_000.0  # interrupts per second of each vector but one,
BUSY_ENTRY, BUSY_RATE = 2, 200_000.0  # a busy receive queue
PROBE_GAP_NS = 1_000_000  # between two unmasks of the probe
POLL_NS = 100_000  # between two drains of the handler
BUDGET = 10  # deliveries of one vector in one poll above which the driver masks it
MASKED_NS = 2_000_000  # how long the driver polls a masked vector before it unmasks it
END_NS = 50_000_000


@dataclass
class Report:
    """What the guest saw and what msixcore booked."""

    books: dict[str, int]
    per_cpu: Counter[int] = field(default_factory=Counter)
    per_entry: Counter[int] = field(default_factory=Counter)
    masked: list[tuple[int, int, int]] = field(default_factory=list)
    """Each masked stretch: entry, when its mask was issued, when its unmask returned (ns)."""
    while_masked: int = 0
    """Deliveries of a vector drained with a time inside one of its masked stretches (after
    the mask's instant: what reached the CPU at that same nanosecond came before it)."""

    @property
    def drained(self) -> int:
        """Deliveries the handler drained."""
        return sum(self.per_cpu.values())


class Guest:
    """The guest driver and its interrupt handler, on one device (device 0)."""

    def __init__(self, env: simpy.Environment, sim: Simulation) -> None:
        self.env = env
        self.sim = sim
        self.busy: simpy.Store = simpy.Store(env)
        self.reported: set[int] = set()
        self.deliveries: list[tuple[int, int]] = []
        """Every drained delivery as (entry, time_ns)."""
        self.report = Report(books={})

    def now(self) -> int:
        """SimPy's clock, ns; msixcore is stepped to it."""
        t = int(self.env.now)
        self.sim.step_until(t)
        return t

    def act(self, action: ActionConfig) -> Generator[simpy.Event, Any, int]:
        """One driver action at SimPy's clock; returns when its trapped access returned."""
        self.now()
        done = self.sim.act(0, action)
        yield self.env.timeout(done - self.env.now)
        return done

    def driver(self) -> Generator[simpy.Event, Any, None]:
        """Enable, probe, then moderate whichever vector the handler reports busy."""
        yield from self.act({"op": "enable"})
        for k in range(ENTRIES):
            yield self.env.timeout(PROBE_GAP_NS)
            yield from self.act({"op": "unmask", "entry": k})
        yield from self.act({"op": "phase", "phase": "runtime"})
        while True:
            k = yield self.busy.get()
            issued = int(self.env.now)
            yield from self.act({"op": "mask", "entry": k})
            yield self.env.timeout(MASKED_NS)
            unmasked = yield from self.act({"op": "unmask", "entry": k})
            self.report.masked.append((k, issued, unmasked))
            self.reported.discard(k)

    def drain(self) -> Counter[int]:
        """Take every delivery waiting on the host CPUs; count them; return this poll's
        count per vector."""
        self.now()
        polled: Counter[int] = Counter()
        for cpu in range(NCPUS):
            d = self.sim.drain(cpu)
            self.report.per_cpu[cpu] += len(d["entry"])
            for entry, t in zip(d["entry"].tolist(), d["time_ns"].tolist(), strict=True):
                polled[entry] += 1
                self.deliveries.append((entry, t))
        self.report.per_entry.update(polled)
        return polled

    def handler(self) -> Generator[simpy.Event, Any, None]:
        """Poll the delivery queues; report a vector over its budget to the driver."""
        while True:
            yield self.env.timeout(POLL_NS)
            for k, n in self.drain().items():
                if n > BUDGET and k not in self.reported:
                    self.reported.add(k)
                    yield self.busy.put(k)

    def finish(self) -> Report:
        """Step msixcore to the end, drain what is left, and book it."""
        self.drain()
        r = self.report
        r.books = self.sim.books()
        r.while_masked = sum(
            1
            for entry, t in self.deliveries
            for k, start, end in r.masked
            if entry == k and start < t < end
        )
        return r


def config(policy: str, seed: int) -> SimConfig:
    """One device, no program (the SimPy driver acts instead), deliveries left queued for
    the handler to drain, 50 ms of simulated time."""
    return {
        "seed": seed,
        "host": {"ncpus": NCPUS},
        "policy": {"kind": policy},
        "handler": {"service_ns": None},
        "devices": [
            {
                "entries": ENTRIES,
                "rate": RATE,
                "rates": [[BUSY_ENTRY, BUSY_RATE]],
                "program": [],
            }
        ],
        "stop": {"max_time_ns": END_NS},
    }


def run(policy: str = "noresize", seed: int = 1) -> Report:
    """Run the guest for 50 ms of simulated time and return what it saw."""
    env = simpy.Environment()
    guest = Guest(env, Simulation(config_json(config(policy, seed))))
    env.process(guest.driver())
    env.process(guest.handler())
    env.run(until=END_NS)
    return guest.finish()


def main() -> None:
    """Run, print the books, and check them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--policy", default="noresize")
    args = ap.parse_args()
    r = run(args.policy, args.seed)
    b = r.books
    held = len(r.masked)
    print(f"{ENTRIES} vectors on {NCPUS} host CPUs under {args.policy}, {END_NS / 1e6:g} ms")
    print(f"  drained per CPU:   {dict(sorted(r.per_cpu.items()))}")
    print(f"  drained per entry: {dict(sorted(r.per_entry.items()))}")
    print(
        f"  entry {BUSY_ENTRY} masked {held} times by the driver; "
        f"deliveries while masked: {r.while_masked}"
    )
    print(f"  books: {b}")
    print(
        f"  delivered {b['delivered']} = drained {r.drained} + {held} held by QEMU "
        "and sent at the unmask"
    )
    assert b["fired"] == sum(v for k, v in b.items() if k != "fired"), "books do not balance"
    assert b["delivered"] == r.drained + held, "a delivery is unaccounted for"
    assert r.while_masked == 0, "a vector delivered while masked"


if __name__ == "__main__":
    main()
