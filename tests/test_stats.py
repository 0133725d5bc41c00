"""Statistics: the gamma / χ² quantile against exact and tabulated values, the
Garwood interval, per-million rates and merging of replications."""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist
from typing import Any

import pytest

from msixcore import InvalidArgument
from msixcore.simulation import OUTCOMES, PhaseResult, RunResult, RunStats, Usage
from msixcore.stats import (
    chi2_quantile,
    gamma_quantile,
    garwood_interval,
    merge_results,
    per_million,
    regularized_gamma_p,
)

PS = [1e-9, 1e-4, 0.01, 0.025, 0.05, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99, 0.9999]


@pytest.mark.parametrize("p", PS)
def test_chi2_two_dof_is_exponential(p: float) -> None:
    # χ²₂ is Exp(1/2): its quantile is −2·ln(1 − p) exactly.
    assert chi2_quantile(p, 2) == pytest.approx(-2 * math.log1p(-p), rel=1e-11)


@pytest.mark.parametrize("p", PS)
def test_chi2_one_dof_is_squared_normal(p: float) -> None:
    z = NormalDist().inv_cdf((1 + p) / 2)
    assert chi2_quantile(p, 1) == pytest.approx(z * z, rel=1e-9)


@pytest.mark.parametrize(
    ("p", "df", "table"),
    [
        # Standard χ² table values (4-5 significant digits).
        (0.95, 1, 3.8415),
        (0.95, 2, 5.9915),
        (0.95, 10, 18.307),
        (0.05, 10, 3.9403),
        (0.95, 30, 43.773),
        (0.99, 5, 15.086),
        (0.01, 5, 0.55430),
        (0.975, 100, 129.56),
        (0.025, 100, 74.222),
        (0.95, 100, 124.34),
    ],
)
def test_chi2_table_values(p: float, df: float, table: float) -> None:
    assert chi2_quantile(p, df) == pytest.approx(table, rel=2e-4)


def poisson_tail_p(a: int, x: float) -> float:
    """P(a, x) for integer a via the Poisson identity 1 − e^−x Σ_{k<a} x^k/k!."""
    term, total = 1.0, 0.0
    for k in range(a):
        if k:
            term *= x / k
        total += term
    return 1.0 - math.exp(-x) * total


@pytest.mark.parametrize("a", [1, 2, 5, 10, 50])
@pytest.mark.parametrize("x", [0.1, 1.0, 3.0, 9.5, 40.0, 60.0])
def test_regularized_gamma_matches_poisson_identity(a: int, x: float) -> None:
    assert regularized_gamma_p(a, x) == pytest.approx(poisson_tail_p(a, x), abs=1e-13)


@pytest.mark.parametrize("x", [1e-6, 0.1, 1.0, 5.0, 30.0])
def test_regularized_gamma_half_is_erf(x: float) -> None:
    assert regularized_gamma_p(0.5, x) == pytest.approx(math.erf(math.sqrt(x)), rel=1e-13)


@pytest.mark.parametrize("a", [0.05, 0.5, 1.0, 3.7, 20.0, 1e3, 5e5])
@pytest.mark.parametrize("p", [1e-6, 0.025, 0.5, 0.975, 0.999])
def test_gamma_quantile_round_trips(a: float, p: float) -> None:
    x = gamma_quantile(p, a)
    assert x > 0
    assert regularized_gamma_p(a, x) == pytest.approx(p, rel=1e-9, abs=1e-14)


def test_quantile_edges_and_errors() -> None:
    assert gamma_quantile(0.0, 3.0) == 0.0
    with pytest.raises(InvalidArgument, match=r"^p:"):
        gamma_quantile(1.0, 3.0)
    with pytest.raises(InvalidArgument, match=r"^a:"):
        gamma_quantile(0.5, 0.0)
    with pytest.raises(InvalidArgument, match=r"^df:"):
        chi2_quantile(0.5, -1)


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
    with pytest.raises(InvalidArgument, match=r"^count:"):
        garwood_interval(-1)
    with pytest.raises(InvalidArgument, match=r"^confidence:"):
        garwood_interval(3, 1.5)


def test_per_million_scales_count_and_interval() -> None:
    r = per_million(10, 20_000)
    assert r.value == pytest.approx(500.0)
    assert r.lower == pytest.approx(4.7954 * 50, rel=2e-4)
    assert r.upper == pytest.approx(18.390 * 50, rel=2e-4)
    assert r.to_json()["count"] == 10
    none = per_million(3, 0)
    assert none.value is None and none.lower is None and none.upper is None
    with pytest.raises(InvalidArgument, match=r"^resizes:"):
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
