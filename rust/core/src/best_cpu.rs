//! What `matrix_find_best_cpu` returns for the full mask, kept up to date beside the matrix.
//!
//! The kernel scans the mask for the online CPU with the strictly largest non-zero `available`
//! (ties: the lowest CPU). Over every CPU that pick is a function of the per-CPU `available` and
//! `online` alone, so the matrix keeps the candidates bucketed by `available`: bucket `a` is a
//! CPU bitmap of the online CPUs with exactly `a` vectors left. The pick is the lowest CPU of the
//! highest non-empty bucket. A change of one CPU moves one bit between two buckets (an alloc or
//! a free moves it to the next bucket down or up), so the matrix pays a few instructions per
//! change instead of a scan per pick. `available` only exceeds the allocation range after the
//! kernel's unchecked counters have wrapped (a model of a BUG path); such CPUs are counted and,
//! while there are any, the pick is the scan itself. Below a few CPUs no buckets are kept: the
//! scan is cheaper there.

// The steps of a resize are `#[inline(always)]` into their loops: callgrind counts 5 % fewer
// instructions per resize than with `#[inline]` (benches/README.md, issue 14).
#![allow(clippy::inline_always)]

use super::CpuMap;

/// Below this many CPUs no buckets are kept and the pick is the scan: reading a few `CpuMap`s
/// costs less than moving a bit per alloc and free (criterion, 1 CPU: 12.3 ns per alloc+free
/// pair with the scan, 15.2 ns with buckets).
const BUCKETS_MIN_CPUS: usize = 8;

/// Bucket of a CPU that is not a candidate (offline, or nothing left).
const NONE: u32 = 0;
/// Bucket of a CPU whose `available` is past the buckets held.
const OUTSIDE: u32 = u32::MAX;

/// Buckets held at most: `levels` is an allocation range size, at most the matrix's 256 bits.
const MAX_LEVELS: usize = 256;

/// Where bucket `a` (`1..=MAX_LEVELS`) sits in a row of [`MAX_LEVELS`] entries. The mask
/// is a no-op for a held bucket; it lets the compiler see the index in bounds, so a bucket
/// move indexes no check.
#[inline(always)]
fn slot(a: u32) -> usize {
    (a.wrapping_sub(1) as usize) % MAX_LEVELS
}

/// Candidate CPUs bucketed by `available` (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BestCpu {
    /// `u64` words per bucket bitmap (0: no buckets kept).
    words: usize,
    /// Buckets `1..=levels` are held (`levels` = the matrix's allocation range size).
    levels: u32,
    /// Word `w` of every bucket's bitmap, by [`slot`]: bit `c` of `buckets[w][slot(a)]` is
    /// CPU `64 w + c` online with `available == a`. Word-major, so a move between buckets
    /// looks up its row once.
    buckets: Vec<[u64; MAX_LEVELS]>,
    /// CPUs in each bucket, by [`slot`].
    count: Box<[u32; MAX_LEVELS]>,
    /// Each CPU's bucket: [`NONE`], `1..=levels`, or [`OUTSIDE`].
    level_of: Vec<u32>,
    /// The highest non-empty bucket (0 when there is none).
    top: u32,
    /// CPUs in [`OUTSIDE`].
    outside: u32,
}

/// The bucket CPU map `cm` belongs in, for buckets up to `levels`.
fn level(cm: &CpuMap, levels: u32) -> u32 {
    if !cm.online || cm.available == 0 {
        NONE
    } else if cm.available > levels {
        OUTSIDE
    } else {
        cm.available
    }
}

impl BestCpu {
    /// No candidates yet, for `ncpus` CPUs with at most `levels` vectors each (no buckets
    /// below [`BUCKETS_MIN_CPUS`]: every pick scans).
    pub(super) fn new(ncpus: usize, levels: u32) -> Self {
        let words = if ncpus < BUCKETS_MIN_CPUS {
            0
        } else {
            ncpus.div_ceil(64)
        };
        debug_assert!(levels as usize <= MAX_LEVELS);
        let ncpus = if words == 0 { 0 } else { ncpus };
        Self {
            words,
            levels,
            buckets: vec![[0; MAX_LEVELS]; words],
            count: Box::new([0; MAX_LEVELS]),
            level_of: vec![NONE; ncpus],
            top: 0,
            outside: 0,
        }
    }

    /// Recompute from every CPU's map.
    pub(super) fn rebuild(&mut self, maps: &[CpuMap]) {
        *self = Self::new(maps.len(), self.levels);
        if self.words == 0 {
            return;
        }
        for cpu in 0..maps.len() {
            self.update(maps, cpu);
        }
    }

    /// CPU `cpu`'s `available` or `online` changed: move it to its new bucket. Accounting:
    /// the old bucket loses the CPU, the new one gains it, `top` follows.
    /// Inlined into every alloc and free: a call costs as much as the move.
    #[inline(always)]
    pub(super) fn update(&mut self, maps: &[CpuMap], cpu: usize) {
        if self.words == 0 {
            return;
        }
        let new = level(&maps[cpu], self.levels);
        let old = self.level_of[cpu];
        if new == old {
            return;
        }
        self.level_of[cpu] = new;
        let (row, bit) = (&mut self.buckets[cpu / 64], 1u64 << (cpu % 64));
        if new == OUTSIDE {
            self.outside += 1;
        } else if new != NONE {
            row[slot(new)] |= bit;
            self.count[slot(new)] += 1;
            self.top = self.top.max(new);
        }
        if old == OUTSIDE {
            self.outside -= 1;
        } else if old != NONE {
            row[slot(old)] &= !bit;
            self.count[slot(old)] -= 1;
            // Usually the CPU went one bucket down and is the new top: one step.
            while self.top > 0 && self.count[slot(self.top)] == 0 {
                self.top -= 1;
            }
        }
    }

    /// CPU `cpu`'s `available` went down by one (an allocation on it). The
    /// common case, an online CPU one bucket lower, is one bit moved down;
    /// anything else is [`update`](Self::update).
    #[inline(always)]
    pub(super) fn lowered(&mut self, maps: &[CpuMap], cpu: usize) {
        if self.words == 0 {
            return;
        }
        let cm = &maps[cpu];
        let (old, a) = (self.level_of[cpu], cm.available);
        if cm.online && a != 0 && old != OUTSIDE && a.checked_add(1) == Some(old) {
            self.shift(cpu, old, a);
            if self.top == old && self.count[slot(old)] == 0 {
                // The CPU was the last one in the top bucket: it is the top now.
                self.top = a;
            }
        } else {
            self.update(maps, cpu);
        }
    }

    /// CPU `cpu`'s `available` went up by one (a free on it) to `a`, `online` its map's
    /// state (both as in `maps`, read by the caller). The common case, an online CPU one
    /// bucket higher (from a bucket or from none), is one bit moved up; anything else is
    /// [`update`](Self::update).
    #[inline(always)]
    pub(super) fn raised(&mut self, maps: &[CpuMap], cpu: usize, online: bool, a: u32) {
        if self.words == 0 {
            return;
        }
        let old = self.level_of[cpu];
        if online && a != 0 && a <= self.levels && old == a - 1 {
            if old == NONE {
                self.level_of[cpu] = a;
                self.buckets[cpu / 64][slot(a)] |= 1u64 << (cpu % 64);
                self.count[slot(a)] += 1;
            } else {
                self.shift(cpu, old, a);
            }
            self.top = self.top.max(a);
        } else {
            self.update(maps, cpu);
        }
    }

    /// Move CPU `cpu` from bucket `from` to bucket `to` (both held).
    #[inline(always)]
    fn shift(&mut self, cpu: usize, from: u32, to: u32) {
        let (row, bit) = (&mut self.buckets[cpu / 64], 1u64 << (cpu % 64));
        row[slot(from)] &= !bit;
        row[slot(to)] |= bit;
        self.count[slot(from)] -= 1;
        self.count[slot(to)] += 1;
        self.level_of[cpu] = to;
    }

    /// The kernel's pick over every CPU, if any CPU is a candidate.
    #[inline]
    pub(super) fn best(&self, maps: &[CpuMap]) -> Option<u32> {
        if self.words == 0 || self.outside > 0 {
            return scan(maps);
        }
        self.top_cpu()
    }

    /// The kernel's pick when the buckets hold it (held, no CPU past them): the lowest CPU
    /// of the top bucket; `None` when no CPU is a candidate. Changes nothing.
    #[inline(always)]
    fn top_cpu(&self) -> Option<u32> {
        if self.top == 0 {
            return None;
        }
        let top = slot(self.top);
        self.buckets
            .iter()
            .position(|row| row[top] != 0)
            .map(|i| (i * 64) as u32 + self.buckets[i][top].trailing_zeros())
    }

    /// The pick [`best`](Self::best) gives, when the buckets decide it and it exists: the
    /// CPU to hand to [`took_from_top`](Self::took_from_top) after its allocation. `None`
    /// when the scan decides or no CPU is a candidate. Changes nothing.
    #[inline(always)]
    pub(super) fn top_pick(&self) -> Option<u32> {
        if self.words == 0 || self.outside > 0 {
            return None;
        }
        self.top_cpu()
    }

    /// CPU `cpu`, the [`top_pick`](Self::top_pick), took one vector (`available` down by
    /// one): what [`lowered`](Self::lowered) does, without asking where it was. Accounting:
    /// it moves from the top bucket to the next one down (to none from bucket 1); `top`
    /// follows when it was the top bucket's last CPU (the bucket below then holds it, or
    /// there is no candidate left).
    #[inline(always)]
    pub(super) fn took_from_top(&mut self, cpu: usize) {
        let from = self.top;
        debug_assert!(from > 0 && self.level_of[cpu] == from);
        let to = from - 1;
        let (row, bit) = (&mut self.buckets[cpu / 64], 1u64 << (cpu % 64));
        row[slot(from)] &= !bit;
        self.count[slot(from)] -= 1;
        if to != NONE {
            row[slot(to)] |= bit;
            self.count[slot(to)] += 1;
        }
        self.level_of[cpu] = to;
        if self.count[slot(from)] == 0 {
            self.top = to;
        }
    }
}

/// `matrix_find_best_cpu` over every CPU, as the kernel loops (`available <= maxavl` skips,
/// `maxavl` starts at 0).
fn scan(maps: &[CpuMap]) -> Option<u32> {
    let mut best = None;
    let mut maxavl = 0u32;
    for (cpu, cm) in maps.iter().enumerate() {
        if cm.online && cm.available > maxavl {
            best = Some(cpu as u32);
            maxavl = cm.available;
        }
    }
    best
}
