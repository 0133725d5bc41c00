"""Differential test of the one config schema: the Python entry points and the
Rust engine accept and refuse the same configs, with the same message.

Over ten thousand configs are generated: mutations of every built-in
scenario's config under every policy it applies to, with boundary values for
every limit the core checks and hostile values of every other kind. Each one
goes through

- ``validate_engine_config`` (the Python entry point that checks a config);
- ``msixcore._core.Simulation`` (the Rust engine, built but not run);
- for refused configs, ``run_config`` (the Python entry point that runs one).

They must agree on acceptance and on the exception's type and text.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SMALL_NVME

from msixcore import SCENARIOS, _core, run_config, validate_engine_config
from msixcore.engine_config import (
    MAX_DEVICES,
    MAX_RATE,
    MAX_TABLE_ENTRIES_PER_RUN,
    config_json,
)

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1

# Boundary values of every limit the core checks, by field name.
BOUNDARIES: dict[str, list[Any]] = {
    "ncpus": [0, 1, 8192, 8193],
    "iommus": [0, 1, 64, 65],
    "irte_entries": [0, 1, 2, 3, 32_768, 65_535, 65_536, 65_537, 131_072],
    "amd_table_size": [0, 127, 128, 256, 512, 1024, 2048, 4096],
    "entries": [0, 1, 2, 2047, 2048, 2049],
    "rate": [-1.0, -0.0, 0, 0.0, 1e-300, MAX_RATE, MAX_RATE * (1 + 1e-15), 1.0000001e9, 1e308],
    "upfront_count": [0, 2048, 2049],
    "grant_n": [0, 1, U32, U32 + 1],
    "queue_capacity": [0, 1, 1 << 24, (1 << 24) + 1],
    "service_ns": [None, 0, 1, U64, U64 + 1],
    "stall_timeout_ns": [0, 1, U64, U64 + 1],
    "max_time_ns": [None, 0, 1, 20_000, 100_000, 1_000_000, U64, U64 + 1],
    "max_resizes": [None, 0, 1, U64, U64 + 1],
    "seed": [0, U64, U64 + 1, -1],
    "vm": [0, U32, U32 + 1],
    "start_ns": [0, U64, U64 + 1],
    "delay_ns": [0, 1, U64, U64 + 1],
    "entry": [0, 1, 7, 8, 63, 64, 2047, 2048, U32, U32 + 1],
    "minvec": [0, 1, 2, 64, 65],
    "maxvec": [0, 1, 2, 64, 65],
    "w0_ns": [0, 1, U64, U64 + 1],
    "w_free_ns": [0, 1, U64 // 2048, U64],
    "w_alloc_ns": [0, 1, U64 // 2048, U64],
    "t_free_irq_ns": [0, U64],
    "kernel": ["4.14", "4.15", "5.13", "5.14", "6.4", "6.5", "6.12", "6", "6.12.1", "x", 6.1],
    "qemu": ["7.0", "7.2", "8.1", "8.2", "9.2", "8", "", 8.2],
    "early_enable": [None, True, False, 1],
    "probe_rate": [None, 0.0, 1e3, MAX_RATE, MAX_RATE * 2, -1.0],
    "phase": ["probe", "runtime", "teardown"],
    "t_request_ns": [0, U64],
    "t_dynamic_ns": [0, U64],
    "t_hypercall_ns": [0, U64],
    "repeat": [True, False],
    "reservation_mode": [None, True, False],
    "posted_msi": [True, False],
    "semantics": ["edge", "edge_intx", "level", "pba", "sticky"],
    "iommu": ["intel", "amd", "arm"],
    "kind": ["noresize", "upfront", "hypercall", "dynamic", "ims", "qemu"],
    "on_failure": ["kill", "qemu", "fail_request", "panic"],
    "grant": ["all", "n", "refuse", "some"],
    "ims_store": ["device", "guest_ram", "disk"],
    "mode": ["event", "aggregated", "warp"],
    "op": [
        "negotiate",
        "enable",
        "unmask",
        "mask",
        "free",
        "disable",
        "reset",
        "wait",
        "phase",
        "poke",
    ],
}

# Values of the wrong kind, for any field.
HOSTILE: list[Any] = [None, -1, 1.5, True, "x", "", [], {}, [1, 2], {"a": 1}, U64 + 1]

# Small parameters per scenario, so that building an engine is cheap.
SMALL: dict[str, dict[str, Any]] = {
    "nvme": SMALL_NVME,
    "storm": {"devices": 2, "table": 8, "init": 2},
    "host-packing": {"vms": 3, "devices_per_vm": 2, "table": 16, "duration": 0.05},
}


def base_configs() -> list[dict[str, Any]]:
    """Every built-in scenario (each variant) under every policy it applies to."""
    configs = []
    for s in SCENARIOS.values():
        for variant in [*s.variants] or [None]:
            params = {**(s.variant(variant) if variant else {}), **SMALL.get(s.name, {})}
            resizes = None if s.time_bounded else 16
            for policy in s.policies:
                configs.append(s.build(params, policy, 1, resizes))
    return configs


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path in a config (containers and leaves)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):  # a few elements of long lists
            yield (*prefix, i)
            yield from paths(v, (*prefix, i))


def field_name(path: tuple[Any, ...]) -> str:
    names = [p for p in path if isinstance(p, str)]
    return names[-1] if names else ""


def mutate(config: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One to three mutations: boundary values, hostile values, deleted and
    unknown keys, and missing sections."""
    c = copy.deepcopy(config)
    for _ in range(rng.randint(1, 3)):
        # Sections the builder left to the defaults can be mutated too.
        for section in ("host", "policy", "timing", "handler"):
            c.setdefault(section, {})
        all_paths = list(paths(c))
        path = rng.choice(all_paths)
        parent: Any = c
        for p in path[:-1]:
            parent = parent[p]
        key = path[-1]
        name = field_name(path) if isinstance(key, str) else ""
        roll = rng.random()
        if roll < 0.55 and name in BOUNDARIES:
            parent[key] = rng.choice(BOUNDARIES[name])
        elif roll < 0.65 and isinstance(parent, dict):
            del parent[key]
        elif roll < 0.72 and isinstance(parent, dict):
            parent[rng.choice(["bogus", "Entries", "rate_hz"])] = 1
        elif roll < 0.80 and name in BOUNDARIES:
            # A field the builder left out, set to a boundary value.
            sibling = rng.choice(sorted(BOUNDARIES))
            if isinstance(parent, dict):
                parent[sibling] = rng.choice(BOUNDARIES[sibling])
        else:
            parent[key] = copy.deepcopy(rng.choice(HOSTILE))
    return c


def outcome(call: Any) -> tuple[str, str]:
    try:
        call()
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return "ok", ""


def check(config: dict[str, Any]) -> tuple[str, str]:
    """The three entry points on one config; returns their common answer."""
    py = outcome(lambda: validate_engine_config(config))
    rust = outcome(lambda: _core.Simulation(config_json(config)))
    assert py == rust, json.dumps(config)[:2000]
    if py[0] != "ok":
        assert outcome(lambda: run_config(config)) == py
    return py


def test_ten_thousand_mutated_configs_agree() -> None:
    rng = random.Random(20261129)
    bases = base_configs()
    assert len({json.dumps(b, sort_keys=True) for b in bases}) == len(bases)
    counts = {"ok": 0, "refused": 0}
    messages: set[str] = set()
    n = 0
    while n < 10_000:
        for base in bases:
            result = check(mutate(base, rng))
            counts["ok" if result[0] == "ok" else "refused"] += 1
            messages.add(result[1].split(":")[1] if ":" in result[1] else result[1])
            n += 1
    # The mutations reach both sides, and many distinct rules.
    assert counts["ok"] > 1_000 and counts["refused"] > 3_000, counts
    assert len(messages) > 40, sorted(messages)


@pytest.mark.parametrize(
    ("devices", "entries", "accepted"),
    [
        (MAX_DEVICES, 1, True),
        (MAX_DEVICES + 1, 1, False),
        (MAX_TABLE_ENTRIES_PER_RUN // 2048, 2048, True),
        (MAX_TABLE_ENTRIES_PER_RUN // 2048 + 1, 2048, False),
    ],
)
def test_device_and_table_limits_agree(devices: int, entries: int, accepted: bool) -> None:
    program = [{"action": {"op": "enable"}}]
    config = {
        "devices": [{"entries": entries, "program": program}] * devices,
        "stop": {"max_time_ns": 10_000_000},
    }
    kind, message = check(config)
    assert (kind == "ok") == accepted, message
    if not accepted:
        assert message.startswith("invalid argument: devices: at most"), message
