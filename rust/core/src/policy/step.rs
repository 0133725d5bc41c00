//! The one path from a policy's decision to the host: run the host
//! operations a guest action caused, and when the host refuses one, apply the
//! run's failure mode — the seed thread's (a) kill the guest, (b) QEMU's
//! "log and carry on", (c) fail the guest's request and restore the host.

use super::{Negotiation, Policy};
use crate::config::{FailureMode, TimingConfig};
use crate::error::{Error, Result};
use crate::host::{Effects, Host, HostError, HostOp};

/// A guest action a policy answers with host operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestAction {
    /// The MSI-X enable sequence.
    Enable,
    /// First unmask of an entry (request_irq, enable_irq, CPU online).
    Unmask(u32),
    /// Mask an entry.
    Mask(u32),
    /// Disable MSI-X.
    Disable,
}

/// What a guest action came to, beyond its effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    /// Done as asked.
    Ok,
    /// The guest's request failed visibly and was handled by its driver: the
    /// vector is not used.
    Refused,
    /// The guest believes it succeeded but these entries have no host setup.
    Dead(Vec<u32>),
    /// Every entry the guest uses is dead (the seed's (b): QEMU logs and
    /// reports success).
    DeadAll,
    /// The guest is killed (the seed's (a)).
    Kill,
}

/// Answer to `pci_enable_msix_range(minvec, maxvec)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// No hypercall: the driver takes this many from the emulated capability.
    Local(u32),
    /// The host granted this many vectors and set them up.
    Granted(u32),
    /// The host refused; the driver fails its probe or falls back.
    Refused,
}

/// The host as one guest action sees it: operations advance a clock from the
/// trap time and emit timed effects on the device's table.
pub struct Ctx<'a> {
    /// The host.
    pub host: &'a mut Host,
    /// Device the action belongs to.
    pub dev: u32,
    /// The device's MSI-X table size: no operation may name a vector past it.
    pub entries: u32,
    /// Host time: starts at the trap, advanced by each operation.
    pub clock: u64,
    /// Operation durations.
    pub timing: &'a TimingConfig,
    /// Effects on the device's table, in the order they were produced.
    pub fx: &'a mut Effects,
}

impl Ctx<'_> {
    /// Run one operation on the host.
    fn exec(&mut self, op: &HostOp) -> std::result::Result<(), HostError> {
        if op.vector().is_some_and(|v| v >= self.entries) {
            return Err(HostError::Model(Error::InvalidArgument(format!(
                "device {}: {op:?} names a vector past the table of {} entries",
                self.dev, self.entries
            ))));
        }
        self.host
            .exec(self.dev, op, &mut self.clock, self.timing, self.fx)
    }

    /// Run an operation that no failure mode covers (set-up the policy
    /// cannot refuse): any error is passed on.
    fn exec_or_err(&mut self, op: &HostOp) -> Result<()> {
        self.exec(op).map_err(Error::from)
    }
}

/// Ask `policy` what `action` on `ctx.dev` does, run its host operations in
/// order and apply `on_failure` to the first one the host refuses.
pub fn step(
    ctx: &mut Ctx<'_>,
    policy: &mut dyn Policy,
    on_failure: FailureMode,
    action: GuestAction,
) -> Result<StepResult> {
    let dev = ctx.dev;
    let (ops, entry) = match action {
        GuestAction::Enable => (policy.enable(dev)?, None),
        GuestAction::Unmask(k) => (policy.unmask(dev, k)?, Some(k)),
        GuestAction::Mask(k) => (policy.mask(dev, k)?, None),
        GuestAction::Disable => (policy.disable(dev)?, None),
    };
    if ops.is_empty() {
        return Ok(StepResult::Ok);
    }
    let before = ctx.host.vector_set(dev);
    let mut dead = Vec::new();
    for op in &ops {
        match ctx.exec(op) {
            Ok(()) => {}
            Err(HostError::Failure(_)) => return failed(ctx, policy, on_failure, before, entry),
            Err(HostError::Model(e)) => return Err(e),
        }
        if let HostOp::Untrapped { vector } = op {
            dead.push(*vector);
        }
    }
    Ok(if dead.is_empty() {
        StepResult::Ok
    } else {
        StepResult::Dead(dead)
    })
}

/// The failure mode applied to a refused host operation. `before` is the
/// device's host vector set before the action (`None`: index disabled).
fn failed(
    ctx: &mut Ctx<'_>,
    policy: &mut dyn Policy,
    on_failure: FailureMode,
    before: Option<Vec<bool>>,
    entry: Option<u32>,
) -> Result<StepResult> {
    let index_down = !ctx.host.index_enabled(ctx.dev);
    Ok(match on_failure {
        FailureMode::Kill => StepResult::Kill,
        FailureMode::Qemu => match (index_down, entry) {
            (false, Some(k)) => StepResult::Dead(vec![k]),
            (false, None) => StepResult::Ok,
            (true, _) => StepResult::DeadAll,
        },
        FailureMode::FailRequest => {
            // The guest's write fails: the policy forgets the action, and a
            // host left with its index down gets the vectors it had back.
            policy.rollback(ctx.dev)?;
            if let (true, Some(with_fd)) = (index_down, before) {
                let restore = HostOp::EnableVectors {
                    with_fd,
                    closes_resize: false,
                };
                match ctx.exec(&restore) {
                    Ok(()) => {}
                    Err(HostError::Failure(_)) => return Ok(StepResult::DeadAll),
                    Err(HostError::Model(e)) => return Err(e),
                }
            }
            StepResult::Refused
        }
    })
}

/// `pci_enable_msix_range(minvec, maxvec)` on `ctx.dev`: local, or an
/// MSIX_ENABLE hypercall whose grant the host sets up at once.
pub fn negotiate(
    ctx: &mut Ctx<'_>,
    policy: &mut dyn Policy,
    minvec: u32,
    maxvec: u32,
) -> Result<Negotiated> {
    let grant = match policy.negotiate(ctx.dev, minvec, maxvec)? {
        Negotiation::Local => return Ok(Negotiated::Local(maxvec)),
        Negotiation::Hypercall { grant } => grant.min(maxvec),
    };
    ctx.exec_or_err(&HostOp::Hypercall)?;
    let granted = if grant == 0 || grant < minvec {
        None
    } else {
        if ctx.host.index_enabled(ctx.dev) {
            ctx.exec_or_err(&HostOp::DisableIndex)?;
        }
        grant_most(ctx, minvec, grant)?
    };
    policy.negotiated(ctx.dev, granted)?;
    Ok(granted.map_or(Negotiated::Refused, Negotiated::Granted))
}

/// Set up the most vectors that fit in `minvec..=want`: `want` first, then a
/// binary search; the index is left enabled with the grant, or disabled.
fn grant_most(ctx: &mut Ctx<'_>, minvec: u32, want: u32) -> Result<Option<u32>> {
    if try_grant(ctx, want)? {
        return Ok(Some(want));
    }
    let (mut lo, mut hi, mut best) = (minvec, want - 1, None);
    while lo <= hi {
        let mid = lo + (hi - lo) / 2;
        if try_grant(ctx, mid)? {
            best = Some(mid);
            ctx.exec_or_err(&HostOp::DisableIndex)?;
            lo = mid + 1;
        } else if mid == 0 {
            break;
        } else {
            hi = mid - 1;
        }
    }
    if let Some(n) = best {
        if !try_grant(ctx, n)? {
            return Err(Error::Accounting(format!(
                "grant of {n} vectors failed on retry"
            )));
        }
    }
    Ok(best)
}

fn try_grant(ctx: &mut Ctx<'_>, n: u32) -> Result<bool> {
    let op = HostOp::EnableVectors {
        with_fd: vec![true; n as usize],
        closes_resize: false,
    };
    match ctx.exec(&op) {
        Ok(()) => Ok(true),
        Err(HostError::Failure(_)) => Ok(false),
        Err(HostError::Model(e)) => Err(e),
    }
}
