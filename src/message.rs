//! Session message formats (SPEC.md §6.2, §6.3).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use crate::crypto::{KEY_LEN, TAG_LEN};
use crate::error::DecodeError;
use crate::kem::{self, KEM_CIPHERTEXT_LEN};
use crate::keys::{IdentityKey, PreKeyId};
use crate::wire::{Reader, VERSION, VERSION_PQ, Writer, first_byte_of, kind};
use crate::x3dh::KemHeader;

/// Length of a normal message's header: first byte, DHs, PN, N.
pub(crate) const HEADER_LEN: usize = 1 + KEY_LEN + 4 + 4;

/// Bytes a normal message adds to its plaintext: header plus AEAD tag.
///
/// ```
/// assert_eq!(sottovoce::MESSAGE_OVERHEAD, 57);
/// ```
pub const MESSAGE_OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// A Double Ratchet message (SPEC.md §6.2).
///
/// ```text
///  0      1                     33           37          41
///  +------+---------------------+------------+-----------+------------------------+
///  | 0x11 | DHs (X25519, 32)    | PN (u32 BE)| N (u32 BE)| ciphertext || tag (16) |
///  +------+---------------------+------------+-----------+------------------------+
/// ```
/// PN is the length of the sender's previous sending chain. The AEAD
/// associated data is `SHA-256(AD) || bytes 0..41`.
#[derive(Clone, PartialEq, Eq)]
pub struct NormalMessage {
    pub(crate) ratchet_key: [u8; KEY_LEN],
    pub(crate) previous_counter: u32,
    pub(crate) counter: u32,
    /// The whole encoding: header, ciphertext, 16-byte tag.
    pub(crate) bytes: Vec<u8>,
}

impl NormalMessage {
    /// The sender's ratchet public key DHs.
    pub fn ratchet_key(&self) -> [u8; KEY_LEN] {
        self.ratchet_key
    }

    /// The message number N in its sending chain.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// PN: the length of the sender's previous sending chain.
    pub fn previous_counter(&self) -> u32 {
        self.previous_counter
    }

    /// The version nibble of its first byte: 1 (X3DH session) or 2 (PQXDH).
    pub(crate) fn version(&self) -> u8 {
        self.bytes.first().map_or(VERSION, |b| b >> 4)
    }

    pub(crate) fn as_ref(&self) -> NormalMessageRef<'_> {
        NormalMessageRef {
            version: self.version(),
            ratchet_key: self.ratchet_key,
            previous_counter: self.previous_counter,
            counter: self.counter,
            body: self.ciphertext(),
        }
    }

    /// Ciphertext followed by the 16-byte tag.
    pub(crate) fn ciphertext(&self) -> &[u8] {
        self.bytes.get(HEADER_LEN..).unwrap_or_default()
    }

    /// The encoding of SPEC.md §6.2.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The encoding of SPEC.md §6.2, without a copy.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.put(&self.bytes);
    }

    pub(crate) fn encoded_len(&self) -> usize {
        self.bytes.len()
    }
}

pub(crate) fn header(
    version: u8,
    ratchet_key: &[u8; KEY_LEN],
    previous_counter: u32,
    counter: u32,
) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    let (b0, rest) = h.split_at_mut(1);
    let (rk, rest) = rest.split_at_mut(KEY_LEN);
    let (pn, n) = rest.split_at_mut(4);
    b0.copy_from_slice(&[first_byte_of(version, kind::MESSAGE)]);
    rk.copy_from_slice(ratchet_key);
    pn.copy_from_slice(&previous_counter.to_be_bytes());
    n.copy_from_slice(&counter.to_be_bytes());
    h
}

/// A §6.2 message parsed in place, without allocating.
pub(crate) struct NormalMessageRef<'a> {
    /// 1 or 2 (SPEC.md §6.8).
    pub(crate) version: u8,
    pub(crate) ratchet_key: [u8; KEY_LEN],
    pub(crate) previous_counter: u32,
    pub(crate) counter: u32,
    /// Ciphertext and tag: at least `TAG_LEN` bytes.
    pub(crate) body: &'a [u8],
}

impl<'a> NormalMessageRef<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.header_any(kind::MESSAGE)?;
        let ratchet_key = r.array()?;
        let previous_counter = r.u32()?;
        let counter = r.u32()?;
        let offset = r.position();
        let body = r.rest();
        if body.len() < TAG_LEN {
            return Err(DecodeError::Truncated { offset: offset + body.len() });
        }
        Ok(Self { version, ratchet_key, previous_counter, counter, body })
    }
}

impl TryFrom<&[u8]> for NormalMessage {
    type Error = DecodeError;

    fn try_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let m = NormalMessageRef::parse(bytes)?;
        Ok(Self {
            ratchet_key: m.ratchet_key,
            previous_counter: m.previous_counter,
            counter: m.counter,
            bytes: bytes.to_vec(),
        })
    }
}

impl fmt::Debug for NormalMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NormalMessage")
            .field("previous_counter", &self.previous_counter)
            .field("counter", &self.counter)
            .field("ciphertext_len", &self.ciphertext().len())
            .finish_non_exhaustive()
    }
}

/// The initiator's first messages: X3DH header plus a normal message
/// (SPEC.md §6.3). Sent until the initiator decrypts a reply.
///
/// ```text
///  0      1            33           65         69     70              74
///  +------+------------+------------+----------+------+---------------+-------------------+
///  | 0x12 | IK_A (32)  | EK_A (32)  | SPK id   | flag | OPK id (flag) | normal message    |
///  +------+------------+------------+----------+------+---------------+-------------------+
/// ```
///
/// A version-2 (PQXDH) prekey message (SPEC.md §6.8) has first byte `0x22`,
/// the KEM prekey id and ciphertext after the OPK id, and an embedded
/// `0x21` message:
///
/// ```text
///  ... | OPK id (flag) | KEM id (u32) | u16 = 1568 | ct (1568) | normal message (0x21) |
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PreKeyMessage {
    pub(crate) identity_key: IdentityKey,
    pub(crate) base_key: [u8; KEY_LEN],
    pub(crate) signed_prekey_id: PreKeyId,
    pub(crate) one_time_prekey_id: Option<PreKeyId>,
    /// PQXDH (version 2) only: KEM prekey id and ciphertext (SPEC.md §6.8).
    pub(crate) kem: Option<KemHeader>,
    pub(crate) message: NormalMessage,
}

impl PreKeyMessage {
    /// The initiator's identity key IK_A.
    pub fn identity_key(&self) -> IdentityKey {
        self.identity_key
    }

    /// The initiator's ephemeral key EK_A; it also identifies the session
    /// ([`crate::Session::session_id`]).
    pub fn base_key(&self) -> [u8; KEY_LEN] {
        self.base_key
    }

    /// The session this prekey message belongs to: its EK_A (SPEC.md §4.5).
    /// A responder that holds a session with this id delivers the message to
    /// it ([`crate::Session::decrypt`]), never to [`crate::Session::respond`].
    pub fn session_id(&self) -> crate::SessionId {
        crate::SessionId(self.base_key)
    }

    /// The responder's signed prekey used.
    pub fn signed_prekey_id(&self) -> PreKeyId {
        self.signed_prekey_id
    }

    /// The responder's one-time prekey used, if any.
    pub fn one_time_prekey_id(&self) -> Option<PreKeyId> {
        self.one_time_prekey_id
    }

    /// The responder's KEM prekey used, for a PQXDH (version 2) message.
    pub fn kem_prekey_id(&self) -> Option<PreKeyId> {
        self.kem.as_ref().map(|k| k.id)
    }

    /// The ML-KEM ciphertext, for a PQXDH (version 2) message.
    pub fn kem_ciphertext(&self) -> Option<&[u8; KEM_CIPHERTEXT_LEN]> {
        self.kem.as_ref().map(|k| &*k.ciphertext)
    }

    /// 1 (X3DH, first byte 0x12) or 2 (PQXDH, 0x22).
    pub fn version(&self) -> u8 {
        if self.kem.is_some() { VERSION_PQ } else { VERSION }
    }

    /// The embedded ratchet message.
    pub fn message(&self) -> &NormalMessage {
        &self.message
    }

    /// The encoding of SPEC.md §6.3 (version 1) or §6.8 (version 2).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(74 + 6 + KEM_CIPHERTEXT_LEN + self.message.encoded_len());
        out.put_u8(first_byte_of(self.version(), kind::PREKEY_MESSAGE));
        out.put(&self.identity_key.to_bytes());
        out.put(&self.base_key);
        out.put_u32(self.signed_prekey_id.0);
        out.put_flag(self.one_time_prekey_id.is_some());
        if let Some(id) = self.one_time_prekey_id {
            out.put_u32(id.0);
        }
        if let Some(kem) = &self.kem {
            out.put_u32(kem.id.0);
            out.put_u16(KEM_CIPHERTEXT_LEN as u16);
            out.put(&kem.ciphertext[..]);
        }
        self.message.write(&mut out);
        out
    }
}

impl TryFrom<&[u8]> for PreKeyMessage {
    type Error = DecodeError;

    fn try_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.header_any(kind::PREKEY_MESSAGE)?;
        let identity_key = IdentityKey::from_bytes(&r.array()?)?;
        let base_key = r.array()?;
        let signed_prekey_id = PreKeyId(r.u32()?);
        let one_time_prekey_id = if r.flag()? { Some(PreKeyId(r.u32()?)) } else { None };
        let kem = if version == VERSION_PQ {
            let id = PreKeyId(r.u32()?);
            Some(KemHeader { id, ciphertext: kem::read_kem_bytes(&mut r)? })
        } else {
            None
        };
        let offset = r.position();
        let message = NormalMessage::try_from(r.rest()).map_err(|e| shift(e, offset))?;
        // The embedded message has the prekey message's version (SPEC.md §6.8).
        if message.version() != version {
            return Err(DecodeError::UnexpectedType(message.bytes.first().copied().unwrap_or_default()));
        }
        Ok(Self { identity_key, base_key, signed_prekey_id, one_time_prekey_id, kem, message })
    }
}

/// Re-bases an inner decode error's offset onto the outer buffer.
fn shift(e: DecodeError, by: usize) -> DecodeError {
    match e {
        DecodeError::Truncated { offset } => DecodeError::Truncated { offset: offset + by },
        DecodeError::InvalidField { offset } => DecodeError::InvalidField { offset: offset + by },
        other => other,
    }
}

impl fmt::Debug for PreKeyMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreKeyMessage")
            .field("identity_key", &self.identity_key)
            .field("signed_prekey_id", &self.signed_prekey_id)
            .field("one_time_prekey_id", &self.one_time_prekey_id)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

/// Any session message: what [`crate::Session::encrypt`] returns and
/// [`crate::Session::decrypt`] takes. The first byte tells which.
///
/// ```
/// # use sottovoce::{Message, DecodeError};
/// assert!(matches!(Message::try_from(&[0x11u8][..]), Err(DecodeError::Truncated { .. })));
/// assert!(matches!(Message::try_from(&[0x21u8][..]), Err(DecodeError::Truncated { .. })));
/// assert!(matches!(Message::try_from(&[0x31u8][..]), Err(DecodeError::UnknownVersion(0x31))));
/// ```
///
/// The prekey variant is boxed so that both variants are small: a moved
/// normal message carries no stale bytes of a larger variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A prekey message (first byte 0x12, or 0x22 for PQXDH).
    PreKey(Box<PreKeyMessage>),
    /// A normal ratchet message (first byte 0x11, or 0x21 in a PQXDH session).
    Normal(NormalMessage),
}

impl Message {
    /// The wire encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::PreKey(m) => m.to_bytes(),
            Self::Normal(m) => m.to_bytes(),
        }
    }

    #[cfg(test)]
    pub(crate) fn normal(&self) -> &NormalMessage {
        match self {
            Self::PreKey(m) => &m.message,
            Self::Normal(m) => m,
        }
    }
}

impl TryFrom<&[u8]> for Message {
    type Error = DecodeError;

    fn try_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let first = *bytes.first().ok_or(DecodeError::Truncated { offset: 0 })?;
        if first >> 4 != VERSION && first >> 4 != VERSION_PQ {
            return Err(DecodeError::UnknownVersion(first));
        }
        match first & 0x0f {
            kind::PREKEY_MESSAGE => Ok(Self::PreKey(Box::new(PreKeyMessage::try_from(bytes)?))),
            kind::MESSAGE => Ok(Self::Normal(NormalMessage::try_from(bytes)?)),
            _ => Err(DecodeError::UnexpectedType(first)),
        }
    }
}
