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

/// How many runs of one time a [`StepEvents`] notes where they start (a
/// resize has three); past them the runs are searched for.
const RUNS_NOTED: usize = 4;

/// A step's events as they come (the guest's own, the host's effects, the
/// step's completion events), in the buffer of the batch they will be
/// scheduled from. Each push notes whether the times are still in order
/// and where a new time starts a run (measured with callgrind: a walk over
/// the events for both, once the step was done, cost twice as much).
#[derive(Debug)]
pub(super) struct StepEvents {
    events: Vec<(u64, Event)>,
    /// The time of the last event (the step's start before the first).
    last: u64,
    /// Where the runs after the first start, up to [`RUNS_NOTED`] runs.
    starts: [u32; RUNS_NOTED],
    /// How many runs there are (in time order).
    runs: usize,
    sorted: bool,
}

impl StepEvents {
    /// An empty list in `events` (emptied), for a step at `now`.
    pub(super) fn new(mut events: Vec<(u64, Event)>, now: u64) -> Self {
        events.clear();
        Self {
            events,
            last: now,
            // The first run starts at the first event, whatever its time.
            starts: [0; RUNS_NOTED],
            runs: 1,
            sorted: true,
        }
    }

    /// Event `ev` at `at`, after those so far.
    #[inline]
    pub(super) fn push(&mut self, at: u64, ev: Event) {
        if at != self.last {
            self.new_time(at);
        }
        self.events.push((at, ev));
    }

    /// The next event, at `at`, starts a run, or breaks the time order.
    #[inline]
    fn new_time(&mut self, at: u64) {
        if self.events.is_empty() {
            // Still the first run.
        } else if at < self.last {
            self.sorted = false;
        } else {
            if let Some(s) = self.starts.get_mut(self.runs) {
                *s = self.events.len() as u32;
            }
            self.runs += 1;
        }
        self.last = at;
    }

    /// The events, and where each run of one time starts, if they are in
    /// time order and their runs were noted.
    pub(super) fn into_parts(self) -> (Vec<(u64, Event)>, Option<RunStarts>) {
        let noted = (self.sorted && self.runs <= RUNS_NOTED).then_some(RunStarts {
            starts: self.starts,
            runs: self.runs,
        });
        (self.events, noted)
    }
}

/// Where the runs of a step's events start, as its [`StepEvents`] noted.
#[derive(Debug, Clone, Copy)]
pub(super) struct RunStarts {
    starts: [u32; RUNS_NOTED],
    runs: usize,
}

impl RunStarts {
    /// The index of each run's first event, in order.
    pub(super) fn as_slice(&self) -> &[u32] {
        &self.starts[..self.runs]
    }
}

/// A guest step's events take the host's effects as they come: each is an
/// [`Event::Host`] at its time, after the step's own events so far.
impl FxSink for StepEvents {
    #[inline]
    fn push_fx(&mut self, at: u64, fx: HostFx) {
        self.push(at, Event::Host(fx));
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
    pub(super) fn key(&self) -> u128 {
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
