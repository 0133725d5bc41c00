//! The per-event path: draw the merged stream's next fire, pick its source,
//! fire it on the device's table, route what it sends through the IOMMU into
//! a CPU queue, and book the outcome.

use rand_distr::{Distribution, Exp1};
use rand_xoshiro::Xoshiro256PlusPlus as Rng;

use super::host_cpu::Arrival;
use super::hot_route::{HotRoute, Member};
use super::sources::Slot;
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
        // The generator is a local for the stretch, so that it stays in
        // registers across the fire path (which never draws); it is put back
        // before anything that may draw, and whatever the stretch returns.
        let mut rng = self.rng.clone();
        let r = self.fire_stretch(&mut rng, horizon, keep);
        self.rng = rng;
        r
    }

    /// [`Engine::fire_until`] drawing from `rng`, which stands in for
    /// `self.rng` until it returns.
    // In line, so that `rng` lives in registers rather than behind a pointer.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn fire_stretch(&mut self, rng: &mut Rng, horizon: f64, keep: bool) -> Result<()> {
        let gap = self.sources.mean_gap_ns;
        // Exp(1) by the ziggurat method: no logarithm on the hot path.
        let draw = |rng: &mut Rng, now: f64| -> f64 {
            let x: f64 = Exp1.sample(rng);
            now + x * gap
        };
        let mut tf = match self.pending_fire.take() {
            Some(t) => t,
            None => draw(rng, self.now),
        };
        // A Poisson fire never schedules a closed-loop event: the next one's
        // time changes only when one is processed. Fires before both run in
        // the tight loop; the rest is the cold path below.
        let mut next_loop = self.loops.next_time();
        let mut stop = next_loop.min(horizon);
        // The flag and the poll are looked at once the stream has gone on
        // for the mean time of `FIRES_PER_POLL` fires: a compare with a
        // time per fire rather than a fire count kept (measured with
        // callgrind: the count, spilled, was 6 instructions a fire).
        let poll_span = f64::from(super::interrupt::FIRES_PER_POLL) * gap;
        let mut poll_at = tf + poll_span;
        loop {
            if tf >= stop {
                // Closed-loop events draw from the engine's generator.
                self.rng = rng.clone();
                let on = self.loops_before(tf, horizon, &mut next_loop);
                *rng = self.rng.clone();
                if !on? {
                    if keep {
                        self.pending_fire = Some(tf);
                    }
                    return Ok(());
                }
                stop = next_loop.min(horizon);
            }
            self.now = tf;
            let (slot, m) = self.sources.pick(rng);
            self.fire_member(slot, m)?;
            if tf >= poll_at {
                // Between fires, before the next draw: a run stopped here
                // goes on with the draw it would have made.
                poll_at = tf + poll_span;
                self.check_interrupt()?;
            }
            // From `tf`, which the fire left as `self.now` (no fire moves
            // time): one load fewer per fire than reading it back.
            tf = draw(rng, tf);
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

    /// Fire the source `m`, picked at `slot`, and book the outcome. A route
    /// it learnt still valid (`hot_route`: neither its device nor the
    /// device's IRTEs changed since) goes straight to its CPU; any other
    /// fire reads the device and the IOMMU.
    #[inline]
    fn fire_member(&mut self, slot: Slot, m: Member) -> Result<()> {
        let h = m.hot;
        if h.gen != self.devices.generation(m.dev) || h.epoch != self.host.route_epoch(m.dev) {
            return self.fire(slot, m.dev, m.k);
        }
        let outcome = self.take_now(m.dev, m.k, h.cpu, h.vector, false);
        self.books.fire(h.phase, outcome);
        if outcome != Outcome::Delivered {
            self.fire_aftermath(m.dev, m.k, outcome);
        }
        Ok(())
    }

    /// Fire entry `k` of `dev` (the member at `slot`) through its device's
    /// state and the IOMMU, and book the outcome. A vector that can send
    /// is routed here; every other case goes through the table's full
    /// `fire`, out of line. A delivery learns its route for the next fire
    /// (one that closes a stall, out of line in [`Engine::fire_closing`]).
    #[inline(never)]
    fn fire(&mut self, slot: Slot, dev: u32, k: u32) -> Result<()> {
        let d = &self.devices[dev as usize];
        // None changes during the fire itself, unless it ends other than
        // delivered (the guest mask not at all): read while `d` is at hand.
        let (phase, stall) = (d.phase, d.stall_open(k as usize));
        let masked = d.guest_masked.contains(k as usize);
        let outcome = if d.dead[k as usize] {
            Outcome::Failed
        } else if let Some(msg) = d.table.sending(k as usize) {
            match self.host.remap(dev, k, &msg) {
                Some((cpu, vector)) => {
                    let hot = HotRoute {
                        gen: self.devices.generation(dev),
                        epoch: self.host.route_epoch(dev),
                        cpu,
                        vector,
                        phase,
                    };
                    if masked | stall {
                        self.fire_closing(slot, dev, k, hot, masked, stall);
                        return Ok(());
                    }
                    self.sources.learn(slot, hot);
                    self.take_now(dev, k, cpu, vector, masked)
                }
                None => Outcome::Blocked,
            }
        } else {
            self.fire_held(dev, k)?
        };
        self.books.fire(phase, outcome);
        // A delivery leaves the trace and every other vector's stall as
        // they are.
        if (outcome != Outcome::Delivered) | stall {
            self.fire_aftermath(dev, k, outcome);
        }
        Ok(())
    }

    /// A fire of a vector that can send, by the route `hot`, but that the
    /// guest masked or that has a stall open: the host takes it, and it is
    /// booked and followed up as [`Engine::fire`] does. A delivery that
    /// closes the stall (the guest's mask off) learns `hot` too: closing a
    /// stall moves no generation, so the route is what the next fire does
    /// (measured with callgrind: a vector's first fire after a stall was
    /// otherwise a second slow fire, ~11 a resize in the storm).
    #[inline(never)]
    fn fire_closing(
        &mut self,
        slot: Slot,
        dev: u32,
        k: u32,
        hot: HotRoute,
        masked: bool,
        stall: bool,
    ) {
        let outcome = self.take_now(dev, k, hot.cpu, hot.vector, masked);
        self.books.fire(hot.phase, outcome);
        if (outcome != Outcome::Delivered) | stall {
            self.fire_aftermath(dev, k, outcome);
        }
        if !masked && outcome == Outcome::Delivered {
            self.sources.learn(slot, hot);
        }
    }

    /// A fire of a vector that cannot send now: it latches, coalesces or is
    /// lost, as the table says (or fails with the table's error).
    #[cold]
    #[inline(never)]
    fn fire_held(&mut self, dev: u32, k: u32) -> Result<Outcome> {
        self.fire_table(dev, k)
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
        if self.guest_masked(dev, entry) {
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
                Some((cpu, _)) if (cpu as usize) < self.cpus.len() => self.for_guest(dev, entry),
                _ => Outcome::Blocked,
            };
        }
        let masked = self.guest_masked(dev, entry);
        self.deliver_event(dev, entry, msg, masked)
    }

    /// [`Engine::deliver`] in per-event mode: through the IOMMU (its route
    /// cache) into a CPU queue; `masked` is whether the guest masked the
    /// entry.
    // Measured with callgrind: left to the inliner, this stays a call.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn deliver_event(&mut self, dev: u32, entry: u32, msg: MsiMessage, masked: bool) -> Outcome {
        let Some((cpu, vector)) = self.host.remap(dev, entry, &msg) else {
            return Outcome::Blocked;
        };
        self.take_now(dev, entry, cpu, vector, masked)
    }

    /// Whether the guest has `dev`'s entry masked in QEMU's table.
    fn guest_masked(&self, dev: u32, entry: u32) -> bool {
        self.devices[dev as usize]
            .guest_masked
            .contains(entry as usize)
    }

    /// The host takes an interrupt of `dev`'s entry that reached `vector`
    /// on `cpu`: into the CPU's queue, or held by QEMU if the guest masked it.
    pub(super) fn take(&mut self, dev: u32, entry: u32, cpu: u32, vector: u8) -> Outcome {
        let masked = self.guest_masked(dev, entry);
        self.take_now(dev, entry, cpu, vector, masked)
    }

    /// [`Engine::take`], in line on the per-event path, told whether the
    /// guest masked the entry.
    // Measured with callgrind: left to the inliner, this stays a call.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn take_now(&mut self, dev: u32, entry: u32, cpu: u32, vector: u8, masked: bool) -> Outcome {
        if masked {
            // The host takes it (its handler signals QEMU's eventfd), but the
            // guest has the vector masked: QEMU holds it.
            return self.qemu_latch(dev, entry);
        }
        let time_ns = super::whole_ns(self.now);
        let Some(c) = self.cpus.get_mut(cpu as usize) else {
            return Outcome::Blocked;
        };
        let item = Delivery {
            time_ns,
            device: dev,
            entry,
            cpu,
            vector,
        };
        match c.arrive(item) {
            Arrival::Served | Arrival::Queued => Outcome::Delivered,
            Arrival::Full => self.queue_full(dev, entry, cpu),
        }
    }
}
