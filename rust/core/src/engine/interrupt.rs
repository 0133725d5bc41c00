//! Stopping a long run from outside: a cancel flag that any thread may set,
//! and a poll the embedder supplies (the Python binding checks for Ctrl-C
//! there). Both are looked at between control events and every 65,536 fires,
//! a few milliseconds apart at the engine's speed, and only where the run's
//! state is whole: a stopped run can go on, and gives the books it would have
//! given without the stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::Engine;
use crate::error::{Error, Result};

/// Fires between two looks at the flag and the poll, on average: the fire
/// path looks once the stream has run for the mean time of this many fires
/// (a time compare per fire, cheaper than a count).
pub(super) const FIRES_PER_POLL: u32 = 1 << 16;
/// Control events between two looks.
pub(super) const EVENTS_PER_POLL: u32 = 256;

/// What may stop a run from outside.
#[derive(Default)]
pub(super) struct Interrupt {
    cancel: Arc<AtomicBool>,
    poll: Option<Box<dyn FnMut() -> bool + Send>>,
}

impl Engine {
    /// A flag that stops the run at its next look when set (from any
    /// thread): the step returns `Error::Interrupted` and the flag is
    /// cleared, so the run can go on afterwards.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.interrupt.cancel)
    }

    /// Call `poll` at every look; it returns true to stop the run (the step
    /// returns `Error::Interrupted`).
    pub fn set_interrupt_poll(&mut self, poll: Box<dyn FnMut() -> bool + Send>) {
        self.interrupt.poll = Some(poll);
    }

    /// `Err(Interrupted)` if the run was cancelled or the poll says stop.
    #[cold]
    #[inline(never)]
    pub(super) fn check_interrupt(&mut self) -> Result<()> {
        if self.interrupt.cancel.swap(false, Ordering::Relaxed) {
            return Err(Error::Interrupted("the run was cancelled".into()));
        }
        if let Some(poll) = self.interrupt.poll.as_mut() {
            if poll() {
                return Err(Error::Interrupted("the run was interrupted".into()));
            }
        }
        Ok(())
    }
}
