//! Kernel and QEMU versions, and every modelled behaviour that changed between
//! them, in one place (docs/versions.md lists each with its source).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// A `major.minor` release, as written in configs: `"6.12"`, `"8.2"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major number.
    pub major: u16,
    /// Minor number.
    pub minor: u16,
}

impl Version {
    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for Version {
    type Err = Error;

    /// `"6.12"`; a third (patch) number is refused, because no modelled
    /// behaviour depends on it: a stable backport is an explicit override.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(format!(
                "version: expected major.minor such as \"6.12\", got {s:?}"
            ))
        };
        let (major, minor) = s.split_once('.').ok_or_else(bad)?;
        let num = |t: &str| -> Result<u16> {
            if t.is_empty() || t.len() > 4 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse().map_err(|_| bad())
        };
        Ok(Self::new(num(major)?, num(minor)?))
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|e: Error| {
            serde::de::Error::custom(e.to_string().trim_start_matches("invalid argument: "))
        })
    }
}

/// The host kernel that runs vfio-pci, the PCI/MSI core, the vector domain
/// and the IOMMU driver.
pub mod kernel {
    use super::Version;

    /// x86 vector reservation mode ("x86/vector: Rework the vector management",
    /// the 4.15 series).
    pub const RESERVATION_MODE: Version = Version::new(4, 15);
    /// "PCI/MSI: Enable and mask MSI-X early" (438553958ba1, 5.14; backported
    /// to stable kernels, hence the `early_enable` override).
    pub const EARLY_ENABLE: Version = Version::new(5, 14);
    /// VFIO dynamic MSI-X: vfio-pci allocates vectors after enable without
    /// reporting `VFIO_IRQ_INFO_NORESIZE` (6.5).
    pub const VFIO_DYNAMIC_MSIX: Version = Version::new(6, 5);
    /// The default host kernel.
    pub const DEFAULT: Version = Version::new(6, 12);
}

/// QEMU's vfio-pci.
pub mod qemu {
    use super::Version;

    /// QEMU 8.2: `vfio_msix_enable` enables with no vector
    /// (`vfio_enable_msix_no_vec`) instead of pre-requesting vector 0, and
    /// `vfio_msix_vector_do_use` honours `VFIO_IRQ_INFO_NORESIZE` (dynamic
    /// MSI-X when the host allows it).
    pub const DYNAMIC_MSIX: Version = Version::new(8, 2);
    /// The default QEMU.
    pub const DEFAULT: Version = Version::new(8, 2);
}

/// The behaviours of one kernel/QEMU pair, each with its override applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// The host kernel.
    pub kernel: Version,
    /// QEMU.
    pub qemu: Version,
    /// `msix_capability_init` sets Enable and Function Mask before it
    /// allocates: new vectors are allocated function-masked, outside the
    /// device-wide window.
    pub early_enable: bool,
}

impl Platform {
    /// A pair with `early_enable` from the kernel version unless overridden.
    pub fn new(kernel: Version, qemu: Version, early_enable: Option<bool>) -> Self {
        Self {
            kernel,
            qemu,
            early_enable: early_enable.unwrap_or(kernel >= kernel::EARLY_ENABLE),
        }
    }

    /// Whether the kernel has x86 reservation mode.
    pub fn has_reservation_mode(&self) -> bool {
        self.kernel >= kernel::RESERVATION_MODE
    }

    /// Whether vfio-pci can add vectors to an enabled MSI-X index.
    pub fn has_vfio_dynamic_msix(&self) -> bool {
        self.kernel >= kernel::VFIO_DYNAMIC_MSIX
    }

    /// Whether QEMU uses dynamic MSI-X when the host offers it (8.2+);
    /// earlier QEMU disables and re-enables the index to grow it, whatever
    /// the host reports.
    pub fn qemu_honours_noresize(&self) -> bool {
        self.qemu >= qemu::DYNAMIC_MSIX
    }

    /// Whether QEMU's `vfio_msix_enable` pre-requests host vector 0
    /// (`vfio_msix_vector_do_use(0)` then `release(0)`): before 8.2. The
    /// guest's first unmask of entry 0 is then no resize.
    pub fn qemu_prerequests_vector0(&self) -> bool {
        self.qemu < qemu::DYNAMIC_MSIX
    }

    /// The first entry whose unmask makes QEMU grow `nr_vectors` after an
    /// enable: 0, or 1 when vector 0 is pre-requested.
    pub fn first_resizing_entry(&self) -> u32 {
        u32::from(self.qemu_prerequests_vector0())
    }
}

impl Platform {
    /// The pair parsed from config strings.
    pub fn parse(kernel: &str, qemu: &str, early_enable: Option<bool>) -> Result<Self> {
        Ok(Self::new(kernel.parse()?, qemu.parse()?, early_enable))
    }

    /// Every modelled behaviour of this pair, by name (for reports and the
    /// layers above).
    pub fn behaviours(&self) -> serde_json::Value {
        serde_json::json!({
            "kernel": self.kernel,
            "qemu": self.qemu,
            "early_enable": self.early_enable,
            "reservation_mode": self.has_reservation_mode(),
            "vfio_dynamic_msix": self.has_vfio_dynamic_msix(),
            "qemu_honours_noresize": self.qemu_honours_noresize(),
            "qemu_prerequests_vector0": self.qemu_prerequests_vector0(),
            "first_resizing_entry": self.first_resizing_entry(),
            // A guest's new entries are resizes unless both sides do dynamic MSI-X.
            "resizes": !(self.has_vfio_dynamic_msix() && self.qemu_honours_noresize()),
        })
    }
}

impl Default for Platform {
    fn default() -> Self {
        Self::new(kernel::DEFAULT, qemu::DEFAULT, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_order_and_print() {
        let v: Version = "6.12".parse().unwrap();
        assert_eq!(v, Version::new(6, 12));
        assert!(Version::new(6, 2) < v && v < Version::new(7, 0));
        assert_eq!(v.to_string(), "6.12");
        for bad in ["6", "6.", ".1", "6.12.3", "a.b", "6.-1", "99999.1", ""] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, "\"6.12\"");
        assert_eq!(serde_json::from_str::<Version>(&json).unwrap(), v);
    }

    #[test]
    fn behaviours_follow_the_versions() {
        let p = |k: &str, q: &str, e| Platform::new(k.parse().unwrap(), q.parse().unwrap(), e);
        assert!(p("5.14", "8.2", None).early_enable);
        assert!(!p("5.13", "8.2", None).early_enable);
        assert!(
            p("5.10", "8.2", Some(true)).early_enable,
            "a stable backport"
        );
        assert!(!p("6.12", "8.2", Some(false)).early_enable);
        assert!(p("7.2", "7.2", None).qemu_prerequests_vector0());
        assert_eq!(p("6.12", "7.2", None).first_resizing_entry(), 1);
        assert_eq!(p("6.12", "8.2", None).first_resizing_entry(), 0);
        assert!(!p("6.4", "8.2", None).has_vfio_dynamic_msix());
        assert!(p("6.5", "8.2", None).has_vfio_dynamic_msix());
        assert!(!p("4.14", "8.2", None).has_reservation_mode());
    }
}
