"""The Rust engine through its Python binding: runs, custom policies,
stepping and draining, replications, and errors."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import msixcore
from msixcore import _core
from msixcore.policies import NoresizePolicy

OUTCOMES = ["delivered", "pending", "coalesced", "lost", "intx", "blocked", "failed"]


def storm(
    *,
    devices: int = 2,
    table: int = 8,
    rate: float = 50_000.0,
    policy: str = "noresize",
    resizes: int = 64,
    seed: int = 1,
    negotiate: bool = True,
) -> dict[str, Any]:
    program: list[dict[str, Any]] = []
    if negotiate:
        program.append({"action": {"op": "negotiate", "minvec": 1, "maxvec": table}})
    program.append({"action": {"op": "enable"}})
    for k in range(table):
        program.append(
            {"delay_ns": 0 if k < 2 else 1_000_000, "action": {"op": "unmask", "entry": k}}
        )
    program.append({"delay_ns": 1_000_000, "action": {"op": "disable"}})
    device = {"entries": table, "rate": rate, "program": program, "repeat": True}
    return {
        "seed": seed,
        "policy": {"kind": policy},
        "timing": {"w0_ns": 50_000, "w_free_ns": 500, "w_alloc_ns": 500, "t_request_ns": 0},
        "devices": [device] * devices,
        "stop": {"max_resizes": resizes, "max_time_ns": 10**13},
    }


def run(cfg: dict[str, Any], policy: object | None = None) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(_core.run_simulation(json.dumps(cfg), policy))
    return out


def test_noresize_storm_loses_and_books_balance() -> None:
    r = run(storm())
    books = r["books"]
    assert sorted(books["outcomes"]) == sorted(OUTCOMES)
    assert books["fired"] == sum(books["outcomes"].values())
    assert books["outcomes"]["lost"] > 0
    assert r["stats"]["resizes"] == 64
    assert r["stats"]["resize_requests"] == 64


@pytest.mark.parametrize("policy", ["dynamic", "upfront", "hypercall", "ims"])
def test_policies_without_windows_lose_nothing(policy: str) -> None:
    r = run(storm(policy=policy))
    assert r["books"]["outcomes"]["lost"] == 0
    assert r["books"]["outcomes"]["delivered"] > 0
    assert r["stats"]["resizes"] == 0


def test_same_seed_same_bytes_other_seed_other_counts() -> None:
    a = _core.run_simulation(json.dumps(storm(seed=5)))
    assert a == _core.run_simulation(json.dumps(storm(seed=5)))
    assert a != _core.run_simulation(json.dumps(storm(seed=6)))


def test_python_policy_matches_the_builtin_noresize() -> None:
    builtin = run(storm(seed=9))
    custom = run(storm(seed=9), NoresizePolicy())
    assert custom["books"] == builtin["books"]
    assert custom["stats"]["resizes"] == builtin["stats"]["resizes"]


class _Raising(NoresizePolicy):
    def unmask(self, dev: int, entry: int) -> list[Any]:
        raise RuntimeError("boom")


class _Garbage(NoresizePolicy):
    def unmask(self, dev: int, entry: int) -> Any:
        return [("teleport", 3)]


class _PastTheTable(NoresizePolicy):
    def unmask(self, dev: int, entry: int) -> list[Any]:
        return [("disable_index",), ("enable_vectors", [True] * 100)]


class _Granting(NoresizePolicy):
    """Grants 4 vectors and has the host request them at once."""

    name = "grant-4"

    def negotiate(self, dev: int, minvec: int, maxvec: int) -> tuple[int, bool]:  # type: ignore[override]
        return 4, True

    def enable(self, dev: int) -> list[Any]:
        return []

    def unmask(self, dev: int, entry: int) -> list[Any]:
        return []

    def disable(self, dev: int) -> list[Any]:
        return [("disable_index",)]


def test_python_policy_errors_are_typed() -> None:
    with pytest.raises(
        msixcore.InvalidArgument, match=r"policy\.unmask raised: RuntimeError: boom"
    ):
        run(storm(), _Raising())
    with pytest.raises(msixcore.InvalidArgument, match="unknown operation"):
        run(storm(), _Garbage())
    with pytest.raises(msixcore.InvalidArgument, match="past the table of 8"):
        run(storm(table=8), _PastTheTable())


def test_a_simulation_that_failed_mid_step_refuses_to_go_on() -> None:
    sim = _core.Simulation(json.dumps(storm()), _Raising())
    with pytest.raises(msixcore.InvalidArgument, match=r"policy\.unmask raised: RuntimeError"):
        sim.step_until(10**9)
    # Its state past the error matches no valid run: every later step, and its
    # result, name the first failure instead.
    for again in (lambda: sim.step_until(2 * 10**9), sim.run, sim.result):
        with pytest.raises(
            msixcore.InvalidOperation,
            match=r"simulation_failed.*an earlier step failed: .*RuntimeError: boom",
        ):
            again()


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit, MemoryError])
def test_a_base_exception_in_a_policy_reaches_the_caller_unchanged(
    exc: type[BaseException],
) -> None:
    class Interrupted(NoresizePolicy):
        def unmask(self, dev: int, entry: int) -> list[Any]:
            raise exc("from the policy")

    with pytest.raises(exc, match="from the policy"):
        run(storm(), Interrupted())
    sim = _core.Simulation(json.dumps(storm()), Interrupted())
    with pytest.raises(exc, match="from the policy"):
        sim.step_until(10**9)
    # The run stopped there: what comes next is the sticky failure.
    with pytest.raises(msixcore.InvalidOperation, match="simulation_failed"):
        sim.step_until(2 * 10**9)


def test_python_policy_grant_limits_the_driver() -> None:
    r = run(storm(table=8, resizes=40), _Granting())
    # Entries 4..7 are past the grant: the driver never unmasks them.
    assert r["stats"]["unmasks_skipped"] > 0
    assert r["books"]["outcomes"]["lost"] == 0
    assert r["books"]["outcomes"]["delivered"] > 0


def test_simulation_steps_and_drains_numpy() -> None:
    cfg = storm(devices=1, resizes=1000)
    cfg["handler"] = {"service_ns": None, "queue_capacity": 1 << 20}
    sim = _core.Simulation(json.dumps(cfg))
    assert sim.policy == "noresize"
    assert _core.Simulation(json.dumps(cfg), NoresizePolicy()).policy == "py-noresize"
    assert sim.now_ns == 0
    assert not sim.step_until(5_000_000)
    assert sim.now_ns == 5_000_000
    books = sim.books()
    assert books["fired"] == sum(books[o] for o in OUTCOMES)
    drained = {cpu: sim.drain(cpu) for cpu in range(8)}
    total = sum(len(d["time_ns"]) for d in drained.values())
    assert total == books["delivered"]
    for cpu, d in drained.items():
        assert d["time_ns"].dtype == np.uint64
        assert d["vector"].dtype == np.uint8
        assert np.all(d["cpu"] == cpu)
        assert np.all(np.diff(d["time_ns"].astype(np.int64)) >= 0)
        assert np.all(d["time_ns"] <= 5_000_000)
    assert len(sim.drain(0)["time_ns"]) == 0
    with pytest.raises(msixcore.InvalidArgument):
        sim.drain(99)
    result = json.loads(sim.run())
    assert sim.finished
    assert result["stats"]["resize_requests"] == 1000


def test_replications_are_thread_count_independent() -> None:
    cfg = json.dumps(storm())
    one = _core.run_replications(cfg, [1, 2, 3, 4], 1)
    two = _core.run_replications(cfg, [1, 2, 3, 4], 2)
    assert one == two
    r = json.loads(one)
    assert [x["seed"] for x in r["replications"]] == [1, 2, 3, 4]
    assert r["books"]["outcomes"]["lost"] == sum(x["outcomes"]["lost"] for x in r["replications"])
    single = run(storm(seed=3))
    assert r["replications"][2]["outcomes"] == single["books"]["outcomes"]


def test_aggregated_mode_runs_and_balances() -> None:
    cfg = storm(resizes=640)
    cfg["mode"] = "aggregated"
    r = run(cfg)
    assert r["books"]["fired"] == sum(r["books"]["outcomes"].values())
    assert r["books"]["outcomes"]["lost"] > 0


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"devices": []}, "devices"),
        ({"stop": {}}, "stop"),
        ({"mode": "warp"}, "mode"),
        ({"bogus": 1}, "bogus"),
        ({"policy": {"kind": "magic"}}, "magic"),
        ({"host": {"ncpus": 0}}, "host.ncpus"),
        ({"host": {"irte_entries": 1000}}, "host.irte_entries"),
    ],
)
def test_bad_configs_name_the_field(patch: dict[str, Any], field: str) -> None:
    cfg = storm()
    cfg.update(patch)
    with pytest.raises(msixcore.InvalidArgument, match=field):
        _core.run_simulation(json.dumps(cfg))


def test_bad_device_fields_name_the_device() -> None:
    for key, value in [("entries", 4096), ("entries", 0), ("rate", -1.0)]:
        cfg = storm()
        cfg["devices"] = [dict(cfg["devices"][0], **{key: value})]
        with pytest.raises(msixcore.InvalidArgument, match=rf"devices\[0\]\.{key}"):
            _core.run_simulation(json.dumps(cfg))
    with pytest.raises(msixcore.InvalidArgument):
        _core.run_simulation("{not json")


class _LeavesMasked(NoresizePolicy):
    """Enables the index but never requests the vector: its entry stays masked."""

    def unmask(self, dev: int, entry: int) -> list[Any]:
        return [("disable_index",), ("enable_vectors", [False] * (entry + 1))]


def test_reset_loses_what_the_pba_latched() -> None:
    program = [
        {"action": {"op": "enable"}},
        {"action": {"op": "unmask", "entry": 0}},
        {"delay_ns": 1_000_000, "action": {"op": "reset"}},
    ]
    cfg = {
        "seed": 1,
        "devices": [{"entries": 4, "rate": 100_000.0, "semantics": "pba", "program": program}],
        "stop": {"max_time_ns": 2_000_000},
    }
    r = run(cfg, _LeavesMasked())["books"]["outcomes"]
    # The masked entry latched one pending bit; the rest coalesced into it;
    # the reset dropped the latched event.
    assert r["lost"] == 1
    assert r["pending"] == 0
    assert r["coalesced"] > 10
    assert r["delivered"] == 0
    cfg["devices"][0]["program"][-1]["action"]["op"] = "disable"
    r = run(cfg, _LeavesMasked())["books"]["outcomes"]
    assert (r["lost"], r["pending"]) == (0, 1)  # a disable keeps the PBA


class _BoolGrant(_Granting):
    """Returns a bool where a count belongs."""

    name = "bool-grant"

    def negotiate(self, dev: int, minvec: int, maxvec: int) -> tuple[int, bool]:  # type: ignore[override]
        return True, True


def test_a_python_policy_bool_is_not_a_count() -> None:
    # PyO3's integer extraction took True as 1; the one conversion refuses bools.
    with pytest.raises(msixcore.InvalidArgument, match=r"policy.negotiate returned \(True, True\)"):
        run(storm(table=8, resizes=40), _BoolGrant())
