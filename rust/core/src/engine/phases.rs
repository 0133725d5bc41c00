//! The books kept per phase of the driver (probe, runtime): every fired
//! interrupt is booked in the phase its device was in when it fired, every
//! resize request in the phase it completed in, and the two always sum to
//! the run's totals.

use crate::books::{add_count, Books, Outcome};
use crate::config::Phase;
use crate::error::Result;

/// Books and resize requests by phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhaseBooks {
    books: [Books; 2],
    requests: [u64; 2],
}

impl PhaseBooks {
    /// One fired interrupt and its outcome, in `phase`.
    #[inline]
    pub fn fire(&mut self, phase: Phase, outcome: Outcome) {
        self.books[phase as usize].fire(outcome);
    }

    /// `n` fired interrupts with one outcome, in `phase`.
    #[inline]
    pub fn fire_n(&mut self, phase: Phase, outcome: Outcome, n: u64) {
        self.books[phase as usize].fire_n(outcome, n);
    }

    /// A pending interrupt fired in `phase` ends as `to`.
    pub fn settle_pending(&mut self, phase: Phase, to: Outcome) -> Result<()> {
        self.books[phase as usize].settle_pending(to)
    }

    /// One resize request completed in `phase`.
    pub fn request(&mut self, phase: Phase) {
        self.requests[phase as usize] += 1;
    }

    /// The books of `phase`.
    pub fn books(&self, phase: Phase) -> Books {
        self.books[phase as usize]
    }

    /// Resize requests completed in `phase`.
    pub fn requests(&self, phase: Phase) -> u64 {
        self.requests[phase as usize]
    }

    /// Resize requests over both phases (saturating, as [`Books::total`]).
    pub fn total_requests(&self) -> u64 {
        self.requests[0].saturating_add(self.requests[1])
    }

    /// The books over both phases; `InvalidArgument` if a sum passes
    /// `u64::MAX` (only books parsed from JSON can).
    pub fn total(&self) -> Result<Books> {
        let mut t = self.books[0];
        t.merge(&self.books[1])?;
        Ok(t)
    }

    /// Check conservation in each phase (and so in total).
    pub fn check(&self) -> Result<()> {
        self.books.iter().try_for_each(Books::check)
    }

    /// Fold another run's phase books in; `InvalidArgument`, and nothing
    /// changes, if a count would pass `u64::MAX`.
    pub fn merge(&mut self, o: &PhaseBooks) -> Result<()> {
        let mut sum = *self;
        for (a, b) in sum.books.iter_mut().zip(&o.books) {
            a.merge(b)?;
        }
        for (a, b) in sum.requests.iter_mut().zip(&o.requests) {
            *a = add_count(*a, *b)?;
        }
        *self = sum;
        Ok(())
    }

    /// Build from per-phase books and requests (in [`Phase::ALL`] order).
    pub fn from_parts(books: [Books; 2], requests: [u64; 2]) -> Self {
        Self { books, requests }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_sum_to_the_totals() {
        let mut p = PhaseBooks::default();
        p.fire(Phase::Probe, Outcome::Lost);
        p.fire(Phase::Runtime, Outcome::Pending);
        p.fire_n(Phase::Runtime, Outcome::Delivered, 3);
        p.settle_pending(Phase::Runtime, Outcome::Delivered)
            .unwrap();
        p.request(Phase::Probe);
        let t = p.total().unwrap();
        assert_eq!(t.fired, 5);
        assert_eq!(t.get(Outcome::Delivered), 4);
        assert_eq!(p.books(Phase::Probe).get(Outcome::Lost), 1);
        assert_eq!(p.total_requests(), 1);
        p.check().unwrap();
        // A pending interrupt is settled in the phase it was fired in.
        assert!(p.settle_pending(Phase::Probe, Outcome::Delivered).is_err());
    }
}
