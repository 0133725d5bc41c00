//! The host kernel side of VFIO MSI-X (drivers/vfio/pci/vfio_pci_intrs.c on
//! top of the PCI/MSI core, the x86 vector domain and the IOMMU): it owns the
//! host resources — CPU vectors (through [`VectorDomain`]), IRTEs, irq
//! descriptors — and turns each VFIO operation into timed effects on the
//! physical device's MSI-X table.
//!
//! Resource rules (drivers/iommu/intel/irq_remapping.c, see docs/models.md):
//! every allocated MSI-X vector holds one IRTE (MSI-X allocates one IRTE per
//! vector; only multi-MSI allocates blocks) and one irq descriptor from
//! allocation on; a CPU vector is held from activation (request_irq) on with
//! reservation mode, from allocation on without it. The counts are read from
//! the models themselves, never kept beside them.
//!
//! The rooms: this file holds the host and its queries; `vfio_irqs` the VFIO
//! operations; `device_share` the per-vector steps they are made of, on one
//! device's share of the host; `remapper` the IOMMUs behind one interface;
//! `route_cache` the per-entry routes; `op` and `effect` what goes in and out.

// The steps of a resize are `#[inline(always)]` into their loops: callgrind counts 5 % fewer
// instructions per resize than with `#[inline]` (benches/README.md, issue 14).
#![allow(clippy::inline_always)]

mod device_share;
mod effect;
mod op;
mod remapper;
mod route_cache;
mod vfio_irqs;

use device_share::DeviceShare;
pub(crate) use effect::{Effects, FxSink, HostFx};
pub use op::HostOp;
pub(crate) use op::{HostError, HostFailure, HostResult};
use remapper::{Iommu, Remapper};
use route_cache::RouteCache;

use crate::config::{HostConfig, IommuKind, MAX_DEVICES};
use crate::error::{Error, Result};
use crate::matrix::X86Preset;
use crate::msi::MsiMessage;
use crate::remap::{AmdRemapper, InterruptRemapper, RemapResult};
use crate::vector_domain::VectorDomain;
use crate::versions::Platform;

/// A host vector: one allocated irq of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostVector {
    irq: u32,
    irte: u16,
    /// Activated (request_irq done).
    active: bool,
}

#[derive(Debug, Clone)]
struct HostDevice {
    requester_id: u16,
    iommu: usize,
    /// The VM it is passed through to (its KVM routes are that VM's).
    vm: u32,
    /// `vm`'s index in [`Host::routes`].
    vm_slot: usize,
    /// vfio irq_type == MSIX: the index is enabled on the host.
    enabled: bool,
    vectors: Vec<Option<HostVector>>,
    /// How many of `vectors` are `Some`: what a disable frees (`w_free` each), kept with
    /// them so the disable does not count them again (measured with callgrind: the count
    /// was 0.7 % of a resize).
    allocated: u32,
    /// Routes of its table entries through the IOMMU, valid until one of its
    /// IRTEs changes.
    routes: RouteCache,
}

/// The IOMMUs' fault logs, summed: what they hold and what they lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultLogStats {
    /// Records the logs can hold (VT-d fault recording registers, AMD event log entries).
    pub capacity: u64,
    /// Records held at the end (nobody drains them in the model).
    pub kept: u64,
    /// Faults recorded, held or overflowed (not suppressed).
    pub recorded: u64,
    /// Faults counted but not held: the log was full.
    pub overflowed: u64,
    /// Blocked requests whose entry suppresses reporting (FPD, SupIOPF).
    pub suppressed: u64,
}

/// Resources in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// CPU vectors held by device interrupts (matrix allocations).
    pub cpu_vectors: u64,
    /// IRTEs allocated.
    pub irtes: u64,
    /// irq descriptors allocated.
    pub irq_descs: u64,
    /// KVM MSI routes of the VM that uses the most (one per requested vector).
    pub kvm_routes: u64,
}

impl Usage {
    fn max(self, o: Usage) -> Usage {
        Usage {
            cpu_vectors: self.cpu_vectors.max(o.cpu_vectors),
            irtes: self.irtes.max(o.irtes),
            irq_descs: self.irq_descs.max(o.irq_descs),
            kvm_routes: self.kvm_routes.max(o.kvm_routes),
        }
    }
}

/// The host: vector domain, IOMMUs, and each device's host-side MSI-X state.
#[derive(Debug)]
pub struct Host {
    domain: VectorDomain,
    iommus: Vec<Iommu>,
    devices: Vec<HostDevice>,
    /// Matrix allocations made at boot (legacy IRQs): not device vectors.
    boot_allocated: u64,
    peak: Usage,
    alloc_failures: u64,
    /// `msix_capability_init` sets Enable and Function Mask before it allocates.
    early_enable: bool,
    /// KVM MSI routes in use, by VM (in order of first appearance in the
    /// device list; a vector, not a map: this is read on every request).
    routes: Vec<u32>,
    /// KVM's routing table size per VM (`KVM_MAX_IRQ_ROUTES`).
    routes_per_vm: u32,
    /// A disable sends each freed vector's Mask even when it falls at the
    /// Disable's own time, where the Disable does what it would (tests only:
    /// see `Engine::mask_each_freed`).
    pub(crate) mask_each_freed: bool,
}

/// One device's IOMMU and requester id, looked up once for a run of
/// messages: aggregated sampling classifies every live vector of a device at
/// each booking with it. It asks the IOMMU, not the route cache: a booking
/// follows the device's own control event, which has usually just made the
/// cache stale.
pub(crate) struct Prober<'h> {
    iommu: &'h Iommu,
    rid: u16,
}

impl Prober<'_> {
    /// Whether `msg` would be remapped (true) or blocked: the same checks as
    /// [`Host::remap`], recording no fault.
    #[inline]
    pub fn sends(&self, msg: &MsiMessage) -> bool {
        self.iommu.target(self.rid, msg).is_some()
    }
}

/// Requester id of device `i`: bus 1.., one function per device, so at most
/// [`MAX_DEVICES`] devices.
pub fn requester_id_of(i: u32) -> u16 {
    let bus = 1 + i / 256;
    ((bus << 8) | (i % 256)) as u16
}

impl Host {
    /// A booted host for devices passed through to the VMs `vms` (one entry
    /// per device, at most [`MAX_DEVICES`]), with the behaviours of
    /// `platform`'s kernel (reservation mode unless `cfg` says, early enable).
    pub fn new(cfg: &HostConfig, platform: Platform, vms: &[u32]) -> Result<Self> {
        let ndevices = vms.len();
        // Each VM's index in `routes`, in order of first appearance.
        let mut slot_of = std::collections::BTreeMap::new();
        let vm_slots: Vec<usize> = vms
            .iter()
            .map(|&v| {
                let next = slot_of.len();
                *slot_of.entry(v).or_insert(next)
            })
            .collect();
        if ndevices > MAX_DEVICES {
            return Err(Error::InvalidArgument(format!(
                "devices: at most {MAX_DEVICES} (one requester id each), got {ndevices}"
            )));
        }
        let preset = if cfg.posted_msi {
            X86Preset::posted_msi()
        } else {
            X86Preset::mainline()
        };
        let reservation_mode = cfg
            .reservation_mode
            .unwrap_or_else(|| platform.has_reservation_mode());
        let domain = VectorDomain::new(cfg.ncpus, &preset, reservation_mode, None)?;
        let iommus = (0..cfg.iommus)
            .map(|_| -> Result<Iommu> {
                Ok(match cfg.iommu {
                    IommuKind::Intel => {
                        Iommu::Intel(InterruptRemapper::new(cfg.irte_entries, false)?)
                    }
                    IommuKind::Amd => Iommu::Amd(AmdRemapper::new(cfg.amd_table_size)?),
                })
            })
            .collect::<Result<_>>()?;
        let devices = (0..ndevices)
            .map(|i| HostDevice {
                requester_id: requester_id_of(i as u32),
                iommu: i % cfg.iommus as usize,
                vm: vms[i],
                vm_slot: vm_slots[i],
                enabled: false,
                vectors: Vec::new(),
                allocated: 0,
                routes: RouteCache::default(),
            })
            .collect();
        let boot_allocated = u64::from(domain.matrix().total_allocated());
        Ok(Self {
            domain,
            iommus,
            devices,
            boot_allocated,
            peak: Usage::default(),
            alloc_failures: 0,
            early_enable: platform.early_enable,
            routes: vec![0; slot_of.len()],
            routes_per_vm: cfg.kvm_routes_per_vm,
            mask_each_freed: false,
        })
    }

    /// Resources in use now, read from the matrix, the IRTE tables and the
    /// irq descriptors.
    pub fn usage(&self) -> Usage {
        Usage {
            kvm_routes: self.routes.iter().copied().max().map_or(0, u64::from),
            ..self.host_resources()
        }
    }

    /// [`Host::usage`] without the KVM routes (0): the host's own resources.
    fn host_resources(&self) -> Usage {
        Usage {
            cpu_vectors: u64::from(self.domain.matrix().total_allocated()) - self.boot_allocated,
            irtes: self.iommus.iter().map(Remapper::in_use).sum(),
            irq_descs: self.domain.nr_irqs() as u64,
            kvm_routes: 0,
        }
    }

    /// Peak resources in use (each resource's own peak).
    pub fn peak(&self) -> Usage {
        self.peak
    }

    /// Host allocations that failed (CPU vectors or IRTEs).
    pub fn alloc_failures(&self) -> u64 {
        self.alloc_failures
    }

    /// The vector domain (read-only).
    pub fn domain(&self) -> &VectorDomain {
        &self.domain
    }

    /// Whether device `dev`'s MSI-X index is enabled on the host.
    pub fn index_enabled(&self, dev: u32) -> bool {
        self.devices.get(dev as usize).is_some_and(|d| d.enabled)
    }

    /// Device `dev`'s host vectors as `vfio_enable_vectors` would set them up
    /// again: one flag per vector, true when it is requested. `None` when the
    /// index is disabled.
    pub(crate) fn vector_set(&self, dev: u32) -> Option<Vec<bool>> {
        let d = self.devices.get(dev as usize).filter(|d| d.enabled)?;
        Some(
            d.vectors
                .iter()
                .map(|v| v.is_some_and(|h| h.active))
                .collect(),
        )
    }

    /// Remapping faults recorded or suppressed, over all IOMMUs.
    pub fn faults(&self) -> u64 {
        self.iommus.iter().map(Remapper::faults).sum()
    }

    /// Raise the peaks to the current usage. Usage only grows while an
    /// operation allocates and activates, so the operations call this where
    /// they stop growing it (their end, or before they unwind a failure), not
    /// after every vector. The busiest VM's routes are not searched for here:
    /// a route peak can only be set by the VM that just took a route, and
    /// its operation raises it (`DeviceShare::note_route_peak`).
    pub(super) fn track(&mut self) {
        self.peak = self.peak.max(self.host_resources());
    }

    /// Device `dev`'s share of the host, for an operation on it: its vectors,
    /// its IOMMU, the vector domain and its VM's routes, borrowed once.
    #[inline]
    fn share(&mut self, dev: u32) -> Result<DeviceShare<'_>> {
        let Host {
            domain,
            iommus,
            devices,
            routes,
            routes_per_vm,
            alloc_failures,
            peak,
            ..
        } = self;
        let device = devices
            .get_mut(dev as usize)
            .ok_or_else(|| Error::InvalidArgument(format!("no device {dev}")))?;
        // Both indices are set at boot from the same lists, so in range.
        let (Some(iommu), Some(vm_routes)) =
            (iommus.get_mut(device.iommu), routes.get_mut(device.vm_slot))
        else {
            return Err(Error::InvalidArgument(format!(
                "device {dev}: no IOMMU {} or VM slot {}",
                device.iommu, device.vm_slot
            )));
        };
        Ok(DeviceShare {
            dev,
            device,
            domain,
            iommu,
            vm_routes,
            routes_per_vm: *routes_per_vm,
            alloc_failures,
            peak_kvm_routes: &mut peak.kvm_routes,
            routes_stale: false,
        })
    }

    /// Device `dev`'s view of its IOMMU, for messages that are classified
    /// one after the other: whether each would be remapped or blocked,
    /// recording no fault (see [`Prober`]). `None` for no such device.
    pub(crate) fn prober(&self, dev: u32) -> Option<Prober<'_>> {
        let d = self.devices.get(dev as usize)?;
        Some(Prober {
            iommu: self.iommus.get(d.iommu)?,
            rid: d.requester_id,
        })
    }

    /// Where `msg` from `dev` would go now, asking the IOMMU (no cache).
    #[cfg(test)]
    fn route_now(&self, dev: u32, msg: &MsiMessage) -> Option<(u32, u8)> {
        let d = self.devices.get(dev as usize)?;
        self.iommus[d.iommu].target(d.requester_id, msg)
    }

    /// [`Host::remap`] without the route cache, for a message seen once (in
    /// aggregated mode only released and blocked interrupts are routed one
    /// by one, mostly right after their device's IRTEs changed).
    #[inline]
    pub fn remap_uncached(&mut self, dev: u32, msg: &MsiMessage) -> Option<(u32, u8)> {
        let d = self.devices.get(dev as usize)?;
        self.iommus[d.iommu].remap(d.requester_id, msg)
    }

    /// Route a message `dev` writes that is no entry of its table (a forged
    /// write): the IOMMU's full result, fault reason included; `None` for
    /// no such device. Never cached: the write is seen once.
    pub(crate) fn route_forged(&mut self, dev: u32, msg: &MsiMessage) -> Option<RemapResult> {
        let d = self.devices.get(dev as usize)?;
        Some(self.iommus[d.iommu].route(d.requester_id, msg))
    }

    /// The device and table entry whose active host vector is `vector` on
    /// `cpu`, read from the vector domain: who an interrupt arriving there
    /// is for. A scan of every device; used on the forged-write path only.
    pub(crate) fn owner_of(&self, cpu: u32, vector: u8) -> Option<(u32, u32)> {
        let want = Some((cpu, u32::from(vector)));
        self.devices.iter().enumerate().find_map(|(i, d)| {
            d.vectors.iter().enumerate().find_map(|(k, v)| {
                let hv = v.filter(|h| h.active)?;
                let target = self.domain.irq(hv.irq).ok()?.target();
                (target == want).then_some((i as u32, k as u32))
            })
        })
    }

    /// The `(cpu, vector)` entry `k` of `dev` holds now, if it is active.
    pub(crate) fn vector_of(&self, dev: u32, k: u32) -> Option<(u32, u8)> {
        let hv = self
            .devices
            .get(dev as usize)?
            .vectors
            .get(k as usize)
            .copied()
            .flatten()
            .filter(|h| h.active)?;
        let (cpu, vector) = self.domain.irq(hv.irq).ok()?.target()?;
        Some((cpu, vector as u8))
    }

    /// The fault logs of every IOMMU, summed.
    pub fn fault_log_stats(&self) -> FaultLogStats {
        let mut s = FaultLogStats::default();
        for log in self.iommus.iter().map(Remapper::log) {
            s.capacity += log.capacity() as u64;
            s.kept += log.records().len() as u64;
            s.recorded += log.total();
            s.overflowed += log.overflowed();
            s.suppressed += log.suppressed();
        }
        s
    }

    /// Let compatibility-format requests through every Intel IOMMU (CFI set):
    /// what Linux never does; for tests that must see a forged write land.
    #[cfg(test)]
    pub(crate) fn allow_compat_format(&mut self) {
        for u in &mut self.iommus {
            if let Iommu::Intel(r) = u {
                r.set_allow_compat(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TimingConfig;
    use crate::remap::{decode_msi, Decoded};

    fn host(reservation_mode: bool, iommu: IommuKind, irtes: u32) -> Host {
        let cfg = HostConfig {
            reservation_mode: Some(reservation_mode),
            iommu,
            irte_entries: irtes,
            ..HostConfig::default()
        };
        Host::new(&cfg, Platform::default(), &[0, 1]).unwrap()
    }

    fn exec(h: &mut Host, op: &HostOp) -> HostResult<Effects> {
        exec_on(h, 0, op)
    }

    fn exec_on(h: &mut Host, dev: u32, op: &HostOp) -> HostResult<Effects> {
        let mut fx = Effects::new();
        let mut clock = 0;
        h.exec(dev, op, &mut clock, &TimingConfig::default(), &mut fx)?;
        Ok(fx)
    }

    fn enable(flags: &[bool]) -> HostOp {
        HostOp::EnableVectors {
            with_fd: flags.to_vec(),
            closes_resize: false,
        }
    }

    #[test]
    fn usage_is_read_from_the_models() {
        for (reservation, cpu) in [(true, 2), (false, 3)] {
            let mut h = host(reservation, IommuKind::Intel, 64);
            assert_eq!(
                h.usage(),
                Usage::default(),
                "boot vectors are not device vectors"
            );
            exec(&mut h, &enable(&[true, false, true])).unwrap();
            // Every vector holds an IRTE and a descriptor; a CPU vector from
            // activation with reservation mode, from allocation without it.
            let want = Usage {
                cpu_vectors: cpu,
                irtes: 3,
                irq_descs: 3,
                kvm_routes: 2,
            };
            assert_eq!(h.usage(), want);
            exec(&mut h, &HostOp::DisableIndex).unwrap();
            assert_eq!(h.usage(), Usage::default());
            assert_eq!(h.peak(), want);
        }
    }

    #[test]
    fn irte_exhaustion_unwinds_the_vector_domain() {
        let mut h = host(false, IommuKind::Intel, 2);
        let r = exec(&mut h, &enable(&[true; 3]));
        assert!(
            matches!(r, Err(HostError::Failure(HostFailure::NoSpace(_)))),
            "{r:?}"
        );
        assert_eq!(h.usage(), Usage::default(), "nothing leaked");
        assert_eq!(h.alloc_failures(), 1);
        assert!(!h.index_enabled(0));
    }

    #[test]
    fn a_disable_in_one_pass_leaves_the_host_as_the_two_passes_do() {
        // `free_irq` taking no time, the disable frees each vector right
        // after deactivating it; `mask_each_freed` takes the kernel's two
        // passes (deactivate all, then free all). Every model ends the same,
        // and the next enable picks the same CPUs, vectors and IRTEs.
        for (reservation, iommu) in [
            (true, IommuKind::Intel),
            (false, IommuKind::Intel),
            (true, IommuKind::Amd),
        ] {
            let run = |two_passes: bool| {
                let mut h = host(reservation, iommu, 64);
                exec_on(&mut h, 0, &enable(&[true, false, true, true, false])).unwrap();
                exec_on(&mut h, 1, &enable(&[true, true])).unwrap();
                h.mask_each_freed = two_passes;
                let fx = exec_on(&mut h, 0, &HostOp::DisableIndex).unwrap();
                h.mask_each_freed = false;
                let others: Vec<_> = fx
                    .iter()
                    .filter(|(_, f)| !matches!(f, HostFx::Mask(_)))
                    .copied()
                    .collect();
                let again = exec_on(&mut h, 0, &enable(&[true; 6])).unwrap();
                (format!("{h:?}"), others, again)
            };
            assert_eq!(run(false), run(true), "{reservation} {iommu:?}");
        }
    }

    #[test]
    fn host_time_past_u64_is_an_error_at_the_step_that_overflows() {
        // The alloc loop's time is checked once when it fits and per step
        // when it does not: a clock that overflows at the third of four
        // vectors fails there (two allocated, as the stepwise check left them).
        let mut h = host(true, IommuKind::Intel, 64);
        let t = TimingConfig {
            w0_ns: 0,
            w_alloc_ns: u64::MAX / 3 + 1,
            ..TimingConfig::default()
        };
        let mut fx = Effects::new();
        let mut clock = 0;
        let r = h.exec(0, &enable(&[true; 4]), &mut clock, &t, &mut fx);
        assert!(
            matches!(&r, Err(HostError::Model(Error::InvalidArgument(m))) if m.contains("overflows")),
            "{r:?}"
        );
        assert_eq!(clock, 2 * (u64::MAX / 3 + 1), "stopped where it overflowed");
        assert_eq!(h.usage().irq_descs, 2);
        // The same loop within range: every vector allocated and requested.
        let mut h = host(true, IommuKind::Intel, 64);
        let t = TimingConfig {
            w0_ns: 0,
            w_alloc_ns: u64::MAX / 5,
            t_request_ns: 1,
            ..TimingConfig::default()
        };
        let (mut fx, mut clock) = (Effects::new(), 0);
        h.exec(0, &enable(&[true; 4]), &mut clock, &t, &mut fx)
            .unwrap();
        assert_eq!(clock, 4 * (u64::MAX / 5) + 4);
        assert_eq!(h.usage().kvm_routes, 4);
    }

    #[test]
    fn intel_and_amd_route_through_one_interface() {
        for iommu in [IommuKind::Intel, IommuKind::Amd] {
            let mut h = host(true, iommu, 64);
            let fx = exec(&mut h, &enable(&[true])).unwrap();
            let msg = fx
                .iter()
                .find_map(|(_, f)| match f {
                    HostFx::Request(0, m) => Some(*m),
                    _ => None,
                })
                .unwrap();
            assert!(h.prober(0).unwrap().sends(&msg), "{iommu:?}");
            // Device 1's prober sees device 0's IRTE as not its own, and
            // records no fault for it; no device 9.
            assert!(!h.prober(1).unwrap().sends(&msg), "{iommu:?}");
            assert_eq!(h.faults(), 0, "{iommu:?}");
            assert!(h.prober(9).is_none());
            let (cpu, vector) = h.remap(0, 0, &msg).unwrap();
            let info = h.domain().irqs().next().unwrap().1;
            assert_eq!(info.target(), Some((cpu, u32::from(vector))), "{iommu:?}");
            // The second fire takes the cached route: the same target.
            assert_eq!(h.remap(0, 0, &msg), Some((cpu, vector)), "{iommu:?}");
            // Device 1 is another requester: device 0's IRTE is not its own
            // (Intel: the source-id check; AMD: device 1 has no table).
            assert!(h.remap(1, 0, &msg).is_none(), "{iommu:?}");
            assert_eq!(h.faults(), 1, "{iommu:?}");
            if iommu == IommuKind::Intel {
                assert!(matches!(decode_msi(&msg), Ok(Decoded::Remappable(_))));
            }
            // Once the index is disabled the IRTE is gone: the cached route
            // must not outlive it.
            exec(&mut h, &HostOp::DisableIndex).unwrap();
            assert!(!h.prober(0).is_some_and(|p| p.sends(&msg)), "{iommu:?}");
            assert!(h.remap(0, 0, &msg).is_none(), "{iommu:?}");
            assert_eq!(h.faults(), 2, "{iommu:?}");
        }
    }

    #[test]
    fn a_cached_route_is_always_the_route_the_iommu_gives_now() {
        use rand::{RngExt, SeedableRng};
        // Random VFIO operations on two devices; after each, every message
        // either device was ever given, sent from either device's entry,
        // routes through the cache exactly as the IOMMU would route it now.
        for iommu in [IommuKind::Intel, IommuKind::Amd] {
            for seed in 0..40 {
                let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
                let mut h = host(seed % 2 == 0, iommu, 16);
                let mut msgs: Vec<(u32, MsiMessage)> = Vec::new();
                for _ in 0..60 {
                    let dev = rng.random_range(0..2u32);
                    let v = rng.random_range(0..5u32);
                    let op = match rng.random_range(0..5) {
                        0 => {
                            let n = rng.random_range(1..6usize);
                            enable(&(0..n).map(|_| rng.random_bool(0.7)).collect::<Vec<_>>())
                        }
                        1 => HostOp::DisableIndex,
                        2 => HostOp::SwitchToUserspace { vector: v },
                        3 => HostOp::AddVector { vector: v },
                        _ => HostOp::SetSignalling { vector: v },
                    };
                    if let Ok(fx) = exec_on(&mut h, dev, &op) {
                        msgs.extend(fx.iter().filter_map(|(_, f)| match f {
                            HostFx::Request(k, m) => Some((*k, *m)),
                            _ => None,
                        }));
                    }
                    for &(k, m) in &msgs {
                        for d in 0..2 {
                            let truth = h.route_now(d, &m);
                            assert_eq!(
                                h.prober(d).is_some_and(|p| p.sends(&m)),
                                truth.is_some(),
                                "{iommu:?} {seed}"
                            );
                            assert_eq!(h.remap(d, k, &m), truth, "{iommu:?} seed {seed}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_new_trigger_is_free_irq_then_request_irq() {
        let mut h = host(true, IommuKind::Intel, 64);
        exec(&mut h, &enable(&[true, true])).unwrap();
        // vfio_msi_set_vector_signal on a vector with a trigger: the entry is
        // masked (free_irq) and unmasked again (request_irq).
        let fx = exec(&mut h, &HostOp::SwitchToUserspace { vector: 1 }).unwrap();
        let kinds: Vec<_> = fx.iter().map(|(_, f)| std::mem::discriminant(f)).collect();
        assert_eq!(
            kinds,
            [
                std::mem::discriminant(&HostFx::Mask(1)),
                std::mem::discriminant(&HostFx::Request(1, MsiMessage::default())),
            ]
        );
        assert_eq!(h.vector_set(0), Some(vec![true, true]));
        assert_eq!(h.usage().cpu_vectors, 2);
        // A vector with no trigger has nothing to switch.
        exec(&mut h, &HostOp::DisableIndex).unwrap();
        exec(&mut h, &enable(&[false])).unwrap();
        assert!(exec(&mut h, &HostOp::SwitchToUserspace { vector: 0 })
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_failed_dynamic_request_keeps_the_irq_until_disable() {
        let cfg = HostConfig {
            ncpus: 1,
            ..HostConfig::default()
        };
        let mut h = Host::new(&cfg, Platform::default(), &[0]).unwrap();
        exec(&mut h, &enable(&[false])).unwrap();
        // Add vectors until the one CPU has no vector left.
        let mut k = 0;
        let failed = loop {
            match exec(&mut h, &HostOp::AddVector { vector: k }) {
                Ok(_) => k += 1,
                Err(e) => break e,
            }
            assert!(k < 2048, "never ran out");
        };
        assert!(
            matches!(failed, HostError::Failure(HostFailure::NoSpace(_))),
            "{failed:?}"
        );
        // The irq of the failed request stays allocated (descriptor and IRTE),
        // not requested, until MSI-X is disabled.
        let u = h.usage();
        assert_eq!((u.irq_descs, u.irtes), (u64::from(k) + 1, u64::from(k) + 1));
        assert!(!h.vector_set(0).unwrap()[k as usize]);
        exec(&mut h, &HostOp::DisableIndex).unwrap();
        assert_eq!(h.usage(), Usage::default());
    }

    #[test]
    fn a_vms_kvm_routes_are_its_own_and_run_out() {
        let cfg = HostConfig {
            kvm_routes_per_vm: 3,
            ..HostConfig::default()
        };
        // Devices 0 and 1 in VM 7, device 2 in VM 8.
        let mut h = Host::new(&cfg, Platform::default(), &[7, 7, 8]).unwrap();
        let on = |h: &mut Host, dev: u32, flags: &[bool]| exec_on(h, dev, &enable(flags));
        on(&mut h, 0, &[true, true]).unwrap();
        on(&mut h, 2, &[true, true, true]).unwrap();
        assert_eq!(h.usage().kvm_routes, 3, "the busiest VM's routes");
        // VM 7 has one route left: device 1's second vector finds none.
        let r = on(&mut h, 1, &[true, true]);
        assert!(
            matches!(r, Err(HostError::Failure(HostFailure::NoSpace(ref m))) if m.contains("VM 7")),
            "{r:?}"
        );
        assert_eq!(h.alloc_failures, 1);
        // Disabling devices 0 and 1 gives VM 7 its routes back.
        exec_on(&mut h, 0, &HostOp::DisableIndex).unwrap();
        exec_on(&mut h, 1, &HostOp::DisableIndex).unwrap();
        on(&mut h, 1, &[true, true, true]).unwrap();
    }

    #[test]
    fn allocations_walked_in_place_are_allocations_one_by_one() {
        // `DeviceShare::alloc_each` (the enable's walk) against `alloc_vector` of each
        // entry: the same host after it and the same first failure (IRTEs exhausted, CPU
        // vectors exhausted without reservation mode), entries already allocated skipped,
        // on Intel and AMD.
        for (reservation, iommu, ncpus, irtes) in [
            (true, IommuKind::Intel, 4, 1024),
            (true, IommuKind::Intel, 4, 32),
            (false, IommuKind::Intel, 1, 1024),
            (true, IommuKind::Amd, 4, 1024),
            (false, IommuKind::Amd, 1, 1024),
        ] {
            let cfg = HostConfig {
                ncpus,
                reservation_mode: Some(reservation),
                iommu,
                irte_entries: irtes,
                ..HostConfig::default()
            };
            let run = |walk: bool| {
                let mut h = Host::new(&cfg, Platform::default(), &[0]).unwrap();
                let mut s = h.share(0).unwrap();
                // Entries 3 and 9 first (a hole before each), then 0..300.
                s.alloc_vector(3).unwrap();
                s.alloc_vector(9).unwrap();
                let mut steps = 0;
                let failed = if walk {
                    s.alloc_each(0..300, || {
                        steps += 1;
                        Ok(())
                    })
                    .unwrap()
                } else {
                    (0..300).find_map(|k| {
                        steps += 1;
                        s.alloc_vector(k).err()
                    })
                };
                let allocated = s.device.allocated;
                drop(s);
                (format!("{h:?}"), failed, steps, allocated)
            };
            let (walked, one_by_one) = (run(true), run(false));
            assert_eq!(
                walked, one_by_one,
                "{reservation} {iommu:?} {ncpus} {irtes}"
            );
        }
    }

    #[test]
    fn requests_walked_in_place_are_requests_one_by_one() {
        // `DeviceShare::request_each` (the enable's walk) against `activate` of each entry:
        // the same messages, the same host after it, the same first refusal (KVM routes
        // full, CPU vectors exhausted, an entry with no vector) with the entries before it
        // requested, on Intel and AMD, with reservation mode on and off.
        for (reservation, iommu, ncpus, routes) in [
            (true, IommuKind::Intel, 4, 4096),
            (false, IommuKind::Intel, 4, 4096),
            (true, IommuKind::Amd, 4, 4096),
            (true, IommuKind::Intel, 4, 5),
            (true, IommuKind::Intel, 1, 4096),
            (false, IommuKind::Amd, 1, 4096),
        ] {
            let cfg = HostConfig {
                ncpus,
                reservation_mode: Some(reservation),
                iommu,
                irte_entries: 1024,
                kvm_routes_per_vm: routes,
                ..HostConfig::default()
            };
            let mut flags: Vec<bool> = (0..300).map(|k| k % 3 != 1).collect();
            flags.extend([true, false, true]);
            let run = |walk: bool| {
                let mut h = Host::new(&cfg, Platform::default(), &[0]).unwrap();
                let mut s = h.share(0).unwrap();
                // Entries 0..300 allocated (as many as fit), the last three left without.
                for k in 0..300 {
                    if s.alloc_vector(k).is_err() {
                        break;
                    }
                }
                let mut msgs = Vec::new();
                let mut clock = 0;
                let refused = if walk {
                    s.request_each(
                        &flags,
                        || {
                            clock += 1;
                            Ok(clock)
                        },
                        |k, at, m| msgs.push((at, k, m)),
                    )
                    .unwrap()
                } else {
                    let mut refused = None;
                    for (k, _) in flags.iter().enumerate().filter(|(_, f)| **f) {
                        clock += 1;
                        match s.activate(k as u32) {
                            Ok(m) => msgs.push((clock, k as u32, m)),
                            Err(e) => {
                                refused = Some(e);
                                break;
                            }
                        }
                    }
                    refused
                };
                drop(s);
                (format!("{h:?}"), msgs, refused, clock)
            };
            let (walked, one_by_one) = (run(true), run(false));
            assert!(
                walked.2.is_some(),
                "{reservation} {iommu:?} {ncpus} {routes}"
            );
            assert_eq!(
                walked, one_by_one,
                "{reservation} {iommu:?} {ncpus} {routes}"
            );
        }
    }

    #[test]
    fn requesting_an_unallocated_vector_is_a_typed_failure() {
        let mut h = host(true, IommuKind::Intel, 64);
        exec(&mut h, &enable(&[true])).unwrap();
        let r = exec(&mut h, &HostOp::SetSignalling { vector: 4 });
        assert_eq!(
            r.unwrap_err(),
            HostError::Failure(HostFailure::NotAllocated { dev: 0, vector: 4 })
        );
        // The dynamic add allocates it on demand.
        exec(&mut h, &HostOp::AddVector { vector: 4 }).unwrap();
        assert_eq!(h.vector_set(0), Some(vec![true, false, false, false, true]));
    }
}
