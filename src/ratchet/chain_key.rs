//! Chain keys CKs / CKr and KDF_CK (SPEC.md §5.3).

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::message_key::MessageKey;
use crate::crypto::{self, Secret32};
use crate::labels::{CHAIN_MESSAGE_KEY_BYTE, CHAIN_NEXT_KEY_BYTE};

/// A chain key together with the index N of the message key it yields next.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey {
    key: Secret32,
    #[zeroize(skip)]
    index: u32,
}

impl super::slot::Blank for ChainKey {
    fn blank() -> Self {
        Self { key: Secret32([0u8; 32]), index: 0 }
    }
}

impl ChainKey {
    pub(crate) fn new(key: Secret32, index: u32) -> Self {
        Self { key, index }
    }

    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    pub(crate) fn key(&self) -> &Secret32 {
        &self.key
    }

    /// CK' = HMAC-SHA256(CK, 0x02), index + 1. `None` when the index would
    /// pass `u32::MAX` (SPEC.md §9: counters never wrap).
    pub(crate) fn next(&self) -> Option<ChainKey> {
        let index = self.index.checked_add(1)?;
        Some(Self { key: crypto::hmac_sha256(&self.key.0, &[CHAIN_NEXT_KEY_BYTE]), index })
    }

    /// One chain step: (MK_N, CK_{N+1}), keying HMAC once for both.
    pub(crate) fn step(&self) -> Option<(MessageKey, ChainKey)> {
        let index = self.index.checked_add(1)?;
        let (mk, ck) = crypto::hmac_sha256_pair(&self.key.0, CHAIN_MESSAGE_KEY_BYTE, CHAIN_NEXT_KEY_BYTE);
        Some((MessageKey::new(mk, self.index), Self { key: ck, index }))
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { key: _, index } = self;
        f.debug_struct("ChainKey").field("index", index).finish_non_exhaustive()
    }
}
