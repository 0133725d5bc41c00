//! The Linux per-CPU interrupt vector allocator, `kernel/irq/matrix.c`, bit for bit.
//!
//! Every function mirrors one `irq_matrix_*` function of mainline Linux (≥ v6.7: `allocated()`
//! leaves managed vectors out). Where the kernel acts on "the local CPU" (`this_cpu_ptr`), the CPU
//! is an explicit argument here. The counters are the spec: each public function's doc names the
//! counters and maps it changes, and all of them are `u32` with the wrapping arithmetic of the
//! kernel's `unsigned int`.
//!
//! How kernel outcomes map onto [`Result`]:
//! - `-EINVAL` / `-ENOSPC` → [`Error::InvalidArgument`] / [`Error::NoSpace`], state exactly as the
//!   kernel leaves it.
//! - `WARN_ON_ONCE` bail-outs → [`Error::InvalidOperation`] whose `sites` name every WARN in order;
//!   the state is exactly as the kernel leaves it (`remove_managed` carries on with the rest of its
//!   mask). "Once" only limits the kernel's console message: the bail-out happens every time.
//! - `BUG_ON` → [`Error::InvalidOperation`] and nothing changes (checked before any mutation).
//! - `pr_warn` (over-reservation) → success, and [`IrqMatrix::pr_warnings`] goes up by one.
//! - Inputs no kernel caller could produce (a CPU ≥ `ncpus`) → [`Error::InvalidArgument`], nothing
//!   changes.
//!
//! CPU masks are `&[u32]` taken as sets: duplicates are ignored and they are walked in ascending
//! order, like `for_each_cpu`.
//!
//! Beside the kernel's state the matrix keeps its CPUs bucketed by `available` (a function of the
//! per-CPU `available` and `online`, updated wherever they change, see `best_cpu.rs`), from which
//! it reads what `matrix_find_best_cpu` returns for the full mask: [`IrqMatrix::alloc_any`], and
//! [`IrqMatrix::alloc`] with the mask `0..ncpus`, pick the CPU without scanning.

// The steps of a resize are `#[inline(always)]` into their loops: callgrind counts 5 % fewer
// instructions per resize than with `#[inline]` (benches/README.md, issue 14).
#![allow(clippy::inline_always)]

use std::fmt::Write as _;
use std::ops::BitOr;

use crate::error::{Error, Result};

#[path = "best_cpu.rs"]
mod best_cpu;
use best_cpu::BestCpu;

/// The kernel's `IRQ_MATRIX_BITS` (x86 `NR_VECTORS`): the largest matrix this model holds.
pub const IRQ_MATRIX_BITS: u32 = 256;
/// Largest number of possible CPUs accepted (x86 `NR_CPUS` maximum, `CONFIG_MAXSMP`).
pub const MAX_CPUS: u32 = 8192;
/// The only `pr_warn` message of matrix.c (without its trailing newline).
pub const RESERVATION_EXCEEDS_MSG: &str = "Interrupt reservation exceeds available resources";
/// lib/vsprintf.c clamps a printf field width to this (`FIELD_WIDTH_MAX`); `debug_show` does too.
pub const FIELD_WIDTH_MAX: u32 = (1 << 23) - 1;
/// Largest `debug_show` text the model builds (64 MiB); the kernel's seq_file stops at
/// `MAX_RW_COUNT` (2 GiB) with `-ENOMEM`.
pub const MAX_DEBUG_SHOW_BYTES: usize = 64 << 20;

const WORDS: usize = (IRQ_MATRIX_BITS / 64) as usize;

/// A fixed 256-bit bitmap (one bit per vector), the model of the kernel's `unsigned long[]` maps.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct VectorBitmap([u64; WORDS]);

impl std::fmt::Debug for VectorBitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VectorBitmap[{}]", self.range_list(IRQ_MATRIX_BITS))
    }
}

impl BitOr for VectorBitmap {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        let mut out = self;
        for (o, r) in out.0.iter_mut().zip(rhs.0) {
            *o |= r;
        }
        out
    }
}

impl VectorBitmap {
    /// The empty bitmap.
    pub const EMPTY: Self = Self([0; WORDS]);

    /// The raw 64-bit words (bit k is bit k % 64 of word k / 64).
    pub const fn words(&self) -> [u64; WORDS] {
        self.0
    }

    /// Whether `bit` is set (false for any bit ≥ 256).
    pub fn contains(&self, bit: u32) -> bool {
        self.0
            .get((bit / 64) as usize)
            .is_some_and(|w| w & (1u64 << (bit % 64)) != 0)
    }

    /// Set `bit`; bits ≥ 256 are ignored (callers check ranges first).
    fn set(&mut self, bit: u32) {
        if let Some(w) = self.0.get_mut((bit / 64) as usize) {
            *w |= 1u64 << (bit % 64);
        }
    }

    /// Clear `bit`; bits ≥ 256 are ignored.
    fn clear(&mut self, bit: u32) {
        if let Some(w) = self.0.get_mut((bit / 64) as usize) {
            *w &= !(1u64 << (bit % 64));
        }
    }

    /// Number of set bits (`bitmap_weight` over the whole map).
    pub fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// Number of set bits below `nbits` (`bitmap_weight(map, nbits)`).
    pub fn count_below(&self, nbits: u32) -> u32 {
        self.iter().take_while(|&b| b < nbits).count() as u32
    }

    /// Whether no bit is set.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// The set bits, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            let mut rest = w;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let b = rest.trailing_zeros();
                rest &= rest - 1;
                Some(i as u32 * 64 + b)
            })
        })
    }

    /// The set bits as a sorted vector.
    pub fn to_vec(&self) -> Vec<u32> {
        self.iter().collect()
    }

    /// Lowest bit set in `self` and clear in `other`, below `end`
    /// (`bitmap_andnot` + `find_first_bit` over `end` bits).
    fn first_andnot_below(&self, other: &Self, end: u32) -> Option<u32> {
        for (i, (&a, &b)) in self.0.iter().zip(other.0.iter()).enumerate() {
            let w = a & !b;
            if w != 0 {
                let bit = i as u32 * 64 + w.trailing_zeros();
                return (bit < end).then_some(bit);
            }
        }
        None
    }

    /// The kernel's `%*pbl` rendering of the first `nbits` bits: maximal runs joined by commas,
    /// a single bit as `n`, a run as `a-b`, nothing at all for an empty map.
    pub fn range_list(&self, nbits: u32) -> String {
        let mut out = String::new();
        self.write_range_list(nbits, &mut out);
        out
    }

    fn write_range_list(&self, nbits: u32, out: &mut String) {
        let mut run: Option<(u32, u32)> = None;
        let mut first = true;
        let mut flush = |out: &mut String, (a, b): (u32, u32)| {
            if !first {
                out.push(',');
            }
            first = false;
            if a == b {
                let _ = write!(out, "{a}");
            } else {
                let _ = write!(out, "{a}-{b}");
            }
        };
        for bit in self.iter().take_while(|&b| b < nbits) {
            run = match run {
                Some((a, b)) if b + 1 == bit => Some((a, bit)),
                Some(r) => {
                    flush(out, r);
                    Some((bit, bit))
                }
                None => Some((bit, bit)),
            };
        }
        if let Some(r) = run {
            flush(out, r);
        }
    }
}

/// Per-CPU state, the kernel's `struct cpumap`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuMap {
    // `available` and `allocated` change together and are kept apart on purpose: side by side
    // the compiler pairs their updates into vector loads and stores, measured with callgrind
    // at one instruction more per allocation than two scalar updates.
    available: u32,
    managed: u32,
    allocated: u32,
    managed_allocated: u32,
    initialized: bool,
    online: bool,
    alloc_map: VectorBitmap,
    managed_map: VectorBitmap,
}

impl CpuMap {
    /// Vectors this CPU can still hand out (`cm->available`; not recomputed after first online).
    pub const fn available(&self) -> u32 {
        self.available
    }
    /// Vectors set in `alloc_map` through the counters (`cm->allocated`, managed ones included).
    pub const fn allocated(&self) -> u32 {
        self.allocated
    }
    /// Managed reservations on this CPU (`cm->managed`).
    pub const fn managed(&self) -> u32 {
        self.managed
    }
    /// Managed reservations that are allocated (`cm->managed_allocated`).
    pub const fn managed_allocated(&self) -> u32 {
        self.managed_allocated
    }
    /// Whether the CPU has been online at least once (`cm->initialized`).
    pub const fn initialized(&self) -> bool {
        self.initialized
    }
    /// Whether the CPU's map is online (`cm->online`).
    pub const fn online(&self) -> bool {
        self.online
    }
    /// Allocated vectors (`cm->alloc_map`).
    pub const fn alloc_map(&self) -> &VectorBitmap {
        &self.alloc_map
    }
    /// Managed reservations (`cm->managed_map`).
    pub const fn managed_map(&self) -> &VectorBitmap {
        &self.managed_map
    }
}

/// The matrix allocator, the kernel's `struct irq_matrix` (see the module doc for the semantics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IrqMatrix {
    matrix_bits: u32,
    alloc_start: u32,
    alloc_end: u32,
    alloc_size: u32,
    // The three counters an allocation changes are kept apart on purpose: side by side the
    // compiler pairs their updates into vector loads and stores, measured with callgrind at
    // three instructions more per allocation than scalar updates.
    global_available: u32,
    systembits_inalloc: u32,
    global_reserved: u32,
    online_maps: u32,
    total_allocated: u32,
    maps: Vec<CpuMap>,
    system_map: VectorBitmap,
    /// The bits no CPU may allocate whatever its maps hold: `system_map` and every bit outside
    /// `[alloc_start, alloc_end)` (a function of those three, set beside `system_map`). The
    /// first-fit search ORs it in instead of clamping to the range: measured with callgrind,
    /// 15 fewer instructions per allocation.
    blocked: VectorBitmap,
    pr_warnings: u64,
    /// `matrix_find_best_cpu` over every possible CPU, kept up to date (a function of `maps`).
    best: BestCpu,
}

/// The error for a CPU at or past `ncpus` (`InvalidArgument`).
#[cold]
fn cpu_out_of_range(cpu: u32, ncpus: usize) -> Error {
    Error::InvalidArgument(format!("cpu {cpu} out of range (ncpus {ncpus})"))
}

/// The kernel's WARN for a `bit` outside `[start, end)`, named `site`.
#[cold]
fn bit_out_of_range(bit: u32, site: &str, start: u32, end: u32) -> Error {
    Error::invalid_op(site, format!("bit {bit} outside [{start}, {end})"))
}

/// The kernel's WARN in `irq_matrix_free` for a bit that is not allocated.
#[cold]
fn bit_not_allocated(bit: u32, cpu: u32) -> Error {
    Error::invalid_op(
        "free_not_allocated",
        format!("bit {bit} not allocated on cpu {cpu}"),
    )
}

/// Every bit of the 256-bit map outside `[start, end)` (`start <= end <= 256`).
fn outside_range(start: u32, end: u32) -> VectorBitmap {
    let mut out = VectorBitmap([u64::MAX; WORDS]);
    for bit in start..end {
        out.clear(bit);
    }
    out
}

/// Whether `cpus` is `[0, 1, …, len - 1]`: every entry XOR its position is 0 (OR-folded without
/// a branch, so the loop vectorizes).
fn is_identity(cpus: &[u32]) -> bool {
    cpus.iter()
        .zip(0u32..)
        .fold(0, |diff, (&c, i)| diff | (c ^ i))
        == 0
}

/// CPU mask walk order: the slice itself when already strictly ascending (no allocation), else
/// a sorted, deduplicated copy.
fn ascending(cpus: &[u32]) -> std::borrow::Cow<'_, [u32]> {
    if cpus.windows(2).all(|w| w[0] < w[1]) {
        std::borrow::Cow::Borrowed(cpus)
    } else {
        let mut v = cpus.to_vec();
        v.sort_unstable();
        v.dedup();
        std::borrow::Cow::Owned(v)
    }
}

impl IrqMatrix {
    /// `irq_alloc_matrix`: an all-zero matrix with `ncpus` offline, uninitialized CPUs; sets
    /// `matrix_bits`, `alloc_start`, `alloc_end`, `alloc_size = alloc_end - alloc_start`.
    /// Needs 1 ≤ `matrix_bits` ≤ 256, `alloc_start` ≤ `alloc_end` ≤ `matrix_bits`,
    /// 1 ≤ `ncpus` ≤ 8192, else `InvalidArgument`.
    pub fn new(matrix_bits: u32, alloc_start: u32, alloc_end: u32, ncpus: u32) -> Result<Self> {
        if matrix_bits == 0 || matrix_bits > IRQ_MATRIX_BITS {
            return Err(Error::InvalidArgument(format!(
                "matrix_bits {matrix_bits} not in 1..={IRQ_MATRIX_BITS}"
            )));
        }
        if alloc_start > alloc_end || alloc_end > matrix_bits {
            return Err(Error::InvalidArgument(format!(
                "allocation range [{alloc_start}, {alloc_end}) not inside [0, {matrix_bits})"
            )));
        }
        if ncpus == 0 || ncpus > MAX_CPUS {
            return Err(Error::InvalidArgument(format!(
                "ncpus {ncpus} not in 1..={MAX_CPUS}"
            )));
        }
        Ok(Self {
            matrix_bits,
            alloc_start,
            alloc_end,
            alloc_size: alloc_end - alloc_start,
            global_available: 0,
            global_reserved: 0,
            systembits_inalloc: 0,
            total_allocated: 0,
            online_maps: 0,
            maps: vec![CpuMap::default(); ncpus as usize],
            system_map: VectorBitmap::EMPTY,
            blocked: outside_range(alloc_start, alloc_end),
            pr_warnings: 0,
            best: BestCpu::new(ncpus as usize, alloc_end - alloc_start),
        })
    }

    /// The x86 vector matrix booted as `preset` describes (see [`X86Preset::boot`]): system
    /// vectors, CPU 0 online, legacy ISA vectors on CPU 0, then CPUs 1..ncpus online.
    pub fn x86(ncpus: u32, preset: &X86Preset) -> Result<Self> {
        let mut m = Self::new(
            IRQ_MATRIX_BITS,
            X86_FIRST_EXTERNAL_VECTOR,
            preset.first_system_vector,
            ncpus,
        )?;
        preset.boot(&mut m)?;
        Ok(m)
    }

    fn cpu_index(&self, cpu: u32) -> Result<usize> {
        if (cpu as usize) < self.maps.len() {
            Ok(cpu as usize)
        } else {
            Err(cpu_out_of_range(cpu, self.maps.len()))
        }
    }

    fn check_mask(&self, cpus: &[u32]) -> Result<()> {
        cpus.iter().try_for_each(|&c| self.cpu_index(c).map(drop))
    }

    /// `irq_matrix_online` for `cpu`: on first online sets `available = alloc_size - managed -
    /// systembits_inalloc` and `initialized`; then `global_available += available`, `online`,
    /// `online_maps += 1`. BUG (nothing changes) if `cpu` is already online.
    pub fn online(&mut self, cpu: u32) -> Result<()> {
        // An online CPU BUGs and changes nothing: the CPU was offline, in no bucket.
        let i = self.online_untracked(cpu)?;
        self.best.update(i, best_cpu::NONE, &self.maps[i]);
        Ok(())
    }

    /// [`online`](Self::online) without the best-CPU update (the caller rebuilds the buckets);
    /// returns the CPU's index.
    fn online_untracked(&mut self, cpu: u32) -> Result<usize> {
        let i = self.cpu_index(cpu)?;
        let alloc_size = self.alloc_size;
        let sys = self.systembits_inalloc;
        let cm = &mut self.maps[i];
        if cm.online {
            return Err(Error::invalid_op(
                "online_already_online",
                format!("BUG_ON: cpu {cpu} is already online"),
            ));
        }
        if !cm.initialized {
            cm.available = alloc_size.wrapping_sub(cm.managed.wrapping_add(sys));
            cm.initialized = true;
        }
        cm.online = true;
        self.global_available = self.global_available.wrapping_add(cm.available);
        self.online_maps = self.online_maps.wrapping_add(1);
        Ok(i)
    }

    /// `irq_matrix_offline` for `cpu`: `global_available -= available`, clears `online`,
    /// `online_maps -= 1`; maps and `total_allocated` stay. Like the kernel it does not check that
    /// the CPU is online (offlining an offline CPU subtracts again, wrapping).
    pub fn offline(&mut self, cpu: u32) -> Result<()> {
        let i = self.cpu_index(cpu)?;
        let was = self.best.level(&self.maps[i]);
        let cm = &mut self.maps[i];
        self.global_available = self.global_available.wrapping_sub(cm.available);
        cm.online = false;
        self.online_maps = self.online_maps.wrapping_sub(1);
        self.best.update(i, was, &self.maps[i]);
        Ok(())
    }

    /// `irq_matrix_assign_system` on local CPU `cpu`: sets `bit` in `system_map`;
    /// `systembits_inalloc += 1` if `bit` is in the allocation range; with `replace` clears `bit`
    /// from `cpu`'s `alloc_map`, `allocated -= 1`, `total_allocated -= 1` (`available` unchanged).
    ///
    /// BUG sites (nothing changes): `assign_system_bit_out_of_range` (`bit > matrix_bits`, and also
    /// `bit == matrix_bits`, which passes the kernel's `BUG_ON` but writes one past the
    /// dynamically sized bitmap), `assign_system_cpus_online` (more than one CPU online, or one
    /// without `replace`), `assign_system_replace_not_allocated`.
    pub fn assign_system(&mut self, cpu: u32, bit: u32, replace: bool) -> Result<()> {
        let i = self.cpu_index(cpu)?;
        if bit >= self.matrix_bits {
            return Err(Error::invalid_op(
                "assign_system_bit_out_of_range",
                format!(
                    "BUG_ON: bit {bit} outside the {}-bit matrix",
                    self.matrix_bits
                ),
            ));
        }
        if self.online_maps > 1 || (self.online_maps != 0 && !replace) {
            return Err(Error::invalid_op(
                "assign_system_cpus_online",
                format!(
                    "BUG_ON: {} CPU maps online (replace={replace})",
                    self.online_maps
                ),
            ));
        }
        let cm = &mut self.maps[i];
        if replace {
            if !cm.alloc_map.contains(bit) {
                return Err(Error::invalid_op(
                    "assign_system_replace_not_allocated",
                    format!("BUG_ON: bit {bit} not allocated on cpu {cpu}"),
                ));
            }
            cm.alloc_map.clear(bit);
            cm.allocated = cm.allocated.wrapping_sub(1);
            self.total_allocated = self.total_allocated.wrapping_sub(1);
        }
        self.system_map.set(bit);
        self.blocked.set(bit);
        if bit >= self.alloc_start && bit < self.alloc_end {
            self.systembits_inalloc = self.systembits_inalloc.wrapping_add(1);
        }
        Ok(())
    }

    /// The kernel's WARN when `bit` lies outside `[alloc_start, alloc_end)`.
    fn check_in_range(&self, bit: u32, site: &str) -> Result<()> {
        if bit < self.alloc_start || bit >= self.alloc_end {
            return Err(bit_out_of_range(
                bit,
                site,
                self.alloc_start,
                self.alloc_end,
            ));
        }
        Ok(())
    }

    /// First-fit free bit on CPU `i` (the kernel's `matrix_alloc_area` search without the set):
    /// the lowest bit in `[alloc_start, alloc_end)` clear in its `alloc_map`, its `managed_map`
    /// and `system_map`. Changes nothing.
    #[inline(always)]
    fn find_free_bit(&self, i: usize) -> Option<u32> {
        let cm = &self.maps[i];
        // `blocked` holds the system bits and everything outside the range, so the first clear
        // bit of the union over the whole map is the first free one in the range (the union is
        // built a word at a time, only as far as the search goes: mostly the first word).
        (0..WORDS).find_map(|w| {
            let free = !(self.blocked.0[w] | cm.managed_map.0[w] | cm.alloc_map.0[w]);
            (free != 0).then(|| w as u32 * 64 + free.trailing_zeros())
        })
    }

    /// `irq_matrix_reserve_managed`: for each CPU of `cpus` (ascending, online or not) sets the
    /// first free bit in its `managed_map`, `managed += 1`, and if online `available -= 1`,
    /// `global_available -= 1`. On the first CPU without a free bit, undoes the CPUs already done
    /// with [`remove_managed`](Self::remove_managed) semantics and returns `NoSpace`. An empty mask
    /// succeeds.
    pub fn reserve_managed(&mut self, cpus: &[u32]) -> Result<()> {
        self.check_mask(cpus)?;
        let cpus = ascending(cpus);
        for (done, &cpu) in cpus.iter().enumerate() {
            let i = cpu as usize;
            let Some(bit) = self.find_free_bit(i) else {
                // Rollback: the kernel calls remove_managed on each CPU before the failed one.
                // Each of them just got a reservation, so no WARN can fire here.
                for &c in &cpus[..done] {
                    let _ = self.remove_managed_one(c);
                }
                return Err(Error::NoSpace(format!(
                    "no free vector for a managed reservation on cpu {cpu}"
                )));
            };
            let was = self.best.level(&self.maps[i]);
            let cm = &mut self.maps[i];
            cm.managed_map.set(bit);
            cm.managed = cm.managed.wrapping_add(1);
            if cm.online {
                cm.available = cm.available.wrapping_sub(1);
                self.global_available = self.global_available.wrapping_sub(1);
                self.best.update(i, was, &self.maps[i]);
            }
        }
        Ok(())
    }

    /// One CPU of `irq_matrix_remove_managed`; `Err(site)` names the WARN that fired.
    fn remove_managed_one(&mut self, cpu: u32) -> std::result::Result<(), &'static str> {
        let end = self.alloc_end;
        let i = cpu as usize;
        let was = self.best.level(&self.maps[i]);
        let cm = &mut self.maps[i];
        if cm.managed == 0 {
            return Err("remove_managed_no_managed");
        }
        let Some(bit) = cm.managed_map.first_andnot_below(&cm.alloc_map, end) else {
            return Err("remove_managed_all_allocated");
        };
        cm.managed_map.clear(bit);
        cm.managed = cm.managed.wrapping_sub(1);
        if cm.online {
            cm.available = cm.available.wrapping_add(1);
            self.global_available = self.global_available.wrapping_add(1);
            self.best.update(i, was, &self.maps[i]);
        }
        Ok(())
    }

    /// `irq_matrix_remove_managed`: for each CPU of `cpus` (ascending, online or not) clears the
    /// lowest managed-but-unallocated bit from `managed_map`, `managed -= 1`, and if online
    /// `available += 1`, `global_available += 1`. A CPU with `managed == 0`
    /// (`remove_managed_no_managed`) or with every managed bit allocated
    /// (`remove_managed_all_allocated`) WARNs and is skipped; the others are still processed,
    /// then `InvalidOperation` lists every WARN in order.
    pub fn remove_managed(&mut self, cpus: &[u32]) -> Result<()> {
        self.check_mask(cpus)?;
        let mut sites: Vec<String> = Vec::new();
        for &cpu in ascending(cpus).iter() {
            if let Err(site) = self.remove_managed_one(cpu) {
                sites.push(site.to_string());
            }
        }
        if sites.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidOperation {
                sites,
                detail: "WARN_ON_ONCE in irq_matrix_remove_managed".to_string(),
            })
        }
    }

    /// `irq_matrix_alloc_managed`: picks the online CPU of `cpus` with the fewest
    /// `managed_allocated` (ties: highest CPU), takes its lowest managed-but-unallocated bit into
    /// `alloc_map`; `allocated += 1`, `managed_allocated += 1`, `total_allocated += 1`
    /// (`available` unchanged). Returns `(cpu, bit)`. Empty mask: `InvalidArgument`; no online CPU
    /// or no such bit on the chosen CPU (no retry elsewhere): `NoSpace`.
    pub fn alloc_managed(&mut self, cpus: &[u32]) -> Result<(u32, u32)> {
        self.check_mask(cpus)?;
        if cpus.is_empty() {
            return Err(Error::InvalidArgument("empty CPU mask".to_string()));
        }
        // matrix_find_best_cpu_managed: `managed_allocated > best` skips, so among equal counts
        // the last (highest) CPU of the ascending walk wins.
        let mut best: Option<(u32, u32)> = None;
        for &cpu in cpus {
            let cm = &self.maps[cpu as usize];
            if !cm.online {
                continue;
            }
            let ma = cm.managed_allocated;
            let better = match best {
                None => true,
                Some((bcpu, bma)) => ma < bma || (ma == bma && cpu > bcpu),
            };
            if better {
                best = Some((cpu, ma));
            }
        }
        let Some((cpu, _)) = best else {
            return Err(Error::NoSpace(
                "no online CPU in the managed mask".to_string(),
            ));
        };
        let end = self.alloc_end;
        let cm = &mut self.maps[cpu as usize];
        let Some(bit) = cm.managed_map.first_andnot_below(&cm.alloc_map, end) else {
            return Err(Error::NoSpace(format!(
                "no unallocated managed reservation on cpu {cpu}"
            )));
        };
        cm.alloc_map.set(bit);
        cm.allocated = cm.allocated.wrapping_add(1);
        cm.managed_allocated = cm.managed_allocated.wrapping_add(1);
        self.total_allocated = self.total_allocated.wrapping_add(1);
        Ok((cpu, bit))
    }

    /// `irq_matrix_assign` on local CPU `cpu`: sets `bit` in its `alloc_map`; `allocated += 1`,
    /// `total_allocated += 1`, `available -= 1`, `global_available -= 1` (even if offline, like
    /// the kernel; `system_map` and `managed_map` are not looked at). WARN sites (nothing changes):
    /// `assign_out_of_range`, `assign_already_allocated`.
    pub fn assign(&mut self, cpu: u32, bit: u32) -> Result<()> {
        let i = self.cpu_index(cpu)?;
        self.check_in_range(bit, "assign_out_of_range")?;
        let cm = &mut self.maps[i];
        if cm.alloc_map.contains(bit) {
            return Err(Error::invalid_op(
                "assign_already_allocated",
                format!("bit {bit} already allocated on cpu {cpu}"),
            ));
        }
        let was = self.best.level(cm);
        cm.alloc_map.set(bit);
        cm.allocated = cm.allocated.wrapping_add(1);
        cm.available = cm.available.wrapping_sub(1);
        self.total_allocated = self.total_allocated.wrapping_add(1);
        self.global_available = self.global_available.wrapping_sub(1);
        self.best.update(i, was, &self.maps[i]);
        Ok(())
    }

    /// `irq_matrix_reserve`: `global_reserved += 1`. If `global_reserved == global_available`
    /// before the increment, the kernel pr_warns "Interrupt reservation exceeds available
    /// resources": the call still succeeds and `pr_warnings` goes up by one.
    pub fn reserve(&mut self) {
        if self.global_reserved == self.global_available {
            self.pr_warnings += 1;
        }
        self.global_reserved = self.global_reserved.wrapping_add(1);
    }

    /// `irq_matrix_remove_reserved`: `global_reserved -= 1` (wrapping, unchecked like the kernel).
    pub fn remove_reserved(&mut self) {
        self.global_reserved = self.global_reserved.wrapping_sub(1);
    }

    /// `irq_matrix_alloc`: picks the online CPU of `cpus` with the strictly largest `available`
    /// (> 0; ties: lowest CPU), sets its first free bit in `[alloc_start, alloc_end)` outside its
    /// `alloc_map`, `managed_map` and `system_map`; `allocated += 1`, `available -= 1`,
    /// `total_allocated += 1`, `global_available -= 1`, and with `reserved` `global_reserved -= 1`.
    /// Returns `(cpu, bit)`. Empty mask: `InvalidArgument`; no candidate CPU, or no free bit on the
    /// chosen one (no retry elsewhere): `NoSpace`, nothing changes.
    pub fn alloc(&mut self, cpus: &[u32], reserved: bool) -> Result<(u32, u32)> {
        // The mask written 0, 1, …, ncpus - 1 is every possible CPU (and passes check_mask): the
        // best-CPU buckets give the scan's answer. Other spellings of the full set (unordered, with
        // duplicates) take the scan, which gives the same. The check is one vectorized pass over
        // the mask: far cheaper than visiting every CPU's map.
        if cpus.len() == self.maps.len() && is_identity(cpus) {
            return self.alloc_any(reserved);
        }
        self.check_mask(cpus)?;
        if cpus.is_empty() {
            return Err(Error::InvalidArgument("empty CPU mask".to_string()));
        }
        // matrix_find_best_cpu: `available <= maxavl` skips with maxavl starting at 0, so the first
        // (lowest) CPU with the largest non-zero `available` wins.
        let mut best: Option<(u32, u32)> = None;
        for &cpu in cpus {
            let cm = &self.maps[cpu as usize];
            if !cm.online || cm.available == 0 {
                continue;
            }
            let avl = cm.available;
            let better = match best {
                None => true,
                Some((bcpu, bavl)) => avl > bavl || (avl == bavl && cpu < bcpu),
            };
            if better {
                best = Some((cpu, avl));
            }
        }
        self.alloc_on(best.map(|(cpu, _)| cpu), reserved)
    }

    /// `alloc(every possible CPU, reserved)`: the same `(cpu, bit)`, counter changes and `NoSpace`.
    #[inline(always)]
    pub fn alloc_any(&mut self, reserved: bool) -> Result<(u32, u32)> {
        // The best-CPU buckets hold the scan's pick (a bucket move per update); the CPU they
        // pick sits in the top bucket, so its move down needs no look at where it was.
        if let Some(pick) = self.best.top_pick() {
            let bit = self.take_bit(pick.cpu, reserved)?;
            self.best.took_from_top(pick);
            return Ok((pick.cpu, bit));
        }
        self.alloc_on(self.best.best(&self.maps), reserved)
    }

    /// The part of `irq_matrix_alloc` after `matrix_find_best_cpu` chose `best`.
    #[inline(always)]
    fn alloc_on(&mut self, best: Option<u32>, reserved: bool) -> Result<(u32, u32)> {
        let Some(cpu) = best else {
            return Err(Error::NoSpace(
                "no online CPU with available vectors in the mask".to_string(),
            ));
        };
        let bit = self.take_bit(cpu, reserved)?;
        let cm = &self.maps[cpu as usize];
        self.best.lowered(cpu as usize, cm.online, cm.available);
        Ok((cpu, bit))
    }

    /// `matrix_alloc_area` and the counters of `irq_matrix_alloc` on the chosen `cpu` (below
    /// `ncpus`): its first free bit joins `alloc_map`; `allocated += 1`, `available -= 1`,
    /// `total_allocated += 1`, `global_available -= 1`, with `reserved` `global_reserved -= 1`.
    /// The best-CPU buckets are the caller's to update. No free bit: `NoSpace`, nothing
    /// changes.
    #[inline(always)]
    fn take_bit(&mut self, cpu: u32, reserved: bool) -> Result<u32> {
        let i = cpu as usize;
        let Some(bit) = self.find_free_bit(i) else {
            return Err(Error::NoSpace(format!("no free vector on cpu {cpu}")));
        };
        let cm = &mut self.maps[i];
        cm.alloc_map.set(bit);
        cm.allocated = cm.allocated.wrapping_add(1);
        cm.available = cm.available.wrapping_sub(1);
        self.total_allocated = self.total_allocated.wrapping_add(1);
        self.global_available = self.global_available.wrapping_sub(1);
        if reserved {
            self.global_reserved = self.global_reserved.wrapping_sub(1);
        }
        Ok(bit)
    }

    /// The CPU `matrix_find_best_cpu` picks for the full mask, read from the buckets.
    #[cfg(test)]
    fn best_any_cpu(&self) -> Option<u32> {
        self.best.best(&self.maps)
    }

    /// `irq_matrix_free`: clears `bit` from `cpu`'s `alloc_map`; `allocated -= 1`; with `managed`
    /// `managed_allocated -= 1` (taken on trust, `managed_map` untouched); `total_allocated -= 1`
    /// only if the CPU is online; without `managed` `available += 1` and, if online,
    /// `global_available += 1`. WARN sites (nothing changes): `free_out_of_range`,
    /// `free_not_allocated`.
    #[inline(always)]
    pub fn free(&mut self, cpu: u32, bit: u32, managed: bool) -> Result<()> {
        // One look-up of the CPU's map and of the bit's word: the checks come in the same
        // order as before (CPU, range, allocated), each error built out of line.
        let (start, size) = (self.alloc_start, self.alloc_size);
        let Some(cm) = self.maps.get_mut(cpu as usize) else {
            return Err(cpu_out_of_range(cpu, self.maps.len()));
        };
        // `start <= bit < start + size` in one comparison (`alloc_size = alloc_end -
        // alloc_start`).
        if bit.wrapping_sub(start) >= size {
            return Err(bit_out_of_range(
                bit,
                "free_out_of_range",
                start,
                start + size,
            ));
        }
        // In range, so below 256: the word index needs no check.
        let word = &mut cm.alloc_map.0[(bit / 64) as usize % WORDS];
        let mask = 1u64 << (bit % 64);
        if *word & mask == 0 {
            return Err(bit_not_allocated(bit, cpu));
        }
        // Set, so a flip clears it.
        *word ^= mask;
        cm.allocated = cm.allocated.wrapping_sub(1);
        if managed {
            cm.managed_allocated = cm.managed_allocated.wrapping_sub(1);
        } else {
            cm.available = cm.available.wrapping_add(1);
        }
        if cm.online {
            self.total_allocated = self.total_allocated.wrapping_sub(1);
            if !managed {
                self.global_available = self.global_available.wrapping_add(1);
                // An offline CPU is in no bucket before and after.
                self.best.raised(cpu as usize, cm.available);
            }
        }
        Ok(())
    }

    /// `irq_matrix_available`: `global_available`, or with `cpudown_cpu = Some(c)` (the local CPU
    /// about to go down) `global_available - available(c)`, wrapping. Changes nothing.
    pub fn available(&self, cpudown_cpu: Option<u32>) -> Result<u32> {
        match cpudown_cpu {
            None => Ok(self.global_available),
            Some(cpu) => {
                let i = self.cpu_index(cpu)?;
                Ok(self.global_available.wrapping_sub(self.maps[i].available))
            }
        }
    }

    /// `irq_matrix_reserved`: `global_reserved`. Changes nothing.
    pub const fn reserved(&self) -> u32 {
        self.global_reserved
    }

    /// `irq_matrix_allocated` on local CPU `cpu` (mainline ≥ v6.7): `allocated -
    /// managed_allocated`, wrapping. Changes nothing.
    pub fn allocated(&self, cpu: u32) -> Result<u32> {
        let i = self.cpu_index(cpu)?;
        let cm = &self.maps[i];
        Ok(cm.allocated.wrapping_sub(cm.managed_allocated))
    }

    /// `irq_matrix_debug_show(sf, m, ind)`: the debugfs text, every line ending in `\n`. The
    /// indentation is `max(|ind|, 1)` spaces (`%*s` of `" "`), clamped like vsprintf to
    /// [`FIELD_WIDTH_MAX`]. Rows are the online CPUs, ascending. Changes nothing.
    ///
    /// `InvalidArgument` when the text would pass [`MAX_DEBUG_SHOW_BYTES`] (a wide indentation
    /// on many CPUs): the kernel's seq_file gives up too (`-ENOMEM` past `MAX_RW_COUNT`), and
    /// the model never sizes an allocation it has not bounded.
    pub fn debug_show(&self, ind: i32) -> Result<String> {
        let width = ind.unsigned_abs().clamp(1, FIELD_WIDTH_MAX) as usize;
        // Sized by the rows it prints: the `online_maps` counter wraps like the kernel's when a
        // caller offlines an offline CPU, and is no allocation size.
        let rows = self.maps.iter().filter(|cm| cm.online).count();
        // A row: the indentation, five columns, and a range list of at most 128 runs of
        // three-digit vectors ("0,2,4,…,254": 4 bytes each).
        let bound = (rows + 1) * (width + 48 + 4 * 128) + 256;
        if bound > MAX_DEBUG_SHOW_BYTES {
            return Err(Error::InvalidArgument(format!(
                "debug_show: {rows} rows indented by {width} would pass {MAX_DEBUG_SHOW_BYTES} bytes"
            )));
        }
        let nsys = self.system_map.count_below(self.matrix_bits);
        let mut s = String::with_capacity(256 + (48 + width) * (rows + 1));
        let _ = writeln!(s, "Online bitmaps:   {:>6}", self.online_maps);
        let _ = writeln!(s, "Global available: {:>6}", self.global_available);
        let _ = writeln!(s, "Global reserved:  {:>6}", self.global_reserved);
        let _ = writeln!(s, "Total allocated:  {:>6}", self.total_allocated);
        let _ = write!(s, "System: {nsys}: ");
        self.system_map.write_range_list(self.matrix_bits, &mut s);
        s.push('\n');
        let pad = " ".repeat(width);
        let _ = writeln!(s, "{pad}| CPU | avl | man | mac | act | vectors");
        for (cpu, cm) in self.maps.iter().enumerate().filter(|(_, cm)| cm.online) {
            let _ = write!(
                s,
                "{pad} {cpu:>4}  {:>4}  {:>4}  {:>4} {:>4}  ",
                cm.available, cm.managed, cm.managed_allocated, cm.allocated
            );
            cm.alloc_map.write_range_list(self.matrix_bits, &mut s);
            s.push('\n');
        }
        Ok(s)
    }

    /// Number of bits of the matrix (`matrix_bits`).
    pub const fn matrix_bits(&self) -> u32 {
        self.matrix_bits
    }
    /// First allocatable bit (`alloc_start`).
    pub const fn alloc_start(&self) -> u32 {
        self.alloc_start
    }
    /// First bit past the allocation range (`alloc_end`).
    pub const fn alloc_end(&self) -> u32 {
        self.alloc_end
    }
    /// `alloc_end - alloc_start`.
    pub const fn alloc_size(&self) -> u32 {
        self.alloc_size
    }
    /// Sum of `available` over online CPUs as the kernel keeps it (`global_available`).
    pub const fn global_available(&self) -> u32 {
        self.global_available
    }
    /// Outstanding global reservations (`global_reserved`).
    pub const fn global_reserved(&self) -> u32 {
        self.global_reserved
    }
    /// Allocated vectors as the kernel counts them (`total_allocated`).
    pub const fn total_allocated(&self) -> u32 {
        self.total_allocated
    }
    /// Online CPU maps (`online_maps`).
    pub const fn online_maps(&self) -> u32 {
        self.online_maps
    }
    /// System bits inside the allocation range (`systembits_inalloc`).
    pub const fn systembits_inalloc(&self) -> u32 {
        self.systembits_inalloc
    }
    /// System vectors (`system_map`).
    pub const fn system_map(&self) -> &VectorBitmap {
        &self.system_map
    }
    /// Number of possible CPUs.
    pub fn ncpus(&self) -> u32 {
        self.maps.len() as u32
    }
    /// Per-CPU state of `cpu`, or `InvalidArgument` if `cpu >= ncpus`.
    pub fn cpu(&self, cpu: u32) -> Result<&CpuMap> {
        let i = self.cpu_index(cpu)?;
        Ok(&self.maps[i])
    }
    /// All per-CPU states, indexed by CPU number.
    pub fn cpus(&self) -> &[CpuMap] {
        &self.maps
    }
    /// Whether `cpu` is online (false for an out-of-range CPU).
    pub fn is_online(&self, cpu: u32) -> bool {
        self.maps.get(cpu as usize).is_some_and(|cm| cm.online)
    }
    /// Number of `pr_warn` messages printed so far (only the over-reservation warning exists).
    pub const fn pr_warnings(&self) -> u64 {
        self.pr_warnings
    }
}

/// x86 `FIRST_EXTERNAL_VECTOR` (arch/x86/include/asm/irq_vectors.h): first device vector.
pub const X86_FIRST_EXTERNAL_VECTOR: u32 = 0x20;
/// x86 `ISA_IRQ_VECTOR(0)` = `IRQ0_VECTOR` = `FIRST_EXTERNAL_VECTOR + 0x10`.
pub const X86_ISA_IRQ0_VECTOR: u32 = 0x30;
/// x86 `PIC_CASCADE_IR`: legacy IRQ 2, the 8259 cascade.
pub const X86_PIC_CASCADE_IR: u32 = 2;
/// x86 `IA32_SYSCALL_VECTOR`: the int 0x80 gate.
pub const X86_IA32_SYSCALL_VECTOR: u32 = 0x80;
/// x86 `LOCAL_TIMER_VECTOR`: `FIRST_SYSTEM_VECTOR` without `CONFIG_X86_POSTED_MSI`.
pub const X86_LOCAL_TIMER_VECTOR: u32 = 0xec;
/// x86 `POSTED_MSI_NOTIFICATION_VECTOR`: `FIRST_SYSTEM_VECTOR` with `CONFIG_X86_POSTED_MSI` (6.10+).
pub const X86_POSTED_MSI_NOTIFICATION_VECTOR: u32 = 0xeb;
/// x86 `MANAGED_IRQ_SHUTDOWN_VECTOR`: where reserved / shut down interrupts point (not a matrix bit).
pub const X86_MANAGED_IRQ_SHUTDOWN_VECTOR: u32 = 0xef;
/// x86 `NR_LEGACY_IRQS`.
pub const X86_NR_LEGACY_IRQS: u32 = 16;

/// Exception vectors a distro x86_64 kernel marks in `system_vectors` (arch/x86/kernel/idt.c:
/// `early_idts`, `def_idts`, `early_pf_idts`, `ist_idts` are installed with `sys = true`, and
/// `lapic_assign_system_vectors` walks `system_vectors` from bit 0): 0–19 (#DE … #XF, including
/// #MC with CONFIG_X86_MCE and the reserved 9 and 15 entries), 20 #VE (CONFIG_INTEL_TDX_GUEST),
/// 21 #CP (CONFIG_X86_CET), 29 #VC (CONFIG_AMD_MEM_ENCRYPT). They lie below the allocation range
/// and only show in `debug_show`'s `System:` line.
const X86_EXCEPTION_SYSTEM_VECTORS: [u32; 23] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 29,
];

/// APIC system vectors at or above `LOCAL_TIMER_VECTOR` installed by `apic_idts` (idt.c) on a
/// bare-metal x86_64 KVM host (irq_vectors.h values, v6.10+): 0xec LOCAL_TIMER, 0xf0–0xf2
/// POSTED_INTR_NESTED / _WAKEUP / POSTED_INTR (CONFIG_HAVE_KVM), 0xf4 DEFERRED_ERROR
/// (CONFIG_X86_MCE_AMD), 0xf6 IRQ_WORK, 0xf7 X86_PLATFORM_IPI, 0xf8 REBOOT, 0xf9 THRESHOLD
/// (CONFIG_X86_MCE_THRESHOLD), 0xfa THERMAL, 0xfb CALL_FUNCTION_SINGLE, 0xfc CALL_FUNCTION,
/// 0xfd RESCHEDULE, 0xfe ERROR_APIC, 0xff SPURIOUS. Left out on purpose: 0xed/0xee (Hyper-V
/// guest only), 0xef MANAGED_IRQ_SHUTDOWN (a spurious-entry gate, never set in
/// `system_vectors`), 0xf3 HYPERVISOR_CALLBACK (Xen / Hyper-V / ACRN guests only), 0xf5 (unused).
/// IRQ_MOVE_CLEANUP_VECTOR (0x20) is gone since v6.6 (replaced by a timer callback), so a recent
/// kernel has no system bit at 0x20.
const X86_APIC_SYSTEM_VECTORS: [u32; 15] = [
    0xec, 0xf0, 0xf1, 0xf2, 0xf4, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
];

/// A named x86 boot configuration of the vector matrix (what `arch_early_irq_init` and
/// `lapic_assign_system_vectors` in arch/x86/kernel/apic/vector.c set up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct X86Preset {
    /// Human-readable name.
    pub name: String,
    /// `FIRST_SYSTEM_VECTOR`: end of the allocation range `[0x20, first_system_vector)`.
    pub first_system_vector: u32,
    /// Every bit of the kernel's `system_vectors` bitmap, assigned into the matrix in ascending
    /// order before any CPU is online (`lapic_assign_system_vectors`).
    pub system_vectors: Vec<u32>,
    /// `nr_legacy_irqs()`: 16 with a legacy PIC, 0 without one (e.g. a microVM).
    pub nr_legacy_irqs: u32,
}

impl X86Preset {
    /// Mainline x86_64 (v6.10+) KVM host without CONFIG_X86_POSTED_MSI, with IA32 emulation and a
    /// legacy PIC: allocation range `[0x20, 0xec)` (204 vectors; 0x80 and 0x32 in it are system
    /// bits, 0x30–0x3f minus 0x32 are assigned to CPU 0 at boot).
    pub fn mainline() -> Self {
        Self::build(
            "x86_64 mainline",
            X86_LOCAL_TIMER_VECTOR,
            true,
            X86_NR_LEGACY_IRQS,
        )
    }

    /// As [`mainline`](Self::mainline) with CONFIG_X86_POSTED_MSI (6.10+):
    /// `FIRST_SYSTEM_VECTOR` = `POSTED_MSI_NOTIFICATION_VECTOR` 0xeb, itself a system vector.
    pub fn posted_msi() -> Self {
        Self::build(
            "x86_64 mainline, CONFIG_X86_POSTED_MSI",
            X86_POSTED_MSI_NOTIFICATION_VECTOR,
            true,
            X86_NR_LEGACY_IRQS,
        )
    }

    /// A custom preset: `ia32_emulation` adds the int 0x80 gate (idt.c installs
    /// `IA32_SYSCALL_VECTOR` with `sys = true` only when IA32 emulation is enabled, 6.7+:
    /// `ia32_enabled()`), `nr_legacy_irqs` is 0 or 16.
    pub fn build(
        name: &str,
        first_system_vector: u32,
        ia32_emulation: bool,
        nr_legacy_irqs: u32,
    ) -> Self {
        let mut system_vectors: Vec<u32> = X86_EXCEPTION_SYSTEM_VECTORS.to_vec();
        if ia32_emulation {
            system_vectors.push(X86_IA32_SYSCALL_VECTOR);
        }
        if first_system_vector == X86_POSTED_MSI_NOTIFICATION_VECTOR {
            system_vectors.push(X86_POSTED_MSI_NOTIFICATION_VECTOR);
        }
        system_vectors.extend_from_slice(&X86_APIC_SYSTEM_VECTORS);
        system_vectors.sort_unstable();
        system_vectors.dedup();
        Self {
            name: name.to_string(),
            first_system_vector,
            system_vectors,
            nr_legacy_irqs,
        }
    }

    /// The boot sequence on a fresh matrix, as the kernel runs it:
    /// 1. `lapic_assign_system_vectors`: `assign_system(bit, false)` for every `system_vectors`
    ///    bit (ascending), then, if `nr_legacy_irqs > 1`, `lapic_assign_legacy_vector(PIC_CASCADE_IR)`
    ///    = `assign_system(0x32, false)`;
    /// 2. `irq_matrix_online` for the boot CPU 0;
    /// 3. `irq_matrix_assign(ISA_IRQ_VECTOR(i))` on CPU 0 for every legacy IRQ but the cascade
    ///    (0x30–0x3f minus 0x32: they stay until the IOAPIC takes the IRQs over);
    /// 4. `lapic_online` → `irq_matrix_online` for CPUs 1..ncpus (secondary bring-up).
    pub fn boot(&self, m: &mut IrqMatrix) -> Result<()> {
        for &v in &self.system_vectors {
            m.assign_system(0, v, false)?;
        }
        if self.nr_legacy_irqs > 1 {
            m.assign_system(0, X86_ISA_IRQ0_VECTOR + X86_PIC_CASCADE_IR, false)?;
        }
        m.online(0)?;
        for irq in 0..self.nr_legacy_irqs.min(X86_NR_LEGACY_IRQS) {
            if irq != X86_PIC_CASCADE_IR {
                m.assign(0, X86_ISA_IRQ0_VECTOR + irq)?;
            }
        }
        // Secondary bring-up, then one pass over the best-CPU buckets instead of one
        // update per CPU (rebuilt on an error too: the CPUs before it are online).
        let r = (1..m.ncpus()).try_for_each(|cpu| m.online_untracked(cpu).map(drop));
        m.best.rebuild(&m.maps);
        r
    }
}

#[cfg(test)]
#[path = "matrix_tests.rs"]
mod tests;
