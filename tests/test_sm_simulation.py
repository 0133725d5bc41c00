"""State machine over ``Simulation``: stepping in random chunks, guest actions, draining,
tracing, cancelling, with valid and hostile arguments and Python policies that misbehave.

After every step: the books balance (every fired interrupt in exactly one outcome), time
never goes back, a failed run stays failed (every later step raises a typed error), a refused
call changes nothing. At the end: a run stepped in chunks (and cancelled and resumed) gives
the same result as ``run_simulation`` of the same config."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import numpy as np
import pytest
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
    int_arg,
    machine_settings,
    short,
)

from msixcore import (
    OUTCOMES,
    POLICIES,
    InvalidArgument,
    InvalidOperation,
    MsixError,
    Simulation,
    run_simulation,
)
from msixcore._core import merge_run_results
from msixcore.policies import NoresizePolicy

MS = 1_000_000


def device(entries: int, rate: float, program: str, repeat: bool) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    if program != "empty":
        steps.append({"action": {"op": "negotiate", "minvec": 1, "maxvec": entries}})
        steps.append({"delay_ns": 100_000, "action": {"op": "enable"}})
        steps += [
            {"delay_ns": 200_000, "action": {"op": "unmask", "entry": k}} for k in range(entries)
        ]
        if program == "cycle":
            steps.append({"delay_ns": 500_000, "action": {"op": "disable"}})
    return {"entries": entries, "rate": rate, "program": steps, "repeat": repeat}


configs = st.builds(
    lambda devs, policy, mode, seed, t_end, ncpus: {
        "seed": seed,
        "mode": mode,
        "policy": {"kind": policy},
        "host": {"ncpus": ncpus},
        "timing": {"w0_ns": 50_000, "w_free_ns": 500, "w_alloc_ns": 500},
        "devices": devs,
        "stop": {"max_time_ns": t_end},
    },
    devs=st.lists(
        st.builds(
            device,
            entries=st.integers(1, 6),
            rate=st.sampled_from([0.0, 2_000.0, 20_000.0]),
            program=st.sampled_from(["empty", "probe", "cycle"]),
            repeat=st.booleans(),
        ),
        min_size=1,
        max_size=2,
    ),
    policy=st.sampled_from(POLICIES),
    mode=st.sampled_from(["event", "event", "aggregated"]),
    seed=st.integers(0, 2**64 - 1),
    t_end=st.integers(1, 8).map(lambda k: k * MS),
    ncpus=st.integers(1, 4),
)


class Misbehaving(NoresizePolicy):
    """The built-in noresize in Python, until call ``when``: then it answers ``how``."""

    def __init__(self, when: int, how: str) -> None:
        super().__init__()
        self.calls = 0
        self.when = when
        self.how = how

    def _act(self, dev: int, f: Any) -> Any:
        self.calls += 1
        if self.calls < self.when:
            return super()._act(dev, f)
        if self.how == "raise":
            raise ValueError("policy gave up")
        return {
            "str": "nonsense",
            "deep": [deep_dict(5000)],
            "huge": [("set_signalling", 2**70)],
            "neg": [("add_vector", -1)],
            "nan": [("set_signalling", math.nan)],
            "unknown": [("reboot_host",)],
            "bool": [("set_signalling", True)],
        }[self.how]


actions = st.one_of(
    st.sampled_from(["enable", "disable", "reset", "wait"]).map(lambda op: {"op": op}),
    st.builds(
        lambda op, k: {"op": op, "entry": k},
        st.sampled_from(["unmask", "mask", "free"]),
        st.one_of(st.integers(0, 7), hostile_int),
    ),
    st.builds(
        lambda a, b: {"op": "negotiate", "minvec": a, "maxvec": b},
        st.integers(-1, 8),
        st.integers(-1, 8),
    ),
    st.builds(lambda p: {"op": "phase", "phase": p}, st.sampled_from(["probe", "runtime", "x"])),
    st.builds(lambda extra: {"op": "unmask", "entry": 0, **extra}, st.just({"bogus": 1})),
    st.just({"op": "unmask", "entry": math.nan}),
    st.just({"op": "unmask", "entry": math.inf}),
    st.just({"op": "unmask", "entry": 2**64}),
    st.just({"op": "unmask", "entry": True}),
    garbage,
)


class SimulationMachine(CountingMachine):
    sim: Simulation

    @initialize(
        cfg=configs,
        policy=st.sampled_from([None, None, "python", "misbehaving"]),
        when=st.integers(1, 6),
        how=st.sampled_from(["raise", "str", "deep", "huge", "neg", "nan", "unknown", "bool"]),
        trace=st.booleans(),
    )
    def build(self, cfg: dict[str, Any], policy: str | None, when: int, how: str, trace: bool):
        self.cfg = cfg
        self.text = json.dumps(cfg)
        self.policy: Any = None
        if policy == "python":
            self.policy = NoresizePolicy()
            cfg["policy"]["kind"] = "noresize"
        elif policy == "misbehaving":
            self.policy = Misbehaving(when, how)
            cfg["policy"]["kind"] = "noresize"
        self.text = json.dumps(cfg)
        self.sim = Simulation(self.text, self.policy)
        self.failed = False  # a step failed: the run is dead
        self.acted = False  # a guest action changed the run: no reference to compare with
        self.drained = False
        self.traced = False
        self.stepped = False
        self.last_now = 0
        if trace and cfg["mode"] == "event":
            self.sim.trace(max_events=5000)
            self.traced = True

    def step_call(self, fn: Any, *args: Any) -> Any:
        """A call that runs the engine: once the run failed it must keep failing."""
        was_failed = self.failed
        out = attempt(fn, *args)
        if was_failed:
            expect_error(
                out, Err(MsixError, ValueError, TypeError, Boom), f"{fn.__name__} after a failure"
            )
        elif not out.ok:
            self.failed = self.probe_failed()
        return out

    def probe_failed(self) -> bool:
        """Whether the run is dead: a zero-length step says so (``simulation_failed``)."""
        out = attempt(self.sim.step_until, self.sim.now_ns)
        if out.ok:
            return False
        expect_error(out, Err(InvalidOperation), "step_until(now)")
        assert out.error.sites == ["simulation_failed"], out.error.sites
        return True

    @rule(dt=st.integers(0, 3 * MS))
    def step(self, dt: int) -> None:
        out = self.step_call(self.sim.step_until, self.last_now + dt)
        self.stepped = True
        if out.ok:
            assert out.value == self.sim.finished

    @rule(t=hostile_int)
    def step_hostile(self, t: Any) -> None:
        v = in_range(t, 0, 2**64 - 1)
        if isinstance(v, Err):
            before = self.sim.now_ns if not self.failed else None
            out = attempt(self.sim.step_until, t)
            expect_error(out, v, f"step_until({short(t)})")
            if before is not None:
                assert self.sim.now_ns == before
        elif v <= self.cfg["stop"]["max_time_ns"] * 2:
            self.stepped = True
            self.step_call(self.sim.step_until, v)

    @rule()
    def cancel_then_step(self) -> None:
        self.sim.cancel()
        out = self.step_call(self.sim.step_until, self.last_now + MS)
        if not self.failed:
            # a cancel stops the next step at once; the run goes on after
            expect_error(out, Err(InvalidOperation), "step after cancel")
            assert out.error.sites == ["cancelled"]
            assert self.sim.now_ns == self.last_now

    @precondition(lambda self: not self.acted)
    @rule(cpu=int_arg(0, 5))
    def drain(self, cpu: Any) -> None:
        out = attempt(self.sim.drain, cpu)
        c = in_range(cpu, 0, 2**32 - 1)
        if isinstance(c, Err):
            expect_error(out, c, f"drain({short(cpu)})")
        elif c >= self.cfg["host"]["ncpus"]:
            expect_error(out, Err(InvalidArgument), f"drain({c})")
        elif out.ok:
            d = out.value
            n = len(d["time_ns"])
            assert all(len(d[k]) == n for k in ("device", "entry", "cpu", "vector"))
            assert d["time_ns"].dtype == np.uint64 and d["vector"].dtype == np.uint8
            assert (d["cpu"] == c).all() and (d["time_ns"] <= self.sim.now_ns).all()
            assert (np.diff(d["time_ns"].astype(np.int64)) >= 0).all()
            self.drained |= n > 0

    @rule(dev=st.one_of(st.integers(0, 2), hostile_int), action=actions)
    def act(self, dev: Any, action: Any) -> None:
        before = None if self.failed else (self.sim.books(), self.sim.now_ns)
        out = self.step_call(self.sim.act, dev, action)
        if out.ok:
            self.acted = True
            assert out.value >= self.sim.now_ns
        elif isinstance(out.error, InvalidArgument | TypeError) and before is not None:
            if not self.failed:
                # refused: nothing changed
                assert (self.sim.books(), self.sim.now_ns) == before
            else:
                self.acted = True

    @rule()
    def run_to_end(self) -> None:
        out = self.step_call(self.sim.run)
        self.stepped = True
        if out.ok:
            assert self.sim.finished
            self.check_result(out.value)

    @rule()
    def result_so_far(self) -> None:
        out = attempt(self.sim.result)
        if self.failed:
            expect_error(out, Err(MsixError), "result after a failure")
        elif out.ok:
            r = json.loads(out.value)
            assert r["books"]["fired"] == sum(r["books"]["outcomes"].values())

    @rule(args=st.lists(st.one_of(st.none(), hostile_int, garbage), max_size=4))
    def trace_late_or_hostile(self, args: list[Any]) -> None:
        out = attempt(self.sim.trace, *args)
        if out.ok:
            # before the first step (a step to t = 0 may have done nothing)
            assert not self.stepped or self.sim.now_ns == 0
            self.traced = True
        out = attempt(self.sim.trace_summary)
        if out.ok:
            s = out.value
            assert s["events"] >= 0 and s["dropped"] >= 0
            assert self.traced
        attempt(self.sim.trace_json)

    @rule()
    def properties(self) -> None:
        assert isinstance(self.sim.policy, str)
        assert isinstance(self.sim.finished, bool)

    @invariant()
    def books_balance_and_time_moves_on(self) -> None:
        b = self.sim.books()
        assert b["fired"] == sum(b[o] for o in OUTCOMES)
        now = self.sim.now_ns
        assert now >= self.last_now
        self.last_now = now
        if self.failed:
            out = attempt(self.sim.step_until, now + MS)
            expect_error(out, Err(MsixError), "step after a failure")

    def check_result(self, text: str) -> None:
        r = json.loads(text)
        books = r["books"]
        assert books["fired"] == sum(books["outcomes"].values())
        phases = r["phases"]
        assert sum(p["fired"] for p in phases.values()) == books["fired"]
        if self.acted or self.failed or self.drained:
            return
        # stepping invariance: chunks, cancels and traces change nothing
        policy = NoresizePolicy() if self.policy is not None else None
        if isinstance(self.policy, Misbehaving):
            policy = Misbehaving(self.policy.when, self.policy.how)
        ref = attempt(run_simulation, self.text, policy)
        assert ref.ok, ref.error
        assert json.loads(ref.value) == r

    def teardown(self) -> None:
        if not self.failed and not self.acted:
            out = self.step_call(self.sim.run)
            if out.ok:
                self.check_result(out.value)
        super().teardown()


TestSimulationMachine = SimulationMachine.TestCase
TestSimulationMachine.settings = machine_settings(examples=40, steps=25)


def small_config() -> dict[str, Any]:
    return {
        "seed": 3,
        "devices": [device(4, 20_000.0, "cycle", True)],
        "stop": {"max_time_ns": 4 * MS},
    }


def test_cancel_between_steps_stops_the_next_short_step() -> None:
    """Found by the machine: a short step never looked at the flag, which then stopped some
    later step half-way."""
    sim = Simulation(json.dumps(small_config()))
    sim.step_until(1_000)
    sim.cancel()
    with pytest.raises(InvalidOperation) as e:
        sim.step_until(2_000)
    assert e.value.sites == ["cancelled"]
    assert sim.now_ns == 1_000
    assert sim.step_until(3_000) is False
    assert sim.run() == run_simulation(json.dumps(small_config()))


def test_merging_results_past_2_64_is_an_invalid_argument() -> None:
    """Found by the machine: the merge overflowed (a panic in debug builds, a wrap in
    release)."""
    r = json.loads(run_simulation(json.dumps(small_config())))
    r["stats"]["end_time_ns"] = 2**64 - 1
    with pytest.raises(InvalidArgument, match="exceeds 2"):
        merge_run_results([json.dumps(r)] * 2)


@pytest.mark.parametrize("answer", [[("set_signalling", True)], [("add_vector", 1.0)], True])
def test_policy_answers_are_ints_not_bools(answer: Any) -> None:
    """A Python policy's entries and counts go through the one int conversion: True is not 1."""

    class Odd(NoresizePolicy):
        def negotiate(self, dev: int, minvec: int, maxvec: int) -> Any:
            return answer if answer is True else None

        def _act(self, dev: int, f: Any) -> Any:
            return answer if answer is not True else super()._act(dev, f)

    cfg = small_config()
    cfg["devices"][0]["program"][0]["action"] = {"op": "negotiate", "minvec": 1, "maxvec": 4}
    cfg["policy"] = {"kind": "hypercall"}
    with pytest.raises(InvalidArgument, match="policy"):
        run_simulation(json.dumps(cfg), Odd())


def test_policy_errors_describe_deep_answers_without_unraisable_noise(
    recwarn: pytest.WarningsRecorder,
) -> None:
    """A deeply nested answer is named by its type, not str() (which failed as "unraisable")."""
    seen: list[Any] = []
    old = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        sim = Simulation(json.dumps(small_config()), Misbehaving(1, "deep"))
        with pytest.raises(InvalidArgument, match="dict object"):
            sim.run()
    finally:
        sys.unraisablehook = old
    assert seen == []
