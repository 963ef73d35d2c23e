//! Error types, one small `Copy` enum per layer (SPEC.md §10).
//!
//! Every variant maps to exactly one of the closed list of error categories
//! in SPEC.md §10 ([`ErrorCategory`]), which is what the test vectors name.
//! Authentication failures are one variant: the error says *that* a check
//! failed, never which one, so it is no oracle.

use core::fmt;

/// The closed list of error categories of SPEC.md §10, as named in the test
/// vectors (`"error": "..."`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCategory {
    /// Bytes that are not a well-formed encoding (`"decode"`).
    Decode,
    /// A first byte whose version nibble is not 1 (`"unknown-version"`).
    UnknownVersion,
    /// A public key that is not acceptable: an invalid or small-order Ed25519
    /// point (`"invalid-key"`).
    InvalidKey,
    /// A signed prekey signature that does not verify (`"bad-signature"`).
    BadSignature,
    /// An all-zero X25519 output, i.e. a low-order peer key
    /// (`"non-contributory"`).
    NonContributory,
    /// A prekey message naming a prekey the responder does not hold
    /// (`"unknown-prekey"`).
    UnknownPreKey,
    /// AEAD tag or group signature failure (`"authentication"`).
    Authentication,
    /// A message whose key was already used or deleted (`"duplicate"`).
    Duplicate,
    /// A message further ahead than the skip bound allows (`"skip-limit"`).
    SkipLimit,
    /// A 32-bit counter that would overflow (`"counter-exhausted"`).
    CounterExhausted,
    /// A message that belongs to another session, group, sender or key id
    /// (`"state-mismatch"`).
    StateMismatch,
    /// A version-1 prekey message that would create a session at a
    /// responder that requires PQXDH (`"downgrade"`, SPEC.md §4.8).
    Downgrade,
}

impl ErrorCategory {
    /// The category's name as written in SPEC.md §10 and the test vectors.
    ///
    /// ```
    /// assert_eq!(sottovoce::ErrorCategory::SkipLimit.name(), "skip-limit");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Self::Decode => "decode",
            Self::UnknownVersion => "unknown-version",
            Self::InvalidKey => "invalid-key",
            Self::BadSignature => "bad-signature",
            Self::NonContributory => "non-contributory",
            Self::UnknownPreKey => "unknown-prekey",
            Self::Authentication => "authentication",
            Self::Duplicate => "duplicate",
            Self::SkipLimit => "skip-limit",
            Self::CounterExhausted => "counter-exhausted",
            Self::StateMismatch => "state-mismatch",
            Self::Downgrade => "downgrade",
        }
    }
}

impl fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Bytes that do not decode (SPEC.md §6, §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the field that starts at `offset`.
    Truncated {
        /// Offset of the field that did not fit.
        offset: usize,
    },
    /// Bytes were left over after a complete message.
    TrailingBytes {
        /// Number of bytes left over.
        extra: usize,
    },
    /// The version nibble of the first byte is not one this crate reads.
    UnknownVersion(u8),
    /// The type nibble of the first byte is not the expected message type.
    UnexpectedType(u8),
    /// A field holds a value outside its documented range (a flag byte other
    /// than 0 or 1, a length out of bounds, an empty group id, ...).
    InvalidField {
        /// Offset of the offending field.
        offset: usize,
    },
    /// An Ed25519 public key that is not acceptable (SPEC.md §2.4): not the
    /// canonical encoding of a point of the prime-order subgroup other than
    /// the identity.
    InvalidKey,
    /// A saved state whose fields decode but contradict each other (SPEC.md
    /// §11.1): e.g. a skipped key stored twice, or at or past its chain's
    /// next number.
    InconsistentState,
    /// A collection in a saved state is larger than its documented bound.
    LimitExceeded {
        /// The count that was found.
        got: u32,
        /// The largest count allowed.
        max: u32,
    },
}

impl DecodeError {
    /// The SPEC.md §10 category of this error.
    ///
    /// ```
    /// use sottovoce::{DecodeError, ErrorCategory};
    /// assert_eq!(DecodeError::UnknownVersion(0x21).category(), ErrorCategory::UnknownVersion);
    /// ```
    pub const fn category(self) -> ErrorCategory {
        match self {
            Self::UnknownVersion(_) => ErrorCategory::UnknownVersion,
            Self::InvalidKey => ErrorCategory::InvalidKey,
            _ => ErrorCategory::Decode,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { offset } => write!(f, "input truncated at offset {offset}"),
            Self::TrailingBytes { extra } => write!(f, "{extra} trailing bytes after message"),
            Self::UnknownVersion(b) => write!(f, "unknown protocol version in first byte {b:#04x}"),
            Self::UnexpectedType(b) => write!(f, "unexpected message type in first byte {b:#04x}"),
            Self::InvalidField { offset } => write!(f, "invalid field value at offset {offset}"),
            Self::InvalidKey => f.write_str("invalid public key"),
            Self::InconsistentState => f.write_str("saved state is inconsistent"),
            Self::LimitExceeded { got, max } => write!(f, "count {got} exceeds limit {max}"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// X3DH failures (SPEC.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAgreementError {
    /// The signed prekey's signature does not verify under the identity key.
    BadSignature,
    /// A DH output was all zero: a peer key of small order.
    NonContributory,
    /// The prekey message names a signed or one-time prekey the store lacks.
    UnknownPreKey,
    /// Caller-supplied input out of bounds (a binding over
    /// [`crate::MAX_BINDING_LEN`] bytes).
    Decode(DecodeError),
    /// The message's inner ratchet message failed to decrypt.
    Decrypt(DecryptError),
    /// A key that is not the one expected: a bundle or prekey message whose
    /// identity is not the record's remote device (SPEC.md §4.7), a device
    /// certificate or list of another user, or a device list older than the
    /// one already accepted (SPEC.md §3.7). Category `state-mismatch`.
    IdentityMismatch,
    /// A version-1 bundle or prekey message where PQXDH is required: by the
    /// responder's store, by a session record that holds a PQXDH session
    /// with the device, or by `initiate_pq` (SPEC.md §4.7, §4.8).
    Downgrade,
    /// A prekey message whose base key the last-resort KEM prekey it names
    /// has accepted before: a replayed first message (SPEC.md §4.8).
    Duplicate,
}

impl KeyAgreementError {
    /// The SPEC.md §10 category of this error.
    pub const fn category(self) -> ErrorCategory {
        match self {
            Self::BadSignature => ErrorCategory::BadSignature,
            Self::NonContributory => ErrorCategory::NonContributory,
            Self::UnknownPreKey => ErrorCategory::UnknownPreKey,
            Self::Decode(e) => e.category(),
            Self::Decrypt(e) => e.category(),
            Self::IdentityMismatch => ErrorCategory::StateMismatch,
            Self::Downgrade => ErrorCategory::Downgrade,
            Self::Duplicate => ErrorCategory::Duplicate,
        }
    }
}

impl fmt::Display for KeyAgreementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSignature => f.write_str("signed prekey signature does not verify"),
            Self::NonContributory => f.write_str("non-contributory (all-zero) X25519 output"),
            Self::UnknownPreKey => f.write_str("prekey message names an unknown prekey"),
            Self::Decode(e) => write!(f, "invalid input: {e}"),
            Self::Decrypt(e) => write!(f, "initial message: {e}"),
            Self::IdentityMismatch => f.write_str("identity key is not the one expected for this address"),
            Self::Downgrade => {
                f.write_str("downgrade refused: a classical (X3DH) bundle or prekey message where PQXDH is required")
            }
            Self::Duplicate => f.write_str("base key already accepted under this last-resort KEM prekey (a replay)"),
        }
    }
}

impl core::error::Error for KeyAgreementError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Decode(e) => Some(e),
            Self::Decrypt(e) => Some(e),
            _ => None,
        }
    }
}

/// Encryption failures (SPEC.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncryptError {
    /// The sending chain's 32-bit counter is exhausted; the session must be
    /// replaced (SPEC.md §9).
    CounterExhausted,
    /// The peer's ratchet key gave an all-zero DH output.
    NonContributory,
    /// The caller's output buffer is too small for `needed` bytes.
    BufferTooSmall {
        /// Bytes the output needs.
        needed: usize,
    },
    /// [`crate::Session::encrypt_into`] on an initiator's session that must
    /// still send prekey messages: use [`crate::Session::encrypt`].
    PreKeyMessageRequired,
    /// A [`crate::SessionRecord`] with no session yet: initiate one from
    /// the peer's bundle first (category `state-mismatch`).
    NoSession,
    /// A [`crate::Group`] this device was removed from (category
    /// `state-mismatch`).
    NotMember,
}

impl EncryptError {
    /// The SPEC.md §10 category of this error.
    pub const fn category(self) -> ErrorCategory {
        match self {
            Self::CounterExhausted => ErrorCategory::CounterExhausted,
            Self::NonContributory => ErrorCategory::NonContributory,
            Self::BufferTooSmall { .. } => ErrorCategory::Decode,
            Self::PreKeyMessageRequired | Self::NoSession | Self::NotMember => ErrorCategory::StateMismatch,
        }
    }
}

impl fmt::Display for EncryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CounterExhausted => f.write_str("sending counter exhausted"),
            Self::NonContributory => f.write_str("non-contributory (all-zero) X25519 output"),
            Self::BufferTooSmall { needed } => write!(f, "output buffer too small: {needed} bytes needed"),
            Self::PreKeyMessageRequired => f.write_str("session must still send prekey messages: use encrypt"),
            Self::NoSession => f.write_str("no session with this device yet: initiate one from its prekey bundle"),
            Self::NotMember => f.write_str("not a member of this group any more"),
        }
    }
}

impl core::error::Error for EncryptError {}

/// Decryption failures (SPEC.md §5.6, §7). On every one of them the state is
/// exactly as it was before the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecryptError {
    /// The bytes are not a well-formed message.
    Decode(DecodeError),
    /// The AEAD tag, or a group message's signature, did not verify.
    Authentication,
    /// The message key was already used (a replay) or deleted.
    Duplicate,
    /// The message is `got` steps ahead of its chain; at most `max` allowed.
    SkipLimit {
        /// How far ahead the message is.
        got: u32,
        /// The bound.
        max: u32,
    },
    /// A counter would overflow.
    CounterExhausted,
    /// The peer's ratchet key gave an all-zero DH output.
    NonContributory,
    /// The message belongs to another session, group, sender or key id.
    StateMismatch,
    /// A prekey message to a [`crate::SessionRecord`] names a signed or
    /// one-time prekey the responder does not hold (category
    /// `unknown-prekey`).
    UnknownPreKey,
    /// A version-1 prekey message to a responder that requires PQXDH
    /// (SPEC.md §4.8).
    Downgrade,
    /// A group message from a sender, or with a key id, this member holds no
    /// sender key for yet: its distribution has not arrived (ask the sender
    /// for it). Category `state-mismatch` (SPEC.md §7.4).
    NoSenderKey,
    /// A group message for a group this member has left or was removed from
    /// (SPEC.md §7.5). Category `state-mismatch`.
    NotMember,
    /// The caller's output buffer is too small for `needed` bytes (not a
    /// protocol error; its category is `decode`).
    BufferTooSmall {
        /// Bytes the plaintext needs.
        needed: usize,
    },
}

impl DecryptError {
    /// The SPEC.md §10 category of this error.
    pub const fn category(self) -> ErrorCategory {
        match self {
            Self::Decode(e) => e.category(),
            Self::Authentication => ErrorCategory::Authentication,
            Self::Duplicate => ErrorCategory::Duplicate,
            Self::SkipLimit { .. } => ErrorCategory::SkipLimit,
            Self::CounterExhausted => ErrorCategory::CounterExhausted,
            Self::NonContributory => ErrorCategory::NonContributory,
            Self::StateMismatch | Self::NoSenderKey | Self::NotMember => ErrorCategory::StateMismatch,
            Self::UnknownPreKey => ErrorCategory::UnknownPreKey,
            Self::Downgrade => ErrorCategory::Downgrade,
            Self::BufferTooSmall { .. } => ErrorCategory::Decode,
        }
    }
}

impl From<KeyAgreementError> for DecryptError {
    /// How a prekey message's X3DH failure reads as a decryption failure
    /// of a [`crate::SessionRecord`]; the category is kept, except that a
    /// bad signature or an identity mismatch (neither arises when
    /// responding) reads as `state-mismatch`.
    fn from(e: KeyAgreementError) -> Self {
        match e {
            KeyAgreementError::Decrypt(e) => e,
            KeyAgreementError::Decode(e) => Self::Decode(e),
            KeyAgreementError::UnknownPreKey => Self::UnknownPreKey,
            KeyAgreementError::NonContributory => Self::NonContributory,
            KeyAgreementError::Downgrade => Self::Downgrade,
            KeyAgreementError::Duplicate => Self::Duplicate,
            KeyAgreementError::BadSignature | KeyAgreementError::IdentityMismatch => Self::StateMismatch,
        }
    }
}

impl From<DecodeError> for DecryptError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

impl fmt::Display for DecryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "malformed message: {e}"),
            Self::Authentication => f.write_str(
                "message failed authentication (tampered or forged, meant for another session, or sent with a different binding)",
            ),
            Self::Duplicate => f.write_str(
                "message key already used or deleted (a replay, a message from before this receiver's start, or one evicted by a bound)",
            ),
            Self::SkipLimit { got, max } => write!(f, "message {got} ahead of its chain; at most {max} allowed"),
            Self::CounterExhausted => f.write_str("message counter exhausted"),
            Self::NonContributory => f.write_str("non-contributory (all-zero) X25519 output"),
            Self::StateMismatch => f.write_str("message does not belong to this state"),
            Self::UnknownPreKey => f.write_str("prekey message names an unknown prekey"),
            Self::Downgrade => f.write_str("downgrade refused: a classical (X3DH) prekey message where PQXDH is required"),
            Self::NoSenderKey => f.write_str("no sender key of this sender yet: its distribution has not arrived"),
            Self::NotMember => f.write_str("not a member of this group any more"),
            Self::BufferTooSmall { needed } => write!(f, "output buffer too small: {needed} bytes needed"),
        }
    }
}

impl core::error::Error for DecryptError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Decode(e) => Some(e),
            _ => None,
        }
    }
}

/// Failure to restore a saved or sealed state (SPEC.md §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreError {
    /// The saved bytes are malformed.
    Decode(DecodeError),
    /// The sealed bytes did not authenticate under the storage key.
    Authentication,
}

impl RestoreError {
    /// The SPEC.md §10 category of this error.
    pub const fn category(self) -> ErrorCategory {
        match self {
            Self::Decode(e) => e.category(),
            Self::Authentication => ErrorCategory::Authentication,
        }
    }
}

impl From<DecodeError> for RestoreError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "malformed saved state: {e}"),
            Self::Authentication => f.write_str("sealed state failed authentication"),
        }
    }
}

impl core::error::Error for RestoreError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Decode(e) => Some(e),
            Self::Authentication => None,
        }
    }
}
