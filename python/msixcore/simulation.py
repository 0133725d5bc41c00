"""Run engine configurations and get typed, checked results.

The engine is ``msixcore._core``; this module turns its JSON results into
frozen dataclasses (:class:`RunResult`, :class:`RunStats`) whose fields mypy
checks, and back into the same JSON.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from msixcore import _core
from msixcore._core import AccountingError
from msixcore.engine_config import _SCHEMA, FAULT_REASONS, SPOOF_KINDS, config_json

__all__ = [
    "OUTCOMES",
    "PHASES",
    "FaultLogResult",
    "PhaseResult",
    "Replication",
    "Replications",
    "RunResult",
    "RunStats",
    "SpoofKindResult",
    "SpoofResult",
    "Usage",
    "parse_result",
    "run_config",
    "run_replications",
]

OUTCOMES: tuple[str, ...] = tuple(_SCHEMA["enums"]["outcomes"])
"""Every outcome of a fired interrupt, in reporting order (docs/outcomes.md)."""

PHASES: tuple[str, ...] = tuple(_SCHEMA["enums"]["phases"])
"""The phases of a driver the books are kept by: ``probe`` and ``runtime``."""


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AccountingError(f"engine result: {where} must be a count, got {value!r}")
    return value


def _fields(cls: type[Any], raw: object, where: str) -> dict[str, object]:
    """``raw`` as a dict with exactly the dataclass ``cls``'s field names."""
    if not isinstance(raw, Mapping):
        raise AccountingError(f"engine result: {where} is not an object")
    names = [f.name for f in dataclasses.fields(cls)]
    if set(raw) != set(names):
        odd = sorted(set(raw) ^ set(names))
        raise AccountingError(f"engine result: {where} does not match its schema at {odd[0]!r}")
    return {name: raw[name] for name in names}


@dataclass(frozen=True)
class Usage:
    """Host resources in use."""

    cpu_vectors: int
    irtes: int
    irq_descs: int
    kvm_routes: int

    @classmethod
    def from_json(cls, raw: object, where: str = "usage") -> Self:
        """Parse the engine's JSON form."""
        f = _fields(cls, raw, where)
        return cls(**{k: _count(v, f"{where}.{k}") for k, v in f.items()})

    def to_json(self) -> dict[str, int]:
        """The JSON form."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunStats:
    """Everything a run reports besides the outcome books (docs/outcomes.md
    explains each field)."""

    end_time_ns: int
    resizes: int
    resize_requests: int
    w2_time_ns: int
    w1_time_ns: int
    guest_kills: int
    negotiations_refused: int
    unmasks_refused: int
    enables_refused: int
    unmasks_skipped: int
    dead_marks: int
    alloc_failures: int
    remap_faults: int
    stalls: int
    stall_time_ns: int
    stall_timeouts: int
    stalls_open: int
    queue_overflows: int
    handled: int
    max_queue_depth: int
    queue_wait_ns: int
    max_queue_wait_ns: int
    final_usage: Usage
    peak_usage: Usage
    control_events: int

    @classmethod
    def from_json(cls, raw: object) -> Self:
        """Parse the engine's JSON form; every field must be there."""
        f = _fields(cls, raw, "stats")
        values: dict[str, Any] = {}
        for key, value in f.items():
            if key in ("final_usage", "peak_usage"):
                values[key] = Usage.from_json(value, f"stats.{key}")
            else:
                values[key] = _count(value, f"stats.{key}")
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (the engine's, key for key)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SpoofKindResult:
    """One kind of forged write (docs/spoof.md): ``attempts`` = ``blocked``
    + ``own_vector`` + ``cross_device`` + ``unowned``; ``reasons`` (every
    fault reason, zeros included) sum to ``blocked``."""

    attempts: int
    blocked: int
    reasons: dict[str, int]
    own_vector: int
    cross_device: int
    cross_vm: int
    unowned: int

    @classmethod
    def from_json(cls, raw: object, where: str) -> Self:
        """Parse the engine's JSON form and check the split."""
        f = _fields(cls, raw, where)
        reasons = f.pop("reasons")
        if not isinstance(reasons, Mapping) or set(reasons) != set(FAULT_REASONS):
            raise AccountingError(f"engine result: {where}.reasons must name every fault reason")
        counts = {k: _count(v, f"{where}.{k}") for k, v in f.items()}
        b = cls(
            reasons={r: _count(reasons[r], f"{where}.reasons.{r}") for r in FAULT_REASONS}, **counts
        )
        split = b.blocked + b.own_vector + b.cross_device + b.unowned
        if (
            split != b.attempts
            or sum(b.reasons.values()) != b.blocked
            or b.cross_vm > b.cross_device
        ):
            raise AccountingError(f"engine result: {where} does not balance")
        return b

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FaultLogResult:
    """The IOMMUs' fault logs at the end of a run, summed: ``kept`` records of
    ``capacity``; ``recorded`` faults, of which ``overflowed`` found the log
    full; ``suppressed`` blocks whose entry asked for no record."""

    capacity: int
    kept: int
    recorded: int
    overflowed: int
    suppressed: int

    @classmethod
    def from_json(cls, raw: object, where: str = "spoof.fault_log") -> Self:
        """Parse the engine's JSON form."""
        f = _fields(cls, raw, where)
        return cls(**{k: _count(v, f"{where}.{k}") for k, v in f.items()})

    def to_json(self) -> dict[str, int]:
        """The JSON form."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SpoofResult:
    """What a run's forged writes came to, per kind, on the host's IOMMU
    (``iommu``: ``intel`` or ``amd``), and its fault logs."""

    iommu: str
    kinds: dict[str, SpoofKindResult]
    fault_log: FaultLogResult

    @property
    def attempts(self) -> int:
        """Forged writes over every kind."""
        return sum(k.attempts for k in self.kinds.values())

    @classmethod
    def from_json(cls, raw: object) -> Self:
        """Parse the engine's JSON form; every kind must balance."""
        f = _fields(cls, raw, "spoof")
        kinds = f["kinds"]
        if not isinstance(kinds, Mapping) or not set(kinds) <= set(SPOOF_KINDS):
            raise AccountingError("engine result: spoof.kinds names an unknown kind")
        return cls(
            iommu=str(f["iommu"]),
            kinds={k: SpoofKindResult.from_json(v, f"spoof.kinds.{k}") for k, v in kinds.items()},
            fault_log=FaultLogResult.from_json(f["fault_log"]),
        )

    def to_json(self) -> dict[str, Any]:
        """The engine's JSON form."""
        return {
            "iommu": self.iommu,
            "kinds": {k: b.to_json() for k, b in self.kinds.items()},
            "fault_log": self.fault_log.to_json(),
        }


@dataclass(frozen=True)
class PhaseResult:
    """The books of one phase: resize requests completed in it, interrupts
    fired in it and their outcomes."""

    resizes: int
    fired: int
    outcomes: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """The engine's JSON form."""
        return {"resizes": self.resizes, "fired": self.fired, "outcomes": dict(self.outcomes)}


def _outcomes(got: object, where: str) -> dict[str, int]:
    if not isinstance(got, dict):
        raise AccountingError(f"engine result: missing {where}.outcomes")
    unknown = sorted(set(got) - set(OUTCOMES))
    if unknown:
        raise AccountingError(f"engine result: unknown outcome {unknown[0]!r}")
    return {name: _count(got.get(name), f"{where}.outcomes.{name}") for name in OUTCOMES}


@dataclass(frozen=True)
class RunResult:
    """One finished run: interrupts fired, their outcomes (all seven names, in
    :data:`OUTCOMES` order), the same split by phase (``phases["probe"]`` and
    ``phases["runtime"]`` sum to the totals) and the run's statistics."""

    fired: int
    outcomes: dict[str, int]
    stats: RunStats
    phases: dict[str, PhaseResult]
    spoof: SpoofResult | None = None
    """Forged writes, when a device forges (docs/spoof.md); each is also one
    fired interrupt in ``outcomes``."""

    @property
    def resizes(self) -> int:
        """Resize requests completed (``stats.resize_requests``): guest
        unmasks of a new highest entry since enable, a resize on a NORESIZE
        host whatever the run's policy did."""
        return self.stats.resize_requests

    def to_json(self) -> dict[str, Any]:
        """The engine's JSON form: ``{"books": {"fired", "outcomes"}, "stats"}``."""
        out = {
            "books": {"fired": self.fired, "outcomes": dict(self.outcomes)},
            "phases": {name: p.to_json() for name, p in self.phases.items()},
            "stats": self.stats.to_json(),
        }
        if self.spoof is not None:
            out["spoof"] = self.spoof.to_json()
        return out


def parse_result(text: str) -> RunResult:
    """Parse the engine's JSON result and check ``fired == sum(outcomes)``."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise AccountingError(f"engine result: not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise AccountingError("engine result: not an object")
    books = raw.get("books")
    if not isinstance(books, dict) or not isinstance(books.get("outcomes"), dict):
        raise AccountingError("engine result: missing books.outcomes")
    fired = _count(books.get("fired"), "books.fired")
    outcomes = _outcomes(books["outcomes"], "books")
    total = sum(outcomes.values())
    if total != fired:
        raise AccountingError(
            f"books do not balance: fired {fired} != sum of outcomes {total} ({outcomes})"
        )
    raw_phases = raw.get("phases")
    if not isinstance(raw_phases, dict) or set(raw_phases) != set(PHASES):
        raise AccountingError(f"engine result: phases must be {', '.join(PHASES)}")
    phases = {}
    for name in PHASES:
        p = raw_phases[name]
        if not isinstance(p, dict):
            raise AccountingError(f"engine result: phases.{name} is not an object")
        phases[name] = PhaseResult(
            resizes=_count(p.get("resizes"), f"phases.{name}.resizes"),
            fired=_count(p.get("fired"), f"phases.{name}.fired"),
            outcomes=_outcomes(p.get("outcomes"), f"phases.{name}"),
        )
    if sum(p.fired for p in phases.values()) != fired or any(
        sum(p.outcomes[o] for p in phases.values()) != outcomes[o] for o in OUTCOMES
    ):
        raise AccountingError("engine result: the phases do not sum to the books")
    stats = RunStats.from_json(raw.get("stats"))
    spoof = SpoofResult.from_json(raw["spoof"]) if "spoof" in raw else None
    return RunResult(fired=fired, outcomes=outcomes, stats=stats, phases=phases, spoof=spoof)


def run_config(config: Mapping[str, Any], policy: object | None = None) -> RunResult:
    """Run one engine config (a ``SimConfig`` as a dict) to its stop condition,
    with its built-in policy or a Python ``policy`` object
    (:mod:`msixcore.policies`).

    Raises ``InvalidArgument`` (a ``ValueError`` naming the field) for a bad
    config and ``AccountingError`` when the books do not balance.
    """
    return parse_result(_core.run_simulation(config_json(config), policy))


@dataclass(frozen=True)
class Replication:
    """One replication's books."""

    seed: int
    fired: int
    outcomes: dict[str, int]
    resizes: int
    resize_requests: int


@dataclass(frozen=True)
class Replications:
    """Independent replications of one config: each seed's books, and their
    merge (the core's one merge: counts add up, maxima and usage take the
    largest)."""

    merged: RunResult
    runs: tuple[Replication, ...]


def run_replications(
    config: Mapping[str, Any], seeds: Sequence[int], threads: int = 0
) -> Replications:
    """Run one replication of ``config`` per seed on ``threads`` threads (0 =
    every core; the GIL is released). Results come back in seed order and
    merge in that order, so nothing depends on ``threads``."""
    text = _core.run_replications(config_json(config), list(seeds), threads)
    raw = json.loads(text)
    runs = tuple(
        Replication(
            seed=_count(r["seed"], "seed"),
            fired=_count(r["fired"], "fired"),
            outcomes={name: _count(r["outcomes"][name], name) for name in OUTCOMES},
            resizes=_count(r["resizes"], "resizes"),
            resize_requests=_count(r["resize_requests"], "resize_requests"),
        )
        for r in raw.pop("replications")
    )
    return Replications(merged=parse_result(json.dumps(raw)), runs=runs)
