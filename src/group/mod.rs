//! Sender Keys: the group-key protocol (SPEC.md §7).
//!
//! Each member owns a [`GroupSender`] per group: a hash-ratcheted chain key
//! and an Ed25519 signing key, announced to the other members once with a
//! [`SenderKeyDistribution`] sent inside their pairwise [`crate::Session`]s.
//! Every member keeps a [`GroupReceiver`] per (group, sender) that can only
//! decrypt. A group message is encrypted once and signed, then fanned out.

mod members;
mod message;

use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;
use zeroize::Zeroize;

pub use self::members::{Group, MAX_GROUP_MEMBERS};
use self::message::{GROUP_HEADER_LEN, signing_key};
pub use self::message::{GROUP_MESSAGE_OVERHEAD, GroupId, GroupMessage, MAX_GROUP_ID_LEN, SenderKeyDistribution};
use crate::crypto::{self, Ed25519KeyPair, Ed25519Public, KEY_LEN, SIGNATURE_LEN, Secret32, TAG_LEN};
use crate::error::{DecodeError, DecryptError, EncryptError};
use crate::keys::IdentityKey;
use crate::labels::{GROUP_COMMITMENT_LABEL, GROUP_MESSAGE_KEY_INFO, GROUP_SIGNATURE_CONTEXT};
use crate::message::Message;
use crate::ratchet::chain_key::ChainKey;
use crate::ratchet::message_key::MessageKey;
use crate::secret_vec::SecretVec;
use crate::wire::{Keys, Reader, Writer, first_byte, kind};

/// Largest gap a group message may be ahead of its chain (SPEC.md §9);
/// exactly `MAX_GROUP_SKIP` ahead decrypts, one more is
/// [`DecryptError::SkipLimit`].
pub const MAX_GROUP_SKIP: u32 = 1000;

/// Most skipped message keys kept per sender key (SPEC.md §9); the oldest
/// are deleted first.
pub const MAX_GROUP_SKIPPED_KEYS: usize = 1000;

/// Most sender keys (key ids) a [`GroupReceiver`] keeps for its sender, the
/// newest included (SPEC.md §9), so in-flight messages survive a rotation.
pub const MAX_SENDER_KEY_STATES: usize = 5;

/// Saved group state format revision (SPEC.md §11.1): 2 since SPEC.md
/// revision 2, so states saved under revision 1's weaker key rules are
/// refused, sealed or not.
const SAVED_REVISION: u8 = 2;

/// AEAD associated data: len || group id || sender IK || header, on the stack.
struct GroupAd {
    buf: [u8; 1 + MAX_GROUP_ID_LEN + KEY_LEN + GROUP_HEADER_LEN],
    len: usize,
}

impl GroupAd {
    fn new(group_id: &GroupId, sender: &IdentityKey, header: &[u8]) -> Self {
        let mut ad = Self { buf: [0u8; 1 + MAX_GROUP_ID_LEN + KEY_LEN + GROUP_HEADER_LEN], len: 0 };
        ad.push(&[group_id.as_bytes().len() as u8]);
        ad.push(group_id.as_bytes());
        ad.push(&sender.to_bytes());
        ad.push(header);
        ad
    }

    fn push(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// The key commitment of a group message key (SPEC.md §7.3):
/// HMAC-SHA256(MK, GROUP_COMMITMENT_LABEL). Collision resistant in MK, so a
/// signature over it commits the message to one AEAD key and nonce.
fn commitment(mk: &MessageKey) -> [u8; KEY_LEN] {
    crypto::hmac_sha256(&mk.key().0, GROUP_COMMITMENT_LABEL).0
}

/// The signature input: context || len || group id || sender IK ||
/// commitment || message bytes before the signature.
fn signature_input(
    group_id: &GroupId,
    sender: &IdentityKey,
    commitment: &[u8; KEY_LEN],
    signed_part: &[u8],
) -> Vec<u8> {
    let mut m =
        Vec::with_capacity(GROUP_SIGNATURE_CONTEXT.len() + 1 + MAX_GROUP_ID_LEN + 2 * KEY_LEN + signed_part.len());
    m.put(GROUP_SIGNATURE_CONTEXT);
    group_id.write(&mut m);
    m.put(&sender.to_bytes());
    m.put(commitment);
    m.put(signed_part);
    m
}

/// Our own sender key for one group: the only type that can encrypt group
/// messages (SPEC.md §7.2).
///
/// ```
/// use sottovoce::{GroupId, GroupReceiver, GroupSender, IdentityKeyPair};
/// let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
/// let alice = IdentityKeyPair::generate(&mut rng).public_key();
/// let group = GroupId::new(b"book club").unwrap();
///
/// let mut sender = GroupSender::new(&mut rng, group, alice);
/// // Sent to each member over their pairwise sessions:
/// let distribution = sender.distribution();
/// let mut bobs_copy = GroupReceiver::new(alice, &distribution);
///
/// let m = sender.encrypt(b"see you thursday").unwrap();
/// assert_eq!(bobs_copy.decrypt(&m).unwrap(), b"see you thursday");
/// ```
pub struct GroupSender {
    group_id: GroupId,
    identity: IdentityKey,
    key_id: u32,
    chain_key: ChainKey,
    signing: Ed25519KeyPair,
}

impl GroupSender {
    /// A new sender key at iteration 0. Consumes from `rng`, in order: the
    /// chain key (32 bytes), the signing key seed (32), the key id (4, big
    /// endian).
    pub fn new<R: CryptoRng + ?Sized>(rng: &mut R, group_id: GroupId, identity: IdentityKey) -> Self {
        let (key_id, chain_key, signing) = fresh_key(rng);
        Self { group_id, identity, key_id, chain_key, signing }
    }

    /// The group.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// The current key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The identity this sender signs as (bound into every message).
    pub fn identity(&self) -> IdentityKey {
        self.identity
    }

    /// The next iteration to be sent.
    pub fn iteration(&self) -> u32 {
        self.chain_key.index()
    }

    /// The distribution message for the current key at the current
    /// iteration: a member who gets it reads messages from now on only.
    pub fn distribution(&self) -> SenderKeyDistribution {
        SenderKeyDistribution {
            group_id: self.group_id.clone(),
            key_id: self.key_id,
            iteration: self.chain_key.index(),
            chain_key: self.chain_key.key().clone(),
            signing_key: self.signing.verifying_key(),
        }
    }

    /// Replaces chain key, signing key and key id, as every remaining member
    /// must when someone leaves (SPEC.md §7.5). Consumes `rng` as
    /// [`GroupSender::new`]. Returns the new distribution, to be sent to the
    /// remaining members only.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// # let alice = IdentityKeyPair::generate(&mut rng).public_key();
    /// # let mut sender = GroupSender::new(&mut rng, GroupId::new(b"g").unwrap(), alice);
    /// # let mut receiver = GroupReceiver::new(alice, &sender.distribution());
    /// let mut removed = GroupReceiver::new(alice, &sender.distribution());
    /// let fresh = sender.rotate(&mut rng); // sent to remaining members only
    /// receiver.add_distribution(alice, &fresh)?;
    /// let m = sender.encrypt(b"after the member left")?;
    /// assert!(receiver.decrypt(&m).is_ok());
    /// assert_eq!(removed.decrypt(&m), Err(DecryptError::NoSenderKey));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn rotate<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> SenderKeyDistribution {
        let (key_id, chain_key, signing) = fresh_key(rng);
        self.key_id = key_id;
        self.chain_key = chain_key;
        self.signing = signing;
        self.distribution()
    }

    /// Encrypts and signs a group message (SPEC.md §7.3).
    ///
    /// # Errors
    /// [`EncryptError::CounterExhausted`] after 2^32 - 1 messages: rotate.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<GroupMessage, EncryptError> {
        let (mk, next) = self.chain_key.step().ok_or(EncryptError::CounterExhausted)?;
        let iteration = mk.index();
        let mut bytes = Vec::with_capacity(GROUP_MESSAGE_OVERHEAD + plaintext.len());
        bytes.put_u8(first_byte(kind::GROUP_MESSAGE));
        bytes.put_u32(self.key_id);
        bytes.put_u32(iteration);
        bytes.put(plaintext);
        let ad = GroupAd::new(&self.group_id, &self.identity, bytes.get(..GROUP_HEADER_LEN).unwrap_or_default());
        let body = bytes.get_mut(GROUP_HEADER_LEN..).unwrap_or_default();
        let tag = mk
            .expand(GROUP_MESSAGE_KEY_INFO)
            .seal_in_place(ad.as_slice(), body)
            .map_err(|()| EncryptError::BufferTooSmall { needed: plaintext.len() })?;
        bytes.put(&tag);
        let signature = self.signing.sign(&signature_input(&self.group_id, &self.identity, &commitment(&mk), &bytes));
        bytes.put(&signature);
        self.chain_key = next;
        Ok(GroupMessage { key_id: self.key_id, iteration, bytes })
    }

    /// Saves the sender state (SPEC.md §11.3).
    ///
    /// # Security
    /// Holds the chain and signing keys. Restoring an older copy and sending
    /// reuses message keys and nonces: never roll back.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(180));
        out.put_u8(first_byte(kind::SAVED_GROUP_SENDER));
        out.put_u8(SAVED_REVISION);
        self.group_id.write(&mut out);
        out.put(&self.identity.to_bytes());
        out.put_u32(self.key_id);
        out.put(&self.chain_key.key().0);
        out.put_u32(self.chain_key.index());
        out.put(&self.signing.seed().0);
        out
    }

    /// Restores a sender saved by [`GroupSender::to_bytes`].
    ///
    /// # Errors
    /// [`DecodeError`] for malformed bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(bytes, Keys::Check)
    }

    pub(crate) fn decode(bytes: &[u8], keys: Keys) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header(kind::SAVED_GROUP_SENDER)?;
        read_revision(&mut r)?;
        let group_id = GroupId::read(&mut r)?;
        let identity = IdentityKey::read(&r.array()?, keys)?;
        let key_id = r.u32()?;
        let ck = Secret32(r.array()?);
        let chain_key = ChainKey::new(ck, r.u32()?);
        let signing = Ed25519KeyPair::from_seed(&Secret32(r.array()?));
        r.finish()?;
        Ok(Self { group_id, identity, key_id, chain_key, signing })
    }
}

crate::snapshot::persistence_methods!(GroupSender);

fn fresh_key<R: CryptoRng + ?Sized>(rng: &mut R) -> (u32, ChainKey, Ed25519KeyPair) {
    let chain_key = ChainKey::new(crypto::random_secret(rng), 0);
    let signing = Ed25519KeyPair::from_seed(&crypto::random_secret(rng));
    let key_id = u32::from_be_bytes(crypto::random_array(rng));
    (key_id, chain_key, signing)
}

fn read_revision(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    let offset = r.position();
    if r.u8()? != SAVED_REVISION {
        return Err(DecodeError::InvalidField { offset });
    }
    Ok(())
}

impl fmt::Debug for GroupSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { group_id, identity, key_id, chain_key, signing: _ } = self;
        f.debug_struct("GroupSender")
            .field("group_id", group_id)
            .field("identity", identity)
            .field("key_id", key_id)
            .field("iteration", &chain_key.index())
            .finish_non_exhaustive()
    }
}

/// One sender key of a receiver: chain, signing key, skipped keys.
struct SenderKeyState {
    key_id: u32,
    signing_key: Ed25519Public,
    chain_key: ChainKey,
    skipped: SecretVec<MessageKey>,
}

impl SenderKeyState {
    /// SPEC.md §11.1: every skipped iteration once, and below the chain's
    /// next iteration.
    fn is_consistent(&self) -> bool {
        let next = self.chain_key.index();
        let mut seen: Vec<u32> = self.skipped.iter().map(|k| k.index()).collect();
        seen.sort_unstable();
        seen.iter().all(|i| *i < next) && !seen.windows(2).any(|w| w.first() == w.get(1))
    }
}

impl Zeroize for SenderKeyState {
    fn zeroize(&mut self) {
        self.chain_key.zeroize();
        self.skipped.zeroize();
    }
}

/// What a decrypt will commit if the AEAD authenticates.
enum Plan {
    Skipped(usize),
    Chain { next: ChainKey, skipped: SecretVec<MessageKey> },
}

/// Another member's sender keys for one group, as a receiver: it can
/// decrypt and verify, never encrypt (SPEC.md §7.4).
pub struct GroupReceiver {
    group_id: GroupId,
    sender: IdentityKey,
    /// Oldest first, at most [`MAX_SENDER_KEY_STATES`].
    states: SecretVec<SenderKeyState>,
}

impl GroupReceiver {
    /// A receiver for `sender`'s messages in the distribution's group.
    ///
    /// # Security
    /// `sender` must be the remote identity of the pairwise session the
    /// distribution arrived on ([`crate::Session::remote_identity`]), never a name
    /// taken from the message contents: whoever sent the distribution can
    /// sign messages as `sender`.
    pub fn new(sender: IdentityKey, distribution: &SenderKeyDistribution) -> Self {
        let mut r = Self {
            group_id: distribution.group_id.clone(),
            sender,
            states: SecretVec::with_capacity(MAX_SENDER_KEY_STATES + 1),
        };
        r.push_state(distribution);
        r
    }

    fn push_state(&mut self, d: &SenderKeyDistribution) {
        self.states.push(SenderKeyState {
            key_id: d.key_id,
            signing_key: d.signing_key.clone(),
            chain_key: ChainKey::new(d.chain_key.clone(), d.iteration),
            skipped: SecretVec::new(),
        });
        while self.states.len() > MAX_SENDER_KEY_STATES {
            self.states.remove(0);
        }
    }

    /// The group.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// The sender whose messages this receiver reads.
    pub fn sender(&self) -> IdentityKey {
        self.sender
    }

    /// The key ids held, oldest first.
    pub fn key_ids(&self) -> Vec<u32> {
        self.states.iter().map(|s| s.key_id).collect()
    }

    /// Adds a new sender key (after a rotation). `from` is the remote
    /// identity of the pairwise session the distribution arrived on
    /// ([`crate::Session::remote_identity`]); it must be this receiver's sender, so
    /// one member can never install keys that speak for another. The oldest
    /// key is dropped past [`MAX_SENDER_KEY_STATES`]. A distribution for a
    /// key id already held is ignored if it carries the same signing key.
    ///
    /// # Errors
    /// [`DecryptError::StateMismatch`] if `from` is not this receiver's
    /// sender, if it is for another group, or if it reuses a held key id with
    /// another signing key. Nothing changes then.
    pub fn add_distribution(
        &mut self,
        from: IdentityKey,
        distribution: &SenderKeyDistribution,
    ) -> Result<(), DecryptError> {
        if from != self.sender || distribution.group_id != self.group_id {
            return Err(DecryptError::StateMismatch);
        }
        if let Some(s) = self.states.iter().find(|s| s.key_id == distribution.key_id) {
            let same = s.signing_key.to_bytes() == distribution.signing_key.to_bytes();
            return if same { Ok(()) } else { Err(DecryptError::StateMismatch) };
        }
        self.push_state(distribution);
        Ok(())
    }

    /// Verifies and decrypts a group message (SPEC.md §7.4): key id, then
    /// iteration bounds, then the signature over the key commitment, then
    /// AEAD. Transactional.
    ///
    /// # Errors
    /// [`DecryptError::NoSenderKey`] (category `state-mismatch`) for an
    /// unknown key id: a rotation whose distribution has not arrived, or
    /// one this receiver will never get because it was removed (a
    /// [`Group`] tells the two apart); [`DecryptError::Authentication`] for a
    /// bad signature or tag; [`DecryptError::Duplicate`] for a replay or an
    /// iteration before this receiver's start; [`DecryptError::SkipLimit`].
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// # let alice = IdentityKeyPair::generate(&mut rng).public_key();
    /// # let mut sender = GroupSender::new(&mut rng, GroupId::new(b"g").unwrap(), alice);
    /// # let mut receiver = GroupReceiver::new(alice, &sender.distribution());
    /// let first = sender.encrypt(b"first")?;
    /// let second = sender.encrypt(b"second")?;
    /// assert_eq!(receiver.decrypt(&second)?, b"second"); // out of order is fine
    /// assert_eq!(receiver.decrypt(&first)?, b"first");
    /// assert_eq!(receiver.decrypt(&first), Err(DecryptError::Duplicate));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn decrypt(&mut self, message: &GroupMessage) -> Result<Vec<u8>, DecryptError> {
        let pos = self.states.iter().position(|s| s.key_id == message.key_id).ok_or(DecryptError::NoSenderKey)?;
        let state = self.states.get(pos).ok_or(DecryptError::StateMismatch)?;
        let (plan, mk) = plan(state, message.iteration)?;
        // The signature covers the commitment to the key this receiver
        // derived: a message authenticates for every member with one key.
        let signed = signature_input(&self.group_id, &self.sender, &commitment(&mk), message.signed_part());
        let sig_ok = state.signing_key.verify(&signed, &message.signature());
        if !sig_ok && !crypto::auth_bypassed() {
            return Err(DecryptError::Authentication);
        }
        let body = message.ciphertext();
        let split = body.len().checked_sub(TAG_LEN).ok_or(DecodeError::Truncated { offset: GROUP_HEADER_LEN })?;
        let (ct, tag) = body.split_at(split);
        let mut tag_bytes = [0u8; TAG_LEN];
        tag_bytes.copy_from_slice(tag);
        let mut plaintext = ct.to_vec();
        let ad = GroupAd::new(&self.group_id, &self.sender, message.header());
        let opened = mk.expand(GROUP_MESSAGE_KEY_INFO).open_in_place(ad.as_slice(), &mut plaintext, &tag_bytes);
        if opened.is_err() && !crypto::auth_bypassed() {
            return Err(DecryptError::Authentication);
        }
        if let Some(state) = self.states.get_mut(pos) {
            match plan {
                Plan::Skipped(i) => {
                    state.skipped.remove(i);
                }
                Plan::Chain { next, mut skipped } => {
                    state.chain_key = next;
                    // Evict the oldest all at once: one shift, not one per key.
                    if skipped.len() > MAX_GROUP_SKIPPED_KEYS {
                        skipped.remove_front(skipped.len() - MAX_GROUP_SKIPPED_KEYS);
                    }
                    let overflow = (state.skipped.len() + skipped.len()).saturating_sub(MAX_GROUP_SKIPPED_KEYS);
                    state.skipped.remove_front(overflow);
                    state.skipped.append(&mut skipped);
                }
            }
        }
        Ok(plaintext)
    }

    /// Decodes and decrypts wire bytes.
    ///
    /// # Errors
    /// [`DecryptError::Decode`] for malformed bytes, else as
    /// [`GroupReceiver::decrypt`].
    pub fn decrypt_bytes(&mut self, bytes: &[u8]) -> Result<Vec<u8>, DecryptError> {
        self.decrypt(&GroupMessage::try_from(bytes)?)
    }

    /// Forward secrecy on demand: deletes every key of sender key `key_id`
    /// for iterations below `iteration` (SPEC.md §7.4). Other key ids are
    /// untouched, so a rotation's new key keeps its first messages. A chain
    /// behind `iteration` is advanced, at most [`MAX_GROUP_SKIP`] steps.
    ///
    /// # Errors
    /// [`DecryptError::StateMismatch`] if `key_id` is not held;
    /// [`DecryptError::SkipLimit`] if its chain is further behind than
    /// [`MAX_GROUP_SKIP`]. Nothing changes then.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// # let alice = IdentityKeyPair::generate(&mut rng).public_key();
    /// # let mut sender = GroupSender::new(&mut rng, GroupId::new(b"g").unwrap(), alice);
    /// # let mut receiver = GroupReceiver::new(alice, &sender.distribution());
    /// let old = sender.encrypt(b"old")?;
    /// receiver.forget_below(sender.key_id(), sender.iteration())?;
    /// assert_eq!(receiver.decrypt(&old), Err(DecryptError::Duplicate));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn forget_below(&mut self, key_id: u32, iteration: u32) -> Result<(), DecryptError> {
        let s = self.states.iter_mut().find(|s| s.key_id == key_id).ok_or(DecryptError::StateMismatch)?;
        let gap = iteration.saturating_sub(s.chain_key.index());
        if gap > MAX_GROUP_SKIP {
            return Err(DecryptError::SkipLimit { got: gap, max: MAX_GROUP_SKIP });
        }
        s.skipped.retain(|k| k.index() >= iteration);
        while s.chain_key.index() < iteration {
            match s.chain_key.next() {
                Some(next) => s.chain_key = next,
                None => break,
            }
        }
        Ok(())
    }

    /// Saves the receiver state (SPEC.md §11.3).
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        // Exact capacity: growing would free an unwiped copy of the secrets.
        let len = 3
            + self.group_id.as_bytes().len()
            + KEY_LEN
            + 1
            + self.states.iter().map(|s| 4 + 2 * KEY_LEN + 4 + 2 + s.skipped.len() * (4 + KEY_LEN)).sum::<usize>();
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(len));
        out.put_u8(first_byte(kind::SAVED_GROUP_RECEIVER));
        out.put_u8(SAVED_REVISION);
        self.group_id.write(&mut out);
        out.put(&self.sender.to_bytes());
        out.put_u8(self.states.len() as u8);
        for s in self.states.iter() {
            out.put_u32(s.key_id);
            out.put(&s.signing_key.to_bytes());
            out.put(&s.chain_key.key().0);
            out.put_u32(s.chain_key.index());
            out.put_u16(s.skipped.len() as u16);
            for k in s.skipped.iter() {
                out.put_u32(k.index());
                out.put(&k.key().0);
            }
        }
        out
    }

    /// Restores a receiver saved by [`GroupReceiver::to_bytes`].
    ///
    /// # Errors
    /// [`DecodeError`] for malformed bytes or counts over their bounds.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(bytes, Keys::Check)
    }

    pub(crate) fn decode(bytes: &[u8], keys: Keys) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header(kind::SAVED_GROUP_RECEIVER)?;
        read_revision(&mut r)?;
        let group_id = GroupId::read(&mut r)?;
        let sender = IdentityKey::read(&r.array()?, keys)?;
        let offset = r.position();
        let n = usize::from(r.u8()?);
        if n == 0 {
            return Err(DecodeError::InvalidField { offset });
        }
        if n > MAX_SENDER_KEY_STATES {
            return Err(DecodeError::LimitExceeded { got: n as u32, max: MAX_SENDER_KEY_STATES as u32 });
        }
        let mut states = SecretVec::with_capacity(MAX_SENDER_KEY_STATES + 1);
        for _ in 0..n {
            let key_id = r.u32()?;
            let signing_key = match keys {
                Keys::Check => signing_key(&r.array()?)?,
                Keys::Trust => Ed25519Public::trusted(&r.array()?).ok_or(DecodeError::InvalidKey)?,
            };
            let ck = Secret32(r.array()?);
            let chain_key = ChainKey::new(ck, r.u32()?);
            let m = r.count_u16(MAX_GROUP_SKIPPED_KEYS)?;
            let mut skipped = SecretVec::with_capacity(m);
            for _ in 0..m {
                let index = r.u32()?;
                skipped.push(MessageKey::new(Secret32(r.array()?), index));
            }
            states.push(SenderKeyState { key_id, signing_key, chain_key, skipped });
        }
        r.finish()?;
        let mut ids: Vec<u32> = states.iter().map(|s| s.key_id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w.first() == w.get(1)) || !states.iter().all(SenderKeyState::is_consistent) {
            return Err(DecodeError::InconsistentState);
        }
        Ok(Self { group_id, sender, states })
    }
}

crate::snapshot::persistence_methods!(GroupReceiver);

fn plan(state: &SenderKeyState, iteration: u32) -> Result<(Plan, MessageKey), DecryptError> {
    if iteration == u32::MAX {
        // Senders stop at u32::MAX - 1 (SPEC.md §9).
        return Err(DecryptError::CounterExhausted);
    }
    let next_index = state.chain_key.index();
    if iteration < next_index {
        let i = state.skipped.iter().position(|k| k.index() == iteration).ok_or(DecryptError::Duplicate)?;
        let mk = state.skipped.get(i).ok_or(DecryptError::Duplicate)?.clone();
        return Ok((Plan::Skipped(i), mk));
    }
    let gap = iteration - next_index;
    if gap > MAX_GROUP_SKIP {
        return Err(DecryptError::SkipLimit { got: gap, max: MAX_GROUP_SKIP });
    }
    let mut skipped = SecretVec::with_capacity(gap as usize);
    let mut ck = state.chain_key.clone();
    while ck.index() < iteration {
        let (mk, next) = ck.step().ok_or(DecryptError::CounterExhausted)?;
        skipped.push(mk);
        ck = next;
    }
    let (mk, next) = ck.step().ok_or(DecryptError::CounterExhausted)?;
    Ok((Plan::Chain { next, skipped }, mk))
}

impl fmt::Debug for GroupReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { group_id, sender, states } = self;
        f.debug_struct("GroupReceiver")
            .field("group_id", group_id)
            .field("sender", sender)
            .field("key_ids", &states.iter().map(|s| s.key_id).collect::<Vec<_>>())
            .finish()
    }
}

/// Encrypts one distribution, framed as an [`crate::Envelope::Distribution`]
/// (SPEC.md §6.7), for many member devices over their session records
/// (SPEC.md §7.6): one result per record, in order. A failure for one member
/// does not stop the others. ([`Group::distribution`] gives the same
/// envelope for a [`Group`].)
///
/// # Security
/// This does not know the group's membership: pass exactly the current
/// members' records. After someone leaves, [`GroupSender::rotate`] first and
/// leave their record out.
///
/// ```
/// # use sottovoce::*;
/// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
/// # let me = Account::new(&mut rng);
/// # let mut bob = Account::new(&mut rng);
/// # let (a, b) = (Address::new(b"me", DeviceId(1))?, Address::new(b"bob", DeviceId(1))?);
/// let mut to_bob = SessionRecord::new(a, b, bob.identity_key());
/// to_bob.initiate(&mut rng, me.identity_key_pair(), &bob.prekey_bundle(None).unwrap())?;
/// let sender = GroupSender::new(&mut rng, GroupId::new(b"g")?, me.identity_key());
/// let out = distribute(&mut rng, &sender.distribution(), [&mut to_bob]);
/// assert_eq!(out.len(), 1);
/// assert!(out[0].is_ok());
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
pub fn distribute<'a, R, I>(
    rng: &mut R,
    distribution: &SenderKeyDistribution,
    records: I,
) -> Vec<Result<Message, EncryptError>>
where
    R: CryptoRng + ?Sized,
    I: IntoIterator<Item = &'a mut crate::SessionRecord>,
{
    let bytes = members::distribution_envelope(distribution).to_bytes();
    records.into_iter().map(|s| s.encrypt(rng, &bytes)).collect()
}

/// Signature length re-exported for the overhead arithmetic in docs.
const _: () = assert!(GROUP_MESSAGE_OVERHEAD == 9 + TAG_LEN + SIGNATURE_LEN);
