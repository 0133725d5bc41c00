//! Building a [`SimConfig`] in Rust: start from the defaults, change what the
//! run needs, validate once in [`SimConfigBuilder::build`].

use super::{
    Action, DeviceConfig, FailureMode, HandlerConfig, HostConfig, Mode, PolicyConfig, PolicyKind,
    Semantics, SimConfig, Step, StopConfig, TimingConfig,
};
use crate::error::Result;

/// A [`SimConfig`] under construction (see [`SimConfig::builder`]).
#[derive(Debug, Clone)]
pub struct SimConfigBuilder {
    cfg: SimConfig,
}

impl SimConfig {
    /// A builder starting from every default, with no device and no stop
    /// condition yet.
    pub fn builder() -> SimConfigBuilder {
        SimConfigBuilder {
            cfg: SimConfig {
                seed: 0,
                kernel: crate::versions::kernel::DEFAULT,
                qemu: crate::versions::qemu::DEFAULT,
                mode: Mode::default(),
                host: HostConfig::default(),
                policy: PolicyConfig::default(),
                timing: TimingConfig::default(),
                devices: Vec::new(),
                handler: HandlerConfig::default(),
                stop: StopConfig::default(),
                stall_timeout_ns: super::default_stall_timeout(),
            },
        }
    }
}

impl SimConfigBuilder {
    /// RNG seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.cfg.seed = seed;
        self
    }
    /// The host kernel and QEMU versions.
    pub fn versions(
        mut self,
        kernel: crate::versions::Version,
        qemu: crate::versions::Version,
    ) -> Self {
        self.cfg.kernel = kernel;
        self.cfg.qemu = qemu;
        self
    }
    /// Per-event or aggregated simulation.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.cfg.mode = mode;
        self
    }
    /// The whole host.
    pub fn host(mut self, host: HostConfig) -> Self {
        self.cfg.host = host;
        self
    }
    /// Change the host in place.
    pub fn with_host(mut self, f: impl FnOnce(&mut HostConfig)) -> Self {
        f(&mut self.cfg.host);
        self
    }
    /// The built-in policy.
    pub fn policy(mut self, kind: PolicyKind) -> Self {
        self.cfg.policy.kind = kind;
        self
    }
    /// What a host failure does.
    pub fn on_failure(mut self, mode: FailureMode) -> Self {
        self.cfg.policy.on_failure = mode;
        self
    }
    /// Change the policy's knobs in place.
    pub fn with_policy(mut self, f: impl FnOnce(&mut PolicyConfig)) -> Self {
        f(&mut self.cfg.policy);
        self
    }
    /// Change the host operation durations in place.
    pub fn with_timing(mut self, f: impl FnOnce(&mut TimingConfig)) -> Self {
        f(&mut self.cfg.timing);
        self
    }
    /// The CPU handler's service time (`None`: deliveries stay queued).
    pub fn service_ns(mut self, service: Option<u64>) -> Self {
        self.cfg.handler.service_ns = service;
        self
    }
    /// Capacity of each CPU's delivery queue.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.cfg.handler.queue_capacity = capacity;
        self
    }
    /// Add one device.
    pub fn device(mut self, device: DeviceConfig) -> Self {
        self.cfg.devices.push(device);
        self
    }
    /// Add devices.
    pub fn devices(mut self, devices: impl IntoIterator<Item = DeviceConfig>) -> Self {
        self.cfg.devices.extend(devices);
        self
    }
    /// Stop at this simulated time.
    pub fn max_time_ns(mut self, t: u64) -> Self {
        self.cfg.stop.max_time_ns = Some(t);
        self
    }
    /// Stop once this many resize requests completed.
    pub fn max_resizes(mut self, n: u64) -> Self {
        self.cfg.stop.max_resizes = Some(n);
        self
    }
    /// A lost interrupt's driver timeout.
    pub fn stall_timeout_ns(mut self, t: u64) -> Self {
        self.cfg.stall_timeout_ns = t;
        self
    }
    /// The configuration, validated.
    pub fn build(self) -> Result<SimConfig> {
        self.cfg.validate()?;
        Ok(self.cfg)
    }
    /// The configuration as it stands, not validated (the engine validates).
    pub fn into_unchecked(self) -> SimConfig {
        self.cfg
    }
}

impl DeviceConfig {
    /// A device with `entries` table entries in VM 0: edge semantics, no
    /// traffic, an empty program that runs once from time 0.
    pub fn new(entries: u32) -> Self {
        Self {
            vm: 0,
            entries,
            semantics: Semantics::default(),
            rate: 0.0,
            probe_rate: None,
            rates: Vec::new(),
            program: Vec::new(),
            repeat: false,
            start_ns: 0,
            closed_loop: None,
            spoof: None,
        }
    }
    /// The VM it belongs to.
    pub fn vm(mut self, vm: u32) -> Self {
        self.vm = vm;
        self
    }
    /// Events while MSI-X is disabled.
    pub fn semantics(mut self, s: Semantics) -> Self {
        self.semantics = s;
        self
    }
    /// Poisson rate of every live vector.
    pub fn rate(mut self, rate: f64) -> Self {
        self.rate = rate;
        self
    }
    /// Rate of every live vector during the probe phase.
    pub fn probe_rate(mut self, rate: f64) -> Self {
        self.probe_rate = Some(rate);
        self
    }
    /// Per-entry rate overrides `(entry, rate)`.
    pub fn rates(mut self, rates: Vec<(u32, f64)>) -> Self {
        self.rates = rates;
        self
    }
    /// The guest driver's steps.
    pub fn program(mut self, program: Vec<Step>) -> Self {
        self.program = program;
        self
    }
    /// Start the program again after its last step.
    pub fn repeat(mut self, repeat: bool) -> Self {
        self.repeat = repeat;
        self
    }
    /// Time of the first step.
    pub fn start_ns(mut self, t: u64) -> Self {
        self.start_ns = t;
        self
    }
    /// Forged writes by this device.
    pub fn spoof(mut self, spoof: super::SpoofConfig) -> Self {
        self.spoof = Some(spoof);
        self
    }
}

impl Step {
    /// `action` right after the previous step.
    pub fn now(action: Action) -> Self {
        Self {
            delay_ns: 0,
            action,
        }
    }
    /// `action` `delay_ns` after the previous step.
    pub fn after(delay_ns: u64, action: Action) -> Self {
        Self { delay_ns, action }
    }
}
