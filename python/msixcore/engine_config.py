"""The engine's configuration schema (``rust/core/src/config.rs``), checked in
Python before a run so that a bad file fails with one line naming the field.

The Rust side validates again (``SimConfig::validate``); this mirror is
deliberately a little stricter: unknown keys are refused everywhere (also inside
an ``action``), JSON integers must be integers (not ``1.0`` or ``true``), and a
run limited by ``stop.max_time_ns`` must be longer than the longest resize
window its timing allows.

Times are nanoseconds, rates interrupts per second, enums snake_case; an
``action`` is tagged by ``"op"``: ``{"op": "unmask", "entry": 3}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from msixcore._core import InvalidArgument

__all__ = [
    "ACTIONS",
    "FAILURE_MODES",
    "MAX_DEVICES",
    "MAX_TABLE_ENTRIES_PER_RUN",
    "POLICIES",
    "SEMANTICS",
    "TIMING_DEFAULTS",
    "longest_window_ns",
    "validate_engine_config",
]

POLICIES: tuple[str, ...] = ("noresize", "upfront", "hypercall", "dynamic", "ims")
"""The engine's built-in hypervisor policies (``policy.kind``)."""

SEMANTICS: tuple[str, ...] = ("edge", "edge_intx", "level", "pba")
"""Device event semantics while MSI-X is disabled (``devices[i].semantics``)."""

FAILURE_MODES: tuple[str, ...] = ("kill", "qemu", "fail_request")
"""What a host failure during a resize does (``policy.on_failure``)."""

ACTIONS: dict[str, tuple[str, ...]] = {
    "negotiate": ("minvec", "maxvec"),
    "enable": (),
    "unmask": ("entry",),
    "mask": ("entry",),
    "disable": (),
    "reset": (),
    "wait": (),
}
"""Guest driver actions (``op``) and their fields."""

MAX_DEVICES = 65_280
"""The host gives each device its own requester id: bus 1.., 256 per bus."""

MAX_TABLE_ENTRIES_PER_RUN = 1 << 20
"""Memory guard: at most this many MSI-X table entries over all devices."""

_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1


def _err(field: str, msg: str) -> InvalidArgument:
    return InvalidArgument(f"{field}: {msg}")


def _table(value: object, field: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _err(field, f"must be a table/object, got {type(value).__name__}")
    for key in value:
        if key not in keys:
            where = f"{field}.{key}" if field != "config" else str(key)
            raise _err(where, f"unknown key (expected one of {', '.join(keys)})")
    return value


def _int(value: object, field: str, lo: int = 0, hi: int = _U64) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _err(field, f"must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise _err(field, f"must be {lo}..={hi}, got {value}")
    return value


def _rate(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _err(field, f"must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise _err(field, f"must be a finite rate ≥ 0, got {value}")
    return float(value)


def _bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise _err(field, f"must be true or false, got {value!r}")
    return value


def _choice(value: object, field: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _err(field, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _check_host(host: object) -> None:
    keys = (
        "ncpus",
        "reservation_mode",
        "posted_msi",
        "iommu",
        "iommus",
        "irte_entries",
        "amd_table_size",
    )
    h = _table(host, "host", keys)
    if "ncpus" in h:
        _int(h["ncpus"], "host.ncpus", 1, 8192)
    for flag in ("reservation_mode", "posted_msi"):
        if flag in h:
            _bool(h[flag], f"host.{flag}")
    if "iommu" in h:
        _choice(h["iommu"], "host.iommu", ("intel", "amd"))
    if "iommus" in h:
        _int(h["iommus"], "host.iommus", 1, 64)
    if "irte_entries" in h:
        n = _int(h["irte_entries"], "host.irte_entries", 1, 65_536)
        if n & (n - 1):
            raise _err("host.irte_entries", f"must be a power of two 1..=65536, got {n}")
    if "amd_table_size" in h and _int(h["amd_table_size"], "host.amd_table_size") not in (
        128,
        256,
        512,
        2048,
    ):
        raise _err(
            "host.amd_table_size", f"must be 128, 256, 512 or 2048, got {h['amd_table_size']}"
        )


def _check_policy(policy: object) -> None:
    keys = ("kind", "on_failure", "upfront_count", "grant", "grant_n", "ims_store")
    p = _table(policy, "policy", keys)
    if "kind" in p:
        _choice(p["kind"], "policy.kind", POLICIES)
    if "on_failure" in p:
        _choice(p["on_failure"], "policy.on_failure", FAILURE_MODES)
    if "upfront_count" in p:
        _int(p["upfront_count"], "policy.upfront_count", 0, 2048)
    if "grant" in p:
        _choice(p["grant"], "policy.grant", ("all", "n", "refuse"))
    if "grant_n" in p:
        _int(p["grant_n"], "policy.grant_n", 0, _U32)
    if "ims_store" in p:
        _choice(p["ims_store"], "policy.ims_store", ("device", "guest_ram"))


_TIMING_KEYS = ("w0_ns", "w1_ns", "w_active_ns", "t_request_ns", "t_dynamic_ns", "t_hypercall_ns")
TIMING_DEFAULTS: dict[str, int] = {
    "w0_ns": 20_000,
    "w1_ns": 500,
    "w_active_ns": 0,
    "t_request_ns": 0,
    "t_dynamic_ns": 5_000,
    "t_hypercall_ns": 20_000,
}
"""The engine's default ``timing`` (``TimingConfig::default``), ns."""


def _check_timing(timing: object) -> None:
    t = _table(timing, "timing", _TIMING_KEYS)
    for key in _TIMING_KEYS:
        if key in t:
            _int(t[key], f"timing.{key}")


def _check_step(step: object, field: str, entries: int) -> bool:
    """Check one program step; returns whether it lets time pass by itself."""
    s = _table(step, field, ("delay_ns", "action"))
    delay = _int(s["delay_ns"], f"{field}.delay_ns") if "delay_ns" in s else 0
    if "action" not in s:
        raise _err(f"{field}.action", "missing")
    action = s["action"]
    if not isinstance(action, Mapping) or "op" not in action:
        raise _err(f"{field}.action", 'must be a table with an "op" key')
    op = _choice(action["op"], f"{field}.action.op", tuple(ACTIONS))
    fields = ACTIONS[op]
    _table(action, f"{field}.action", ("op", *fields))
    for name in fields:
        if name not in action:
            raise _err(f"{field}.action.{name}", f"missing (needed by op {op!r})")
        _int(action[name], f"{field}.action.{name}", 0, _U32)
    if op in ("unmask", "mask") and action["entry"] >= entries:
        raise _err(field, f"entry {action['entry']} is past the table of {entries}")
    if op == "negotiate":
        lo, hi = action["minvec"], action["maxvec"]
        if lo == 0 or lo > hi or hi > entries:
            raise _err(field, f"need 1 ≤ minvec ≤ maxvec ≤ {entries}, got {lo}..{hi}")
    return delay > 0 or op != "wait"


def _check_device(device: object, i: int) -> int:
    """Check one device; returns its table size."""
    field = f"devices[{i}]"
    keys = ("vm", "entries", "semantics", "rate", "rates", "program", "repeat", "start_ns")
    d = _table(device, field, keys)
    for required in ("entries", "program"):
        if required not in d:
            raise _err(f"{field}.{required}", "missing")
    entries = _int(d["entries"], f"{field}.entries", 1, 2048)
    if "vm" in d:
        _int(d["vm"], f"{field}.vm", 0, _U32)
    if "semantics" in d:
        _choice(d["semantics"], f"{field}.semantics", SEMANTICS)
    if "rate" in d:
        _rate(d["rate"], f"{field}.rate")
    if "repeat" in d:
        _bool(d["repeat"], f"{field}.repeat")
    if "start_ns" in d:
        _int(d["start_ns"], f"{field}.start_ns")
    rates = d.get("rates", [])
    if not isinstance(rates, list):
        raise _err(f"{field}.rates", "must be a list of [entry, rate] pairs")
    for j, pair in enumerate(rates):
        where = f"{field}.rates[{j}]"
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise _err(where, f"must be an [entry, rate] pair, got {pair!r}")
        entry = _int(pair[0], where, 0, _U32)
        if entry >= entries:
            raise _err(where, f"entry {entry} is past the table of {entries}")
        _rate(pair[1], where)
    program = d["program"]
    if not isinstance(program, list):
        raise _err(f"{field}.program", "must be a list of steps")
    passes_time = [_check_step(s, f"{field}.program[{j}]", entries) for j, s in enumerate(program)]
    if d.get("repeat", False) and program and not any(passes_time):
        raise _err(f"{field}.program", "a repeating program must let time pass")
    return entries


def _check_stop(stop: object) -> None:
    s = _table(stop, "stop", ("max_time_ns", "max_resizes"))
    t = s.get("max_time_ns")
    r = s.get("max_resizes")
    if t is None and r is None:
        raise _err("stop", "give max_time_ns, max_resizes or both")
    if t is not None:
        _int(t, "stop.max_time_ns", 1)
    if r is not None:
        _int(r, "stop.max_resizes")


def longest_window_ns(timing: Mapping[str, Any], entries: int) -> int:
    """The longest device-wide window W2 a resize of a table of ``entries``
    can open: ``w0 + w1·entries + w_active·entries`` (engine defaults for
    missing fields)."""
    t = {**TIMING_DEFAULTS, **timing}
    return int(t["w0_ns"]) + (int(t["w1_ns"]) + int(t["w_active_ns"])) * entries


def validate_engine_config(config: object) -> None:
    """Check a complete engine config (a ``SimConfig`` as a dict); raises
    ``InvalidArgument`` whose one-line message names the first bad field."""
    keys = (
        "seed",
        "mode",
        "host",
        "policy",
        "timing",
        "devices",
        "handler",
        "stop",
        "stall_timeout_ns",
    )
    c = _table(config, "config", keys)
    if "seed" in c:
        _int(c["seed"], "seed")
    if "mode" in c:
        _choice(c["mode"], "mode", ("event", "aggregated"))
    if "host" in c:
        _check_host(c["host"])
    if "policy" in c:
        _check_policy(c["policy"])
    if "timing" in c:
        _check_timing(c["timing"])
    if "devices" not in c:
        raise _err("devices", "missing")
    devices = c["devices"]
    if not isinstance(devices, list):
        raise _err("devices", "must be a list of devices")
    if not devices:
        raise _err("devices", "at least one device is needed")
    if len(devices) > MAX_DEVICES:
        raise _err("devices", f"at most {MAX_DEVICES} devices (requester ids), got {len(devices)}")
    total = sum(_check_device(d, i) for i, d in enumerate(devices))
    if total > MAX_TABLE_ENTRIES_PER_RUN:
        raise _err(
            "devices",
            f"at most {MAX_TABLE_ENTRIES_PER_RUN} table entries in one run, got {total}",
        )
    if "handler" in c:
        h = _table(c["handler"], "handler", ("service_ns", "queue_capacity"))
        if h.get("service_ns") is not None:
            _int(h["service_ns"], "handler.service_ns")
        if "queue_capacity" in h:
            _int(h["queue_capacity"], "handler.queue_capacity", 1, 1 << 24)
    if "stall_timeout_ns" in c:
        _int(c["stall_timeout_ns"], "stall_timeout_ns", 1)
    if "stop" not in c:
        raise _err("stop", "missing")
    _check_stop(c["stop"])
    max_time = c["stop"].get("max_time_ns")
    if max_time is not None:
        biggest = max(int(d["entries"]) for d in devices)
        window = longest_window_ns(c.get("timing", {}), biggest)
        if max_time <= window:
            raise _err(
                "stop.max_time_ns",
                f"the run ({max_time} ns) must be longer than the longest resize window "
                f"(w0 + (w1 + w_active)·{biggest} = {window} ns)",
            )
