"""State machine over ``IrqMatrix``: valid kernel call sequences keep every counter equal to
its recount; kernel misuse (offlining an offline CPU, freeing with the wrong ``managed``,
removing a reservation never taken) wraps counters like the kernel, and from then on only the
no-crash checks apply. Hostile arguments fail typed and change nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule
from sm_common import (
    CountingMachine,
    Err,
    attempt,
    expect_error,
    first_error,
    garbage,
    hostile_int,
    in_range,
    int_arg,
    machine_settings,
    short,
)

from msixcore import InvalidArgument, InvalidOperation, IrqMatrix, NoSpace

cpu_lists = st.one_of(
    st.lists(st.integers(0, 5), max_size=5),
    st.lists(st.integers(0, 5), max_size=3).map(set),
    st.lists(st.integers(0, 5), max_size=3).map(tuple),
    st.lists(hostile_int, min_size=1, max_size=2),
    garbage,
)


def cpu_list_valid(cpus: Any, ncpus: int) -> list[int] | None:
    """The CPUs of a mask the binding accepts, or None if it must refuse it."""
    try:
        items = list(cpus)
    except Exception:
        return None
    out = []
    for c in items:
        v = in_range(c, 0, ncpus - 1)
        if isinstance(v, Err):
            return None
        out.append(v)
    return out


class MatrixMachine(CountingMachine):
    m: IrqMatrix

    @initialize(
        kind=st.sampled_from(["raw", "x86", "x86-posted"]), ncpus=st.integers(1, 4), bits=st.data()
    )
    def build(self, kind: str, ncpus: int, bits: st.DataObject) -> None:
        if kind == "raw":
            nbits = bits.draw(st.integers(1, 96))
            start = bits.draw(st.integers(0, nbits))
            end = bits.draw(st.integers(start, nbits))
            self.m = IrqMatrix(nbits, start, end, ncpus)
            self.reservations = 0
        else:
            self.m = IrqMatrix.x86(ncpus, posted_msi=kind == "x86-posted")
            self.reservations = 0
        self.ncpus = ncpus
        self.tainted = False  # a kernel misuse happened: counters may have wrapped
        self.held: list[tuple[int, int, bool]] = []  # (cpu, bit, managed) we allocated
        self.went_offline: set[int] = set()  # their `available` no longer follows `managed`

    def state(self) -> Any:
        return self.m.state()

    def checked(self, fn: Any, *args: Any, rollback_ok: bool = False) -> Any:
        """Call; on an error the state must be as before (except where the kernel carries on)."""
        before = self.state()
        out = attempt(fn, *args)
        if not out.ok and not rollback_ok:
            assert self.state() == before, f"{fn.__name__}{short(args)} failed half-way"
        return out

    @rule(cpu=int_arg(0, 5))
    def online(self, cpu: Any) -> None:
        c = in_range(cpu, 0, self.ncpus - 1)
        out = self.checked(self.m.online, cpu)
        if isinstance(c, Err):
            expect_error(out, c, f"online({short(cpu)})")
        elif out.ok:
            assert self.m.cpu_state(c)["online"]
        else:
            assert isinstance(out.error, InvalidOperation)
            assert out.error.sites == ["online_already_online"]

    @rule(cpu=int_arg(0, 5))
    def offline(self, cpu: Any) -> None:
        c = in_range(cpu, 0, self.ncpus - 1)
        was_online = isinstance(c, int) and self.m.cpu_state(c)["online"]
        out = self.checked(self.m.offline, cpu)
        if isinstance(c, Err):
            expect_error(out, c, f"offline({short(cpu)})")
            return
        assert out.ok, out.error
        if not was_online:
            self.tainted = True  # the kernel subtracts again
        self.went_offline.add(c)

    @rule(mask=cpu_lists, reserved=st.booleans())
    def alloc(self, mask: Any, reserved: bool) -> None:
        cpus = cpu_list_valid(mask, self.ncpus)
        out = self.checked(self.m.alloc, mask, reserved)
        if cpus is None:
            assert not out.ok
            return
        if out.ok:
            cpu, bit = out.value
            assert cpu in cpus
            self.held.append((cpu, bit, False))
            if reserved:
                self.tainted |= self.reservations == 0
                self.reservations -= 1
        else:
            assert isinstance(out.error, NoSpace | InvalidArgument), out.error
            assert cpus == [] or isinstance(out.error, NoSpace)

    @rule(mask=cpu_lists)
    def reserve_managed(self, mask: Any) -> None:
        cpus = cpu_list_valid(mask, self.ncpus)
        before = self.state()
        out = self.checked(self.m.reserve_managed, mask, rollback_ok=True)
        if cpus is None:
            assert not out.ok
        if not out.ok:
            # rollback restores every count (possibly other managed bits)
            after = self.state()
            for b, a in zip(before["cpus"], after["cpus"], strict=True):
                assert len(b["managed_map"]) == len(a["managed_map"])
                assert {k: v for k, v in b.items() if k != "managed_map"} == {
                    k: v for k, v in a.items() if k != "managed_map"
                }

    @rule(mask=cpu_lists)
    def remove_managed(self, mask: Any) -> None:
        cpus = cpu_list_valid(mask, self.ncpus)
        out = self.checked(self.m.remove_managed, mask, rollback_ok=cpus is not None)
        if cpus is None:
            assert not out.ok
        elif not out.ok:
            assert isinstance(out.error, InvalidOperation), out.error
            assert set(out.error.sites) <= {
                "remove_managed_no_managed",
                "remove_managed_all_allocated",
            }

    @rule(mask=cpu_lists)
    def alloc_managed(self, mask: Any) -> None:
        cpus = cpu_list_valid(mask, self.ncpus)
        out = self.checked(self.m.alloc_managed, mask)
        if cpus is None:
            assert not out.ok
        elif out.ok:
            cpu, bit = out.value
            assert cpu in cpus and bit in self.m.cpu_state(cpu)["managed_map"]
            self.held.append((cpu, bit, True))

    @precondition(lambda self: self.held)
    @rule(i=st.integers(0, 1000), lie=st.booleans())
    def free_held(self, i: int, lie: bool) -> None:
        cpu, bit, managed = self.held.pop(i % len(self.held))
        if lie:
            self.tainted = True  # managed_allocated is taken on trust
        self.m.free(cpu, bit, managed != lie)

    @rule(cpu=int_arg(0, 5), bit=int_arg(0, 300), managed=st.booleans())
    def free_any(self, cpu: Any, bit: Any, managed: bool) -> None:
        c, b = in_range(cpu, 0, self.ncpus - 1), in_range(bit, 0, 2**32 - 1)
        held = [h for h in self.held if (h[0], h[1]) == (c, b)]
        out = self.checked(self.m.free, cpu, bit, managed)
        err = first_error(c, b)
        if err is not None:
            expect_error(out, err, f"free({short(cpu)}, {short(bit)})")
            return
        if out.ok:
            if held:
                self.held.remove(held[0])
                self.tainted |= held[0][2] != managed
            else:
                self.tainted = True  # a system or boot vector freed
        else:
            assert isinstance(out.error, InvalidOperation), out.error

    @rule(cpu=int_arg(0, 5), bit=int_arg(0, 300))
    def assign(self, cpu: Any, bit: Any) -> None:
        out = self.checked(self.m.assign, cpu, bit)
        if out.ok:
            self.tainted = True  # assigned outside the allocator (offline CPUs too)

    @rule(cpu=int_arg(0, 5), bit=int_arg(0, 300), replace=st.booleans())
    def assign_system(self, cpu: Any, bit: Any, replace: bool) -> None:
        out = self.checked(self.m.assign_system, cpu, bit, replace)
        if out.ok:
            self.tainted = True

    @rule(n=st.integers(1, 3))
    def reserve(self, n: int) -> None:
        for _ in range(n):
            self.m.reserve()
            self.reservations += 1

    @rule()
    def remove_reserved(self) -> None:
        self.tainted |= self.reservations == 0
        self.m.remove_reserved()
        self.reservations -= 1

    @rule(cpu=st.one_of(st.none(), int_arg(0, 5)), ind=int_arg(-9, 9))
    def queries(self, cpu: Any, ind: Any) -> None:
        c = None if cpu is None else in_range(cpu, 0, self.ncpus - 1)
        for fn, args in (
            (self.m.available, (cpu,)),
            (self.m.allocated, (cpu,)),
            (self.m.cpu_state, (cpu,)),
        ):
            out = attempt(fn, *args)
            if isinstance(c, Err):
                expect_error(out, c, f"{fn.__name__}({short(cpu)})")
        i = in_range(ind, -4096, 4096)
        out = attempt(self.m.debug_show, ind)
        if isinstance(i, Err):
            expect_error(out, i, f"debug_show({short(ind)})")
        else:
            assert out.ok, out.error

    @rule(args=st.lists(garbage, max_size=4), name=st.sampled_from(["online", "alloc", "free"]))
    def garbage_call(self, args: list[Any], name: str) -> None:
        before = self.state()
        out = attempt(getattr(self.m, name), *args)
        if not out.ok:
            assert self.state() == before
        else:
            self.tainted = True  # a valid call by chance, outside the model

    @invariant()
    def dump_never_aborts(self) -> None:
        text = self.m.debug_show()
        online = sum(c["online"] for c in self.state()["cpus"])
        assert len(text.splitlines()) == 6 + online
        repr(self.m)

    @invariant()
    def counters_recount(self) -> None:
        if self.tainted:
            return
        s = self.state()
        online = [c for c in s["cpus"] if c["online"]]
        assert s["online_maps"] == len(online)
        assert s["global_available"] == sum(c["available"] for c in online)
        assert s["global_reserved"] == self.reservations == self.m.reserved()
        for i, c in enumerate(s["cpus"]):
            assert c["allocated"] == len(c["alloc_map"])
            assert c["managed"] == len(c["managed_map"])
            assert c["managed_allocated"] == len(set(c["managed_map"]) & set(c["alloc_map"]))
            mine = sorted(b for cpu, b, _ in self.held if cpu == i)
            assert set(mine) <= set(c["alloc_map"])
            assert len(mine) == len(set(mine))
            if c["initialized"] and i not in self.went_offline:
                free = s["alloc_size"] - c["managed"] - s["systembits_inalloc"]
                unmanaged_alloc = c["allocated"] - c["managed_allocated"]
                assert c["available"] == free - unmanaged_alloc


TestMatrixMachine = MatrixMachine.TestCase
TestMatrixMachine.settings = machine_settings(examples=50, steps=40)


def test_debug_show_after_offlining_an_offline_cpu() -> None:
    """Found by the machine: online_maps wraps to 2**32 - 1 and the dump reserved 48 bytes per
    map (~200 GB), aborting the interpreter."""
    m = IrqMatrix(64, 8, 40, 2)
    m.offline(0)
    assert m.state()["online_maps"] == 2**32 - 1
    assert m.debug_show().splitlines()[0] == "Online bitmaps:   4294967295"
    assert len(m.debug_show(-5).splitlines()) == 6
