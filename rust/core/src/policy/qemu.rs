//! QEMU's vfio-pci behaviour ([`QemuMsix`], hw/vfio/pci.c) as a policy, over a
//! host that reports `VFIO_IRQ_INFO_NORESIZE` (noresize, upfront) or supports
//! dynamic MSI-X (dynamic, ims in a trappable store).

use super::{HostOps, Policy};
use crate::error::{Error, Result};
use crate::versions::Platform;
use crate::vfio::QemuMsix;

/// QEMU's MSI-X emulation for every device of a run.
pub(crate) struct QemuPolicy {
    devs: Vec<QemuMsix>,
    /// The device state before the last action, for [`Policy::rollback`].
    undo: Option<(u32, QemuMsix)>,
    /// Whether actions keep `undo`: only the `fail_request` failure mode
    /// rolls an action back, and the copy was two of a resize's memcpys.
    keeps_undo: bool,
    label: String,
}

impl QemuPolicy {
    /// One QEMU device model per table size. `dynamic`: the host supports
    /// dynamic MSI-X; `upfront`: pre-size `nr_vectors` at every enable
    /// (count 0 = the whole table) and whether to request all of them;
    /// `platform`: which QEMU; `keeps_undo`: whether an action can be
    /// rolled back (the run's failure mode is `fail_request`).
    pub fn new(
        entries: &[u32],
        dynamic: bool,
        upfront: Option<(u32, bool)>,
        platform: Platform,
        keeps_undo: bool,
        label: &str,
    ) -> Result<Self> {
        // QEMU before 8.2 resizes whatever the host reports.
        let noresize = !dynamic || !platform.qemu_honours_noresize();
        let devs = entries
            .iter()
            .map(|&n| {
                let mut q = QemuMsix::new(n, noresize)?;
                if platform.qemu_prerequests_vector0() {
                    q = q.with_vector0_prerequest();
                }
                Ok(match upfront {
                    Some((count, all)) => {
                        let q = q.with_upfront(if count == 0 { n } else { count });
                        if all {
                            q.with_request_all()
                        } else {
                            q
                        }
                    }
                    None => q,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            devs,
            undo: None,
            keeps_undo,
            label: label.to_string(),
        })
    }

    /// Apply `f` to device `dev`'s QEMU state, keeping the state before it.
    fn act<T>(&mut self, dev: u32, f: impl FnOnce(&mut QemuMsix) -> Result<T>) -> Result<T> {
        let q = self
            .devs
            .get_mut(dev as usize)
            .ok_or_else(|| Error::InvalidArgument(format!("no device {dev}")))?;
        if self.keeps_undo {
            // The undo keeps its allocations from one action to the next.
            match &mut self.undo {
                Some((d, saved)) => {
                    *d = dev;
                    saved.clone_from(q);
                }
                None => self.undo = Some((dev, q.clone())),
            }
        }
        f(q)
    }
}

impl Policy for QemuPolicy {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn negotiate(&mut self, _dev: u32, _minvec: u32, _maxvec: u32) -> Result<super::Negotiation> {
        Ok(super::Negotiation::Local)
    }

    fn enable(&mut self, dev: u32, ops: &mut HostOps) -> Result<()> {
        self.act(dev, |q| {
            q.linux_enable_into(ops);
            Ok(())
        })
    }

    fn unmask(&mut self, dev: u32, k: u32, ops: &mut HostOps) -> Result<()> {
        self.act(dev, |q| q.write_entry_mask_into(k, false, ops))
    }

    fn mask(&mut self, dev: u32, k: u32, ops: &mut HostOps) -> Result<()> {
        self.act(dev, |q| q.write_entry_mask_into(k, true, ops))
    }

    fn disable(&mut self, dev: u32, ops: &mut HostOps) -> Result<()> {
        self.act(dev, |q| {
            q.linux_disable_into(ops);
            Ok(())
        })
    }

    fn rollback(&mut self, dev: u32) -> Result<()> {
        match self.undo.take() {
            Some((d, state)) if d == dev => {
                if let Some(q) = self.devs.get_mut(dev as usize) {
                    *q = state;
                }
                Ok(())
            }
            _ => Err(Error::Accounting(format!(
                "rollback of device {dev} without an action to undo"
            ))),
        }
    }
}
