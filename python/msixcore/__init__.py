"""msixcore: simulate how MSI-X and IMS interrupts are allocated, remapped and
delivered on a virtualized x86 host.

The models run in Rust (``msixcore._core``); this package re-exports them with
types and adds scenarios, policies, the CLI and reports on top.
"""

from msixcore._core import (
    AccountingError,
    InvalidArgument,
    InvalidOperation,
    IrqMatrix,
    MmioError,
    MsixError,
    NoSpace,
    VectorDomain,
    __version__,
)

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
