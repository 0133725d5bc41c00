//! The engine's devices, each with a generation: a count of the times its
//! state was reachable for writing. A fire's fast path trusts what it
//! learnt about a vector only while its device's generation is unchanged
//! (`hot_route`), so every way to write a device goes through here and
//! moves the generation first; reading leaves it.

use std::ops::{Index, IndexMut};

use super::device::Device;

/// The devices by index, each with its generation.
pub(super) struct DeviceList {
    /// Side by side, so that a write access moves the generation with the
    /// one bounds check it takes to reach the device.
    devices: Vec<Generational>,
}

/// A device and its generation: starts at 1 (0 is what a route never
/// learnt carries) and moves on every write access. A `u64` counted by one
/// per access does not wrap in any run.
pub(super) struct Generational {
    gen: u64,
    device: Device,
}

impl DeviceList {
    /// The devices, each at generation 1.
    pub fn new(devices: Vec<Device>) -> Self {
        Self {
            devices: devices
                .into_iter()
                .map(|device| Generational { gen: 1, device })
                .collect(),
        }
    }

    /// How many devices.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Device `i`, to read.
    pub fn get(&self, i: usize) -> Option<&Device> {
        self.devices.get(i).map(|g| &g.device)
    }

    /// Device `i`, to write: its generation moves on.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Device> {
        let g = self.devices.get_mut(i)?;
        g.gen += 1;
        Some(&mut g.device)
    }

    /// Close entry `k`'s stale-queue episode on device `i`, returning when
    /// it began; the generation stays. The one write that moves nothing: a
    /// route is learnt only with its own vector's stall closed (an opening
    /// moves the generation), and no fire reads another vector's stall, so
    /// closing one makes no learnt route untrue. Past the list: nothing.
    pub fn close_stall(&mut self, i: usize, k: usize) -> Option<f64> {
        self.devices.get_mut(i)?.device.close_stall(k)
    }

    /// Device `dev`'s generation now; past the list `u64::MAX`, which is
    /// neither a device's nor what a route never learnt carries.
    #[inline]
    pub fn generation(&self, dev: u32) -> u64 {
        self.devices.get(dev as usize).map_or(u64::MAX, |g| g.gen)
    }

    /// Every device, to read.
    pub fn iter(&self) -> impl Iterator<Item = &Device> {
        self.devices.iter().map(|g| &g.device)
    }
}

impl Index<usize> for DeviceList {
    type Output = Device;

    #[inline]
    fn index(&self, i: usize) -> &Device {
        &self.devices[i].device
    }
}

impl IndexMut<usize> for DeviceList {
    /// Device `i`, to write: its generation moves on.
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut Device {
        let g = &mut self.devices[i];
        g.gen += 1;
        &mut g.device
    }
}

impl<'a> IntoIterator for &'a DeviceList {
    type Item = &'a Device;
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, Generational>, fn(&Generational) -> &Device>;

    fn into_iter(self) -> Self::IntoIter {
        self.devices.iter().map(|g| &g.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DeviceConfig;

    fn list(n: usize) -> DeviceList {
        let cfg = DeviceConfig::new(4);
        DeviceList::new(
            (0..n)
                .map(|_| Device::new(&cfg, vec![0; 4], None).unwrap())
                .collect(),
        )
    }

    #[test]
    fn a_write_access_moves_only_its_devices_generation() {
        let mut l = list(2);
        assert_eq!((l.generation(0), l.generation(1)), (1, 1));
        let _ = &l[0];
        let _ = l.get(1);
        let _ = l.iter().count();
        assert_eq!((l.generation(0), l.generation(1)), (1, 1), "reads leave it");
        l[1].granted = 3;
        assert_eq!((l.generation(0), l.generation(1)), (1, 2));
        let _ = l.get_mut(0);
        assert_eq!((l.generation(0), l.generation(1)), (2, 2));
        assert!(l.get_mut(2).is_none());
        l[0].open_stall(1, 5.0);
        assert_eq!(l.generation(0), 3);
        assert_eq!(l.close_stall(0, 1), Some(5.0));
        assert!(!l[0].stall_open(1));
        assert_eq!(l.generation(0), 3, "a stall closed moves nothing");
        assert_eq!(l.close_stall(7, 1), None);
        assert_eq!(l.generation(2), u64::MAX, "past the list: no device's");
    }
}
