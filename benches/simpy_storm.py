"""The resize storm (docs/storm.md#the-resize-storm) written the way a user would
write it with SimPy: a process per device running the guest driver's cycle, a
Poisson source process per live vector, and a device-wide flag for the resize
window W2 during which every live vector's fires are lost.

It runs the CLI's storm: its parameters (devices, table, init, gap, rate, w0,
w_free, w_alloc, kernel, qemu) are the ``storm`` scenario's, resolved by msixcore itself
(``storm.resolve``), so the "× SimPy" ratio compares like with like. The host
handler (32 CPUs, 1 µs each, at most 64 % busy) is not modelled: it never
drops an interrupt in the storm, so every fire outside a window is delivered.
Only ``edge`` semantics is modelled.

It is the pure-Python baseline the benchmarks divide by (msixcore events/s ÷
SimPy events/s, measured in the same session), and a cross-check: its loss
must agree with ``rate · Σ k·W2(k)`` (docs/storm.md) within statistical error.

    python benches/simpy_storm.py --cycles 1
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import simpy
from storm import DEFAULT, Params, Storm, closed_form_lost, resolve

NS = 1e-9  # simulated time runs in seconds


@dataclass
class Counts:
    """What the storm produced."""

    fired: int = 0
    lost: int = 0
    delivered: int = 0
    resizes: int = 0


class Device:
    """One passed-through device: its window flag and its live vectors' sources."""

    def __init__(
        self, env: simpy.Environment, s: Storm, rng: random.Random, counts: Counts
    ) -> None:
        self.env = env
        self.s = s
        self.rng = rng
        self.counts = counts
        self.in_window = False
        self.sources: list[simpy.Process] = []

    def source(self) -> Generator[simpy.Event, Any, None]:
        """A live vector: fires as a Poisson process until the guest disables MSI-X."""
        try:
            while True:
                yield self.env.timeout(self.rng.expovariate(self.s.rate))
                self.counts.fired += 1
                if self.in_window:
                    self.counts.lost += 1  # MSI-X Enable clear, no INTx: lost
                else:
                    self.counts.delivered += 1
        except simpy.Interrupt:
            return

    def driver(self, done: simpy.Event, max_resizes: int) -> Generator[simpy.Event, Any, None]:
        """The guest: enable, unmask 0..T-1 in order (each a resize), disable, repeat."""
        s = self.s
        while True:
            for k in range(s.table):  # enable: nothing live
                if k >= s.init:
                    yield self.env.timeout(s.gap_ns * NS)
                if k < s.first_entry:
                    # Before QEMU 8.2 vector 0 is set up at enable: no resize.
                    self.sources.append(self.env.process(self.source()))
                    continue
                # k >= nr_vectors: QEMU disables and re-enables the index (W2)
                self.in_window = True
                yield self.env.timeout(s.window_ns(k) * NS)
                self.in_window = False
                # Early enable: the new vectors are allocated function-masked
                # (fires latched, then delivered), after W2.
                yield self.env.timeout(s.after_window_ns(k) * NS)
                self.sources.append(self.env.process(self.source()))
                self.counts.resizes += 1
                if self.counts.resizes >= max_resizes and not done.triggered:
                    done.succeed()
            yield self.env.timeout(s.gap_ns * NS)
            for p in self.sources:  # disable: every vector stops
                p.interrupt()
            self.sources = []


def run_storm(params: Params | None = DEFAULT, resizes: int | None = None, seed: int = 1) -> Counts:
    """Run the storm ``params`` (scenario parameters, docs/storm.md#parameters) until
    ``resizes`` resizes completed (default: one cycle)."""
    s = resolve(params)
    if s.semantics != "edge":
        raise ValueError(f"the SimPy storm models edge semantics only, got {s.semantics!r}")
    n = s.cycle_resizes if resizes is None else resizes
    env = simpy.Environment()
    rng = random.Random(seed)
    counts = Counts()
    done = env.event()
    for _ in range(s.devices):
        env.process(Device(env, s, rng, counts).driver(done, n))
    env.run(until=done)
    return counts


def main() -> None:
    """Run the default storm and print events/s and the loss against the closed form."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    resizes = args.cycles * resolve(DEFAULT).cycle_resizes
    t0 = time.perf_counter()
    c = run_storm(DEFAULT, resizes, args.seed)
    dt = time.perf_counter() - t0
    want = closed_form_lost(DEFAULT, resizes)
    print(f"fired {c.fired} in {dt:.2f} s: {c.fired / dt / 1e6:.3f} M events/s")
    print(f"lost {c.lost} (closed form {want:.1f} ± {want**0.5:.1f}), resizes {c.resizes}")


if __name__ == "__main__":
    main()
