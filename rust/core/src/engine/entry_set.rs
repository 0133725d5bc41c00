//! A set of a device's table entries, one bit each: which vectors the
//! guest driver uses. Aggregated booking walks only the members, in
//! ascending order (the order the books and the random draws follow).

/// A subset of the entries `0..entries` of one table.
#[derive(Debug, Clone, Default)]
pub(super) struct EntrySet {
    words: Vec<u64>,
    entries: usize,
}

impl EntrySet {
    /// The empty set over `entries` entries.
    pub fn new(entries: usize) -> Self {
        Self {
            words: vec![0; entries.div_ceil(64)],
            entries,
        }
    }

    /// The table size the set is over (not the number of members).
    #[inline]
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Whether entry `k` is a member (false past the table: `set` never
    /// sets a bit there, so only the word needs to exist; one bounds check
    /// on the per-event path, not two).
    #[inline]
    pub fn contains(&self, k: usize) -> bool {
        self.words
            .get(k / 64)
            .is_some_and(|w| w >> (k % 64) & 1 == 1)
    }

    /// Add or remove entry `k`; false (and no change) past the table.
    #[inline]
    pub fn set(&mut self, k: usize, on: bool) -> bool {
        if k >= self.entries {
            return false;
        }
        let w = &mut self.words[k / 64];
        let bit = 1u64 << (k % 64);
        if on {
            *w |= bit;
        } else {
            *w &= !bit;
        }
        true
    }

    /// Whether the set has no member.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Whether the two sets (over one table) share a member: a word at a
    /// time.
    #[inline]
    pub fn meets(&self, other: &EntrySet) -> bool {
        self.words
            .iter()
            .zip(&other.words)
            .any(|(&a, &b)| a & b != 0)
    }

    /// The member bits, 64 entries a word: entry `k` is bit `k % 64` of
    /// word `k / 64`; no bit at or past `entries` is set.
    #[inline]
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// The members, ascending.
    #[inline]
    pub fn iter(&self) -> Members<'_> {
        Members {
            words: &self.words,
            base: 0,
            bits: self.words.first().copied().unwrap_or(0),
        }
    }
}

/// The members of an [`EntrySet`], ascending: one word at a time, lowest
/// set bit first.
pub(super) struct Members<'a> {
    /// The current word and the ones after it.
    words: &'a [u64],
    /// Entry number of bit 0 of the current word.
    base: usize,
    /// The current word's members not yet returned.
    bits: u64,
}

impl Iterator for Members<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.bits == 0 {
            self.words = self.words.get(1..)?;
            self.base += 64;
            self.bits = *self.words.first()?;
        }
        let b = self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Some(self.base + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_out_ascending_and_the_table_bounds_the_set() {
        let mut s = EntrySet::new(130);
        for k in [129, 3, 64, 0, 63] {
            assert!(s.set(k, true));
        }
        assert!(!s.set(130, true), "past the table");
        assert!(!s.contains(130));
        s.set(3, false);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 63, 64, 129]);
        assert!(s.contains(64) && !s.contains(3));
        assert_eq!(s.entries(), 130);
        assert_eq!(EntrySet::new(0).iter().count(), 0);
    }
}
