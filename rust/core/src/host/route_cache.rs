//! Each device's last successful route per table entry: the message it sent
//! and the `(cpu, vector)` the IOMMU turned it into, so a vector that fires
//! again with the same message skips the decode and the IRTE lookup.
//!
//! Why it is exact: a route is a pure function of the message, the device's
//! requester id and the IRTE the message names. A message of this device
//! can only be remapped through an IRTE the host programmed for this device
//! (Intel IRTEs are programmed with full source-id verification; AMD tables
//! are per device), and the host changes such an IRTE only in this device's
//! own operations, each of which calls [`RouteCache::invalidate`]. Blocked
//! messages are never cached: each must reach the IOMMU and log its fault.

use super::remapper::Remapper;
use super::Host;
use crate::msi::MsiMessage;

/// One cached route.
#[derive(Debug, Clone, Copy)]
struct Route {
    msg: MsiMessage,
    /// The device's [`RouteCache::epoch`] when it was cached; 0 for an
    /// entry never cached (the cache's epoch is never 0), so that a lookup
    /// has no `Option` to test on top of the epoch.
    epoch: u64,
    cpu: u32,
    vector: u8,
}

/// An entry with no route cached.
const NONE: Route = Route {
    msg: MsiMessage::new(0, 0),
    epoch: 0,
    cpu: 0,
    vector: 0,
};

/// One device's routes, by table entry (grown on first use).
#[derive(Debug, Clone)]
pub(super) struct RouteCache {
    /// Bumped by every IRTE change of the device: older routes are stale.
    /// Never 0.
    epoch: u64,
    routes: Vec<Route>,
}

impl Default for RouteCache {
    fn default() -> Self {
        Self {
            epoch: 1,
            routes: Vec::new(),
        }
    }
}

impl RouteCache {
    /// Entry `k`'s cached route for `msg`, if still valid.
    #[inline]
    pub fn get(&self, k: u32, msg: &MsiMessage) -> Option<(u32, u8)> {
        match self.routes.get(k as usize) {
            Some(r) if r.epoch == self.epoch && r.msg == *msg => Some((r.cpu, r.vector)),
            _ => None,
        }
    }

    /// Remember that entry `k`'s `msg` reaches `(cpu, vector)`.
    pub fn put(&mut self, k: u32, msg: &MsiMessage, (cpu, vector): (u32, u8)) {
        let k = k as usize;
        if self.routes.len() <= k {
            self.routes.resize(k + 1, NONE);
        }
        self.routes[k] = Route {
            msg: *msg,
            epoch: self.epoch,
            cpu,
            vector,
        };
    }

    /// One of the device's IRTEs changed: every cached route is stale.
    pub fn invalidate(&mut self) {
        // Past u64::MAX to 1: 0 marks entries never cached.
        self.epoch = self.epoch.wrapping_add(1).max(1);
    }
}

impl Host {
    /// Device `dev`'s route epoch: it moves on every IRTE change of the
    /// device (0, never an epoch, past the devices).
    #[inline]
    pub fn route_epoch(&self, dev: u32) -> u64 {
        self.devices.get(dev as usize).map_or(0, |d| d.routes.epoch)
    }

    /// Route entry `k`'s message `msg` from device `dev` through its IOMMU:
    /// the target `(cpu, vector)`, or `None` when the IOMMU blocks it (the
    /// fault is in the IOMMU's log). The per-event path: a route seen before
    /// with no IRTE of the device changed since comes from the device's
    /// cache, in line; a miss goes to the IOMMU out of line.
    // In line by measurement: left to the inliner, the hit stays a call.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub fn remap(&mut self, dev: u32, k: u32, msg: &MsiMessage) -> Option<(u32, u8)> {
        let hit = self.devices.get(dev as usize)?.routes.get(k, msg);
        if hit.is_some() {
            return hit;
        }
        self.route_miss(dev, k, msg)
    }

    /// A route not in the cache: through the IOMMU, remembered if it lands.
    #[cold]
    #[inline(never)]
    fn route_miss(&mut self, dev: u32, k: u32, msg: &MsiMessage) -> Option<(u32, u8)> {
        let d = self.devices.get_mut(dev as usize)?;
        let t = self.iommus[d.iommu].remap(d.requester_id, msg)?;
        d.routes.put(k, msg, t);
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_holds_for_its_message_until_the_device_changes_an_irte() {
        let mut c = RouteCache::default();
        let m = MsiMessage::new(0xfee0_0010, 0);
        let other = MsiMessage::new(0xfee0_0010, 1);
        assert_eq!(c.get(3, &m), None);
        c.put(3, &m, (7, 0x41));
        assert_eq!(c.get(3, &m), Some((7, 0x41)));
        assert_eq!(c.get(3, &other), None, "another message is another route");
        assert_eq!(c.get(2, &m), None, "routes are per entry");
        c.invalidate();
        assert_eq!(c.get(3, &m), None, "an IRTE change makes it stale");
        // An entry never cached matches no message, even the zero message.
        let zero = MsiMessage::new(0, 0);
        c.put(5, &zero, (1, 0x30));
        assert_eq!(c.get(4, &zero), None, "grown but never cached");
        assert_eq!(c.get(5, &zero), Some((1, 0x30)));
        // The epoch skips 0 when it wraps.
        c.epoch = u64::MAX;
        c.invalidate();
        assert_eq!(c.epoch, 1);
        assert_eq!(c.get(4, &zero), None);
    }

    #[test]
    fn the_in_line_route_is_the_route_the_iommu_gives_now() {
        use crate::config::{HostConfig, IommuKind, TimingConfig};
        use crate::host::{Effects, HostFx, HostOp};
        use crate::versions::Platform;
        use rand::{RngExt, SeedableRng};
        // Fires between VFIO operations that reprogram, clear and move the
        // IRTEs of two devices: every message either was given, from either
        // device's entry, routes as the IOMMU routes it at that moment (a
        // stale cached route would outlive the operation that changed it).
        for iommu in [IommuKind::Intel, IommuKind::Amd] {
            for seed in 0..20 {
                let cfg = HostConfig {
                    reservation_mode: Some(seed % 2 == 0),
                    iommu,
                    irte_entries: 16,
                    ..HostConfig::default()
                };
                let mut h = Host::new(&cfg, Platform::default(), &[0, 1]).unwrap();
                let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
                let mut msgs: Vec<(u32, MsiMessage)> = Vec::new();
                for _ in 0..60 {
                    let dev = rng.random_range(0..2u32);
                    let vector = rng.random_range(0..5u32);
                    let op = match rng.random_range(0..4) {
                        0 => HostOp::EnableVectors {
                            with_fd: (0..rng.random_range(1..6))
                                .map(|_| rng.random_bool(0.7))
                                .collect(),
                            closes_resize: false,
                        },
                        1 => HostOp::DisableIndex,
                        2 => HostOp::SwitchToUserspace { vector },
                        _ => HostOp::SetSignalling { vector },
                    };
                    let (mut fx, mut clock) = (Effects::new(), 0);
                    let timing = TimingConfig::default();
                    if h.exec(dev, &op, &mut clock, &timing, &mut fx).is_ok() {
                        msgs.extend(fx.iter().filter_map(|(_, f)| match f {
                            HostFx::Request(k, m) => Some((*k, *m)),
                            _ => None,
                        }));
                    }
                    for &(k, m) in &msgs {
                        for d in 0..2 {
                            // Twice: the second takes the cached route.
                            for _ in 0..2 {
                                assert_eq!(
                                    h.remap(d, k, &m),
                                    h.route_now(d, &m),
                                    "{iommu:?} {seed}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
