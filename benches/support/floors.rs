//! Floors shared by the benches: the exact primitive calls an operation
//! cannot avoid, with the crates the library uses.
#![allow(dead_code)]

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use hmac::Hmac;
use hmac::Mac;
use sha2::Sha256;

pub(crate) fn hmac_step(ck: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(ck).unwrap();
    m.update(&[1]);
    let mk: [u8; 32] = m.finalize().into_bytes().into();
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(ck).unwrap();
    m.update(&[2]);
    (mk, m.finalize().into_bytes().into())
}

pub(crate) fn hkdf44(mk: &[u8; 32]) -> [u8; 44] {
    let mut okm = [0u8; 44];
    Hkdf::<Sha256>::new(None, mk).expand(b"sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256/MessageKey", &mut okm).unwrap();
    okm
}

pub(crate) fn seal_open(key: &[u8; 32], buf: &mut [u8]) {
    let c = Aes256Gcm::new(&(*key).into());
    let nonce = Nonce::from([7u8; 12]);
    let tag: Tag = c.encrypt_inout_detached(&nonce, &[0u8; 69], buf.into()).unwrap();
    let c = Aes256Gcm::new(&(*key).into());
    c.decrypt_inout_detached(&nonce, &[0u8; 69], buf.into(), &tag).unwrap();
}

/// One side's unavoidable work for a chain message: chain step, key
/// expansion, AEAD (sealing or opening counted once each over both sides).
pub(crate) fn chain_floor(ck: &mut [u8; 32], buf: &mut [u8]) {
    let (mk, next) = hmac_step(ck);
    let okm = hkdf44(&mk);
    let (mk2, _) = hmac_step(&next);
    let _ = hkdf44(&mk2);
    *ck = next;
    seal_open(okm[..32].try_into().unwrap(), buf);
}
