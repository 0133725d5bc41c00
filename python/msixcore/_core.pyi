"""Type stubs for the Rust extension ``msixcore._core``."""

from collections.abc import Iterable
from typing import Literal, Self, TypeAlias, TypedDict, final

import numpy as np
import numpy.typing as npt

from msixcore.engine_config import ActionConfig

__version__: str
__all__ = [
    "FIRE_OUTCOMES",
    "AccountingError",
    "AmdIrte",
    "AmdIrteTables",
    "AmdRemapper",
    "InterruptRemapper",
    "InvalidArgument",
    "InvalidOperation",
    "IrqMatrix",
    "Irte",
    "IrteTable",
    "MmioError",
    "MsixError",
    "NoSpace",
    "RemapResult",
    "Simulation",
    "VectorDomain",
    "VectorTable",
    "__version__",
    "compose_amd_msi",
    "compose_msi",
    "config_schema",
    "decode_msi",
    "garwood_interval",
    "merge_run_results",
    "normalize_config",
    "platform_behaviours",
    "rate_per_million",
    "run_replications",
    "run_simulation",
    "storm_closed_form_lost",
    "storm_config",
    "storm_defaults",
    "validate_config",
]

FIRE_OUTCOMES: tuple[str, ...]
"""Outcome names of ``VectorTable.fire_many`` codes: delivered, pending, coalesced,
lost, intx."""

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

_DisabledMode: TypeAlias = Literal["lost", "intx", "pending"]
_FireOutcome: TypeAlias = Literal["delivered", "pending", "coalesced", "lost", "intx"]

@final
class VectorTable:
    """One device function's MSI-X capability, vector table and PBA (PCI spec).

    Entry ``k`` sits at table offset ``16*k``: +0 address low, +4 address high,
    +8 data, +12 vector control (bit 0 = Mask). Pending[k] is bit ``k % 64`` of
    PBA qword ``k // 64``. Accesses are 4 bytes or aligned 8 bytes; anything else
    raises ``MmioError``. Messages sent (by ``fire`` or by an unmask that releases
    a pending bit) collect in an outbox read by ``take_messages``.

    ``disabled`` says what a fire does while MSI-X Enable is clear: ``"lost"``
    (dropped), ``"intx"`` (diverted to INTx, which nobody handles on a VFIO host)
    or ``"pending"`` (QEMU's emulated table: counts as masked, sets Pending[k]).
    """

    def __new__(cls, entries: int, disabled: _DisabledMode = "lost") -> Self:
        """A table of ``entries`` vectors (1..2048) in spec reset state.

        Raises ``InvalidArgument`` for a bad size or mode.
        """

    @property
    def entries(self) -> int:
        """Number of vectors N."""

    @property
    def control(self) -> int:
        """Message Control: Enable (bit 15), Function Mask (bit 14), N - 1 (bits 10:0)."""

    @property
    def enabled(self) -> bool:
        """Whether MSI-X Enable is set."""

    @property
    def function_masked(self) -> bool:
        """Whether Function Mask is set."""

    @property
    def disabled_mode(self) -> _DisabledMode:
        """What a fire does while Enable is clear: "lost", "intx" or "pending"."""

    @disabled_mode.setter
    def disabled_mode(self, mode: _DisabledMode) -> None:
        """Change what later fires do while Enable is clear; a bad name raises InvalidArgument."""
    @property
    def pending_count(self) -> int:
        """Number of set pending bits."""

    def set_control(self, value: int) -> None:
        """Write Message Control: Enable (bit 15) and Function Mask (bit 14).

        The table size and other bits are ignored. When the function becomes able
        to send (Function Mask cleared or Enable set), every pending unmasked vector
        is sent in ascending order. A value outside 0..0xffff raises ``InvalidArgument``.
        """

    def reset(self) -> None:
        """Back to spec reset state (Enable 0, Function Mask 0, entries masked, PBA clear)."""

    def table_read(self, offset: int, size: int) -> int:
        """Read ``size`` (4 or 8) bytes of the table at ``offset``; ``MmioError`` if invalid."""

    def table_write(self, offset: int, size: int, value: int) -> None:
        """Write ``size`` (4 or 8) bytes of the table at ``offset``.

        Only vector control bit 0 is writable. An unmask of a pending vector that
        can send posts its message to the outbox. ``MmioError`` if the access or
        the value (wider than the access, negative) is invalid.
        """

    def pba_read(self, offset: int, size: int) -> int:
        """Read ``size`` (4 or 8) bytes of the PBA at ``offset``; ``MmioError`` if invalid."""

    def pba_write(self, offset: int, size: int, value: int) -> None:
        """Always raises ``MmioError``: the PBA is read-only."""

    def fire(self, k: int) -> _FireOutcome:
        """The device signals vector ``k``; returns where the event ended up.

        ``InvalidArgument`` if ``k`` is not a vector of the table.
        """

    def fire_many(self, vectors: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint8]:
        """Fire many vectors in order; each fire's outcome as an index into
        :data:`FIRE_OUTCOMES`. Delivered messages go to the outbox. A vector past
        the table raises ``InvalidArgument`` before anything fires."""

    def take_messages(self) -> list[tuple[int, int, int]]:
        """Return and clear the ``(vector, address, data)`` messages sent so far."""

    def program(self, k: int, address: int, data: int) -> None:
        """Program entry ``k``'s Message Address (64 bit) and Data (32 bit)."""

    def mask(self, k: int) -> None:
        """Set entry ``k``'s Mask bit (a guest vector control write of 1)."""

    def unmask(self, k: int) -> None:
        """Clear entry ``k``'s Mask bit; a pending message is sent if ``k`` can now send."""

    def entry(self, k: int) -> tuple[int, int, int]:
        """Entry ``k`` as ``(address, data, vector_control)``."""

    def is_masked(self, k: int) -> bool:
        """Effective mask: Function Mask, entry Mask, or Enable clear in "pending" mode."""

    def is_entry_masked(self, k: int) -> bool:
        """Entry ``k``'s own Mask bit."""

    def is_pending(self, k: int) -> bool:
        """Pending[k]."""

# ---------------------------------------------------------------- IOMMU remapping

_FaultTuple = tuple[int, int | None, str]
"""A fault record: (requester_id, interrupt index or None, reason)."""

@final
class Irte:
    """A remapped-format Intel VT-d IRTE (128 bits, immutable).

    Bits: present 0, fpd 1, dest_mode 2, redir_hint 3, trigger_mode 4,
    delivery_mode 7:5, avail 11:8, IM 15 (0; the posted format is not modelled),
    vector 23:16, dest_id 63:32, sid 79:64, sq 81:80, svt 83:82; the rest is
    reserved. Out-of-width fields raise InvalidArgument.
    """

    def __new__(
        cls,
        *,
        present: bool = False,
        fpd: bool = False,
        dest_mode: bool = False,
        redir_hint: bool = False,
        trigger_mode: bool = False,
        delivery_mode: int = 0,
        avail: int = 0,
        vector: int = 0,
        dest_id: int = 0,
        sid: int = 0,
        sq: int = 0,
        svt: int = 0,
    ) -> Irte:
        """An entry from its fields; a field wider than its bits raises InvalidArgument."""
    @staticmethod
    def from_u128(value: int) -> Irte:
        """Parse a 128-bit entry; reserved bits or IM = 1 raise InvalidArgument."""
    def to_u128(self) -> int:
        """The 128-bit entry as the IOMMU reads it."""
    @property
    def present(self) -> bool:
        """P: the entry is valid."""
    @property
    def fpd(self) -> bool:
        """FPD: faults through this entry are not recorded."""
    @property
    def dest_mode(self) -> bool:
        """DM: True = logical destination."""
    @property
    def redir_hint(self) -> bool:
        """RH: redirection hint."""
    @property
    def trigger_mode(self) -> bool:
        """TM: True = level."""
    @property
    def delivery_mode(self) -> int:
        """Delivery mode (3 bits)."""
    @property
    def avail(self) -> int:
        """Software-available bits (4 bits)."""
    @property
    def vector(self) -> int:
        """CPU vector."""
    @property
    def dest_id(self) -> int:
        """Destination APIC id (32 bits)."""
    @property
    def sid(self) -> int:
        """Source id (requester id, or start bus << 8 | end bus with svt 2)."""
    @property
    def sq(self) -> int:
        """Source-id qualifier: 0 all 16 bits, 1 ignore bit 2, 2 bits 2:1, 3 bits 2:0."""
    @property
    def svt(self) -> int:
        """Source validation: 0 none, 1 SID+SQ, 2 bus range, 3 reserved (faults)."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class IrteTable:
    """One VT-d interrupt remapping table with Linux's ``alloc_irte`` allocator.

    ``entries`` must be a power of two in 1..=65536.
    """

    def __new__(cls, entries: int = 65536) -> IrteTable:
        """An empty table of ``entries`` IRTEs (a power of two in 1..=65536)."""
    def alloc(self, count: int) -> int:
        """Allocate a naturally aligned block of next_pow2(count) entries, first fit.

        Returns the block's first index; NoSpace when no block fits.
        """
    def free(self, index: int, count: int) -> None:
        """Free the block at ``index`` (rounded size must match); zeroes its entries.

        InvalidOperation (sites ``free_not_allocated``, ``free_not_block_start``,
        ``free_count_mismatch``) leaves the table unchanged.
        """
    def set(self, index: int, irte: Irte) -> None:
        """Write ``irte`` at an allocated ``index``."""
    def get(self, index: int) -> Irte:
        """The entry at ``index`` (all zero if never written)."""
    def clear(self, index: int) -> None:
        """Zero the entry at an allocated ``index``."""
    def is_allocated(self, index: int) -> bool:
        """Whether ``index`` lies in an allocated block."""
    @property
    def entries(self) -> int:
        """Table size."""
    @property
    def in_use(self) -> int:
        """Allocated slots (sum of live block sizes)."""
    @property
    def free_slots(self) -> int:
        """Slots not allocated."""
    @property
    def present(self) -> int:
        """Entries with P = 1."""
    @property
    def blocks(self) -> int:
        """Live allocated blocks."""

@final
class AmdIrte:
    """An AMD GA-format (128-bit) IRTE in remapped mode (GuestMode = 0), immutable.

    Bits: remap_en 0, sup_iopf 1, int_type 4:2, rq_eoi 5, dest_mode 6,
    GuestMode 7 (0), destination[23:0] 31:8, vector 71:64,
    destination[31:24] 127:120; the rest is reserved.
    """

    def __new__(
        cls,
        *,
        remap_en: bool = False,
        sup_iopf: bool = False,
        int_type: int = 0,
        rq_eoi: bool = False,
        dest_mode: bool = False,
        destination: int = 0,
        vector: int = 0,
    ) -> AmdIrte:
        """An entry from its fields; ``int_type`` over 3 bits raises InvalidArgument."""
    @staticmethod
    def from_u128(value: int) -> AmdIrte:
        """Parse a 128-bit entry; GuestMode = 1 or reserved bits raise InvalidArgument."""
    def to_u128(self) -> int:
        """The 128-bit entry as the IOMMU reads it."""
    @property
    def remap_en(self) -> bool:
        """RemapEn: the entry is valid."""
    @property
    def sup_iopf(self) -> bool:
        """SupIOPF: faults through this entry are not logged."""
    @property
    def int_type(self) -> int:
        """Interrupt type (3 bits)."""
    @property
    def rq_eoi(self) -> bool:
        """RqEoi."""
    @property
    def dest_mode(self) -> bool:
        """DM: True = logical."""
    @property
    def destination(self) -> int:
        """Destination APIC id (32 bits)."""
    @property
    def vector(self) -> int:
        """CPU vector."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class AmdIrteTables:
    """The per-device (requester id) AMD remapping tables of one IOMMU.

    Tables are created on first use with ``table_size`` entries (Linux: 256
    before 5.10, 512 since, 2048 with EFR2 NumIntRemapSup on newer kernels).
    """

    def __new__(cls, table_size: int = 512) -> AmdIrteTables:
        """No tables yet; ``table_size`` (a power of two in 1..=2048) for tables made on use."""
    def alloc(self, requester_id: int, count: int, aligned: bool = False) -> int:
        """Allocate ``count`` contiguous entries, first fit (aligned for multi-MSI)."""
    def free(self, requester_id: int, index: int, count: int = 1) -> None:
        """Free entries index..index+count (each must be allocated) and zero them."""
    def set(self, requester_id: int, index: int, irte: AmdIrte) -> None:
        """Write ``irte`` at an allocated index of the device's table."""
    def get(self, requester_id: int, index: int) -> AmdIrte:
        """The entry at ``index`` of the device's table."""
    def clear(self, requester_id: int, index: int) -> None:
        """Zero an allocated entry of the device's table."""
    def create_table(self, requester_id: int, size: int) -> None:
        """Give the device a table of ``size`` entries now (once)."""
    def table_len(self, requester_id: int) -> int | None:
        """Size of the device's table, or None without one."""
    def in_use_of(self, requester_id: int) -> int:
        """Allocated entries in the device's table."""
    @property
    def table_size(self) -> int:
        """Size given to tables created on first use."""
    @property
    def tables(self) -> int:
        """Devices with a table."""
    @property
    def in_use(self) -> int:
        """Allocated entries over all tables."""
    @property
    def enabled(self) -> int:
        """Entries with RemapEn = 1 over all tables."""

@final
class RemapResult:
    """The outcome of one interrupt request: a target, or a blocked fault."""

    @property
    def blocked(self) -> bool:
        """True when the request was blocked."""
    @property
    def vector(self) -> int | None:
        """Target vector (None when blocked)."""
    @property
    def dest_id(self) -> int | None:
        """Target APIC id (None when blocked)."""
    @property
    def dest_mode(self) -> bool | None:
        """Target destination mode (None when blocked)."""
    @property
    def delivery_mode(self) -> int | None:
        """Target delivery mode (None when blocked)."""
    @property
    def trigger_mode(self) -> bool | None:
        """Target trigger mode (None when blocked)."""
    @property
    def irte_index(self) -> int | None:
        """The IRTE used (None when blocked or for a compatibility-format pass-through)."""
    @property
    def fault(self) -> str | None:
        """Fault reason: not_present, index_out_of_range, sid_mismatch, reserved_svt,
        compat_format_blocked, not_in_interrupt_window, no_table, reserved_request_field; None
        when delivered."""
    @property
    def fault_index(self) -> int | None:
        """The index the blocked request named, if any."""
    @property
    def suppressed(self) -> bool:
        """Blocked but not recorded (FPD / SupIOPF)."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class InterruptRemapper:
    """One Intel VT-d IOMMU: an IRTE table, the CFI setting and a bounded fault log."""

    def __new__(
        cls, entries: int = 65536, allow_compat: bool = False, fault_log_capacity: int = 256
    ) -> InterruptRemapper:
        """A remapper with an ``entries``-IRTE table, CFI ``allow_compat`` and a fault log of
        ``fault_log_capacity`` records (at most 2**20)."""
    def remap(self, requester_id: int, address: int, data: int) -> RemapResult:
        """Remap one request; a block counts once in fault_count or suppressed_faults."""
    def faults(self) -> list[_FaultTuple]:
        """The kept fault records, oldest first."""
    def drain_faults(self) -> list[_FaultTuple]:
        """Remove and return the kept fault records."""
    @property
    def fault_count(self) -> int:
        """Faults recorded (including those past the log's capacity)."""
    @property
    def suppressed_faults(self) -> int:
        """Blocked requests not recorded because of FPD."""
    @property
    def overflowed_faults(self) -> int:
        """Faults counted but not kept because the log was full."""
    @property
    def fault_log_capacity(self) -> int:
        """Records the fault log keeps."""
    @property
    def allow_compat(self) -> bool:
        """CFI: let compatibility-format MSIs through unremapped."""
    @allow_compat.setter
    def allow_compat(self, allow: bool) -> None:
        """Set or clear CFI."""
    def alloc(self, count: int) -> int:
        """Allocate a naturally aligned block of next_pow2(count) IRTEs."""
    def free(self, index: int, count: int) -> None:
        """Free the block at ``index``."""
    def set(self, index: int, irte: Irte) -> None:
        """Write ``irte`` at an allocated ``index``."""
    def get(self, index: int) -> Irte:
        """The IRTE at ``index``."""
    def clear(self, index: int) -> None:
        """Zero the IRTE at an allocated ``index``."""
    def is_allocated(self, index: int) -> bool:
        """Whether ``index`` lies in an allocated block."""
    @property
    def entries(self) -> int:
        """Table size."""
    @property
    def in_use(self) -> int:
        """Allocated IRTEs."""
    @property
    def present(self) -> int:
        """IRTEs with P = 1."""
    @property
    def blocks(self) -> int:
        """Live allocated blocks."""

@final
class AmdRemapper:
    """One AMD IOMMU: per-device remapping tables and a bounded fault log."""

    def __new__(cls, table_size: int = 512, fault_log_capacity: int = 256) -> AmdRemapper:
        """A remapper whose device tables get ``table_size`` entries on first use, with a fault
        log of ``fault_log_capacity`` records (at most 2**20)."""
    def remap(self, requester_id: int, address: int, data: int) -> RemapResult:
        """Remap one request through the requester's own table (index = data[10:0])."""
    def faults(self) -> list[_FaultTuple]:
        """The kept fault records, oldest first."""
    def drain_faults(self) -> list[_FaultTuple]:
        """Remove and return the kept fault records."""
    @property
    def fault_count(self) -> int:
        """Faults recorded (including those past the log's capacity)."""
    @property
    def suppressed_faults(self) -> int:
        """Blocked requests not recorded because of SupIOPF."""
    @property
    def overflowed_faults(self) -> int:
        """Faults counted but not kept because the log was full."""
    @property
    def fault_log_capacity(self) -> int:
        """Records the fault log keeps."""
    def alloc(self, requester_id: int, count: int, aligned: bool = False) -> int:
        """Allocate ``count`` contiguous entries in the device's table."""
    def free(self, requester_id: int, index: int, count: int = 1) -> None:
        """Free entries index..index+count of the device's table."""
    def set(self, requester_id: int, index: int, irte: AmdIrte) -> None:
        """Write ``irte`` at an allocated index of the device's table."""
    def get(self, requester_id: int, index: int) -> AmdIrte:
        """The entry at ``index`` of the device's table."""
    def clear(self, requester_id: int, index: int) -> None:
        """Zero an allocated entry of the device's table."""
    def create_table(self, requester_id: int, size: int) -> None:
        """Give the device a table of ``size`` entries now (once)."""
    def table_len(self, requester_id: int) -> int | None:
        """Size of the device's table, or None without one."""
    @property
    def table_size(self) -> int:
        """Size given to tables created on first use."""
    @property
    def tables(self) -> int:
        """Devices with a table."""
    @property
    def in_use(self) -> int:
        """Allocated entries over all tables."""
    @property
    def enabled(self) -> int:
        """Entries with RemapEn = 1."""

class _RemappableMsiDict(TypedDict):
    """``decode_msi`` of a remappable-format message."""

    format: Literal["remappable"]
    handle: int
    shv: bool
    sub_handle: int | None
    index: int

class _CompatMsiDict(TypedDict):
    """``decode_msi`` of a compatibility-format message."""

    format: Literal["compat"]
    dest_id: int
    redir_hint: bool
    dest_mode: bool
    vector: int
    delivery_mode: int
    trigger_mode: bool

def compose_msi(handle: int, sub_handle: int | None = None) -> tuple[int, int]:
    """The Intel remappable-format MSI (address, data) for ``handle``; SHV iff ``sub_handle``."""

def compose_amd_msi(index: int) -> tuple[int, int]:
    """The AMD MSI (address, data) for IRTE ``index`` of the sender's table."""

def decode_msi(address: int, data: int) -> _RemappableMsiDict | _CompatMsiDict:
    """Decode an MSI; an address outside 0xFEEx_xxxx raises InvalidArgument."""

class _CpuState(TypedDict):
    """One CPU of the matrix (``struct cpumap``), as in the golden traces."""

    available: int
    allocated: int
    managed: int
    managed_allocated: int
    online: bool
    initialized: bool
    alloc_map: list[int]
    managed_map: list[int]

class _MatrixState(TypedDict):
    """The whole matrix (``struct irq_matrix``), as the golden traces' ``state``."""

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
    """One interrupt of a :class:`VectorDomain`."""

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
    A user affinity change (``set_affinity``) keeps the old vector until ``complete_move``
    (the kernel's cleanup after the first interrupt on the new one); other moves free it at
    once. With ``trace=True`` every matrix change is recorded as the ``irq_matrix_*``
    tracepoint the kernel would print (``take_trace``).
    """

    def __new__(
        cls,
        ncpus: int,
        *,
        posted_msi: bool = False,
        reservation_mode: bool = True,
        nodes: Iterable[int] | None = None,
        online: Iterable[int] | None = None,
        system_vectors: Iterable[int] | None = None,
        first_system_vector: int | None = None,
        legacy_irqs: int | None = None,
        trace: bool = False,
    ) -> VectorDomain:
        """Boot an x86 host with ``ncpus`` possible CPUs (see :meth:`IrqMatrix.x86`).

        ``nodes[cpu]`` is each CPU's NUMA node (default: all on node 0). ``online``: the CPUs
        brought up at boot (must include 0; default all), the others stay offline until
        :meth:`cpu_online`. ``system_vectors`` (the boot's ``system_vectors`` bitmap, without
        the PIC cascade), ``first_system_vector`` (end of the allocation range) and
        ``legacy_irqs`` (``nr_legacy_irqs()``, 0..16) replace the preset's. ``trace`` records
        the boot and every later matrix change (see :meth:`take_trace`).
        """

    def alloc_irq(
        self,
        affinity: Iterable[int] | None = None,
        managed: bool = False,
        node: int | None = None,
        *,
        irq: int | None = None,
    ) -> int:
        """Allocate an interrupt; returns its number (the lowest free one, or ``irq``, below
        2**20, as for a fixed IOAPIC pin). ``affinity`` defaults to every CPU, ``node`` to
        NUMA_NO_NODE; a regular interrupt given an ``affinity`` keeps it at startup. Raises
        NoSpace when the managed reservation or (without reservation mode) the vector
        allocation fails, InvalidArgument when ``irq`` is taken."""

    def alloc_legacy_irq(self, irq: int, activated: bool = False) -> None:
        """A legacy ISA interrupt taken over by the IOAPIC (``vector_configure_legacy``):
        ``activated`` keeps its boot vector ``0x30 + irq`` on CPU 0 (the timer); otherwise the
        vector is freed and a global reservation taken. InvalidArgument for the cascade (2), a
        number past the boot's legacy irqs, or one already taken over."""

    def activate(self, irq: int) -> None:
        """``request_irq``: give the interrupt a CPU vector (fallback chain node ∩ affinity,
        affinity ∩ online, node, online), then ``irq_setup_affinity``: a regular interrupt's
        mask (its own if set, else every CPU) ∩ online becomes its affinity. Raises NoSpace on
        exhaustion."""

    def set_affinity(self, irq: int, affinity: Iterable[int]) -> None:
        """User affinity change (``/proc/irq/N/smp_affinity``): an activated interrupt moves
        to ``affinity ∩ online`` unless already there, keeping the old vector as a pending move
        until :meth:`complete_move`; a deactivated one only records the mask. InvalidArgument
        when no CPU of the mask is online; InvalidOperation (``managed_affinity``,
        ``move_in_progress``) for a managed interrupt or a move still pending; NoSpace on
        exhaustion. Nothing changes on an error."""

    def complete_move(self, irq: int) -> None:
        """Free the previous vector of a pending move (``vector_free_moved``, after the first
        interrupt on the new vector). InvalidOperation (``no_move_pending``) if none."""

    def pending_move(self, irq: int) -> tuple[int, int] | None:
        """``(cpu, vector)`` of the previous vector while a move is pending, else None."""

    def take_trace(self) -> list[tuple[str, dict[str, int]]]:
        """The matrix events recorded since the last call, oldest first: the tracepoint name
        (``irq_matrix_alloc``, ...) and the fields it prints (``bit``, ``cpu``, ``online``,
        ``avl``, ``alloc``, ``managed``, ``online_maps``, ``global_avl``, ``global_rsvd``,
        ``total_alloc``, as it has them), plus ``irq`` (the interrupt served, if any), ``cpu``
        for online/offline, ``is_managed`` for a free and ``reserved`` for an alloc."""

    def legacy_vectors_held(self) -> list[int]:
        """Legacy ISA interrupts whose boot vector on CPU 0 is still assigned."""

    @property
    def tracing(self) -> bool:
        """Whether matrix changes are recorded (see :meth:`take_trace`)."""

    @tracing.setter
    def tracing(self, on: bool) -> None:
        """Turn the recording on (keeping what it holds) or off (dropping it)."""

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

def run_simulation(config_json: str, policy: object | None = None) -> str:
    """Run the simulation a JSON config describes; return the JSON result.

    ``policy`` is an optional Python policy object (see :mod:`msixcore.policies`),
    called on control-plane events only; without it the config's built-in policy runs.

    The result is ``{"books": {"fired": int, "outcomes": {name: int}}, "stats": {...}}``
    with every fired interrupt in exactly one of the seven outcomes (checked). A bad
    config raises :class:`InvalidArgument` naming the field. The GIL is released.
    """

def run_replications(config_json: str, seeds: list[int], threads: int | None = None) -> str:
    """Run one replication per seed on ``threads`` threads (None or 0 = all cores), GIL released.

    Returns the merged JSON result (the core's merge: counts summed; peaks, maxima
    and final usage maximised) plus ``replications``: each seed's ``fired``,
    ``outcomes``, ``resizes`` and ``resize_requests``, in seed order. The same
    seeds give the same bytes whatever the thread count.
    """

def validate_config(config_json: str) -> None:
    """Validate a JSON engine config, as every run does (the one validator);
    raises :class:`InvalidArgument` naming the first bad field."""

def normalize_config(config_json: str) -> str:
    """The JSON config with every default filled in (parsed, not validated)."""

def config_schema() -> str:
    """The config schema as JSON: ``enums`` (policies, modes, semantics, failure
    modes, ...), ``actions`` with their fields, ``limits`` and ``defaults``."""

def platform_behaviours(kernel: str, qemu: str, early_enable: bool | None = None) -> str:
    """Every modelled behaviour of a kernel/QEMU pair, as JSON: ``early_enable``,
    ``reservation_mode``, ``vfio_dynamic_msix``, ``qemu_honours_noresize``,
    ``qemu_prerequests_vector0``, ``first_resizing_entry`` and ``resizes``."""

def storm_defaults() -> str:
    """The canonical storm's parameters at their defaults, as JSON (times in ns)."""

def storm_config(params_json: str, policy: str) -> str:
    """The storm's JSON engine config under ``policy`` (no seed, no stop condition)."""

def storm_closed_form_lost(params_json: str, resizes: int) -> float:
    """Expected interrupts lost by a ``noresize`` storm (edge semantics) run to
    ``resizes`` requests: ``rate · Σ k·(w0 + w1·(k+1))`` over the closed windows."""

def garwood_interval(count: int, confidence: float = 0.95) -> tuple[float, float]:
    """Garwood's exact interval ``(lower, upper)`` for a Poisson mean observed
    as ``count`` (the core's, from statrs' chi-squared quantiles)."""

def rate_per_million(
    count: int, resizes: int, confidence: float = 0.95
) -> tuple[float | None, float | None, float | None]:
    """``count`` per million of ``resizes`` with its Garwood interval:
    ``(value, lower, upper)``, each ``None`` without resizes."""

def merge_run_results(results_json: list[str]) -> str:
    """Merge JSON run results (in order) with the core's one merge."""

class _TraceSummary(TypedDict):
    """``Simulation.trace_summary``: what the trace holds and what it left out."""

    events: int
    dropped: int
    first_dropped_ns: int | None
    outside_window: int

@final
class Simulation:
    """A simulation to step, inspect and drain from Python (same config as
    :func:`run_simulation`)."""

    def __new__(cls, config_json: str, policy: object | None = None) -> Self:
        """Build the host, devices and policy (built-in, or a Python policy object);
        nothing runs yet."""

    def step_until(self, t_ns: int) -> bool:
        """Advance simulated time to ``t_ns`` (or the stop condition); True once finished."""

    def run(self) -> str:
        """Run to the stop condition; return the JSON result (books checked)."""

    def result(self) -> str:
        """The JSON result so far (settles open stalls; checks the books)."""

    @property
    def now_ns(self) -> int:
        """Simulated time now, ns."""

    @property
    def policy(self) -> str:
        """The policy's name (built-in, or the Python policy's ``name``)."""

    @property
    def finished(self) -> bool:
        """Whether the stop condition was reached."""

    def books(self) -> dict[str, int]:
        """``fired`` and each outcome's count so far."""

    def trace(
        self, from_ns: int | None = None, to_ns: int | None = None, max_events: int | None = None
    ) -> None:
        """Record the run's timeline (docs/trace.md): what happens from ``from_ns`` (None: 0)
        to ``to_ns`` (None: the end of the run), at most ``max_events`` events
        (None: the core's default, 500,000). Before the first step only; not in
        aggregated mode (``InvalidArgument``)."""

    def trace_json(self) -> str:
        """The trace so far as Trace Event Format JSON (windows still open are
        drawn to now); ``InvalidArgument`` if the run is not traced."""

    def trace_summary(self) -> _TraceSummary:
        """What :meth:`trace_json` writes now: ``events``, ``dropped`` by the
        cap, ``first_dropped_ns`` (None if nothing was) and ``outside_window``."""

    def drain(self, cpu: int) -> dict[str, npt.NDArray[np.generic]]:
        """Take the deliveries waiting on host CPU ``cpu``, oldest first, as numpy
        arrays ``time_ns`` (uint64), ``device``, ``entry``, ``cpu`` (uint32) and
        ``vector`` (uint8)."""

    def cancel(self) -> None:
        """Stop the step running now, from any thread: it raises :class:`InvalidOperation`
        (``cancelled``) at a point where the run's state is whole, and the simulation can
        go on to the result it would have had. With no step running, the next one stops at
        once. (Ctrl-C stops a step the same way, with ``KeyboardInterrupt``.)"""

    def act(self, dev: int, action: ActionConfig) -> int:
        """Run guest action ``action`` on device ``dev`` now (at :attr:`now_ns`), through the
        same policy and host path as a program step; return when the step completes, ns (its
        trapped accesses hold the guest until then).

        ``action`` is a program step's action: ``{"op": "unmask", "entry": 3}``. The device
        needs an empty or ended program, the run a ``stop.max_time_ns``. ``InvalidArgument``
        (nothing changes) for an unknown device, an entry past its table, a bad ``negotiate``
        range, a killed VM, a running program, a step still in progress, or a finished run.
        """
