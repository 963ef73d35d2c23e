//! Receiving chains and the skipped-message-key store (SPEC.md §5.6, §9).

use alloc::vec::Vec;

use zeroize::Zeroize;

use super::MAX_SKIPPED_KEYS;
use super::chain_key::ChainKey;
use super::message_key::MessageKey;
use crate::crypto::{KEY_LEN, Secret32};
use crate::error::DecodeError;
use crate::secret_vec::SecretVec;
use crate::wire::{Reader, Writer};

/// The receiving chain: the peer's ratchet key DHr and CKr at index Nr.
#[derive(Zeroize)]
pub(crate) struct ReceivingChain {
    pub(crate) ratchet_key: [u8; KEY_LEN],
    pub(crate) chain_key: ChainKey,
}

impl super::slot::Blank for ReceivingChain {
    fn blank() -> Self {
        Self { ratchet_key: [0u8; KEY_LEN], chain_key: super::slot::Blank::blank() }
    }
}

/// A closed receiving chain (SPEC.md §5.6): its ratchet key and its length
/// PN as the peer announced it. No key is kept; its messages below PN that
/// were never received live on as skipped keys.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClosedChain {
    pub(crate) ratchet_key: [u8; KEY_LEN],
    pub(crate) length: u32,
}

/// One stored skipped message key: (DHr, N) -> MK.
#[derive(Zeroize)]
pub(crate) struct SkippedKey {
    pub(crate) ratchet_key: [u8; KEY_LEN],
    pub(crate) key: MessageKey,
}

/// Skipped message keys, keyed by (DHr, N), oldest first, bounded by
/// [`MAX_SKIPPED_KEYS`]. Used and evicted keys are wiped in place.
#[derive(Default)]
pub(crate) struct SkippedKeys {
    entries: SecretVec<SkippedKey>,
}

impl SkippedKeys {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn find(&self, ratchet_key: &[u8; KEY_LEN], index: u32) -> Option<usize> {
        self.entries.iter().position(|e| e.key.index() == index && e.ratchet_key == *ratchet_key)
    }

    /// Deletes (and wipes) the stored keys of chain `ratchet_key` at or past
    /// `from`.
    pub(crate) fn remove_chain_from(&mut self, ratchet_key: &[u8; KEY_LEN], from: u32) {
        self.entries.retain(|e| !(e.ratchet_key == *ratchet_key && e.key.index() >= from));
    }

    /// Whether any stored key belongs to the chain with this ratchet key.
    pub(crate) fn has_ratchet_key(&self, ratchet_key: &[u8; KEY_LEN]) -> bool {
        self.entries.iter().any(|e| e.ratchet_key == *ratchet_key)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8; KEY_LEN], u32)> {
        self.entries.iter().map(|e| (&e.ratchet_key, e.key.index()))
    }

    pub(crate) fn get(&self, idx: usize) -> Option<&MessageKey> {
        self.entries.get(idx).map(|e| &e.key)
    }

    pub(crate) fn remove(&mut self, idx: usize) {
        self.entries.remove(idx);
    }

    /// Appends keys, deleting the oldest past the bound (all at once: one
    /// shift, not one per key).
    pub(crate) fn extend(&mut self, mut batch: SecretVec<SkippedKey>) {
        if batch.len() > MAX_SKIPPED_KEYS {
            batch.remove_front(batch.len() - MAX_SKIPPED_KEYS);
        }
        let overflow = (self.entries.len() + batch.len()).saturating_sub(MAX_SKIPPED_KEYS);
        self.entries.remove_front(overflow);
        self.entries.append(&mut batch);
    }

    /// Encoded size in bytes (SPEC.md §11.2).
    pub(crate) fn encoded_len(&self) -> usize {
        2 + self.entries.len() * (KEY_LEN + 4 + KEY_LEN)
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.put_u16(self.entries.len() as u16);
        for e in self.entries.iter() {
            out.put(&e.ratchet_key);
            out.put_u32(e.key.index());
            out.put(&e.key.key().0);
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.count_u16(MAX_SKIPPED_KEYS)?;
        let mut entries = SecretVec::with_capacity(n);
        for _ in 0..n {
            let ratchet_key = r.array()?;
            let index = r.u32()?;
            entries.push(SkippedKey { ratchet_key, key: MessageKey::new(Secret32(r.array()?), index) });
        }
        Ok(Self { entries })
    }
}
