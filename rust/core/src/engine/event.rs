//! The engine's timed events. Host effects ([`HostFx`]) are one kind; the
//! others are the engine's own bookkeeping at a step's completion time.

use crate::host::{FxSink, HostFx};

/// Something that happens to a device at a simulated time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Event {
    /// An effect of the host on the device's table.
    Host(HostFx),
    /// The guest driver starts (true) or stops (false) using entry `k`.
    Live(u32, bool),
    /// The guest masks (true) or unmasks (false) entry `k` in QEMU's
    /// emulated table.
    GuestMask(u32, bool),
    /// The host's setup of entry `k` failed (true) or works again (false).
    Dead(u32, bool),
    /// A guest unmask of a new highest entry completed (a resize request).
    RequestDone,
    /// Function Level Reset of the physical device: table and PBA to reset
    /// state; every latched event is lost.
    Reset,
}

/// A guest step's events take the host's effects as they come: each is an
/// [`Event::Host`] at its time, after the step's own events so far.
impl FxSink for Vec<(u64, Event)> {
    #[inline]
    fn push_fx(&mut self, at: u64, fx: HostFx) {
        self.push((at, Event::Host(fx)));
    }
}

/// What a scheduled control event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum What {
    /// The device's next guest driver step.
    Step,
    /// A run of same-time events of one step's batch.
    Batch(Run),
    /// The device's next forged write (docs/spoof.md).
    Forge,
}

/// One run of a step's events: those of the batch in `slot` (an index into
/// the engine's batches) from index `start` on that share its time. A step's
/// events stay in one batch, in time order, and each distinct time is a run
/// scheduled at that time (measured with callgrind: a copy of each run into
/// a batch of its own was three memcpys per resize).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Run {
    pub slot: u32,
    pub start: u32,
}

/// A control event in the engine's queue: time, then insertion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Scheduled {
    pub t: u64,
    pub seq: u64,
    pub dev: u32,
    pub what: What,
}

impl Scheduled {
    /// Time, then insertion order, as one number: `seq` is unique, so it
    /// orders events as a comparison of every field would.
    #[inline]
    fn key(&self) -> u128 {
        (u128::from(self.t) << 64) | u128::from(self.seq)
    }
}

/// By [`Scheduled::key`] (measured with callgrind: the derived comparison,
/// field by field, was about 0.3 % of a resize in the queue's sifts).
impl Ord for Scheduled {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Scheduled {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn the_queue_order_is_time_then_insertion_order() {
        // Against a comparison of (t, seq) as a pair, across the 64-bit
        // boundary of the key.
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let pick = |rng: &mut rand_xoshiro::Xoshiro256PlusPlus| match rng.random_range(0..3) {
            0 => rng.random_range(0..4u64),
            1 => u64::MAX - rng.random_range(0..4u64),
            _ => rng.random(),
        };
        for _ in 0..2000 {
            let a = Scheduled {
                t: pick(&mut rng),
                seq: pick(&mut rng),
                dev: 1,
                what: What::Step,
            };
            let b = Scheduled {
                t: pick(&mut rng),
                seq: pick(&mut rng),
                dev: 0,
                what: What::Forge,
            };
            assert_eq!(a.cmp(&b), (a.t, a.seq).cmp(&(b.t, b.seq)), "{a:?} {b:?}");
            assert_eq!(a.partial_cmp(&b), Some(a.cmp(&b)));
        }
    }
}
