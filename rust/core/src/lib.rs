//! msixcore-core: models of PCI MSI-X tables, the Linux x86 vector matrix,
//! IOMMU interrupt remapping and interrupt delivery, plus a deterministic
//! discrete-event engine. No Python dependency: embed it in any Rust simulator.

pub mod books;
pub mod config;
pub mod error;
pub mod msi;
pub mod queue;
pub mod vector_table;
pub mod vfio;

pub use error::{Error, Result};
pub use msi::MsiMessage;
pub use vector_table::{
    DisabledMode, FireOutcome, Fired, MsixControl, Released, TableEntry, VectorTable,
};
