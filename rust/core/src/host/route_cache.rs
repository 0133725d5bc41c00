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

use crate::msi::MsiMessage;

/// One cached route.
#[derive(Debug, Clone, Copy)]
struct Route {
    msg: MsiMessage,
    /// The device's [`RouteCache::epoch`] when it was cached.
    epoch: u64,
    cpu: u32,
    vector: u8,
}

/// One device's routes, by table entry (grown on first use).
#[derive(Debug, Clone, Default)]
pub(super) struct RouteCache {
    /// Bumped by every IRTE change of the device: older routes are stale.
    epoch: u64,
    routes: Vec<Option<Route>>,
}

impl RouteCache {
    /// Entry `k`'s cached route for `msg`, if still valid.
    #[inline]
    pub fn get(&self, k: u32, msg: &MsiMessage) -> Option<(u32, u8)> {
        match self.routes.get(k as usize) {
            Some(Some(r)) if r.epoch == self.epoch && r.msg == *msg => Some((r.cpu, r.vector)),
            _ => None,
        }
    }

    /// Remember that entry `k`'s `msg` reaches `(cpu, vector)`.
    pub fn put(&mut self, k: u32, msg: &MsiMessage, (cpu, vector): (u32, u8)) {
        let k = k as usize;
        if self.routes.len() <= k {
            self.routes.resize(k + 1, None);
        }
        self.routes[k] = Some(Route {
            msg: *msg,
            epoch: self.epoch,
            cpu,
            vector,
        });
    }

    /// One of the device's IRTEs changed: every cached route is stale.
    pub fn invalidate(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
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
    }
}
