//! The one path from a policy's decision to the host: run the host
//! operations a guest action caused, and when the host refuses one, apply the
//! run's failure mode — the seed thread's (a) kill the guest, (b) QEMU's
//! "log and carry on", (c) fail the guest's request and restore the host.

use super::{HostOps, Negotiation, Policy};
use crate::config::{FailureMode, TimingConfig};
use crate::engine::Trace;
use crate::error::{Error, Result};
use crate::host::{Effects, FxSink, Host, HostError, HostOp};

/// A guest action a policy answers with host operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GuestAction {
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
pub(crate) enum StepResult {
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
pub(crate) enum Negotiated {
    /// No hypercall: the driver takes this many from the emulated capability.
    Local(u32),
    /// The host granted this many vectors and set them up.
    Granted(u32),
    /// The host refused; the driver fails its probe or falls back.
    Refused,
}

/// The host as one guest action sees it: operations advance a clock from the
/// trap time and emit timed effects on the device's table, into `S` (a
/// plain [`Effects`] list, or the engine's own event list).
pub(crate) struct Ctx<'a, S: FxSink = Effects> {
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
    pub fx: &'a mut S,
    /// The run's trace, if one is recorded: it sees each hypercall.
    pub trace: Option<&'a mut Trace>,
}

impl<S: FxSink> Ctx<'_, S> {
    /// Run one operation on the host.
    fn exec(&mut self, op: &HostOp) -> std::result::Result<(), HostError> {
        if op.vector().is_some_and(|v| v >= self.entries) {
            return Err(HostError::Model(Error::InvalidArgument(format!(
                "device {}: {op:?} names a vector past the table of {} entries",
                self.dev, self.entries
            ))));
        }
        let start = self.clock;
        let r = self
            .host
            .exec(self.dev, op, &mut self.clock, self.timing, self.fx);
        if let (HostOp::Hypercall, Some(t)) = (op, self.trace.as_deref_mut()) {
            t.hypercall(self.dev, start, self.clock);
        }
        r
    }

    /// Run an operation that no failure mode covers (set-up the policy
    /// cannot refuse): any error is passed on.
    fn exec_or_err(&mut self, op: &HostOp) -> Result<()> {
        self.exec(op).map_err(Error::from)
    }
}

/// Ask `policy` what `action` on `ctx.dev` does (its answer written into
/// `ops`, a list reused from one action to the next), run its host
/// operations in order and apply `on_failure` to the first one the host
/// refuses.
pub(crate) fn step<S: FxSink>(
    ctx: &mut Ctx<'_, S>,
    policy: &mut dyn Policy,
    ops: &mut HostOps,
    on_failure: FailureMode,
    action: GuestAction,
) -> Result<StepResult> {
    let dev = ctx.dev;
    ops.clear();
    let entry = match action {
        GuestAction::Enable => policy.enable(dev, ops).map(|()| None),
        GuestAction::Unmask(k) => policy.unmask(dev, k, ops).map(|()| Some(k)),
        GuestAction::Mask(k) => policy.mask(dev, k, ops).map(|()| None),
        GuestAction::Disable => policy.disable(dev, ops).map(|()| None),
    }?;
    if ops.is_empty() {
        return Ok(StepResult::Ok);
    }
    // Only fail_request restores the host: snapshot its vectors for that mode alone.
    let before = match on_failure {
        FailureMode::FailRequest => ctx.host.vector_set(dev),
        _ => None,
    };
    let mut dead = Vec::new();
    for op in ops.iter() {
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
fn failed<S: FxSink>(
    ctx: &mut Ctx<'_, S>,
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
pub(crate) fn negotiate<S: FxSink>(
    ctx: &mut Ctx<'_, S>,
    policy: &mut dyn Policy,
    minvec: u32,
    maxvec: u32,
) -> Result<Negotiated> {
    let (grant, request) = match policy.negotiate(ctx.dev, minvec, maxvec)? {
        Negotiation::Local => return Ok(Negotiated::Local(maxvec)),
        Negotiation::Hypercall { grant, request } => (grant.min(maxvec), request),
    };
    ctx.exec_or_err(&HostOp::Hypercall)?;
    let granted = if grant == 0 || grant < minvec {
        None
    } else {
        if ctx.host.index_enabled(ctx.dev) {
            ctx.exec_or_err(&HostOp::DisableIndex)?;
        }
        grant_most(ctx, minvec, grant, request)?
    };
    policy.negotiated(ctx.dev, granted)?;
    Ok(granted.map_or(Negotiated::Refused, Negotiated::Granted))
}

/// Set up the most vectors that fit in `minvec..=want` (allocated, and
/// requested too if `request`): `want` first, then a binary search; the
/// index is left enabled with the grant, or disabled.
fn grant_most<S: FxSink>(
    ctx: &mut Ctx<'_, S>,
    minvec: u32,
    want: u32,
    request: bool,
) -> Result<Option<u32>> {
    if try_grant(ctx, want, request)? {
        return Ok(Some(want));
    }
    let (mut lo, mut hi, mut best) = (minvec, want - 1, None);
    while lo <= hi {
        let mid = lo + (hi - lo) / 2;
        if try_grant(ctx, mid, request)? {
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
        if !try_grant(ctx, n, request)? {
            return Err(Error::Accounting(format!(
                "grant of {n} vectors failed on retry"
            )));
        }
    }
    Ok(best)
}

fn try_grant<S: FxSink>(ctx: &mut Ctx<'_, S>, n: u32, request: bool) -> Result<bool> {
    let op = HostOp::EnableVectors {
        with_fd: vec![request; n as usize],
        closes_resize: false,
    };
    match ctx.exec(&op) {
        Ok(()) => Ok(true),
        Err(HostError::Failure(_)) => Ok(false),
        Err(HostError::Model(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostConfig;
    use crate::host::Effects;

    /// A policy that answers every action with a fixed list and records
    /// the hooks the step path calls.
    #[derive(Default)]
    struct Scripted {
        ops: Vec<HostOp>,
        grant: Option<u32>,
        rollbacks: u32,
        negotiated: Vec<Option<u32>>,
    }

    impl Policy for Scripted {
        fn name(&self) -> String {
            "scripted".into()
        }
        fn negotiate(&mut self, _: u32, _: u32, _: u32) -> Result<Negotiation> {
            Ok(self
                .grant
                .map_or(Negotiation::Local, |grant| Negotiation::Hypercall {
                    grant,
                    request: true,
                }))
        }
        fn negotiated(&mut self, _: u32, granted: Option<u32>) -> Result<()> {
            self.negotiated.push(granted);
            Ok(())
        }
        fn enable(&mut self, _: u32, ops: &mut HostOps) -> Result<()> {
            ops.extend(self.ops.iter().cloned());
            Ok(())
        }
        fn unmask(&mut self, _: u32, _: u32, ops: &mut HostOps) -> Result<()> {
            ops.extend(self.ops.iter().cloned());
            Ok(())
        }
        fn mask(&mut self, _: u32, _: u32, ops: &mut HostOps) -> Result<()> {
            ops.extend(self.ops.iter().cloned());
            Ok(())
        }
        fn disable(&mut self, _: u32, ops: &mut HostOps) -> Result<()> {
            ops.extend(self.ops.iter().cloned());
            Ok(())
        }
        fn rollback(&mut self, _: u32) -> Result<()> {
            self.rollbacks += 1;
            Ok(())
        }
    }

    /// A host whose IOMMU has `irtes` entries, one device of 16 entries.
    fn host(irtes: u32) -> Host {
        let cfg = HostConfig {
            irte_entries: irtes,
            ..HostConfig::default()
        };
        Host::new(&cfg, crate::versions::Platform::default(), &[0]).unwrap()
    }

    fn run(
        host: &mut Host,
        policy: &mut Scripted,
        mode: FailureMode,
        action: GuestAction,
    ) -> (Result<StepResult>, u64, Effects) {
        let timing = TimingConfig::default();
        let mut fx = Effects::new();
        let mut ctx = Ctx {
            host,
            dev: 0,
            entries: 16,
            clock: 0,
            timing: &timing,
            fx: &mut fx,
            trace: None,
        };
        let r = step(&mut ctx, policy, &mut HostOps::new(), mode, action);
        (r, ctx.clock, fx)
    }

    fn enable(n: usize) -> HostOp {
        HostOp::EnableVectors {
            with_fd: vec![true; n],
            closes_resize: false,
        }
    }

    fn resize(n: usize) -> Vec<HostOp> {
        vec![
            HostOp::DisableIndex,
            HostOp::EnableVectors {
                with_fd: vec![true; n],
                closes_resize: true,
            },
        ]
    }

    /// A host with 2 vectors up, then a resize to 8 that cannot fit in 4 IRTEs.
    fn failing_resize(mode: FailureMode) -> (Host, Scripted, StepResult) {
        let mut h = host(4);
        let mut p = Scripted {
            ops: vec![enable(2)],
            ..Scripted::default()
        };
        let (r, _, _) = run(&mut h, &mut p, mode, GuestAction::Enable);
        assert_eq!(r.unwrap(), StepResult::Ok);
        p.ops = resize(8);
        let (r, _, _) = run(&mut h, &mut p, mode, GuestAction::Unmask(7));
        (h, p, r.unwrap())
    }

    #[test]
    fn kill_mode_kills_and_leaves_the_host_down() {
        let (h, p, r) = failing_resize(FailureMode::Kill);
        assert_eq!(r, StepResult::Kill);
        assert!(!h.index_enabled(0));
        assert_eq!(p.rollbacks, 0);
    }

    #[test]
    fn qemu_mode_marks_every_vector_dead_when_the_index_is_down() {
        let (h, p, r) = failing_resize(FailureMode::Qemu);
        assert_eq!(r, StepResult::DeadAll);
        assert!(!h.index_enabled(0));
        assert_eq!(h.usage().irtes, 0, "the failed enable unwound its IRTEs");
        assert_eq!(p.rollbacks, 0);
    }

    #[test]
    fn fail_request_restores_the_host_and_rolls_the_policy_back() {
        let (h, p, r) = failing_resize(FailureMode::FailRequest);
        assert_eq!(r, StepResult::Refused);
        assert_eq!(p.rollbacks, 1);
        assert_eq!(h.vector_set(0), Some(vec![true, true]));
        let u = h.usage();
        assert_eq!((u.irtes, u.irq_descs, u.cpu_vectors), (2, 2, 2));
    }

    #[test]
    fn qemu_mode_with_the_index_up_marks_only_the_entry_dead() {
        // A NORESIZE host asked to request a vector it never allocated: the
        // kernel's -EINVAL, a typed host failure; the index stays up.
        let mut h = host(64);
        let mut p = Scripted {
            ops: vec![enable(2)],
            ..Scripted::default()
        };
        run(&mut h, &mut p, FailureMode::Qemu, GuestAction::Enable)
            .0
            .unwrap();
        p.ops = vec![HostOp::SetSignalling { vector: 5 }];
        let (r, _, _) = run(&mut h, &mut p, FailureMode::Qemu, GuestAction::Unmask(5));
        assert_eq!(r.unwrap(), StepResult::Dead(vec![5]));
        assert!(h.index_enabled(0));
    }

    #[test]
    fn a_vector_past_the_table_is_an_error_not_a_failure() {
        let mut h = host(64);
        let mut p = Scripted {
            ops: vec![HostOp::AddVector { vector: 16 }],
            ..Scripted::default()
        };
        let (r, _, _) = run(&mut h, &mut p, FailureMode::Kill, GuestAction::Unmask(1));
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    }

    #[test]
    fn untrapped_vectors_are_dead_and_take_no_host_time() {
        let mut h = host(64);
        let mut p = Scripted {
            ops: vec![HostOp::Untrapped { vector: 3 }],
            ..Scripted::default()
        };
        let (r, clock, fx) = run(&mut h, &mut p, FailureMode::Qemu, GuestAction::Unmask(3));
        assert_eq!(r.unwrap(), StepResult::Dead(vec![3]));
        assert_eq!((clock, fx.len()), (0, 0));
    }

    #[test]
    fn negotiation_grants_the_most_that_fits_and_tells_the_policy() {
        let timing = TimingConfig::default();
        let mut h = host(4);
        let mut p = Scripted {
            grant: Some(8),
            ..Scripted::default()
        };
        let mut fx = Effects::new();
        let mut ctx = Ctx {
            host: &mut h,
            dev: 0,
            entries: 16,
            clock: 0,
            timing: &timing,
            fx: &mut fx,
            trace: None,
        };
        assert_eq!(
            negotiate(&mut ctx, &mut p, 2, 12).unwrap(),
            Negotiated::Granted(4)
        );
        assert!(ctx.clock >= timing.t_hypercall_ns);
        // A grant below minvec refuses, after the hypercall's round trip.
        p.grant = Some(1);
        ctx.clock = 0;
        assert_eq!(
            negotiate(&mut ctx, &mut p, 2, 12).unwrap(),
            Negotiated::Refused
        );
        assert_eq!(ctx.clock, timing.t_hypercall_ns);
        assert_eq!(p.negotiated, vec![Some(4), None]);
        p.grant = None;
        assert_eq!(
            negotiate(&mut ctx, &mut p, 2, 12).unwrap(),
            Negotiated::Local(12)
        );
    }
}
