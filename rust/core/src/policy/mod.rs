//! Hypervisor policies: how guest MSI-X actions become host operations.
//!
//! A policy only *decides*: each guest action on a device becomes a list of
//! [`HostOp`](crate::host::HostOp)s (effects as data), written into a [`HostOps`] list the engine
//! reuses. [`step`] runs every policy's lists — the
//! built-ins here and the Python ones of the binding alike — through one path
//! that executes them on the host, recognises a host failure by its type and
//! applies the run's failure mode. Policies see control-plane events only.

mod hypercall;
mod ops;
mod qemu;
mod step;

pub use ops::HostOps;

pub(crate) use hypercall::HypercallPolicy;
pub(crate) use qemu::QemuPolicy;
pub(crate) use step::{negotiate, step, Ctx, GuestAction, Negotiated, StepResult};

use crate::config::{FailureMode, ImsStore, PolicyConfig, PolicyKind};
use crate::error::Result;
use crate::versions::Platform;

/// A policy's answer to `pci_enable_msix_range(minvec, maxvec)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Negotiation {
    /// No hypercall: the driver takes maxvec from the emulated capability.
    Local,
    /// An MSIX_ENABLE hypercall: the host grants the most vectors that fit
    /// in `minvec..=grant` (capped at maxvec) and sets them up; 0, or less
    /// than minvec, refuses.
    Hypercall {
        /// The most vectors the host will grant.
        grant: u32,
        /// Request every granted vector at once (`request_irq` at grant);
        /// otherwise each is requested at the guest's unmask.
        request: bool,
    },
}

/// A hypervisor policy. Each method handles one guest action on device
/// `dev` and appends the host operations it causes, in order, to `ops`
/// (empty when called).
pub trait Policy: Send {
    /// Short name for reports.
    fn name(&self) -> String;
    /// `pci_enable_msix_range(minvec, maxvec)`.
    fn negotiate(&mut self, dev: u32, minvec: u32, maxvec: u32) -> Result<Negotiation>;
    /// The host's answer to a [`Negotiation::Hypercall`]: the vectors granted
    /// and set up, or `None` when it refused.
    fn negotiated(&mut self, _dev: u32, _granted: Option<u32>) -> Result<()> {
        Ok(())
    }
    /// The guest enables MSI-X.
    fn enable(&mut self, dev: u32, ops: &mut HostOps) -> Result<()>;
    /// The guest unmasks entry `k` (request_irq, enable_irq, CPU online).
    fn unmask(&mut self, dev: u32, k: u32, ops: &mut HostOps) -> Result<()>;
    /// The guest masks entry `k`.
    fn mask(&mut self, dev: u32, k: u32, ops: &mut HostOps) -> Result<()>;
    /// The guest disables MSI-X.
    fn disable(&mut self, dev: u32, ops: &mut HostOps) -> Result<()>;
    /// The host failed the operations of the last action on `dev` and the
    /// `fail_request` mode refused the guest's write: forget what that
    /// action changed.
    fn rollback(&mut self, _dev: u32) -> Result<()> {
        Ok(())
    }
}

/// Build the built-in policy a configuration names, for devices with these
/// table sizes, on `platform`'s QEMU.
pub fn builtin(cfg: &PolicyConfig, entries: &[u32], platform: Platform) -> Result<Box<dyn Policy>> {
    let name = cfg.kind.name();
    let undo = cfg.on_failure == FailureMode::FailRequest;
    let qemu = |dynamic, upfront| QemuPolicy::new(entries, dynamic, upfront, platform, undo, name);
    let hypercall = |trap| HypercallPolicy::new(entries, cfg, trap, platform, name);
    Ok(match cfg.kind {
        PolicyKind::Noresize => Box::new(qemu(false, None)?),
        PolicyKind::Upfront => Box::new(qemu(
            false,
            Some((cfg.upfront_count, cfg.upfront_request_all)),
        )?),
        PolicyKind::Dynamic => Box::new(qemu(true, None)?),
        PolicyKind::Hypercall => Box::new(hypercall(true)?),
        PolicyKind::Ims => match cfg.ims_store {
            // Trappable message store: per-vector setup like dynamic MSI-X.
            ImsStore::Device => Box::new(qemu(true, None)?),
            // Guest RAM cannot be trapped: only the hypercall path works.
            ImsStore::GuestRam => Box::new(hypercall(false)?),
        },
    })
}
