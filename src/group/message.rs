//! Sender Keys wire formats (SPEC.md §6.5, §6.6).

use alloc::vec::Vec;
use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{Ed25519Public, KEY_LEN, SIGNATURE_LEN, Secret32, TAG_LEN};
use crate::error::DecodeError;
use crate::wire::{Reader, Writer, first_byte, kind};

/// Longest group id (SPEC.md §9). Group ids are 1 to 64 bytes.
pub const MAX_GROUP_ID_LEN: usize = 64;

/// Bytes a group message adds to its plaintext: first byte, key id,
/// iteration, AEAD tag and Ed25519 signature.
///
/// ```
/// assert_eq!(sottovoce::GROUP_MESSAGE_OVERHEAD, 89);
/// ```
pub const GROUP_MESSAGE_OVERHEAD: usize = GROUP_HEADER_LEN + TAG_LEN + SIGNATURE_LEN;

pub(crate) const GROUP_HEADER_LEN: usize = 1 + 4 + 4;

/// A group id: 1 to [`MAX_GROUP_ID_LEN`] bytes chosen by the application.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct GroupId(Vec<u8>);

impl GroupId {
    /// Checks the length.
    ///
    /// # Errors
    /// [`DecodeError::InvalidField`] for an empty id,
    /// [`DecodeError::LimitExceeded`] for one longer than [`MAX_GROUP_ID_LEN`].
    ///
    /// ```
    /// # use sottovoce::GroupId;
    /// assert!(GroupId::new(b"family").is_ok());
    /// assert!(GroupId::new(b"").is_err());
    /// ```
    pub fn new(id: &[u8]) -> Result<Self, DecodeError> {
        if id.is_empty() {
            return Err(DecodeError::InvalidField { offset: 0 });
        }
        if id.len() > MAX_GROUP_ID_LEN {
            let got = u32::try_from(id.len()).unwrap_or(u32::MAX);
            return Err(DecodeError::LimitExceeded { got, max: MAX_GROUP_ID_LEN as u32 });
        }
        Ok(Self(id.to_vec()))
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// len (u8) || bytes: how the id enters encodings, AD and signatures.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(self.0.len() as u8);
        out.put(&self.0);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.position();
        let len = usize::from(r.u8()?);
        if len == 0 || len > MAX_GROUP_ID_LEN {
            return Err(DecodeError::InvalidField { offset });
        }
        Ok(Self(r.bytes(len)?.to_vec()))
    }
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupId(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Decodes a signing key: a canonical Ed25519 point not of small order.
pub(crate) fn signing_key(bytes: &[u8; KEY_LEN]) -> Result<Ed25519Public, DecodeError> {
    Ed25519Public::from_bytes(bytes).ok_or(DecodeError::InvalidKey)
}

/// A sender key, as its owner hands it to each member inside their pairwise
/// sessions (SPEC.md §6.5).
///
/// ```text
///  0      1     2          2+L        6+L          10+L          42+L          74+L
///  +------+-----+----------+----------+------------+-------------+-------------+
///  | 0x14 | L   | group id | key id   | iteration  | chain key   | signing key |
///  +------+-----+----------+----------+------------+-------------+-------------+
/// ```
///
/// # Security
/// Holds the chain key: anyone who reads it can decrypt the sender's group
/// messages from `iteration` on. Send it only inside a pairwise session.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SenderKeyDistribution {
    #[zeroize(skip)]
    pub(crate) group_id: GroupId,
    #[zeroize(skip)]
    pub(crate) key_id: u32,
    #[zeroize(skip)]
    pub(crate) iteration: u32,
    pub(crate) chain_key: Secret32,
    #[zeroize(skip)]
    pub(crate) signing_key: Ed25519Public,
}

impl SenderKeyDistribution {
    /// The group this sender key is for.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// The sender key's id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The first iteration a holder of this distribution can decrypt.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// The encoding of SPEC.md §6.5.
    ///
    /// # Security
    /// Contains the chain key; see the type's docs.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(74 + MAX_GROUP_ID_LEN));
        out.put_u8(first_byte(kind::SENDER_KEY_DISTRIBUTION));
        self.group_id.write(&mut out);
        out.put_u32(self.key_id);
        out.put_u32(self.iteration);
        out.put(&self.chain_key.0);
        out.put(&self.signing_key.to_bytes());
        out
    }
}

impl TryFrom<&[u8]> for SenderKeyDistribution {
    type Error = DecodeError;

    fn try_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header(kind::SENDER_KEY_DISTRIBUTION)?;
        let group_id = GroupId::read(&mut r)?;
        let key_id = r.u32()?;
        let iteration = r.u32()?;
        let chain_key = Secret32(r.array()?);
        let signing_key = signing_key(&r.array()?)?;
        r.finish()?;
        Ok(Self { group_id, key_id, iteration, chain_key, signing_key })
    }
}

impl fmt::Debug for SenderKeyDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { group_id, key_id, iteration, chain_key: _, signing_key: _ } = self;
        f.debug_struct("SenderKeyDistribution")
            .field("group_id", group_id)
            .field("key_id", key_id)
            .field("iteration", iteration)
            .finish_non_exhaustive()
    }
}

/// A group message (SPEC.md §6.6).
///
/// ```text
///  0      1         5            9
///  +------+---------+------------+-------------------------+-----------------+
///  | 0x15 | key id  | iteration  | ciphertext || tag (16)  | signature (64)  |
///  +------+---------+------------+-------------------------+-----------------+
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct GroupMessage {
    pub(crate) key_id: u32,
    pub(crate) iteration: u32,
    /// The whole encoding, signature included.
    pub(crate) bytes: Vec<u8>,
}

impl GroupMessage {
    /// The sender key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The message's iteration in the sender's chain.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// Everything the signature covers: bytes before the signature.
    pub(crate) fn signed_part(&self) -> &[u8] {
        let end = self.bytes.len().saturating_sub(SIGNATURE_LEN);
        self.bytes.get(..end).unwrap_or_default()
    }

    pub(crate) fn signature(&self) -> [u8; SIGNATURE_LEN] {
        let mut sig = [0u8; SIGNATURE_LEN];
        let start = self.bytes.len().saturating_sub(SIGNATURE_LEN);
        if let Some(s) = self.bytes.get(start..) {
            sig.copy_from_slice(s);
        }
        sig
    }

    pub(crate) fn header(&self) -> &[u8] {
        self.bytes.get(..GROUP_HEADER_LEN).unwrap_or_default()
    }

    /// Ciphertext and tag.
    pub(crate) fn ciphertext(&self) -> &[u8] {
        self.signed_part().get(GROUP_HEADER_LEN..).unwrap_or_default()
    }

    /// The encoding of SPEC.md §6.6.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The encoding of SPEC.md §6.6, without a copy.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl TryFrom<&[u8]> for GroupMessage {
    type Error = DecodeError;

    fn try_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header(kind::GROUP_MESSAGE)?;
        let key_id = r.u32()?;
        let iteration = r.u32()?;
        let rest = r.rest();
        if rest.len() < TAG_LEN + SIGNATURE_LEN {
            return Err(DecodeError::Truncated { offset: bytes.len() });
        }
        Ok(Self { key_id, iteration, bytes: bytes.to_vec() })
    }
}

impl fmt::Debug for GroupMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupMessage")
            .field("key_id", &self.key_id)
            .field("iteration", &self.iteration)
            .field("len", &self.bytes.len())
            .finish()
    }
}
