//! What a configuration would allocate, known before anything is built.
//!
//! The engine's memory grows with a few settings: per-CPU delivery queues
//! (`host.ncpus × handler.queue_capacity`), the per-entry state of every
//! device, the IOMMUs' remapping tables, and the AMD per-device tables made on
//! a device's first enable. [`SimConfig::memory_estimate`] bounds each from
//! above; [`SimConfig::validate`] refuses a config past [`MAX_RUN_BYTES`], and
//! [`reserve_check`] asks the allocator for the whole estimate before a build,
//! so a process under a memory limit gets an error rather than an abort
//! half-way through.

use std::mem::size_of;

use super::SimConfig;
use crate::amd_irte::AmdIrte;
use crate::error::{Error, Result};
use crate::irte::Irte;
use crate::matrix::CpuMap;
use crate::queue::Delivery;

/// Most memory one run may need by its estimate: 4 GiB.
pub const MAX_RUN_BYTES: u64 = 4 << 30;

/// Upper bound of the state one MSI-X entry carries across the layers: table
/// entry and PBA bit, source class, phase, stall and loop state, the host
/// vector, irq descriptor and route cache line. Measured at about 50 bytes
/// (benches/memory.py: 20.48 M enabled entries in 1 GiB), bounded at twice
/// that.
const PER_ENTRY_BYTES: u64 = 96;
/// Upper bound of one device's fixed state (its vectors' headers, host side).
const PER_DEVICE_BYTES: u64 = 1024;
/// Upper bound of one CPU's fixed state beyond its queue: matrix map, best-CPU
/// tree nodes, handler, and the domain's online list.
const PER_CPU_BYTES: u64 = size_of::<CpuMap>() as u64 + 256;

/// The bytes a config's largest allocations take, each bounded from above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// `host.ncpus × handler.queue_capacity` deliveries.
    pub queues: u64,
    /// Per-device and per-entry state over all devices.
    pub devices: u64,
    /// Intel IRTE tables (`host.iommus × host.irte_entries`), or the AMD
    /// per-device tables (`devices × host.amd_table_size`).
    pub remap_tables: u64,
    /// The vector matrix and the CPUs' fixed state.
    pub cpus: u64,
}

impl MemoryEstimate {
    /// All of it.
    pub fn total(&self) -> u64 {
        self.queues
            .saturating_add(self.devices)
            .saturating_add(self.remap_tables)
            .saturating_add(self.cpus)
    }

    /// The largest part, named by the settings that size it.
    fn largest(&self) -> (&'static str, u64) {
        [
            ("host.ncpus × handler.queue_capacity", self.queues),
            ("devices[*].entries", self.devices),
            (
                "host.iommus × host.irte_entries or host.amd_table_size",
                self.remap_tables,
            ),
            ("host.ncpus", self.cpus),
        ]
        .into_iter()
        .max_by_key(|&(_, b)| b)
        .unwrap_or(("", 0))
    }

    /// `InvalidArgument` naming the largest part, for a total that cannot be had.
    fn refuse(&self, why: &str) -> Error {
        let (what, bytes) = self.largest();
        Error::InvalidArgument(format!(
            "config: needs about {} MiB, {why} (largest: {what}, {} MiB)",
            mib(self.total()),
            mib(bytes)
        ))
    }
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

impl SimConfig {
    /// An upper bound of what building and running this config allocates
    /// (without a trace, which has its own cap).
    pub fn memory_estimate(&self) -> MemoryEstimate {
        let h = &self.host;
        let ncpus = u64::from(h.ncpus);
        let queues = ncpus
            .saturating_mul(self.handler.queue_capacity as u64)
            .saturating_mul(size_of::<Delivery>() as u64);
        let entries: u64 = self.devices.iter().map(|d| u64::from(d.entries)).sum();
        let ndev = self.devices.len() as u64;
        let devices = entries
            .saturating_mul(PER_ENTRY_BYTES)
            .saturating_add(ndev.saturating_mul(PER_DEVICE_BYTES));
        let remap_tables = match h.iommu {
            super::IommuKind::Intel => u64::from(h.iommus)
                .saturating_mul(u64::from(h.irte_entries))
                .saturating_mul(size_of::<Irte>() as u64 + 2),
            super::IommuKind::Amd => ndev
                .saturating_mul(u64::from(h.amd_table_size))
                .saturating_mul(size_of::<AmdIrte>() as u64 + 1),
        };
        MemoryEstimate {
            queues,
            devices,
            remap_tables,
            cpus: ncpus.saturating_mul(PER_CPU_BYTES),
        }
    }

    /// `InvalidArgument` if the estimate passes [`MAX_RUN_BYTES`].
    pub(super) fn validate_memory(&self) -> Result<()> {
        let est = self.memory_estimate();
        if est.total() > MAX_RUN_BYTES {
            return Err(est.refuse(&format!("more than the {} MiB limit", mib(MAX_RUN_BYTES))));
        }
        Ok(())
    }
}

/// Ask the allocator for `est.total()` bytes and give them back at once: a
/// process whose address space is limited (`ulimit -v`, `RLIMIT_AS`) learns
/// here, as an `InvalidArgument`, that the run cannot be built, instead of
/// aborting on a failed allocation later. The pages are never touched.
pub fn reserve_check(est: &MemoryEstimate) -> Result<()> {
    let total = usize::try_from(est.total()).unwrap_or(usize::MAX);
    let mut probe: Vec<u8> = Vec::new();
    probe
        .try_reserve_exact(total)
        .map_err(|_| est.refuse("more than this process can allocate"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeviceConfig, IommuKind};

    fn base() -> SimConfig {
        SimConfig::builder()
            .device(DeviceConfig::new(64))
            .max_time_ns(1_000_000)
            .build()
            .unwrap()
    }

    #[test]
    fn the_default_config_is_small() {
        let cfg = base();
        let est = cfg.memory_estimate();
        assert!(est.total() < 64 << 20, "{est:?}");
        cfg.validate().unwrap();
        reserve_check(&est).unwrap();
    }

    #[test]
    fn queues_grow_with_cpus_times_capacity_and_are_refused_past_the_limit() {
        let mut cfg = base();
        cfg.host.ncpus = 8192;
        cfg.handler.queue_capacity = 1 << 24;
        let est = cfg.memory_estimate();
        assert_eq!(est.queues, 8192 * (1 << 24) * size_of::<Delivery>() as u64);
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("config: needs about"), "{e}");
        assert!(
            e.contains("largest: host.ncpus × handler.queue_capacity"),
            "{e}"
        );
        // Each setting alone is within its own range.
        cfg.handler.queue_capacity = 4096;
        cfg.validate().unwrap();
    }

    #[test]
    fn amd_tables_count_per_device() {
        let mut cfg = base();
        cfg.host.iommu = IommuKind::Amd;
        cfg.host.amd_table_size = 2048;
        let one = cfg.memory_estimate().remap_tables;
        let d = cfg.devices[0].clone();
        cfg.devices = vec![d; 4];
        assert_eq!(cfg.memory_estimate().remap_tables, 4 * one);
    }

    #[test]
    fn the_reserve_check_refuses_what_cannot_be_mapped() {
        let est = MemoryEstimate {
            queues: u64::MAX / 2,
            devices: 0,
            remap_tables: 0,
            cpus: 0,
        };
        let e = reserve_check(&est).unwrap_err().to_string();
        assert!(e.contains("more than this process can allocate"), "{e}");
    }
}
