"""Garbage in, no panic out: random arguments and random call sequences on every class.

Whatever a caller passes (negative, huge, bool, float, str, None, lists, numpy ints, wrong
arity), the only exceptions allowed out of ``msixcore._core`` are ``MsixError`` (with its
``InvalidArgument``, also a ``ValueError``) and ``TypeError``. In particular never
``pyo3_runtime.PanicException`` (a Rust panic, which derives from ``BaseException``) and never
``OverflowError``. Run this against a debug build (``maturin develop``) too: there, Rust
arithmetic overflow panics.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msixcore import (
    AmdIrte,
    AmdIrteTables,
    AmdRemapper,
    InterruptRemapper,
    IrqMatrix,
    Irte,
    IrteTable,
    MsixError,
    VectorDomain,
    VectorTable,
    compose_amd_msi,
    compose_msi,
    decode_msi,
)

BOUNDARY_INTS = [
    -(2**200),
    -(2**64),
    -(2**31) - 1,
    -(2**31),
    -2,
    -1,
    15,
    16,
    31,
    32,
    63,
    64,
    127,
    128,
    255,
    256,
    2047,
    2048,
    2049,
    4096,
    8192,
    65535,
    65536,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**63,
    2**64 - 1,
    2**64,
    2**128 - 1,
    2**128,
    2**300,
]

#: More examples for a long hunt: GARBAGE_EXAMPLES=5000 pytest tests/test_garbage_in.py
SCALE = max(1, int(os.environ.get("GARBAGE_EXAMPLES", "100")) // 100)

small_ints = st.integers(min_value=0, max_value=72)
ints = st.one_of(small_ints, small_ints, st.sampled_from(BOUNDARY_INTS), st.integers())
garbage = st.one_of(
    ints,
    ints,
    ints,
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.lists(st.integers(min_value=-2, max_value=72), max_size=5),
    st.lists(st.sampled_from(BOUNDARY_INTS), max_size=3),
    st.sampled_from(BOUNDARY_INTS).map(lambda v: np.uint64(v % 2**64)),
    small_ints.map(np.int32),
    st.just(object()),
    st.sampled_from(["lost", "intx", "pending"]),
    st.builds(Irte, vector=st.integers(0, 255), present=st.booleans()),
    st.builds(AmdIrte, vector=st.integers(0, 255), remap_en=st.booleans()),
)

#: The only exception types that may leave the extension.
ALLOWED: tuple[type[BaseException], ...] = (MsixError, ValueError, TypeError)


def call_checked(fn: Callable[..., Any], *args: Any) -> None:
    """Call ``fn``; any exception must be an allowed one (a panic or OverflowError fails)."""
    try:
        fn(*args)
    except BaseException as e:  # a PanicException is a BaseException
        name = f"{type(e).__module__}.{type(e).__qualname__}"
        assert "Panic" not in name, f"Rust panic from {fn!r}{args!r}: {e}"
        assert not isinstance(e, OverflowError), f"OverflowError from {fn!r}{args!r}: {e}"
        assert isinstance(e, ALLOWED), f"{name} from {fn!r}{args!r}: {e}"


def tame(name: str, args: list[Any]) -> list[Any]:
    """Keep ``debug_show``'s indentation small when it is valid: a width of 2**31 - 1 is legal
    (vsprintf clamps it to 8 MiB per line) but too slow for a property test."""
    if name == "debug_show":
        return [a if not isinstance(a, int) or abs(a) > 2**31 else a % 64 for a in args]
    return args


def arity(fn: Callable[..., Any]) -> int:
    """Number of parameters of a bound method or function (from its text signature)."""
    try:
        return len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return 2


def methods(obj: object) -> list[str]:
    """Public callables of ``obj``."""
    return sorted(n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n)))


def properties(cls: type) -> list[str]:
    """Public data descriptors of ``cls`` (getters, and setters where they exist)."""
    return sorted(
        n
        for n in dir(cls)
        if not n.startswith("_") and inspect.isdatadescriptor(getattr(cls, n, None))
    )


#: The properties with a setter.
SETTABLE = {"disabled_mode", "allow_compat"}

FACTORIES: dict[str, Callable[[], Any]] = {
    "IrqMatrix": lambda: IrqMatrix.x86(4),
    "IrqMatrix-raw": lambda: IrqMatrix(64, 8, 56, 3),
    "VectorDomain": lambda: VectorDomain(4, nodes=[0, 0, 1, 1]),
    "VectorDomain-noresv": lambda: VectorDomain(3, reservation_mode=False),
    "VectorTable": lambda: VectorTable(70, "pending"),
    "VectorTable-1": lambda: VectorTable(1),
    "Irte": lambda: Irte(present=True, vector=0x41, sid=0x100, svt=1),
    "IrteTable": lambda: IrteTable(64),
    "AmdIrte": lambda: AmdIrte(remap_en=True, vector=0x41, destination=2**31),
    "AmdIrteTables": lambda: AmdIrteTables(16),
    "InterruptRemapper": lambda: InterruptRemapper(64, fault_log_capacity=4),
    "AmdRemapper": lambda: AmdRemapper(16, fault_log_capacity=4),
}

call = st.tuples(st.integers(min_value=0, max_value=10_000), st.lists(garbage, max_size=4))


@settings(
    max_examples=60 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(which=st.sampled_from(sorted(FACTORIES)), calls=st.lists(call, max_size=40))
def test_random_calls_never_panic(which: str, calls: list[tuple[int, list[Any]]]) -> None:
    obj = FACTORIES[which]()
    names = methods(obj)
    props = properties(type(obj))
    for pick, args in calls:
        if pick % 8 == 0 and props:
            # read every property, and try to set one
            for p in props:
                call_checked(getattr, obj, p)
            settable = [p for p in props if p in SETTABLE]
            if args and settable:
                call_checked(setattr, obj, settable[pick % len(settable)], args[0])
            continue
        name = names[pick % len(names)]
        fn = getattr(obj, name)
        n = arity(fn)
        # mostly the right number of arguments, sometimes not
        args = (args + [0] * n)[:n] if pick % 5 else args
        call_checked(fn, *tame(name, args))
    call_checked(repr, obj)


@settings(max_examples=150 * SCALE, deadline=None)
@given(args=st.lists(garbage, max_size=5), kw=st.dictionaries(st.text(max_size=12), garbage))
def test_constructors_never_panic(args: list[Any], kw: dict[str, Any]) -> None:
    ctors: list[Callable[..., Any]] = [
        IrqMatrix,
        IrqMatrix.x86,
        VectorDomain,
        VectorTable,
        Irte,
        Irte.from_u128,
        IrteTable,
        AmdIrte,
        AmdIrte.from_u128,
        AmdIrteTables,
        InterruptRemapper,
        AmdRemapper,
    ]
    for ctor in ctors:
        n = arity(ctor)
        call_checked(ctor, *args[:n])
        call_checked(lambda c=ctor: c(**kw))
    # keyword-only fields of the IRTE classes, one garbage value each
    for field in ("delivery_mode", "avail", "vector", "dest_id", "sid", "sq", "svt", "fpd"):
        for a in args:
            call_checked(lambda f=field, v=a: Irte(**{f: v}))
    for field in ("int_type", "destination", "vector", "remap_en"):
        for a in args:
            call_checked(lambda f=field, v=a: AmdIrte(**{f: v}))
    for kwarg in ("nodes", "posted_msi", "reservation_mode"):
        for a in args:
            call_checked(lambda k=kwarg, v=a: VectorDomain(4, **{k: v}))


@settings(max_examples=150 * SCALE, deadline=None)
@given(args=st.lists(garbage, max_size=3))
def test_msi_functions_never_panic(args: list[Any]) -> None:
    for fn in (compose_msi, compose_amd_msi, decode_msi):
        call_checked(fn, *args)
        call_checked(fn, *[*args, 0, 0][: arity(fn)])


def test_bools_and_numpy_ints() -> None:
    """bool is refused as an int everywhere (InvalidArgument); numpy integers are accepted."""
    t = VectorTable(4)
    for fn, args in (
        (t.fire, (True,)),
        (t.table_read, (0, True)),
        (IrteTable(8).alloc, (True,)),
        (lambda v: Irte(vector=v), (True,)),
        (IrqMatrix.x86(2).online, (False,)),
        (VectorDomain(2).activate, (False,)),
    ):
        try:
            fn(*args)
        except ValueError as e:
            assert "must be an int, not bool" in str(e)
        else:
            raise AssertionError(f"{fn} accepted a bool")
    assert t.table_read(np.uint64(12), np.int32(4)) == 1
    assert Irte(vector=np.uint8(0x41)).vector == 0x41
    m = IrqMatrix.x86(2)
    assert m.alloc(np.array([1], dtype=np.int64)) == (1, 0x20)
