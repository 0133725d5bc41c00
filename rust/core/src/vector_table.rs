//! One device function's MSI-X capability: Message Control, the vector table
//! and the Pending Bit Array (PBA), as the PCI Local Bus spec defines them.
//!
//! The table is a pure state machine. Guest MMIO, config writes and device
//! events go in; effects come out: a [`Fired`] per device event and a
//! [`Released`] list of messages that an unmask sent.
//!
//! Layout (PCI spec, Linux `pci_regs.h`, QEMU `hw/pci/msix.c`):
//! - Message Control: bits 10:0 table size − 1 (read-only), bit 14 Function
//!   Mask, bit 15 MSI-X Enable.
//! - Table entry `k` at byte `16·k`: +0 Message Address low, +4 Message
//!   Address high, +8 Message Data, +12 Vector Control (bit 0 = Mask; the
//!   other bits are reserved and read 0).
//! - PBA: vector `k` is bit `k % 64` of qword `k / 64`; the PBA is
//!   `ceil(N / 64)` qwords long and read-only.
//!
//! Bus contract (decided once, in `decode`): an access is one dword
//! (4 bytes, 4-aligned) or one qword (8 bytes, 8-aligned) entirely inside the
//! region; anything else is [`Error::Mmio`]. A qword table access covers two
//! dwords of one entry (address low + high, or data + vector control).
//!
//! A message is sent only while MSI-X Enable is set, Function Mask is clear
//! and the entry's Mask is clear; that condition is checked in one place
//! ([`VectorTable::can_send`]).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::msi::MsiMessage;

/// Message Control bit 15: MSI-X Enable.
pub const MSIX_CONTROL_ENABLE: u16 = 1 << 15;
/// Message Control bit 14: Function Mask (masks every vector of the function).
pub const MSIX_CONTROL_FUNCTION_MASK: u16 = 1 << 14;
/// Message Control bits 10:0: table size − 1 (read-only).
pub const MSIX_CONTROL_TABLE_SIZE_MASK: u16 = 0x7ff;

/// Bytes per vector table entry.
pub const ENTRY_SIZE: u64 = 16;
/// Entry offset of the Message Address low dword.
pub const ENTRY_ADDR_LO: u64 = 0;
/// Entry offset of the Message Address high dword.
pub const ENTRY_ADDR_HI: u64 = 4;
/// Entry offset of the Message Data dword.
pub const ENTRY_DATA: u64 = 8;
/// Entry offset of the Vector Control dword.
pub const ENTRY_VECTOR_CONTROL: u64 = 12;
/// Vector Control bit 0: the entry's Mask bit (the only writable bit).
pub const VECTOR_CONTROL_MASK_BIT: u32 = 1;

/// Largest table the capability can describe (11-bit table size field).
pub const MAX_ENTRIES: usize = 2048;

/// Pending bits per PBA qword.
pub const PBA_BITS_PER_WORD: usize = 64;
/// Bytes per PBA qword.
pub const PBA_WORD_SIZE: u64 = 8;

/// Bytes of one dword access.
pub const DWORD: usize = 4;
/// Bytes of one qword access.
pub const QWORD: usize = 8;

/// Index of the PBA qword holding vector `k`'s pending bit (`k / 64`).
pub const fn pba_word_index(k: usize) -> usize {
    k / PBA_BITS_PER_WORD
}

/// The bit selecting vector `k` within its PBA qword (`1 << (k % 64)`, 64-bit).
pub const fn pba_bit(k: usize) -> u64 {
    1u64 << (k % PBA_BITS_PER_WORD)
}

/// Size in bytes of the vector table for `entries` vectors.
pub const fn table_size_bytes(entries: usize) -> u64 {
    entries as u64 * ENTRY_SIZE
}

/// Size in bytes of the PBA for `entries` vectors (whole qwords).
pub const fn pba_size_bytes(entries: usize) -> u64 {
    entries.div_ceil(PBA_BITS_PER_WORD) as u64 * PBA_WORD_SIZE
}

/// What a fire does while MSI-X Enable is clear (a per-table setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DisabledMode {
    /// No MSI and no INTx: the event is dropped (a function without an INTx pin,
    /// or with INTx disabled). Outcome [`FireOutcome::Lost`]. Pending bits
    /// latched earlier (while enabled and masked) are kept and sent once the
    /// function can send again, as in every mode.
    #[default]
    Lost,
    /// A physical function with an INTx pin signals INTx instead; on a VFIO host
    /// nobody handles it, so the event is gone for the guest. Outcome
    /// [`FireOutcome::Intx`].
    Intx,
    /// QEMU's emulated table: "disabled" counts as masked, so the fire sets
    /// `Pending[k]` (or coalesces) and the message is released when the vector
    /// becomes unmasked, including when Enable is set.
    Pending,
}

impl DisabledMode {
    /// Every mode, in declaration order.
    pub const ALL: [DisabledMode; 3] = [Self::Lost, Self::Intx, Self::Pending];

    /// The mode's lower-case name (`"lost"`, `"intx"`, `"pending"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Lost => "lost",
            Self::Intx => "intx",
            Self::Pending => "pending",
        }
    }
}

impl fmt::Display for DisabledMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DisabledMode {
    type Err = Error;

    /// Parse `"lost"`, `"intx"` or `"pending"`; anything else is `InvalidArgument`.
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "disabled mode {s:?}: expected \"lost\", \"intx\" or \"pending\""
                ))
            })
    }
}

/// Where one device event on vector k ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FireOutcome {
    /// The message (address, data) of entry k was sent.
    Delivered,
    /// Masked: `Pending[k]` was clear and is now set.
    Pending,
    /// Masked: `Pending[k]` was already set; this event merged into it.
    Coalesced,
    /// Enable clear in [`DisabledMode::Lost`]: dropped.
    Lost,
    /// Enable clear in [`DisabledMode::Intx`]: diverted to INTx.
    Intx,
}

impl FireOutcome {
    /// Every outcome, in declaration order.
    pub const ALL: [FireOutcome; 5] = [
        Self::Delivered,
        Self::Pending,
        Self::Coalesced,
        Self::Lost,
        Self::Intx,
    ];

    /// The outcome's lower-case name (`"delivered"`, `"pending"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Pending => "pending",
            Self::Coalesced => "coalesced",
            Self::Lost => "lost",
            Self::Intx => "intx",
        }
    }
}

impl fmt::Display for FireOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The effect of one fire: its outcome, and the message when delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fired {
    outcome: FireOutcome,
    message: Option<MsiMessage>,
}

impl Fired {
    const fn delivered(message: MsiMessage) -> Self {
        Self {
            outcome: FireOutcome::Delivered,
            message: Some(message),
        }
    }

    const fn undelivered(outcome: FireOutcome) -> Self {
        Self {
            outcome,
            message: None,
        }
    }

    /// Where the event ended up.
    pub const fn outcome(&self) -> FireOutcome {
        self.outcome
    }

    /// The message sent; `Some` exactly when the outcome is `Delivered`.
    pub const fn message(&self) -> Option<MsiMessage> {
        self.message
    }
}

/// Messages an unmask sent, each `(vector, message)`, in ascending vector order.
pub type Released = Vec<(usize, MsiMessage)>;

/// One vector table entry (16 bytes on the bus).
///
/// Message Address bits 1:0 are stored as written: the spec says software
/// must write 0 there and leaves the result undefined otherwise; this model
/// keeps (and sends) whatever was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableEntry {
    /// Message Address (high dword in bits 63:32).
    pub address: u64,
    /// Message Data.
    pub data: u32,
    /// Vector Control: only [`VECTOR_CONTROL_MASK_BIT`] is ever set.
    pub vector_control: u32,
}

impl TableEntry {
    /// Spec reset state: address and data 0, masked.
    pub const RESET: TableEntry = TableEntry {
        address: 0,
        data: 0,
        vector_control: VECTOR_CONTROL_MASK_BIT,
    };

    /// The (address, data) message this entry sends.
    pub const fn message(&self) -> MsiMessage {
        MsiMessage::new(self.address, self.data)
    }

    /// Whether the entry's own Mask bit is set (ignores Function Mask and Enable).
    pub const fn is_masked(&self) -> bool {
        self.vector_control & VECTOR_CONTROL_MASK_BIT != 0
    }

    /// The dword at entry offset `at` (one of the `ENTRY_*` offsets).
    fn dword(&self, at: u64) -> u32 {
        match at {
            ENTRY_ADDR_LO => self.address as u32,
            ENTRY_ADDR_HI => (self.address >> 32) as u32,
            ENTRY_DATA => self.data,
            _ => self.vector_control,
        }
    }

    /// Store `value` at entry offset `at`; Vector Control keeps only the Mask bit.
    fn set_dword(&mut self, at: u64, value: u32) {
        match at {
            ENTRY_ADDR_LO => {
                self.address = (self.address & !0xffff_ffff) | u64::from(value);
            }
            ENTRY_ADDR_HI => {
                self.address = (self.address & 0xffff_ffff) | (u64::from(value) << 32);
            }
            ENTRY_DATA => self.data = value,
            _ => self.vector_control = value & VECTOR_CONTROL_MASK_BIT,
        }
    }
}

impl Default for TableEntry {
    fn default() -> Self {
        Self::RESET
    }
}

/// The writable state of Message Control: MSI-X Enable and Function Mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MsixControl {
    /// MSI-X Enable (bit 15).
    pub enable: bool,
    /// Function Mask (bit 14).
    pub function_mask: bool,
}

impl MsixControl {
    /// Decode bits 15 and 14 of a Message Control value; other bits are ignored.
    pub const fn from_bits(value: u16) -> Self {
        Self {
            enable: value & MSIX_CONTROL_ENABLE != 0,
            function_mask: value & MSIX_CONTROL_FUNCTION_MASK != 0,
        }
    }

    /// Encode as Message Control bits 15 and 14 (table size not included).
    pub const fn bits(self) -> u16 {
        let mut v = 0;
        if self.enable {
            v |= MSIX_CONTROL_ENABLE;
        }
        if self.function_mask {
            v |= MSIX_CONTROL_FUNCTION_MASK;
        }
        v
    }
}

/// Width of a decoded bus access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Width {
    Dword,
    Qword,
}

/// Check one access against a region of `len` bytes; the only place the bus
/// contract (size, alignment, range) is decided.
fn decode(region: &str, offset: u64, size: usize, len: u64) -> Result<Width> {
    let width = match size {
        DWORD => Width::Dword,
        QWORD => Width::Qword,
        _ => {
            return Err(Error::Mmio(format!(
                "{region} access of {size} bytes at offset {offset:#x}: only 4- or 8-byte accesses"
            )))
        }
    };
    if offset % size as u64 != 0 {
        return Err(Error::Mmio(format!(
            "{region} access of {size} bytes at offset {offset:#x} is misaligned"
        )));
    }
    match offset.checked_add(size as u64) {
        Some(end) if end <= len => Ok(width),
        _ => Err(Error::Mmio(format!(
            "{region} access of {size} bytes at offset {offset:#x} is beyond the {region} \
             ({len} bytes)"
        ))),
    }
}

/// One function's MSI-X capability, vector table and PBA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorTable {
    control: MsixControl,
    table: Vec<TableEntry>,
    pba: Vec<u64>,
    disabled: DisabledMode,
}

impl VectorTable {
    /// A table of `entries` vectors (1..=2048) in spec reset state.
    pub fn new(entries: usize, disabled: DisabledMode) -> Result<Self> {
        if !(1..=MAX_ENTRIES).contains(&entries) {
            return Err(Error::InvalidArgument(format!(
                "MSI-X table size {entries}: must be 1..={MAX_ENTRIES}"
            )));
        }
        Ok(Self {
            control: MsixControl::default(),
            table: vec![TableEntry::RESET; entries],
            pba: vec![0; entries.div_ceil(PBA_BITS_PER_WORD)],
            disabled,
        })
    }

    /// Back to spec reset state: Enable 0, Function Mask 0, every entry masked
    /// with address/data 0, PBA clear. The disabled mode is kept.
    pub fn reset(&mut self) {
        self.control = MsixControl::default();
        self.table.fill(TableEntry::RESET);
        self.pba.fill(0);
    }

    // ---- accessors -------------------------------------------------------

    /// Number of vectors N (changes nothing).
    pub fn entries(&self) -> usize {
        self.table.len()
    }

    /// Message Control as software reads it: Enable, Function Mask, N − 1.
    pub fn control(&self) -> u16 {
        self.control.bits() | ((self.table.len() - 1) as u16 & MSIX_CONTROL_TABLE_SIZE_MASK)
    }

    /// The writable Message Control state (changes nothing).
    pub fn control_state(&self) -> MsixControl {
        self.control
    }

    /// Whether MSI-X Enable is set (changes nothing).
    pub fn is_enabled(&self) -> bool {
        self.control.enable
    }

    /// Whether Function Mask is set (changes nothing).
    pub fn is_function_masked(&self) -> bool {
        self.control.function_mask
    }

    /// What fires do while Enable is clear (changes nothing).
    pub fn disabled_mode(&self) -> DisabledMode {
        self.disabled
    }

    /// Change what later fires do while Enable is clear; changes no bit of state.
    pub fn set_disabled_mode(&mut self, mode: DisabledMode) {
        self.disabled = mode;
    }

    /// Entry `k` (changes nothing); `InvalidArgument` if k ≥ N.
    pub fn entry(&self, k: usize) -> Result<TableEntry> {
        self.get(k).copied()
    }

    /// Entry `k`'s own Mask bit (changes nothing).
    pub fn is_entry_masked(&self, k: usize) -> Result<bool> {
        Ok(self.get(k)?.is_masked())
    }

    /// Effective mask of `k`: Function Mask, entry Mask, or (in
    /// [`DisabledMode::Pending`]) Enable clear (changes nothing).
    pub fn is_masked(&self, k: usize) -> Result<bool> {
        let entry = self.get(k)?;
        Ok(self.masked(entry))
    }

    /// `Pending[k]` (changes nothing).
    pub fn is_pending(&self, k: usize) -> Result<bool> {
        self.get(k)?;
        Ok(self.pending_bit(k))
    }

    /// Number of set pending bits (changes nothing).
    pub fn pending_count(&self) -> usize {
        self.pba.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether entry `k` may send now: Enable set, Function Mask clear, entry
    /// unmasked (changes nothing).
    pub fn can_send(&self, k: usize) -> Result<bool> {
        Ok(self.entry_can_send(self.get(k)?))
    }

    // ---- device side -----------------------------------------------------

    /// The device signals vector `k`: sends entry k's message, or sets `Pending[k]`
    /// (outcome `Pending`, or `Coalesced` if already set), or per the disabled
    /// mode while Enable is clear. Changes only `Pending[k]`; allocates nothing
    /// (only the error path builds a message).
    #[inline]
    pub fn fire(&mut self, k: usize) -> Result<Fired> {
        let entry = *self.get(k)?;
        if !self.control.enable {
            match self.disabled {
                DisabledMode::Lost => return Ok(Fired::undelivered(FireOutcome::Lost)),
                DisabledMode::Intx => return Ok(Fired::undelivered(FireOutcome::Intx)),
                DisabledMode::Pending => {}
            }
        }
        if self.entry_can_send(&entry) {
            return Ok(Fired::delivered(entry.message()));
        }
        if self.pending_bit(k) {
            Ok(Fired::undelivered(FireOutcome::Coalesced))
        } else {
            self.set_pending(k);
            Ok(Fired::undelivered(FireOutcome::Pending))
        }
    }

    /// Whether every fire now latches its pending bit (or coalesces into
    /// it), whatever the entry: Enable and Function Mask set, or Enable
    /// clear in [`DisabledMode::Pending`]. Changes nothing.
    #[inline]
    pub fn latches_every_fire(&self) -> bool {
        if self.control.enable {
            self.control.function_mask
        } else {
            self.disabled == DisabledMode::Pending
        }
    }

    /// Latch a fire of vector `k`: set `Pending[k]`, returning whether it
    /// was clear. On a table that [latches every fire](Self::latches_every_fire)
    /// this is [`fire`](Self::fire) (outcome `Pending` if it was clear,
    /// else `Coalesced`) without reading the entry, for a caller that
    /// checked that once for many fires; on another it is not (the caller's
    /// check). `InvalidArgument` if k ≥ N. Changes only `Pending[k]`.
    #[inline]
    pub fn latch(&mut self, k: usize) -> Result<bool> {
        let entries = self.table.len();
        match self.pba.get_mut(pba_word_index(k)) {
            Some(w) if k < entries => {
                let was = *w >> (k % PBA_BITS_PER_WORD) & 1 != 0;
                *w |= pba_bit(k);
                Ok(!was)
            }
            _ => Err(out_of_range(k, entries)),
        }
    }

    /// The message a fire of vector `k` would send now, if it would send
    /// one: [`fire`](Self::fire)'s common case, which changes nothing, for a
    /// caller that leaves every other case (and a `k` past the table) to
    /// `fire`. Changes nothing.
    #[inline]
    pub fn sending(&self, k: usize) -> Option<MsiMessage> {
        let entry = self.table.get(k)?;
        self.entry_can_send(entry).then(|| entry.message())
    }

    // ---- config space ----------------------------------------------------

    /// Write Message Control: sets Enable (bit 15) and Function Mask (bit 14);
    /// table size and other bits are ignored. When the function goes from
    /// "cannot send" to "can send" (Function Mask cleared, or Enable set) every
    /// pending unmasked vector is sent, ascending, and its pending bit cleared.
    pub fn set_control(&mut self, value: u16) -> Released {
        let could_send = self.function_can_send();
        self.control = MsixControl::from_bits(value);
        if could_send || !self.function_can_send() {
            return Released::new();
        }
        let mut released = Released::new();
        for (w, word) in self.pba.iter_mut().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let k = w * PBA_BITS_PER_WORD + b;
                if let Some(entry) = self.table.get(k) {
                    if !entry.is_masked() {
                        *word &= !pba_bit(k);
                        released.push((k, entry.message()));
                    }
                }
            }
        }
        released
    }

    // ---- MMIO: vector table ----------------------------------------------

    /// Read the table: a dword, or a qword covering two dwords of one entry.
    /// Changes nothing. Reserved Vector Control bits read 0.
    pub fn table_read(&self, offset: u64, size: usize) -> Result<u64> {
        let width = decode("table", offset, size, table_size_bytes(self.entries()))?;
        let (entry, at) = self.locate(offset)?;
        Ok(match width {
            Width::Dword => u64::from(entry.dword(at)),
            Width::Qword => u64::from(entry.dword(at)) | (u64::from(entry.dword(at + 4)) << 32),
        })
    }

    /// Write the table: a dword, or a qword covering two dwords of one entry
    /// (`value` must fit the access). Only Vector Control bit 0 is writable in
    /// that dword; Message Address bits 1:0 are stored as written. If the write
    /// lets the entry send with `Pending[k]` set, the message (as just written)
    /// is sent and the bit cleared.
    pub fn table_write(&mut self, offset: u64, size: usize, value: u64) -> Result<Released> {
        let width = decode("table", offset, size, table_size_bytes(self.entries()))?;
        if width == Width::Dword && value > u64::from(u32::MAX) {
            return Err(Error::Mmio(format!(
                "table write of {value:#x} at offset {offset:#x} is wider than a 4-byte access"
            )));
        }
        let k = (offset / ENTRY_SIZE) as usize;
        let at = offset % ENTRY_SIZE;
        let sent = self.update_entry(k, |e| match width {
            Width::Dword => e.set_dword(at, value as u32),
            Width::Qword => {
                e.set_dword(at, value as u32);
                e.set_dword(at + 4, (value >> 32) as u32);
            }
        })?;
        Ok(released(k, sent))
    }

    // ---- MMIO: PBA -------------------------------------------------------

    /// Read the PBA: a dword (half a PBA qword) or a whole qword. Changes nothing.
    pub fn pba_read(&self, offset: u64, size: usize) -> Result<u64> {
        let width = decode("PBA", offset, size, pba_size_bytes(self.entries()))?;
        let word = self
            .pba
            .get((offset / PBA_WORD_SIZE) as usize)
            .copied()
            .ok_or_else(|| Error::Mmio(format!("PBA offset {offset:#x} out of range")))?;
        Ok(match width {
            Width::Qword => word,
            Width::Dword if offset % PBA_WORD_SIZE == 0 => word & 0xffff_ffff,
            Width::Dword => word >> 32,
        })
    }

    /// Write the PBA: always `Mmio` (the PBA is read-only); changes nothing.
    pub fn pba_write(&mut self, offset: u64, size: usize, value: u64) -> Result<()> {
        decode("PBA", offset, size, pba_size_bytes(self.entries()))?;
        Err(Error::Mmio(format!(
            "PBA is read-only: write of {value:#x} at offset {offset:#x} refused"
        )))
    }

    // ---- control-plane helpers (mirror guest writes) ----------------------

    /// Program entry `k`'s Message Address and Data (as guest writes to dwords
    /// 0–2 would); the mask is unchanged, so nothing is released.
    pub fn set_entry(&mut self, k: usize, message: MsiMessage) -> Result<()> {
        self.update_entry(k, |e| {
            e.address = message.address;
            e.data = message.data;
        })
        .map(|_released| ())
    }

    /// Set entry `k`'s Mask bit (a guest Vector Control write of 1).
    pub fn mask(&mut self, k: usize) -> Result<Released> {
        Ok(released(k, self.mask_one(k)?))
    }

    /// [`mask`](Self::mask) without the list: the message it sent, if any
    /// (never, for a mask; the engine's hot path allocates nothing).
    pub fn mask_one(&mut self, k: usize) -> Result<Option<MsiMessage>> {
        self.update_entry(k, |e| e.vector_control = VECTOR_CONTROL_MASK_BIT)
    }

    /// Set every entry's Mask bit (the host's `msix_mask_all` / shutdown); a
    /// mask never releases anything. Changes only the Vector Control words.
    pub fn mask_all(&mut self) {
        for e in &mut self.table {
            e.vector_control = VECTOR_CONTROL_MASK_BIT;
        }
    }

    /// Clear entry `k`'s Mask bit (a guest Vector Control write of 0); releases
    /// `Pending[k]` if the entry can now send.
    pub fn unmask(&mut self, k: usize) -> Result<Released> {
        Ok(released(k, self.unmask_one(k)?))
    }

    /// [`unmask`](Self::unmask) without the list: the message `Pending[k]`
    /// sent, if it was released.
    pub fn unmask_one(&mut self, k: usize) -> Result<Option<MsiMessage>> {
        self.update_entry(k, |e| e.vector_control = 0)
    }

    /// [`set_entry`](Self::set_entry) then [`unmask_one`](Self::unmask_one)
    /// as one update (the host's `request_irq`: the entry programmed, then
    /// unmasked): the (new) message `Pending[k]` sent, if it was released.
    /// Programming alone never releases, so the pair releases exactly what
    /// the unmask would.
    pub fn program_unmask(&mut self, k: usize, message: MsiMessage) -> Result<Option<MsiMessage>> {
        self.update_entry(k, |e| {
            e.address = message.address;
            e.data = message.data;
            e.vector_control = 0;
        })
    }

    // ---- internals -------------------------------------------------------

    fn get(&self, k: usize) -> Result<&TableEntry> {
        self.table
            .get(k)
            .ok_or_else(|| out_of_range(k, self.table.len()))
    }

    /// The entry and the dword offset within it for a decoded table offset.
    fn locate(&self, offset: u64) -> Result<(&TableEntry, u64)> {
        let entry = self
            .table
            .get((offset / ENTRY_SIZE) as usize)
            .ok_or_else(|| Error::Mmio(format!("table offset {offset:#x} out of range")))?;
        Ok((entry, offset % ENTRY_SIZE))
    }

    /// Enable set and Function Mask clear.
    fn function_can_send(&self) -> bool {
        self.control.enable && !self.control.function_mask
    }

    fn entry_can_send(&self, entry: &TableEntry) -> bool {
        self.function_can_send() && !entry.is_masked()
    }

    fn masked(&self, entry: &TableEntry) -> bool {
        self.control.function_mask
            || entry.is_masked()
            || (!self.control.enable && self.disabled == DisabledMode::Pending)
    }

    fn pending_bit(&self, k: usize) -> bool {
        self.pba
            .get(pba_word_index(k))
            .is_some_and(|w| w & pba_bit(k) != 0)
    }

    fn set_pending(&mut self, k: usize) {
        if let Some(w) = self.pba.get_mut(pba_word_index(k)) {
            *w |= pba_bit(k);
        }
    }

    fn clear_pending(&mut self, k: usize) {
        if let Some(w) = self.pba.get_mut(pba_word_index(k)) {
            *w &= !pba_bit(k);
        }
    }

    /// Apply `change` to entry `k`; if it took the entry from "cannot send" to
    /// "can send" with `Pending[k]` set, send the (new) message and clear the bit.
    fn update_entry(
        &mut self,
        k: usize,
        change: impl FnOnce(&mut TableEntry),
    ) -> Result<Option<MsiMessage>> {
        let function_can_send = self.function_can_send();
        let entries = self.table.len();
        let entry = self
            .table
            .get_mut(k)
            .ok_or_else(|| out_of_range(k, entries))?;
        let could_send = function_can_send && !entry.is_masked();
        change(entry);
        let entry = *entry;
        if !could_send && function_can_send && !entry.is_masked() && self.pending_bit(k) {
            self.clear_pending(k);
            return Ok(Some(entry.message()));
        }
        Ok(None)
    }
}

/// Entry `k`'s released message as a [`Released`] list.
fn released(k: usize, message: Option<MsiMessage>) -> Released {
    message.map(|m| vec![(k, m)]).unwrap_or_default()
}

/// `InvalidArgument` for a vector index past the table.
fn out_of_range(k: usize, entries: usize) -> Error {
    Error::InvalidArgument(format!(
        "vector {k} out of range: the table has {entries} entries"
    ))
}

#[cfg(test)]
mod tests;
