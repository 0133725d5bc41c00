//! The outcome books: every fired interrupt ends in exactly one outcome, and
//! `fired == sum(outcomes)` is checked at the end of every run.

use crate::error::{Error, Result};

/// Where one fired interrupt ended up (docs/outcomes.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[non_exhaustive]
pub enum Outcome {
    /// Reached a host CPU's delivery queue.
    Delivered = 0,
    /// Still latched in the device PBA (or cause register) when the run ended.
    Pending = 1,
    /// Merged into a pending bit that was already set.
    Coalesced = 2,
    /// Fired while MSI-X Enable was clear and no INTx was signalled.
    Lost = 3,
    /// Diverted to INTx, which nobody handles on a VFIO host.
    Intx = 4,
    /// Blocked by the IOMMU (remapping fault).
    Blocked = 5,
    /// The vector's host setup failed (dead vector, killed guest's device).
    Failed = 6,
}

impl Outcome {
    /// Every outcome, in reporting order.
    pub const ALL: [Outcome; 7] = [
        Outcome::Delivered,
        Outcome::Pending,
        Outcome::Coalesced,
        Outcome::Lost,
        Outcome::Intx,
        Outcome::Blocked,
        Outcome::Failed,
    ];

    /// The outcome's name as used in results and the CLI.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Pending => "pending",
            Outcome::Coalesced => "coalesced",
            Outcome::Lost => "lost",
            Outcome::Intx => "intx",
            Outcome::Blocked => "blocked",
            Outcome::Failed => "failed",
        }
    }
}

/// Counters for fired interrupts by outcome. `Pending` is provisional while
/// a run goes on: a released pending bit moves its interrupt to another book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Books {
    /// Interrupts fired by device sources.
    pub fired: u64,
    /// Count per outcome, indexed by `Outcome as usize`.
    pub outcomes: [u64; 7],
}

impl Books {
    /// Record one fired interrupt with its immediate outcome (adds to `fired`).
    #[inline]
    pub fn fire(&mut self, outcome: Outcome) {
        self.fired += 1;
        self.outcomes[outcome as usize] += 1;
    }

    /// Record `n` fired interrupts with one outcome (aggregated sampling).
    #[inline]
    pub fn fire_n(&mut self, outcome: Outcome, n: u64) {
        self.fired += n;
        self.outcomes[outcome as usize] += n;
    }

    /// Move one interrupt from `Pending` to `to` (a pending bit was released
    /// or cleared). Errs if no interrupt is pending: that would be a leak.
    pub fn settle_pending(&mut self, to: Outcome) -> Result<()> {
        let p = &mut self.outcomes[Outcome::Pending as usize];
        if *p == 0 {
            return Err(Error::Accounting(format!(
                "a pending bit was settled as {} but no interrupt is pending",
                to.name()
            )));
        }
        *p -= 1;
        self.outcomes[to as usize] += 1;
        Ok(())
    }

    /// Count for one outcome.
    pub fn get(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome as usize]
    }

    /// Sum over all outcomes (saturating at `u64::MAX`: books parsed from
    /// JSON may hold any counts).
    pub fn total(&self) -> u64 {
        self.outcomes.iter().fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// Check conservation: every fired interrupt is in exactly one book.
    pub fn check(&self) -> Result<()> {
        let total = self.total();
        let exact: u128 = self.outcomes.iter().map(|&v| u128::from(v)).sum();
        if exact == u128::from(self.fired) {
            Ok(())
        } else {
            Err(Error::Accounting(format!(
                "fired {} but outcomes sum to {} ({})",
                self.fired,
                total,
                Outcome::ALL
                    .iter()
                    .map(|o| format!("{}={}", o.name(), self.get(*o)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// Add another run's books (merging replications). `InvalidArgument`,
    /// and nothing changes, if a count would pass `u64::MAX`.
    pub fn merge(&mut self, other: &Books) -> Result<()> {
        let mut sum = *self;
        sum.fired = add_count(self.fired, other.fired)?;
        for (a, b) in sum.outcomes.iter_mut().zip(other.outcomes.iter()) {
            *a = add_count(*a, *b)?;
        }
        *self = sum;
        Ok(())
    }
}

/// `a + b` for counts merged from several results; `InvalidArgument` past
/// `u64::MAX` (only results edited by hand get there).
pub fn add_count(a: u64, b: u64) -> Result<u64> {
    a.checked_add(b).ok_or_else(|| {
        Error::InvalidArgument(format!("result: merged count {a} + {b} exceeds 2^64 - 1"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conservation_holds_for_fires_and_settles() {
        let mut b = Books::default();
        b.fire(Outcome::Delivered);
        b.fire(Outcome::Pending);
        b.fire(Outcome::Coalesced);
        b.fire_n(Outcome::Lost, 5);
        b.settle_pending(Outcome::Delivered).unwrap();
        assert_eq!(b.fired, 8);
        assert_eq!(b.get(Outcome::Delivered), 2);
        assert_eq!(b.get(Outcome::Pending), 0);
        b.check().unwrap();
    }

    #[test]
    fn a_broken_path_is_caught() {
        let mut b = Books::default();
        b.fire(Outcome::Delivered);
        // A deliberately broken accounting path: an outcome with no fire.
        b.outcomes[Outcome::Lost as usize] += 1;
        let err = b.check().unwrap_err();
        assert!(matches!(err, Error::Accounting(_)));
        assert!(err.to_string().contains("fired 1 but outcomes sum to 2"));
    }

    #[test]
    fn settling_with_nothing_pending_is_an_error() {
        let mut b = Books::default();
        assert!(b.settle_pending(Outcome::Delivered).is_err());
        assert_eq!(b, Books::default());
    }

    #[test]
    fn names_are_stable() {
        let names: Vec<_> = Outcome::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(
            names,
            [
                "delivered",
                "pending",
                "coalesced",
                "lost",
                "intx",
                "blocked",
                "failed"
            ]
        );
    }
}
