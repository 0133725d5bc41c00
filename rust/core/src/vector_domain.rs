//! The x86 vector domain (arch/x86/kernel/apic/vector.c) on top of [`IrqMatrix`], with the
//! parts of kernel/irq (msi.c early activation, chip.c startup/shutdown, cpuhotplug.c) that
//! decide when it allocates, activates, deactivates and migrates.
//!
//! Lifecycle of one interrupt, as the kernel runs it for PCI/MSI(-X) on x86:
//! - **alloc** (`x86_vector_alloc_irqs` → `assign_irq_vector_policy`, then msi.c's early
//!   activation): a managed irq reserves one managed bit on every CPU of its affinity
//!   (`reserve_managed`); any other irq takes a global reservation (`reserve`). With reservation
//!   mode **off** (the MSI domain cannot reserve: `irqd_clr_can_reserve`) msi.c activates the irq
//!   at once with `reserve = false`: a regular irq gets its vector now (fallback chain,
//!   `alloc(reserved = true)`) and keeps it until freed; a managed irq gets it from its
//!   reservations (`alloc_managed`), or is marked managed-shutdown when no CPU of its mask is
//!   online. A failure there fails the allocation (and undoes it).
//! - **activate** (`request_irq` → `irq_startup`): a reserved irq gets a vector through
//!   `assign_irq_vector_any_locked` (node ∩ affinity, node, affinity ∩ online, all online) with
//!   `alloc(reserved = true)`; a managed one through `alloc_managed(affinity ∩ online)`, or stays
//!   managed-shutdown (request succeeds) while no CPU of its mask is online. Then
//!   `irq_setup_affinity` moves a regular irq into `affinity ∩ online` if its CPU is outside it.
//! - **deactivate** (`free_irq` → `irq_shutdown_and_deactivate`): a reservable irq frees its
//!   vector and takes a global reservation again; a managed one frees its vector (managed free);
//!   an irq that cannot reserve keeps its vector.
//! - **free** (`x86_vector_free_irqs`): frees any vector, then removes the global reservation or
//!   the managed reservations.
//! - **CPU offline** (`native_cpu_disable`: `lapic_can_unplug_cpu`, then `cpu_disable_common`:
//!   the CPU leaves the online mask, `fixup_irqs` migrates every *started* irq whose vector is on
//!   it, then `lapic_offline`): a regular irq moves to `affinity ∩ online` (all online CPUs when
//!   that is empty: affinity broken); a managed irq moves within `affinity ∩ online`, or shuts
//!   down (managed free) when that is empty.
//! - **CPU online** (`lapic_online`, then `irq_affinity_online_cpu`): the matrix map comes
//!   online, and every requested managed irq in managed shutdown whose mask contains the CPU
//!   starts again (`alloc_managed`).
//!
//! Simplifications (each is documented where it happens):
//! - Vector moves complete at once: the kernel keeps the previous vector until the first
//!   interrupt on the new one (or the cleanup timer) and frees it then; here the old vector is
//!   freed as part of the move. `move_in_progress` / `-EBUSY` therefore never occur.
//! - No legacy (ISA / IOAPIC) irqs, no `info->mask` fixed allocations, no user
//!   `irq_set_affinity` calls after allocation, no shared irqs; one irq per `alloc_irq`.
//! - The `lapic_can_unplug_cpu` and "cannot offline the last CPU" checks are the only reasons a
//!   CPU offline is refused; the model has no stop-machine, no pending interrupts.
//! - `pr_warn` messages are counted, not printed.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::matrix::{IrqMatrix, X86Preset};

/// x86 `MAX_NUMNODES` with the largest `CONFIG_NODES_SHIFT` (10): NUMA node ids are below it.
pub const MAX_NUMNODES: u32 = 1 << 10;

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

/// Per-interrupt data: the model of `struct apic_chip_data` plus the irq core flags it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IrqInfo {
    /// Shared when it is the default (every possible CPU): no copy per irq.
    affinity: Arc<[u32]>,
    node: Option<u32>,
    managed: bool,
    /// `apicd->can_reserve` (and `irqd_can_reserve`): reservation mode for this irq.
    can_reserve: bool,
    /// `apicd->has_reserved`: holds a global reservation instead of a vector.
    has_reserved: bool,
    /// `irqd_is_activated`.
    activated: bool,
    /// `irqd_is_managed_and_shutdown`.
    managed_shutdown: bool,
    /// Requested by a driver (`desc->action` set, irq started unless managed-shutdown).
    requested: bool,
    /// `(apicd->cpu, apicd->vector)` when a real vector is held.
    target: Option<(u32, u32)>,
}

impl IrqInfo {
    /// The lifecycle state.
    pub fn state(&self) -> IrqState {
        // A managed irq in managed shutdown may still hold a vector on an offline CPU (the
        // kernel only migrates started irqs); it is shut down all the same.
        if self.managed_shutdown {
            return IrqState::ManagedShutdown;
        }
        match (self.target.is_some(), self.requested, self.managed) {
            (true, true, _) => IrqState::Active,
            (true, false, _) => IrqState::Assigned,
            (false, _, true) => IrqState::ManagedReserved,
            (false, _, false) => IrqState::Reserved,
        }
    }
    /// Affinity mask (sorted CPU list).
    pub fn affinity(&self) -> &[u32] {
        &self.affinity
    }
    /// NUMA node of the irq (`None` = `NUMA_NO_NODE`).
    pub const fn node(&self) -> Option<u32> {
        self.node
    }
    /// Managed interrupt (`irqd_affinity_is_managed`).
    pub const fn managed(&self) -> bool {
        self.managed
    }
    /// Holds a global reservation (`apicd->has_reserved`).
    pub const fn has_reserved(&self) -> bool {
        self.has_reserved
    }
    /// Reservation mode applies to this irq (`apicd->can_reserve`).
    pub const fn can_reserve(&self) -> bool {
        self.can_reserve
    }
    /// Requested by a driver (between `activate` and `deactivate`).
    pub const fn requested(&self) -> bool {
        self.requested
    }
    /// `(cpu, vector)` when a CPU vector is held.
    pub const fn target(&self) -> Option<(u32, u32)> {
        self.target
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
    /// Every possible CPU: the default affinity, shared by the irqs that use it.
    all_cpus: Arc<[u32]>,
    /// The online mask as a CPU list, kept in step with `cpu_online`.
    online: Arc<[u32]>,
    pr_warnings: u64,
}

/// Allocated irqs by number. Numbers are handed out lowest-free first from a
/// bitmap, as `irq_alloc_descs` does, so a freed number is reused.
#[derive(Clone, Debug, Default)]
struct IrqSlab {
    slots: Vec<Option<IrqInfo>>,
    /// One bit per number in use.
    used: Vec<u64>,
    /// No word below this one has a free bit.
    first_free_word: usize,
    len: usize,
}

impl IrqSlab {
    /// The number the next insert will use.
    fn next_number(&self) -> Option<u32> {
        let start = self.first_free_word.min(self.used.len());
        let n = match self.used[start..].iter().position(|&w| w != u64::MAX) {
            Some(i) => (start + i) * 64 + (!self.used[start + i]).trailing_zeros() as usize,
            None => self.used.len() * 64,
        };
        u32::try_from(n).ok()
    }

    /// Store `info` under the number `next_number` gave.
    fn insert(&mut self, irq: u32, info: IrqInfo) {
        let i = irq as usize;
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        if i / 64 >= self.used.len() {
            self.used.resize(i / 64 + 1, 0);
        }
        self.used[i / 64] |= 1 << (i % 64);
        while self.first_free_word < self.used.len() && self.used[self.first_free_word] == u64::MAX
        {
            self.first_free_word += 1;
        }
        if self.slots[i].replace(info).is_none() {
            self.len += 1;
        }
    }

    fn remove(&mut self, irq: u32) -> Option<IrqInfo> {
        let i = irq as usize;
        let info = self.slots.get_mut(i)?.take()?;
        self.len -= 1;
        if let Some(w) = self.used.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
        self.first_free_word = self.first_free_word.min(i / 64);
        Some(info)
    }

    fn get(&self, irq: u32) -> Option<&IrqInfo> {
        self.slots.get(irq as usize)?.as_ref()
    }

    fn get_mut(&mut self, irq: u32) -> Option<&mut IrqInfo> {
        self.slots.get_mut(irq as usize)?.as_mut()
    }

    fn iter(&self) -> impl Iterator<Item = (u32, &IrqInfo)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k as u32, v)))
    }

    fn len(&self) -> usize {
        self.len
    }
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
        let matrix = IrqMatrix::x86(ncpus, preset)?;
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
        let all_cpus: Arc<[u32]> = (0..ncpus).collect();
        Ok(Self {
            matrix,
            reservation_mode,
            cpu_online: vec![true; ncpus as usize],
            node_of_cpu,
            nr_nodes,
            irqs: IrqSlab::default(),
            online: all_cpus.clone(),
            all_cpus,
            pr_warnings: 0,
        })
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

    /// Recompute the online CPU list after a hotplug change.
    fn refresh_online(&mut self) {
        self.online = (0..self.ncpus())
            .filter(|&c| self.cpu_is_online(c))
            .collect();
    }

    /// Whether `cpu` is in `affinity` (sorted).
    fn in_affinity(&self, affinity: &Arc<[u32]>, cpu: u32) -> bool {
        if Arc::ptr_eq(affinity, &self.all_cpus) {
            cpu < self.ncpus()
        } else {
            affinity.binary_search(&cpu).is_ok()
        }
    }
    /// One interrupt, or `InvalidArgument` for an unknown number.
    pub fn irq(&self, irq: u32) -> Result<&IrqInfo> {
        self.irqs
            .get(irq)
            .ok_or_else(|| Error::InvalidArgument(format!("irq {irq} is not allocated")))
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
    pub fn debug_show(&self, ind: i32) -> String {
        self.matrix.debug_show(ind)
    }

    fn node_cpus(&self, node: u32) -> Vec<u32> {
        (0..self.ncpus())
            .filter(|&c| self.node_of_cpu.get(c as usize) == Some(&node))
            .collect()
    }

    /// `affinity ∩ online`; the default affinity gives the cached online list.
    fn and_online(&self, affinity: &Arc<[u32]>) -> Arc<[u32]> {
        if Arc::ptr_eq(affinity, &self.all_cpus) {
            return self.online.clone();
        }
        affinity
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
        Arc::ptr_eq(mask, &self.online) && self.online.len() == self.matrix.online_maps() as usize
    }

    /// `assign_vector_locked` for an irq without a vector or whose vector must move:
    /// `alloc(dest, has_reserved)`, then the move (old vector freed at once, see module doc).
    /// `any` says `dest` is the matrix's online set ([`Self::is_matrix_online`]): the matrix then
    /// picks the CPU with `alloc_any`, which gives what `alloc(dest)` gives without the scan.
    fn assign_vector(&mut self, irq: u32, dest: &[u32], any: bool) -> Result<()> {
        let info = self.irq(irq)?;
        if let Some((cpu, _)) = info.target {
            if self.cpu_is_online(cpu) && dest.binary_search(&cpu).is_ok() {
                return Ok(());
            }
        }
        let resvd = info.has_reserved;
        let old = info.target;
        let managed = info.managed;
        let (cpu, vector) = if any {
            // `dest` is exactly the matrix's online CPUs, so the scan would skip the same ones.
            debug_assert!(dest.iter().all(|&c| self.matrix.is_online(c)));
            debug_assert_eq!(
                dest.len(),
                self.matrix.cpus().iter().filter(|c| c.online()).count()
            );
            self.matrix.alloc_any(resvd)?
        } else {
            self.matrix.alloc(dest, resvd)?
        };
        self.move_to(irq, old, managed, (cpu, vector));
        Ok(())
    }

    /// `assign_vector(irq, online mask)` without materialising the mask (no `Arc` clone on the
    /// common path): `alloc_any` when the matrix has exactly the domain's online CPUs online.
    fn assign_vector_online(&mut self, irq: u32) -> Result<()> {
        if self.online.len() != self.matrix.online_maps() as usize {
            let online = self.online.clone();
            return self.assign_vector(irq, &online, false);
        }
        let info = self.irq(irq)?;
        if let Some((cpu, _)) = info.target {
            if self.cpu_is_online(cpu) {
                return Ok(());
            }
        }
        let (resvd, old, managed) = (info.has_reserved, info.target, info.managed);
        let new = self.matrix.alloc_any(resvd)?;
        self.move_to(irq, old, managed, new);
        Ok(())
    }

    /// The end of `assign_vector_locked`: the irq now holds `new`; its `old` vector is freed.
    fn move_to(&mut self, irq: u32, old: Option<(u32, u32)>, managed: bool, new: (u32, u32)) {
        if let Some((ocpu, ovec)) = old {
            // The kernel frees at once when the old CPU is offline and after the first
            // interrupt on the new vector otherwise; both are "now" in this model.
            self.matrix_free(ocpu, ovec, managed);
        }
        if let Some(i) = self.irqs.get_mut(irq) {
            i.target = Some(new);
        }
    }

    /// `assign_managed_vector(dest)`: `alloc_managed(dest ∩ affinity)` unless already there.
    fn assign_managed_vector(&mut self, irq: u32, dest: &[u32]) -> Result<()> {
        let info = self.irq(irq)?;
        let search: Vec<u32> = dest
            .iter()
            .copied()
            .filter(|&c| self.in_affinity(&info.affinity, c))
            .collect();
        if let Some((cpu, _)) = info.target {
            if search.contains(&cpu) {
                return Ok(());
            }
        }
        let old = info.target;
        let (cpu, vector) = self.matrix.alloc_managed(&search)?;
        if let Some((ocpu, ovec)) = old {
            self.matrix_free(ocpu, ovec, true);
        }
        if let Some(i) = self.irqs.get_mut(irq) {
            i.target = Some((cpu, vector));
        }
        Ok(())
    }

    /// A matrix free the domain issues for a vector it holds; a WARN here would be a model bug.
    fn matrix_free(&mut self, cpu: u32, vector: u32, managed: bool) {
        let r = self.matrix.free(cpu, vector, managed);
        debug_assert!(r.is_ok(), "domain freed a vector it does not hold: {r:?}");
    }

    /// `clear_irq_vector`: frees the held vector, if any.
    fn clear_vector(&mut self, irq: u32) {
        let Some(info) = self.irqs.get_mut(irq) else {
            return;
        };
        let managed = info.managed;
        if let Some((cpu, vector)) = info.target.take() {
            self.matrix_free(cpu, vector, managed);
        }
    }

    /// `assign_irq_vector_any_locked`: node ∩ affinity, node, affinity ∩ online, all online;
    /// the last attempt's error is returned. An empty mask fails with `-EINVAL` and the chain
    /// moves on, as in the kernel.
    fn assign_any(&mut self, irq: u32) -> Result<()> {
        let info = self.irq(irq)?;
        if info.node.is_none() && Arc::ptr_eq(&info.affinity, &self.all_cpus) {
            // Default affinity, no node: `affinity ∩ online` and the chain's last step are the
            // same mask, and a failed attempt changes nothing, so the second would fail alike.
            return self.assign_vector_online(irq);
        }
        let affinity = info.affinity.clone();
        if let Some(node) = info.node {
            let node_cpus = self.node_cpus(node);
            let both: Vec<u32> = node_cpus
                .iter()
                .copied()
                .filter(|&c| self.in_affinity(&affinity, c))
                .collect();
            if self.assign_vector(irq, &both, false).is_ok() {
                return Ok(());
            }
            if self.assign_vector(irq, &node_cpus, false).is_ok() {
                return Ok(());
            }
        }
        let aff_online = self.and_online(&affinity);
        let any = self.is_matrix_online(&aff_online);
        if self.assign_vector(irq, &aff_online, any).is_ok() {
            return Ok(());
        }
        let online = self.online.clone();
        let any = self.is_matrix_online(&online);
        self.assign_vector(irq, &online, any)
    }

    /// `activate_reserved`: the chain; on success the reservation is consumed
    /// (`has_reserved = false`) and, outside reservation mode, `can_reserve` is cleared.
    fn activate_reserved(&mut self, irq: u32) -> Result<()> {
        let r = self.assign_any(irq);
        let can = self.reservation_mode;
        let mut broken = false;
        if let Some(i) = self.irqs.get_mut(irq) {
            if r.is_ok() {
                i.has_reserved = false;
                if !can {
                    i.can_reserve = false;
                }
            }
        }
        if let Some(i) = self.irqs.get(irq) {
            if let Some((cpu, _)) = i.target {
                broken = !self.in_affinity(&i.affinity, cpu);
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

    /// Allocate one irq (`x86_vector_alloc_irqs` + msi.c early activation). `affinity` defaults
    /// to every possible CPU (`irq_default_affinity`), `node` to `NUMA_NO_NODE`.
    ///
    /// Matrix changes: managed → `reserve_managed(affinity)`; otherwise `reserve()`. Without
    /// reservation mode the irq is also activated now: regular → `alloc(chain, reserved=true)`;
    /// managed → `alloc_managed(affinity ∩ online)` (or managed shutdown if no CPU is online).
    /// Errors: empty affinity, bad CPU or node → `InvalidArgument`; managed reservation or
    /// (without reservation mode) the vector allocation fails → `NoSpace`, nothing kept.
    pub fn alloc_irq(
        &mut self,
        affinity: Option<&[u32]>,
        managed: bool,
        node: Option<u32>,
    ) -> Result<u32> {
        let affinity: Arc<[u32]> = match affinity {
            // The default mask is every possible CPU: nothing to check.
            None => self.all_cpus.clone(),
            Some(a) => {
                let a: Arc<[u32]> = sorted_set(a).into();
                if a.is_empty() {
                    return Err(Error::InvalidArgument("empty affinity mask".to_string()));
                }
                if let Some(&bad) = a.iter().find(|&&c| c >= self.ncpus()) {
                    return Err(Error::InvalidArgument(format!(
                        "cpu {bad} out of range (ncpus {})",
                        self.ncpus()
                    )));
                }
                a
            }
        };
        if let Some(n) = node {
            if n >= self.nr_nodes {
                return Err(Error::InvalidArgument(format!(
                    "node {n} out of range ({} nodes)",
                    self.nr_nodes
                )));
            }
        }
        let irq = self
            .irqs
            .next_number()
            .ok_or_else(|| Error::NoSpace("irq numbers exhausted".to_string()))?;
        if managed {
            // reserve_managed_vector
            self.matrix.reserve_managed(&affinity)?;
        } else {
            // reserve_irq_vector
            self.matrix.reserve();
        }
        self.irqs.insert(
            irq,
            IrqInfo {
                affinity,
                node,
                managed,
                can_reserve: !managed,
                has_reserved: !managed,
                activated: false,
                managed_shutdown: false,
                requested: false,
                target: None,
            },
        );
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
                    i.managed_shutdown = true;
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
                    i.activated = i.target.is_some();
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

    /// `request_irq` → `irq_startup`. Matrix changes: a reserved irq → `alloc(chain,
    /// reserved=true)`; a managed irq → `alloc_managed(affinity ∩ online)`, or nothing while no
    /// CPU of its mask is online (it stays in managed shutdown, the request succeeds); an irq
    /// already holding a vector → nothing, unless `irq_setup_affinity` moves it into
    /// `affinity ∩ online` (`alloc` + `free` of the old one). Errors: unknown irq →
    /// `InvalidArgument`; already requested → `InvalidOperation` (`irq_already_requested`);
    /// exhaustion → `NoSpace` (nothing changes).
    pub fn activate(&mut self, irq: u32) -> Result<()> {
        let info = self.irq(irq)?;
        if info.requested {
            return Err(Error::invalid_op(
                "irq_already_requested",
                format!("irq {irq} is already requested (-EBUSY)"),
            ));
        }
        if info.managed {
            let online = self.and_online(&info.affinity);
            if online.is_empty() {
                // __irq_startup_managed: IRQ_STARTUP_ABORT, irq stays shut down.
                if let Some(i) = self.irqs.get_mut(irq) {
                    i.managed_shutdown = true;
                    i.requested = true;
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
                i.managed_shutdown = false;
                i.activated = true;
                i.requested = true;
            }
            return Ok(());
        }
        if info.has_reserved {
            self.activate_reserved(irq)?;
        }
        // irq_setup_affinity: affinity ∩ online, or all online when empty. A vector already on
        // an online CPU of the affinity stays (assign_vector would return at once).
        let info = self.irq(irq)?;
        let settled = info.target.is_some_and(|(cpu, _)| {
            self.cpu_is_online(cpu) && self.in_affinity(&info.affinity, cpu)
        });
        if !settled {
            let mut mask = self.and_online(&info.affinity);
            if mask.is_empty() {
                mask = self.online.clone();
            }
            let any = self.is_matrix_online(&mask);
            if self.assign_vector(irq, &mask, any).is_err() {
                // set_affinity failure at startup is ignored by the kernel; the irq stays put.
            }
        }
        if let Some(i) = self.irqs.get_mut(irq) {
            i.activated = true;
            i.requested = true;
        }
        Ok(())
    }

    /// `free_irq` → `irq_shutdown_and_deactivate` → `x86_vector_deactivate`. Matrix changes: a
    /// reservable irq → `free(cpu, vector)` + `reserve()`; a managed irq → `free(cpu, vector,
    /// managed)` (none if it was shut down); an irq that cannot reserve keeps its vector.
    /// Errors: unknown irq → `InvalidArgument`; not requested → `InvalidOperation`
    /// (`irq_not_requested`, the kernel's "Trying to free already-free IRQ" WARN).
    pub fn deactivate(&mut self, irq: u32) -> Result<()> {
        let info = self.irq(irq)?;
        if !info.requested {
            return Err(Error::invalid_op(
                "irq_not_requested",
                format!("trying to free already-free irq {irq}"),
            ));
        }
        let (managed, can_reserve, has_reserved, activated) = (
            info.managed,
            info.can_reserve,
            info.has_reserved,
            info.activated,
        );
        if activated && (managed || can_reserve) && !has_reserved {
            self.clear_vector(irq);
            if can_reserve {
                // reserve_irq_vector_locked
                self.matrix.reserve();
                if let Some(i) = self.irqs.get_mut(irq) {
                    i.has_reserved = true;
                }
            }
        }
        if let Some(i) = self.irqs.get_mut(irq) {
            i.requested = false;
            i.activated = false;
            if managed {
                i.managed_shutdown = false;
            }
        }
        Ok(())
    }

    fn teardown(&mut self, irq: u32) {
        self.clear_vector(irq);
        if let Some(info) = self.irqs.remove(irq) {
            // vector_free_reserved_and_managed
            if info.has_reserved {
                self.matrix.remove_reserved();
            }
            if info.managed {
                let r = self.matrix.remove_managed(&info.affinity);
                debug_assert!(r.is_ok(), "remove_managed WARN in teardown: {r:?}");
            }
        }
    }

    /// `x86_vector_free_irqs`. Matrix changes: `free` of a held vector, then `remove_reserved()`
    /// if it held a global reservation, `remove_managed(affinity)` if managed. Errors: unknown
    /// irq → `InvalidArgument`; still requested → `InvalidOperation` (`free_requested_irq`),
    /// nothing changes (the kernel's MSI teardown BUGs on an irq with an action).
    pub fn free(&mut self, irq: u32) -> Result<()> {
        let info = self.irq(irq)?;
        if info.requested {
            return Err(Error::invalid_op(
                "free_requested_irq",
                format!("irq {irq} is still requested"),
            ));
        }
        self.teardown(irq);
        Ok(())
    }

    /// CPU unplug. `lapic_can_unplug_cpu` first: if `available(cpudown)` < `allocated(cpu)`
    /// → `NoSpace` and nothing changes. Then the CPU leaves the online mask; every requested
    /// irq with a vector on it migrates (`alloc` / `alloc_managed` on the new mask + `free` of the
    /// old vector) or, if managed with no online CPU left in its mask, shuts down (managed
    /// `free`); finally `offline(cpu)` on the matrix. Errors: bad or offline CPU, or the last
    /// online CPU → `InvalidArgument`.
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
        // fixup_irqs → irq_migrate_all_off_this_cpu: started irqs targeting this CPU.
        let movers: Vec<u32> = self
            .irqs
            .iter()
            .filter(|(_, i)| {
                i.requested && !i.managed_shutdown && i.target.is_some_and(|(c, _)| c == cpu)
            })
            .map(|(k, _)| k)
            .collect();
        for irq in movers {
            let Some(info) = self.irqs.get(irq) else {
                continue;
            };
            let managed = info.managed;
            let mut mask = self.and_online(&info.affinity);
            if mask.is_empty() {
                if managed {
                    // irqd_set_managed_shutdown + irq_shutdown_and_deactivate
                    self.clear_vector(irq);
                    if let Some(i) = self.irqs.get_mut(irq) {
                        i.managed_shutdown = true;
                        i.activated = false;
                    }
                    continue;
                }
                mask = self.online.clone(); // affinity broken
            }
            let r = if managed {
                self.assign_managed_vector(irq, &mask)
            } else {
                let any = self.is_matrix_online(&mask);
                self.assign_vector(irq, &mask, any)
            };
            if r.is_err() {
                // pr_warn("IRQ%u: set affinity failed(%d)"): the irq stays on the dead CPU.
                self.pr_warnings += 1;
            }
        }
        // lapic_offline
        self.matrix.offline(cpu)?;
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
        self.matrix.online(cpu)?;
        if let Some(o) = self.cpu_online.get_mut(cpu as usize) {
            *o = true;
        }
        self.refresh_online();
        // irq_affinity_online_cpu → irq_restore_affinity_of_irq
        let starters: Vec<u32> = self
            .irqs
            .iter()
            .filter(|(_, i)| {
                i.managed && i.requested && i.managed_shutdown && self.in_affinity(&i.affinity, cpu)
            })
            .map(|(k, _)| k)
            .collect();
        for irq in starters {
            if self.activate_managed(irq).is_ok() {
                if let Some(i) = self.irqs.get_mut(irq) {
                    i.managed_shutdown = false;
                    i.activated = true;
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
