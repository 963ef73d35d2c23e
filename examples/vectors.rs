//! Deterministic generator of the published test vectors (SPEC.md §14).
//!
//! `cargo run --example vectors` rewrites `test-vectors/*.json`; CI runs it
//! and fails on any diff. Every random value comes from a recorded ChaCha20
//! stream with a fixed seed and is written into the vectors as the byte
//! strings drawn, in order, so no implementation needs this generator's RNG.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::collections::BTreeMap;
use std::convert::Infallible;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};
use serde_json::{Value, json};
use sottovoce::hazmat;
use sottovoce::*;

// ------------------------------------------------------------ randomness

/// A ChaCha20 stream that logs every draw.
struct Recorder {
    inner: ChaCha20Rng,
    log: Vec<Vec<u8>>,
}

impl Recorder {
    fn new(seed: u8) -> Self {
        Self { inner: ChaCha20Rng::from_seed([seed; 32]), log: Vec::new() }
    }

    /// The draws since the last call, as hex strings.
    fn take(&mut self) -> Vec<String> {
        self.log.drain(..).map(hex::encode).collect()
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.inner.fill_bytes(&mut b);
        b
    }
}

impl TryRng for Recorder {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_be_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.inner.fill_bytes(dst);
        self.log.push(dst.to_vec());
        Ok(())
    }
}

impl TryCryptoRng for Recorder {}

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

// ------------------------------------------------------------ file envelope

struct VectorFile {
    name: &'static str,
    groups: Vec<Value>,
    next_id: u64,
    count: u64,
}

impl VectorFile {
    fn new(name: &'static str) -> Self {
        Self { name, groups: Vec::new(), next_id: 1, count: 0 }
    }

    fn group(&mut self, kind: &str, comment: &str, tests: Vec<Value>) {
        self.groups.push(json!({ "type": kind, "comment": comment, "tests": tests }));
    }

    /// One test: tcId, comment, flags, result (+ error), then `fields`.
    fn test(&mut self, comment: &str, flags: &[&str], error: Option<ErrorCategory>, fields: Value) -> Value {
        let mut t = serde_json::Map::new();
        t.insert("tcId".into(), json!(self.next_id));
        t.insert("comment".into(), json!(comment));
        t.insert("flags".into(), json!(flags));
        t.insert("result".into(), json!(if error.is_some() { "invalid" } else { "valid" }));
        if let Some(e) = error {
            t.insert("error".into(), json!(e.name()));
        }
        if let Value::Object(f) = fields {
            t.extend(f);
        }
        self.next_id += 1;
        self.count += 1;
        Value::Object(t)
    }

    fn write(self) {
        let doc = json!({
            "schema": format!("sottovoce-{}-v1", self.name),
            "specRevision": 1,
            "suite": labels::SUITE,
            "numberOfTests": self.count,
            "testGroups": self.groups,
        });
        let mut text = serde_json::to_string_pretty(&doc).unwrap();
        text.push('\n');
        let path = format!("{}/test-vectors/{}.json", env!("CARGO_MANIFEST_DIR"), self.name);
        std::fs::write(&path, text).unwrap();
        println!("wrote {path}: {} tests", self.count);
    }
}

// ------------------------------------------------------------ parties

/// Bob's prekeys, built from listed private keys.
struct VectorStore {
    identity: IdentityKeyPair,
    signed: SignedPreKey,
    one_time: BTreeMap<PreKeyId, OneTimePreKey>,
}

impl PreKeyStore for VectorStore {
    fn identity(&self) -> &IdentityKeyPair {
        &self.identity
    }
    fn signed_prekey(&self, id: PreKeyId) -> Option<&SignedPreKey> {
        (self.signed.id() == id).then_some(&self.signed)
    }
    fn one_time_prekey(&self, id: PreKeyId) -> Option<&OneTimePreKey> {
        self.one_time.get(&id)
    }
    fn remove_one_time_prekey(&mut self, id: PreKeyId) {
        self.one_time.remove(&id);
    }
}

struct Parties {
    alice_seed: [u8; 32],
    alice: IdentityKeyPair,
    bob_seed: [u8; 32],
    spk_secret: [u8; 32],
    opk_secret: Option<[u8; 32]>,
    store: VectorStore,
}

impl Parties {
    fn new(rng: &mut Recorder, with_opk: bool) -> Self {
        let alice_seed = rng.bytes::<32>();
        let bob_seed = rng.bytes::<32>();
        let spk_secret = rng.bytes::<32>();
        let opk_secret = with_opk.then(|| rng.bytes::<32>());
        let alice = IdentityKeyPair::from_seed(&alice_seed);
        let identity = IdentityKeyPair::from_seed(&bob_seed);
        let signed = SignedPreKey::from_secret_bytes(PreKeyId(1), &spk_secret, &identity);
        let mut one_time = BTreeMap::new();
        if let Some(s) = opk_secret {
            one_time.insert(PreKeyId(2), OneTimePreKey::from_secret_bytes(PreKeyId(2), &s));
        }
        Self { alice_seed, alice, bob_seed, spk_secret, opk_secret, store: VectorStore { identity, signed, one_time } }
    }

    fn bundle(&self) -> PreKeyBundle {
        let opk = self.store.one_time.values().next();
        PreKeyBundle::new(self.store.identity.public_key(), &self.store.signed, opk)
    }

    fn json(&self) -> Value {
        json!({
            "alice": {
                "identitySeed": h(&self.alice_seed),
                "identityKey": h(&self.alice.public_key().to_bytes()),
            },
            "bob": {
                "identitySeed": h(&self.bob_seed),
                "identityKey": h(&self.store.identity.public_key().to_bytes()),
                "signedPreKey": { "id": 1, "private": h(&self.spk_secret) },
                "oneTimePreKeys": self.opk_secret.map(|s| vec![json!({ "id": 2, "private": h(&s) })]).unwrap_or_default(),
            },
        })
    }
}

// ------------------------------------------------------------ session transcripts

type Expect = Result<(), ErrorCategory>;
const OK: Expect = Ok(());

struct Transcript {
    rng: Recorder,
    parties: Parties,
    binding: Vec<u8>,
    bundle: Vec<u8>,
    alice: Session,
    bob: Option<Session>,
    events: Vec<Value>,
    first_error: Option<ErrorCategory>,
}

impl Transcript {
    fn new(seed: u8, with_opk: bool, binding: &[u8]) -> Self {
        let mut rng = Recorder::new(seed);
        let parties = Parties::new(&mut rng, with_opk);
        rng.take();
        let bundle = parties.bundle();
        let alice = Session::initiate(&mut rng, &parties.alice, &bundle, binding).unwrap();
        let randomness = rng.take();
        let events = vec![json!({ "event": "initiate", "party": "alice", "randomness": randomness })];
        let bundle = bundle.to_bytes();
        Self { rng, parties, binding: binding.to_vec(), bundle, alice, bob: None, events, first_error: None }
    }

    fn session(&mut self, party: &str) -> &mut Session {
        match party {
            "alice" => &mut self.alice,
            _ => self.bob.as_mut().expect("bob has no session yet"),
        }
    }

    fn encrypt(&mut self, party: &str, plaintext: &[u8]) -> Vec<u8> {
        self.rng.take();
        let mut rng = std::mem::replace(&mut self.rng, Recorder::new(0));
        let m = self.session(party).encrypt(&mut rng, plaintext).unwrap().to_bytes();
        self.rng = rng;
        let randomness = self.rng.take();
        self.events.push(json!({
            "event": "encrypt", "party": party, "plaintext": h(plaintext),
            "randomness": randomness, "message": h(&m),
        }));
        m
    }

    fn outcome(&mut self, ev: &mut serde_json::Map<String, Value>, r: Result<Vec<u8>, ErrorCategory>, expect: Expect) {
        match (r, expect) {
            (Ok(pt), Ok(())) => {
                ev.insert("result".into(), json!("valid"));
                ev.insert("plaintext".into(), json!(h(&pt)));
            }
            (Err(e), Err(want)) => {
                assert_eq!(e, want, "generator expectation");
                ev.insert("result".into(), json!("invalid"));
                ev.insert("error".into(), json!(e.name()));
                self.first_error.get_or_insert(e);
            }
            (r, e) => panic!("unexpected outcome {r:?}, expected {e:?}"),
        }
    }

    fn respond(&mut self, message: &[u8], expect: Expect) {
        let r = match Message::try_from(message) {
            Ok(Message::PreKey(m)) => {
                Session::respond(&mut self.parties.store, &m, &self.binding).map_err(|e| e.category())
            }
            Ok(Message::Normal(_)) => Err(ErrorCategory::Decode),
            Err(e) => Err(e.category()),
        };
        let r = r.map(|inbound| {
            self.bob = Some(inbound.session);
            inbound.plaintext
        });
        let mut ev = serde_json::Map::new();
        ev.insert("event".into(), json!("respond"));
        ev.insert("party".into(), json!("bob"));
        ev.insert("binding".into(), json!(h(&self.binding)));
        ev.insert("message".into(), json!(h(message)));
        self.outcome(&mut ev, r, expect);
        self.events.push(Value::Object(ev));
    }

    fn decrypt(&mut self, party: &str, message: &[u8], expect: Expect) {
        let r = self.session(party).decrypt_bytes(message).map_err(|e| e.category());
        let mut ev = serde_json::Map::new();
        ev.insert("event".into(), json!("decrypt"));
        ev.insert("party".into(), json!(party));
        ev.insert("message".into(), json!(h(message)));
        self.outcome(&mut ev, r, expect);
        self.events.push(Value::Object(ev));
    }

    /// Alice sends, Bob responds; then Bob replies, Alice decrypts.
    fn establish(&mut self) {
        let m = self.encrypt("alice", b"hello Bob");
        self.respond(&m, OK);
        let r = self.encrypt("bob", b"hello Alice");
        self.decrypt("alice", &r, OK);
    }

    fn finish(self, file: &mut VectorFile, comment: &str, flags: &[&str]) -> Value {
        let mut fields = match self.parties.json() {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        fields.insert("binding".into(), json!(h(&self.binding)));
        fields.insert("bundle".into(), json!(h(&self.bundle)));
        fields.insert("events".into(), json!(self.events));
        file.test(comment, flags, self.first_error, Value::Object(fields))
    }
}

/// Signatures SPEC.md §2.1's strict VERIFY must reject: `S + L`
/// (non-reduced scalar); a small-order `R` (the identity point) with
/// `S = k·a`, which satisfies the cofactorless equation and passes
/// ed25519-dalek's lenient `verify`; and an `R` whose encoding has y >= p.
fn weak_signatures(seed: &[u8; 32], message: &[u8]) -> Vec<(&'static str, [u8; 64])> {
    use curve25519_dalek::scalar::Scalar;
    use ed25519_dalek::{Signer, Verifier};
    use sha2::{Digest, Sha512};
    let sk = ed25519_dalek::SigningKey::from_bytes(seed);
    let good = sk.sign(message).to_bytes();
    // S + L, as a 256-bit little-endian integer (S < L < 2^253, so no overflow).
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut s_plus_l = good;
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s_plus_l[32 + i]) + u16::from(L[i]) + carry;
        s_plus_l[32 + i] = v as u8;
        carry = v >> 8;
    }
    let mut r = [0u8; 32];
    r[0] = 1; // the identity point: order 1
    let a = sk.verifying_key().to_bytes();
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let s = k * sk.to_scalar();
    let mut small_r = [0u8; 64];
    small_r[..32].copy_from_slice(&r);
    small_r[32..].copy_from_slice(s.as_bytes());
    // Both pass RFC 8032's lenient check and fail the strict one.
    let vk = sk.verifying_key();
    let sig = ed25519_dalek::Signature::from_bytes(&small_r);
    assert!(vk.verify(message, &sig).is_ok() && vk.verify_strict(message, &sig).is_err());
    // R encoded non-canonically (y = p + 3), with a genuine S for that R.
    let mut r_bad = [0xffu8; 32];
    r_bad[0] = 0xf0;
    r_bad[31] = 0x7f;
    let mut non_canonical_r = good;
    non_canonical_r[..32].copy_from_slice(&r_bad);
    vec![
        ("S + L (scalar not reduced)", s_plus_l),
        ("small-order R (identity), cofactorless-valid", small_r),
        ("R not canonically encoded (y = p + 3)", non_canonical_r),
    ]
}

fn flip(m: &[u8], i: usize, x: u8) -> Vec<u8> {
    let mut t = m.to_vec();
    t[i] ^= x;
    t
}

fn session_file() {
    let mut f = VectorFile::new("session");
    let mut tests = Vec::new();

    let mut t = Transcript::new(1, true, b"alice@example.org/1|bob@example.org/7");
    let m1 = t.encrypt("alice", b"first, with a one-time prekey");
    let m2 = t.encrypt("alice", b"second, still a prekey message");
    t.respond(&m1, OK);
    t.decrypt("bob", &m2, OK);
    let r1 = t.encrypt("bob", b"reply 1");
    let r2 = t.encrypt("bob", b"reply 2");
    t.decrypt("alice", &r1, OK);
    t.decrypt("alice", &r2, OK);
    let m3 = t.encrypt("alice", b"now a normal message");
    t.decrypt("bob", &m3, OK);
    tests.push(t.finish(&mut f, "in order, with a one-time prekey and binding bytes", &["InOrder", "OneTimePreKey"]));

    let mut t = Transcript::new(2, false, b"");
    t.establish();
    for i in 0..6u8 {
        let a = t.encrypt("alice", &[b'a', i]);
        t.decrypt("bob", &a, OK);
        let b = t.encrypt("bob", &[b'b', i]);
        t.decrypt("alice", &b, OK);
    }
    tests.push(t.finish(&mut f, "ping-pong: a DH ratchet step every message, no one-time prekey", &["PingPong"]));

    let mut t = Transcript::new(3, true, b"");
    t.establish();
    let ms: Vec<_> = (0..5u8).map(|i| t.encrypt("alice", &[i])).collect();
    for i in [3usize, 0, 4, 2, 1] {
        t.decrypt("bob", &ms[i], OK);
    }
    tests.push(t.finish(&mut f, "out of order within one chain", &["OutOfOrder"]));

    let mut t = Transcript::new(4, true, b"");
    t.establish();
    let old_skipped = t.encrypt("alice", b"chain A, 0: skipped over");
    let old_delivered = t.encrypt("alice", b"chain A, 1");
    let old_tail = t.encrypt("alice", b"chain A, 2: never skipped over");
    t.decrypt("bob", &old_delivered, OK);
    let r = t.encrypt("bob", b"bob's new chain");
    t.decrypt("alice", &r, OK);
    let new = t.encrypt("alice", b"chain B, 0");
    t.decrypt("bob", &new, OK);
    t.decrypt("bob", &old_tail, OK);
    t.decrypt("bob", &old_skipped, OK);
    tests.push(t.finish(
        &mut f,
        "old-chain messages after a DH ratchet step: a skipped key and a kept chain",
        &["OutOfOrder", "OldChain"],
    ));

    let mut t = Transcript::new(5, false, b"");
    t.establish();
    let ms: Vec<_> = (0..=MAX_SKIP).map(|i| t.encrypt("alice", &i.to_be_bytes())).collect();
    t.decrypt("bob", &ms[MAX_SKIP as usize], OK);
    t.decrypt("bob", &ms[0], OK);
    t.decrypt("bob", &ms[500], OK);
    tests.push(t.finish(&mut f, "skip exactly MAX_SKIP on a new chain: decrypts, skipped keys usable", &["SkipLimit"]));

    let mut t = Transcript::new(6, false, b"");
    t.establish();
    let ms: Vec<_> = (0..=MAX_SKIP + 1).map(|i| t.encrypt("alice", &i.to_be_bytes())).collect();
    t.decrypt("bob", &ms[(MAX_SKIP + 1) as usize], Err(ErrorCategory::SkipLimit));
    t.decrypt("bob", &ms[MAX_SKIP as usize], OK);
    t.decrypt("bob", &ms[(MAX_SKIP + 1) as usize], OK);
    tests.push(t.finish(&mut f, "skip MAX_SKIP + 1 on a new chain is rejected; state unchanged", &["SkipLimit"]));

    let mut t = Transcript::new(7, false, b"");
    t.establish();
    let first = t.encrypt("alice", b"chain start");
    t.decrypt("bob", &first, OK);
    let ms: Vec<_> = (0..=MAX_SKIP + 1).map(|i| t.encrypt("alice", &i.to_be_bytes())).collect();
    // Nr = 1 after `first`; ms[k] has N = k + 1.
    t.decrypt("bob", &ms[(MAX_SKIP + 1) as usize], Err(ErrorCategory::SkipLimit));
    t.decrypt("bob", &ms[MAX_SKIP as usize], OK);
    t.decrypt("bob", &ms[(MAX_SKIP + 1) as usize], OK);
    tests.push(t.finish(
        &mut f,
        "skip within a known chain: exactly MAX_SKIP ahead decrypts, one more is rejected",
        &["SkipLimit"],
    ));

    let mut t = Transcript::new(8, true, b"");
    t.establish();
    let a = t.encrypt("alice", b"once");
    let b = t.encrypt("alice", b"twice");
    t.decrypt("bob", &b, OK);
    t.decrypt("bob", &a, OK);
    t.decrypt("bob", &a, Err(ErrorCategory::Duplicate));
    t.decrypt("bob", &b, Err(ErrorCategory::Duplicate));
    let c = t.encrypt("alice", b"after the replays");
    t.decrypt("bob", &c, OK);
    tests.push(t.finish(
        &mut f,
        "duplicates of a chain message and of a skipped-key message are rejected",
        &["Duplicate"],
    ));

    let mut t = Transcript::new(9, true, b"");
    t.establish();
    let m = t.encrypt("alice", b"tamper target");
    t.decrypt("bob", &flip(&m, 0, 0x30), Err(ErrorCategory::UnknownVersion));
    t.decrypt("bob", &flip(&m, 0, 0x08), Err(ErrorCategory::Decode));
    t.decrypt("bob", &flip(&m, 5, 0x01), Err(ErrorCategory::Authentication));
    t.decrypt("bob", &flip(&m, 36, 0x01), Err(ErrorCategory::Authentication));
    t.decrypt("bob", &flip(&m, 40, 0x80), Err(ErrorCategory::Authentication));
    t.decrypt("bob", &flip(&m, m.len() - 1, 0x01), Err(ErrorCategory::Authentication));
    t.decrypt("bob", &m[..m.len() - 1], Err(ErrorCategory::Authentication));
    t.decrypt("bob", &m[..52], Err(ErrorCategory::Decode));
    let mut low = m.clone();
    low[1..33].copy_from_slice(&[0u8; 32]);
    t.decrypt("bob", &low, Err(ErrorCategory::NonContributory));
    let mut max = m.clone();
    max[33..37].copy_from_slice(&u32::MAX.to_be_bytes());
    t.decrypt("bob", &max, Err(ErrorCategory::CounterExhausted));
    t.decrypt("bob", &m, OK);
    tests.push(t.finish(
        &mut f,
        "tamper each field of a message: version, type, DHs, N, ciphertext, tag, length; then the genuine one",
        &["Tamper"],
    ));

    let mut t = Transcript::new(10, true, b"");
    let m = t.encrypt("alice", b"prekey tamper target");
    t.respond(&flip(&m, 0, 0x40), Err(ErrorCategory::UnknownVersion));
    let mut small = m.clone();
    small[1..33].copy_from_slice(&[0u8; 32]);
    t.respond(&small, Err(ErrorCategory::InvalidKey));
    t.respond(&flip(&m, 40, 0x01), Err(ErrorCategory::Authentication));
    let mut low = m.clone();
    low[33..65].copy_from_slice(&[0u8; 32]);
    t.respond(&low, Err(ErrorCategory::NonContributory));
    t.respond(&flip(&m, 68, 0x01), Err(ErrorCategory::UnknownPreKey));
    t.respond(&flip(&m, 73, 0x01), Err(ErrorCategory::UnknownPreKey));
    t.respond(&flip(&m, 69, 0x02), Err(ErrorCategory::Decode));
    t.respond(&flip(&m, m.len() - 1, 0x01), Err(ErrorCategory::Authentication));
    t.respond(&m, OK);
    // Bob has not replied: his copy of the signed prekey is already deleted,
    // so even a low-order new ratchet key fails as authentication, not
    // non-contributory.
    let mut low_inner = m[74..].to_vec();
    low_inner[1..33].copy_from_slice(&[0u8; 32]);
    t.decrypt("bob", &low_inner, Err(ErrorCategory::Authentication));
    t.respond(&m, Err(ErrorCategory::UnknownPreKey));
    t.decrypt("bob", &m, Err(ErrorCategory::Duplicate));
    t.decrypt("bob", &flip(&m, 40, 0x01), Err(ErrorCategory::StateMismatch));
    t.decrypt("bob", &flip(&m, 68, 0x01), Err(ErrorCategory::StateMismatch));
    t.decrypt("bob", &flip(&m, 73, 0x01), Err(ErrorCategory::StateMismatch));
    let mut other_ik = m.clone();
    other_ik[1..33].copy_from_slice(&t.parties.store.identity.public_key().to_bytes());
    t.decrypt("bob", &other_ik, Err(ErrorCategory::StateMismatch));
    t.decrypt("alice", &m, Err(ErrorCategory::StateMismatch));
    let m2 = t.encrypt("alice", b"second prekey message of the session");
    t.decrypt("bob", &m2, OK);
    tests.push(t.finish(
        &mut f,
        "tamper each field of a prekey message; the one-time prekey survives every rejection and is consumed by the genuine message",
        &["Tamper", "OneTimePreKey"],
    ));

    let mut t = Transcript::new(11, true, b"alice|bob");
    let m = t.encrypt("alice", b"bound");
    t.binding = b"alice|mallory".to_vec();
    t.respond(&m, Err(ErrorCategory::Authentication));
    t.binding = b"alice|bob".to_vec();
    t.respond(&m, OK);
    tests.push(t.finish(
        &mut f,
        "binding bytes that differ make the first message fail; the prekey is kept",
        &["Binding"],
    ));

    let mut t = Transcript::new(12, false, b"");
    let m = t.encrypt("alice", b"replayable");
    t.respond(&m, OK);
    let r1 = t.encrypt("bob", b"from the first session");
    t.respond(&m, OK);
    let r2 = t.encrypt("bob", b"from the replayed session");
    t.decrypt("alice", &r1, OK);
    t.decrypt("alice", &r2, Err(ErrorCategory::Authentication));
    tests.push(t.finish(
        &mut f,
        "a prekey message without one-time prekey replayed: the second session's reply uses a fresh ratchet key",
        &["Replay"],
    ));

    let mut t = Transcript::new(13, false, b"");
    t.establish();
    // Alice holds back the last message of each of her chains; after
    // MAX_RECEIVING_CHAINS newer chains Bob has deleted that chain.
    let mut held = Vec::new();
    let mut skipped_over = Vec::new();
    for round in 0..=MAX_RECEIVING_CHAINS {
        let s = t.encrypt("alice", format!("chain {round}: skipped over").as_bytes());
        let d = t.encrypt("alice", format!("chain {round}: delivered").as_bytes());
        held.push(t.encrypt("alice", format!("chain {round}: held back").as_bytes()));
        skipped_over.push(s);
        t.decrypt("bob", &d, OK);
        let r = t.encrypt("bob", b"reply");
        t.decrypt("alice", &r, OK);
    }
    let last = t.encrypt("alice", b"newest chain");
    t.decrypt("bob", &last, OK);
    // Bob has learnt 8 of Alice's chains (the first, held[0..6]'s, the newest)
    // and keeps the newest MAX_RECEIVING_CHAINS: held[2]'s chain is the oldest
    // kept, held[1]'s the newest deleted. Skipped keys outlive their chains.
    t.decrypt("bob", &held[1], Err(ErrorCategory::Authentication));
    t.decrypt("bob", &held[2], OK);
    t.decrypt("bob", &held[0], Err(ErrorCategory::Authentication));
    t.decrypt("bob", &skipped_over[0], OK);
    t.decrypt("bob", &skipped_over[1], OK);
    tests.push(t.finish(
        &mut f,
        "MAX_RECEIVING_CHAINS: a deleted chain's unskipped message fails, its skipped keys stay usable",
        &["ChainLimit"],
    ));

    let mut t = Transcript::new(14, false, b"");
    t.establish();
    let per = MAX_SKIP as usize;
    let mut first_round = Vec::new();
    for round in 0..MAX_SKIPPED_KEYS / per {
        let ms: Vec<_> = (0..=per).map(|i| t.encrypt("alice", &[round as u8, (i % 256) as u8])).collect();
        t.decrypt("bob", &ms[per], OK);
        if round == 0 {
            first_round = ms;
        }
    }
    // MAX_SKIPPED_KEYS stored; two more skipped keys evict the two oldest.
    let a = t.encrypt("alice", b"x");
    let b = t.encrypt("alice", b"y");
    let c = t.encrypt("alice", b"z");
    t.decrypt("bob", &c, OK);
    t.decrypt("bob", &first_round[0], Err(ErrorCategory::Duplicate));
    t.decrypt("bob", &first_round[1], Err(ErrorCategory::Duplicate));
    t.decrypt("bob", &first_round[2], OK);
    t.decrypt("bob", &a, OK);
    t.decrypt("bob", &b, OK);
    tests.push(t.finish(&mut f, "MAX_SKIPPED_KEYS: the oldest skipped keys are evicted first", &["SkippedKeyLimit"]));

    let mut t = Transcript::new(15, false, b"");
    t.establish();
    let m = t.encrypt("alice", b"low-order key, far ahead");
    let mut low_far = m.clone();
    low_far[1..33].copy_from_slice(&[0u8; 32]);
    low_far[33..37].copy_from_slice(&(MAX_SKIP + 1).to_be_bytes());
    t.decrypt("bob", &low_far, Err(ErrorCategory::SkipLimit));
    low_far[33..37].copy_from_slice(&MAX_SKIP.to_be_bytes());
    t.decrypt("bob", &low_far, Err(ErrorCategory::NonContributory));
    t.decrypt("bob", &m, OK);
    // Bob's sending is now pending and his DHs deleted: a new ratchet key
    // cannot be genuine and fails without any DH, low-order or not; but the
    // skip bound still comes first.
    let mut far = flip(&m, 5, 0x01);
    far[33..37].copy_from_slice(&(MAX_SKIP + 1).to_be_bytes());
    t.decrypt("bob", &far, Err(ErrorCategory::SkipLimit));
    let forged_new_chain = flip(&m, 5, 0x01);
    t.decrypt("bob", &forged_new_chain, Err(ErrorCategory::Authentication));
    let mut low = m.clone();
    low[1..33].copy_from_slice(&[0u8; 32]);
    t.decrypt("bob", &low, Err(ErrorCategory::Authentication));
    let next = t.encrypt("alice", b"same chain");
    t.decrypt("bob", &next, OK);
    tests.push(t.finish(
        &mut f,
        "the skip bound is checked before the DH of a new ratchet key; with DHs deleted a new ratchet key fails as authentication",
        &["SkipLimit", "DeletedRatchetKey"],
    ));

    let long = vec![0x62u8; MAX_BINDING_LEN];
    let mut t = Transcript::new(16, false, &long);
    let m = t.encrypt("alice", b"longest binding");
    t.binding = vec![0x62u8; MAX_BINDING_LEN + 1];
    t.respond(&m, Err(ErrorCategory::Decode));
    t.binding = long;
    t.respond(&m, OK);
    tests.push(t.finish(&mut f, "binding of exactly MAX_BINDING_LEN bytes works; one more is refused", &["Binding"]));

    f.group("transcript", "Scripted sessions between Alice (initiator) and Bob (responder)", tests);
    f.write();
}

// ------------------------------------------------------------ kdf

fn kdf_file() {
    let mut f = VectorFile::new("kdf");
    let mut rng = Recorder::new(20);
    let mut tests = Vec::new();
    for i in 0..4 {
        let rk = rng.bytes::<32>();
        let dh = rng.bytes::<32>();
        let (new_rk, ck) = hazmat::kdf_rk(&rk, &dh);
        tests.push(f.test(
            &format!("KDF_RK, random input {i}"),
            &[],
            None,
            json!({
                "rk": h(&rk), "dhOutput": h(&dh), "newRk": h(&new_rk), "chainKey": h(&ck),
            }),
        ));
    }
    f.group("kdf_rk", "KDF_RK (SPEC.md §5.2)", tests);

    let mut tests = Vec::new();
    for i in 0..2 {
        let ck0 = rng.bytes::<32>();
        let mut ck = ck0;
        let mut steps = Vec::new();
        for n in 0..=1000u32 {
            let (mk, next) = hazmat::kdf_ck(&ck);
            if [0, 1, 2, 15, 255, 256, 999, 1000].contains(&n) {
                steps.push(json!({ "index": n, "chainKey": h(&ck), "messageKey": h(&mk) }));
            }
            ck = next;
        }
        tests.push(f.test(
            &format!("KDF_CK chain {i} at sparse indices"),
            &[],
            None,
            json!({
                "chainKey": h(&ck0), "steps": steps,
            }),
        ));
    }
    f.group("kdf_ck", "KDF_CK (SPEC.md §5.3): chain key and message key at index n", tests);

    let mut tests = Vec::new();
    for i in 0..3 {
        let mk = rng.bytes::<32>();
        let (key, nonce) = hazmat::expand_message_key(&mk);
        tests.push(f.test(
            &format!("session message key {i}"),
            &[],
            None,
            json!({
                "label": "session", "messageKey": h(&mk), "key": h(&key), "nonce": h(&nonce),
            }),
        ));
        let (key, nonce) = hazmat::expand_group_message_key(&mk);
        tests.push(f.test(
            &format!("group message key {i}"),
            &[],
            None,
            json!({
                "label": "group", "messageKey": h(&mk), "key": h(&key), "nonce": h(&nonce),
            }),
        ));
    }
    f.group("message_key", "Message key expansion (SPEC.md §5.4, §7.3)", tests);

    let mut tests = Vec::new();
    for i in 0..3 {
        let seed = rng.bytes::<32>();
        let ik = IdentityKeyPair::from_seed(&seed);
        tests.push(f.test(
            &format!("identity key forms {i}"),
            &[],
            None,
            json!({
                "seed": h(&seed),
                "public": h(&ik.public_key().to_bytes()),
                "x25519Private": h(&hazmat::identity_x25519_secret(&ik)),
                "x25519Public": h(&hazmat::identity_public_x25519(&ik.public_key())),
            }),
        ));
    }
    f.group("identity", "Identity key and its X25519 form (SPEC.md §3.1)", tests);
    f.write();
}

// ------------------------------------------------------------ x3dh

fn x3dh_file() {
    let mut f = VectorFile::new("x3dh");
    let mut tests = Vec::new();
    for (seed, with_opk, binding) in
        [(30u8, true, &b""[..]), (31, false, &b""[..]), (32, true, &b"alice@a/1|bob@b/2"[..])]
    {
        let mut rng = Recorder::new(seed);
        let p = Parties::new(&mut rng, with_opk);
        rng.take();
        let bundle = p.bundle();
        let (ek_pub, tr) = hazmat::x3dh_initiate(&mut rng, &p.alice, &bundle, binding).unwrap();
        let randomness = rng.take();
        let opk = p.store.one_time.values().next();
        let tr_b =
            hazmat::x3dh_respond(&p.store.identity, &p.store.signed, opk, &p.alice.public_key(), &ek_pub, binding)
                .unwrap();
        assert_eq!(tr.sk, tr_b.sk);
        let mut fields = match p.json() {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        fields.extend(
            match json!({
                "binding": h(binding),
                "bundle": h(&bundle.to_bytes()),
                "signedPreKeyPublic": h(&p.store.signed.public_key()),
                "signedPreKeySignature": h(&p.store.signed.signature()),
                "randomness": randomness,
                "ephemeralPublic": h(&ek_pub),
                "dh": tr.dh.iter().map(|d| h(d)).collect::<Vec<_>>(),
                "sk": h(&tr.sk),
                "ad": h(&tr.ad),
                "adHash": h(&tr.ad_hash),
            }) {
                Value::Object(m) => m,
                _ => unreachable!(),
            },
        );
        let comment = match (with_opk, binding.is_empty()) {
            (true, true) => "with a one-time prekey (DH1..DH4)",
            (false, _) => "without a one-time prekey (DH1..DH3)",
            (true, false) => "with a one-time prekey and binding bytes",
        };
        tests.push(f.test(comment, &[], None, Value::Object(fields)));
    }
    f.group("x3dh_valid", "Initiator and responder agree; every intermediate", tests);

    // Invalid bundles for the initiator.
    let mut tests = Vec::new();
    let mut rng = Recorder::new(33);
    let p = Parties::new(&mut rng, true);
    rng.take();
    let good = p.bundle().to_bytes();
    let mallory = IdentityKeyPair::from_seed(&[0x4d; 32]);
    let low_orders: [(&str, [u8; 32]); 2] = [
        ("u = 0 (order 1)", [0u8; 32]),
        ("u = 1 (order 4)", {
            let mut u = [0u8; 32];
            u[0] = 1;
            u
        }),
    ];
    let mut cases: Vec<(String, Vec<u8>, ErrorCategory)> = vec![
        ("signature with one bit flipped".into(), flip(&good, 100, 0x01), ErrorCategory::BadSignature),
        ("signed prekey with one bit flipped".into(), flip(&good, 40, 0x01), ErrorCategory::BadSignature),
        ("signed prekey id changed".into(), flip(&good, 36, 0x01), ErrorCategory::BadSignature),
        (
            "signature by another identity".into(),
            {
                let mut b = good.clone();
                let sig = hazmat::sign_signed_prekey(&mallory, 1, &p.store.signed.public_key());
                b[69..133].copy_from_slice(&sig);
                b
            },
            ErrorCategory::BadSignature,
        ),
    ];
    for (name, sig) in weak_signatures(
        &p.bob_seed,
        &[labels::SIGNED_PREKEY_CONTEXT, &1u32.to_be_bytes()[..], &p.store.signed.public_key()].concat(),
    ) {
        let mut b = good.clone();
        b[69..133].copy_from_slice(&sig);
        cases.push((format!("signature a strict verifier must reject: {name}"), b, ErrorCategory::BadSignature));
    }
    for (name, low) in low_orders {
        let mut b = good.clone();
        b[37..69].copy_from_slice(&low);
        b[69..133].copy_from_slice(&hazmat::sign_signed_prekey(&p.store.identity, 1, &low));
        cases.push((format!("validly signed low-order signed prekey, {name}"), b, ErrorCategory::NonContributory));
        let mut b = good.clone();
        b[138..170].copy_from_slice(&low);
        cases.push((format!("low-order one-time prekey, {name}"), b, ErrorCategory::NonContributory));
    }
    for (comment, bundle_bytes, want) in cases {
        let bundle = PreKeyBundle::try_from(bundle_bytes.as_slice()).unwrap();
        let e = Session::initiate(&mut rng, &p.alice, &bundle, b"").unwrap_err().category();
        assert_eq!(e, want, "{comment}");
        let randomness = rng.take();
        tests.push(f.test(
            &comment,
            &["Initiator"],
            Some(e),
            json!({
                "aliceIdentitySeed": h(&p.alice_seed),
                "bundle": h(&bundle_bytes),
                "binding": "",
                "randomness": randomness,
            }),
        ));
    }
    f.group("x3dh_invalid_bundle", "Bundles the initiator must refuse (SPEC.md §4.2)", tests);
    f.write();
}

// ------------------------------------------------------------ wire

fn wire_file() {
    let mut f = VectorFile::new("wire");
    let mut valid = Vec::new();
    let mut invalid = Vec::new();
    let mut t = Transcript::new(40, true, b"");
    let bundle_opk = t.parties.bundle().to_bytes();
    let bundle_no = PreKeyBundle::new(t.parties.store.identity.public_key(), &t.parties.store.signed, None).to_bytes();
    let pre = t.encrypt("alice", b"wire");
    t.respond(&pre, OK);
    let normal = t.encrypt("bob", b"wire reply");
    let mut rng = Recorder::new(41);
    let mut sender = GroupSender::new(&mut rng, GroupId::new(b"wire group").unwrap(), t.parties.alice.public_key());
    let dist = sender.distribution().to_bytes().to_vec();
    let gm = sender.encrypt(b"group wire").unwrap().to_bytes();

    let Message::Normal(n) = Message::try_from(normal.as_slice()).unwrap() else { panic!() };
    valid.push(f.test(
        "message",
        &[],
        None,
        json!({
            "type": "message", "encoded": h(&normal),
            "fields": { "ratchetKey": h(&n.ratchet_key()), "counter": n.counter(), "ciphertext": h(&normal[37..]) },
        }),
    ));
    let Message::PreKey(p) = Message::try_from(pre.as_slice()).unwrap() else { panic!() };
    valid.push(f.test(
        "prekey message with one-time prekey",
        &[],
        None,
        json!({
            "type": "prekey_message", "encoded": h(&pre),
            "fields": {
                "identityKey": h(&p.identity_key().to_bytes()), "baseKey": h(&p.base_key()),
                "signedPreKeyId": p.signed_prekey_id().0, "oneTimePreKeyId": p.one_time_prekey_id().map(|i| i.0),
                "message": h(&p.message().to_bytes()),
            },
        }),
    ));
    for (comment, b) in
        [("prekey bundle with one-time prekey", &bundle_opk), ("prekey bundle without one-time prekey", &bundle_no)]
    {
        let bundle = PreKeyBundle::try_from(b.as_slice()).unwrap();
        valid.push(f.test(
            comment,
            &[],
            None,
            json!({
                "type": "prekey_bundle", "encoded": h(b),
                "fields": {
                    "identityKey": h(&bundle.identity_key().to_bytes()), "signedPreKeyId": bundle.signed_prekey_id().0,
                    "signedPreKey": h(&b[37..69]), "signature": h(&b[69..133]),
                    "oneTimePreKeyId": bundle.one_time_prekey_id().map(|i| i.0),
                    "oneTimePreKey": if b.len() == 170 { json!(h(&b[138..170])) } else { Value::Null },
                },
            }),
        ));
    }
    let d = SenderKeyDistribution::try_from(dist.as_slice()).unwrap();
    let l = d.group_id().as_bytes().len();
    valid.push(f.test(
        "sender key distribution",
        &[],
        None,
        json!({
            "type": "sender_key_distribution", "encoded": h(&dist),
            "fields": {
                "groupId": h(d.group_id().as_bytes()), "keyId": d.key_id(), "iteration": d.iteration(),
                "chainKey": h(&dist[10 + l..42 + l]), "signingKey": h(&dist[42 + l..74 + l]),
            },
        }),
    ));
    let g = GroupMessage::try_from(gm.as_slice()).unwrap();
    valid.push(f.test(
        "group message",
        &[],
        None,
        json!({
            "type": "group_message", "encoded": h(&gm),
            "fields": {
                "keyId": g.key_id(), "iteration": g.iteration(),
                "ciphertext": h(&gm[9..gm.len() - 64]), "signature": h(&gm[gm.len() - 64..]),
            },
        }),
    ));
    f.group("decode_valid", "Well-formed encodings with their fields; re-encoding gives the same bytes", valid);

    let decode = |ty: &str, b: &[u8]| -> Result<(), DecodeError> {
        match ty {
            "message" => NormalMessage::try_from(b).map(|_| ()),
            "prekey_message" => PreKeyMessage::try_from(b).map(|_| ()),
            "prekey_bundle" => PreKeyBundle::try_from(b).map(|_| ()),
            "sender_key_distribution" => SenderKeyDistribution::try_from(b).map(|_| ()),
            "group_message" => GroupMessage::try_from(b).map(|_| ()),
            _ => unreachable!(),
        }
    };
    let mut bad: Vec<(&str, String, Vec<u8>)> = Vec::new();
    for (ty, b) in [
        ("message", &normal),
        ("prekey_message", &pre),
        ("prekey_bundle", &bundle_opk),
        ("sender_key_distribution", &dist),
        ("group_message", &gm),
    ] {
        bad.push((ty, "empty".into(), Vec::new()));
        bad.push((ty, "unknown version 2".into(), flip(b, 0, 0x30)));
        bad.push((ty, "version 0".into(), flip(b, 0, 0x10)));
        bad.push((ty, "wrong type nibble".into(), flip(b, 0, 0x0f)));
        bad.push((ty, "first byte only".into(), b[..1].to_vec()));
    }
    bad.push(("message", "ciphertext shorter than a tag".into(), normal[..52].to_vec()));
    bad.push(("message", "header cut in the counter".into(), normal[..35].to_vec()));
    bad.push(("prekey_message", "truncated in the base key".into(), pre[..50].to_vec()));
    bad.push(("prekey_message", "one-time prekey flag 2".into(), flip(&pre, 69, 0x02)));
    bad.push((
        "prekey_message",
        "embedded message too short".into(),
        pre[..pre.len() - (pre.len() - 74 - 52)].to_vec(),
    ));
    bad.push(("prekey_message", "identity key of small order".into(), {
        let mut b = pre.clone();
        b[1..33].copy_from_slice(&[0u8; 32]);
        b
    }));
    // y = p + 3: decompresses (mod p) to a valid point of large order.
    let mut y_p3 = [0xffu8; 32];
    y_p3[0] = 0xf0;
    y_p3[31] = 0x7f;
    bad.push(("prekey_message", "identity key not canonical (y = p + 3, a large-order point mod p)".into(), {
        let mut b = pre.clone();
        b[1..33].copy_from_slice(&y_p3);
        b
    }));
    bad.push(("sender_key_distribution", "signing key not canonical (y = p + 3)".into(), {
        let mut b = dist.clone();
        let n = b.len();
        b[n - 32..].copy_from_slice(&y_p3);
        b
    }));
    bad.push(("prekey_bundle", "identity key not canonical (y = p + 3)".into(), {
        let mut b = bundle_opk.clone();
        b[1..33].copy_from_slice(&y_p3);
        b
    }));
    bad.push(("prekey_message", "identity key not canonical (y = p)".into(), {
        let mut b = pre.clone();
        let mut y = [0xffu8; 32];
        y[0] = 0xed;
        y[31] = 0x7f;
        b[1..33].copy_from_slice(&y);
        b
    }));
    bad.push(("prekey_bundle", "trailing byte".into(), [bundle_opk.clone(), vec![0]].concat()));
    bad.push(("prekey_bundle", "flag 1 without one-time prekey".into(), {
        let mut b = bundle_no.clone();
        b[133] = 1;
        b
    }));
    bad.push(("prekey_bundle", "flag 0 with one-time prekey".into(), {
        let mut b = bundle_opk.clone();
        b[133] = 0;
        b
    }));
    bad.push(("prekey_bundle", "truncated signature".into(), bundle_opk[..100].to_vec()));
    bad.push(("sender_key_distribution", "trailing byte".into(), [dist.clone(), vec![0]].concat()));
    bad.push(("sender_key_distribution", "group id length 0".into(), {
        let mut b = dist.clone();
        b[1] = 0;
        b
    }));
    bad.push(("sender_key_distribution", "group id length 65".into(), {
        let mut b = vec![0x14, 65];
        b.extend_from_slice(&[7u8; 65]);
        b.extend_from_slice(&dist[2 + l..]);
        b
    }));
    bad.push(("sender_key_distribution", "signing key of small order".into(), {
        let mut b = dist.clone();
        let n = b.len();
        b[n - 32..].copy_from_slice(&[0u8; 32]);
        b
    }));
    bad.push(("group_message", "shorter than header + tag + signature".into(), gm[..88].to_vec()));
    for (ty, comment, b) in bad {
        let e = decode(ty, &b).expect_err(&comment).category();
        invalid.push(f.test(&format!("{ty}: {comment}"), &[], Some(e), json!({ "type": ty, "encoded": h(&b) })));
    }
    f.group("decode_invalid", "Malformed encodings every decoder must reject", invalid);
    f.write();
}

// ------------------------------------------------------------ sender keys

struct GroupScript {
    rng: Recorder,
    group: GroupId,
    members: BTreeMap<&'static str, ([u8; 32], IdentityKey)>,
    senders: BTreeMap<&'static str, GroupSender>,
    /// (receiver, sender) -> state
    receivers: BTreeMap<(&'static str, &'static str), GroupReceiver>,
    /// The signing seed each sender drew last (from its listed randomness).
    signing_seeds: BTreeMap<&'static str, [u8; 32]>,
    events: Vec<Value>,
    first_error: Option<ErrorCategory>,
}

impl GroupScript {
    fn new(seed: u8, group: &[u8], names: &[&'static str]) -> Self {
        let mut rng = Recorder::new(seed);
        let members = names
            .iter()
            .map(|n| {
                let s = rng.bytes::<32>();
                (*n, (s, IdentityKeyPair::from_seed(&s).public_key()))
            })
            .collect();
        rng.take();
        Self {
            rng,
            group: GroupId::new(group).unwrap(),
            members,
            senders: BTreeMap::new(),
            receivers: BTreeMap::new(),
            signing_seeds: BTreeMap::new(),
            events: Vec::new(),
            first_error: None,
        }
    }

    fn create(&mut self, who: &'static str) -> Vec<u8> {
        self.rng.take();
        let s = GroupSender::new(&mut self.rng, self.group.clone(), self.members[who].1);
        let randomness = self.rng.take();
        self.signing_seeds.insert(who, hex::decode(&randomness[1]).unwrap().try_into().unwrap());
        let d = s.distribution().to_bytes().to_vec();
        self.senders.insert(who, s);
        self.events.push(json!({ "event": "create", "party": who, "randomness": randomness, "distribution": h(&d) }));
        d
    }

    fn rotate(&mut self, who: &'static str) -> Vec<u8> {
        self.rng.take();
        let mut rng = std::mem::replace(&mut self.rng, Recorder::new(0));
        let d = self.senders.get_mut(who).unwrap().rotate(&mut rng).to_bytes().to_vec();
        self.rng = rng;
        let randomness = self.rng.take();
        self.signing_seeds.insert(who, hex::decode(&randomness[1]).unwrap().try_into().unwrap());
        self.events.push(json!({ "event": "rotate", "party": who, "randomness": randomness, "distribution": h(&d) }));
        d
    }

    fn distribution(&mut self, who: &'static str) -> Vec<u8> {
        let d = self.senders[who].distribution().to_bytes().to_vec();
        self.events.push(json!({ "event": "distribution", "party": who, "distribution": h(&d) }));
        d
    }

    fn join(&mut self, receiver: &'static str, sender: &'static str, d: &[u8]) {
        let dist = SenderKeyDistribution::try_from(d).unwrap();
        let r = GroupReceiver::new(self.members[sender].1, &dist);
        self.receivers.insert((receiver, sender), r);
        self.events.push(json!({ "event": "join", "party": receiver, "sender": sender, "distribution": h(d) }));
    }

    fn add(&mut self, receiver: &'static str, sender: &'static str, d: &[u8], expect: Expect) {
        self.add_from(receiver, sender, sender, d, expect);
    }

    /// `from`: whose pairwise session the distribution arrived on.
    fn add_from(&mut self, receiver: &'static str, sender: &'static str, from: &'static str, d: &[u8], expect: Expect) {
        let from_id = self.members[from].1;
        let receiver_state = self.receivers.get_mut(&(receiver, sender)).unwrap();
        let r = SenderKeyDistribution::try_from(d)
            .map_err(|e| e.category())
            .and_then(|dist| receiver_state.add_distribution(from_id, &dist).map_err(|e| e.category()));
        assert_eq!(r, expect);
        let mut ev = json!({
            "event": "add_distribution", "party": receiver, "sender": sender, "from": from, "distribution": h(d),
        });
        self.mark(&mut ev, r.map(|()| None));
        self.events.push(ev);
    }

    fn mark(&mut self, ev: &mut Value, r: Result<Option<Vec<u8>>, ErrorCategory>) {
        match r {
            Ok(pt) => {
                ev["result"] = json!("valid");
                if let Some(pt) = pt {
                    ev["plaintext"] = json!(h(&pt));
                }
            }
            Err(e) => {
                ev["result"] = json!("invalid");
                ev["error"] = json!(e.name());
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn encrypt(&mut self, who: &'static str, pt: &[u8]) -> Vec<u8> {
        let m = self.senders.get_mut(who).unwrap().encrypt(pt).unwrap().to_bytes();
        self.events.push(json!({ "event": "encrypt", "party": who, "plaintext": h(pt), "message": h(&m) }));
        m
    }

    fn decrypt(&mut self, receiver: &'static str, sender: &'static str, m: &[u8], expect: Expect) {
        let r = self.receivers.get_mut(&(receiver, sender)).unwrap().decrypt_bytes(m).map_err(|e| e.category());
        assert_eq!(r.as_ref().map(|_| ()).map_err(|e| *e), expect, "generator expectation");
        let mut ev = json!({ "event": "decrypt", "party": receiver, "sender": sender, "message": h(m) });
        self.mark(&mut ev, r.map(Some));
        self.events.push(ev);
    }

    fn forget(&mut self, receiver: &'static str, sender: &'static str, below: u32, expect: Expect) {
        let r = self.receivers.get_mut(&(receiver, sender)).unwrap().forget_below(below).map_err(|e| e.category());
        assert_eq!(r, expect);
        let mut ev = json!({ "event": "forget_below", "party": receiver, "sender": sender, "iteration": below });
        self.mark(&mut ev, r.map(|()| None));
        self.events.push(ev);
    }

    /// Re-signs `body` (a group message without signature) as `who`, with
    /// the given signature or a genuine one.
    fn signature_input(&self, who: &'static str, body: &[u8]) -> Vec<u8> {
        let mut m = labels::GROUP_SIGNATURE_CONTEXT.to_vec();
        m.push(self.group.as_bytes().len() as u8);
        m.extend_from_slice(self.group.as_bytes());
        m.extend_from_slice(&self.members[who].1.to_bytes());
        m.extend_from_slice(body);
        m
    }

    fn sign(&self, who: &'static str, body: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer;
        let sk = ed25519_dalek::SigningKey::from_bytes(&self.signing_seeds[who]);
        [body, &sk.sign(&self.signature_input(who, body)).to_bytes()[..]].concat()
    }

    fn finish(self, f: &mut VectorFile, comment: &str, flags: &[&str]) -> Value {
        let members: serde_json::Map<String, Value> = self
            .members
            .iter()
            .map(|(n, (s, ik))| (n.to_string(), json!({ "identitySeed": h(s), "identityKey": h(&ik.to_bytes()) })))
            .collect();
        f.test(
            comment,
            flags,
            self.first_error,
            json!({
                "groupId": h(self.group.as_bytes()),
                "members": members,
                "events": self.events,
            }),
        )
    }
}

fn sender_keys_file() {
    let mut f = VectorFile::new("sender_keys");
    let mut tests = Vec::new();

    let mut g = GroupScript::new(50, b"family", &["alice", "bob", "carol"]);
    let da = g.create("alice");
    let dc = g.create("carol");
    g.join("bob", "alice", &da);
    g.join("bob", "carol", &dc);
    let a0 = g.encrypt("alice", b"alice 0");
    let c0 = g.encrypt("carol", b"carol 0");
    let a1 = g.encrypt("alice", b"alice 1");
    let a2 = g.encrypt("alice", b"alice 2");
    let c1 = g.encrypt("carol", b"carol 1");
    g.decrypt("bob", "carol", &c1, OK);
    g.decrypt("bob", "alice", &a0, OK);
    g.decrypt("bob", "alice", &a2, OK);
    g.decrypt("bob", "carol", &c0, OK);
    g.decrypt("bob", "alice", &a1, OK);
    tests.push(g.finish(&mut f, "two senders interleaved, out of order", &["MultiSender", "OutOfOrder"]));

    let mut g = GroupScript::new(51, b"book club", &["alice", "bob", "carol"]);
    let da = g.create("alice");
    g.join("bob", "alice", &da);
    g.join("carol", "alice", &da);
    let before = g.encrypt("alice", b"before carol leaves");
    g.decrypt("carol", "alice", &before, OK);
    let d2 = g.rotate("alice");
    g.add("bob", "alice", &d2, OK);
    let after = g.encrypt("alice", b"after carol left");
    g.decrypt("bob", "alice", &after, OK);
    g.decrypt("bob", "alice", &before, OK);
    g.decrypt("carol", "alice", &after, Err(ErrorCategory::StateMismatch));
    g.add("bob", "alice", &d2, OK);
    let mut other_group = d2.clone();
    other_group[2..11].copy_from_slice(b"book clue");
    g.add("bob", "alice", &other_group, Err(ErrorCategory::StateMismatch));
    g.add_from("bob", "alice", "carol", &d2, Err(ErrorCategory::StateMismatch));
    g.add_from("bob", "alice", "carol", &[&d2[..], &[0u8][..]].concat(), Err(ErrorCategory::Decode));
    let mut other_key = d2.clone();
    let n = other_key.len();
    other_key[n - 32..].copy_from_slice(&g.members["carol"].1.to_bytes());
    g.add("bob", "alice", &other_key, Err(ErrorCategory::StateMismatch));
    let fine = g.encrypt("alice", b"still fine");
    g.decrypt("bob", "alice", &fine, OK);
    tests.push(g.finish(
        &mut f,
        "rotation after a member leaves: remaining member reads old and new, removed member is locked out",
        &["Rotation"],
    ));

    let mut g = GroupScript::new(52, b"g", &["alice", "bob", "dave"]);
    let da = g.create("alice");
    g.join("bob", "alice", &da);
    let early = g.encrypt("alice", b"before dave joined");
    g.decrypt("bob", "alice", &early, OK);
    let late = g.distribution("alice");
    g.join("dave", "alice", &late);
    g.decrypt("dave", "alice", &early, Err(ErrorCategory::Duplicate));
    let m = g.encrypt("alice", b"welcome dave");
    g.decrypt("dave", "alice", &m, OK);
    tests.push(g.finish(&mut f, "late joiner cannot read messages before its distribution's iteration", &["LateJoin"]));

    let mut g = GroupScript::new(53, b"g", &["alice", "bob", "mallory"]);
    let da = g.create("alice");
    let dm = g.create("mallory");
    g.join("bob", "alice", &da);
    g.join("bob", "mallory", &dm);
    let real = g.encrypt("alice", b"real");
    let fake = g.encrypt("mallory", b"fake");
    let mut t = real.clone();
    let n = t.len();
    t[n - 64..].copy_from_slice(&fake[fake.len() - 64..]);
    g.decrypt("bob", "alice", &t, Err(ErrorCategory::Authentication));
    let mut forged = fake.clone();
    forged[1..5].copy_from_slice(&real[1..5]);
    forged[5..9].copy_from_slice(&real[5..9]);
    g.decrypt("bob", "alice", &forged, Err(ErrorCategory::Authentication));
    g.decrypt("bob", "mallory", &real, Err(ErrorCategory::StateMismatch));
    g.decrypt("bob", "alice", &real, OK);
    g.decrypt("bob", "alice", &real, Err(ErrorCategory::Duplicate));
    g.decrypt("bob", "alice", &t, Err(ErrorCategory::Authentication));
    g.decrypt("bob", "mallory", &fake, OK);
    let next = g.encrypt("alice", b"signed strictly");
    let body = &next[..next.len() - 64];
    for (_, sig) in weak_signatures(&g.signing_seeds["alice"], &g.signature_input("alice", body)) {
        g.decrypt("bob", "alice", &[body, &sig[..]].concat(), Err(ErrorCategory::Authentication));
    }
    let mut last = body.to_vec();
    last[5..9].copy_from_slice(&u32::MAX.to_be_bytes());
    let last = g.sign("alice", &last);
    g.decrypt("bob", "alice", &last, Err(ErrorCategory::CounterExhausted));
    g.decrypt("bob", "alice", &next, OK);
    tests.push(g.finish(
        &mut f,
        "signature by another member's key, forgeries under Alice's key id, signatures a strict verifier must reject, iteration 0xFFFFFFFF, a replay",
        &["BadSignature", "Replay"],
    ));

    let mut g = GroupScript::new(54, b"g", &["alice", "bob"]);
    let da = g.create("alice");
    g.join("bob", "alice", &da);
    let ms: Vec<_> = (0..=MAX_GROUP_SKIP + 1).map(|i| g.encrypt("alice", &i.to_be_bytes())).collect();
    g.decrypt("bob", "alice", &ms[(MAX_GROUP_SKIP + 1) as usize], Err(ErrorCategory::SkipLimit));
    g.decrypt("bob", "alice", &ms[MAX_GROUP_SKIP as usize], OK);
    g.decrypt("bob", "alice", &ms[0], OK);
    g.decrypt("bob", "alice", &ms[(MAX_GROUP_SKIP + 1) as usize], OK);
    tests.push(g.finish(&mut f, "skip exactly MAX_GROUP_SKIP decrypts, one more is rejected", &["SkipLimit"]));

    let mut g = GroupScript::new(55, b"g", &["alice", "bob"]);
    let da = g.create("alice");
    g.join("bob", "alice", &da);
    let ms: Vec<_> = (0..6u8).map(|i| g.encrypt("alice", &[i])).collect();
    g.decrypt("bob", "alice", &ms[5], OK);
    g.forget("bob", "alice", 3, OK);
    g.decrypt("bob", "alice", &ms[1], Err(ErrorCategory::Duplicate));
    g.decrypt("bob", "alice", &ms[3], OK);
    g.forget("bob", "alice", 6 + MAX_GROUP_SKIP + 1, Err(ErrorCategory::SkipLimit));
    g.decrypt("bob", "alice", &ms[4], OK);
    tests.push(g.finish(&mut f, "forget keys below an iteration", &["Forget"]));

    let mut g = GroupScript::new(56, b"tamper", &["alice", "bob"]);
    let da = g.create("alice");
    g.join("bob", "alice", &da);
    let m = g.encrypt("alice", b"tamper target");
    let n = m.len();
    g.decrypt("bob", "alice", &flip(&m, 0, 0x30), Err(ErrorCategory::UnknownVersion));
    g.decrypt("bob", "alice", &flip(&m, 2, 0x01), Err(ErrorCategory::StateMismatch));
    g.decrypt("bob", "alice", &flip(&m, 8, 0x01), Err(ErrorCategory::Authentication));
    g.decrypt("bob", "alice", &flip(&m, 10, 0x01), Err(ErrorCategory::Authentication));
    g.decrypt("bob", "alice", &flip(&m, n - 70, 0x01), Err(ErrorCategory::Authentication));
    g.decrypt("bob", "alice", &flip(&m, n - 1, 0x01), Err(ErrorCategory::Authentication));
    g.decrypt("bob", "alice", &m[..88], Err(ErrorCategory::Decode));
    g.decrypt("bob", "alice", &m, OK);
    tests.push(g.finish(
        &mut f,
        "tamper each field: version, key id, iteration, ciphertext, tag, signature, length",
        &["Tamper"],
    ));

    let mut g = GroupScript::new(57, b"g", &["alice", "bob"]);
    let da = g.create("alice");
    g.join("bob", "alice", &da);
    let mut per_key = vec![g.encrypt("alice", b"key 0")];
    for i in 1..=MAX_SENDER_KEY_STATES {
        let d = g.rotate("alice");
        g.add("bob", "alice", &d, OK);
        per_key.push(g.encrypt("alice", format!("key {i}").as_bytes()));
    }
    g.decrypt("bob", "alice", &per_key[0], Err(ErrorCategory::StateMismatch));
    for m in &per_key[1..] {
        g.decrypt("bob", "alice", m, OK);
    }
    tests.push(g.finish(&mut f, "a receiver keeps only the newest MAX_SENDER_KEY_STATES key ids", &["Rotation"]));

    let mut g = GroupScript::new(58, b"g", &["alice", "bob"]);
    let da = g.create("alice");
    g.join("bob", "alice", &da);
    let per = MAX_GROUP_SKIP as usize;
    let ms: Vec<_> = (0..=per).map(|i| g.encrypt("alice", &(i as u32).to_be_bytes())).collect();
    g.decrypt("bob", "alice", &ms[per], OK);
    let x = g.encrypt("alice", b"x");
    let y = g.encrypt("alice", b"y");
    g.decrypt("bob", "alice", &y, OK);
    g.decrypt("bob", "alice", &ms[0], Err(ErrorCategory::Duplicate));
    g.decrypt("bob", "alice", &ms[1], OK);
    g.decrypt("bob", "alice", &x, OK);
    tests.push(g.finish(
        &mut f,
        "MAX_GROUP_SKIPPED_KEYS: the oldest skipped key is evicted first",
        &["SkippedKeyLimit"],
    ));

    let mut g = GroupScript::new(59, b"g", &["alice", "bob"]);
    let da = g.create("alice");
    g.join("bob", "alice", &da);
    let m0 = g.encrypt("alice", b"k0");
    let d1 = g.rotate("alice");
    g.add("bob", "alice", &d1, OK);
    let ms: Vec<_> = (0..3u8).map(|i| g.encrypt("alice", &[i])).collect();
    g.decrypt("bob", "alice", &ms[2], OK);
    // Forgetting below 2 in every state: key 0's chain is at 0 and its
    // message 0 is lost; key 1 loses its skipped keys 0 and 1.
    g.forget("bob", "alice", 2, OK);
    g.decrypt("bob", "alice", &m0, Err(ErrorCategory::Duplicate));
    g.decrypt("bob", "alice", &ms[1], Err(ErrorCategory::Duplicate));
    let m1 = g.encrypt("alice", b"k1 after forgetting");
    g.decrypt("bob", "alice", &m1, OK);
    tests.push(g.finish(&mut f, "forget below applies to every sender key state held", &["Forget"]));

    f.group("transcript", "Scripted group conversations", tests);
    f.write();
}

// ------------------------------------------------------------ persistence

fn persistence_file() {
    let mut f = VectorFile::new("persistence");
    let mut tests = Vec::new();

    // A responder with skipped keys and two receiving chains, and an initiator
    // whose prekey header is still pending.
    let mut t = Transcript::new(60, true, b"persist");
    let m0 = t.encrypt("alice", b"0");
    let m1 = t.encrypt("alice", b"1");
    let m2 = t.encrypt("alice", b"2");
    let pending_alice = t.alice.to_bytes().to_vec();
    t.respond(&m2, OK);
    let bob_state = t.bob.as_ref().unwrap().to_bytes().to_vec();
    let mut rng = Recorder::new(61);
    let reply = t.bob.as_mut().unwrap().encrypt(&mut rng, b"reply").unwrap().to_bytes();
    let reply_randomness = rng.take();
    let next = t.alice.encrypt(&mut rng, b"3").unwrap().to_bytes();
    let next_randomness = rng.take();
    let restored = Session::from_bytes(&pending_alice).unwrap();
    assert_eq!(*restored.to_bytes(), pending_alice);
    tests.push(f.test(
        "responder with two skipped keys; restore, then decrypt the skipped messages and send",
        &["Session"],
        None,
        json!({
            "kind": "session",
            "state": h(&bob_state),
            "events": [
                { "event": "decrypt", "message": h(&m0), "result": "valid", "plaintext": h(b"0") },
                { "event": "decrypt", "message": h(&m1), "result": "valid", "plaintext": h(b"1") },
                { "event": "decrypt", "message": h(&m1), "result": "invalid", "error": "duplicate" },
                { "event": "encrypt", "plaintext": h(b"reply"), "randomness": reply_randomness, "message": h(&reply) },
            ],
        }),
    ));
    let _ = next_randomness;
    let mut rng = Recorder::new(62);
    let mut a = Session::from_bytes(&pending_alice).unwrap();
    let again = a.encrypt(&mut rng, b"resent").unwrap().to_bytes();
    tests.push(f.test(
        "initiator before any reply: still sends prekey messages after restore",
        &["Session"],
        None,
        json!({
            "kind": "session",
            "state": h(&pending_alice),
            "events": [
                { "event": "encrypt", "plaintext": h(b"resent"), "randomness": rng.take(), "message": h(&again) },
                { "event": "decrypt", "message": h(&reply), "result": "valid", "plaintext": h(b"reply") },
            ],
        }),
    ));
    let _ = next;

    let mut rng = Recorder::new(63);
    let id = IdentityKeyPair::from_seed(&[0x11; 32]).public_key();
    let mut s = GroupSender::new(&mut rng, GroupId::new(b"saved group").unwrap(), id);
    rng.take();
    let d = s.distribution();
    let mut r = GroupReceiver::new(id, &d);
    let g0 = s.encrypt(b"g0").unwrap().to_bytes();
    let g1 = s.encrypt(b"g1").unwrap().to_bytes();
    let sender_state = s.to_bytes().to_vec();
    r.decrypt_bytes(&g1).unwrap();
    let receiver_state = r.to_bytes().to_vec();
    let g2 = s.encrypt(b"g2").unwrap().to_bytes();
    tests.push(f.test(
        "group sender: restore and continue the chain",
        &["GroupSender"],
        None,
        json!({
            "kind": "group_sender",
            "state": h(&sender_state),
            "events": [ { "event": "encrypt", "plaintext": h(b"g2"), "message": h(&g2) } ],
        }),
    ));
    tests.push(f.test(
        "group receiver with a skipped key: restore and decrypt",
        &["GroupReceiver"],
        None,
        json!({
            "kind": "group_receiver",
            "state": h(&receiver_state),
            "events": [
                { "event": "decrypt", "message": h(&g0), "result": "valid", "plaintext": h(b"g0") },
                { "event": "decrypt", "message": h(&g2), "result": "valid", "plaintext": h(b"g2") },
                { "event": "decrypt", "message": h(&g1), "result": "invalid", "error": "duplicate" },
            ],
        }),
    ));

    // Counters at their end: a sending chain at 0xFFFFFFFE sends once more.
    let mut near_end = t.alice.to_bytes().to_vec();
    // RK at 140, sending flag at 172, DHs.priv, CKs, then Ns.
    let ns_at = 1 + 1 + 4 * 32 + 1 + 4 + 1 + 4 + 32 + 1 + 32 + 32;
    assert_eq!(near_end[ns_at - 65], 1, "sending chain active");
    near_end[ns_at..ns_at + 4].copy_from_slice(&(u32::MAX - 1).to_be_bytes());
    let mut s = Session::from_bytes(&near_end).unwrap();
    let mut rng = Recorder::new(65);
    let last_msg = s.encrypt(&mut rng, b"last").unwrap().to_bytes();
    assert_eq!(rng.take().len(), 0);
    assert_eq!(s.encrypt(&mut rng, b"one more").unwrap_err().category(), ErrorCategory::CounterExhausted);
    tests.push(f.test("session whose sending chain is at 0xFFFFFFFE: one more message, then counter-exhausted", &["Session", "Counter"], None, json!({
        "kind": "session",
        "state": h(&near_end),
        "events": [
            { "event": "encrypt", "plaintext": h(b"last"), "randomness": [], "message": h(&last_msg) },
            { "event": "encrypt", "plaintext": h(b"one more"), "randomness": [], "result": "invalid", "error": "counter-exhausted" },
        ],
    })));
    let gid_len = b"saved group".len();
    let it_at = 2 + 1 + gid_len + 32 + 4 + 32;
    let mut sender_end = sender_state.clone();
    sender_end[it_at..it_at + 4].copy_from_slice(&(u32::MAX - 1).to_be_bytes());
    let mut se = GroupSender::from_bytes(&sender_end).unwrap();
    let g_last = se.encrypt(b"last").unwrap().to_bytes();
    assert_eq!(se.encrypt(b"one more").unwrap_err().category(), ErrorCategory::CounterExhausted);
    tests.push(f.test(
        "group sender at iteration 0xFFFFFFFE: one more message, then counter-exhausted",
        &["GroupSender", "Counter"],
        None,
        json!({
            "kind": "group_sender",
            "state": h(&sender_end),
            "events": [
                { "event": "encrypt", "plaintext": h(b"last"), "message": h(&g_last) },
                { "event": "encrypt", "plaintext": h(b"one more"), "result": "invalid", "error": "counter-exhausted" },
            ],
        }),
    ));

    let mut invalid: Vec<(&str, String, Vec<u8>)> = vec![
        ("session", "truncated".into(), bob_state[..bob_state.len() - 1].to_vec()),
        ("session", "trailing byte".into(), [bob_state.clone(), vec![0]].concat()),
        ("session", "unknown format revision".into(), flip(&bob_state, 1, 0x02)),
        ("session", "unknown version".into(), flip(&bob_state, 0, 0x30)),
        ("group_sender", "truncated".into(), sender_state[..sender_state.len() - 1].to_vec()),
        ("group_receiver", "trailing byte".into(), [receiver_state.clone(), vec![0]].concat()),
    ];
    // Receiving-chain count over the bound: 6 copies of the one chain.
    let chains_at = 1 + 1 + 4 * 32 + 1 + 4 + 1 + 4 + 32 + 1;
    assert_eq!(bob_state[chains_at], 1);
    let chain = bob_state[chains_at + 1..chains_at + 1 + 68].to_vec();
    let mut six = bob_state[..chains_at].to_vec();
    six.push(MAX_RECEIVING_CHAINS as u8 + 1);
    for _ in 0..=MAX_RECEIVING_CHAINS {
        six.extend_from_slice(&chain);
    }
    six.extend_from_slice(&bob_state[chains_at + 1 + 68..]);
    invalid.push(("session", "receiving-chain count MAX_RECEIVING_CHAINS + 1".into(), six));
    let mut pending_no_chain = bob_state[..chains_at].to_vec();
    pending_no_chain.extend_from_slice(&[0, 0, 0]);
    invalid.push(("session", "pending sending chain without a receiving chain".into(), pending_no_chain));
    let states_at = 2 + 1 + gid_len + 32;
    assert_eq!(receiver_state[states_at], 1);
    let mut zero = receiver_state[..states_at].to_vec();
    zero.push(0);
    invalid.push(("group_receiver", "no sender key state".into(), zero));
    let state = receiver_state[states_at + 1..].to_vec();
    let mut many = receiver_state[..states_at].to_vec();
    many.push(MAX_SENDER_KEY_STATES as u8 + 1);
    for _ in 0..=MAX_SENDER_KEY_STATES {
        many.extend_from_slice(&state);
    }
    invalid.push(("group_receiver", "sender key state count MAX_SENDER_KEY_STATES + 1".into(), many));
    // Skipped-key count over the bound.
    let mut over = bob_state.clone();
    let n = over.len();
    let count_at = n - 2 - 2 * 68;
    over[count_at..count_at + 2].copy_from_slice(&((MAX_SKIPPED_KEYS + 1) as u16).to_be_bytes());
    invalid.push(("session", "skipped-key count MAX_SKIPPED_KEYS + 1".into(), over));
    for (kind, comment, bytes) in invalid {
        let e = match kind {
            "session" => Session::from_bytes(&bytes).err(),
            "group_sender" => GroupSender::from_bytes(&bytes).err(),
            _ => GroupReceiver::from_bytes(&bytes).err(),
        }
        .unwrap()
        .category();
        tests.push(f.test(
            &format!("{kind}: {comment}"),
            &["Malformed"],
            Some(e),
            json!({ "kind": kind, "state": h(&bytes), "events": [] }),
        ));
    }
    f.group("saved_state", "Saved states every later version must still read (SPEC.md §11)", tests);

    let mut tests = Vec::new();
    let mut rng = Recorder::new(64);
    let key = rng.bytes::<32>();
    rng.take();
    let sealed = t.alice.seal(&mut rng, &key);
    let randomness = rng.take();
    let state = t.alice.to_bytes().to_vec();
    tests.push(f.test(
        "sealed session",
        &[],
        None,
        json!({
            "storageKey": h(&key), "randomness": randomness, "state": h(&state), "sealed": h(&sealed),
        }),
    ));
    let mut wrong = key;
    wrong[0] ^= 1;
    tests.push(f.test(
        "wrong storage key",
        &[],
        Some(ErrorCategory::Authentication),
        json!({
            "storageKey": h(&wrong), "sealed": h(&sealed),
        }),
    ));
    for (i, what) in [(0usize, "version"), (5, "nonce"), (20, "ciphertext"), (sealed.len() - 1, "tag")] {
        let t2 = flip(&sealed, i, if i == 0 { 0x30 } else { 0x01 });
        let e = Session::unseal(&key, &t2).unwrap_err().category();
        tests.push(f.test(
            &format!("tampered {what}"),
            &[],
            Some(e),
            json!({ "storageKey": h(&key), "sealed": h(&t2) }),
        ));
    }
    f.group("sealed_state", "States sealed under a storage key (SPEC.md §11.4)", tests);
    f.write();
}

fn main() {
    kdf_file();
    x3dh_file();
    wire_file();
    session_file();
    sender_keys_file();
    persistence_file();
}
