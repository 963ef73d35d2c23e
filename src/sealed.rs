//! Saved states sealed at rest under a caller's storage key (SPEC.md §11.4).
//!
//! ```text
//!  0      1             13
//!  +------+-------------+---------------------------------+-----------+
//!  | 0x19 | nonce (12)  | AES-256-GCM(saved state bytes)  | tag (16)  |
//!  +------+-------------+---------------------------------+-----------+
//! ```
//! Associated data: `SEALED_STATE_AD || 0x19`.

use alloc::vec::Vec;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::crypto::{self, AeadKey, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::error::{DecodeError, RestoreError};
use crate::labels::SEALED_STATE_AD;
use crate::wire::{Reader, Writer, first_byte, kind};

fn ad() -> Vec<u8> {
    let mut ad = SEALED_STATE_AD.to_vec();
    ad.push(first_byte(kind::SEALED_STATE));
    ad
}

pub(crate) fn seal<R: CryptoRng + ?Sized>(rng: &mut R, storage_key: &[u8; KEY_LEN], plaintext: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = crypto::random_array(rng);
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.put_u8(first_byte(kind::SEALED_STATE));
    out.put(&nonce);
    let start = out.len();
    out.put(plaintext);
    let body = out.get_mut(start..).unwrap_or_default();
    #[allow(
        clippy::expect_used,
        reason = "AES-GCM refuses only inputs over 64 GiB; saved states are bounded far below"
    )]
    let tag = AeadKey::new(*storage_key, nonce).seal_in_place(&ad(), body).expect("saved states are small");
    out.put(&tag);
    out
}

pub(crate) fn open(storage_key: &[u8; KEY_LEN], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, RestoreError> {
    let mut r = Reader::new(sealed);
    r.header(kind::SEALED_STATE)?;
    let nonce: [u8; NONCE_LEN] = r.array()?;
    let offset = r.position();
    let rest = r.rest();
    let split = rest.len().checked_sub(TAG_LEN).ok_or(DecodeError::Truncated { offset })?;
    let (ct, tag) = rest.split_at(split);
    let mut tag_bytes = [0u8; TAG_LEN];
    tag_bytes.copy_from_slice(tag);
    let mut plain = Zeroizing::new(ct.to_vec());
    AeadKey::new(*storage_key, nonce)
        .open_in_place(&ad(), &mut plain, &tag_bytes)
        .map_err(|()| RestoreError::Authentication)?;
    Ok(plain)
}
