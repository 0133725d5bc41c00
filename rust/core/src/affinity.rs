//! An irq's affinity mask as the vector domain keeps it: the default, every
//! possible CPU (`irq_default_affinity`), or a chosen sorted CPU list.
//!
//! The default is by far the common case (every VFIO vector starts with
//! it), and it is held without a copy and without a reference count: a
//! shared `Arc` cost an atomic increment at every irq allocation and an
//! atomic decrement at every teardown, which a profile of the resize storm
//! showed as the largest single cost of both.

use std::sync::Arc;

use crate::matrix::MAX_CPUS;

/// CPU numbers `0..MAX_CPUS`: the default mask of any host is a prefix.
static CPU_IDS: [u32; MAX_CPUS as usize] = {
    let mut ids = [0u32; MAX_CPUS as usize];
    let mut i = 0;
    while i < ids.len() {
        ids[i] = i as u32;
        i += 1;
    }
    ids
};

/// An irq's affinity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Affinity {
    /// The default: CPUs `0..n`, every possible CPU of an `n`-CPU host. A full word: an
    /// irq's mask is then written with one store (a `u32` left the upper half to merge).
    All(usize),
    /// A sorted, deduplicated, non-empty CPU list.
    List(Arc<[u32]>),
}

impl Affinity {
    /// The default mask of an `ncpus`-CPU host.
    #[inline]
    pub const fn all(ncpus: u32) -> Self {
        Affinity::All(ncpus as usize)
    }

    /// The mask as a sorted CPU list.
    #[inline]
    pub fn cpus(&self) -> &[u32] {
        match self {
            Affinity::All(n) => &CPU_IDS[..(*n).min(MAX_CPUS as usize)],
            Affinity::List(l) => l,
        }
    }

    /// Whether this is the default mask.
    #[inline]
    pub fn is_all(&self) -> bool {
        matches!(self, Affinity::All(_))
    }

    /// Whether `cpu` is in the mask.
    #[inline]
    pub fn contains(&self, cpu: u32) -> bool {
        match self {
            Affinity::All(n) => (cpu as usize) < *n,
            Affinity::List(l) => l.binary_search(&cpu).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_every_cpu_of_the_host() {
        let all = Affinity::all(4);
        assert_eq!(all.cpus(), [0, 1, 2, 3]);
        assert!(all.is_all() && all.contains(3) && !all.contains(4));
        let list = Affinity::List(vec![1, 3].into());
        assert_eq!(list.cpus(), [1, 3]);
        assert!(!list.is_all() && list.contains(3) && !list.contains(2));
        assert_eq!(Affinity::all(MAX_CPUS).cpus().len(), MAX_CPUS as usize);
    }
}
