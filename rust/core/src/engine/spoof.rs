//! The forged-write source of a malicious device (docs/spoof.md): a Poisson
//! stream of writes, each a control event of its device, composed from what
//! the device can learn (a victim's MSI-X table entry, a victim's vector) and
//! routed through the host's IOMMU under the device's own requester id. Each
//! write is one fired interrupt in the books, and one count in the
//! [`SpoofReport`].

use rand_distr::{Distribution, Exp1};

use super::event::What;
use super::spoof_books::{Landing, SpoofReport};
use super::Engine;
use crate::amd_irte::AMD_MSI_DATA_INDEX_MASK;
use crate::books::Outcome;
use crate::config::{IommuKind, Mode, SpoofKind};
use crate::error::Result;
use crate::msi::{MsiMessage, MSI_ADDRESS_BASE};
use crate::remap::{
    compose_amd_msi, compose_msi, decode_msi, Decoded, RemapResult, MSI_ADDR_DEST_ID_SHIFT,
    MSI_DATA_DELIVERY_MODE_SHIFT,
};

/// The entry number a forged write is traced under: it comes from no entry.
pub(super) const FORGED_ENTRY: u32 = u32::MAX;

/// Where a write outside the interrupt window goes: the IOAPIC's register
/// window, in the MMIO hole below 4 GiB that VFIO never maps for DMA.
pub const OUTSIDE_WINDOW_ADDRESS: u64 = 0xFEC0_0000;

/// How far past the victim's own entry a sweep reaches (sub-handles 1..=16).
const SWEEP_SPAN: u64 = 16;

/// Intel: a data bit reserved when SHV is set (31:16); Linux always sets SHV.
const INTEL_RESERVED_DATA_BIT: u32 = 1 << 16;

/// AMD: message type 011b in data 10:8, reserved in the x86 MSI format.
const AMD_RESERVED_MESSAGE_TYPE: u32 = 0b011 << MSI_DATA_DELIVERY_MODE_SHIFT;

/// One forging device: how many writes it has made (which picks the next
/// write's kind, victim and victim entry, each in turn).
#[derive(Debug, Clone, Copy)]
pub(super) struct Forger {
    pub writes: u64,
}

impl Engine {
    /// Schedule every forging device's first write, and open the report.
    pub(super) fn start_forgers(&mut self) {
        let mut kinds: Vec<SpoofKind> = Vec::new();
        for dev in 0..self.cfg.devices.len() {
            let Some(s) = &self.cfg.devices[dev].spoof else {
                continue;
            };
            kinds.extend(&s.kinds);
            let start = s.start_ns;
            self.forgers[dev] = Some(Forger { writes: 0 });
            self.schedule_forged_write(dev as u32, start);
        }
        if !kinds.is_empty() {
            kinds.sort_unstable();
            kinds.dedup();
            let iommu = match self.cfg.host.iommu {
                IommuKind::Intel => "intel",
                IommuKind::Amd => "amd",
            };
            self.spoof = Some(Box::new(SpoofReport::new(iommu.to_string(), kinds)));
        }
    }

    /// Schedule `dev`'s next write one exponential gap after `from` (ns).
    fn schedule_forged_write(&mut self, dev: u32, from: u64) {
        let Some(s) = &self.cfg.devices[dev as usize].spoof else {
            return;
        };
        let gap_ns = 1e9 / s.rate;
        let x: f64 = Exp1.sample(&mut self.rng);
        // At least 1 ns apart: a write is an event, and events move time on.
        let gap = (x * gap_ns).ceil().max(1.0);
        let t = from.saturating_add(gap as u64);
        self.schedule(t, dev, What::Forge);
    }

    /// `dev` makes its next forged write now: compose it, route it through
    /// the IOMMU under `dev`'s requester id, book it, schedule the next.
    pub(super) fn forge(&mut self, dev: u32) -> Result<()> {
        let di = dev as usize;
        let (Some(s), Some(f)) = (&self.cfg.devices[di].spoof, self.forgers[di]) else {
            return Ok(());
        };
        if self.devices[di].halted {
            // A killed VM's device is gone: no more writes.
            return Ok(());
        }
        let n = f.writes;
        let kinds = s.kinds.len() as u64;
        let kind = s.kinds[(n % kinds) as usize];
        let round = n / kinds;
        let victims = s.victims.len() as u64;
        let victim = s.victims[(round % victims) as usize];
        let pick = round / victims;
        self.forgers[di] = Some(Forger { writes: n + 1 });
        let msg = self.forged_message(dev, kind, victim, pick)?;
        let (landing, outcome) = self.land(dev, &msg);
        if let Some(report) = self.spoof.as_deref_mut() {
            report.book(kind, landing);
        }
        let phase = self.devices[di].phase;
        self.books.fire(phase, outcome);
        self.trace_interrupt(dev, FORGED_ENTRY, outcome);
        self.schedule_forged_write(dev, self.now as u64);
        Ok(())
    }

    /// The message of a write of `kind` by `dev` against `victim`; `pick`
    /// chooses among the victim's live entries, and a sweep's step, in turn.
    fn forged_message(
        &self,
        dev: u32,
        kind: SpoofKind,
        victim: u32,
        pick: u64,
    ) -> Result<MsiMessage> {
        let v = &self.devices[victim as usize];
        let live: Vec<usize> = v.live.iter().collect();
        let entry = if live.is_empty() {
            0
        } else {
            live[(pick % live.len() as u64) as usize]
        };
        let amd = self.cfg.host.iommu == IommuKind::Amd;
        Ok(match kind {
            // Whatever the victim's table entry holds now, verbatim.
            SpoofKind::ForeignHandle => v.table.entry(entry)?.message(),
            SpoofKind::SubHandleSweep => {
                let m = v.table.entry(entry)?.message();
                let step = (pick % SWEEP_SPAN) as u32 + 1;
                if amd {
                    let index =
                        ((m.data & AMD_MSI_DATA_INDEX_MASK) + step) & AMD_MSI_DATA_INDEX_MASK;
                    MsiMessage::new(m.address, (m.data & !AMD_MSI_DATA_INDEX_MASK) | index)
                } else if let Ok(Decoded::Remappable(r)) = decode_msi(&m) {
                    let sub = u32::from(r.sub_handle.unwrap_or(0)) + step;
                    compose_msi(r.handle, Some(sub.min(0xFFFF) as u16))
                } else {
                    // No remappable handle to sweep from yet: the entry as it is.
                    m
                }
            }
            SpoofKind::CompatFormat => {
                // Physical destination mode, fixed delivery, edge: the
                // victim's CPU (as an 8-bit APIC id) and vector. Before the
                // victim has a vector, CPU 0 and the first device vector.
                let (cpu, vector) = self
                    .host
                    .vector_of(victim, entry as u32)
                    .unwrap_or((0, FIRST_DEVICE_VECTOR));
                let dest = u64::from(cpu & 0xFF) << MSI_ADDR_DEST_ID_SHIFT;
                MsiMessage::new(MSI_ADDRESS_BASE | dest, u32::from(vector))
            }
            SpoofKind::ReservedBits => {
                let own = self.own_message(dev)?;
                if amd {
                    MsiMessage::new(own.address, own.data | AMD_RESERVED_MESSAGE_TYPE)
                } else {
                    MsiMessage::new(own.address, own.data | INTEL_RESERVED_DATA_BIT)
                }
            }
            SpoofKind::OutsideWindow => {
                let data = v.table.entry(entry)?.message().data;
                MsiMessage::new(OUTSIDE_WINDOW_ADDRESS, data)
            }
        })
    }

    /// `dev`'s own valid message: its first live entry's, or (before it has
    /// one) the message for IRTE 0 in the host's format.
    fn own_message(&self, dev: u32) -> Result<MsiMessage> {
        let d = &self.devices[dev as usize];
        if let Some(k) = d.live.iter().next() {
            return Ok(d.table.entry(k)?.message());
        }
        Ok(match self.cfg.host.iommu {
            IommuKind::Amd => compose_amd_msi(0),
            IommuKind::Intel => compose_msi(0, Some(0)),
        })
    }

    /// Route a forged write from `dev` and say where it landed and how it
    /// is booked. A write the IOMMU lets through is taken by whoever holds
    /// the vector it reaches, exactly as that device's own interrupt.
    fn land(&mut self, dev: u32, msg: &MsiMessage) -> (Landing, Outcome) {
        let Some(result) = self.host.route_forged(dev, msg) else {
            return (Landing::Unowned, Outcome::Blocked);
        };
        let t = match result {
            RemapResult::Blocked { fault, .. } => {
                return (Landing::Blocked(fault.reason), Outcome::Blocked)
            }
            RemapResult::Remapped(t) => t,
        };
        let Some((owner, entry)) = self.host.owner_of(t.dest_id, t.vector) else {
            // No handler for that vector: a spurious interrupt on the CPU.
            let reached = (t.dest_id as usize) < self.cpus.len();
            let outcome = if reached {
                Outcome::Delivered
            } else {
                Outcome::Blocked
            };
            return (Landing::Unowned, outcome);
        };
        let landing = if owner == dev {
            Landing::Own
        } else {
            let other_vm = self.devices[owner as usize].vm != self.devices[dev as usize].vm;
            Landing::Foreign(other_vm)
        };
        let outcome = if self.cfg.mode == Mode::Aggregated {
            self.for_guest(owner, entry)
        } else {
            self.take(owner, entry, t.dest_id, t.vector)
        };
        (landing, outcome)
    }
}

/// The compat write's target vector while the victim holds none yet: any
/// vector does, the write is aimed at a CPU nobody chose for it.
const FIRST_DEVICE_VECTOR: u8 = 0x21;

#[cfg(test)]
#[path = "spoof_tests.rs"]
mod tests;
