//! Publishing prekeys: the public records a server stores and the bundles
//! it assembles from them, without ever holding a secret type (SPEC.md
//! §3.6).

use alloc::vec::Vec;

use crate::crypto::{KEY_LEN, SIGNATURE_LEN};
use crate::error::{DecodeError, KeyAgreementError};
use crate::kem::PublicKemPreKey;
use crate::keys::{
    IdentityKey, MAX_ONE_TIME_KEM_PREKEYS, MAX_ONE_TIME_PREKEYS, OneTimePreKey, PreKeyBundle, PreKeyId, SignedPreKey,
};
use crate::labels::SIGNED_PREKEY_CONTEXT;
use crate::wire::{Reader, VERSION, VERSION_PQ, Writer, first_byte_of, kind};

/// At most this many prekeys one [`PreKeyUpload`] carries: a signed prekey
/// and [`MAX_ONE_TIME_PREKEYS`] one-time prekeys (SPEC.md §9).
pub const MAX_UPLOAD_PREKEYS: usize = MAX_ONE_TIME_PREKEYS + 1;

/// At most this many prekeys a version-2 [`PreKeyUpload`] carries: the
/// above plus a last-resort KEM prekey and [`MAX_ONE_TIME_KEM_PREKEYS`]
/// one-time KEM prekeys (SPEC.md §3.6, §9).
pub const MAX_UPLOAD_PREKEYS_PQ: usize = MAX_UPLOAD_PREKEYS + 1 + MAX_ONE_TIME_KEM_PREKEYS;

/// Entry kinds of an upload (SPEC.md §3.6): version 1 has the first two,
/// version 2 all four.
const SIGNED_X25519: u8 = 0x01;
const ONE_TIME_X25519: u8 = 0x02;
const LAST_RESORT_KEM: u8 = 0x03;
const ONE_TIME_KEM: u8 = 0x04;

/// The public part of a signed prekey: id, X25519 public key, signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicSignedPreKey {
    id: PreKeyId,
    key: [u8; KEY_LEN],
    signature: [u8; SIGNATURE_LEN],
}

impl PublicSignedPreKey {
    /// The prekey id.
    pub fn id(&self) -> PreKeyId {
        self.id
    }

    /// The X25519 public key.
    pub fn public_key(&self) -> [u8; KEY_LEN] {
        self.key
    }

    /// The signature (SPEC.md §3.2).
    pub fn signature(&self) -> [u8; SIGNATURE_LEN] {
        self.signature
    }

    /// Checks the signature under `identity` (SPEC.md §3.2).
    ///
    /// # Errors
    /// [`KeyAgreementError::BadSignature`] if it does not verify.
    pub fn verify(&self, identity: &IdentityKey) -> Result<(), KeyAgreementError> {
        let ok = identity.verify(&[SIGNED_PREKEY_CONTEXT, &self.id.0.to_be_bytes(), &self.key], &self.signature);
        if ok { Ok(()) } else { Err(KeyAgreementError::BadSignature) }
    }
}

impl From<&SignedPreKey> for PublicSignedPreKey {
    fn from(k: &SignedPreKey) -> Self {
        Self { id: k.id(), key: k.public_key(), signature: k.signature() }
    }
}

/// The public part of a one-time prekey: id and X25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicOneTimePreKey {
    id: PreKeyId,
    key: [u8; KEY_LEN],
}

impl PublicOneTimePreKey {
    /// The prekey id.
    pub fn id(&self) -> PreKeyId {
        self.id
    }

    /// The X25519 public key.
    pub fn public_key(&self) -> [u8; KEY_LEN] {
        self.key
    }
}

impl From<&OneTimePreKey> for PublicOneTimePreKey {
    fn from(k: &OneTimePreKey) -> Self {
        Self { id: k.id(), key: k.public_key() }
    }
}

/// What a device uploads to its server: its identity key, optionally a new
/// signed prekey, and one-time prekeys, all public (SPEC.md §3.6).
///
/// ```text
/// 0x1B | IK.pub (32) | u16 count (<= 1001) of entries:
///      { kind (u8) | id (u32) | public key (32) | signature (64), kind 0x01 only }
/// kind 0x01 = signed X25519 prekey (first entry only), 0x02 = one-time X25519
/// prekey (strictly increasing ids, none equal to the signed prekey's)
///
/// 0x2B | IK.pub (32) | u16 count (<= 1102): the kinds above and
///      { 0x03 | id | u16 = 1568 | ek (1568) | signature (64) }   last-resort KEM prekey
///      { 0x04 | id | u16 = 1568 | ek (1568) | signature (64) }   one-time KEM prekeys
/// kinds non-decreasing, 0x01 and 0x03 at most once, ids distinct (SPEC.md §3.6)
/// ```
///
/// ```
/// # use sottovoce::*;
/// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
/// let mut bob = Account::new(&mut rng);
/// bob.generate_one_time_prekeys(&mut rng, 3);
/// let upload = bob.prekeys_to_publish();
/// bob.mark_published(&upload);
/// assert!(bob.prekeys_to_publish().is_empty());
///
/// // The server: decode, verify, store; later assemble a bundle.
/// let received = PreKeyUpload::try_from(upload.to_bytes().as_slice())?;
/// received.verify()?;
/// let spk = received.signed_prekey().unwrap();
/// let opk = received.one_time_prekeys()[0];
/// let bundle = PreKeyBundle::assemble(received.identity_key(), &spk, Some(&opk));
/// assert_eq!(bundle.one_time_prekey_id(), Some(opk.id()));
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyUpload {
    /// 1 (`0x1B`) or 2 (`0x2B`, a post-quantum device's, SPEC.md §3.6).
    version: u8,
    identity_key: IdentityKey,
    signed_prekey: Option<PublicSignedPreKey>,
    one_time_prekeys: Vec<PublicOneTimePreKey>,
    last_resort_kem_prekey: Option<PublicKemPreKey>,
    one_time_kem_prekeys: Vec<PublicKemPreKey>,
}

impl PreKeyUpload {
    pub(crate) fn new(
        identity_key: IdentityKey,
        signed_prekey: Option<PublicSignedPreKey>,
        one_time_prekeys: Vec<PublicOneTimePreKey>,
    ) -> Self {
        Self {
            version: VERSION,
            identity_key,
            signed_prekey,
            one_time_prekeys,
            last_resort_kem_prekey: None,
            one_time_kem_prekeys: Vec::new(),
        }
    }

    /// A version-2 upload with these KEM prekeys added.
    pub(crate) fn with_kem_prekeys(
        mut self,
        last_resort: Option<PublicKemPreKey>,
        one_time: Vec<PublicKemPreKey>,
    ) -> Self {
        self.version = VERSION_PQ;
        self.last_resort_kem_prekey = last_resort;
        self.one_time_kem_prekeys = one_time;
        self
    }

    /// 1 (`0x1B`) or 2 (`0x2B`: a post-quantum device's upload).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The new last-resort KEM prekey, if this upload carries one.
    pub fn last_resort_kem_prekey(&self) -> Option<&PublicKemPreKey> {
        self.last_resort_kem_prekey.as_ref()
    }

    /// The one-time KEM prekeys, in id order.
    pub fn one_time_kem_prekeys(&self) -> &[PublicKemPreKey] {
        &self.one_time_kem_prekeys
    }

    /// The highest prekey id of any kind in the upload.
    pub(crate) fn highest_id(&self) -> Option<u32> {
        let x = self.signed_prekey.iter().map(|k| k.id.0).chain(self.one_time_prekeys.iter().map(|k| k.id.0));
        let k = self.last_resort_kem_prekey.iter().chain(&self.one_time_kem_prekeys).map(|k| k.id().0);
        x.chain(k).max()
    }

    /// The uploading device's identity key.
    pub fn identity_key(&self) -> IdentityKey {
        self.identity_key
    }

    /// The new signed prekey, if this upload carries one.
    pub fn signed_prekey(&self) -> Option<PublicSignedPreKey> {
        self.signed_prekey
    }

    /// The one-time prekeys, in id order.
    pub fn one_time_prekeys(&self) -> &[PublicOneTimePreKey] {
        &self.one_time_prekeys
    }

    /// Whether there is nothing to upload.
    pub fn is_empty(&self) -> bool {
        self.signed_prekey.is_none()
            && self.one_time_prekeys.is_empty()
            && self.last_resort_kem_prekey.is_none()
            && self.one_time_kem_prekeys.is_empty()
    }

    /// Checks every signature: the signed prekey's, then the KEM prekeys'
    /// (a server MUST, before storing them, SPEC.md §3.6).
    ///
    /// # Errors
    /// [`KeyAgreementError::BadSignature`] if one does not verify.
    pub fn verify(&self) -> Result<(), KeyAgreementError> {
        let v = self.identity_key.verifier();
        if let Some(spk) = &self.signed_prekey {
            let signed = [SIGNED_PREKEY_CONTEXT, &spk.id.0.to_be_bytes(), &spk.key];
            if !v.verify(&signed, &spk.signature) {
                return Err(KeyAgreementError::BadSignature);
            }
        }
        for kem in self.last_resort_kem_prekey.iter().chain(&self.one_time_kem_prekeys) {
            if !kem.verify_with(&v) {
                return Err(KeyAgreementError::BadSignature);
            }
        }
        Ok(())
    }

    /// The encoding of SPEC.md §3.6.
    pub fn to_bytes(&self) -> Vec<u8> {
        let kems = usize::from(self.last_resort_kem_prekey.is_some()) + self.one_time_kem_prekeys.len();
        let n = usize::from(self.signed_prekey.is_some()) + self.one_time_prekeys.len() + kems;
        let mut out = Vec::with_capacity(3 + KEY_LEN + 101 + 37 * n + 1639 * kems);
        out.put_u8(first_byte_of(self.version, kind::PREKEY_UPLOAD));
        out.put(&self.identity_key.to_bytes());
        out.put_u16(n as u16);
        if let Some(spk) = &self.signed_prekey {
            out.put_u8(SIGNED_X25519);
            out.put_u32(spk.id.0);
            out.put(&spk.key);
            out.put(&spk.signature);
        }
        for opk in &self.one_time_prekeys {
            out.put_u8(ONE_TIME_X25519);
            out.put_u32(opk.id.0);
            out.put(&opk.key);
        }
        if let Some(kem) = &self.last_resort_kem_prekey {
            out.put_u8(LAST_RESORT_KEM);
            kem.write(&mut out);
        }
        for kem in &self.one_time_kem_prekeys {
            out.put_u8(ONE_TIME_KEM);
            kem.write(&mut out);
        }
        out
    }
}

impl TryFrom<&[u8]> for PreKeyUpload {
    type Error = DecodeError;

    /// Decodes SPEC.md §3.6: the identity key is accepted per §2.4; entry
    /// kinds are 0x01 (first entry only) and 0x02 (strictly increasing ids,
    /// none the signed prekey's id). Does
    /// not verify the signature ([`PreKeyUpload::verify`] does).
    fn try_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.header_any(kind::PREKEY_UPLOAD)?;
        let pq = version == VERSION_PQ;
        let identity_key = IdentityKey::from_bytes(&r.array()?)?;
        let n = r.count_u16(if pq { MAX_UPLOAD_PREKEYS_PQ } else { MAX_UPLOAD_PREKEYS })?;
        let mut signed_prekey = None;
        let mut one_time_prekeys: Vec<PublicOneTimePreKey> = Vec::with_capacity(n.min(MAX_ONE_TIME_PREKEYS));
        let mut last_resort_kem_prekey = None;
        let mut one_time_kem_prekeys: Vec<PublicKemPreKey> = Vec::new();
        // Kinds come in non-decreasing order; 0x01 and 0x03 at most once.
        let mut last_kind = 0u8;
        for _ in 0..n {
            let offset = r.position();
            let entry = r.u8()?;
            let ordered =
                entry > last_kind || (entry == last_kind && (entry == ONE_TIME_X25519 || entry == ONE_TIME_KEM));
            match entry {
                SIGNED_X25519 if ordered => {
                    let id = PreKeyId(r.u32()?);
                    signed_prekey = Some(PublicSignedPreKey { id, key: r.array()?, signature: r.array()? });
                }
                ONE_TIME_X25519 if ordered => {
                    let id = PreKeyId(r.u32()?);
                    one_time_prekeys.push(PublicOneTimePreKey { id, key: r.array()? });
                }
                LAST_RESORT_KEM if pq && ordered => last_resort_kem_prekey = Some(PublicKemPreKey::read(&mut r)?),
                ONE_TIME_KEM if pq && ordered => one_time_kem_prekeys.push(PublicKemPreKey::read(&mut r)?),
                _ => return Err(DecodeError::InvalidField { offset }),
            }
            last_kind = entry;
        }
        r.finish()?;
        // Ids strictly increasing within each one-time kind, pairwise
        // distinct overall, per-kind bounds: one encoding per upload.
        let rising = one_time_prekeys.windows(2).all(|w| matches!(w, [a, b] if a.id < b.id))
            && one_time_kem_prekeys.windows(2).all(|w| matches!(w, [a, b] if a.id < b.id));
        let mut ids: Vec<u32> = signed_prekey.iter().map(|k| k.id.0).collect();
        ids.extend(one_time_prekeys.iter().map(|k| k.id.0));
        ids.extend(last_resort_kem_prekey.iter().chain(&one_time_kem_prekeys).map(|k| k.id().0));
        ids.sort_unstable();
        let distinct = !ids.windows(2).any(|w| w.first() == w.get(1));
        let bounded =
            one_time_prekeys.len() <= MAX_ONE_TIME_PREKEYS && one_time_kem_prekeys.len() <= MAX_ONE_TIME_KEM_PREKEYS;
        if !rising || !distinct || !bounded {
            return Err(DecodeError::InconsistentState);
        }
        Ok(Self {
            version,
            identity_key,
            signed_prekey,
            one_time_prekeys,
            last_resort_kem_prekey,
            one_time_kem_prekeys,
        })
    }
}

impl PreKeyBundle {
    /// The bundle a server hands out (SPEC.md §3.4, §3.6), assembled from a
    /// device's identity key, its current signed prekey and, while it has
    /// any left, one of its one-time prekeys, which the server then deletes.
    /// With none left the bundle has no one-time prekey: the last-resort
    /// path (SPEC.md §3.6).
    pub fn assemble(
        identity_key: IdentityKey,
        signed_prekey: &PublicSignedPreKey,
        one_time_prekey: Option<&PublicOneTimePreKey>,
    ) -> Self {
        Self::from_parts(
            identity_key,
            signed_prekey.id,
            signed_prekey.key,
            signed_prekey.signature,
            one_time_prekey.map(|k| (k.id, k.key)),
        )
    }
}
