//! What a live vector's next fire does when nothing it depends on changed:
//! it reaches `cpu` at `vector` and is the guest's, booked to `phase`.
//!
//! A fire reads its device (dead, the table's control, entry and pending
//! bit, the guest's mask, an open stall, the phase) and the host's route for
//! the message. Every write to a device moves its generation
//! (`device_list`), and every IRTE change of a device moves its route epoch
//! in the host (`host::route_cache`); a fire does neither unless it ends
//! other than delivered. So a route learnt from a fire that was delivered
//! with nothing to close is what the next fire of the same vector does, as
//! long as both counts are those it was learnt at: the per-event path then
//! goes straight to the CPU.

use crate::config::Phase;

/// A vector's learnt delivery, held beside it in its rate class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct HotRoute {
    /// The device's generation when learnt; 0 (never a device's) when not.
    pub gen: u64,
    /// The device's route epoch in the host when learnt.
    pub epoch: u64,
    /// The CPU its message is remapped to.
    pub cpu: u32,
    /// The vector on that CPU.
    pub vector: u8,
    /// The phase its fires are booked to.
    pub phase: Phase,
}

/// One live vector of the merged stream: device, entry, learnt route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Member {
    pub dev: u32,
    pub k: u32,
    pub hot: HotRoute,
}

impl Member {
    /// Entry `k` of `dev`, with nothing learnt.
    pub fn new(dev: u32, k: u32) -> Self {
        Self {
            dev,
            k,
            hot: HotRoute::default(),
        }
    }
}
