//! One device's share of the host: everything a VFIO operation on that device
//! touches for each of its vectors — its host vectors, its IOMMU, the vector
//! domain, its VM's KVM routes — borrowed once per operation. The per-vector
//! steps of a resize (allocate, request, free) live here, and the host's
//! operations loop over them without looking the device, its IOMMU and its
//! VM up again for every vector.

use super::remapper::{Iommu, Remapper};
use super::{HostDevice, HostError, HostFailure, HostResult, HostVector};
use crate::error::{Error, Result};
use crate::msi::MsiMessage;
use crate::vector_domain::VectorDomain;

/// The borrows of one device's operation (see the module doc).
pub(super) struct DeviceShare<'h> {
    /// The device's index (for messages).
    pub dev: u32,
    pub device: &'h mut HostDevice,
    pub domain: &'h mut VectorDomain,
    /// The IOMMU the device sits behind.
    pub iommu: &'h mut Iommu,
    /// KVM MSI routes its VM has in use.
    pub vm_routes: &'h mut u32,
    /// KVM's routing table size per VM.
    pub routes_per_vm: u32,
    /// The host's count of failed allocations.
    pub alloc_failures: &'h mut u64,
    /// The host's peak of KVM routes in use by one VM.
    pub peak_kvm_routes: &'h mut u64,
    /// One of the device's IRTEs changed during this operation: its cached
    /// routes are invalidated once, when the share ends (see `Drop`).
    pub routes_stale: bool,
}

/// The device's route cache is invalidated once per operation that changed
/// an IRTE, not at every IRTE it changed: no route is looked up while the
/// share holds the host (the borrow forbids it), so the routes that hit and
/// miss afterwards are the same.
impl Drop for DeviceShare<'_> {
    fn drop(&mut self) {
        if self.routes_stale {
            self.device.routes.invalidate();
        }
    }
}

/// Entry `k`'s slot in `vectors`, the list grown with empty slots to reach it.
fn slot(vectors: &mut Vec<Option<HostVector>>, k: usize) -> &mut Option<HostVector> {
    if vectors.len() <= k {
        vectors.resize(k + 1, None);
    }
    &mut vectors[k]
}

/// `request_irq` on an entry with no host vector (`InvalidOperation`).
#[cold]
fn not_allocated(dev: u32, k: u32) -> HostError {
    Error::invalid_op("vector_not_allocated", format!("device {dev} entry {k}")).into()
}

/// `request_irq` when the VM's KVM routing table is full (a `NoSpace` failure).
#[cold]
fn routes_full(vm: u32, routes_per_vm: u32) -> HostError {
    HostError::Failure(HostFailure::NoSpace(format!(
        "VM {vm}: all {routes_per_vm} KVM interrupt routes in use"
    )))
}

/// `request_irq` of a managed irq left shut down: no online CPU (a `NoSpace` failure).
#[cold]
fn no_online_cpu(dev: u32, k: u32) -> HostError {
    HostError::Failure(HostFailure::NoSpace(format!(
        "device {dev} entry {k}: no online CPU for the interrupt"
    )))
}

impl DeviceShare<'_> {
    /// Allocate the host irq of entry `k` (descriptor, IRTE, and a CPU vector
    /// or a reservation) without activating it; nothing if it is allocated.
    /// The IR domain allocates its parent (the x86 vector domain) first, then
    /// the IRTE (`intel_irq_remapping_alloc`), and unwinds both on failure.
    /// Counts a failed allocation.
    #[inline(always)]
    pub fn alloc_vector(&mut self, k: u32) -> HostResult<()> {
        match self.alloc_each(std::iter::once(k), || Ok(())) {
            Ok(None) => Ok(()),
            Ok(Some(e)) => Err(e),
            Err(e) => Err(e.into()),
        }
    }

    /// [`DeviceShare::alloc_vector`] of each entry of `entries` in order, each after
    /// `before()` (the caller's clock; its error ends the walk and is returned as is): the
    /// first failure, if any, with the entries before it allocated. The share's borrows are
    /// split once for the walk and the device's count of vectors kept in a local, written
    /// back however the walk ends (measured with callgrind: about 7 instructions a vector
    /// fewer than `alloc_vector` through the share each).
    #[inline(always)]
    pub fn alloc_each(
        &mut self,
        entries: impl IntoIterator<Item = u32>,
        mut before: impl FnMut() -> Result<()>,
    ) -> Result<Option<HostError>> {
        let DeviceShare {
            device,
            domain,
            iommu,
            alloc_failures,
            routes_stale,
            ..
        } = self;
        let d = &mut **device;
        let rid = d.requester_id;
        let mut allocated = d.allocated;
        let r = (|| {
            for k in entries {
                before()?;
                let ku = k as usize;
                if d.vectors.get(ku).is_some_and(Option::is_some) {
                    continue;
                }
                let irq = match domain.alloc_irq(None, false, None) {
                    Ok(irq) => irq,
                    Err(e) => {
                        **alloc_failures += 1;
                        slot(&mut d.vectors, ku);
                        return Ok(Some(e.into()));
                    }
                };
                *routes_stale = true;
                let irte = match iommu.alloc(rid) {
                    Ok(i) => i,
                    Err(e) => {
                        **alloc_failures += 1;
                        slot(&mut d.vectors, ku);
                        if let Err(fe) = domain.free(irq) {
                            return Ok(Some(fe.into()));
                        }
                        return Ok(Some(e.into()));
                    }
                };
                let hv = Some(HostVector {
                    irq,
                    irte,
                    active: false,
                });
                allocated += 1;
                if d.vectors.len() == ku {
                    d.vectors.push(hv);
                } else {
                    *slot(&mut d.vectors, ku) = hv;
                }
            }
            Ok(None)
        })();
        d.allocated = allocated;
        r
    }

    /// `request_irq` on entry `k`: one KVM route for its VM, activate (take
    /// a CPU vector), program the IRTE; returns the message to write into
    /// the table entry. Counts a failed allocation. The route peak is left
    /// to [`DeviceShare::note_route_peak`], once the caller's requests stop.
    #[inline(always)]
    pub fn activate(&mut self, k: u32) -> HostResult<MsiMessage> {
        let (dev, d) = (self.dev, &mut *self.device);
        // The vector is looked up once: marked active through the same
        // reference at the end.
        let Some(Some(hv)) = d.vectors.get_mut(k as usize) else {
            return Err(not_allocated(dev, k));
        };
        // The VMM routes the vector's eventfd into the VM: one KVM MSI route.
        if *self.vm_routes >= self.routes_per_vm {
            *self.alloc_failures += 1;
            return Err(routes_full(d.vm, self.routes_per_vm));
        }
        let target = match self.domain.activate_targeted(hv.irq) {
            Ok(t) => t,
            Err(e) => {
                if matches!(e, Error::NoSpace(_)) {
                    *self.alloc_failures += 1;
                }
                return Err(e.into());
            }
        };
        let Some((cpu, vector)) = target else {
            return Err(no_online_cpu(dev, k));
        };
        self.routes_stale = true;
        let msg = self
            .iommu
            .program(d.requester_id, hv.irte, vector as u8, cpu)?;
        hv.active = true;
        *self.vm_routes += 1;
        Ok(msg)
    }

    /// `request_irq` of each entry `k` whose `with_fd[k]` is set, in entry order, as
    /// [`DeviceShare::activate`] each: `before()` runs first (the caller's clock: the time
    /// it returns is the request's; its error ends the walk), `after(k, at, msg)` on
    /// success. Returns the first refusal, if any, with the entries before it requested.
    /// The entries are walked in place with the share's borrows split, and the VM's routes
    /// counted in a local written back however the walk ends (measured with callgrind:
    /// about 8 and 10 instructions a vector fewer than looking each entry up and counting
    /// through the share).
    #[inline(always)]
    pub fn request_each(
        &mut self,
        with_fd: &[bool],
        mut before: impl FnMut() -> Result<u64>,
        mut after: impl FnMut(u32, u64, MsiMessage),
    ) -> Result<Option<HostError>> {
        let DeviceShare {
            dev,
            device,
            domain,
            iommu,
            vm_routes,
            routes_per_vm,
            alloc_failures,
            routes_stale,
            ..
        } = self;
        let (rid, vm) = (device.requester_id, device.vm);
        // The VM's routes in use, counted in a local and written back once the walk ends.
        let mut routes = **vm_routes;
        let r = (|| {
            // Entries past the device's vectors have none to request.
            let walked = with_fd.len().min(device.vectors.len());
            for (k, (&f, slot)) in with_fd.iter().zip(&mut device.vectors).enumerate() {
                if !f {
                    continue;
                }
                let at = before()?;
                let k = k as u32;
                let Some(hv) = slot else {
                    return Ok(Some(not_allocated(*dev, k)));
                };
                // The VMM routes the vector's eventfd into the VM: one KVM MSI route.
                if routes >= *routes_per_vm {
                    **alloc_failures += 1;
                    return Ok(Some(routes_full(vm, *routes_per_vm)));
                }
                let target = match domain.activate_targeted(hv.irq) {
                    Ok(t) => t,
                    Err(e) => {
                        if matches!(e, Error::NoSpace(_)) {
                            **alloc_failures += 1;
                        }
                        return Ok(Some(e.into()));
                    }
                };
                let Some((cpu, vector)) = target else {
                    return Ok(Some(no_online_cpu(*dev, k)));
                };
                *routes_stale = true;
                let msg = match iommu.program(rid, hv.irte, vector as u8, cpu) {
                    Ok(m) => m,
                    Err(e) => return Ok(Some(e.into())),
                };
                hv.active = true;
                routes += 1;
                after(k, at, msg);
            }
            if let Some(k) = with_fd[walked..].iter().position(|&f| f) {
                before()?;
                return Ok(Some(not_allocated(*dev, (walked + k) as u32)));
            }
            Ok(None)
        })();
        **vm_routes = routes;
        r
    }

    /// Raise the host's peak of KVM routes to the device's VM's routes now.
    /// Only [`DeviceShare::activate`] takes a route, so an operation calls
    /// this where its requests stop (their end, or before it unwinds a
    /// failure), not after every vector.
    #[inline]
    pub fn note_route_peak(&mut self) {
        *self.peak_kvm_routes = (*self.peak_kvm_routes).max(u64::from(*self.vm_routes));
    }

    /// `free_irq` on entry `k`: its KVM route goes, it is deactivated (its
    /// CPU vector released) and its IRTE marked not present. Nothing for an
    /// entry that is not requested. Whether it was requested (a walk over
    /// the entries asks this once, not once to decide and once to act).
    #[inline(always)]
    pub fn deactivate(&mut self, k: u32) -> Result<bool> {
        let d = &mut *self.device;
        let Some(Some(hv)) = d.vectors.get_mut(k as usize) else {
            return Ok(false);
        };
        if !hv.active {
            return Ok(false);
        }
        hv.active = false;
        let (irq, irte) = (hv.irq, hv.irte);
        self.routes_stale = true;
        *self.vm_routes = self.vm_routes.saturating_sub(1);
        self.domain.deactivate(irq)?;
        self.iommu.clear(d.requester_id, irte)?;
        Ok(true)
    }

    /// `pci_free_irq_vectors`: free every host vector of the device
    /// (deactivating any still active); the index is left disabled.
    pub fn free_all(&mut self) -> Result<()> {
        // Every IRTE of the device goes: one invalidation covers them all.
        self.device.routes.invalidate();
        let mut released = 0;
        let r = free_each(self.device, self.domain, self.iommu, &mut released);
        // The KVM routes of the vectors still requested, given back at once (as many
        // saturating steps of one), whether or not a step failed after them.
        if released > 0 {
            self.routes_stale = true;
            *self.vm_routes = self.vm_routes.saturating_sub(released);
        }
        r?;
        debug_assert_eq!(self.device.allocated, 0);
        self.device.vectors.clear();
        self.device.enabled = false;
        Ok(())
    }

    /// Whether entry `k` has a host vector that is requested.
    #[inline]
    pub fn is_active(&self, k: u32) -> bool {
        self.device
            .vectors
            .get(k as usize)
            .copied()
            .flatten()
            .is_some_and(|h| h.active)
    }
}

/// [`DeviceShare::free_all`]'s walk over the entries of `device`, each looked up once (the
/// slice walked in place: measured with callgrind, about 10 instructions a vector fewer
/// than indexing it and counting each route at once). Each host vector leaves its slot, its
/// irq and IRTE are freed, and one still requested is deactivated first (`free_irq`: its
/// IRTE cleared, its route counted in `released` for the caller to give back); the first
/// error stops the walk.
#[inline(always)]
fn free_each(
    device: &mut HostDevice,
    domain: &mut VectorDomain,
    iommu: &mut Iommu,
    released: &mut u32,
) -> Result<()> {
    let rid = device.requester_id;
    let HostDevice {
        vectors, allocated, ..
    } = device;
    for slot in vectors.iter_mut() {
        let Some(hv) = slot else {
            continue;
        };
        let (irq, irte) = (hv.irq, hv.irte);
        if hv.active {
            *released += 1;
            // The disable's one pass: `free_irq` and the free below in one step of the
            // domain when it can (see `VectorDomain::release_default`).
            if domain.release_default(irq) {
                *slot = None;
                *allocated -= 1;
                iommu.clear_and_free(rid, irte)?;
                continue;
            }
            // `DeviceShare::deactivate`, the route left to the caller.
            hv.active = false;
            domain.deactivate(irq)?;
            iommu.clear(rid, irte)?;
        }
        *slot = None;
        *allocated -= 1;
        domain.free(irq)?;
        iommu.free(rid, irte)?;
    }
    Ok(())
}
