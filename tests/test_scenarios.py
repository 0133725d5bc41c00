"""Scenario building: exact configs for known parameters, program shapes,
timing, stop conditions, parameter validation, the storm's closed form and
the default run budget."""

from __future__ import annotations

import json
from typing import Any

import pytest

from msixcore import (
    SCENARIOS,
    InvalidArgument,
    get_scenario,
    normalize_config,
    storm_closed_form_lost,
)
from msixcore.engine_config import validate_engine_config
from msixcore.workload import analyse

HOST_16 = {
    "ncpus": 16,
    "reservation_mode": None,
    "early_enable": None,
    "posted_msi": False,
    "iommu": "intel",
    "iommus": 1,
    "irte_entries": 65_536,
    "amd_table_size": 512,
    "kvm_routes_per_vm": 4096,
}
POLICY_NORESIZE = {
    "kind": "noresize",
    "on_failure": "qemu",
    "upfront_count": 0,
    "upfront_request_all": False,
    "grant": "all",
    "grant_n": 1,
    "request_at_grant": False,
    "ims_store": "device",
}
TIMING_DEFAULT = {
    "w0_ns": 20_000,
    "w_free_ns": 500,
    "w_alloc_ns": 500,
    "t_free_irq_ns": 0,
    "t_request_ns": 0,
    "t_dynamic_ns": 5_000,
    "t_hypercall_ns": 20_000,
}
HANDLER = {"service_ns": 1_000, "queue_capacity": 4_096}


def step(op: str, delay_ns: int = 0, **fields: int) -> dict[str, Any]:
    return {"delay_ns": delay_ns, "action": {"op": op, **fields}}


RUNTIME = {"delay_ns": 0, "action": {"op": "phase", "phase": "runtime"}}
"""The step that ends a driver's probe phase."""


def without_stop(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "stop"}


def test_storm_small_config_exactly() -> None:
    params = {
        "devices": 2,
        "table": 3,
        "init": 1,
        "gap": "2ms",
        "rate": 1000,
        "w0": 10e-6,
        "w_alloc": "1us",
    }
    config = SCENARIOS["storm"].build(params, "hypercall", seed=5, resizes=12)
    program = [
        step("negotiate", minvec=1, maxvec=3),
        step("enable"),
        step("unmask", 0, entry=0),
        RUNTIME,
        step("unmask", 2_000_000, entry=1),
        step("unmask", 2_000_000, entry=2),
        step("disable", 2_000_000),
    ]
    device = {
        "entries": 3,
        "semantics": "edge",
        "rate": 1000.0,
        "probe_rate": None,
        "rates": [],
        "program": program,
        "repeat": True,
        "start_ns": 0,
        "closed_loop": None,
    }
    expected = {
        "seed": 5,
        "kernel": "6.12",
        "qemu": "8.2",
        "mode": "event",
        "host": {**HOST_16, "ncpus": 32},
        "policy": {**POLICY_NORESIZE, "kind": "hypercall"},
        "timing": {**TIMING_DEFAULT, "w0_ns": 10_000, "w_alloc_ns": 1_000},
        "devices": [{"vm": 0, **device}, {"vm": 1, **device}],
        "handler": HANDLER,
        "stall_timeout_ns": 30_000_000_000,
    }
    assert without_stop(config) == expected
    assert config["stop"]["max_resizes"] == 12
    # Safety bound: generous but finite; 12 resizes take 2 cycles of ~6 ms.
    assert 12_000_000 < config["stop"]["max_time_ns"] < 10_000_000_000
    validate_engine_config(config)


def test_storm_defaults_program_and_timing() -> None:
    config = SCENARIOS["storm"].build(None, "noresize", seed=0)
    assert len(config["devices"]) == 16
    assert config["timing"] == TIMING_DEFAULT
    assert config["timing"]["t_free_irq_ns"] == 0 and config["timing"]["t_request_ns"] == 0
    program = config["devices"][0]["program"]
    assert [s["action"]["op"] for s in program[:2]] == ["negotiate", "enable"]
    assert program[6] == RUNTIME
    unmasks = program[2:6] + program[7:-1]
    assert [s["action"] for s in unmasks] == [{"op": "unmask", "entry": k} for k in range(64)]
    assert [s["delay_ns"] for s in unmasks] == [0] * 4 + [1_000_000] * 60
    assert program[-1] == step("disable", 1_000_000)
    for d in config["devices"]:
        assert d["repeat"] is True and d["rate"] == 20_000.0 and d["semantics"] == "edge"
        assert d["entries"] == 64
    assert config["stop"]["max_resizes"] == 20_480
    # 20 cycles of ~61 ms: the bound must not cut the run short.
    assert config["stop"]["max_time_ns"] > 2 * 20 * 61_000_000


def test_resizes_map_to_max_resizes() -> None:
    storm = SCENARIOS["storm"]
    assert storm.build({}, "noresize", 1, resizes=77)["stop"]["max_resizes"] == 77
    with pytest.raises(InvalidArgument, match=r"^resizes: must be ≥ 1, got 0$"):
        storm.build({}, "noresize", 1, resizes=0)


def test_fpga_small_config_exactly() -> None:
    params = {"table": 4, "busy": 2, "ip_entry": 3, "rate": 10, "ip_rate": 5, "ip_delay": 0.01}
    # The config as the engine reads it (the builder writes only what it changes).
    config = normalize_config(SCENARIOS["fpga"].build(params, "noresize", seed=9, resizes=6))
    assert without_stop(config) == {
        "seed": 9,
        "kernel": "6.12",
        "qemu": "8.2",
        "mode": "event",
        "host": HOST_16,
        "policy": POLICY_NORESIZE,
        "timing": TIMING_DEFAULT,
        "devices": [
            {
                "vm": 0,
                "entries": 4,
                "semantics": "edge",
                "rate": 10.0,
                "probe_rate": None,
                "rates": [[3, 5.0]],
                "program": [
                    step("negotiate", minvec=1, maxvec=4),
                    step("enable"),
                    step("unmask", entry=0),
                    step("unmask", entry=1),
                    RUNTIME,
                    step("unmask", 10_000_000, entry=3),
                    step("disable", 10_000_000),
                ],
                "repeat": True,
                "start_ns": 0,
                "closed_loop": None,
            }
        ],
        "handler": HANDLER,
        "stall_timeout_ns": 30_000_000_000,
    }


def test_managed_hotplug_program() -> None:
    config = SCENARIOS["managed-hotplug"].build({"queues": 4, "online": 2}, "dynamic", 0)
    d = config["devices"][0]
    assert d["entries"] == 5 and d["rates"] == [[0, 100.0]] and d["rate"] == 20_000.0
    assert d["program"] == [
        step("negotiate", minvec=2, maxvec=5),
        step("enable"),
        step("unmask", entry=0),
        step("unmask", entry=1),
        step("unmask", entry=2),
        RUNTIME,
        step("unmask", 5_000_000, entry=3),
        step("unmask", 5_000_000, entry=4),
        step("disable", 10_000_000),
    ]
    assert config["policy"]["kind"] == "dynamic"


def test_no_autoen_program() -> None:
    config = SCENARIOS["no-autoen"].build({"table": 4, "autoen": 2}, "noresize", 0)
    d = config["devices"][0]
    assert d["rates"] == [[2, 1000.0], [3, 1000.0]]
    assert d["program"] == [
        step("negotiate", minvec=1, maxvec=4),
        step("enable"),
        step("unmask", entry=0),
        step("unmask", entry=1),
        RUNTIME,
        step("unmask", 20_000_000, entry=2),
        step("unmask", 1_000_000, entry=3),
        step("disable", 10_000_000),
    ]


def test_subfunction_program() -> None:
    params = {"base": 2, "subfunctions": 2, "sf_vectors": 2, "sf_gap": "100us"}
    config = SCENARIOS["subfunction"].build(params, "ims", 0)
    d = config["devices"][0]
    assert d["entries"] == 6
    assert d["rates"] == [[k, 5000.0] for k in range(2, 6)]
    assert d["program"] == [
        step("negotiate", minvec=1, maxvec=6),
        step("enable"),
        step("unmask", entry=0),
        step("unmask", entry=1),
        RUNTIME,
        step("unmask", 10_000_000, entry=2),
        step("unmask", 100_000, entry=3),
        step("unmask", 10_000_000, entry=4),
        step("unmask", 100_000, entry=5),
        step("disable", 10_000_000),
    ]
    assert normalize_config(config)["policy"]["ims_store"] == "device"


def test_host_packing_defaults_show_both_exhaustions_on_paper() -> None:
    hp = SCENARIOS["host-packing"]
    config = normalize_config(hp.build(None, "upfront", 3))
    devices = config["devices"]
    assert len(devices) == 96 * 8
    total_entries = sum(d["entries"] for d in devices)
    assert total_entries == 196_608 <= 300_000
    host = config["host"]
    assert host == {**HOST_16, "ncpus": 64, "iommus": 2}
    assert config["policy"]["on_failure"] == "kill"
    assert config["stop"] == {"max_time_ns": 200_000_000, "max_resizes": None}
    # VM v starts at v ms; its 8 devices share the VM id.
    assert [d["vm"] for d in devices[:9]] == [0] * 8 + [1]
    assert devices[8]["start_ns"] == 1_000_000 and devices[-1]["start_ns"] == 95_000_000
    assert devices[0]["repeat"] is False
    assert devices[0]["program"] == [
        step("negotiate", minvec=1, maxvec=4),
        step("enable"),
        *[step("unmask", entry=k) for k in range(4)],
        RUNTIME,
    ]
    # IRTEs: every entry takes one; more entries per IOMMU than it holds.
    per_iommu = total_entries / host["iommus"]
    assert per_iommu > host["irte_entries"]
    # CPU vectors (≤ 204 per CPU): every entry without reservation mode would
    # need far more; only the used ones (with it) fit easily.
    assert total_entries > host["ncpus"] * 204
    assert len(devices) * 4 < host["ncpus"] * 150
    no_res = hp.build(hp.variant("no-reservation"), "upfront", 3)
    assert no_res["host"]["reservation_mode"] is False
    # With it: as the kernel has it (6.12: on).
    rsv = normalize_config(hp.build(hp.variant("reservation"), "upfront", 3))
    assert rsv["host"]["reservation_mode"] is None and rsv["kernel"] == "6.12"


def test_host_packing_is_time_bounded() -> None:
    hp = SCENARIOS["host-packing"]
    assert hp.time_bounded
    with pytest.raises(InvalidArgument, match=r"^resizes: host-packing runs for a fixed"):
        hp.build(None, "upfront", 0, resizes=100)


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("storm", {"devices": 0}, "devices: must be ≥ 1, got 0"),
        ("storm", {"table": 0}, "table: must be ≥ 1, got 0"),
        ("storm", {"table": 4096}, "table: must be ≤ 2048, got 4096"),
        ("storm", {"rate": -5}, "rate: must be ≥ 0 /s, got -5 /s"),
        ("storm", {"rate": "fast"}, "rate: must be a number, got 'fast'"),
        ("storm", {"gap": 0}, "gap: must be > 0 s, got 0 s"),
        ("storm", {"gap": "1e-12"}, "gap: must be at least 1 ns, got '1e-12'"),
        ("storm", {"gap": "2 fortnights"}, "gap: must be a duration such as"),
        ("storm", {"w0": -1e-6}, "w0: must be ≥ 0 s"),
        ("storm", {"init": 65}, "init: init (65) must be ≤ table (64)"),
        ("storm", {"devices": 2.5}, "devices: must be an integer, got 2.5"),
        ("storm", {"devices": True}, "devices: must be an integer, got True"),
        ("storm", {"semantics": "sticky"}, "semantics: must be one of edge, edge_intx"),
        ("storm", {"bogus": 1}, "bogus: unknown parameter of storm"),
        ("managed-hotplug", {"online": 17}, "online: online (17) must be ≤ queues (16)"),
        ("no-autoen", {"autoen": 8}, "autoen: autoen (8) must be < table (8)"),
        ("fpga", {"table": 16}, "table: ip_entry (31) must be < table (16)"),
        ("fpga", {"busy": 40, "ip_entry": 20}, "busy: busy (40) must be ≤ ip_entry (20)"),
        ("subfunction", {"sf_vectors": 1024}, "sf_vectors: base + subfunctions·sf_vectors"),
        ("host-packing", {"used": 300}, "used: used (300) must be ≤ table (256)"),
        ("host-packing", {"irte_entries": 1000}, "irte_entries: must be a power of two"),
        ("host-packing", {"reservation_mode": "maybe"}, "reservation_mode: must be true or false"),
        ("host-packing", {"duration": "50us"}, "duration: duration must exceed the longest resize"),
        (
            "host-packing",
            {"duration": "10ms"},
            "duration: duration must exceed the last device's start",
        ),
        ("host-packing", {"vms": 4096, "table": 2048}, "table: vms·devices_per_vm·table must be ≤"),
    ],
)
def test_parameter_errors_name_the_field(
    name: str, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        SCENARIOS[name].resolve(overrides)
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_policy_errors() -> None:
    storm = SCENARIOS["storm"]
    with pytest.raises(InvalidArgument, match=r"^policy: unknown policy 'qemu'"):
        storm.build(None, "qemu", 0)
    with pytest.raises(InvalidArgument, match=r"^policy: storm applies to noresize, upfront"):
        storm.build(None, "ims", 0)
    with pytest.raises(InvalidArgument, match=r"^seed: "):
        storm.build(None, "noresize", -1)


def test_unit_strings_convert_to_ns() -> None:
    config = SCENARIOS["storm"].build(
        {"gap": "250us", "w0": "1.5 µs", "w_alloc": "7ns"}, "noresize", 0, 10
    )
    assert config["devices"][0]["program"][-1]["delay_ns"] == 250_000
    assert config["timing"]["w0_ns"] == 1_500 and config["timing"]["w_alloc_ns"] == 7


def test_get_scenario_and_variants() -> None:
    assert get_scenario("storm") == (SCENARIOS["storm"], None)
    assert get_scenario("host-packing:no-reservation")[1] == "no-reservation"
    with pytest.raises(InvalidArgument, match=r"^scenario: unknown scenario 'nope'"):
        get_scenario("nope")
    with pytest.raises(InvalidArgument, match=r"^variant: storm has no variant 'x'"):
        get_scenario("storm:x")


def test_every_builtin_config_is_valid_and_deterministic() -> None:
    for s in SCENARIOS.values():
        for variant in [*s.variants] or [None]:
            params = s.variant(variant) if variant else {}
            for policy in s.policies:
                a = s.build(params, policy, 11)
                b = s.build(params, policy, 11)
                validate_engine_config(a)
                assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
                assert a["policy"]["kind"] == policy and a["seed"] == 11


def test_storm_closed_form_hand_computed() -> None:
    # rate 1000/s, w0 = 10 µs, w1 = 1 µs, T = 3: per cycle of one device
    # k=0: 0; k=1: 1·(10+2) µs; k=2: 2·(10+3) µs; × 1000/s = 0.038.
    # Without early enable: W2(k) = w0 + w_free·k + w_alloc·(k+1); w_free = 0.
    p = {
        "devices": 1,
        "table": 3,
        "init": 0,
        "rate": 1000,
        "w0": 10e-6,
        "w_free": 0,
        "w_alloc": 1e-6,
        "early_enable": "false",
    }
    assert storm_closed_form_lost(p, 3) == pytest.approx(0.038)
    assert storm_closed_form_lost(p, 4) == pytest.approx(0.038)
    assert storm_closed_form_lost(p, 5) == pytest.approx(0.050)
    assert storm_closed_form_lost(p, 30) == pytest.approx(0.38)
    # Two devices: 3 requests complete groups (k=0, k=1) on both devices.
    assert storm_closed_form_lost({**p, "devices": 2}, 3) == pytest.approx(0.024)
    # A partial last group counts whole: 2 devices, 5 requests = 3 groups.
    assert storm_closed_form_lost({**p, "devices": 2}, 5) == pytest.approx(0.076)
    # The storm defaults (docs/storm.md): ≈ 25.9 lost per resize over whole cycles.
    # The storm defaults (early enable): Σ_k k·(20 µs + 0.5 µs·k) per device cycle.
    per_cycle = sum(k * (20e-6 + 0.5e-6 * k) for k in range(64))
    assert storm_closed_form_lost(None, 20_480) == pytest.approx(20_000 * 16 * 20 * per_cycle)
    assert storm_closed_form_lost(None, 20_480) / 20_480 == pytest.approx(25.935, abs=1e-3)


def test_workload_estimate_of_the_storm() -> None:
    config = SCENARIOS["storm"].build({"devices": 1, "table": 3, "init": 0}, "noresize", 0, 3)
    w = analyse(config)
    (d,) = w.devices
    assert d.requests == 3 and d.repeat
    # Live vector-time per cycle: gaps of 1 ms with 1 and 2 vectors live, the
    # final gap with 3 live, plus the resizes' host time w0 + w_free·live +
    # w_alloc·(k+1): 1·(20+0.5+1) µs (k=1), 2·(20+1+1.5) µs (k=2).
    live_s = (1 + 2 + 3) * 1e-3 + 1 * 21.5e-6 + 2 * 22.5e-6
    assert d.fires == pytest.approx(20_000 * live_s)


def test_default_compare_budget() -> None:
    # The engine does ~20-50 M interrupt events/s: the default compare must
    # stay well inside 2 minutes on 2 cores even at the slow end.
    total = 0.0
    for s in SCENARIOS.values():
        for variant in [*s.variants] or [None]:
            params = s.variant(variant) if variant else {}
            for policy in s.policies:
                config = s.build(params, policy, 0)
                fires = analyse(config).expected_fires(config["stop"])
                assert fires < 20e6, (s.name, policy, fires)
                total += fires
    assert total < 400e6
    storm = SCENARIOS["storm"]
    assert storm.default_resizes is not None and 20_000 <= storm.default_resizes <= 50_000


@pytest.mark.parametrize(
    ("text", "rate"),
    [("50k", 50_000.0), ("2M/s", 2e6), ("1.5e3", 1_500.0), (" 20000 ", 20_000.0), ("1G", 1e9)],
)
def test_rates_take_multipliers(text: str, rate: float) -> None:
    assert SCENARIOS["storm"].param("rate").parse(text) == rate


@pytest.mark.parametrize("text", ["50q", "k", "1kk", "2G"])
def test_bad_rates_name_the_parameter(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^rate: must be"):
        SCENARIOS["storm"].param("rate").parse(text)
