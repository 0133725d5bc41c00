"""Type stubs for the Rust extension ``msixcore._core``."""

__version__: str
__all__ = [
    "AccountingError",
    "InvalidArgument",
    "InvalidOperation",
    "MmioError",
    "MsixError",
    "NoSpace",
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
