"""Run one engine configuration and get its checked books and statistics.

The engine is ``msixcore._core.run_simulation(config_json) -> result_json``.
It is looked up at call time, so a build without it still imports; calling
:func:`run_config` then raises :class:`EngineUnavailable`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from msixcore import _core
from msixcore._core import AccountingError, MsixError

__all__ = [
    "OUTCOMES",
    "EngineUnavailable",
    "RunResult",
    "engine_available",
    "parse_result",
    "run_config",
    "run_replications",
]

OUTCOMES: tuple[str, ...] = (
    "delivered",
    "pending",
    "coalesced",
    "lost",
    "intx",
    "blocked",
    "failed",
)
"""Every outcome of a fired interrupt, in reporting order (DESIGN.md §3)."""


class EngineUnavailable(MsixError):
    """This build of ``msixcore._core`` has no ``run_simulation``."""


@dataclass(frozen=True)
class RunResult:
    """One finished run: interrupts fired, their outcomes (all seven names, in
    :data:`OUTCOMES` order) and the engine's ``RunStats`` fields."""

    fired: int
    outcomes: dict[str, int]
    stats: dict[str, Any]

    @property
    def resizes(self) -> int:
        """Resize requests completed (``stats["resize_requests"]``): guest
        unmasks of a new highest entry since enable, a resize on a NORESIZE
        host whatever the run's policy did."""
        return int(self.stats.get("resize_requests", 0))


def engine_available() -> bool:
    """Whether ``msixcore._core`` provides ``run_simulation``."""
    return callable(getattr(_core, "run_simulation", None))


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AccountingError(f"engine result: {where} must be a count, got {value!r}")
    return value


def parse_result(text: str) -> RunResult:
    """Parse the engine's JSON result and check ``fired == sum(outcomes)``."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise AccountingError(f"engine result: not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise AccountingError("engine result: not an object")
    books = raw.get("books")
    stats = raw.get("stats")
    if not isinstance(books, dict) or not isinstance(books.get("outcomes"), dict):
        raise AccountingError("engine result: missing books.outcomes")
    if not isinstance(stats, dict):
        raise AccountingError("engine result: missing stats")
    fired = _count(books.get("fired"), "books.fired")
    got = books["outcomes"]
    unknown = sorted(set(got) - set(OUTCOMES))
    if unknown:
        raise AccountingError(f"engine result: unknown outcome {unknown[0]!r}")
    outcomes = {name: _count(got.get(name), f"books.outcomes.{name}") for name in OUTCOMES}
    total = sum(outcomes.values())
    if total != fired:
        raise AccountingError(
            f"books do not balance: fired {fired} != sum of outcomes {total} ({outcomes})"
        )
    return RunResult(fired=fired, outcomes=outcomes, stats=stats)


def run_config(config: Mapping[str, Any]) -> RunResult:
    """Run one engine config (a ``SimConfig`` as a dict) to its stop condition.

    Raises ``InvalidArgument`` (a ``ValueError`` naming the field) for a bad
    config, :class:`EngineUnavailable` when the engine binding is missing and
    ``AccountingError`` when the books do not balance.
    """
    fn = getattr(_core, "run_simulation", None)
    if not callable(fn):
        raise EngineUnavailable(
            "this build of msixcore._core has no run_simulation (the engine binding is not built)"
        )
    run = cast(Callable[[str], str], fn)
    text = json.dumps(config, sort_keys=True, allow_nan=False)
    return parse_result(run(text))


def run_replications(config: Mapping[str, Any], seeds: list[int], threads: int = 0) -> RunResult:
    """Run one replication of ``config`` per seed on ``threads`` threads (0 = every
    core; the GIL is released) and return them merged: counts summed, peaks and
    maxima maximised, in seed order, so the result does not depend on ``threads``.
    The merged result's ``stats["replications"]`` is absent; each seed's books are
    returned by ``msixcore._core.run_replications`` if you need them."""
    fn = getattr(_core, "run_replications", None)
    if not callable(fn):
        raise EngineUnavailable("this build of msixcore._core has no run_replications")
    run = cast(Callable[[str, list[int], int], str], fn)
    text = json.dumps(config, sort_keys=True, allow_nan=False)
    return parse_result(run(text, list(seeds), threads))
