"""Shared pieces of the hypothesis state machines (tests/test_sm_*.py).

``MSIXCORE_HYPOTHESIS_PROFILE=long`` scales every machine's examples up for a long hunt;
``MSIXCORE_SM_STATS=path`` appends one JSON line per finished machine run (its steps) there.
"""

from __future__ import annotations

import json
import math
import os
import reprlib
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant

from msixcore import MsixError

PROFILE = os.environ.get("MSIXCORE_HYPOTHESIS_PROFILE", "ci")
SCALE = {"ci": 1, "long": 60}.get(PROFILE, 1)
STATS_PATH = os.environ.get("MSIXCORE_SM_STATS")


def machine_settings(examples: int, steps: int) -> settings:
    """Bounded settings for CI; the long profile multiplies the examples and adds steps."""
    return settings(
        max_examples=examples * SCALE,
        stateful_step_count=steps if SCALE == 1 else steps * 2,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class Boom(Exception):
    """A caller's own exception: it must come back out unchanged."""


class RaisingIndex:
    """An int-like whose ``__index__`` raises."""

    def __index__(self) -> int:
        raise Boom("index")


class BadIndex:
    """An int-like whose ``__index__`` returns a str."""

    def __index__(self) -> Any:
        return "7"


class BigIndex:
    """An int-like whose ``__index__`` is past 2**64."""

    def __index__(self) -> int:
        return 2**70


class BoomIter:
    """An iterable that raises after one item."""

    def __iter__(self) -> Any:
        yield 0
        raise Boom("iter")


#: Allowed exception types out of any call: the caller's own Boom propagates unchanged.
ALLOWED: tuple[type[BaseException], ...] = (MsixError, ValueError, TypeError, Boom)


def check_exception(e: BaseException, what: str) -> None:
    """Fail on anything but a typed msixcore error, ValueError or TypeError."""
    name = f"{type(e).__module__}.{type(e).__qualname__}"
    assert "Panic" not in name, f"Rust panic from {what}: {e}"
    assert not isinstance(e, OverflowError), f"OverflowError from {what}: {e}"
    assert not isinstance(e, RecursionError | MemoryError), f"{name} from {what}: {e}"
    assert isinstance(e, ALLOWED), f"{name} from {what}: {e}"


_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxstring, _repr.maxother = 3, 60, 60


def short(v: Any) -> str:
    """A bounded repr (arguments may nest thousands of levels)."""
    return _repr.repr(v)


class Outcome:
    """What a checked call did: ``ok`` with ``value``, or ``error``."""

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error

    @property
    def ok(self) -> bool:
        return self.error is None


def attempt(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
    """Call ``fn``; an exception must be an allowed one (then returned, not raised)."""
    try:
        return Outcome(value=fn(*args, **kwargs))
    except BaseException as e:  # a PanicException is a BaseException
        check_exception(e, f"{getattr(fn, '__qualname__', fn)!r}{short(args)}{short(kwargs)}")
        return Outcome(error=e)


def deep_dict(depth: int) -> dict[str, Any]:
    """``{"a": {"a": ... {}}}`` nested ``depth`` levels."""
    d: dict[str, Any] = {}
    for _ in range(depth):
        d = {"a": d}
    return d


def deep_list(depth: int) -> list[Any]:
    """``[[...[]]]`` nested ``depth`` levels."""
    v: list[Any] = []
    for _ in range(depth):
        v = [v]
    return v


BOUNDARY_INTS = [
    -(2**200),
    -(2**64),
    -(2**63),
    -(2**31),
    -1,
    0,
    1,
    2,
    255,
    256,
    2047,
    2048,
    2**16,
    2**31 - 1,
    2**32 - 1,
    2**32,
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,
    2**128,
    2**300,
]

bad_floats = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, -1.5, 0.5, 1e-320])

#: Hostile values for an int parameter.
hostile_int = st.one_of(
    st.sampled_from(BOUNDARY_INTS),
    st.integers(),
    st.booleans(),
    bad_floats,
    st.sampled_from(BOUNDARY_INTS).map(lambda v: np.uint64(v % 2**64)),
    st.integers(-(2**31), 2**31 - 1).map(np.int32),
    st.just(np.bool_(True)),
    st.sampled_from([RaisingIndex(), BadIndex(), BigIndex()]),
)

#: Anything at all.
garbage = st.one_of(
    hostile_int,
    st.none(),
    st.text(max_size=4),
    st.just("\ud800"),
    st.binary(max_size=4),
    st.lists(st.integers(-3, 300), max_size=4),
    st.lists(st.sampled_from(BOUNDARY_INTS), max_size=3),
    st.just(BoomIter()),
    st.integers(1, 3000).map(deep_dict),
    st.integers(1, 3000).map(deep_list),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.just(object()),
    st.just(np.zeros(3, dtype=np.float64)),
)


class CountingMachine(RuleBasedStateMachine):
    """Counts its steps; with MSIXCORE_SM_STATS set, logs them when the run ends."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    @invariant()
    def count_step(self) -> None:
        self.steps += 1

    def teardown(self) -> None:
        if STATS_PATH:
            with open(STATS_PATH, "a") as f:
                f.write(json.dumps({"machine": type(self).__name__, "steps": self.steps}) + "\n")


class Err:
    """An expected error: its class, or several acceptable ones."""

    def __init__(self, *types: type[BaseException]) -> None:
        self.types = types

    def __repr__(self) -> str:
        return f"Err{self.types}"


def as_int(v: Any) -> int | Err:
    """What the binding's int conversion (rust/python/src/convert.rs) makes of ``v``:
    the int, or the error it must raise before any range check."""
    from msixcore import InvalidArgument

    if isinstance(v, bool):
        return Err(InvalidArgument)
    if isinstance(v, int):
        return int(v)
    index = getattr(type(v), "__index__", None)
    if index is None:
        return Err(TypeError)
    try:
        out = index(v)
    except Boom:
        return Err(Boom)
    if isinstance(out, bool) or not isinstance(out, int):
        return Err(TypeError)
    return int(out)


def in_range(v: Any, lo: int, hi: int, range_error: type[BaseException] | None = None) -> int | Err:
    """``as_int`` then the range check: InvalidArgument (or ``range_error``) outside lo..=hi."""
    from msixcore import InvalidArgument

    got = as_int(v)
    if isinstance(got, Err):
        return got
    if not lo <= got <= hi:
        return Err(range_error or InvalidArgument)
    return got


def first_error(*vals: int | Err) -> Err | None:
    """Any error of the arguments that fail (the binding may check them in any order)."""
    types = tuple(t for v in vals if isinstance(v, Err) for t in v.types)
    return Err(*types) if types else None


def expect_error(out: Outcome, err: Err, what: str) -> None:
    """The call failed with one of ``err``'s types."""
    assert not out.ok, f"{what} succeeded with {out.value!r}; expected {err}"
    assert isinstance(out.error, err.types), f"{what} raised {out.error!r}; expected {err}"


#: An int argument: mostly valid small values, sometimes hostile.
def int_arg(lo: int, hi: int) -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(lo, hi), st.integers(lo, hi), hostile_int)
