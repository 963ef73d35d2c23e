//! A vector for secrets that leaves no copies behind (SPEC.md §12).
//!
//! A plain `Vec` of zeroize-on-drop values still leaks: removing an element
//! shifts the others and leaves a stale copy of the last one in the spare
//! capacity, and growing reallocates and frees the old buffer unwiped. Here
//! a removed element is wiped in place first, the slots a removal vacates
//! are wiped, growth moves into a new buffer and wipes the old one, and drop
//! wipes the whole capacity.

use alloc::vec::Vec;

use zeroize::Zeroize;

pub(crate) struct SecretVec<T: Zeroize> {
    items: Vec<T>,
}

impl<T: Zeroize> SecretVec<T> {
    pub(crate) const fn new() -> Self {
        Self { items: Vec::new() }
    }

    pub(crate) fn with_capacity(n: usize) -> Self {
        Self { items: Vec::with_capacity(n) }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn iter(&self) -> core::slice::Iter<'_, T> {
        self.items.iter()
    }

    pub(crate) fn iter_mut(&mut self) -> core::slice::IterMut<'_, T> {
        self.items.iter_mut()
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.items.get(i)
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.items.get_mut(i)
    }

    pub(crate) fn last(&self) -> Option<&T> {
        self.items.last()
    }

    /// Makes room for `additional` more items without an unwiped
    /// reallocation.
    fn reserve(&mut self, additional: usize) {
        let needed = self.items.len().saturating_add(additional);
        if needed <= self.items.capacity() {
            return;
        }
        let capacity = needed.max(self.items.capacity().saturating_mul(2)).max(4);
        let mut grown = Vec::with_capacity(capacity);
        grown.append(&mut self.items);
        // `append` moved the items out bitwise; wipe what is left behind.
        self.items.zeroize();
        self.items = grown;
    }

    pub(crate) fn push(&mut self, item: T) {
        self.reserve(1);
        self.items.push(item);
    }

    /// Moves every item of `other` to the end of `self`.
    pub(crate) fn append(&mut self, other: &mut SecretVec<T>) {
        self.reserve(other.len());
        self.items.append(&mut other.items);
        // `other`'s buffer still holds bitwise copies: wipe it now.
        other.items.zeroize();
    }

    /// Removes item `i`, wiping it and the slot the shift vacates.
    pub(crate) fn remove(&mut self, i: usize) {
        if let Some(item) = self.items.get_mut(i) {
            item.zeroize();
            drop(self.items.remove(i));
            self.wipe_spare(1);
        }
    }

    /// Removes the first `n` items (the oldest), wiping them.
    pub(crate) fn remove_front(&mut self, n: usize) {
        let n = n.min(self.items.len());
        if n == 0 {
            return;
        }
        for item in self.items.iter_mut().take(n) {
            item.zeroize();
        }
        self.items.drain(..n);
        self.wipe_spare(n);
    }

    /// Keeps the items for which `keep` is true, wiping the others.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let decisions: Vec<bool> = self.items.iter().map(&mut keep).collect();
        for (item, kept) in self.items.iter_mut().zip(&decisions) {
            if !kept {
                item.zeroize();
            }
        }
        let mut i = 0;
        self.items.retain(|_| {
            let kept = decisions.get(i).copied().unwrap_or(true);
            i += 1;
            kept
        });
        self.wipe_spare(decisions.iter().filter(|k| !**k).count());
    }

    /// Wipes the first `n` slots after the end: where shifted items left
    /// stale copies.
    fn wipe_spare(&mut self, n: usize) {
        let spare = self.items.spare_capacity_mut();
        let n = n.min(spare.len());
        if let Some(slots) = spare.get_mut(..n) {
            slots.zeroize();
        }
    }
}

impl<T: Zeroize> Default for SecretVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Zeroize> Zeroize for SecretVec<T> {
    fn zeroize(&mut self) {
        self.items.zeroize();
    }
}

impl<T: Zeroize> Drop for SecretVec<T> {
    fn drop(&mut self) {
        // Wipes every element and the whole capacity.
        self.items.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;

    fn contents(v: &SecretVec<[u8; 4]>) -> Vec<u8> {
        v.iter().map(|x| x[0]).collect()
    }

    fn filled(n: u8) -> SecretVec<[u8; 4]> {
        let mut v = SecretVec::new();
        for i in 0..n {
            v.push([i; 4]);
        }
        v
    }

    #[test]
    fn keeps_order_through_growth_removal_and_retain() {
        let mut v = filled(10);
        assert!(v.items.capacity() >= 10);
        v.remove(3);
        assert_eq!(contents(&v), vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
        v.remove_front(2);
        assert_eq!(contents(&v), vec![2, 4, 5, 6, 7, 8, 9]);
        v.retain(|x| x[0] % 2 == 0);
        assert_eq!(contents(&v), vec![2, 4, 6, 8]);
        let mut other = filled(3);
        v.append(&mut other);
        assert_eq!(contents(&v), vec![2, 4, 6, 8, 0, 1, 2]);
        assert!(other.is_empty());
        v.remove(100); // out of range: no-op
        v.remove_front(100);
        assert!(v.is_empty());
    }
}
