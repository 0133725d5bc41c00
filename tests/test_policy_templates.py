"""The Python templates of the built-in policies (``msixcore.policies``).

Every policy, built-in or Python, only decides which host operations a guest
action causes; the core runs them all through one path
(``rust/core/src/policy/step.rs``), failure modes included. So a run with a
template must give the built-in's books and statistics exactly: for every
built-in scenario, policy and failure mode, for the hypercall grants and IMS
stores, for guests that never negotiate, and on hosts that run out of CPU
vectors or IRTEs (where the failure modes, and ``rollback``, come into play).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import SMALL_NVME

from msixcore import _core
from msixcore.engine_config import FAILURE_MODES
from msixcore.policies import (
    DynamicPolicy,
    HypercallPolicy,
    ImsPolicy,
    NoresizePolicy,
    QemuMsix,
    UpfrontPolicy,
    disable_index,
    enable_no_vec,
    enable_vectors,
    intx_disable,
    intx_enable,
    set_signalling,
    switch_to_userspace,
    template,
)
from msixcore.scenarios import SCENARIOS
from msixcore.versions import DEFAULT_QEMU

SEED = 7
RESIZES = 64
"""Resize target of the resize-bounded scenarios: several enable cycles each."""

SMALL: dict[str, dict[str, Any]] = {
    "nvme": SMALL_NVME,
    # 4 devices × 16 entries: a whole storm cycle is 64 resizes.
    "storm": {"devices": 4, "table": 16},
    # Every device started by 10 ms: still past every exhaustion point, in 20 ms.
    "host-packing": {"vm_gap": 1e-4, "device_gap": 1e-4, "duration": 0.02},
}
"""Parameter overrides that keep every run to a few milliseconds of wall time."""

TIGHT_IRTES = 4
"""IOMMU size of the exhausted-host runs: fewer IRTEs than any device needs."""


@dataclass(frozen=True)
class Case:
    """One run compared between the built-in and its template."""

    scenario: str
    variant: str | None
    policy: str
    on_failure: str
    options: tuple[tuple[str, Any], ...] = ()
    """Overrides of the config's ``policy`` section."""
    unaware: bool = False
    """Drop the program's ``negotiate`` steps: a guest that never negotiates."""
    tight: bool = False
    """A host with :data:`TIGHT_IRTES` IRTEs: allocations must fail."""
    qemu: str = DEFAULT_QEMU
    """QEMU's version (before 8.2 vector 0 is set up at enable)."""

    @property
    def id(self) -> str:
        name = self.scenario + (f":{self.variant}" if self.variant else "")
        opts = [f"{k}={v}" for k, v in self.options]
        opts += ["unaware"] * self.unaware + ["tight"] * self.tight
        opts += [f"qemu{self.qemu}"] * (self.qemu != DEFAULT_QEMU)
        return "-".join([name, self.policy, *opts, self.on_failure])

    def config(self) -> dict[str, Any]:
        s = SCENARIOS[self.scenario]
        params = {**(s.variant(self.variant) if self.variant else {}), **SMALL.get(s.name, {})}
        params["qemu"] = self.qemu
        cfg = s.build(params, self.policy, seed=SEED, resizes=None if s.time_bounded else RESIZES)
        cfg["policy"]["on_failure"] = self.on_failure
        cfg["policy"].update(self.options)
        if self.tight:
            cfg["host"]["irte_entries"] = TIGHT_IRTES
        if self.unaware:
            for d in cfg["devices"]:
                d["program"] = [st for st in d["program"] if st["action"]["op"] != "negotiate"]
        return cfg


def _scenario_variants() -> list[tuple[str, str | None]]:
    """Every built-in scenario, once per variant (``None``: it has none)."""
    out: list[tuple[str, str | None]] = []
    for s in SCENARIOS.values():
        variants: list[str | None] = [*s.variants] or [None]
        out += [(s.name, v) for v in variants]
    return out


def _intel_host(name: str, variant: str | None) -> bool:
    """Whether the scenario's host has Intel IOMMUs, whose IRTE count the
    exhausted-host runs shrink (an AMD host has a table per device)."""
    s = SCENARIOS[name]
    params = s.resolve(s.variant(variant) if variant else {})
    return params.get("iommu", "intel") == "intel"


def _cases() -> tuple[list[Case], list[Case], list[Case], list[Case]]:
    """(plain runs, refused negotiations, exhausted hosts, host-packing exhaustion)."""
    plain: list[Case] = []
    refused: list[Case] = []
    tight: list[Case] = []
    packing: list[Case] = []
    for name, variant in _scenario_variants():
        policies = SCENARIOS[name].policies
        for mode in FAILURE_MODES:
            for policy in policies:
                case = Case(name, variant, policy, mode)
                (packing if name == "host-packing" and policy == "upfront" else plain).append(case)
                if name != "host-packing" and _intel_host(name, variant):
                    tight.append(Case(name, variant, policy, mode, tight=True))
                if policy not in ("dynamic", "ims"):
                    # QEMU before 8.2 (dynamic MSI-X needs 8.2).
                    old = Case(name, variant, policy, mode, qemu="7.2")
                    (packing if name == "host-packing" and policy == "upfront" else plain).append(
                        old
                    )
            if "hypercall" in policies:
                n = (("grant", "n"), ("grant_n", 2))
                plain.append(Case(name, variant, "hypercall", mode, n))
                refused.append(Case(name, variant, "hypercall", mode, (("grant", "refuse"),)))
                if name != "host-packing":
                    plain.append(Case(name, variant, "hypercall", mode, unaware=True))
                    tight.append(Case(name, variant, "hypercall", mode, unaware=True, tight=True))
            if "ims" in policies:
                ram = (("ims_store", "guest_ram"),)
                plain.append(Case(name, variant, "ims", mode, ram))
                plain.append(Case(name, variant, "ims", mode, ram, unaware=True))
                tight.append(Case(name, variant, "ims", mode, ram, tight=True))
    return plain, refused, tight, packing


PLAIN, REFUSED, TIGHT, PACKING = _cases()


def _run_both(case: Case) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parsed results of the built-in and of its template on ``case``."""
    cfg = case.config()
    text = json.dumps(cfg)
    builtin = json.loads(_core.run_simulation(text))
    entries = [d["entries"] for d in cfg["devices"]]
    policy = template(cfg["policy"], entries, qemu=cfg.get("qemu", DEFAULT_QEMU))
    python = json.loads(_core.run_simulation(text, policy))
    assert set(builtin) >= {"books", "stats"}
    assert python["books"] == builtin["books"]
    assert python["stats"] == builtin["stats"]
    return builtin, python


@pytest.mark.parametrize("case", PLAIN, ids=lambda c: c.id)
def test_template_matches_builtin(case: Case) -> None:
    builtin, python = _run_both(case)
    assert builtin["books"]["fired"] > 0
    assert python["books"]["fired"] > 0


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.id)
def test_template_matches_builtin_when_the_host_refuses(case: Case) -> None:
    builtin, _ = _run_both(case)
    # Every negotiation refused: the drivers run without MSI-X.
    assert builtin["stats"]["negotiations_refused"] > 0
    assert builtin["books"]["fired"] == 0


@pytest.mark.parametrize("case", TIGHT, ids=lambda c: c.id)
def test_template_matches_builtin_on_an_exhausted_host(case: Case) -> None:
    builtin, _ = _run_both(case)
    stats = builtin["stats"]
    assert stats["alloc_failures"] > 0
    hypercall_host = case.policy == "hypercall" or ("ims_store", "guest_ram") in case.options
    negotiated = hypercall_host and not case.unaware
    if negotiated:
        # The failures surface at negotiation: the host grants what fits.
        assert stats["guest_kills"] == 0
        assert builtin["books"]["fired"] > 0
    elif case.on_failure == "kill":
        assert stats["guest_kills"] > 0
    elif case.on_failure == "fail_request":
        assert stats["unmasks_refused"] + stats["enables_refused"] > 0


@pytest.mark.parametrize("case", PACKING, ids=lambda c: c.id)
def test_template_matches_builtin_under_host_packing(case: Case) -> None:
    builtin, _ = _run_both(case)
    stats = builtin["stats"]
    assert builtin["books"]["fired"] > 0
    assert stats["alloc_failures"] > 0
    p = SCENARIOS["host-packing"].resolve(
        {**SCENARIOS["host-packing"].variant(str(case.variant)), **SMALL["host-packing"]}
    )
    irtes = int(p["iommus"]) * int(p["irte_entries"])
    if p["request_all"]:
        # Every entry is requested and holds a CPU vector and a KVM route:
        # a VM's routes run out, or (VMs overlapping here) the CPUs' vectors
        # (at most 204 each, above 200 when full).
        peak = stats["peak_usage"]
        assert peak["kvm_routes"] == p["kvm_routes"] or peak["cpu_vectors"] > 200 * p["cpus"]
    elif p["reservation_mode"]:
        # Every entry of every table takes an IRTE: the IOMMUs fill up.
        assert stats["peak_usage"]["irtes"] == irtes
    else:
        # Every entry takes a CPU vector: the CPUs fill up, IRTEs to spare.
        assert stats["peak_usage"]["irtes"] < irtes
        assert stats["peak_usage"]["cpu_vectors"] == stats["peak_usage"]["irtes"]


def test_cases_cover_every_scenario_policy_and_failure_mode() -> None:
    runs = PLAIN + REFUSED + TIGHT + PACKING
    covered = {(c.scenario, c.variant, c.policy, c.on_failure) for c in runs if not c.options}
    for name, variant in _scenario_variants():
        for policy in SCENARIOS[name].policies:
            for mode in FAILURE_MODES:
                assert (name, variant, policy, mode) in covered
    assert {c.variant for c in PACKING} == set(SCENARIOS["host-packing"].variants)
    assert len({c.id for c in runs}) == len(runs)


def test_a_different_policy_does_not_match() -> None:
    """The comparison is live: a template of another policy gives other stats."""
    cfg = Case("storm", None, "noresize", "qemu").config()
    text = json.dumps(cfg)
    builtin = json.loads(_core.run_simulation(text))
    other = json.loads(
        _core.run_simulation(text, DynamicPolicy([d["entries"] for d in cfg["devices"]]))
    )
    assert other["stats"] != builtin["stats"]
    sim = _core.Simulation(text, NoresizePolicy())
    assert sim.policy == "py-noresize"


def test_template_names_and_kinds() -> None:
    entries = [4, 8]
    expect = {
        "noresize": NoresizePolicy,
        "upfront": UpfrontPolicy,
        "dynamic": DynamicPolicy,
        "hypercall": HypercallPolicy,
        "ims": ImsPolicy,
    }
    for kind, cls in expect.items():
        policy = template({"kind": kind}, entries)
        assert isinstance(policy, cls)
        assert policy.name == f"py-{kind}"
    ram = template({"kind": "ims", "ims_store": "guest_ram"}, entries)
    assert isinstance(ram, ImsPolicy)
    assert isinstance(ram.inner, HypercallPolicy)
    assert ram.inner.fallback is None
    with pytest.raises(_core.InvalidArgument, match="teleport"):
        template({"kind": "teleport"}, entries)
    with pytest.raises(_core.InvalidArgument, match="grant"):
        HypercallPolicy("some")  # type: ignore[arg-type]
    with pytest.raises(_core.InvalidArgument, match="ims_store"):
        ImsPolicy("disk")  # type: ignore[arg-type]


def test_qemu_msix_nvme_probe_trace() -> None:
    """The NVMe probe order of ``vfio.rs``'s ``nvme_probe_trace_matches_qemu``."""
    q = QemuMsix(4, noresize=True)

    def rs(bits: list[bool]) -> object:
        return enable_vectors(bits, closes_resize=True)

    ops = q.linux_enable()
    ops += q.write_entry_mask(0, False)
    ops += q.write_entry_mask(0, True)
    ops += q.linux_disable()
    ops += q.linux_enable()
    for k in range(4):
        ops += q.write_entry_mask(k, False)
    assert ops == [
        intx_disable(),
        enable_no_vec(),
        disable_index(),
        rs([True]),
        switch_to_userspace(0),
        switch_to_userspace(0),
        disable_index(),
        intx_enable(),
        intx_disable(),
        enable_no_vec(),
        disable_index(),
        rs([True]),
        disable_index(),
        rs([True, True]),
        disable_index(),
        rs([True, True, True]),
        disable_index(),
        rs([True, True, True, True]),
    ]


def test_qemu_msix_upfront_and_release_never_shrink() -> None:
    q = QemuMsix(4, noresize=True, upfront=8)
    assert q.linux_enable() == [intx_disable(), enable_vectors([False] * 4)]
    assert q.write_entry_mask(3, False) == [set_signalling(3)]
    assert q.write_entry_mask(3, True) == [switch_to_userspace(3)]
    assert q.nr_vectors == 4
    with pytest.raises(_core.InvalidArgument):
        q.write_entry_mask(4, False)
    with pytest.raises(_core.InvalidArgument):
        QemuMsix(0, noresize=True)


def test_rollback_restores_the_state_before_the_action() -> None:
    p = NoresizePolicy([4])
    p.enable(0)
    p.unmask(0, 0)
    assert p.unmask(0, 2) == [
        disable_index(),
        enable_vectors([True, False, True], closes_resize=True),
    ]
    p.rollback(0)
    # Entry 2 never got used: unmasking it again is the same resize.
    assert p.unmask(0, 2) == [
        disable_index(),
        enable_vectors([True, False, True], closes_resize=True),
    ]
    p.rollback(0)
    with pytest.raises(RuntimeError, match="without an action"):
        p.rollback(0)


@pytest.mark.parametrize("policy", ["noresize", "dynamic", "hypercall"])
def test_templates_without_table_sizes_match(policy: str) -> None:
    """Without ``entries`` a template assumes the largest table (2048 entries),
    which changes no operation of these policies."""
    cfg = Case("subfunction", None, policy, "qemu", unaware=True).config()
    text = json.dumps(cfg)
    builtin = json.loads(_core.run_simulation(text))
    sized = {"noresize": NoresizePolicy, "dynamic": DynamicPolicy, "hypercall": HypercallPolicy}
    python = json.loads(_core.run_simulation(text, sized[policy]()))
    assert python == builtin
    assert builtin["books"]["fired"] > 0
