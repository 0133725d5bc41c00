//! The x86 vector domain (arch/x86/kernel/apic/vector.c) on top of [`IrqMatrix`], with the
//! parts of kernel/irq (msi.c early activation, chip.c startup/shutdown, manage.c affinity
//! setting, cpuhotplug.c) that decide when it allocates, activates, deactivates and migrates.
//!
//! Lifecycle of one interrupt, as the kernel runs it for PCI/MSI(-X) on x86:
//! - **alloc** (`x86_vector_alloc_irqs` → `assign_irq_vector_policy`, then msi.c's early
//!   activation): a managed irq reserves one managed bit on every CPU of its affinity
//!   (`reserve_managed`, online or not); any other irq takes a global reservation (`reserve`).
//!   With reservation mode **off** (the MSI domain cannot reserve: `irqd_clr_can_reserve`)
//!   msi.c activates the irq at once with `reserve = false`: a regular irq gets its vector now
//!   (fallback chain, `alloc(reserved = true)`) and keeps it until freed; a managed irq gets it
//!   from its reservations (`alloc_managed`), or is marked managed-shutdown when no CPU of its
//!   mask is online. A failure there fails the allocation (and undoes it). A legacy ISA irq
//!   taken over by the IOAPIC ([`VectorDomain::alloc_legacy_irq`], `vector_configure_legacy`)
//!   keeps its boot vector if already activated, else releases it and reserves.
//! - **activate** (`request_irq` → `irq_startup`): a reserved irq gets a vector through
//!   `assign_irq_vector_any_locked` (node ∩ affinity, affinity ∩ online, node, all online) with
//!   `alloc(reserved = true)`; a fixed-assigned one (cannot reserve, not managed) runs the same
//!   chain, which keeps a vector already on a CPU of the first mask that has it; a managed one
//!   gets `alloc_managed(affinity ∩ online)`, or stays managed-shutdown (request succeeds) while
//!   no CPU of its mask is online. Then `irq_setup_affinity`: the irq's own mask (managed, or
//!   set by the user) or else the default affinity (every CPU), ∩ online (all online when
//!   empty), narrowed to its node's CPUs when they intersect; a vector outside it moves in, and
//!   the mask becomes the irq's affinity (`irq_do_set_affinity` copies it).
//! - **set affinity** (`/proc/irq/N/smp_affinity` → `irq_set_affinity`): a regular irq not
//!   activated only records the mask; an activated one moves to `mask ∩ online` unless already
//!   there. The previous vector stays allocated ("move in progress") until
//!   [`VectorDomain::complete_move`], the cleanup after the first interrupt on the new vector
//!   (`vector_free_moved`); a second move meanwhile is `-EBUSY`.
//! - **deactivate** (`free_irq` → `irq_shutdown_and_deactivate`): a reservable irq frees its
//!   vector and takes a global reservation again; a managed one frees its vector (managed free);
//!   an irq that cannot reserve keeps its vector.
//! - **free** (`x86_vector_free_irqs`): frees any vector, then removes the global reservation or
//!   the managed reservations.
//! - **CPU offline** (`native_cpu_disable`: `lapic_can_unplug_cpu`, then `cpu_disable_common`:
//!   the CPU leaves the online mask, `fixup_irqs` → `irq_migrate_all_off_this_cpu` migrates
//!   every *started* irq whose vector is on it, in irq order, then `lapic_offline`): a pending
//!   move is completed first (`irq_force_complete_move`); a regular irq moves to
//!   `affinity ∩ online`, or, when that is empty, to all online CPUs, which become its affinity
//!   (affinity broken); a managed irq moves within `affinity ∩ online`, or shuts down (managed
//!   free) when that is empty. The old vector is freed at once (its CPU is offline).
//! - **CPU online** (`lapic_online`, then `irq_affinity_online_cpu`): the matrix map comes
//!   online, and every requested managed irq in managed shutdown whose mask contains the CPU
//!   starts again (`alloc_managed`).
//!
//! Boot ([`VectorDomain::boot`]): `lapic_assign_system_vectors` (every system vector, then the
//! PIC cascade), CPU 0 online, the legacy ISA vectors on CPU 0, then the other CPUs of the boot
//! online set (secondary bring-up); CPUs left out stay offline (never initialized) until
//! [`VectorDomain::cpu_online`].
//!
//! Tracing ([`VectorDomain::take_trace`]): with `trace` on, every matrix change the domain makes
//! is recorded as the `irq_matrix_*` tracepoint kernel/irq/matrix.c would emit, with the
//! counters it prints, so a run can be compared event by event with a real kernel's trace
//! (`docs/kernel_trace.md` replays a Linux 6.1 capture that way).
//!
//! Simplifications (each is documented where it happens):
//! - Only [`VectorDomain::set_affinity`] keeps a moved-from vector until
//!   [`VectorDomain::complete_move`]; the move `irq_setup_affinity` may make at activation frees
//!   the old vector at once (the kernel waits for the first interrupt there too). A pending
//!   move whose old vector sits on a CPU going offline is completed at the unplug.
//! - No `info->mask` fixed allocations, no shared irqs; one irq per allocation call.
//! - The `lapic_can_unplug_cpu` and "cannot offline the last CPU" checks are the only reasons a
//!   CPU offline is refused; the model has no stop-machine, no pending interrupts, no pending
//!   (deferred) affinity masks.
//! - `pr_warn` messages are counted, not printed.

// The steps of a resize are `#[inline(always)]` into their loops: callgrind counts 5 % fewer
// instructions per resize than with `#[inline]` (benches/README.md, issue 14).
#![allow(clippy::inline_always)]

use std::sync::Arc;

use crate::affinity::Affinity;

mod irq_info;
mod irq_slab;

pub use irq_info::IrqInfo;
use irq_info::{flag, CpuVector, Flags, NO_NODE};
use irq_slab::IrqSlab;

use crate::error::{Error, Result};
use crate::matrix::{
    IrqMatrix, X86Preset, IRQ_MATRIX_BITS, X86_FIRST_EXTERNAL_VECTOR, X86_ISA_IRQ0_VECTOR,
    X86_NR_LEGACY_IRQS, X86_PIC_CASCADE_IR,
};

/// x86 `MAX_NUMNODES` with the largest `CONFIG_NODES_SHIFT` (10): NUMA node ids are below it.
pub const MAX_NUMNODES: u32 = 1 << 10;

/// Irq numbers [`VectorDomain::alloc_irq_at`] accepts are below this (above the largest x86
/// `IRQ_BITMAP_BITS`, `NR_IRQS + 8196` with `CONFIG_MAXSMP`).
pub const MAX_IRQ_NUMBER: u32 = 1 << 20;

/// Which `irq_matrix_*` tracepoint of kernel/irq/matrix.c a [`MatrixEvent`] stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MatrixOp {
    /// `irq_matrix_assign_system`.
    AssignSystem,
    /// `irq_matrix_online`.
    Online,
    /// `irq_matrix_offline`.
    Offline,
    /// `irq_matrix_assign`.
    Assign,
    /// `irq_matrix_reserve`.
    Reserve,
    /// `irq_matrix_remove_reserved`.
    RemoveReserved,
    /// `irq_matrix_reserve_managed` (one per CPU of the mask).
    ReserveManaged,
    /// `irq_matrix_remove_managed` (one per CPU of the mask).
    RemoveManaged,
    /// `irq_matrix_alloc_managed`.
    AllocManaged,
    /// `irq_matrix_alloc`.
    Alloc,
    /// `irq_matrix_free`.
    Free,
}

impl MatrixOp {
    /// The tracepoint's name (`irq_matrix_alloc`, ...).
    pub const fn tracepoint(self) -> &'static str {
        match self {
            MatrixOp::AssignSystem => "irq_matrix_assign_system",
            MatrixOp::Online => "irq_matrix_online",
            MatrixOp::Offline => "irq_matrix_offline",
            MatrixOp::Assign => "irq_matrix_assign",
            MatrixOp::Reserve => "irq_matrix_reserve",
            MatrixOp::RemoveReserved => "irq_matrix_remove_reserved",
            MatrixOp::ReserveManaged => "irq_matrix_reserve_managed",
            MatrixOp::RemoveManaged => "irq_matrix_remove_managed",
            MatrixOp::AllocManaged => "irq_matrix_alloc_managed",
            MatrixOp::Alloc => "irq_matrix_alloc",
            MatrixOp::Free => "irq_matrix_free",
        }
    }

    /// Whether the tracepoint prints a CPU's `bit`, `cpu`, `online`, `avl`, `alloc` and
    /// `managed` (all but the global ones: online, offline, reserve, remove_reserved and
    /// assign_system, which prints only `bit`).
    pub const fn per_cpu(self) -> bool {
        !matches!(
            self,
            MatrixOp::AssignSystem
                | MatrixOp::Online
                | MatrixOp::Offline
                | MatrixOp::Reserve
                | MatrixOp::RemoveReserved
        )
    }
}

/// One matrix change as the kernel's `irq_matrix_*` tracepoint reports it: the counters are
/// read after the change, as the tracepoint does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatrixEvent {
    /// The tracepoint.
    pub op: MatrixOp,
    /// The irq the domain was serving (`None` for boot and for the hotplug steps themselves).
    pub irq: Option<u32>,
    /// The CPU (the CPU coming online or going offline for those two).
    pub cpu: Option<u32>,
    /// The vector (`bit`), for every op that has one.
    pub bit: Option<u32>,
    /// The call's flag: `managed` for `free`, `reserved` for `alloc`, else false.
    pub flag: bool,
    /// The CPU's map is online (`cm->online`).
    pub online: bool,
    /// The CPU's `available`.
    pub available: u32,
    /// The CPU's `allocated`.
    pub allocated: u32,
    /// The CPU's `managed`.
    pub managed: u32,
    /// `online_maps`.
    pub online_maps: u32,
    /// `global_available`.
    pub global_available: u32,
    /// `global_reserved`.
    pub global_reserved: u32,
    /// `total_allocated`.
    pub total_allocated: u32,
}

/// How [`VectorDomain::boot`] brings the host up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootOptions {
    /// CPUs online once boot is done (must include CPU 0); `None` = every possible CPU.
    pub online: Option<Vec<u32>>,
    /// Record every matrix change (see [`VectorDomain::take_trace`]), boot included.
    pub trace: bool,
}
/// Lifecycle state of one interrupt, as [`VectorDomain::irq`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IrqState {
    /// Regular irq holding only a global reservation (reservation mode, not requested).
    Reserved,
    /// Holds a CPU vector but is not requested (reservation mode off: vector from allocation on).
    Assigned,
    /// Requested and holding a CPU vector.
    Active,
    /// Managed irq with its per-CPU reservations but no vector, not requested.
    ManagedReserved,
    /// Managed irq shut down because no CPU of its mask is online (requested then, or shut down
    /// by CPU unplug); a requested one starts when a CPU of its mask comes online.
    ManagedShutdown,
}

impl IrqState {
    /// Snake-case name (`reserved`, `assigned`, `active`, `managed_reserved`, `managed_shutdown`).
    pub const fn name(self) -> &'static str {
        match self {
            IrqState::Reserved => "reserved",
            IrqState::Assigned => "assigned",
            IrqState::Active => "active",
            IrqState::ManagedReserved => "managed_reserved",
            IrqState::ManagedShutdown => "managed_shutdown",
        }
    }
}

/// The x86 vector domain: a matrix, the CPU online mask, a NUMA map and the interrupts.
#[derive(Clone, Debug)]
pub struct VectorDomain {
    matrix: IrqMatrix,
    reservation_mode: bool,
    cpu_online: Vec<bool>,
    node_of_cpu: Vec<u32>,
    nr_nodes: u32,
    irqs: IrqSlab,
    /// The online mask as a CPU list, kept in step with `cpu_online`.
    online: Arc<[u32]>,
    pr_warnings: u64,
    /// `nr_legacy_irqs()` of the boot preset.
    nr_legacy: u32,
    /// Bit `i`: the ISA vector of legacy irq `i` is still assigned from boot, not yet taken over
    /// by [`VectorDomain::alloc_legacy_irq`].
    legacy_held: u32,
    /// The matrix event log (empty when not tracing).
    trace: Vec<MatrixEvent>,
    /// Whether the matrix events are recorded: a flag of its own, so that the test each
    /// matrix change makes is one byte (the log's `Option` niche took a constant to build).
    tracing: bool,
    /// `online.len() == matrix.online_maps()`: the matrix's online maps are the domain's
    /// online CPUs (see [`Self::is_matrix_online`]). Kept by [`Self::refresh_online_state`]
    /// wherever either changes.
    matrix_online: bool,
    /// The fast paths of [`activate`](Self::activate) and [`deactivate`](Self::deactivate)
    /// apply: every possible CPU is online and they are the matrix's online maps
    /// (`matrix_online`), and no event is recorded. One flag for each operation to read
    /// (kept with `matrix_online`, and by [`Self::set_tracing`]).
    fast: bool,
}

/// The error for an irq number that is not allocated (`InvalidArgument`).
#[cold]
fn unknown_irq(irq: u32) -> Error {
    Error::InvalidArgument(format!("irq {irq} is not allocated"))
}

/// No irq number left (`NoSpace`).
#[cold]
fn irq_numbers_exhausted() -> Error {
    Error::NoSpace("irq numbers exhausted".to_string())
}

/// `request_irq` of an irq already requested (`InvalidOperation`, `-EBUSY`).
#[cold]
fn already_requested(irq: u32) -> Error {
    Error::invalid_op(
        "irq_already_requested",
        format!("irq {irq} is already requested (-EBUSY)"),
    )
}

/// `free_irq` of an irq not requested (`InvalidOperation`, the kernel's WARN).
#[cold]
fn not_requested(irq: u32) -> Error {
    Error::invalid_op(
        "irq_not_requested",
        format!("trying to free already-free irq {irq}"),
    )
}

/// Freeing an irq that is still requested (`InvalidOperation`, the kernel's BUG).
#[cold]
fn still_requested(irq: u32) -> Error {
    Error::invalid_op(
        "free_requested_irq",
        format!("irq {irq} is still requested"),
    )
}

fn sorted_set(cpus: &[u32]) -> Vec<u32> {
    let mut v = cpus.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

impl VectorDomain {
    /// A booted x86 host: `IrqMatrix::x86(ncpus, preset)`, every CPU online. `nodes` maps each
    /// CPU to its NUMA node (default: everything on node 0; one entry per CPU, each below
    /// [`MAX_NUMNODES`], else `InvalidArgument`); `reservation_mode` says whether the MSI domain
    /// can reserve (see the module doc).
    pub fn new(
        ncpus: u32,
        preset: &X86Preset,
        reservation_mode: bool,
        nodes: Option<Vec<u32>>,
    ) -> Result<Self> {
        Self::boot(
            ncpus,
            preset,
            reservation_mode,
            nodes,
            &BootOptions::default(),
        )
    }

    /// As [`new`](Self::new), with the CPUs online after boot chosen (`options.online`, which
    /// must include CPU 0; the others stay offline and uninitialized, as CPUs that were never
    /// brought up) and the matrix event log on from the first boot step (`options.trace`).
    /// The boot runs as `X86Preset::boot` describes, with only the online set brought up.
    /// Errors (`InvalidArgument`): a bad CPU count, node map, online set, `first_system_vector`
    /// outside `0x20..=256`, a system vector ≥ 256 or more than 16 legacy irqs.
    pub fn boot(
        ncpus: u32,
        preset: &X86Preset,
        reservation_mode: bool,
        nodes: Option<Vec<u32>>,
        options: &BootOptions,
    ) -> Result<Self> {
        if let Some(&bad) = preset
            .system_vectors
            .iter()
            .find(|&&v| v >= IRQ_MATRIX_BITS)
        {
            return Err(Error::InvalidArgument(format!(
                "system vector {bad} outside the {IRQ_MATRIX_BITS}-bit matrix"
            )));
        }
        if preset.nr_legacy_irqs > X86_NR_LEGACY_IRQS {
            return Err(Error::InvalidArgument(format!(
                "{} legacy irqs (at most {X86_NR_LEGACY_IRQS})",
                preset.nr_legacy_irqs
            )));
        }
        let online = match &options.online {
            None => None,
            Some(cpus) => {
                let cpus = sorted_set(cpus);
                if cpus.first() != Some(&0) {
                    return Err(Error::InvalidArgument(
                        "the boot online set must include CPU 0".to_string(),
                    ));
                }
                if let Some(&bad) = cpus.iter().find(|&&c| c >= ncpus) {
                    return Err(Error::InvalidArgument(format!(
                        "cpu {bad} out of range (ncpus {ncpus})"
                    )));
                }
                Some(cpus)
            }
        };
        let step_by_step = online.is_some() || options.trace;
        let matrix = if step_by_step {
            IrqMatrix::new(
                IRQ_MATRIX_BITS,
                X86_FIRST_EXTERNAL_VECTOR,
                preset.first_system_vector,
                ncpus,
            )?
        } else {
            IrqMatrix::x86(ncpus, preset)?
        };
        let node_of_cpu = match nodes {
            None => vec![0; ncpus as usize],
            Some(n) => {
                if n.len() != ncpus as usize {
                    return Err(Error::InvalidArgument(format!(
                        "nodes has {} entries for {ncpus} CPUs",
                        n.len()
                    )));
                }
                if let Some(&bad) = n.iter().find(|&&node| node >= MAX_NUMNODES) {
                    return Err(Error::InvalidArgument(format!(
                        "NUMA node {bad} out of range (MAX_NUMNODES {MAX_NUMNODES})"
                    )));
                }
                n
            }
        };
        // Every node id is below MAX_NUMNODES, so this cannot overflow.
        let nr_nodes = node_of_cpu.iter().copied().max().unwrap_or(0) + 1;
        let nr_legacy = preset.nr_legacy_irqs;
        let legacy_held = (0..nr_legacy)
            .filter(|&i| i != X86_PIC_CASCADE_IR)
            .fold(0u32, |m, i| m | (1 << i));
        let mut d = Self {
            matrix,
            reservation_mode,
            cpu_online: vec![!step_by_step; ncpus as usize],
            node_of_cpu,
            nr_nodes,
            irqs: IrqSlab::default(),
            online: (0..ncpus).collect(),
            pr_warnings: 0,
            nr_legacy,
            legacy_held,
            trace: Vec::new(),
            tracing: options.trace,
            matrix_online: false,
            fast: false,
        };
        d.refresh_online_state();
        if step_by_step {
            d.boot_steps(preset, online.as_deref())?;
        }
        Ok(d)
    }

    /// `X86Preset::boot` one recorded step at a time, bringing up only `online` (all if `None`).
    fn boot_steps(&mut self, preset: &X86Preset, online: Option<&[u32]>) -> Result<()> {
        let mut system = preset.system_vectors.clone();
        system.sort_unstable();
        system.dedup();
        if preset.nr_legacy_irqs > 1 {
            // lapic_assign_legacy_vector(PIC_CASCADE_IR, replace = false)
            system.push(X86_ISA_IRQ0_VECTOR + X86_PIC_CASCADE_IR);
        }
        for v in system {
            self.matrix.assign_system(0, v, false)?;
            self.record(MatrixOp::AssignSystem, None, None, Some(v), false);
        }
        self.mx_online(0)?;
        for irq in 0..self.nr_legacy {
            if irq != X86_PIC_CASCADE_IR {
                let v = X86_ISA_IRQ0_VECTOR + irq;
                self.matrix.assign(0, v)?;
                self.record(MatrixOp::Assign, None, Some(0), Some(v), false);
            }
        }
        let rest: Vec<u32> = match online {
            Some(cpus) => cpus.iter().copied().filter(|&c| c != 0).collect(),
            None => (1..self.ncpus()).collect(),
        };
        for cpu in std::iter::once(0).chain(rest) {
            if cpu != 0 {
                self.mx_online(cpu)?;
            }
            if let Some(o) = self.cpu_online.get_mut(cpu as usize) {
                *o = true;
            }
        }
        self.refresh_online();
        Ok(())
    }

    /// The underlying matrix (read only: every change goes through the domain).
    pub const fn matrix(&self) -> &IrqMatrix {
        &self.matrix
    }
    /// Whether the MSI domain uses reservation mode.
    pub const fn reservation_mode(&self) -> bool {
        self.reservation_mode
    }
    /// Number of possible CPUs.
    pub fn ncpus(&self) -> u32 {
        self.matrix.ncpus()
    }
    /// Number of NUMA nodes.
    pub const fn nr_nodes(&self) -> u32 {
        self.nr_nodes
    }
    /// Whether `cpu` is in the online mask.
    pub fn cpu_is_online(&self, cpu: u32) -> bool {
        self.cpu_online.get(cpu as usize).copied().unwrap_or(false)
    }
    /// The CPUs of the online mask, ascending.
    pub fn online_cpus(&self) -> Vec<u32> {
        self.online.to_vec()
    }
    /// Whether the matrix events are being recorded.
    pub const fn tracing(&self) -> bool {
        self.tracing
    }
    /// Turn the matrix event log on (keeping what it holds) or off (dropping it).
    pub fn set_tracing(&mut self, on: bool) {
        if !on {
            self.trace = Vec::new();
        }
        self.tracing = on;
        self.refresh_online_state();
    }
    /// The matrix events recorded since the last call, oldest first (empty when not tracing).
    pub fn take_trace(&mut self) -> Vec<MatrixEvent> {
        std::mem::take(&mut self.trace)
    }
    /// Legacy ISA irqs whose boot vector on CPU 0 is still assigned (not yet taken over by
    /// [`alloc_legacy_irq`](Self::alloc_legacy_irq)), ascending.
    pub fn legacy_vectors_held(&self) -> Vec<u32> {
        (0..self.nr_legacy)
            .filter(|&i| self.legacy_held & (1 << i) != 0)
            .collect()
    }

    /// Recompute the online CPU list after a hotplug change.
    fn refresh_online(&mut self) {
        self.online = (0..self.ncpus())
            .filter(|&c| self.cpu_is_online(c))
            .collect();
        self.refresh_online_state();
    }

    /// `matrix_online` and `fast` from the online list, the matrix and the tracing switch,
    /// after any of them changed (no accounting effect).
    fn refresh_online_state(&mut self) {
        self.matrix_online = self.online.len() == self.matrix.online_maps() as usize;
        self.fast =
            self.matrix_online && self.online.len() == self.ncpus() as usize && !self.tracing;
    }

    /// `mask` as the irq's stored affinity: the default when it is every CPU.
    fn canonical(&self, mask: Arc<[u32]>) -> Affinity {
        if mask.len() == self.ncpus() as usize {
            Affinity::all(self.ncpus())
        } else {
            Affinity::List(mask)
        }
    }

    // ------------------------------------------------------------------ matrix, recorded

    /// Append one event to the log when tracing (no accounting effect). Only the check is
    /// inlined: with tracing off a call costs one test, no event is built.
    #[inline]
    fn record(
        &mut self,
        op: MatrixOp,
        irq: Option<u32>,
        cpu: Option<u32>,
        bit: Option<u32>,
        flag: bool,
    ) {
        if self.tracing {
            self.push_event(op, irq, cpu, bit, flag);
        }
    }

    /// [`Self::record`]'s event, with the counters as they are now.
    #[cold]
    #[inline(never)]
    fn push_event(
        &mut self,
        op: MatrixOp,
        irq: Option<u32>,
        cpu: Option<u32>,
        bit: Option<u32>,
        flag: bool,
    ) {
        let m = &self.matrix;
        let cm = cpu.and_then(|c| m.cpu(c).ok()).copied().unwrap_or_default();
        self.trace.push(MatrixEvent {
            op,
            irq,
            cpu,
            bit,
            flag,
            online: cm.online(),
            available: cm.available(),
            allocated: cm.allocated(),
            managed: cm.managed(),
            online_maps: m.online_maps(),
            global_available: m.global_available(),
            global_reserved: m.global_reserved(),
            total_allocated: m.total_allocated(),
        });
    }

    fn mx_online(&mut self, cpu: u32) -> Result<()> {
        self.matrix.online(cpu)?;
        self.refresh_online_state();
        self.record(MatrixOp::Online, None, Some(cpu), None, false);
        Ok(())
    }

    fn mx_offline(&mut self, cpu: u32) -> Result<()> {
        self.matrix.offline(cpu)?;
        self.refresh_online_state();
        self.record(MatrixOp::Offline, None, Some(cpu), None, false);
        Ok(())
    }

    /// `reserve_irq_vector_locked`'s `irq_matrix_reserve`.
    fn mx_reserve(&mut self, irq: u32) {
        self.matrix.reserve();
        self.record(MatrixOp::Reserve, Some(irq), None, None, false);
    }

    fn mx_remove_reserved(&mut self, irq: u32) {
        self.matrix.remove_reserved();
        self.record(MatrixOp::RemoveReserved, Some(irq), None, None, false);
    }

    /// `irq_matrix_alloc(dest, resvd)`; `dest = None` stands for exactly the matrix's online
    /// CPUs (see [`Self::is_matrix_online`]): the CPU then comes from `alloc_any` without a scan.
    #[inline(always)]
    fn mx_alloc(&mut self, irq: u32, dest: Option<&[u32]>, resvd: bool) -> Result<(u32, u32)> {
        let (cpu, bit) = match dest {
            None => self.matrix.alloc_any(resvd)?,
            Some(dest) => self.matrix.alloc(dest, resvd)?,
        };
        self.record(MatrixOp::Alloc, Some(irq), Some(cpu), Some(bit), resvd);
        Ok((cpu, bit))
    }

    fn mx_alloc_managed(&mut self, irq: u32, dest: &[u32]) -> Result<(u32, u32)> {
        let (cpu, bit) = self.matrix.alloc_managed(dest)?;
        self.record(
            MatrixOp::AllocManaged,
            Some(irq),
            Some(cpu),
            Some(bit),
            false,
        );
        Ok((cpu, bit))
    }

    /// A matrix free the domain issues for a vector it holds; a WARN here would be a model bug.
    #[inline(always)]
    fn mx_free(&mut self, irq: u32, cpu: u32, vector: u32, managed: bool) {
        let r = self.matrix.free(cpu, vector, managed);
        debug_assert!(r.is_ok(), "domain freed a vector it does not hold: {r:?}");
        if r.is_ok() {
            self.record(MatrixOp::Free, Some(irq), Some(cpu), Some(vector), managed);
        }
    }

    /// `mx_free` of a regular irq's vector on a fast path (nothing to record).
    #[inline(always)]
    fn free_untraced(&mut self, cpu: u32, vector: u32) {
        debug_assert!(!self.tracing);
        let r = self.matrix.free(cpu, vector, false);
        debug_assert!(r.is_ok(), "domain freed a vector it does not hold: {r:?}");
    }

    /// `irq_matrix_reserve_managed(cpus)`: one reservation per CPU, ascending; on `NoSpace` the
    /// CPUs already done are undone with `remove_managed` (each recorded, as the kernel's
    /// cleanup path traces them).
    fn mx_reserve_managed(&mut self, irq: u32, cpus: &[u32]) -> Result<()> {
        if !self.tracing {
            return self.matrix.reserve_managed(cpus);
        }
        for (done, &cpu) in cpus.iter().enumerate() {
            let before = *self.matrix.cpu(cpu)?.managed_map();
            if let Err(e) = self.matrix.reserve_managed(&[cpu]) {
                for &c in &cpus[..done] {
                    self.mx_remove_managed_one(irq, c);
                }
                return Err(e);
            }
            let after = *self.matrix.cpu(cpu)?.managed_map();
            let bit = after.iter().find(|&b| !before.contains(b));
            self.record(MatrixOp::ReserveManaged, Some(irq), Some(cpu), bit, false);
        }
        Ok(())
    }

    /// `irq_matrix_remove_managed` on one CPU; a WARN (nothing removed) records nothing.
    fn mx_remove_managed_one(&mut self, irq: u32, cpu: u32) {
        let Ok(before) = self.matrix.cpu(cpu).map(|c| *c.managed_map()) else {
            return;
        };
        if self.matrix.remove_managed(&[cpu]).is_ok() {
            let after = self.matrix.cpu(cpu).map(|c| *c.managed_map()).ok();
            let bit = after.and_then(|a| before.iter().find(|&b| !a.contains(b)));
            self.record(MatrixOp::RemoveManaged, Some(irq), Some(cpu), bit, false);
        }
    }

    /// `irq_matrix_remove_managed(cpus)` for an irq's whole mask (teardown).
    fn mx_remove_managed(&mut self, irq: u32, cpus: &[u32]) {
        if !self.tracing {
            let r = self.matrix.remove_managed(cpus);
            debug_assert!(r.is_ok(), "remove_managed WARN in teardown: {r:?}");
            return;
        }
        for &cpu in cpus {
            self.mx_remove_managed_one(irq, cpu);
        }
    }

    // ------------------------------------------------------------------ queries

    /// One interrupt, or `InvalidArgument` for an unknown number.
    pub fn irq(&self, irq: u32) -> Result<&IrqInfo> {
        self.irqs.get(irq).ok_or_else(|| unknown_irq(irq))
    }
    /// Every allocated irq, ascending.
    pub fn irqs(&self) -> impl Iterator<Item = (u32, &IrqInfo)> {
        self.irqs.iter()
    }
    /// Number of allocated irqs.
    pub fn nr_irqs(&self) -> usize {
        self.irqs.len()
    }
    /// Irqs holding a CPU vector.
    pub fn vectors_in_use(&self) -> usize {
        self.irqs.iter().filter(|(_, i)| i.target.is_some()).count()
    }
    /// Global reservations outstanding (`irq_matrix_reserved`).
    pub const fn reserved(&self) -> u32 {
        self.matrix.reserved()
    }
    /// Managed reservations over all CPUs (sum of `managed`).
    pub fn managed_reserved(&self) -> u64 {
        self.matrix
            .cpus()
            .iter()
            .map(|c| u64::from(c.managed()))
            .sum()
    }
    /// `pr_warn`s of the domain: "Affinity broken due to vector space exhaustion", "set
    /// affinity failed" on migration, "Reserved vectors > available" on unplug.
    pub const fn pr_warnings(&self) -> u64 {
        self.pr_warnings
    }
    /// The matrix's debugfs text (`/sys/kernel/debug/irq/domains/VECTOR`).
    pub fn debug_show(&self, ind: i32) -> Result<String> {
        self.matrix.debug_show(ind)
    }

    fn node_cpus(&self, node: u32) -> Vec<u32> {
        (0..self.ncpus())
            .filter(|&c| self.node_of_cpu.get(c as usize) == Some(&node))
            .collect()
    }

    /// `affinity ∩ online`; the default affinity gives the cached online list.
    fn and_online(&self, affinity: &Affinity) -> Arc<[u32]> {
        if affinity.is_all() {
            return self.online.clone();
        }
        affinity
            .cpus()
            .iter()
            .copied()
            .filter(|&c| self.cpu_is_online(c))
            .collect()
    }

    /// Whether `alloc(mask)` is `alloc_any`: `mask` is the cached online list and the matrix has
    /// exactly those CPUs online. The domain's online mask is always a subset of the matrix's
    /// online maps (a CPU joins the matrix first and leaves it last), so equal counts mean equal
    /// sets; they differ while `cpu_offline` migrates irqs off a CPU that has left the online
    /// mask but whose matrix map is still online.
    fn is_matrix_online(&self, mask: &Arc<[u32]>) -> bool {
        Arc::ptr_eq(mask, &self.online) && self.matrix_is_online()
    }

    /// Whether the matrix's online maps are the domain's online CPUs (equal counts mean
    /// equal sets, see [`Self::is_matrix_online`]).
    #[inline(always)]
    fn matrix_is_online(&self) -> bool {
        debug_assert_eq!(
            self.matrix_online,
            self.online.len() == self.matrix.online_maps() as usize
        );
        self.matrix_online
    }

    /// `assign_vector_locked(dest)`: nothing when the vector already sits on an online CPU of
    /// `dest` (sorted); `-EBUSY` (`move_in_progress`) while a move is pending; else
    /// `alloc(dest, has_reserved)` and `apic_update_vector` ([`Self::move_to`], `defer` as
    /// there). `any`: see [`Self::mx_alloc`].
    fn assign_vector(&mut self, irq: u32, dest: &[u32], any: bool, defer: bool) -> Result<()> {
        let info = self.irq(irq)?;
        if let Some(cpu) = info.target.cpu() {
            if self.cpu_is_online(cpu) && dest.binary_search(&cpu).is_ok() {
                return Ok(());
            }
        }
        if info.moving.is_some() {
            return Err(Error::invalid_op(
                "move_in_progress",
                format!("irq {irq}: the previous move is not complete (-EBUSY)"),
            ));
        }
        let (resvd, old, managed) = (info.has_reserved(), info.target(), info.managed());
        let new = if any {
            // `dest` is exactly the matrix's online CPUs, so the scan would skip the same ones.
            debug_assert!(dest.iter().all(|&c| self.matrix.is_online(c)));
            debug_assert_eq!(
                dest.len(),
                self.matrix.cpus().iter().filter(|c| c.online()).count()
            );
            self.mx_alloc(irq, None, resvd)?
        } else {
            self.mx_alloc(irq, Some(dest), resvd)?
        };
        self.move_to(irq, old, managed, new, defer);
        Ok(())
    }

    /// `assign_vector(irq, online mask)` without materialising the mask (no `Arc` clone on the
    /// common path): `alloc_any` when the matrix has exactly the domain's online CPUs online.
    fn assign_vector_online(&mut self, irq: u32) -> Result<()> {
        if !self.matrix_is_online() {
            let online = self.online.clone();
            return self.assign_vector(irq, &online, false, false);
        }
        let info = self.irq(irq)?;
        if let Some(cpu) = info.target.cpu() {
            if self.cpu_is_online(cpu) {
                return Ok(());
            }
        }
        if info.moving.is_some() {
            return Err(Error::invalid_op(
                "move_in_progress",
                format!("irq {irq}: the previous move is not complete (-EBUSY)"),
            ));
        }
        let (resvd, old, managed) = (info.has_reserved(), info.target(), info.managed());
        let new = self.mx_alloc(irq, None, resvd)?;
        self.move_to(irq, old, managed, new, false);
        Ok(())
    }

    /// `apic_update_vector`: the irq now holds `new`. Its `old` vector is freed at once when
    /// its CPU is offline (or `defer` is off, see the module doc), else kept as the pending
    /// move (`move_in_progress`, `prev_vector`) until [`Self::complete_move`].
    fn move_to(
        &mut self,
        irq: u32,
        old: Option<(u32, u32)>,
        managed: bool,
        new: (u32, u32),
        defer: bool,
    ) {
        let mut moving = None;
        if let Some((ocpu, ovec)) = old {
            if defer && self.cpu_is_online(ocpu) {
                moving = Some((ocpu, ovec));
            } else {
                self.mx_free(irq, ocpu, ovec, managed);
            }
        }
        if let Some(i) = self.irqs.get_mut(irq) {
            i.target = CpuVector::new(new);
            i.moving = moving.into();
        }
    }

    /// `assign_managed_vector(dest)`: `alloc_managed(dest ∩ affinity)` unless already there.
    fn assign_managed_vector(&mut self, irq: u32, dest: &[u32]) -> Result<()> {
        let info = self.irq(irq)?;
        let search: Vec<u32> = dest
            .iter()
            .copied()
            .filter(|&c| info.affinity.contains(c))
            .collect();
        if let Some(cpu) = info.target.cpu() {
            if search.contains(&cpu) {
                return Ok(());
            }
        }
        let old = info.target();
        let new = self.mx_alloc_managed(irq, &search)?;
        self.move_to(irq, old, true, new, false);
        Ok(())
    }

    /// `clear_irq_vector`: frees the held vector, then the previous one of a pending move.
    fn clear_vector(&mut self, irq: u32) {
        let Some(info) = self.irqs.get_mut(irq) else {
            return;
        };
        let managed = info.managed();
        let held = info.target.take();
        let prev = info.moving.take();
        self.free_vectors(irq, held, prev, managed);
    }

    /// The matrix side of `clear_irq_vector` for vectors already taken off the irq: `free` of
    /// `held`, then of `prev` (the pending move's previous vector; only with a held vector, as
    /// the kernel returns early without one).
    #[inline]
    fn free_vectors(
        &mut self,
        irq: u32,
        held: Option<(u32, u32)>,
        prev: Option<(u32, u32)>,
        managed: bool,
    ) {
        if let Some((cpu, vector)) = held {
            self.mx_free(irq, cpu, vector, managed);
            if let Some((pcpu, pvec)) = prev {
                self.mx_free(irq, pcpu, pvec, managed);
            }
        }
    }

    /// The pending move's previous vector freed (`free_moved_vector`); nothing if none.
    fn finish_move(&mut self, irq: u32) {
        let Some(info) = self.irqs.get_mut(irq) else {
            return;
        };
        let managed = info.managed();
        if let Some((cpu, vector)) = info.moving.take() {
            self.mx_free(irq, cpu, vector, managed);
        }
    }

    /// `assign_irq_vector_any_locked`: node ∩ affinity, affinity ∩ online, node, all online
    /// (the order since Linux 5.10, "x86/apic/vector: Fix ordering in vector assignment"); the
    /// last attempt's error is returned. An empty mask fails with `-EINVAL` and the chain moves
    /// on, as in the kernel.
    fn assign_any(&mut self, irq: u32) -> Result<()> {
        let info = self.irq(irq)?;
        if info.node == NO_NODE && info.affinity.is_all() {
            // Default affinity, no node: `affinity ∩ online` and the chain's last step are the
            // same mask, and a failed attempt changes nothing, so the second would fail alike.
            return self.assign_vector_online(irq);
        }
        let affinity = info.affinity.clone();
        let node = info.node();
        if let Some(node) = node {
            let both: Vec<u32> = self
                .node_cpus(node)
                .into_iter()
                .filter(|&c| affinity.contains(c))
                .collect();
            if self.assign_vector(irq, &both, false, false).is_ok() {
                return Ok(());
            }
        }
        let aff_online = self.and_online(&affinity);
        let any = self.is_matrix_online(&aff_online);
        if self.assign_vector(irq, &aff_online, any, false).is_ok() {
            return Ok(());
        }
        if let Some(node) = node {
            let node_cpus = self.node_cpus(node);
            if self.assign_vector(irq, &node_cpus, false, false).is_ok() {
                return Ok(());
            }
        }
        let online = self.online.clone();
        let any = self.is_matrix_online(&online);
        self.assign_vector(irq, &online, any, false)
    }

    /// `activate_reserved`: the chain; on success the reservation is consumed
    /// (`has_reserved = false`) and, outside reservation mode, `can_reserve` is cleared.
    fn activate_reserved(&mut self, irq: u32) -> Result<()> {
        let r = self.assign_any(irq);
        let can = self.reservation_mode;
        let mut broken = false;
        if let Some(i) = self.irqs.get_mut(irq) {
            if r.is_ok() {
                i.set(flag::HAS_RESERVED, false);
                if !can {
                    i.set(flag::CAN_RESERVE, false);
                }
            }
        }
        if let Some(i) = self.irqs.get(irq) {
            if let Some(cpu) = i.target.cpu() {
                broken = !i.affinity.contains(cpu);
            }
        }
        if broken {
            // pr_warn("irq %u: Affinity broken due to vector space exhaustion.")
            self.pr_warnings += 1;
        }
        r
    }

    /// `activate_managed`: `alloc_managed(affinity ∩ online)`.
    fn activate_managed(&mut self, irq: u32) -> Result<()> {
        let info = self.irq(irq)?;
        let search = self.and_online(&info.affinity);
        if search.is_empty() {
            // WARN_ON_ONCE in the kernel: callers check this first.
            return Err(Error::invalid_op(
                "activate_managed_no_cpu",
                format!("managed startup for irq {irq}, but no CPU"),
            ));
        }
        self.assign_managed_vector(irq, &search)
    }

    /// `irq_setup_affinity` for a regular irq at startup: its own mask if it was set and has an
    /// online CPU (else `IRQD_AFFINITY_SET` is dropped and the default, every CPU, is used),
    /// ∩ online (all online when empty), narrowed to the node's CPUs when they intersect. Then
    /// `irq_do_set_affinity`: a vector outside the mask moves in (a failure is ignored, as at
    /// startup); on success the mask becomes the irq's affinity.
    fn setup_affinity(&mut self, irq: u32) {
        let Some(info) = self.irqs.get(irq) else {
            return;
        };
        let (own, node, target, moving) = (
            info.affinity.clone(),
            info.node(),
            info.target(),
            info.moving.is_some(),
        );
        let mut use_own = info.affinity_set();
        if use_own && self.and_online(&own).is_empty() {
            use_own = false;
            if let Some(i) = self.irqs.get_mut(irq) {
                i.set(flag::AFFINITY_SET, false);
            }
        }
        let set = if use_own {
            own
        } else {
            Affinity::all(self.ncpus())
        };
        let mut mask = self.and_online(&set);
        if mask.is_empty() {
            mask = self.online.clone();
        }
        if let Some(node) = node {
            let node_cpus = self.node_cpus(node);
            let narrowed: Vec<u32> = mask
                .iter()
                .copied()
                .filter(|c| node_cpus.binary_search(c).is_ok())
                .collect();
            if !narrowed.is_empty() && narrowed.len() != mask.len() {
                mask = narrowed.into();
            }
        }
        let settled = target
            .is_some_and(|(cpu, _)| self.cpu_is_online(cpu) && mask.binary_search(&cpu).is_ok());
        let ok = settled
            || (!moving && {
                let any = self.is_matrix_online(&mask);
                self.assign_vector(irq, &mask, any, false).is_ok()
            });
        if ok {
            let mask = self.canonical(mask);
            if let Some(i) = self.irqs.get_mut(irq) {
                i.set_mask(mask);
            }
        }
    }

    /// A validated affinity mask (sorted, deduplicated, non-empty, every CPU below `ncpus`).
    fn checked_mask(&self, cpus: &[u32]) -> Result<Affinity> {
        let a: Arc<[u32]> = sorted_set(cpus).into();
        if a.is_empty() {
            return Err(Error::InvalidArgument("empty affinity mask".to_string()));
        }
        if let Some(&bad) = a.iter().find(|&&c| c >= self.ncpus()) {
            return Err(Error::InvalidArgument(format!(
                "cpu {bad} out of range (ncpus {})",
                self.ncpus()
            )));
        }
        Ok(self.canonical(a))
    }

    /// Allocate one irq (`x86_vector_alloc_irqs` + msi.c early activation) under the lowest
    /// free number, as `irq_alloc_descs` hands them out. `affinity` defaults to every possible
    /// CPU (`irq_default_affinity`), `node` to `NUMA_NO_NODE`. A regular irq given an
    /// `affinity` keeps it at startup (`IRQD_AFFINITY_SET`, as if set before the request).
    ///
    /// Matrix changes: managed → `reserve_managed(affinity)`; otherwise `reserve()`. Without
    /// reservation mode the irq is also activated now: regular → `alloc(chain, reserved=true)`;
    /// managed → `alloc_managed(affinity ∩ online)` (or managed shutdown if no CPU is online).
    /// Errors: empty affinity, bad CPU or node → `InvalidArgument`; managed reservation or
    /// (without reservation mode) the vector allocation fails → `NoSpace`, nothing kept.
    #[inline(always)]
    pub fn alloc_irq(
        &mut self,
        affinity: Option<&[u32]>,
        managed: bool,
        node: Option<u32>,
    ) -> Result<u32> {
        if affinity.is_none() && !managed && node.is_none() {
            // The host's allocation: nothing to check, so the number is taken as the irq is
            // stored (one read of the free word), then reserved; tracing sees the same event
            // (it reads the matrix, not the slab).
            let info = IrqInfo::new(
                Affinity::all(self.ncpus()),
                None,
                flag::CAN_RESERVE | flag::HAS_RESERVED,
            );
            let irq = self
                .irqs
                .insert_next(info)
                .ok_or_else(irq_numbers_exhausted)?;
            // reserve_irq_vector
            self.mx_reserve(irq);
            return self.activate_new(irq, false);
        }
        let irq = self.irqs.next_number().ok_or_else(irq_numbers_exhausted)?;
        self.alloc_irq_inner(irq, affinity, managed, node)
    }

    /// [`alloc_irq`](Self::alloc_irq) under the number `irq` (below [`MAX_IRQ_NUMBER`]), as
    /// the kernel allocates a fixed number (an IOAPIC pin's GSI, `irq_alloc_desc_at`). Errors:
    /// the number in use or out of range → `InvalidArgument`, and those of `alloc_irq`.
    pub fn alloc_irq_at(
        &mut self,
        irq: u32,
        affinity: Option<&[u32]>,
        managed: bool,
        node: Option<u32>,
    ) -> Result<u32> {
        self.check_free_number(irq)?;
        self.alloc_irq_inner(irq, affinity, managed, node)
    }

    fn check_free_number(&self, irq: u32) -> Result<()> {
        if irq >= MAX_IRQ_NUMBER {
            return Err(Error::InvalidArgument(format!(
                "irq {irq} out of range (below {MAX_IRQ_NUMBER})"
            )));
        }
        if self.irqs.get(irq).is_some() {
            return Err(Error::InvalidArgument(format!(
                "irq {irq} is already allocated"
            )));
        }
        Ok(())
    }

    // Always in line: the host allocates with the defaults (no affinity, not managed, no node),
    // and in line those arguments fold the mask check and the managed paths away.
    #[inline(always)]
    fn alloc_irq_inner(
        &mut self,
        irq: u32,
        affinity: Option<&[u32]>,
        managed: bool,
        node: Option<u32>,
    ) -> Result<u32> {
        let affinity_set = !managed && affinity.is_some();
        let affinity = match affinity {
            // The default mask is every possible CPU: nothing to check.
            None => Affinity::all(self.ncpus()),
            Some(a) => self.checked_mask(a)?,
        };
        if let Some(n) = node {
            if n >= self.nr_nodes {
                return Err(Error::InvalidArgument(format!(
                    "node {n} out of range ({} nodes)",
                    self.nr_nodes
                )));
            }
        }
        if managed {
            // reserve_managed_vector
            self.mx_reserve_managed(irq, affinity.cpus())?;
        } else {
            // reserve_irq_vector
            self.mx_reserve(irq);
        }
        self.irqs.insert(
            irq,
            IrqInfo::new(
                affinity,
                node,
                if managed {
                    flag::MANAGED
                } else if affinity_set {
                    flag::CAN_RESERVE | flag::HAS_RESERVED | flag::AFFINITY_SET
                } else {
                    flag::CAN_RESERVE | flag::HAS_RESERVED
                },
            ),
        );
        self.activate_new(irq, managed)
    }

    /// The end of [`alloc_irq`](Self::alloc_irq) once irq `irq` is stored with its
    /// reservation: with reservation mode off, its activation (undone with the irq on a
    /// failure).
    #[inline(always)]
    fn activate_new(&mut self, irq: u32, managed: bool) -> Result<u32> {
        if self.reservation_mode {
            // msi.c activates with reserve=true (shutdown vector only), then clears activated.
            return Ok(irq);
        }
        // Reservation mode off: msi_init_virq clears can_reserve and activates now.
        let r = if managed {
            let empty = self
                .irqs
                .get(irq)
                .is_none_or(|info| self.and_online(&info.affinity).is_empty());
            if empty {
                if let Some(i) = self.irqs.get_mut(irq) {
                    i.set(flag::MANAGED_SHUTDOWN, true);
                }
                Ok(())
            } else {
                self.activate_managed(irq)
            }
        } else {
            self.activate_reserved(irq)
        };
        match r {
            Ok(()) => {
                if let Some(i) = self.irqs.get_mut(irq) {
                    let held = i.target.is_some();
                    i.set(flag::ACTIVATED, held);
                }
                Ok(irq)
            }
            Err(e) => {
                // The failed allocation is torn down by x86_vector_free_irqs.
                self.teardown(irq);
                Err(e)
            }
        }
    }

    /// A legacy ISA irq taken over by the IOAPIC domain (`x86_vector_alloc_irqs` with
    /// `X86_IRQ_ALLOC_LEGACY`, `vector_configure_legacy`), under its own number `isa_irq`.
    /// `activated` (the irq was already running on its boot vector, as the timer irq 0 is):
    /// it keeps `ISA_IRQ_VECTOR(isa_irq)` on CPU 0 as a fixed-assigned, requested irq (no
    /// matrix change). Otherwise the boot vector is released (`free` on CPU 0) and the irq
    /// takes a global reservation (`reserve`), like any regular irq in reservation mode.
    /// Errors (`InvalidArgument`): not a legacy irq of the boot preset, the PIC cascade, its
    /// boot vector already taken over, the number in use, or `activated` while CPU 0 (which
    /// holds the boot vector) is offline.
    pub fn alloc_legacy_irq(&mut self, isa_irq: u32, activated: bool) -> Result<()> {
        if isa_irq >= self.nr_legacy || isa_irq == X86_PIC_CASCADE_IR {
            return Err(Error::InvalidArgument(format!(
                "irq {isa_irq} is not a legacy ISA irq of this boot ({} legacy irqs, cascade {})",
                self.nr_legacy, X86_PIC_CASCADE_IR
            )));
        }
        if self.legacy_held & (1 << isa_irq) == 0 {
            return Err(Error::InvalidArgument(format!(
                "the boot vector of legacy irq {isa_irq} was already taken over"
            )));
        }
        self.check_free_number(isa_irq)?;
        if activated && !self.cpu_is_online(0) {
            // The kernel takes legacy irqs over at boot, with CPU 0 up; keeping a running irq
            // on the vector of an offline CPU would start it there.
            return Err(Error::InvalidArgument(format!(
                "legacy irq {isa_irq} cannot keep its boot vector: CPU 0 is offline"
            )));
        }
        let vector = X86_ISA_IRQ0_VECTOR + isa_irq;
        self.legacy_held &= !(1 << isa_irq);
        let affinity = Affinity::all(self.ncpus());
        let info = if activated {
            let mut info = IrqInfo::new(affinity, None, flag::ACTIVATED | flag::REQUESTED);
            info.target = CpuVector::new((0, vector));
            info
        } else {
            // Release the vector (clear_irq_vector), then reserve_irq_vector.
            self.mx_free(isa_irq, 0, vector, false);
            self.mx_reserve(isa_irq);
            IrqInfo::new(affinity, None, flag::CAN_RESERVE | flag::HAS_RESERVED)
        };
        self.irqs.insert(isa_irq, info);
        Ok(())
    }

    /// `request_irq` → `irq_startup`. Matrix changes: a reserved irq → `alloc(chain,
    /// reserved=true)`; a fixed-assigned irq (cannot reserve) that is not activated runs the
    /// chain, which keeps a vector already on an online CPU of the first usable mask; a managed
    /// irq → `alloc_managed(affinity ∩ online)`, or nothing while no CPU of its mask is online
    /// (it stays in managed shutdown, the request succeeds). Then `irq_setup_affinity` for a
    /// regular irq (see the module doc): a vector outside the mask moves in (`alloc` + `free` of
    /// the old one) and the mask becomes its affinity. Errors: unknown irq →
    /// `InvalidArgument`; already requested → `InvalidOperation` (`irq_already_requested`);
    /// exhaustion → `NoSpace` (nothing changes).
    pub fn activate(&mut self, irq: u32) -> Result<()> {
        self.activate_targeted(irq).map(drop)
    }

    /// [`activate`](Self::activate), returning the `(cpu, vector)` the irq holds afterwards
    /// (`None`: a managed irq left shut down): what the caller programs next, without a second
    /// lookup of the irq.
    #[inline(always)]
    pub fn activate_targeted(&mut self, irq: u32) -> Result<Option<(u32, u32)>> {
        let Some(info) = self.irqs.get_mut(irq) else {
            return Err(unknown_irq(irq));
        };
        // Not requested and the default startup: one test of the flags.
        if info.bits() & (IrqInfo::DEFAULT_STARTUP_MASK | flag::REQUESTED) == flag::HAS_RESERVED
            && self.fast
        {
            debug_assert!(info.default_startup());
            // `activate_reserved` + `irq_setup_affinity` in one lookup of the irq: it stays
            // borrowed across the matrix's `alloc_any(reserved = true)` (another field).
            // Nothing is recorded (`fast`).
            let new = self.matrix.alloc_any(true)?;
            info.activate_default(new, self.reservation_mode);
            return Ok(Some(new));
        }
        if info.requested() {
            return Err(already_requested(irq));
        }
        self.startup(irq)?;
        Ok(self.irq(irq)?.target())
    }

    /// [`activate`](Self::activate) once the request is accepted (the irq exists and is not
    /// requested), for any irq: the general `irq_startup`, with the accounting effects
    /// `activate` documents.
    fn startup(&mut self, irq: u32) -> Result<()> {
        let info = self.irq(irq)?;
        if info.managed() {
            let online = self.and_online(&info.affinity);
            if online.is_empty() {
                // __irq_startup_managed: IRQ_STARTUP_ABORT, irq stays shut down.
                if let Some(i) = self.irqs.get_mut(irq) {
                    i.set(flag::MANAGED_SHUTDOWN | flag::REQUESTED, true);
                }
                return Ok(());
            }
            // Activation (if not activated at allocation), then irq_do_set_affinity: a vector
            // left on an offline CPU moves into affinity ∩ online; a failed move is ignored.
            let had_vector = info.target.is_some();
            let r = self.assign_managed_vector(irq, &online);
            if !had_vector {
                r?;
            }
            if let Some(i) = self.irqs.get_mut(irq) {
                i.set(flag::MANAGED_SHUTDOWN, false);
                i.set(flag::ACTIVATED | flag::REQUESTED, true);
            }
            return Ok(());
        }
        let (activated, has_reserved, can_reserve) =
            (info.activated(), info.has_reserved(), info.can_reserve());
        if !activated {
            if has_reserved {
                self.activate_reserved(irq)?;
            } else if !can_reserve {
                // x86_vector_activate for a fixed-assigned vector: the chain, result ignored.
                let _ = self.assign_any(irq);
            }
        }
        self.setup_affinity(irq);
        if let Some(i) = self.irqs.get_mut(irq) {
            i.set(flag::ACTIVATED | flag::REQUESTED, true);
        }
        Ok(())
    }

    /// `free_irq` → `irq_shutdown_and_deactivate` → `x86_vector_deactivate`. Matrix changes: a
    /// reservable irq → `free(cpu, vector)` (and the previous vector of a pending move) +
    /// `reserve()`; a managed irq → `free(cpu, vector, managed)` (none if it was shut down); an
    /// irq that cannot reserve keeps its vector. Errors: unknown irq → `InvalidArgument`; not
    /// requested → `InvalidOperation` (`irq_not_requested`, the kernel's "Trying to free
    /// already-free IRQ" WARN).
    #[inline(always)]
    pub fn deactivate(&mut self, irq: u32) -> Result<()> {
        use flag::{ACTIVATED, CAN_RESERVE, HAS_RESERVED, MANAGED, REQUESTED};
        // One lookup: the irq's state changes first, then the matrix (same calls, same order).
        let Some(info) = self.irqs.get_mut(irq) else {
            return Err(unknown_irq(irq));
        };
        let bits = info.bits();
        // The common case, decided by one test of the flags: a requested, activated,
        // reservable regular irq releases its vectors and takes its reservation back (what
        // `deactivate_general` does for it).
        if self.fast
            && bits & (REQUESTED | ACTIVATED | CAN_RESERVE | HAS_RESERVED | MANAGED)
                == REQUESTED | ACTIVATED | CAN_RESERVE
        {
            let (held, prev) = (info.target.take(), info.moving.take());
            info.flags = Flags::new((bits & !(REQUESTED | ACTIVATED)) | HAS_RESERVED);
            // `free_vectors` and `mx_reserve`, with nothing to record (`fast`).
            if let Some((cpu, vector)) = held {
                self.free_untraced(cpu, vector);
                if let Some((pcpu, pvec)) = prev {
                    self.free_untraced(pcpu, pvec);
                }
            }
            self.matrix.reserve();
            return Ok(());
        }
        self.deactivate_general(irq)
    }

    /// [`deactivate`](Self::deactivate) then [`free`](Self::free) of `irq` in one look-up,
    /// when both would take their fast paths (every CPU online, not tracing; a requested,
    /// activated, reservable regular irq with the default affinity and no node): the same
    /// matrix changes in the same order (`free` of its vector and of a pending move's previous
    /// one, `reserve()`, then `remove_reserved()`) and the irq number freed. Returns whether it
    /// did; `false` changes nothing, and the caller takes the two steps.
    // Measured with callgrind: a disable's vector looked up once instead of twice.
    #[inline(always)]
    pub fn release_default(&mut self, irq: u32) -> bool {
        use flag::{ACTIVATED, CAN_RESERVE, HAS_RESERVED, MANAGED, PLACED, REQUESTED};
        let Some(info) = self.irqs.get(irq) else {
            return false;
        };
        if !(self.fast
            && info.bits()
                & (REQUESTED | ACTIVATED | CAN_RESERVE | HAS_RESERVED | MANAGED | PLACED)
                == REQUESTED | ACTIVATED | CAN_RESERVE)
        {
            return false;
        }
        let (held, prev) = (info.target.get(), info.moving.get());
        // The default affinity: nothing to drop.
        self.irqs.vacate(irq);
        if let Some((cpu, vector)) = held {
            self.free_untraced(cpu, vector);
            if let Some((pcpu, pvec)) = prev {
                self.free_untraced(pcpu, pvec);
            }
        }
        // `deactivate` takes the reservation back, `free` removes it (its warning kept).
        self.matrix.reserve();
        self.matrix.remove_reserved();
        true
    }

    /// [`deactivate`](Self::deactivate) of any irq, with the effects documented there.
    fn deactivate_general(&mut self, irq: u32) -> Result<()> {
        let Some(info) = self.irqs.get_mut(irq) else {
            return Err(unknown_irq(irq));
        };
        if !info.requested() {
            return Err(not_requested(irq));
        }
        let managed = info.managed();
        let can_reserve = info.can_reserve();
        let release = info.activated() && (managed || can_reserve) && !info.has_reserved();
        // reserve_irq_vector_locked after clear_irq_vector, for a reservable irq.
        let reserve = release && can_reserve;
        let (held, prev) = if release {
            (info.target.take(), info.moving.take())
        } else {
            (None, None)
        };
        if reserve {
            info.set(flag::HAS_RESERVED, true);
        }
        info.set(flag::REQUESTED | flag::ACTIVATED, false);
        if managed {
            info.set(flag::MANAGED_SHUTDOWN, false);
        }
        self.free_vectors(irq, held, prev, managed);
        if reserve {
            self.mx_reserve(irq);
        }
        Ok(())
    }

    /// `x86_vector_free_irqs` for one irq: the irq leaves the slab, then `clear_irq_vector`
    /// (`free` of its vector and of a pending move's previous one) and
    /// `vector_free_reserved_and_managed` (`remove_reserved()` for a global reservation,
    /// `remove_managed(affinity)` for a managed irq). Nothing for an unknown irq.
    #[inline(always)]
    fn teardown(&mut self, irq: u32) {
        let Some(info) = self.irqs.take(irq) else {
            return;
        };
        self.free_vectors(irq, info.target(), info.pending_move(), info.managed());
        if info.has_reserved() {
            self.mx_remove_reserved(irq);
        }
        if info.managed() {
            self.mx_remove_managed(irq, info.affinity.cpus());
        }
    }

    /// `x86_vector_free_irqs`. Matrix changes: `free` of a held vector (and of a pending move's
    /// previous one), then `remove_reserved()` if it held a global reservation,
    /// `remove_managed(affinity)` if managed. Errors: unknown irq → `InvalidArgument`; still
    /// requested → `InvalidOperation` (`free_requested_irq`), nothing changes (the kernel's MSI
    /// teardown BUGs on an irq with an action).
    #[inline(always)]
    pub fn free(&mut self, irq: u32) -> Result<()> {
        use flag::{HAS_RESERVED, MANAGED, PLACED, REQUESTED};
        let bits = self.irq(irq)?.bits();
        // The common case, decided by one test of the flags: a regular irq not requested,
        // holding only its global reservation (so no vector) with the default affinity
        // (nothing to drop) has only that reservation removed (what `teardown` does for it).
        // It does not ask for `fast`: measured with callgrind, recording through
        // `mx_remove_reserved` cost 0.07 % less than the untraced removal behind the flag.
        if bits & (REQUESTED | MANAGED | HAS_RESERVED | PLACED) == HAS_RESERVED {
            self.irqs.vacate(irq);
            self.mx_remove_reserved(irq);
            return Ok(());
        }
        self.free_general(irq)
    }

    /// [`free`](Self::free) of any irq, with the effects documented there.
    fn free_general(&mut self, irq: u32) -> Result<()> {
        if self.irq(irq)?.requested() {
            return Err(still_requested(irq));
        }
        self.teardown(irq);
        Ok(())
    }

    /// A user affinity change of a regular irq (`irq_set_affinity`, as a write to
    /// `/proc/irq/N/smp_affinity` does). Not activated: the mask is only recorded
    /// (`irq_set_affinity_deactivated`). Activated: `apic_set_affinity(mask ∩ online)` — nothing
    /// moves when the vector already sits on an online CPU of it; else `alloc(mask ∩ online)`
    /// and the old vector stays allocated as the pending move until
    /// [`complete_move`](Self::complete_move) (freed at once if its CPU is offline). On success
    /// the mask becomes the irq's affinity, kept at later startups. Errors: unknown irq, empty
    /// mask, a CPU out of range, or no online CPU in the mask (`-EINVAL`) → `InvalidArgument`;
    /// a managed irq (`-EIO`) → `InvalidOperation` (`managed_affinity`); a move still pending
    /// (`-EBUSY`) → `InvalidOperation` (`move_in_progress`); exhaustion → `NoSpace`. Nothing
    /// changes on an error.
    pub fn set_affinity(&mut self, irq: u32, affinity: &[u32]) -> Result<()> {
        let info = self.irq(irq)?;
        if info.managed() {
            return Err(Error::invalid_op(
                "managed_affinity",
                format!("irq {irq} is managed: its affinity cannot be set (-EIO)"),
            ));
        }
        let activated = info.activated();
        let mask = self.checked_mask(affinity)?;
        if activated {
            let dest = self.and_online(&mask);
            if dest.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "no online CPU in the affinity of irq {irq} (-EINVAL)"
                )));
            }
            let any = self.is_matrix_online(&dest);
            self.assign_vector(irq, &dest, any, true)?;
        }
        if let Some(i) = self.irqs.get_mut(irq) {
            i.set_mask(mask);
            i.set(flag::AFFINITY_SET, true);
        }
        Ok(())
    }

    /// The cleanup after the first interrupt on a moved irq's new vector (`free_moved_vector`,
    /// traced as `vector_free_moved`): `free` of the previous vector. Errors: unknown irq →
    /// `InvalidArgument`; no move pending → `InvalidOperation` (`no_move_pending`).
    pub fn complete_move(&mut self, irq: u32) -> Result<()> {
        if !self.irq(irq)?.moving.is_some() {
            return Err(Error::invalid_op(
                "no_move_pending",
                format!("irq {irq} has no move in progress"),
            ));
        }
        self.finish_move(irq);
        Ok(())
    }

    /// CPU unplug. `lapic_can_unplug_cpu` first: if `available(cpudown)` < `allocated(cpu)`
    /// → `NoSpace` and nothing changes. Then the CPU leaves the online mask; in irq order,
    /// every irq (requested or not) whose current or previous vector is on it completes a
    /// pending move (`free` of the previous vector), and every requested irq with a vector on
    /// it migrates (`alloc` / `alloc_managed` on the new mask + `free` of the old vector) or,
    /// if managed with no online CPU left in its mask, shuts down (managed `free`); a regular
    /// irq whose affinity has no online CPU left takes all online CPUs as its affinity.
    /// Finally `offline(cpu)` on the matrix. Errors: bad or offline CPU, or the last online
    /// CPU → `InvalidArgument`.
    pub fn cpu_offline(&mut self, cpu: u32) -> Result<()> {
        if !self.cpu_is_online(cpu) {
            return Err(Error::InvalidArgument(format!("cpu {cpu} is not online")));
        }
        if self.online.len() == 1 {
            return Err(Error::InvalidArgument(
                "cannot offline the last online CPU (-EBUSY)".to_string(),
            ));
        }
        let tomove = self.matrix.allocated(cpu)?;
        let avl = self.matrix.available(Some(cpu))?;
        if avl < tomove {
            return Err(Error::NoSpace(format!(
                "CPU {cpu} has {tomove} vectors, {avl} available. Cannot disable CPU"
            )));
        }
        if avl < self.matrix.reserved() {
            // pr_warn("Reserved vectors %u > available %u. IRQ request may fail")
            self.pr_warnings += 1;
        }
        // remove_cpu_from_maps
        if let Some(o) = self.cpu_online.get_mut(cpu as usize) {
            *o = false;
        }
        self.refresh_online();
        // fixup_irqs → irq_migrate_all_off_this_cpu, in irq order. Every irq, started or not,
        // whose current or previous vector is on this CPU first completes a pending move
        // (irq_force_complete_move, Linux 6.11+: a move left pending on a dead CPU would make
        // every later set-affinity -EBUSY and pin the irq there); then a started irq targeting
        // this CPU migrates.
        let touched: Vec<u32> = self
            .irqs
            .iter()
            .filter(|(_, i)| i.target.cpu() == Some(cpu) || i.moving.cpu() == Some(cpu))
            .map(|(k, _)| k)
            .collect();
        for irq in touched {
            let Some(info) = self.irqs.get(irq) else {
                continue;
            };
            let on_cpu = info.target.cpu() == Some(cpu);
            let started = info.requested() && !info.managed_shutdown();
            if info.moving.is_some() {
                self.finish_move(irq);
            }
            if !(started && on_cpu) {
                continue;
            }
            let Some(info) = self.irqs.get(irq) else {
                continue;
            };
            let managed = info.managed();
            let mut mask = self.and_online(&info.affinity);
            let mut broken = false;
            if mask.is_empty() {
                if managed {
                    // irqd_set_managed_shutdown + irq_shutdown_and_deactivate
                    self.clear_vector(irq);
                    if let Some(i) = self.irqs.get_mut(irq) {
                        i.set(flag::MANAGED_SHUTDOWN, true);
                        i.set(flag::ACTIVATED, false);
                    }
                    continue;
                }
                mask = self.online.clone(); // affinity broken
                broken = true;
            }
            let r = if managed {
                self.assign_managed_vector(irq, &mask)
            } else {
                let any = self.is_matrix_online(&mask);
                self.assign_vector(irq, &mask, any, false)
            };
            match r {
                Ok(()) if broken => {
                    // irq_do_set_affinity copies the mask it was given: the online CPUs.
                    let mask = self.canonical(mask);
                    if let Some(i) = self.irqs.get_mut(irq) {
                        i.set_mask(mask);
                    }
                }
                Ok(()) => {}
                Err(_) => {
                    // pr_warn("IRQ%u: set affinity failed(%d)"): the irq stays on the dead CPU.
                    self.pr_warnings += 1;
                }
            }
        }
        // lapic_offline
        self.mx_offline(cpu)?;
        Ok(())
    }

    /// CPU hotplug online: `online(cpu)` on the matrix (`lapic_online`), the CPU joins the
    /// online mask, then every requested managed irq in managed shutdown whose affinity
    /// contains `cpu` starts (`alloc_managed(affinity ∩ online)`), ascending irq order. Errors:
    /// bad CPU or already online → `InvalidArgument`.
    pub fn cpu_online(&mut self, cpu: u32) -> Result<()> {
        if cpu >= self.ncpus() || self.cpu_is_online(cpu) {
            return Err(Error::InvalidArgument(format!(
                "cpu {cpu} is not an offline CPU"
            )));
        }
        self.mx_online(cpu)?;
        if let Some(o) = self.cpu_online.get_mut(cpu as usize) {
            *o = true;
        }
        self.refresh_online();
        // irq_affinity_online_cpu → irq_restore_affinity_of_irq
        let starters: Vec<u32> = self
            .irqs
            .iter()
            .filter(|(_, i)| {
                i.managed() && i.requested() && i.managed_shutdown() && i.affinity.contains(cpu)
            })
            .map(|(k, _)| k)
            .collect();
        for irq in starters {
            if self.activate_managed(irq).is_ok() {
                if let Some(i) = self.irqs.get_mut(irq) {
                    i.set(flag::MANAGED_SHUTDOWN, false);
                    i.set(flag::ACTIVATED, true);
                }
            } else {
                // WARN + pr_err in activate_managed: the irq stays shut down.
                self.pr_warnings += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "vector_domain_tests.rs"]
mod tests;
