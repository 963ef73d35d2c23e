//! X3DH key agreement (SPEC.md §4) and PQXDH, its ML-KEM extension (§4.8).
//!
//! The initiator (Alice) verifies the responder's signed prekey, then
//! computes DH1..DH3 (and DH4 with a one-time prekey); both sides derive
//! `SK = HKDF(salt = 0^32, IKM = 0xFF^32 || DH1 || DH2 || DH3 [|| DH4],
//! info = X3DH_INFO)` and `AD = IK_A || IK_B || binding`.

use alloc::vec::Vec;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::crypto::{self, KEY_LEN, Secret32, X25519KeyPair};
use crate::error::KeyAgreementError;
use crate::kem::{self, KemCiphertext, KemPreKey};
use crate::keys::PreKeyId;
use crate::keys::{IdentityKey, IdentityKeyPair, OneTimePreKey, PreKeyBundle, SignedPreKey};
use crate::labels::{PQXDH_INFO, X3DH_INFO};

/// Longest caller binding string accepted (SPEC.md §9): addresses and device
/// ids fit easily; the bound keeps saved sessions small.
pub const MAX_BINDING_LEN: usize = 1024;

/// The result of X3DH on either side: SK and the hash of AD.
pub(crate) struct X3dhOutput {
    pub(crate) sk: Secret32,
    /// SHA-256(AD), the prefix of every message's AEAD associated data.
    pub(crate) ad_hash: [u8; KEY_LEN],
}

/// DH1..DH3 (and DH4), for PQXDH the KEM shared secret SS, and AD: what
/// both sides derive SK and H_AD from.
pub(crate) struct Agreement {
    pub(crate) dhs: Vec<Secret32>,
    /// PQXDH only (SPEC.md §4.8).
    pub(crate) kem_secret: Option<Secret32>,
    pub(crate) ad: Vec<u8>,
}

impl Agreement {
    /// SK = HKDF(0^32, 0xFF^32 || DH1 || ... [|| SS], X3DH_INFO or
    /// PQXDH_INFO), H_AD = SHA-256(AD).
    pub(crate) fn derive(&self) -> X3dhOutput {
        let mut ikm = Zeroizing::new(Vec::with_capacity(KEY_LEN * 6));
        ikm.extend_from_slice(&[0xFF; KEY_LEN]);
        for dh in &self.dhs {
            ikm.extend_from_slice(&dh.0);
        }
        let info = match &self.kem_secret {
            Some(ss) => {
                ikm.extend_from_slice(&ss.0);
                PQXDH_INFO
            }
            None => X3DH_INFO,
        };
        let mut sk = Secret32([0u8; KEY_LEN]);
        crypto::hkdf(Some(&[0u8; KEY_LEN]), &ikm, info, &mut sk.0);
        X3dhOutput { sk, ad_hash: crypto::sha256(&[&self.ad]) }
    }
}

/// What a PQXDH initiator adds to its prekey messages: the KEM prekey id
/// and the ciphertext (SPEC.md §4.8, §6.8).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KemHeader {
    pub(crate) id: PreKeyId,
    pub(crate) ciphertext: KemCiphertext,
}

fn associated_data(initiator: &IdentityKey, responder: &IdentityKey, binding: &[u8]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(2 * KEY_LEN + binding.len());
    ad.extend_from_slice(&initiator.to_bytes());
    ad.extend_from_slice(&responder.to_bytes());
    ad.extend_from_slice(binding);
    ad
}

fn dh(ours: &X25519KeyPair, theirs: &[u8; KEY_LEN]) -> Result<Secret32, KeyAgreementError> {
    ours.dh(theirs).ok_or(KeyAgreementError::NonContributory)
}

/// SPEC.md §4.2 (X3DH) or §4.8 (PQXDH, a bundle with a KEM prekey),
/// initiator. Verifies every signature before anything is drawn. Consumes
/// 32 bytes of `rng` (the ephemeral key EK_A), then for PQXDH 32 more (m).
/// Returns EK_A's public key and, for PQXDH, the KEM header.
pub(crate) fn initiate<R: CryptoRng + ?Sized>(
    rng: &mut R,
    identity: &IdentityKeyPair,
    bundle: &PreKeyBundle,
    binding: &[u8],
) -> Result<([u8; KEY_LEN], Agreement, Option<KemHeader>), KeyAgreementError> {
    // One decompression of IK_B serves both signatures and its X25519 form.
    let ik_b_x = bundle.verified()?.x25519();
    let ek = X25519KeyPair::generate(rng);
    let ik_b = bundle.identity_key();
    let mut dhs = Vec::with_capacity(4);
    dhs.push(dh(identity.x25519(), bundle.signed_prekey())?);
    dhs.push(dh(&ek, &ik_b_x)?);
    dhs.push(dh(&ek, bundle.signed_prekey())?);
    if let Some(opk) = bundle.one_time_prekey() {
        dhs.push(dh(&ek, opk)?);
    }
    let (kem_secret, header) = match bundle.kem_prekey() {
        Some(kem) => {
            let mut m = Secret32([0u8; KEY_LEN]);
            rng.fill_bytes(&mut m.0);
            let (ciphertext, ss) = kem::encapsulate(kem.public_key(), &m);
            (Some(ss), Some(KemHeader { id: kem.id(), ciphertext }))
        }
        None => (None, None),
    };
    let ad = associated_data(&identity.public_key(), &ik_b, binding);
    Ok((*ek.public(), Agreement { dhs, kem_secret, ad }, header))
}

/// SPEC.md §4.4 (X3DH) or §4.8 step 4 (PQXDH, with the KEM prekey and the
/// ciphertext), responder.
pub(crate) fn respond(
    identity: &IdentityKeyPair,
    signed_prekey: &SignedPreKey,
    one_time_prekey: Option<&OneTimePreKey>,
    kem: Option<(&KemPreKey, &KemCiphertext)>,
    initiator: &IdentityKey,
    ephemeral: &[u8; KEY_LEN],
    binding: &[u8],
) -> Result<Agreement, KeyAgreementError> {
    let mut dhs = Vec::with_capacity(4);
    dhs.push(dh(signed_prekey.key(), &initiator.x25519())?);
    dhs.push(dh(identity.x25519(), ephemeral)?);
    dhs.push(dh(signed_prekey.key(), ephemeral)?);
    if let Some(opk) = one_time_prekey {
        dhs.push(dh(opk.key(), ephemeral)?);
    }
    let kem_secret = kem.map(|(key, ct)| key.decapsulate(ct));
    let ad = associated_data(initiator, &identity.public_key(), binding);
    Ok(Agreement { dhs, kem_secret, ad })
}
