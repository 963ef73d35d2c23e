//! Message keys MK and their expansion to an AES-256-GCM key and nonce
//! (SPEC.md §5.4).

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{self, AeadKey, KEY_LEN, NONCE_LEN, Secret32};

/// MK_N: used for exactly one message, then deleted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKey {
    key: Secret32,
    #[zeroize(skip)]
    index: u32,
}

impl MessageKey {
    pub(crate) fn new(key: Secret32, index: u32) -> Self {
        Self { key, index }
    }

    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    pub(crate) fn key(&self) -> &Secret32 {
        &self.key
    }

    /// HKDF-SHA256(salt = 0^32, IKM = MK, info) -> 44 bytes = AES key || nonce.
    /// The nonce is derived, never random: each MK seals one message.
    pub(crate) fn expand(&self, info: &[u8]) -> AeadKey {
        let mut okm = zeroize::Zeroizing::new([0u8; KEY_LEN + NONCE_LEN]);
        crypto::hkdf(None, &self.key.0, info, okm.as_mut_slice());
        AeadKey::from_okm(&okm)
    }
}

impl fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { key: _, index } = self;
        f.debug_struct("MessageKey").field("index", index).finish_non_exhaustive()
    }
}
