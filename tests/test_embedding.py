"""Embedding, from Python: ``Simulation.act``, the SimPy guest (``examples/simpy_guest.py``)
and the session of ``docs/embedding.md``, each run here. The Rust example runs under
``cargo test`` (``rust/core/tests/embed_threads.rs``)."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msixcore import InvalidArgument, MsixError, Simulation, guest
from msixcore.policies import NoresizePolicy

ROOT = Path(__file__).resolve().parents[1]
SIMPY_GUEST = ROOT / "examples" / "simpy_guest.py"
EMBEDDING_MD = ROOT / "docs" / "embedding.md"


def config(program: list[Any], policy: str = "noresize", **extra: Any) -> dict[str, Any]:
    """One 8-entry device at 20,000 interrupts/s per vector, 30 ms."""
    return {
        "seed": 5,
        "host": {"ncpus": 4},
        "policy": {"kind": policy},
        "devices": [{"entries": 8, "rate": 20_000.0, "program": program}],
        "stop": {"max_time_ns": 30_000_000},
        **extra,
    }


# ---------------------------------------------------------------- Simulation.act


@pytest.mark.parametrize("policy", ["noresize", "dynamic"])
def test_acting_a_program_is_the_program_run(policy: str) -> None:
    program = [*guest.probe(8, used=6, gap=1e-3), guest.mask(2, after=2e-3), guest.unmask(2, 3e-3)]
    by_program = json.loads(Simulation(json.dumps(config(program, policy))).run())
    sim = Simulation(json.dumps(config([], policy)))
    t = 0
    for step in program:
        t += step["delay_ns"]
        sim.step_until(t)
        t = sim.act(0, step["action"])
    by_act = json.loads(sim.run())
    assert by_act["books"]["fired"] > 1_000
    assert by_act == by_program


def test_a_python_policy_answers_acted_steps_as_the_builtin_does() -> None:
    def acted(policy: object | None) -> dict[str, Any]:
        sim = Simulation(json.dumps(config([])), policy)
        for step in guest.probe(8, gap=1e-3):
            sim.step_until(sim.now_ns + step["delay_ns"])
            sim.step_until(sim.act(0, step["action"]))
        return dict(json.loads(sim.run()))

    builtin = acted(None)
    assert builtin["stats"]["resizes"] > 0 and builtin["books"]["fired"] > 0
    assert acted(NoresizePolicy()) == builtin


def test_an_unmask_makes_a_vector_deliver_and_a_mask_holds_it() -> None:
    sim = Simulation(json.dumps(config([], "dynamic", handler={"service_ns": None})))
    sim.step_until(sim.act(0, {"op": "enable"}))
    sim.step_until(sim.act(0, {"op": "unmask", "entry": 5}))
    sim.step_until(5_000_000)
    entries = [int(k) for cpu in range(4) for k in sim.drain(cpu)["entry"]]
    assert len(entries) > 20 and set(entries) == {5}
    sim.step_until(sim.act(0, {"op": "mask", "entry": 5}))
    sim.step_until(10_000_000)
    assert sum(len(sim.drain(cpu)["entry"]) for cpu in range(4)) == 0
    books = sim.books()
    assert books["pending"] == 1 and books["coalesced"] > 20


def test_bad_actions_raise_invalid_argument_and_change_nothing() -> None:
    sim = Simulation(json.dumps(config([])))
    done = sim.act(0, {"op": "enable"})
    assert done > sim.now_ns
    cases: list[tuple[Any, Any, str]] = [
        (0, {"op": "unmask", "entry": 1}, "previous step completes"),
        (1, {"op": "enable"}, "device 1 is past"),
        (-1, {"op": "enable"}, "dev = -1 is out of range"),
        (True, {"op": "enable"}, "dev must be an int, not bool"),
        (0, {"op": "unmask", "entry": 8}, "entry 8 is past the table of 8"),
        (0, {"op": "negotiate", "minvec": 0, "maxvec": 2}, "minvec"),
        (0, {"op": "unmsk", "entry": 1}, "action.op: unknown variant"),
        (0, {"op": "unmask"}, "missing field `entry`"),
        (0, {"op": "unmask", "entry": 1, "cpu": 0}, "unknown field `cpu`"),
        (0, {"op": "unmask", "entry": -1}, "action"),
        (0, {"op": "unmask", "entry": float("nan")}, "not representable as JSON"),
        (0, {"op": object()}, "not representable as JSON"),
        (0, [1, 2], "action"),
        (0, None, "action"),
    ]
    for dev, action, why in cases:
        with pytest.raises(InvalidArgument, match=re.escape(why)):
            sim.act(dev, action)
    assert sim.books()["fired"] == 0 and sim.now_ns == 0
    sim.step_until(done)
    sim.act(0, {"op": "unmask", "entry": 1})
    sim.step_until(30_000_000)
    with pytest.raises(InvalidArgument, match="the run has finished"):
        sim.act(0, {"op": "wait"})

    running = Simulation(json.dumps(config(guest.probe(8, gap=1e-3))))
    with pytest.raises(InvalidArgument, match="its program is still running"):
        running.act(0, {"op": "wait"})


garbage = st.one_of(
    st.integers(),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=4),
    st.lists(st.integers(-2, 9), max_size=3),
    st.dictionaries(
        st.sampled_from(["op", "entry", "minvec", "maxvec", "phase", "x"]),
        st.one_of(
            st.sampled_from(["enable", "unmask", "mask", "free", "negotiate", "phase", "wait"]),
            st.sampled_from(["probe", "runtime"]),
            st.integers(-(2**70), 2**70),
            st.floats(allow_nan=True),
            st.none(),
        ),
        max_size=4,
    ),
)


@settings(max_examples=200, deadline=None)
@given(calls=st.lists(st.tuples(garbage, garbage, st.integers(0, 3_000_000)), max_size=8))
def test_random_actions_never_panic(calls: list[tuple[Any, Any, int]]) -> None:
    sim = Simulation(json.dumps(config([])))
    for dev, action, dt in calls:
        sim.step_until(sim.now_ns + dt)
        try:
            sim.act(dev, action)
        except BaseException as e:  # a Rust panic is a BaseException
            assert isinstance(e, MsixError | ValueError | TypeError), repr(e)
            assert not isinstance(e, OverflowError), repr(e)
    books = json.loads(sim.run())["books"]
    assert books["fired"] == sum(books["outcomes"].values())


# ---------------------------------------------------------------- the SimPy guest


def simpy_guest() -> ModuleType:
    """``examples/simpy_guest.py`` as a module (the examples are not a package)."""
    spec = importlib.util.spec_from_file_location("simpy_guest", SIMPY_GUEST)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["simpy_guest"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("policy", ["noresize", "dynamic"])
def test_the_simpy_guest_sees_every_delivery_and_moderates_the_busy_vector(policy: str) -> None:
    ex = simpy_guest()
    r = ex.run(policy, seed=1)
    b = r.books
    assert b["fired"] == sum(n for name, n in b.items() if name != "fired")
    assert b["fired"] > 10_000
    # The probe unmasked every vector, and the handler drained each one's deliveries.
    assert sorted(r.per_entry) == list(range(ex.ENTRIES))
    assert sum(r.per_entry.values()) == r.drained == sum(r.per_cpu.values())
    assert r.per_entry[ex.BUSY_ENTRY] == max(r.per_entry.values())
    # The driver reacted to the drained counts: it masked the busy vector again and
    # again, for at least MASKED_NS each time, and nothing of it was delivered meanwhile.
    assert len(r.masked) >= 10
    assert all(k == ex.BUSY_ENTRY and end - start >= ex.MASKED_NS for k, start, end in r.masked)
    assert r.while_masked == 0
    assert b["coalesced"] > 5_000  # the busy vector's fires while it was masked
    # Every delivery was drained but the one QEMU held per masked stretch.
    assert b["delivered"] == r.drained + len(r.masked)
    # NORESIZE resizes at each probe unmask lose the live vectors' fires; dynamic MSI-X
    # does not resize.
    assert (b["lost"] > 0) == (policy == "noresize")
    # Same seed, same run.
    again = ex.run(policy, seed=1)
    assert (again.books, again.per_entry, again.masked) == (b, r.per_entry, r.masked)


def test_the_simpy_guest_runs_as_a_command() -> None:
    out = subprocess.run(
        [sys.executable, str(SIMPY_GUEST), "--seed", "2", "--policy", "dynamic"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "deliveries while masked: 0" in out
    assert re.search(r"delivered (\d+) = drained (\d+) \+ (\d+) held by QEMU", out)


# ---------------------------------------------------------------- docs/embedding.md


def session_cells() -> list[str]:
    """The ``python`` cells of docs/embedding.md, in order."""
    return re.findall(r"^```python\n(.*?)^```$", EMBEDDING_MD.read_text(), re.M | re.S)


def test_the_docs_session_runs_and_prints_what_it_says() -> None:
    cells = session_cells()
    assert len(cells) >= 5
    namespace: dict[str, Any] = {"__name__": "embedding_session"}
    for i, cell in enumerate(cells):
        # Each `print(...)  # shown` line says what it prints.
        shown = [
            line.split("  # ", 1)[1]
            for line in cell.splitlines()
            if line.lstrip().startswith("print(") and "  # " in line
        ]
        out = io.StringIO()
        with redirect_stdout(out):
            exec(compile(cell, f"{EMBEDDING_MD}:cell {i}", "exec"), namespace)
        assert out.getvalue().splitlines() == shown, f"cell {i}"
    books, drained = namespace["books"], namespace["drained"]
    assert books["fired"] > 3_000 and books["delivered"] == drained + 1
    assert namespace["masked"][1] == 0 and namespace["sim"].finished
