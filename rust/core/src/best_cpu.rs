//! What `matrix_find_best_cpu` returns for the full mask, kept up to date beside the matrix.
//!
//! The kernel scans the mask for the online CPU with the strictly largest non-zero `available`
//! (ties: the lowest CPU). Over every CPU that pick is a function of the per-CPU `available` and
//! `online` alone, so the matrix keeps the online CPUs bucketed by `available`: bucket `a` is a
//! CPU bitmap of the online CPUs with exactly `a` vectors left. The pick is the lowest CPU of the
//! highest non-empty bucket above 0. A change of one CPU moves one bit between two buckets (an
//! alloc or a free moves it to the next bucket down or up), so the matrix pays a few
//! instructions per change instead of a scan per pick. Bucket 0 (online, nothing left) is held
//! like the others, so that the move from or to it takes no branch. The buckets go up to 255
//! or the allocation range size if smaller: `available` only exceeds the range after the
//! kernel's unchecked counters have wrapped (a model of a BUG path), or reaches 256 on a
//! matrix whose allocation range is all 256 bits; such CPUs are counted and, while there are
//! any, the pick is the scan itself. Below a few CPUs no buckets are kept: the scan is cheaper
//! there.

// The steps of a resize are `#[inline(always)]` into their loops: callgrind counts 5 % fewer
// instructions per resize than with `#[inline]` (benches/README.md, issue 14).
#![allow(clippy::inline_always)]

use super::CpuMap;

/// Below this many CPUs no buckets are kept and the pick is the scan: reading a few `CpuMap`s
/// costs less than moving a bit per alloc and free (criterion, 1 CPU: 12.3 ns per alloc+free
/// pair with the scan, 15.2 ns with buckets).
const BUCKETS_MIN_CPUS: usize = 8;

/// Bucket of a CPU that is in none (offline).
pub(super) const NONE: u32 = u32::MAX;
/// Bucket of a CPU whose `available` is past the buckets held.
const OUTSIDE: u32 = u32::MAX - 1;

/// Entries of a row: buckets `0..=255` at most.
const SLOTS: usize = 256;

/// Where held bucket `a` (`0..SLOTS`) sits in a row. The mask is a no-op for a held bucket;
/// it lets the compiler see the index in bounds, so a bucket move indexes no check.
#[inline(always)]
fn slot(a: u32) -> usize {
    a as usize % SLOTS
}

/// Online CPUs bucketed by `available` (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BestCpu {
    /// Buckets `0..=held` are kept: `held` is the allocation range size, at most 255.
    held: u32,
    /// Word `w` of every bucket's bitmap, by [`slot`]: bit `c` of `buckets[w][slot(a)]` is
    /// CPU `64 w + c` online with `available == a`. Word-major, so a move between buckets
    /// looks up its row once. Empty when no buckets are kept: the row look-up is then also
    /// the test whether to keep anything.
    buckets: Vec<[u64; SLOTS]>,
    /// CPUs in each bucket, by [`slot`], kept only with more than one word: with one, the
    /// bucket's word itself says whether it is empty (measured with callgrind: the counts
    /// cost a load and a store per bucket touched).
    count: Box<[u32; SLOTS]>,
    /// The highest non-empty bucket above 0 (0 when there is none, and always when no
    /// buckets are kept), or [`SCAN`] while any CPU is past the buckets: then the pick is
    /// the scan, and `top` is worked out again when the last one comes back. One field
    /// says whether the buckets hold a pick (measured with callgrind: testing a separate
    /// count per allocation cost 4 instructions more).
    top: u32,
    /// CPUs in [`OUTSIDE`].
    outside: u32,
}

/// [`BestCpu::top`] while some CPU is past the buckets.
const SCAN: u32 = u32::MAX;

/// The bucket of a CPU `online` with `available` vectors left, for buckets up to `held`.
/// A CPU's bucket is this function of its map; nothing else is stored per CPU (the callers
/// know the state before each change, so the old bucket is computed, not looked up).
#[inline(always)]
fn level(online: bool, available: u32, held: u32) -> u32 {
    if !online {
        NONE
    } else if available > held {
        OUTSIDE
    } else {
        available
    }
}

/// What [`BestCpu::top_pick`] read: the CPU it picks and where its bit sits, so that
/// [`BestCpu::took_from_top`] moves it without reading the buckets again.
#[derive(Clone, Copy, Debug)]
pub(super) struct TopPick {
    /// The picked CPU: the lowest bit of `word`.
    pub(super) cpu: u32,
    /// Its row (`cpu / 64`).
    row: usize,
    /// The top bucket's word in that row, as read.
    word: u64,
    /// The top bucket.
    top: u32,
}

impl BestCpu {
    /// No CPU online yet, for `ncpus` CPUs with at most `levels` vectors each (no buckets
    /// below [`BUCKETS_MIN_CPUS`]: every pick scans).
    pub(super) fn new(ncpus: usize, levels: u32) -> Self {
        let words = if ncpus < BUCKETS_MIN_CPUS {
            0
        } else {
            ncpus.div_ceil(64)
        };
        Self {
            held: levels.min(SLOTS as u32 - 1),
            buckets: vec![[0; SLOTS]; words],
            count: Box::new([0; SLOTS]),
            top: 0,
            outside: 0,
        }
    }

    /// Recompute from every CPU's map.
    pub(super) fn rebuild(&mut self, maps: &[CpuMap]) {
        *self = Self {
            held: self.held,
            ..Self::new(maps.len(), 0)
        };
        for (cpu, cm) in maps.iter().enumerate() {
            self.update(cpu, NONE, cm);
        }
    }

    /// The bucket CPU map `cm` belongs in: the `was` to hand to [`update`](Self::update)
    /// when read before a change. Changes nothing.
    #[inline(always)]
    pub(super) fn level(&self, cm: &CpuMap) -> u32 {
        level(cm.online, cm.available, self.held)
    }

    /// CPU `cpu`'s `available` or `online` changed from a state in bucket `was` (read with
    /// [`level`](Self::level) before the change) to `cm`: move it to its new bucket.
    /// Accounting: the old bucket loses the CPU, the new one gains it, `top` follows.
    #[inline(always)]
    pub(super) fn update(&mut self, cpu: usize, was: u32, cm: &CpuMap) {
        self.relevel(cpu, was, self.level(cm));
    }

    /// Move CPU `cpu` from bucket `old` to bucket `new` (either may be [`NONE`] or
    /// [`OUTSIDE`]); `top` and `outside` follow. Nothing when no buckets are kept.
    #[inline(always)]
    fn relevel(&mut self, cpu: usize, old: u32, new: u32) {
        let words = self.buckets.len();
        let Some(row) = self.buckets.get_mut(cpu / 64) else {
            return;
        };
        if new == old {
            return;
        }
        let bit = 1u64 << (cpu % 64);
        if new == OUTSIDE {
            self.outside += 1;
            self.top = SCAN;
        } else if new != NONE {
            row[slot(new)] |= bit;
            if words > 1 {
                self.count[slot(new)] += 1;
            }
            self.top = self.top.max(new);
        }
        if old == OUTSIDE {
            self.outside -= 1;
            if self.outside == 0 {
                // The last CPU past the buckets came back: the highest non-empty bucket.
                self.top = (1..=self.held)
                    .rev()
                    .find(|&a| !self.is_empty(a))
                    .unwrap_or(0);
            }
        } else if old != NONE {
            row[slot(old)] &= !bit;
            if words > 1 {
                self.count[slot(old)] -= 1;
            }
            // Usually the CPU went one bucket down and is the new top: one step. (Not
            // tracked while SCAN.)
            if self.top != SCAN {
                while self.top > 0 && self.is_empty(self.top) {
                    self.top -= 1;
                }
            }
        }
    }

    /// Whether held bucket `a` holds no CPU (buckets kept). Changes nothing.
    #[inline(always)]
    fn is_empty(&self, a: u32) -> bool {
        if self.buckets.len() > 1 {
            self.count[slot(a)] == 0
        } else {
            self.buckets[0][slot(a)] == 0
        }
    }

    /// CPU `cpu`'s `available` went down by one (an allocation on it) to `a`, `online` its
    /// map's state: it moves from the bucket of `a + 1` to that of `a`.
    #[inline(always)]
    pub(super) fn lowered(&mut self, cpu: usize, online: bool, a: u32) {
        // No buckets (few CPUs): nothing to work out either.
        if self.buckets.is_empty() {
            return;
        }
        let held = self.held;
        self.relevel(
            cpu,
            level(online, a.wrapping_add(1), held),
            level(online, a, held),
        );
    }

    /// Online CPU `cpu`'s `available` went up by one (a free on it) to `a`. The common case,
    /// one bucket higher, is one bit moved up with one row look-up; anything else (a counter
    /// wrapped, or past the buckets) is the general move.
    #[inline(always)]
    pub(super) fn raised(&mut self, cpu: usize, a: u32) {
        let (words, held) = (self.buckets.len(), self.held);
        let Some(row) = self.buckets.get_mut(cpu / 64) else {
            return;
        };
        if a.wrapping_sub(1) >= held {
            self.relevel(
                cpu,
                level(true, a.wrapping_sub(1), held),
                level(true, a, held),
            );
            return;
        }
        // 1 <= a <= held: from bucket a - 1 (0 included), where its bit is set, so a flip
        // clears it (no mask to build).
        let bit = 1u64 << (cpu % 64);
        row[slot(a)] |= bit;
        row[slot(a - 1)] ^= bit;
        if words > 1 {
            self.count[slot(a)] += 1;
            self.count[slot(a - 1)] -= 1;
        }
        // The top was at least a - 1 (the CPU's bucket, or 0): it only moves when it was
        // exactly that, and is written only then.
        if self.top == a - 1 {
            self.top = a;
        }
    }

    /// The kernel's pick over every CPU, if any CPU is a candidate.
    #[inline]
    pub(super) fn best(&self, maps: &[CpuMap]) -> Option<u32> {
        if self.buckets.is_empty() || self.top == SCAN {
            return scan(maps);
        }
        self.top_pick().map(|p| p.cpu)
    }

    /// The kernel's pick over every CPU when the buckets decide it (no CPU past them) and
    /// it exists: the lowest CPU of the top bucket, with where it sits, to hand to
    /// [`took_from_top`](Self::took_from_top) after its allocation. `None` when the scan
    /// decides or no CPU is a candidate (no buckets kept: `top` is 0). Changes nothing.
    #[inline(always)]
    pub(super) fn top_pick(&self) -> Option<TopPick> {
        let top = self.top;
        if top == 0 || top == SCAN {
            return None;
        }
        // The first row on its own: up to 64 CPUs it is the only one (measured with
        // callgrind: the loop's set-up costs more than the look).
        let first = self.buckets.first()?[slot(top)];
        if first != 0 {
            return Some(TopPick {
                cpu: first.trailing_zeros(),
                row: 0,
                word: first,
                top,
            });
        }
        self.buckets
            .iter()
            .enumerate()
            .skip(1)
            .find_map(|(row, r)| {
                let word = r[slot(top)];
                (word != 0).then(|| TopPick {
                    cpu: row as u32 * 64 + word.trailing_zeros(),
                    row,
                    word,
                    top,
                })
            })
    }

    /// The [`top_pick`](Self::top_pick) `p`'s CPU took one vector (`available` down by one),
    /// nothing else having changed the buckets since: what [`lowered`](Self::lowered) does,
    /// without asking where it was. Accounting: it moves from the top bucket to the next one
    /// down (bucket 0 from bucket 1); `top` follows when it was the top bucket's last CPU
    /// (the bucket below then holds it, or, at 0, there is no candidate left).
    #[inline(always)]
    pub(super) fn took_from_top(&mut self, p: TopPick) {
        let words = self.buckets.len();
        let (from, to) = (p.top, p.top - 1);
        debug_assert!(self.top == from && self.buckets[p.row][slot(from)] == p.word);
        let Some(row) = self.buckets.get_mut(p.row) else {
            return;
        };
        // The CPU is the word's lowest bit.
        let left = p.word & (p.word - 1);
        row[slot(from)] = left;
        row[slot(to)] |= p.word ^ left;
        let emptied = if words > 1 {
            self.count[slot(from)] -= 1;
            self.count[slot(to)] += 1;
            self.count[slot(from)] == 0
        } else {
            left == 0
        };
        if emptied {
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
