//! The guest driver: one action at a time, handed to the policy through the
//! one host path ([`crate::policy::step`]), its completion events scheduled
//! at the host's completion time. An action comes from a device's program
//! (the interpreter below) or from the embedding program ([`Engine::act`]);
//! both run it through [`Engine::run_action`].

use super::event::{Event, Run, StepEvents, What};
use super::Engine;
use crate::config::{check_action, Action, Mode, Phase};
use crate::error::{Error, Result};
use crate::host::HostOp;
use crate::policy::{self, Ctx, GuestAction, Negotiated, StepResult};

impl Engine {
    /// Run guest action `action` of device `dev` now ([`Engine::now_ns`]):
    /// the same policy, host path and completion events as a program step.
    /// Returns the time the step completes (ns), when its trapped accesses
    /// return and the guest may act again. A kill of the device's VM
    /// completes at once.
    ///
    /// A device that takes actions this way has an empty program (or one
    /// that has ended), and the run a time bound (`stop.max_time_ns`):
    /// without one a run ends when no control event is left. Refused with
    /// `InvalidArgument`, changing nothing: an unknown device, an entry past
    /// its table or a bad `negotiate` range, a device whose VM was killed,
    /// whose program is still running, or whose previous step has not
    /// completed, and a finished run.
    pub fn act(&mut self, dev: u32, action: Action) -> Result<u64> {
        self.check_not_failed()?;
        let refuse = |why: String| Err(Error::InvalidArgument(format!("act: {why}")));
        if self.finished {
            return refuse("the run has finished".into());
        }
        let (Some(d), Some(cfg)) = (
            self.devices.get(dev as usize),
            self.cfg.devices.get(dev as usize),
        ) else {
            return refuse(format!(
                "device {dev} is past the run's {} devices",
                self.devices.len()
            ));
        };
        if let Err(why) = check_action(&action, cfg.entries) {
            return refuse(format!("device {dev}: {why}"));
        }
        let now = self.now_ns();
        if d.halted {
            return refuse(format!("device {dev}: its VM was killed"));
        }
        if d.pc < cfg.program.len() {
            return refuse(format!(
                "device {dev}: its program is still running (step {} of {})",
                d.pc,
                cfg.program.len()
            ));
        }
        if d.busy_until > now {
            return refuse(format!(
                "device {dev}: its previous step completes at {} ns, after now ({now} ns)",
                d.busy_until
            ));
        }
        // Past the checks above the action changes the run: a failure from
        // here on is kept (the refusals above change nothing).
        let r = self.act_checked(dev, action, now);
        self.note_failure(&r);
        r
    }

    fn act_checked(&mut self, dev: u32, action: Action, now: u64) -> Result<u64> {
        if self.cfg.mode == Mode::Aggregated {
            // As before a control event: the device's fires so far are booked
            // under the state they had.
            self.book_device(dev, self.now)?;
        }
        // A control event: the merged stream's draw kept by the last
        // `step_until` is dropped, as a scheduled event would drop it.
        self.pending_fire = None;
        self.stats.control_events += 1;
        Ok(self.run_action(dev, action)?.unwrap_or(now))
    }

    /// Run device `dev`'s next program step.
    pub(super) fn guest_step(&mut self, dev: u32) -> Result<()> {
        let di = dev as usize;
        if self.devices[di].halted {
            return Ok(());
        }
        let Some(step) = self.cfg.devices[di].program.get(self.devices[di].pc) else {
            return Ok(());
        };
        if let Some(done) = self.run_action(dev, step.action.clone())? {
            self.next_step(dev, done);
        }
        Ok(())
    }

    /// Run one guest action of device `dev` at the engine's time. Returns
    /// when it completes, or `None` when it killed the device's VM.
    fn run_action(&mut self, dev: u32, action: Action) -> Result<Option<u64>> {
        let di = dev as usize;
        let now = self.now as u64;
        let entries = self.cfg.devices[di].entries;
        let on_failure = self.cfg.policy.on_failure;
        // The step's events, in the batch they are scheduled from: the
        // guest's own, then the host's effects (written straight into it as
        // the host produces them), then the step's completion events.
        let (slot, buffer) = self.take_batch();
        let mut events = StepEvents::new(buffer, now);
        let mut ctx = Ctx {
            host: &mut self.host,
            dev,
            entries,
            clock: now,
            timing: &self.cfg.timing,
            fx: &mut events,
            trace: self.trace.as_deref_mut(),
        };
        let policy = self.policy.as_mut();
        let ops = &mut self.ops;
        let mut answer: Option<(GuestAction, StepResult)> = None;
        // The entry whose unmask is a resize request.
        let mut request = None;
        let mut phase_change = None;
        let mut fold = None;
        match action {
            Action::Wait => {}
            Action::Phase { phase } => phase_change = Some(phase),
            Action::Negotiate { minvec, maxvec } => {
                let d = &mut self.devices[di];
                fold = Some(None); // a new grant: queues spread afresh
                match policy::negotiate(&mut ctx, policy, minvec, maxvec)? {
                    Negotiated::Local(n) | Negotiated::Granted(n) => d.granted = n,
                    Negotiated::Refused => {
                        self.stats.negotiations_refused += 1;
                        d.granted = 0;
                    }
                }
            }
            Action::Enable => {
                self.devices[di].guest_enabled = true;
                // Unmasks from here that grow QEMU's nr_vectors are resize
                // requests: every entry, or every one but 0 when QEMU sets
                // vector 0 up at enable.
                self.devices[di].high = self.cfg.platform().first_resizing_entry().checked_sub(1);
                let a = GuestAction::Enable;
                answer = Some((a, policy::step(&mut ctx, policy, ops, on_failure, a)?));
            }
            Action::Unmask { entry } => {
                let d = &mut self.devices[di];
                if entry >= d.granted {
                    self.stats.unmasks_skipped += 1;
                    // A driver granted fewer vectors than queues spreads the
                    // queues over the vectors it has: this queue's traffic
                    // goes to vector entry mod granted.
                    if d.granted > 0 {
                        fold = Some(Some((entry, entry % d.granted)));
                    }
                } else {
                    // A new highest entry since enable: what QEMU resizes on
                    // under NORESIZE, whatever the policy does with it.
                    if d.high.is_none_or(|h| entry > h) {
                        d.high = Some(entry);
                        request = Some(entry);
                    }
                    let a = GuestAction::Unmask(entry);
                    answer = Some((a, policy::step(&mut ctx, policy, ops, on_failure, a)?));
                }
            }
            Action::Mask { entry } | Action::Free { entry } => {
                ctx.fx.push(now, Event::GuestMask(entry, true));
                if matches!(action, Action::Free { .. }) {
                    ctx.fx.push(now, Event::Live(entry, false));
                }
                let a = GuestAction::Mask(entry);
                answer = Some((a, policy::step(&mut ctx, policy, ops, on_failure, a)?));
            }
            Action::Disable | Action::Reset => {
                self.devices[di].guest_enabled = false;
                for k in 0..entries {
                    ctx.fx.push(now, Event::Live(k, false));
                }
                if action == Action::Reset {
                    ctx.fx.push(now, Event::Reset);
                }
                let a = GuestAction::Disable;
                answer = Some((a, policy::step(&mut ctx, policy, ops, on_failure, a)?));
                self.devices[di].granted = entries;
                self.devices[di].high = None;
            }
        }
        let done = ctx.clock.max(now);
        if let Some(phase) = phase_change {
            self.set_phase(dev, phase);
        }
        match fold {
            Some(Some((from, to))) => self.fold_traffic(dev, from, to),
            Some(None) => self.unfold_traffic(dev),
            None => {}
        }
        // The guest's own events, then the host's effects, then the step's
        // completion events: a stable sort by time below keeps that order
        // among same-time events.
        if let Some((action, r)) = answer {
            if self.step_result(dev, action, r, done, &mut events) {
                // Nothing of a killed guest's step is scheduled.
                self.free_batch(slot, events.into_parts().0);
                let vm = self.devices[di].vm;
                return self.kill_vm(vm).map(|()| None);
            }
        }
        if let Some(entry) = request {
            events.push(done, Event::RequestDone);
            if let Some(t) = self.trace.as_deref_mut() {
                t.request(dev, entry, now as f64);
            }
        }
        self.schedule_batch(dev, now, slot, events);
        self.devices[di].busy_until = done;
        Ok(Some(done))
    }

    /// A free batch slot and its (empty) buffer, taken out of it: the
    /// buffers keep their allocations from one step to the next.
    fn take_batch(&mut self) -> (u32, Vec<(u64, Event)>) {
        let slot = self.free_batches.pop().unwrap_or_else(|| {
            self.batches.push(Vec::new());
            (self.batches.len() - 1) as u32
        });
        (slot, std::mem::take(&mut self.batches[slot as usize]))
    }

    /// Batch `slot` is free again, its buffer `events` kept for reuse.
    fn free_batch(&mut self, slot: u32, mut events: Vec<(u64, Event)>) {
        events.clear();
        self.batches[slot as usize] = events;
        self.free_batches.push(slot);
    }

    /// Put a step's `events` in batch `slot`, stably sorted by time, and
    /// schedule one run per distinct time; with no events the slot is free
    /// again.
    fn schedule_batch(&mut self, dev: u32, now: u64, slot: u32, events: StepEvents) {
        let (mut events, noted) = events.into_parts();
        debug_assert!(
            u32::try_from(events.len()).is_ok(),
            "a step's events fit a u32"
        );
        if events.is_empty() {
            self.free_batch(slot, events);
            return;
        }
        if let Some(starts) = noted {
            for &start in starts.as_slice() {
                let t = events[start as usize].0;
                self.schedule(t.max(now), dev, What::Batch(Run { slot, start }));
            }
        } else {
            // Out of time order only when a failed host operation's
            // unwinding ran ahead of the host's clock.
            events.sort_by_key(|(t, _)| *t);
            let mut i = 0;
            while i < events.len() {
                let t = events[i].0;
                let end = i + events[i..].partition_point(|(te, _)| *te <= t);
                let start = i as u32;
                self.schedule(t.max(now), dev, What::Batch(Run { slot, start }));
                i = end;
            }
        }
        self.batches[slot as usize] = events;
    }

    /// Advance device `dev`'s program counter; schedule its next step
    /// `delay` after `done` (the program repeats if it says so).
    fn next_step(&mut self, dev: u32, done: u64) {
        let di = dev as usize;
        let d = &mut self.devices[di];
        let program = &self.cfg.devices[di].program;
        d.pc += 1;
        if d.pc >= program.len() {
            if !self.cfg.devices[di].repeat {
                return;
            }
            d.pc = 0;
        }
        let delay = program[d.pc].delay_ns;
        let restart = d.pc == 0;
        self.schedule(done.saturating_add(delay), dev, What::Step);
        if restart {
            // The program starts again: the driver probes again.
            self.set_phase(dev, Phase::Probe);
        }
    }

    /// Turn a policy's answer into completion events at `done`. Returns true
    /// when the guest must be killed.
    fn step_result(
        &mut self,
        dev: u32,
        action: GuestAction,
        r: StepResult,
        done: u64,
        events: &mut StepEvents,
    ) -> bool {
        let entry = match action {
            GuestAction::Unmask(k) => Some(k),
            _ => None,
        };
        let d = &self.devices[dev as usize];
        let dead: Vec<u32> = match r {
            StepResult::Kill => return true,
            StepResult::Refused => {
                if entry.is_some() {
                    self.stats.unmasks_refused += 1;
                } else if action == GuestAction::Enable {
                    // pci_alloc_irq_vectors failed: no vector will be used.
                    self.stats.enables_refused += 1;
                    self.devices[dev as usize].granted = 0;
                }
                return false;
            }
            StepResult::Ok => Vec::new(),
            StepResult::Dead(list) => list,
            StepResult::DeadAll => (0..d.live.entries() as u32)
                .filter(|&j| d.live.contains(j as usize) || Some(j) == entry)
                .collect(),
        };
        for j in dead {
            events.push(done, Event::Dead(j, true));
        }
        if let Some(k) = entry {
            // QEMU's unmask sends what its PBA holds, then the vector is in use.
            events.push(done, Event::GuestMask(k, false));
            events.push(done, Event::Live(k, true));
        }
        false
    }

    /// Device `dev`'s driver enters `phase`. With a probe-time rate of its
    /// own, its live vectors move to the new phase's rate class.
    fn set_phase(&mut self, dev: u32, phase: Phase) {
        let d = &self.devices[dev as usize];
        if d.phase == phase {
            return;
        }
        if d.probe_class.is_none() {
            let d = &mut self.devices[dev as usize];
            d.phase = phase;
            d.roster.invalidate();
            return;
        }
        // Closed-loop entries keep their (zero) Poisson class in every phase.
        let live: Vec<u32> = d
            .live
            .iter()
            .map(|k| k as u32)
            .filter(|&k| d.closed_from.is_none_or(|f| k < f))
            .collect();
        for &k in &live {
            self.set_live(dev, k, false);
        }
        self.devices[dev as usize].phase = phase;
        self.devices[dev as usize].roster.invalidate();
        for &k in &live {
            self.set_live(dev, k, true);
        }
    }

    /// Fold entry `from`'s configured traffic onto entry `to` (a queue the
    /// driver spreads over the vectors it was granted).
    fn fold_traffic(&mut self, dev: u32, from: u32, to: u32) {
        if self.is_closed_loop(dev, from) || self.is_closed_loop(dev, to) {
            return; // closed-loop traffic follows the queue depth, not a rate
        }
        let d = &mut self.devices[dev as usize];
        let rate = self.sources.classes[d.base_class[from as usize] as usize].rate;
        if d.folded.is_empty() {
            d.folded = vec![0.0; d.live.entries()];
        }
        d.folded[to as usize] += rate;
        let total =
            self.sources.classes[d.base_class[to as usize] as usize].rate + d.folded[to as usize];
        // Past u16::MAX distinct rates the fold keeps its last class (a
        // bound no real program reaches; the books stay balanced either way).
        if let Some(class) = self.sources.class_of(total) {
            self.set_class(dev, to, class);
        }
    }

    /// Undo every fold of device `dev` (a new grant).
    fn unfold_traffic(&mut self, dev: u32) {
        let d = &mut self.devices[dev as usize];
        if d.folded.is_empty() {
            return;
        }
        d.folded.clear();
        for k in 0..d.live.entries() as u32 {
            let base = self.devices[dev as usize].base_class[k as usize];
            self.set_class(dev, k, base);
        }
    }

    /// Move entry `k` of `dev` to rate class `class`, live or not.
    fn set_class(&mut self, dev: u32, k: u32, class: u16) {
        let d = &self.devices[dev as usize];
        if d.class[k as usize] == class {
            return;
        }
        let live = d.live.contains(k as usize);
        if live {
            self.set_live(dev, k, false);
        }
        self.devices[dev as usize].class[k as usize] = class;
        self.devices[dev as usize].roster.invalidate();
        if live {
            self.set_live(dev, k, true);
        }
    }

    /// Kill every device of VM `vm`: no more steps, every vector stops, and
    /// the VMM's exit closes each device's VFIO file, which disables its
    /// MSI-X index (`vfio_pci_core_close_device`): the host gets the VM's
    /// CPU vectors, IRTEs and KVM routes back.
    fn kill_vm(&mut self, vm: u32) -> Result<()> {
        self.stats.guest_kills += 1;
        let now = self.now as u64;
        for i in 0..self.devices.len() as u32 {
            if self.devices[i as usize].vm != vm {
                continue;
            }
            if self.cfg.mode == Mode::Aggregated {
                self.book_device(i, self.now)?;
            }
            self.devices[i as usize].halted = true;
            for k in 0..self.devices[i as usize].live.entries() as u32 {
                self.set_live(i, k, false);
            }
            let (slot, buffer) = self.take_batch();
            let mut events = StepEvents::new(buffer, now);
            let mut clock = now;
            self.host
                .exec(
                    i,
                    &HostOp::DisableIndex,
                    &mut clock,
                    &self.cfg.timing,
                    &mut events,
                )
                .map_err(Error::from)?;
            // One operation's effects are in time order: its clock only
            // moves forward.
            self.schedule_batch(i, now, slot, events);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeviceConfig, SimConfig};
    use rand::{RngExt, SeedableRng};

    /// The runs scheduled, in queue order: each one's time and events (the
    /// entries of their `Live` events).
    fn scheduled(e: &mut Engine) -> Vec<(u64, Vec<u32>)> {
        let mut out = Vec::new();
        while let Some(s) = e.heap.pop() {
            let What::Batch(run) = s.what else { continue };
            let batch = &e.batches[run.slot as usize];
            let t0 = batch[run.start as usize].0;
            let ks = batch[run.start as usize..]
                .iter()
                .take_while(|(t, _)| *t == t0)
                .map(|&(_, ev)| match ev {
                    Event::Live(k, _) => k,
                    _ => u32::MAX,
                })
                .collect();
            out.push((s.t, ks));
        }
        out
    }

    #[test]
    fn a_batch_is_scheduled_as_a_stable_sort_then_a_run_per_time() {
        // Against the plain way: a stable sort, then a run per distinct
        // time (at `now` at the earliest). Few runs or many, in order or
        // not.
        let cfg = SimConfig::builder()
            .device(DeviceConfig::new(4))
            .max_time_ns(1_000_000)
            .build()
            .unwrap();
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        for case in 0..400 {
            let mut e = Engine::new(cfg.clone()).unwrap();
            e.heap = crate::engine::control_queue::ControlQueue::default();
            let n = rng.random_range(1..40u32);
            let spread = rng.random_range(1..12u64);
            let mut times: Vec<u64> = (0..n).map(|_| 100 + rng.random_range(0..spread)).collect();
            if case % 2 == 0 {
                times.sort_unstable();
            }
            let now = 100 + rng.random_range(0..4u64);
            let mut sorted: Vec<(u64, u32)> = times.iter().copied().zip(0..).collect();
            sorted.sort_by_key(|&(t, _)| t);
            let mut want: Vec<(u64, Vec<u32>)> = Vec::new();
            let mut last = None;
            for (t, k) in sorted {
                if last == Some(t) {
                    want.last_mut().unwrap().1.push(k);
                } else {
                    want.push((t.max(now), vec![k]));
                    last = Some(t);
                }
            }
            let (slot, buffer) = e.take_batch();
            let mut events = StepEvents::new(buffer, now);
            for (&t, k) in times.iter().zip(0..) {
                events.push(t, Event::Live(k, true));
            }
            e.schedule_batch(0, now, slot, events);
            assert_eq!(scheduled(&mut e), want, "case {case}: {times:?}");
        }
    }
}
