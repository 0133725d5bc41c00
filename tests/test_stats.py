"""Statistics: the Garwood interval (the core's) against its definition and
published values, per-million rates and merging of replications."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from msixcore import InvalidArgument
from msixcore.simulation import OUTCOMES, PhaseResult, RunResult, RunStats, Usage
from msixcore.stats import garwood_interval, merge_results, per_million


def poisson_cdf(n: int, mean: float) -> float:
    """P(X ≤ n) for X ~ Poisson(mean), by summing its terms (an independent check)."""
    term = math.exp(-mean)
    total = term
    for k in range(1, n + 1):
        term *= mean / k
        total += term
    return total


@pytest.mark.parametrize("n", [0, 1, 2, 5, 10, 37, 100, 300])
def test_garwood_limits_have_their_defining_tail_probabilities(n: int) -> None:
    # The upper limit is the mean under which n or fewer events has probability
    # α/2; the lower, the mean under which n or more has α/2.
    lo, hi = garwood_interval(n)
    assert poisson_cdf(n, hi) == pytest.approx(0.025, rel=1e-8)
    if n == 0:
        assert lo == 0.0
    else:
        assert 1.0 - poisson_cdf(n - 1, lo) == pytest.approx(0.025, rel=1e-8)


@pytest.mark.parametrize(
    ("n", "lower", "upper"),
    [
        # Exact Poisson 95 % limits (Garwood 1936; e.g. Ulm 1990 tables).
        (0, 0.0, 3.6889),
        (1, 0.025318, 5.5716),
        (2, 0.24218, 7.2247),
        (5, 1.6235, 11.668),
        (10, 4.7954, 18.390),
        (100, 81.364, 121.63),
    ],
)
def test_garwood_known_values(n: int, lower: float, upper: float) -> None:
    lo, hi = garwood_interval(n)
    assert lo == pytest.approx(lower, rel=2e-4, abs=1e-12)
    assert hi == pytest.approx(upper, rel=2e-4)


def test_garwood_large_count_is_near_normal() -> None:
    n = 537_600
    lo, hi = garwood_interval(n)
    assert lo == pytest.approx(n - 1.96 * math.sqrt(n), rel=1e-5)
    assert hi == pytest.approx(n + 1.96 * math.sqrt(n), rel=1e-5)


def test_garwood_rejects_bad_input() -> None:
    with pytest.raises(InvalidArgument, match=r"^count = -1 is out of range"):
        garwood_interval(-1)
    with pytest.raises(InvalidArgument, match=r"^count must be an int, not bool"):
        garwood_interval(True)
    with pytest.raises(InvalidArgument, match=r"confidence: must be in \(0, 1\)"):
        garwood_interval(3, 1.5)


def test_per_million_scales_count_and_interval() -> None:
    r = per_million(10, 20_000)
    assert r.value == pytest.approx(500.0)
    assert r.lower == pytest.approx(4.7954 * 50, rel=2e-4)
    assert r.upper == pytest.approx(18.390 * 50, rel=2e-4)
    assert r.to_json()["count"] == 10
    none = per_million(3, 0)
    assert none.value is None and none.lower is None and none.upper is None
    with pytest.raises(InvalidArgument, match=r"^resizes = -5 is out of range"):
        per_million(1, -5)


def _result(fired_lost: tuple[int, int], **stats: Any) -> RunResult:
    fired, lost = fired_lost
    outcomes = dict.fromkeys(OUTCOMES, 0)
    outcomes["lost"] = lost
    outcomes["delivered"] = fired - lost
    fields: dict[str, Any] = {f.name: 0 for f in dataclasses.fields(RunStats)}
    zero = {"cpu_vectors": 0, "irtes": 0, "irq_descs": 0, "kvm_routes": 0}
    fields |= {"final_usage": zero, "peak_usage": zero} | stats
    nothing = PhaseResult(0, 0, dict.fromkeys(OUTCOMES, 0))
    phases = {
        "probe": nothing,
        "runtime": PhaseResult(int(stats.get("resize_requests", 0)), fired, dict(outcomes)),
    }
    return RunResult(fired, outcomes, RunStats.from_json(fields), phases)


def test_merge_sums_counts_and_maxes_peaks() -> None:
    a = _result(
        (100, 7),
        resize_requests=10,
        stalls=2,
        max_queue_depth=5,
        peak_usage={"cpu_vectors": 40, "irtes": 100, "irq_descs": 100, "kvm_routes": 7},
    )
    b = _result(
        (50, 3),
        resize_requests=5,
        stalls=1,
        max_queue_depth=9,
        peak_usage={"cpu_vectors": 30, "irtes": 120, "irq_descs": 120, "kvm_routes": 9},
    )
    m = merge_results([a, b])
    assert m.fired == 150
    assert m.outcomes["lost"] == 10 and m.outcomes["delivered"] == 140
    assert list(m.outcomes) == list(OUTCOMES)
    assert m.stats.resize_requests == 15 and m.resizes == 15
    assert m.stats.stalls == 3
    assert m.stats.max_queue_depth == 9
    assert m.stats.peak_usage == Usage(cpu_vectors=40, irtes=120, irq_descs=120, kvm_routes=9)
    assert merge_results([a]) == a
    with pytest.raises(InvalidArgument):
        merge_results([])


@pytest.mark.parametrize(
    ("confidence", "error", "match"),
    [
        (10**400, InvalidArgument, "confidence = 1000.* is too large for a float"),
        (True, InvalidArgument, "confidence must be a number, not bool"),
        ("0.9", TypeError, "confidence must be a number, not str"),
        (float("nan"), InvalidArgument, r"confidence: must be in \(0, 1\)"),
    ],
)
def test_confidence_is_a_number_checked_in_one_place(
    confidence: object, error: type[Exception], match: str
) -> None:
    # A huge int was an OverflowError and True ran as 1.0 before the one conversion.
    with pytest.raises(error, match=match):
        garwood_interval(3, confidence)  # type: ignore[arg-type]
    with pytest.raises(error, match=match):
        per_million(3, 10, confidence)  # type: ignore[arg-type]


def test_confidence_takes_ints_and_numpy_floats() -> None:
    import numpy as np

    assert garwood_interval(3, np.float32(0.5)) == garwood_interval(3, 0.5)
    assert per_million(3, 10).confidence == 0.95
    with pytest.raises(InvalidArgument, match=r"must be in \(0, 1\)"):
        garwood_interval(3, 1)
