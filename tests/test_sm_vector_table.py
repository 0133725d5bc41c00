"""State machine over ``VectorTable`` against a Python model of the PCI MSI-X table, PBA and
Message Control, with valid and hostile arguments on every method."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule
from sm_common import (
    Boom,
    CountingMachine,
    Err,
    Outcome,
    attempt,
    expect_error,
    first_error,
    garbage,
    in_range,
    int_arg,
    machine_settings,
    short,
)

from msixcore import FIRE_OUTCOMES, InvalidArgument, MmioError, VectorTable

MODES = ("lost", "intx", "pending")


class TableModel:
    """Spec model: entries (address, data, mask), PBA bits, Enable / Function Mask, outbox."""

    def __init__(self, n: int, mode: str) -> None:
        self.n = n
        self.mode = mode
        self.outbox: list[tuple[int, int, int]] = []
        self.reset()

    def reset(self) -> None:
        self.enable = False
        self.fmask = False
        self.address = [0] * self.n
        self.data = [0] * self.n
        self.mask = [True] * self.n
        self.pending: set[int] = set()

    def function_can_send(self) -> bool:
        return self.enable and not self.fmask

    def can_send(self, k: int) -> bool:
        return self.function_can_send() and not self.mask[k]

    def effective_mask(self, k: int) -> bool:
        return self.fmask or self.mask[k] or (not self.enable and self.mode == "pending")

    def fire(self, k: int) -> str:
        if not self.enable and self.mode in ("lost", "intx"):
            return self.mode
        if self.can_send(k):
            self.outbox.append((k, self.address[k], self.data[k]))
            return "delivered"
        if k in self.pending:
            return "coalesced"
        self.pending.add(k)
        return "pending"

    def update(self, k: int, change: Any) -> None:
        """Apply ``change``; release Pending[k] if ``k`` went from cannot to can send."""
        could = self.can_send(k)
        change()
        if not could and self.can_send(k) and k in self.pending:
            self.pending.discard(k)
            self.outbox.append((k, self.address[k], self.data[k]))

    def set_control(self, v: int) -> None:
        could = self.function_can_send()
        self.enable = bool(v & 0x8000)
        self.fmask = bool(v & 0x4000)
        if not could and self.function_can_send():
            for k in sorted(self.pending):
                if not self.mask[k]:
                    self.pending.discard(k)
                    self.outbox.append((k, self.address[k], self.data[k]))

    def dword(self, k: int, at: int) -> int:
        return [
            self.address[k] & 0xFFFF_FFFF,
            self.address[k] >> 32,
            self.data[k],
            int(self.mask[k]),
        ][at // 4]

    def set_dword(self, k: int, at: int, v: int) -> None:
        if at == 0:
            self.address[k] = (self.address[k] & ~0xFFFF_FFFF) | v
        elif at == 4:
            self.address[k] = (self.address[k] & 0xFFFF_FFFF) | (v << 32)
        elif at == 8:
            self.data[k] = v
        else:
            self.mask[k] = bool(v & 1)

    def pba_len(self) -> int:
        return (self.n + 63) // 64 * 8

    def pba_qword(self, w: int) -> int:
        return sum(1 << (k % 64) for k in self.pending if k // 64 == w)


def mmio_check(offset: Any, size: Any, length: int) -> tuple[int, int] | Err:
    """Decode an MMIO access the way the device does: MmioError unless a 4/8-byte aligned
    access inside ``length`` bytes."""
    off = in_range(offset, 0, 2**64 - 1, MmioError)
    sz = in_range(size, 0, 2**64 - 1, MmioError)
    err = first_error(off, sz)
    if err is not None:
        return err
    assert isinstance(off, int) and isinstance(sz, int)
    if sz not in (4, 8) or off % sz or off + sz > length:
        return Err(MmioError)
    return off, sz


class VectorTableMachine(CountingMachine):
    t: VectorTable
    m: TableModel

    @initialize(n=st.sampled_from([1, 2, 63, 64, 65, 130, 2048]), mode=st.sampled_from(MODES))
    def build(self, n: int, mode: str) -> None:
        self.t = VectorTable(n, mode)
        self.m = TableModel(n, mode)

    def vec(self, k: Any) -> int | Err:
        return in_range(k, 0, self.m.n - 1)

    def unchanged_after_error(self, out: Outcome, err: Err, what: str) -> None:
        expect_error(out, err, what)

    @rule(k=int_arg(0, 140))
    def fire(self, k: Any) -> None:
        out = attempt(self.t.fire, k)
        kk = self.vec(k)
        if isinstance(kk, Err):
            expect_error(out, kk, f"fire({k!r})")
        else:
            assert out.ok, out.error
            assert out.value == self.m.fire(kk)

    @rule(ks=st.lists(st.integers(0, 140), max_size=20), dtype=st.sampled_from(["u4", "i8"]))
    def fire_many(self, ks: list[int], dtype: str) -> None:
        arr = np.array(ks, dtype=dtype)
        out = attempt(self.t.fire_many, arr)
        if dtype != "u4":
            expect_error(out, Err(TypeError), "fire_many(int64 array)")
        elif any(k >= self.m.n for k in ks):
            expect_error(out, Err(InvalidArgument), f"fire_many({ks})")
        else:
            assert out.ok, out.error
            want = [FIRE_OUTCOMES.index(self.m.fire(k)) for k in ks]
            assert out.value.dtype == np.uint8 and out.value.tolist() == want

    @rule(k=int_arg(0, 140), address=int_arg(0, 2**64 - 1), data=int_arg(0, 2**32 - 1))
    def program(self, k: Any, address: Any, data: Any) -> None:
        out = attempt(self.t.program, k, address, data)
        args = (self.vec(k), in_range(address, 0, 2**64 - 1), in_range(data, 0, 2**32 - 1))
        err = first_error(*args)
        if err is not None:
            expect_error(out, err, f"program{args}")
            return
        assert out.ok, out.error
        kk, a, d = args
        assert isinstance(kk, int) and isinstance(a, int) and isinstance(d, int)

        def change() -> None:
            self.m.address[kk], self.m.data[kk] = a, d

        self.m.update(kk, change)

    @rule(k=int_arg(0, 140), unmask=st.booleans())
    def mask_or_unmask(self, k: Any, unmask: bool) -> None:
        out = attempt(self.t.unmask if unmask else self.t.mask, k)
        kk = self.vec(k)
        if isinstance(kk, Err):
            expect_error(out, kk, f"mask({k!r})")
            return
        assert out.ok, out.error

        def change() -> None:
            self.m.mask[kk] = not unmask

        self.m.update(kk, change)

    @rule(v=st.one_of(st.sampled_from([0, 0x4000, 0x8000, 0xC000, 0xFFFF]), int_arg(0, 0xFFFF)))
    def set_control(self, v: Any) -> None:
        out = attempt(self.t.set_control, v)
        vv = in_range(v, 0, 0xFFFF)
        if isinstance(vv, Err):
            expect_error(out, vv, f"set_control({v!r})")
        else:
            assert out.ok, out.error
            self.m.set_control(vv)

    @rule()
    def reset(self) -> None:
        self.t.reset()
        self.m.reset()

    @rule(mode=st.one_of(st.sampled_from(MODES), garbage))
    def set_mode(self, mode: Any) -> None:
        out = attempt(setattr, self.t, "disabled_mode", mode)
        if isinstance(mode, str) and mode in MODES:
            assert out.ok, out.error
            self.m.mode = mode
        else:
            expect_error(out, Err(TypeError, ValueError), f"disabled_mode = {short(mode)}")

    @rule(offset=int_arg(0, 2100 * 16), size=st.one_of(st.sampled_from([4, 8]), int_arg(0, 9)))
    def table_read(self, offset: Any, size: Any) -> None:
        out = attempt(self.t.table_read, offset, size)
        dec = mmio_check(offset, size, 16 * self.m.n)
        if isinstance(dec, Err):
            expect_error(out, dec, f"table_read({offset!r}, {size!r})")
            return
        off, sz = dec
        k, at = divmod(off, 16)
        want = self.m.dword(k, at)
        if sz == 8:
            want |= self.m.dword(k, at + 4) << 32
        assert out.value == want

    @rule(
        offset=int_arg(0, 2100 * 16),
        size=st.one_of(st.sampled_from([4, 8]), int_arg(0, 9)),
        value=st.one_of(st.sampled_from([0, 1, 0xFEE0_0000, 2**32, 2**64 - 1]), int_arg(0, 2**64)),
    )
    def table_write(self, offset: Any, size: Any, value: Any) -> None:
        out = attempt(self.t.table_write, offset, size, value)
        off = in_range(offset, 0, 2**64 - 1, MmioError)
        sz = in_range(size, 0, 2**64 - 1, MmioError)
        val = in_range(value, 0, 2**64 - 1, MmioError)
        err = first_error(off, sz, val)
        if err is None:
            dec = mmio_check(off, sz, 16 * self.m.n)
            if isinstance(dec, Err):
                err = dec
            elif sz == 4 and isinstance(val, int) and val >= 2**32:
                err = Err(MmioError)
        if err is not None:
            expect_error(out, err, f"table_write({offset!r}, {size!r}, {value!r})")
            return
        assert out.ok, out.error
        assert isinstance(off, int) and isinstance(val, int)
        k, at = divmod(off, 16)

        def change() -> None:
            self.m.set_dword(k, at, val & 0xFFFF_FFFF)
            if sz == 8:
                self.m.set_dword(k, at + 4, val >> 32)

        self.m.update(k, change)

    @rule(offset=int_arg(0, 300), size=st.one_of(st.sampled_from([4, 8]), int_arg(0, 9)))
    def pba_read(self, offset: Any, size: Any) -> None:
        out = attempt(self.t.pba_read, offset, size)
        dec = mmio_check(offset, size, self.m.pba_len())
        if isinstance(dec, Err):
            expect_error(out, dec, f"pba_read({offset!r}, {size!r})")
            return
        off, sz = dec
        q = self.m.pba_qword(off // 8)
        want = q if sz == 8 else (q >> (32 * (off % 8 // 4))) & 0xFFFF_FFFF
        assert out.value == want

    @rule(offset=int_arg(0, 300), size=int_arg(0, 9), value=int_arg(0, 9))
    def pba_write(self, offset: Any, size: Any, value: Any) -> None:
        out = attempt(self.t.pba_write, offset, size, value)
        assert not out.ok  # read-only, whatever the arguments
        assert isinstance(out.error, MmioError | TypeError | ValueError | Boom), out.error

    @rule(k=int_arg(0, 140))
    def queries(self, k: Any) -> None:
        kk = self.vec(k)
        for fn in (self.t.entry, self.t.is_masked, self.t.is_entry_masked, self.t.is_pending):
            out = attempt(fn, k)
            if isinstance(kk, Err):
                expect_error(out, kk, f"{fn.__name__}({k!r})")
        if isinstance(kk, int):
            m = self.m
            assert self.t.entry(kk) == (m.address[kk], m.data[kk], int(m.mask[kk]))
            assert self.t.is_masked(kk) == m.effective_mask(kk)
            assert self.t.is_entry_masked(kk) == m.mask[kk]
            assert self.t.is_pending(kk) == (kk in m.pending)

    @rule(args=st.lists(garbage, max_size=4), name=st.sampled_from(["fire", "mask", "program"]))
    def wrong_arity_or_types(self, args: list[Any], name: str) -> None:
        before = self.snapshot()
        out = attempt(getattr(self.t, name), *args)
        if not out.ok:
            assert self.snapshot() == before
        else:
            # a valid call by chance: take the table's word for it
            self.resync()

    def snapshot(self) -> tuple[Any, ...]:
        t = self.t
        return (
            t.control,
            t.pending_count,
            [t.entry(k) for k in range(t.entries)],
            [t.is_pending(k) for k in range(t.entries)],
        )

    def resync(self) -> None:
        m, t = self.m, self.t
        m.enable, m.fmask = t.enabled, t.function_masked
        for k in range(m.n):
            m.address[k], m.data[k], vc = t.entry(k)
            m.mask[k] = bool(vc & 1)
        m.pending = {k for k in range(m.n) if t.is_pending(k)}
        m.outbox = []
        t.take_messages()

    @invariant()
    def agrees_with_model(self) -> None:
        t, m = self.t, self.m
        assert t.enabled == m.enable and t.function_masked == m.fmask
        assert t.control == (m.enable << 15) | (m.fmask << 14) | (m.n - 1)
        assert t.pending_count == len(m.pending)
        assert t.disabled_mode == m.mode
        assert t.take_messages() == m.outbox
        m.outbox = []
        assert t.entries == m.n


TestVectorTableMachine = VectorTableMachine.TestCase
TestVectorTableMachine.settings = machine_settings(examples=40, steps=40)
