//! Aggregated mode: a device's roster — its live vectors as a booking sees
//! them, with their rates. Which vectors are live, dead or in which rate
//! class changes only at a few of the device's events (a vector started or
//! stopped, marked dead or set up again, moved to another class), while a
//! resize books the device three times; the roster is built at the first
//! booking after a change and read by the next ones, instead of every
//! booking walking the live set, its classes and its dead flags again. The
//! change a resize makes — its new highest vector started — is appended to
//! the roster as it happens, so the storm builds it once per cycle.

use super::entry_set::EntrySet;
use super::sources::RateClass;

/// The live vectors of one device that fire, split by whether they are
/// dead, valid until [`Roster::invalidate`].
#[derive(Debug, Clone, Default)]
pub(super) struct Roster {
    /// Built since the last change: the fields below are current.
    valid: bool,
    /// Live vectors with a positive rate that are not dead, ascending, with
    /// their rates: the ones the table and the IOMMU decide.
    alive: Vec<(u32, f64)>,
    /// Their rates summed in entry order (as a booking's pass sums them).
    alive_rate: f64,
    /// The rates of the live vectors with a positive rate that are dead,
    /// summed in entry order: their fires fail whatever the table does.
    dead_rate: f64,
    /// Every alive vector has the same rate, bit for bit (true when none):
    /// a booking of them all picks a fire's vector by index, not by rate.
    uniform: bool,
}

impl Roster {
    /// Something the roster is built from changed (a live, dead or class
    /// change of the device): the next booking builds it again.
    #[inline]
    pub fn invalidate(&mut self) {
        self.valid = false;
    }

    /// Live vector `k` (not live before) started at `rate`, `dead` or not:
    /// the roster stays current without a rebuild when the change is one
    /// the rebuild would make the same way — a rate that does not fire
    /// (left out), or an alive vector past every one listed (appended, its
    /// rate added last, as the rebuild's ascending walk adds it). Anything
    /// else invalidates it.
    pub fn started(&mut self, k: u32, rate: f64, dead: bool) {
        if !self.valid || rate <= 0.0 {
            return;
        }
        if dead || self.alive.last().is_some_and(|&(j, _)| j >= k) {
            self.valid = false;
            return;
        }
        self.uniform &= self
            .alive
            .first()
            .is_none_or(|&(_, r)| r.to_bits() == rate.to_bits());
        self.alive.push((k, rate));
        self.alive_rate += rate;
    }

    /// Whether it is current (built since the last change).
    #[inline]
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// Build the roster afresh: one walk of `live` in ascending order,
    /// skipping vectors whose rate (`classes` by `class_of`) is not
    /// positive, `dead` ones summed apart. The sums add in the order a
    /// booking's own pass added them, so they are the same bits.
    pub fn rebuild(
        &mut self,
        live: &EntrySet,
        dead: &[bool],
        classes: &[RateClass],
        class_of: impl Fn(usize) -> u16,
    ) {
        self.alive.clear();
        let (mut alive_rate, mut dead_rate) = (0.0f64, 0.0f64);
        for k in live.iter() {
            let rate = classes.get(class_of(k) as usize).map_or(0.0, |c| c.rate);
            if rate <= 0.0 {
                continue;
            }
            if dead.get(k).copied().unwrap_or(false) {
                dead_rate += rate;
            } else {
                alive_rate += rate;
                self.alive.push((k as u32, rate));
            }
        }
        self.alive_rate = alive_rate;
        self.dead_rate = dead_rate;
        self.uniform = self
            .alive
            .first()
            .is_none_or(|&(_, r0)| self.alive.iter().all(|&(_, r)| r.to_bits() == r0.to_bits()));
        self.valid = true;
    }

    /// Whether both hold the same vectors and the same sums, bit for bit
    /// (the check that an unchanged roster is still current).
    pub fn same_as(&self, other: &Roster) -> bool {
        let bits = |v: &[(u32, f64)]| v.iter().map(|&(k, r)| (k, r.to_bits())).collect::<Vec<_>>();
        bits(&self.alive) == bits(&other.alive)
            && self.alive_rate.to_bits() == other.alive_rate.to_bits()
            && self.dead_rate.to_bits() == other.dead_rate.to_bits()
            && self.uniform == other.uniform
    }

    /// The live vectors that are not dead, ascending, with their rates.
    #[inline]
    pub fn alive(&self) -> &[(u32, f64)] {
        &self.alive
    }

    /// The sum of [`Roster::alive`]'s rates, in entry order.
    #[inline]
    pub fn alive_rate(&self) -> f64 {
        self.alive_rate
    }

    /// The sum of the dead live vectors' rates, in entry order.
    #[inline]
    pub fn dead_rate(&self) -> f64 {
        self.dead_rate
    }

    /// Whether every alive vector fires at one rate (bit for bit).
    #[inline]
    pub fn uniform(&self) -> bool {
        self.uniform
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roster_is_the_live_vectors_that_fire_split_by_dead() {
        let classes: Vec<RateClass> = [0.0, 0.1, 0.2, 1e16]
            .iter()
            .map(|&rate| RateClass {
                rate,
                members: Vec::new(),
            })
            .collect();
        let mut live = EntrySet::new(70);
        for k in [0, 1, 2, 3, 5, 64, 69] {
            live.set(k, true);
        }
        let class = |k: usize| [0u16, 1, 2, 3][k % 4];
        let mut dead = vec![false; 70];
        dead[2] = true;
        let mut r = Roster::default();
        assert!(!r.is_valid());
        r.rebuild(&live, &dead, &classes, class);
        assert!(r.is_valid());
        // Entry 0 (and 64) fire at rate 0: left out; 2 is dead.
        assert_eq!(r.alive(), [(1, 0.1), (3, 1e16), (5, 0.1), (69, 0.1)]);
        // Summed in entry order: (((0 + 0.1) + 1e16) + 0.1) + 0.1.
        let want: f64 = 0.1 + 1e16 + 0.1 + 0.1;
        assert_eq!(r.alive_rate().to_bits(), want.to_bits());
        assert_eq!(r.dead_rate().to_bits(), 0.2f64.to_bits());
        assert!(!r.uniform(), "0.1 and 1e16 are two rates");
        r.invalidate();
        assert!(!r.is_valid());
    }

    #[test]
    fn a_roster_knows_when_its_vectors_share_one_rate() {
        let classes: Vec<RateClass> = [5.0, 7.0]
            .iter()
            .map(|&rate| RateClass {
                rate,
                members: Vec::new(),
            })
            .collect();
        let mut live = EntrySet::new(8);
        let mut r = Roster::default();
        r.rebuild(&live, &[false; 8], &classes, |_| 0);
        assert!(r.uniform(), "no vector: one rate, vacuously");
        for k in [1, 4] {
            live.set(k, true);
        }
        r.rebuild(&live, &[false; 8], &classes, |_| 0);
        assert!(r.uniform());
        // A start at the same rate keeps it; at another rate it does not,
        // and the roster is the one a rebuild makes.
        r.started(5, 5.0, false);
        assert!(r.uniform());
        r.started(6, 7.0, false);
        assert!(!r.uniform());
        live.set(5, true);
        live.set(6, true);
        let mut fresh = Roster::default();
        fresh.rebuild(&live, &[false; 8], &classes, |k| u16::from(k == 6));
        assert!(fresh.same_as(&r) && !fresh.uniform());
    }
}
