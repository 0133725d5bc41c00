//! The list a policy writes a guest action's host operations into: owned by
//! the engine and reused from one action to the next, with the flag lists of
//! its `EnableVectors` operations (measured with callgrind: a fresh list and
//! a fresh flag list per resize were two allocations and two frees, about
//! 1 % of a resize).

use std::ops::Deref;

use crate::host::HostOp;

/// Flag lists kept for reuse, at most: a guest action's answer holds one or
/// two `EnableVectors`, and a policy that builds its own lists (a Python
/// one does) never takes them back, so the spares must not grow with the run.
const SPARE_LISTS: usize = 4;

/// Host operations in order, as a policy answers a guest action. Reads as a
/// slice of [`HostOp`].
#[derive(Debug, Default)]
pub struct HostOps {
    ops: Vec<HostOp>,
    /// Flag lists of cleared `EnableVectors` operations, emptied, for
    /// [`HostOps::fd_list`].
    spare: Vec<Vec<bool>>,
}

impl HostOps {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Operation `op` comes next.
    #[inline]
    pub fn push(&mut self, op: HostOp) {
        self.ops.push(op);
    }

    /// An empty flag list for an `EnableVectors` operation, with the
    /// allocation of one this list cleared before, if any.
    #[inline]
    pub fn fd_list(&mut self) -> Vec<bool> {
        self.spare.pop().unwrap_or_default()
    }

    /// Empty the list; the flag lists of its `EnableVectors` operations are
    /// kept for [`HostOps::fd_list`], up to [`SPARE_LISTS`] of them.
    pub fn clear(&mut self) {
        for op in self.ops.drain(..) {
            if let HostOp::EnableVectors { mut with_fd, .. } = op {
                if self.spare.len() < SPARE_LISTS {
                    with_fd.clear();
                    self.spare.push(with_fd);
                }
            }
        }
    }

    /// The operations, as a list of their own.
    pub fn into_vec(self) -> Vec<HostOp> {
        self.ops
    }
}

impl Deref for HostOps {
    type Target = [HostOp];

    fn deref(&self) -> &[HostOp] {
        &self.ops
    }
}

impl Extend<HostOp> for HostOps {
    fn extend<I: IntoIterator<Item = HostOp>>(&mut self, iter: I) {
        self.ops.extend(iter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleared_list_hands_its_flag_lists_back_empty() {
        let mut ops = HostOps::new();
        let mut with_fd = ops.fd_list();
        with_fd.extend([true, false, true]);
        let cap = with_fd.capacity();
        ops.push(HostOp::DisableIndex);
        ops.push(HostOp::EnableVectors {
            with_fd,
            closes_resize: true,
        });
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0], HostOp::DisableIndex);
        ops.clear();
        assert!(ops.is_empty());
        let again = ops.fd_list();
        assert!(again.is_empty());
        assert_eq!(again.capacity(), cap);
        // None left: a fresh one.
        assert_eq!(ops.fd_list().capacity(), 0);
        ops.extend([HostOp::IntxEnable]);
        assert_eq!(ops.into_vec(), vec![HostOp::IntxEnable]);
    }

    #[test]
    fn lists_a_policy_never_takes_back_are_not_kept_past_a_few() {
        // A policy that builds its own flag lists (as a Python one does):
        // one list cleared per action, none taken back, for many actions.
        let mut ops = HostOps::new();
        for _ in 0..1000 {
            ops.push(HostOp::EnableVectors {
                with_fd: vec![true; 64],
                closes_resize: true,
            });
            ops.clear();
        }
        assert_eq!(ops.spare.len(), SPARE_LISTS);
    }
}
