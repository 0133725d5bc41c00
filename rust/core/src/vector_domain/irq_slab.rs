//! The domain's irqs by number ([`IrqSlab`]), numbers handed out as `irq_alloc_descs`
//! does.

use super::irq_info::IrqInfo;

/// Allocated irqs by number. Numbers are handed out lowest-free first from a
/// bitmap, as `irq_alloc_descs` does, so a freed number is reused.
#[derive(Clone, Debug, Default)]
pub(super) struct IrqSlab {
    /// `Some` exactly for the numbers whose bit is set in `used`.
    pub(super) slots: Vec<Option<IrqInfo>>,
    /// One bit per number in use.
    pub(super) used: Vec<u64>,
    /// No word below this one has a free bit, and this one (if any) has one.
    pub(super) first_free_word: usize,
    pub(super) len: usize,
}

impl IrqSlab {
    /// The number the next insert will use: the lowest free bit of `first_free_word`, which
    /// has one (or the first number past the words).
    #[inline(always)]
    pub(super) fn next_number(&self) -> Option<u32> {
        let w = self.first_free_word;
        let n = match self.used.get(w) {
            Some(&bits) => w * 64 + (!bits).trailing_zeros() as usize,
            None => self.used.len() * 64,
        };
        u32::try_from(n).ok()
    }

    /// Store `info` under a free number (the one `next_number` gave, or one the caller
    /// checked). `slots` and `used` grow together, a whole word of numbers at a time, so an
    /// insert below the end only sets its bit; `first_free_word` moves only when its word
    /// fills up. The slot is known empty (its bit was clear): nothing is read or dropped.
    // Always in line: out of line (the extension's build left it so) the `info` went through
    // the stack and its reload stalled on store forwarding, 4.8 % of a resize storm.
    #[inline(always)]
    pub(super) fn insert(&mut self, irq: u32, info: IrqInfo) {
        let i = irq as usize;
        let w = i / 64;
        let word = match self.used.get_mut(w) {
            Some(word) => word,
            None => self.grow(w),
        };
        debug_assert!(*word & (1 << (i % 64)) == 0, "irq {irq} inserted twice");
        *word |= 1 << (i % 64);
        if *word == u64::MAX {
            // A word other than `first_free_word` filling up leaves it where it is.
            self.advance_first_free();
        }
        if let Some(slot) = self.slots.get_mut(i) {
            // Empty (its bit was clear): forgetting the `None` it held drops nothing.
            std::mem::forget(slot.replace(info));
        }
        self.len += 1;
    }

    /// Store `info` under the lowest free number and return it (`None`, nothing stored, when
    /// that number is past `u32`): [`next_number`](Self::next_number) then
    /// [`insert`](Self::insert), with the free word read once.
    // Measured with callgrind: the number's word looked up once per allocation of a resize.
    #[inline(always)]
    pub(super) fn insert_next(&mut self, info: IrqInfo) -> Option<u32> {
        let w = self.first_free_word;
        let Some(word) = self.used.get_mut(w) else {
            return self.insert_past_end(info);
        };
        // `first_free_word` has a free bit.
        let bit = (!*word).trailing_zeros() as usize;
        let i = w * 64 + bit;
        let irq = u32::try_from(i).ok()?;
        *word |= 1 << bit;
        if *word == u64::MAX {
            self.advance_first_free();
        }
        if let Some(slot) = self.slots.get_mut(i) {
            // Empty (its bit was clear): forgetting the `None` it held drops nothing.
            std::mem::forget(slot.replace(info));
        }
        self.len += 1;
        Some(irq)
    }

    /// [`insert_next`](Self::insert_next) when every word is full: the first number past them.
    #[cold]
    fn insert_past_end(&mut self, info: IrqInfo) -> Option<u32> {
        let irq = self.next_number()?;
        self.insert(irq, info);
        Some(irq)
    }

    /// Room for the numbers of word `w`: `used` gets words up to it, `slots` 64 entries each.
    /// Returns word `w`.
    #[cold]
    pub(super) fn grow(&mut self, w: usize) -> &mut u64 {
        self.slots.resize_with((w + 1) * 64, || None);
        self.used.resize(w + 1, 0);
        &mut self.used[w]
    }

    /// Move `first_free_word` past the full words (no word below it has a free bit).
    #[cold]
    pub(super) fn advance_first_free(&mut self) {
        while self.first_free_word < self.used.len() && self.used[self.first_free_word] == u64::MAX
        {
            self.first_free_word += 1;
        }
    }

    /// Take irq `irq` out of its slot and free its number (`None` for a free number).
    #[inline(always)]
    pub(super) fn take(&mut self, irq: u32) -> Option<IrqInfo> {
        let i = irq as usize;
        let info = self.slots.get_mut(i)?.take()?;
        self.len -= 1;
        let w = i / 64;
        if let Some(word) = self.used.get_mut(w) {
            *word &= !(1 << (i % 64));
        }
        self.first_free_word = self.first_free_word.min(w);
        Some(info)
    }

    /// Free the number of irq `irq`, which holds nothing to drop (its affinity is the
    /// default): its info is forgotten unread.
    #[inline(always)]
    pub(super) fn vacate(&mut self, irq: u32) {
        if let Some(info) = self.take(irq) {
            debug_assert!(info.affinity.is_all());
            std::mem::forget(info);
        }
    }

    #[inline(always)]
    pub(super) fn get(&self, irq: u32) -> Option<&IrqInfo> {
        self.slots.get(irq as usize)?.as_ref()
    }

    #[inline(always)]
    pub(super) fn get_mut(&mut self, irq: u32) -> Option<&mut IrqInfo> {
        self.slots.get_mut(irq as usize)?.as_mut()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, &IrqInfo)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k as u32, v)))
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }
}
