//! An MSI message as it leaves a device: the (address, data) pair written
//! upstream, tagged with the requester id the IOMMU checks.

/// One MSI/MSI-X write transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MsiMessage {
    /// Message Address (upper dword in bits 63:32).
    pub address: u64,
    /// Message Data (32 bits on the bus; MSI-X carries a full dword).
    pub data: u32,
}

impl MsiMessage {
    /// A message from its address and data.
    pub const fn new(address: u64, data: u32) -> Self {
        Self { address, data }
    }
}

/// The x86 interrupt address window: MSI writes go to 0xFEEx_xxxx.
pub const MSI_ADDRESS_BASE: u64 = 0xFEE0_0000;
/// Mask selecting the 0xFEE window bits (31:20) of an MSI address.
pub const MSI_ADDRESS_WINDOW_MASK: u64 = 0xFFF0_0000;
