//! msixcore-core: models of PCI MSI-X tables, the Linux x86 vector matrix,
//! IOMMU interrupt remapping and interrupt delivery, plus a deterministic
//! discrete-event engine. No Python dependency: embed it in any Rust simulator.

pub mod amd_irte;
pub mod error;
pub mod irte;
pub mod msi;
pub mod remap;

pub use amd_irte::{AmdIrte, AmdIrteFields, AmdIrteTables};
pub use error::{Error, Result};
pub use irte::{Irte, IrteFields, IrteTable};
pub use msi::MsiMessage;
pub use remap::{
    compose_amd_msi, compose_msi, decode_msi, AmdRemapper, CompatMsi, DecodeError, Decoded, Fault,
    FaultLog, FaultReason, InterruptRemapper, RemapResult, RemappableMsi, Target,
};
