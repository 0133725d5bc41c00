//! What the host does to a physical device's MSI-X table, with the time it
//! takes effect: the host's only output besides its own resource counts.

use crate::msi::MsiMessage;

/// A timed effect of the host on one device's physical MSI-X table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostFx {
    /// Host `free_irq`: entry masked (W1 starts for that vector).
    Mask(u32),
    /// Host `request_irq` of entry `k`: the entry programmed with the
    /// message the host composed, then unmasked (W1 ends). One effect, not
    /// two: the write and the unmask always happen together.
    Request(u32, MsiMessage),
    /// MSI-X shutdown: every entry masked, Enable cleared (W2 starts).
    Disable,
    /// `msix_capability_init` sets Enable (W2 ends). With early enable it
    /// sets Function Mask too, and allocates after: fires are latched in the
    /// PBA until [`HostFx::FunctionUnmask`]; without, every entry is already
    /// masked and Function Mask stays clear.
    Enable {
        /// This enable ends a disable/re-enable resize.
        closes_resize: bool,
        /// Function Mask set with Enable (early enable).
        function_mask: bool,
    },
    /// The end of `msix_capability_init` with early enable: every entry
    /// masked (`msix_mask_all`), then Function Mask cleared.
    FunctionUnmask,
}

/// Effects at their times, in the order the host produced them.
pub type Effects = Vec<(u64, HostFx)>;

/// Where the host writes its effects, in the order it produces them: a
/// plain [`Effects`] list, or a caller's own buffer (the engine's event
/// list, so that no effect is copied from one list into the other).
pub(crate) trait FxSink {
    /// Effect `fx` takes place at `at` (ns): appended.
    fn push_fx(&mut self, at: u64, fx: HostFx);
}

impl FxSink for Effects {
    #[inline]
    fn push_fx(&mut self, at: u64, fx: HostFx) {
        self.push((at, fx));
    }
}
