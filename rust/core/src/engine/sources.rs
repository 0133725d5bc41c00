//! The interrupt sources: every live vector is a Poisson source; sources of
//! equal rate form a class, and all classes merge into one stream
//! (superposition) so each fire is one exponential draw and one pick.

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::hot_route::{HotRoute, Member};

/// Where a member is: its class and its position in the class.
pub(super) type Slot = (usize, usize);

/// Live vectors sharing one rate.
pub(super) struct RateClass {
    pub rate: f64,
    pub members: Vec<Member>,
}

/// The merged stream of every live vector.
pub(super) struct Sources {
    pub classes: Vec<RateClass>,
    /// Sum of every live vector's rate, per second.
    pub total_rate: f64,
    /// Mean gap between fires of the merged stream, ns (`1e9 / total_rate`):
    /// a multiply per fire instead of a division.
    pub mean_gap_ns: f64,
    /// Whether members keep the routes they are delivered by (only a test
    /// that checks they change nothing turns it off).
    pub learning: bool,
}

impl Default for Sources {
    fn default() -> Self {
        Self {
            classes: Vec::new(),
            total_rate: 0.0,
            mean_gap_ns: 0.0,
            learning: true,
        }
    }
}

impl Sources {
    /// The class of `rate` (created if new); `None` past `u16::MAX` classes.
    pub fn class_of(&mut self, rate: f64) -> Option<u16> {
        if let Some(i) = self
            .classes
            .iter()
            .position(|c| c.rate.to_bits() == rate.to_bits())
        {
            return Some(i as u16);
        }
        if self.classes.len() >= u16::MAX as usize {
            return None;
        }
        self.classes.push(RateClass {
            rate,
            members: Vec::new(),
        });
        Some((self.classes.len() - 1) as u16)
    }

    /// Add `(dev, k)` to class `c`; returns its position.
    pub fn add(&mut self, c: u16, dev: u32, k: u32) -> Option<u32> {
        let class = &mut self.classes[c as usize];
        if class.rate <= 0.0 {
            return None;
        }
        class.members.push(Member::new(dev, k));
        let pos = (class.members.len() - 1) as u32;
        self.recompute();
        Some(pos)
    }

    /// Remove the member at `pos` of class `c`; returns the member moved into
    /// its place, whose position is now `pos`.
    pub fn remove(&mut self, c: u16, pos: u32) -> Option<(u32, u32)> {
        let members = &mut self.classes[c as usize].members;
        members.swap_remove(pos as usize);
        let moved = members.get(pos as usize).map(|m| (m.dev, m.k));
        self.recompute();
        moved
    }

    fn recompute(&mut self) {
        self.total_rate = self
            .classes
            .iter()
            .map(|c| c.rate * c.members.len() as f64)
            .sum();
        self.mean_gap_ns = if self.total_rate > 0.0 {
            1e9 / self.total_rate
        } else {
            0.0
        };
    }

    /// The source of the next fire, chosen in proportion to its rate: where
    /// it is, and a copy of it.
    #[inline]
    pub fn pick(&self, rng: &mut Xoshiro256PlusPlus) -> (Slot, Member) {
        let r = rng.next_u64();
        if self.classes.len() == 1 {
            let m = &self.classes[0].members;
            let i = ((u128::from(r) * m.len() as u128) >> 64) as usize;
            return ((0, i), m[i]);
        }
        let mut x = (r >> 11) as f64 * (1.0 / (1u64 << 53) as f64) * self.total_rate;
        let last = self
            .classes
            .iter()
            .rposition(|c| !c.members.is_empty())
            .unwrap_or(0);
        for (ci, c) in self.classes.iter().enumerate() {
            let w = c.rate * c.members.len() as f64;
            if w <= 0.0 {
                continue;
            }
            if x < w || ci == last {
                let i = ((x / c.rate) as usize).min(c.members.len() - 1);
                return ((ci, i), c.members[i]);
            }
            x -= w;
        }
        ((last, 0), self.classes[last].members[0])
    }

    /// Remember the route the member at `slot` was delivered by.
    #[inline]
    pub fn learn(&mut self, (c, i): Slot, hot: HotRoute) {
        if !self.learning {
            return;
        }
        if let Some(m) = self.classes.get_mut(c).and_then(|c| c.members.get_mut(i)) {
            m.hot = hot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn classes_are_shared_by_rate_and_zero_rates_never_fire() {
        let mut s = Sources::default();
        let a = s.class_of(10.0).unwrap();
        let b = s.class_of(0.0).unwrap();
        assert_eq!(s.class_of(10.0), Some(a));
        assert_ne!(a, b);
        assert_eq!(s.add(b, 0, 0), None, "a silent source joins no stream");
        assert!(s.total_rate.abs() < f64::EPSILON);
    }

    #[test]
    fn removal_keeps_positions_and_the_total_rate() {
        let mut s = Sources::default();
        let c = s.class_of(1_000.0).unwrap();
        let pos: Vec<u32> = (0..4).map(|k| s.add(c, 0, k).unwrap()).collect();
        assert_eq!(pos, [0, 1, 2, 3]);
        assert!((s.total_rate - 4_000.0).abs() < 1e-9);
        assert!((s.mean_gap_ns - 250_000.0).abs() < 1e-9);
        // Removing position 1 moves the last member (entry 3) into it.
        assert_eq!(s.remove(c, 1), Some((0, 3)));
        let left: Vec<_> = s.classes[c as usize]
            .members
            .iter()
            .map(|m| (m.dev, m.k))
            .collect();
        assert_eq!(left, [(0, 0), (0, 3), (0, 2)]);
        assert!((s.total_rate - 3_000.0).abs() < 1e-9);
        assert_eq!(s.remove(c, 2), None, "the last member moves nothing");
    }

    #[test]
    fn a_learnt_route_stays_with_its_member_and_a_new_member_has_none() {
        let mut s = Sources::default();
        let c = s.class_of(1_000.0).unwrap();
        for k in 0..3 {
            s.add(c, 0, k);
        }
        let hot = HotRoute {
            gen: 5,
            epoch: 2,
            cpu: 7,
            vector: 0x41,
            phase: crate::config::Phase::Runtime,
        };
        s.learn((c as usize, 2), hot);
        // Entry 2 moves into position 0 with what it learnt.
        assert_eq!(s.remove(c, 0), Some((0, 2)));
        assert_eq!(s.classes[c as usize].members[0].hot, hot);
        s.add(c, 0, 0);
        assert_eq!(s.classes[c as usize].members[2].hot, HotRoute::default());
        // Past the members: nothing learnt, nothing broken.
        s.learn((c as usize, 9), hot);
        s.learn((9, 0), hot);
    }

    #[test]
    fn picks_follow_the_rates() {
        let mut s = Sources::default();
        let slow = s.class_of(1.0).unwrap();
        let fast = s.class_of(3.0).unwrap();
        s.add(slow, 0, 0);
        s.add(fast, 1, 0);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let n = 40_000;
        let fast_picks = (0..n)
            .filter(|_| s.pick(&mut rng).1 == Member::new(1, 0))
            .count();
        // 3 / 4 of the picks, within 5 standard deviations.
        let sd = (f64::from(n) * 0.75 * 0.25).sqrt();
        assert!(
            (fast_picks as f64 - 0.75 * f64::from(n)).abs() < 5.0 * sd,
            "{fast_picks}"
        );
    }
}
