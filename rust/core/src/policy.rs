//! Hypervisor policies: how guest MSI-X actions become host operations.
//! Built-ins run in Rust; a custom policy implements [`Policy`] (the Python
//! bridge does so for Python classes). Policies see control-plane events only.

use crate::config::{
    DeviceConfig, FailureMode, Grant, ImsStore, PolicyConfig, PolicyKind, TimingConfig,
};
use crate::error::{Error, Result};
use crate::host::{Fx, Host};
use crate::vfio::{HostOp, QemuMsix};

/// What a guest step produced, beyond its effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    /// Done as asked.
    Ok,
    /// The guest's request failed visibly and was handled by its driver: the
    /// vector is not used.
    Refused,
    /// The guest believes it succeeded but these entries have no host setup.
    Dead(Vec<u32>),
    /// Every entry the guest uses is dead (the seed's #b: QEMU logs and
    /// reports success).
    DeadAll,
    /// The guest is killed (the seed's #a).
    Kill,
}

/// Answer to `pci_enable_msix_range(minvec, maxvec)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// No hypercall: the driver takes maxvec from the emulated capability.
    Local(u32),
    /// The host granted this many vectors and set them up.
    Granted(u32),
    /// The host refused; the driver fails its probe or falls back.
    Refused,
}

/// Whether an error from a host operation is a host-side failure that QEMU
/// only logs (vector exhaustion, or the kernel's -EINVAL for a vector the
/// host never allocated), as opposed to a bug in the model.
pub fn is_host_failure(e: &Error) -> bool {
    match e {
        Error::NoSpace(_) => true,
        Error::InvalidOperation { sites, .. } => {
            sites.iter().any(|s| s == "set_signalling_unallocated")
        }
        _ => false,
    }
}

/// The host as a policy sees it during one guest step: operations advance a
/// clock from the trap time and emit timed effects on the device's table.
pub struct Ctx<'a> {
    /// The host.
    pub host: &'a mut Host,
    /// Device the step belongs to.
    pub dev: u32,
    /// The device's MSI-X table size: no operation may name a vector past it.
    pub entries: u32,
    /// Host time: starts at the trap, advanced by each operation.
    pub clock: u64,
    /// Operation durations.
    pub timing: &'a TimingConfig,
    /// Effects to apply to the device, in time order.
    pub fx: &'a mut Vec<(u64, Fx)>,
}

impl Ctx<'_> {
    /// Execute one VFIO operation on the host. `dynamic` says whether the
    /// host can add vectors without disabling the index; `closes_resize`
    /// marks an enable that ends a disable/re-enable.
    pub fn exec(&mut self, op: &HostOp, dynamic: bool, closes_resize: bool) -> Result<()> {
        let (dev, t) = (self.dev, self.timing);
        let past = match op {
            HostOp::EnableVectors { with_fd } => with_fd.len() > self.entries as usize,
            HostOp::SetSignalling { vector } | HostOp::SwitchToUserspace { vector } => {
                *vector >= self.entries
            }
            _ => false,
        };
        if past {
            return Err(Error::InvalidArgument(format!(
                "device {dev}: {op:?} names a vector past the table of {} entries",
                self.entries
            )));
        }
        match op {
            HostOp::IntxDisable | HostOp::IntxEnable | HostOp::SwitchToUserspace { .. } => Ok(()),
            HostOp::EnableNoVec => {
                self.host
                    .enable_vectors(dev, &[false], false, &mut self.clock, t, self.fx)
            }
            HostOp::DisableIndex => self.host.disable_index(dev, &mut self.clock, t, self.fx),
            HostOp::EnableVectors { with_fd } => {
                self.host
                    .enable_vectors(dev, with_fd, closes_resize, &mut self.clock, t, self.fx)
            }
            HostOp::SetSignalling { vector } => {
                self.host
                    .set_signalling(dev, *vector, dynamic, &mut self.clock, t, self.fx)
            }
        }
    }

    /// Execute operations in order; stops at the first error.
    pub fn exec_all(&mut self, ops: &[HostOp], dynamic: bool) -> Result<()> {
        let mut after_disable = false;
        for op in ops {
            let closes = after_disable && matches!(op, HostOp::EnableVectors { .. });
            self.exec(op, dynamic, closes)?;
            after_disable = matches!(op, HostOp::DisableIndex);
        }
        Ok(())
    }
}

/// A hypervisor policy. Each method handles one guest action on `ctx.dev`.
pub trait Policy: Send + Sync {
    /// Short name for reports.
    fn name(&self) -> String;
    /// `pci_enable_msix_range(minvec, maxvec)`.
    fn negotiate(&mut self, ctx: &mut Ctx<'_>, minvec: u32, maxvec: u32) -> Result<Negotiated>;
    /// Guest enables MSI-X.
    fn enable(&mut self, ctx: &mut Ctx<'_>) -> Result<StepResult>;
    /// Guest unmasks entry `k` (request_irq, enable_irq, CPU online).
    fn unmask(&mut self, ctx: &mut Ctx<'_>, k: u32) -> Result<StepResult>;
    /// Guest masks entry `k`.
    fn mask(&mut self, ctx: &mut Ctx<'_>, k: u32) -> Result<StepResult>;
    /// Guest disables MSI-X.
    fn disable(&mut self, ctx: &mut Ctx<'_>) -> Result<StepResult>;
}

/// QEMU's vfio-pci behaviour over a host that does (`dynamic`) or does not
/// (NORESIZE) support dynamic MSI-X, optionally pre-sizing at enable.
pub struct QemuPolicy {
    devs: Vec<QemuMsix>,
    dynamic: bool,
    on_failure: FailureMode,
    label: String,
}

impl QemuPolicy {
    /// One QEMU device model per configured device.
    pub fn new(
        devices: &[DeviceConfig],
        dynamic: bool,
        upfront: Option<u32>,
        on_failure: FailureMode,
        label: &str,
    ) -> Result<Self> {
        let devs = devices
            .iter()
            .map(|d| {
                let q = QemuMsix::new(d.entries, !dynamic)?;
                Ok(match upfront {
                    Some(0) => q.with_upfront(d.entries),
                    Some(n) => q.with_upfront(n),
                    None => q,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            devs,
            dynamic,
            on_failure,
            label: label.to_string(),
        })
    }

    fn dev(&mut self, dev: u32) -> Result<&mut QemuMsix> {
        self.devs
            .get_mut(dev as usize)
            .ok_or_else(|| Error::InvalidArgument(format!("no device {dev}")))
    }

    /// Run `ops` produced from state `before`; on a host allocation failure
    /// apply the failure mode.
    fn settle(
        &mut self,
        ctx: &mut Ctx<'_>,
        before: QemuMsix,
        ops: &[HostOp],
        k: Option<u32>,
    ) -> Result<StepResult> {
        match ctx.exec_all(ops, self.dynamic) {
            Ok(()) => Ok(StepResult::Ok),
            Err(e) if is_host_failure(&e) => {
                let index_down = !ctx.host.index_enabled(ctx.dev);
                match self.on_failure {
                    FailureMode::Kill => Ok(StepResult::Kill),
                    FailureMode::Qemu => Ok(match (index_down, k) {
                        (false, Some(k)) => StepResult::Dead(vec![k]),
                        (false, None) => StepResult::Ok,
                        (true, _) => StepResult::DeadAll,
                    }),
                    FailureMode::FailRequest => {
                        // The guest's write fails: QEMU state as before it,
                        // the host restored to the vectors it had.
                        let restore = if index_down && before.enabled() {
                            if before.nr_vectors() > 0 {
                                Some(HostOp::EnableVectors {
                                    with_fd: (0..before.nr_vectors())
                                        .map(|i| before.used(i))
                                        .collect(),
                                })
                            } else {
                                Some(HostOp::EnableNoVec)
                            }
                        } else {
                            None
                        };
                        *self.dev(ctx.dev)? = before;
                        if let Some(op) = restore {
                            match ctx.exec(&op, self.dynamic, false) {
                                Ok(()) => {}
                                Err(e) if is_host_failure(&e) => return Ok(StepResult::DeadAll),
                                Err(e) => return Err(e),
                            }
                        }
                        Ok(StepResult::Refused)
                    }
                }
            }
            Err(e) => Err(e),
        }
    }
}

impl Policy for QemuPolicy {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn negotiate(&mut self, _ctx: &mut Ctx<'_>, _minvec: u32, maxvec: u32) -> Result<Negotiated> {
        Ok(Negotiated::Local(maxvec))
    }

    fn enable(&mut self, ctx: &mut Ctx<'_>) -> Result<StepResult> {
        let before = self.dev(ctx.dev)?.clone();
        let ops = self.dev(ctx.dev)?.linux_enable();
        self.settle(ctx, before, &ops, None)
    }

    fn unmask(&mut self, ctx: &mut Ctx<'_>, k: u32) -> Result<StepResult> {
        let before = self.dev(ctx.dev)?.clone();
        let ops = self.dev(ctx.dev)?.write_entry_mask(k, false)?;
        self.settle(ctx, before, &ops, Some(k))
    }

    fn mask(&mut self, ctx: &mut Ctx<'_>, k: u32) -> Result<StepResult> {
        let before = self.dev(ctx.dev)?.clone();
        let ops = self.dev(ctx.dev)?.write_entry_mask(k, true)?;
        self.settle(ctx, before, &ops, None)
    }

    fn disable(&mut self, ctx: &mut Ctx<'_>) -> Result<StepResult> {
        let before = self.dev(ctx.dev)?.clone();
        let ops = self.dev(ctx.dev)?.linux_disable();
        self.settle(ctx, before, &ops, None)
    }
}

/// The seed's MSIX_ENABLE / MSIX_DISABLE hypercall, negotiated at
/// `pci_enable_msix_range`. Guests that never negotiate fall back to QEMU's
/// NORESIZE behaviour (the unaware-guest case). IMS with its message store
/// in guest RAM uses this too, with no trap fallback.
pub struct HypercallPolicy {
    granted: Vec<Option<u32>>,
    /// The last MSIX_ENABLE was refused: the driver runs without MSI-X
    /// until it disables and negotiates again.
    refused: Vec<bool>,
    grant: Grant,
    grant_n: u32,
    fallback: QemuPolicy,
    trap_fallback: bool,
    /// Unmasks the host could not see (IMS in guest RAM without a hypercall).
    pub untrapped: u64,
    label: String,
}

impl HypercallPolicy {
    /// A hypercall host for `devices`.
    pub fn new(
        devices: &[DeviceConfig],
        cfg: &PolicyConfig,
        trap_fallback: bool,
        label: &str,
    ) -> Result<Self> {
        Ok(Self {
            granted: vec![None; devices.len()],
            refused: vec![false; devices.len()],
            grant: cfg.grant,
            grant_n: cfg.grant_n,
            fallback: QemuPolicy::new(devices, false, None, cfg.on_failure, label).map(
                |mut q| {
                    q.dynamic = false;
                    q
                },
            )?,
            trap_fallback,
            untrapped: 0,
            label: label.to_string(),
        })
    }

    fn try_grant(ctx: &mut Ctx<'_>, n: u32) -> Result<bool> {
        match ctx.exec(
            &HostOp::EnableVectors {
                with_fd: vec![true; n as usize],
            },
            false,
            false,
        ) {
            Ok(()) => Ok(true),
            Err(Error::NoSpace(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Policy for HypercallPolicy {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn negotiate(&mut self, ctx: &mut Ctx<'_>, minvec: u32, maxvec: u32) -> Result<Negotiated> {
        let r = self.negotiate_inner(ctx, minvec, maxvec)?;
        if let Some(x) = self.refused.get_mut(ctx.dev as usize) {
            *x = r == Negotiated::Refused;
        }
        Ok(r)
    }

    fn enable(&mut self, ctx: &mut Ctx<'_>) -> Result<StepResult> {
        if self.is_negotiated(ctx.dev) || !self.trap_fallback {
            return Ok(StepResult::Ok);
        }
        self.fallback.enable(ctx)
    }

    fn unmask(&mut self, ctx: &mut Ctx<'_>, k: u32) -> Result<StepResult> {
        match self.granted.get(ctx.dev as usize).copied().flatten() {
            Some(n) if k < n => Ok(StepResult::Ok),
            Some(_) => Ok(StepResult::Refused),
            None if self.is_refused(ctx.dev) => Ok(StepResult::Refused),
            None if self.trap_fallback => self.fallback.unmask(ctx, k),
            None => {
                self.untrapped += 1;
                Ok(StepResult::Dead(vec![k]))
            }
        }
    }

    fn mask(&mut self, ctx: &mut Ctx<'_>, k: u32) -> Result<StepResult> {
        if self.is_negotiated(ctx.dev) || !self.trap_fallback {
            return Ok(StepResult::Ok);
        }
        self.fallback.mask(ctx, k)
    }

    fn disable(&mut self, ctx: &mut Ctx<'_>) -> Result<StepResult> {
        let was_refused = self.is_refused(ctx.dev);
        if let Some(x) = self.refused.get_mut(ctx.dev as usize) {
            *x = false;
        }
        if let Some(slot) = self.granted.get_mut(ctx.dev as usize) {
            if slot.take().is_some() {
                ctx.clock += ctx.timing.t_hypercall_ns;
                ctx.exec(&HostOp::DisableIndex, false, false)?;
                return Ok(StepResult::Ok);
            }
        }
        if self.trap_fallback && !was_refused {
            self.fallback.disable(ctx)
        } else {
            Ok(StepResult::Ok)
        }
    }
}

impl HypercallPolicy {
    /// Negotiated (or refused): the host knows the driver, no trapping.
    fn is_negotiated(&self, dev: u32) -> bool {
        self.granted.get(dev as usize).copied().flatten().is_some() || self.is_refused(dev)
    }

    fn is_refused(&self, dev: u32) -> bool {
        self.refused.get(dev as usize).copied().unwrap_or(false)
    }

    fn negotiate_inner(
        &mut self,
        ctx: &mut Ctx<'_>,
        minvec: u32,
        maxvec: u32,
    ) -> Result<Negotiated> {
        ctx.clock += ctx.timing.t_hypercall_ns;
        let want = match self.grant {
            Grant::All => maxvec,
            Grant::N => maxvec.min(self.grant_n),
            Grant::Refuse => return Ok(Negotiated::Refused),
        };
        if want < minvec {
            return Ok(Negotiated::Refused);
        }
        if ctx.host.index_enabled(ctx.dev) {
            ctx.exec(&HostOp::DisableIndex, false, false)?;
        }
        // Grant the most that fits in [minvec, want]: try want, then search.
        let granted = if Self::try_grant(ctx, want)? {
            Some(want)
        } else {
            let (mut lo, mut hi, mut best) = (minvec, want - 1, None);
            while lo <= hi {
                let mid = lo + (hi - lo) / 2;
                if Self::try_grant(ctx, mid)? {
                    best = Some(mid);
                    ctx.exec(&HostOp::DisableIndex, false, false)?;
                    lo = mid + 1;
                } else if mid == 0 {
                    break;
                } else {
                    hi = mid - 1;
                }
            }
            if let Some(n) = best {
                if !Self::try_grant(ctx, n)? {
                    return Err(Error::Accounting(format!(
                        "grant of {n} vectors failed on retry"
                    )));
                }
            }
            best
        };
        let slot = self
            .granted
            .get_mut(ctx.dev as usize)
            .ok_or_else(|| Error::InvalidArgument(format!("no device {}", ctx.dev)))?;
        *slot = granted;
        Ok(granted.map_or(Negotiated::Refused, Negotiated::Granted))
    }
}

/// Build the built-in policy a configuration names.
pub fn builtin(cfg: &PolicyConfig, devices: &[DeviceConfig]) -> Result<Box<dyn Policy>> {
    let name = cfg.kind.name();
    Ok(match cfg.kind {
        PolicyKind::Noresize => {
            Box::new(QemuPolicy::new(devices, false, None, cfg.on_failure, name)?)
        }
        PolicyKind::Upfront => Box::new(QemuPolicy::new(
            devices,
            false,
            Some(cfg.upfront_count),
            cfg.on_failure,
            name,
        )?),
        PolicyKind::Dynamic => {
            Box::new(QemuPolicy::new(devices, true, None, cfg.on_failure, name)?)
        }
        PolicyKind::Hypercall => Box::new(HypercallPolicy::new(devices, cfg, true, name)?),
        PolicyKind::Ims => match cfg.ims_store {
            // Trappable message store: per-vector setup like dynamic MSI-X.
            ImsStore::Device => {
                Box::new(QemuPolicy::new(devices, true, None, cfg.on_failure, name)?)
            }
            // Guest RAM cannot be trapped: only the hypercall path works.
            ImsStore::GuestRam => Box::new(HypercallPolicy::new(devices, cfg, false, name)?),
        },
    })
}
