"""Data-driven scenarios: named, parameterised device workloads that build
complete engine configs (``rust/core/src/config.rs``).

A :class:`Scenario` has typed parameters in user units (seconds, per second)
with defaults and bounds, the policies it applies to, optional named variants
(parameter presets, addressed as ``"name:variant"``) and a builder.
:meth:`Scenario.build` resolves and validates parameters and returns a config
dict ready for :func:`msixcore.run_config`.

Built-ins (:data:`SCENARIOS`):

- ``storm``: the canonical resize storm of docs/storm.md, with a closed form
  for its expected loss (:func:`storm_closed_form_lost`).
- ``managed-hotplug``, ``no-autoen``, ``subfunction``, ``fpga``: the seed's four
  late-unmask driver patterns (docs/scenarios.md), each repeating (VM reboot,
  driver reload, FPGA re-probe) so a run collects many resizes.
- ``nvme``: a passed-through NVMe controller with closed-loop I/O queues.
- ``nic``: an SR-IOV NIC VF growing its channels at runtime.
- ``host-packing``: many VMs' devices allocated upfront on one host, with and
  without x86 reservation mode, and a Cloud Hypervisor variant: CPU-vector,
  IRTE and KVM-route exhaustion.
- ``spoof``: a malicious device forging MSI writes against other devices,
  on an Intel and an AMD host (docs/spoof.md).

Common modelling choices:

- Every device program starts with ``negotiate(minvec, maxvec)``: Linux's
  ``pci_alloc_irq_vectors`` / ``pci_enable_msix_range``. It is local and free
  under every policy but ``hypercall``, where it is the ``MSIX_ENABLE`` call.
- Repetition needs MSI-X disabled: QEMU's ``nr_vectors`` only grows until the
  guest disables MSI-X, so masking and unmasking again never resizes twice.
- Event semantics default to ``edge`` (an MSI fired while MSI-X Enable is clear
  is dropped): right for SR-IOV VFs and other functions without an INTx pin,
  which is what is usually passed through. A function with a pin would use
  ``edge_intx`` (booked as ``intx``: nobody handles it on the host); a
  level/cause-latched or PBA-compliant device is only delayed (``level``,
  ``pba``). Every scenario takes ``semantics`` as a parameter.
- The host: 32 CPUs for the storm (its 16×64 vectors firing at up to 20 M/s
  keep 1 µs handlers at most 64 % busy), 16 for the seed patterns; reservation
  mode on, one Intel IOMMU with 65,536 IRTEs, 1 µs handler service time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from msixcore import _core
from msixcore._core import InvalidArgument
from msixcore.engine_config import (
    DEFAULTS,
    FAILURE_MODES,
    MAX_DEVICES,
    MAX_RATE,
    MAX_TABLE_ENTRIES_PER_RUN,
    POLICIES,
    SEMANTICS,
    SPOOF_KINDS,
    config_json,
)
from msixcore.host_profiles import PROFILE_FIELDS, PROFILE_NAMES, profile_timing
from msixcore.nesting import check_depth
from msixcore.parameters import Param, ParamValue, format_seconds, to_ns
from msixcore.versions import DEFAULT_KERNEL, DEFAULT_QEMU
from msixcore.workload import analyse

__all__ = [
    "SCENARIOS",
    "Scenario",
    "get_scenario",
    "storm_closed_form_lost",
]

Params = Mapping[str, ParamValue]
Builder = Callable[[Params, str], dict[str, Any]]
Check = Callable[[Params], None]

_MAX_SECONDS = 86_400.0
_MAX_SEED = (1 << 64) - 1


def _count(name: str, default: int, doc: str, lo: int = 1, hi: int = 2048) -> Param:
    return Param(name, "count", default, doc, minimum=lo, maximum=hi)


def _seconds(name: str, default: float, doc: str, positive: bool = False) -> Param:
    return Param(
        name, "seconds", default, doc, minimum=0.0, maximum=_MAX_SECONDS, positive=positive
    )


def _rate(name: str, default: float, doc: str) -> Param:
    return Param(name, "rate", default, doc, minimum=0.0, maximum=MAX_RATE)


def _timing_params(
    w0: float = 20e-6,
    w_free: float = 0.5e-6,
    w_alloc: float = 0.5e-6,
    semantics: str = "edge",
    host_profile: str | None = "custom",
) -> tuple[Param, ...]:
    """The host's resize steps, the kernel and QEMU, and the device's semantics:
    parameters of every scenario (docs/versions.md); ``host_profile``'s
    default, or ``None`` for none (the storm keeps its closed form's three
    timings)."""
    profile = Param(
        "host_profile",
        "choice",
        host_profile or "custom",
        "host step costs: custom (w0, w_free, w_alloc; other steps 0), or the published "
        "quiet or busy profile (docs/calibration.md), which sets every step",
        choices=PROFILE_NAMES,
    )
    return (
        *((profile,) if host_profile else ()),
        _seconds("w0", w0, "resize window W2: fixed part (the VFIO ioctl round trip)"),
        _seconds("w_free", w_free, "per old vector freed after MSI-X Enable is cleared"),
        _seconds(
            "w_alloc",
            w_alloc,
            "per new vector allocated (inside W2 without early enable, function-masked with it)",
        ),
        Param(
            "kernel",
            "version",
            DEFAULT_KERNEL,
            "host kernel (early enable 5.14+, VFIO dynamic MSI-X 6.5+, reservation mode 4.15+)",
        ),
        Param(
            "qemu", "version", DEFAULT_QEMU, "QEMU (8.2+: no vector 0 pre-request, dynamic MSI-X)"
        ),
        Param(
            "early_enable",
            "choice",
            "auto",
            "MSI-X enabled and function-masked before allocation: auto (as the kernel), "
            "true (a stable backport) or false",
            choices=("auto", "true", "false"),
        ),
        Param(
            "semantics",
            "choice",
            semantics,
            "device events while MSI-X is disabled: edge (lost), edge_intx (to INTx), "
            "level or pba (delayed)",
            choices=SEMANTICS,
        ),
    )


@dataclass(frozen=True)
class Scenario:
    """A named, parameterised workload that builds engine configs.

    ``default_resizes`` is the resize-request target of a default run (the
    engine stops after that many complete); ``None`` marks a scenario that
    runs for a fixed simulated time instead (it takes no resize target).
    """

    name: str
    description: str
    params: tuple[Param, ...]
    policies: tuple[str, ...]
    builder: Builder = field(repr=False, compare=False)
    default_resizes: int | None = None
    variants: Mapping[str, Mapping[str, ParamValue]] = field(default_factory=dict)
    check: Check | None = field(default=None, repr=False, compare=False)
    notes: str = ""
    """Design notes: why the defaults are what they are."""
    quick: Mapping[str, ParamValue] = field(default_factory=dict)
    """Overrides for ``compare --quick`` of a scenario that runs for a fixed
    simulated time (a resize-bounded one runs a tenth of its resizes)."""

    def param(self, name: str) -> Param:
        """The parameter called ``name``; ``InvalidArgument`` if unknown."""
        for p in self.params:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.params)
        raise InvalidArgument(f"{name}: unknown parameter of {self.name} (known: {known})")

    def defaults(self) -> dict[str, ParamValue]:
        """Every parameter at its default."""
        return {p.name: p.default for p in self.params}

    def variant(self, name: str) -> Mapping[str, ParamValue]:
        """The parameter overrides of variant ``name``."""
        if name not in self.variants:
            known = ", ".join(self.variants) or "none"
            raise InvalidArgument(
                f"variant: {self.name} has no variant {name!r} (variants: {known})"
            )
        return self.variants[name]

    def resolve(self, overrides: Mapping[str, object] | None = None) -> dict[str, ParamValue]:
        """Defaults updated with ``overrides`` (values in user units or
        strings), each parsed and checked, then the cross-parameter checks."""
        values = self.defaults()
        check_depth(overrides, "params")
        for name, raw in (overrides or {}).items():
            values[name] = self.param(name).parse(raw)
        # A named profile sets the resize timings: one set away from its
        # default would be silently ignored.
        profile = values.get("host_profile", "custom")
        for name in PROFILE_FIELDS:
            if profile != "custom" and values[name] != self.param(name).default:
                raise InvalidArgument(
                    f"{name}: host_profile={profile} sets it; use host_profile=custom to set "
                    f"{name} yourself"
                )
        if self.check is not None:
            try:
                self.check(values)
            except _Conflict as exc:
                given = overrides or {}
                lead = next((n for n in exc.involved if n in given), exc.involved[0])
                raise InvalidArgument(f"{lead}: {exc.msg}") from None
        return values

    @property
    def time_bounded(self) -> bool:
        """Whether runs end at a fixed simulated time rather than a resize count."""
        return self.default_resizes is None

    def build(
        self,
        params: Mapping[str, object] | None,
        policy: str,
        seed: int,
        resizes: int | None = None,
    ) -> dict[str, Any]:
        """A complete engine config for these parameters, policy and seed.

        ``resizes`` sets ``stop.max_resizes`` (default: ``default_resizes``)
        together with a generous ``stop.max_time_ns`` safety bound.
        """
        values = self.resolve(params)
        if policy not in POLICIES:
            raise InvalidArgument(
                f"policy: unknown policy {policy!r} (known: {', '.join(POLICIES)})"
            )
        if policy not in self.policies:
            raise InvalidArgument(
                f"policy: {self.name} applies to {', '.join(self.policies)}, got {policy!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
            raise InvalidArgument(f"seed: must be an integer 0..=2^64-1, got {seed!r}")
        config = self.builder(values, policy)
        config["seed"] = seed
        if self.default_resizes is None:
            if resizes is not None:
                raise InvalidArgument(
                    f"resizes: {self.name} runs for a fixed simulated time and takes no "
                    "resize target"
                )
        else:
            target = self.default_resizes if resizes is None else resizes
            if isinstance(target, bool) or not isinstance(target, int) or target < 1:
                raise InvalidArgument(f"resizes: must be ≥ 1, got {target!r}")
            bound = analyse(config).time_bound_ns(target)
            config["stop"] = {"max_resizes": target, "max_time_ns": bound}
        # Validated once, by the engine, when the config runs.
        return config


# --------------------------------------------------------------------------
# Config pieces


def _step(op: str, delay_ns: int = 0, **fields: int) -> dict[str, Any]:
    return {"delay_ns": delay_ns, "action": {"op": op, **fields}}


_RUNTIME: dict[str, Any] = {"delay_ns": 0, "action": {"op": "phase", "phase": "runtime"}}
"""The step that ends the driver's probe phase: what follows is production."""


def _device(
    entries: int,
    program: list[dict[str, Any]],
    *,
    rate: float,
    semantics: str,
    rates: list[list[float]] | None = None,
    vm: int = 0,
    repeat: bool = True,
    start_ns: int = 0,
) -> dict[str, Any]:
    """A device; fields at the engine's defaults are left out."""
    device: dict[str, Any] = {
        "entries": entries,
        "semantics": semantics,
        "rate": float(rate),
        "program": program,
        "repeat": repeat,
    }
    if rates:
        device["rates"] = rates
    if vm:
        device["vm"] = vm
    if start_ns:
        device["start_ns"] = start_ns
    return device


def _config(
    policy: str,
    devices: list[dict[str, Any]],
    p: Params,
    *,
    ncpus: int,
    reservation_mode: bool = True,
    iommus: int = 1,
    irte_entries: int = 65_536,
    on_failure: str = "qemu",
) -> dict[str, Any]:
    """A config with the fields a scenario sets; every other field is the
    engine's default (``msixcore.engine_config.DEFAULTS``). The host handler
    takes 1 µs per interrupt."""
    host: dict[str, Any] = {"ncpus": ncpus}
    if not reservation_mode:
        host["reservation_mode"] = False
    if iommus != 1:
        host["iommus"] = iommus
    if irte_entries != 65_536:
        host["irte_entries"] = irte_entries
    if p["early_enable"] != "auto":
        host["early_enable"] = p["early_enable"] == "true"
    policy_cfg: dict[str, Any] = {"kind": policy}
    if on_failure != "qemu":
        policy_cfg["on_failure"] = on_failure
    config: dict[str, Any] = {
        "host": host,
        "policy": policy_cfg,
        "timing": _timing(p),
        "devices": devices,
        "handler": {"service_ns": 1_000},
    }
    for version in ("kernel", "qemu"):
        if p[version] != DEFAULTS[version]:
            config[version] = p[version]
    return config


def _timing(p: Params) -> dict[str, int]:
    """The config's ``timing``: the named host profile's, or the scenario's
    own three resize timings."""
    profile = str(p.get("host_profile", "custom"))
    if profile != "custom":
        return profile_timing(profile)
    return {"w0_ns": _ns(p, "w0"), "w_free_ns": _ns(p, "w_free"), "w_alloc_ns": _ns(p, "w_alloc")}


def _int(p: Params, name: str) -> int:
    return int(p[name])


def _ns(p: Params, name: str) -> int:
    return to_ns(float(p[name]))


class _Conflict(InvalidArgument):
    """A cross-parameter check failed; ``involved`` names every parameter in
    it, so :meth:`Scenario.resolve` can lead with one the user set."""

    def __init__(self, involved: tuple[str, ...], msg: str) -> None:
        super().__init__(msg)
        self.involved = involved
        self.msg = msg


def _need(cond: bool, involved: str | tuple[str, ...], msg: str) -> None:
    """Fail a check over the parameters ``involved`` (the first is named when
    the user set none of them)."""
    if not cond:
        raise _Conflict((involved,) if isinstance(involved, str) else involved, msg)


# --------------------------------------------------------------------------
# storm (docs/storm.md)


def _storm_check(p: Params) -> None:
    init, table = _int(p, "init"), _int(p, "table")
    _need(init <= table, ("init", "table"), f"init ({init}) must be ≤ table ({table})")


_STORM_DEFAULTS: Mapping[str, Any] = json.loads(_core.storm_defaults())
"""The core's storm at its defaults (``rust/core/src/storm.rs``): the one definition."""


def _storm_params(p: Params) -> str:
    """Scenario parameters (user units) as the core's storm parameters."""
    return config_json(
        {
            "devices": _int(p, "devices"),
            "table": _int(p, "table"),
            "init": _int(p, "init"),
            "gap_ns": _ns(p, "gap"),
            "rate": float(p["rate"]),
            "w0_ns": _ns(p, "w0"),
            "w_free_ns": _ns(p, "w_free"),
            "w_alloc_ns": _ns(p, "w_alloc"),
            "semantics": str(p["semantics"]),
            "kernel": str(p["kernel"]),
            "qemu": str(p["qemu"]),
            "early_enable": None if p["early_enable"] == "auto" else p["early_enable"] == "true",
        }
    )


def _storm(p: Params, policy: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(_core.storm_config(_storm_params(p), policy))
    return config


def storm_closed_form_lost(params: Mapping[str, object] | None, resizes: int) -> float:
    """Expected interrupts lost by a ``noresize`` storm run to ``resizes``
    requests (edge semantics): ``rate · Σ k·W2(k)`` over the resizes whose
    windows have closed, with ``W2(k) = w0 + w_free·k`` under early enable and
    ``w0 + w_free·k + w_alloc·(k+1)`` without (docs/storm.md), computed by the
    core."""
    lost: float = _core.storm_closed_form_lost(_storm_params(STORM.resolve(params)), resizes)
    return lost


STORM = Scenario(
    name="storm",
    description=(
        "the canonical resize storm: D devices enable MSI-X, unmask entries 0..T-1 in "
        "ascending order (the first `init` back to back, the rest `gap` apart), disable "
        "one `gap` later, and start again; every live vector fires at `rate`"
    ),
    params=(
        _count("devices", _STORM_DEFAULTS["devices"], "devices (D), each its own VM", hi=4096),
        _count("table", _STORM_DEFAULTS["table"], "MSI-X table entries per device (T)"),
        _count(
            "init",
            _STORM_DEFAULTS["init"],
            "entries unmasked back to back at the start of a cycle",
            lo=0,
        ),
        _seconds(
            "gap",
            _STORM_DEFAULTS["gap_ns"] / 1e9,
            "time between later unmasks, and before the disable",
            True,
        ),
        _rate("rate", _STORM_DEFAULTS["rate"], "Poisson rate of every live vector"),
        *_timing_params(
            _STORM_DEFAULTS["w0_ns"] / 1e9,
            _STORM_DEFAULTS["w_free_ns"] / 1e9,
            _STORM_DEFAULTS["w_alloc_ns"] / 1e9,
            _STORM_DEFAULTS["semantics"],
            host_profile=None,
        ),
    ),
    policies=("noresize", "upfront", "hypercall", "dynamic"),
    builder=_storm,
    default_resizes=20_480,
    check=_storm_check,
    notes=(
        "Under noresize every unmask of entry k is a resize whose window W2 lasts "
        "w0 + w_free·k with early enable (kernel 5.14+) and w0 + w_free·k + w_alloc·(k+1) "
        "without; the k live vectors lose every fire inside it: closed form rate · Σ k·W2(k), "
        "about 25.9 lost per resize at the defaults (39.6 without early enable). 20,480 "
        "resizes = 20 whole cycles of 16 devices × 64 entries, ~12 M fires. Before QEMU 8.2 "
        "entry 0 is no resize (vector 0 is set up at enable): T − 1 resizes per cycle, the "
        "same loss."
    ),
)


# --------------------------------------------------------------------------
# The seed's four late-unmask patterns (docs/scenarios.md)


def _hotplug_check(p: Params) -> None:
    online, queues = _int(p, "online"), _int(p, "queues")
    _need(online <= queues, ("online", "queues"), f"online ({online}) must be ≤ queues ({queues})")


def _late_unmask(
    p: Params,
    policy: str,
    entries: int,
    early: int,
    late: list[tuple[int, int]],
    rates: list[list[float]],
    minvec: int = 1,
) -> dict[str, Any]:
    """The shape of the seed's late-unmask patterns: one device whose driver
    negotiates and enables MSI-X, unmasks entries ``0..early-1`` back to back,
    then each ``(entry, delay_ns)`` of ``late`` in order, holds for ``hold``
    and disables (the cycle repeats); ``rates`` override the base ``rate``."""
    program = [_step("negotiate", minvec=minvec, maxvec=entries), _step("enable")]
    program += [_step("unmask", entry=k) for k in range(early)]
    # The early entries come up at probe; the late ones at runtime.
    program.append(_RUNTIME)
    program += [_step("unmask", delay, entry=k) for k, delay in late]
    program.append(_step("disable", _ns(p, "hold")))
    device = _device(
        entries,
        program,
        rate=float(p["rate"]),
        rates=rates,
        semantics=str(p["semantics"]),
    )
    return _config(policy, [device], p, ncpus=16)


def _hotplug(p: Params, policy: str) -> dict[str, Any]:
    queues, online = _int(p, "queues"), _int(p, "online")
    gap = _ns(p, "hotplug_gap")
    late = [(k, gap) for k in range(online + 1, queues + 1)]
    rates = [[0, float(p["admin_rate"])]]
    return _late_unmask(p, policy, queues + 1, online + 1, late, rates, minvec=2)


MANAGED_HOTPLUG = Scenario(
    name="managed-hotplug",
    description=(
        "multi-queue device with managed interrupts (one I/O queue per guest CPU): the "
        "queues of CPUs online at boot start at probe; each later CPU hotplug starts its "
        "queue while the others carry load; the VM then reboots and the cycle repeats"
    ),
    params=(
        _count("queues", 16, "I/O queues, one per guest CPU (entries 1..queues)", hi=2047),
        _count("online", 4, "guest CPUs online at boot: their queues start at probe"),
        _rate("rate", 20_000.0, "rate of every started I/O queue"),
        _rate("admin_rate", 100.0, "rate of the admin vector (entry 0)"),
        _seconds("hotplug_gap", 5e-3, "time between two CPU hotplugs", True),
        _seconds("hold", 10e-3, "time with every queue up before the VM reboots", True),
        *_timing_params(),
    ),
    policies=("noresize", "upfront", "hypercall", "dynamic"),
    builder=_hotplug,
    default_resizes=10_000,
    check=_hotplug_check,
    notes=(
        "Seed pattern 1. A managed vector is unmasked at CPU online (irq startup), so each "
        "hotplugged CPU's queue is a new highest entry: under noresize a resize with up to "
        "`queues` busy queues live, W2 = w0 + w_free·k ≈ 22-28 µs, ~60 lost per cycle at "
        "20,000/s. Device: an SR-IOV VF (no INTx pin): edge. ~850 fires per resize."
    ),
)


def _no_autoen_check(p: Params) -> None:
    autoen, table = _int(p, "autoen"), _int(p, "table")
    _need(
        autoen < table,
        ("autoen", "table"),
        f"autoen ({autoen}) must be < table ({table}): at least one vector is NO_AUTOEN",
    )


def _no_autoen(p: Params, policy: str) -> dict[str, Any]:
    table, autoen = _int(p, "table"), _int(p, "autoen")
    late = [
        (k, _ns(p, "late") if k == autoen else _ns(p, "late_gap")) for k in range(autoen, table)
    ]
    late_rate = float(p["late_rate"])
    return _late_unmask(
        p, policy, table, autoen, late, [[k, late_rate] for k in range(autoen, table)]
    )


NO_AUTOEN = Scenario(
    name="no-autoen",
    description=(
        "IRQF_NO_AUTOEN: every vector is requested at probe, but the last ones stay masked "
        "until the driver calls enable_irq() much later, while the others are busy; "
        "the driver is then reloaded and the cycle repeats"
    ),
    params=(
        _count("table", 8, "MSI-X table entries; all requested at probe"),
        _count("autoen", 6, "vectors enabled at request_irq (entries 0..autoen-1)"),
        _rate("rate", 20_000.0, "rate of every auto-enabled vector"),
        _rate("late_rate", 1_000.0, "rate of every NO_AUTOEN vector once enabled"),
        _seconds("late", 20e-3, "from probe to the first enable_irq()", True),
        _seconds("late_gap", 1e-3, "between the enable_irq() of successive NO_AUTOEN vectors"),
        _seconds("hold", 10e-3, "time with every vector enabled before the reload", True),
        *_timing_params(),
    ),
    policies=("noresize", "upfront", "hypercall", "dynamic"),
    builder=_no_autoen,
    default_resizes=20_000,
    check=_no_autoen_check,
    notes=(
        "Seed pattern 2. The first unmask of a NO_AUTOEN vector happens at enable_irq(), "
        "not at request_irq(); it is a new highest entry, so under noresize its resize "
        "disables the `autoen` busy vectors: ~2.8 lost per late resize at the defaults, "
        "plus the probe-time resizes. Edge (VF, no INTx pin). ~450 fires per resize."
    ),
)


def _subfunction_check(p: Params) -> None:
    entries = _int(p, "base") + _int(p, "subfunctions") * _int(p, "sf_vectors")
    _need(
        entries <= 2048,
        ("sf_vectors", "subfunctions", "base"),
        f"base + subfunctions·sf_vectors must be ≤ 2048 table entries, got {entries}",
    )


def _subfunction(p: Params, policy: str) -> dict[str, Any]:
    base, nsf, per = _int(p, "base"), _int(p, "subfunctions"), _int(p, "sf_vectors")
    entries = base + nsf * per
    late = []
    for j in range(nsf):
        first = base + j * per
        late += [
            (k, _ns(p, "idle") if k == first else _ns(p, "sf_gap"))
            for k in range(first, first + per)
        ]
    sf_rate = float(p["sf_rate"])
    return _late_unmask(
        p, policy, entries, base, late, [[k, sf_rate] for k in range(base, entries)]
    )


SUBFUNCTION = Scenario(
    name="subfunction",
    description=(
        "multi-function device: the parent function's vectors are busy from probe; each "
        "sub-function initializes on demand and requests its vectors (higher entries, "
        "ascending) under that load; the device is then reset and the cycle repeats"
    ),
    params=(
        _count("base", 8, "parent-function vectors (entries 0..base-1)"),
        _count("subfunctions", 2, "sub-functions, initialized one after another"),
        _count("sf_vectors", 4, "vectors per sub-function"),
        _rate("rate", 20_000.0, "rate of every parent-function vector"),
        _rate("sf_rate", 5_000.0, "rate of every sub-function vector once requested"),
        _seconds("idle", 10e-3, "before each sub-function initializes", True),
        _seconds("sf_gap", 0.0, "between a sub-function's request_irq() calls"),
        _seconds("hold", 10e-3, "time with every sub-function up before the reset", True),
        *_timing_params(),
    ),
    policies=("noresize", "upfront", "hypercall", "dynamic", "ims"),
    builder=_subfunction,
    default_resizes=20_000,
    check=_subfunction_check,
    notes=(
        "Seed pattern 3. Each sub-function vector is a new highest entry: under noresize "
        "`sf_vectors` resizes per sub-function, each with the busy parent vectors (and the "
        "earlier sub-function vectors) live: ~4 lost per sub-function resize at the "
        "defaults. Also run under ims (sub-device interrupts in a trappable device store). "
        "Edge. ~340 fires per resize."
    ),
)


def _fpga_check(p: Params) -> None:
    table, busy, ip = _int(p, "table"), _int(p, "busy"), _int(p, "ip_entry")
    _need(ip < table, ("ip_entry", "table"), f"ip_entry ({ip}) must be < table ({table})")
    _need(
        busy <= ip,
        ("busy", "ip_entry"),
        f"busy ({busy}) must be ≤ ip_entry ({ip}): the busy entries sit below it",
    )


def _fpga(p: Params, policy: str) -> dict[str, Any]:
    table, busy, ip = _int(p, "table"), _int(p, "busy"), _int(p, "ip_entry")
    late = [(ip, _ns(p, "ip_delay"))]
    return _late_unmask(p, policy, table, busy, late, [[ip, float(p["ip_rate"])]])


FPGA = Scenario(
    name="fpga",
    description=(
        "FPGA whose power-hungry IP block starts only when a user program needs it: its "
        "(high) entry is unmasked late, under heavy interrupt load from the DMA channels; "
        "the FPGA is then reconfigured (re-probe) and the cycle repeats"
    ),
    params=(
        _count("table", 32, "MSI-X table entries"),
        _count("busy", 8, "busy vectors (entries 0..busy-1): DMA channels", lo=0),
        _rate("rate", 100_000.0, "rate of every busy vector (heavy load)"),
        _count("ip_entry", 31, "table entry of the IP block's interrupt", lo=0, hi=2047),
        _rate("ip_rate", 10_000.0, "rate of the IP block's vector once started"),
        _seconds("ip_delay", 20e-3, "from probe until a user program starts the IP block", True),
        _seconds("hold", 10e-3, "time the IP block runs before the reconfiguration", True),
        *_timing_params(),
    ),
    policies=("noresize", "upfront", "hypercall", "dynamic"),
    builder=_fpga,
    default_resizes=4_500,
    check=_fpga_check,
    notes=(
        "Seed pattern 4. Jumping to the highest entry costs one resize, but its window is "
        "the longest: with early enable W2 = w0 + w_free·busy = 24 µs and 8 vectors at "
        "100,000/s are live: ~19 lost per late resize (without early enable the 32 new "
        "vectors are allocated inside W2: 40 µs, ~32 lost), plus the probe-time resizes. "
        "Edge (a custom FPGA may have an INTx pin: semantics=edge_intx). ~2,700 fires per "
        "resize."
    ),
)


# --------------------------------------------------------------------------
# nic: an SR-IOV NIC VF growing its channels at runtime (docs/scenarios.md)


def _nic_check(p: Params) -> None:
    table, init = _int(p, "table"), _int(p, "init")
    _need(table >= 3, "table", f"must be ≥ 3 (a misc vector and two queue vectors), got {table}")
    _need(
        init < table - 1,
        ("init", "table"),
        f"init ({init}) must be < table - 1 ({table - 1}): the driver grows to table - 1 channels",
    )


def _nic(p: Params, policy: str) -> dict[str, Any]:
    table, init = _int(p, "table"), _int(p, "init")
    channels = table - 1
    # Probe and interface up: the misc (mailbox) vector, then one per channel.
    program = [_step("negotiate", minvec=2, maxvec=table), _step("enable")]
    program += [_step("unmask", entry=k) for k in range(init + 1)]
    program.append(_RUNTIME)
    # `ethtool -L combined <max>` under load: the VF resets, freeing its
    # traffic irqs (masked), then requests one per channel; each channel past
    # `init` is a new highest entry.
    grow = _ns(p, "grow_after")
    program += [_step("free", grow if k == 1 else 0, entry=k) for k in range(1, init + 1)]
    program += [_step("unmask", entry=k) for k in range(1, channels + 1)]
    # The VF driver is reloaded (or the VM rebooted) and the cycle repeats.
    program.append(_step("disable", _ns(p, "hold")))
    device = _device(
        table,
        program,
        rate=float(p["rate"]),
        rates=[[0, float(p["misc_rate"])]],
        semantics=str(p["semantics"]),
    )
    return _config(policy, [device], p, ncpus=16)


NIC = Scenario(
    name="nic",
    description=(
        "an SR-IOV NIC VF: a misc vector and `init` channels come up at probe; under load "
        "`ethtool -L` grows it to a channel per remaining vector (the VF resets: traffic "
        "irqs freed, then requested again); the driver is then reloaded and the cycle repeats"
    ),
    params=(
        _count("table", 17, "MSI-X table entries: a misc vector + one per channel"),
        _count("init", 4, "channels at probe (entries 1..init)"),
        _rate("rate", 10_000.0, "rate of every live channel vector (moderate load)"),
        _rate("misc_rate", 100.0, "rate of the misc (mailbox) vector, entry 0"),
        _seconds("grow_after", 5e-3, "from interface up to `ethtool -L`", True),
        _seconds("hold", 10e-3, "time with every channel up before the reload", True),
        *_timing_params(host_profile="quiet"),
    ),
    policies=("noresize", "upfront", "hypercall", "dynamic"),
    builder=_nic,
    default_resizes=6_000,
    variants={
        # ice's VF sizes (ICE_NUM_VF_MSIX_SMALL, _MED) and two larger ones.
        "vf5": {"table": 5, "init": 1},
        "vf17": {"table": 17, "init": 4},
        "vf33": {"table": 33, "init": 8},
        "vf65": {"table": 65, "init": 16},
    },
    check=_nic_check,
    notes=(
        "A VF with 5, 17, 33 or 65 vectors (misc + channels) comes up with a quarter of its "
        "channels; `ethtool -L` under load grows it to all of them. Under noresize each new "
        "channel is a resize with the earlier channels live. 10,000/s per vector is a "
        "moderate load under the 20,000/s cap of the Intel default ITR (50 µs); host costs "
        "default to the published quiet profile (docs/calibration.md)."
    ),
)


# --------------------------------------------------------------------------
# host-packing


def _packing_check(p: Params) -> None:
    ndev = _int(p, "vms") * _int(p, "devices_per_vm")
    table, used = _int(p, "table"), _int(p, "used")
    _need(used <= table, ("used", "table"), f"used ({used}) must be ≤ table ({table})")
    _need(
        ndev <= MAX_DEVICES,
        ("devices_per_vm", "vms"),
        f"vms·devices_per_vm must be ≤ {MAX_DEVICES}, got {ndev}",
    )
    _need(
        ndev * table <= MAX_TABLE_ENTRIES_PER_RUN,
        ("table", "devices_per_vm", "vms"),
        f"vms·devices_per_vm·table must be ≤ {MAX_TABLE_ENTRIES_PER_RUN} entries, "
        f"got {ndev * table}",
    )
    irte = _int(p, "irte_entries")
    _need(irte & (irte - 1) == 0, "irte_entries", f"must be a power of two, got {irte}")
    per_vector = float(p["w_free"]) + float(p["w_alloc"])
    duration, window = float(p["duration"]), float(p["w0"]) + per_vector * table
    _need(
        duration > window,
        ("duration", "w0", "w_free", "w_alloc", "table"),
        f"duration must exceed the longest resize w0 + (w_free + w_alloc)·table = "
        f"{format_seconds(window)}, "
        f"got {format_seconds(duration)}",
    )
    starts = (_int(p, "vms") - 1) * float(p["vm_gap"]) + (_int(p, "devices_per_vm") - 1) * float(
        p["device_gap"]
    )
    _need(
        duration > starts,
        ("duration", "vms", "vm_gap", "devices_per_vm", "device_gap"),
        "duration must exceed the last device's start "
        f"((vms-1)·vm_gap + (devices_per_vm-1)·device_gap = {format_seconds(starts)}), "
        f"got {format_seconds(duration)}",
    )


def _packing(p: Params, policy: str) -> dict[str, Any]:
    table, used = _int(p, "table"), _int(p, "used")
    # pci_alloc_irq_vectors(1, used): what the driver will request. Only the
    # hypercall host sees it; upfront allocates the whole table regardless.
    program = [_step("negotiate", minvec=1, maxvec=max(used, 1)), _step("enable")]
    program += [_step("unmask", entry=k) for k in range(used)]
    program.append(_RUNTIME)
    gap, per_vm, hotplug = _ns(p, "vm_gap"), _int(p, "devices_per_vm"), _ns(p, "device_gap")
    devices = [
        _device(
            table,
            program,
            rate=float(p["rate"]),
            semantics=str(p["semantics"]),
            vm=vm,
            repeat=False,
            # A VM's devices are hot-plugged one after another, `device_gap` apart.
            start_ns=vm * gap + i * hotplug,
        )
        for vm in range(_int(p, "vms"))
        for i in range(per_vm)
    ]
    config = _config(
        policy,
        devices,
        p,
        ncpus=_int(p, "cpus"),
        reservation_mode=bool(p["reservation_mode"]),
        iommus=_int(p, "iommus"),
        irte_entries=_int(p, "irte_entries"),
        on_failure=str(p["on_failure"]),
    )
    config["stop"] = {"max_time_ns": _ns(p, "duration"), "max_resizes": None}
    if p["request_all"]:
        config["policy"]["upfront_request_all"] = True
    if _int(p, "kvm_routes") != DEFAULTS["host"]["kvm_routes_per_vm"]:
        config["host"]["kvm_routes_per_vm"] = _int(p, "kvm_routes")
    return config


HOST_PACKING = Scenario(
    name="host-packing",
    description=(
        "many VMs' devices on one host, every device's whole table allocated at enable: "
        "CPU-vector exhaustion without reservation mode, IRTE exhaustion with it"
    ),
    params=(
        _count("vms", 96, "VMs, started `vm_gap` apart", hi=MAX_DEVICES),
        _count("devices_per_vm", 8, "passed-through devices per VM", hi=MAX_DEVICES),
        _count("table", 256, "MSI-X table entries per device"),
        _count("used", 4, "entries each guest driver unmasks after enable", lo=0),
        _count("cpus", 64, "host CPUs (~200 device vectors each)", hi=8192),
        _count("iommus", 2, "Intel IOMMUs; device i sits behind IOMMU i mod iommus", hi=64),
        _count("irte_entries", 65_536, "IRTEs per IOMMU (power of two)", hi=65_536),
        Param("reservation_mode", "flag", True, "x86 reservation mode (Linux 4.15+)"),
        Param(
            "on_failure",
            "choice",
            "kill",
            "what a failed host allocation does: kill the VM, qemu (dead vectors), fail_request",
            choices=FAILURE_MODES,
        ),
        Param(
            "request_all",
            "flag",
            False,
            "upfront requests every allocated entry at enable, used or not (Cloud Hypervisor)",
        ),
        _count(
            "kvm_routes",
            int(DEFAULTS["host"]["kvm_routes_per_vm"]),
            "KVM MSI routes per VM (KVM_MAX_IRQ_ROUTES): one per requested vector",
            hi=1 << 20,
        ),
        _seconds("device_gap", 0.0, "between two devices of a VM (hot-plugged in turn)"),
        _rate("rate", 100.0, "rate of every live vector (light traffic)"),
        _seconds("vm_gap", 1e-3, "between two VM starts"),
        _seconds("duration", 0.2, "simulated time of the run", True),
        *_timing_params(),
    ),
    policies=("upfront", "hypercall", "dynamic"),
    builder=_packing,
    default_resizes=None,
    variants={
        "reservation": {"reservation_mode": True},
        "no-reservation": {"reservation_mode": False},
        # Cloud Hypervisor issue 7079: 257-entry VFs, every entry enabled on the host at
        # attach, hot-plugged one after another into each VM.
        "cloud-hypervisor": {
            "reservation_mode": True,
            "table": 257,
            "vms": 4,
            "devices_per_vm": 20,
            "device_gap": 1e-3,
            "vm_gap": 20e-3,
            "request_all": True,
        },
    },
    check=_packing_check,
    notes=(
        "768 devices × 256 entries = 196,608 vectors (~3 MB of tables). Without "
        "reservation mode upfront takes a CPU vector per entry at allocation: 64 CPUs "
        "hold ~13,000, so ~50 devices fit, then allocations fail and VMs are killed with "
        "the matrix full. With it, only the 4 used entries per device take CPU vectors, "
        "but every entry takes an IRTE: 2 × 65,536 IRTEs hold exactly 512 devices, so "
        "VMs 64.. fail with peak IRTEs at iommus × irte_entries. `kill` by default (the "
        "seed's well-defined #a); a killed VM's VMM exit frees its devices' vectors. "
        "dynamic allocates only the used entries; under hypercall the driver's "
        "pci_alloc_irq_vectors(1, used) reaches the host, which sets up just those. "
        "cloud-hypervisor: a VMM that requests every entry of its 257-entry VFs at "
        "enable, one KVM route each: a VM's 4096 routes run out at its 16th device."
    ),
)


# --------------------------------------------------------------------------
# nvme: a passed-through NVMe controller (docs/scenarios.md, docs/calibration.md)


def _nvme_check(p: Params) -> None:
    vcpus, online, table = _int(p, "vcpus"), _int(p, "online"), _int(p, "table")
    _need(online <= vcpus, ("online", "vcpus"), f"online ({online}) must be ≤ vcpus ({vcpus})")
    _need(
        vcpus + 1 <= table,
        ("vcpus", "table"),
        f"vcpus + 1 ({vcpus + 1}) must be ≤ table ({table}): an admin vector and one per vCPU",
    )


def _nvme(p: Params, policy: str) -> dict[str, Any]:
    vcpus, online, table = _int(p, "vcpus"), _int(p, "online"), _int(p, "table")
    admin_cmd = _ns(p, "admin_cmd")
    # nvme_probe -> nvme_pci_enable: one vector for the admin queue, requested.
    program = [_step("negotiate", minvec=1, maxvec=1), _step("enable"), _step("unmask", entry=0)]
    # nvme_setup_io_queues: the admin irq freed, every vector freed, 1 + N
    # allocated (an affinity set over the possible CPUs), admin requested again.
    program += [_step("free", admin_cmd, entry=0), _step("disable")]
    program += [_step("negotiate", minvec=2, maxvec=vcpus + 1), _step("enable")]
    program += [_step("unmask", entry=0)]
    # nvme_create_io_queues: per queue Create CQ + Create SQ (admin commands),
    # then request_irq of its vector; one queue per online CPU.
    program += [_step("unmask", 2 * admin_cmd, entry=k) for k in range(1, online + 1)]
    program.append(_RUNTIME)
    # CPU hotplug at runtime: each new CPU's queue is brought up (managed irq startup).
    gap = _ns(p, "hotplug_gap")
    program += [_step("unmask", gap, entry=k) for k in range(online + 1, vcpus + 1)]
    program.append(_step("disable", _ns(p, "hold")))
    device = _device(
        table,
        program,
        rate=float(p["admin_rate"]),
        semantics=str(p["semantics"]),
        repeat=False,
    )
    device["closed_loop"] = {
        "from_entry": 1,
        "depth": _int(p, "depth"),
        "latency_ns": _ns(p, "latency"),
        "timeout_ns": _ns(p, "io_timeout"),
    }
    config = _config(policy, [device], p, ncpus=16)
    # The admin queue's timeout for an open-loop (admin) completion lost.
    config["stall_timeout_ns"] = _ns(p, "admin_timeout")
    config["stop"] = {"max_time_ns": _ns(p, "duration"), "max_resizes": None}
    return config


NVME = Scenario(
    name="nvme",
    description=(
        "a passed-through NVMe controller: the admin vector first, then the driver frees it "
        "and asks for vCPUs + 1 vectors and brings the I/O queues up one by one with admin "
        "commands in flight; at runtime CPU hotplug adds queues; closed-loop I/O throughout"
    ),
    params=(
        _count("vcpus", 16, "guest vCPUs: one I/O queue each (vectors = vcpus + 1)", hi=2047),
        _count("online", 12, "vCPUs online at boot; the rest are hotplugged at runtime"),
        _count("table", 129, "MSI-X table entries (129 on current drives)"),
        _count("depth", 4, "I/O requests in flight per queue (closed loop)", hi=65_536),
        _seconds("latency", 53e-6, "mean device latency of one I/O: depth/latency ≈ 75k/s", True),
        _rate("admin_rate", 100.0, "admin queue interrupts per second (open loop)"),
        _seconds("admin_cmd", 50e-6, "one admin command (Create CQ / SQ) at probe", True),
        _seconds("hotplug_gap", 1.0, "between two CPU hotplugs at runtime", True),
        _seconds("io_timeout", 30.0, "nvme io_timeout: a lost I/O completion's stall", True),
        _seconds("admin_timeout", 60.0, "nvme admin_timeout", True),
        _seconds("hold", 35.0, "time with every queue up before the driver is removed", True),
        _seconds("duration", 42.0, "simulated time of the run (past io_timeout)", True),
        *_timing_params(host_profile="quiet"),
    ),
    policies=("noresize", "upfront", "hypercall", "dynamic"),
    builder=_nvme,
    default_resizes=None,
    check=_nvme_check,
    # A tenth of the run: the timeout, the hold and the run scaled together.
    quick={"hotplug_gap": 0.1, "io_timeout": 3.0, "hold": 3.5, "duration": 4.2},
    notes=(
        "nvme_probe, nvme_setup_io_queues and nvme_create_io_queues (drivers/nvme/host/pci.c): "
        "the admin vector alone first, then 1 + N vectors with the I/O queues requested one "
        "by one after their Create CQ/SQ admin commands. Each I/O queue runs closed loop: a "
        "lost completion leaves its command stuck until io_timeout (30 s default, "
        "drivers/nvme/host/core.c), the stale device of the seed thread; the queues stay up "
        "past it (hold) so the episodes end at their timeout. Rates and latency: "
        "docs/calibration.md."
    ),
)


# --------------------------------------------------------------------------
# spoof: a malicious passed-through device forging MSI writes (docs/spoof.md)


def _spoof_check(p: Params) -> None:
    start, duration = float(p["spoof_start"]), float(p["duration"])
    _need(
        duration > start,
        "duration",
        f"must exceed spoof_start ({format_seconds(start)}), got {format_seconds(duration)}",
    )


def _spoof(p: Params, policy: str) -> dict[str, Any]:
    def up(vectors: int) -> list[dict[str, Any]]:
        # Probe: every vector requested at once, then production.
        program = [_step("negotiate", minvec=1, maxvec=vectors), _step("enable")]
        program += [_step("unmask", entry=k) for k in range(vectors)]
        return [*program, _RUNTIME]

    rate, semantics = float(p["rate"]), str(p["semantics"])
    victim, forger = _int(p, "vectors"), _int(p, "forger_vectors")
    devices = [
        # 0: the victim, alone in VM 0; 1: a bystander in the forger's VM 1.
        _device(victim, up(victim), rate=rate, semantics=semantics, repeat=False),
        _device(victim, up(victim), rate=rate, semantics=semantics, vm=1, repeat=False),
        _device(forger, up(forger), rate=rate, semantics=semantics, vm=1, repeat=False),
    ]
    devices[2]["spoof"] = {
        "victims": [0, 1],
        "rate": float(p["spoof_rate"]),
        "start_ns": _ns(p, "spoof_start"),
        "kinds": list(SPOOF_KINDS),
    }
    config = _config(policy, devices, p, ncpus=16)
    config["host"]["iommu"] = str(p["iommu"])
    config["stop"] = {"max_time_ns": _ns(p, "duration"), "max_resizes": None}
    return config


SPOOF = Scenario(
    name="spoof",
    description=(
        "a malicious VFIO device forges MSI writes: another device's handle (or IRTE index) "
        "and the sub-handles after it, the compatibility format, reserved request bits, and a "
        "write outside the interrupt window; each goes through the IOMMU under its own "
        "requester id"
    ),
    params=(
        Param("iommu", "choice", "intel", "the host's IOMMU", choices=("intel", "amd")),
        _count("vectors", 6, "MSI-X vectors of the victim (VM 0) and of the bystander (VM 1)"),
        _count("forger_vectors", 2, "MSI-X vectors of the forging device itself (VM 1)"),
        _rate("rate", 1_000.0, "rate of every legitimate vector"),
        _rate("spoof_rate", 200_000.0, "forged writes per second, the five kinds in turn"),
        _seconds("spoof_start", 1e-3, "when the first forged write may come (after probe)"),
        _seconds("duration", 21e-3, "simulated time of the run", True),
        *_timing_params(),
    ),
    policies=("dynamic",),
    builder=_spoof,
    default_resizes=None,
    variants={"intel": {"iommu": "intel"}, "amd": {"iommu": "amd"}},
    check=_spoof_check,
    notes=(
        "Three devices: the victim alone in VM 0, a bystander and the forger in VM 1; the "
        "forger copies both victims' messages in turn. 200,000 writes/s for 20 ms is about "
        "800 writes of each kind: far past VT-d's 256 fault recording registers and AMD's "
        "512-entry event log, so the overflow shows. dynamic only: the forger's results do "
        "not depend on the policy, and no resize moves the victims' IRTEs mid-run."
    ),
)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        STORM,
        MANAGED_HOTPLUG,
        NO_AUTOEN,
        SUBFUNCTION,
        FPGA,
        NVME,
        NIC,
        HOST_PACKING,
        SPOOF,
    )
}
"""The built-in scenarios by name, in ``compare`` order."""


def get_scenario(spec: str) -> tuple[Scenario, str | None]:
    """Look up ``"name"`` or ``"name:variant"``; returns the scenario and the
    variant name (or ``None``). ``InvalidArgument`` for unknown names."""
    name, colon, variant = spec.partition(":")
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise InvalidArgument(
            f"scenario: unknown scenario {name!r} (known: {', '.join(SCENARIOS)})"
        )
    if colon and not variant:
        known = ", ".join(scenario.variants) or "none"
        raise InvalidArgument(
            f"variant: {spec!r} names no variant after ':' (variants of {name}: {known})"
        )
    if variant:
        scenario.variant(variant)
        return scenario, variant
    return scenario, None
