"""Statistics of runs: lost (and intx) interrupts per million resizes with an
exact Poisson confidence interval, and merging of replications.

Counts of interrupts lost in resize windows are Poisson (fires of Poisson
sources inside windows whose timing does not depend on the fires), so the
interval is Garwood's exact one::

    lower = χ²(α/2; 2n) / 2          (0 when n = 0)
    upper = χ²(1 − α/2; 2n + 2) / 2

It is computed in the core (``rust/core/src/poisson_interval.rs``, with the
chi-squared quantiles of the ``statrs`` crate), so an embedder of the Rust
core gets the same numbers; this module only asks it.

Merging replications (the core's merge) sums every count, so the merged count
is again Poisson and its interval exact; peaks and maxima take the maximum.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from msixcore import _core
from msixcore._core import InvalidArgument
from msixcore.simulation import RunResult, parse_result

__all__ = [
    "RatePerMillion",
    "garwood_interval",
    "merge_results",
    "per_million",
]


def garwood_interval(count: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) confidence interval for the mean of a Poisson variable
    observed as ``count``: ``garwood_interval(10) ≈ (4.795, 18.390)``."""
    return _core.garwood_interval(count, confidence)


@dataclass(frozen=True)
class RatePerMillion:
    """A count per million resizes with its exact Poisson interval. With no
    resizes the rate is undefined: ``value``, ``lower`` and ``upper`` are
    ``None``."""

    count: int
    resizes: int
    value: float | None
    lower: float | None
    upper: float | None
    confidence: float = 0.95

    def to_json(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return {
            "count": self.count,
            "resizes": self.resizes,
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "confidence": self.confidence,
        }


def per_million(count: int, resizes: int, confidence: float = 0.95) -> RatePerMillion:
    """``count`` events over ``resizes`` resizes, per million resizes, with
    the Garwood interval of ``count`` scaled the same way."""
    value, lower, upper = _core.rate_per_million(count, resizes, confidence)
    return RatePerMillion(count, resizes, value, lower, upper, confidence)


def merge_results(results: Sequence[RunResult]) -> RunResult:
    """Pool replications of one scenario × policy (different seeds) into one
    result, with the core's one merge: counts and times add up
    (``end_time_ns`` becomes the total simulated time); ``max_*`` fields,
    ``peak_usage`` and ``final_usage`` take the largest value."""
    if not results:
        raise InvalidArgument("results: nothing to merge")
    merged = _core.merge_run_results([json.dumps(r.to_json()) for r in results])
    return parse_result(merged)
