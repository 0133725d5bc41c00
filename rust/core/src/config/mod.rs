//! A simulation's configuration: plain data (serde), validated once, by
//! [`SimConfig::validate`], with errors that name the offending field. This is
//! the one schema: the Python package reads its names, limits and defaults
//! from here ([`schema`]). Times are nanoseconds, rates are interrupts per
//! second.

mod builder;
mod memory;
mod schema;
mod spoof;
mod validation;

pub use builder::SimConfigBuilder;
pub use memory::{reserve_check, MemoryEstimate, MAX_RUN_BYTES};
pub use schema::schema;
pub use spoof::{SpoofConfig, SpoofKind};
pub(crate) use validation::check_action;
pub use validation::{longest_window_ns, MAX_DEVICES, MAX_RATE, MAX_TABLE_ENTRIES};

use serde::{Deserialize, Serialize};

use crate::versions::{Platform, Version};

/// Everything one run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// RNG seed: same seed and config, same results byte for byte.
    #[serde(default)]
    pub seed: u64,
    /// The host kernel's version (vfio-pci, PCI/MSI, the vector domain).
    #[serde(default = "default_kernel")]
    pub kernel: Version,
    /// QEMU's version.
    #[serde(default = "default_qemu")]
    pub qemu: Version,
    /// How interrupts are simulated.
    #[serde(default)]
    pub mode: Mode,
    /// The host: CPUs, vector matrix, IOMMUs.
    #[serde(default)]
    pub host: HostConfig,
    /// The hypervisor policy.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Durations of host-side operations (the resize windows).
    #[serde(default)]
    pub timing: TimingConfig,
    /// Passed-through devices with their guest drivers.
    pub devices: Vec<DeviceConfig>,
    /// Host CPU handler model.
    #[serde(default)]
    pub handler: HandlerConfig,
    /// When the run ends.
    pub stop: StopConfig,
    /// A queue that lost an interrupt waits this long before its driver's
    /// timeout recovers it (unless a later interrupt on it arrives first).
    #[serde(default = "default_stall_timeout")]
    pub stall_timeout_ns: u64,
}

fn default_kernel() -> Version {
    crate::versions::kernel::DEFAULT
}

fn default_qemu() -> Version {
    crate::versions::qemu::DEFAULT
}

fn default_stall_timeout() -> u64 {
    30_000_000_000
}

impl SimConfig {
    /// The kernel/QEMU pair and the behaviours it has, overrides applied.
    pub fn platform(&self) -> Platform {
        Platform::new(self.kernel, self.qemu, self.host.early_enable)
    }

    /// Whether the host uses x86 reservation mode (as the kernel has it,
    /// unless the config says).
    pub fn reservation_mode(&self) -> bool {
        self.host
            .reservation_mode
            .unwrap_or_else(|| self.platform().has_reservation_mode())
    }
}

impl Mode {
    /// Every variant, in documentation order.
    pub const ALL: [Mode; 2] = [Mode::Event, Mode::Aggregated];
}

/// Per-event simulation or aggregated sampling of counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mode {
    /// Every interrupt is simulated individually.
    #[default]
    Event,
    /// Outside windows, fires are sampled as Poisson counts.
    Aggregated,
}

impl IommuKind {
    /// Every variant, in documentation order.
    pub const ALL: [IommuKind; 2] = [IommuKind::Intel, IommuKind::Amd];
}

/// Which IOMMU remaps interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IommuKind {
    /// Intel VT-d: one table of `irte_entries` per IOMMU.
    #[default]
    Intel,
    /// AMD-Vi: one table of `amd_table_size` per requester id.
    Amd,
}

/// The host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// Host CPUs, all online at start.
    pub ncpus: u32,
    /// x86 reservation mode: vectors are taken at activation. `None`: as the
    /// kernel has it (4.15+).
    pub reservation_mode: Option<bool>,
    /// `msix_capability_init` sets Enable and Function Mask before it
    /// allocates (5.14+, and stable backports). `None`: as the kernel has it.
    pub early_enable: Option<bool>,
    /// CONFIG_X86_POSTED_MSI (6.10+) moves FIRST_SYSTEM_VECTOR down by one.
    pub posted_msi: bool,
    /// IOMMU vendor.
    pub iommu: IommuKind,
    /// Number of IOMMUs; device `i` sits behind IOMMU `i % iommus`.
    pub iommus: u32,
    /// IRTEs per Intel IOMMU (power of two ≤ 65536).
    pub irte_entries: u32,
    /// Entries per AMD per-device table (128, 256, 512 or 2048).
    pub amd_table_size: u32,
    /// KVM MSI routes per VM (`KVM_MAX_IRQ_ROUTES`: 4,096): a requested
    /// vector takes one in its VM.
    pub kvm_routes_per_vm: u32,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            ncpus: 8,
            reservation_mode: None,
            early_enable: None,
            posted_msi: false,
            iommu: IommuKind::Intel,
            iommus: 1,
            irte_entries: 65_536,
            amd_table_size: 512,
            kvm_routes_per_vm: 4096,
        }
    }
}

/// The hypervisor policy and its knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Built-in policy.
    pub kind: PolicyKind,
    /// What happens when host setup fails during a resize.
    pub on_failure: FailureMode,
    /// `upfront`: vectors allocated at enable (0 = the whole table).
    pub upfront_count: u32,
    /// `upfront`: request every pre-allocated vector at enable too, as Cloud
    /// Hypervisor enables every entry on the host at attach.
    pub upfront_request_all: bool,
    /// `hypercall`: how the host answers MSIX_ENABLE.
    pub grant: Grant,
    /// `hypercall` with `grant = "n"`: the most vectors granted.
    pub grant_n: u32,
    /// `hypercall`: request every granted vector at MSIX_ENABLE (the
    /// host's `request_irq` at grant) instead of at each guest unmask.
    pub request_at_grant: bool,
    /// `ims`: where the device keeps its interrupt messages.
    pub ims_store: ImsStore,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            kind: PolicyKind::Noresize,
            on_failure: FailureMode::Qemu,
            upfront_count: 0,
            upfront_request_all: false,
            grant: Grant::All,
            grant_n: 1,
            request_at_grant: false,
            ims_store: ImsStore::Device,
        }
    }
}

/// The built-in hypervisor policies (docs/policies.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PolicyKind {
    /// QEMU on a host that reports VFIO_IRQ_INFO_NORESIZE: disable and
    /// re-enable the whole MSI-X index to add a vector.
    Noresize,
    /// Every table entry (or `upfront_count`) allocated at enable.
    Upfront,
    /// MSIX_ENABLE(minvec, maxvec) negotiated at pci_enable_msix_range.
    Hypercall,
    /// Dynamic MSI-X (Linux 6.2 / VFIO 6.5 / QEMU 8.2): per-vector adds.
    Dynamic,
    /// Interrupt Message Store.
    Ims,
}

impl PolicyKind {
    /// Every built-in policy.
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::Noresize,
        PolicyKind::Upfront,
        PolicyKind::Hypercall,
        PolicyKind::Dynamic,
        PolicyKind::Ims,
    ];

    /// The policy called `name`.
    pub fn from_name(name: &str) -> crate::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                crate::Error::InvalidArgument(format!("policy: unknown policy {name:?}"))
            })
    }

    /// The policy's name.
    pub const fn name(self) -> &'static str {
        match self {
            PolicyKind::Noresize => "noresize",
            PolicyKind::Upfront => "upfront",
            PolicyKind::Hypercall => "hypercall",
            PolicyKind::Dynamic => "dynamic",
            PolicyKind::Ims => "ims",
        }
    }
}

impl FailureMode {
    /// Every variant, in documentation order.
    pub const ALL: [FailureMode; 3] = [
        FailureMode::Kill,
        FailureMode::Qemu,
        FailureMode::FailRequest,
    ];
}

/// Host failure during a resize (the seed's #1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureMode {
    /// (a) kill the guest: well defined.
    Kill,
    /// (b) QEMU today: log, report success, every vector of the device dead.
    Qemu,
    /// (c) fail the guest's request: restore the previous vectors, the new
    /// vector stays unused.
    FailRequest,
}

impl Grant {
    /// Every variant, in documentation order.
    pub const ALL: [Grant; 3] = [Grant::All, Grant::N, Grant::Refuse];
}

/// How the host answers MSIX_ENABLE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Grant {
    /// Grant maxvec (or as many as fit, down to minvec).
    All,
    /// Grant at most `grant_n`.
    N,
    /// Refuse with an error code.
    Refuse,
}

impl ImsStore {
    /// Every variant, in documentation order.
    pub const ALL: [ImsStore; 2] = [ImsStore::Device, ImsStore::GuestRam];
}

/// Where IMS messages live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ImsStore {
    /// Device memory: trappable like an MSI-X table, per-vector setup.
    Device,
    /// Guest RAM: cannot be trapped; only a hypercall sets vectors up.
    GuestRam,
}

/// Durations of the host's steps, each at the point of the kernel's
/// sequence where it happens (docs/versions.md). A NORESIZE resize that adds
/// entry k with k vectors live: `free_irq` of each requested vector
/// (`t_free_irq`, its entry masked: W1 begins), MSI-X shutdown (Enable
/// cleared: the device-wide window W2 begins), the old vectors' descriptors
/// and IRTEs freed (`w_free` each), the ioctl round trip (`w0`), the new
/// vectors allocated (`w_alloc` each: inside W2 without early enable,
/// function-masked after Enable is set with it), Enable set (W2 ends), and
/// `request_irq` of each vector (`t_request` each: its entry unmasked, W1
/// ends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimingConfig {
    /// Fixed part of one re-enable: the VFIO ioctl round trip.
    pub w0_ns: u64,
    /// Per old vector freed after Enable is cleared (descriptor and IRTE).
    pub w_free_ns: u64,
    /// Per new vector allocated.
    pub w_alloc_ns: u64,
    /// Per host `free_irq` before MSI-X shutdown.
    pub t_free_irq_ns: u64,
    /// Per host `request_irq` after Enable is set.
    pub t_request_ns: u64,
    /// One dynamic vector add (pci_msix_alloc_irq_at).
    pub t_dynamic_ns: u64,
    /// One MSIX_ENABLE / MSIX_DISABLE hypercall.
    pub t_hypercall_ns: u64,
}

impl Default for TimingConfig {
    fn default() -> Self {
        Self {
            w0_ns: 20_000,
            w_free_ns: 500,
            w_alloc_ns: 500,
            t_free_irq_ns: 0,
            t_request_ns: 0,
            t_dynamic_ns: 5_000,
            t_hypercall_ns: 20_000,
        }
    }
}

impl Semantics {
    /// Every variant, in documentation order.
    pub const ALL: [Semantics; 4] = [
        Semantics::Edge,
        Semantics::EdgeIntx,
        Semantics::Level,
        Semantics::Pba,
    ];
}

/// What a device does with an event while MSI-X is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Semantics {
    /// Edge/event: dropped (no INTx pin or INTx disabled): `lost`.
    #[default]
    Edge,
    /// Edge with an INTx pin: signalled on INTx, which nobody handles: `intx`.
    EdgeIntx,
    /// Level/cause-latched: re-asserted after re-enable (delivered late).
    Level,
    /// PBA-compliant: latched as pending, sent on unmask (delivered late).
    Pba,
}

/// One passed-through device function and its guest driver's program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// The VM it belongs to (guest kills take down every device of a VM).
    #[serde(default)]
    pub vm: u32,
    /// MSI-X table size (1..=2048).
    pub entries: u32,
    /// Event semantics while MSI-X is disabled.
    #[serde(default)]
    pub semantics: Semantics,
    /// Poisson rate of every live vector, interrupts per second.
    #[serde(default)]
    pub rate: f64,
    /// Rate of every live vector while the driver is in its `probe` phase
    /// (`None`: the runtime rates).
    #[serde(default)]
    pub probe_rate: Option<f64>,
    /// Per-entry rate overrides `(entry, rate)`.
    #[serde(default)]
    pub rates: Vec<(u32, f64)>,
    /// The guest driver's steps.
    pub program: Vec<Step>,
    /// Start the program again after its last step.
    #[serde(default)]
    pub repeat: bool,
    /// Time of the first step.
    #[serde(default)]
    pub start_ns: u64,
    /// Request/response traffic on the entries from `from_entry` on, in
    /// place of their Poisson rates.
    #[serde(default)]
    pub closed_loop: Option<ClosedLoop>,
    /// Forged MSI writes by this device (a malicious device, docs/spoof.md).
    /// Left out of the JSON when absent, so configs without it read as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spoof: Option<SpoofConfig>,
}

/// Closed-loop (request/response) traffic: each live vector has `depth`
/// requests in flight; a request completes after an exponential latency of
/// mean `latency_ns` and its interrupt must be handled before the driver
/// issues the next one. A lost completion stalls its request until the
/// driver's timeout (NVMe `io_timeout`, a NIC's TX watchdog), which then
/// reissues it: a stale-queue episode of exactly `timeout_ns`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosedLoop {
    /// The first entry with closed-loop traffic (NVMe: 1, the I/O queues).
    #[serde(default)]
    pub from_entry: u32,
    /// Requests in flight per vector (queue depth).
    pub depth: u32,
    /// Mean device latency of one request, ns.
    pub latency_ns: u64,
    /// The driver's timeout for a request whose completion never came, ns.
    pub timeout_ns: u64,
}

/// One guest driver step: `delay_ns` after the previous step completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Delay after the previous step returned (0 = back to back).
    #[serde(default)]
    pub delay_ns: u64,
    /// What the guest does.
    pub action: Action,
}

/// A guest driver action on its device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op", from = "ActionForm")]
#[non_exhaustive]
pub enum Action {
    /// `pci_enable_msix_range(minvec, maxvec)`: negotiated with the host
    /// under `hypercall` (and `ims` in guest RAM), otherwise local.
    Negotiate {
        /// Fewest vectors the driver accepts.
        minvec: u32,
        /// Most vectors the driver wants.
        maxvec: u32,
    },
    /// The MSI-X enable sequence (Enable|Function Mask, mask all, unmask).
    Enable,
    /// First unmask of an entry: request_irq / enable_irq / CPU online.
    Unmask {
        /// Table entry.
        entry: u32,
    },
    /// The guest masks an entry (`disable_irq`, `pci_msi_mask_irq`) while
    /// its device keeps working: the source goes on firing, and QEMU latches
    /// what reaches it in its emulated PBA, one per vector, sent at the next
    /// unmask (hw/pci/msix.c `msix_notify`, `msix_handle_mask_update`).
    Mask {
        /// Table entry.
        entry: u32,
    },
    /// `free_irq` on a queue the driver tears down (CPU offline, fewer
    /// channels, a reset path): the entry is masked and its source stops.
    Free {
        /// Table entry.
        entry: u32,
    },
    /// Disable MSI-X (driver remove, pci_free_irq_vectors).
    Disable,
    /// Function Level Reset with the driver bound: the device's MSI-X
    /// capability, table and PBA return to reset state (latched events are
    /// gone: `lost`), then the host sees MSI-X disabled as for `disable`.
    Reset,
    /// Nothing: a pure delay.
    Wait,
    /// The driver enters a phase: its fires and resize requests are booked
    /// to it from here (a program starts, and starts again, in `probe`).
    Phase {
        /// The phase entered.
        phase: Phase,
    },
}

/// How an action is read: as [`Action`], but each field-less action is an
/// empty struct, so `deny_unknown_fields` refuses a field it does not take
/// (`{"op": "wait", "entry": 1}`). Serde lets extra keys through a unit variant
/// of an internally tagged enum.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", tag = "op", deny_unknown_fields)]
enum ActionForm {
    Negotiate { minvec: u32, maxvec: u32 },
    Enable {},
    Unmask { entry: u32 },
    Mask { entry: u32 },
    Free { entry: u32 },
    Disable {},
    Reset {},
    Wait {},
    Phase { phase: Phase },
}

impl From<ActionForm> for Action {
    fn from(form: ActionForm) -> Self {
        match form {
            ActionForm::Negotiate { minvec, maxvec } => Action::Negotiate { minvec, maxvec },
            ActionForm::Enable {} => Action::Enable,
            ActionForm::Unmask { entry } => Action::Unmask { entry },
            ActionForm::Mask { entry } => Action::Mask { entry },
            ActionForm::Free { entry } => Action::Free { entry },
            ActionForm::Disable {} => Action::Disable,
            ActionForm::Reset {} => Action::Reset,
            ActionForm::Wait {} => Action::Wait,
            ActionForm::Phase { phase } => Action::Phase { phase },
        }
    }
}

/// Where a driver is in its life: the books are kept per phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// The driver initialising (probe, reload, VM boot): the case Alex
    /// Williamson calls low-risk in the seed thread.
    #[default]
    Probe,
    /// The device in production.
    Runtime,
}

impl Phase {
    /// Every phase, in reporting order.
    pub const ALL: [Phase; 2] = [Phase::Probe, Phase::Runtime];

    /// The phase's name in results.
    pub const fn name(self) -> &'static str {
        match self {
            Phase::Probe => "probe",
            Phase::Runtime => "runtime",
        }
    }
}

/// The host CPU handler model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandlerConfig {
    /// Service time per interrupt; `None` leaves deliveries queued for the
    /// embedding program to drain.
    pub service_ns: Option<u64>,
    /// Capacity of each CPU's delivery queue; an interrupt arriving at a full
    /// queue merges into the CPU's pending IRR bit (`coalesced`).
    pub queue_capacity: usize,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        Self {
            service_ns: Some(200),
            queue_capacity: 4096,
        }
    }
}

/// When a run ends (the first condition reached).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopConfig {
    /// Simulated time limit.
    #[serde(default)]
    pub max_time_ns: Option<u64>,
    /// End once this many resize windows have closed.
    #[serde(default)]
    pub max_resizes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> &'static str {
        r#"{"devices":[{"entries":4,"rate":10.0,"program":[{"action":{"op":"enable"}},{"delay_ns":5,"action":{"op":"unmask","entry":0}}]}],"stop":{"max_time_ns":10000000}}"#
    }

    #[test]
    fn parses_with_defaults() {
        let c = SimConfig::from_json(minimal()).unwrap();
        assert_eq!(c.host.ncpus, 8);
        assert_eq!(c.policy.kind, PolicyKind::Noresize);
        assert_eq!(c.devices[0].program.len(), 2);
        assert_eq!(c.devices[0].program[1].action, Action::Unmask { entry: 0 });
    }

    #[test]
    fn an_action_refuses_a_field_it_does_not_take() {
        for op in ["enable", "disable", "reset", "wait"] {
            let good = format!(r#"{{"op":"{op}"}}"#);
            let a = Action::from_json(&good).unwrap();
            assert_eq!(serde_json::to_string(&a).unwrap(), good, "round trip");
            let e = Action::from_json(&format!(r#"{{"op":"{op}","entry":1}}"#)).unwrap_err();
            assert!(e.to_string().contains("unknown field `entry`"), "{op}: {e}");
        }
        let e = Action::from_json(r#"{"op":"unmask","entry":1,"vector":2}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `vector`"), "{e}");
        let e = Action::from_json(r#"{"op":"jump"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown variant `jump`"), "{e}");
    }

    #[test]
    fn configs_that_could_never_end_are_refused() {
        // A repeating program with no delay, under zero host timings.
        let bad = minimal()
            .replace("\"delay_ns\":5,", "")
            .replace("\"program\"", "\"repeat\":true,\"program\"");
        let e = SimConfig::from_json(&bad).unwrap_err().to_string();
        assert!(e.contains("devices[0].program"), "{e}");
        // A repeating program with only a resize bound.
        let bad = minimal()
            .replace("\"program\"", "\"repeat\":true,\"program\"")
            .replace(
                "\"stop\":{\"max_time_ns\":10000000}",
                "\"stop\":{\"max_resizes\":5}",
            );
        let e = SimConfig::from_json(&bad).unwrap_err().to_string();
        assert!(e.contains("stop.max_time_ns"), "{e}");
        // A rate no device can reach.
        let bad = minimal().replace("\"rate\":10.0", "\"rate\":1e12");
        let e = SimConfig::from_json(&bad).unwrap_err().to_string();
        assert!(e.contains("devices[0].rate"), "{e}");
    }

    #[test]
    fn contradictory_versions_are_refused_in_one_line() {
        let with = |extra: &str| minimal().replacen('{', &format!("{{{extra},"), 1);
        let e = SimConfig::from_json(&with(r#""qemu":"7.2","policy":{"kind":"dynamic"}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("policy.kind: dynamic needs QEMU 8.2+"), "{e}");
        let e = SimConfig::from_json(&with(r#""kernel":"6.1","policy":{"kind":"dynamic"}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("host kernel 6.5+"), "{e}");
        let e = SimConfig::from_json(&with(r#""kernel":"4.14","host":{"reservation_mode":true}"#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("host.reservation_mode: kernel 4.14 has no reservation mode"),
            "{e}"
        );
        let e = SimConfig::from_json(&with(r#""kernel":"6.x""#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("kernel: version: expected major.minor"), "{e}");
        // Without an explicit value, the kernel decides.
        let c = SimConfig::from_json(&with(r#""kernel":"4.14""#)).unwrap();
        assert!(!c.reservation_mode() && !c.platform().early_enable);
        let c =
            SimConfig::from_json(&with(r#""kernel":"5.10","host":{"early_enable":true}"#)).unwrap();
        assert!(c.reservation_mode() && c.platform().early_enable);
    }

    #[test]
    fn errors_name_the_field() {
        let bad = minimal().replace("\"entries\":4", "\"entries\":4096");
        let e = SimConfig::from_json(&bad).unwrap_err().to_string();
        assert!(e.contains("devices[0].entries"), "{e}");
        let bad = minimal().replace("\"rate\":10.0", "\"rate\":-1.0");
        let e = SimConfig::from_json(&bad).unwrap_err().to_string();
        assert!(e.contains("devices[0].rate"), "{e}");
        let bad = minimal().replace("\"entry\":0", "\"entry\":9");
        let e = SimConfig::from_json(&bad).unwrap_err().to_string();
        assert!(e.contains("devices[0].program[1]"), "{e}");
        let bad = minimal().replace("\"stop\":{\"max_time_ns\":10000000}", "\"stop\":{}");
        let e = SimConfig::from_json(&bad).unwrap_err().to_string();
        assert!(e.contains("stop"), "{e}");
        let bad = minimal().replace("\"devices\"", "\"bogus\":1,\"devices\"");
        let e = SimConfig::from_json(&bad).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
    }
}
