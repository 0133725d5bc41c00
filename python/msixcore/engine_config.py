"""The engine's configuration schema, as the Rust core owns it.

The core (``SimConfig`` in ``rust/core/src/config``) is the one validator and
the one source of names, limits and defaults; this module reads them from
``msixcore._core`` and adds typed declarations for the config dicts Python
code builds. A config is validated once per run, by the engine; call
:func:`validate_engine_config` to check one earlier (same check, same message).

Times are nanoseconds, rates interrupts per second, enums snake_case; an
``action`` is tagged by ``"op"``: ``{"op": "unmask", "entry": 3}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict, cast

from msixcore import _core
from msixcore._core import InvalidArgument

__all__ = [
    "ACTIONS",
    "DEFAULTS",
    "FAILURE_MODES",
    "MAX_DEVICES",
    "MAX_ENTRIES",
    "MAX_RATE",
    "MAX_TABLE_ENTRIES_PER_RUN",
    "MODES",
    "POLICIES",
    "SEMANTICS",
    "TIMING_DEFAULTS",
    "ActionConfig",
    "ClosedLoopConfig",
    "DeviceConfig",
    "HandlerConfig",
    "HostConfig",
    "PolicyConfig",
    "SimConfig",
    "StepConfig",
    "StopConfig",
    "TimingConfig",
    "config_json",
    "normalize_config",
    "validate_engine_config",
]

_SCHEMA: dict[str, Any] = json.loads(_core.config_schema())

POLICIES: tuple[str, ...] = tuple(_SCHEMA["enums"]["policies"])
"""The engine's built-in hypervisor policies (``policy.kind``)."""

MODES: tuple[str, ...] = tuple(_SCHEMA["enums"]["modes"])
"""Per-event or aggregated simulation (``mode``)."""

SEMANTICS: tuple[str, ...] = tuple(_SCHEMA["enums"]["semantics"])
"""Device event semantics while MSI-X is disabled (``devices[i].semantics``)."""

FAILURE_MODES: tuple[str, ...] = tuple(_SCHEMA["enums"]["failure_modes"])
"""What a host failure during a resize does (``policy.on_failure``)."""

ACTIONS: dict[str, tuple[str, ...]] = {
    op: tuple(fields) for op, fields in _SCHEMA["actions"].items()
}
"""Guest driver actions (``op``) and their fields."""

MAX_DEVICES: int = _SCHEMA["limits"]["max_devices"]
"""Most devices in one run: each has its own requester id (bus 1.., 256 per bus)."""

MAX_TABLE_ENTRIES_PER_RUN: int = _SCHEMA["limits"]["max_table_entries"]
"""Memory guard: at most this many MSI-X table entries over all devices."""

MAX_ENTRIES: int = _SCHEMA["limits"]["max_entries"]
"""The largest MSI-X table of one device (Table Size is 11 bits)."""

MAX_RATE: float = _SCHEMA["limits"]["max_rate"]
"""Highest interrupt rate of one vector, per second."""

DEFAULTS: Mapping[str, Any] = _SCHEMA["defaults"]
"""The engine's defaults: ``mode``, ``host``, ``policy``, ``timing``,
``handler`` and ``stall_timeout_ns``."""

TIMING_DEFAULTS: Mapping[str, int] = DEFAULTS["timing"]
"""The engine's default ``timing``, ns."""


class HostConfig(TypedDict, total=False):
    """``host``: CPUs, vector matrix, IOMMUs."""

    ncpus: int
    reservation_mode: bool | None
    early_enable: bool | None
    posted_msi: bool
    iommu: Literal["intel", "amd"]
    iommus: int
    irte_entries: int
    amd_table_size: int
    kvm_routes_per_vm: int


class PolicyConfig(TypedDict, total=False):
    """``policy``: the built-in policy and its knobs."""

    kind: str
    on_failure: str
    upfront_count: int
    upfront_request_all: bool
    grant: Literal["all", "n", "refuse"]
    request_at_grant: bool
    grant_n: int
    ims_store: Literal["device", "guest_ram"]


class TimingConfig(TypedDict, total=False):
    """``timing``: durations of host operations, ns."""

    w0_ns: int
    w_free_ns: int
    w_alloc_ns: int
    t_free_irq_ns: int
    t_request_ns: int
    t_dynamic_ns: int
    t_hypercall_ns: int


class ActionConfig(TypedDict):
    """A guest action: ``op`` plus its fields (``entry``, ``minvec``, ``maxvec``)."""

    op: str
    phase: NotRequired[str]
    entry: NotRequired[int]
    minvec: NotRequired[int]
    maxvec: NotRequired[int]


class StepConfig(TypedDict):
    """One program step: ``action`` ``delay_ns`` after the previous one."""

    delay_ns: NotRequired[int]
    action: ActionConfig


class ClosedLoopConfig(TypedDict):
    """``devices[i].closed_loop``: request/response traffic on the entries from
    ``from_entry`` on (``depth`` requests in flight, ``latency_ns`` each, a lost
    completion stuck until ``timeout_ns``)."""

    depth: int
    latency_ns: int
    timeout_ns: int
    from_entry: NotRequired[int]


class DeviceConfig(TypedDict):
    """One passed-through device and its guest driver's program."""

    entries: int
    program: list[StepConfig]
    vm: NotRequired[int]
    semantics: NotRequired[str]
    rate: NotRequired[float]
    probe_rate: NotRequired[float | None]
    rates: NotRequired[list[list[float]]]
    repeat: NotRequired[bool]
    start_ns: NotRequired[int]
    closed_loop: NotRequired[ClosedLoopConfig | None]


class HandlerConfig(TypedDict, total=False):
    """``handler``: the host CPU handler model."""

    service_ns: int | None
    queue_capacity: int


class StopConfig(TypedDict, total=False):
    """``stop``: the first condition reached ends the run."""

    max_time_ns: int | None
    max_resizes: int | None


class SimConfig(TypedDict):
    """A whole engine config; only ``devices`` and ``stop`` are required."""

    devices: list[DeviceConfig]
    stop: StopConfig
    seed: NotRequired[int]
    kernel: NotRequired[str]
    qemu: NotRequired[str]
    mode: NotRequired[str]
    host: NotRequired[HostConfig]
    policy: NotRequired[PolicyConfig]
    timing: NotRequired[TimingConfig]
    handler: NotRequired[HandlerConfig]
    stall_timeout_ns: NotRequired[int]


def config_json(config: object) -> str:
    """The JSON text of a config dict (``InvalidArgument`` if it is not JSON)."""
    try:
        return json.dumps(config, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        # RecursionError: nested deeper than the interpreter's recursion limit
        raise InvalidArgument(f"config: not representable as JSON ({exc})") from None


def validate_engine_config(config: object) -> None:
    """Check a complete engine config (a ``SimConfig`` as a dict) the way every
    run does; raises ``InvalidArgument`` naming the first bad field."""
    _core.validate_config(config_json(config))


def normalize_config(config: object) -> dict[str, Any]:
    """The config with every default filled in, as the engine reads it (not
    validated: fields with the right types but out of range pass)."""
    return cast(dict[str, Any], json.loads(_core.normalize_config(config_json(config))))
