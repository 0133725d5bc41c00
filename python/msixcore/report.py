"""Results of runs: one :class:`RunRecord` per scenario × policy, the terminal
table and the JSON result file.

The JSON is deterministic: the same inputs give the same bytes (sorted keys,
fixed indentation, no wall-clock figures; timings go to the terminal only).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msixcore._core import __version__
from msixcore.engine_config import SPOOF_KINDS, normalize_config
from msixcore.parameters import ParamValue
from msixcore.simulation import OUTCOMES, RunResult
from msixcore.stats import RatePerMillion, per_million

__all__ = [
    "RunRecord",
    "config_digest",
    "format_spoof",
    "format_table",
    "make_record",
    "results_json",
    "write_json",
]


def config_digest(config: Mapping[str, Any]) -> str:
    """SHA-256 of an engine config's canonical JSON: every default filled in
    by the core, so equal runs have equal digests however they were written."""
    text = json.dumps(
        normalize_config(config), sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RunRecord:
    """One scenario × policy result with its derived statistics."""

    scenario: str
    """Scenario name, ``name:variant`` for a variant, or the file's name."""
    policy: str
    seed: int
    params: dict[str, ParamValue]
    """Scenario parameters in user units (empty for a full engine config)."""
    result: RunResult
    lost_per_million: RatePerMillion
    intx_per_million: RatePerMillion
    phase_lost_per_million: dict[str, RatePerMillion]
    """Lost per million resizes in each phase (``probe``, ``runtime``)."""
    closed_form_lost: float | None = None
    """Expected loss from the storm's closed form (storm only)."""
    replications: int = 1
    config_sha256: str = ""

    @property
    def resizes(self) -> int:
        """Resize requests completed."""
        return self.result.resizes

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-ready dict."""
        out: dict[str, Any] = {
            "scenario": self.scenario,
            "policy": self.policy,
            "seed": self.seed,
            "params": dict(self.params),
            "resizes": self.resizes,
            "fired": self.result.fired,
            "outcomes": {name: self.result.outcomes[name] for name in OUTCOMES},
            "stats": self.result.stats.to_json(),
            "phases": {
                name: {
                    **p.to_json(),
                    "lost_per_million_resizes": self.phase_lost_per_million[name].to_json(),
                }
                for name, p in self.result.phases.items()
            },
            "lost_per_million_resizes": self.lost_per_million.to_json(),
            "intx_per_million_resizes": self.intx_per_million.to_json(),
            "replications": self.replications,
            "config_sha256": self.config_sha256,
        }
        if self.closed_form_lost is not None:
            out["closed_form_lost"] = self.closed_form_lost
        if self.result.spoof is not None:
            out["spoof"] = self.result.spoof.to_json()
        return out


def make_record(
    scenario: str,
    policy: str,
    seed: int,
    params: Mapping[str, ParamValue],
    result: RunResult,
    *,
    closed_form_lost: float | None = None,
    replications: int = 1,
    config: Mapping[str, Any] | None = None,
) -> RunRecord:
    """Derive the per-million rates of ``result`` and wrap it in a record."""
    return RunRecord(
        scenario=scenario,
        policy=policy,
        seed=seed,
        params=dict(params),
        result=result,
        lost_per_million=per_million(result.outcomes["lost"], result.resizes),
        intx_per_million=per_million(result.outcomes["intx"], result.resizes),
        phase_lost_per_million={
            name: per_million(p.outcomes["lost"], p.resizes) for name, p in result.phases.items()
        },
        closed_form_lost=closed_form_lost,
        replications=replications,
        config_sha256=config_digest(config) if config is not None else "",
    )


def results_json(records: Sequence[RunRecord], meta: Mapping[str, Any] | None = None) -> str:
    """The JSON result text: ``{"msixcore": version, **meta, "runs": [...]}``
    with sorted keys and a trailing newline."""
    doc = {"msixcore": __version__, **(meta or {}), "runs": [r.to_json() for r in records]}
    return json.dumps(doc, sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_json(path: str | Path, text: str) -> None:
    """Write result text to ``path`` (UTF-8, replacing the file)."""
    Path(path).write_text(text, encoding="utf-8")


def _compact(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == int(x) and abs(x) < 100_000:
        return str(int(x))
    if abs(x) < 1_000:
        return f"{x:.3g}"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return str(x)


def _rate_cell(r: RatePerMillion) -> str:
    if r.value is None:
        return "n/a"
    return f"{_compact(r.value)} [{_compact(r.lower)}, {_compact(r.upper)}]"


_HEADERS = (
    "scenario",
    "policy",
    "resizes",
    "fired",
    "lost",
    "intx",
    "lost/M resizes [95% CI]",
    "probe lost/M",
    "runtime lost/M",
    "failed",
    "blocked",
    "peak CPU vec",
    "peak IRTEs",
    "peak VM routes",
    "alloc fail",
    "kills",
    "stalls",
)


def _row(r: RunRecord) -> tuple[str, ...]:
    s, o = r.result.stats, r.result.outcomes
    return (
        r.scenario,
        r.policy,
        _compact(r.resizes),
        _compact(r.result.fired),
        _compact(o["lost"]),
        _compact(o["intx"]),
        _rate_cell(r.lost_per_million),
        _compact(r.phase_lost_per_million["probe"].value),
        _compact(r.phase_lost_per_million["runtime"].value),
        _compact(o["failed"]),
        _compact(o["blocked"]),
        _compact(s.peak_usage.cpu_vectors),
        _compact(s.peak_usage.irtes),
        _compact(s.peak_usage.kvm_routes),
        _compact(s.alloc_failures),
        _compact(s.guest_kills),
        _compact(s.stalls),
    )


def format_table(records: Sequence[RunRecord]) -> str:
    """The terminal table: one row per scenario × policy, then a line per
    record with a non-zero closed form comparing the loss with it."""
    rows = [_HEADERS, *(_row(r) for r in records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADERS))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    out = [line(rows[0]), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in rows[1:]]
    for r in records:
        if r.closed_form_lost is None or r.closed_form_lost <= 0:
            continue
        lost = r.result.outcomes["lost"]
        expect = r.closed_form_lost
        z = (lost - expect) / math.sqrt(expect) if expect > 0 else 0.0
        out.append(
            f"{r.scenario}/{r.policy}: lost {lost:,} vs closed form {expect:,.1f} (z = {z:+.2f})"
        )
    return "\n".join(out)


_SPOOF_HEADERS = (
    "scenario",
    "iommu",
    "kind",
    "attempts",
    "blocked",
    "own vector",
    "cross-device",
    "cross-VM",
    "fault reasons",
)


def format_spoof(records: Sequence[RunRecord]) -> str | None:
    """The forged writes of the records that have them (docs/spoof.md): per
    vendor and kind, attempts, blocked, what landed where, the fault reasons
    seen; then each run's fault log (records kept, overflowed). ``None`` when
    no record forges."""
    rows: list[tuple[str, ...]] = []
    logs: list[str] = []
    for r in records:
        s = r.result.spoof
        if s is None:
            continue
        for kind in (k for k in SPOOF_KINDS if k in s.kinds):
            b = s.kinds[kind]
            reasons = ", ".join(f"{name} {n:,}" for name, n in b.reasons.items() if n) or "-"
            rows.append(
                (
                    f"{r.scenario}/{r.policy}",
                    s.iommu,
                    kind,
                    f"{b.attempts:,}",
                    f"{b.blocked:,}",
                    f"{b.own_vector:,}",
                    f"{b.cross_device:,}",
                    f"{b.cross_vm:,}",
                    reasons,
                )
            )
        f = s.fault_log
        logs.append(
            f"{r.scenario}/{r.policy} ({s.iommu}) fault log: {f.recorded:,} faults recorded, "
            f"{f.kept:,} records kept of {f.capacity:,}, {f.overflowed:,} overflowed, "
            f"{f.suppressed:,} suppressed"
        )
    if not rows:
        return None
    table = [_SPOOF_HEADERS, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(_SPOOF_HEADERS))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(w) if 3 <= i <= 7 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    out = ["Forged MSI writes (docs/spoof.md):", line(table[0])]
    out.append("  ".join("-" * w for w in widths))
    out += [line(row) for row in table[1:]]
    return "\n".join([*out, *logs])
