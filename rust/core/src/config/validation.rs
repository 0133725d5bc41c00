//! The one validator of [`SimConfig`]: every limit, and every rule that ties
//! fields together. The first bad field is named in the error, `path: why`.

use serde::de::DeserializeOwned;

use super::{Action, DeviceConfig, SimConfig, TimingConfig};
use crate::error::{Error, Result};

/// Highest interrupt rate of one vector: 1e9/s, beyond any PCIe device.
pub const MAX_RATE: f64 = 1e9;

/// Most devices in one run: each gets its own requester id (bus 1..=255,
/// 256 functions per bus).
pub const MAX_DEVICES: usize = 65_280;

/// Most MSI-X table entries over all devices of one run: 2^25, past the
/// 10,000 × 2,048-entry host of the memory benchmark. What they cost is
/// bounded by the memory estimate (`config/memory.rs`).
pub const MAX_TABLE_ENTRIES: u64 = 1 << 25;

/// Longest handler service time: 100 s an interrupt, far past any real
/// handler. It keeps the handler's time in range: a full queue of the
/// largest capacity (2^24) is then at most 1.7e18 ns of work, so the time
/// the handler is busy until stays below 2^64 ns from any time of a run
/// (below 2^63 ns).
pub const MAX_SERVICE_NS: u64 = 100_000_000_000;

/// Largest table of one device (PCIe Base Spec: Table Size is 11 bits).
pub(super) const MAX_ENTRIES: u32 = 2048;

fn field_err(field: &str, msg: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("{field}: {msg}"))
}

/// The longest host time a resize of a table of `entries` can take under
/// `timing`: `w0 + (t_free_irq + w_free + w_alloc)·entries` (saturating), a
/// bound on its windows whatever the kernel.
pub fn longest_window_ns(timing: &TimingConfig, entries: u32) -> u64 {
    let per = timing
        .t_free_irq_ns
        .saturating_add(timing.w_free_ns)
        .saturating_add(timing.w_alloc_ns);
    timing
        .w0_ns
        .saturating_add(per.saturating_mul(u64::from(entries)))
}

/// Parse JSON text into `T`, refusing unknown keys and wrong types. The
/// error names the bad field: `{root}: why` at the top level, else
/// `{prefix}{path}: why`.
fn parse_json_at<T: DeserializeOwned>(text: &str, root: &str, prefix: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        // serde_json appends "at line L column C" of the one-line JSON;
        // the field path says more.
        let msg = e.into_inner().to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        if path == "." || path.is_empty() {
            Error::InvalidArgument(format!("{root}: {msg}"))
        } else {
            Error::InvalidArgument(format!("{prefix}{path}: {msg}"))
        }
    })
}

impl Action {
    /// Parse one guest action from its JSON form, a program step's `action`
    /// (`{"op": "unmask", "entry": 3}`). Its fit to a device is checked where
    /// it is used.
    pub fn from_json(text: &str) -> Result<Self> {
        parse_json_at(text, "action", "action.")
    }
}

impl SimConfig {
    /// Parse a JSON configuration and validate it.
    pub fn from_json(text: &str) -> Result<Self> {
        let cfg = Self::parse_json(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parse a JSON configuration without validating it (the engine
    /// validates when it is built). Unknown keys and wrong types are refused
    /// here, naming the field's path.
    pub fn parse_json(text: &str) -> Result<Self> {
        parse_json_at(text, "config", "")
    }

    /// The configuration as JSON, every field present (defaults filled in).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::InvalidArgument(format!("config: {e}")))
    }

    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        self.validate_host()?;
        if self.devices.is_empty() {
            return Err(field_err("devices", "at least one device is needed"));
        }
        if self.devices.len() > MAX_DEVICES {
            return Err(field_err(
                "devices",
                format!(
                    "at most {MAX_DEVICES} devices (one requester id each), got {}",
                    self.devices.len()
                ),
            ));
        }
        let total: u64 = self.devices.iter().map(|d| u64::from(d.entries)).sum();
        if total > MAX_TABLE_ENTRIES {
            return Err(field_err(
                "devices",
                format!("at most {MAX_TABLE_ENTRIES} table entries in one run, got {total}"),
            ));
        }
        for (i, d) in self.devices.iter().enumerate() {
            validate_device(d, &format!("devices[{i}]"))?;
            if let Some(s) = &d.spoof {
                self.validate_spoof(i, s)?;
            }
        }
        if self.policy.upfront_count > MAX_ENTRIES {
            return Err(field_err(
                "policy.upfront_count",
                format!(
                    "must be 0..={MAX_ENTRIES}, got {}",
                    self.policy.upfront_count
                ),
            ));
        }
        self.validate_versions()?;
        if self.handler.queue_capacity == 0 || self.handler.queue_capacity > (1 << 24) {
            return Err(field_err(
                "handler.queue_capacity",
                format!("must be 1..=16777216, got {}", self.handler.queue_capacity),
            ));
        }
        if let Some(service) = self.handler.service_ns {
            if service > MAX_SERVICE_NS {
                return Err(field_err(
                    "handler.service_ns",
                    format!("must be 0..={MAX_SERVICE_NS} ns (100 s), got {service}"),
                ));
            }
        }
        if self.stall_timeout_ns == 0 {
            return Err(field_err("stall_timeout_ns", "must be > 0"));
        }
        self.validate_stop()?;
        self.validate_memory()
    }

    /// A forger's victims are other devices of this run, and its writes need
    /// a time limit: they never stop on their own.
    fn validate_spoof(&self, i: usize, s: &super::SpoofConfig) -> Result<()> {
        let f = format!("devices[{i}].spoof");
        if s.victims.is_empty() {
            return Err(field_err(
                &format!("{f}.victims"),
                "name at least one device",
            ));
        }
        for (j, &v) in s.victims.iter().enumerate() {
            if v as usize >= self.devices.len() || v as usize == i {
                return Err(field_err(
                    &format!("{f}.victims[{j}]"),
                    format!(
                        "must be another device, 0..{} but not {i}, got {v}",
                        self.devices.len()
                    ),
                ));
            }
        }
        if s.kinds.is_empty() {
            return Err(field_err(&format!("{f}.kinds"), "name at least one kind"));
        }
        validate_rate(&format!("{f}.rate"), s.rate)?;
        if s.rate <= 0.0 {
            return Err(field_err(&format!("{f}.rate"), "must be > 0"));
        }
        if self.stop.max_time_ns.is_none() {
            return Err(field_err(
                "stop.max_time_ns",
                "required when a device spoofs (its writes bound no run)",
            ));
        }
        Ok(())
    }

    fn validate_host(&self) -> Result<()> {
        let h = &self.host;
        if !(1..=8192).contains(&h.ncpus) {
            return Err(field_err(
                "host.ncpus",
                format!("must be 1..=8192, got {}", h.ncpus),
            ));
        }
        if !(1..=64).contains(&h.iommus) {
            return Err(field_err(
                "host.iommus",
                format!("must be 1..=64, got {}", h.iommus),
            ));
        }
        if h.irte_entries == 0 || h.irte_entries > 65_536 || !h.irte_entries.is_power_of_two() {
            return Err(field_err(
                "host.irte_entries",
                format!("must be a power of two 1..=65536, got {}", h.irte_entries),
            ));
        }
        if h.kvm_routes_per_vm == 0 {
            return Err(field_err("host.kvm_routes_per_vm", "must be > 0"));
        }
        if ![128, 256, 512, 2048].contains(&h.amd_table_size) {
            return Err(field_err(
                "host.amd_table_size",
                format!("must be 128, 256, 512 or 2048, got {}", h.amd_table_size),
            ));
        }
        Ok(())
    }

    /// Behaviours the kernel/QEMU pair does not have.
    fn validate_versions(&self) -> Result<()> {
        use super::{ImsStore, PolicyKind};
        let p = self.platform();
        if self.host.reservation_mode == Some(true) && !p.has_reservation_mode() {
            return Err(field_err(
                "host.reservation_mode",
                format!(
                    "kernel {} has no reservation mode (4.15+); leave it unset or false",
                    self.kernel
                ),
            ));
        }
        let dynamic = match self.policy.kind {
            PolicyKind::Dynamic => Some("dynamic"),
            PolicyKind::Ims if self.policy.ims_store == ImsStore::Device => {
                Some("ims with a device store")
            }
            _ => None,
        };
        if let Some(what) = dynamic {
            if !p.has_vfio_dynamic_msix() {
                return Err(field_err(
                    "policy.kind",
                    format!(
                        "{what} needs VFIO dynamic MSI-X (host kernel 6.5+), got kernel {}",
                        self.kernel
                    ),
                ));
            }
            if !p.qemu_honours_noresize() {
                return Err(field_err(
                    "policy.kind",
                    format!(
                        "{what} needs QEMU 8.2+ (earlier QEMU disables and re-enables to grow \
                         MSI-X), got qemu {}",
                        self.qemu
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_stop(&self) -> Result<()> {
        let stop = &self.stop;
        if stop.max_time_ns.is_none() && stop.max_resizes.is_none() {
            return Err(field_err("stop", "give max_time_ns, max_resizes or both"));
        }
        if stop.max_resizes == Some(0) {
            return Err(field_err("stop.max_resizes", "must be ≥ 1, got 0"));
        }
        let Some(max_time) = stop.max_time_ns else {
            if self.devices.iter().any(|d| d.repeat) {
                return Err(field_err(
                    "stop.max_time_ns",
                    "required when a program repeats (it bounds the run)",
                ));
            }
            return Ok(());
        };
        // A run must outlast the longest resize window it can open (this also
        // refuses 0).
        let biggest = self.devices.iter().map(|d| d.entries).max().unwrap_or(0);
        let window = longest_window_ns(&self.timing, biggest);
        if max_time <= window {
            return Err(field_err(
                "stop.max_time_ns",
                format!(
                    "the run ({max_time} ns) must be longer than the longest resize \
                     (w0 + (t_free_irq + w_free + w_alloc)·{biggest} = {window} ns)"
                ),
            ));
        }
        Ok(())
    }
}

fn validate_rate(field: &str, rate: f64) -> Result<()> {
    if !rate.is_finite() || !(0.0..=MAX_RATE).contains(&rate) {
        return Err(field_err(
            field,
            format!("must be a rate in 0..=1e9 per second, got {rate}"),
        ));
    }
    Ok(())
}

fn validate_device(d: &DeviceConfig, f: &str) -> Result<()> {
    if !(1..=MAX_ENTRIES).contains(&d.entries) {
        return Err(field_err(
            &format!("{f}.entries"),
            format!("must be 1..={MAX_ENTRIES}, got {}", d.entries),
        ));
    }
    validate_rate(&format!("{f}.rate"), d.rate)?;
    if let Some(r) = d.probe_rate {
        validate_rate(&format!("{f}.probe_rate"), r)?;
    }
    for (j, (e, r)) in d.rates.iter().enumerate() {
        let g = format!("{f}.rates[{j}]");
        if *e >= d.entries {
            return Err(field_err(
                &g,
                format!("entry {e} is past the table of {}", d.entries),
            ));
        }
        validate_rate(&g, *r)?;
    }
    if let Some(c) = &d.closed_loop {
        let g = format!("{f}.closed_loop");
        if c.from_entry >= d.entries {
            return Err(field_err(
                &format!("{g}.from_entry"),
                format!("entry {} is past the table of {}", c.from_entry, d.entries),
            ));
        }
        if !(1..=65_536).contains(&c.depth) {
            return Err(field_err(
                &format!("{g}.depth"),
                format!("must be 1..=65536, got {}", c.depth),
            ));
        }
        if c.latency_ns == 0 {
            return Err(field_err(&format!("{g}.latency_ns"), "must be > 0"));
        }
        if c.timeout_ns == 0 {
            return Err(field_err(&format!("{g}.timeout_ns"), "must be > 0"));
        }
    }
    if d.repeat && !d.program.is_empty() && d.program.iter().all(|s| s.delay_ns == 0) {
        // Host steps may take no time (zero timings): a repeating program
        // with no delay could loop forever at one instant.
        return Err(field_err(
            &format!("{f}.program"),
            "a repeating program needs a step with delay_ns > 0",
        ));
    }
    for (j, s) in d.program.iter().enumerate() {
        check_action(&s.action, d.entries)
            .map_err(|why| field_err(&format!("{f}.program[{j}]"), why))?;
    }
    Ok(())
}

/// Whether a guest action fits a table of `entries`: the one check of a
/// program step's action and of an action given at run time
/// ([`crate::engine::Engine::act`]). `Err` says why not.
pub(crate) fn check_action(action: &Action, entries: u32) -> std::result::Result<(), String> {
    match *action {
        Action::Unmask { entry } | Action::Mask { entry } | Action::Free { entry }
            if entry >= entries =>
        {
            Err(format!("entry {entry} is past the table of {entries}"))
        }
        Action::Negotiate { minvec, maxvec }
            if minvec == 0 || minvec > maxvec || maxvec > entries =>
        {
            Err(format!(
                "need 1 ≤ minvec ≤ maxvec ≤ {entries}, got {minvec}..{maxvec}"
            ))
        }
        _ => Ok(()),
    }
}
