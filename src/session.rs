//! The 1:1 session: X3DH to establish, the Double Ratchet to talk
//! (SPEC.md §4, §5, §11).

use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;

use crate::crypto::{KEY_LEN, TAG_LEN};
use crate::error::{DecodeError, DecryptError, EncryptError, KeyAgreementError};
use crate::kem::{KEM_CIPHERTEXT_LEN, KemCiphertext, KemPreKeyKind};
use crate::keys::{IdentityKey, IdentityKeyPair, PreKeyBundle, PreKeyId, PreKeyStore};
use crate::message::{HEADER_LEN, Message, NormalMessage, PreKeyMessage};
use crate::ratchet::DoubleRatchet;
use crate::wire::{Keys, Reader, VERSION, VERSION_PQ, Writer, first_byte_of, kind};
use crate::x3dh::{self, KemHeader, MAX_BINDING_LEN};

/// Used base keys a last-resort KEM prekey records at most (SPEC.md §4.8,
/// §9); past it, new sessions under that key are `unknown-prekey`.
pub const MAX_LAST_RESORT_USES: usize = 1000;

/// The prekeys X3DH used: the initiator repeats them in its prekey messages
/// until it decrypts a reply; the responder checks them on every prekey
/// message of the session.
#[derive(Clone, Copy, PartialEq, Eq)]
struct PreKeyIds {
    signed_prekey_id: PreKeyId,
    one_time_prekey_id: Option<PreKeyId>,
    /// PQXDH (version 2) only (SPEC.md §4.8).
    kem_prekey_id: Option<PreKeyId>,
}

/// Identifies a session: the initiator's ephemeral key EK_A, which both
/// sides know and which is fresh for every session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SessionId(pub [u8; KEY_LEN]);

/// A responder's new session and the first plaintext, returned together by
/// [`Session::respond`].
///
/// # Security
/// [`Session::respond`] has already deleted the one-time prekey from the
/// store in memory: persist the store before acting on the plaintext, or a
/// crash could leave the prekey usable again.
pub struct InboundSession {
    /// The established session.
    pub session: Session,
    /// The plaintext of the prekey message.
    pub plaintext: Vec<u8>,
}

/// An end-to-end encrypted 1:1 session (SPEC.md §5).
///
/// ```
/// use sottovoce::{Account, Message, Session};
///
/// let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
/// let alice = Account::new(&mut rng);
/// let mut bob = Account::new(&mut rng);
/// let opk = bob.generate_one_time_prekeys(&mut rng, 1)[0];
/// let bundle = bob.prekey_bundle(Some(opk)).unwrap();
///
/// // Alice starts a session from Bob's bundle, without Bob online.
/// let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
/// let wire = a.encrypt(&mut rng, b"hi Bob").unwrap().to_bytes();
///
/// // Bob answers the prekey message; his one-time prekey is now gone.
/// let Message::PreKey(first) = Message::try_from(wire.as_slice()).unwrap() else { panic!() };
/// let inbound = Session::respond(&mut bob, &first, b"").unwrap();
/// assert_eq!(inbound.plaintext, b"hi Bob");
/// let mut b = inbound.session;
///
/// let reply = b.encrypt(&mut rng, b"hi Alice").unwrap();
/// assert_eq!(a.decrypt(&reply).unwrap(), b"hi Alice");
/// ```
pub struct Session {
    session_id: SessionId,
    local_identity: IdentityKey,
    remote_identity: IdentityKey,
    ad_hash: [u8; KEY_LEN],
    prekey_ids: PreKeyIds,
    /// Which side of X3DH this session was: an initiator's session rejects
    /// every prekey message (SPEC.md §5.7).
    role: Role,
    /// Initiator only: no reply decrypted yet, so messages carry the header.
    pending: bool,
    /// A pending PQXDH initiator's KEM ciphertext, repeated in its prekey
    /// messages (SPEC.md §6.8, §11.2); dropped with the pending header.
    kem_ciphertext: Option<KemCiphertext>,
    /// A PQXDH responder's SHA-256 of the KEM ciphertext, so that a prekey
    /// message of this session with another ciphertext is refused (§5.7).
    kem_digest: Option<[u8; KEY_LEN]>,
    ratchet: DoubleRatchet,
}

/// The side of X3DH a session was created on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Created by [`Session::initiate`] (Alice).
    Initiator,
    /// Created by [`Session::respond`] (Bob).
    Responder,
}

impl fmt::Debug for InboundSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { session, plaintext } = self;
        f.debug_struct("InboundSession").field("session", session).field("plaintext_len", &plaintext.len()).finish()
    }
}

/// Saved-session format revision written by [`Session::to_bytes`].
/// 2 since SPEC.md revision 2: revision 1's saved sessions (a pre-release
/// format) are refused.
const SAVED_SESSION_REVISION: u8 = 2;

impl Session {
    /// Starts a session from the responder's `bundle`: PQXDH (SPEC.md §4.8)
    /// if the bundle has a KEM prekey (a version-2 bundle), else X3DH
    /// (§4.2), then the ratchet (§5.1). `binding` is optional caller context
    /// (both parties' addresses, device ids) appended to AD; the responder
    /// must pass the same bytes.
    ///
    /// Consumes from `rng`: EK_A (32 bytes), for PQXDH the encapsulation
    /// randomness m (32), then the first ratchet key DHs (32).
    ///
    /// # Errors
    /// [`KeyAgreementError::BadSignature`] before anything is drawn if the
    /// signed prekey's or the KEM prekey's signature fails;
    /// [`KeyAgreementError::NonContributory`] for a low-order prekey.
    ///
    /// # Security
    /// Check `bundle.identity_key()` against the identity you expect (safety
    /// numbers, key transparency): X3DH authenticates *a* key, not a person.
    /// Pass both parties' addresses as `binding` (SPEC.md §4.1, §12): an
    /// empty binding leaves the unknown-key-share gap open.
    pub fn initiate<R: CryptoRng + ?Sized>(
        rng: &mut R,
        identity: &IdentityKeyPair,
        bundle: &PreKeyBundle,
        binding: &[u8],
    ) -> Result<Self, KeyAgreementError> {
        check_binding(binding)?;
        let (ephemeral_public, agreement, kem) = x3dh::initiate(rng, identity, bundle, binding)?;
        let output = agreement.derive();
        let ratchet = DoubleRatchet::new_initiator(rng, &output.sk, bundle.signed_prekey())
            .ok_or(KeyAgreementError::NonContributory)?;
        Ok(Self {
            session_id: SessionId(ephemeral_public),
            local_identity: identity.public_key(),
            remote_identity: bundle.identity_key(),
            ad_hash: output.ad_hash,
            prekey_ids: PreKeyIds {
                signed_prekey_id: bundle.signed_prekey_id(),
                one_time_prekey_id: bundle.one_time_prekey_id(),
                kem_prekey_id: kem.as_ref().map(|k| k.id),
            },
            role: Role::Initiator,
            pending: true,
            kem_ciphertext: kem.map(|k| k.ciphertext),
            kem_digest: None,
            ratchet,
        })
    }

    /// As [`Session::initiate`], but only with PQXDH: a classical
    /// (version-1) bundle is refused with [`KeyAgreementError::Downgrade`]
    /// before anything is drawn (SPEC.md §4.8), so a server that strips the
    /// KEM prekey from a bundle cannot make this side send anything under
    /// X3DH alone.
    ///
    /// # Errors
    /// As [`Session::initiate`].
    pub fn initiate_pq<R: CryptoRng + ?Sized>(
        rng: &mut R,
        identity: &IdentityKeyPair,
        bundle: &PreKeyBundle,
        binding: &[u8],
    ) -> Result<Self, KeyAgreementError> {
        if bundle.kem_prekey().is_none() {
            return Err(KeyAgreementError::Downgrade);
        }
        Self::initiate(rng, identity, bundle, binding)
    }

    /// X3DH as responder to a prekey message (SPEC.md §4.4): looks the
    /// prekeys up in `store`, decrypts the embedded message and, only if it
    /// authenticates, deletes the one-time prekey from `store`; for a PQXDH
    /// (version-2) message also the KEM prekey: a one-time one is deleted,
    /// a last-resort one records the base key (SPEC.md §4.8).
    ///
    /// # Errors
    /// [`KeyAgreementError::Downgrade`] for a classical message to a store
    /// that requires PQXDH; [`KeyAgreementError::UnknownPreKey`] if `store`
    /// lacks a named prekey (or its last-resort KEM prekey is used up);
    /// [`KeyAgreementError::Duplicate`] for a base key a last-resort KEM
    /// prekey accepted before; [`KeyAgreementError::NonContributory`] for a
    /// low-order key; [`KeyAgreementError::Decrypt`] if the message does not
    /// authenticate. On every error `store` is untouched.
    ///
    /// # Security
    /// Check `inbound.session.remote_identity()` against who the transport
    /// says sent the message before trusting the plaintext, and use the same
    /// `binding` as the initiator. Persist `store` after every session this
    /// creates (a prekey is gone, or a base key was recorded) before acting
    /// on the plaintext.
    ///
    /// An X3DH message without a one-time prekey can be replayed; each
    /// replay yields a session whose first send uses a fresh ratchet key, so
    /// no key is ever reused, but the application sees the plaintext again
    /// (a PQXDH message under a last-resort KEM prekey cannot: its base key
    /// is recorded). Route messages for a known [`SessionId`] to that
    /// session instead.
    pub fn respond<S: PreKeyStore + ?Sized>(
        store: &mut S,
        message: &PreKeyMessage,
        binding: &[u8],
    ) -> Result<InboundSession, KeyAgreementError> {
        check_binding(binding)?;
        if message.kem.is_none() && store.requires_pq() {
            return Err(KeyAgreementError::Downgrade);
        }
        let (session, plaintext) = {
            let spk = store.signed_prekey(message.signed_prekey_id).ok_or(KeyAgreementError::UnknownPreKey)?;
            let opk = match message.one_time_prekey_id {
                Some(id) => Some(store.one_time_prekey(id).ok_or(KeyAgreementError::UnknownPreKey)?),
                None => None,
            };
            let kem = match &message.kem {
                Some(KemHeader { id, ciphertext }) => {
                    let key = store.kem_prekey(*id).ok_or(KeyAgreementError::UnknownPreKey)?;
                    if key.kind() == KemPreKeyKind::LastResort {
                        if store.base_key_used(*id, &message.base_key) {
                            return Err(KeyAgreementError::Duplicate);
                        }
                        if store.used_base_key_count(*id) >= MAX_LAST_RESORT_USES {
                            return Err(KeyAgreementError::UnknownPreKey);
                        }
                    }
                    Some((key, ciphertext))
                }
                None => None,
            };
            let identity = store.identity();
            let out =
                x3dh::respond(identity, spk, opk, kem, &message.identity_key, &message.base_key, binding)?.derive();
            let mut session = Self {
                session_id: SessionId(message.base_key),
                local_identity: identity.public_key(),
                remote_identity: message.identity_key,
                ad_hash: out.ad_hash,
                prekey_ids: PreKeyIds {
                    signed_prekey_id: message.signed_prekey_id,
                    one_time_prekey_id: message.one_time_prekey_id,
                    kem_prekey_id: message.kem_prekey_id(),
                },
                role: Role::Responder,
                pending: false,
                kem_ciphertext: None,
                kem_digest: message.kem.as_ref().map(|k| crate::crypto::sha256(&[&k.ciphertext[..]])),
                ratchet: DoubleRatchet::new_responder(&out.sk, spk.key()),
            };
            let plaintext = session
                .ratchet
                .decrypt(&session.ad_hash, &message.message.as_ref())
                .map_err(KeyAgreementError::Decrypt)?;
            (session, plaintext)
        };
        if let Some(id) = message.one_time_prekey_id {
            store.remove_one_time_prekey(id);
        }
        if let Some(id) = message.kem_prekey_id() {
            store.consume_kem_prekey(id, &message.base_key);
        }
        Ok(InboundSession { session, plaintext })
    }

    /// This session's id (the initiator's EK_A).
    pub fn session_id(&self) -> SessionId {
        self.session_id
    }

    /// Our identity key.
    pub fn local_identity(&self) -> IdentityKey {
        self.local_identity
    }

    /// The peer's identity key.
    pub fn remote_identity(&self) -> IdentityKey {
        self.remote_identity
    }

    /// Which side of X3DH this session was created on.
    pub fn role(&self) -> Role {
        self.role
    }

    /// 1 for an X3DH session, 2 for a PQXDH one (SPEC.md §6.8): the version
    /// nibble of every message it sends and accepts.
    pub fn version(&self) -> u8 {
        if self.prekey_ids.kem_prekey_id.is_some() { VERSION_PQ } else { VERSION }
    }

    /// Whether this session was established with PQXDH (SPEC.md §4.8):
    /// from a bundle with a KEM prekey, which [`crate::Account::new`]'s
    /// bundles always have.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// let alice = Account::new(&mut rng);
    /// let bob = Account::new(&mut rng);
    /// let s = Session::initiate(&mut rng, alice.identity_key_pair(), &bob.prekey_bundle(None).unwrap(), b"")?;
    /// assert!(s.is_post_quantum() && s.version() == 2);
    /// # Ok::<(), KeyAgreementError>(())
    /// ```
    pub fn is_post_quantum(&self) -> bool {
        self.prekey_ids.kem_prekey_id.is_some()
    }

    /// Whether `message` is a prekey message of this session: this is a
    /// responder's session, and the message has its EK_A (session id),
    /// initiator identity and prekey ids. Deliver such a message with
    /// [`Session::decrypt`], never [`Session::respond`] (SPEC.md §4.4). An
    /// initiator's session matches no prekey message.
    pub fn matches(&self, message: &PreKeyMessage) -> bool {
        self.role == Role::Responder
            && message.base_key == self.session_id.0
            && message.identity_key == self.remote_identity
            && message.signed_prekey_id == self.prekey_ids.signed_prekey_id
            && message.one_time_prekey_id == self.prekey_ids.one_time_prekey_id
            && message.kem_prekey_id() == self.prekey_ids.kem_prekey_id
            && message.kem.as_ref().map(|k| crate::crypto::sha256(&[&k.ciphertext[..]])) == self.kem_digest
    }

    /// Whether this (initiator's) session still wraps its messages in the
    /// X3DH header because no reply has been decrypted yet.
    pub fn has_pending_prekey(&self) -> bool {
        self.pending
    }

    /// Whether a normal message with this ratchet key is decided by this
    /// session without a DH (its open, closed or skipped chains know it).
    pub(crate) fn knows_ratchet_key(&self, ratchet_key: &[u8; KEY_LEN]) -> bool {
        self.ratchet.knows_ratchet_key(ratchet_key)
    }

    /// Number of skipped message keys stored (at most
    /// [`crate::MAX_SKIPPED_KEYS`]).
    pub fn skipped_keys(&self) -> usize {
        self.ratchet.skipped_len()
    }

    /// Encrypts `plaintext` (SPEC.md §5.5). Consumes 32 bytes of `rng` when
    /// a deferred DH ratchet step is due, none otherwise.
    ///
    /// # Errors
    /// [`EncryptError::CounterExhausted`] after 2^32 - 1 messages in one
    /// chain; [`EncryptError::NonContributory`] if the peer's ratchet key is
    /// of low order.
    pub fn encrypt<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, plaintext: &[u8]) -> Result<Message, EncryptError> {
        let message = self.ratchet.encrypt(rng, self.version(), &self.ad_hash, plaintext)?;
        Ok(if self.pending {
            let kem = match (self.prekey_ids.kem_prekey_id, &self.kem_ciphertext) {
                (Some(id), Some(ct)) => Some(KemHeader { id, ciphertext: ct.clone() }),
                _ => None,
            };
            Message::PreKey(alloc::boxed::Box::new(PreKeyMessage {
                identity_key: self.local_identity,
                base_key: self.session_id.0,
                signed_prekey_id: self.prekey_ids.signed_prekey_id,
                one_time_prekey_id: self.prekey_ids.one_time_prekey_id,
                kem,
                message,
            }))
        } else {
            Message::Normal(message)
        })
    }

    /// Encrypts into `out` without allocating, returning the length written.
    /// Only for established sessions: while [`Session::has_pending_prekey`]
    /// use [`Session::encrypt`]. `out` needs
    /// `plaintext.len() + MESSAGE_OVERHEAD` bytes; the result is a
    /// [`NormalMessage`] encoding.
    ///
    /// # Errors
    /// As [`Session::encrypt`]; [`EncryptError::BufferTooSmall`] if `out` is
    /// short; [`EncryptError::PreKeyMessageRequired`] while the X3DH header
    /// is still pending.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// # let alice = Account::new(&mut rng);
    /// # let mut bob = Account::new(&mut rng);
    /// # let bundle = bob.prekey_bundle(None).unwrap();
    /// # let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    /// # let Message::PreKey(m) = a.encrypt(&mut rng, b"x").unwrap() else { panic!() };
    /// # let mut b = Session::respond(&mut bob, &m, b"").unwrap().session;
    /// let mut buf = [0u8; 256];
    /// let n = b.encrypt_into(&mut rng, b"no allocation", &mut buf).unwrap();
    /// assert_eq!(n, 13 + MESSAGE_OVERHEAD);
    /// let msg = Message::try_from(&buf[..n]).unwrap();
    /// assert_eq!(a.decrypt(&msg).unwrap(), b"no allocation");
    /// ```
    pub fn encrypt_into<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, EncryptError> {
        let needed = HEADER_LEN + plaintext.len() + TAG_LEN;
        if self.pending {
            return Err(EncryptError::PreKeyMessageRequired);
        }
        self.ratchet.encrypt_into(rng, self.version(), &self.ad_hash, plaintext, out)?;
        Ok(needed)
    }

    /// Decrypts a message of this session (SPEC.md §5.6). Transactional: on
    /// any error the session is exactly as before, and the genuine message
    /// still decrypts afterwards.
    ///
    /// # Errors
    /// [`DecryptError::Authentication`] for a forged or tampered message;
    /// [`DecryptError::Duplicate`] for a replay; [`DecryptError::SkipLimit`]
    /// for a message more than [`crate::MAX_SKIP`] ahead;
    /// [`DecryptError::StateMismatch`] for another session's prekey message.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// # let alice = Account::new(&mut rng);
    /// # let mut bob = Account::new(&mut rng);
    /// # let bundle = bob.prekey_bundle(None).unwrap();
    /// # let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    /// # let Message::PreKey(m) = a.encrypt(&mut rng, b"x").unwrap() else { panic!() };
    /// # let mut b = Session::respond(&mut bob, &m, b"").unwrap().session;
    /// let wire = a.encrypt(&mut rng, b"genuine")?.to_bytes();
    /// let mut forged = wire.clone();
    /// *forged.last_mut().unwrap() ^= 1; // flip a bit of the tag
    /// let before = b.to_bytes();
    /// assert_eq!(b.decrypt_bytes(&forged), Err(DecryptError::Authentication));
    /// assert_eq!(*b.to_bytes(), *before); // nothing changed
    /// assert_eq!(b.decrypt_bytes(&wire)?, b"genuine");
    /// assert_eq!(b.decrypt_bytes(&wire), Err(DecryptError::Duplicate));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn decrypt(&mut self, message: &Message) -> Result<Vec<u8>, DecryptError> {
        match message {
            Message::PreKey(m) => self.decrypt_prekey(m),
            Message::Normal(n) => self.decrypt_normal(n),
        }
    }

    /// A prekey message of this session (SPEC.md §5.7), as
    /// [`Session::decrypt`] with [`Message::PreKey`].
    pub(crate) fn decrypt_prekey(&mut self, message: &PreKeyMessage) -> Result<Vec<u8>, DecryptError> {
        if message.version() != self.version() || !self.matches(message) {
            return Err(DecryptError::StateMismatch);
        }
        let plaintext = self.ratchet.decrypt(&self.ad_hash, &message.message.as_ref())?;
        self.received();
        Ok(plaintext)
    }

    /// Decodes and decrypts wire bytes: [`Message::try_from`] then
    /// [`Session::decrypt`].
    ///
    /// # Errors
    /// [`DecryptError::Decode`] for malformed bytes, else as
    /// [`Session::decrypt`].
    pub fn decrypt_bytes(&mut self, bytes: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let message = Message::try_from(bytes)?;
        self.decrypt(&message)
    }

    /// Decrypts a [`NormalMessage`]; as [`Session::decrypt`].
    ///
    /// # Errors
    /// As [`Session::decrypt`].
    pub fn decrypt_normal(&mut self, message: &NormalMessage) -> Result<Vec<u8>, DecryptError> {
        if message.version() != self.version() {
            return Err(DecryptError::StateMismatch);
        }
        let plaintext = self.ratchet.decrypt(&self.ad_hash, &message.as_ref())?;
        self.received();
        Ok(plaintext)
    }

    /// A message decrypted: the peer has the session, so no more prekey
    /// headers (nor the KEM ciphertext they repeat).
    fn received(&mut self) {
        self.pending = false;
        self.kem_ciphertext = None;
    }

    /// Decrypts an encoded normal message (first byte 0x11, SPEC.md §6.2)
    /// into `out` without allocating; returns the plaintext length, which
    /// is `bytes.len() - MESSAGE_OVERHEAD`. Prekey messages go through
    /// [`Session::decrypt`]. Transactional like [`Session::decrypt`]; on
    /// error `out` holds no plaintext.
    ///
    /// # Errors
    /// As [`Session::decrypt`]; [`DecryptError::BufferTooSmall`] if `out`
    /// is shorter than the plaintext.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// # let alice = Account::new(&mut rng);
    /// # let mut bob = Account::new(&mut rng);
    /// # let bundle = bob.prekey_bundle(None).unwrap();
    /// # let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    /// # let Message::PreKey(m) = a.encrypt(&mut rng, b"x").unwrap() else { panic!() };
    /// # let mut b = Session::respond(&mut bob, &m, b"").unwrap().session;
    /// let mut wire = [0u8; 80];
    /// let n = b.encrypt_into(&mut rng, b"in place", &mut wire).unwrap();
    /// let mut plain = [0u8; 64];
    /// let len = a.decrypt_into(&wire[..n], &mut plain).unwrap();
    /// assert_eq!(&plain[..len], b"in place");
    /// ```
    pub fn decrypt_into(&mut self, bytes: &[u8], out: &mut [u8]) -> Result<usize, DecryptError> {
        let message = crate::message::NormalMessageRef::parse(bytes)?;
        if message.version != self.version() {
            return Err(DecryptError::StateMismatch);
        }
        let n = self.ratchet.decrypt_into(&self.ad_hash, &message, out)?;
        self.received();
        Ok(n)
    }

    /// Saves the whole session state (SPEC.md §11.2).
    ///
    /// # Security
    /// The bytes hold every secret of the session: store them sealed
    /// ([`Session::seal`]). Restoring an older copy and sending from it
    /// reuses message keys and nonces: never roll a session back.
    ///
    /// ```
    /// # use sottovoce::*;
    /// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
    /// # let alice = Account::new(&mut rng);
    /// # let mut bob = Account::new(&mut rng);
    /// # let bundle = bob.prekey_bundle(None).unwrap();
    /// # let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    /// # let Message::PreKey(m) = a.encrypt(&mut rng, b"x").unwrap() else { panic!() };
    /// # let mut b = Session::respond(&mut bob, &m, b"").unwrap().session;
    /// let saved = b.to_bytes();
    /// let mut b = Session::from_bytes(&saved)?;
    /// assert_eq!(b.decrypt(&a.encrypt(&mut rng, b"after restart")?)?, b"after restart");
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        // Exact capacity: growing would free an unwiped copy of the secrets.
        let kem_len = match (&self.prekey_ids.kem_prekey_id, &self.kem_ciphertext, &self.kem_digest) {
            (None, _, _) => 0,
            (Some(_), Some(_), _) => 4 + KEM_CIPHERTEXT_LEN,
            (Some(_), None, Some(_)) => 4 + KEY_LEN,
            (Some(_), None, None) => 4,
        };
        let len = 2 + 4 * KEY_LEN + 2 + 4 + 1 + 4 + kem_len + self.ratchet.encoded_len();
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(len));
        out.put_u8(first_byte_of(self.version(), kind::SAVED_SESSION));
        out.put_u8(SAVED_SESSION_REVISION);
        out.put(&self.session_id.0);
        out.put(&self.local_identity.to_bytes());
        out.put(&self.remote_identity.to_bytes());
        out.put(&self.ad_hash);
        out.put_flag(self.role == Role::Initiator);
        out.put_flag(self.pending);
        out.put_u32(self.prekey_ids.signed_prekey_id.0);
        out.put_flag(self.prekey_ids.one_time_prekey_id.is_some());
        if let Some(id) = self.prekey_ids.one_time_prekey_id {
            out.put_u32(id.0);
        }
        if let Some(id) = self.prekey_ids.kem_prekey_id {
            out.put_u32(id.0);
            if let Some(ct) = &self.kem_ciphertext {
                out.put(&ct[..]);
            }
            if let Some(digest) = &self.kem_digest {
                out.put(digest);
            }
        }
        self.ratchet.write(&mut out);
        out
    }

    /// Restores a session saved by [`Session::to_bytes`].
    ///
    /// # Errors
    /// [`DecodeError`] for anything malformed, out of bounds or trailing.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(bytes, Keys::Check)
    }

    pub(crate) fn decode(bytes: &[u8], keys: Keys) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.header_any(kind::SAVED_SESSION)?;
        let offset = r.position();
        if r.u8()? != SAVED_SESSION_REVISION {
            return Err(DecodeError::InvalidField { offset });
        }
        let session_id = SessionId(r.array()?);
        let local_identity = IdentityKey::read(&r.array()?, keys)?;
        let remote_identity = IdentityKey::read(&r.array()?, keys)?;
        let ad_hash = r.array()?;
        let role = if r.flag()? { Role::Initiator } else { Role::Responder };
        let pending = r.flag()?;
        let signed_prekey_id = PreKeyId(r.u32()?);
        let one_time_prekey_id = if r.flag()? { Some(PreKeyId(r.u32()?)) } else { None };
        let (kem_prekey_id, kem_ciphertext, kem_digest) = if version == VERSION_PQ {
            let id = PreKeyId(r.u32()?);
            // A pending initiator still repeats its KEM ciphertext; a
            // responder keeps its digest (§11.2).
            if pending {
                let mut ct = alloc::boxed::Box::new([0u8; KEM_CIPHERTEXT_LEN]);
                ct.copy_from_slice(r.bytes(KEM_CIPHERTEXT_LEN)?);
                (Some(id), Some(ct), None)
            } else if role == Role::Responder {
                (Some(id), None, Some(r.array()?))
            } else {
                (Some(id), None, None)
            }
        } else {
            (None, None, None)
        };
        let prekey_ids = PreKeyIds { signed_prekey_id, one_time_prekey_id, kem_prekey_id };
        let ratchet = DoubleRatchet::read(&mut r)?;
        r.finish()?;
        if (pending && role == Role::Responder) || !ratchet.is_consistent() {
            // Only an initiator wraps its messages in prekey messages.
            return Err(DecodeError::InconsistentState);
        }
        Ok(Self {
            session_id,
            local_identity,
            remote_identity,
            ad_hash,
            prekey_ids,
            role,
            pending,
            kem_ciphertext,
            kem_digest,
            ratchet,
        })
    }
}

fn check_binding(binding: &[u8]) -> Result<(), KeyAgreementError> {
    if binding.len() > MAX_BINDING_LEN {
        return Err(KeyAgreementError::Decode(DecodeError::LimitExceeded {
            got: u32::try_from(binding.len()).unwrap_or(u32::MAX),
            max: MAX_BINDING_LEN as u32,
        }));
    }
    Ok(())
}

crate::snapshot::persistence_methods!(Session);

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            session_id: _,
            local_identity,
            remote_identity,
            ad_hash: _,
            prekey_ids,
            role,
            pending,
            kem_ciphertext: _,
            kem_digest: _,
            ratchet,
        } = self;
        f.debug_struct("Session")
            .field("role", role)
            .field("post_quantum", &prekey_ids.kem_prekey_id.is_some())
            .field("local_identity", local_identity)
            .field("remote_identity", remote_identity)
            .field("pending_prekey", pending)
            .field("ratchet", ratchet)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
impl Session {
    pub(crate) fn ratchet_mut(&mut self) -> &mut DoubleRatchet {
        &mut self.ratchet
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::keys::Account;

    fn talking(seed: u8) -> (ChaCha20Rng, Session, Session) {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let alice = Account::new_classical(&mut rng);
        let mut bob = Account::new_classical(&mut rng);
        let bundle = bob.prekey_bundle(None).unwrap();
        let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
        let Message::PreKey(m) = a.encrypt(&mut rng, b"x").unwrap() else { panic!() };
        let mut b = Session::respond(&mut bob, &m, b"").unwrap().session;
        a.decrypt(&b.encrypt(&mut rng, b"y").unwrap()).unwrap();
        (rng, a, b)
    }

    #[test]
    fn sending_counter_stops_before_wrapping() {
        let (mut rng, mut a, mut b) = talking(1);
        b.decrypt(&a.encrypt(&mut rng, b"start a chain").unwrap()).unwrap();
        a.ratchet_mut().set_sending_index(u32::MAX - 1);
        // The last usable index is u32::MAX - 1 ...
        let last = a.encrypt(&mut rng, b"last").unwrap();
        assert_eq!(last.normal().counter(), u32::MAX - 1);
        // ... then the chain is exhausted, and nothing changed.
        let before = a.to_bytes();
        assert_eq!(a.encrypt(&mut rng, b"one more").unwrap_err(), EncryptError::CounterExhausted);
        assert_eq!(*before, *a.to_bytes());
        // The receiver refuses a counter of u32::MAX outright.
        let mut forged = last.to_bytes();
        forged[37..41].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(b.decrypt_bytes(&forged).unwrap_err(), DecryptError::CounterExhausted);
    }

    #[test]
    fn unseal_skips_only_the_key_checks() {
        // A sealed blob is trusted for its keys (SPEC.md §11.4), never for
        // its bounds or consistency.
        let (mut rng, _a, b) = talking(3);
        let key = [7u8; 32];
        let good = b.to_bytes();
        let mut trailing = good.to_vec();
        trailing.push(0);
        let sealed = crate::sealed::seal(&mut rng, &key, &trailing);
        assert_eq!(
            Session::unseal(&key, &sealed).unwrap_err(),
            crate::RestoreError::Decode(DecodeError::TrailingBytes { extra: 1 })
        );
        // Responder role with the pending-prekey flag: inconsistent.
        let mut bad = good.to_vec();
        bad[2 + 4 * KEY_LEN + 1] = 1;
        let sealed = crate::sealed::seal(&mut rng, &key, &bad);
        assert_eq!(
            Session::unseal(&key, &sealed).unwrap_err(),
            crate::RestoreError::Decode(DecodeError::InconsistentState)
        );
        // A torsion-free check is skipped: the same bytes through from_bytes
        // with a small-order identity key fail, unsealed they restore.
        let mut small = good.to_vec();
        small[2 + KEY_LEN..2 + 2 * KEY_LEN].copy_from_slice(&[0u8; KEY_LEN]);
        assert_eq!(Session::from_bytes(&small).unwrap_err(), DecodeError::InvalidKey);
        let sealed = crate::sealed::seal(&mut rng, &key, &small);
        assert!(Session::unseal(&key, &sealed).is_ok());
        let sealed = b.seal(&mut rng, &key);
        assert_eq!(*Session::unseal(&key, &sealed).unwrap().to_bytes(), *good);
    }

    #[test]
    fn encrypt_into_reports_small_buffers_without_advancing() {
        let (mut rng, mut a, mut b) = talking(2);
        let mut small = [0u8; 10];
        let before = a.to_bytes();
        assert_eq!(
            a.encrypt_into(&mut rng, b"hello", &mut small).unwrap_err(),
            EncryptError::BufferTooSmall { needed: 5 + crate::MESSAGE_OVERHEAD }
        );
        assert_eq!(*before, *a.to_bytes());
        let mut buf = [0u8; 64];
        let n = a.encrypt_into(&mut rng, b"hello", &mut buf).unwrap();
        assert_eq!(b.decrypt_bytes(&buf[..n]).unwrap(), b"hello");
    }
}
