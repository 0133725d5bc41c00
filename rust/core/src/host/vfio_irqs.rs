//! The host's VFIO MSI-X operations (drivers/vfio/pci/vfio_pci_intrs.c):
//! `VFIO_DEVICE_SET_IRQS` on the MSI-X index, with the time each step takes
//! and the effects it has on the physical device's table.

use super::device_share::DeviceShare;
use super::{FxSink, Host, HostError, HostFailure, HostFx, HostOp, HostResult};
use crate::config::TimingConfig;

impl Host {
    /// Run one host operation on device `dev`: `clock` advances by the
    /// operation's duration, `fx` receives its timed table effects.
    /// [`HostOp::Untrapped`] reaches no host and does nothing here.
    pub(crate) fn exec(
        &mut self,
        dev: u32,
        op: &HostOp,
        clock: &mut u64,
        t: &TimingConfig,
        fx: &mut impl FxSink,
    ) -> HostResult<()> {
        match op {
            HostOp::IntxDisable | HostOp::IntxEnable | HostOp::Untrapped { .. } => Ok(()),
            // QEMU hands the host its own eventfd in place of the KVM irqfd:
            // the same trigger switch, on a vector the host has requested.
            HostOp::SwitchToUserspace { vector } => {
                if self.share(dev).is_ok_and(|s| s.is_active(*vector)) {
                    self.set_signalling(dev, *vector, false, clock, t, fx)
                } else {
                    Ok(())
                }
            }
            HostOp::Hypercall => {
                advance(clock, t.t_hypercall_ns)?;
                Ok(())
            }
            HostOp::EnableNoVec => self.enable_vectors(dev, &[false], false, clock, t, fx),
            HostOp::DisableIndex => Ok(self.disable_index(dev, clock, t, fx)?),
            HostOp::EnableVectors {
                with_fd,
                closes_resize,
            } => self.enable_vectors(dev, with_fd, *closes_resize, clock, t, fx),
            HostOp::SetSignalling { vector } => {
                self.set_signalling(dev, *vector, false, clock, t, fx)
            }
            HostOp::AddVector { vector } => self.set_signalling(dev, *vector, true, clock, t, fx),
        }
    }

    /// `vfio_msi_disable`: `free_irq` of every requested vector (its entry
    /// masked: `t_free_irq` each), then `pci_free_irq_vectors`:
    /// `pci_msix_shutdown` clears Enable (the device-wide window begins) and
    /// the descriptors and IRTEs are freed (`w_free` each).
    fn disable_index(
        &mut self,
        dev: u32,
        clock: &mut u64,
        t: &TimingConfig,
        fx: &mut impl FxSink,
    ) -> crate::Result<()> {
        let each_mask = t.t_free_irq_ns > 0 || self.mask_each_freed;
        let mut s = self.share(dev)?;
        let allocated = u64::from(s.device.allocated);
        debug_assert_eq!(
            allocated,
            s.device.vectors.iter().filter(|v| v.is_some()).count() as u64
        );
        if !each_mask && !s.domain.tracing() {
            if let Some(end) = fits(*clock, t.w_free_ns, allocated) {
                // Every `free_irq` takes no time and leaves its Mask to the
                // Disable (below): the Disable is the only effect, and
                // `free_all` frees each vector right after deactivating it.
                // The models end as the two passes leave them (a free
                // releases nothing another vector's deactivation reads);
                // only a matrix trace would show the order, so a traced
                // run takes the passes.
                fx.push_fx(*clock, HostFx::Disable);
                *clock = end;
                return s.free_all();
            }
        }
        // Walk by index (no list of active vectors is built: this runs on
        // every resize).
        let n = s.device.vectors.len() as u32;
        for k in 0..n {
            if !s.deactivate(k)? {
                continue;
            }
            // A Mask at the Disable's own time (`free_irq` taking no time)
            // is left to the Disable, which masks every entry and opens the
            // W1 window of every live one: one effect for the device, not
            // one per vector. Exact because an active vector has no W1
            // window open (its request closed it), so the Mask would open
            // it at this same time.
            if each_mask {
                fx.push_fx(*clock, HostFx::Mask(k));
                // Only here can `free_irq` take time: without a Mask it
                // takes none, and the clock stays.
                advance(clock, t.t_free_irq_ns)?;
            }
        }
        fx.push_fx(*clock, HostFx::Disable);
        advance_n(clock, t.w_free_ns, allocated)?;
        s.free_all()
    }

    /// `vfio_msi_enable(count)` then `vfio_msi_set_block`: the ioctl round
    /// trip (`w0`), `msix_capability_init` allocating `count` vectors
    /// (`w_alloc` each) — after setting Enable and Function Mask with early
    /// enable, before setting Enable without it — then `request_irq` of each
    /// vector with an eventfd (`t_request` each). On any failure everything
    /// is undone (`vfio_msi_disable`) and the error returned; the index is
    /// left disabled.
    fn enable_vectors(
        &mut self,
        dev: u32,
        with_fd: &[bool],
        closes_resize: bool,
        clock: &mut u64,
        t: &TimingConfig,
        fx: &mut impl FxSink,
    ) -> HostResult<()> {
        let count = with_fd.len() as u32;
        advance(clock, t.w0_ns)?;
        let early = self.early_enable;
        if early {
            fx.push_fx(
                *clock,
                HostFx::Enable {
                    closes_resize,
                    function_mask: true,
                },
            );
        }
        let failed = {
            let mut s = self.share(dev)?;
            // The loop's time checked once (callgrind: a checked add per
            // vector was 1 % of a resize); when it would overflow, each
            // step is checked so the error comes where it always did.
            let checked = fits(*clock, t.w_alloc_ns, u64::from(count)).is_none();
            let failed = s.alloc_each(0..count, || {
                if checked {
                    advance(clock, t.w_alloc_ns)
                } else {
                    *clock += t.w_alloc_ns;
                    Ok(())
                }
            })?;
            if failed.is_none() {
                s.device.enabled = true;
            }
            failed
        };
        if let Some(e) = failed {
            self.track();
            self.share(dev)?.free_all()?;
            if early {
                // msix_capability_init's out_disable: Enable and Function
                // Mask cleared again.
                fx.push_fx(*clock, HostFx::Disable);
            }
            return Err(e);
        }
        fx.push_fx(
            *clock,
            if early {
                HostFx::FunctionUnmask
            } else {
                HostFx::Enable {
                    closes_resize,
                    function_mask: false,
                }
            },
        );
        let failed = {
            let mut s = self.share(dev)?;
            let requested = request_each(&mut s, with_fd, clock, t, fx);
            s.note_route_peak();
            requested?
        };
        self.track();
        if let Some(e) = failed {
            let mut c = *clock;
            self.disable_index(dev, &mut c, t, fx)?;
            return Err(e);
        }
        Ok(())
    }

    /// `vfio_pci_set_msi_trigger` for one vector (`vfio_msi_set_vector_signal`):
    /// with the index disabled, the kernel enables it with `k + 1` vectors and
    /// wires up `k` only (the partial recovery after a failed resize); with it
    /// enabled, a vector that has a trigger is switched to the new one —
    /// `free_irq` (entry masked: W1) then `request_irq` — and one without is
    /// allocated first if needed (`dynamic`: `pci_msix_alloc_irq_at`) and
    /// requested. A failed `request_irq` leaves the irq allocated until MSI-X
    /// is disabled ("Interrupt stays allocated, will be freed at MSI-X
    /// disable").
    fn set_signalling(
        &mut self,
        dev: u32,
        k: u32,
        dynamic: bool,
        clock: &mut u64,
        t: &TimingConfig,
        fx: &mut impl FxSink,
    ) -> HostResult<()> {
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
            Some(hv) if hv.active => {
                // A new trigger for a requested vector: free_irq of the old one.
                self.share(dev)?.deactivate(k)?;
                fx.push_fx(*clock, HostFx::Mask(k));
                advance(clock, t.t_free_irq_ns)?;
            }
            Some(_) => {}
            None if dynamic => {
                advance(clock, t.t_dynamic_ns)?;
                self.share(dev)?.alloc_vector(k)?;
                self.track();
            }
            None => {
                return Err(HostError::Failure(HostFailure::NotAllocated {
                    dev,
                    vector: k,
                }));
            }
        }
        advance(clock, t.t_request_ns)?;
        let msg = {
            let mut s = self.share(dev)?;
            let msg = s.activate(k)?;
            s.note_route_peak();
            msg
        };
        self.track();
        fx.push_fx(*clock, HostFx::Request(k, msg));
        Ok(())
    }
}

/// `request_irq` of each vector of `with_fd` that has an eventfd, in entry
/// order (`t_request` each, its `Request` effect at its time): the first
/// refusal, if any, with the vectors before it requested. Takes one KVM
/// route per vector; the route peak is its caller's to note.
#[inline(always)]
fn request_each(
    s: &mut DeviceShare<'_>,
    with_fd: &[bool],
    clock: &mut u64,
    t: &TimingConfig,
    fx: &mut impl FxSink,
) -> crate::error::Result<Option<HostError>> {
    let checked = fits(*clock, t.t_request_ns, with_fd.len() as u64).is_none();
    s.request_each(
        with_fd,
        || {
            if checked {
                advance(clock, t.t_request_ns)?;
            } else {
                *clock += t.t_request_ns;
            }
            Ok(*clock)
        },
        |k, at, msg| fx.push_fx(at, HostFx::Request(k, msg)),
    )
}

/// Host time moves on by `by` ns. Checked: the timings are the user's, and
/// simulated time is a count of nanoseconds in a `u64`; past it is a typed
/// error, never a wrapped clock.
fn advance(clock: &mut u64, by: u64) -> crate::error::Result<()> {
    *clock = clock.checked_add(by).ok_or_else(|| time_overflow(*clock))?;
    Ok(())
}

/// Host time moves on by `count` steps of `per` ns (checked as [`advance`]).
fn advance_n(clock: &mut u64, per: u64, count: u64) -> crate::error::Result<()> {
    let by = per
        .checked_mul(count)
        .ok_or_else(|| time_overflow(*clock))?;
    advance(clock, by)
}

/// The clock after `count` steps of `per` ns from `clock`, if it stays
/// within a `u64` (then no step of a loop of them can overflow).
#[inline]
fn fits(clock: u64, per: u64, count: u64) -> Option<u64> {
    per.checked_mul(count).and_then(|by| clock.checked_add(by))
}

fn time_overflow(clock: u64) -> crate::error::Error {
    crate::error::Error::InvalidArgument(format!(
        "simulated time overflows: the host timings take it past 2^64 - 1 ns from {clock} ns"
    ))
}
