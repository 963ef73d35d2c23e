//! The Double Ratchet (SPEC.md §5), with deferred ratchet-key generation
//! (Signal's spec §6.5) and transactional decryption.
//!
//! State: RK; our ratchet key pair DHs (public key cached); the sending
//! chain CKs or `Pending` (a new DHs is generated at the next send) and PN,
//! the length of the previous sending chain; one open receiving chain
//! (DHr, CKr, Nr); up to [`MAX_CLOSED_CHAINS`] closed chains (DHr, PN); up
//! to [`MAX_SKIPPED_KEYS`] skipped message keys, oldest first. A new ratchet
//! key closes the open chain at the PN its first message announces.

pub(crate) mod chain_key;
pub(crate) mod message_key;
pub(crate) mod receiving;
pub(crate) mod root_key;
pub(crate) mod slot;

use alloc::vec::Vec;

use rand_core::CryptoRng;

use self::chain_key::ChainKey;
use self::message_key::MessageKey;
use self::receiving::{ClosedChain, ReceivingChain, SkippedKey, SkippedKeys};
use self::root_key::RootKey;
use self::slot::Slot;
use crate::crypto::{KEY_LEN, Secret32, TAG_LEN, X25519KeyPair};
use crate::error::{DecodeError, DecryptError, EncryptError};
use crate::labels::MESSAGE_KEY_INFO;
use crate::message::{HEADER_LEN, NormalMessage, NormalMessageRef, header};
use crate::secret_vec::SecretVec;
use crate::wire::{Reader, Writer};

/// Largest gap a message may be ahead of its chain's next index (SPEC.md
/// §9). A message exactly `MAX_SKIP` ahead decrypts; one further is a
/// [`DecryptError::SkipLimit`], decided before any key derivation.
pub const MAX_SKIP: u32 = 1000;

/// Most skipped message keys a session stores (SPEC.md §9); past it the
/// oldest are deleted first.
pub const MAX_SKIPPED_KEYS: usize = 2000;

/// Most closed receiving chains whose ratchet key and length a session
/// remembers (SPEC.md §5.6, §9), so that a late message of a closed chain
/// is told apart cheaply (`duplicate` below its length, `authentication` at
/// or past it) instead of being tried as a new ratchet key. The oldest
/// record is forgotten first. No key of a closed chain is kept.
pub const MAX_CLOSED_CHAINS: usize = 5;

pub(crate) struct DoubleRatchet {
    root_key: RootKey,
    /// DHs. Deleted when a new receiving chain is committed (the next send
    /// draws a fresh one), so a responder's copy of its signed prekey lives
    /// only until the first message authenticates (SPEC.md §5.1).
    ratchet_key: Slot<X25519KeyPair>,
    /// CKs while sending is active; empty while pending (a DH ratchet step
    /// was received: the next send generates DHs).
    sending: Slot<ChainKey>,
    /// PN: the length of our previous sending chain, sent in every header of
    /// the current (or, while pending, the next) sending chain.
    previous_counter: u32,
    /// The one open receiving chain: the peer's newest ratchet key.
    receiving: Slot<ReceivingChain>,
    /// Closed receiving chains, oldest first, at most [`MAX_CLOSED_CHAINS`].
    closed: Vec<ClosedChain>,
    skipped: SkippedKeys,
}

/// A decrypted message key with the state changes to commit if, and only
/// if, the AEAD authenticates.
enum Plan {
    Skipped(usize),
    Chain {
        next: ChainKey,
        skipped: SecretVec<SkippedKey>,
    },
    /// `previous`: the PN the open chain (still in `self.receiving` at
    /// commit) is closed at. Its keys below PN are derived only once the
    /// message has authenticated, so a forgery never pays for them (at most
    /// `MAX_SKIP + 1` chain steps per forged message).
    NewChain {
        root_key: RootKey,
        chain: ReceivingChain,
        previous: u32,
        skipped: SecretVec<SkippedKey>,
    },
}

impl DoubleRatchet {
    /// Alice after X3DH: RK, CKs = KDF_RK(SK, DH(DHs, SPK_B)). Consumes 32
    /// bytes of `rng` (DHs).
    pub(crate) fn new_initiator<R: CryptoRng + ?Sized>(
        rng: &mut R,
        sk: &Secret32,
        their_ratchet_key: &[u8; KEY_LEN],
    ) -> Option<Self> {
        let ratchet_key = X25519KeyPair::generate(rng);
        let (root_key, cks) = RootKey(sk.clone()).advance(&ratchet_key, their_ratchet_key)?;
        Some(Self {
            root_key,
            ratchet_key: Slot::full(ratchet_key),
            sending: Slot::full(cks),
            previous_counter: 0,
            receiving: Slot::empty(),
            closed: Vec::new(),
            skipped: SkippedKeys::default(),
        })
    }

    /// Bob after X3DH: RK = SK, DHs = his signed prekey, sending pending.
    pub(crate) fn new_responder(sk: &Secret32, signed_prekey: &X25519KeyPair) -> Self {
        Self {
            root_key: RootKey(sk.clone()),
            ratchet_key: Slot::full(signed_prekey.clone()),
            sending: Slot::empty(),
            previous_counter: 0,
            receiving: Slot::empty(),
            closed: Vec::new(),
            skipped: SkippedKeys::default(),
        }
    }

    /// The sending chain, performing the deferred DH ratchet step first if
    /// one is pending (consumes 32 bytes of `rng`). On error nothing changed.
    /// Returns the cached DHs public key with the chain.
    fn sending_chain<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<([u8; KEY_LEN], &mut ChainKey), EncryptError> {
        if !self.sending.is_some() {
            let their = self.receiving.as_ref().map(|c| c.ratchet_key).ok_or(EncryptError::NonContributory)?;
            let ours = X25519KeyPair::generate(rng);
            let (rk, cks) = self.root_key.advance(&ours, &their).ok_or(EncryptError::NonContributory)?;
            self.root_key = rk;
            self.ratchet_key.set(ours);
            self.sending.set(cks);
        }
        match (self.sending.as_mut(), self.ratchet_key.as_ref()) {
            (Some(chain), Some(dhs)) => Ok((*dhs.public(), chain)),
            _ => Err(EncryptError::NonContributory),
        }
    }

    /// RatchetEncrypt (SPEC.md §5.5). One allocation: the output message.
    pub(crate) fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        version: u8,
        ad_hash: &[u8; KEY_LEN],
        plaintext: &[u8],
    ) -> Result<NormalMessage, EncryptError> {
        let mut bytes = alloc::vec![0u8; HEADER_LEN + plaintext.len() + TAG_LEN];
        let counter = self.encrypt_into(rng, version, ad_hash, plaintext, &mut bytes)?;
        let ratchet_key = *self.ratchet_key.as_ref().ok_or(EncryptError::NonContributory)?.public();
        Ok(NormalMessage { ratchet_key, previous_counter: self.previous_counter, counter, bytes })
    }

    /// RatchetEncrypt into a caller's buffer of at least
    /// `HEADER_LEN + plaintext.len() + TAG_LEN` bytes: writes the whole wire
    /// message (header, ciphertext, tag) and returns the counter N. No heap
    /// allocation. On error nothing changed (the deferred DH step is kept only if the
    /// AEAD itself failed, which AES-GCM never does for inputs this size).
    pub(crate) fn encrypt_into<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        version: u8,
        ad_hash: &[u8; KEY_LEN],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<u32, EncryptError> {
        let needed = HEADER_LEN + plaintext.len() + TAG_LEN;
        let Some(out) = out.get_mut(..needed) else {
            return Err(EncryptError::BufferTooSmall { needed });
        };
        let previous_counter = self.previous_counter;
        let (ratchet_public, chain) = self.sending_chain(rng)?;
        let (mk, next) = chain.step().ok_or(EncryptError::CounterExhausted)?;
        let counter = mk.index();
        let header = header(version, &ratchet_public, previous_counter, counter);
        let (h, rest) = out.split_at_mut(HEADER_LEN);
        h.copy_from_slice(&header);
        let (body, t) = rest.split_at_mut(plaintext.len());
        body.copy_from_slice(plaintext);
        let Ok(tag) = mk.expand(MESSAGE_KEY_INFO).seal_in_place(&aead_ad(ad_hash, &header), body) else {
            // Unreachable (AES-GCM refuses only inputs over 64 GiB); fail
            // closed all the same: no plaintext left in the caller's buffer.
            body.fill(0);
            return Err(EncryptError::BufferTooSmall { needed });
        };
        t.copy_from_slice(&tag);
        *chain = next;
        Ok(counter)
    }

    /// RatchetDecrypt (SPEC.md §5.6): plan on copies, authenticate, commit.
    pub(crate) fn decrypt(
        &mut self,
        ad_hash: &[u8; KEY_LEN],
        msg: &NormalMessageRef<'_>,
    ) -> Result<Vec<u8>, DecryptError> {
        let mut out = alloc::vec![0u8; msg.body.len().saturating_sub(TAG_LEN)];
        self.decrypt_into(ad_hash, msg, &mut out)?;
        Ok(out)
    }

    /// RatchetDecrypt into a caller's buffer of at least the ciphertext's
    /// length; returns the plaintext length. On any error nothing changed
    /// and `out` holds no plaintext.
    pub(crate) fn decrypt_into(
        &mut self,
        ad_hash: &[u8; KEY_LEN],
        msg: &NormalMessageRef<'_>,
        out: &mut [u8],
    ) -> Result<usize, DecryptError> {
        let split = msg.body.len().checked_sub(TAG_LEN).ok_or(DecodeError::Truncated { offset: HEADER_LEN })?;
        let (ct, tag) = msg.body.split_at(split);
        let Some(out) = out.get_mut(..ct.len()) else {
            return Err(DecryptError::BufferTooSmall { needed: ct.len() });
        };
        let (plan, mk) = self.plan(msg)?;
        let mut tag_bytes = [0u8; TAG_LEN];
        tag_bytes.copy_from_slice(tag);
        out.copy_from_slice(ct);
        let header = header(msg.version, &msg.ratchet_key, msg.previous_counter, msg.counter);
        let opened = mk.expand(MESSAGE_KEY_INFO).open_in_place(&aead_ad(ad_hash, &header), out, &tag_bytes);
        if opened.is_err() && !crate::crypto::auth_bypassed() {
            out.fill(0);
            return Err(DecryptError::Authentication);
        }
        self.commit(plan);
        Ok(ct.len())
    }

    /// Works out the message key and the state change, touching nothing
    /// (SPEC.md §5.6 steps 1 to 4).
    fn plan(&self, msg: &NormalMessageRef<'_>) -> Result<(Plan, MessageKey), DecryptError> {
        let (ratchet_key, counter) = (&msg.ratchet_key, msg.counter);
        if counter == u32::MAX {
            // Senders stop at u32::MAX - 1 (SPEC.md §9).
            return Err(DecryptError::CounterExhausted);
        }
        // A stored skipped key, of the open chain or of a closed one.
        if let Some(idx) = self.skipped.find(ratchet_key, counter) {
            let mk = self.skipped.get(idx).ok_or(DecryptError::Duplicate)?.clone();
            return Ok((Plan::Skipped(idx), mk));
        }
        if let Some(chain) = self.receiving.as_ref().filter(|c| c.ratchet_key == *ratchet_key) {
            if counter < chain.chain_key.index() {
                return Err(DecryptError::Duplicate);
            }
            let (skipped, mk, next) = skip_to(&chain.chain_key, counter, ratchet_key)?;
            return Ok((Plan::Chain { next, skipped }, mk));
        }
        // A closed chain: nothing at or past its length is ever accepted.
        if let Some(closed) = self.closed.iter().find(|c| c.ratchet_key == *ratchet_key) {
            return Err(if counter < closed.length { DecryptError::Duplicate } else { DecryptError::Authentication });
        }
        // The ratchet key of a closed chain no longer remembered, which still
        // has stored keys: no honest peer reuses a ratchet key.
        if self.skipped.has_ratchet_key(ratchet_key) {
            return Err(DecryptError::Authentication);
        }
        // A new ratchet key: every bound before any derivation.
        check_gap(0, counter)?;
        let previous = msg.previous_counter;
        if !self.receiving.is_some() && previous != 0 {
            // No honest peer announces a previous chain before its first one.
            return Err(DecryptError::Authentication);
        }
        // With DHs deleted (sending pending), no honest peer can have a new
        // chain for us yet: the message cannot authenticate.
        let ours = self.ratchet_key.as_ref().ok_or(DecryptError::Authentication)?;
        let (root_key, ckr) = self.root_key.advance(ours, ratchet_key).ok_or(DecryptError::NonContributory)?;
        // The open chain is closed at PN on commit, once the message has
        // authenticated (SPEC.md §5.6 step 7): a forgery never pays for it.
        let (skipped, mk, next) = skip_to(&ckr, counter, ratchet_key)?;
        let chain = ReceivingChain { ratchet_key: *ratchet_key, chain_key: next };
        Ok((Plan::NewChain { root_key, chain, previous, skipped }, mk))
    }

    fn commit(&mut self, plan: Plan) {
        match plan {
            Plan::Skipped(idx) => self.skipped.remove(idx),
            Plan::Chain { next, skipped } => {
                if let Some(c) = self.receiving.as_mut() {
                    c.chain_key = next;
                }
                self.skipped.extend(skipped);
            }
            Plan::NewChain { root_key, chain, previous: length, skipped } => {
                self.root_key = root_key;
                // The open chain is closed where it lies (no move out of the
                // state); its chain key is wiped when replaced below.
                if let Some(open) = self.receiving.as_ref() {
                    let (dhr, next) = (open.ratchet_key, open.chain_key.index());
                    if length >= next {
                        // The keys Nr..PN, at most MAX_SKIP of them: the rest
                        // of a chain that lost more are gone (duplicate).
                        // Steps stay below u32::MAX, so this cannot fail.
                        let end = length.min(next.saturating_add(MAX_SKIP));
                        if let Ok((keys, _)) = skip_keys(&open.chain_key, end, &dhr) {
                            self.skipped.extend(keys);
                        }
                    } else {
                        // The peer's chain ended before numbers we already
                        // received: those came from someone who held the
                        // chain key. Their skipped keys go; the chain heals.
                        self.skipped.remove_chain_from(&dhr, length);
                    }
                    self.closed.push(ClosedChain { ratchet_key: dhr, length });
                    if self.closed.len() > MAX_CLOSED_CHAINS {
                        self.closed.remove(0);
                    }
                }
                self.receiving.set(chain);
                self.skipped.extend(skipped);
                if let Some(ck) = self.sending.as_ref() {
                    self.previous_counter = ck.index();
                }
                // Wiped in place: DHs is never needed again.
                self.sending.clear();
                self.ratchet_key.clear();
            }
        }
    }

    /// Whether a message with this ratchet key is decided by this state
    /// without a DH (SPEC.md §5.6 steps 2 to 4): the key of the open chain,
    /// of a remembered closed chain, or of a stored skipped key.
    pub(crate) fn knows_ratchet_key(&self, ratchet_key: &[u8; KEY_LEN]) -> bool {
        self.receiving.as_ref().is_some_and(|c| c.ratchet_key == *ratchet_key)
            || self.closed.iter().any(|c| c.ratchet_key == *ratchet_key)
            || self.skipped.has_ratchet_key(ratchet_key)
    }

    pub(crate) fn skipped_len(&self) -> usize {
        self.skipped.len()
    }

    // ------------------------------------------------------------ persistence

    /// Bytes [`DoubleRatchet::write`] produces.
    pub(crate) fn encoded_len(&self) -> usize {
        let sending = match (self.sending.as_ref(), self.ratchet_key.as_ref()) {
            (Some(_), Some(_)) => 1 + 3 * KEY_LEN + 4,
            _ => 1,
        };
        let receiving = if self.receiving.is_some() { 1 + 2 * KEY_LEN + 4 } else { 1 };
        KEY_LEN + 4 + sending + receiving + 1 + self.closed.len() * (KEY_LEN + 4) + self.skipped.encoded_len()
    }

    /// SPEC.md §11.2, from "RK" on.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.put(&self.root_key.0.0);
        out.put_u32(self.previous_counter);
        match (self.sending.as_ref(), self.ratchet_key.as_ref()) {
            (Some(ck), Some(dhs)) => {
                out.put_flag(true);
                out.put(&dhs.secret_bytes().0);
                out.put(dhs.public());
                out.put(&ck.key().0);
                out.put_u32(ck.index());
            }
            _ => out.put_flag(false),
        }
        match self.receiving.as_ref() {
            Some(c) => {
                out.put_flag(true);
                out.put(&c.ratchet_key);
                out.put(&c.chain_key.key().0);
                out.put_u32(c.chain_key.index());
            }
            None => out.put_flag(false),
        }
        out.put_u8(self.closed.len() as u8);
        for c in &self.closed {
            out.put(&c.ratchet_key);
            out.put_u32(c.length);
        }
        self.skipped.write(out);
    }

    /// Reads SPEC.md §11.2 from "RK" on. The caller then checks
    /// [`DoubleRatchet::is_consistent`] (§11.1): a pending sending chain
    /// answers an open receiving chain; ratchet keys of the open and closed
    /// chains are distinct; no skipped key is stored twice, nor at or past
    /// its chain's next number or length.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let root_key = RootKey(Secret32(r.array()?));
        let previous_counter = r.u32()?;
        let (sending, ratchet_key) = if r.flag()? {
            let secret = Secret32(r.array()?);
            let public = r.array()?;
            let dhs = X25519KeyPair::from_parts(&secret, public);
            let key = Secret32(r.array()?);
            (Slot::full(ChainKey::new(key, r.u32()?)), Slot::full(dhs))
        } else {
            (Slot::empty(), Slot::empty())
        };
        let receiving = if r.flag()? {
            let ratchet_key = r.array()?;
            let key = Secret32(r.array()?);
            Slot::full(ReceivingChain { ratchet_key, chain_key: ChainKey::new(key, r.u32()?) })
        } else {
            Slot::empty()
        };
        let n = usize::from(r.u8()?);
        if n > MAX_CLOSED_CHAINS {
            return Err(DecodeError::LimitExceeded { got: n as u32, max: MAX_CLOSED_CHAINS as u32 });
        }
        // Public data: no need to pre-size it against unwiped reallocation.
        let mut closed = Vec::with_capacity(n);
        for _ in 0..n {
            let ratchet_key = r.array()?;
            closed.push(ClosedChain { ratchet_key, length: r.u32()? });
        }
        let skipped = SkippedKeys::read(r)?;
        Ok(Self { root_key, ratchet_key, sending, previous_counter, receiving, closed, skipped })
    }

    /// SPEC.md §11.1's consistency rules for a restored ratchet.
    pub(crate) fn is_consistent(&self) -> bool {
        // A pending sending chain answers the open receiving chain.
        if !self.sending.is_some() && !self.receiving.is_some() {
            return false;
        }
        // Chain ratchet keys are distinct (at most MAX_CLOSED_CHAINS + 1 of
        // them: pairwise, without allocating).
        let open = self.receiving.as_ref().map(|c| &c.ratchet_key);
        for (i, c) in self.closed.iter().enumerate() {
            if open == Some(&c.ratchet_key) || self.closed.iter().skip(i + 1).any(|d| d.ratchet_key == c.ratchet_key) {
                return false;
            }
        }
        // Each skipped key below its chain's next number / length.
        for (dhr, n) in self.skipped.iter() {
            if let Some(open) = self.receiving.as_ref().filter(|c| c.ratchet_key == *dhr)
                && n >= open.chain_key.index()
            {
                return false;
            }
            if self.closed.iter().any(|c| c.ratchet_key == *dhr && n >= c.length) {
                return false;
            }
        }
        // Each skipped key once (sorted copy of the public (DHr, N) pairs).
        if self.skipped.len() < 2 {
            return true;
        }
        let mut entries: Vec<(&[u8; KEY_LEN], u32)> = self.skipped.iter().collect();
        entries.sort_unstable();
        !entries.windows(2).any(|w| w.first() == w.get(1))
    }
}

/// SHA-256(AD) || header: the AEAD associated data, on the stack.
fn aead_ad(ad_hash: &[u8; KEY_LEN], header: &[u8; HEADER_LEN]) -> [u8; KEY_LEN + HEADER_LEN] {
    let mut out = [0u8; KEY_LEN + HEADER_LEN];
    let (a, b) = out.split_at_mut(KEY_LEN);
    a.copy_from_slice(ad_hash);
    b.copy_from_slice(header);
    out
}

fn check_gap(next: u32, counter: u32) -> Result<(), DecryptError> {
    let gap = counter.saturating_sub(next);
    if gap > MAX_SKIP {
        return Err(DecryptError::SkipLimit { got: gap, max: MAX_SKIP });
    }
    Ok(())
}

/// Steps `chain` (at index Nr) to index `end`, keeping the keys for
/// Nr..end as skipped keys of `ratchet_key`; returns them and the chain key
/// at `end`. The caller has checked the bound.
fn skip_keys(
    chain: &ChainKey,
    end: u32,
    ratchet_key: &[u8; KEY_LEN],
) -> Result<(SecretVec<SkippedKey>, ChainKey), DecryptError> {
    let mut skipped = SecretVec::with_capacity(end.saturating_sub(chain.index()) as usize);
    let mut ck = chain.clone();
    while ck.index() < end {
        let (key, next) = ck.step().ok_or(DecryptError::CounterExhausted)?;
        skipped.push(SkippedKey { ratchet_key: *ratchet_key, key });
        ck = next;
    }
    Ok((skipped, ck))
}

/// From `chain` (at index Nr) to message `counter` >= Nr: the skipped keys
/// Nr..counter, MK_counter and CK_{counter+1}. Bound checked first.
fn skip_to(
    chain: &ChainKey,
    counter: u32,
    ratchet_key: &[u8; KEY_LEN],
) -> Result<(SecretVec<SkippedKey>, MessageKey, ChainKey), DecryptError> {
    check_gap(chain.index(), counter)?;
    let (skipped, ck) = skip_keys(chain, counter, ratchet_key)?;
    let (mk, next) = ck.step().ok_or(DecryptError::CounterExhausted)?;
    Ok((skipped, mk, next))
}

impl core::fmt::Debug for DoubleRatchet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Self { root_key: _, ratchet_key: _, sending, previous_counter, receiving, closed, skipped } = self;
        f.debug_struct("DoubleRatchet")
            .field("sending_index", &sending.as_ref().map(ChainKey::index))
            .field("previous_counter", previous_counter)
            .field("receiving_index", &receiving.as_ref().map(|c| c.chain_key.index()))
            .field("closed_chains", &closed.len())
            .field("skipped_keys", &skipped.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
impl DoubleRatchet {
    pub(crate) fn set_sending_index(&mut self, index: u32) {
        if let Some(ck) = self.sending.as_mut() {
            *ck = ChainKey::new(ck.key().clone(), index);
        }
    }
}
