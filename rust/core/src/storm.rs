//! The canonical resize storm — the one definition the CLI, the benchmarks,
//! the examples and the tests all run (docs/storm.md).
//!
//! D devices, each its own VM, enable MSI-X and unmask entries 0..T−1 in
//! ascending order (the first `init` back to back, the rest `gap` apart),
//! disable one `gap` later and start again; every live vector fires at
//! `rate`. Under `noresize` each unmask of a new entry k is a resize whose
//! device-wide window lasts `w0 + w1·(k+1)`, during which the k live vectors
//! lose every fire: the closed form [`Storm::closed_form_lost`].

use serde::{Deserialize, Serialize};

use crate::config::{
    Action, DeviceConfig, PolicyKind, Semantics, SimConfig, SimConfigBuilder, Step,
};
use crate::error::{Error, Result};

/// The storm's parameters (times in ns, rates per second).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storm {
    /// Devices (D), each its own VM.
    pub devices: u32,
    /// MSI-X table entries per device (T).
    pub table: u32,
    /// Entries unmasked back to back at the start of a cycle.
    pub init: u32,
    /// Time between later unmasks, and before the disable.
    pub gap_ns: u64,
    /// Poisson rate of every live vector.
    pub rate: f64,
    /// Resize window W2: fixed part.
    pub w0_ns: u64,
    /// Resize window W2: per vector enabled again.
    pub w1_ns: u64,
    /// Device events while MSI-X is disabled.
    pub semantics: Semantics,
    /// Host CPUs: 16×64 vectors at up to 20 M/s keep 1 µs handlers at most
    /// 64 % busy on 32 CPUs.
    pub ncpus: u32,
    /// CPU handler service time per interrupt.
    pub service_ns: u64,
}

impl Default for Storm {
    fn default() -> Self {
        Self {
            devices: 16,
            table: 64,
            init: 4,
            gap_ns: 1_000_000,
            rate: 20_000.0,
            w0_ns: 20_000,
            w1_ns: 500,
            semantics: Semantics::Edge,
            ncpus: 32,
            service_ns: 1_000,
        }
    }
}

impl Storm {
    /// Parameters from JSON (missing fields at their defaults).
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::InvalidArgument(format!("storm: {e}")))
    }

    /// The parameters as JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::InvalidArgument(format!("storm: {e}")))
    }

    /// One device's guest program: negotiate, enable, unmask 0..T−1, disable.
    pub fn program(&self) -> Vec<Step> {
        let mut program = vec![
            Step::now(Action::Negotiate {
                minvec: 1,
                maxvec: self.table,
            }),
            Step::now(Action::Enable),
        ];
        program.extend((0..self.table).map(|k| {
            let delay = if k < self.init { 0 } else { self.gap_ns };
            Step::after(delay, Action::Unmask { entry: k })
        }));
        program.push(Step::after(self.gap_ns, Action::Disable));
        program
    }

    /// The storm under `policy`, with no stop condition yet (add
    /// `max_resizes` and a time bound, then build).
    pub fn config(&self, policy: PolicyKind) -> SimConfigBuilder {
        let program = self.program();
        SimConfig::builder()
            .with_host(|h| h.ncpus = self.ncpus)
            .policy(policy)
            .with_timing(|t| {
                t.w0_ns = self.w0_ns;
                t.w1_ns = self.w1_ns;
            })
            .service_ns(Some(self.service_ns))
            .devices((0..self.devices).map(|vm| {
                DeviceConfig::new(self.table)
                    .vm(vm)
                    .semantics(self.semantics)
                    .rate(self.rate)
                    .program(program.clone())
                    .repeat(true)
            }))
    }

    /// The entry `k` of every resize whose window has closed when a run stops
    /// at `resizes` completed requests, in order. The D devices run the same
    /// program from t = 0, so they complete requests in lockstep, in groups
    /// of D at one instant: group g is entry `g mod T` on every device. When
    /// the N-th request completes every window of its group has closed, so
    /// the list holds ⌈N / D⌉ whole groups.
    pub fn resize_entries(&self, resizes: u64) -> impl Iterator<Item = u32> + '_ {
        let d = u64::from(self.devices.max(1));
        let groups = resizes.div_ceil(d);
        (0..groups).flat_map(move |g| {
            let k = (g % u64::from(self.table.max(1))) as u32;
            std::iter::repeat_n(k, d as usize)
        })
    }

    /// Expected interrupts lost by a `noresize` run with edge semantics to
    /// `resizes` requests: `rate · Σ k·(w0 + w1·(k+1))` over
    /// [`Storm::resize_entries`] (the k live vectors lose every fire in the
    /// device-wide window of resize k; W1 is zero in the storm).
    pub fn closed_form_lost(&self, resizes: u64) -> f64 {
        // Seconds by division (correctly rounded, as a user would write them).
        let (w0, w1) = (self.w0_ns as f64 / 1e9, self.w1_ns as f64 / 1e9);
        let sum: f64 = self
            .resize_entries(resizes)
            .map(|k| {
                let k = f64::from(k);
                k * (w0 + w1 * (k + 1.0))
            })
            .sum();
        self.rate * sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_storm_is_valid_and_its_program_has_every_entry() {
        let s = Storm::default();
        let cfg = s
            .config(PolicyKind::Noresize)
            .max_resizes(100)
            .max_time_ns(1_000_000_000)
            .build();
        assert!(cfg.is_ok(), "{cfg:?}");
        let p = s.program();
        assert_eq!(p.len(), 64 + 3);
        assert_eq!(p[2].delay_ns, 0);
        assert_eq!(p[6].delay_ns, 1_000_000);
    }

    #[test]
    fn resize_entries_count_whole_groups() {
        let s = Storm::default();
        let e: Vec<u32> = s.resize_entries(17).collect();
        assert_eq!(e.len(), 32);
        assert!(e[..16].iter().all(|&k| k == 0) && e[16..].iter().all(|&k| k == 1));
        assert_eq!(s.resize_entries(16 * 64 + 1).last(), Some(0));
    }

    #[test]
    fn closed_form_is_about_26_lost_per_resize() {
        let s = Storm::default();
        let lost = s.closed_form_lost(20_480);
        // 20 whole cycles: 16 · 20 · Σ_{k<64} k(20 µs + 0.5 µs (k+1)) · 20,000/s.
        let per_cycle: f64 = (0..64)
            .map(|k| f64::from(k) * (20e-6 + 0.5e-6 * f64::from(k + 1)))
            .sum();
        let want = 20_000.0 * 16.0 * 20.0 * per_cycle;
        assert!((lost - want).abs() < 1e-6 * want, "{lost} vs {want}");
        assert!((lost / 20_480.0 - 26.25).abs() < 0.1);
    }
}
