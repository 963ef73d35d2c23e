//! A secret that is there or not, like `Option`, but whose absence is zero
//! bytes (SPEC.md §12: secrets are wiped wherever they are moved or freed).
//!
//! An enum's unused payload is not touched by drop glue and holds whatever
//! bytes the value was built from: a `None` or `Pending` moved from the
//! stack into a heap-allocated state (a session record boxes its sessions)
//! copies stack leftovers, keys included, into memory that is later freed
//! unwiped. A slot always holds a fully written value, all zero when empty,
//! and wipes it in place when cleared.

use zeroize::Zeroize;

/// A value that has an all-zero "absent" form.
pub(crate) trait Blank {
    fn blank() -> Self;
}

pub(crate) struct Slot<T: Zeroize + Blank> {
    present: bool,
    value: T,
}

impl<T: Zeroize + Blank> Slot<T> {
    pub(crate) fn empty() -> Self {
        Self { present: false, value: T::blank() }
    }

    pub(crate) fn full(value: T) -> Self {
        Self { present: true, value }
    }

    pub(crate) fn as_ref(&self) -> Option<&T> {
        self.present.then_some(&self.value)
    }

    pub(crate) fn as_mut(&mut self) -> Option<&mut T> {
        self.present.then_some(&mut self.value)
    }

    pub(crate) fn is_some(&self) -> bool {
        self.present
    }

    /// Replaces the value; the old one is dropped (and wiped) in place.
    pub(crate) fn set(&mut self, value: T) {
        self.value = value;
        self.present = true;
    }

    /// Wipes the value in place and marks the slot empty.
    pub(crate) fn clear(&mut self) {
        self.value.zeroize();
        self.present = false;
    }
}
