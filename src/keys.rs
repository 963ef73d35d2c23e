//! Identity keys, prekeys and prekey bundles (SPEC.md §3).

use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::crypto::{self, Ed25519KeyPair, KEY_LEN, SIGNATURE_LEN, Secret32, X25519KeyPair};
use crate::error::{DecodeError, KeyAgreementError};
use crate::kem::{KEM_SEED_LEN, KemPreKey, KemPreKeyKind, PublicKemPreKey};
use crate::labels::SIGNED_PREKEY_CONTEXT;
use crate::secret_vec::SecretVec;
use crate::wire::{Reader, VERSION, VERSION_PQ, Writer, first_byte_of, kind};

/// The public identity key: an Ed25519 public key (32 bytes), whose X25519
/// form is used in X3DH (SPEC.md §3.1).
///
/// Decoding checks that the bytes are acceptable (SPEC.md §2.4: a canonical
/// point of the prime-order subgroup, not the identity), so every
/// `IdentityKey` has a valid X25519 form. (A key read back from a sealed
/// state is trusted, not checked again: it was checked when it arrived.)
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityKey {
    ed25519: [u8; KEY_LEN],
}

impl IdentityKey {
    /// Parses and validates a 32-byte Ed25519 public key.
    ///
    /// # Errors
    /// [`DecodeError::InvalidKey`] for a non-canonical, off-curve or
    /// small-order point.
    ///
    /// ```
    /// # use sottovoce::IdentityKey;
    /// assert!(IdentityKey::from_bytes(&[0u8; 32]).is_err()); // small order
    /// ```
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<Self, DecodeError> {
        crypto::ed25519_public_to_x25519(bytes).ok_or(DecodeError::InvalidKey)?;
        Ok(Self { ed25519: *bytes })
    }

    /// A key that was accepted when it was first received, read back from an
    /// authenticated sealed state (SPEC.md §11.4): not checked again.
    pub(crate) fn trusted(bytes: &[u8; KEY_LEN]) -> Self {
        Self { ed25519: *bytes }
    }

    /// Decodes with the checks `keys` asks for.
    pub(crate) fn read(bytes: &[u8; KEY_LEN], keys: crate::wire::Keys) -> Result<Self, DecodeError> {
        match keys {
            crate::wire::Keys::Check => Self::from_bytes(bytes),
            crate::wire::Keys::Trust => Ok(Self::trusted(bytes)),
        }
    }

    /// The 32-byte Ed25519 encoding.
    ///
    /// ```
    /// # use sottovoce::{IdentityKey, IdentityKeyPair};
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// let ik = IdentityKeyPair::generate(&mut rng).public_key();
    /// assert_eq!(IdentityKey::from_bytes(&ik.to_bytes()).unwrap(), ik);
    /// ```
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.ed25519
    }

    /// The X25519 form (SPEC.md §3.1), computed when X3DH needs it: only
    /// X3DH uses it, so a restored session never pays for it.
    pub(crate) fn x25519(&self) -> [u8; KEY_LEN] {
        crypto::ed25519_public_to_x25519_unchecked(&self.ed25519)
    }

    /// Verifies an Ed25519 signature made by this identity.
    pub(crate) fn verify(&self, message: &[&[u8]], signature: &[u8; SIGNATURE_LEN]) -> bool {
        self.verifier().verify(message, signature)
    }

    /// The key decompressed once, for checking several signatures (a
    /// bundle's two, an upload's many).
    pub(crate) fn verifier(&self) -> IdentityVerifier {
        IdentityVerifier(crypto::Ed25519Public::trusted(&self.ed25519))
    }
}

/// An identity key decompressed for verifying ([`IdentityKey::verifier`]).
pub(crate) struct IdentityVerifier(Option<crypto::Ed25519Public>);

impl IdentityVerifier {
    /// VERIFY (SPEC.md §2.4) of the concatenated `message`.
    pub(crate) fn verify(&self, message: &[&[u8]], signature: &[u8; SIGNATURE_LEN]) -> bool {
        self.0.as_ref().is_some_and(|k| k.verify(&message.concat(), signature))
    }

    /// The key's X25519 form (SPEC.md §3.1) without decompressing it again.
    pub(crate) fn x25519(&self) -> [u8; KEY_LEN] {
        self.0.as_ref().map_or([0u8; KEY_LEN], crypto::Ed25519Public::to_x25519)
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityKey(")?;
        for b in &self.ed25519 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// A long-term identity: one Ed25519 key pair, whose secret scalar is also
/// its X25519 private key (SPEC.md §3.1 explains why one key, not two).
pub struct IdentityKeyPair {
    ed25519: Ed25519KeyPair,
    x25519: X25519KeyPair,
    public: IdentityKey,
}

impl IdentityKeyPair {
    /// A new identity from 32 bytes of the caller's RNG (the Ed25519 seed).
    ///
    /// ```
    /// let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// let alice = sottovoce::IdentityKeyPair::generate(&mut rng);
    /// println!("{:?}", alice.public_key());
    /// ```
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_seed_secret(&crypto::random_secret(rng))
    }

    /// Rebuilds an identity from its 32-byte Ed25519 seed, as returned by
    /// [`IdentityKeyPair::to_seed`]. Used to persist an identity.
    ///
    /// ```
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// let ik = sottovoce::IdentityKeyPair::generate(&mut rng);
    /// let again = sottovoce::IdentityKeyPair::from_seed(&ik.to_seed());
    /// assert_eq!(ik.public_key(), again.public_key());
    /// ```
    pub fn from_seed(seed: &[u8; KEY_LEN]) -> Self {
        Self::from_seed_secret(&Secret32(*seed))
    }

    pub(crate) fn from_seed_secret(seed: &Secret32) -> Self {
        let ed25519 = Ed25519KeyPair::from_seed(seed);
        let x25519 = ed25519.to_x25519();
        // The public key of a seed-derived key pair is always a valid,
        // prime-order point; its Montgomery form is X25519(scalar, 9).
        let public = IdentityKey { ed25519: ed25519.public() };
        Self { ed25519, x25519, public }
    }

    /// The 32-byte Ed25519 seed, the only secret of an identity.
    ///
    /// # Security
    /// This is the identity's whole secret. Store it only encrypted.
    pub fn to_seed(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.ed25519.seed().0)
    }

    /// The public identity key.
    pub fn public_key(&self) -> IdentityKey {
        self.public
    }

    pub(crate) fn x25519(&self) -> &X25519KeyPair {
        &self.x25519
    }

    pub(crate) fn sign(&self, message: &[&[u8]]) -> [u8; SIGNATURE_LEN] {
        let joined: Vec<u8> = message.concat();
        self.ed25519.sign(&joined)
    }
}

impl fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { ed25519: _, x25519: _, public } = self;
        f.debug_struct("IdentityKeyPair").field("public", public).finish_non_exhaustive()
    }
}

/// The id of a signed or one-time prekey, chosen by its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PreKeyId(pub u32);

/// A medium-term X25519 prekey signed by the identity key (SPEC.md §3.2).
pub struct SignedPreKey {
    id: PreKeyId,
    key: X25519KeyPair,
    signature: [u8; SIGNATURE_LEN],
}

impl SignedPreKey {
    /// Generates a signed prekey with the given id, signed by `identity`.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// let ik = IdentityKeyPair::generate(&mut rng);
    /// let spk = SignedPreKey::generate(&mut rng, PreKeyId(1), &ik);
    /// assert_eq!(spk.id(), PreKeyId(1));
    /// ```
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R, id: PreKeyId, identity: &IdentityKeyPair) -> Self {
        Self::from_secret(id, &crypto::random_secret(rng), identity)
    }

    /// Rebuilds a signed prekey from its 32-byte X25519 private key (as
    /// returned by [`SignedPreKey::to_secret`]), re-signing it.
    pub fn from_secret_bytes(id: PreKeyId, secret: &[u8; KEY_LEN], identity: &IdentityKeyPair) -> Self {
        Self::from_secret(id, &Secret32(*secret), identity)
    }

    fn from_secret(id: PreKeyId, secret: &Secret32, identity: &IdentityKeyPair) -> Self {
        let key = X25519KeyPair::from_secret(secret);
        let signature = identity.sign(&[SIGNED_PREKEY_CONTEXT, &id.0.to_be_bytes(), key.public()]);
        Self { id, key, signature }
    }

    /// The private key, to persist this prekey.
    ///
    /// # Security
    /// Secret. Store it only encrypted.
    pub fn to_secret(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.key.secret_bytes().0)
    }

    /// This prekey's id.
    pub fn id(&self) -> PreKeyId {
        self.id
    }

    /// The X25519 public key.
    pub fn public_key(&self) -> [u8; KEY_LEN] {
        *self.key.public()
    }

    /// The Ed25519 signature over
    /// `SIGNED_PREKEY_CONTEXT || id (u32 BE) || public key`.
    pub fn signature(&self) -> [u8; SIGNATURE_LEN] {
        self.signature
    }

    pub(crate) fn key(&self) -> &X25519KeyPair {
        &self.key
    }
}

impl zeroize::Zeroize for SignedPreKey {
    fn zeroize(&mut self) {
        self.key.zeroize();
    }
}

impl fmt::Debug for SignedPreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { id, key: _, signature: _ } = self;
        f.debug_struct("SignedPreKey").field("id", id).finish_non_exhaustive()
    }
}

/// A single-use X25519 prekey (SPEC.md §3.3).
pub struct OneTimePreKey {
    id: PreKeyId,
    key: X25519KeyPair,
}

impl OneTimePreKey {
    /// Generates a one-time prekey with the given id.
    ///
    /// ```
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// let opk = sottovoce::OneTimePreKey::generate(&mut rng, sottovoce::PreKeyId(7));
    /// assert_eq!(opk.id().0, 7);
    /// ```
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R, id: PreKeyId) -> Self {
        Self { id, key: X25519KeyPair::from_secret(&crypto::random_secret(rng)) }
    }

    /// Rebuilds a one-time prekey from its private key.
    pub fn from_secret_bytes(id: PreKeyId, secret: &[u8; KEY_LEN]) -> Self {
        Self { id, key: X25519KeyPair::from_secret(&Secret32(*secret)) }
    }

    /// The private key, to persist this prekey.
    ///
    /// # Security
    /// Secret. Store it only encrypted.
    pub fn to_secret(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.key.secret_bytes().0)
    }

    /// This prekey's id.
    pub fn id(&self) -> PreKeyId {
        self.id
    }

    /// The X25519 public key.
    pub fn public_key(&self) -> [u8; KEY_LEN] {
        *self.key.public()
    }

    pub(crate) fn key(&self) -> &X25519KeyPair {
        &self.key
    }
}

impl zeroize::Zeroize for OneTimePreKey {
    fn zeroize(&mut self) {
        self.key.zeroize();
    }
}

impl fmt::Debug for OneTimePreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { id, key: _ } = self;
        f.debug_struct("OneTimePreKey").field("id", id).finish_non_exhaustive()
    }
}

/// What a responder publishes so that others can start sessions with it
/// without it being online (SPEC.md §3.4).
///
/// ```text
///  0      1                33        37                69
///  +------+----------------+---------+-----------------+---------------+
///  | 0x13 | IK (Ed25519)   | SPK id  | SPK (X25519)    | Sig(IK, SPK)  |
///  +------+----------------+---------+-----------------+---------------+
///  133    134      138              170
///  +------+--------+----------------+
///  | flag | OPK id | OPK (X25519)   |   (OPK id and OPK only if flag = 1)
///  +------+--------+----------------+
/// ```
///
/// A version-2 (PQXDH) bundle (SPEC.md §6.8) has first byte `0x23` and,
/// between the signature and the flag, exactly one KEM prekey:
///
/// ```text
///  133       137           139                1707              1771
///  +---------+-------------+------------------+-----------------+------+-----
///  | KEM id  | u16 = 1568  | ek (ML-KEM-1024) | Sig(IK, KEM)    | flag | ...
///  +---------+-------------+------------------+-----------------+------+-----
/// ```
/// 1772 bytes without a one-time prekey, 1808 with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyBundle {
    identity_key: IdentityKey,
    signed_prekey_id: PreKeyId,
    signed_prekey: [u8; KEY_LEN],
    signature: [u8; SIGNATURE_LEN],
    one_time_prekey: Option<(PreKeyId, [u8; KEY_LEN])>,
    /// Version 2 (PQXDH) only: exactly one KEM prekey (SPEC.md §4.8).
    kem_prekey: Option<PublicKemPreKey>,
}

impl PreKeyBundle {
    /// Assembles a bundle on the device, from its own signed prekey and
    /// optionally one of its one-time prekeys (private types). A server,
    /// which holds only public prekeys, uses [`PreKeyBundle::assemble`].
    pub fn new(
        identity_key: IdentityKey,
        signed_prekey: &SignedPreKey,
        one_time_prekey: Option<&OneTimePreKey>,
    ) -> Self {
        Self {
            identity_key,
            signed_prekey_id: signed_prekey.id,
            signed_prekey: signed_prekey.public_key(),
            signature: signed_prekey.signature,
            one_time_prekey: one_time_prekey.map(|k| (k.id, k.public_key())),
            kem_prekey: None,
        }
    }

    /// This bundle with a KEM prekey: a version-2 (PQXDH) bundle (SPEC.md
    /// §4.8, §6.8). A server adds a one-time KEM prekey while it has one,
    /// else the device's last-resort KEM prekey.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// let mut bob = Account::new(&mut rng);
    /// bob.replenish_kem(&mut rng, 1);
    /// let upload = bob.prekeys_to_publish(); // at the server, after verify()
    /// let bundle = PreKeyBundle::assemble(upload.identity_key(), &upload.signed_prekey().unwrap(), None)
    ///     .with_kem_prekey(upload.one_time_kem_prekeys()[0].clone());
    /// assert_eq!((bundle.version(), bundle.to_bytes().len()), (2, 1772));
    /// ```
    #[must_use]
    pub fn with_kem_prekey(mut self, kem_prekey: PublicKemPreKey) -> Self {
        self.kem_prekey = Some(kem_prekey);
        self
    }

    /// The KEM prekey of a version-2 bundle.
    pub fn kem_prekey(&self) -> Option<&PublicKemPreKey> {
        self.kem_prekey.as_ref()
    }

    /// 1 (X3DH, first byte 0x13) or 2 (PQXDH, 0x23).
    pub fn version(&self) -> u8 {
        if self.kem_prekey.is_some() { VERSION_PQ } else { VERSION }
    }

    pub(crate) fn from_parts(
        identity_key: IdentityKey,
        signed_prekey_id: PreKeyId,
        signed_prekey: [u8; KEY_LEN],
        signature: [u8; SIGNATURE_LEN],
        one_time_prekey: Option<(PreKeyId, [u8; KEY_LEN])>,
    ) -> Self {
        Self { identity_key, signed_prekey_id, signed_prekey, signature, one_time_prekey, kem_prekey: None }
    }

    /// The responder's identity key.
    pub fn identity_key(&self) -> IdentityKey {
        self.identity_key
    }

    /// The id of the signed prekey.
    pub fn signed_prekey_id(&self) -> PreKeyId {
        self.signed_prekey_id
    }

    /// The id of the one-time prekey, if the bundle has one.
    pub fn one_time_prekey_id(&self) -> Option<PreKeyId> {
        self.one_time_prekey.map(|(id, _)| id)
    }

    pub(crate) fn signed_prekey(&self) -> &[u8; KEY_LEN] {
        &self.signed_prekey
    }

    pub(crate) fn one_time_prekey(&self) -> Option<&[u8; KEY_LEN]> {
        self.one_time_prekey.as_ref().map(|(_, k)| k)
    }

    /// Checks the signed prekey's signature under the identity key, then
    /// the KEM prekey's, if any (SPEC.md §4.2, §4.8).
    ///
    /// # Errors
    /// [`KeyAgreementError::BadSignature`] if one does not verify.
    pub fn verify(&self) -> Result<(), KeyAgreementError> {
        self.verified().map(|_| ())
    }

    /// As [`PreKeyBundle::verify`], returning the identity key decompressed
    /// (the initiator needs its X25519 form next).
    pub(crate) fn verified(&self) -> Result<IdentityVerifier, KeyAgreementError> {
        let v = self.identity_key.verifier();
        let ok = v.verify(
            &[SIGNED_PREKEY_CONTEXT, &self.signed_prekey_id.0.to_be_bytes(), &self.signed_prekey],
            &self.signature,
        );
        if !ok || self.kem_prekey.as_ref().is_some_and(|kem| !kem.verify_with(&v)) {
            return Err(KeyAgreementError::BadSignature);
        }
        Ok(v)
    }

    /// The encoding of SPEC.md §6.4 (version 1) or §6.8 (version 2).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(170 + 1638);
        out.put_u8(first_byte_of(self.version(), kind::PREKEY_BUNDLE));
        out.put(&self.identity_key.to_bytes());
        out.put_u32(self.signed_prekey_id.0);
        out.put(&self.signed_prekey);
        out.put(&self.signature);
        if let Some(kem) = &self.kem_prekey {
            kem.write(&mut out);
        }
        out.put_flag(self.one_time_prekey.is_some());
        if let Some((id, key)) = &self.one_time_prekey {
            out.put_u32(id.0);
            out.put(key);
        }
        out
    }
}

impl TryFrom<&[u8]> for PreKeyBundle {
    type Error = DecodeError;

    /// Decodes SPEC.md §6.4. Does not verify the signature (see
    /// [`PreKeyBundle::verify`]; [`crate::Session::initiate`] always does).
    fn try_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.header_any(kind::PREKEY_BUNDLE)?;
        let identity_key = IdentityKey::from_bytes(&r.array()?)?;
        let signed_prekey_id = PreKeyId(r.u32()?);
        let signed_prekey = r.array()?;
        let signature = r.array()?;
        let kem_prekey = if version == VERSION_PQ { Some(PublicKemPreKey::read(&mut r)?) } else { None };
        let one_time_prekey = if r.flag()? { Some((PreKeyId(r.u32()?), r.array()?)) } else { None };
        r.finish()?;
        Ok(Self { identity_key, signed_prekey_id, signed_prekey, signature, one_time_prekey, kem_prekey })
    }
}

/// Where a responder keeps its prekeys. [`crate::Session::respond`] (and
/// [`crate::SessionRecord::decrypt`], for a prekey message that starts a
/// session) looks prekeys up here and removes a one-time prekey itself, only
/// after the first message under it authenticated: a caller cannot forget
/// to, nor do it too early.
pub trait PreKeyStore {
    /// The identity of this store's owner.
    fn identity(&self) -> &IdentityKeyPair;
    /// The signed prekey with this id, if still held.
    fn signed_prekey(&self, id: PreKeyId) -> Option<&SignedPreKey>;
    /// The one-time prekey with this id, if still held.
    fn one_time_prekey(&self, id: PreKeyId) -> Option<&OneTimePreKey>;
    /// Deletes a one-time prekey: called once, after authentication.
    fn remove_one_time_prekey(&mut self, id: PreKeyId);

    /// The KEM prekey (last-resort or one-time) with this id, if held
    /// (SPEC.md §4.8). A store without KEM prekeys answers `None` (it then
    /// takes no PQXDH session: `unknown-prekey`) and `false`/`0`/nothing
    /// from the three methods below.
    ///
    /// The four KEM methods have no defaults on purpose: a store that
    /// holds KEM prekeys must record their use, or a one-time KEM prekey is
    /// never deleted and a replayed first message under a last-resort one
    /// starts a session again. [`crate::Account`] implements them all.
    fn kem_prekey(&self, id: PreKeyId) -> Option<&KemPreKey>;

    /// Whether the last-resort KEM prekey `id` has accepted `base_key`
    /// (an initiator's EK_A) before (SPEC.md §4.8). Every base key accepted
    /// since the prekey was created counts: none may be forgotten while
    /// the prekey is held (that would reopen replays).
    fn base_key_used(&self, id: PreKeyId, base_key: &[u8; KEY_LEN]) -> bool;

    /// How many base keys the last-resort KEM prekey `id` has accepted (at
    /// most [`crate::MAX_LAST_RESORT_USES`]); 0 for any other id.
    fn used_base_key_count(&self, id: PreKeyId) -> usize;

    /// After the first message under KEM prekey `id` authenticated: deletes
    /// a one-time KEM prekey, or records `base_key` as used by a last-resort
    /// one. Called once per new session; persist the store before acting
    /// on the plaintext.
    fn consume_kem_prekey(&mut self, id: PreKeyId, base_key: &[u8; KEY_LEN]);

    /// Whether version-1 (X3DH) prekey messages that would create a session
    /// are refused with `downgrade` (SPEC.md §4.8).
    fn requires_pq(&self) -> bool;
}

/// At most this many one-time prekeys an [`Account`] holds (SPEC.md §9).
pub const MAX_ONE_TIME_PREKEYS: usize = 1000;

/// At most this many one-time KEM prekeys an [`Account`] holds (SPEC.md §9).
pub const MAX_ONE_TIME_KEM_PREKEYS: usize = 100;

/// How many last-resort KEM prekeys an [`Account`] keeps: the current one
/// and its predecessor during a rotation's grace period (SPEC.md §3.6).
pub const MAX_LAST_RESORT_KEM_PREKEYS: usize = 2;

/// An identity with its prekeys: the in-memory [`PreKeyStore`] most
/// applications need (SPEC.md §3, §4.8).
///
/// [`Account::new`] makes a post-quantum account: besides its X25519
/// prekeys it has a last-resort ML-KEM prekey, its bundles are version-2
/// (PQXDH) bundles, and it refuses classical prekey messages that would
/// start a session ([`Account::set_requires_pq`]).
///
/// ```
/// use sottovoce::Account;
/// let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
/// let mut bob = Account::new(&mut rng);
/// let ids = bob.generate_one_time_prekeys(&mut rng, 10);
/// let bundle = bob.prekey_bundle(Some(ids[0])).unwrap();
/// assert_eq!(bundle.identity_key(), bob.identity_key());
/// assert_eq!(bundle.version(), 2); // PQXDH
/// ```
pub struct Account {
    identity: IdentityKeyPair,
    /// Oldest first. Secret collections wipe what they move or free.
    signed_prekeys: SecretVec<SignedPreKey>,
    /// In id order (ids only grow).
    one_time_prekeys: SecretVec<OneTimePreKey>,
    /// Oldest first; empty for a classical account (SPEC.md §4.8).
    last_resort_kem_prekeys: SecretVec<KemPreKey>,
    /// The used base keys of each last-resort KEM prekey, in the same order.
    kem_uses: Vec<Vec<[u8; KEY_LEN]>>,
    /// In id order.
    one_time_kem_prekeys: SecretVec<KemPreKey>,
    requires_pq: bool,
    next_prekey_id: u32,
    /// Every prekey with an id below this has been published (ids only
    /// grow, so one number marks them all: SPEC.md §3.6).
    published_below: u32,
}

/// Saved-account format revision written by [`Account::to_bytes`]: 3 adds
/// the published mark (SPEC.md §11.5); revision 2 is still read.
const SAVED_ACCOUNT_REVISION: u8 = 3;

/// How many signed prekeys an [`Account`] keeps: the current one and its
/// predecessor, so prekey messages in flight across a rotation still work.
pub const MAX_SIGNED_PREKEYS: usize = 2;

impl Account {
    /// A new post-quantum identity: one signed prekey (id 1), one
    /// last-resort KEM prekey (id 2), no one-time prekeys; it requires
    /// PQXDH. Consumes from `rng`: the identity seed (32 bytes), the signed
    /// prekey (32), the KEM prekey's seed (64).
    pub fn new<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        Self::from_identity(rng, identity)
    }

    /// A classical (X3DH only) identity with one signed prekey (id 1): its
    /// bundles are version-1 bundles. Consumes the identity seed, then the
    /// signed prekey. [`Account::enable_pq`] makes it post-quantum later.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// let mut old = Account::new_classical(&mut rng);
    /// assert_eq!(old.prekey_bundle(None).unwrap().version(), 1);
    /// old.enable_pq(&mut rng).unwrap();
    /// assert!(!old.requires_pq()); // until old bundles can no longer be in use
    /// old.set_requires_pq(true);
    /// assert_eq!(old.prekey_bundle(None).unwrap().version(), 2);
    /// ```
    pub fn new_classical<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        Self::from_identity_classical(rng, identity)
    }

    /// A post-quantum account around an existing identity (e.g. one restored
    /// from its seed), with a fresh signed prekey (id 1) and last-resort KEM
    /// prekey (id 2). Consumes 96 bytes of `rng`.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// let identity = IdentityKeyPair::generate(&mut rng);
    /// let public = identity.public_key();
    /// let account = Account::from_identity(&mut rng, identity);
    /// assert_eq!(account.identity_key(), public);
    /// ```
    pub fn from_identity<R: CryptoRng + ?Sized>(rng: &mut R, identity: IdentityKeyPair) -> Self {
        let mut account = Self::from_identity_classical(rng, identity);
        account.enable_pq(rng);
        // A new identity has no classical bundles out: require PQXDH now.
        account.requires_pq = true;
        account
    }

    /// A classical account around an existing identity, with a fresh signed
    /// prekey (id 1). Consumes 32 bytes of `rng`.
    pub fn from_identity_classical<R: CryptoRng + ?Sized>(rng: &mut R, identity: IdentityKeyPair) -> Self {
        let spk = SignedPreKey::generate(rng, PreKeyId(1), &identity);
        let mut signed_prekeys = SecretVec::with_capacity(MAX_SIGNED_PREKEYS + 1);
        signed_prekeys.push(spk);
        Self {
            identity,
            signed_prekeys,
            one_time_prekeys: SecretVec::new(),
            last_resort_kem_prekeys: SecretVec::new(),
            kem_uses: Vec::new(),
            one_time_kem_prekeys: SecretVec::new(),
            requires_pq: false,
            next_prekey_id: 2,
            published_below: 0,
        }
    }

    /// Makes a classical account post-quantum: adds a last-resort KEM
    /// prekey (64 bytes of `rng`). Returns its id; `None` (nothing changed)
    /// if the account already has one or every prekey id is used. It does
    /// not require PQXDH yet: classical bundles handed out before the
    /// version-2 upload reached the server may still be in use; call
    /// [`Account::set_requires_pq`] once they can no longer arrive.
    pub fn enable_pq<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Option<PreKeyId> {
        if self.is_post_quantum() {
            return None;
        }
        let id = self.next_id()?;
        self.last_resort_kem_prekeys.push(KemPreKey::generate(rng, id, KemPreKeyKind::LastResort));
        self.kem_uses.push(Vec::new());
        Some(id)
    }

    /// Whether the account has KEM prekeys (it is saved as `0x2A` and its
    /// bundles are version 2).
    pub fn is_post_quantum(&self) -> bool {
        !self.last_resort_kem_prekeys.is_empty()
    }

    /// Whether classical prekey messages that would start a session are
    /// refused with `downgrade` (SPEC.md §4.8). Only a post-quantum account
    /// can require it.
    pub fn requires_pq(&self) -> bool {
        self.requires_pq && self.is_post_quantum()
    }

    /// Turns the PQXDH requirement on or off (e.g. off while peers without
    /// PQXDH support still start sessions). On by default. Saved with the
    /// account.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// let mut bob = Account::new(&mut rng);
    /// bob.set_requires_pq(false);
    /// assert!(!Account::from_bytes(&bob.to_bytes())?.requires_pq());
    /// # Ok::<(), DecodeError>(())
    /// ```
    pub fn set_requires_pq(&mut self, on: bool) {
        self.requires_pq = on;
    }

    /// Saves the account (SPEC.md §11.5): identity seed, the next prekey id,
    /// and every prekey's id and private key or seed. Signatures and KEM
    /// public keys are recomputed on restore.
    ///
    /// # Security
    /// Holds the identity seed and every prekey secret: store it sealed
    /// ([`Account::seal`]). Restoring an older copy brings back one-time
    /// prekeys that were already consumed.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// let mut bob = Account::new(&mut rng);
    /// bob.generate_one_time_prekeys(&mut rng, 3);
    /// let again = Account::from_bytes(&bob.to_bytes())?;
    /// assert_eq!(again.identity_key(), bob.identity_key());
    /// assert_eq!(again.one_time_prekey_ids(), bob.one_time_prekey_ids());
    /// # Ok::<(), DecodeError>(())
    /// ```
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let pq = self.is_post_quantum();
        // Exact capacity: growing would free an unwiped copy of the secrets.
        let mut len = 2 + KEY_LEN + 8 + 1 + 36 * self.signed_prekeys.len() + 2 + 36 * self.one_time_prekeys.len();
        if pq {
            len += 1 + 1 + 1 + 68 * self.one_time_kem_prekeys.len();
            len += self.kem_uses.iter().map(|u| 4 + KEM_SEED_LEN + 2 + KEY_LEN * u.len()).sum::<usize>();
        }
        let mut out = Zeroizing::new(Vec::with_capacity(len));
        out.put_u8(first_byte_of(if pq { VERSION_PQ } else { VERSION }, kind::SAVED_ACCOUNT));
        out.put_u8(SAVED_ACCOUNT_REVISION);
        out.put(&self.identity.to_seed()[..]);
        out.put_u32(self.next_prekey_id);
        out.put_u32(self.published_below);
        if pq {
            out.put_flag(self.requires_pq);
        }
        out.put_u8(self.signed_prekeys.len() as u8);
        for k in self.signed_prekeys.iter() {
            out.put_u32(k.id.0);
            out.put(&k.key.secret_bytes().0);
        }
        out.put_u16(self.one_time_prekeys.len() as u16);
        for k in self.one_time_prekeys.iter() {
            out.put_u32(k.id.0);
            out.put(&k.key.secret_bytes().0);
        }
        if pq {
            out.put_u8(self.last_resort_kem_prekeys.len() as u8);
            for (k, uses) in self.last_resort_kem_prekeys.iter().zip(&self.kem_uses) {
                out.put_u32(k.id.0);
                out.put(&k.to_seed()[..]);
                out.put_u16(uses.len() as u16);
                for base in uses {
                    out.put(base);
                }
            }
            out.put_u8(self.one_time_kem_prekeys.len() as u8);
            for k in self.one_time_kem_prekeys.iter() {
                out.put_u32(k.id.0);
                out.put(&k.to_seed()[..]);
            }
        }
        out
    }

    /// Restores an account saved by [`Account::to_bytes`].
    ///
    /// # Errors
    /// [`DecodeError`] for anything malformed, over a bound, trailing, or
    /// inconsistent (SPEC.md §11.5: prekey ids distinct, below the next id,
    /// one-time prekeys in increasing id order, no base key used twice).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(bytes, crate::wire::Keys::Check)
    }

    pub(crate) fn decode(bytes: &[u8], _keys: crate::wire::Keys) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.header_any(kind::SAVED_ACCOUNT)?;
        let pq = version == VERSION_PQ;
        let offset = r.position();
        let revision = r.u8()?;
        if revision != SAVED_ACCOUNT_REVISION && (revision != 2 || pq) {
            return Err(DecodeError::InvalidField { offset });
        }
        let identity = IdentityKeyPair::from_seed_secret(&Secret32(r.array()?));
        let next_prekey_id = r.u32()?;
        // Revision 2 had no mark: its application published the keys it
        // held, so all count as published (re-uploading them could bring
        // back one-time prekeys a server already handed out).
        let published_below = if revision == 2 { next_prekey_id } else { r.u32()? };
        let requires_pq = if pq { r.flag()? } else { false };
        let offset = r.position();
        let n = usize::from(r.u8()?);
        if n == 0 {
            return Err(DecodeError::InvalidField { offset });
        }
        if n > MAX_SIGNED_PREKEYS {
            return Err(DecodeError::LimitExceeded { got: n as u32, max: MAX_SIGNED_PREKEYS as u32 });
        }
        let mut signed = Vec::with_capacity(n);
        for _ in 0..n {
            let id = PreKeyId(r.u32()?);
            signed.push((id, Secret32(r.array()?)));
        }
        let m = r.count_u16(MAX_ONE_TIME_PREKEYS)?;
        let mut one_time_prekeys = SecretVec::with_capacity(m);
        for _ in 0..m {
            let id = PreKeyId(r.u32()?);
            one_time_prekeys.push(OneTimePreKey { id, key: X25519KeyPair::from_secret(&Secret32(r.array()?)) });
        }
        let mut last_resort_kem_prekeys = SecretVec::new();
        let mut kem_uses = Vec::new();
        let mut one_time_kem_prekeys = SecretVec::new();
        if pq {
            let offset = r.position();
            let n = usize::from(r.u8()?);
            if n == 0 {
                return Err(DecodeError::InvalidField { offset });
            }
            if n > MAX_LAST_RESORT_KEM_PREKEYS {
                return Err(DecodeError::LimitExceeded { got: n as u32, max: MAX_LAST_RESORT_KEM_PREKEYS as u32 });
            }
            last_resort_kem_prekeys = SecretVec::with_capacity(MAX_LAST_RESORT_KEM_PREKEYS + 1);
            for _ in 0..n {
                let id = PreKeyId(r.u32()?);
                let seed = Zeroizing::new(r.array::<KEM_SEED_LEN>()?);
                last_resort_kem_prekeys.push(KemPreKey::from_seed(id, KemPreKeyKind::LastResort, &seed));
                let u = r.count_u16(crate::session::MAX_LAST_RESORT_USES)?;
                let mut uses = Vec::with_capacity(u);
                for _ in 0..u {
                    uses.push(r.array()?);
                }
                kem_uses.push(uses);
            }
            let offset = r.position();
            let k = usize::from(r.u8()?);
            if k > MAX_ONE_TIME_KEM_PREKEYS {
                let _ = offset;
                return Err(DecodeError::LimitExceeded { got: k as u32, max: MAX_ONE_TIME_KEM_PREKEYS as u32 });
            }
            one_time_kem_prekeys = SecretVec::with_capacity(k);
            for _ in 0..k {
                let id = PreKeyId(r.u32()?);
                let seed = Zeroizing::new(r.array::<KEM_SEED_LEN>()?);
                one_time_kem_prekeys.push(KemPreKey::from_seed(id, KemPreKeyKind::OneTime, &seed));
            }
        }
        r.finish()?;
        // Consistency: ids below the next id, distinct, one-time ids rising,
        // no base key recorded twice under one last-resort KEM prekey.
        let mut ids: Vec<u32> = signed.iter().map(|(id, _)| id.0).collect();
        ids.extend(one_time_prekeys.iter().map(|k| k.id.0));
        ids.extend(last_resort_kem_prekeys.iter().map(|k| k.id.0));
        ids.extend(one_time_kem_prekeys.iter().map(|k| k.id.0));
        let rising = one_time_prekeys.iter().zip(one_time_prekeys.iter().skip(1)).all(|(a, b)| a.id < b.id)
            && one_time_kem_prekeys.iter().zip(one_time_kem_prekeys.iter().skip(1)).all(|(a, b)| a.id < b.id);
        ids.sort_unstable();
        let distinct = !ids.windows(2).any(|w| w.first() == w.get(1));
        let uses_distinct = kem_uses.iter().all(|u| {
            let mut sorted = u.clone();
            sorted.sort_unstable();
            !sorted.windows(2).any(|w| w.first() == w.get(1))
        });
        if !rising
            || !distinct
            || !uses_distinct
            || ids.iter().any(|id| *id >= next_prekey_id)
            || published_below > next_prekey_id
        {
            return Err(DecodeError::InconsistentState);
        }
        let mut signed_prekeys = SecretVec::with_capacity(MAX_SIGNED_PREKEYS + 1);
        for (id, secret) in &signed {
            signed_prekeys.push(SignedPreKey::from_secret(*id, secret, &identity));
        }
        Ok(Self {
            identity,
            signed_prekeys,
            one_time_prekeys,
            last_resort_kem_prekeys,
            kem_uses,
            one_time_kem_prekeys,
            requires_pq,
            next_prekey_id,
            published_below,
        })
    }

    /// The public identity key.
    pub fn identity_key(&self) -> IdentityKey {
        self.identity.public_key()
    }

    /// The identity key pair.
    pub fn identity_key_pair(&self) -> &IdentityKeyPair {
        &self.identity
    }

    /// The next unused prekey id, or `None` once all 2^32 - 1 are used.
    fn next_id(&mut self) -> Option<PreKeyId> {
        let id = PreKeyId(self.next_prekey_id);
        self.next_prekey_id = self.next_prekey_id.checked_add(1)?;
        Some(id)
    }

    /// Adds up to `count` one-time prekeys (never more than
    /// [`MAX_ONE_TIME_PREKEYS`] held in all) and returns the new ids.
    pub fn generate_one_time_prekeys<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, count: usize) -> Vec<PreKeyId> {
        let room = MAX_ONE_TIME_PREKEYS.saturating_sub(self.one_time_prekeys.len());
        let mut ids = Vec::new();
        for _ in 0..count.min(room) {
            let Some(id) = self.next_id() else { break };
            self.one_time_prekeys.push(OneTimePreKey::generate(rng, id));
            ids.push(id);
        }
        ids
    }

    /// Adds up to `count` one-time KEM prekeys (never more than
    /// [`MAX_ONE_TIME_KEM_PREKEYS`] held in all; none for a classical
    /// account) and returns the new ids. Each draws a 64-byte seed.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// let mut bob = Account::new(&mut rng);
    /// let ids = bob.generate_kem_prekeys(&mut rng, 3);
    /// assert_eq!(bob.kem_prekey_ids(), ids);
    /// let bundle = bob.prekey_bundle_with_kem(None, Some(ids[0])).unwrap();
    /// assert_eq!(bundle.kem_prekey().unwrap().id(), ids[0]);
    /// ```
    pub fn generate_kem_prekeys<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, count: usize) -> Vec<PreKeyId> {
        let room = if self.is_post_quantum() {
            MAX_ONE_TIME_KEM_PREKEYS.saturating_sub(self.one_time_kem_prekeys.len())
        } else {
            0
        };
        let mut ids = Vec::new();
        for _ in 0..count.min(room) {
            let Some(id) = self.next_id() else { break };
            self.one_time_kem_prekeys.push(KemPreKey::generate(rng, id, KemPreKeyKind::OneTime));
            ids.push(id);
        }
        ids
    }

    /// Replaces the signed prekey and, for a post-quantum account, the
    /// last-resort KEM prekey (SPEC.md §3.6); the previous ones are kept for
    /// messages in flight, older ones are deleted. Draws the signed prekey
    /// (32 bytes), then the KEM seed (64). Returns the new signed prekey's
    /// id, or `None` (and changes nothing) once the prekey ids run out.
    pub fn rotate_signed_prekey<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Option<PreKeyId> {
        let needed = if self.is_post_quantum() { 2 } else { 1 };
        if u64::from(self.next_prekey_id) + needed > u64::from(u32::MAX) {
            return None;
        }
        let id = self.next_id()?;
        let spk = SignedPreKey::generate(rng, id, &self.identity);
        self.signed_prekeys.push(spk);
        let excess = self.signed_prekeys.len().saturating_sub(MAX_SIGNED_PREKEYS);
        self.signed_prekeys.remove_front(excess);
        if self.is_post_quantum() {
            let kem_id = self.next_id()?;
            self.last_resort_kem_prekeys.push(KemPreKey::generate(rng, kem_id, KemPreKeyKind::LastResort));
            self.kem_uses.push(Vec::new());
            let excess = self.last_resort_kem_prekeys.len().saturating_sub(MAX_LAST_RESORT_KEM_PREKEYS);
            self.last_resort_kem_prekeys.remove_front(excess);
            self.kem_uses.drain(..excess);
        }
        Some(id)
    }

    /// Tops the one-time prekeys up to `target` (at most
    /// [`MAX_ONE_TIME_PREKEYS`]) and returns the new ids; none if enough
    /// are held. Call it when the server reports few left, then publish.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// let mut bob = Account::new(&mut rng);
    /// assert_eq!(bob.replenish(&mut rng, 100).len(), 100);
    /// assert!(bob.replenish(&mut rng, 100).is_empty());
    /// ```
    pub fn replenish<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, target: usize) -> Vec<PreKeyId> {
        let missing = target.min(MAX_ONE_TIME_PREKEYS).saturating_sub(self.one_time_prekeys.len());
        self.generate_one_time_prekeys(rng, missing)
    }

    /// Tops the one-time KEM prekeys up to `target` (at most
    /// [`MAX_ONE_TIME_KEM_PREKEYS`]), as [`Account::replenish`].
    pub fn replenish_kem<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, target: usize) -> Vec<PreKeyId> {
        let missing = target.min(MAX_ONE_TIME_KEM_PREKEYS).saturating_sub(self.one_time_kem_prekeys.len());
        self.generate_kem_prekeys(rng, missing)
    }

    /// The public prekeys not yet published (SPEC.md §3.6): the current
    /// signed prekey and last-resort KEM prekey if new, and every new
    /// one-time prekey of either kind. Upload them, then call
    /// [`Account::mark_published`]. Computes each new KEM public key.
    pub fn prekeys_to_publish(&self) -> crate::PreKeyUpload {
        let fresh = |id: PreKeyId| id.0 >= self.published_below;
        let signed = self.signed_prekeys.last().filter(|k| fresh(k.id)).map(crate::PublicSignedPreKey::from);
        let one_time =
            self.one_time_prekeys.iter().filter(|k| fresh(k.id)).map(crate::PublicOneTimePreKey::from).collect();
        let mut upload = crate::PreKeyUpload::new(self.identity_key(), signed, one_time);
        if self.is_post_quantum() {
            let last_resort =
                self.last_resort_kem_prekeys.last().filter(|k| fresh(k.id)).map(|k| k.public(&self.identity));
            let one_time_kem =
                self.one_time_kem_prekeys.iter().filter(|k| fresh(k.id)).map(|k| k.public(&self.identity)).collect();
            upload = upload.with_kem_prekeys(last_resort, one_time_kem);
        }
        upload
    }

    /// Marks `upload` (from [`Account::prekeys_to_publish`], now stored by
    /// the server) as published: the mark moves past its highest prekey id
    /// (SPEC.md §3.6), so keys made after it was built, not in it, are
    /// still published next time. An upload of another identity, or an
    /// empty one, changes nothing.
    pub fn mark_published(&mut self, upload: &crate::PreKeyUpload) {
        if upload.identity_key() != self.identity_key() {
            return;
        }
        if let Some(next) = upload.highest_id().and_then(|h| h.checked_add(1)) {
            self.published_below = self.published_below.max(next.min(self.next_prekey_id));
        }
    }

    /// The current signed prekey's public part.
    pub fn public_signed_prekey(&self) -> Option<crate::PublicSignedPreKey> {
        self.signed_prekeys.last().map(crate::PublicSignedPreKey::from)
    }

    /// Deletes the signed prekeys and last-resort KEM prekeys before the
    /// current ones, ending the grace period of a rotation (SPEC.md §3.6):
    /// call it once messages sent to the previous bundle can no longer
    /// arrive (e.g. after the server's longest queueing time). Prekey
    /// messages naming them are then `unknown-prekey`.
    pub fn retire_previous_signed_prekey(&mut self) {
        let excess = self.signed_prekeys.len().saturating_sub(1);
        self.signed_prekeys.remove_front(excess);
        let excess = self.last_resort_kem_prekeys.len().saturating_sub(1);
        self.last_resort_kem_prekeys.remove_front(excess);
        self.kem_uses.drain(..excess);
    }

    /// The ids of the one-time prekeys still held.
    pub fn one_time_prekey_ids(&self) -> Vec<PreKeyId> {
        self.one_time_prekeys.iter().map(|k| k.id).collect()
    }

    /// The ids of the one-time KEM prekeys still held.
    pub fn kem_prekey_ids(&self) -> Vec<PreKeyId> {
        self.one_time_kem_prekeys.iter().map(|k| k.id).collect()
    }

    /// The current last-resort KEM prekey's id, for a post-quantum account.
    pub fn last_resort_kem_prekey_id(&self) -> Option<PreKeyId> {
        self.last_resort_kem_prekeys.last().map(|k| k.id)
    }

    /// The base keys last-resort KEM prekey `id` has accepted.
    fn uses_of(&self, id: PreKeyId) -> &[[u8; KEY_LEN]] {
        match self.last_resort_kem_prekeys.iter().position(|k| k.id == id) {
            Some(i) => self.kem_uses.get(i).map_or(&[], Vec::as_slice),
            None => &[],
        }
    }

    /// Whether the current last-resort KEM prekey has accepted half of
    /// [`crate::MAX_LAST_RESORT_USES`] sessions or more: rotate now
    /// ([`Account::rotate_signed_prekey`]) and publish, before an attacker
    /// who drained the one-time KEM prekeys can use it up (SPEC.md §3.6,
    /// §12).
    pub fn should_rotate(&self) -> bool {
        self.last_resort_uses() >= crate::session::MAX_LAST_RESORT_USES / 2
    }

    /// How many sessions the current last-resort KEM prekey has accepted
    /// (at most [`crate::MAX_LAST_RESORT_USES`]): rotate well before the
    /// bound (SPEC.md §3.6).
    pub fn last_resort_uses(&self) -> usize {
        self.kem_uses.last().map_or(0, Vec::len)
    }

    /// A bundle with the current signed prekey, that one-time prekey if
    /// given and still held, and for a post-quantum account the current
    /// last-resort KEM prekey. `None` if the one-time prekey is not held.
    pub fn prekey_bundle(&self, one_time_prekey: Option<PreKeyId>) -> Option<PreKeyBundle> {
        let kem = self.last_resort_kem_prekey_id();
        self.prekey_bundle_with_kem(one_time_prekey, kem)
    }

    /// A bundle as [`Account::prekey_bundle`] with the KEM prekey `kem` (a
    /// one-time or last-resort one; `None`: a version-1 bundle). `None` if a
    /// named prekey is not held.
    pub fn prekey_bundle_with_kem(
        &self,
        one_time_prekey: Option<PreKeyId>,
        kem: Option<PreKeyId>,
    ) -> Option<PreKeyBundle> {
        let spk = self.signed_prekeys.last()?;
        let opk = match one_time_prekey {
            Some(id) => Some(self.one_time_prekeys.iter().find(|k| k.id == id)?),
            None => None,
        };
        let bundle = PreKeyBundle::new(self.identity_key(), spk, opk);
        match kem {
            Some(id) => Some(bundle.with_kem_prekey(self.kem_prekey(id)?.public(&self.identity))),
            None => Some(bundle),
        }
    }
}

impl PreKeyStore for Account {
    fn identity(&self) -> &IdentityKeyPair {
        &self.identity
    }

    fn signed_prekey(&self, id: PreKeyId) -> Option<&SignedPreKey> {
        self.signed_prekeys.iter().find(|k| k.id == id)
    }

    fn one_time_prekey(&self, id: PreKeyId) -> Option<&OneTimePreKey> {
        self.one_time_prekeys.iter().find(|k| k.id == id)
    }

    fn remove_one_time_prekey(&mut self, id: PreKeyId) {
        if let Some(i) = self.one_time_prekeys.iter().position(|k| k.id == id) {
            // Wipes the key in place and the slot the shift vacates.
            self.one_time_prekeys.remove(i);
        }
    }

    fn kem_prekey(&self, id: PreKeyId) -> Option<&KemPreKey> {
        self.last_resort_kem_prekeys.iter().chain(self.one_time_kem_prekeys.iter()).find(|k| k.id == id)
    }

    fn base_key_used(&self, id: PreKeyId, base_key: &[u8; KEY_LEN]) -> bool {
        self.uses_of(id).contains(base_key)
    }

    fn used_base_key_count(&self, id: PreKeyId) -> usize {
        self.uses_of(id).len()
    }

    fn consume_kem_prekey(&mut self, id: PreKeyId, base_key: &[u8; KEY_LEN]) {
        if let Some(i) = self.one_time_kem_prekeys.iter().position(|k| k.id == id) {
            self.one_time_kem_prekeys.remove(i);
        } else if let Some(i) = self.last_resort_kem_prekeys.iter().position(|k| k.id == id)
            && let Some(uses) = self.kem_uses.get_mut(i)
            && uses.len() < crate::session::MAX_LAST_RESORT_USES
            && !uses.contains(base_key)
        {
            uses.push(*base_key);
        }
    }

    fn requires_pq(&self) -> bool {
        Account::requires_pq(self)
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            identity,
            signed_prekeys,
            one_time_prekeys,
            last_resort_kem_prekeys,
            kem_uses: _,
            one_time_kem_prekeys,
            requires_pq,
            next_prekey_id: _,
            published_below: _,
        } = self;
        f.debug_struct("Account")
            .field("identity", &identity.public_key())
            .field("signed_prekeys", &signed_prekeys.len())
            .field("one_time_prekeys", &one_time_prekeys.len())
            .field("last_resort_kem_prekeys", &last_resort_kem_prekeys.len())
            .field("one_time_kem_prekeys", &one_time_kem_prekeys.len())
            .field("requires_pq", requires_pq)
            .finish_non_exhaustive()
    }
}

crate::snapshot::persistence_methods!(Account);
