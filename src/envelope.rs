//! Envelopes: what one device sends another, framed so that two
//! implementations agree on what each plaintext is (SPEC.md §6.7).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use zeroize::Zeroizing;

use crate::device::Address;
use crate::error::DecodeError;
use crate::group::{GroupId, GroupMessage, SenderKeyDistribution};
use crate::wire::{Reader, Writer, first_byte, kind};

/// Envelope kinds (SPEC.md §6.7).
mod kinds {
    pub(super) const CONTENT: u8 = 0x01;
    pub(super) const DISTRIBUTION: u8 = 0x02;
    pub(super) const DISTRIBUTION_REQUEST: u8 = 0x03;
    pub(super) const REMOVED: u8 = 0x04;
    pub(super) const GROUP_MESSAGE: u8 = 0x05;
}

/// One unit of what a device sends (SPEC.md §6.7). Kinds 1 to 4 travel as
/// the plaintext of a pairwise session message; a group message travels as
/// it is (its content is already encrypted and signed), naming its group and
/// sender so the receiver finds the right [`crate::Group`].
///
/// ```text
/// 0x1E | 0x01 | application content (the rest)
/// 0x1E | 0x02 | sender key distribution, SPEC.md §6.5 (the rest)
/// 0x1E | 0x03 | len8(group id)          -- "send me your sender key for this group"
/// 0x1E | 0x04 | len8(group id)          -- "you are no longer a member of this group"
/// 0x1E | 0x05 | len8(group id) | len8(sender user id) | sender device (u32) | group message, §6.6 (the rest)
/// ```
///
/// ```
/// use sottovoce::Envelope;
/// let e = Envelope::Content(b"hello".to_vec());
/// let bytes = e.to_bytes();
/// assert_eq!(&bytes[..], b"\x1e\x01hello");
/// assert!(matches!(Envelope::try_from(&bytes[..])?, Envelope::Content(c) if c == b"hello"));
/// # Ok::<(), sottovoce::DecodeError>(())
/// ```
///
/// Not `PartialEq`: a distribution holds a chain key, which is never
/// compared with an early exit.
#[derive(Clone)]
#[non_exhaustive]
pub enum Envelope {
    /// Application content: the bytes the user sent.
    Content(Vec<u8>),
    /// A sender key for a group (SPEC.md §7.2, §7.6). Boxed, so the chain
    /// key never sits inline beside a smaller variant: moving an enum
    /// copies its unused payload bytes, whatever they held.
    Distribution(Box<SenderKeyDistribution>),
    /// A request for the receiver's current sender key of this group, sent
    /// when a group message failed with [`crate::DecryptError::NoSenderKey`].
    DistributionRequest(GroupId),
    /// Tells the receiver it was removed from this group (SPEC.md §7.5):
    /// its [`crate::Group`] then refuses the group's messages with
    /// [`crate::DecryptError::NotMember`].
    Removed(GroupId),
    /// A group message with the group and sender it is for.
    Group {
        /// The group.
        group_id: GroupId,
        /// The sending device.
        sender: Address,
        /// The encrypted, signed message (SPEC.md §6.6).
        message: GroupMessage,
    },
}

impl Envelope {
    /// The encoding of SPEC.md §6.7.
    ///
    /// # Security
    /// A distribution's encoding holds its chain key: the bytes are wiped
    /// on drop; send them only inside a session.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.encoded_len()));
        out.put_u8(first_byte(kind::ENVELOPE));
        match self {
            Self::Content(c) => {
                out.put_u8(kinds::CONTENT);
                out.put(c);
            }
            Self::Distribution(d) => {
                out.put_u8(kinds::DISTRIBUTION);
                out.put(&d.to_bytes());
            }
            Self::DistributionRequest(g) => {
                out.put_u8(kinds::DISTRIBUTION_REQUEST);
                g.write(&mut out);
            }
            Self::Removed(g) => {
                out.put_u8(kinds::REMOVED);
                g.write(&mut out);
            }
            Self::Group { group_id, sender, message } => {
                out.put_u8(kinds::GROUP_MESSAGE);
                group_id.write(&mut out);
                sender.write(&mut out);
                out.put(&message.bytes);
            }
        }
        out
    }

    fn encoded_len(&self) -> usize {
        2 + match self {
            Self::Content(c) => c.len(),
            Self::Distribution(d) => 74 + d.group_id.as_bytes().len(),
            Self::DistributionRequest(g) | Self::Removed(g) => 1 + g.as_bytes().len(),
            Self::Group { group_id, sender, message } => {
                1 + group_id.as_bytes().len() + sender.encoded_len() + message.bytes.len()
            }
        }
    }
}

impl TryFrom<&[u8]> for Envelope {
    type Error = DecodeError;

    /// Decodes SPEC.md §6.7. An unknown kind is `decode`.
    fn try_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header(kind::ENVELOPE)?;
        let offset = r.position();
        let envelope = match r.u8()? {
            kinds::CONTENT => Self::Content(r.rest().to_vec()),
            kinds::DISTRIBUTION => Self::Distribution(Box::new(SenderKeyDistribution::try_from(r.rest())?)),
            kinds::DISTRIBUTION_REQUEST => Self::DistributionRequest(GroupId::read(&mut r)?),
            kinds::REMOVED => Self::Removed(GroupId::read(&mut r)?),
            kinds::GROUP_MESSAGE => {
                let group_id = GroupId::read(&mut r)?;
                let sender = Address::read(&mut r)?;
                Self::Group { group_id, sender, message: GroupMessage::try_from(r.rest())? }
            }
            _ => return Err(DecodeError::InvalidField { offset }),
        };
        r.finish()?;
        Ok(envelope)
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Content(c) => write!(f, "Envelope::Content({} bytes)", c.len()),
            Self::Distribution(d) => {
                write!(f, "Envelope::Distribution({:?}, key id {})", d.group_id(), d.key_id())
            }
            Self::DistributionRequest(g) => write!(f, "Envelope::DistributionRequest({g:?})"),
            Self::Removed(g) => write!(f, "Envelope::Removed({g:?})"),
            Self::Group { group_id, sender, message } => {
                write!(f, "Envelope::Group({group_id:?}, {sender:?}, {message:?})")
            }
        }
    }
}
