//! A malicious passed-through device's forged MSI writes (docs/spoof.md):
//! what it writes, at what rate, and whose messages it copies. The writes are
//! real engine events: each goes through the host's IOMMU and is booked.

use serde::{Deserialize, Serialize};

/// The forged writes of one device, in place of (or beside) its own traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoofConfig {
    /// The devices (indices into `devices`) whose messages it forges, taken
    /// in turn, one per write.
    pub victims: Vec<u32>,
    /// Forged writes per second over all kinds (a Poisson stream).
    pub rate: f64,
    /// When the first write may come, ns.
    #[serde(default)]
    pub start_ns: u64,
    /// What it writes: the kinds are taken in turn, one per write.
    pub kinds: Vec<SpoofKind>,
}

/// One kind of forged write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SpoofKind {
    /// The victim's own message, copied from its MSI-X table entry: its
    /// handle and sub-handle (Intel) or its IRTE index (AMD).
    ForeignHandle,
    /// The victim's handle with the sub-handles after its own (Intel: SHV
    /// set, sub-handle 1..=16, naming the IRTEs that follow the victim's) or
    /// its IRTE index plus 1..=16 (AMD): whoever's entries those are.
    SubHandleSweep,
    /// A compatibility-format message aimed straight at the victim's CPU
    /// and vector, bypassing any remapping table.
    CompatFormat,
    /// The device's own valid message with a reserved request field set
    /// (Intel: data 31:16 with SHV; AMD: a reserved message type in data 10:8).
    ReservedBits,
    /// A write just below the interrupt window (the IOAPIC's 0xFEC0_0000):
    /// a DMA write, not an interrupt request.
    OutsideWindow,
}

impl SpoofKind {
    /// Every kind, in reporting order.
    pub const ALL: [SpoofKind; 5] = [
        SpoofKind::ForeignHandle,
        SpoofKind::SubHandleSweep,
        SpoofKind::CompatFormat,
        SpoofKind::ReservedBits,
        SpoofKind::OutsideWindow,
    ];

    /// The kind's name in configs and results.
    pub const fn name(self) -> &'static str {
        match self {
            SpoofKind::ForeignHandle => "foreign_handle",
            SpoofKind::SubHandleSweep => "sub_handle_sweep",
            SpoofKind::CompatFormat => "compat_format",
            SpoofKind::ReservedBits => "reserved_bits",
            SpoofKind::OutsideWindow => "outside_window",
        }
    }
}
