//! The per-event path: draw the merged stream's next fire, pick its source,
//! fire it on the device's table, route what it sends through the IOMMU into
//! a CPU queue, and book the outcome.

use rand_distr::{Distribution, Exp1};

use super::Engine;
use crate::books::Outcome;
use crate::config::Mode;
use crate::error::{Error, Result};
use crate::msi::MsiMessage;
use crate::queue::Delivery;
use crate::vector_table::FireOutcome;

impl Engine {
    /// Fire the merged Poisson stream up to `horizon` (ns, exclusive).
    /// Nothing a fire does changes the live set or the rates, so the stream's
    /// parameters hold for the whole stretch. The draw that lands past the
    /// horizon is dropped when a control event is there (the stream is
    /// memoryless, and the event may change it); when the horizon is only
    /// where the caller stopped stepping (`keep`), it is kept for the next
    /// call, so that stepping in chunks draws exactly what one run draws.
    #[inline(never)]
    pub(super) fn fire_until(&mut self, horizon: f64, keep: bool) -> Result<()> {
        let gap = self.sources.mean_gap_ns;
        // Exp(1) by the ziggurat method: no logarithm on the hot path.
        let draw = |e: &mut Self| -> f64 {
            let x: f64 = Exp1.sample(&mut e.rng);
            e.now + x * gap
        };
        let mut tf = match self.pending_fire.take() {
            Some(t) => t,
            None => draw(self),
        };
        // A Poisson fire never schedules a closed-loop event: the next one's
        // time changes only when one is processed. Fires before both run in
        // the tight loop; the rest is the cold path below.
        let mut next_loop = self.loops.next_time();
        let mut stop = next_loop.min(horizon);
        let mut fires = 0u32;
        loop {
            if tf >= stop {
                if !self.loops_before(tf, horizon, &mut next_loop)? {
                    if keep {
                        self.pending_fire = Some(tf);
                    }
                    return Ok(());
                }
                stop = next_loop.min(horizon);
            }
            self.now = tf;
            let (dev, k) = self.sources.pick(&mut self.rng);
            self.fire(dev, k)?;
            fires = fires.wrapping_add(1);
            if fires % super::interrupt::FIRES_PER_POLL == 0 {
                // Between fires, before the next draw: a run stopped here
                // goes on with the draw it would have made.
                self.check_interrupt()?;
            }
            tf = draw(self);
        }
    }

    /// The merged stream drew a fire at `tf`, at or past the next closed-loop
    /// event or the horizon: run the closed-loop events due before both
    /// (they change neither the live set nor the rates, so the draw stays
    /// valid), then say whether the fire at `tf` happens (before `horizon`).
    #[cold]
    #[inline(never)]
    fn loops_before(&mut self, tf: f64, horizon: f64, next_loop: &mut f64) -> Result<bool> {
        while *next_loop < tf.min(horizon) {
            self.loop_next()?;
            *next_loop = self.loops.next_time();
        }
        Ok(tf < horizon)
    }

    #[inline]
    fn fire(&mut self, dev: u32, k: u32) -> Result<()> {
        let d = &self.devices[dev as usize];
        let phase = d.phase;
        let outcome = if d.dead[k as usize] {
            Outcome::Failed
        } else {
            self.fire_table(dev, k)?
        };
        self.books.fire(phase, outcome);
        // The common case, a delivery with no stall to close, ends here.
        if !self.stall_untouched(dev, outcome) {
            self.fire_aftermath(dev, k, outcome);
        }
        Ok(())
    }

    /// A fire that did more than deliver: the trace sees it, and its vector's
    /// stale-queue episode opens or closes.
    #[inline]
    fn fire_aftermath(&mut self, dev: u32, k: u32, outcome: Outcome) {
        self.trace_interrupt(dev, k, outcome);
        self.track_stall_slow(dev, k, outcome);
    }

    /// "Fire vector k" on the device's table, and route what it sends.
    #[inline]
    pub(super) fn fire_table(&mut self, dev: u32, k: u32) -> Result<Outcome> {
        let fired = self.devices[dev as usize].table.fire(k as usize)?;
        Ok(match fired.outcome() {
            FireOutcome::Delivered => match fired.message() {
                Some(msg) => self.deliver(dev, k, msg),
                None => {
                    return Err(Error::Accounting(
                        "a delivered fire carried no message".into(),
                    ))
                }
            },
            FireOutcome::Pending => {
                self.devices[dev as usize].latch(k as usize);
                Outcome::Pending
            }
            FireOutcome::Coalesced => Outcome::Coalesced,
            FireOutcome::Lost => Outcome::Lost,
            FireOutcome::Intx => Outcome::Intx,
        })
    }

    /// A delivery found CPU `cpu`'s queue full: it merges into the pending
    /// interrupt (booked `coalesced`). Out of the hot path's line.
    #[cold]
    #[inline(never)]
    fn queue_full(&mut self, dev: u32, entry: u32, cpu: u32) -> Outcome {
        self.stats.queue_overflows += 1;
        if let Some(t) = self.trace.as_deref_mut() {
            t.queue_full(dev, entry, cpu, self.now);
        }
        Outcome::Coalesced
    }

    /// What becomes of an interrupt the host took: the guest's if the vector
    /// is unmasked in QEMU's table, else held in QEMU's emulated PBA.
    #[inline]
    pub(super) fn for_guest(&mut self, dev: u32, entry: u32) -> Outcome {
        if self.devices[dev as usize]
            .guest_masked
            .contains(entry as usize)
        {
            self.qemu_latch(dev, entry)
        } else {
            Outcome::Delivered
        }
    }

    /// Route a message through the IOMMU into a CPU queue.
    #[inline]
    pub(super) fn deliver(&mut self, dev: u32, entry: u32, msg: MsiMessage) -> Outcome {
        if self.cfg.mode == Mode::Aggregated {
            // CPU queues are not simulated in aggregated mode (the bulk of
            // its deliveries are counts): a routed message is delivered.
            return match self.host.remap_uncached(dev, &msg) {
                Some((cpu, _)) if (cpu as usize) < self.queues.len() => self.for_guest(dev, entry),
                _ => Outcome::Blocked,
            };
        }
        let Some((cpu, vector)) = self.host.remap(dev, entry, &msg) else {
            return Outcome::Blocked;
        };
        self.take(dev, entry, cpu, vector)
    }

    /// The host takes an interrupt of `dev`'s entry that reached `vector`
    /// on `cpu`: into the CPU's queue, or held by QEMU if the guest masked it.
    #[inline]
    pub(super) fn take(&mut self, dev: u32, entry: u32, cpu: u32, vector: u8) -> Outcome {
        if self.devices[dev as usize]
            .guest_masked
            .contains(entry as usize)
        {
            // The host takes it (its handler signals QEMU's eventfd), but the
            // guest has the vector masked: QEMU holds it.
            return self.qemu_latch(dev, entry);
        }
        let Some(q) = self.queues.get_mut(cpu as usize) else {
            return Outcome::Blocked;
        };
        let t = self.now as u64;
        let h = &mut self.handlers[cpu as usize];
        let service = self.cfg.handler.service_ns;
        if let Some(s) = service {
            if h.queued > 0 {
                h.advance(q, t, s);
            }
            if h.serve_now(t, s) {
                // An idle handler with nothing queued takes it at once: the
                // push and the pop that would follow cancel out.
                return Outcome::Delivered;
            }
        }
        let item = Delivery {
            time_ns: t,
            device: dev,
            entry,
            cpu,
            vector,
        };
        if q.push(item).is_err() {
            return self.queue_full(dev, entry, cpu);
        }
        h.queued += 1;
        h.observe_depth(h.queued);
        if let Some(s) = service {
            // An idle handler takes it from the queue at once.
            h.advance(q, t, s);
        }
        Outcome::Delivered
    }
}
