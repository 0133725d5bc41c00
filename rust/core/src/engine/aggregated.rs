//! Aggregated mode: between control events a device's state is constant, so
//! each live vector's fires over an interval are one Poisson count, booked
//! by outcome class instead of drawn one by one.

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Poisson};

use super::device::Device;
use super::Engine;
use crate::books::Outcome;
use crate::error::{Error, Result};
use crate::host::Prober;
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

/// What decides, at a booking of an enabled, unmasked function, whether a
/// live vector's fires are sent now: its entry's Mask, the guest's mask and
/// the IOMMU.
struct SendTest<'h> {
    /// The device's IOMMU (none: every vector is held).
    prober: Option<Prober<'h>>,
    /// Some live vector is guest-masked (else no vector needs the test).
    guest_masks: bool,
}

impl SendTest<'_> {
    /// Whether live vector `k` of `d`, not guest-masked, sends now;
    /// `InvalidArgument` past the table.
    #[inline]
    fn sends(&self, d: &Device, k: u32) -> Result<bool> {
        let e = d.table.entry(k as usize)?;
        Ok(!e.is_masked() && self.prober.as_ref().is_some_and(|p| p.sends(&e.message())))
    }

    /// The index in `alive` of the first vector that does not send, if any;
    /// the error of the first one past the table, if it comes before.
    // Out of line, and the only caller of `sends`: the IOMMU's test has one
    // call site and is in line there (measured with callgrind: with two
    // copies, each was a call per vector).
    #[inline(never)]
    fn first_held(&self, d: &Device, alive: &[(u32, f64)]) -> Result<Option<usize>> {
        // Up to the first guest-masked vector (mostly there is none): the
        // guest's mask tested apart, so the scan below has one copy.
        let unmasked = if self.guest_masks {
            alive
                .iter()
                .position(|&(k, _)| d.guest_masked.contains(k as usize))
                .unwrap_or(alive.len())
        } else {
            alive.len()
        };
        for (i, &(k, _)) in alive[..unmasked].iter().enumerate() {
            if !self.sends(d, k)? {
                return Ok(Some(i));
            }
        }
        match alive.get(unmasked) {
            // Held by the guest; past the table it errs, as it would first.
            Some(&(k, _)) => d.table.entry(k as usize).map(|_| Some(unmasked)),
            None => Ok(None),
        }
    }

    /// The vectors of `alive` split: the rates of those that send summed in
    /// entry order (returned), the others pushed on `slow`. `held` is the
    /// first that does not send.
    fn split(
        &self,
        d: &Device,
        alive: &[(u32, f64)],
        mut held: usize,
        slow: &mut Vec<(u32, f64)>,
    ) -> Result<f64> {
        let mut send = 0.0f64;
        let mut from = 0;
        loop {
            // `alive[from..held]` all send; `alive[held]` does not.
            send = alive[from..held].iter().fold(send, |s, &(_, r)| s + r);
            slow.push(alive[held]);
            from = held + 1;
            match self.first_held(d, &alive[from..])? {
                Some(i) => held = from + i,
                None => break,
            }
        }
        Ok(alive[from..].iter().fold(send, |s, &(_, r)| s + r))
    }
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
        // When `slow` is the whole roster, which the table latches: its
        // total rate and whether its rates are one, which the roster knows
        // without a pass over it.
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
            let test = SendTest {
                prober: self.host.prober(dev),
                guest_masks: d.live.meets(&d.guest_masked),
            };
            // Mostly every vector sends: then their sum is the roster's own
            // (the same rates added in the same order from 0), and the scan
            // is a test per vector with no sum carried. Measured with
            // callgrind: 43 instructions a vector, against 68 for the loop
            // that summed and pushed (its sum lived on the stack, the push
            // may call) and tested the guest's mask bit by bit.
            match test.first_held(d, roster.alive())? {
                None => send = roster.alive_rate(),
                Some(i) => send = test.split(d, roster.alive(), i, &mut slow)?,
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
    /// all one, and says the table latches every fire (function-masked, or
    /// disabled in [`DisabledMode::Pending`]); without it both are read off
    /// `slow`.
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
            if whole.is_some() {
                return self.latch_merged(dev, phase, slow, n, equal, total);
            }
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

    /// [`Self::book_one_by_one`]'s merged fires when the table latches every
    /// one of them (`slow` is the whole roster of a function-masked table,
    /// or of a disabled one in [`DisabledMode::Pending`]): the same picks,
    /// each fire a pending bit set (booked pending, its phase latched) or
    /// one already set (coalesced), as [`Engine::fire_table`] ends them,
    /// with the device reached once for all of them, the table's latching
    /// checked once (each fire then only sets its bit: `VectorTable::latch`)
    /// and the books written once a class. Measured with callgrind: a fire
    /// through `fire_table` was about 80 instructions with its booking, and
    /// through the table's general `fire` 10 more than with `latch`.
    // Out of line: in `book_device` its loop kept the stream and the
    // counts on the stack (measured with callgrind).
    #[inline(never)]
    fn latch_merged(
        &mut self,
        dev: u32,
        phase: crate::config::Phase,
        slow: &[(u32, f64)],
        fires: u64,
        equal: bool,
        total: f64,
    ) -> Result<()> {
        let device = &mut self.devices[dev as usize];
        if !device.table.latches_every_fire() {
            return Err(Error::Accounting(
                "merged fires booked as latched on a table that sends some".into(),
            ));
        }
        let (mut pending, mut coalesced) = (0u64, 0u64);
        let mut result = Ok(());
        // The stream in a local for the loop, put back after: the same
        // draws, its state in registers (measured with callgrind: as a
        // field it was stored back at every draw, the table's and latch's
        // writes being through pointers that might alias it).
        let mut rng = self.rng.clone();
        for _ in 0..fires {
            let pick = if equal {
                ((u128::from(rng.next_u64()) * slow.len() as u128) >> 64) as usize
            } else {
                pick_by_rate(slow, rng.random::<f64>() * total)
            };
            let entry = slow[pick].0 as usize;
            match device.table.latch(entry) {
                Ok(true) => {
                    device.latch(entry);
                    pending += 1;
                }
                Ok(false) => coalesced += 1,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.rng = rng;
        // Booked as far as the fires went, as one by one they would be.
        self.books.fire_n(phase, Outcome::Pending, pending);
        self.books.fire_n(phase, Outcome::Coalesced, coalesced);
        result
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

    /// The split of `alive` the plain way: every vector tested in turn, the
    /// rates of those that send summed in order, the others listed.
    fn split_plain(
        d: &Device,
        prober: Option<&Prober<'_>>,
        alive: &[(u32, f64)],
    ) -> Result<(u64, Vec<(u32, f64)>)> {
        let (mut send, mut slow) = (0.0f64, Vec::new());
        for &(k, rate) in alive {
            let e = d.table.entry(k as usize)?;
            if !e.is_masked()
                && !d.guest_masked.contains(k as usize)
                && prober.is_some_and(|p| p.sends(&e.message()))
            {
                send += rate;
            } else {
                slow.push((k, rate));
            }
        }
        Ok((send.to_bits(), slow))
    }

    /// An aggregated engine 1 ms into a run of one device whose `n` entries
    /// were all enabled and unmasked at once (`dynamic`: no resize), each
    /// firing at `rate`.
    fn all_live(n: u32, rate: f64, seed: u64) -> Engine {
        let mut program = vec![Step::now(Action::Enable)];
        program.extend((0..n).map(|k| Step::now(Action::Unmask { entry: k })));
        let cfg = SimConfig::builder()
            .max_time_ns(u64::MAX / 2)
            .policy(PolicyKind::Dynamic)
            .mode(crate::config::Mode::Aggregated)
            .device(DeviceConfig::new(n).rate(rate).program(program))
            .seed(seed)
            .build()
            .unwrap();
        let mut engine = Engine::new(cfg).unwrap();
        engine.step_until(1_000_000).unwrap();
        engine
    }

    #[test]
    fn the_scan_for_held_vectors_splits_as_the_plain_test_of_each() {
        // Live vectors at mixed rates, then entry masks, guest masks and
        // messages the IOMMU blocks (or not) at random; and lists with a
        // vector past the table: the same sum (bits), the same held list,
        // the same error.
        use rand::SeedableRng;
        let n = 70u32;
        let mut engine = all_live(n, 1000.0, 5);
        let base = engine.devices[0].table.clone();
        let mut held_seen = 0;
        for seed in 0..300u64 {
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
            let d = &mut engine.devices[0];
            d.table = base.clone();
            d.guest_masked = super::super::entry_set::EntrySet::new(n as usize);
            // Most trials change nothing or little: the all-send scan too.
            let chance = [0.0, 0.01, 0.1, 0.5][seed as usize % 4];
            for k in 0..n as usize {
                if rng.random_bool(chance) {
                    d.table.mask_one(k).unwrap();
                }
                if rng.random_bool(chance) {
                    d.guest_masked.set(k, true);
                }
                if rng.random_bool(chance) {
                    let msg = d.table.entry(k).unwrap().message();
                    let bad = crate::msi::MsiMessage::new(
                        msg.address ^ (1 << rng.random_range(2..20)),
                        msg.data,
                    );
                    d.table.set_entry(k, bad).unwrap();
                }
            }
            let mut alive = Vec::new();
            for k in 0..n {
                if rng.random_bool(0.8) {
                    alive.push((k, [1.0, 0.1, 3e5][rng.random_range(0..3)]));
                }
            }
            if seed % 7 == 0 {
                alive.push((n + rng.random_range(0..3), 1.0));
            }
            let d = &engine.devices[0];
            let prober = engine.host.prober(0);
            let want = split_plain(d, prober.as_ref(), &alive);
            let test = SendTest {
                prober: engine.host.prober(0),
                guest_masks: d.live.meets(&d.guest_masked),
            };
            let mut slow = Vec::new();
            let got = test.first_held(d, &alive).and_then(|held| match held {
                None => Ok(alive.iter().fold(0.0f64, |s, &(_, r)| s + r)),
                Some(i) => test.split(d, &alive, i, &mut slow),
            });
            match (want, got) {
                (Ok((send, want_slow)), Ok(got_send)) => {
                    assert_eq!(send, got_send.to_bits(), "{seed}");
                    assert_eq!(want_slow, slow, "{seed}");
                    held_seen += slow.len();
                }
                (Err(want), Err(got)) => assert_eq!(want.to_string(), got.to_string(), "{seed}"),
                (want, got) => panic!("{seed}: {want:?} vs {got:?}"),
            }
        }
        assert!(held_seen > 100, "the trials hold vectors: {held_seen}");
    }

    #[test]
    fn merged_fires_on_a_latching_table_end_as_through_fire_table() {
        // Two engines in lockstep, the table function-masked or disabled in
        // the pending mode (latching) and released between intervals at
        // random: one books
        // the roster's merged fires as a latching table's, the other
        // through `fire_table` one by one. The same books, tables, latch
        // phases and random stream.
        use rand::SeedableRng;
        let n = 40u32;
        let (mut a, mut b) = (all_live(n, 20_000.0, 3), all_live(n, 20_000.0, 3));
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(9);
        let mut latched = 0;
        for trial in 0..300 {
            let control = if rng.random_bool(0.5) {
                MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK
            } else {
                0
            };
            let dt = rng.random_range(1_000.0..200_000.0) * 1e-9;
            // Uneven rates now and then: the picks by rate.
            let slow: Vec<(u32, f64)> = if trial % 3 == 0 {
                (0..n).map(|k| (k, 1000.0 * f64::from(1 + k % 4))).collect()
            } else {
                a.devices[0].roster.alive().to_vec()
            };
            let total: f64 = slow.iter().map(|&(_, r)| r).sum();
            let equal = slow
                .iter()
                .all(|&(_, r)| r.to_bits() == slow[0].1.to_bits());
            for e in [&mut a, &mut b] {
                e.devices[0].table.set_disabled_mode(DisabledMode::Pending);
                e.devices[0].table.set_control(control);
            }
            let phase = a.devices[0].phase;
            a.book_one_by_one(0, phase, dt, &slow, Some((total, equal)))
                .unwrap();
            b.book_one_by_one(0, phase, dt, &slow, None).unwrap();
            assert_eq!(a.books(), b.books(), "{trial}");
            assert_eq!(a.devices[0].table, b.devices[0].table, "{trial}");
            assert_eq!(a.devices[0].pending_phase, b.devices[0].pending_phase);
            assert_eq!(a.rng.next_u64(), b.rng.next_u64(), "{trial}");
            latched = a.devices[0].table.pending_count().max(latched);
            if rng.random_bool(0.3) {
                // Released: the latched bits are sent (not booked here).
                for e in [&mut a, &mut b] {
                    e.devices[0].table.set_control(MSIX_CONTROL_ENABLE);
                }
            }
        }
        assert!(latched > 10, "the trials latch: {latched}");
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
