"""Statistics of runs: lost (and intx) interrupts per million resizes with an
exact Poisson confidence interval, and merging of replications.

Counts of interrupts lost in resize windows are Poisson (fires of Poisson
sources inside windows whose timing does not depend on the fires), so the
interval is Garwood's exact one::

    lower = χ²(α/2; 2n) / 2          (0 when n = 0)
    upper = χ²(1 − α/2; 2n + 2) / 2

The χ² quantile is ``2 · gamma_quantile(p, df/2)``; the gamma quantile is
computed here without SciPy:

1. Start from the Wilson–Hilferty approximation (χ²_ν quantile ≈
   ν·(1 − 2/(9ν) + z·√(2/(9ν)))³ with z the normal quantile), or, when that
   is not positive (small shape, small p), from the small-x expansion
   P(a, x) ≈ xᵃ / Γ(a+1), i.e. x = (p·Γ(a+1))^(1/a).
2. Refine by Newton's method on the regularized lower incomplete gamma
   function P(a, x) − p (derivative x^(a−1)·e^(−x)/Γ(a)), keeping a bracket
   [lo, hi] with P(a, lo) < p ≤ P(a, hi) and bisecting whenever a Newton step
   leaves it, until the step is below 1e-14 relative.

P(a, x) itself is the series for x < a + 1 and the Lentz continued fraction
for Q = 1 − P otherwise (Numerical Recipes §6.2), in log space.

Merging replications (the core's merge) sums every count, so the merged count
is again Poisson and its interval exact; peaks and maxima take the maximum.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from msixcore import _core
from msixcore._core import InvalidArgument
from msixcore.simulation import RunResult, parse_result

__all__ = [
    "RatePerMillion",
    "chi2_quantile",
    "gamma_quantile",
    "garwood_interval",
    "merge_results",
    "per_million",
    "regularized_gamma_p",
]

_EPS = 1e-16
_TINY = 1e-300


def _max_iterations(a: float) -> int:
    return 200 + int(20 * math.sqrt(a))


def _log_prefactor(a: float, x: float) -> float:
    """log(xᵃ e^(−x) / Γ(a))."""
    return a * math.log(x) - x - math.lgamma(a)


def _series_p(a: float, x: float) -> float:
    term = total = 1.0 / a
    ap = a
    for _ in range(_max_iterations(a)):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(_log_prefactor(a, x))


def _continued_fraction_q(a: float, x: float) -> float:
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _max_iterations(a)):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return math.exp(_log_prefactor(a, x)) * h


def regularized_gamma_p(a: float, x: float) -> float:
    """P(a, x) = γ(a, x) / Γ(a), the CDF of a Gamma(a, 1) variable at x."""
    if a <= 0 or not math.isfinite(a):
        raise InvalidArgument(f"a: must be a finite shape > 0, got {a}")
    if x <= 0:
        return 0.0
    if math.isinf(x):
        return 1.0
    if x < a + 1.0:
        return min(_series_p(a, x), 1.0)
    return max(1.0 - _continued_fraction_q(a, x), 0.0)


def gamma_quantile(p: float, a: float) -> float:
    """The x with P(a, x) = p (quantile of Gamma(a, 1)), for 0 ≤ p < 1."""
    if not 0.0 <= p < 1.0:
        raise InvalidArgument(f"p: must be in [0, 1), got {p}")
    if a <= 0 or not math.isfinite(a):
        raise InvalidArgument(f"a: must be a finite shape > 0, got {a}")
    if p == 0.0:
        return 0.0
    nu = 2.0 * a
    z = NormalDist().inv_cdf(p)
    c = 2.0 / (9.0 * nu)
    x = nu * (1.0 - c + z * math.sqrt(c)) ** 3 / 2.0
    if not x > 0.0 or (a < 1.0 and p < 0.5):
        x = math.exp((math.log(p) + math.lgamma(a + 1.0)) / a)
    # Bracket the root: P(a, lo) < p <= P(a, hi).
    lo, hi = 0.0, max(x, 1e-300)
    while regularized_gamma_p(a, hi) < p:
        lo, hi = hi, hi * 2.0 + 1.0
    for _ in range(200):
        f = regularized_gamma_p(a, x) - p
        if f < 0:
            lo = max(lo, x)
        else:
            hi = min(hi, x)
        log_density = (a - 1.0) * math.log(x) - x - math.lgamma(a)
        density = math.exp(log_density) if log_density > -700 else 0.0
        step = f / density if density > 0 else math.inf
        nxt = x - step
        if not lo < nxt < hi:
            nxt = (lo + hi) / 2.0
        if abs(nxt - x) <= 1e-14 * max(abs(nxt), 1e-300):
            return nxt
        x = nxt
    return x


def chi2_quantile(p: float, df: float) -> float:
    """The p-quantile of the χ² distribution with ``df`` degrees of freedom."""
    if df <= 0:
        raise InvalidArgument(f"df: must be > 0, got {df}")
    return 2.0 * gamma_quantile(p, df / 2.0)


def garwood_interval(count: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) confidence interval for the mean of a Poisson variable
    observed as ``count``: ``garwood_interval(10) ≈ (4.795, 18.390)``."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidArgument(f"count: must be an integer ≥ 0, got {count!r}")
    if not 0.0 < confidence < 1.0:
        raise InvalidArgument(f"confidence: must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    lower = 0.0 if count == 0 else chi2_quantile(alpha / 2.0, 2.0 * count) / 2.0
    upper = chi2_quantile(1.0 - alpha / 2.0, 2.0 * count + 2.0) / 2.0
    return lower, upper


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
    if isinstance(resizes, bool) or not isinstance(resizes, int) or resizes < 0:
        raise InvalidArgument(f"resizes: must be an integer ≥ 0, got {resizes!r}")
    lower, upper = garwood_interval(count, confidence)
    if resizes == 0:
        return RatePerMillion(count, 0, None, None, None, confidence)
    scale = 1e6 / resizes
    return RatePerMillion(count, resizes, count * scale, lower * scale, upper * scale, confidence)


def merge_results(results: Sequence[RunResult]) -> RunResult:
    """Pool replications of one scenario × policy (different seeds) into one
    result, with the core's one merge: counts and times add up
    (``end_time_ns`` becomes the total simulated time); ``max_*`` fields,
    ``peak_usage`` and ``final_usage`` take the largest value."""
    if not results:
        raise InvalidArgument("results: nothing to merge")
    merged = _core.merge_run_results([json.dumps(r.to_json()) for r in results])
    return parse_result(merged)
