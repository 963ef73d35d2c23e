//! Session records: every session with one remote device, and which one
//! to send on (SPEC.md §4.7, §11.6).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::crypto::KEY_LEN;
use crate::device::{Address, binding};
use crate::error::{DecodeError, DecryptError, EncryptError, KeyAgreementError};
use crate::keys::{IdentityKey, IdentityKeyPair, PreKeyBundle, PreKeyStore};
use crate::message::{Message, PreKeyMessage};
use crate::session::{Session, SessionId};
use crate::wire::{Keys, Reader, Writer, first_byte, kind};

/// Most archived sessions a [`SessionRecord`] keeps besides its current one
/// (SPEC.md §4.7, §9). The oldest is forgotten first; its id is retired.
pub const MAX_ARCHIVED_SESSIONS: usize = 5;

/// Most ids of forgotten sessions a [`SessionRecord`] remembers, so a
/// replayed prekey message of one is `duplicate` instead of a new session
/// (SPEC.md §4.7, §9).
pub const MAX_RETIRED_SESSIONS: usize = 40;

/// Saved-record format revision written by [`SessionRecord::to_bytes`].
const SAVED_RECORD_REVISION: u8 = 2;

/// Every session with one remote device: the current session (the one this
/// side sends on) and up to [`MAX_ARCHIVED_SESSIONS`] archived ones, which
/// still decrypt messages in flight (SPEC.md §4.7).
///
/// The record does the session logic an application would otherwise have
/// to invent: it derives the X3DH binding from both addresses (SPEC.md
/// §4.6), checks the peer's identity against the device key it was made
/// for, routes a prekey message to the session it belongs to (a replay is
/// `duplicate`, never a new session), finds the session a normal message
/// belongs to without trying the wrong ones, and applies the
/// simultaneous-initiation rule under which both sides end on one session.
///
/// ```
/// use sottovoce::*;
/// let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
/// let alice = Account::new(&mut rng);
/// let mut bob = Account::new(&mut rng);
/// let (a_addr, b_addr) = (Address::new(b"alice", DeviceId(1))?, Address::new(b"bob", DeviceId(1))?);
/// let mut to_bob = SessionRecord::new(a_addr.clone(), b_addr.clone(), bob.identity_key());
/// let mut to_alice = SessionRecord::new(b_addr, a_addr, alice.identity_key());
///
/// to_bob.initiate(&mut rng, alice.identity_key_pair(), &bob.prekey_bundle(None).unwrap())?;
/// let first = to_bob.encrypt(&mut rng, b"hi Bob")?;
/// assert_eq!(*to_alice.decrypt(&mut bob, &first)?, b"hi Bob"); // wiped when dropped
/// assert_eq!(to_alice.decrypt(&mut bob, &first), Err(DecryptError::Duplicate)); // a replay
/// let reply = to_alice.encrypt(&mut rng, b"hi Alice")?;
/// # let mut alice = alice;
/// assert_eq!(*to_bob.decrypt(&mut alice, &reply)?, b"hi Alice");
/// assert_eq!(to_bob.current_id(), to_alice.current_id());
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
pub struct SessionRecord {
    local: Address,
    remote: Address,
    remote_identity: IdentityKey,
    /// Boxed, so promoting and archiving move pointers, not secrets.
    current: Option<Box<Session>>,
    /// Newest first.
    #[allow(clippy::vec_box, reason = "promotion moves a pointer, never a copy of a session's secrets")]
    archived: Vec<Box<Session>>,
    /// Ids of sessions forgotten from the archive, oldest first.
    retired: Vec<SessionId>,
}

impl SessionRecord {
    /// An empty record for the sessions between `local` and `remote`, whose
    /// device identity key is `remote_identity` (from the peer's verified
    /// [`crate::DeviceList`] or [`crate::DeviceCertificate`]).
    pub fn new(local: Address, remote: Address, remote_identity: IdentityKey) -> Self {
        Self { local, remote, remote_identity, current: None, archived: Vec::new(), retired: Vec::new() }
    }

    /// Our address.
    pub fn local(&self) -> &Address {
        &self.local
    }

    /// The peer's address.
    pub fn remote(&self) -> &Address {
        &self.remote
    }

    /// The peer device's identity key.
    pub fn remote_identity(&self) -> IdentityKey {
        self.remote_identity
    }

    /// The session this side sends on, if any.
    pub fn current(&self) -> Option<&Session> {
        self.current.as_deref()
    }

    /// The current session's id.
    pub fn current_id(&self) -> Option<SessionId> {
        self.current.as_ref().map(|s| s.session_id())
    }

    /// The archived sessions, newest first.
    pub fn archived(&self) -> impl Iterator<Item = &Session> {
        self.archived.iter().map(|s| &**s)
    }

    /// Starts a new session from the peer's bundle and makes it current
    /// (the previous current session is archived). The binding is derived
    /// from the two addresses (SPEC.md §4.6). Consumes from `rng` what
    /// [`Session::initiate`] does (64 bytes, 96 for PQXDH).
    ///
    /// # Errors
    /// [`KeyAgreementError::IdentityMismatch`] if the bundle's identity is
    /// not the record's remote identity; [`KeyAgreementError::Downgrade`]
    /// for a classical (version-1) bundle once the record holds a PQXDH
    /// session with the device (SPEC.md §4.7: the device publishes ML-KEM
    /// prekeys, so a bundle without one was stripped); otherwise as
    /// [`Session::initiate`]. On error the record is unchanged.
    pub fn initiate<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        identity: &IdentityKeyPair,
        bundle: &PreKeyBundle,
    ) -> Result<(), KeyAgreementError> {
        if bundle.identity_key() != self.remote_identity {
            return Err(KeyAgreementError::IdentityMismatch);
        }
        self.check_local(identity.public_key())?;
        if bundle.kem_prekey().is_none() && self.holds_post_quantum() {
            return Err(KeyAgreementError::Downgrade);
        }
        let session = Session::initiate(rng, identity, bundle, &binding(&self.local, &self.remote))?;
        if let Some(old) = self.current.replace(Box::new(session)) {
            self.archive(old);
        }
        Ok(())
    }

    /// As [`SessionRecord::initiate`], but only with PQXDH: a classical
    /// (version-1) bundle is refused with [`KeyAgreementError::Downgrade`]
    /// before anything is drawn (SPEC.md §4.8). Use it wherever the peer's
    /// devices publish ML-KEM prekeys (every [`crate::Account::new`] does):
    /// it protects the first contact too, which the record's own rule
    /// cannot (it knows the device only after a PQXDH session).
    ///
    /// # Errors
    /// As [`SessionRecord::initiate`].
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// let alice = Account::new(&mut rng);
    /// let classical_bob = Account::new_classical(&mut rng);
    /// let (a, b) = (Address::new(b"alice", DeviceId(1))?, Address::new(b"bob", DeviceId(1))?);
    /// let mut to_bob = SessionRecord::new(a, b, classical_bob.identity_key());
    /// let bundle = classical_bob.prekey_bundle(None).unwrap();
    /// assert_eq!(to_bob.initiate_pq(&mut rng, alice.identity_key_pair(), &bundle), Err(KeyAgreementError::Downgrade));
    /// assert!(to_bob.current().is_none());
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn initiate_pq<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        identity: &IdentityKeyPair,
        bundle: &PreKeyBundle,
    ) -> Result<(), KeyAgreementError> {
        if bundle.kem_prekey().is_none() {
            return Err(KeyAgreementError::Downgrade);
        }
        self.initiate(rng, identity, bundle)
    }

    /// Whether a current or archived session is a PQXDH one.
    fn holds_post_quantum(&self) -> bool {
        self.current().into_iter().chain(self.archived()).any(Session::is_post_quantum)
    }

    /// Encrypts on the current session (SPEC.md §5.5).
    ///
    /// # Errors
    /// [`EncryptError::NoSession`] if there is none yet; otherwise as
    /// [`Session::encrypt`].
    pub fn encrypt<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, plaintext: &[u8]) -> Result<Message, EncryptError> {
        self.current.as_mut().ok_or(EncryptError::NoSession)?.encrypt(rng, plaintext)
    }

    /// Decrypts a message from the peer device (SPEC.md §4.7): a prekey
    /// message goes to the session with its id, or creates one with
    /// `store` (deleting the one-time prekey only once it authenticated); a
    /// normal message goes to the one session that knows its ratchet key,
    /// or else is tried on each session that can start a new chain,
    /// current first. The session that decrypts may become current
    /// (simultaneous initiation, SPEC.md §4.7).
    ///
    /// # Errors
    /// [`DecryptError::StateMismatch`] for a prekey message from another
    /// identity, or a message to a record with no session;
    /// [`DecryptError::Duplicate`] for a replayed prekey message of a held
    /// or retired session; [`DecryptError::UnknownPreKey`] if the prekeys
    /// it names are gone; otherwise the error of the session that decided.
    /// On every error the record and `store` are unchanged.
    ///
    /// `store` is this device's own account (its prekeys); it is read only
    /// for a prekey message that starts a session.
    ///
    /// # Security
    /// Persist `store` after a prekey message created a session (its
    /// one-time prekey is gone), and the record after every message, before
    /// acting on the plaintext. The plaintext is wiped when dropped: it may
    /// be a distribution envelope, which holds a sender's chain key.
    pub fn decrypt<S: PreKeyStore + ?Sized>(
        &mut self,
        store: &mut S,
        message: &Message,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        self.decrypt_plain(store, message).map(Zeroizing::new)
    }

    fn decrypt_plain<S: PreKeyStore + ?Sized>(
        &mut self,
        store: &mut S,
        message: &Message,
    ) -> Result<Vec<u8>, DecryptError> {
        match message {
            Message::PreKey(m) => self.decrypt_prekey(store, m),
            Message::Normal(m) => {
                let key = m.ratchet_key();
                // The one session that knows the ratchet key decides alone.
                if let Some(i) = self.position(|s| s.knows_ratchet_key(&key)) {
                    let plaintext = self.session_mut(i).ok_or(DecryptError::StateMismatch)?.decrypt(message)?;
                    self.promote(i);
                    return Ok(plaintext);
                }
                // A new ratchet key: each session in order, current first.
                let mut first_error = None;
                for i in 0..self.len() {
                    let Some(session) = self.session_mut(i) else { break };
                    match session.decrypt(message) {
                        Ok(plaintext) => {
                            self.promote(i);
                            return Ok(plaintext);
                        }
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                Err(first_error.unwrap_or(DecryptError::StateMismatch))
            }
        }
    }

    /// Decodes and decrypts wire bytes ([`Message::try_from`], then
    /// [`SessionRecord::decrypt`]).
    ///
    /// # Errors
    /// [`DecryptError::Decode`] for malformed bytes, else as
    /// [`SessionRecord::decrypt`].
    pub fn decrypt_bytes<S: PreKeyStore + ?Sized>(
        &mut self,
        store: &mut S,
        bytes: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let message = Message::try_from(bytes)?;
        self.decrypt(store, &message)
    }

    fn decrypt_prekey<S: PreKeyStore + ?Sized>(
        &mut self,
        store: &mut S,
        m: &PreKeyMessage,
    ) -> Result<Vec<u8>, DecryptError> {
        let id = m.session_id();
        // §4.5: a held session id goes to that session. A prekey message
        // never promotes (§4.7): the peer has not heard from us on it.
        if let Some(i) = self.position(|s| s.session_id() == id) {
            return self.session_mut(i).ok_or(DecryptError::StateMismatch)?.decrypt_prekey(m);
        }
        if self.retired.contains(&id) {
            return Err(DecryptError::Duplicate);
        }
        if m.identity_key() != self.remote_identity {
            return Err(DecryptError::StateMismatch);
        }
        self.check_local(store.identity().public_key()).map_err(|_| DecryptError::StateMismatch)?;
        // §4.7: a device that made a PQXDH session with us does not start a
        // classical one (a stripped bundle), whatever the store requires.
        if m.version() == 1 && self.holds_post_quantum() {
            return Err(DecryptError::Downgrade);
        }
        let inbound = Session::respond(store, m, &binding(&self.remote, &self.local))?;
        // Rule 1: the peer's new session becomes current. In a
        // simultaneous initiation both sides do this, and rule 2 then
        // brings both to the smaller id; a session of ours the peer could
        // not open is given up, not kept.
        if let Some(old) = self.current.replace(Box::new(inbound.session)) {
            self.archive(old);
        }
        Ok(inbound.plaintext)
    }

    /// Fails if the record's sessions belong to another local identity
    /// (SPEC.md §4.7: a record holds one local identity).
    fn check_local(&self, identity: IdentityKey) -> Result<(), KeyAgreementError> {
        match self.current.iter().chain(self.archived.iter()).next() {
            Some(s) if s.local_identity() != identity => Err(KeyAgreementError::IdentityMismatch),
            _ => Ok(()),
        }
    }

    /// After archived session `i` decrypted a normal message (the peer
    /// holds it and has heard from us on it), SPEC.md §4.7 rule 2: it
    /// becomes current if it and the current session C were created on
    /// different sides (a simultaneous initiation) and it has the smaller
    /// id. Of two sessions one side created, a message never swaps them.
    fn promote(&mut self, i: usize) {
        let Some(a) = i.checked_sub(1) else { return };
        let (Some(candidate), Some(c)) = (self.archived.get(a), self.current.as_ref()) else { return };
        if c.role() != candidate.role() && candidate.session_id().0 < c.session_id().0 {
            let promoted = self.archived.remove(a);
            if let Some(old) = self.current.replace(promoted) {
                self.archived.insert(0, old);
            }
        }
    }

    /// Puts `session` at the front of the archive; the oldest beyond the
    /// bound is forgotten and its id retired.
    fn archive(&mut self, session: Box<Session>) {
        self.archived.insert(0, session);
        while self.archived.len() > MAX_ARCHIVED_SESSIONS {
            if let Some(old) = self.archived.pop() {
                self.retired.push(old.session_id());
            }
        }
        let excess = self.retired.len().saturating_sub(MAX_RETIRED_SESSIONS);
        self.retired.drain(..excess);
    }

    /// Sessions in trial order: 0 is the current one, then the archive.
    fn len(&self) -> usize {
        usize::from(self.current.is_some()) + self.archived.len()
    }

    fn session_mut(&mut self, i: usize) -> Option<&mut Session> {
        match (i, self.current.as_mut()) {
            (0, Some(c)) => Some(c),
            (_, Some(_)) => self.archived.get_mut(i - 1).map(|s| &mut **s),
            (_, None) => self.archived.get_mut(i).map(|s| &mut **s),
        }
    }

    fn position(&self, mut f: impl FnMut(&Session) -> bool) -> Option<usize> {
        self.current.iter().chain(self.archived.iter()).position(|s| f(s))
    }

    /// Saves the record (SPEC.md §11.6).
    ///
    /// # Security
    /// Holds every secret of every session: store it sealed
    /// ([`SessionRecord::seal`]) and never restore an older copy.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// # let alice = Account::new(&mut rng);
    /// # let bob = Account::new(&mut rng);
    /// let (a, b) = (Address::new(b"alice", DeviceId(1))?, Address::new(b"bob", DeviceId(1))?);
    /// let mut record = SessionRecord::new(a, b, bob.identity_key());
    /// record.initiate(&mut rng, alice.identity_key_pair(), &bob.prekey_bundle(None).unwrap())?;
    /// let key = [7u8; 32];
    /// let restored = SessionRecord::unseal(&key, &record.seal(&mut rng, &key))?;
    /// assert_eq!(restored.current_id(), record.current_id());
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let saved: Vec<zeroize::Zeroizing<Vec<u8>>> =
            self.current.iter().chain(self.archived.iter()).map(|s| s.to_bytes()).collect();
        let len = 2
            + self.local.encoded_len()
            + self.remote.encoded_len()
            + KEY_LEN
            + 1
            + 1
            + 1
            + KEY_LEN * self.retired.len()
            + saved.iter().map(|s| 4 + s.len()).sum::<usize>();
        // Exact capacity: growing would free an unwiped copy of the secrets.
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(len));
        out.put_u8(first_byte(kind::SAVED_RECORD));
        out.put_u8(SAVED_RECORD_REVISION);
        self.local.write(&mut out);
        self.remote.write(&mut out);
        out.put(&self.remote_identity.to_bytes());
        let mut saved = saved.iter();
        out.put_flag(self.current.is_some());
        if self.current.is_some()
            && let Some(s) = saved.next()
        {
            out.put_u32(s.len() as u32);
            out.put(s);
        }
        out.put_u8(self.archived.len() as u8);
        for s in saved {
            out.put_u32(s.len() as u32);
            out.put(s);
        }
        out.put_u8(self.retired.len() as u8);
        for id in &self.retired {
            out.put(&id.0);
        }
        out
    }

    /// Restores a record saved by [`SessionRecord::to_bytes`].
    ///
    /// # Errors
    /// [`DecodeError`] for anything malformed, over a bound, trailing or
    /// inconsistent (SPEC.md §11.6).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(bytes, Keys::Check)
    }

    pub(crate) fn decode(bytes: &[u8], keys: Keys) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header(kind::SAVED_RECORD)?;
        let offset = r.position();
        if r.u8()? != SAVED_RECORD_REVISION {
            return Err(DecodeError::InvalidField { offset });
        }
        let local = Address::read(&mut r)?;
        let remote = Address::read(&mut r)?;
        let remote_identity = IdentityKey::read(&r.array()?, keys)?;
        let read_session = |r: &mut Reader<'_>| -> Result<Box<Session>, DecodeError> {
            let n = r.u32()? as usize;
            Ok(Box::new(Session::decode(r.bytes(n)?, keys)?))
        };
        let current = if r.flag()? { Some(read_session(&mut r)?) } else { None };
        let n = usize::from(r.u8()?);
        if n > MAX_ARCHIVED_SESSIONS {
            return Err(DecodeError::LimitExceeded { got: n as u32, max: MAX_ARCHIVED_SESSIONS as u32 });
        }
        let mut archived = Vec::with_capacity(n + 1);
        for _ in 0..n {
            archived.push(read_session(&mut r)?);
        }
        let m = usize::from(r.u8()?);
        if m > MAX_RETIRED_SESSIONS {
            return Err(DecodeError::LimitExceeded { got: m as u32, max: MAX_RETIRED_SESSIONS as u32 });
        }
        let mut retired = Vec::with_capacity(m);
        for _ in 0..m {
            retired.push(SessionId(r.array()?));
        }
        r.finish()?;
        let record = Self { local, remote, remote_identity, current, archived, retired };
        if record.is_consistent() { Ok(record) } else { Err(DecodeError::InconsistentState) }
    }

    /// SPEC.md §11.6: archived sessions only beside a current one; every
    /// session's remote identity is the record's and the local identities
    /// agree; session ids (held and retired) pairwise distinct.
    fn is_consistent(&self) -> bool {
        let sessions: Vec<&Session> = self.current.iter().chain(self.archived.iter()).map(|s| &**s).collect();
        let local = sessions.first().map(|s| s.local_identity());
        let mut ids: Vec<[u8; KEY_LEN]> = sessions.iter().map(|s| s.session_id().0).collect();
        ids.extend(self.retired.iter().map(|id| id.0));
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        (self.current.is_some() || self.archived.is_empty())
            && sessions.iter().all(|s| s.remote_identity() == self.remote_identity && Some(s.local_identity()) == local)
            && ids.len() == count
    }
}

crate::snapshot::persistence_methods!(SessionRecord);

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { local, remote, remote_identity, current, archived, retired } = self;
        f.debug_struct("SessionRecord")
            .field("local", local)
            .field("remote", remote)
            .field("remote_identity", remote_identity)
            .field("current", &current.as_ref().map(|s| s.session_id()))
            .field("archived", &archived.len())
            .field("retired", &retired.len())
            .finish()
    }
}
