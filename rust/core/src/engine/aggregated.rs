//! Aggregated mode: between control events a device's state is constant, so
//! each live vector's fires over an interval are one Poisson count, booked
//! by outcome class instead of drawn one by one.

use rand_distr::{Distribution, Poisson};

use super::Engine;
use crate::books::Outcome;
use crate::error::{Error, Result};
use crate::vector_table::DisabledMode;

impl Engine {
    /// Book device `dev`'s fires from its last booking up to `t` (ns). Vectors
    /// that would send and route, or that would be lost, diverted to INTx or
    /// fail, are summed and sampled with one draw per class; a vector whose
    /// fires latch a pending bit, or are blocked, goes through the real table
    /// and IOMMU (first fire) with the rest booked as they would end. CPU
    /// queues and stale-queue timing are not simulated in this mode.
    pub(super) fn book_device(&mut self, dev: u32, t: f64) -> Result<()> {
        let di = dev as usize;
        let t0 = self.devices[di].booked_until;
        if t <= t0 {
            return Ok(());
        }
        self.devices[di].booked_until = t;
        let dt = (t - t0) * 1e-9;
        let (mut send, mut lost, mut intx, mut failed) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        // The engine keeps the list's allocation between bookings.
        let mut slow = std::mem::take(&mut self.slow);
        slow.clear();
        let d = &self.devices[di];
        let phase = d.phase;
        let enabled = d.table.is_enabled();
        let mode = d.table.disabled_mode();
        for (k, &live) in d.live.iter().enumerate() {
            if !live {
                continue;
            }
            let rate = self.sources.classes[d.class_of(k) as usize].rate;
            if rate <= 0.0 {
                continue;
            }
            if d.dead[k] {
                failed += rate;
            } else if !enabled && mode == DisabledMode::Lost {
                lost += rate;
            } else if !enabled && mode == DisabledMode::Intx {
                intx += rate;
            } else if d.table.can_send(k)?
                && self.host.probe(dev, k as u32, &d.table.entry(k)?.message())
            {
                send += rate;
            } else {
                slow.push((k as u32, rate));
            }
        }
        for (outcome, rate) in [
            (Outcome::Delivered, send),
            (Outcome::Lost, lost),
            (Outcome::Intx, intx),
            (Outcome::Failed, failed),
        ] {
            let n = self.poisson(rate * dt)?;
            self.books.fire_n(phase, outcome, n);
        }
        for &(k, rate) in &slow {
            let n = self.poisson(rate * dt)?;
            if n == 0 {
                continue;
            }
            // The first fire goes through the real table (sets the pending
            // bit, or is blocked by the IOMMU); the rest end the same way or
            // coalesce into the bit now set.
            let outcome = self.fire_table(dev, k)?;
            self.books.fire(phase, outcome);
            let rest = match outcome {
                Outcome::Pending | Outcome::Coalesced => Outcome::Coalesced,
                Outcome::Blocked => {
                    // Each blocked request is a fault: route them for real.
                    for _ in 1..n {
                        let msg = self.devices[di].table.entry(k as usize)?.message();
                        let o = self.deliver(dev, k, msg);
                        self.books.fire(phase, o);
                    }
                    continue;
                }
                o => o,
            };
            self.books.fire_n(phase, rest, n - 1);
        }
        self.slow = slow;
        Ok(())
    }

    /// One Poisson(`mean`) count. The distribution of the last mean is kept:
    /// the vectors booked one by one over an interval mostly share a rate, so
    /// their means are equal and `e^-mean` is computed once (building the
    /// distribution draws nothing, so the stream of counts is unchanged).
    #[inline]
    fn poisson(&mut self, mean: f64) -> Result<u64> {
        if mean <= 0.0 {
            return Ok(0);
        }
        let bits = mean.to_bits();
        if !matches!(self.last_poisson, Some((b, _)) if b == bits) {
            let p = Poisson::new(mean)
                .map_err(|e| Error::InvalidArgument(format!("poisson mean {mean}: {e}")))?;
            self.last_poisson = Some((bits, p));
        }
        Ok(self
            .last_poisson
            .as_ref()
            .map_or(0.0, |(_, p)| p.sample(&mut self.rng)) as u64)
    }
}
