//! One interface over the host's interrupt-remapping units, Intel VT-d and
//! AMD-Vi, so the host never asks which vendor it runs on. Each method is the
//! step the kernel's IR domain takes (`intel_irq_remapping_alloc` /
//! `irq_remapping_alloc` and their activate, deactivate and free), and the
//! IOMMU's own lookup when a message arrives.

use crate::amd_irte::{AmdIrte, AMD_MSI_DATA_INDEX_MASK};
use crate::error::Result;
use crate::irte::Irte;
use crate::msi::MsiMessage;
use crate::remap::{
    compose_amd_msi, compose_msi, in_interrupt_window, AmdRemapper, FaultLog, InterruptRemapper,
    RemapResult,
};

/// A remapping unit as the host's IR domain uses it.
pub(crate) trait Remapper: Send + Sync + std::fmt::Debug {
    /// Allocate one IRTE for the device `rid`. IRTEs held +1; `NoSpace` when full.
    fn alloc(&mut self, rid: u16) -> Result<u16>;
    /// Free IRTE `index` of `rid`. IRTEs held −1.
    fn free(&mut self, rid: u16, index: u16) -> Result<()>;
    /// Program IRTE `index` of `rid` to deliver `vector` on `cpu` (present),
    /// and return the message the device's table entry must carry.
    fn program(&mut self, rid: u16, index: u16, vector: u8, cpu: u32) -> Result<MsiMessage>;
    /// Mark IRTE `index` of `rid` not present (deactivation).
    fn clear(&mut self, rid: u16, index: u16) -> Result<()>;
    /// Deactivate then free IRTE `index` of `rid`: [`clear`](Self::clear) then
    /// [`free`](Self::free), with their effects and errors. A free that succeeds does all
    /// the clear would have (both units' `free` zeroes the entry and lowers the
    /// present/enabled count as `clear` does, and succeeds only on an allocated entry,
    /// where the clear would have), so it is the whole step; a refused free changes
    /// nothing, and the two steps then run as written. Measured with callgrind: one
    /// write of the entry fewer per vector of a disable.
    #[inline]
    fn clear_and_free(&mut self, rid: u16, index: u16) -> Result<()> {
        if self.free(rid, index).is_ok() {
            return Ok(());
        }
        self.clear(rid, index)?;
        self.free(rid, index)
    }
    /// Route one message from `rid`: the `(cpu, vector)` it reaches, or `None`
    /// when it is blocked (the fault is in the unit's log). Hot path.
    fn remap(&mut self, rid: u16, msg: &MsiMessage) -> Option<(u32, u8)>;
    /// Where `msg` from `rid` would be remapped — the `(cpu, vector)` of
    /// [`remap`](Self::remap) — or `None` if it would be blocked; records
    /// nothing.
    fn target(&self, rid: u16, msg: &MsiMessage) -> Option<(u32, u8)>;
    /// Route one message from `rid` and say why a block happened: the
    /// unit's own result (a block is logged as by `remap`). Cold path.
    fn route(&mut self, rid: u16, msg: &MsiMessage) -> RemapResult;
    /// The unit's fault log.
    fn log(&self) -> &FaultLog;
    /// Faults recorded or suppressed so far.
    fn faults(&self) -> u64;
    /// IRTEs allocated now (read from the tables).
    fn in_use(&self) -> u64;
}

impl Remapper for InterruptRemapper {
    fn alloc(&mut self, _rid: u16) -> Result<u16> {
        // MSI-X takes one IRTE per vector; only multi-MSI takes blocks.
        self.table_mut().alloc(1)
    }

    fn free(&mut self, _rid: u16, index: u16) -> Result<()> {
        self.table_mut().free(u32::from(index), 1)
    }

    fn program(&mut self, rid: u16, index: u16, vector: u8, cpu: u32) -> Result<MsiMessage> {
        let irte = Irte::remapped(vector, cpu).with_requester_id(rid);
        let msg = compose_msi(index, Some(0));
        self.table_mut().set_then(u32::from(index), irte, msg)
    }

    fn clear(&mut self, _rid: u16, index: u16) -> Result<()> {
        self.table_mut().clear(u32::from(index))
    }

    // The hit is read off the entry; only a miss builds a `RemapResult` (measured with
    // callgrind: about 280 instructions a resize fewer than mapping every result).
    #[inline]
    fn remap(&mut self, rid: u16, msg: &MsiMessage) -> Option<(u32, u8)> {
        if let Some(irte) = self.remapped_entry(rid, msg) {
            return Some((irte.dest_id(), irte.vector()));
        }
        match self.remap_other(rid, msg) {
            RemapResult::Remapped(t) => Some((t.dest_id, t.vector)),
            RemapResult::Blocked { .. } => None,
        }
    }

    fn target(&self, rid: u16, msg: &MsiMessage) -> Option<(u32, u8)> {
        InterruptRemapper::target(self, rid, msg)
    }

    fn route(&mut self, rid: u16, msg: &MsiMessage) -> RemapResult {
        InterruptRemapper::remap(self, rid, msg)
    }

    fn log(&self) -> &FaultLog {
        self.fault_log()
    }

    fn faults(&self) -> u64 {
        self.fault_log().total() + self.fault_log().suppressed()
    }

    fn in_use(&self) -> u64 {
        u64::from(self.table().in_use())
    }
}

impl Remapper for AmdRemapper {
    fn alloc(&mut self, rid: u16) -> Result<u16> {
        self.tables_mut().alloc(rid, 1)
    }

    fn free(&mut self, rid: u16, index: u16) -> Result<()> {
        self.tables_mut().free(rid, u32::from(index), 1)
    }

    fn program(&mut self, rid: u16, index: u16, vector: u8, cpu: u32) -> Result<MsiMessage> {
        self.tables_mut()
            .set(rid, u32::from(index), AmdIrte::remapped(vector, cpu))?;
        Ok(compose_amd_msi(index))
    }

    fn clear(&mut self, rid: u16, index: u16) -> Result<()> {
        self.tables_mut().clear(rid, u32::from(index))
    }

    #[inline]
    fn remap(&mut self, rid: u16, msg: &MsiMessage) -> Option<(u32, u8)> {
        match AmdRemapper::remap(self, rid, msg) {
            RemapResult::Remapped(t) => Some((t.dest_id, t.vector)),
            RemapResult::Blocked { .. } => None,
        }
    }

    fn target(&self, rid: u16, msg: &MsiMessage) -> Option<(u32, u8)> {
        let index = msg.data & AMD_MSI_DATA_INDEX_MASK;
        if !in_interrupt_window(msg.address) || self.message_type_check(rid, msg.data).is_err() {
            return None;
        }
        self.tables()
            .lookup(rid, index)
            .ok()
            .filter(|irte| irte.remap_en())
            .map(|irte| (irte.destination(), irte.vector()))
    }

    fn route(&mut self, rid: u16, msg: &MsiMessage) -> RemapResult {
        AmdRemapper::remap(self, rid, msg)
    }

    fn log(&self) -> &FaultLog {
        self.fault_log()
    }

    fn faults(&self) -> u64 {
        self.fault_log().total() + self.fault_log().suppressed()
    }

    fn in_use(&self) -> u64 {
        self.tables().in_use()
    }
}

/// The host's remapping unit, Intel or AMD, with static dispatch: the
/// per-interrupt `remap` inlines (a `dyn` call showed on the fire path). The
/// one place that tells the vendors apart.
#[derive(Debug, Clone)]
pub(crate) enum Iommu {
    /// Intel VT-d.
    Intel(InterruptRemapper),
    /// AMD-Vi.
    Amd(AmdRemapper),
}

/// Dispatch one `Remapper` method to the unit inside.
macro_rules! dispatch {
    ($self:ident, $r:ident => $call:expr) => {
        match $self {
            Iommu::Intel($r) => $call,
            Iommu::Amd($r) => $call,
        }
    };
}

// `alloc`, `free`, `program` and `clear` are in line in the host's vector loops, whose frame
// is already set up: as calls of their own, each saved registers for the vendor arm it did
// not take (measured with callgrind: about 16 instructions a vector for Intel; AMD, whose
// arms were then kept out of line instead, ran 1.7 % more).
impl Remapper for Iommu {
    #[inline]
    fn alloc(&mut self, rid: u16) -> Result<u16> {
        dispatch!(self, r => r.alloc(rid))
    }
    #[inline]
    fn free(&mut self, rid: u16, index: u16) -> Result<()> {
        dispatch!(self, r => Remapper::free(r, rid, index))
    }
    #[inline]
    fn program(&mut self, rid: u16, index: u16, vector: u8, cpu: u32) -> Result<MsiMessage> {
        dispatch!(self, r => r.program(rid, index, vector, cpu))
    }
    #[inline]
    fn clear(&mut self, rid: u16, index: u16) -> Result<()> {
        dispatch!(self, r => r.clear(rid, index))
    }
    #[inline]
    fn remap(&mut self, rid: u16, msg: &MsiMessage) -> Option<(u32, u8)> {
        dispatch!(self, r => Remapper::remap(r, rid, msg))
    }
    fn target(&self, rid: u16, msg: &MsiMessage) -> Option<(u32, u8)> {
        dispatch!(self, r => r.target(rid, msg))
    }
    fn route(&mut self, rid: u16, msg: &MsiMessage) -> RemapResult {
        dispatch!(self, r => r.route(rid, msg))
    }
    fn log(&self) -> &FaultLog {
        dispatch!(self, r => Remapper::log(r))
    }
    fn faults(&self) -> u64 {
        dispatch!(self, r => r.faults())
    }
    fn in_use(&self) -> u64 {
        dispatch!(self, r => r.in_use())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irte::IrteFields;
    use crate::msi::MSI_ADDRESS_BASE;
    use proptest::prelude::*;

    fn msg_strategy() -> impl Strategy<Value = MsiMessage> {
        prop_oneof![
            (0u16..64, prop::option::of(0u16..4)).prop_map(|(h, s)| compose_msi(h, s)),
            (0u32..64).prop_map(|i| MsiMessage::new(MSI_ADDRESS_BASE, i)),
            (0xFEE0_0000u64..0xFEF0_0000, 0u32..0x1_0400).prop_map(|(a, d)| MsiMessage::new(a, d)),
            (any::<u64>(), any::<u32>()).prop_map(|(a, d)| MsiMessage::new(a, d)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// `clear_and_free` is `clear` then `free`: the same result (errors included) and
        /// the same unit after it, for Intel and AMD, on entries programmed, cleared, never
        /// written, freed, past the table, of another requester, and (Intel) inside a block
        /// of two, where the free is refused after the clear went through.
        #[test]
        fn clear_and_free_is_clear_then_free(
            amd in any::<bool>(),
            setup in prop::collection::vec((0u16..3, 0u8..4), 0..24),
            frees in prop::collection::vec((0u16..4, 0u16..70), 1..40),
        ) {
            let mut unit = if amd {
                Iommu::Amd(AmdRemapper::new(64).unwrap())
            } else {
                Iommu::Intel(InterruptRemapper::new(64, false).unwrap())
            };
            for (i, (rid, how)) in setup.into_iter().enumerate() {
                if how == 3 {
                    // A block of two (Intel), or an aligned pair (AMD).
                    match &mut unit {
                        Iommu::Intel(r) => {
                            // Both entries present: a refused free shows the clear before it.
                            if let Ok(b) = r.table_mut().alloc(2) {
                                for j in 0..2 {
                                    let e = Irte::remapped(i as u8, 0);
                                    r.table_mut().set(u32::from(b) + j, e).unwrap();
                                }
                            }
                        }
                        Iommu::Amd(r) => { let _ = r.tables_mut().alloc_aligned(rid, 2); }
                    }
                    continue;
                }
                let Ok(index) = unit.alloc(rid) else { continue };
                if how >= 1 {
                    unit.program(rid, index, i as u8, i as u32).unwrap();
                }
                if how == 2 {
                    unit.clear(rid, index).unwrap();
                }
            }
            for (rid, index) in frees {
                let mut two = unit.clone();
                let want = two.clear(rid, index).and_then(|()| two.free(rid, index));
                prop_assert_eq!(unit.clear_and_free(rid, index), want);
                prop_assert_eq!(format!("{unit:?}"), format!("{two:?}"));
            }
        }

    }

    proptest! {
        /// `Remapper::remap` and `target` (hits read off the entry) agree with the unit's
        /// full result (`route`), the fault log included, for Intel and AMD.
        #[test]
        fn remap_and_target_match_route(
            amd in any::<bool>(),
            allow_compat in any::<bool>(),
            entries in prop::collection::vec((0u16..3, any::<bool>(), 0u8..4, 0u8..4), 0..48),
            sends in prop::collection::vec((0u16..4, msg_strategy()), 1..100),
        ) {
            let mut unit = if amd {
                Iommu::Amd(AmdRemapper::new(64).unwrap())
            } else {
                Iommu::Intel(InterruptRemapper::new(64, allow_compat).unwrap())
            };
            for (i, (rid, present, sq, svt)) in entries.into_iter().enumerate() {
                let index = unit.alloc(rid).unwrap();
                unit.program(rid, index, i as u8, i as u32).unwrap();
                if !present {
                    unit.clear(rid, index).unwrap();
                }
                // Intel: any source-check setting, not only `set_msi_sid`'s.
                if let Iommu::Intel(r) = &mut unit {
                    let f = r.table().get(u32::from(index)).unwrap().fields();
                    let irte = Irte::new(IrteFields { sq, svt, ..f }).unwrap();
                    r.table_mut().set(u32::from(index), irte).unwrap();
                }
            }
            for (rid, msg) in sends {
                let mut full = unit.clone();
                let want = full.route(rid, &msg);
                let want_t = want.target().map(|t| (t.dest_id, t.vector));
                prop_assert_eq!(unit.target(rid, &msg), want_t);
                prop_assert_eq!(unit.remap(rid, &msg), want_t);
                prop_assert_eq!(unit.faults(), full.faults());
                prop_assert_eq!(
                    unit.log().records().copied().collect::<Vec<_>>(),
                    full.log().records().copied().collect::<Vec<_>>()
                );
            }
        }
    }
}
