//! msixcore-core: models of PCI MSI-X tables, the Linux x86 vector matrix,
//! IOMMU interrupt remapping and interrupt delivery, plus a deterministic
//! discrete-event engine. No Python dependency: embed it in any Rust simulator.

#![warn(missing_docs)]

mod affinity;
pub mod amd_irte;
pub mod books;
pub mod config;
pub mod engine;
pub mod error;
pub mod host;
pub mod irte;
pub mod matrix;
pub mod msi;
pub mod poisson_interval;
pub mod policy;
pub mod queue;
pub mod remap;
pub mod storm;
pub mod vector_domain;
pub mod vector_table;
pub mod versions;
pub mod vfio;

pub use amd_irte::{AmdIrte, AmdIrteFields, AmdIrteTables};
pub use error::{Error, Result};
pub use irte::{Irte, IrteFields, IrteTable};
pub use matrix::{CpuMap, IrqMatrix, VectorBitmap, X86Preset};
pub use msi::MsiMessage;
pub use remap::{
    compose_amd_msi, compose_msi, decode_msi, AmdRemapper, CompatMsi, DecodeError, Decoded, Fault,
    FaultLog, FaultReason, InterruptRemapper, RemapResult, RemappableMsi, Target,
};
pub use vector_domain::{IrqInfo, IrqState, VectorDomain};
pub use vector_table::{
    DisabledMode, FireOutcome, Fired, MsixControl, Released, TableEntry, VectorTable,
};
