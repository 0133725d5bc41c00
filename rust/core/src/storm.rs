//! The canonical resize storm — the one definition the CLI, the benchmarks,
//! the examples and the tests all run (docs/storm.md).
//!
//! D devices, each its own VM, enable MSI-X and unmask entries 0..T−1 in
//! ascending order (the first `init` back to back, the rest `gap` apart),
//! disable one `gap` later and start again; every live vector fires at
//! `rate`. Under `noresize` each unmask of a new entry k is a resize whose
//! device-wide window lasts `W2(k) = w0 + w_free·k` with early enable and
//! `w0 + w_free·k + w_alloc·(k+1)` without, during which the k live vectors
//! lose every fire: the closed form [`Storm::closed_form_lost`]. Every other
//! host step costs 0 in the storm.

use serde::{Deserialize, Serialize};

use crate::config::{
    Action, DeviceConfig, Phase, PolicyKind, Semantics, SimConfig, SimConfigBuilder, Step,
};
use crate::error::{Error, Result};
use crate::versions::{Platform, Version};

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
    /// Resize window W2: fixed part (the ioctl round trip).
    pub w0_ns: u64,
    /// Per old vector freed inside W2.
    pub w_free_ns: u64,
    /// Per new vector allocated (inside W2 without early enable).
    pub w_alloc_ns: u64,
    /// The host kernel.
    pub kernel: Version,
    /// QEMU.
    pub qemu: Version,
    /// Early enable, when not as the kernel has it.
    pub early_enable: Option<bool>,
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
            w_free_ns: 500,
            w_alloc_ns: 500,
            kernel: crate::versions::kernel::DEFAULT,
            qemu: crate::versions::qemu::DEFAULT,
            early_enable: None,
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

    /// One device's guest program: negotiate, enable, unmask 0..init−1 (the
    /// probe phase), unmask init..T−1 (runtime), disable.
    pub fn program(&self) -> Vec<Step> {
        let mut program = vec![
            Step::now(Action::Negotiate {
                minvec: 1,
                maxvec: self.table,
            }),
            Step::now(Action::Enable),
        ];
        let init = self.init.min(self.table);
        program.extend((0..init).map(|k| Step::now(Action::Unmask { entry: k })));
        // The first `init` entries come up at probe, back to back; the rest at
        // runtime, `gap` apart.
        program.push(Step::now(Action::Phase {
            phase: Phase::Runtime,
        }));
        program.extend(
            (init..self.table).map(|k| Step::after(self.gap_ns, Action::Unmask { entry: k })),
        );
        program.push(Step::after(self.gap_ns, Action::Disable));
        program
    }

    /// The storm under `policy`, with no stop condition yet (add
    /// `max_resizes` and a time bound, then build).
    pub fn config(&self, policy: PolicyKind) -> SimConfigBuilder {
        let program = self.program();
        SimConfig::builder()
            .versions(self.kernel, self.qemu)
            .with_host(|h| {
                h.ncpus = self.ncpus;
                h.early_enable = self.early_enable;
            })
            .policy(policy)
            .with_timing(|t| {
                t.w0_ns = self.w0_ns;
                t.w_free_ns = self.w_free_ns;
                t.w_alloc_ns = self.w_alloc_ns;
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

    /// The kernel/QEMU pair.
    pub fn platform(&self) -> Platform {
        Platform::new(self.kernel, self.qemu, self.early_enable)
    }

    /// The entry `k` of every resize whose window has closed when a run stops
    /// at `resizes` completed requests, in order. The D devices run the same
    /// program from t = 0, so they complete requests in lockstep, in groups
    /// of D at one instant: group g is the g-th resizing entry of the cycle
    /// (0..T−1, or 1..T−1 when QEMU pre-requests vector 0) on every device.
    /// When the N-th request completes every window of its group has closed,
    /// so the list holds ⌈N / D⌉ whole groups.
    pub fn resize_entries(&self, resizes: u64) -> impl Iterator<Item = u32> + '_ {
        let d = u64::from(self.devices.max(1));
        let first = self.platform().first_resizing_entry().min(self.table);
        let per_cycle = u64::from((self.table - first).max(1));
        let groups = resizes.div_ceil(d);
        (0..groups).flat_map(move |g| {
            let k = first + (g % per_cycle) as u32;
            std::iter::repeat_n(k, d as usize)
        })
    }

    /// The device-wide window of the resize that adds entry `k` (k vectors
    /// live), seconds.
    pub fn window_s(&self, k: u32) -> f64 {
        // Seconds by division (correctly rounded, as a user would write them).
        let (w0, w_free, w_alloc) = (
            self.w0_ns as f64 / 1e9,
            self.w_free_ns as f64 / 1e9,
            self.w_alloc_ns as f64 / 1e9,
        );
        let k = f64::from(k);
        let alloc = if self.platform().early_enable {
            0.0
        } else {
            w_alloc * (k + 1.0)
        };
        w0 + w_free * k + alloc
    }

    /// Expected interrupts lost by a `noresize` run with edge semantics to
    /// `resizes` requests: `rate · Σ k·W2(k)` over [`Storm::resize_entries`]
    /// (the k live vectors lose every fire in the device-wide window of
    /// resize k).
    ///
    /// Up to [`CLOSED_FORM_TERMS`] requests the terms are summed one by one
    /// (the published figures); past that, whole cycles of entries are
    /// multiplied out, so any count takes O(table) time (a loop over 2^64
    /// requests never returned).
    pub fn closed_form_lost(&self, resizes: u64) -> f64 {
        let term = |k: u32| f64::from(k) * self.window_s(k);
        if resizes <= CLOSED_FORM_TERMS {
            let sum: f64 = self.resize_entries(resizes).map(term).sum();
            return self.rate * sum;
        }
        // resize_entries: groups of `d` equal entries, cycling from `first`.
        let d = f64::from(self.devices.max(1));
        let first = self.platform().first_resizing_entry().min(self.table);
        let per_cycle = u64::from((self.table - first).max(1));
        let groups = resizes.div_ceil(u64::from(self.devices.max(1)));
        let partial = |n: u64| -> f64 { (0..n).map(|i| term(first + i as u32)).sum() };
        let sum = (groups / per_cycle) as f64 * partial(per_cycle) + partial(groups % per_cycle);
        self.rate * d * sum
    }
}

/// Requests up to which [`Storm::closed_form_lost`] sums term by term.
pub const CLOSED_FORM_TERMS: u64 = 1 << 24;

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
        assert_eq!(p.len(), 64 + 4);
        assert_eq!(p[2].delay_ns, 0);
        assert_eq!(
            p[6].action,
            Action::Phase {
                phase: Phase::Runtime
            }
        );
        assert_eq!(p[7].delay_ns, 1_000_000);
    }

    #[test]
    fn resize_entries_count_whole_groups() {
        let s = Storm::default();
        let e: Vec<u32> = s.resize_entries(17).collect();
        assert_eq!(s.platform().first_resizing_entry(), 0);
        assert_eq!(e.len(), 32);
        assert!(e[..16].iter().all(|&k| k == 0) && e[16..].iter().all(|&k| k == 1));
        assert_eq!(s.resize_entries(16 * 64 + 1).last(), Some(0));
    }

    #[test]
    fn closed_form_of_any_count_returns_and_joins_the_term_by_term_sum() {
        // Found by the Python state machines: 2^64 - 1 requests looped forever.
        let s = Storm::default();
        let at = s.closed_form_lost(CLOSED_FORM_TERMS);
        let past = s.closed_form_lost(CLOSED_FORM_TERMS + 32);
        let step = s.closed_form_lost(32);
        assert!(step > 0.0);
        assert!((past - at - step).abs() < 1e-6 * at, "{at} {past} {step}");
        let huge = s.closed_form_lost(u64::MAX);
        assert!(huge.is_finite() && huge > past);
    }

    #[test]
    fn closed_form_for_both_kernel_modes() {
        // 20 whole cycles: 16 · 20 · Σ_{k<64} k·W2(k) · 20,000/s.
        let cycle = |w: &dyn Fn(f64) -> f64| -> f64 {
            (0..64).map(|k| f64::from(k) * w(f64::from(k))).sum::<f64>()
        };
        let early = Storm::default();
        assert!(early.platform().early_enable);
        let want = 20_000.0 * 16.0 * 20.0 * cycle(&|k| 20e-6 + 0.5e-6 * k);
        let lost = early.closed_form_lost(20_480);
        assert!((lost - want).abs() < 1e-6 * want, "{lost} vs {want}");
        let late = Storm {
            early_enable: Some(false),
            ..Storm::default()
        };
        let want = 20_000.0 * 16.0 * 20.0 * cycle(&|k| 20e-6 + 0.5e-6 * k + 0.5e-6 * (k + 1.0));
        let lost = late.closed_form_lost(20_480);
        assert!((lost - want).abs() < 1e-6 * want, "{lost} vs {want}");
        // Per resize: 25.9 lost with early enable, 39.6 without (the new
        // vectors' allocation inside the window).
        assert!((early.closed_form_lost(20_480) / 20_480.0 - 25.9).abs() < 0.05);
        assert!((lost / 20_480.0 - 39.6).abs() < 0.05, "{}", lost / 20_480.0);
    }

    #[test]
    fn qemu_before_8_2_skips_entry_0_and_loses_the_same() {
        let new = Storm::default();
        let old = Storm {
            qemu: "7.2".parse().unwrap(),
            ..Storm::default()
        };
        // One cycle: 64 resizes under 8.2, 63 under 7.2 (entry 0's unmask is none).
        assert_eq!(new.resize_entries(16 * 64).count(), 16 * 64);
        assert!(old.resize_entries(16 * 63).all(|k| k >= 1));
        let (a, b) = (new.closed_form_lost(16 * 64), old.closed_form_lost(16 * 63));
        assert!((a - b).abs() < 1e-9 * a, "{a} vs {b}");
    }
}
