"""The scenarios on the real engine (skipped until ``msixcore._core`` has
``run_simulation``): compare's output, who loses and who does not, host
exhaustion, the storm against its closed form, determinism."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from msixcore import SCENARIOS, InvalidArgument, run_config, storm_closed_form_lost
from msixcore.cli import compare_jobs, main
from msixcore.report import make_record, results_json

RESIZE_SCENARIOS = ("storm", "managed-hotplug", "no-autoen", "subfunction", "fpga")


@pytest.fixture(scope="module")
def compare_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Any]:
    """One quick compare run (a tenth of the default resizes), by (scenario, policy)."""
    path = tmp_path_factory.mktemp("compare") / "compare.json"
    assert main(["compare", "--quick", "--seed", "1", "--json", str(path)]) == 0
    doc = json.loads(path.read_text())
    return {(r["scenario"], r["policy"]): r for r in doc["runs"]}


def test_compare_output_shape(compare_runs: dict[tuple[str, str], Any]) -> None:
    jobs = compare_jobs(1, None, True)
    assert list(compare_runs) == [(j.scenario, j.policy) for j in jobs]
    for run in compare_runs.values():
        assert run["fired"] == sum(run["outcomes"].values())
        assert set(run["stats"]) >= {"resizes", "resize_requests", "peak_usage", "stalls"}
    storm = compare_runs[("storm", "noresize")]
    assert storm["resizes"] == SCENARIOS["storm"].default_resizes // 10  # type: ignore[operator]


@pytest.mark.parametrize("name", RESIZE_SCENARIOS)
def test_noresize_loses(compare_runs: dict[tuple[str, str], Any], name: str) -> None:
    run = compare_runs[(name, "noresize")]
    assert run["outcomes"]["lost"] > 0, run["outcomes"]
    assert run["stats"]["resizes"] > 0
    assert run["stats"]["stalls"] > 0
    assert run["lost_per_million_resizes"]["lower"] > 0


@pytest.mark.parametrize("name", RESIZE_SCENARIOS)
@pytest.mark.parametrize("policy", ["upfront", "hypercall", "dynamic", "ims"])
def test_windowless_policies_lose_nothing(
    compare_runs: dict[tuple[str, str], Any], name: str, policy: str
) -> None:
    if policy not in SCENARIOS[name].policies:
        pytest.skip(f"{name} does not run under {policy}")
    run = compare_runs[(name, policy)]
    assert run["outcomes"]["lost"] == 0 and run["outcomes"]["intx"] == 0, run["outcomes"]
    assert run["outcomes"]["delivered"] > 0
    assert run["resizes"] == compare_runs[(name, "noresize")]["resizes"]
    if policy != "hypercall":
        assert run["stats"]["resizes"] == 0


def test_host_packing_exhaustion(compare_runs: dict[tuple[str, str], Any]) -> None:
    p = SCENARIOS["host-packing"].defaults()
    cpus, capacity = int(p["cpus"]), int(p["iommus"]) * int(p["irte_entries"])
    # Without reservation mode: CPU vectors run out (x86: ≤ 204 device vectors
    # per CPU), allocations fail and VMs are killed with the matrix full.
    no_res = compare_runs[("host-packing:no-reservation", "upfront")]["stats"]
    assert no_res["alloc_failures"] > 0 and no_res["guest_kills"] > 0
    assert 190 * cpus <= no_res["peak_usage"]["cpu_vectors"] <= 204 * cpus
    assert no_res["peak_usage"]["irtes"] < capacity
    # With it: CPU vectors only for used entries; the IRTEs run out instead.
    res = compare_runs[("host-packing:reservation", "upfront")]["stats"]
    assert res["alloc_failures"] > 0 and res["guest_kills"] > 0
    assert res["peak_usage"]["irtes"] == capacity
    assert res["peak_usage"]["cpu_vectors"] < 100 * cpus
    for variant in ("reservation", "no-reservation"):
        dyn = compare_runs[(f"host-packing:{variant}", "dynamic")]["stats"]
        assert dyn["alloc_failures"] == 0 and dyn["guest_kills"] == 0
        hyp = compare_runs[(f"host-packing:{variant}", "hypercall")]["stats"]
        assert hyp["guest_kills"] == 0


@pytest.mark.parametrize(
    ("params", "resizes", "seed"),
    [
        ({}, 4096, 7),
        # 15 whole groups of 32 devices and one request of the 16th (k = 15):
        # the whole last group's windows count (counting only the N requests
        # would be ~13 sd off).
        ({"devices": 32, "table": 16, "init": 1, "rate": 100_000}, 32 * 15 + 1, 8),
        (
            {"devices": 8, "table": 32, "init": 8, "rate": 10_000, "w_alloc": 2e-6, "w_free": 1e-6},
            2045,
            9,
        ),
    ],
)
def test_storm_matches_closed_form(params: dict[str, Any], resizes: int, seed: int) -> None:
    config = SCENARIOS["storm"].build(params, "noresize", seed, resizes)
    result = run_config(config)
    assert result.stats.resize_requests == resizes
    # Windows close before their requests complete (early enable: the
    # allocation follows W2), and the devices' groups close together.
    d = int(params.get("devices", 16))
    assert resizes <= result.stats.resizes <= -(-resizes // d) * d
    expect = storm_closed_form_lost(params, resizes)
    lost = result.outcomes["lost"]
    assert abs(lost - expect) < 4 * math.sqrt(expect), (lost, expect)


def _storm_json(seed: int) -> tuple[str, dict[str, int]]:
    storm = SCENARIOS["storm"]
    params = storm.resolve({"devices": 2, "table": 16})
    config = storm.build(params, "noresize", seed, 320)
    result = run_config(config)
    record = make_record("storm", "noresize", seed, params, result, config=config)
    return results_json([record]), result.outcomes


def test_same_seed_same_json_other_seed_other_counts() -> None:
    a, counts_a = _storm_json(42)
    b, _ = _storm_json(42)
    c, counts_c = _storm_json(43)
    assert a == b
    assert counts_a != counts_c
    assert c != a


def test_engine_rejects_bad_config_naming_the_field() -> None:
    config = SCENARIOS["storm"].build({"devices": 1, "table": 4, "init": 1}, "noresize", 0, 4)
    config["devices"][0]["entries"] = 4096
    with pytest.raises(InvalidArgument, match=r"devices\[0\]\.entries"):
        run_config(config)


def test_cli_run_writes_json(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    args = ["run", "fpga", "--policy", "noresize", "--resizes", "90", "--json", str(path)]
    assert main(args) == 0
    (run,) = json.loads(path.read_text())["runs"]
    assert run["resizes"] == 90 and run["outcomes"]["lost"] > 0


def test_hypercall_holds_no_more_cpu_vectors_than_dynamic() -> None:
    """The seed's resource argument: with reservation mode, a negotiated grant
    reserves the vectors and each is requested at the guest's unmask, so the
    hypercall holds no more CPU vectors at its peak than dynamic MSI-X."""
    fpga = SCENARIOS["fpga"]
    peak = {
        policy: run_config(fpga.build(None, policy, 1, 450)).stats.peak_usage
        for policy in ("hypercall", "dynamic")
    }
    assert peak["hypercall"].cpu_vectors <= peak["dynamic"].cpu_vectors == 9
    # It still takes an IRTE per granted vector: the whole table.
    assert peak["hypercall"].irtes == 32
