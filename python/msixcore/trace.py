"""Run an engine config and write its timeline as a Trace Event Format file
(the JSON ui.perfetto.dev and chrome://tracing open): the resize windows,
resize requests, hypercalls, stale queues, every lost, INTx and blocked
interrupt, and the host's resource counters (docs/trace.md).

The core records and formats the trace; this module checks the options,
runs, and writes the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msixcore import _core
from msixcore._core import InvalidArgument
from msixcore.engine_config import MAX_TRACE_EVENTS, config_json
from msixcore.simulation import RunResult, parse_result

__all__ = ["TraceOptions", "TraceSummary", "run_traced"]


@dataclass(frozen=True)
class TraceOptions:
    """What to record: the events from ``from_ns`` to ``to_ns`` of simulated
    time (None: to the end of the run), at most ``max_events`` of them (None:
    the core's default, 500,000). Events past the cap are dropped and counted
    in the trace's ``otherData``."""

    from_ns: int = 0
    to_ns: int | None = None
    max_events: int | None = None

    def check(self) -> None:
        """Raise ``InvalidArgument`` for a window or cap the core would refuse."""
        for name, value in (
            ("from_ns", self.from_ns),
            ("to_ns", self.to_ns),
            ("max_events", self.max_events),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidArgument(f"trace: {name} must be an integer, got {value!r}")
        if self.from_ns < 0:
            raise InvalidArgument(f"trace: from_ns must be ≥ 0, got {self.from_ns}")
        if self.to_ns is not None and self.to_ns < self.from_ns:
            raise InvalidArgument(
                f"trace: the window ends at {self.to_ns} ns, before its start at {self.from_ns} ns"
            )
        if self.max_events is not None and not 1 <= self.max_events <= MAX_TRACE_EVENTS:
            raise InvalidArgument(
                f"trace: max_events must be 1..={MAX_TRACE_EVENTS}, got {self.max_events}"
            )


@dataclass(frozen=True)
class TraceSummary:
    """What a trace holds and what it left out."""

    events: int
    """Events written (slices, instants, counter samples; no metadata)."""
    dropped: int
    """Events inside the window the cap dropped."""
    first_dropped_ns: int | None
    """When the first dropped event happened: the trace is complete before."""
    outside_window: int
    """Events outside the window, not recorded."""


def run_traced(
    config: Mapping[str, Any],
    path: str | Path,
    options: TraceOptions | None = None,
    policy: object | None = None,
) -> tuple[RunResult, TraceSummary]:
    """Run ``config`` (event mode) to its stop condition with its timeline
    recorded, write the trace to ``path`` and return the run's result (the
    same as without the trace) and what the trace holds.

    Raises ``InvalidArgument`` for bad options or an aggregated-mode config,
    and ``OSError`` if ``path`` cannot be written.
    """
    options = options or TraceOptions()
    options.check()
    sim = _core.Simulation(config_json(config), policy)
    sim.trace(options.from_ns, options.to_ns, options.max_events)
    result = parse_result(sim.run())
    summary = TraceSummary(**sim.trace_summary())
    Path(path).write_text(sim.trace_json(), encoding="utf-8")
    return result, summary
