//! Floors shared by the benches: the exact primitive calls an operation
//! cannot avoid, with the crates the library uses.
#![allow(dead_code)]

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use hmac::Hmac;
use hmac::Mac;
use sha2::Sha256;
use sottovoce::{Account, IdentityKeyPair, KemPreKey, OneTimePreKey, PreKeyId, PreKeyStore, SignedPreKey};

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

/// A prekey store view that never deletes, so one store serves every
/// benchmark iteration of `respond`.
pub(crate) struct ReadOnly<'a>(pub(crate) &'a Account);

impl PreKeyStore for ReadOnly<'_> {
    fn identity(&self) -> &IdentityKeyPair {
        self.0.identity_key_pair()
    }
    fn signed_prekey(&self, id: PreKeyId) -> Option<&SignedPreKey> {
        self.0.signed_prekey(id)
    }
    fn one_time_prekey(&self, id: PreKeyId) -> Option<&OneTimePreKey> {
        self.0.one_time_prekey(id)
    }
    fn remove_one_time_prekey(&mut self, _: PreKeyId) {}
    fn kem_prekey(&self, id: PreKeyId) -> Option<&KemPreKey> {
        self.0.kem_prekey(id)
    }
    fn base_key_used(&self, id: PreKeyId, base_key: &[u8; 32]) -> bool {
        self.0.base_key_used(id, base_key)
    }
    fn used_base_key_count(&self, id: PreKeyId) -> usize {
        self.0.used_base_key_count(id)
    }
    // Records nothing, so one store serves every iteration (a bench only).
    fn consume_kem_prekey(&mut self, _: PreKeyId, _: &[u8; 32]) {}
    fn requires_pq(&self) -> bool {
        PreKeyStore::requires_pq(self.0)
    }
}
