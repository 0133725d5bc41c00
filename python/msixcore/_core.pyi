"""Type stubs for the Rust extension ``msixcore._core``."""

from collections.abc import Iterable
from typing import Literal, TypedDict, final

__version__: str
__all__ = [
    "AccountingError",
    "InvalidArgument",
    "InvalidOperation",
    "IrqMatrix",
    "MmioError",
    "MsixError",
    "NoSpace",
    "VectorDomain",
    "__version__",
]

class MsixError(Exception):
    """Base class of every msixcore error."""

class InvalidArgument(MsixError, ValueError):
    """A bad argument (the kernel's -EINVAL); also a ValueError."""

class NoSpace(MsixError):
    """A resource ran out (the kernel's -ENOSPC)."""

class InvalidOperation(MsixError):
    """The kernel would WARN or BUG; ``sites`` names the conditions."""

    sites: list[str]

class MmioError(MsixError):
    """A bus access the device does not decode."""

class AccountingError(MsixError):
    """A simulation's books do not balance."""

class _CpuState(TypedDict):
    available: int
    allocated: int
    managed: int
    managed_allocated: int
    online: bool
    initialized: bool
    alloc_map: list[int]
    managed_map: list[int]

class _MatrixState(TypedDict):
    matrix_bits: int
    alloc_start: int
    alloc_end: int
    alloc_size: int
    global_available: int
    global_reserved: int
    total_allocated: int
    online_maps: int
    systembits_inalloc: int
    system_map: list[int]
    cpus: list[_CpuState]

@final
class IrqMatrix:
    """Linux's per-CPU interrupt vector allocator (``kernel/irq/matrix.c``), bit for bit.

    Mainline >= v6.7 semantics. Where the kernel uses the local CPU, the CPU is an argument.
    CPU lists are sets (any iterable of ints), walked in ascending order. Counters are
    unsigned 32-bit and wrap like the kernel's. ``-EINVAL`` raises :class:`InvalidArgument`,
    ``-ENOSPC`` :class:`NoSpace`; a kernel WARN raises :class:`InvalidOperation` with
    ``sites`` after leaving the state as the kernel leaves it; a kernel BUG raises
    :class:`InvalidOperation` and changes nothing. Negative or too large numbers raise
    :class:`InvalidArgument`.
    """

    def __new__(cls, matrix_bits: int, alloc_start: int, alloc_end: int, ncpus: int) -> IrqMatrix:
        """``irq_alloc_matrix``: 1 <= matrix_bits <= 256, alloc_start <= alloc_end <=
        matrix_bits, 1 <= ncpus <= 8192; every CPU offline and uninitialized."""

    @classmethod
    def x86(cls, ncpus: int, posted_msi: bool = False) -> IrqMatrix:
        """The x86 vector matrix of a mainline x86_64 KVM host, booted.

        Range ``[0x20, 0xec)`` (``[0x20, 0xeb)`` with ``posted_msi``, CONFIG_X86_POSTED_MSI);
        the kernel's system vectors (exceptions, 0x80, 0x32 PIC cascade, APIC vectors)
        assigned, CPU 0 online with the legacy ISA vectors 0x30-0x3f (but 0x32) assigned,
        then CPUs 1..ncpus-1 online.
        """

    def online(self, cpu: int) -> None:
        """``irq_matrix_online``: first time sets ``available``; adds it to
        ``global_available``; ``online_maps`` += 1. Already online: InvalidOperation."""

    def offline(self, cpu: int) -> None:
        """``irq_matrix_offline``: ``global_available`` -= available, ``online_maps`` -= 1;
        maps kept."""

    def assign_system(self, cpu: int, bit: int, replace: bool) -> None:
        """``irq_matrix_assign_system`` on local CPU ``cpu``: mark ``bit`` a system vector."""

    def reserve_managed(self, cpus: Iterable[int]) -> None:
        """``irq_matrix_reserve_managed``: one managed bit on every CPU of ``cpus``; rolls back
        and raises NoSpace on the first CPU without room."""

    def remove_managed(self, cpus: Iterable[int]) -> None:
        """``irq_matrix_remove_managed``: drop one unallocated managed bit per CPU; WARNs are
        collected in the raised InvalidOperation's ``sites``."""

    def alloc_managed(self, cpus: Iterable[int]) -> tuple[int, int]:
        """``irq_matrix_alloc_managed``: returns ``(cpu, vector)``; CPU with the fewest
        managed allocations, the last one on ties."""

    def assign(self, cpu: int, bit: int) -> None:
        """``irq_matrix_assign`` on local CPU ``cpu``: mark a preallocated vector."""

    def reserve(self) -> None:
        """``irq_matrix_reserve``: ``global_reserved`` += 1 (may bump :attr:`warnings`)."""

    def remove_reserved(self) -> None:
        """``irq_matrix_remove_reserved``: ``global_reserved`` -= 1."""

    def alloc(self, cpus: Iterable[int], reserved: bool = False) -> tuple[int, int]:
        """``irq_matrix_alloc``: returns ``(cpu, vector)``; CPU with the most available
        vectors, the first one on ties; ``reserved`` consumes a global reservation."""

    def free(self, cpu: int, bit: int, managed: bool = False) -> None:
        """``irq_matrix_free``: release ``bit`` on ``cpu``."""

    def available(self, cpudown_cpu: int | None = None) -> int:
        """``irq_matrix_available``: ``global_available``, minus ``cpudown_cpu``'s
        ``available`` when given."""

    def reserved(self) -> int:
        """``irq_matrix_reserved``: ``global_reserved``."""

    def allocated(self, cpu: int) -> int:
        """``irq_matrix_allocated`` on ``cpu``: ``allocated - managed_allocated``."""

    def state(self) -> _MatrixState:
        """The whole state, keys and types as the golden traces' ``state`` object."""

    def cpu_state(self, cpu: int) -> _CpuState:
        """One CPU's state (one entry of ``state()["cpus"]``)."""

    def debug_show(self, ind: int = 0) -> str:
        """``irq_matrix_debug_show``: the debugfs text, character for character."""

    @property
    def warnings(self) -> int:
        """Number of ``pr_warn`` messages printed (over-reservation)."""

    @property
    def ncpus(self) -> int:
        """Number of possible CPUs."""

class _IrqState(TypedDict):
    irq: int
    state: Literal["reserved", "assigned", "active", "managed_reserved", "managed_shutdown"]
    cpu: int | None
    vector: int | None
    managed: bool
    affinity: list[int]
    node: int | None
    requested: bool
    has_reserved: bool
    can_reserve: bool

@final
class VectorDomain:
    """The x86 vector domain (``arch/x86/kernel/apic/vector.c``) on a booted x86 matrix.

    Interrupts go through the kernel's lifecycle: ``alloc_irq`` (``x86_vector_alloc_irqs``
    plus MSI early activation), ``activate`` (``request_irq``), ``deactivate``
    (``free_irq``), ``free`` (``x86_vector_free_irqs``); CPUs go through hotplug with
    ``cpu_offline`` / ``cpu_online``. With ``reservation_mode`` a regular interrupt holds
    only a global reservation until activated (exhaustion surfaces at ``activate``);
    without it the vector is assigned at allocation (exhaustion surfaces at
    ``alloc_irq``). Managed interrupts reserve a vector on every CPU of their affinity and
    start on an online CPU of it, or wait in ``managed_shutdown`` until one comes online.
    Vector moves complete at once (the kernel frees the old vector a little later).
    """

    def __new__(
        cls,
        ncpus: int,
        *,
        posted_msi: bool = False,
        reservation_mode: bool = True,
        nodes: Iterable[int] | None = None,
    ) -> VectorDomain:
        """Boot an x86 host with ``ncpus`` CPUs, all online (see :meth:`IrqMatrix.x86`);
        ``nodes[cpu]`` is each CPU's NUMA node (default: all on node 0)."""

    def alloc_irq(
        self, affinity: Iterable[int] | None = None, managed: bool = False, node: int | None = None
    ) -> int:
        """Allocate an interrupt; returns its number. ``affinity`` defaults to every CPU,
        ``node`` to NUMA_NO_NODE. Raises NoSpace when the managed reservation or (without
        reservation mode) the vector allocation fails."""

    def activate(self, irq: int) -> None:
        """``request_irq``: give the interrupt a CPU vector (fallback chain node ∩ affinity,
        node, affinity ∩ online, online). Raises NoSpace on exhaustion."""

    def deactivate(self, irq: int) -> None:
        """``free_irq``: release the vector (back to a reservation / managed shutdown)."""

    def free(self, irq: int) -> None:
        """Tear the interrupt down: its vector and its reservations."""

    def cpu_offline(self, cpu: int) -> None:
        """CPU unplug: migrate started interrupts off ``cpu`` or shut managed ones down.
        Raises NoSpace when the CPU's vectors do not fit elsewhere (nothing changes)."""

    def cpu_online(self, cpu: int) -> None:
        """CPU hotplug: bring ``cpu`` online and start managed interrupts waiting for it."""

    def irq_state(self, irq: int) -> _IrqState:
        """One interrupt: state name, cpu, vector, managed, affinity, reservations."""

    def irqs(self) -> list[int]:
        """Allocated interrupt numbers, ascending."""

    def online_cpus(self) -> list[int]:
        """CPUs in the online mask, ascending."""

    def matrix_state(self) -> _MatrixState:
        """The underlying matrix's state (as :meth:`IrqMatrix.state`)."""

    def debug_show(self, ind: int = 0) -> str:
        """The matrix's debugfs text (``/sys/kernel/debug/irq/domains/VECTOR``)."""

    @property
    def ncpus(self) -> int:
        """Number of possible CPUs."""

    @property
    def reservation_mode(self) -> bool:
        """Whether regular interrupts reserve instead of holding a vector until activation."""

    @property
    def nr_irqs(self) -> int:
        """Number of allocated interrupts."""

    @property
    def vectors_in_use(self) -> int:
        """Interrupts holding a CPU vector."""

    @property
    def reserved(self) -> int:
        """Global reservations outstanding (``irq_matrix_reserved``)."""

    @property
    def managed_reserved(self) -> int:
        """Managed reservations summed over all CPUs."""

    @property
    def available(self) -> int:
        """The matrix's ``global_available``."""

    @property
    def warnings(self) -> int:
        """``pr_warn`` messages so far (matrix over-reservation, broken affinity, ...)."""
