//! The root key RK and KDF_RK (SPEC.md §5.2).

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::chain_key::ChainKey;
use crate::crypto::{self, KEY_LEN, Secret32, X25519KeyPair};
use crate::labels::ROOT_INFO;

/// RK: the root of the Double Ratchet.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct RootKey(pub(crate) Secret32);

impl RootKey {
    /// KDF_RK(RK, DH(ours, theirs)) = HKDF-SHA256(salt = RK, IKM = DH output,
    /// info = ROOT_INFO, L = 64) split into (RK', CK). `None` if the DH
    /// output is all zero.
    pub(crate) fn advance(&self, ours: &X25519KeyPair, theirs: &[u8; KEY_LEN]) -> Option<(RootKey, ChainKey)> {
        let dh = ours.dh(theirs)?;
        Some(self.kdf(&dh))
    }

    pub(crate) fn kdf(&self, dh: &Secret32) -> (RootKey, ChainKey) {
        let mut okm = zeroize::Zeroizing::new([0u8; 2 * KEY_LEN]);
        crypto::hkdf(Some(&self.0.0), &dh.0, ROOT_INFO, okm.as_mut_slice());
        let mut rk = Secret32([0u8; KEY_LEN]);
        let mut ck = Secret32([0u8; KEY_LEN]);
        let (a, b) = okm.split_at(KEY_LEN);
        rk.0.copy_from_slice(a);
        ck.0.copy_from_slice(b);
        (RootKey(rk), ChainKey::new(ck, 0))
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}
