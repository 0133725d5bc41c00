//! What forged writes came to, per kind (docs/spoof.md). Each write is also
//! one fired interrupt in the outcome books: `blocked` when the IOMMU stopped
//! it, else where it was delivered. These counts say more: why it was
//! blocked, and whose vector a delivered one reached.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::books::add_count;
use crate::config::SpoofKind;
use crate::error::{Error, Result};
use crate::host::FaultLogStats;
use crate::remap::FaultReason;

/// One kind's forged writes. `attempts = blocked + own_vector + cross_device
/// + unowned`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindBooks {
    /// Writes made.
    pub attempts: u64,
    /// Writes the IOMMU blocked (booked `blocked`).
    pub blocked: u64,
    /// Blocked writes by fault reason (every reason, zeros included).
    pub reasons: BTreeMap<String, u64>,
    /// Writes remapped to one of the writer's own vectors: an interrupt it
    /// may send anyway (AMD looks every index up in the writer's own table).
    pub own_vector: u64,
    /// Writes that reached another device's vector: the attack worked.
    pub cross_device: u64,
    /// Of `cross_device`, those whose device is in another VM.
    pub cross_vm: u64,
    /// Writes that reached a CPU vector no device holds (a spurious interrupt).
    pub unowned: u64,
}

impl KindBooks {
    /// No writes, with every fault reason at zero.
    fn empty() -> Self {
        Self {
            reasons: FaultReason::ALL
                .iter()
                .map(|r| (r.as_str().to_string(), 0))
                .collect(),
            ..Self::default()
        }
    }

    /// Add `o`'s counts; `InvalidArgument` past 2^64 - 1 (merged results from outside).
    fn merge(&mut self, o: &KindBooks) -> Result<()> {
        self.attempts = add_count(self.attempts, o.attempts)?;
        self.blocked = add_count(self.blocked, o.blocked)?;
        for (name, n) in &o.reasons {
            let r = self.reasons.entry(name.clone()).or_default();
            *r = add_count(*r, *n)?;
        }
        self.own_vector = add_count(self.own_vector, o.own_vector)?;
        self.cross_device = add_count(self.cross_device, o.cross_device)?;
        self.cross_vm = add_count(self.cross_vm, o.cross_vm)?;
        self.unowned = add_count(self.unowned, o.unowned)?;
        Ok(())
    }
}

/// Where one forged write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Landing {
    /// Blocked by the IOMMU, for this reason.
    Blocked(FaultReason),
    /// Remapped to the writer's own vector.
    Own,
    /// Remapped to another device's vector; `true` if it is in another VM.
    Foreign(bool),
    /// Remapped to a vector nobody holds.
    Unowned,
}

/// The forged writes of a run, and the IOMMUs' fault logs at its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoofReport {
    /// The IOMMU vendor (`intel`, `amd`).
    pub iommu: String,
    /// Per kind written, by name.
    pub kinds: BTreeMap<String, KindBooks>,
    /// Every IOMMU's fault log, summed (legitimate faults included).
    pub fault_log: FaultLogStats,
}

impl SpoofReport {
    /// An empty report for the kinds in `kinds`.
    pub(super) fn new(iommu: String, kinds: impl IntoIterator<Item = SpoofKind>) -> Self {
        Self {
            iommu,
            kinds: kinds
                .into_iter()
                .map(|k| (k.name().to_string(), KindBooks::empty()))
                .collect(),
            fault_log: FaultLogStats::default(),
        }
    }

    /// Count one write of `kind` that ended at `landing`.
    pub(super) fn book(&mut self, kind: SpoofKind, landing: Landing) {
        let b = self
            .kinds
            .entry(kind.name().to_string())
            .or_insert_with(KindBooks::empty);
        b.attempts += 1;
        match landing {
            Landing::Blocked(r) => {
                b.blocked += 1;
                *b.reasons.entry(r.as_str().to_string()).or_default() += 1;
            }
            Landing::Own => b.own_vector += 1,
            Landing::Foreign(other_vm) => {
                b.cross_device += 1;
                b.cross_vm += u64::from(other_vm);
            }
            Landing::Unowned => b.unowned += 1,
        }
    }

    /// Writes over every kind.
    pub fn attempts(&self) -> u64 {
        self.kinds.values().map(|b| b.attempts).sum()
    }

    /// Check each kind's split: every write is in exactly one of blocked,
    /// own, cross-device, unowned, and the reasons sum to `blocked`.
    pub fn check(&self) -> Result<()> {
        for (name, b) in &self.kinds {
            let split = b.blocked + b.own_vector + b.cross_device + b.unowned;
            let reasons: u64 = b.reasons.values().sum();
            if split != b.attempts || reasons != b.blocked || b.cross_vm > b.cross_device {
                return Err(Error::Accounting(format!(
                    "spoof {name}: {} attempts split as {split}, {} blocked with {reasons} reasons",
                    b.attempts, b.blocked
                )));
            }
        }
        Ok(())
    }

    /// Fold another replication in: counts add up, the capacity is each
    /// host's own (the larger is kept).
    pub fn merge(&mut self, o: &SpoofReport) -> Result<()> {
        for (name, b) in &o.kinds {
            self.kinds
                .entry(name.clone())
                .or_insert_with(KindBooks::empty)
                .merge(b)?;
        }
        let (f, g) = (&mut self.fault_log, &o.fault_log);
        f.capacity = f.capacity.max(g.capacity);
        f.kept = add_count(f.kept, g.kept)?;
        f.recorded = add_count(f.recorded, g.recorded)?;
        f.overflowed = add_count(f.overflowed, g.overflowed)?;
        f.suppressed = add_count(f.suppressed, g.suppressed)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_write_lands_in_one_column_and_the_check_sees_a_leak() {
        let mut r = SpoofReport::new("intel".into(), SpoofKind::ALL);
        r.book(
            SpoofKind::ForeignHandle,
            Landing::Blocked(FaultReason::SidMismatch),
        );
        r.book(SpoofKind::ForeignHandle, Landing::Own);
        r.book(SpoofKind::CompatFormat, Landing::Foreign(true));
        r.book(SpoofKind::CompatFormat, Landing::Unowned);
        r.check().unwrap();
        assert_eq!(r.attempts(), 4);
        let f = &r.kinds["foreign_handle"];
        assert_eq!(
            (f.blocked, f.own_vector, f.reasons["sid_mismatch"]),
            (1, 1, 1)
        );
        let c = &r.kinds["compat_format"];
        assert_eq!((c.cross_device, c.cross_vm, c.unowned), (1, 1, 1));
        assert_eq!(r.kinds["outside_window"].attempts, 0);
        // A write counted as attempted but booked nowhere.
        let mut leak = r.clone();
        leak.kinds.get_mut("reserved_bits").unwrap().attempts += 1;
        assert!(matches!(leak.check(), Err(Error::Accounting(_))));
        let mut merged = r.clone();
        merged.merge(&r).unwrap();
        assert_eq!(merged.attempts(), 8);
        assert_eq!(merged.kinds["compat_format"].cross_vm, 2);
        // Counts from outside (merged result JSON) past 2^64 - 1 are refused, not wrapped.
        let mut huge = r.clone();
        huge.kinds.get_mut("foreign_handle").unwrap().attempts = u64::MAX;
        let e = huge.clone().merge(&r).unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument(ref msg) if msg.contains("exceeds 2^64 - 1")),
            "{e}"
        );
        huge.kinds.get_mut("foreign_handle").unwrap().attempts = 1;
        huge.fault_log.recorded = u64::MAX;
        let mut other = r.clone();
        other.fault_log.recorded = 1;
        assert!(huge.merge(&other).is_err());
    }
}
