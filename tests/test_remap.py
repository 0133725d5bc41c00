"""MSI formats and the remap check (the security boundary)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msixcore import (
    AmdIrte,
    AmdRemapper,
    InterruptRemapper,
    InvalidArgument,
    InvalidOperation,
    Irte,
    NoSpace,
    compose_amd_msi,
    compose_msi,
    decode_msi,
)

# --------------------------------------------------------------- MSI formats


@pytest.mark.parametrize(
    ("handle", "sub", "address", "data"),
    [
        (0, None, 0xFEE0_0010, 0),  # bit 4: remappable format
        (1, None, 0xFEE0_0030, 0),  # handle[0] -> bit 5
        (0x7FFF, None, 0xFEEF_FFF0, 0),  # handle[14:0] -> bits 19:5
        (0x8000, None, 0xFEE0_0014, 0),  # handle[15] -> bit 2
        (0xFFFF, None, 0xFEEF_FFF4, 0),
        (5, 3, 0xFEE0_00B8, 3),  # SHV bit 3, sub-handle in data
        (0, 0xFFFF, 0xFEE0_0018, 0xFFFF),
    ],
)
def test_compose_msi(handle: int, sub: int | None, address: int, data: int) -> None:
    assert compose_msi(handle, sub) == (address, data)


def test_compose_errors() -> None:
    for bad in (-1, 1 << 16):
        with pytest.raises(InvalidArgument):
            compose_msi(bad)
        with pytest.raises(InvalidArgument):
            compose_msi(0, bad)
        with pytest.raises(InvalidArgument):
            compose_amd_msi(bad)
    assert compose_amd_msi(7) == (0xFEE0_0000, 7)


def test_decode_remappable() -> None:
    assert decode_msi(*compose_msi(0x8001, 0xFFFF)) == {
        "format": "remappable",
        "handle": 0x8001,
        "shv": True,
        "sub_handle": 0xFFFF,
        "index": 0x8001 + 0xFFFF,
    }
    address, _ = compose_msi(9)
    assert decode_msi(address, 0xABCD) == {
        "format": "remappable",
        "handle": 9,
        "shv": False,
        "sub_handle": None,
        "index": 9,
    }


def test_decode_compat() -> None:
    assert decode_msi(0xFEE1_200C, 0x8141) == {
        "format": "compat",
        "dest_id": 0x12,
        "redir_hint": True,
        "dest_mode": True,
        "vector": 0x41,
        "delivery_mode": 1,
        "trigger_mode": True,
    }


@pytest.mark.parametrize("address", [0, 0xFED0_0000, 0xFEF0_0000, 0x1_FEE0_0000, 2**64 - 1])
def test_decode_outside_window(address: int) -> None:
    with pytest.raises(InvalidArgument, match="interrupt window"):
        decode_msi(address, 0)


def test_decode_bad_ints() -> None:
    for address, data in ((-1, 0), (1 << 64, 0), (0xFEE0_0000, 1 << 32), (0xFEE0_0000, -1)):
        with pytest.raises(InvalidArgument):
            decode_msi(address, data)


@given(st.integers(0, 0xFFFF), st.none() | st.integers(0, 0xFFFF))
def test_compose_decode_round_trip(handle: int, sub: int | None) -> None:
    d = decode_msi(*compose_msi(handle, sub))
    assert d["format"] == "remappable"
    assert d["handle"] == handle
    assert d["sub_handle"] == sub
    assert d["index"] == handle + (sub or 0)


# --------------------------------------------------------------- Intel remap


def test_intel_remap_every_path() -> None:
    r = InterruptRemapper(entries=256)
    assert (r.entries, r.allow_compat, r.fault_log_capacity) == (256, False, 256)
    rid = 0x0310
    base = r.alloc(2)
    irte = Irte(
        present=True,
        dest_mode=True,
        delivery_mode=1,
        trigger_mode=True,
        vector=0x55,
        dest_id=0x0102_0304,
        sid=rid,
        svt=1,
    )
    r.set(base, irte)
    assert r.get(base) == irte and r.present == 1 and r.is_allocated(base + 1)
    ok = r.remap(rid, *compose_msi(base, 0))
    assert not ok.blocked and ok.fault is None and not ok.suppressed
    assert (ok.vector, ok.dest_id, ok.dest_mode, ok.delivery_mode, ok.trigger_mode) == (
        0x55,
        0x0102_0304,
        True,
        1,
        True,
    )
    assert ok.irte_index == base and ok.fault_index is None
    assert "vector=0x55" in repr(ok)

    cases = [
        (rid + 1, compose_msi(base), "sid_mismatch", base),
        (rid, compose_msi(base, 1), "not_present", base + 1),
        (rid, compose_msi(256), "index_out_of_range", 256),
        (rid, compose_msi(0xFFFF, 0xFFFF), "index_out_of_range", 0x1FFFE),
        (rid, (0xFEE0_0000, 0x30), "compat_format_blocked", None),
        (rid, (0x1000, 0), "not_in_interrupt_window", None),
    ]
    for n, (sender, (address, data), reason, index) in enumerate(cases, 1):
        res = r.remap(sender, address, data)
        assert res.blocked and res.fault == reason and res.fault_index == index
        assert res.vector is None and res.irte_index is None and not res.suppressed
        assert r.fault_count == n
    assert "blocked=True" in repr(res)
    r.set(base + 1, Irte(present=True, svt=3))
    assert r.remap(rid, *compose_msi(base + 1)).fault == "reserved_svt"
    assert r.faults()[0] == (rid + 1, base, "sid_mismatch")
    assert r.faults()[-1] == (rid, base + 1, "reserved_svt")
    assert r.fault_count == 7 and r.suppressed_faults == 0
    assert len(r.drain_faults()) == 7 and r.faults() == [] and r.fault_count == 7


def test_intel_fpd_suppresses_entry_faults_only() -> None:
    r = InterruptRemapper(entries=16)
    i = r.alloc(2)
    r.set(i, Irte(present=True, fpd=True, sid=0x100, svt=1, vector=0x40))
    r.set(i + 1, Irte(fpd=True))
    for sender, handle, reason in ((0x101, i, "sid_mismatch"), (0x100, i + 1, "not_present")):
        res = r.remap(sender, *compose_msi(handle))
        assert res.blocked and res.suppressed and res.fault == reason
    assert (r.fault_count, r.suppressed_faults, r.faults()) == (0, 2, [])
    # Past the table there is no entry, hence no FPD.
    assert not r.remap(0x100, *compose_msi(16)).suppressed
    assert r.fault_count == 1


def test_intel_sq_and_bus_checks() -> None:
    r = InterruptRemapper(entries=16)
    i = r.alloc(4)
    r.set(i, Irte(present=True, sid=0x1234, sq=1, svt=1))
    r.set(i + 1, Irte(present=True, sid=0x1234, sq=3, svt=1))
    r.set(i + 2, Irte(present=True, sid=0x1234, svt=2))  # buses 0x12..=0x34
    r.set(i + 3, Irte(present=True))  # svt 0: anyone
    assert not r.remap(0x1234 ^ 0b100, *compose_msi(i)).blocked
    assert r.remap(0x1234 ^ 0b010, *compose_msi(i)).fault == "sid_mismatch"
    assert not r.remap(0x1234 ^ 0b111, *compose_msi(i + 1)).blocked
    assert r.remap(0x1234 ^ 0b1000, *compose_msi(i + 1)).fault == "sid_mismatch"
    for sender, blocked in ((0x1100, True), (0x1200, False), (0x34FF, False), (0x3500, True)):
        assert r.remap(sender, *compose_msi(i + 2)).blocked is blocked
    assert not r.remap(0xFFFF, *compose_msi(i + 3)).blocked


def test_intel_compat_setting() -> None:
    r = InterruptRemapper(entries=16, allow_compat=True)
    res = r.remap(1, 0xFEE0_3000, 0x31)
    assert (res.blocked, res.vector, res.dest_id, res.irte_index) == (False, 0x31, 3, None)
    r.allow_compat = False
    assert r.remap(1, 0xFEE0_3000, 0x31).fault == "compat_format_blocked"


def test_intel_fault_log_bounded() -> None:
    r = InterruptRemapper(entries=16, fault_log_capacity=2)
    for _ in range(5):
        r.remap(1, *compose_msi(3))
    assert (r.fault_count, r.overflowed_faults, len(r.faults())) == (5, 3, 2)
    r.drain_faults()
    r.remap(1, *compose_msi(3))
    assert len(r.faults()) == 1


@pytest.mark.parametrize("cls", [InterruptRemapper, AmdRemapper])
def test_fault_log_capacity_default_bounds_and_overflow(cls: type) -> None:
    assert cls().fault_log_capacity == 256  # VT-d: at most 256 fault recording registers
    assert cls(fault_log_capacity=2**20).fault_log_capacity == 2**20
    for bad in (-1, 2**20 + 1, 2**64):
        with pytest.raises(InvalidArgument, match="fault_log_capacity"):
            cls(fault_log_capacity=bad)
    r = cls(fault_log_capacity=0)
    r.remap(7, 0x1000, 0)  # outside the interrupt window: always recorded
    assert (r.fault_count, r.overflowed_faults, r.faults()) == (1, 1, [])


def test_intel_table_methods_and_errors() -> None:
    r = InterruptRemapper(entries=8)
    assert r.alloc(3) == 0 and (r.in_use, r.blocks) == (4, 1)
    with pytest.raises(InvalidOperation):
        r.free(1, 1)
    with pytest.raises(NoSpace):
        r.alloc(8)
    r.set(0, Irte(present=True))
    r.clear(0)
    assert r.present == 0
    r.free(0, 4)
    assert r.in_use == 0
    for bad in (-1, 1 << 16):
        with pytest.raises(InvalidArgument):
            r.remap(bad, 0xFEE0_0010, 0)
    with pytest.raises(InvalidArgument):
        InterruptRemapper(entries=3)
    with pytest.raises(InvalidArgument):
        InterruptRemapper(fault_log_capacity=-1)
    assert "entries=8" in repr(r)


# --------------------------------------------------------------- AMD remap


def test_amd_remap_every_path() -> None:
    r = AmdRemapper(table_size=256)
    assert (r.table_size, r.tables) == (256, 0)
    rid = 0x0800
    i = r.alloc(rid, 2)
    r.set(rid, i, AmdIrte(remap_en=True, vector=0x61, destination=0x0A00_0001, int_type=1))
    res = r.remap(rid, *compose_amd_msi(i))
    assert (res.vector, res.dest_id, res.delivery_mode, res.irte_index) == (
        0x61,
        0x0A00_0001,
        1,
        i,
    )
    assert res.trigger_mode is False
    assert r.remap(rid, 0xFEE0_0000, 0x8800 | i).trigger_mode is True  # bits above 10 ignored
    assert r.remap(rid + 1, *compose_amd_msi(i)).fault == "no_table"
    r.alloc(rid + 1, 1)
    assert r.remap(rid + 1, *compose_amd_msi(i)).fault == "not_present"
    assert r.remap(rid, *compose_amd_msi(300)).fault == "index_out_of_range"
    assert r.remap(rid, 0xFED0_0000, 0).fault == "not_in_interrupt_window"
    r.set(rid, i + 1, AmdIrte(sup_iopf=True))
    res = r.remap(rid, *compose_amd_msi(i + 1))
    assert res.blocked and res.suppressed and res.fault == "not_present"
    assert (r.fault_count, r.suppressed_faults, r.overflowed_faults) == (4, 1, 0)
    assert r.faults()[0] == (rid + 1, i, "no_table")
    assert len(r.drain_faults()) == 4 and r.faults() == []
    assert (r.tables, r.in_use, r.enabled) == (2, 3, 1)
    r.create_table(5, 2048)
    assert r.table_len(5) == 2048 and r.table_len(6) is None
    assert r.get(rid, i).vector == 0x61
    r.clear(rid, i)
    assert r.remap(rid, *compose_amd_msi(i)).fault == "not_present"
    r.free(rid, i, 2)
    assert r.in_use == 1
    assert "tables=3" in repr(r)
    with pytest.raises(InvalidArgument):
        AmdRemapper(table_size=100)


# --------------------------------------------------------------- the security boundary

DEVICES = [0x0100, 0x0101, 0x0108, 0x0200, 0x3A00, 0xFF07]
rids = st.one_of(
    st.sampled_from(DEVICES),
    st.builds(lambda d, x: d ^ x, st.sampled_from(DEVICES), st.integers(0, 7)),
    st.integers(0, 0xFFFF),
)
intel_msgs = st.one_of(
    st.builds(compose_msi, st.integers(0, 300), st.none() | st.integers(0, 7)),
    st.builds(compose_msi, st.integers(0, 0xFFFF), st.none() | st.integers(0, 0xFFFF)),
    st.tuples(st.integers(0xFEE0_0000, 0xFEEF_FFFF), st.integers(0, 2**32 - 1)),
    st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1)),
)


@settings(max_examples=150)
@given(
    st.lists(st.tuples(st.sampled_from(DEVICES), st.integers(1, 8), st.booleans()), max_size=30),
    st.lists(st.tuples(rids, intel_msgs), min_size=1, max_size=200),
)
def test_intel_device_never_reaches_a_vector_it_does_not_own(
    allocs: list[tuple[int, int, bool]],
    sends: list[tuple[int, tuple[int, int]]],
) -> None:
    r = InterruptRemapper(entries=512, fault_log_capacity=10_000)
    owner: dict[int, tuple[int, bool]] = {}
    for rid, count, fpd in allocs:
        try:
            base = r.alloc(count)
        except NoSpace:
            continue
        for i in range(base, base + count):
            r.set(i, Irte(present=True, fpd=fpd, vector=i % 256, dest_id=rid, sid=rid, svt=1))
            owner[i] = (rid, fpd)
    blocked = 0
    for rid, (address, data) in sends:
        before = (r.fault_count, r.suppressed_faults)
        res = r.remap(rid, address, data)
        if res.blocked:
            blocked += 1
            if res.suppressed:
                assert res.fault_index is not None and owner[res.fault_index][1]
                assert (r.fault_count, r.suppressed_faults) == (before[0], before[1] + 1)
            else:
                assert (r.fault_count, r.suppressed_faults) == (before[0] + 1, before[1])
        else:
            assert res.irte_index is not None
            assert owner[res.irte_index][0] == rid
            assert res.dest_id == rid
            assert res.vector == res.irte_index % 256
            assert (r.fault_count, r.suppressed_faults) == before
    assert r.fault_count + r.suppressed_faults == blocked
    assert len(r.faults()) == r.fault_count


@settings(max_examples=100)
@given(
    st.lists(st.tuples(st.sampled_from(DEVICES), st.integers(1, 8)), max_size=30),
    st.lists(st.tuples(rids, st.integers(0, 2**32 - 1), st.booleans()), min_size=1, max_size=200),
)
def test_amd_device_never_reaches_a_vector_it_does_not_own(
    allocs: list[tuple[int, int]],
    sends: list[tuple[int, int, bool]],
) -> None:
    r = AmdRemapper(table_size=128, fault_log_capacity=10_000)
    for rid, count in allocs:
        try:
            base = r.alloc(rid, count)
        except NoSpace:
            continue
        for i in range(base, base + count):
            r.set(rid, i, AmdIrte(remap_en=True, vector=i % 256, destination=rid))
    blocked = 0
    for rid, data, in_window in sends:
        address = 0xFEE0_0000 if in_window else 0xFEC0_0000
        res = r.remap(rid, address, data)
        if res.blocked:
            blocked += 1
        else:
            assert res.dest_id == rid
            assert res.irte_index == data & 0x7FF
    assert r.fault_count == blocked and r.suppressed_faults == 0
