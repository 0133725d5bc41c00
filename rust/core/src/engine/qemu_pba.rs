//! QEMU's emulated PBA: an interrupt that reaches QEMU for a vector the
//! guest has masked in the emulated table is held there, one per vector,
//! and sent when the guest unmasks it (hw/pci/msix.c: `msix_notify` sets the
//! pending bit of a masked vector, `msix_handle_mask_update` sends it at the
//! unmask, `msix_reset` clears it).

use super::Engine;
use crate::books::Outcome;
use crate::config::Phase;
use crate::error::Result;

impl Engine {
    /// An interrupt of entry `k` reached QEMU while the guest has it masked:
    /// held in the emulated PBA (`Pending`), or merged into the one already
    /// held (`Coalesced`).
    pub(super) fn qemu_latch(&mut self, dev: u32, k: u32) -> Outcome {
        let d = &mut self.devices[dev as usize];
        let ku = k as usize;
        if d.qemu_pending.contains(ku) {
            return Outcome::Coalesced;
        }
        d.qemu_pending.set(ku, true);
        if d.qemu_phase.is_empty() {
            d.qemu_phase = vec![Phase::Probe; d.live.entries()];
        }
        if let Some(p) = d.qemu_phase.get_mut(ku) {
            *p = d.phase;
        }
        Outcome::Pending
    }

    /// The guest masks (`on`) or unmasks entry `k`. An unmask sends what the
    /// emulated PBA holds for it: the guest gets the interrupt.
    pub(super) fn guest_mask(&mut self, dev: u32, k: u32, on: bool) -> Result<()> {
        let d = &mut self.devices[dev as usize];
        let ku = k as usize;
        d.guest_masked.set(ku, on);
        if on || !d.qemu_pending.contains(ku) {
            return Ok(());
        }
        d.qemu_pending.set(ku, false);
        let phase = d.qemu_phase.get(ku).copied().unwrap_or(Phase::Probe);
        self.books.settle_pending(phase, Outcome::Delivered)?;
        if self.is_closed_loop(dev, k) {
            self.loop_released(dev, k, Outcome::Delivered);
        } else {
            self.track_stall(dev, k, Outcome::Delivered);
        }
        Ok(())
    }

    /// `msix_reset` (a function reset): the emulated PBA is cleared and its
    /// interrupts lost. The guest's masks are forgotten: its program unmasks
    /// again every entry it uses.
    pub(super) fn qemu_reset(&mut self, dev: u32) -> Result<()> {
        let d = &mut self.devices[dev as usize];
        let held: Vec<usize> = d.qemu_pending.iter().collect();
        for ku in held {
            let d = &mut self.devices[dev as usize];
            d.qemu_pending.set(ku, false);
            let phase = d.qemu_phase.get(ku).copied().unwrap_or(Phase::Probe);
            self.books.settle_pending(phase, Outcome::Lost)?;
            self.trace_interrupt(dev, ku as u32, Outcome::Lost);
        }
        let d = &mut self.devices[dev as usize];
        for ku in 0..d.guest_masked.entries() {
            d.guest_masked.set(ku, false);
        }
        Ok(())
    }
}
