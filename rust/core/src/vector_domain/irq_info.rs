//! One interrupt's data in the vector domain ([`IrqInfo`]: `struct apic_chip_data` plus the
//! irq core flags the domain reads), packed so that the domain's fast paths test and move
//! it in few instructions.

use super::IrqState;
use crate::affinity::Affinity;

/// `(cpu, vector)` in one word (`cpu` low, `vector` high), or none: the vector an irq holds
/// and the previous one of a pending move. A word is tested, moved and cleared in one
/// instruction where `Option<(u32, u32)>` took a tag and two fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CpuVector(u64);

impl CpuVector {
    /// No vector (no CPU number reaches `u32::MAX`: they are below `MAX_CPUS`).
    pub(super) const NONE: Self = Self(u64::MAX);

    #[inline(always)]
    pub(super) const fn new((cpu, vector): (u32, u32)) -> Self {
        Self(cpu as u64 | (vector as u64) << 32)
    }

    #[inline(always)]
    pub(super) const fn get(self) -> Option<(u32, u32)> {
        if self.0 == Self::NONE.0 {
            None
        } else {
            Some((self.0 as u32, (self.0 >> 32) as u32))
        }
    }

    #[inline(always)]
    pub(super) const fn is_some(self) -> bool {
        self.0 != Self::NONE.0
    }

    /// The CPU, when a vector is held.
    #[inline(always)]
    pub(super) const fn cpu(self) -> Option<u32> {
        match self.get() {
            Some((cpu, _)) => Some(cpu),
            None => None,
        }
    }

    /// The vector, now none.
    #[inline(always)]
    pub(super) fn take(&mut self) -> Option<(u32, u32)> {
        std::mem::replace(self, Self::NONE).get()
    }
}

impl From<Option<(u32, u32)>> for CpuVector {
    #[inline(always)]
    fn from(v: Option<(u32, u32)>) -> Self {
        v.map_or(Self::NONE, Self::new)
    }
}

/// [`IrqInfo`]'s flags, one bit each in one word: the startup and teardown tests read several
/// at once.
pub(super) mod flag {
    /// `irqd_affinity_is_managed`.
    pub const MANAGED: u32 = 1 << 0;
    /// `apicd->can_reserve` (and `irqd_can_reserve`): reservation mode for this irq.
    pub const CAN_RESERVE: u32 = 1 << 1;
    /// `apicd->has_reserved`: holds a global reservation instead of a vector.
    pub const HAS_RESERVED: u32 = 1 << 2;
    /// `irqd_is_activated`.
    pub const ACTIVATED: u32 = 1 << 3;
    /// `irqd_is_managed_and_shutdown`.
    pub const MANAGED_SHUTDOWN: u32 = 1 << 4;
    /// Requested by a driver (`desc->action` set, irq started unless managed-shutdown).
    pub const REQUESTED: u32 = 1 << 5;
    /// `IRQD_AFFINITY_SET`: the affinity was chosen (at allocation or by `set_affinity`)
    /// rather than the default; `irq_setup_affinity` keeps it.
    pub const AFFINITY_SET: u32 = 1 << 6;
    /// The irq has a node, or an affinity other than the default (every CPU): derived from
    /// those two, so that the default startup is one test of the flags.
    pub const PLACED: u32 = 1 << 7;
    /// Always set: a slot of the irq slab holding no irq is the zero word (the `Option`
    /// niche), so its test is the read of the flags.
    pub const PRESENT: u32 = 1 << 31;
}

/// [`IrqInfo`]'s flags: [`flag`] bits, [`flag::PRESENT`] always set.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Flags(std::num::NonZeroU32);

impl Flags {
    #[inline(always)]
    pub(super) fn new(bits: u32) -> Self {
        // Never zero (PRESENT): the fallback is folded away.
        Self(std::num::NonZeroU32::new(bits | flag::PRESENT).unwrap_or(std::num::NonZeroU32::MAX))
    }

    #[inline(always)]
    pub(super) const fn bits(self) -> u32 {
        self.0.get()
    }
}

/// `NUMA_NO_NODE` in [`IrqInfo`]'s node (node ids are below [`MAX_NUMNODES`]).
pub(super) const NO_NODE: u32 = u32::MAX;

/// Per-interrupt data: the model of `struct apic_chip_data` plus the irq core flags it needs.
/// Packed (40 bytes, and 40 in the slab's `Option`, was 56): the vectors as [`CpuVector`]
/// words, the node as a number with a sentinel, the flags in one word; the accessors give the
/// same `Option`s and `bool`s.
#[derive(Clone, PartialEq, Eq)]
pub struct IrqInfo {
    /// The default (every possible CPU) costs no copy and no reference count.
    pub(super) affinity: Affinity,
    /// `(apicd->cpu, apicd->vector)` when a real vector is held.
    pub(super) target: CpuVector,
    /// `(apicd->prev_cpu, apicd->prev_vector)` while a move is in progress.
    pub(super) moving: CpuVector,
    /// The NUMA node, [`NO_NODE`] for `NUMA_NO_NODE`.
    pub(super) node: u32,
    pub(super) flags: Flags,
}

// The flags word is shown as the booleans it packs.
#[allow(clippy::missing_fields_in_debug)]
impl std::fmt::Debug for IrqInfo {
    /// The fields as they read through the accessors (the derived form of the unpacked
    /// struct).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrqInfo")
            .field("affinity", &self.affinity)
            .field("node", &self.node())
            .field("managed", &self.managed())
            .field("can_reserve", &self.can_reserve())
            .field("has_reserved", &self.has_reserved())
            .field("activated", &self.activated())
            .field("managed_shutdown", &self.managed_shutdown())
            .field("requested", &self.requested())
            .field("target", &self.target())
            .field("affinity_set", &self.affinity_set())
            .field("moving", &self.pending_move())
            .finish()
    }
}

impl IrqInfo {
    /// A new irq: no vector, `bits` (of [`flag`]; [`flag::PLACED`] is derived here).
    #[inline(always)]
    pub(super) fn new(affinity: Affinity, node: Option<u32>, bits: u32) -> Self {
        let placed = node.is_some() || !affinity.is_all();
        Self {
            affinity,
            target: CpuVector::NONE,
            moving: CpuVector::NONE,
            node: node.unwrap_or(NO_NODE),
            flags: Flags::new(if placed { bits | flag::PLACED } else { bits }),
        }
    }

    /// The [`flag`] bits.
    #[inline(always)]
    pub(super) const fn bits(&self) -> u32 {
        self.flags.bits()
    }

    /// Whether flag `f` is set.
    #[inline(always)]
    pub(super) const fn has(&self, f: u32) -> bool {
        self.bits() & f != 0
    }

    /// Set or clear the flags of `f`.
    #[inline(always)]
    pub(super) fn set(&mut self, f: u32, on: bool) {
        let b = self.bits();
        self.flags = Flags::new(if on { b | f } else { b & !f });
    }

    /// The affinity becomes `mask` ([`flag::PLACED`] follows it).
    pub(super) fn set_mask(&mut self, mask: Affinity) {
        let placed = self.node != NO_NODE || !mask.is_all();
        self.affinity = mask;
        self.set(flag::PLACED, placed);
    }

    /// The flags [`default_startup`](Self::default_startup) reads: with `REQUESTED` too,
    /// they are exactly `HAS_RESERVED` for a request that takes that path.
    pub(super) const DEFAULT_STARTUP_MASK: u32 =
        flag::MANAGED | flag::ACTIVATED | flag::HAS_RESERVED | flag::AFFINITY_SET | flag::PLACED;

    /// Whether `irq_startup` of this irq is one `alloc_any` while the domain's fast paths
    /// apply (every CPU online, and they are the matrix's online maps): a regular irq that is
    /// not activated, holds its global reservation and no vector, with the default affinity
    /// (every CPU, not set by the user) and no node. `assign_irq_vector_any_locked` without a
    /// node tries affinity ∩ online, then all online: the same mask, the matrix's online set,
    /// so one `alloc_any` decides (a failed attempt changes nothing and the second would fail
    /// alike); `irq_setup_affinity` then finds the new vector already on an online CPU of its
    /// mask (every CPU): nothing moves, the affinity stays the shared default. An irq holding
    /// its reservation holds no vector and no pending move (both go when it takes or retakes
    /// it), so the flags alone decide.
    // Always in line: with `alloc_irq_inner` in line too, the inliner left this a call per
    // request of a resize.
    #[inline(always)]
    pub(super) fn default_startup(&self) -> bool {
        debug_assert!(!self.has_reserved() || !self.target.is_some() && !self.moving.is_some());
        self.bits() & Self::DEFAULT_STARTUP_MASK == flag::HAS_RESERVED
    }

    /// The irq's side of `activate_reserved` + `irq_setup_affinity` for a
    /// [`default_startup`](Self::default_startup) that got vector `new` from
    /// `alloc_any(reserved = true)` (the global reservation became the vector). The irq
    /// holds it, `has_reserved` cleared (and `can_reserve` unless `reservation_mode`),
    /// activated and requested.
    #[inline(always)]
    pub(super) fn activate_default(&mut self, new: (u32, u32), reservation_mode: bool) {
        use flag::{ACTIVATED, CAN_RESERVE, HAS_RESERVED, REQUESTED};
        self.target = CpuVector::new(new);
        let keep = if reservation_mode {
            !HAS_RESERVED
        } else {
            !(HAS_RESERVED | CAN_RESERVE)
        };
        self.flags = Flags::new((self.bits() & keep) | ACTIVATED | REQUESTED);
    }

    /// The lifecycle state.
    pub fn state(&self) -> IrqState {
        // A managed irq in managed shutdown may still hold a vector on an offline CPU (the
        // kernel only migrates started irqs); it is shut down all the same.
        if self.managed_shutdown() {
            return IrqState::ManagedShutdown;
        }
        match (self.target.is_some(), self.requested(), self.managed()) {
            (true, true, _) => IrqState::Active,
            (true, false, _) => IrqState::Assigned,
            (false, _, true) => IrqState::ManagedReserved,
            (false, _, false) => IrqState::Reserved,
        }
    }
    /// Affinity mask (sorted CPU list).
    pub fn affinity(&self) -> &[u32] {
        self.affinity.cpus()
    }
    /// NUMA node of the irq (`None` = `NUMA_NO_NODE`).
    pub const fn node(&self) -> Option<u32> {
        if self.node == NO_NODE {
            None
        } else {
            Some(self.node)
        }
    }
    /// Managed interrupt (`irqd_affinity_is_managed`).
    pub const fn managed(&self) -> bool {
        self.has(flag::MANAGED)
    }
    /// Holds a global reservation (`apicd->has_reserved`).
    pub const fn has_reserved(&self) -> bool {
        self.has(flag::HAS_RESERVED)
    }
    /// Reservation mode applies to this irq (`apicd->can_reserve`).
    pub const fn can_reserve(&self) -> bool {
        self.has(flag::CAN_RESERVE)
    }
    /// Requested by a driver (between `activate` and `deactivate`).
    pub const fn requested(&self) -> bool {
        self.has(flag::REQUESTED)
    }
    /// `irqd_is_activated`.
    pub(super) const fn activated(&self) -> bool {
        self.has(flag::ACTIVATED)
    }
    /// `irqd_is_managed_and_shutdown`.
    pub(super) const fn managed_shutdown(&self) -> bool {
        self.has(flag::MANAGED_SHUTDOWN)
    }
    /// `(cpu, vector)` when a CPU vector is held.
    pub const fn target(&self) -> Option<(u32, u32)> {
        self.target.get()
    }
    /// `(cpu, vector)` of the previous vector while a move is in progress (kept until
    /// [`VectorDomain::complete_move`]).
    pub const fn pending_move(&self) -> Option<(u32, u32)> {
        self.moving.get()
    }
    /// The affinity was chosen rather than the default (`IRQD_AFFINITY_SET`).
    pub const fn affinity_set(&self) -> bool {
        self.has(flag::AFFINITY_SET)
    }
}
