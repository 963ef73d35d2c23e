//! What every fuzz target asserts. Shared, file for file, by the cargo-fuzz
//! targets (`fuzz/fuzz_targets/*.rs`) and by the crate's plain `cargo test`
//! corpus replay (`tests/fuzz_corpus.rs`), so a corpus file is checked the
//! same way on stable as under the fuzzer.
//!
//! Fixtures are deterministic (a fixed non-cryptographic stream): fuzzing
//! needs reproducibility, not secrecy.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::OnceLock;

use rand_core::{TryCryptoRng, TryRng};
use sottovoce::*;

/// A deterministic xorshift stream. NOT a CSPRNG: fixtures only.
pub struct FixtureRng(u64);

impl FixtureRng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
}

impl TryRng for FixtureRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for FixtureRng {}

/// Turns the fuzzing-only authentication bypass on for decrypt targets, so
/// they explore the code behind the tag and signature checks. A no-op in
/// every build without `--cfg fuzzing` (e.g. the stable corpus replay).
fn bypass_authentication() {
    #[cfg(fuzzing)]
    sottovoce::hazmat::set_fuzzing_auth_bypass(true);
}

// ------------------------------------------------------------------ roundtrip

/// Every decoder on the same bytes: whatever decodes must re-encode to
/// exactly the input (all encodings are canonical) and decode again.
pub fn roundtrip(data: &[u8]) {
    if let Ok(m) = Message::try_from(data) {
        assert_eq!(m.to_bytes(), data);
        assert_eq!(Message::try_from(m.to_bytes().as_slice()).unwrap(), m);
    }
    if let Ok(m) = NormalMessage::try_from(data) {
        assert_eq!(m.to_bytes(), data);
    }
    if let Ok(m) = PreKeyMessage::try_from(data) {
        assert_eq!(m.to_bytes(), data);
        assert_eq!(PreKeyMessage::try_from(m.to_bytes().as_slice()).unwrap(), m);
    }
    if let Ok(b) = PreKeyBundle::try_from(data) {
        assert_eq!(b.to_bytes(), data);
        assert_eq!(PreKeyBundle::try_from(b.to_bytes().as_slice()).unwrap(), b);
        let _ = b.verify();
    }
    if let Ok(d) = SenderKeyDistribution::try_from(data) {
        assert_eq!(*d.to_bytes(), data);
        let again = SenderKeyDistribution::try_from(d.to_bytes().as_slice()).unwrap();
        assert_eq!(*again.to_bytes(), *d.to_bytes());
    }
    if let Ok(g) = GroupMessage::try_from(data) {
        assert_eq!(g.to_bytes(), data);
        assert_eq!(GroupMessage::try_from(g.to_bytes().as_slice()).unwrap(), g);
    }
    if let Ok(s) = Session::from_bytes(data) {
        assert_eq!(*s.to_bytes(), data);
        assert_eq!(*Session::from_bytes(&s.to_bytes()).unwrap().to_bytes(), data);
    }
    if let Ok(s) = GroupSender::from_bytes(data) {
        assert_eq!(*s.to_bytes(), data);
    }
    if let Ok(r) = GroupReceiver::from_bytes(data) {
        assert_eq!(*r.to_bytes(), data);
        assert_eq!(*GroupReceiver::from_bytes(&r.to_bytes()).unwrap().to_bytes(), data);
    }
    if let Ok(u) = PreKeyUpload::try_from(data) {
        assert_eq!(u.to_bytes(), data);
        let _ = u.verify();
    }
    if let Ok(c) = DeviceCertificate::try_from(data) {
        assert_eq!(c.to_bytes(), data);
        let _ = c.verify(&c.user_key());
    }
    if let Ok(l) = DeviceList::try_from(data) {
        assert_eq!(l.to_bytes(), data);
        let _ = DeviceList::verify(data, &l.user_key(), Some(&l));
    }
    if let Ok(e) = Envelope::try_from(data) {
        assert_eq!(*e.to_bytes(), data);
    }
    if let Ok(a) = Account::from_bytes(data) {
        // Revision 2 accounts are re-saved as revision 3.
        let again = a.to_bytes();
        assert_eq!(*Account::from_bytes(&again).unwrap().to_bytes(), *again);
    }
    if let Ok(r) = SessionRecord::from_bytes(data) {
        assert_eq!(*r.to_bytes(), data);
    }
    if let Ok(g) = Group::from_bytes(data) {
        assert_eq!(*g.to_bytes(), data);
    }
    let _ = Session::unseal(&[0u8; 32], data);
    let _ = SessionRecord::unseal(&[0u8; 32], data);
}

// ------------------------------------------------------------------ fixtures

/// Bob's account with one-time prekeys 2..=4 and signed prekey 1.
pub fn bob_account() -> Account {
    let mut rng = FixtureRng::new(0xB0B);
    let mut bob = Account::new_classical(&mut rng);
    bob.generate_one_time_prekeys(&mut rng, 3);
    bob
}

/// Genuine prekey messages to [`bob_account`] (with and without a one-time
/// prekey): seeds for `x3dh_respond`.
pub fn x3dh_seeds() -> Vec<Vec<u8>> {
    let bob = bob_account();
    let mut rng = FixtureRng::new(0xA11CE);
    let alice = Account::new_classical(&mut rng);
    let mut out = Vec::new();
    for opk in [None, Some(PreKeyId(2)), Some(PreKeyId(4))] {
        let bundle = bob.prekey_bundle(opk).unwrap();
        let mut s = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
        out.push(s.encrypt(&mut rng, b"fuzz seed").unwrap().to_bytes());
    }
    out
}

/// Arbitrary bytes as a prekey message to Bob: an error leaves his one-time
/// prekeys untouched; a success consumes exactly the one named.
pub fn x3dh_respond(data: &[u8]) {
    let Ok(m) = PreKeyMessage::try_from(data) else { return };
    let mut bob = bob_account();
    let before = bob.one_time_prekey_ids();
    match Session::respond(&mut bob, &m, b"") {
        Ok(inbound) => {
            let mut expected = before.clone();
            if let Some(id) = m.one_time_prekey_id() {
                expected.retain(|k| *k != id);
            }
            assert_eq!(bob.one_time_prekey_ids(), expected);
            // The new session refuses the same message a second time.
            let mut s = inbound.session;
            assert!(s.decrypt(&Message::PreKey(Box::new(m))).is_err());
        }
        Err(_) => assert_eq!(bob.one_time_prekey_ids(), before, "one-time prekey burned by a failed message"),
    }
}

struct SessionFixture {
    /// Bob's saved session, established and with skipped keys.
    bob: Vec<u8>,
    /// Genuine messages still undelivered to Bob.
    pending: Vec<Vec<u8>>,
}

fn session_fixture() -> &'static SessionFixture {
    static F: OnceLock<SessionFixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = FixtureRng::new(0x5E55);
        let alice = Account::new_classical(&mut rng);
        let mut bob = bob_account();
        let bundle = bob.prekey_bundle(Some(PreKeyId(3))).unwrap();
        let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"fuzz").unwrap();
        let Message::PreKey(first) = a.encrypt(&mut rng, b"first").unwrap() else { unreachable!() };
        let mut b = Session::respond(&mut bob, &first, b"fuzz").unwrap().session;
        a.decrypt(&b.encrypt(&mut rng, b"reply").unwrap()).unwrap();
        let skipped = a.encrypt(&mut rng, b"skipped").unwrap().to_bytes();
        let delivered = a.encrypt(&mut rng, b"delivered").unwrap();
        b.decrypt(&delivered).unwrap();
        let next = a.encrypt(&mut rng, b"next in chain").unwrap().to_bytes();
        let r = b.encrypt(&mut rng, b"bob again").unwrap();
        a.decrypt(&r).unwrap();
        let new_chain = a.encrypt(&mut rng, b"new chain").unwrap().to_bytes();
        SessionFixture { bob: b.to_bytes().to_vec(), pending: vec![skipped, next, new_chain] }
    })
}

/// Seeds for `session_decrypt`: genuine undelivered messages.
pub fn session_seeds() -> Vec<Vec<u8>> {
    session_fixture().pending.clone()
}

/// Arbitrary bytes decrypted by an established session: an error leaves the
/// saved state byte-identical; a success can never happen twice.
pub fn session_decrypt(data: &[u8]) {
    bypass_authentication();
    let f = session_fixture();
    let mut bob = Session::from_bytes(&f.bob).unwrap();
    match bob.decrypt_bytes(data) {
        Ok(_) => assert!(bob.decrypt_bytes(data).is_err(), "a message decrypted twice"),
        Err(_) => assert_eq!(*bob.to_bytes(), f.bob, "a rejected message changed the session"),
    }
}

struct GroupFixture {
    receiver: Vec<u8>,
    pending: Vec<Vec<u8>>,
}

fn group_fixture() -> &'static GroupFixture {
    static F: OnceLock<GroupFixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = FixtureRng::new(0x6E0);
        let id = IdentityKeyPair::generate(&mut rng).public_key();
        let mut s = GroupSender::new(&mut rng, GroupId::new(b"fuzz group").unwrap(), id);
        let mut r = GroupReceiver::new(id, &s.distribution());
        let skipped = s.encrypt(b"skipped").unwrap().to_bytes();
        r.decrypt(&s.encrypt(b"delivered").unwrap()).unwrap();
        let old_key = s.encrypt(b"old key").unwrap().to_bytes();
        r.add_distribution(id, &s.rotate(&mut rng)).unwrap();
        let new_key = s.encrypt(b"new key").unwrap().to_bytes();
        GroupFixture { receiver: r.to_bytes().to_vec(), pending: vec![skipped, old_key, new_key] }
    })
}

/// Seeds for `group_decrypt`.
pub fn group_seeds() -> Vec<Vec<u8>> {
    group_fixture().pending.clone()
}

/// Arbitrary bytes decrypted by a group receiver: as `session_decrypt`.
pub fn group_decrypt(data: &[u8]) {
    bypass_authentication();
    let f = group_fixture();
    let mut r = GroupReceiver::from_bytes(&f.receiver).unwrap();
    match r.decrypt_bytes(data) {
        Ok(_) => assert!(r.decrypt_bytes(data).is_err(), "a group message decrypted twice"),
        Err(_) => assert_eq!(*r.to_bytes(), f.receiver, "a rejected group message changed the receiver"),
    }
}

// ------------------------------------------------------------------ conversation

struct Sent {
    bytes: Vec<u8>,
    plaintext: Vec<u8>,
    chain: [u8; 32],
    previous: u32,
    counter: u32,
    delivered: bool,
}

/// The receiver's view of the sender's chains: which genuine messages must
/// still decrypt given SPEC.md §9's bounds. Shared with
/// tests/proptest_delivery.rs.
///
/// Since revision 2 a new ratchet key closes the open chain at the length
/// PN its header announces, storing the keys of every message below PN not
/// yet received (SPEC.md §5.6). So a genuine message is lost only to a
/// bound: a gap over `MAX_SKIP` on its chain, or eviction past
/// `MAX_SKIPPED_KEYS`. The model tracks both.
#[derive(Default)]
pub struct Known {
    /// Per chain: the next number the receiver's chain key is at.
    next: HashMap<[u8; 32], u32>,
    /// Skipped keys stored, in insertion order (chain, counter).
    skipped: Vec<([u8; 32], u32)>,
    open: Option<[u8; 32]>,
}

impl Known {
    pub fn decryptable(&self, chain: &[u8; 32], counter: u32) -> bool {
        if self.skipped.contains(&(*chain, counter)) {
            return true;
        }
        match self.next.get(chain) {
            Some(&n) => self.open == Some(*chain) && counter >= n && counter - n <= MAX_SKIP,
            None => counter <= MAX_SKIP,
        }
    }

    /// Records that `(chain, counter)` decrypted; `previous` is the PN of
    /// its header (the length of the sender's previous chain).
    pub fn learn(&mut self, chain: [u8; 32], previous: u32, counter: u32) {
        if let Some(i) = self.skipped.iter().position(|k| *k == (chain, counter)) {
            self.skipped.remove(i);
            return;
        }
        if self.open != Some(chain) {
            if let Some(old) = self.open {
                let from = self.next.get(&old).copied().unwrap_or(0);
                self.skipped.extend((from..previous).map(|n| (old, n)));
            }
            self.open = Some(chain);
            self.next.insert(chain, 0);
        }
        let from = self.next.get(&chain).copied().unwrap_or(0);
        self.skipped.extend((from..counter).map(|n| (chain, n)));
        self.next.insert(chain, counter + 1);
        let excess = self.skipped.len().saturating_sub(MAX_SKIPPED_KEYS);
        self.skipped.drain(..excess);
    }
}

fn reject_unchanged(s: &mut Session, bytes: &[u8]) {
    let before = s.to_bytes();
    assert!(s.decrypt_bytes(bytes).is_err(), "accepted a message that must be rejected");
    assert_eq!(*before, *s.to_bytes(), "a rejection changed the session");
}

fn group_reject_unchanged(r: &mut GroupReceiver, bytes: &[u8]) {
    let before = r.to_bytes();
    assert!(r.decrypt_bytes(bytes).is_err(), "accepted a group message that must be rejected");
    assert_eq!(*before, *r.to_bytes(), "a rejection changed the receiver");
}

/// The starting point of every `conversation` run, built once: Alice and
/// Bob just after Bob answered Alice's first (prekey) message, three group
/// senders and a fourth member's receivers for them.
struct ConversationFixture {
    alice: Vec<u8>,
    bob: Vec<u8>,
    first_chain: [u8; 32],
    senders: Vec<Vec<u8>>,
    receivers: Vec<Vec<u8>>,
}

fn conversation_fixture() -> &'static ConversationFixture {
    static F: OnceLock<ConversationFixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = FixtureRng::new(0xC0);
        let alice = Account::new_classical(&mut rng);
        let mut bob = bob_account();
        let bundle = bob.prekey_bundle(Some(PreKeyId(2))).unwrap();
        let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
        let Message::PreKey(first) = a.encrypt(&mut rng, b"start").unwrap() else { unreachable!() };
        let b = Session::respond(&mut bob, &first, b"").unwrap().session;
        let group = GroupId::new(b"fuzz conversation").unwrap();
        let ids: Vec<IdentityKey> = (0..3).map(|_| IdentityKeyPair::generate(&mut rng).public_key()).collect();
        let senders: Vec<GroupSender> = ids.iter().map(|id| GroupSender::new(&mut rng, group.clone(), *id)).collect();
        let receivers =
            senders.iter().zip(&ids).map(|(s, id)| GroupReceiver::new(*id, &s.distribution()).to_bytes().to_vec());
        ConversationFixture {
            alice: a.to_bytes().to_vec(),
            bob: b.to_bytes().to_vec(),
            first_chain: first.message().ratchet_key(),
            receivers: receivers.collect(),
            senders: senders.iter().map(|s| s.to_bytes().to_vec()).collect(),
        }
    })
}

/// A group message in flight: (sender, bytes, plaintext, key id, delivered).
type GroupSent = (usize, Vec<u8>, Vec<u8>, u32, bool);

/// Reads the script one op at a time.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn index(&mut self, len: usize) -> Option<usize> {
        if len == 0 {
            return None;
        }
        Some(usize::from(self.byte()?) % len)
    }
}

/// Most ops one script runs: keeps each run fast and memory bounded.
const MAX_OPS: usize = 96;

/// A scripted conversation between Alice and Bob plus a three-member group
/// with rotations: send / deliver / drop (never deliver) / reorder (deliver
/// any pending) / duplicate / tamper / save-and-restore, asserting that every
/// genuine message decrypts exactly once to what was sent (unless a bound
/// predicted by the model made it undecryptable), tampered and replayed
/// messages are rejected, and rejections change nothing. The authentication
/// bypass stays off here.
pub fn conversation(data: &[u8]) {
    let f = conversation_fixture();
    let mut script = Script(data);
    let mut rng = FixtureRng::new(0xC0 ^ data.len() as u64);
    let mut parties = [Session::from_bytes(&f.alice).unwrap(), Session::from_bytes(&f.bob).unwrap()];
    let mut flights: [Vec<Sent>; 2] = [Vec::new(), Vec::new()];
    let mut known = [Known::default(), Known::default()];
    known[1].learn(f.first_chain, 0, 0);
    let mut senders: Vec<GroupSender> = f.senders.iter().map(|b| GroupSender::from_bytes(b).unwrap()).collect();
    // receivers[s]: a fourth member's receiver for sender s.
    let mut receivers: Vec<GroupReceiver> = f.receivers.iter().map(|b| GroupReceiver::from_bytes(b).unwrap()).collect();
    let mut key_ids: Vec<Vec<u32>> = senders.iter().map(|s| vec![s.key_id()]).collect();
    let mut group_flight: Vec<GroupSent> = Vec::new();
    let mut counter = 0u32;

    for _ in 0..MAX_OPS {
        let Some(op) = script.byte() else { break };
        let d = usize::from(op >> 7); // direction / party for session ops
        match op & 0x0f {
            0 | 1 => {
                counter += 1;
                let plaintext = counter.to_be_bytes().to_vec();
                let m = parties[d].encrypt(&mut rng, &plaintext).unwrap();
                let n = match &m {
                    Message::Normal(n) => n,
                    Message::PreKey(p) => p.message(),
                };
                let (chain, previous, counter) = (n.ratchet_key(), n.previous_counter(), n.counter());
                flights[d].push(Sent { bytes: m.to_bytes(), plaintext, chain, previous, counter, delivered: false });
            }
            2 | 3 => {
                let pending: Vec<usize> = (0..flights[d].len()).filter(|&j| !flights[d][j].delivered).collect();
                let Some(i) = script.index(pending.len()) else { continue };
                let m = &mut flights[d][pending[i]];
                let receiver = &mut parties[1 - d];
                if known[1 - d].decryptable(&m.chain, m.counter) {
                    assert_eq!(receiver.decrypt_bytes(&m.bytes).expect("genuine message must decrypt"), m.plaintext);
                    known[1 - d].learn(m.chain, m.previous, m.counter);
                    m.delivered = true;
                } else {
                    reject_unchanged(receiver, &m.bytes);
                }
            }
            4 => {
                let done: Vec<usize> = (0..flights[d].len()).filter(|&j| flights[d][j].delivered).collect();
                let Some(i) = script.index(done.len()) else { continue };
                let bytes = flights[d][done[i]].bytes.clone();
                reject_unchanged(&mut parties[1 - d], &bytes);
            }
            5 => {
                let Some(i) = script.index(flights[d].len()) else { continue };
                let mut t = flights[d][i].bytes.clone();
                let (Some(p), Some(x)) = (script.byte(), script.byte()) else { continue };
                let p = usize::from(p) * t.len() / 256;
                t[p] ^= x.max(1);
                reject_unchanged(&mut parties[1 - d], &t);
            }
            6 => {
                let saved = parties[d].to_bytes();
                parties[d] = Session::from_bytes(&saved).unwrap();
                assert_eq!(*parties[d].to_bytes(), *saved);
            }
            7 | 8 => {
                let s = usize::from(op >> 5) % 3;
                counter += 1;
                let plaintext = counter.to_be_bytes().to_vec();
                let m = senders[s].encrypt(&plaintext).unwrap();
                group_flight.push((s, m.to_bytes(), plaintext, m.key_id(), false));
            }
            9 | 10 => {
                let pending: Vec<usize> = (0..group_flight.len()).filter(|&j| !group_flight[j].4).collect();
                let Some(i) = script.index(pending.len()) else { continue };
                let (s, bytes, plaintext, key_id, delivered) = &mut group_flight[pending[i]];
                let hist = &key_ids[*s];
                let p = hist.iter().rposition(|k| k == key_id).unwrap();
                if hist.len() - p <= MAX_SENDER_KEY_STATES {
                    assert_eq!(
                        receivers[*s].decrypt_bytes(bytes).expect("genuine group message must decrypt"),
                        *plaintext
                    );
                    *delivered = true;
                } else {
                    group_reject_unchanged(&mut receivers[*s], bytes);
                }
            }
            11 => {
                let done: Vec<usize> = (0..group_flight.len()).filter(|&j| group_flight[j].4).collect();
                let Some(i) = script.index(done.len()) else { continue };
                let (s, bytes, ..) = &group_flight[done[i]];
                group_reject_unchanged(&mut receivers[*s], &bytes.clone());
            }
            12 => {
                let Some(i) = script.index(group_flight.len()) else { continue };
                let (s, bytes, ..) = &group_flight[i];
                let s = *s;
                let mut t = bytes.clone();
                let (Some(p), Some(x)) = (script.byte(), script.byte()) else { continue };
                let p = usize::from(p) * t.len() / 256;
                t[p] ^= x.max(1);
                for r in receivers.iter_mut() {
                    group_reject_unchanged(r, &t);
                }
                let _ = s;
            }
            13 => {
                // A member leaves: every sender rotates; the receiver gets the new keys.
                let s = usize::from(op >> 5) % 3;
                let dist = senders[s].rotate(&mut rng);
                receivers[s].add_distribution(senders[s].identity(), &dist).unwrap();
                key_ids[s].push(dist.key_id());
            }
            14 => {
                let s = usize::from(op >> 5) % 3;
                let saved = receivers[s].to_bytes();
                receivers[s] = GroupReceiver::from_bytes(&saved).unwrap();
                let saved = senders[s].to_bytes();
                senders[s] = GroupSender::from_bytes(&saved).unwrap();
                assert_eq!(*senders[s].to_bytes(), *saved);
            }
            _ => {
                // Seal and unseal a party.
                let key = [op; 32];
                let sealed = parties[d].seal(&mut rng, &key);
                let before = parties[d].to_bytes();
                parties[d] = Session::unseal(&key, &sealed).unwrap();
                assert_eq!(*parties[d].to_bytes(), *before);
            }
        }
    }
}

// ------------------------------------------------------------------ records

/// One side of [`records`]: its account and its record with the other.
struct RecordParty {
    account: Account,
    record: SessionRecord,
}

struct RecordSent {
    bytes: Vec<u8>,
    plaintext: Vec<u8>,
    delivered: bool,
    /// Sent on a session the peer can never open.
    doomed: bool,
}

fn record_parties(rng: &mut FixtureRng) -> [RecordParty; 2] {
    let a = Account::new(rng);
    let b = Account::new(rng);
    let (at_a, at_b) = (Address::new(b"alice", DeviceId(1)).unwrap(), Address::new(b"bob", DeviceId(1)).unwrap());
    let (ka, kb) = (a.identity_key(), b.identity_key());
    [
        RecordParty { account: a, record: SessionRecord::new(at_a.clone(), at_b.clone(), kb) },
        RecordParty { account: b, record: SessionRecord::new(at_b, at_a, ka) },
    ]
}

/// Two devices' session records under a scripted network (SPEC.md §4.7):
/// either side initiates when it holds no session (so both may initiate at
/// once, with or without one-time prekeys), once from a bundle whose
/// one-time prekey a malicious server replaced (a session the peer can
/// never open); it sends,
/// and the network delivers any pending message (reordering), never
/// delivers some (loss), delivers copies again (replay) or altered
/// (tamper), and either side restores its sealed record. Asserted: every
/// genuine message of a session the peer can open decrypts exactly once, to
/// what was sent, the first time it is delivered; messages of a session it
/// cannot open, replays and tampered copies are rejected and change nothing
/// (record and account); after the script, all pending messages are
/// delivered, and then a few rounds of talk (a side without a session
/// starts one) end with both sides on one session.
pub fn records(data: &[u8]) {
    let mut script = Script(data);
    let mut rng = FixtureRng::new(0x4EC ^ data.len() as u64);
    let mut parties = record_parties(&mut rng);
    let mut flights: [Vec<RecordSent>; 2] = [Vec::new(), Vec::new()];
    let mut counter = 0u32;
    let mut dead: Vec<SessionId> = Vec::new();
    fn send(
        parties: &mut [RecordParty; 2],
        flights: &mut [Vec<RecordSent>; 2],
        dead: &[SessionId],
        d: usize,
        counter: &mut u32,
        rng: &mut FixtureRng,
    ) {
        *counter += 1;
        let plaintext = counter.to_be_bytes().to_vec();
        let doomed = parties[d].record.current_id().is_some_and(|id| dead.contains(&id));
        let m = parties[d].record.encrypt(rng, &plaintext).unwrap();
        flights[d].push(RecordSent { bytes: m.to_bytes(), plaintext, delivered: false, doomed });
    }
    fn initiate(
        parties: &mut [RecordParty; 2],
        dead: &mut Vec<SessionId>,
        d: usize,
        with_opk: bool,
        poison: bool,
        rng: &mut FixtureRng,
    ) {
        let [a, b] = parties;
        let (me, peer) = if d == 0 { (a, b) } else { (b, a) };
        let opk =
            if with_opk || poison { peer.account.generate_one_time_prekeys(rng, 1).first().copied() } else { None };
        let mut bundle = peer.account.prekey_bundle(opk).unwrap().to_bytes();
        if poison {
            // The server swaps the (unsigned) one-time prekey.
            let n = bundle.len();
            bundle[n - 32..].copy_from_slice(&[0x55; 32]);
        }
        let bundle = PreKeyBundle::try_from(bundle.as_slice()).unwrap();
        me.record.initiate(rng, me.account.identity_key_pair(), &bundle).unwrap();
        if poison {
            dead.push(me.record.current_id().unwrap());
        }
    }
    fn deliver(parties: &mut [RecordParty; 2], to: usize, m: &mut RecordSent) {
        if m.doomed {
            rejected(parties, to, &m.bytes);
            m.delivered = true;
            return;
        }
        let p = &mut parties[to];
        let got = p.record.decrypt_bytes(&mut p.account, &m.bytes);
        assert_eq!(*got.expect("a genuine message decrypts the first time"), m.plaintext);
        m.delivered = true;
    }
    fn rejected(parties: &mut [RecordParty; 2], to: usize, bytes: &[u8]) {
        let p = &mut parties[to];
        let before = (p.record.to_bytes(), p.account.to_bytes());
        assert!(p.record.decrypt_bytes(&mut p.account, bytes).is_err(), "a replay or forgery was accepted");
        assert_eq!(*p.record.to_bytes(), *before.0, "a rejection changed the record");
        assert_eq!(*p.account.to_bytes(), *before.1, "a rejection changed the account");
    }

    for _ in 0..MAX_OPS {
        let Some(op) = script.byte() else { break };
        let d = usize::from(op >> 7);
        match op & 0x07 {
            0 => {
                if parties[d].record.current().is_none() {
                    // One session the peer cannot open, at most: with two,
                    // neither side would ever hear from the other, and only
                    // starting over by hand helps.
                    let poison = op & 0x20 != 0 && dead.is_empty();
                    initiate(&mut parties, &mut dead, d, op & 0x40 != 0, poison, &mut rng);
                }
            }
            1 | 2 => {
                if parties[d].record.current().is_some() {
                    send(&mut parties, &mut flights, &dead, d, &mut counter, &mut rng);
                }
            }
            3 | 4 => {
                let pending: Vec<usize> = (0..flights[d].len()).filter(|&j| !flights[d][j].delivered).collect();
                let Some(i) = script.index(pending.len()) else { continue };
                deliver(&mut parties, 1 - d, &mut flights[d][pending[i]]);
            }
            5 => {
                // Loss: the message is never delivered.
                let pending: Vec<usize> = (0..flights[d].len()).filter(|&j| !flights[d][j].delivered).collect();
                let Some(i) = script.index(pending.len()) else { continue };
                flights[d].remove(pending[i]);
            }
            6 => {
                let done: Vec<usize> = (0..flights[d].len()).filter(|&j| flights[d][j].delivered).collect();
                let Some(i) = script.index(done.len()) else { continue };
                let mut bytes = flights[d][done[i]].bytes.clone();
                if op & 0x40 != 0 {
                    // Tamper with one byte of a delivered copy.
                    let Some(at) = script.index(bytes.len()) else { continue };
                    bytes[at] ^= script.byte().unwrap_or(1) | 1;
                }
                rejected(&mut parties, 1 - d, &bytes);
            }
            _ => {
                let p = &mut parties[d];
                let key = [0x5Au8; 32];
                let sealed = p.record.seal(&mut rng, &key);
                p.record = SessionRecord::unseal(&key, &sealed).unwrap();
                p.account = Account::from_bytes(&p.account.to_bytes()).unwrap();
            }
        }
    }
    // Everything still in flight arrives, in order.
    #[allow(clippy::needless_range_loop, reason = "d names the sender, 1 - d the receiver")]
    for d in 0..2 {
        for j in 0..flights[d].len() {
            if !flights[d][j].delivered {
                deliver(&mut parties, 1 - d, &mut flights[d][j]);
            }
        }
        flights[d].clear();
    }
    // Then they talk, as applications do: a side without a session starts
    // one. Both end on one session.
    let first = usize::from(parties[0].record.current().is_none());
    for _ in 0..4 {
        for d in [first, 1 - first] {
            if parties[d].record.current().is_none() {
                initiate(&mut parties, &mut dead, d, true, false, &mut rng);
            }
            send(&mut parties, &mut flights, &dead, d, &mut counter, &mut rng);
            let mut m = flights[d].pop().unwrap();
            deliver(&mut parties, 1 - d, &mut m);
        }
    }
    let (a, b) = (parties[0].record.current_id(), parties[1].record.current_id());
    assert_eq!(a, b, "both sides end on one session");
    assert!(a.is_some_and(|id| !dead.contains(&id)), "the session they end on is one both can read");
}

/// Seeds for `records`: a simultaneous initiation, a race whose reply
/// overtakes, a replayed first message, losses and restores.
pub fn record_seeds() -> Vec<Vec<u8>> {
    vec![
        // both initiate, both send, cross deliveries
        vec![0x00, 0x80, 0x01, 0x81, 0x03, 0x00, 0x83, 0x00, 0x01, 0x81, 0x03, 0x00, 0x83, 0x00],
        // Bob's first is held back while his reply overtakes it
        vec![0x40, 0xC0, 0x81, 0x01, 0x03, 0x00, 0x81, 0x83, 0x01, 0x83, 0x00, 0x01, 0x81, 0x04, 0x00],
        // replay of the first message, tamper, restore
        vec![0x00, 0x01, 0x03, 0x00, 0x06, 0x00, 0x46, 0x00, 0x10, 0x07, 0x81, 0x83, 0x00, 0x87, 0x01, 0x04, 0x00],
        // loss and reordering on one session
        vec![0x40, 0x01, 0x01, 0x01, 0x05, 0x01, 0x03, 0x00, 0x03, 0x00, 0x81, 0x81, 0x84, 0x01, 0x84, 0x00],
    ]
}

// ------------------------------------------------------------------ pqxdh_respond

struct PqFixture {
    /// Bob's saved post-quantum account: one-time prekeys 3 and 4, one-time
    /// KEM prekeys 5 and 6, the last-resort KEM prekey 2 with one used base
    /// key.
    bob: Vec<u8>,
    /// Genuine first messages (and one classical, one replayed).
    seeds: Vec<Vec<u8>>,
}

fn pq_fixture() -> &'static PqFixture {
    static F: OnceLock<PqFixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = FixtureRng::new(0x9_0B0B);
        let mut bob = Account::new(&mut rng);
        bob.generate_one_time_prekeys(&mut rng, 2);
        bob.generate_kem_prekeys(&mut rng, 2);
        let alice = Account::new(&mut rng);
        let mut first = |bundle: PreKeyBundle| {
            let mut s = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
            s.encrypt(&mut rng, b"pq fuzz seed").unwrap().to_bytes()
        };
        let used = first(bob.prekey_bundle(None).unwrap());
        let mut seeds = vec![
            first(bob.prekey_bundle_with_kem(Some(PreKeyId(3)), Some(PreKeyId(5))).unwrap()),
            first(bob.prekey_bundle_with_kem(None, Some(PreKeyId(6))).unwrap()),
            first(bob.prekey_bundle(Some(PreKeyId(4))).unwrap()),
            first(bob.prekey_bundle_with_kem(Some(PreKeyId(3)), None).unwrap()),
            used.clone(),
        ];
        let m = PreKeyMessage::try_from(used.as_slice()).unwrap();
        Session::respond(&mut bob, &m, b"").unwrap();
        seeds.sort();
        PqFixture { bob: bob.to_bytes().to_vec(), seeds }
    })
}

/// Genuine PQXDH first messages to the fixture's Bob (one-time and
/// last-resort KEM prekeys, a replay, a classical one): seeds for
/// `pqxdh_respond`.
pub fn pqxdh_seeds() -> Vec<Vec<u8>> {
    pq_fixture().seeds.clone()
}

/// Arbitrary bytes as a prekey message to a post-quantum Bob (SPEC.md
/// §4.8): an error leaves his whole account as it was (no prekey of either
/// kind consumed, no base key recorded); a success consumes exactly the
/// one-time prekeys named, or records the base key under the last-resort
/// KEM prekey, and the same message cannot start a second session.
pub fn pqxdh_respond(data: &[u8]) {
    let Ok(m) = PreKeyMessage::try_from(data) else { return };
    let fixture = pq_fixture();
    let mut bob = Account::from_bytes(&fixture.bob).unwrap();
    let (opks, kems, uses) = (bob.one_time_prekey_ids(), bob.kem_prekey_ids(), bob.last_resort_uses());
    match Session::respond(&mut bob, &m, b"") {
        Ok(inbound) => {
            assert_eq!(m.version(), 2, "the fixture requires PQXDH");
            assert!(inbound.session.is_post_quantum());
            let mut want = opks.clone();
            want.retain(|k| Some(*k) != m.one_time_prekey_id());
            assert_eq!(bob.one_time_prekey_ids(), want);
            let mut want = kems.clone();
            want.retain(|k| Some(*k) != m.kem_prekey_id());
            assert_eq!(bob.kem_prekey_ids(), want);
            let last_resort = m.kem_prekey_id() == bob.last_resort_kem_prekey_id();
            assert_eq!(bob.last_resort_uses(), uses + usize::from(last_resort));
            let after = bob.to_bytes();
            assert!(Session::respond(&mut bob, &m, b"").is_err(), "a second session from one message");
            assert_eq!(*bob.to_bytes(), *after);
            let mut s = inbound.session;
            assert!(s.decrypt(&Message::PreKey(Box::new(m))).is_err());
        }
        Err(_) => assert_eq!(*bob.to_bytes(), *fixture.bob, "a failed message changed the account"),
    }
}

/// The fixture's Bob, restored.
pub fn pq_bob() -> Account {
    Account::from_bytes(&pq_fixture().bob).unwrap()
}
