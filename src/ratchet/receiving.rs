//! Receiving chains and the skipped-message-key store (SPEC.md §5.6, §9).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::MAX_SKIPPED_KEYS;
use super::chain_key::ChainKey;
use super::message_key::MessageKey;
use crate::crypto::{KEY_LEN, Secret32};
use crate::error::DecodeError;
use crate::wire::{Reader, Writer};

/// A receiving chain: the peer's ratchet key DHr and CKr at index Nr.
#[derive(Clone)]
pub(crate) struct ReceivingChain {
    pub(crate) ratchet_key: [u8; KEY_LEN],
    pub(crate) chain_key: ChainKey,
}

/// Skipped message keys, keyed by (DHr, N), oldest first, bounded by
/// [`MAX_SKIPPED_KEYS`].
#[derive(Clone, Default)]
pub(crate) struct SkippedKeys {
    entries: VecDeque<([u8; KEY_LEN], MessageKey)>,
}

impl SkippedKeys {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn find(&self, ratchet_key: &[u8; KEY_LEN], index: u32) -> Option<usize> {
        self.entries.iter().position(|(rk, mk)| mk.index() == index && rk == ratchet_key)
    }

    pub(crate) fn get(&self, idx: usize) -> Option<&MessageKey> {
        self.entries.get(idx).map(|(_, mk)| mk)
    }

    pub(crate) fn remove(&mut self, idx: usize) {
        self.entries.remove(idx);
    }

    /// Appends keys, deleting the oldest past the bound.
    pub(crate) fn extend(&mut self, ratchet_key: [u8; KEY_LEN], keys: Vec<MessageKey>) {
        for mk in keys {
            if self.entries.len() >= MAX_SKIPPED_KEYS {
                self.entries.pop_front();
            }
            self.entries.push_back((ratchet_key, mk));
        }
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.put_u16(self.entries.len() as u16);
        for (rk, mk) in &self.entries {
            out.put(rk);
            out.put_u32(mk.index());
            out.put(&mk.key().0);
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.count_u16(MAX_SKIPPED_KEYS)?;
        let mut entries = VecDeque::with_capacity(n);
        for _ in 0..n {
            let rk = r.array()?;
            let index = r.u32()?;
            entries.push_back((rk, MessageKey::new(Secret32(r.array()?), index)));
        }
        Ok(Self { entries })
    }
}
