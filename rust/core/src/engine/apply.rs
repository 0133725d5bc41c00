//! Events taking effect on a device: host effects on its physical table, the
//! driver starting or stopping a vector, dead vectors, completed resize
//! requests and resets. Each keeps the books and the window times.

use super::event::{Event, Run};
use super::trace::SpanKind;
use super::Engine;
use crate::books::Outcome;
use crate::error::{Error, Result};
use crate::host::HostFx;
use crate::msi::MsiMessage;
use crate::vector_table::{MSIX_CONTROL_ENABLE, MSIX_CONTROL_FUNCTION_MASK};

impl Engine {
    /// Apply run `run` of a step's batch to device `dev` at the current
    /// time. A batch's runs come in time order (each is scheduled at its
    /// time, in order): the last one frees the batch's slot.
    pub(super) fn apply_batch(&mut self, dev: u32, run: Run) -> Result<()> {
        let slot = run.slot as usize;
        let batch = std::mem::take(&mut self.batches[slot]);
        let mut i = run.start as usize;
        let Some(&(t, _)) = batch.get(i) else {
            return Err(run_past_batch(dev, run, batch.len()));
        };
        // One time for the whole run (a float-to-integer conversion per
        // event showed in the profile).
        let now = self.now as u64;
        // The run ends at the first later time. Found as the events are
        // applied (measured with callgrind: a binary search for it first
        // cost more than a compare per event).
        while let Some(&(te, ev)) = batch.get(i) {
            if te != t {
                break;
            }
            // A resize's requests come in runs: one device access for the
            // run (see `host_requests`).
            i += if let Event::Host(HostFx::Request(..)) = ev {
                self.host_requests(dev, &batch[i..], now)?
            } else {
                self.apply(dev, ev, now)?;
                1
            };
        }
        // Keep the allocation for the next step's batch.
        self.batches[slot] = batch;
        if i == self.batches[slot].len() {
            self.batches[slot].clear();
            self.free_batches.push(run.slot);
        }
        Ok(())
    }

    /// Apply one event at `now` (ns) to device `dev`.
    fn apply(&mut self, dev: u32, ev: Event, now: u64) -> Result<()> {
        match ev {
            Event::Host(fx) => self.apply_host(dev, fx, now)?,
            Event::Live(k, on) => {
                if !on {
                    if let Some(w) = self.devices[dev as usize].w1_open.get_mut(k as usize) {
                        *w = None;
                    }
                }
                if !self.devices[dev as usize].halted || !on {
                    self.set_live(dev, k, on);
                }
            }
            Event::GuestMask(k, on) => self.guest_mask(dev, k, on)?,
            Event::Dead(k, on) => {
                let d = &mut self.devices[dev as usize];
                if let Some(x) = d.dead.get_mut(k as usize) {
                    if on && !*x {
                        self.stats.dead_marks += 1;
                    }
                    if *x != on {
                        d.roster.invalidate();
                    }
                    *x = on;
                }
            }
            Event::RequestDone => {
                if let Some(t) = self.trace.as_deref_mut() {
                    t.request_done(dev, now as f64);
                }
                self.stats.resize_requests += 1;
                self.books.request(self.devices[dev as usize].phase);
                if self
                    .cfg
                    .stop
                    .max_resizes
                    .is_some_and(|m| self.stats.resize_requests >= m)
                {
                    self.finished = true;
                }
            }
            Event::Reset => {
                let d = &mut self.devices[dev as usize];
                let latched: Vec<_> = (0..d.table.entries())
                    .filter(|&k| d.table.is_pending(k).unwrap_or(false))
                    .map(|k| (k, d.latched_phase(k)))
                    .collect();
                d.table.reset();
                d.w1_open.clear();
                d.w2_open = None;
                for (k, phase) in latched {
                    self.books.settle_pending(phase, Outcome::Lost)?;
                    self.trace_interrupt(dev, k as u32, Outcome::Lost);
                }
                self.qemu_reset(dev)?;
                self.loops_reset(dev);
            }
        }
        Ok(())
    }

    /// Host `free_irq` of entry `k`: the entry masked (a pending send it
    /// releases is settled) and, for a live vector, its W1 window opened.
    #[inline]
    fn host_mask(&mut self, dev: u32, k: u32, now: u64) -> Result<()> {
        let d = &mut self.devices[dev as usize];
        let live = d.live.contains(k as usize);
        let sent = d.table.mask_one(k as usize)?;
        if live {
            *d.w1_slot(k as usize) = Some(now);
        }
        if let Some(msg) = sent {
            self.settle_one(dev, k as usize, msg)?;
        }
        Ok(())
    }

    /// Host `request_irq` of each entry of the run of requests `events`
    /// starts with: the entry programmed and unmasked (a pending send it
    /// releases is settled), no longer dead, and its W1 window, if open,
    /// closed and added to the W1 time. Returns how many events it applied:
    /// up to the first that is not a request at the first one's time.
    ///
    /// One write access to the device for the run (measured with callgrind:
    /// a device access and an event dispatch per request were about a
    /// third of a request). The generation still moves before the run's
    /// first write and again after a settled send (its delivery may learn
    /// a route), so no learnt route outlives a write, as with an access per
    /// request.
    fn host_requests(&mut self, dev: u32, events: &[(u64, Event)], now: u64) -> Result<usize> {
        let mut d = &mut self.devices[dev as usize];
        let t = events.first().map_or(0, |&(t, _)| t);
        for (i, &(te, ev)) in events.iter().enumerate() {
            let (Event::Host(HostFx::Request(k, msg)), true) = (ev, te == t) else {
                return Ok(i);
            };
            let sent = d.table.program_unmask(k as usize, msg)?;
            if d.dead[k as usize] {
                d.dead[k as usize] = false;
                d.roster.invalidate();
            }
            if let Some(open) = d.take_w1(k as usize) {
                self.stats.w1_time_ns += now - open;
                if let Some(t) = self.trace.as_deref_mut() {
                    t.span(SpanKind::W1, dev, k, open as f64, self.now);
                }
            }
            if let Some(msg) = sent {
                self.settle_one(dev, k as usize, msg)?;
                // The next request's write moves the generation again.
                d = &mut self.devices[dev as usize];
            }
        }
        Ok(events.len())
    }

    /// Apply one host effect on device `dev`'s physical table. In line: the
    /// effects are most of a resize's events.
    #[inline]
    fn apply_host(&mut self, dev: u32, fx: HostFx, now: u64) -> Result<()> {
        match fx {
            HostFx::Mask(k) => self.host_mask(dev, k, now)?,
            // `apply_batch` hands runs of requests to `host_requests`; a
            // lone request is a run of one.
            HostFx::Request(..) => {
                self.host_requests(dev, &[(now, Event::Host(fx))], now)?;
            }
            HostFx::Disable => {
                let d = &mut self.devices[dev as usize];
                let was_enabled = d.table.is_enabled();
                d.table.mask_all();
                d.open_w1_live(now);
                let rel = d.table.set_control(0);
                if was_enabled && d.guest_enabled {
                    d.w2_open = Some(now);
                }
                self.settle_released(dev, rel)?;
            }
            HostFx::Enable {
                closes_resize,
                function_mask,
            } => {
                let d = &mut self.devices[dev as usize];
                let control = if function_mask {
                    MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK
                } else {
                    // Without early enable every entry is masked before Enable.
                    d.table.mask_all();
                    MSIX_CONTROL_ENABLE
                };
                let rel = d.table.set_control(control);
                if let Some(open) = d.w2_open.take() {
                    self.stats.w2_time_ns += now - open;
                    self.trace_span(SpanKind::W2, dev, 0, open as f64);
                }
                self.settle_released(dev, rel)?;
                if closes_resize {
                    self.stats.resizes += 1;
                }
            }
            HostFx::FunctionUnmask => {
                let d = &mut self.devices[dev as usize];
                d.table.mask_all();
                let rel = d.table.set_control(MSIX_CONTROL_ENABLE);
                self.settle_released(dev, rel)?;
            }
        }
        Ok(())
    }

    /// Start or stop entry `k`'s source.
    pub(super) fn set_live(&mut self, dev: u32, k: u32, on: bool) {
        let Some(d) = self.devices.get_mut(dev as usize) else {
            return;
        };
        let ku = k as usize;
        if ku >= d.live.entries() || d.live.contains(ku) == on {
            return;
        }
        d.live.set(ku, on);
        let c = d.class_of(ku);
        // Aggregated mode's roster follows a start it can take as it is
        // (per-event mode never builds one: nothing to look up then).
        if !on {
            d.roster.invalidate();
        } else if d.roster.is_valid() {
            let rate = self.sources.classes.get(c as usize).map_or(0.0, |x| x.rate);
            let dead = d.dead.get(ku).copied().unwrap_or(false);
            d.roster.started(k, rate, dead);
        }
        if on {
            d.pos[ku] = self.sources.add(c, dev, k);
        } else if let Some(p) = d.pos[ku].take() {
            if let Some((md, mk)) = self.sources.remove(c, p) {
                self.devices[md as usize].pos[mk as usize] = Some(p);
            }
        }
        if self.is_closed_loop(dev, k) {
            if on {
                self.loop_start(dev, k);
            } else {
                self.loop_stop(dev, k);
            }
        }
    }

    /// Route what a table change released (pending vectors sent late) and
    /// settle their books.
    #[inline]
    fn settle_released(&mut self, dev: u32, released: Vec<(usize, MsiMessage)>) -> Result<()> {
        // Most table changes release nothing: stay inline for those.
        if released.is_empty() {
            return Ok(());
        }
        self.settle_released_slow(dev, released)
    }

    #[inline(never)]
    fn settle_released_slow(&mut self, dev: u32, released: Vec<(usize, MsiMessage)>) -> Result<()> {
        for (k, msg) in released {
            self.settle_one(dev, k, msg)?;
        }
        Ok(())
    }

    /// Route the message entry `k`'s pending bit sent late, and move its
    /// interrupt from `pending` to where it ended, in the phase it fired in.
    /// In line (measured with callgrind: a resize settles about a third of
    /// its requests' sends, and the call's saves and restores were about 1 %
    /// of a resize).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn settle_one(&mut self, dev: u32, k: usize, msg: MsiMessage) -> Result<()> {
        let outcome = self.deliver(dev, k as u32, msg);
        let d = &mut self.devices[dev as usize];
        let phase = d.latched_phase(k);
        if outcome == Outcome::Pending {
            // Now held in QEMU's PBA (the guest masked the vector): it stays
            // booked in the phase it was fired in.
            if let Some(p) = d.qemu_phase.get_mut(k) {
                *p = phase;
            }
        }
        self.books.settle_pending(phase, outcome)?;
        self.trace_interrupt(dev, k as u32, outcome);
        if self.is_closed_loop(dev, k as u32) {
            self.loop_released(dev, k as u32, outcome);
        } else {
            self.track_stall(dev, k as u32, outcome);
        }
        Ok(())
    }
}

/// A run that starts past its batch: a broken invariant (a batch's runs are
/// scheduled from its own events), kept out of line.
#[cold]
#[inline(never)]
fn run_past_batch(dev: u32, run: Run, len: usize) -> Error {
    Error::Accounting(format!(
        "run {run:?} of device {dev} is past its batch of {len} events"
    ))
}
