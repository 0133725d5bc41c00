//! Stale-queue episodes: a vector that lost an interrupt is stalled until
//! its next delivery, or until its driver's timeout, whichever comes first.

use super::trace::SpanKind;
use super::Engine;
use crate::books::Outcome;

impl Engine {
    /// Whether an interrupt of `dev`'s entry `k` booked `outcome` leaves
    /// every stall as it is: the common case (delivered, no stall open on
    /// its vector), on the hot path.
    #[inline]
    pub(super) fn stall_untouched(&self, dev: u32, k: u32, outcome: Outcome) -> bool {
        outcome == Outcome::Delivered && !self.devices[dev as usize].stall_open(k as usize)
    }

    /// Open or close vector `k`'s stale-queue episode after a fire.
    #[inline]
    pub(super) fn track_stall(&mut self, dev: u32, k: u32, outcome: Outcome) {
        if !self.stall_untouched(dev, k, outcome) {
            self.track_stall_slow(dev, k, outcome);
        }
    }

    #[inline(never)]
    pub(super) fn track_stall_slow(&mut self, dev: u32, k: u32, outcome: Outcome) {
        let timeout = self.cfg.stall_timeout_ns as f64;
        let now = self.now;
        let k = k as usize;
        match outcome {
            Outcome::Delivered => {
                if let Some(s) = self.devices.close_stall(dev as usize, k) {
                    let dur = now - s;
                    if dur >= timeout {
                        self.stats.stall_timeouts += 1;
                    }
                    self.stats.stall_time_ns += dur.min(timeout) as u64;
                    if let Some(t) = self.trace.as_deref_mut() {
                        t.span(SpanKind::Stale, dev, k as u32, s, s + dur.min(timeout));
                    }
                }
            }
            Outcome::Lost | Outcome::Intx | Outcome::Failed | Outcome::Blocked => {
                let d = &mut self.devices[dev as usize];
                if let Some(s) = d.stall_began(k).filter(|s| now - s >= timeout) {
                    // The previous stall ended at its timeout; a new one starts.
                    d.close_stall(k);
                    self.stats.stall_timeouts += 1;
                    self.stats.stall_time_ns += timeout as u64;
                    if let Some(t) = self.trace.as_deref_mut() {
                        t.span(SpanKind::Stale, dev, k as u32, s, s + timeout);
                    }
                }
                if !d.stall_open(k) {
                    d.open_stall(k, now);
                    self.stats.stalls += 1;
                }
            }
            Outcome::Pending | Outcome::Coalesced => {}
        }
    }

    /// Settle the stalls still open at `end`: each lasted until its timeout
    /// or is still open.
    pub(super) fn settle_stalls(&self, end: f64, stats: &mut super::RunStats) {
        let timeout = self.cfg.stall_timeout_ns as f64;
        for d in &self.devices {
            for s in d.stall_starts().iter().flatten() {
                let dur = end - s;
                if dur >= timeout {
                    stats.stall_timeouts += 1;
                    stats.stall_time_ns += timeout as u64;
                } else {
                    stats.stalls_open += 1;
                    stats.stall_time_ns += dur as u64;
                }
            }
        }
    }
}
