//! The host kernel side of VFIO MSI-X (drivers/vfio/pci/vfio_pci_intrs.c on
//! top of the PCI/MSI core, the x86 vector domain and the IOMMU): it owns the
//! host resources — CPU vectors (through [`VectorDomain`]), IRTEs, irq
//! descriptors — and turns each VFIO operation into timed effects on the
//! physical device's MSI-X table.
//!
//! Resource rules (DESIGN.md §2.3, drivers/iommu/intel/irq_remapping.c):
//! every allocated MSI-X vector holds one IRTE (MSI-X allocates one IRTE per
//! vector; only multi-MSI allocates blocks) and one irq descriptor from
//! allocation on; a CPU vector is held from activation (request_irq) on with
//! reservation mode, from allocation on without it.

use crate::amd_irte::AmdIrte;
use crate::config::{HostConfig, IommuKind, TimingConfig};
use crate::error::{Error, Result};
use crate::irte::Irte;
use crate::matrix::X86Preset;
use crate::msi::MsiMessage;
use crate::remap::{
    compose_amd_msi, compose_msi, decode_msi, AmdRemapper, Decoded, InterruptRemapper, RemapResult,
};
use crate::vector_domain::VectorDomain;

/// A timed effect on a device's physical MSI-X table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fx {
    /// Host `free_irq`: entry masked (W1 starts for that vector).
    Mask(u32),
    /// Program entry `k` with a message (host compose + write).
    Program(u32, MsiMessage),
    /// Host `request_irq`: entry unmasked (W1 ends).
    Unmask(u32),
    /// MSI-X shutdown: every entry masked, Enable cleared (W2 starts).
    Disable,
    /// MSI-X capability init: Enable set with entries masked (W2 ends);
    /// `closes_resize` when it ends a disable/re-enable resize.
    Enable {
        /// This enable closes a resize window.
        closes_resize: bool,
    },
    /// The guest driver starts (true) or stops (false) using entry `k`.
    Live(u32, bool),
    /// The host's setup of entry `k` failed (true) or succeeded again (false).
    Dead(u32, bool),
    /// A guest unmask of a new highest entry completed (a resize request).
    RequestDone,
    /// Function Level Reset of the physical device: table and PBA to reset
    /// state; every latched event is lost.
    Reset,
}

/// A host vector: one allocated irq of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostVector {
    irq: u32,
    irte: u16,
    /// Activated (request_irq done): holds a CPU vector.
    active: bool,
}

#[derive(Debug, Clone)]
struct HostDevice {
    requester_id: u16,
    iommu: usize,
    /// vfio irq_type == MSIX: the index is enabled on the host.
    enabled: bool,
    vectors: Vec<Option<HostVector>>,
}

/// Resources in use, now and at their peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// CPU vectors held by device interrupts (matrix allocations).
    pub cpu_vectors: u64,
    /// IRTEs allocated.
    pub irtes: u64,
    /// irq descriptors allocated.
    pub irq_descs: u64,
}

/// The remapping units of the host.
#[derive(Debug, Clone)]
enum Iommus {
    Intel(Vec<InterruptRemapper>),
    Amd(Vec<AmdRemapper>),
}

/// The host: vector domain, IOMMUs, and each device's host-side MSI-X state.
#[derive(Debug, Clone)]
pub struct Host {
    domain: VectorDomain,
    iommus: Iommus,
    devices: Vec<HostDevice>,
    usage: Usage,
    peak: Usage,
    /// Host allocations that failed (CPU vectors or IRTEs).
    pub alloc_failures: u64,
}

/// Requester id of device `i`: bus 1.., one function per device.
pub fn requester_id_of(i: u32) -> u16 {
    // bus = 1 + i / 256, devfn = i % 256: unique for up to 65,280 devices.
    let bus = 1 + i / 256;
    ((bus << 8) | (i % 256)) as u16
}

impl Host {
    /// A host for `ndevices` devices.
    pub fn new(cfg: &HostConfig, ndevices: usize) -> Result<Self> {
        if ndevices > 65_280 {
            return Err(Error::InvalidArgument(format!(
                "devices: at most 65,280 requester ids, got {ndevices}"
            )));
        }
        let preset = if cfg.posted_msi {
            X86Preset::posted_msi()
        } else {
            X86Preset::mainline()
        };
        let domain = VectorDomain::new(cfg.ncpus, &preset, cfg.reservation_mode, None)?;
        let iommus = match cfg.iommu {
            IommuKind::Intel => Iommus::Intel(
                (0..cfg.iommus)
                    .map(|_| InterruptRemapper::new(cfg.irte_entries, false))
                    .collect::<Result<_>>()?,
            ),
            IommuKind::Amd => Iommus::Amd(
                (0..cfg.iommus)
                    .map(|_| AmdRemapper::new(cfg.amd_table_size))
                    .collect::<Result<_>>()?,
            ),
        };
        let devices = (0..ndevices)
            .map(|i| HostDevice {
                requester_id: requester_id_of(i as u32),
                iommu: i % cfg.iommus as usize,
                enabled: false,
                vectors: Vec::new(),
            })
            .collect();
        Ok(Self {
            domain,
            iommus,
            devices,
            usage: Usage::default(),
            peak: Usage::default(),
            alloc_failures: 0,
        })
    }

    /// Resources in use now.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Peak resources in use.
    pub fn peak(&self) -> Usage {
        self.peak
    }

    /// The vector domain (read-only).
    pub fn domain(&self) -> &VectorDomain {
        &self.domain
    }

    /// Whether device `dev`'s MSI-X index is enabled on the host.
    pub fn index_enabled(&self, dev: u32) -> bool {
        self.devices.get(dev as usize).is_some_and(|d| d.enabled)
    }

    /// Remapping faults recorded or suppressed, over all IOMMUs.
    pub fn faults(&self) -> u64 {
        match &self.iommus {
            Iommus::Intel(v) => v
                .iter()
                .map(|r| r.fault_log().total() + r.fault_log().suppressed())
                .sum(),
            Iommus::Amd(v) => v
                .iter()
                .map(|r| r.fault_log().total() + r.fault_log().suppressed())
                .sum(),
        }
    }

    fn dev_mut(&mut self, dev: u32) -> Result<&mut HostDevice> {
        self.devices
            .get_mut(dev as usize)
            .ok_or_else(|| Error::InvalidArgument(format!("no device {dev}")))
    }

    /// Whether irq `irq` holds a CPU vector now.
    fn holds_vector(&self, irq: u32) -> bool {
        self.domain.irq(irq).is_ok_and(|i| i.target().is_some())
    }

    /// Account a change of `irq`'s CPU vector from `before` to now.
    fn account_vector(&mut self, irq: u32, before: bool) {
        match (before, self.holds_vector(irq)) {
            (false, true) => self.usage.cpu_vectors += 1,
            (true, false) => self.usage.cpu_vectors -= 1,
            _ => {}
        }
    }

    fn track(&mut self) {
        self.peak.cpu_vectors = self.peak.cpu_vectors.max(self.usage.cpu_vectors);
        self.peak.irtes = self.peak.irtes.max(self.usage.irtes);
        self.peak.irq_descs = self.peak.irq_descs.max(self.usage.irq_descs);
    }

    /// Allocate the host irq of entry `k` (descriptor, IRTE, and a CPU vector
    /// or a reservation) without activating it.
    fn alloc_vector(&mut self, dev: u32, k: u32) -> Result<()> {
        let (rid, iommu) = {
            let d = self.dev_mut(dev)?;
            if d.vectors.len() <= k as usize {
                d.vectors.resize(k as usize + 1, None);
            }
            if d.vectors[k as usize].is_some() {
                return Ok(());
            }
            (d.requester_id, d.iommu)
        };
        // The IR domain allocates its parent (the x86 vector domain) first,
        // then the IRTE (intel_irq_remapping_alloc), and unwinds both on failure.
        let irq = match self.domain.alloc_irq(None, false, None) {
            Ok(irq) => {
                // Without reservation mode the vector is taken at allocation.
                self.account_vector(irq, false);
                irq
            }
            Err(e) => {
                self.alloc_failures += 1;
                return Err(e);
            }
        };
        let irte = match &mut self.iommus {
            Iommus::Intel(v) => v[iommu].table_mut().alloc(1),
            Iommus::Amd(v) => v[iommu].tables_mut().alloc(rid, 1),
        };
        let irte = match irte {
            Ok(i) => i,
            Err(e) => {
                self.alloc_failures += 1;
                let before = self.holds_vector(irq);
                self.domain.free(irq)?;
                if before {
                    self.usage.cpu_vectors -= 1;
                }
                return Err(e);
            }
        };
        self.usage.irtes += 1;
        self.usage.irq_descs += 1;
        self.dev_mut(dev)?.vectors[k as usize] = Some(HostVector {
            irq,
            irte,
            active: false,
        });
        self.track();
        Ok(())
    }

    fn free_irte(&mut self, iommu: usize, rid: u16, irte: u16) {
        // Freeing what this host allocated cannot fail; ignore defensively.
        let _ = match &mut self.iommus {
            Iommus::Intel(v) => v[iommu].table_mut().free(u32::from(irte), 1),
            Iommus::Amd(v) => v[iommu].tables_mut().free(rid, u32::from(irte), 1),
        };
    }

    /// Free entry `k`'s host irq (deactivating it first).
    fn free_vector(&mut self, dev: u32, k: u32) -> Result<()> {
        self.deactivate(dev, k)?;
        let d = self.dev_mut(dev)?;
        let (rid, iommu) = (d.requester_id, d.iommu);
        let Some(hv) = d.vectors.get_mut(k as usize).and_then(Option::take) else {
            return Ok(());
        };
        let before = self.holds_vector(hv.irq);
        self.domain.free(hv.irq)?;
        if before {
            self.usage.cpu_vectors -= 1;
        }
        self.free_irte(iommu, rid, hv.irte);
        self.usage.irtes -= 1;
        self.usage.irq_descs -= 1;
        self.track();
        Ok(())
    }

    /// `request_irq` on entry `k`: activate (take a CPU vector), program the
    /// IRTE and return the message to write into the table entry.
    fn activate(&mut self, dev: u32, k: u32) -> Result<MsiMessage> {
        let d = self.dev_mut(dev)?;
        let (rid, iommu) = (d.requester_id, d.iommu);
        let hv = d
            .vectors
            .get(k as usize)
            .copied()
            .flatten()
            .ok_or_else(|| {
                Error::invalid_op("vector_not_allocated", format!("device {dev} entry {k}"))
            })?;
        let before = self.holds_vector(hv.irq);
        if let Err(e) = self.domain.activate(hv.irq) {
            if matches!(e, Error::NoSpace(_)) {
                self.alloc_failures += 1;
            }
            return Err(e);
        }
        let target = self.domain.irq(hv.irq)?.target();
        match (before, target.is_some()) {
            (false, true) => self.usage.cpu_vectors += 1,
            (true, false) => self.usage.cpu_vectors -= 1,
            _ => {}
        }
        let Some((cpu, vector)) = target else {
            return Err(Error::NoSpace(format!(
                "device {dev} entry {k}: no online CPU for the interrupt"
            )));
        };
        let msg = match &mut self.iommus {
            Iommus::Intel(v) => {
                let irte = Irte::remapped(vector as u8, cpu).with_requester_id(rid);
                v[iommu].table_mut().set(u32::from(hv.irte), irte)?;
                compose_msi(hv.irte, Some(0))
            }
            Iommus::Amd(v) => {
                v[iommu].tables_mut().set(
                    rid,
                    u32::from(hv.irte),
                    AmdIrte::remapped(vector as u8, cpu),
                )?;
                compose_amd_msi(hv.irte)
            }
        };
        if let Some(Some(h)) = self.dev_mut(dev)?.vectors.get_mut(k as usize) {
            h.active = true;
        }
        self.track();
        Ok(msg)
    }

    /// `free_irq` on entry `k`: deactivate (release its CPU vector) and mark
    /// its IRTE not present.
    fn deactivate(&mut self, dev: u32, k: u32) -> Result<()> {
        let d = self.dev_mut(dev)?;
        let (rid, iommu) = (d.requester_id, d.iommu);
        let Some(Some(hv)) = d.vectors.get_mut(k as usize) else {
            return Ok(());
        };
        if !hv.active {
            return Ok(());
        }
        hv.active = false;
        let (irq, irte) = (hv.irq, hv.irte);
        let before = self.holds_vector(irq);
        self.domain.deactivate(irq)?;
        self.account_vector(irq, before);
        match &mut self.iommus {
            Iommus::Intel(v) => v[iommu].table_mut().clear(u32::from(irte))?,
            Iommus::Amd(v) => v[iommu].tables_mut().clear(rid, u32::from(irte))?,
        }
        self.track();
        Ok(())
    }

    /// `vfio_msi_disable`: free_irq of every active vector (entry masked),
    /// then `pci_free_irq_vectors` (MSI-X shutdown, every irq freed).
    pub fn disable_index(
        &mut self,
        dev: u32,
        clock: &mut u64,
        t: &TimingConfig,
        fx: &mut Vec<(u64, Fx)>,
    ) -> Result<()> {
        // Walk by index (no list of active vectors is built: this runs on
        // every resize).
        let n = self
            .devices
            .get(dev as usize)
            .map_or(0, |d| d.vectors.len());
        for k in 0..n as u32 {
            let active = self.devices[dev as usize].vectors[k as usize].is_some_and(|h| h.active);
            if !active {
                continue;
            }
            self.deactivate(dev, k)?;
            fx.push((*clock, Fx::Mask(k)));
            *clock += t.w_active_ns;
        }
        fx.push((*clock, Fx::Disable));
        self.rollback(dev)
    }

    /// `vfio_msi_enable(count)` then `vfio_msi_set_block`: allocate `count`
    /// vectors, set Enable, request_irq each vector with an eventfd. On any
    /// failure everything is undone (`vfio_msi_disable`) and the error
    /// returned; the index is left disabled.
    pub fn enable_vectors(
        &mut self,
        dev: u32,
        with_fd: &[bool],
        closes_resize: bool,
        clock: &mut u64,
        t: &TimingConfig,
        fx: &mut Vec<(u64, Fx)>,
    ) -> Result<()> {
        let count = with_fd.len() as u32;
        *clock += t.w0_ns + t.w1_ns * u64::from(count);
        for k in 0..count {
            if let Err(e) = self.alloc_vector(dev, k) {
                self.rollback(dev)?;
                return Err(e);
            }
        }
        self.dev_mut(dev)?.enabled = true;
        fx.push((*clock, Fx::Enable { closes_resize }));
        for (k, _) in with_fd.iter().enumerate().filter(|(_, f)| **f) {
            *clock += t.t_request_ns;
            match self.activate(dev, k as u32) {
                Ok(msg) => {
                    fx.push((*clock, Fx::Program(k as u32, msg)));
                    fx.push((*clock, Fx::Unmask(k as u32)));
                }
                Err(e) => {
                    let mut c = *clock;
                    self.disable_index(dev, &mut c, t, fx)?;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// `pci_free_irq_vectors`: free every host vector of `dev` (deactivating
    /// any still active); the index is left disabled.
    fn rollback(&mut self, dev: u32) -> Result<()> {
        let n = self
            .devices
            .get(dev as usize)
            .map_or(0, |d| d.vectors.len() as u32);
        for k in 0..n {
            self.free_vector(dev, k)?;
        }
        let d = self.dev_mut(dev)?;
        d.vectors.clear();
        d.enabled = false;
        Ok(())
    }

    /// `vfio_pci_set_msi_trigger` for one vector: with the index enabled,
    /// allocate entry `k` if needed (dynamic MSI-X: `pci_msix_alloc_irq_at`)
    /// and request it; with the index disabled, the kernel enables it with
    /// `k + 1` vectors and wires up `k` only (the partial recovery after a
    /// failed resize).
    pub fn set_signalling(
        &mut self,
        dev: u32,
        k: u32,
        dynamic: bool,
        clock: &mut u64,
        t: &TimingConfig,
        fx: &mut Vec<(u64, Fx)>,
    ) -> Result<()> {
        if !self.index_enabled(dev) {
            let mut with_fd = vec![false; k as usize + 1];
            with_fd[k as usize] = true;
            return self.enable_vectors(dev, &with_fd, false, clock, t, fx);
        }
        let allocated = self
            .devices
            .get(dev as usize)
            .and_then(|d| d.vectors.get(k as usize).copied().flatten());
        match allocated {
            Some(hv) if hv.active => return Ok(()), // trigger switch only
            Some(_) => {}
            None if dynamic => {
                *clock += t.t_dynamic_ns;
                self.alloc_vector(dev, k)?;
            }
            None => {
                return Err(Error::invalid_op(
                    "set_signalling_unallocated",
                    format!("device {dev} entry {k} is past the host's vectors on a NORESIZE host"),
                ))
            }
        }
        *clock += t.t_request_ns;
        match self.activate(dev, k) {
            Ok(msg) => {
                fx.push((*clock, Fx::Program(k, msg)));
                fx.push((*clock, Fx::Unmask(k)));
                Ok(())
            }
            Err(e) => {
                if dynamic {
                    let _ = self.free_vector(dev, k);
                }
                Err(e)
            }
        }
    }

    /// Whether a message from `dev` would be remapped (true) or blocked,
    /// without recording anything: the same checks as [`Host::remap`], used
    /// by aggregated sampling to classify a vector once per interval.
    pub fn probe(&self, dev: u32, msg: &MsiMessage) -> bool {
        let Some(d) = self.devices.get(dev as usize) else {
            return false;
        };
        match &self.iommus {
            Iommus::Intel(v) => {
                let r = &v[d.iommu];
                match decode_msi(msg) {
                    Ok(Decoded::Remappable(m)) => r.table().lookup(m.index()).is_some_and(|irte| {
                        irte.present() && irte.source_check(d.requester_id).is_ok()
                    }),
                    Ok(Decoded::Compat(_)) => r.allow_compat(),
                    Err(_) => false,
                }
            }
            Iommus::Amd(v) => {
                let index = msg.data & crate::amd_irte::AMD_MSI_DATA_INDEX_MASK;
                crate::remap::in_interrupt_window(msg.address)
                    && v[d.iommu]
                        .tables()
                        .lookup(d.requester_id, index)
                        .is_ok_and(AmdIrte::remap_en)
            }
        }
    }

    /// Route one message from device `dev` through its IOMMU: the target
    /// `(cpu, vector)`, or `None` when the IOMMU blocks it (the fault is in
    /// the IOMMU's log). Hot path.
    #[inline]
    pub fn remap(&mut self, dev: u32, msg: &MsiMessage) -> Option<(u32, u8)> {
        let d = self.devices.get(dev as usize)?;
        match &mut self.iommus {
            Iommus::Intel(v) => match v[d.iommu].remap(d.requester_id, msg) {
                RemapResult::Remapped(t) => Some((t.dest_id, t.vector)),
                RemapResult::Blocked { .. } => None,
            },
            Iommus::Amd(v) => match v[d.iommu].remap(d.requester_id, msg) {
                RemapResult::Remapped(t) => Some((t.dest_id, t.vector)),
                RemapResult::Blocked { .. } => None,
            },
        }
    }
}
