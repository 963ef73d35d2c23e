//! ML-KEM-1024 (FIPS 203) for PQXDH, and KEM prekeys (SPEC.md §4.8).
//!
//! The KEM itself is `libcrux-ml-kem` (formally verified, portable code).
//! It does not zeroize, so this module keeps every secret in our own types:
//! a KEM prekey is its 64-byte seed `d || z`; the expanded decapsulation key
//! is rebuilt from it for each use and wiped right after, and shared secrets
//! leave here as [`Secret32`].

use alloc::boxed::Box;
use core::fmt;

use libcrux_ml_kem::mlkem1024;
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{KEY_LEN, SIGNATURE_LEN, Secret32};
use crate::error::KeyAgreementError;
use crate::keys::{IdentityKey, IdentityKeyPair, PreKeyId};
use crate::labels::KEM_PREKEY_CONTEXT;

/// Bytes of an ML-KEM-1024 encapsulation key (SPEC.md §4.8).
pub const KEM_PUBLIC_KEY_LEN: usize = 1568;
/// Bytes of an ML-KEM-1024 ciphertext (SPEC.md §4.8).
pub const KEM_CIPHERTEXT_LEN: usize = 1568;
/// Bytes of a KEM prekey's seed `d || z` (SPEC.md §4.8).
pub const KEM_SEED_LEN: usize = 64;

/// An ML-KEM-1024 encapsulation key, boxed (1568 bytes).
pub(crate) type KemPublic = Box<[u8; KEM_PUBLIC_KEY_LEN]>;
/// An ML-KEM-1024 ciphertext, boxed (1568 bytes).
pub(crate) type KemCiphertext = Box<[u8; KEM_CIPHERTEXT_LEN]>;

/// Whether an encapsulation key passes FIPS 203's modulus check (§7.2
/// there): every 12-bit coefficient below q. SPEC.md §4.8: else `invalid-key`.
pub(crate) fn acceptable(ek: &[u8; KEM_PUBLIC_KEY_LEN]) -> bool {
    mlkem1024::validate_public_key(&mlkem1024::MlKem1024PublicKey::from(ek))
}

/// ENCAPS(ek, m) of SPEC.md §4.8: the ciphertext and the shared secret.
pub(crate) fn encapsulate(ek: &[u8; KEM_PUBLIC_KEY_LEN], m: &Secret32) -> (KemCiphertext, Secret32) {
    let (ct, ss) = mlkem1024::encapsulate(&mlkem1024::MlKem1024PublicKey::from(ek), m.0);
    let ss = Zeroizing::new(ss);
    let mut out = Box::new([0u8; KEM_CIPHERTEXT_LEN]);
    out.copy_from_slice(ct.as_slice());
    (out, Secret32(*ss))
}

/// The expanded decapsulation key of a seed (hazmat only).
#[cfg(feature = "hazmat")]
pub(crate) fn decapsulation_key(seed: &[u8; KEM_SEED_LEN]) -> alloc::vec::Vec<u8> {
    let (mut dk, _ek) = mlkem1024::generate_key_pair(*seed).into_parts();
    let out = dk.as_slice().to_vec();
    dk[0..].zeroize();
    out
}

/// The seed of a KEM prekey, `d || z`: its only secret.
pub(crate) struct KemSeed(Box<[u8; KEM_SEED_LEN]>);

impl Zeroize for KemSeed {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for KemSeed {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl KemSeed {
    fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Box::new([0u8; KEM_SEED_LEN]);
        rng.fill_bytes(&mut seed[..]);
        Self(seed)
    }

    /// KEYGEN(d, z): the encapsulation key. The decapsulation key it also
    /// makes is wiped before returning.
    fn public_key(&self) -> KemPublic {
        let pair = mlkem1024::generate_key_pair(*self.0);
        let (mut dk, ek) = pair.into_parts();
        dk[0..].zeroize();
        let mut out = Box::new([0u8; KEM_PUBLIC_KEY_LEN]);
        out.copy_from_slice(ek.as_slice());
        out
    }

    /// DECAPS(dk, ct) with dk rebuilt from the seed (SPEC.md §4.8 step 4);
    /// dk is wiped before returning. Never fails (implicit rejection).
    fn decapsulate(&self, ct: &[u8; KEM_CIPHERTEXT_LEN]) -> Secret32 {
        let pair = mlkem1024::generate_key_pair(*self.0);
        let (mut dk, _ek) = pair.into_parts();
        let ss = Zeroizing::new(mlkem1024::decapsulate(&dk, &mlkem1024::MlKem1024Ciphertext::from(ct)));
        dk[0..].zeroize();
        Secret32(*ss)
    }
}

/// Which kind of KEM prekey (SPEC.md §4.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KemPreKeyKind {
    /// Reused until rotated; the responder records each base key it accepts
    /// under it and refuses a repeat.
    LastResort,
    /// Used for at most one session, deleted when its first message
    /// authenticates.
    OneTime,
}

/// An ML-KEM-1024 prekey: id, kind and the 64-byte seed it is made from
/// (SPEC.md §4.8). The encapsulation key is recomputed from the seed.
///
/// ```
/// use sottovoce::{KemPreKey, KemPreKeyKind, PreKeyId};
/// let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
/// let k = KemPreKey::generate(&mut rng, PreKeyId(7), KemPreKeyKind::OneTime);
/// assert_eq!(k.public_key().len(), sottovoce::KEM_PUBLIC_KEY_LEN);
/// assert_eq!(KemPreKey::from_seed(PreKeyId(7), KemPreKeyKind::OneTime, &k.to_seed()).public_key(), k.public_key());
/// assert_eq!(format!("{k:?}"), "KemPreKey { id: PreKeyId(7), kind: OneTime, .. }"); // no key material
/// ```
pub struct KemPreKey {
    pub(crate) id: PreKeyId,
    pub(crate) kind: KemPreKeyKind,
    pub(crate) seed: KemSeed,
}

impl KemPreKey {
    /// A new KEM prekey. Consumes 64 bytes of `rng` (the seed `d || z`).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R, id: PreKeyId, kind: KemPreKeyKind) -> Self {
        Self { id, kind, seed: KemSeed::generate(rng) }
    }

    /// The KEM prekey with this seed `d || z`.
    pub fn from_seed(id: PreKeyId, kind: KemPreKeyKind, seed: &[u8; KEM_SEED_LEN]) -> Self {
        let mut s = Box::new([0u8; KEM_SEED_LEN]);
        s.copy_from_slice(seed);
        Self { id, kind, seed: KemSeed(s) }
    }

    /// The seed `d || z`, for saving it.
    pub fn to_seed(&self) -> Zeroizing<[u8; KEM_SEED_LEN]> {
        Zeroizing::new(*self.seed.0)
    }

    /// The prekey id.
    pub fn id(&self) -> PreKeyId {
        self.id
    }

    /// Last-resort or one-time.
    pub fn kind(&self) -> KemPreKeyKind {
        self.kind
    }

    /// The encapsulation key `ek` (KEYGEN from the seed: about 50 µs).
    pub fn public_key(&self) -> Box<[u8; KEM_PUBLIC_KEY_LEN]> {
        self.seed.public_key()
    }

    /// The public part, signed by `identity` (SPEC.md §4.8).
    pub fn public(&self, identity: &IdentityKeyPair) -> PublicKemPreKey {
        let key = self.public_key();
        let signature = identity.sign(&[KEM_PREKEY_CONTEXT, &self.id.0.to_be_bytes(), &key[..]]);
        PublicKemPreKey { id: self.id, key, signature }
    }

    pub(crate) fn decapsulate(&self, ct: &[u8; KEM_CIPHERTEXT_LEN]) -> Secret32 {
        self.seed.decapsulate(ct)
    }
}

impl Zeroize for KemPreKey {
    fn zeroize(&mut self) {
        self.seed.zeroize();
    }
}

impl fmt::Debug for KemPreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { id, kind, seed: _ } = self;
        f.debug_struct("KemPreKey").field("id", id).field("kind", kind).finish_non_exhaustive()
    }
}

/// The public part of a KEM prekey: id, encapsulation key, signature
/// (SPEC.md §4.8). What uploads carry and bundles hold.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKemPreKey {
    pub(crate) id: PreKeyId,
    pub(crate) key: KemPublic,
    pub(crate) signature: [u8; SIGNATURE_LEN],
}

impl PublicKemPreKey {
    /// The prekey id.
    pub fn id(&self) -> PreKeyId {
        self.id
    }

    /// The encapsulation key `ek` (1568 bytes).
    pub fn public_key(&self) -> &[u8; KEM_PUBLIC_KEY_LEN] {
        &self.key
    }

    /// The signature (SPEC.md §4.8).
    pub fn signature(&self) -> [u8; SIGNATURE_LEN] {
        self.signature
    }

    /// Checks the signature under `identity` (SPEC.md §4.8).
    ///
    /// # Errors
    /// [`KeyAgreementError::BadSignature`] if it does not verify.
    pub fn verify(&self, identity: &IdentityKey) -> Result<(), KeyAgreementError> {
        if self.verify_with(&identity.verifier()) { Ok(()) } else { Err(KeyAgreementError::BadSignature) }
    }

    pub(crate) fn verify_with(&self, identity: &crate::keys::IdentityVerifier) -> bool {
        identity.verify(&[KEM_PREKEY_CONTEXT, &self.id.0.to_be_bytes(), &self.key[..]], &self.signature)
    }

    /// Reads `id | u16 length | ek | signature` (SPEC.md §6.8): a length
    /// other than 1568 is `decode`, an unacceptable `ek` `invalid-key`.
    pub(crate) fn read(r: &mut crate::wire::Reader<'_>) -> Result<Self, crate::DecodeError> {
        let id = PreKeyId(r.u32()?);
        let key = read_kem_bytes(r)?;
        if !acceptable(&key) {
            return Err(crate::DecodeError::InvalidKey);
        }
        Ok(Self { id, key, signature: r.array()? })
    }

    pub(crate) fn write(&self, out: &mut alloc::vec::Vec<u8>) {
        use crate::wire::Writer;
        out.put_u32(self.id.0);
        out.put_u16(KEM_PUBLIC_KEY_LEN as u16);
        out.put(&self.key[..]);
        out.put(&self.signature);
    }
}

/// Reads `u16 length (= 1568) | 1568 bytes` (SPEC.md §6.8).
pub(crate) fn read_kem_bytes(r: &mut crate::wire::Reader<'_>) -> Result<Box<[u8; 1568]>, crate::DecodeError> {
    let offset = r.position();
    if usize::from(r.u16()?) != KEM_PUBLIC_KEY_LEN {
        return Err(crate::DecodeError::InvalidField { offset });
    }
    let mut out = Box::new([0u8; KEM_PUBLIC_KEY_LEN]);
    out.copy_from_slice(r.bytes(KEM_PUBLIC_KEY_LEN)?);
    Ok(out)
}

impl fmt::Debug for PublicKemPreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public, but 1568 bytes: the id and the key's first bytes.
        let Self { id, key, signature: _ } = self;
        let head: alloc::string::String = key.iter().take(8).map(|b| alloc::format!("{b:02x}")).collect();
        f.debug_struct("PublicKemPreKey")
            .field("id", id)
            .field("key", &format_args!("{head}.."))
            .finish_non_exhaustive()
    }
}

const _: () = assert!(KEY_LEN == 32 && KEM_CIPHERTEXT_LEN == KEM_PUBLIC_KEY_LEN);
