//! What the host does to a physical device's MSI-X table, with the time it
//! takes effect: the host's only output besides its own resource counts.

use crate::msi::MsiMessage;

/// A timed effect of the host on one device's physical MSI-X table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostFx {
    /// Host `free_irq`: entry masked (W1 starts for that vector).
    Mask(u32),
    /// Program entry `k` with a message (host compose + write).
    Program(u32, MsiMessage),
    /// Host `request_irq`: entry unmasked (W1 ends).
    Unmask(u32),
    /// MSI-X shutdown: every entry masked, Enable cleared (W2 starts).
    Disable,
    /// MSI-X capability init: Enable set with entries masked (W2 ends).
    Enable {
        /// This enable ends a disable/re-enable resize.
        closes_resize: bool,
    },
}

/// Effects at their times, in the order the host produced them.
pub type Effects = Vec<(u64, HostFx)>;
