//! The one error type of the core. Each variant maps to one Python exception
//! class at the binding boundary (see `rust/python/src/errors.rs`).
//!
//! An [`Error`] is two words, a variant tag and one pointer to its text, so
//! that the model's `Result`s come back in registers: the storm runs at over
//! four instructions per cycle, and a larger `Result` is written to memory by
//! every call and read back by its caller (benches/README.md, issue 14).

use std::fmt;
use std::ops::Deref;

/// Everything a core call can refuse; no core call panics on user input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad argument: the kernel's -EINVAL, or input no real caller could pass.
    #[error("invalid argument: {0}")]
    InvalidArgument(Detail),
    /// A resource ran out: the kernel's -ENOSPC (CPU vectors, IRTEs, ...).
    #[error("no space: {0}")]
    NoSpace(Detail),
    /// The kernel would WARN or BUG here; its `sites` name each condition hit.
    #[error("invalid operation: {0}")]
    InvalidOperation(Box<WarnSites>),
    /// A bus access the device does not decode (size, alignment, range, RO).
    #[error("MMIO error: {0}")]
    Mmio(Detail),
    /// An accounting invariant of a simulation run does not hold.
    #[error("accounting error: {0}")]
    Accounting(Detail),
    /// A run was stopped from outside (cancelled, or a signal) at a point
    /// where its state is whole: it may go on.
    #[error("interrupted: {0}")]
    Interrupted(Detail),
}

/// An error's text for humans, behind one pointer (see the module doc).
// A `String` is three words and a `Box<str>` two: the box of a `String` is the
// one-word owner of a text. The extra allocation is on the error path only.
#[allow(clippy::box_collection)]
#[derive(Clone, PartialEq, Eq)]
pub struct Detail(Box<String>);

impl Detail {
    /// The text, owned.
    pub fn into_string(self) -> String {
        *self.0
    }
}

impl Deref for Detail {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for Detail {
    fn from(s: String) -> Self {
        Self(Box::new(s))
    }
}

impl From<&str> for Detail {
    fn from(s: &str) -> Self {
        Self(Box::new(s.to_owned()))
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self.0, f)
    }
}

/// What [`Error::InvalidOperation`] carries: the kernel's WARN or BUG
/// conditions that fired, and a detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarnSites {
    /// Condition names, in the order they fired (e.g. `free_not_allocated`).
    pub sites: Vec<String>,
    /// Free-form detail for humans.
    pub detail: String,
}

impl fmt::Display for WarnSites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sites.join(", "))?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

impl Error {
    /// Build an `InvalidOperation` for a single named condition.
    pub fn invalid_op(site: &str, detail: impl fmt::Display) -> Self {
        Self::warn_sites(vec![site.to_string()], detail)
    }

    /// Build an `InvalidOperation` for the conditions `sites`, in order.
    pub fn warn_sites(sites: Vec<String>, detail: impl fmt::Display) -> Self {
        Error::InvalidOperation(Box::new(WarnSites {
            sites,
            detail: detail.to_string(),
        }))
    }

    /// The WARN or BUG conditions of an `InvalidOperation` (empty for any
    /// other error).
    pub fn sites(&self) -> &[String] {
        match self {
            Error::InvalidOperation(w) => &w.sites,
            _ => &[],
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
        assert_eq!(e.sites(), ["free_not_allocated"]);
        let e = Error::warn_sites(vec!["a".into(), "b".into()], "");
        assert_eq!(e.to_string(), "invalid operation: a, b");
        assert_eq!(e.sites(), ["a", "b"]);
        assert!(Error::NoSpace("x".into()).sites().is_empty());
    }

    #[test]
    fn a_result_is_two_words() {
        // The point of the layout (module doc): results fit in two registers.
        assert_eq!(std::mem::size_of::<Error>(), 16);
        assert_eq!(std::mem::size_of::<Result<()>>(), 16);
        assert_eq!(std::mem::size_of::<Result<u32>>(), 16);
        assert_eq!(std::mem::size_of::<Result<(u32, u32)>>(), 16);
    }

    #[test]
    fn details_read_and_print_as_their_text() {
        let d = Detail::from("no IRTE left".to_string());
        assert_eq!(&*d, "no IRTE left");
        assert_eq!(format!("{d}"), "no IRTE left");
        assert_eq!(format!("{d:?}"), "\"no IRTE left\"");
        assert_eq!(
            format!("{:?}", Error::NoSpace(d.clone())),
            "NoSpace(\"no IRTE left\")"
        );
        assert_eq!(d.into_string(), "no IRTE left");
    }
}
