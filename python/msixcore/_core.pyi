"""Type stubs for the Rust extension ``msixcore._core``."""

from typing import Literal, Self, TypeAlias, final

__version__: str
__all__ = [
    "AccountingError",
    "InvalidArgument",
    "InvalidOperation",
    "MmioError",
    "MsixError",
    "NoSpace",
    "VectorTable",
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
    def disabled_mode(self, mode: _DisabledMode) -> None: ...
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
