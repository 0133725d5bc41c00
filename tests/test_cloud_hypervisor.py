"""host-packing's ``cloud-hypervisor`` variant: a VMM that requests every
entry of a 257-entry table at enable, devices hot-plugged one after another.
Each requested vector holds a CPU vector, an IRTE and one of the VM's KVM
routes; a killed VM gives all of them back."""

from __future__ import annotations

from typing import Any

import pytest

from msixcore import SCENARIOS, InvalidArgument
from msixcore.simulation import RunResult, Usage, run_config

TABLE = 257
ROUTES = 4096


def _run(policy: str, **overrides: Any) -> RunResult:
    hp = SCENARIOS["host-packing"]
    return run_config(hp.build({**hp.variant("cloud-hypervisor"), **overrides}, policy, 1))


def test_the_variant_is_what_the_docs_say() -> None:
    p = SCENARIOS["host-packing"].resolve(SCENARIOS["host-packing"].variant("cloud-hypervisor"))
    assert (p["table"], p["request_all"], p["kvm_routes"]) == (TABLE, True, ROUTES)
    # 15 devices fit in a VM's routes, the 16th does not.
    assert 15 * TABLE <= ROUTES < 16 * TABLE < int(p["devices_per_vm"]) * TABLE


def test_upfront_runs_out_of_kvm_routes_at_each_vms_16th_device() -> None:
    r = _run("upfront")
    s = r.stats
    vms = 4
    # One failure per VM, each killing it.
    assert (s.alloc_failures, s.guest_kills) == (vms, vms)
    # The VMs do not overlap (20 ms apart, dead by 16 ms): the host peaks at
    # one VM's routes, every route a CPU vector.
    assert s.peak_usage.kvm_routes == ROUTES
    assert s.peak_usage.cpu_vectors == ROUTES
    # Every killed VM's VMM exit freed its devices: nothing is left.
    assert s.final_usage == Usage(cpu_vectors=0, irtes=0, irq_descs=0, kvm_routes=0)
    assert sum(r.outcomes.values()) == r.fired


@pytest.mark.parametrize("limit", [15 * TABLE, 15 * TABLE - 1])
def test_the_route_limit_is_the_config_s(limit: int) -> None:
    s = _run("upfront", kvm_routes=limit).stats
    assert s.peak_usage.kvm_routes == limit
    assert s.guest_kills == 4


def test_with_routes_to_spare_the_cpu_vectors_run_out() -> None:
    s = _run("upfront", kvm_routes=1 << 20).stats
    assert s.alloc_failures > 0
    # Two VMs overlap: more routes than one VM's KVM would allow, and the
    # 64 CPUs' vectors full (at most 204 each).
    assert s.peak_usage.kvm_routes > ROUTES
    assert 200 * 64 < s.peak_usage.cpu_vectors <= 204 * 64


@pytest.mark.parametrize("policy", ["hypercall", "dynamic"])
def test_requesting_only_used_vectors_fits(policy: str) -> None:
    s = _run(policy).stats
    assert (s.alloc_failures, s.guest_kills) == (0, 0)
    # 4 used vectors per device, 80 devices; 20 devices per VM.
    assert s.peak_usage.cpu_vectors == 4 * 80
    assert s.peak_usage.kvm_routes == 4 * 20


def test_a_zero_route_limit_is_refused() -> None:
    hp = SCENARIOS["host-packing"]
    cfg = hp.build(hp.variant("cloud-hypervisor"), "upfront", 1)
    cfg["host"]["kvm_routes_per_vm"] = 0
    with pytest.raises(InvalidArgument, match=r"host\.kvm_routes_per_vm"):
        run_config(cfg)
