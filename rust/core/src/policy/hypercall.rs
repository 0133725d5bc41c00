//! The seed thread's MSIX_ENABLE / MSIX_DISABLE hypercall, negotiated at
//! `pci_enable_msix_range`. Guests that never negotiate fall back to QEMU's
//! NORESIZE behaviour (the unaware-guest case). IMS with its message store in
//! guest RAM uses it too, with no trap to fall back on.

use super::{HostOps, Negotiation, Policy, QemuPolicy};
use crate::config::{FailureMode, Grant, PolicyConfig};
use crate::error::{Error, Result};
use crate::host::HostOp;
use crate::versions::Platform;

/// What the host knows of a device's driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Driver {
    /// It never negotiated: its MSI-X writes are trapped (if they can be).
    #[default]
    Unaware,
    /// It negotiated and holds this grant.
    Granted(u32),
    /// Its last MSIX_ENABLE was refused: it runs without MSI-X until it
    /// disables and negotiates again.
    Refused,
}

/// The hypercall host.
pub(crate) struct HypercallPolicy {
    drivers: Vec<Driver>,
    grant: Grant,
    grant_n: u32,
    /// Request every granted vector at MSIX_ENABLE instead of at the guest's unmask.
    request_at_grant: bool,
    /// Trapped writes of unaware guests, or `None` when they cannot be
    /// trapped (IMS in guest RAM).
    fallback: Option<QemuPolicy>,
    label: String,
}

impl HypercallPolicy {
    /// A hypercall host for devices with these table sizes.
    pub fn new(
        entries: &[u32],
        cfg: &PolicyConfig,
        trap_fallback: bool,
        platform: Platform,
        label: &str,
    ) -> Result<Self> {
        let fallback = if trap_fallback {
            Some(QemuPolicy::new(
                entries,
                false,
                None,
                platform,
                cfg.on_failure == FailureMode::FailRequest,
                label,
            )?)
        } else {
            None
        };
        Ok(Self {
            drivers: vec![Driver::Unaware; entries.len()],
            grant: cfg.grant,
            grant_n: cfg.grant_n,
            request_at_grant: cfg.request_at_grant,
            fallback,
            label: label.to_string(),
        })
    }

    fn driver(&self, dev: u32) -> Driver {
        self.drivers.get(dev as usize).copied().unwrap_or_default()
    }

    fn set_driver(&mut self, dev: u32, d: Driver) -> Result<()> {
        let slot = self
            .drivers
            .get_mut(dev as usize)
            .ok_or_else(|| Error::InvalidArgument(format!("no device {dev}")))?;
        *slot = d;
        Ok(())
    }
}

impl Policy for HypercallPolicy {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn negotiate(&mut self, _dev: u32, _minvec: u32, maxvec: u32) -> Result<Negotiation> {
        let grant = match self.grant {
            Grant::All => maxvec,
            Grant::N => maxvec.min(self.grant_n),
            Grant::Refuse => 0,
        };
        Ok(Negotiation::Hypercall {
            grant,
            request: self.request_at_grant,
        })
    }

    fn negotiated(&mut self, dev: u32, granted: Option<u32>) -> Result<()> {
        self.set_driver(dev, granted.map_or(Driver::Refused, Driver::Granted))
    }

    fn enable(&mut self, dev: u32, ops: &mut HostOps) -> Result<()> {
        match (self.driver(dev), &mut self.fallback) {
            (Driver::Unaware, Some(q)) => q.enable(dev, ops),
            _ => Ok(()),
        }
    }

    fn unmask(&mut self, dev: u32, k: u32, ops: &mut HostOps) -> Result<()> {
        match (self.driver(dev), &mut self.fallback) {
            // The grant is allocated (reservations under reservation mode);
            // the driver's request_irq takes the vector now, and may fail.
            // (The engine folds entries past the grant onto granted ones.)
            (Driver::Granted(_), _) if !self.request_at_grant => {
                ops.push(HostOp::SetSignalling { vector: k });
                Ok(())
            }
            (Driver::Granted(_) | Driver::Refused, _) => Ok(()),
            (Driver::Unaware, Some(q)) => q.unmask(dev, k, ops),
            (Driver::Unaware, None) => {
                ops.push(HostOp::Untrapped { vector: k });
                Ok(())
            }
        }
    }

    fn mask(&mut self, dev: u32, k: u32, ops: &mut HostOps) -> Result<()> {
        match (self.driver(dev), &mut self.fallback) {
            (Driver::Unaware, Some(q)) => q.mask(dev, k, ops),
            _ => Ok(()),
        }
    }

    fn disable(&mut self, dev: u32, ops: &mut HostOps) -> Result<()> {
        let driver = self.driver(dev);
        self.set_driver(dev, Driver::Unaware)?;
        match (driver, &mut self.fallback) {
            (Driver::Granted(_), _) => {
                ops.extend([HostOp::Hypercall, HostOp::DisableIndex]);
                Ok(())
            }
            (Driver::Unaware, Some(q)) => q.disable(dev, ops),
            _ => Ok(()),
        }
    }

    fn rollback(&mut self, dev: u32) -> Result<()> {
        match &mut self.fallback {
            Some(q) => q.rollback(dev),
            None => Ok(()),
        }
    }
}
