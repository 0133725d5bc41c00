//! Closed-loop (request/response) sources: each live vector keeps `depth`
//! requests in flight; a completion raises the vector's interrupt, and only a
//! handled interrupt lets the driver issue the next request. A completion
//! that is lost (or blocked, or fired on a dead vector) leaves its request
//! stuck until the driver's timeout: a stale-queue episode of exactly the
//! timeout, unless the driver tears the queue down first.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand_distr::{Distribution, Exp1};

use super::trace::SpanKind;
use super::Engine;
use crate::books::Outcome;
use crate::error::{Error, Result};
use crate::vector_table::FireOutcome;

/// A closed-loop event due at a time: a completion, or a request's timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    /// The time, as the bits of a non-negative f64 (ordered like the value).
    t_bits: u64,
    seq: u64,
    dev: u32,
    k: u32,
    /// The vector's generation when this was scheduled: stale once the
    /// vector stopped.
    gen: u32,
    timeout: bool,
}

/// Every closed-loop event of a run, in time order.
#[derive(Default)]
pub(super) struct ClosedLoops {
    heap: BinaryHeap<Reverse<Due>>,
    seq: u64,
}

impl ClosedLoops {
    /// The time of the next event, ns (`f64::INFINITY` when none).
    #[inline]
    pub fn next_time(&self) -> f64 {
        self.heap
            .peek()
            .map_or(f64::INFINITY, |Reverse(d)| f64::from_bits(d.t_bits))
    }

    fn push(&mut self, t: f64, dev: u32, k: u32, gen: u32, timeout: bool) {
        self.seq += 1;
        self.heap.push(Reverse(Due {
            t_bits: t.max(0.0).to_bits(),
            seq: self.seq,
            dev,
            k,
            gen,
            timeout,
        }));
    }
}

/// One closed-loop vector's state.
#[derive(Debug, Clone, Default)]
pub(super) struct LoopState {
    /// Bumped when the vector stops: its scheduled events go stale.
    pub gen: u32,
    /// Completions whose interrupt waits in the PBA (latched or coalesced).
    pub waiting: u32,
    /// When each stuck request got stuck, oldest first.
    pub stuck_since: Vec<f64>,
}

impl Engine {
    /// Whether entry `k` of `dev` carries closed-loop traffic.
    #[inline]
    pub(super) fn is_closed_loop(&self, dev: u32, k: u32) -> bool {
        self.devices[dev as usize]
            .closed_from
            .is_some_and(|from| k >= from)
    }

    /// Issue `n` requests on `dev`'s vector `k` now.
    fn issue(&mut self, dev: u32, k: u32, n: u32) {
        let Some(cl) = &self.cfg.devices[dev as usize].closed_loop else {
            return;
        };
        let mean = cl.latency_ns as f64;
        let gen = self.devices[dev as usize].loops[k as usize].gen;
        for _ in 0..n {
            let e: f64 = Exp1.sample(&mut self.rng);
            let t = self.now + e * mean;
            self.loops.push(t, dev, k, gen, false);
        }
    }

    /// Vector `k` of `dev` became live: its queue starts with `depth` requests.
    pub(super) fn loop_start(&mut self, dev: u32, k: u32) {
        let depth = self.cfg.devices[dev as usize]
            .closed_loop
            .as_ref()
            .map_or(0, |c| c.depth);
        self.issue(dev, k, depth);
    }

    /// Vector `k` of `dev` stopped (masked, disabled, killed): its requests
    /// are abandoned and its stuck ones end now.
    pub(super) fn loop_stop(&mut self, dev: u32, k: u32) {
        let now = self.now;
        let s = &mut self.devices[dev as usize].loops[k as usize];
        s.gen = s.gen.wrapping_add(1);
        s.waiting = 0;
        for since in s.stuck_since.drain(..) {
            self.stats.stall_time_ns += (now - since) as u64;
            if let Some(t) = self.trace.as_deref_mut() {
                t.span(SpanKind::Stale, dev, k, since, now);
            }
        }
    }

    /// A request of `dev`'s vector `k` got stuck now: one stale-queue episode.
    fn stuck(&mut self, dev: u32, k: u32) {
        let timeout = self.cfg.devices[dev as usize]
            .closed_loop
            .as_ref()
            .map_or(0, |c| c.timeout_ns) as f64;
        let now = self.now;
        let s = &mut self.devices[dev as usize].loops[k as usize];
        s.stuck_since.push(now);
        let gen = s.gen;
        self.stats.stalls += 1;
        self.loops.push(now + timeout, dev, k, gen, true);
    }

    /// Process every closed-loop event due before `horizon` (ns).
    pub(super) fn loops_until(&mut self, horizon: f64) -> Result<()> {
        while self.loops.next_time() < horizon {
            self.loop_next()?;
        }
        Ok(())
    }

    /// Process the next closed-loop event.
    pub(super) fn loop_next(&mut self) -> Result<()> {
        let Some(Reverse(due)) = self.loops.heap.pop() else {
            return Ok(());
        };
        let (dev, k) = (due.dev, due.k);
        if self.devices[dev as usize].loops[k as usize].gen != due.gen {
            return Ok(()); // the vector stopped since
        }
        self.now = self.now.max(f64::from_bits(due.t_bits));
        if due.timeout {
            // The driver's timeout: the stuck request is aborted and reissued.
            let s = &mut self.devices[dev as usize].loops[k as usize];
            let since = (!s.stuck_since.is_empty()).then(|| s.stuck_since.remove(0));
            let timeout = self.cfg.devices[dev as usize]
                .closed_loop
                .as_ref()
                .map_or(0, |c| c.timeout_ns);
            self.stats.stall_timeouts += 1;
            self.stats.stall_time_ns += timeout;
            if let (Some(since), Some(t)) = (since, self.trace.as_deref_mut()) {
                t.span(SpanKind::Stale, dev, k, since, since + timeout as f64);
            }
            self.issue(dev, k, 1);
            return Ok(());
        }
        self.complete(dev, k)
    }

    /// A request of `dev`'s vector `k` completes now: the device fires.
    fn complete(&mut self, dev: u32, k: u32) -> Result<()> {
        let phase = self.devices[dev as usize].phase;
        if self.devices[dev as usize].dead[k as usize] {
            self.books.fire(phase, Outcome::Failed);
            self.stuck(dev, k);
            return Ok(());
        }
        let fired = self.devices[dev as usize].table.fire(k as usize)?;
        let outcome = match fired.outcome() {
            FireOutcome::Delivered => {
                let msg = fired.message().ok_or_else(|| {
                    Error::Accounting("a delivered fire carried no message".into())
                })?;
                let held = self.devices[dev as usize].guest_masked.contains(k as usize);
                let o = self.deliver(dev, k, msg);
                if o == Outcome::Blocked {
                    self.stuck(dev, k);
                } else if held {
                    // QEMU holds it for the masked vector: the request waits
                    // for the guest's unmask.
                    self.devices[dev as usize].loops[k as usize].waiting += 1;
                } else {
                    // Handled (or merged into the CPU's pending IRR bit, which
                    // the handler serves): the next request goes out.
                    self.issue(dev, k, 1);
                }
                o
            }
            FireOutcome::Pending | FireOutcome::Coalesced => {
                let d = &mut self.devices[dev as usize];
                d.loops[k as usize].waiting += 1;
                if fired.outcome() == FireOutcome::Pending {
                    d.latch(k as usize);
                    Outcome::Pending
                } else {
                    Outcome::Coalesced
                }
            }
            FireOutcome::Lost => {
                self.stuck(dev, k);
                Outcome::Lost
            }
            FireOutcome::Intx => {
                self.stuck(dev, k);
                Outcome::Intx
            }
        };
        self.books.fire(phase, outcome);
        self.trace_interrupt(dev, k, outcome);
        Ok(())
    }

    /// `dev`'s vector `k` had its latched interrupt released with `outcome`:
    /// the driver handles every completion that waited, or they stay stuck.
    pub(super) fn loop_released(&mut self, dev: u32, k: u32, outcome: Outcome) {
        if outcome != Outcome::Blocked
            && self.devices[dev as usize].guest_masked.contains(k as usize)
        {
            return; // QEMU holds it until the guest unmasks: still waiting
        }
        let waiting = std::mem::take(&mut self.devices[dev as usize].loops[k as usize].waiting);
        match outcome {
            Outcome::Delivered | Outcome::Coalesced => self.issue(dev, k, waiting),
            _ => (0..waiting).for_each(|_| self.stuck(dev, k)),
        }
    }

    /// `dev`'s PBA was cleared (function reset): every waiting completion is
    /// gone and its request stuck.
    pub(super) fn loops_reset(&mut self, dev: u32) {
        for k in 0..self.devices[dev as usize].loops.len() as u32 {
            let waiting = std::mem::take(&mut self.devices[dev as usize].loops[k as usize].waiting);
            (0..waiting).for_each(|_| self.stuck(dev, k));
        }
    }

    /// Settle the stuck requests still open at `end`.
    pub(super) fn settle_loops(&self, end: f64, stats: &mut super::RunStats) {
        for d in &self.devices {
            for s in &d.loops {
                for since in &s.stuck_since {
                    stats.stalls_open += 1;
                    stats.stall_time_ns += (end - since) as u64;
                }
            }
        }
    }
}
