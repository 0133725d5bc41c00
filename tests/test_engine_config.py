"""The Python mirror of the engine's config schema: errors name the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from msixcore import InvalidArgument, validate_engine_config
from msixcore.engine_config import longest_window_ns

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
        ("devices.0.rate", -1.0, "devices[0].rate: must be a finite rate ≥ 0, got -1.0"),
        ("devices.0.rate", float("nan"), "devices[0].rate: must be a finite rate ≥ 0"),
        ("devices.0.semantics", "sticky", "devices[0].semantics: must be one of edge"),
        ("devices.0.rates", [[9, 1.0]], "devices[0].rates[0]: entry 9 is past the table of 4"),
        ("devices.0.bogus", 1, "devices[0].bogus: unknown key"),
        ("devices.0.program.1.action.entry", 9, "devices[0].program[1]: entry 9 is past"),
        ("devices.0.program.1.action.op", "poke", "devices[0].program[1].action.op: must be one"),
        ("devices.0.program.1.action.extra", 1, "devices[0].program[1].action.extra: unknown"),
        ("devices.0.program.1.delay_ns", 1.5, "devices[0].program[1].delay_ns: must be an integer"),
        ("devices.0.program.1.delay_ns", True, "devices[0].program[1].delay_ns: must be an integ"),
        ("host.ncpus", 0, "host.ncpus: must be 1..=8192, got 0"),
        ("host.irte_entries", 1000, "host.irte_entries: must be a power of two"),
        ("host.amd_table_size", 100, "host.amd_table_size: must be 128, 256, 512 or 2048"),
        ("host.bogus", 1, "host.bogus: unknown key"),
        ("policy.kind", "qemu", "policy.kind: must be one of noresize, upfront"),
        ("policy.on_failure", "panic", "policy.on_failure: must be one of kill"),
        ("timing.w0_ns", -5, "timing.w0_ns: must be 0..="),
        ("stop", {}, "stop: give max_time_ns, max_resizes or both"),
        ("stop.max_time_ns", 0, "stop.max_time_ns: must be 1..="),
        ("stop.max_time_ns", 21_000, "stop.max_time_ns: the run (21000 ns) must be longer"),
        ("handler.queue_capacity", 0, "handler.queue_capacity: must be 1..="),
        ("stall_timeout_ns", 0, "stall_timeout_ns: must be 1..="),
        ("mode", "fast", "mode: must be one of event, aggregated"),
        ("bogus", 1, "bogus: unknown key"),
        ("devices", [], "devices: at least one device is needed"),
    ],
)
def test_errors_name_the_field(path: str, value: object, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_engine_config(_with(path, value))
    assert str(info.value).startswith(message), str(info.value)


def test_negotiate_and_repeat_checks() -> None:
    bad = _with("devices.0.program.1.action", {"op": "negotiate", "minvec": 3, "maxvec": 2})
    with pytest.raises(InvalidArgument, match=r"^devices\[0\]\.program\[1\]: need 1 ≤ minvec"):
        validate_engine_config(bad)
    idle = _with("devices.0.program", [{"action": {"op": "wait"}}])
    idle["devices"][0]["repeat"] = True
    with pytest.raises(InvalidArgument, match="a repeating program must let time pass"):
        validate_engine_config(idle)
    missing = _with("devices.0.program.1.action", {"op": "unmask"})
    with pytest.raises(InvalidArgument, match=r"action\.entry: missing"):
        validate_engine_config(missing)


def test_longest_window() -> None:
    assert longest_window_ns({}, 64) == 20_000 + 500 * 64
    assert longest_window_ns({"w0_ns": 1, "w1_ns": 2, "w_active_ns": 3}, 10) == 51
