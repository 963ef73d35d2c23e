//! Publishing prekeys: the public records a server stores and the bundles
//! it assembles from them, without ever holding a secret type (SPEC.md
//! §3.6).

use alloc::vec::Vec;

use crate::crypto::{KEY_LEN, SIGNATURE_LEN};
use crate::error::{DecodeError, KeyAgreementError};
use crate::keys::{IdentityKey, MAX_ONE_TIME_PREKEYS, OneTimePreKey, PreKeyBundle, PreKeyId, SignedPreKey};
use crate::labels::SIGNED_PREKEY_CONTEXT;
use crate::wire::{Reader, Writer, first_byte, kind};

/// At most this many prekeys one [`PreKeyUpload`] carries: a signed prekey
/// and [`MAX_ONE_TIME_PREKEYS`] one-time prekeys (SPEC.md §9).
pub const MAX_UPLOAD_PREKEYS: usize = MAX_ONE_TIME_PREKEYS + 1;

/// Entry kinds of an upload (SPEC.md §3.6). Other kinds are `decode` in
/// this revision; a later suite adds its own (signed ML-KEM prekeys).
const SIGNED_X25519: u8 = 0x01;
const ONE_TIME_X25519: u8 = 0x02;

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
    identity_key: IdentityKey,
    signed_prekey: Option<PublicSignedPreKey>,
    one_time_prekeys: Vec<PublicOneTimePreKey>,
}

impl PreKeyUpload {
    pub(crate) fn new(
        identity_key: IdentityKey,
        signed_prekey: Option<PublicSignedPreKey>,
        one_time_prekeys: Vec<PublicOneTimePreKey>,
    ) -> Self {
        Self { identity_key, signed_prekey, one_time_prekeys }
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
        self.signed_prekey.is_none() && self.one_time_prekeys.is_empty()
    }

    /// Checks the signed prekey's signature (a server SHOULD, before storing
    /// it; the initiator always does, SPEC.md §4.2).
    ///
    /// # Errors
    /// [`KeyAgreementError::BadSignature`] if it does not verify.
    pub fn verify(&self) -> Result<(), KeyAgreementError> {
        match &self.signed_prekey {
            Some(spk) => spk.verify(&self.identity_key),
            None => Ok(()),
        }
    }

    /// The encoding of SPEC.md §3.6.
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = usize::from(self.signed_prekey.is_some()) + self.one_time_prekeys.len();
        let mut out = Vec::with_capacity(3 + KEY_LEN + 101 + 37 * n);
        out.put_u8(first_byte(kind::PREKEY_UPLOAD));
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
        r.header(kind::PREKEY_UPLOAD)?;
        let identity_key = IdentityKey::from_bytes(&r.array()?)?;
        let n = r.count_u16(MAX_UPLOAD_PREKEYS)?;
        let mut signed_prekey = None;
        let mut one_time_prekeys: Vec<PublicOneTimePreKey> = Vec::with_capacity(n);
        for i in 0..n {
            let offset = r.position();
            match r.u8()? {
                // The signed prekey, if any, is the first entry.
                SIGNED_X25519 if i == 0 => {
                    let id = PreKeyId(r.u32()?);
                    signed_prekey = Some(PublicSignedPreKey { id, key: r.array()?, signature: r.array()? });
                }
                ONE_TIME_X25519 => {
                    let id = PreKeyId(r.u32()?);
                    one_time_prekeys.push(PublicOneTimePreKey { id, key: r.array()? });
                }
                _ => return Err(DecodeError::InvalidField { offset }),
            }
        }
        r.finish()?;
        // One-time prekeys in strictly increasing id order, none with the
        // signed prekey's id: one encoding per upload.
        let rising = one_time_prekeys.windows(2).all(|w| matches!(w, [a, b] if a.id < b.id));
        let clash = signed_prekey.is_some_and(|s| one_time_prekeys.iter().any(|k| k.id == s.id));
        if !rising || clash {
            return Err(DecodeError::InconsistentState);
        }
        Ok(Self { identity_key, signed_prekey, one_time_prekeys })
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
