//! msixcore-core: models of PCI MSI-X tables, the Linux x86 vector matrix,
//! IOMMU interrupt remapping and interrupt delivery, plus a deterministic
//! discrete-event engine. No Python dependency: embed it in any Rust simulator.

pub mod error;
pub mod matrix;
pub mod msi;
pub mod vector_domain;

pub use error::{Error, Result};
pub use matrix::{CpuMap, IrqMatrix, VectorBitmap, X86Preset};
pub use msi::MsiMessage;
pub use vector_domain::{IrqInfo, IrqState, VectorDomain};
