//! Everything the engine keeps about one device: its physical MSI-X table,
//! which vectors its driver uses, where its guest program stands, and its
//! open windows and stalls. One struct, `Option`s for what may be absent.

use crate::config::{DeviceConfig, Phase, Semantics};
use crate::error::Result;
use crate::vector_table::{DisabledMode, VectorTable};

/// One device's run-time state.
pub(super) struct Device {
    /// The VM it belongs to (a kill takes down every device of a VM).
    pub vm: u32,
    /// The physical device's MSI-X table.
    pub table: VectorTable,
    /// The entries in use by the guest driver (their sources fire).
    pub live: super::entry_set::EntrySet,
    /// Entries the guest has masked in QEMU's emulated table.
    pub guest_masked: super::entry_set::EntrySet,
    /// QEMU's emulated PBA: entries with an interrupt held for the guest.
    pub qemu_pending: super::entry_set::EntrySet,
    /// The phase each interrupt in `qemu_pending` was fired in (allocated at
    /// the first).
    pub qemu_phase: Vec<Phase>,
    /// Entry k's host setup failed: its fires fail.
    pub dead: Vec<bool>,
    /// Entry k's rate class at runtime.
    pub class: Vec<u16>,
    /// Entry k's rate class as configured (before any queue folded onto it).
    pub base_class: Vec<u16>,
    /// Traffic folded onto entry k from entries past a short grant, per
    /// second (allocated at the first fold).
    pub folded: Vec<f64>,
    /// The first entry with closed-loop traffic, if the device has any.
    pub closed_from: Option<u32>,
    /// Each entry's closed-loop state (empty without closed-loop traffic).
    pub loops: Vec<super::closed_loop::LoopState>,
    /// The rate class of every entry during the probe phase, when it has its
    /// own rate.
    pub probe_class: Option<u16>,
    /// The phase the driver is in: fires and requests are booked to it.
    pub phase: Phase,
    /// The phase each latched (pending) interrupt was fired in, by entry;
    /// allocated at the first latch.
    pub pending_phase: Vec<Phase>,
    /// Entry k's position in its rate class's member list, while live.
    pub pos: Vec<Option<u32>>,
    /// Entries the driver may use (its grant, or its table size).
    pub granted: u32,
    /// Index of the next program step.
    pub pc: usize,
    /// When the guest's last step completes: its trapped accesses hold the
    /// vCPU until then (QEMU answers one at a time).
    pub busy_until: u64,
    /// The device's VM was killed: no more steps, no more fires.
    pub halted: bool,
    /// Highest entry unmasked since enable.
    pub high: Option<u32>,
    /// Entry k's open stale-queue episode: when it began (ns). Allocated at
    /// the first loss, so devices that never lose cost nothing.
    stall_since: Vec<Option<f64>>,
    /// The entries whose `stall_since` is open: a delivery asks one bit
    /// whether it has a stall to close.
    stalls: super::entry_set::EntrySet,
    /// The device-wide window W2 open since (ns).
    pub w2_open: Option<u64>,
    /// Entry k's host-masked window W1 open since (ns), allocated on first use.
    pub w1_open: Vec<Option<u64>>,
    /// The guest has MSI-X enabled (a host disable now opens a W2 window).
    pub guest_enabled: bool,
    /// Aggregated mode: the time up to which this device's fires are booked.
    pub booked_until: f64,
    /// Aggregated mode: the live vectors and their rates as a booking sees
    /// them. Whatever changes `live`, `dead`, `class` or `phase` invalidates
    /// it.
    pub roster: super::roster::Roster,
}

/// What the device's table does with an event while MSI-X is disabled.
fn disabled_mode(s: Semantics) -> DisabledMode {
    match s {
        Semantics::Edge => DisabledMode::Lost,
        Semantics::EdgeIntx => DisabledMode::Intx,
        // A cause-latched (level) source is re-asserted once MSI-X is back:
        // like the PBA it holds one event per vector and delivers it late.
        Semantics::Level | Semantics::Pba => DisabledMode::Pending,
    }
}

impl Device {
    /// A device at reset, its entries in rate classes `class`.
    pub fn new(cfg: &DeviceConfig, class: Vec<u16>, probe_class: Option<u16>) -> Result<Self> {
        let n = cfg.entries as usize;
        Ok(Self {
            vm: cfg.vm,
            table: VectorTable::new(n, disabled_mode(cfg.semantics))?,
            live: super::entry_set::EntrySet::new(n),
            guest_masked: super::entry_set::EntrySet::new(n),
            qemu_pending: super::entry_set::EntrySet::new(n),
            qemu_phase: Vec::new(),
            dead: vec![false; n],
            base_class: class.clone(),
            folded: Vec::new(),
            closed_from: cfg.closed_loop.as_ref().map(|c| c.from_entry),
            loops: if cfg.closed_loop.is_some() {
                vec![super::closed_loop::LoopState::default(); n]
            } else {
                Vec::new()
            },
            class,
            probe_class,
            phase: Phase::Probe,
            pending_phase: Vec::new(),
            pos: vec![None; n],
            granted: cfg.entries,
            pc: 0,
            busy_until: 0,
            halted: false,
            high: None,
            stall_since: Vec::new(),
            stalls: super::entry_set::EntrySet::new(n),
            w2_open: None,
            w1_open: Vec::new(),
            guest_enabled: false,
            booked_until: 0.0,
            roster: super::roster::Roster::default(),
        })
    }

    /// When entry `k`'s open stale-queue episode began, if one is open.
    pub fn stall_began(&self, k: usize) -> Option<f64> {
        self.stall_since.get(k).copied().flatten()
    }

    /// Every entry's open stale-queue episode, by entry (empty if none
    /// ever opened).
    pub fn stall_starts(&self) -> &[Option<f64>] {
        &self.stall_since
    }

    /// Whether entry `k` has a stale-queue episode open.
    #[inline]
    pub fn stall_open(&self, k: usize) -> bool {
        self.stalls.contains(k)
    }

    /// Entry `k`'s stale-queue episode opens at `now` (ns); nothing past
    /// the table.
    pub fn open_stall(&mut self, k: usize, now: f64) {
        if self.stall_since.is_empty() {
            self.stall_since = vec![None; self.live.entries()];
        }
        if let Some(s) = self.stall_since.get_mut(k) {
            *s = Some(now);
            self.stalls.set(k, true);
        }
    }

    /// Close entry `k`'s stale-queue episode, returning when it began.
    pub fn close_stall(&mut self, k: usize) -> Option<f64> {
        self.stalls.set(k, false);
        self.stall_since.get_mut(k).and_then(Option::take)
    }

    /// Entry `k`'s W1 slot. In line: every host mask of a live vector
    /// opens one (out of line, the call was a fifth of applying a mask).
    #[inline]
    pub fn w1_slot(&mut self, k: usize) -> &mut Option<u64> {
        if self.w1_open.is_empty() {
            self.alloc_w1();
        }
        &mut self.w1_open[k]
    }

    /// Every live entry without an open W1 window opens one at `now` (a
    /// disable masks them all). A walk of the live entries only, not of
    /// the whole table.
    ///
    /// A word of live bits at a time against its 64 slots (measured with
    /// callgrind: the member iterator's word bookkeeping and a bounds check
    /// against the whole list were a third of a disable's walk).
    pub fn open_w1_live(&mut self, now: u64) {
        if self.live.is_empty() {
            return;
        }
        if self.w1_open.is_empty() {
            self.alloc_w1();
        }
        for (slots, &word) in self.w1_open.chunks_mut(64).zip(self.live.words()) {
            let mut bits = word;
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(w) = slots.get_mut(b) {
                    // Without a branch: most slots are closed here.
                    *w = Some(w.unwrap_or(now));
                }
            }
        }
    }

    /// The W1 slots, allocated at the first host mask (none open).
    #[cold]
    #[inline(never)]
    fn alloc_w1(&mut self) {
        self.w1_open = vec![None; self.live.entries()];
    }

    /// Aggregated mode: the roster, built again if a change invalidated it
    /// (a walk of the live set); untouched otherwise.
    #[inline]
    pub fn refresh_roster(&mut self, classes: &[super::sources::RateClass]) {
        if self.roster.is_valid() {
            // Tests run with debug assertions: a change site that forgot to
            // invalidate shows up there, not as slightly different books.
            debug_assert!(
                self.fresh_roster(classes).same_as(&self.roster),
                "a change to live, dead, class or phase left the roster stale"
            );
            return;
        }
        // Built in place: the roster keeps its allocation.
        let mut roster = std::mem::take(&mut self.roster);
        roster.rebuild(&self.live, &self.dead, classes, |k| self.class_of(k));
        self.roster = roster;
    }

    /// The roster built from the device's state now, in a new allocation
    /// (for the check above).
    fn fresh_roster(&self, classes: &[super::sources::RateClass]) -> super::roster::Roster {
        let mut roster = super::roster::Roster::default();
        roster.rebuild(&self.live, &self.dead, classes, |k| self.class_of(k));
        roster
    }

    /// Entry `k`'s rate class in the current phase.
    #[inline]
    pub fn class_of(&self, k: usize) -> u16 {
        let closed = self.closed_from.is_some_and(|f| k >= f as usize);
        match (self.phase, self.probe_class) {
            (Phase::Probe, Some(c)) if !closed => c,
            _ => self.class[k],
        }
    }

    /// Remember that entry `k`'s latched interrupt was fired in the phase
    /// the device is in now. In line, one store once the phases exist
    /// (measured with callgrind: the out-of-line call was 18 instructions a
    /// latch, a latch per released pending bit of a resize); the first
    /// latch allocates, out of line.
    #[inline]
    pub fn latch(&mut self, k: usize) {
        if self.pending_phase.is_empty() {
            self.alloc_pending_phase();
        }
        let phase = self.phase;
        if let Some(p) = self.pending_phase.get_mut(k) {
            *p = phase;
        }
    }

    /// The latch phases, allocated at the first latch (every entry `Probe`).
    #[cold]
    #[inline(never)]
    fn alloc_pending_phase(&mut self) {
        self.pending_phase = vec![Phase::Probe; self.live.entries()];
    }

    /// The phase entry `k`'s latched interrupt was fired in.
    pub fn latched_phase(&self, k: usize) -> Phase {
        self.pending_phase.get(k).copied().unwrap_or(Phase::Probe)
    }

    /// Close entry `k`'s W1 window, returning when it opened.
    pub fn take_w1(&mut self, k: usize) -> Option<u64> {
        self.w1_open.get_mut(k).and_then(Option::take)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn a_disable_opens_w1_for_exactly_the_live_entries_without_one() {
        // Against the plain walk of the members: any live set, any slots
        // already open, tables across word boundaries.
        for seed in 0..40 {
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
            let n = rng.random_range(1..200u32);
            let mut d = Device::new(&DeviceConfig::new(n), vec![0; n as usize], None).unwrap();
            for k in 0..n as usize {
                if rng.random_bool(0.5) {
                    d.live.set(k, true);
                }
                if rng.random_bool(0.3) {
                    *d.w1_slot(k) = Some(rng.random_range(0..100));
                }
            }
            let mut want = d.w1_open.clone();
            if d.live.iter().next().is_some() && want.is_empty() {
                want = vec![None; n as usize];
            }
            for k in d.live.iter() {
                want[k].get_or_insert(1000);
            }
            d.open_w1_live(1000);
            assert_eq!(d.w1_open, want, "{seed}");
        }
    }

    #[test]
    fn the_stall_bits_are_the_open_stalls() {
        // Opens and closes in any order, past the table too: the bit a
        // delivery asks is set exactly when the entry's stall has a start.
        for seed in 0..20 {
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
            let n = rng.random_range(1..130u32);
            let mut d = Device::new(&DeviceConfig::new(n), vec![0; n as usize], None).unwrap();
            for step in 0..400 {
                let k = rng.random_range(0..n as usize + 2);
                if rng.random_bool(0.5) {
                    d.open_stall(k, f64::from(step));
                } else {
                    let was = d.stall_began(k);
                    assert_eq!(d.close_stall(k), was);
                }
                for j in 0..n as usize + 2 {
                    assert_eq!(d.stall_open(j), d.stall_began(j).is_some(), "{seed} {j}");
                }
            }
            let open = d.stall_starts().iter().flatten().count();
            assert_eq!(open, (0..n as usize).filter(|&j| d.stall_open(j)).count());
        }
    }
}
