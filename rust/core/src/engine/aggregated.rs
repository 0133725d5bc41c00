//! Aggregated mode: between control events a device's state is constant, so
//! each live vector's fires over an interval are one Poisson count, booked
//! by outcome class instead of drawn one by one.

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Poisson};

use super::Engine;
use crate::books::Outcome;
use crate::error::{Error, Result};
use crate::vector_table::DisabledMode;

/// Expected fires per vector below which the vectors booked one by one are
/// fired one by one (each fire a pick and a table fire, ≈ 50 instructions,
/// against ≈ 90 for a Poisson draw per vector).
const FIRES_PER_VECTOR: f64 = 2.0;

/// The index in `slow` whose share of the cumulative rates holds `x`
/// (`0 ≤ x < total rate`); the last one if rounding leaves `x` past them all.
fn pick_by_rate(slow: &[(u32, f64)], mut x: f64) -> usize {
    for (i, &(_, r)) in slow.iter().enumerate() {
        if x < r {
            return i;
        }
        x -= r;
    }
    slow.len() - 1
}

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
        let (mut send, mut lost, mut intx) = (0.0f64, 0.0f64, 0.0f64);
        // When `slow` is the whole roster: its total rate and whether its
        // rates are one, which the roster knows without a pass over it.
        let mut whole = None;
        // The engine keeps the list's allocation between bookings.
        let mut slow = std::mem::take(&mut self.slow);
        slow.clear();
        self.devices[di].refresh_roster(&self.sources.classes);
        let d = &self.devices[di];
        let phase = d.phase;
        let roster = &d.roster;
        // Dead vectors fail whatever the table does.
        let failed = roster.dead_rate();
        // The roster's vectors, by what the table's control decides for all
        // of them; the sums add in entry order as the roster's own do.
        if !d.table.is_enabled() {
            // While Enable is clear a lost or INTx-diverting table decides
            // every fire without the entry or the IOMMU; a latching one
            // (Pending) sends none of them now.
            match d.table.disabled_mode() {
                DisabledMode::Lost => lost = roster.alive_rate(),
                DisabledMode::Intx => intx = roster.alive_rate(),
                DisabledMode::Pending => {
                    slow.extend_from_slice(roster.alive());
                    whole = Some((roster.alive_rate(), roster.uniform()));
                }
            }
        } else if d.table.is_function_masked() {
            // Function Mask: every fire latches its pending bit.
            slow.extend_from_slice(roster.alive());
            whole = Some((roster.alive_rate(), roster.uniform()));
        } else {
            // A vector the table would not send now (entry Mask), the guest
            // masked (held by QEMU) or the IOMMU would block goes one by one.
            let prober = self.host.prober(dev);
            for &(k, rate) in roster.alive() {
                let ku = k as usize;
                let e = d.table.entry(ku)?;
                let sends = !e.is_masked()
                    && !d.guest_masked.contains(ku)
                    && prober.as_ref().is_some_and(|p| p.sends(&e.message()));
                if sends {
                    send += rate;
                } else {
                    slow.push((k, rate));
                }
            }
        }
        for (outcome, rate) in [
            (Outcome::Delivered, send),
            (Outcome::Lost, lost),
            (Outcome::Intx, intx),
            (Outcome::Failed, failed),
        ] {
            // Most bookings have one or two classes with fires: a zero mean
            // draws nothing and books nothing, so it costs no call.
            let mean = rate * dt;
            if mean <= 0.0 {
                continue;
            }
            let n = self.poisson(mean)?;
            self.books.fire_n(phase, outcome, n);
        }
        self.book_one_by_one(dev, phase, dt, &slow, whole)?;
        self.slow = slow;
        Ok(())
    }

    /// Book the fires over `dt` seconds of the vectors in `slow` (ascending
    /// `(entry, rate)`), whose fires go through the real table and IOMMU one
    /// by one: they latch a pending bit, coalesce into it, or are blocked
    /// (each a fault). Below [`FIRES_PER_VECTOR`] expected fires per vector
    /// their merged count is one Poisson draw and each fire picks its vector
    /// in proportion to its rate (Poisson splitting: the same law as a count
    /// per vector, for a draw or two instead of one per vector). Above it,
    /// each vector's count is drawn, its first fire goes through the table
    /// and the rest are booked as they would end. `whole`, when given, is
    /// `slow`'s total rate (summed in its order) and whether its rates are
    /// all one; without it both are read off `slow`.
    fn book_one_by_one(
        &mut self,
        dev: u32,
        phase: crate::config::Phase,
        dt: f64,
        slow: &[(u32, f64)],
        whole: Option<(f64, bool)>,
    ) -> Result<()> {
        let Some(&(_, first_rate)) = slow.first() else {
            return Ok(());
        };
        let (total, equal) = whole.unwrap_or_else(|| {
            let total: f64 = slow.iter().map(|&(_, r)| r).sum();
            let equal = slow
                .iter()
                .all(|&(_, r)| r.to_bits() == first_rate.to_bits());
            (total, equal)
        });
        if total * dt <= FIRES_PER_VECTOR * slow.len() as f64 {
            let n = self.poisson(total * dt)?;
            for _ in 0..n {
                let i = if equal {
                    ((u128::from(self.rng.next_u64()) * slow.len() as u128) >> 64) as usize
                } else {
                    pick_by_rate(slow, self.rng.random::<f64>() * total)
                };
                let outcome = self.fire_table(dev, slow[i].0)?;
                self.books.fire(phase, outcome);
            }
            return Ok(());
        }
        for &(k, rate) in slow {
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
                        let msg = self.devices[dev as usize]
                            .table
                            .entry(k as usize)?
                            .message();
                        let o = self.deliver(dev, k, msg);
                        self.books.fire(phase, o);
                    }
                    continue;
                }
                o => o,
            };
            self.books.fire_n(phase, rest, n - 1);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Action, DeviceConfig, PolicyKind, SimConfig, Step};
    use crate::vector_table::{MSIX_CONTROL_ENABLE, MSIX_CONTROL_FUNCTION_MASK};

    /// Book a function-masked interval of `dt_ns` on 32 live vectors at
    /// `rate` each, `trials` times: the mean fires and latched vectors per
    /// interval, against `32·λ` and `32·(1 − e^−λ)` for `λ = rate·dt`.
    fn masked_intervals(rate: f64, dt_ns: u64, trials: u32) {
        let m = 32u32;
        let mut program = vec![Step::now(Action::Enable)];
        program.extend((0..m).map(|k| Step::now(Action::Unmask { entry: k })));
        let cfg = SimConfig::builder()
            .max_time_ns(u64::MAX / 2)
            .policy(PolicyKind::Dynamic)
            .mode(crate::config::Mode::Aggregated)
            .device(DeviceConfig::new(m).rate(rate).program(program))
            .seed(11)
            .build()
            .unwrap();
        let mut e = Engine::new(cfg).unwrap();
        e.step_until(1_000_000).unwrap();
        assert_eq!(e.devices[0].live.iter().count(), m as usize);
        let (mut fired, mut latched) = (0.0, 0.0);
        for _ in 0..trials {
            let before = e.books();
            e.devices[0]
                .table
                .set_control(MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK);
            let t = e.devices[0].booked_until + dt_ns as f64;
            e.book_device(0, t).unwrap();
            let after = e.books();
            fired += (after.fired - before.fired) as f64;
            latched += (after.get(Outcome::Pending) - before.get(Outcome::Pending)) as f64;
            // Unmask the function: the latched bits are sent (not booked
            // here: only the interval's own outcomes are measured).
            e.devices[0].table.set_control(MSIX_CONTROL_ENABLE);
        }
        let n = f64::from(trials);
        let lambda = rate * dt_ns as f64 * 1e-9;
        let (ef, el) = (
            f64::from(m) * lambda,
            f64::from(m) * (1.0 - (-lambda).exp()),
        );
        // Fires per interval: Poisson(32λ); latched: Binomial(32, 1 − e^−λ).
        let sd_f = (ef / n).sqrt();
        let p = 1.0 - (-lambda).exp();
        let sd_l = (f64::from(m) * p * (1.0 - p) / n).sqrt();
        assert!(
            (fired / n - ef).abs() < 4.0 * sd_f,
            "fires {} vs {ef}",
            fired / n
        );
        assert!(
            (latched / n - el).abs() < 4.0 * sd_l,
            "latched {} vs {el}",
            latched / n
        );
    }

    #[test]
    fn a_masked_interval_fired_one_by_one_has_the_law_of_a_count_per_vector() {
        // λ = 0.32 per vector: the merged count and a pick per fire.
        masked_intervals(20_000.0, 16_000, 4_000);
    }

    #[test]
    fn a_long_masked_interval_draws_a_count_per_vector() {
        // λ = 5 per vector: above FIRES_PER_VECTOR, one draw per vector.
        masked_intervals(50_000.0, 100_000, 2_000);
    }
}
