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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Run {
    pub slot: u32,
    pub start: u32,
}

/// A control event in the engine's queue: time, then insertion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Scheduled {
    pub t: u64,
    pub seq: u64,
    pub dev: u32,
    pub what: What,
}
