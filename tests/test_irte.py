"""IRTE bit layouts and remapping tables (Intel VT-d and AMD-Vi)."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msixcore import (
    AmdIrte,
    AmdIrteTables,
    InvalidArgument,
    InvalidOperation,
    Irte,
    IrteTable,
    NoSpace,
)

# Each field alone at all-ones, and the exact 128-bit value it must produce.
IRTE_FIELD_BITS: list[tuple[str, Any, int]] = [
    ("present", True, 1 << 0),
    ("fpd", True, 1 << 1),
    ("dest_mode", True, 1 << 2),
    ("redir_hint", True, 1 << 3),
    ("trigger_mode", True, 1 << 4),
    ("delivery_mode", 0x7, 0x7 << 5),
    ("avail", 0xF, 0xF << 8),
    ("vector", 0xFF, 0xFF << 16),
    ("dest_id", 0xFFFF_FFFF, 0xFFFF_FFFF << 32),
    ("sid", 0xFFFF, 0xFFFF << 64),
    ("sq", 0x3, 0x3 << 80),
    ("svt", 0x3, 0x3 << 82),
]
IRTE_RESERVED_BITS = [*range(12, 15), *range(24, 32), *range(84, 128)]

AMD_FIELD_BITS: list[tuple[str, Any, int]] = [
    ("remap_en", True, 1 << 0),
    ("sup_iopf", True, 1 << 1),
    ("int_type", 0x7, 0x7 << 2),
    ("rq_eoi", True, 1 << 5),
    ("dest_mode", True, 1 << 6),
    ("vector", 0xFF, 0xFF << 64),
]
AMD_RESERVED_BITS = [*range(32, 64), *range(72, 120)]


@pytest.mark.parametrize(("name", "value", "bits"), IRTE_FIELD_BITS)
def test_irte_field_bit_position(name: str, value: Any, bits: int) -> None:
    irte = Irte(**{name: value})
    assert irte.to_u128() == bits
    assert getattr(irte, name) == value
    assert Irte.from_u128(bits) == irte


def test_irte_fields_tile_the_entry() -> None:
    union = 0
    for _, _, bits in IRTE_FIELD_BITS:
        assert union & bits == 0
        union |= bits
    reserved = sum(1 << b for b in IRTE_RESERVED_BITS)
    assert union | reserved | (1 << 15) == (1 << 128) - 1


@pytest.mark.parametrize("bit", IRTE_RESERVED_BITS)
def test_irte_reserved_bit_rejected(bit: int) -> None:
    with pytest.raises(InvalidArgument, match="reserved"):
        Irte.from_u128(1 << bit)


def test_irte_posted_format_rejected() -> None:
    with pytest.raises(InvalidArgument, match="posted"):
        Irte.from_u128(1 << 15)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("delivery_mode", 8),
        ("avail", 16),
        ("vector", 256),
        ("dest_id", 1 << 32),
        ("sid", 1 << 16),
        ("sq", 4),
        ("svt", 4),
        ("vector", -1),
        ("sid", 1 << 100),
    ],
)
def test_irte_field_out_of_width(name: str, bad: int) -> None:
    kwargs: dict[str, Any] = {name: bad}
    with pytest.raises(InvalidArgument, match=name):
        Irte(**kwargs)


@pytest.mark.parametrize("bad", [-1, 1 << 128, 1 << 300])
def test_irte_from_u128_out_of_range(bad: int) -> None:
    with pytest.raises(InvalidArgument):
        Irte.from_u128(bad)


def test_irte_non_int_is_type_error() -> None:
    with pytest.raises(TypeError):
        Irte(vector="1")  # type: ignore[arg-type]


def test_irte_defaults_eq_hash_repr() -> None:
    assert Irte().to_u128() == 0
    a = Irte(present=True, vector=0x41, sid=0x100, svt=1)
    b = Irte(present=True, vector=0x41, sid=0x100, svt=1)
    assert a == b and hash(a) == hash(b)
    assert a != Irte(present=True, vector=0x42)
    assert a != "irte"
    assert repr(a).startswith("Irte(present=True") and "vector=0x41" in repr(a)


irte_kwargs = st.fixed_dictionaries(
    {
        "present": st.booleans(),
        "fpd": st.booleans(),
        "dest_mode": st.booleans(),
        "redir_hint": st.booleans(),
        "trigger_mode": st.booleans(),
        "delivery_mode": st.integers(0, 7),
        "avail": st.integers(0, 15),
        "vector": st.integers(0, 255),
        "dest_id": st.integers(0, 2**32 - 1),
        "sid": st.integers(0, 2**16 - 1),
        "sq": st.integers(0, 3),
        "svt": st.integers(0, 3),
    }
)


@given(irte_kwargs)
def test_irte_round_trip(kwargs: dict[str, Any]) -> None:
    irte = Irte(**kwargs)
    raw = irte.to_u128()
    expected = 0
    for name, _, bits in IRTE_FIELD_BITS:
        shift = (bits & -bits).bit_length() - 1
        expected |= int(kwargs[name]) << shift
    assert raw == expected
    assert Irte.from_u128(raw) == irte
    for name, value in kwargs.items():
        assert getattr(irte, name) == value


@given(st.integers(0, 2**128 - 1))
def test_irte_from_any_u128(raw: int) -> None:
    try:
        irte = Irte.from_u128(raw)
    except InvalidArgument:
        return
    assert irte.to_u128() == raw


# ------------------------------------------------------------------ IrteTable


def test_table_sizes() -> None:
    assert IrteTable().entries == 65536
    assert IrteTable(1).entries == 1
    for bad in (0, 3, 65537, 1 << 17, -1, 1 << 40):
        with pytest.raises(InvalidArgument):
            IrteTable(bad)


def test_alloc_aligned_first_fit() -> None:
    t = IrteTable(256)
    assert t.alloc(1) == 0
    assert t.alloc(3) == 4
    assert t.alloc(1) == 1
    assert t.alloc(2) == 2
    assert t.alloc(8) == 8
    assert t.alloc(100) == 128
    assert t.alloc(1) == 16
    assert (t.in_use, t.blocks, t.free_slots) == (145, 7, 111)
    assert t.is_allocated(130) and not t.is_allocated(17) and not t.is_allocated(10**6)


def test_alloc_errors() -> None:
    t = IrteTable(4)
    for bad in (0, 5, -1):
        with pytest.raises(InvalidArgument):
            t.alloc(bad)
    assert t.alloc(4) == 0
    with pytest.raises(NoSpace):
        t.alloc(1)


def test_free_paths_and_unchanged_state_on_error() -> None:
    t = IrteTable(64)
    base = t.alloc(4)
    t.set(base + 1, Irte(present=True, vector=0x40))
    before = (t.in_use, t.present, t.blocks)
    cases = [
        ((base + 1, 1), "free_not_block_start"),
        ((base, 8), "free_count_mismatch"),
        ((base, 2), "free_count_mismatch"),
        ((32, 1), "free_not_allocated"),
    ]
    for args, site in cases:
        with pytest.raises(InvalidOperation) as exc:
            t.free(*args)
        assert exc.value.sites == [site]
    for args in ((64, 1), (base, 0), (-1, 1)):
        with pytest.raises(InvalidArgument):
            t.free(*args)
    assert (t.in_use, t.present, t.blocks) == before
    t.free(base, 3)  # rounds to the block's 4
    assert (t.in_use, t.present, t.blocks) == (0, 0, 0)
    assert t.get(base + 1) == Irte()


def test_set_get_clear() -> None:
    t = IrteTable(16)
    with pytest.raises(InvalidOperation) as exc:
        t.set(0, Irte(present=True))
    assert exc.value.sites == ["set_not_allocated"]
    with pytest.raises(InvalidOperation) as exc:
        t.clear(0)
    assert exc.value.sites == ["clear_not_allocated"]
    for bad in (16, -1):
        with pytest.raises(InvalidArgument):
            t.get(bad)
        with pytest.raises(InvalidArgument):
            t.set(bad, Irte())
    t.alloc(2)
    entry = Irte(present=True, vector=0x31, dest_id=7)
    t.set(0, entry)
    t.set(1, entry)
    assert t.get(0) == entry and t.present == 2
    t.set(1, Irte())
    assert t.present == 1
    t.clear(0)
    assert t.present == 0 and t.get(0) == Irte()
    assert "in_use=2" in repr(t)


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 40)), max_size=80))
def test_table_alloc_invariants(ops: list[tuple[bool, int]]) -> None:
    t = IrteTable(256)
    live: list[tuple[int, int]] = []
    for do_alloc, n in ops:
        if do_alloc or not live:
            size = 1 << (n - 1).bit_length()
            try:
                start = t.alloc(n)
            except NoSpace:
                continue
            assert start % size == 0
            assert all(start + size <= s or s + z <= start for s, z in live)
            live.append((start, size))
        else:
            s, z = live.pop(n % len(live))
            t.free(s, z)
        assert t.in_use == sum(z for _, z in live)
        assert t.blocks == len(live)


# ------------------------------------------------------------------ AMD


@pytest.mark.parametrize(("name", "value", "bits"), AMD_FIELD_BITS)
def test_amd_field_bit_position(name: str, value: Any, bits: int) -> None:
    irte = AmdIrte(**{name: value})
    assert irte.to_u128() == bits
    assert getattr(irte, name) == value
    assert AmdIrte.from_u128(bits) == irte


def test_amd_destination_is_split() -> None:
    assert AmdIrte(destination=0x00FF_FFFF).to_u128() == 0xFF_FFFF << 8
    assert AmdIrte(destination=0xFF00_0000).to_u128() == 0xFF << 120
    irte = AmdIrte(destination=0x1234_5678)
    assert irte.to_u128() == (0x34_5678 << 8) | (0x12 << 120)
    assert AmdIrte.from_u128(irte.to_u128()).destination == 0x1234_5678


@pytest.mark.parametrize("bit", AMD_RESERVED_BITS)
def test_amd_reserved_bit_rejected(bit: int) -> None:
    with pytest.raises(InvalidArgument, match="reserved"):
        AmdIrte.from_u128(1 << bit)


def test_amd_guest_mode_and_width_rejected() -> None:
    with pytest.raises(InvalidArgument, match="GuestMode"):
        AmdIrte.from_u128(1 << 7)
    with pytest.raises(InvalidArgument):
        AmdIrte(int_type=8)
    with pytest.raises(InvalidArgument):
        AmdIrte(destination=1 << 32)
    with pytest.raises(InvalidArgument):
        AmdIrte.from_u128(-5)
    assert AmdIrte(vector=3) == AmdIrte(vector=3)
    assert hash(AmdIrte(vector=3)) == hash(AmdIrte(vector=3))
    assert "vector=0x03" in repr(AmdIrte(vector=3))


@given(
    st.booleans(),
    st.booleans(),
    st.integers(0, 7),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**32 - 1),
    st.integers(0, 255),
)
def test_amd_round_trip(
    remap_en: bool,
    sup_iopf: bool,
    int_type: int,
    rq_eoi: bool,
    dest_mode: bool,
    destination: int,
    vector: int,
) -> None:
    irte = AmdIrte(
        remap_en=remap_en,
        sup_iopf=sup_iopf,
        int_type=int_type,
        rq_eoi=rq_eoi,
        dest_mode=dest_mode,
        destination=destination,
        vector=vector,
    )
    assert AmdIrte.from_u128(irte.to_u128()) == irte
    assert irte.destination == destination and irte.vector == vector


def test_amd_tables_sizes_and_creation() -> None:
    for bad in (0, 3, 1000, 4096, -1):
        with pytest.raises(InvalidArgument):
            AmdIrteTables(bad)
    t = AmdIrteTables()
    assert t.table_size == 512 and t.tables == 0
    assert t.table_len(5) is None
    t.create_table(5, 2048)
    assert t.table_len(5) == 2048
    with pytest.raises(InvalidOperation) as exc:
        t.create_table(5, 256)
    assert exc.value.sites == ["table_exists"]
    with pytest.raises(InvalidArgument):
        t.create_table(6, 100)
    t.alloc(6, 1)
    assert t.table_len(6) == 512 and t.tables == 2
    with pytest.raises(InvalidArgument):
        t.table_len(1 << 16)


def test_amd_alloc_contiguous_and_aligned() -> None:
    t = AmdIrteTables(128)
    assert t.alloc(1, 3) == 0
    assert t.alloc(1, 2) == 3
    assert t.alloc(1, 3, aligned=True) == 8
    assert t.alloc(1, 3) == 5
    assert t.alloc(2, 1) == 0
    assert (t.in_use_of(1), t.in_use) == (11, 12)
    t.free(1, 3, 2)
    assert t.alloc(1, 2) == 3
    for bad in (0, 129):
        with pytest.raises(InvalidArgument):
            t.alloc(1, bad)
    with pytest.raises(NoSpace):
        t.alloc(1, 128)
    with pytest.raises(InvalidArgument):
        t.alloc(-1, 1)


def test_amd_set_get_clear_free() -> None:
    t = AmdIrteTables(256)
    for call, site in (
        (lambda: t.get(1, 0), "get_no_table"),
        (lambda: t.set(1, 0, AmdIrte()), "set_no_table"),
        (lambda: t.free(1, 0), "free_no_table"),
        (lambda: t.clear(1, 0), "clear_no_table"),
    ):
        with pytest.raises(InvalidOperation) as exc:
            call()
        assert exc.value.sites == [site]
    i = t.alloc(1, 2)
    with pytest.raises(InvalidOperation):
        t.set(1, 5, AmdIrte())
    with pytest.raises(InvalidArgument):
        t.get(1, 256)
    t.set(1, i, AmdIrte(remap_en=True, vector=0x41))
    t.set(1, i + 1, AmdIrte(remap_en=True, vector=0x42))
    assert t.enabled == 2 and t.get(1, i).vector == 0x41
    with pytest.raises(InvalidOperation) as exc:
        t.free(1, i, 3)
    assert exc.value.sites == ["free_not_allocated"]
    assert (t.in_use, t.enabled) == (2, 2)
    t.clear(1, i)
    assert t.enabled == 1
    t.free(1, i, 2)
    assert (t.in_use, t.enabled, t.tables) == (0, 0, 1)
    assert "tables=1" in repr(t)
