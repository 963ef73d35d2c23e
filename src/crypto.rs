//! The one place that calls the primitive crates (SPEC.md §2, "The suite").
//!
//! Everything above this module speaks in terms of the protocol's own key
//! types; everything below it is `x25519-dalek`, `ed25519-dalek`, `aes-gcm`,
//! `hkdf`, `hmac` and `sha2`. Secrets that pass through here live in
//! zeroizing newtypes and temporary buffers are wiped before return.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signature, Signer, SigningKey as DalekSigningKey, VerifyingKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of every symmetric key, chain key, root key and public key.
pub(crate) const KEY_LEN: usize = 32;
/// AES-256-GCM nonce length.
pub(crate) const NONCE_LEN: usize = 12;
/// AES-256-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;
/// Ed25519 signature length.
pub(crate) const SIGNATURE_LEN: usize = 64;

/// A 32-byte secret: zeroized on drop, never printed, never compared (AEAD
/// tags and signatures are checked inside the primitive crates, in constant
/// time; nothing else compares secrets).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Secret32(pub(crate) [u8; KEY_LEN]);

impl core::fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secret32(<redacted>)")
    }
}

/// Draws 32 bytes from the caller's RNG. Every random value of the protocol
/// enters through here or [`random_array`], so vectors can replay them.
pub(crate) fn random_secret<R: CryptoRng + ?Sized>(rng: &mut R) -> Secret32 {
    let mut s = Secret32([0u8; KEY_LEN]);
    rng.fill_bytes(&mut s.0);
    s
}

/// Draws `N` public random bytes (nonces, key ids) from the caller's RNG.
pub(crate) fn random_array<const N: usize, R: CryptoRng + ?Sized>(rng: &mut R) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill_bytes(&mut b);
    b
}

// ---------------------------------------------------------------- X25519

/// An X25519 private key with its public key cached (the public key is
/// never recomputed on the hot path).
#[derive(Clone)]
pub(crate) struct X25519KeyPair {
    secret: StaticSecret,
    public: [u8; KEY_LEN],
}

impl X25519KeyPair {
    /// Builds the pair from 32 private bytes (clamping happens inside X25519).
    pub(crate) fn from_secret(secret: &Secret32) -> Self {
        let secret = StaticSecret::from(secret.0);
        let public = XPublic::from(&secret).to_bytes();
        Self { secret, public }
    }

    /// Rebuilds a pair from a saved private key and its saved public key,
    /// without the scalar multiplication. A wrong saved public key can only
    /// make the peer's decryption fail (SPEC.md §11.1).
    pub(crate) fn from_parts(secret: &Secret32, public: [u8; KEY_LEN]) -> Self {
        Self { secret: StaticSecret::from(secret.0), public }
    }

    pub(crate) fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_secret(&random_secret(rng))
    }

    pub(crate) fn public(&self) -> &[u8; KEY_LEN] {
        &self.public
    }

    pub(crate) fn secret_bytes(&self) -> Secret32 {
        Secret32(self.secret.to_bytes())
    }

    /// X25519(self, their_public). Returns `None` for an all-zero
    /// (non-contributory) result, i.e. a low-order peer key (SPEC.md §2.2).
    pub(crate) fn dh(&self, their_public: &[u8; KEY_LEN]) -> Option<Secret32> {
        let shared = self.secret.diffie_hellman(&XPublic::from(*their_public));
        if shared.was_contributory() { Some(Secret32(shared.to_bytes())) } else { None }
    }
}

// `StaticSecret` wipes itself on drop; the public half is not secret.
impl ZeroizeOnDrop for X25519KeyPair {}

impl crate::ratchet::slot::Blank for X25519KeyPair {
    fn blank() -> Self {
        Self { secret: StaticSecret::from([0u8; KEY_LEN]), public: [0u8; KEY_LEN] }
    }
}

impl Zeroize for X25519KeyPair {
    fn zeroize(&mut self) {
        // `StaticSecret` has no `Zeroize`, but its `Drop` wipes it in place:
        // the assignment drops the old value where it lies.
        self.secret = StaticSecret::from([0u8; KEY_LEN]);
    }
}

// ---------------------------------------------------------------- Ed25519

/// An Ed25519 signing key (RFC 8032) with its verifying key cached.
#[derive(Clone)]
pub(crate) struct Ed25519KeyPair {
    signing: DalekSigningKey,
}

impl Ed25519KeyPair {
    pub(crate) fn from_seed(seed: &Secret32) -> Self {
        Self { signing: DalekSigningKey::from_bytes(&seed.0) }
    }

    pub(crate) fn seed(&self) -> Secret32 {
        Secret32(self.signing.to_bytes())
    }

    pub(crate) fn public(&self) -> [u8; KEY_LEN] {
        self.signing.verifying_key().to_bytes()
    }

    pub(crate) fn verifying_key(&self) -> Ed25519Public {
        Ed25519Public { key: self.signing.verifying_key() }
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }

    /// The X25519 private key of the same identity: the clamped first half
    /// of SHA-512(seed), i.e. the Ed25519 secret scalar (SPEC.md §3.1).
    pub(crate) fn to_x25519(&self) -> X25519KeyPair {
        let scalar = Zeroizing::new(self.signing.to_scalar_bytes());
        X25519KeyPair::from_secret(&Secret32(*scalar))
    }
}

// `SigningKey` wipes itself on drop.
impl ZeroizeOnDrop for Ed25519KeyPair {}

/// Accepts an Ed25519 public key (SPEC.md §3.1): the bytes are the
/// canonical encoding (re-encoding the decoded point gives the same 32
/// bytes, so y < p and no sign bit on x = 0) of a point of the prime-order
/// subgroup ([L]P is the identity) other than the identity. Returns its
/// X25519 (Montgomery) form.
pub(crate) fn ed25519_public_to_x25519(public: &[u8; KEY_LEN]) -> Option<[u8; KEY_LEN]> {
    let point = accept_point(public)?;
    Some(point.to_montgomery().to_bytes())
}

/// The X25519 form of an Ed25519 public key that was accepted before (a key
/// read back from an authenticated sealed state): decompression only. An
/// undecodable key gives the all-zero u, whose DHs fail as non-contributory.
pub(crate) fn ed25519_public_to_x25519_unchecked(public: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    CompressedEdwardsY(*public).decompress().map_or([0u8; KEY_LEN], |p| p.to_montgomery().to_bytes())
}

fn accept_point(public: &[u8; KEY_LEN]) -> Option<EdwardsPoint> {
    let point = CompressedEdwardsY(*public).decompress()?;
    let canonical = point.compress().to_bytes() == *public;
    (canonical && point.is_torsion_free() && !point.is_identity()).then_some(point)
}

/// VERIFY (SPEC.md §2.1): S < L, R the canonical encoding of a point not
/// of small order, and the cofactorless equation [S]B = R + [k]A. This is
/// ed25519-dalek's `verify_strict`; the key itself was accepted per §3.1.
/// (The library verifies through [`Ed25519Public`], which decompresses a
/// key once for several signatures; this is the hazmat form.)
#[cfg(feature = "hazmat")]
pub(crate) fn ed25519_verify(public: &[u8; KEY_LEN], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    let sig = Signature::from_bytes(signature);
    vk.verify_strict(message, &sig).is_ok()
}

/// An Ed25519 public key checked once (canonical, not of small order) and
/// kept decompressed, so verifying does not decompress it again.
#[derive(Clone)]
pub(crate) struct Ed25519Public {
    key: VerifyingKey,
}

impl Ed25519Public {
    pub(crate) fn from_bytes(bytes: &[u8; KEY_LEN]) -> Option<Self> {
        // One decompression: the accepted point becomes the verifying key.
        Some(Self { key: VerifyingKey::from(accept_point(bytes)?) })
    }

    /// A key accepted before, read back from an authenticated sealed state:
    /// decompressed (needed to verify) but not checked again.
    pub(crate) fn trusted(bytes: &[u8; KEY_LEN]) -> Option<Self> {
        Some(Self { key: VerifyingKey::from_bytes(bytes).ok()? })
    }

    pub(crate) fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.key.to_bytes()
    }

    /// Strict verification (SPEC.md §2.1).
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        self.key.verify_strict(message, &Signature::from_bytes(signature)).is_ok()
    }

    /// The X25519 form (SPEC.md §3.1), from the point already decompressed.
    pub(crate) fn to_x25519(&self) -> [u8; KEY_LEN] {
        self.key.to_montgomery().to_bytes()
    }
}

// ---------------------------------------------------------------- KDFs

/// HKDF-SHA256 (RFC 5869) with the given salt (`None` = 32 zero bytes),
/// filling `okm`.
pub(crate) fn hkdf(salt: Option<&[u8]>, ikm: &[u8], info: &[u8], okm: &mut [u8]) {
    let hk = Hkdf::<Sha256>::new(salt, ikm);
    // Every caller asks for at most 64 bytes, far below HKDF's 255 * 32 limit.
    if hk.expand(info, okm).is_err() {
        okm.zeroize();
    }
}

/// HMAC-SHA256(key, data).
pub(crate) fn hmac_sha256(key: &[u8; KEY_LEN], data: &[u8]) -> Secret32 {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut out = Secret32([0u8; KEY_LEN]);
    if let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        mac.update(data);
        out.0.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// (HMAC-SHA256(key, [a]), HMAC-SHA256(key, [b])), keying HMAC once: the
/// two chain-step outputs of SPEC.md §5.3 share their key.
pub(crate) fn hmac_sha256_pair(key: &[u8; KEY_LEN], a: u8, b: u8) -> (Secret32, Secret32) {
    let mut out_a = Secret32([0u8; KEY_LEN]);
    let mut out_b = Secret32([0u8; KEY_LEN]);
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    if let Ok(keyed) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        let mut mac_a = keyed.clone();
        let mut mac_b = keyed;
        mac_a.update(&[a]);
        mac_b.update(&[b]);
        out_a.0.copy_from_slice(&mac_a.finalize().into_bytes());
        out_b.0.copy_from_slice(&mac_b.finalize().into_bytes());
    }
    (out_a, out_b)
}

/// SHA-256(parts[0] || parts[1] || ...).
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; KEY_LEN] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

// ---------------------------------------------------------------- AEAD

/// An AES-256-GCM key and its 96-bit nonce, always derived together and used
/// exactly once (SPEC.md §5.4).
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct AeadKey {
    key: [u8; KEY_LEN],
    nonce: [u8; NONCE_LEN],
}

impl AeadKey {
    pub(crate) fn new(key: [u8; KEY_LEN], nonce: [u8; NONCE_LEN]) -> Self {
        Self { key, nonce }
    }

    /// Expands 44 bytes of key material into key || nonce.
    pub(crate) fn from_okm(okm: &[u8; KEY_LEN + NONCE_LEN]) -> Self {
        let mut key = [0u8; KEY_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        let (k, n) = okm.split_at(KEY_LEN);
        key.copy_from_slice(k);
        nonce.copy_from_slice(n);
        Self { key, nonce }
    }

    #[cfg(feature = "hazmat")]
    pub(crate) fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    #[cfg(feature = "hazmat")]
    pub(crate) fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }

    /// Encrypts `buf` in place and returns the tag. Consumes the key: a key
    /// and nonce pair seals exactly one message.
    pub(crate) fn seal_in_place(self, ad: &[u8], buf: &mut [u8]) -> Result<[u8; TAG_LEN], ()> {
        let cipher = Aes256Gcm::new(&self.key.into());
        let nonce = Nonce::from(self.nonce);
        let tag = cipher.encrypt_inout_detached(&nonce, ad, buf.into()).map_err(|_| ())?;
        Ok(tag.into())
    }

    /// Decrypts `buf` in place if `tag` authenticates; on failure `buf` is
    /// left as ciphertext (aes-gcm does not release unauthenticated data).
    pub(crate) fn open_in_place(&self, ad: &[u8], buf: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), ()> {
        let cipher = Aes256Gcm::new(&self.key.into());
        let nonce = Nonce::from(self.nonce);
        cipher.decrypt_inout_detached(&nonce, ad, buf.into(), &Tag::from(*tag)).map_err(|_| ())
    }
}

/// Authentication bypass for fuzzing builds only (SPEC.md §12,
/// `fuzz/README.md`).
///
/// In a build with `--cfg fuzzing` (set by cargo-fuzz, never by a normal
/// build) a fuzz target may switch it on with
/// `hazmat::set_fuzzing_auth_bypass(true)`; a failed AEAD tag or group
/// signature is then treated as valid so the fuzzer reaches the code behind
/// them. In every other build this function is the constant `false` and the
/// switch does not exist. This is the only place the bypass lives.
#[inline(always)]
pub(crate) fn auth_bypassed() -> bool {
    #[cfg(fuzzing)]
    {
        FUZZING_AUTH_BYPASS.load(core::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(fuzzing))]
    {
        false
    }
}

#[cfg(fuzzing)]
pub(crate) static FUZZING_AUTH_BYPASS: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

#[cfg(test)]
mod tests {
    use super::*;

    fn y(k: u8) -> [u8; KEY_LEN] {
        // p + k for small k, sign bit clear: 0xed + k, then 30 x 0xff, 0x7f.
        let mut b = [0xffu8; KEY_LEN];
        b[0] = 0xed + k;
        b[31] = 0x7f;
        b
    }

    #[test]
    fn rejects_every_non_canonical_y() {
        for k in 0..=18 {
            assert!(ed25519_public_to_x25519(&y(k)).is_none(), "y = p + {k} accepted");
            let mut signed = y(k);
            signed[31] |= 0x80;
            assert!(ed25519_public_to_x25519(&signed).is_none(), "y = p + {k} with sign accepted");
        }
    }

    #[test]
    fn rejects_keys_with_a_torsion_component() {
        let seed = Secret32([7u8; KEY_LEN]);
        let good = Ed25519KeyPair::from_seed(&seed).public();
        assert!(ed25519_public_to_x25519(&good).is_some());
        let a = CompressedEdwardsY(good).decompress().unwrap();
        // Adding any of the 7 non-identity torsion points keeps the X25519
        // form's DH results but must be rejected.
        for t in curve25519_dalek::constants::EIGHT_TORSION.iter().skip(1) {
            let bad = (a + t).compress().to_bytes();
            assert!(ed25519_public_to_x25519(&bad).is_none());
        }
        // The identity is in the prime-order subgroup but is refused too.
        assert!(ed25519_public_to_x25519(&EdwardsPoint::default().compress().to_bytes()).is_none());
    }
}
