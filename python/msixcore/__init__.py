"""msixcore: simulate how MSI-X and IMS interrupts are allocated, remapped and
delivered on a virtualized x86 host.

The models run in Rust (``msixcore._core``); this package re-exports them with
types and adds scenarios, policies, the CLI and reports on top.
"""

from msixcore._core import (
    AccountingError,
    AmdIrte,
    AmdIrteTables,
    AmdRemapper,
    InterruptRemapper,
    InvalidArgument,
    InvalidOperation,
    IrqMatrix,
    Irte,
    IrteTable,
    MmioError,
    MsixError,
    NoSpace,
    RemapResult,
    VectorDomain,
    VectorTable,
    __version__,
    compose_amd_msi,
    compose_msi,
    decode_msi,
)

__all__ = [
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
    "VectorDomain",
    "VectorTable",
    "__version__",
    "compose_amd_msi",
    "compose_msi",
    "decode_msi",
]
