//! QEMU's vfio-pci MSI-X emulation (hw/vfio/pci.c, QEMU ≥ 8.2, with
//! hw/pci/msix.c's mask logic) as a pure state machine: guest register writes
//! go in, the host-side VFIO operations QEMU performs come out, in order.
//!
//! Facts modelled (docs/models.md, "QEMU vfio-pci", lists the sources):
//! - `msix_is_masked(v) = !enabled || maskall || entry_masked[v]`; a change of
//!   that value fires the use (unmask) or release (mask) notifier
//!   (`msix_handle_mask_update`), but only once notifiers are set, i.e. while
//!   `vfio_msix_enable` has run.
//! - `vfio_msix_enable`: `vfio_disable_interrupts` (INTx off), notifiers set
//!   (`msix_set_vector_notifiers` calls use() for each vector already unmasked,
//!   in a deferred batch), then `vfio_enable_vectors` if `nr_vectors` > 0, else
//!   `vfio_enable_msix_no_vec`.
//! - `vfio_msix_vector_do_use(nr)`: `resizing = nr_vectors < nr + 1`; first use
//!   inits the vector; `nr_vectors = nr + 1` when resizing; outside the batch,
//!   NORESIZE + resizing = `vfio_device_irq_disable` then `vfio_enable_vectors`
//!   (the whole index off and on again), otherwise `set_irq_signalling` for nr.
//! - `vfio_msix_vector_release(nr)`: with a KVM virq, switch the vector's
//!   trigger to the userspace eventfd; it never shrinks `nr_vectors`.
//! - `vfio_msix_disable`: release every used vector, always
//!   `vfio_device_irq_disable`, `nr_vectors = 0`, `vfio_intx_enable`.
//!
//! KVM irqchip routing is assumed present (every used vector has a virq).

use crate::error::{Error, Result};
use crate::host::HostOp;
use crate::policy::HostOps;

/// QEMU's per-device MSI-X state: the guest-visible control and mask bits,
/// and VFIO's `nr_vectors` and per-vector `use`.
#[derive(Debug)]
pub struct QemuMsix {
    noresize: bool,
    upfront: u32,
    /// QEMU before 8.2: `vfio_msix_enable` sets vector 0 up first.
    prerequest_vector0: bool,
    /// Request every vector up to `nr_vectors` at enable, used or not (a VMM
    /// that enables every entry on the host at attach).
    request_all: bool,
    enabled: bool,
    maskall: bool,
    entry_masked: Vec<bool>,
    used: Vec<bool>,
    nr_vectors: u32,
    notifiers: bool,
}

impl Clone for QemuMsix {
    fn clone(&self) -> Self {
        let mut c = Self {
            entry_masked: Vec::new(),
            used: Vec::new(),
            ..*self
        };
        c.clone_from(self);
        c
    }

    /// Into the allocations `self` already has: the policy saves a device's
    /// state before every guest action (its undo), and a fresh copy was two
    /// allocations and two frees per action.
    fn clone_from(&mut self, source: &Self) {
        let Self {
            noresize,
            upfront,
            prerequest_vector0,
            request_all,
            enabled,
            maskall,
            entry_masked,
            used,
            nr_vectors,
            notifiers,
        } = source;
        self.noresize = *noresize;
        self.upfront = *upfront;
        self.prerequest_vector0 = *prerequest_vector0;
        self.request_all = *request_all;
        self.enabled = *enabled;
        self.maskall = *maskall;
        self.entry_masked.clone_from(entry_masked);
        self.used.clone_from(used);
        self.nr_vectors = *nr_vectors;
        self.notifiers = *notifiers;
    }
}

impl QemuMsix {
    /// A device with `entries` table entries at reset (disabled, every entry
    /// masked). `noresize` is the host's `VFIO_IRQ_INFO_NORESIZE` flag.
    pub fn new(entries: u32, noresize: bool) -> Result<Self> {
        if !(1..=2048).contains(&entries) {
            return Err(Error::InvalidArgument(format!(
                "MSI-X table size must be 1..=2048, got {entries}"
            )));
        }
        Ok(Self {
            noresize,
            upfront: 0,
            prerequest_vector0: false,
            request_all: false,
            enabled: false,
            maskall: false,
            entry_masked: vec![true; entries as usize],
            used: vec![false; entries as usize],
            nr_vectors: 0,
            notifiers: false,
        })
    }

    /// Pre-size `nr_vectors` to `count` at every enable (the "upfront"
    /// baseline: all vectors, or a per-PCI-ID count, allocated at enable).
    pub fn with_upfront(mut self, count: u32) -> Self {
        self.upfront = count.min(self.entries());
        self
    }

    /// QEMU before 8.2: `vfio_msix_enable` calls `vfio_msix_vector_do_use(0)`
    /// then `vfio_msix_vector_release(0)` (a no-op without a KVM virq), so
    /// vector 0 is set up with QEMU's own eventfd at every enable and the
    /// guest's first unmask of entry 0 is no resize.
    pub fn with_vector0_prerequest(mut self) -> Self {
        self.prerequest_vector0 = true;
        self
    }

    /// Request every pre-sized vector at every enable, used or not.
    pub fn with_request_all(mut self) -> Self {
        self.request_all = true;
        self
    }

    /// Number of table entries.
    pub fn entries(&self) -> u32 {
        self.entry_masked.len() as u32
    }

    /// VFIO's `nr_vectors`: how many vectors the host has set up (only grows
    /// while enabled; 0 after disable).
    pub fn nr_vectors(&self) -> u32 {
        self.nr_vectors
    }

    /// Whether the guest has MSI-X Enable set.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether vector `k` has been used (unmasked) since the last enable.
    pub fn used(&self, k: u32) -> bool {
        self.used.get(k as usize).copied().unwrap_or(false)
    }

    /// `msix_is_masked`: the effective mask of vector `k`.
    pub fn is_masked(&self, k: u32) -> bool {
        !self.enabled || self.maskall || self.entry_masked.get(k as usize).copied().unwrap_or(true)
    }

    /// Guest write of Message Control's Enable and Function Mask bits.
    pub fn write_control(&mut self, enable: bool, maskall: bool) -> Vec<HostOp> {
        let mut ops = HostOps::new();
        self.write_control_into(enable, maskall, &mut ops);
        ops.into_vec()
    }

    /// [`write_control`](Self::write_control), its operations appended to
    /// `ops`.
    fn write_control_into(&mut self, enable: bool, maskall: bool, ops: &mut HostOps) {
        let was_enabled = self.enabled;
        let before: Vec<bool> = (0..self.entries()).map(|k| self.is_masked(k)).collect();
        self.enabled = enable;
        self.maskall = maskall;
        // msix_write_config: mask transitions fire notifiers, if set.
        if self.notifiers {
            for k in 0..self.entries() {
                self.mask_update(k, before[k as usize], ops);
            }
        }
        // vfio_pci_write_config, after pci_default_write_config.
        if !was_enabled && enable {
            self.msix_enable(ops);
        } else if was_enabled && !enable {
            self.msix_disable(ops);
        }
    }

    /// Guest write of entry `k`'s Vector Control mask bit.
    pub fn write_entry_mask(&mut self, k: u32, masked: bool) -> Result<Vec<HostOp>> {
        let mut ops = HostOps::new();
        self.write_entry_mask_into(k, masked, &mut ops)?;
        Ok(ops.into_vec())
    }

    /// [`write_entry_mask`](Self::write_entry_mask), its operations appended
    /// to `ops` (a policy's list, reused from one guest action to the next;
    /// a sequence of writes collects them in one list). Nothing appended
    /// (and nothing changed) on an error.
    pub(crate) fn write_entry_mask_into(
        &mut self,
        k: u32,
        masked: bool,
        ops: &mut HostOps,
    ) -> Result<()> {
        let was = self.is_masked(k);
        let slot = self.entry_masked.get_mut(k as usize).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "entry {k} is past the table of {}",
                self.used.len()
            ))
        })?;
        *slot = masked;
        if self.notifiers {
            self.mask_update(k, was, ops);
        }
        Ok(())
    }

    /// The Linux guest's `msix_capability_init` enable sequence: set
    /// Enable|Function Mask, mask every entry, clear Function Mask.
    pub fn linux_enable(&mut self) -> Vec<HostOp> {
        let mut ops = HostOps::new();
        self.linux_enable_into(&mut ops);
        ops.into_vec()
    }

    /// [`linux_enable`](Self::linux_enable), its operations appended to `ops`.
    pub(crate) fn linux_enable_into(&mut self, ops: &mut HostOps) {
        self.write_control_into(true, true, ops);
        for k in 0..self.entries() {
            // In range by construction: an error would append nothing.
            let _ = self.write_entry_mask_into(k, true, ops);
        }
        self.write_control_into(true, false, ops);
    }

    /// The Linux guest's disable: clear Enable (`pci_msix_shutdown` masks
    /// every entry first; masks of a disabled function fire no notifier).
    pub fn linux_disable(&mut self) -> Vec<HostOp> {
        let mut ops = HostOps::new();
        self.linux_disable_into(&mut ops);
        ops.into_vec()
    }

    /// [`linux_disable`](Self::linux_disable), its operations appended to
    /// `ops`.
    pub(crate) fn linux_disable_into(&mut self, ops: &mut HostOps) {
        for k in 0..self.entries() {
            // In range by construction: an error would append nothing.
            let _ = self.write_entry_mask_into(k, true, ops);
        }
        self.write_control_into(false, self.maskall, ops);
    }

    fn mask_update(&mut self, k: u32, was_masked: bool, ops: &mut HostOps) {
        let is_masked = self.is_masked(k);
        if is_masked == was_masked {
            return;
        }
        if is_masked {
            self.release(k, ops);
        } else {
            self.vector_use(k, false, ops);
        }
    }

    fn msix_enable(&mut self, ops: &mut HostOps) {
        ops.push(HostOp::IntxDisable);
        self.nr_vectors = self.nr_vectors.max(self.upfront);
        if self.prerequest_vector0 && self.nr_vectors == 0 {
            // do_use(0) in the enable: vector 0 in use, nr_vectors 1.
            if let Some(u) = self.used.first_mut() {
                *u = true;
            }
            self.nr_vectors = 1;
        }
        // msix_set_vector_notifiers: use() for every vector already unmasked
        // when Enable is set and Function Mask clear, deferred into one batch.
        self.notifiers = true;
        if self.enabled && !self.maskall {
            for k in 0..self.entries() {
                if !self.is_masked(k) {
                    self.vector_use(k, true, ops);
                }
            }
        }
        if self.nr_vectors > 0 {
            let op = self.enable_vectors(false, ops);
            ops.push(op);
        } else {
            ops.push(HostOp::EnableNoVec);
        }
    }

    fn msix_disable(&mut self, ops: &mut HostOps) {
        // msix_unset_vector_notifiers releases nothing here (Enable is clear);
        // vfio_msix_disable releases every used vector itself.
        self.notifiers = false;
        for k in 0..self.nr_vectors {
            if self.used(k) {
                self.release(k, ops);
            }
        }
        ops.push(HostOp::DisableIndex);
        // vfio_msi_disable_common
        self.nr_vectors = 0;
        self.used.iter_mut().for_each(|u| *u = false);
        ops.push(HostOp::IntxEnable);
    }

    fn vector_use(&mut self, k: u32, deferred: bool, ops: &mut HostOps) {
        let resizing = self.nr_vectors < k + 1;
        if let Some(u) = self.used.get_mut(k as usize) {
            *u = true; // vfio_pci_vector_init on first use
        }
        if resizing {
            self.nr_vectors = k + 1;
        }
        if deferred {
            return;
        }
        if self.noresize && resizing {
            ops.push(HostOp::DisableIndex);
            let op = self.enable_vectors(true, ops);
            ops.push(op);
        } else if self.noresize {
            ops.push(HostOp::SetSignalling { vector: k });
        } else {
            // A dynamic host allocates the vector on demand.
            ops.push(HostOp::AddVector { vector: k });
        }
    }

    fn release(&mut self, k: u32, ops: &mut HostOps) {
        if self.used(k) {
            ops.push(HostOp::SwitchToUserspace { vector: k });
        }
    }

    /// `vfio_enable_vectors` with every vector up to `nr_vectors`;
    /// `closes_resize` when it re-enables the index QEMU just disabled. Its
    /// flag list comes from `ops` (one it cleared before, if any), filled
    /// from `used` in one copy (measured with callgrind: a flag per vector
    /// from a checked lookup was about 0.5 % of a resize).
    fn enable_vectors(&self, closes_resize: bool, ops: &mut HostOps) -> HostOp {
        let n = self.nr_vectors as usize;
        let mut with_fd = ops.fd_list();
        if self.request_all {
            with_fd.resize(n, true);
        } else {
            // A vector past the table is not used (none is: nr_vectors
            // never passes the table).
            with_fd.extend_from_slice(&self.used[..n.min(self.used.len())]);
            with_fd.resize(n, false);
        }
        HostOp::EnableVectors {
            with_fd,
            closes_resize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HostOp::*;
    use super::*;

    #[test]
    fn a_reused_list_gives_what_a_fresh_one_gives() {
        // Resizes through one reused list (flag lists handed back by each
        // clear, of other lengths) and through a fresh list per write.
        for (noresize, upfront, all) in [
            (true, None, false),
            (true, Some(4), true),
            (false, None, false),
        ] {
            let make = || {
                let q = QemuMsix::new(16, noresize).unwrap();
                match upfront {
                    Some(n) if all => q.with_upfront(n).with_request_all(),
                    Some(n) => q.with_upfront(n),
                    None => q,
                }
            };
            let (mut fresh, mut reused) = (make(), make());
            let mut ops = HostOps::new();
            for round in 0..3 {
                ops.clear();
                reused.linux_enable_into(&mut ops);
                assert_eq!(&ops[..], &fresh.linux_enable()[..]);
                for k in (0..16).filter(|k| k % (round + 1) == 0) {
                    ops.clear();
                    reused.write_entry_mask_into(k, false, &mut ops).unwrap();
                    assert_eq!(&ops[..], &fresh.write_entry_mask(k, false).unwrap()[..]);
                }
                ops.clear();
                reused.linux_disable_into(&mut ops);
                assert_eq!(&ops[..], &fresh.linux_disable()[..]);
            }
        }
    }

    #[test]
    fn a_copy_into_another_devices_state_is_the_source() {
        let mut q = QemuMsix::new(8, true).unwrap().with_vector0_prerequest();
        q.linux_enable();
        q.write_entry_mask(3, false).unwrap();
        // Into a state of another size and other flags: every field follows.
        let mut saved = QemuMsix::new(64, false).unwrap().with_request_all();
        saved.clone_from(&q);
        assert_eq!(format!("{saved:?}"), format!("{q:?}"));
        assert_eq!(format!("{:?}", q.clone()), format!("{q:?}"));
        // The copy is its own: the source moves on, the copy does not.
        let before = format!("{saved:?}");
        q.write_entry_mask(5, false).unwrap();
        assert_eq!(format!("{saved:?}"), before);
        assert_ne!(format!("{saved:?}"), format!("{q:?}"));
    }

    /// `vfio_enable_vectors` at enable.
    fn fds(bits: &[bool]) -> HostOp {
        EnableVectors {
            with_fd: bits.to_vec(),
            closes_resize: false,
        }
    }

    /// `vfio_enable_vectors` re-enabling the index: a resize.
    fn rs(bits: &[bool]) -> HostOp {
        EnableVectors {
            with_fd: bits.to_vec(),
            closes_resize: true,
        }
    }

    /// Resizes among `ops`: each counted once, by its closing enable.
    fn resizes(ops: &[HostOp]) -> usize {
        ops.iter()
            .filter(|op| {
                matches!(
                    op,
                    EnableVectors {
                        closes_resize: true,
                        ..
                    }
                )
            })
            .count()
    }

    #[test]
    fn linux_enable_sets_up_no_vector() {
        let mut q = QemuMsix::new(8, true).unwrap();
        assert_eq!(q.linux_enable(), vec![IntxDisable, EnableNoVec]);
        assert_eq!(q.nr_vectors(), 0);
    }

    #[test]
    fn ascending_unmasks_resize_every_time() {
        let mut q = QemuMsix::new(4, true).unwrap();
        let mut all = q.linux_enable();
        for k in 0..4u32 {
            let ops = q.write_entry_mask(k, false).unwrap();
            let mut want = vec![true; k as usize + 1];
            want[k as usize] = true;
            assert_eq!(ops, vec![DisableIndex, rs(&want)], "unmask {k}");
            assert_eq!(q.nr_vectors(), k + 1);
            all.extend(ops);
        }
        assert_eq!(resizes(&all), 4);
    }

    #[test]
    fn descending_unmask_resizes_once() {
        let mut q = QemuMsix::new(4, true).unwrap();
        let mut all = q.linux_enable();
        let ops = q.write_entry_mask(3, false).unwrap();
        assert_eq!(ops, vec![DisableIndex, rs(&[false, false, false, true])]);
        all.extend(ops);
        for k in (0..3).rev() {
            let ops = q.write_entry_mask(k, false).unwrap();
            assert_eq!(ops, vec![SetSignalling { vector: k }]);
            all.extend(ops);
        }
        assert_eq!(resizes(&all), 1);
    }

    #[test]
    fn dynamic_host_never_disables() {
        let mut q = QemuMsix::new(4, false).unwrap();
        let mut all = q.linux_enable();
        for k in 0..4 {
            let ops = q.write_entry_mask(k, false).unwrap();
            // The host allocates each new vector on demand.
            assert_eq!(ops, vec![AddVector { vector: k }]);
            all.extend(ops);
        }
        assert_eq!(resizes(&all), 0);
    }

    #[test]
    fn mask_switches_trigger_and_never_shrinks() {
        let mut q = QemuMsix::new(4, true).unwrap();
        q.linux_enable();
        q.write_entry_mask(1, false).unwrap();
        assert_eq!(
            q.write_entry_mask(1, true).unwrap(),
            vec![SwitchToUserspace { vector: 1 }]
        );
        assert_eq!(q.nr_vectors(), 2);
        // Unmask again: below nr_vectors, a single-vector call.
        assert_eq!(
            q.write_entry_mask(1, false).unwrap(),
            vec![SetSignalling { vector: 1 }]
        );
    }

    #[test]
    fn disable_releases_and_resets_nr_vectors() {
        let mut q = QemuMsix::new(4, true).unwrap();
        q.linux_enable();
        q.write_entry_mask(0, false).unwrap();
        q.write_entry_mask(2, false).unwrap();
        let ops = q.linux_disable();
        // Guest masks (release of 0 and 2), then vfio_msix_disable.
        assert_eq!(
            ops,
            vec![
                SwitchToUserspace { vector: 0 },
                SwitchToUserspace { vector: 2 },
                SwitchToUserspace { vector: 0 },
                SwitchToUserspace { vector: 2 },
                DisableIndex,
                IntxEnable
            ]
        );
        assert_eq!(q.nr_vectors(), 0);
        assert_eq!(q.linux_enable(), vec![IntxDisable, EnableNoVec]);
    }

    #[test]
    fn entries_unmasked_before_enable_use_one_batch() {
        // Windows-like: entries unmasked while MSI-X is off, then Enable.
        let mut q = QemuMsix::new(4, true).unwrap();
        assert!(q.write_entry_mask(0, false).unwrap().is_empty());
        assert!(q.write_entry_mask(2, false).unwrap().is_empty());
        let ops = q.write_control(true, false);
        assert_eq!(ops, vec![IntxDisable, fds(&[true, false, true])]);
        assert_eq!(resizes(&ops), 0);
    }

    #[test]
    fn qemu_before_8_2_prerequests_vector_0() {
        let mut q = QemuMsix::new(4, true).unwrap().with_vector0_prerequest();
        assert_eq!(q.linux_enable(), vec![IntxDisable, fds(&[true])]);
        // Entry 0's unmask is a single-vector call, entry 1's the first resize.
        assert_eq!(
            q.write_entry_mask(0, false).unwrap(),
            vec![SetSignalling { vector: 0 }]
        );
        assert_eq!(
            q.write_entry_mask(1, false).unwrap(),
            vec![DisableIndex, rs(&[true, true])]
        );
        q.linux_disable();
        assert_eq!(q.linux_enable(), vec![IntxDisable, fds(&[true])]);
    }

    #[test]
    fn upfront_presizes_at_enable() {
        let mut q = QemuMsix::new(4, true).unwrap().with_upfront(4);
        assert_eq!(q.linux_enable(), vec![IntxDisable, fds(&[false; 4])]);
        let ops = q.write_entry_mask(3, false).unwrap();
        assert_eq!(ops, vec![SetSignalling { vector: 3 }]);
        assert_eq!(resizes(&ops), 0);
    }

    /// A guest trace: register writes as the guest performs them.
    enum G {
        /// Linux `msix_capability_init` (Enable|MaskAll, mask all, clear MaskAll).
        Enable,
        /// Vector Control write of entry k (true = masked).
        Mask(u32, bool),
        /// Linux `pci_msix_shutdown` (mask all, clear Enable).
        Disable,
    }

    fn replay(q: &mut QemuMsix, trace: &[G]) -> Vec<HostOp> {
        let mut ops = Vec::new();
        for g in trace {
            ops.extend(match g {
                G::Enable => q.linux_enable(),
                G::Mask(k, m) => q.write_entry_mask(*k, *m).unwrap(),
                G::Disable => q.linux_disable(),
            });
        }
        ops
    }

    /// NVMe's probe order (drivers/nvme/host/pci.c, facts L4): admin vector
    /// 0, free everything, re-enable, admin 0 again, then I/O queues 1..3.
    /// Expected host sequence, from hw/vfio/pci.c:
    /// - `vfio_msix_enable` → `vfio_disable_interrupts` (IntxDisable) and,
    ///   with `nr_vectors == 0`, `vfio_enable_msix_no_vec` (EnableNoVec);
    /// - unmask of entry nr ≥ nr_vectors → `vfio_msix_vector_do_use` with
    ///   `resizing`: `vfio_device_irq_disable` (DisableIndex) then
    ///   `vfio_enable_vectors(vdev, true)` over 0..nr (EnableVectors);
    /// - mask → `vfio_msix_vector_release` (SwitchToUserspace, virq ≥ 0);
    /// - MSI-X disable → `vfio_msix_disable`: release of every used vector,
    ///   `vfio_device_irq_disable` always (since the 2024 fix),
    ///   `vfio_msi_disable_common` (nr_vectors = 0), `vfio_intx_enable`.
    #[test]
    fn nvme_probe_trace_matches_qemu() {
        let mut q = QemuMsix::new(4, true).unwrap();
        let trace = [
            G::Enable,
            G::Mask(0, false), // admin queue request_irq
            G::Mask(0, true),  // pci_free_irq(adminq)
            G::Disable,        // pci_free_irq_vectors
            G::Enable,         // nvme_setup_irqs
            G::Mask(0, false), // queue_request_irq(adminq)
            G::Mask(1, false), // nvme_create_io_queues: 1, 2, 3
            G::Mask(2, false),
            G::Mask(3, false),
        ];
        let want = vec![
            IntxDisable,
            EnableNoVec,
            DisableIndex,
            rs(&[true]),
            // The guest's mask, then vfio_msix_disable releasing the still
            // `use`d vector again (release never clears `use`).
            SwitchToUserspace { vector: 0 },
            SwitchToUserspace { vector: 0 },
            DisableIndex,
            IntxEnable,
            IntxDisable,
            EnableNoVec,
            DisableIndex,
            rs(&[true]),
            DisableIndex,
            rs(&[true, true]),
            DisableIndex,
            rs(&[true, true, true]),
            DisableIndex,
            rs(&[true, true, true, true]),
        ];
        let got = replay(&mut q, &trace);
        assert_eq!(got, want);
        // One resize per I/O queue plus two for the admin vector.
        assert_eq!(resizes(&got), 5);
    }

    /// A managed queue's vector unmasked at CPU hotplug (kernel/irq/chip.c
    /// `irq_startup` of a managed irq once a CPU of its mask is online): a
    /// new highest entry, so `vfio_msix_vector_do_use` resizes and
    /// `vfio_enable_vectors` gives every used vector its eventfd again;
    /// entries never used get fd −1.
    #[test]
    fn hotplug_unmask_of_a_higher_entry_resizes_with_sparse_fds() {
        let mut q = QemuMsix::new(8, true).unwrap();
        let ops = replay(
            &mut q,
            &[
                G::Enable,
                G::Mask(0, false),
                G::Mask(1, false),
                G::Mask(6, false),
            ],
        );
        assert_eq!(
            ops[ops.len() - 2..],
            [
                DisableIndex,
                rs(&[true, true, false, false, false, false, true])
            ]
        );
        // Re-masking and unmasking an entry below nr_vectors never resizes:
        // `vfio_msix_vector_release`, then `set_irq_signalling`.
        assert_eq!(
            replay(&mut q, &[G::Mask(1, true), G::Mask(1, false)]),
            vec![SwitchToUserspace { vector: 1 }, SetSignalling { vector: 1 }]
        );
    }

    #[test]
    fn bad_sizes_and_entries_are_errors() {
        assert!(QemuMsix::new(0, true).is_err());
        assert!(QemuMsix::new(2049, true).is_err());
        let mut q = QemuMsix::new(4, true).unwrap();
        assert!(q.write_entry_mask(4, false).is_err());
    }
}
