//! The one error type of the core. Each variant maps to one Python exception
//! class at the binding boundary (see `rust/python/src/errors.rs`).

use std::fmt;

/// Everything a core call can refuse; no core call panics on user input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad argument: the kernel's -EINVAL, or input no real caller could pass.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A resource ran out: the kernel's -ENOSPC (CPU vectors, IRTEs, ...).
    #[error("no space: {0}")]
    NoSpace(String),
    /// The kernel would WARN or BUG here; `sites` names each condition hit.
    #[error("invalid operation: {}{}", .sites.join(", "), detail_suffix(.detail))]
    InvalidOperation {
        /// Condition names, in the order they fired (e.g. `free_not_allocated`).
        sites: Vec<String>,
        /// Free-form detail for humans.
        detail: String,
    },
    /// A bus access the device does not decode (size, alignment, range, RO).
    #[error("MMIO error: {0}")]
    Mmio(String),
    /// An accounting invariant of a simulation run does not hold.
    #[error("accounting error: {0}")]
    Accounting(String),
    /// A run was stopped from outside (cancelled, or a signal) at a point
    /// where its state is whole: it may go on.
    #[error("interrupted: {0}")]
    Interrupted(String),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl Error {
    /// Build an `InvalidOperation` for a single named condition.
    pub fn invalid_op(site: &str, detail: impl fmt::Display) -> Self {
        Error::InvalidOperation {
            sites: vec![site.to_string()],
            detail: detail.to_string(),
        }
    }
}

/// Result alias used across the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_op_names_site_and_detail() {
        let e = Error::invalid_op("free_not_allocated", "cpu 1 bit 40");
        assert_eq!(
            e.to_string(),
            "invalid operation: free_not_allocated (cpu 1 bit 40)"
        );
        let e = Error::InvalidOperation {
            sites: vec!["a".into(), "b".into()],
            detail: String::new(),
        };
        assert_eq!(e.to_string(), "invalid operation: a, b");
    }
}
