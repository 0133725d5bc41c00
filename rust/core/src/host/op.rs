//! The host operations a hypervisor policy can ask for, as data, and the typed
//! failure a host operation can end in. Policies (built-in or Python) return
//! lists of [`HostOp`]; [`crate::policy::step`] runs them and applies the
//! failure mode, so every policy fails the same way.

use crate::error::Error;

/// One host-side operation: a VFIO `SET_IRQS` call as QEMU issues it
/// (hw/vfio/pci.c → drivers/vfio/pci/vfio_pci_intrs.c), or one of the few
/// things a hypercall host does instead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostOp {
    /// `vfio_intx_disable` (from `vfio_disable_interrupts` in `vfio_msix_enable`).
    /// No host resource changes.
    IntxDisable,
    /// `vfio_enable_msix_no_vec`: SET_IRQS(MSIX, start 0, count 1, fd −1):
    /// host MSI-X enabled with one vector allocated and none requested.
    EnableNoVec,
    /// `vfio_device_irq_disable(MSIX)`: SET_IRQS(DATA_NONE, count 0) → host
    /// `vfio_msi_disable`: free every irq, MSI-X Enable cleared.
    DisableIndex,
    /// `vfio_enable_vectors`: SET_IRQS(EVENTFD, start 0, count =
    /// `with_fd.len()`); `with_fd[i]` is true when vector i gets an eventfd
    /// (host `request_irq`), false for fd −1 (allocated, not requested).
    EnableVectors {
        /// One flag per vector 0..count.
        with_fd: Vec<bool>,
        /// This enable ends a disable/re-enable resize: the run counts it
        /// once, when the enable takes effect.
        closes_resize: bool,
    },
    /// `set_irq_signalling` on a host without dynamic MSI-X: request one
    /// vector that is already allocated. On an unallocated vector the kernel
    /// answers -EINVAL (a host failure).
    SetSignalling {
        /// The vector.
        vector: u32,
    },
    /// `set_irq_signalling` on a host with dynamic MSI-X (Linux 6.5 VFIO):
    /// `vfio_msi_set_vector_signal` allocates the vector first
    /// (`pci_msix_alloc_irq_at`) when it is not yet allocated, then requests it.
    AddVector {
        /// The vector.
        vector: u32,
    },
    /// `vfio_msix_vector_release` with a KVM virq: the vector's trigger moves
    /// to QEMU's own eventfd, which the host does with `free_irq` then
    /// `request_irq` of the vector (if it has one requested).
    SwitchToUserspace {
        /// The vector.
        vector: u32,
    },
    /// `vfio_intx_enable` after MSI-X is disabled. No host resource changes.
    IntxEnable,
    /// One MSIX_ENABLE / MSIX_DISABLE hypercall round trip: costs
    /// `t_hypercall_ns`, changes nothing by itself.
    Hypercall,
    /// The guest's write never reaches the host (IMS in guest RAM without a
    /// negotiated grant): the vector has no host setup and every fire fails.
    Untrapped {
        /// The vector.
        vector: u32,
    },
}

impl HostOp {
    /// The vector this operation names, if any (checked against the table).
    pub fn vector(&self) -> Option<u32> {
        match self {
            HostOp::SetSignalling { vector }
            | HostOp::AddVector { vector }
            | HostOp::SwitchToUserspace { vector }
            | HostOp::Untrapped { vector } => Some(*vector),
            HostOp::EnableVectors { with_fd, .. } => with_fd.len().checked_sub(1).map(|n| n as u32),
            _ => None,
        }
    }
}

/// A host operation the host refused: what QEMU only logs (`error_report`)
/// and a hypercall host would return to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostFailure {
    /// -ENOSPC: no CPU vector or no IRTE left.
    NoSpace(String),
    /// -EINVAL: a vector named that the host never allocated (a NORESIZE host
    /// asked to request a vector past its allocation).
    NotAllocated {
        /// Device.
        dev: u32,
        /// Vector.
        vector: u32,
    },
}

/// How a host operation ended when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The host refused: the failure mode decides what happens.
    Failure(HostFailure),
    /// Anything else: bad input or a broken model invariant, passed on.
    Model(Error),
}

impl From<Error> for HostError {
    /// A model's -ENOSPC is a host failure; every other error is not.
    fn from(e: Error) -> Self {
        match e {
            Error::NoSpace(s) => HostError::Failure(HostFailure::NoSpace(s)),
            e => HostError::Model(e),
        }
    }
}

impl From<HostError> for Error {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Failure(HostFailure::NoSpace(s)) => Error::NoSpace(s),
            HostError::Failure(HostFailure::NotAllocated { dev, vector }) => Error::invalid_op(
                "set_signalling_unallocated",
                format!(
                    "device {dev} entry {vector} is past the host's vectors on a NORESIZE host"
                ),
            ),
            HostError::Model(e) => e,
        }
    }
}

/// Result of a host operation.
pub type HostResult<T> = std::result::Result<T, HostError>;
