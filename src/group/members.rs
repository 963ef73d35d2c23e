//! A whole group from one member's side: its own sender key, every other
//! member with the receiver of that member's sender key, and whether it is
//! still a member (SPEC.md §7.5, §7.7, §11.7).

use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;

use super::{GroupId, GroupReceiver, GroupSender, SenderKeyDistribution};
use crate::device::Address;
use crate::envelope::Envelope;
use crate::error::{DecodeError, DecryptError, EncryptError};
use crate::keys::IdentityKey;
use crate::record::SessionRecord;
use crate::wire::{Keys, Reader, Writer, first_byte, kind};

/// Most other members a [`Group`] holds (SPEC.md §9).
pub const MAX_GROUP_MEMBERS: usize = 1024;

/// Saved-group format revision.
const SAVED_GROUP_REVISION: u8 = 2;

struct Member {
    address: Address,
    identity: IdentityKey,
    receiver: Option<GroupReceiver>,
}

/// One member's view of a group: its own [`GroupSender`], and for every
/// other member device its address, identity key and, once that member's
/// distribution arrived, a [`GroupReceiver`] (SPEC.md §7.7).
///
/// It tells the two reasons a group message cannot be read apart:
/// [`DecryptError::NoSenderKey`] (that member's distribution has not
/// arrived: send it an [`Envelope::DistributionRequest`]) and
/// [`DecryptError::NotMember`] (this member was removed).
///
/// ```
/// use sottovoce::*;
/// let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
/// # let alice = Account::new(&mut rng);
/// # let mut bob = Account::new(&mut rng);
/// let (a, b) = (Address::new(b"alice", DeviceId(1))?, Address::new(b"bob", DeviceId(1))?);
/// let gid = GroupId::new(b"book club")?;
/// let mut alices = Group::create(&mut rng, gid.clone(), a.clone(), alice.identity_key(), &[(b.clone(), bob.identity_key())])?;
/// let mut bobs = Group::create(&mut rng, gid, b.clone(), bob.identity_key(), &[(a.clone(), alice.identity_key())])?;
///
/// // Bob's view before Alice's sender key arrived:
/// let early = alices.encrypt(b"first")?;
/// assert_eq!(bobs.decrypt(&early), Err(DecryptError::NoSenderKey));
///
/// // Alice sends her distribution over their session; Bob installs it.
/// let mut to_bob = SessionRecord::new(a.clone(), b.clone(), bob.identity_key());
/// let mut to_alice = SessionRecord::new(b, a, alice.identity_key());
/// to_bob.initiate(&mut rng, alice.identity_key_pair(), &bob.prekey_bundle(None).unwrap())?;
/// let wire = to_bob.encrypt(&mut rng, &alices.distribution().to_bytes())?;
/// let Envelope::Distribution(d) = Envelope::try_from(&to_alice.decrypt(&mut bob, &wire)?[..])? else { panic!() };
/// bobs.add_distribution(&to_alice, &d)?;
/// assert_eq!(bobs.decrypt(&alices.encrypt(b"hello")?)?, b"hello");
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
pub struct Group {
    local: Address,
    sender: GroupSender,
    /// Ordered by address, at most [`MAX_GROUP_MEMBERS`].
    members: Vec<Member>,
    member: bool,
}

impl Group {
    /// A group as seen by `local` (whose device identity key is
    /// `identity`), with the other member devices `members`. Draws a new
    /// sender key (as [`GroupSender::new`]).
    ///
    /// # Errors
    /// [`DecodeError::LimitExceeded`] for more than [`MAX_GROUP_MEMBERS`];
    /// [`DecodeError::InconsistentState`] if an address is listed twice or
    /// is `local`.
    pub fn create<R: CryptoRng + ?Sized>(
        rng: &mut R,
        group_id: GroupId,
        local: Address,
        identity: IdentityKey,
        members: &[(Address, IdentityKey)],
    ) -> Result<Self, DecodeError> {
        let mut list: Vec<Member> = members
            .iter()
            .map(|(address, identity)| Member { address: address.clone(), identity: *identity, receiver: None })
            .collect();
        list.sort_by(|x, y| x.address.cmp(&y.address));
        let group = Self { local, sender: GroupSender::new(rng, group_id, identity), members: list, member: true };
        group.check_members()?;
        Ok(group)
    }

    fn check_members(&self) -> Result<(), DecodeError> {
        if self.members.len() > MAX_GROUP_MEMBERS {
            return Err(DecodeError::LimitExceeded { got: self.members.len() as u32, max: MAX_GROUP_MEMBERS as u32 });
        }
        let rising = self.members.windows(2).all(|w| matches!(w, [x, y] if x.address < y.address));
        if rising && self.members.iter().all(|m| m.address != self.local) {
            Ok(())
        } else {
            Err(DecodeError::InconsistentState)
        }
    }

    /// The group id.
    pub fn group_id(&self) -> &GroupId {
        self.sender.group_id()
    }

    /// This member's address.
    pub fn local(&self) -> &Address {
        &self.local
    }

    /// Whether this device is still a member (false after
    /// [`Group::mark_removed`]).
    pub fn is_member(&self) -> bool {
        self.member
    }

    /// The other member devices, by address, with whether their sender key
    /// has arrived.
    pub fn members(&self) -> impl Iterator<Item = (&Address, IdentityKey, bool)> {
        self.members.iter().map(|m| (&m.address, m.identity, m.receiver.is_some()))
    }

    /// Our sender key's distribution at its current iteration, as an
    /// envelope to send to each member inside their session (SPEC.md §7.6).
    pub fn distribution(&self) -> Envelope {
        Envelope::Distribution(alloc::boxed::Box::new(self.sender.distribution()))
    }

    /// Answers a distribution request (SPEC.md §6.7) that arrived over
    /// `via`: our current distribution, only for a device that is a member
    /// now (its address listed with the record's remote identity). A
    /// removed member asking again gets nothing, so the rotation that
    /// excluded it stands.
    ///
    /// # Errors
    /// [`DecryptError::NotMember`] after [`Group::mark_removed`];
    /// [`DecryptError::StateMismatch`] for another group or a device that
    /// is not a member.
    pub fn answer_request(&self, via: &SessionRecord, group_id: &GroupId) -> Result<Envelope, DecryptError> {
        if !self.member {
            return Err(DecryptError::NotMember);
        }
        let listed = self.members.iter().any(|m| m.address == *via.remote() && m.identity == via.remote_identity());
        if group_id != self.group_id() || !listed {
            return Err(DecryptError::StateMismatch);
        }
        Ok(self.distribution())
    }

    /// Encrypts and signs a group message, framed with the group and our
    /// address (SPEC.md §6.7), to fan out to every member as it is.
    ///
    /// # Errors
    /// [`EncryptError::NotMember`] after [`Group::mark_removed`];
    /// [`EncryptError::CounterExhausted`] as [`GroupSender::encrypt`].
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Envelope, EncryptError> {
        if !self.member {
            return Err(EncryptError::NotMember);
        }
        let message = self.sender.encrypt(plaintext)?;
        Ok(Envelope::Group { group_id: self.group_id().clone(), sender: self.local.clone(), message })
    }

    /// Installs a member's sender key that arrived over `via`, the session
    /// record with that member (SPEC.md §7.4, "adding a distribution"): the
    /// record's remote address and identity say whose key it is.
    ///
    /// # Errors
    /// [`DecryptError::NotMember`] after [`Group::mark_removed`];
    /// [`DecryptError::StateMismatch`] for another group, a device that is
    /// not a member (or whose identity differs), or a held key id with
    /// another signing key. Nothing changes then.
    pub fn add_distribution(
        &mut self,
        via: &SessionRecord,
        distribution: &SenderKeyDistribution,
    ) -> Result<(), DecryptError> {
        if !self.member {
            return Err(DecryptError::NotMember);
        }
        if distribution.group_id() != self.group_id() {
            return Err(DecryptError::StateMismatch);
        }
        let member = self
            .members
            .iter_mut()
            .find(|m| m.address == *via.remote() && m.identity == via.remote_identity())
            .ok_or(DecryptError::StateMismatch)?;
        match &mut member.receiver {
            Some(r) => r.add_distribution(via.remote_identity(), distribution),
            None => {
                member.receiver = Some(GroupReceiver::new(member.identity, distribution));
                Ok(())
            }
        }
    }

    /// Decrypts a group message envelope (SPEC.md §7.7).
    ///
    /// # Errors
    /// [`DecryptError::NotMember`] after [`Group::mark_removed`];
    /// [`DecryptError::StateMismatch`] for an envelope that is not a group
    /// message of this group, or from a device that is not a member;
    /// [`DecryptError::NoSenderKey`] if the sender's distribution (for this
    /// key id) has not arrived; otherwise as [`GroupReceiver::decrypt`].
    pub fn decrypt(&mut self, envelope: &Envelope) -> Result<alloc::vec::Vec<u8>, DecryptError> {
        let Envelope::Group { group_id, sender, message } = envelope else {
            return Err(DecryptError::StateMismatch);
        };
        if !self.member {
            return Err(DecryptError::NotMember);
        }
        if group_id != self.group_id() {
            return Err(DecryptError::StateMismatch);
        }
        let member = self.members.iter_mut().find(|m| m.address == *sender).ok_or(DecryptError::StateMismatch)?;
        member.receiver.as_mut().ok_or(DecryptError::NoSenderKey)?.decrypt(message)
    }

    /// Adds a member device and returns our distribution to send it (a
    /// joiner reads our messages from now on only, SPEC.md §7.5).
    ///
    /// # Errors
    /// [`DecodeError::LimitExceeded`] past [`MAX_GROUP_MEMBERS`];
    /// [`DecodeError::InconsistentState`] if it is already a member, is us,
    /// or this device was removed. Nothing changes then.
    pub fn add_member(&mut self, address: Address, identity: IdentityKey) -> Result<Envelope, DecodeError> {
        if !self.member || address == self.local || self.members.iter().any(|m| m.address == address) {
            return Err(DecodeError::InconsistentState);
        }
        if self.members.len() >= MAX_GROUP_MEMBERS {
            return Err(DecodeError::LimitExceeded {
                got: self.members.len() as u32 + 1,
                max: MAX_GROUP_MEMBERS as u32,
            });
        }
        let at = self.members.partition_point(|m| m.address < address);
        self.members.insert(at, Member { address, identity, receiver: None });
        Ok(self.distribution())
    }

    /// Removes a member device, wiping its sender keys, and rotates our own
    /// sender key as SPEC.md §7.5 requires. Returns the new distribution to
    /// send to every remaining member (and [`Envelope::Removed`] may be sent
    /// to the removed one). Consumes `rng` as [`GroupSender::rotate`].
    /// `None` (nothing changed) if `address` is not a member or this device
    /// was removed.
    pub fn remove_member<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, address: &Address) -> Option<Envelope> {
        if !self.member {
            return None;
        }
        let at = self.members.iter().position(|m| m.address == *address)?;
        drop(self.members.remove(at));
        Some(Envelope::Distribution(alloc::boxed::Box::new(self.sender.rotate(rng))))
    }

    /// Records that this device was removed from the group (on an
    /// [`Envelope::Removed`] from a member the application trusts to say
    /// so): every other member's sender key is wiped, and from now on the
    /// group's messages are [`DecryptError::NotMember`].
    pub fn mark_removed(&mut self) {
        self.member = false;
        for m in &mut self.members {
            m.receiver = None;
        }
    }

    /// Saves the group (SPEC.md §11.7).
    ///
    /// # Security
    /// Holds our sender key and every member's: store it sealed
    /// ([`Group::seal`]); never restore an older copy and send.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let sender = self.sender.to_bytes();
        let receivers: Vec<Option<zeroize::Zeroizing<Vec<u8>>>> =
            self.members.iter().map(|m| m.receiver.as_ref().map(|r| r.to_bytes())).collect();
        let len = 2
            + self.local.encoded_len()
            + 1
            + 4
            + sender.len()
            + 2
            + self
                .members
                .iter()
                .zip(&receivers)
                .map(|(m, r)| m.address.encoded_len() + 32 + 1 + r.as_ref().map_or(0, |r| 4 + r.len()))
                .sum::<usize>();
        // Exact capacity: growing would free an unwiped copy of the secrets.
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(len));
        out.put_u8(first_byte(kind::SAVED_GROUP));
        out.put_u8(SAVED_GROUP_REVISION);
        self.local.write(&mut out);
        out.put_flag(self.member);
        out.put_u32(sender.len() as u32);
        out.put(&sender);
        out.put_u16(self.members.len() as u16);
        for (m, r) in self.members.iter().zip(&receivers) {
            m.address.write(&mut out);
            out.put(&m.identity.to_bytes());
            out.put_flag(r.is_some());
            if let Some(r) = r {
                out.put_u32(r.len() as u32);
                out.put(r);
            }
        }
        out
    }

    /// Restores a group saved by [`Group::to_bytes`].
    ///
    /// # Errors
    /// [`DecodeError`] for anything malformed, over a bound, trailing or
    /// inconsistent (SPEC.md §11.7).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(bytes, Keys::Check)
    }

    pub(crate) fn decode(bytes: &[u8], keys: Keys) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header(kind::SAVED_GROUP)?;
        let offset = r.position();
        if r.u8()? != SAVED_GROUP_REVISION {
            return Err(DecodeError::InvalidField { offset });
        }
        let local = Address::read(&mut r)?;
        let member = r.flag()?;
        let n = r.u32()? as usize;
        let sender = GroupSender::decode(r.bytes(n)?, keys)?;
        let count = r.count_u16(MAX_GROUP_MEMBERS)?;
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let address = Address::read(&mut r)?;
            let identity = IdentityKey::read(&r.array()?, keys)?;
            let receiver = if r.flag()? {
                let n = r.u32()? as usize;
                Some(GroupReceiver::decode(r.bytes(n)?, keys)?)
            } else {
                None
            };
            members.push(Member { address, identity, receiver });
        }
        r.finish()?;
        let group = Self { local, sender, members, member };
        group.check_members()?;
        // Receivers of this group and of the member they are listed under;
        // a removed member holds none.
        let consistent = group.members.iter().all(|m| {
            m.receiver
                .as_ref()
                .is_none_or(|r| group.member && r.group_id() == group.group_id() && r.sender() == m.identity)
        });
        if consistent { Ok(group) } else { Err(DecodeError::InconsistentState) }
    }
}

crate::snapshot::persistence_methods!(Group);

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { local, sender, members, member } = self;
        f.debug_struct("Group")
            .field("group_id", sender.group_id())
            .field("local", local)
            .field("member", member)
            .field("members", &members.len())
            .field("sender_keys", &members.iter().filter(|m| m.receiver.is_some()).count())
            .finish()
    }
}

/// The distribution a sender key carries, as an envelope (for
/// [`super::distribute`]).
pub(crate) fn distribution_envelope(d: &SenderKeyDistribution) -> Envelope {
    Envelope::Distribution(alloc::boxed::Box::new(d.clone()))
}
