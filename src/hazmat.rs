//! ⚠️ Hazardous materials: raw protocol steps for test vectors and fuzzing.
//!
//! **Do not use these in an application.** They expose intermediate secrets
//! (DH outputs, SK, chain and message keys) so that another implementation
//! can be checked step by step against SPEC.md. Nothing here changes how the
//! protocol runs; this module only makes internal functions visible, and
//! exists only with the `hazmat` feature.

use alloc::vec::Vec;

use rand_core::CryptoRng;

use crate::crypto::{KEY_LEN, NONCE_LEN, Secret32};
use crate::error::KeyAgreementError;
use crate::kem::{KEM_CIPHERTEXT_LEN, KEM_PUBLIC_KEY_LEN, KemPreKey};
use crate::keys::{IdentityKey, IdentityKeyPair, OneTimePreKey, PreKeyBundle, SignedPreKey};
use crate::labels;
use crate::ratchet::chain_key::ChainKey;
use crate::ratchet::message_key::MessageKey;
use crate::ratchet::root_key::RootKey;

/// Every X3DH intermediate (SPEC.md §4.3).
#[derive(Clone, Debug)]
pub struct X3dhTranscript {
    /// DH1, DH2, DH3 and, with a one-time prekey, DH4.
    pub dh: Vec<[u8; KEY_LEN]>,
    /// The shared secret SK.
    pub sk: [u8; KEY_LEN],
    /// AD = IK_A || IK_B || binding.
    pub ad: Vec<u8>,
    /// SHA-256(AD).
    pub ad_hash: [u8; KEY_LEN],
    /// PQXDH only: the ML-KEM shared secret SS (SPEC.md §4.8).
    pub kem_shared_secret: Option<[u8; KEY_LEN]>,
    /// PQXDH initiator only: the ML-KEM ciphertext.
    pub kem_ciphertext: Option<Vec<u8>>,
}

fn transcript(agreement: &crate::x3dh::Agreement) -> X3dhTranscript {
    let out = agreement.derive();
    X3dhTranscript {
        dh: agreement.dhs.iter().map(|d| d.0).collect(),
        sk: out.sk.0,
        ad: agreement.ad.clone(),
        ad_hash: out.ad_hash,
        kem_shared_secret: agreement.kem_secret.as_ref().map(|s| s.0),
        kem_ciphertext: None,
    }
}

/// X3DH, or PQXDH for a bundle with a KEM prekey, as initiator; returns
/// EK_A's public key and the transcript.
///
/// # Errors
/// As [`crate::Session::initiate`].
pub fn x3dh_initiate<R: CryptoRng + ?Sized>(
    rng: &mut R,
    identity: &IdentityKeyPair,
    bundle: &PreKeyBundle,
    binding: &[u8],
) -> Result<([u8; KEY_LEN], X3dhTranscript), KeyAgreementError> {
    let (ek, agreement, kem) = crate::x3dh::initiate(rng, identity, bundle, binding)?;
    let mut t = transcript(&agreement);
    t.kem_ciphertext = kem.map(|k| k.ciphertext.to_vec());
    Ok((ek, t))
}

/// X3DH (or PQXDH, given the KEM prekey and ciphertext) as responder.
///
/// # Errors
/// As [`crate::Session::respond`].
pub fn x3dh_respond(
    identity: &IdentityKeyPair,
    signed_prekey: &SignedPreKey,
    one_time_prekey: Option<&OneTimePreKey>,
    kem: Option<(&KemPreKey, &[u8; KEM_CIPHERTEXT_LEN])>,
    initiator: &IdentityKey,
    ephemeral: &[u8; KEY_LEN],
    binding: &[u8],
) -> Result<X3dhTranscript, KeyAgreementError> {
    let ct = kem.map(|(k, c)| (k, alloc::boxed::Box::new(*c)));
    let agreement = crate::x3dh::respond(
        identity,
        signed_prekey,
        one_time_prekey,
        ct.as_ref().map(|(k, c)| (*k, c)),
        initiator,
        ephemeral,
        binding,
    )?;
    Ok(transcript(&agreement))
}

/// ML-KEM-1024 KEYGEN(d, z) (SPEC.md §4.8): the encapsulation key.
pub fn kem_public_key(seed: &[u8; crate::KEM_SEED_LEN]) -> Vec<u8> {
    KemPreKey::from_seed(crate::PreKeyId(0), crate::KemPreKeyKind::OneTime, seed).public_key().to_vec()
}

/// ML-KEM-1024 ENCAPS(ek, m): (ciphertext, shared secret).
pub fn kem_encapsulate(ek: &[u8; KEM_PUBLIC_KEY_LEN], m: &[u8; KEY_LEN]) -> (Vec<u8>, [u8; KEY_LEN]) {
    let (ct, ss) = crate::kem::encapsulate(ek, &Secret32(*m));
    (ct.to_vec(), ss.0)
}

/// ML-KEM-1024 DECAPS with the key rebuilt from its seed.
pub fn kem_decapsulate(seed: &[u8; crate::KEM_SEED_LEN], ct: &[u8; KEM_CIPHERTEXT_LEN]) -> [u8; KEY_LEN] {
    KemPreKey::from_seed(crate::PreKeyId(0), crate::KemPreKeyKind::OneTime, seed).decapsulate(ct).0
}

/// The expanded ML-KEM-1024 decapsulation key (3168 bytes) of a seed, for
/// tools that look for it (the heap-residue check). The library itself
/// never keeps it: it is rebuilt from the seed and wiped at each use.
pub fn kem_decapsulation_key(seed: &[u8; crate::KEM_SEED_LEN]) -> zeroize::Zeroizing<Vec<u8>> {
    zeroize::Zeroizing::new(crate::kem::decapsulation_key(seed))
}

/// Whether an encapsulation key passes FIPS 203's modulus check.
pub fn kem_key_acceptable(ek: &[u8; KEM_PUBLIC_KEY_LEN]) -> bool {
    crate::kem::acceptable(ek)
}

/// `SIGN(identity, context || u32(id) || key)`: the signature of a signed
/// prekey (`labels::SIGNED_PREKEY_CONTEXT`) or a KEM prekey
/// (`labels::KEM_PREKEY_CONTEXT`) over any key bytes, for building
/// bundles signed under the wrong context.
pub fn sign_prekey_with_context(
    identity: &IdentityKeyPair,
    context: &[u8],
    id: u32,
    key: &[u8],
) -> [u8; crate::crypto::SIGNATURE_LEN] {
    identity.sign(&[context, &id.to_be_bytes(), key])
}

/// A public KEM prekey from raw parts (no check), for crafted bundles.
pub fn public_kem_prekey(
    id: u32,
    key: &[u8; KEM_PUBLIC_KEY_LEN],
    signature: &[u8; crate::crypto::SIGNATURE_LEN],
) -> crate::PublicKemPreKey {
    crate::PublicKemPreKey { id: crate::PreKeyId(id), key: alloc::boxed::Box::new(*key), signature: *signature }
}

/// KDF_RK(RK, DH output) = (RK', CK) (SPEC.md §5.2).
pub fn kdf_rk(root_key: &[u8; KEY_LEN], dh_output: &[u8; KEY_LEN]) -> ([u8; KEY_LEN], [u8; KEY_LEN]) {
    let (rk, ck) = RootKey(Secret32(*root_key)).kdf(&Secret32(*dh_output));
    (rk.0.0, ck.key().0)
}

/// KDF_CK(CK) = (MK, CK') (SPEC.md §5.3).
pub fn kdf_ck(chain_key: &[u8; KEY_LEN]) -> ([u8; KEY_LEN], [u8; KEY_LEN]) {
    match ChainKey::new(Secret32(*chain_key), 0).step() {
        Some((mk, next)) => (mk.key().0, next.key().0),
        None => ([0u8; KEY_LEN], [0u8; KEY_LEN]), // index 0 always has a successor
    }
}

/// A session message key's AES-256-GCM key and nonce (SPEC.md §5.4).
pub fn expand_message_key(message_key: &[u8; KEY_LEN]) -> ([u8; KEY_LEN], [u8; NONCE_LEN]) {
    let k = MessageKey::new(Secret32(*message_key), 0).expand(labels::MESSAGE_KEY_INFO);
    (*k.key(), *k.nonce())
}

/// A group message key's AES-256-GCM key and nonce (SPEC.md §7.3).
pub fn expand_group_message_key(message_key: &[u8; KEY_LEN]) -> ([u8; KEY_LEN], [u8; NONCE_LEN]) {
    let k = MessageKey::new(Secret32(*message_key), 0).expand(labels::GROUP_MESSAGE_KEY_INFO);
    (*k.key(), *k.nonce())
}

/// A group message key's commitment, HMAC-SHA256(MK, GROUP_COMMITMENT_LABEL)
/// (SPEC.md §7.3): what the group signature covers besides the message.
pub fn group_commitment(message_key: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    crate::crypto::hmac_sha256(message_key, labels::GROUP_COMMITMENT_LABEL).0
}

/// Whether 32 bytes are an acceptable Ed25519 public key (SPEC.md §2.4:
/// canonical, in the prime-order subgroup, not the identity).
pub fn ed25519_key_acceptable(public: &[u8; KEY_LEN]) -> bool {
    crate::crypto::ed25519_public_to_x25519(public).is_some()
}

/// VERIFY of SPEC.md §2.4 for an acceptable key (false for one that is not).
pub fn ed25519_verify(public: &[u8; KEY_LEN], message: &[u8], signature: &[u8; crate::crypto::SIGNATURE_LEN]) -> bool {
    ed25519_key_acceptable(public) && crate::crypto::ed25519_verify(public, message, signature)
}

/// The X25519 private key of an identity (SPEC.md §3.1): the clamped
/// first 32 bytes of SHA-512(seed).
pub fn identity_x25519_secret(identity: &IdentityKeyPair) -> [u8; KEY_LEN] {
    identity.x25519().secret_bytes().0
}

/// Signs an arbitrary X25519 public key as signed prekey `id` (SPEC.md
/// §3.2), for building bundles with chosen (e.g. low-order) keys.
pub fn sign_signed_prekey(
    identity: &IdentityKeyPair,
    id: u32,
    public: &[u8; KEY_LEN],
) -> [u8; crate::crypto::SIGNATURE_LEN] {
    identity.sign(&[labels::SIGNED_PREKEY_CONTEXT, &id.to_be_bytes(), public])
}

/// The X25519 form of an identity public key: the Montgomery u-coordinate
/// of the Ed25519 point (SPEC.md §3.1).
pub fn identity_public_x25519(identity: &IdentityKey) -> [u8; KEY_LEN] {
    identity.x25519()
}

/// ⚠️ Fuzzing builds only (`--cfg fuzzing`): treat failed AEAD tags and
/// group signatures as valid, so a fuzzer can explore what lies behind them.
/// Does not exist in any other build (SPEC.md §12).
#[cfg(fuzzing)]
pub fn set_fuzzing_auth_bypass(on: bool) {
    crate::crypto::FUZZING_AUTH_BYPASS.store(on, core::sync::atomic::Ordering::Relaxed);
}
