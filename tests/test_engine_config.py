"""The core's config validation, from Python: errors name the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from msixcore import InvalidArgument, validate_engine_config

MINIMAL: dict[str, Any] = {
    "devices": [
        {
            "entries": 4,
            "rate": 10.0,
            "program": [
                {"action": {"op": "enable"}},
                {"delay_ns": 5, "action": {"op": "unmask", "entry": 0}},
            ],
        }
    ],
    "stop": {"max_time_ns": 1_000_000},
}


def test_minimal_config_is_valid() -> None:
    validate_engine_config(MINIMAL)


def _with(path: str, value: object) -> dict[str, Any]:
    config = copy.deepcopy(MINIMAL)
    node: Any = config
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return config


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("devices.0.entries", 4096, "devices[0].entries: must be 1..=2048, got 4096"),
        ("devices.0.entries", 0, "devices[0].entries: must be 1..=2048, got 0"),
        ("devices.0.rate", -1.0, "devices[0].rate: must be a rate in 0..=1e9 per second"),
        ("devices.0.rate", 2e9, "devices[0].rate: must be a rate in 0..=1e9 per second"),
        ("devices.0.rate", float("nan"), "config: not representable as JSON"),
        ("devices.0.semantics", "sticky", "devices[0].semantics: unknown variant `sticky`"),
        ("devices.0.rates", [[9, 1.0]], "devices[0].rates[0]: entry 9 is past the table of 4"),
        ("devices.0.bogus", 1, "devices[0].bogus: unknown field `bogus`"),
        ("devices.0.program.1.action.entry", 9, "devices[0].program[1]: entry 9 is past"),
        ("devices.0.program.1.action.op", "poke", "devices[0].program[1].action.op: unknown"),
        ("devices.0.program.1.action.extra", 1, "devices[0].program[1].action: unknown field"),
        ("devices.0.program.1.delay_ns", 1.5, "devices[0].program[1].delay_ns: invalid type"),
        ("devices.0.program.1.delay_ns", True, "devices[0].program[1].delay_ns: invalid type"),
        ("host.ncpus", 0, "host.ncpus: must be 1..=8192, got 0"),
        ("host.irte_entries", 1000, "host.irte_entries: must be a power of two"),
        ("host.amd_table_size", 100, "host.amd_table_size: must be 128, 256, 512 or 2048"),
        ("host.bogus", 1, "host.bogus: unknown field"),
        ("policy.kind", "qemu", "policy.kind: unknown variant `qemu`"),
        ("policy.on_failure", "panic", "policy.on_failure: unknown variant `panic`"),
        ("timing.w0_ns", -5, "timing.w0_ns: invalid value: integer `-5`"),
        ("stop", {}, "stop: give max_time_ns, max_resizes or both"),
        ("stop.max_time_ns", 0, "stop.max_time_ns: the run (0 ns) must be longer"),
        ("stop.max_time_ns", 21_000, "stop.max_time_ns: the run (21000 ns) must be longer"),
        ("stop.max_resizes", 0, "stop.max_resizes: must be ≥ 1"),
        ("handler.queue_capacity", 0, "handler.queue_capacity: must be 1..="),
        ("handler.service_ns", 100_000_000_001, "handler.service_ns: must be 0..=100000000000"),
        ("handler.service_ns", 2**64 - 1, "handler.service_ns: must be 0..=100000000000"),
        ("stall_timeout_ns", 0, "stall_timeout_ns: must be > 0"),
        ("mode", "fast", "mode: unknown variant `fast`"),
        ("bogus", 1, "bogus: unknown field `bogus`"),
        ("devices", [], "devices: at least one device is needed"),
    ],
)
def test_errors_name_the_field(path: str, value: object, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_engine_config(_with(path, value))
    assert message in str(info.value), str(info.value)


def test_negotiate_and_repeat_checks() -> None:
    bad = _with("devices.0.program.1.action", {"op": "negotiate", "minvec": 3, "maxvec": 2})
    with pytest.raises(InvalidArgument, match=r"devices\[0\]\.program\[1\]: need 1 ≤ minvec"):
        validate_engine_config(bad)
    idle = _with("devices.0.program", [{"action": {"op": "wait"}}])
    idle["devices"][0]["repeat"] = True
    with pytest.raises(InvalidArgument, match="a repeating program needs a step with delay_ns > 0"):
        validate_engine_config(idle)
    missing = _with("devices.0.program.1.action", {"op": "unmask"})
    with pytest.raises(InvalidArgument, match=r"action: missing field `entry`"):
        validate_engine_config(missing)
