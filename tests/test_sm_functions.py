"""State machine over the module-level API: replications, config checks, results merging,
the storm helpers and the statistics, with valid and hostile arguments. The machine keeps the
results it got; invariants: every result's books balance, a replication equals the single run
with its seed, the merge of replications is their sum, the thread count changes no byte."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule
from sm_common import (
    Boom,
    CountingMachine,
    Err,
    attempt,
    deep_dict,
    expect_error,
    garbage,
    hostile_int,
    in_range,
    machine_settings,
)

import msixcore
from msixcore import OUTCOMES, InvalidArgument, _core

MS = 1_000_000


def config(seed: int, policy: str, rate: float, entries: int) -> dict[str, Any]:
    program = [{"action": {"op": "enable"}}] + [
        {"delay_ns": 100_000, "action": {"op": "unmask", "entry": k}} for k in range(entries)
    ]
    program.append({"delay_ns": 300_000, "action": {"op": "disable"}})
    return {
        "seed": seed,
        "policy": {"kind": policy},
        "devices": [{"entries": entries, "rate": rate, "program": program, "repeat": True}],
        "stop": {"max_time_ns": 3 * MS},
    }


hostile_configs = st.one_of(
    st.sampled_from(["", "{", "[]", "null", "1e999", '{"devices": []}', "\ud800"]),
    st.integers(1, 100_000).map(lambda n: '{"a": ' * n + "{}" + "}" * n),
    st.builds(
        lambda k, v: json.dumps({**config(1, "noresize", 1.0, 2), k: v}),
        st.sampled_from(["seed", "stop", "devices", "host", "bogus", "mode"]),
        st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=3), st.none(), st.just([])),
    ),
    garbage,
)


class FunctionsMachine(CountingMachine):
    @initialize(
        policy=st.sampled_from(msixcore.POLICIES),
        rate=st.sampled_from([0.0, 5_000.0, 50_000.0]),
        entries=st.integers(1, 4),
    )
    def build(self, policy: str, rate: float, entries: int) -> None:
        self.cfg = config(0, policy, rate, entries)
        self.results: list[dict[str, Any]] = []

    @rule(seeds=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=4), threads=st.data())
    def replications(self, seeds: list[int], threads: st.DataObject) -> None:
        text = json.dumps(self.cfg)
        a = _core.run_replications(text, seeds, 1)
        b = _core.run_replications(text, seeds, threads.draw(st.sampled_from([None, 0, 2, 64])))
        assert a == b  # same bytes whatever the threads
        r = json.loads(a)
        runs = r.pop("replications")
        assert [x["seed"] for x in runs] == seeds
        assert r["books"]["fired"] == sum(x["fired"] for x in runs)
        for o in OUTCOMES:
            assert r["books"]["outcomes"][o] == sum(x["outcomes"][o] for x in runs)
        one = json.loads(_core.run_simulation(json.dumps({**self.cfg, "seed": seeds[0]})))
        assert one["books"]["fired"] == runs[0]["fired"]
        assert one["books"]["outcomes"] == runs[0]["outcomes"]
        self.results.append(one)

    @rule(seeds=st.one_of(st.lists(hostile_int, max_size=3), garbage), threads=hostile_int)
    def replications_hostile(self, seeds: Any, threads: Any) -> None:
        out = attempt(_core.run_replications, json.dumps(self.cfg), seeds, threads)
        t = in_range(threads, 0, 2**64 - 1)
        if isinstance(t, Err):
            expect_error(out, Err(*t.types, TypeError, ValueError, Boom), "threads")

    @rule(text=hostile_configs)
    def config_checks(self, text: Any) -> None:
        for fn in (_core.validate_config, _core.normalize_config):
            attempt(fn, text)
        attempt(_core.run_simulation, text)

    @rule(k=st.sampled_from(["rate", "entries", "start_ns", "vm"]), v=st.one_of(garbage))
    def python_layer(self, k: str, v: Any) -> None:
        cfg = json.loads(json.dumps(self.cfg))
        cfg["devices"][0][k] = v
        for fn in (msixcore.validate_engine_config, msixcore.run_config):
            attempt(fn, cfg)

    @rule(name=st.sampled_from(sorted(msixcore.SCENARIOS)))
    def scenario_lookup(self, name: str) -> None:
        assert msixcore.get_scenario(name) is not None

    @precondition(lambda self: self.results)
    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        picks = data.draw(st.lists(st.sampled_from(self.results), min_size=1, max_size=3))
        merged = json.loads(_core.merge_run_results([json.dumps(r) for r in picks]))
        assert merged["books"]["fired"] == sum(r["books"]["fired"] for r in picks)
        self.results.append(merged)

    @precondition(lambda self: self.results)
    @rule(i=st.integers(0, 100), key=st.sampled_from(["fired", "lost", "end_time_ns"]))
    def merge_edited(self, i: int, key: str) -> None:
        r = json.loads(json.dumps(self.results[i % len(self.results)]))
        if key == "fired":
            r["books"]["fired"] += 1  # unbalanced
        elif key == "lost":
            r["books"]["outcomes"]["lost"] = 2**64 - 1
        else:
            r["stats"]["end_time_ns"] = 2**64 - 1
        out = attempt(_core.merge_run_results, [json.dumps(r)] * 2)
        assert not out.ok, key
        assert isinstance(out.error, msixcore.MsixError), out.error

    @rule(count=hostile_int, resizes=hostile_int, conf=st.one_of(st.floats(), garbage))
    def statistics(self, count: Any, resizes: Any, conf: Any) -> None:
        out = attempt(msixcore.garwood_interval, count, conf)
        if out.ok:
            lo, hi = out.value
            assert 0 <= lo <= hi and not math.isnan(hi)
        out = attempt(msixcore.per_million, count, resizes, conf)
        if out.ok and out.value.value is not None:
            assert out.value.lower <= out.value.value <= out.value.upper
        attempt(_core.storm_closed_form_lost, _core.storm_defaults(), resizes)

    @invariant()
    def results_balance(self) -> None:
        for r in self.results:
            assert r["books"]["fired"] == sum(r["books"]["outcomes"].values())


TestFunctionsMachine = FunctionsMachine.TestCase
TestFunctionsMachine.settings = machine_settings(examples=25, steps=15)


def test_merge_of_nothing_is_refused() -> None:
    out = attempt(_core.merge_run_results, [])
    expect_error(out, Err(InvalidArgument), "merge of []")


def test_garwood_interval_of_huge_counts_returns() -> None:
    """Found by the machine: from about 2**53 on the chi-squared inverse never returned."""
    for n in (2**40, 2**53, 2**64 - 1):
        lo, hi = msixcore.garwood_interval(n)
        assert lo <= n <= hi
    r = msixcore.per_million(2**63, 1)
    assert r.lower is not None and r.upper is not None and r.lower <= 2**63 * 1e6 <= r.upper


def test_storm_closed_form_of_huge_counts_returns() -> None:
    """Found by the machine: the sum ran term by term, 2**64 - 1 of them, holding the GIL."""
    defaults = _core.storm_defaults()
    small = _core.storm_closed_form_lost(defaults, 2**24)
    assert small < _core.storm_closed_form_lost(defaults, 2**64 - 1) < math.inf


def test_deep_config_is_an_invalid_argument_not_a_recursion_error() -> None:
    """Found by the machine: json.dumps's RecursionError escaped config_json."""
    cfg = config(0, "noresize", 1.0, 1)
    cfg["devices"][0]["rate"] = deep_dict(100_000)
    for fn in (msixcore.validate_engine_config, msixcore.run_config, msixcore.normalize_config):
        out = attempt(fn, cfg)
        expect_error(out, Err(InvalidArgument), fn.__name__)
