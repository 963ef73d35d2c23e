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

#[path = "support/salamander.rs"]
mod salamander;

#[path = "support/conversations.rs"]
mod conversations;

#[path = "support/pqxdh.rs"]
mod pqxdh;

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

/// Serves the given bytes, for a draw the generator chooses (a reused key).
struct Fixed(Vec<u8>);

impl TryRng for Fixed {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        unreachable!("the crate draws bytes")
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        unreachable!("the crate draws bytes")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let n = dst.len();
        dst.copy_from_slice(&self.0[..n]);
        self.0.drain(..n);
        Ok(())
    }
}

impl TryCryptoRng for Fixed {}

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
        self.write_as(2, labels::SUITE);
    }

    /// The version-2 file: written for SPEC.md revision 3, suite `SUITE_PQ`.
    fn write_pq(self) {
        self.write_as(3, labels::SUITE_PQ);
    }

    fn write_as(self, revision: u32, suite: &str) {
        let doc = json!({
            "schema": format!("sottovoce-{}-v1", self.name),
            "specRevision": revision,
            "suite": suite,
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
    /// A copy of the one-time prekey as first published (for SK listings).
    one_time_initial: Option<OneTimePreKey>,
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
    fn kem_prekey(&self, _: PreKeyId) -> Option<&KemPreKey> {
        None
    }
    fn base_key_used(&self, _: PreKeyId, _: &[u8; 32]) -> bool {
        false
    }
    fn used_base_key_count(&self, _: PreKeyId) -> usize {
        0
    }
    fn consume_kem_prekey(&mut self, _: PreKeyId, _: &[u8; 32]) {}
    fn requires_pq(&self) -> bool {
        false
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
        let one_time_initial = opk_secret.map(|s| OneTimePreKey::from_secret_bytes(PreKeyId(2), &s));
        Self {
            alice_seed,
            alice,
            bob_seed,
            spk_secret,
            opk_secret,
            store: VectorStore { identity, signed, one_time, one_time_initial },
        }
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

// ------------------------------------------------------------ saved-session codec

#[path = "../tests/support/saved.rs"]
mod saved;
use saved::Saved;

// ------------------------------------------------------------ session transcripts

type Expect = Result<(), ErrorCategory>;
const OK: Expect = Ok(());

struct Transcript {
    rng: Recorder,
    parties: Parties,
    binding: Vec<u8>,
    initial_binding: Vec<u8>,
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
        Self {
            rng,
            parties,
            binding: binding.to_vec(),
            initial_binding: binding.to_vec(),
            bundle,
            alice,
            bob: None,
            events,
            first_error: None,
        }
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

    /// A copy of `party`'s session whose next sending chain announces `pn`
    /// (SPEC.md §11.2 layout): a peer that holds the keys but lies in the
    /// header. Its messages are genuine AEADs under a header no honest peer
    /// sends; they are listed as crafted `decrypt` inputs.
    fn liar(&mut self, party: &str, pn: u32) -> Session {
        let mut saved = Saved::parse(&self.session(party).to_bytes());
        saved.pn = pn;
        Session::from_bytes(&saved.encode()).unwrap()
    }

    /// A copy of `party`'s session, to play an attacker who learned its keys.
    fn copy(&mut self, party: &str) -> Session {
        Session::from_bytes(&self.session(party).to_bytes()).unwrap()
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
        // SK and H_AD of Alice's session, from the responder's side of X3DH.
        let store = &self.parties.store;
        let opk = store.one_time_initial.as_ref();
        let x3dh = hazmat::x3dh_respond(
            &store.identity,
            &store.signed,
            opk,
            None,
            &self.parties.alice.public_key(),
            &self.alice.session_id().0,
            &self.initial_binding,
        )
        .unwrap();
        fields.insert("binding".into(), json!(h(&self.binding)));
        fields.insert("bundle".into(), json!(h(&self.bundle)));
        fields.insert("sk".into(), json!(h(&x3dh.sk)));
        fields.insert("adHash".into(), json!(h(&x3dh.ad_hash)));
        fields.insert("events".into(), json!(self.events));
        file.test(comment, flags, self.first_error, Value::Object(fields))
    }
}

/// Signatures SPEC.md §2.4's VERIFY must reject, one per rule: `S + L`
/// (non-reduced scalar); a small-order `R` (the identity point) with
/// `S = k·a`, which satisfies the cofactorless equation and passes
/// ed25519-dalek's lenient `verify`; an `R` with a torsion component that
/// only the cofactored equation accepts; and a non-canonical `R`.
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
    // R = rB + T with T of order 8 and S = r + k·a: the cofactored equation
    // holds, the cofactorless one does not (rule 4).
    let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest([seed.as_slice(), b"torsion R"].concat()).into());
    let big_r =
        curve25519_dalek::constants::ED25519_BASEPOINT_POINT * r + curve25519_dalek::constants::EIGHT_TORSION[1];
    let r_bytes = big_r.compress().to_bytes();
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(a);
    h.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let s = r + k * sk.to_scalar();
    let mut torsion_r = [0u8; 64];
    torsion_r[..32].copy_from_slice(&r_bytes);
    torsion_r[32..].copy_from_slice(s.as_bytes());
    {
        // The cofactored equation [8][S]B = [8]R + [8][k]A holds.
        let lhs = (curve25519_dalek::constants::ED25519_BASEPOINT_POINT * s).mul_by_cofactor();
        let rhs = (big_r + vk.to_edwards() * k).mul_by_cofactor();
        assert_eq!(lhs, rhs);
        assert!(vk.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&torsion_r)).is_err());
    }
    // R = the identity encoded non-canonically (y = p + 1), S = k·a over
    // those bytes: the equation holds after reducing y; rules 2 and 3 both
    // reject it, and no constructible vector pins rule 2 alone (SPEC.md
    // §2.4).
    let mut r_nc = [0xffu8; 32];
    r_nc[0] = 0xee;
    r_nc[31] = 0x7f;
    let mut h = Sha512::new();
    h.update(r_nc);
    h.update(a);
    h.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let s = k * sk.to_scalar();
    let mut non_canonical_r = [0u8; 64];
    non_canonical_r[..32].copy_from_slice(&r_nc);
    non_canonical_r[32..].copy_from_slice(s.as_bytes());
    vec![
        ("S + L (scalar not reduced): rule 1", s_plus_l),
        ("small-order R (the identity) with S = k·a, cofactorless-valid: rule 3", small_r),
        ("R with a torsion component (order 8), cofactored-valid, cofactorless-invalid: rule 4", torsion_r),
        (
            "R the identity encoded with y = p + 1, S = k·a: rules 2 and 3 reject it (rule 2 alone is not pinnable, SPEC.md §2.4)",
            non_canonical_r,
        ),
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
    let new = t.encrypt("alice", b"chain B, 0 (PN = 3)");
    t.decrypt("bob", &new, OK);
    t.decrypt("bob", &old_tail, OK);
    t.decrypt("bob", &old_skipped, OK);
    t.decrypt("bob", &old_tail, Err(ErrorCategory::Duplicate));
    t.decrypt("bob", &old_delivered, Err(ErrorCategory::Duplicate));
    tests.push(t.finish(
        &mut f,
        "a new chain closes the old one at PN: its message skipped over and its tail (stored when chain B's PN = 3 closed it) decrypt once; replays of the closed chain are duplicates",
        &["OutOfOrder", "ClosedChain"],
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
        "skip within the open chain: exactly MAX_SKIP ahead decrypts, one more is rejected",
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
    t.decrypt("bob", &flip(&m, 0, 0x20), Err(ErrorCategory::UnknownVersion));
    t.decrypt("bob", &flip(&m, 0, 0x08), Err(ErrorCategory::Decode));
    // Version nibble 3 and a type nibble no session message has: the
    // version is checked first.
    t.decrypt("bob", &flip(&m, 0, 0x2e), Err(ErrorCategory::UnknownVersion));
    t.decrypt("bob", &flip(&m, 5, 0x01), Err(ErrorCategory::Authentication));
    t.decrypt("bob", &flip(&m, 36, 0x01), Err(ErrorCategory::Authentication));
    t.decrypt("bob", &flip(&m, 40, 0x01), Err(ErrorCategory::Authentication));
    t.decrypt("bob", &flip(&m, 44, 0x80), Err(ErrorCategory::Authentication));
    t.decrypt("bob", &flip(&m, m.len() - 1, 0x01), Err(ErrorCategory::Authentication));
    t.decrypt("bob", &m[..m.len() - 1], Err(ErrorCategory::Authentication));
    t.decrypt("bob", &m[..56], Err(ErrorCategory::Decode));
    let mut low = m.clone();
    low[1..33].copy_from_slice(&[0u8; 32]);
    t.decrypt("bob", &low, Err(ErrorCategory::NonContributory));
    let mut max = m.clone();
    max[37..41].copy_from_slice(&u32::MAX.to_be_bytes());
    t.decrypt("bob", &max, Err(ErrorCategory::CounterExhausted));
    t.decrypt("bob", &m, OK);
    tests.push(t.finish(
        &mut f,
        "tamper each field of a message: version (before type), type, DHs, PN, N, ciphertext, tag, length; a low-order DHs; N = 0xFFFFFFFF; then the genuine one",
        &["Tamper"],
    ));

    let mut t = Transcript::new(10, true, b"");
    let m = t.encrypt("alice", b"prekey tamper target");
    t.respond(&flip(&m, 0, 0x40), Err(ErrorCategory::UnknownVersion));
    let mut small = m.clone();
    small[1..33].copy_from_slice(&[0u8; 32]);
    t.respond(&small, Err(ErrorCategory::InvalidKey));
    let mut torsion = m.clone();
    torsion[1..33].copy_from_slice(&with_torsion(&t.parties.alice.public_key().to_bytes(), 4));
    t.respond(&torsion, Err(ErrorCategory::InvalidKey));
    t.respond(&flip(&m, 40, 0x01), Err(ErrorCategory::Authentication));
    let mut low = m.clone();
    low[33..65].copy_from_slice(&[0u8; 32]);
    t.respond(&low, Err(ErrorCategory::NonContributory));
    t.respond(&flip(&m, 68, 0x01), Err(ErrorCategory::UnknownPreKey));
    t.respond(&flip(&m, 73, 0x01), Err(ErrorCategory::UnknownPreKey));
    t.respond(&flip(&m, 69, 0x02), Err(ErrorCategory::Decode));
    // The embedded message's first byte is decoded like a message's.
    t.respond(&flip(&m, 74, 0x20), Err(ErrorCategory::UnknownVersion));
    t.respond(&flip(&m, 74, 0x03), Err(ErrorCategory::Decode));
    t.respond(&flip(&m, m.len() - 1, 0x01), Err(ErrorCategory::Authentication));
    t.respond(&m, OK);
    // Bob has not replied: his copy of the signed prekey is already deleted,
    // so a new ratchet key (here of low order, with a plausible PN = 1) fails
    // as authentication, not non-contributory: no DH is computed.
    let mut low_inner = m[74..].to_vec();
    low_inner[1..33].copy_from_slice(&[0u8; 32]);
    low_inner[33..37].copy_from_slice(&1u32.to_be_bytes());
    t.decrypt("bob", &low_inner, Err(ErrorCategory::Authentication));
    // Routed by session id (SPEC.md §4.5): the first message again is a
    // duplicate, never a new session.
    t.decrypt("bob", &m, Err(ErrorCategory::Duplicate));
    t.decrypt("bob", &flip(&m, 40, 0x01), Err(ErrorCategory::StateMismatch));
    t.decrypt("bob", &flip(&m, 68, 0x01), Err(ErrorCategory::StateMismatch));
    // The prekey ids are checked before the embedded message's counter.
    let mut wrong_spk_max = flip(&m, 68, 0x01);
    wrong_spk_max[74 + 37..74 + 41].copy_from_slice(&u32::MAX.to_be_bytes());
    t.decrypt("bob", &wrong_spk_max, Err(ErrorCategory::StateMismatch));
    t.decrypt("bob", &flip(&m, 73, 0x01), Err(ErrorCategory::StateMismatch));
    // A prekey message with another EK_A names no session of Bob's, so it is
    // routed to X3DH (SPEC.md §4.5): its one-time prekey is gone.
    t.respond(&flip(&m, 40, 0x01), Err(ErrorCategory::UnknownPreKey));
    let mut other_ik = m.clone();
    other_ik[1..33].copy_from_slice(&t.parties.store.identity.public_key().to_bytes());
    t.decrypt("bob", &other_ik, Err(ErrorCategory::StateMismatch));
    t.decrypt("alice", &m, Err(ErrorCategory::StateMismatch));
    let m2 = t.encrypt("alice", b"second prekey message of the session");
    t.decrypt("bob", &m2, OK);
    tests.push(t.finish(
        &mut f,
        "tamper each field of a prekey message; the one-time prekey survives every rejection and is consumed by the genuine message; later prekey messages of the session go to it",
        &["Tamper", "OneTimePreKey", "Routing"],
    ));

    let mut t = Transcript::new(11, true, b"alice|bob");
    let m = t.encrypt("alice", b"bound");
    t.binding = b"alice|mallory".to_vec();
    t.respond(&m, Err(ErrorCategory::Authentication));
    // The binding bound is checked before the prekey lookup.
    t.binding = vec![0x62u8; MAX_BINDING_LEN + 1];
    t.respond(&flip(&m, 68, 0x01), Err(ErrorCategory::Decode));
    t.binding = b"alice|bob".to_vec();
    t.respond(&m, OK);
    tests.push(t.finish(
        &mut f,
        "binding bytes that differ make the first message fail; an oversized binding is refused before the prekey lookup; the prekey is kept",
        &["Binding"],
    ));

    let mut t = Transcript::new(12, false, b"");
    let m = t.encrypt("alice", b"replayable");
    let m2 = t.encrypt("alice", b"second");
    t.respond(&m, OK);
    let r1 = t.encrypt("bob", b"from the one session");
    t.decrypt("bob", &m, Err(ErrorCategory::Duplicate));
    t.decrypt("bob", &m2, OK);
    t.decrypt("bob", &m2, Err(ErrorCategory::Duplicate));
    t.decrypt("alice", &r1, OK);
    let m3 = t.encrypt("alice", b"normal now");
    t.decrypt("bob", &m3, OK);
    tests.push(t.finish(
        &mut f,
        "a prekey message without one-time prekey replayed to the responder goes to its session (SPEC.md §4.5): duplicate, not a new session",
        &["Replay", "Routing"],
    ));

    let mut t = Transcript::new(13, false, b"");
    t.establish();
    // Each round Alice's chain has three messages: one skipped over, one
    // delivered, one held back (never skipped over inside its chain). Bob's
    // reply makes Alice's next chain announce PN = 3, which closes the chain
    // and stores the held-back message's key.
    let rounds = MAX_CLOSED_CHAINS + 1;
    let mut held = Vec::new();
    let mut skipped_over = Vec::new();
    let mut attacker = None;
    for round in 0..rounds {
        let s = t.encrypt("alice", format!("chain {round}: skipped over").as_bytes());
        let d = t.encrypt("alice", format!("chain {round}: delivered").as_bytes());
        held.push(t.encrypt("alice", format!("chain {round}: held back").as_bytes()));
        skipped_over.push(s);
        if round == rounds - 1 {
            // An attacker who learned this chain's key.
            attacker = Some(t.copy("alice"));
        }
        t.decrypt("bob", &d, OK);
        let r = t.encrypt("bob", b"reply");
        t.decrypt("alice", &r, OK);
    }
    let last = t.encrypt("alice", b"newest chain");
    t.decrypt("bob", &last, OK);
    // Every held-back and skipped-over message decrypts, however old.
    for m in held.iter().chain(&skipped_over) {
        t.decrypt("bob", m, OK);
    }
    // Bob closed rounds + 1 chains of Alice's (her first one included) and
    // remembers the newest MAX_CLOSED_CHAINS: a replay of round 0's chain is
    // no longer recognised; of round 1's it is a duplicate.
    t.decrypt("bob", &held[0], Err(ErrorCategory::Authentication));
    t.decrypt("bob", &held[1], Err(ErrorCategory::Duplicate));
    // The attacker's next message on the newest closed chain is N = 3 = PN:
    // refused, though it authenticates under the chain key it learned.
    let mut attacker = attacker.unwrap();
    let mut scratch = Recorder::new(0xA7);
    let forged = attacker.encrypt(&mut scratch, b"injected after the chain closed").unwrap().to_bytes();
    t.decrypt("bob", &forged, Err(ErrorCategory::Authentication));
    let forged2 = attacker.encrypt(&mut scratch, b"and another").unwrap().to_bytes();
    t.decrypt("bob", &forged2, Err(ErrorCategory::Authentication));
    let next = t.encrypt("bob", b"still talking");
    t.decrypt("alice", &next, OK);
    tests.push(t.finish(
        &mut f,
        "closed chains: every late message below PN decrypts after many ratchet steps; a replay is a duplicate while its chain is among the newest MAX_CLOSED_CHAINS closed ones; nothing at or past PN on a closed chain is accepted, even with its chain key",
        &["ClosedChain", "ChainLimit"],
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
    // Bob's open chain is Alice's first (Nr = 1); his sending chain is
    // active, so DHs exists. m opens Alice's second chain with PN = 1.
    let m = t.encrypt("alice", b"low-order key, far ahead");
    let with = |m: &[u8], dhs: Option<[u8; 32]>, pn: Option<u32>, n: Option<u32>| {
        let mut b = m.to_vec();
        if let Some(k) = dhs {
            b[1..33].copy_from_slice(&k);
        }
        if let Some(pn) = pn {
            b[33..37].copy_from_slice(&pn.to_be_bytes());
        }
        if let Some(n) = n {
            b[37..41].copy_from_slice(&n.to_be_bytes());
        }
        b
    };
    let zero = Some([0u8; 32]);
    t.decrypt("bob", &with(&m, zero, None, Some(MAX_SKIP + 1)), Err(ErrorCategory::SkipLimit));
    t.decrypt("bob", &with(&m, zero, Some(0), Some(MAX_SKIP + 1)), Err(ErrorCategory::SkipLimit));
    // With an open chain, no PN is refused before the DH: a PN below Nr or
    // far past it only matters once a message authenticates.
    t.decrypt("bob", &with(&m, zero, Some(0), None), Err(ErrorCategory::NonContributory));
    t.decrypt("bob", &with(&m, zero, Some(1 + MAX_SKIP + 1), None), Err(ErrorCategory::NonContributory));
    t.decrypt("bob", &with(&m, zero, Some(MAX_SKIP), Some(MAX_SKIP)), Err(ErrorCategory::NonContributory));
    t.decrypt("bob", &m, OK);
    // Bob's sending is now pending and his DHs deleted: a new ratchet key
    // cannot be genuine and fails without any DH, low-order or not; but the
    // skip bounds still come first.
    let other = Some(flip(&m, 5, 0x01)[1..33].try_into().unwrap());
    t.decrypt("bob", &with(&m, other, None, Some(MAX_SKIP + 1)), Err(ErrorCategory::SkipLimit));
    t.decrypt("bob", &with(&m, other, Some(1 + MAX_SKIP + 1), None), Err(ErrorCategory::Authentication));
    t.decrypt("bob", &with(&m, other, None, None), Err(ErrorCategory::Authentication));
    t.decrypt("bob", &with(&m, zero, None, None), Err(ErrorCategory::Authentication));
    let next = t.encrypt("alice", b"same chain");
    t.decrypt("bob", &next, OK);
    tests.push(t.finish(
        &mut f,
        "the order of a new ratchet key's checks: the N bound before the DH, no PN check while a chain is open; with DHs deleted a new ratchet key fails as authentication without a DH",
        &["SkipLimit", "DeletedRatchetKey", "PreviousCounter"],
    ));

    let long = vec![0x62u8; MAX_BINDING_LEN];
    let mut t = Transcript::new(16, false, &long);
    let m = t.encrypt("alice", b"longest binding");
    t.binding = vec![0x62u8; MAX_BINDING_LEN + 1];
    t.respond(&m, Err(ErrorCategory::Decode));
    t.binding = long;
    t.respond(&m, OK);
    tests.push(t.finish(&mut f, "binding of exactly MAX_BINDING_LEN bytes works; one more is refused", &["Binding"]));

    let mut t = Transcript::new(17, false, b"");
    t.establish();
    // An older chain A2 with a key Bob still holds at N = 1 (past the PN that
    // will close the next chain): healing must leave other chains alone.
    let a2: Vec<_> = (0..3u8).map(|i| t.encrypt("alice", &[b'2', i])).collect();
    t.decrypt("bob", &a2[2], OK);
    let r = t.encrypt("bob", b"reply 1");
    t.decrypt("alice", &r, OK);
    let m = t.encrypt("alice", b"A3 0");
    t.decrypt("bob", &m, OK);
    // An attacker who learned chain A3's key (a copy of Alice's state) forges
    // a message MAX_SKIP ahead on it: Bob accepts it, as anyone would.
    let mut attacker = t.copy("alice");
    let mut scratch = Recorder::new(0xB7);
    let forged: Vec<_> =
        (0..=MAX_SKIP).map(|_| attacker.encrypt(&mut scratch, b"forged").unwrap().to_bytes()).collect();
    t.decrypt("bob", &forged[MAX_SKIP as usize], OK);
    let r = t.encrypt("bob", b"reply 2");
    t.decrypt("alice", &r, OK);
    // Alice's next chain says A3 had 1 message (PN = 1 < Nr): Bob closes it
    // there and deletes the keys the forgery left behind, from N = 1 on.
    let next = t.encrypt("alice", b"A4 0, PN = 1");
    t.decrypt("bob", &next, OK);
    t.decrypt("bob", &forged[0], Err(ErrorCategory::Authentication));
    t.decrypt("bob", &forged[1], Err(ErrorCategory::Authentication));
    t.decrypt("bob", &forged[500], Err(ErrorCategory::Authentication));
    // A2's keys are untouched.
    t.decrypt("bob", &a2[1], OK);
    t.decrypt("bob", &a2[0], OK);
    let more = t.encrypt("alice", b"A4 1");
    t.decrypt("bob", &more, OK);
    tests.push(t.finish(
        &mut f,
        "healing after a leaked chain key: a PN below Nr closes the chain at its real length and deletes that chain's skipped keys from PN on (another chain's stay); the session goes on",
        &["PreviousCounter", "ClosedChain"],
    ));

    let mut t = Transcript::new(18, false, b"");
    t.establish();
    let m = t.encrypt("alice", b"A2 0");
    t.decrypt("bob", &m, OK);
    let lost: Vec<_> = (0..MAX_SKIP + 5).map(|i| t.encrypt("alice", &i.to_be_bytes())).collect();
    let r = t.encrypt("bob", b"reply");
    t.decrypt("alice", &r, OK);
    // PN = 1 + MAX_SKIP + 5: Bob stores the keys for Nr .. Nr + MAX_SKIP - 1
    // only; the rest of the chain is lost, not the session.
    let next = t.encrypt("alice", b"A3 0");
    t.decrypt("bob", &next, OK);
    t.decrypt("bob", &lost[0], OK);
    t.decrypt("bob", &lost[MAX_SKIP as usize - 1], OK);
    t.decrypt("bob", &lost[MAX_SKIP as usize], Err(ErrorCategory::Duplicate));
    t.decrypt("bob", &lost[MAX_SKIP as usize + 4], Err(ErrorCategory::Duplicate));
    let r = t.encrypt("bob", b"still talking");
    t.decrypt("alice", &r, OK);
    tests.push(t.finish(
        &mut f,
        "a chain that lost more than MAX_SKIP messages: closing it stores MAX_SKIP keys and the later numbers are duplicates; the session goes on",
        &["PreviousCounter", "SkipLimit"],
    ));

    let mut t = Transcript::new(19, true, b"");
    let m = t.encrypt("alice", b"PN 0");
    // The liar copies Alice after her message 0, so its message 1 uses a key
    // Alice never uses.
    let mut scratch = Recorder::new(0xB9);
    let lying_first = match t.liar("alice", 1).encrypt(&mut scratch, b"PN 1 on a first chain").unwrap() {
        Message::PreKey(p) => p.to_bytes(),
        Message::Normal(_) => unreachable!(),
    };
    t.respond(&lying_first, Err(ErrorCategory::Authentication));
    // The N bound comes before the PN rule.
    let mut lying_far = lying_first.clone();
    lying_far[74 + 37..74 + 41].copy_from_slice(&(MAX_SKIP + 1).to_be_bytes());
    t.respond(&lying_far, Err(ErrorCategory::SkipLimit));
    t.respond(&m, OK);
    tests.push(t.finish(
        &mut f,
        "a first chain (no open receiving chain) must announce PN = 0; the one-time prekey survives the rejection",
        &["PreviousCounter", "OneTimePreKey"],
    ));

    let mut t = Transcript::new(20, true, b"");
    let m = t.encrypt("alice", b"hello");
    t.respond(&m, OK);
    let reply = t.encrypt("bob", b"reply, wrapped by an attacker");
    // A prekey header naming Bob (Alice's peer) as initiator, with Alice's
    // session id and prekey ids, around Bob's genuine reply: every field an
    // existing session checks matches, but Alice's session is the initiator's.
    let mut crafted = m[..74].to_vec();
    crafted[1..33].copy_from_slice(&t.parties.store.identity.public_key().to_bytes());
    crafted.extend_from_slice(&reply);
    t.decrypt("alice", &crafted, Err(ErrorCategory::StateMismatch));
    // The role is checked before the embedded message's counter.
    let mut crafted_max = crafted.clone();
    crafted_max[74 + 37..74 + 41].copy_from_slice(&u32::MAX.to_be_bytes());
    t.decrypt("alice", &crafted_max, Err(ErrorCategory::StateMismatch));
    t.decrypt("alice", &reply, OK);
    tests.push(t.finish(
        &mut f,
        "an initiator's session rejects every prekey message, even one naming its peer, its session id and prekey ids around a genuine reply",
        &["Role"],
    ));

    let mut t = Transcript::new(21, false, b"");
    t.establish();
    let skipped = t.encrypt("alice", b"A2 0: skipped over, its key stays stored");
    // The ratchet key A2 that Alice drew for this chain.
    let a2_priv: [u8; 32] =
        hex::decode(t.events.last().unwrap()["randomness"][0].as_str().unwrap()).unwrap().try_into().unwrap();
    let d = t.encrypt("alice", b"A2 1");
    t.decrypt("bob", &d, OK);
    for _ in 0..=MAX_CLOSED_CHAINS {
        let r = t.encrypt("bob", b"b");
        t.decrypt("alice", &r, OK);
        let m = t.encrypt("alice", b"a");
        t.decrypt("bob", &m, OK);
    }
    let r = t.encrypt("bob", b"b");
    t.decrypt("alice", &r, OK);
    // A2's closed record is forgotten, its skipped key is not. A peer that
    // starts a "new" chain with the old ratchet key A2 (here a copy of
    // Alice's state drawing A2's private key again) is refused before any DH,
    // though its AEAD would authenticate.
    let mut liar = t.copy("alice");
    let mut again = Fixed(a2_priv.to_vec());
    let _n0 = liar.encrypt(&mut again, b"reused ratchet key, N = 0").unwrap();
    let n1 = liar.encrypt(&mut again, b"reused ratchet key, N = 1").unwrap().to_bytes();
    t.decrypt("bob", &n1, Err(ErrorCategory::Authentication));
    // The reused-key rule (step 4) comes before the N bound of step 5.
    let mut n1_far = n1.clone();
    n1_far[37..41].copy_from_slice(&(MAX_SKIP + 1).to_be_bytes());
    t.decrypt("bob", &n1_far, Err(ErrorCategory::Authentication));
    t.decrypt("bob", &skipped, OK);
    let m = t.encrypt("alice", b"the real next chain");
    t.decrypt("bob", &m, OK);
    tests.push(t.finish(
        &mut f,
        "a new chain under the ratchet key of a forgotten closed chain that still has a stored key is refused (no honest peer reuses a ratchet key)",
        &["ClosedChain", "ReusedRatchetKey"],
    ));

    f.group("transcript", "Scripted sessions between Alice (initiator) and Bob (responder)", tests);
    f.write();
}

/// `key` (an acceptable Ed25519 public key) plus a torsion point of the
/// given order (2, 4 or 8): decodes, is not of small order, but is outside
/// the prime-order subgroup (SPEC.md §2.4).
fn with_torsion(key: &[u8; 32], order: u8) -> [u8; 32] {
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let a = CompressedEdwardsY(*key).decompress().unwrap();
    // EIGHT_TORSION[k] has order 8 / gcd(k, 8).
    let t = match order {
        2 => EIGHT_TORSION[4],
        4 => EIGHT_TORSION[2],
        _ => EIGHT_TORSION[1],
    };
    (a + t).compress().to_bytes()
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
            &format!("group message key {i}, with its key commitment"),
            &[],
            None,
            json!({
                "label": "group", "messageKey": h(&mk), "key": h(&key), "nonce": h(&nonce),
                "commitment": h(&hazmat::group_commitment(&mk)),
            }),
        ));
    }
    f.group("message_key", "Message key expansion and the group key commitment (SPEC.md §5.4, §7.3)", tests);

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
    let mut tests = Vec::new();
    let ids: [(&[u8], &[u8]); 4] = [
        (b"alice@example.org", b"bob@example.org"),
        (b"+14155550100", b"+14155550123"),
        (b"", b"carol"),
        (&[0x61; 255], &[0x62; 255]),
    ];
    for (i, (id_a, id_b)) in ids.iter().enumerate() {
        let ik_a = IdentityKeyPair::from_seed(&rng.bytes::<32>()).public_key();
        let ik_b = IdentityKeyPair::from_seed(&rng.bytes::<32>()).public_key();
        let n = SafetyNumber::new((&ik_a, id_a), (&ik_b, id_b)).unwrap();
        let other = SafetyNumber::new((&ik_b, id_b), (&ik_a, id_a)).unwrap();
        assert_eq!(n.digits(), other.digits());
        assert!(other.matches_scanned(&n.scannable()));
        tests.push(f.test(
            &format!("safety number {i}"),
            &[],
            None,
            json!({
                "identityKeyA": h(&ik_a.to_bytes()), "userIdA": h(id_a),
                "identityKeyB": h(&ik_b.to_bytes()), "userIdB": h(id_b),
                "digits": n.digits(), "scannableA": h(&n.scannable()), "scannableB": h(&other.scannable()),
            }),
        ));
    }
    let ik = IdentityKeyPair::from_seed(&[0x33; 32]).public_key();
    let e = SafetyNumber::new((&ik, &[0x61; 256]), (&ik, b"b")).unwrap_err().category();
    tests.push(f.test(
        "a user id of 256 bytes is refused",
        &[],
        Some(e),
        json!({
            "identityKeyA": h(&ik.to_bytes()), "userIdA": h(&[0x61; 256]),
            "identityKeyB": h(&ik.to_bytes()), "userIdB": h(b"b"),
        }),
    ));
    f.group("safety_number", "Safety numbers and their scannable form (SPEC.md §3.5)", tests);
    ed25519_groups(&mut f, &mut rng);
    f.write();
}

/// Ed25519 key acceptance and VERIFY, rule by rule (SPEC.md §2.4).
fn ed25519_groups(f: &mut VectorFile, rng: &mut Recorder) {
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    let seed = rng.bytes::<32>();
    let good = IdentityKeyPair::from_seed(&seed).public_key().to_bytes();
    let mut keys: Vec<(String, [u8; 32])> = vec![("a key made from a seed (§3.1)".into(), good)];
    for order in [2u8, 4, 8] {
        keys.push((
            format!("the same key plus a torsion point of order {order}: decodes, not of small order, outside the prime-order subgroup"),
            with_torsion(&good, order),
        ));
    }
    keys.push((
        "the identity point: in the prime-order subgroup, refused".into(),
        EdwardsPoint::default().compress().to_bytes(),
    ));
    for (k, t) in EIGHT_TORSION.iter().enumerate().skip(1) {
        keys.push((format!("small-order point (EIGHT_TORSION[{k}])"), t.compress().to_bytes()));
    }
    let non_canonical = |k: u8, sign: bool| {
        let mut b = [0xffu8; 32];
        b[0] = 0xed + k;
        b[31] = if sign { 0xff } else { 0x7f };
        b
    };
    keys.push(("y = p + 1 (a non-canonical encoding of the identity)".into(), non_canonical(1, false)));
    keys.push(("y = p (a non-canonical encoding of y = 0, a point of order 4)".into(), non_canonical(0, false)));
    let mut x0_sign = [0u8; 32];
    x0_sign[0] = 1;
    x0_sign[31] = 0x80;
    keys.push(("x = 0 with the sign bit set (y = 1): not canonical".into(), x0_sign));
    // No point with y < 19 lies in the prime-order subgroup, so every
    // non-canonical encoding (y = p + k reduces to k < 19) also fails the
    // subgroup rule: the canonical rule cannot be pinned alone for keys
    // (SPEC.md §2.4). Check that claim here rather than assume it.
    for k in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut canonical = [0u8; 32];
            canonical[0] = k;
            canonical[31] = sign;
            if let Some(pt) = CompressedEdwardsY(canonical).decompress() {
                assert!(!pt.is_torsion_free() || pt == EdwardsPoint::default(), "y = {k} is in the subgroup");
            }
        }
    }
    keys.push((
        "y = p + 3: non-canonical; its point (y = 3) is also outside the prime-order subgroup, as every point with y < 19 but the identity is, so the canonical rule is not pinnable alone for keys (SPEC.md §2.4)".into(),
        non_canonical(3, false),
    ));
    let mut tests = Vec::new();
    for (comment, key) in keys {
        let ok = hazmat::ed25519_key_acceptable(&key);
        assert_eq!(ok, key == good, "{comment}");
        let error = (!ok).then_some(ErrorCategory::InvalidKey);
        tests.push(f.test(&comment, &[], error, json!({ "public": h(&key) })));
    }
    f.group("ed25519_key", "Ed25519 public key acceptance (SPEC.md §2.4, §3.1)", tests);

    let message = b"sottovoce VERIFY vector".to_vec();
    let genuine = {
        use ed25519_dalek::Signer;
        ed25519_dalek::SigningKey::from_bytes(&seed).sign(&message).to_bytes()
    };
    let mut tests = Vec::new();
    let mut cases = vec![("a genuine signature".to_string(), message.clone(), genuine)];
    for (name, sig) in weak_signatures(&seed, &message) {
        cases.push((name.to_string(), message.clone(), sig));
    }
    cases.push(("a genuine signature over another message".into(), b"another message".to_vec(), genuine));
    for (comment, m, sig) in cases {
        let ok = hazmat::ed25519_verify(&good, &m, &sig);
        assert_eq!(ok, sig == genuine && m == message, "{comment}");
        let error = (!ok).then_some(ErrorCategory::Authentication);
        tests.push(f.test(&comment, &[], error, json!({ "public": h(&good), "message": h(&m), "signature": h(&sig) })));
    }
    f.group("ed25519_verify", "VERIFY (SPEC.md §2.4), one rule per invalid test", tests);
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
        let tr_b = hazmat::x3dh_respond(
            &p.store.identity,
            &p.store.signed,
            opk,
            None,
            &p.alice.public_key(),
            &ek_pub,
            binding,
        )
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
    let mut cases: Vec<(String, Vec<u8>, ErrorCategory, Vec<u8>)> =
        cases.into_iter().map(|(c, b, e)| (c, b, e, Vec::new())).collect();
    // The binding bound comes before everything else, the signature included.
    let long = vec![0x62u8; MAX_BINDING_LEN + 1];
    cases.push((
        "a good bundle with a binding of MAX_BINDING_LEN + 1 bytes".into(),
        good.clone(),
        ErrorCategory::Decode,
        long.clone(),
    ));
    cases.push((
        "a bundle with a bad signature and a binding of MAX_BINDING_LEN + 1 bytes: the binding is checked first".into(),
        flip(&good, 100, 0x01),
        ErrorCategory::Decode,
        long,
    ));
    for (comment, bundle_bytes, want, binding) in cases {
        let bundle = PreKeyBundle::try_from(bundle_bytes.as_slice()).unwrap();
        let e = Session::initiate(&mut rng, &p.alice, &bundle, &binding).unwrap_err().category();
        assert_eq!(e, want, "{comment}");
        let randomness = rng.take();
        tests.push(f.test(
            &comment,
            &["Initiator"],
            Some(e),
            json!({
                "aliceIdentitySeed": h(&p.alice_seed),
                "bundle": h(&bundle_bytes),
                "binding": h(&binding),
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
            "fields": {
                "ratchetKey": h(&n.ratchet_key()), "previousCounter": n.previous_counter(), "counter": n.counter(),
                "ciphertext": h(&normal[41..]),
            },
        }),
    ));
    let Message::PreKey(p) = Message::try_from(pre.as_slice()).unwrap() else { panic!() };
    let p_ik = p.identity_key().to_bytes();
    let bundle_ik = t.parties.store.identity.public_key().to_bytes();
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
    // A group id of exactly MAX_GROUP_ID_LEN bytes decodes.
    let long_gid = GroupId::new(&[0x67; MAX_GROUP_ID_LEN]).unwrap();
    let long_dist =
        GroupSender::new(&mut rng, long_gid, t.parties.alice.public_key()).distribution().to_bytes().to_vec();
    {
        let d = SenderKeyDistribution::try_from(long_dist.as_slice()).unwrap();
        let l = MAX_GROUP_ID_LEN;
        valid.push(f.test(
            "sender key distribution with a group id of MAX_GROUP_ID_LEN bytes",
            &[],
            None,
            json!({
                "type": "sender_key_distribution", "encoded": h(&long_dist),
                "fields": {
                    "groupId": h(d.group_id().as_bytes()), "keyId": d.key_id(), "iteration": d.iteration(),
                    "chainKey": h(&long_dist[10 + l..42 + l]), "signingKey": h(&long_dist[42 + l..74 + l]),
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
        bad.push((ty, "unknown version 3".into(), flip(b, 0, 0x20)));
        bad.push((ty, "version 0".into(), flip(b, 0, 0x10)));
        bad.push((ty, "wrong type nibble".into(), flip(b, 0, 0x0f)));
        bad.push((ty, "version 3 and a wrong type nibble: the version is checked first".into(), flip(b, 0, 0x2f)));
        bad.push((ty, "first byte only".into(), b[..1].to_vec()));
    }
    bad.push(("message", "ciphertext shorter than a tag".into(), normal[..56].to_vec()));
    bad.push(("message", "header cut in PN".into(), normal[..35].to_vec()));
    bad.push(("message", "header cut in the counter".into(), normal[..39].to_vec()));
    bad.push(("prekey_message", "truncated in the base key".into(), pre[..50].to_vec()));
    bad.push(("prekey_message", "one-time prekey flag 2".into(), flip(&pre, 69, 0x02)));
    bad.push(("prekey_message", "embedded message too short".into(), pre[..74 + 56].to_vec()));
    bad.push(("prekey_message", "embedded message with version nibble 3".into(), flip(&pre, 74, 0x20)));
    bad.push(("prekey_message", "embedded message of type prekey message".into(), flip(&pre, 74, 0x03)));
    bad.push(("prekey_message", "identity key with a torsion component".into(), {
        let mut b = pre.clone();
        b[1..33].copy_from_slice(&with_torsion(&p_ik, 8));
        b
    }));
    bad.push(("prekey_bundle", "identity key with a torsion component".into(), {
        let mut b = bundle_opk.clone();
        b[1..33].copy_from_slice(&with_torsion(&bundle_ik, 2));
        b
    }));
    bad.push(("sender_key_distribution", "signing key with a torsion component".into(), {
        let mut b = dist.clone();
        let n = b.len();
        let key: [u8; 32] = b[n - 32..].try_into().unwrap();
        b[n - 32..].copy_from_slice(&with_torsion(&key, 4));
        b
    }));
    bad.push(("prekey_message", "identity key of small order".into(), {
        let mut b = pre.clone();
        b[1..33].copy_from_slice(&[0u8; 32]);
        b
    }));
    // y = p + 3: decompresses (mod p) to a valid point of large order.
    let mut y_p3 = [0xffu8; 32];
    y_p3[0] = 0xf0;
    y_p3[31] = 0x7f;
    bad.push(("prekey_message", "identity key not canonical (y = p + 3)".into(), {
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
    // Fields are read in order and the first failure is reported: a bad key
    // before a truncation later on is invalid-key.
    bad.push(("prekey_message", "identity key with a torsion component, truncated in the SPK id".into(), {
        let mut b = pre[..67].to_vec();
        b[1..33].copy_from_slice(&with_torsion(&p_ik, 8));
        b
    }));
    bad.push(("sender_key_distribution", "group id of 65 bytes via the length byte, truncated".into(), {
        let mut b = dist.clone();
        b[1] = 65;
        b
    }));
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
    /// The chain key at iteration 0 each sender drew last.
    chain_keys: BTreeMap<&'static str, [u8; 32]>,
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
            chain_keys: BTreeMap::new(),
            events: Vec::new(),
            first_error: None,
        }
    }

    fn create(&mut self, who: &'static str) -> Vec<u8> {
        self.rng.take();
        let s = GroupSender::new(&mut self.rng, self.group.clone(), self.members[who].1);
        let randomness = self.rng.take();
        self.signing_seeds.insert(who, hex::decode(&randomness[1]).unwrap().try_into().unwrap());
        self.chain_keys.insert(who, hex::decode(&randomness[0]).unwrap().try_into().unwrap());
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
        self.chain_keys.insert(who, hex::decode(&randomness[0]).unwrap().try_into().unwrap());
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

    fn forget(&mut self, receiver: &'static str, sender: &'static str, key_id: u32, below: u32, expect: Expect) {
        let r =
            self.receivers.get_mut(&(receiver, sender)).unwrap().forget_below(key_id, below).map_err(|e| e.category());
        assert_eq!(r, expect);
        let mut ev = json!({
            "event": "forget_below", "party": receiver, "sender": sender, "keyId": key_id, "iteration": below,
        });
        self.mark(&mut ev, r.map(|()| None));
        self.events.push(ev);
    }

    /// The current sender key's message key at `iteration`, stepped from the
    /// drawn chain key with KDF_CK.
    fn message_key(&self, who: &'static str, iteration: u32) -> [u8; 32] {
        let mut ck = self.chain_keys[who];
        for _ in 0..iteration {
            ck = hazmat::kdf_ck(&ck).1;
        }
        hazmat::kdf_ck(&ck).0
    }

    /// The signature input of `body` (a group message without signature) as
    /// `who` sends it (SPEC.md §7.3), with the commitment to `mk`.
    fn signature_input(&self, who: &'static str, mk: &[u8; 32], body: &[u8]) -> Vec<u8> {
        let mut m = labels::GROUP_SIGNATURE_CONTEXT.to_vec();
        m.push(self.group.as_bytes().len() as u8);
        m.extend_from_slice(self.group.as_bytes());
        m.extend_from_slice(&self.members[who].1.to_bytes());
        m.extend_from_slice(&hazmat::group_commitment(mk));
        m.extend_from_slice(body);
        m
    }

    /// Signs `body` genuinely as `who`, with the commitment to the message
    /// key of the body's iteration under `who`'s current sender key.
    fn sign(&self, who: &'static str, body: &[u8]) -> Vec<u8> {
        let iteration = u32::from_be_bytes(body[5..9].try_into().unwrap());
        self.sign_with(who, &self.message_key(who, iteration), body)
    }

    fn sign_with(&self, who: &'static str, mk: &[u8; 32], body: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer;
        let sk = ed25519_dalek::SigningKey::from_bytes(&self.signing_seeds[who]);
        [body, &sk.sign(&self.signature_input(who, mk, body)).to_bytes()[..]].concat()
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
    // Skipped keys used once are deleted: their replays are duplicates.
    g.decrypt("bob", "carol", &c0, Err(ErrorCategory::Duplicate));
    g.decrypt("bob", "alice", &a1, Err(ErrorCategory::Duplicate));
    let a3 = g.encrypt("alice", b"alice 3");
    g.decrypt("bob", "alice", &a3, OK);
    tests.push(g.finish(
        &mut f,
        "two senders interleaved, out of order; a used skipped key is deleted",
        &["MultiSender", "OutOfOrder"],
    ));

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
    // A new key id from the wrong member is refused and not installed.
    let mut fresh_id = d2.clone();
    let gl = b"book club".len();
    fresh_id[2 + gl..6 + gl].copy_from_slice(&0x0badf00du32.to_be_bytes());
    g.add_from("bob", "alice", "carol", &fresh_id, Err(ErrorCategory::StateMismatch));
    let fine = g.encrypt("alice", b"still fine");
    let mut under_fresh = fine.clone();
    under_fresh[1..5].copy_from_slice(&0x0badf00du32.to_be_bytes());
    g.decrypt("bob", "alice", &under_fresh, Err(ErrorCategory::StateMismatch));
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
    // An iteration already used is a duplicate before any signature check.
    g.decrypt("bob", "alice", &t, Err(ErrorCategory::Duplicate));
    g.decrypt("bob", "mallory", &fake, OK);
    let next = g.encrypt("alice", b"signed strictly");
    let body = next[..next.len() - 64].to_vec();
    let mk = g.message_key("alice", 1);
    for (_, sig) in weak_signatures(&g.signing_seeds["alice"], &g.signature_input("alice", &mk, &body)) {
        g.decrypt("bob", "alice", &[&body[..], &sig[..]].concat(), Err(ErrorCategory::Authentication));
    }
    // Signed without the commitment (revision 1's input): refused.
    let no_commitment = {
        use ed25519_dalek::Signer;
        let mut m = labels::GROUP_SIGNATURE_CONTEXT.to_vec();
        m.push(1);
        m.extend_from_slice(b"g");
        m.extend_from_slice(&g.members["alice"].1.to_bytes());
        m.extend_from_slice(&body);
        let sk = ed25519_dalek::SigningKey::from_bytes(&g.signing_seeds["alice"]);
        [&body[..], &sk.sign(&m).to_bytes()[..]].concat()
    };
    g.decrypt("bob", "alice", &no_commitment, Err(ErrorCategory::Authentication));
    // Iteration 0xFFFFFFFF is refused before the signature is looked at.
    let mut last = next.clone();
    last[5..9].copy_from_slice(&u32::MAX.to_be_bytes());
    g.decrypt("bob", "alice", &last, Err(ErrorCategory::CounterExhausted));
    // Signed by the sender's own key over the right commitment, but the tag
    // is wrong: only the AEAD catches it.
    let mut bad_tag = body.clone();
    let bl = bad_tag.len();
    bad_tag[bl - 1] ^= 0x01;
    let bad_tag = g.sign("alice", &bad_tag);
    g.decrypt("bob", "alice", &bad_tag, Err(ErrorCategory::Authentication));
    g.decrypt("bob", "alice", &next, OK);
    tests.push(g.finish(
        &mut f,
        "signature by another member's key, forgeries under Alice's key id, signatures VERIFY must reject, a signature without the key commitment, iteration 0xFFFFFFFF before the signature, a signed message whose AEAD fails, a replay",
        &["BadSignature", "Replay", "Commitment"],
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
    let id = g.senders["alice"].key_id();
    let ms: Vec<_> = (0..6u8).map(|i| g.encrypt("alice", &[i])).collect();
    g.decrypt("bob", "alice", &ms[5], OK);
    g.forget("bob", "alice", id, 3, OK);
    g.decrypt("bob", "alice", &ms[1], Err(ErrorCategory::Duplicate));
    g.decrypt("bob", "alice", &ms[2], Err(ErrorCategory::Duplicate));
    g.decrypt("bob", "alice", &ms[3], OK);
    g.forget("bob", "alice", id, 6 + MAX_GROUP_SKIP + 1, Err(ErrorCategory::SkipLimit));
    g.forget("bob", "alice", id.wrapping_add(1), 4, Err(ErrorCategory::StateMismatch));
    g.decrypt("bob", "alice", &ms[4], OK);
    // Forgetting ahead of the chain steps it, exactly MAX_GROUP_SKIP at most.
    let later: Vec<_> = (0..=MAX_GROUP_SKIP + 1).map(|i| g.encrypt("alice", &i.to_be_bytes())).collect();
    g.forget("bob", "alice", id, 6 + MAX_GROUP_SKIP, OK);
    g.decrypt("bob", "alice", &later[MAX_GROUP_SKIP as usize - 1], Err(ErrorCategory::Duplicate));
    g.decrypt("bob", "alice", &later[MAX_GROUP_SKIP as usize], OK);
    tests.push(g.finish(
        &mut f,
        "forget keys below an iteration: the boundary (n - 1 deleted, n kept), the skip bound, an unknown key id",
        &["Forget"],
    ));

    let mut g = GroupScript::new(56, b"tamper", &["alice", "bob"]);
    let da = g.create("alice");
    g.join("bob", "alice", &da);
    let m = g.encrypt("alice", b"tamper target");
    let n = m.len();
    g.decrypt("bob", "alice", &flip(&m, 0, 0x30), Err(ErrorCategory::UnknownVersion));
    g.decrypt("bob", "alice", &flip(&m, 0, 0x3f), Err(ErrorCategory::UnknownVersion));
    g.decrypt("bob", "alice", &flip(&m, 0, 0x0f), Err(ErrorCategory::Decode));
    g.decrypt("bob", "alice", &flip(&m, 2, 0x01), Err(ErrorCategory::StateMismatch));
    // The key id is looked up before the iteration is checked.
    let mut unknown_max = flip(&m, 2, 0x01);
    unknown_max[5..9].copy_from_slice(&u32::MAX.to_be_bytes());
    g.decrypt("bob", "alice", &unknown_max, Err(ErrorCategory::StateMismatch));
    g.decrypt("bob", "alice", &flip(&m, 8, 0x01), Err(ErrorCategory::Authentication));
    g.decrypt("bob", "alice", &flip(&m, 10, 0x01), Err(ErrorCategory::Authentication));
    g.decrypt("bob", "alice", &flip(&m, n - 70, 0x01), Err(ErrorCategory::Authentication));
    g.decrypt("bob", "alice", &flip(&m, n - 1, 0x01), Err(ErrorCategory::Authentication));
    g.decrypt("bob", "alice", &m[..88], Err(ErrorCategory::Decode));
    g.decrypt("bob", "alice", &m, OK);
    tests.push(g.finish(
        &mut f,
        "tamper each field: version (before type), type, key id, iteration, ciphertext, tag, signature, length",
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
    let old_id = g.senders["alice"].key_id();
    let old: Vec<_> = (0..3u8).map(|i| g.encrypt("alice", &[b'o', i])).collect();
    g.decrypt("bob", "alice", &old[2], OK);
    let d1 = g.rotate("alice");
    g.add("bob", "alice", &d1, OK);
    let new_id = g.senders["alice"].key_id();
    let new: Vec<_> = (0..3u8).map(|i| g.encrypt("alice", &[b'n', i])).collect();
    // Forgetting the old key below 3 deletes its skipped keys; the new
    // key's first messages (iterations 0..2) are untouched.
    g.forget("bob", "alice", old_id, 3, OK);
    g.decrypt("bob", "alice", &old[0], Err(ErrorCategory::Duplicate));
    g.decrypt("bob", "alice", &new[1], OK);
    g.decrypt("bob", "alice", &new[0], OK);
    g.forget("bob", "alice", new_id, 3, OK);
    g.decrypt("bob", "alice", &new[2], Err(ErrorCategory::Duplicate));
    let after = g.encrypt("alice", b"after forgetting");
    g.decrypt("bob", "alice", &after, OK);
    tests.push(g.finish(
        &mut f,
        "forget below applies to one sender key: after a rotation the new key's first messages survive forgetting the old key",
        &["Forget", "Rotation"],
    ));

    let mut g = GroupScript::new(60, b"g", &["alice", "bob"]);
    let da = g.create("alice");
    g.join("bob", "alice", &da);
    let ms: Vec<_> = (0..4u8).map(|i| g.encrypt("alice", &[i])).collect();
    g.decrypt("bob", "alice", &ms[1], OK);
    // A distribution for the held key id, same signing key, at a later
    // iteration: ignored; the held chain is kept exactly as it is.
    let later = g.distribution("alice");
    g.add("bob", "alice", &later, OK);
    g.decrypt("bob", "alice", &ms[2], OK);
    g.decrypt("bob", "alice", &ms[0], OK);
    // Same key id and signing key, another chain key and iteration 0: also
    // ignored, not a reset.
    let mut reset = later.clone();
    let l = 1;
    reset[6 + l..10 + l].copy_from_slice(&0u32.to_be_bytes());
    reset[10 + l..42 + l].copy_from_slice(&[0x42; 32]);
    g.add("bob", "alice", &reset, OK);
    g.decrypt("bob", "alice", &ms[3], OK);
    tests.push(g.finish(
        &mut f,
        "a distribution for a key id already held (same signing key) is ignored whatever its iteration and chain key",
        &["Distribution"],
    ));

    // The sender equivocates: Bob and Carol get different chain keys under
    // one key id and signing key. One GCM ciphertext authenticates under both
    // derived keys (it would decrypt to different plaintexts without the key
    // commitment); the signature covers the commitment to one of them.
    let mut g = GroupScript::new(61, b"equivocation", &["alice", "bob", "carol"]);
    let da = g.create("alice");
    g.join("bob", "alice", &da);
    let mut dc = da.clone();
    let l = b"equivocation".len();
    let other_ck = [0x5a; 32];
    dc[10 + l..42 + l].copy_from_slice(&other_ck);
    g.join("carol", "alice", &dc);
    let key_id = g.senders["alice"].key_id();
    let mk_bob = hazmat::kdf_ck(&g.chain_keys["alice"]).0;
    let mk_carol = hazmat::kdf_ck(&other_ck).0;
    let (k1, n1) = hazmat::expand_group_message_key(&mk_bob);
    let (k2, n2) = hazmat::expand_group_message_key(&mk_carol);
    let mut header = vec![0x15];
    header.extend(key_id.to_be_bytes());
    header.extend(0u32.to_be_bytes());
    let mut ad = vec![l as u8];
    ad.extend_from_slice(b"equivocation");
    ad.extend_from_slice(&g.members["alice"].1.to_bytes());
    ad.extend_from_slice(&header);
    salamander::self_check();
    let ct = salamander::two_key_ciphertext(&k1, &n1, &k2, &n2, &ad, b"one message, two meanings", 2);
    let body = [&header[..], &ct[..]].concat();
    let for_bob = g.sign_with("alice", &mk_bob, &body);
    let for_carol = g.sign_with("alice", &mk_carol, &body);
    g.decrypt("bob", "alice", &for_carol, Err(ErrorCategory::Authentication));
    g.decrypt("carol", "alice", &for_bob, Err(ErrorCategory::Authentication));
    g.decrypt("bob", "alice", &for_bob, OK);
    g.decrypt("carol", "alice", &for_carol, OK);
    tests.push(g.finish(
        &mut f,
        "an equivocating sender: one AES-GCM ciphertext valid under two members' keys; each signature commits to one key, so each signed message decrypts for one member only",
        &["Commitment"],
    ));

    f.group("transcript", "Scripted group conversations", tests);
    f.write();
}

// ------------------------------------------------------------ persistence

fn persistence_file() {
    let mut f = VectorFile::new("persistence");
    let mut tests = Vec::new();

    // A responder with skipped keys, and an initiator whose prekey header is
    // still pending.
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
    let mut rng = Recorder::new(62);
    let mut a = Session::from_bytes(&pending_alice).unwrap();
    let again = a.encrypt(&mut rng, b"resent").unwrap().to_bytes();
    let again_randomness = rng.take();
    // A crafted prekey message naming Bob, around his genuine reply: the
    // restored initiator still knows its role.
    let mut crafted = m0[..74].to_vec();
    crafted[1..33].copy_from_slice(&t.parties.store.identity.public_key().to_bytes());
    crafted.extend_from_slice(&reply);
    tests.push(f.test(
        "initiator before any reply: still sends prekey messages after restore, and still refuses prekey messages",
        &["Session", "Role"],
        None,
        json!({
            "kind": "session",
            "state": h(&pending_alice),
            "events": [
                { "event": "encrypt", "plaintext": h(b"resent"), "randomness": again_randomness, "message": h(&again) },
                { "event": "decrypt", "message": h(&crafted), "result": "invalid", "error": "state-mismatch" },
                { "event": "decrypt", "message": h(&reply), "result": "valid", "plaintext": h(b"reply") },
            ],
        }),
    ));

    // A session with closed chains: Bob after Alice's chain with a held-back
    // message was closed by her next chain.
    let mut c = Transcript::new(66, false, b"");
    c.establish();
    let held = c.encrypt("alice", b"held back");
    let delivered = c.encrypt("alice", b"delivered");
    c.decrypt("bob", &delivered, OK);
    let r = c.encrypt("bob", b"r");
    c.decrypt("alice", &r, OK);
    let closing = c.encrypt("alice", b"closes the chain at PN = 2");
    c.decrypt("bob", &closing, OK);
    let closed_state = c.bob.as_ref().unwrap().to_bytes().to_vec();
    let parsed = Saved::parse(&closed_state);
    assert_eq!(parsed.closed.len(), 2);
    let mut rng = Recorder::new(67);
    let mut probe = Session::from_bytes(&closed_state).unwrap();
    let answer = probe.encrypt(&mut rng, b"answer").unwrap().to_bytes();
    let answer_randomness = rng.take();
    tests.push(f.test(
        "responder with two closed chains and a skipped key of one: restore, decrypt the late message once, send",
        &["Session", "ClosedChain"],
        None,
        json!({
            "kind": "session",
            "state": h(&closed_state),
            "events": [
                { "event": "decrypt", "message": h(&held), "result": "valid", "plaintext": h(b"held back") },
                { "event": "decrypt", "message": h(&held), "result": "invalid", "error": "duplicate" },
                { "event": "decrypt", "message": h(&delivered), "result": "invalid", "error": "duplicate" },
                { "event": "encrypt", "plaintext": h(b"answer"), "randomness": answer_randomness, "message": h(&answer) },
            ],
        }),
    ));

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
    let g3 = s.encrypt(b"g3").unwrap().to_bytes();
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
    let mut after_forget = GroupReceiver::from_bytes(&receiver_state).unwrap();
    after_forget.decrypt_bytes(&g0).unwrap();
    after_forget.decrypt_bytes(&g2).unwrap();
    after_forget.forget_below(d.key_id(), 4).unwrap();
    tests.push(f.test(
        "group receiver with a skipped key: restore, decrypt, forget, and save again",
        &["GroupReceiver"],
        None,
        json!({
            "kind": "group_receiver",
            "state": h(&receiver_state),
            "events": [
                { "event": "decrypt", "message": h(&g0), "result": "valid", "plaintext": h(b"g0") },
                { "event": "decrypt", "message": h(&g2), "result": "valid", "plaintext": h(b"g2") },
                { "event": "decrypt", "message": h(&g1), "result": "invalid", "error": "duplicate" },
                { "event": "forget_below", "keyId": d.key_id(), "iteration": 4, "result": "valid" },
                { "event": "decrypt", "message": h(&g3), "result": "invalid", "error": "duplicate" },
                { "event": "save", "state": h(&after_forget.to_bytes()) },
            ],
        }),
    ));

    // Counters at their end: a sending chain at 0xFFFFFFFE sends once more,
    // then refuses and changes nothing (the save after it shows).
    let mut near = Saved::parse(&t.alice.to_bytes());
    let (p, q, ck, _) = near.sending.unwrap();
    near.sending = Some((p, q, ck, u32::MAX - 1));
    let near_end = near.encode();
    let mut s = Session::from_bytes(&near_end).unwrap();
    let mut rng = Recorder::new(65);
    let last_msg = s.encrypt(&mut rng, b"last").unwrap().to_bytes();
    assert_eq!(rng.take().len(), 0);
    let at_end = s.to_bytes().to_vec();
    assert_eq!(s.encrypt(&mut rng, b"one more").unwrap_err().category(), ErrorCategory::CounterExhausted);
    assert_eq!(*s.to_bytes(), at_end);
    tests.push(f.test(
        "session whose sending chain is at 0xFFFFFFFE: one more message, then counter-exhausted with nothing changed",
        &["Session", "Counter"],
        None,
        json!({
            "kind": "session",
            "state": h(&near_end),
            "events": [
                { "event": "encrypt", "plaintext": h(b"last"), "randomness": [], "message": h(&last_msg) },
                { "event": "encrypt", "plaintext": h(b"one more"), "randomness": [], "result": "invalid", "error": "counter-exhausted" },
                { "event": "save", "state": h(&at_end) },
            ],
        }),
    ));
    let gid_len = b"saved group".len();
    let it_at = 2 + 1 + gid_len + 32 + 4 + 32;
    let mut sender_end = sender_state.clone();
    sender_end[it_at..it_at + 4].copy_from_slice(&(u32::MAX - 1).to_be_bytes());
    let mut se = GroupSender::from_bytes(&sender_end).unwrap();
    let g_last = se.encrypt(b"last").unwrap().to_bytes();
    let sender_at_end = se.to_bytes().to_vec();
    assert_eq!(se.encrypt(b"one more").unwrap_err().category(), ErrorCategory::CounterExhausted);
    tests.push(f.test(
        "group sender at iteration 0xFFFFFFFE: one more message, then counter-exhausted with nothing changed",
        &["GroupSender", "Counter"],
        None,
        json!({
            "kind": "group_sender",
            "state": h(&sender_end),
            "events": [
                { "event": "encrypt", "plaintext": h(b"last"), "message": h(&g_last) },
                { "event": "encrypt", "plaintext": h(b"one more"), "result": "invalid", "error": "counter-exhausted" },
                { "event": "save", "state": h(&sender_at_end) },
            ],
        }),
    ));

    // A group receiver at exactly MAX_GROUP_SKIPPED_KEYS skipped keys (valid)
    // and one more (refused by the count bound, every entry present).
    let receiver_with = |skipped: u32| {
        let mut b = receiver_state[..2 + 1 + gid_len + 32].to_vec();
        b.push(1);
        let state = &receiver_state[2 + 1 + gid_len + 32 + 1..];
        b.extend_from_slice(&state[..4 + 32 + 32]);
        b.extend_from_slice(&(skipped + 10).to_be_bytes()); // next iteration
        b.extend_from_slice(&(skipped as u16).to_be_bytes());
        for i in 0..skipped {
            b.extend_from_slice(&i.to_be_bytes());
            b.extend_from_slice(&[(i % 251) as u8; 32]);
        }
        b
    };
    let full = receiver_with(MAX_GROUP_SKIPPED_KEYS as u32);
    assert!(GroupReceiver::from_bytes(&full).is_ok());
    tests.push(f.test(
        "group receiver holding exactly MAX_GROUP_SKIPPED_KEYS skipped keys",
        &["GroupReceiver", "Bound"],
        None,
        json!({
            "kind": "group_receiver",
            "state": h(&full),
            "events": [ { "event": "save", "state": h(&full) } ],
        }),
    ));

    // An account with a rotated signed prekey and one-time prekeys, one of
    // them consumed: restore, re-save, and the bundles it gives.
    let mut rng = Recorder::new(68);
    let mut account = Account::new_classical(&mut rng);
    let opks = account.generate_one_time_prekeys(&mut rng, 4);
    account.rotate_signed_prekey(&mut rng).unwrap();
    account.generate_one_time_prekeys(&mut rng, 2);
    rng.take();
    let account_bundle = account.prekey_bundle(None).unwrap();
    let mut a = Session::initiate(
        &mut rng,
        &IdentityKeyPair::from_seed(&[0x22; 32]),
        &account.prekey_bundle(Some(opks[1])).unwrap(),
        b"",
    )
    .unwrap();
    let Message::PreKey(first) = a.encrypt(&mut rng, b"consumes one").unwrap() else { unreachable!() };
    Session::respond(&mut account, &first, b"").unwrap();
    // Published with format revision 2 (SPEC.md §11.5): kept as revision 2
    // input, which every later release reads; re-saving writes revision 3.
    let live = account.to_bytes().to_vec();
    let account_state = [&[0x1a, 0x02], &live[2..38], &live[42..]].concat();
    // Read as revision 2, everything held counts as published (SPEC.md §11.5).
    let resaved = Account::from_bytes(&account_state).unwrap().to_bytes().to_vec();
    assert_eq!(resaved[38..42], live[34..38]);
    let mut bundle_events =
        vec![json!({ "event": "bundle", "oneTimePreKeyId": null, "bundle": h(&account_bundle.to_bytes()) })];
    for id in account.one_time_prekey_ids().into_iter().take(2) {
        bundle_events.push(json!({ "event": "bundle", "oneTimePreKeyId": id.0, "bundle": h(&account.prekey_bundle(Some(id)).unwrap().to_bytes()) }));
    }
    bundle_events.push(
        json!({ "event": "bundle", "oneTimePreKeyId": opks[1].0, "result": "invalid", "error": "unknown-prekey" }),
    );
    bundle_events.push(json!({ "event": "save", "state": h(&resaved) }));
    tests.push(f.test(
        "account with two signed prekeys and five one-time prekeys (one consumed): restore, bundles, save",
        &["Account"],
        None,
        json!({ "kind": "account", "state": h(&account_state), "events": bundle_events }),
    ));

    // A pending sending chain whose open chain's ratchet key is of low order
    // (only a faulty or restored state holds one): the deferred DH step of
    // the next encrypt is non-contributory, and nothing changes.
    let mut low = Saved::parse(&bob_state);
    low.open.as_mut().unwrap().0 = [0u8; 32];
    low.skipped.clear();
    let low = low.encode();
    let mut probe = Session::from_bytes(&low).unwrap();
    let mut rng = Recorder::new(69);
    assert_eq!(probe.encrypt(&mut rng, b"x").unwrap_err().category(), ErrorCategory::NonContributory);
    tests.push(f.test(
        "a pending sending chain towards a low-order ratchet key: encrypt is non-contributory and changes nothing",
        &["Session", "NonContributory"],
        None,
        json!({
            "kind": "session",
            "state": h(&low),
            "events": [
                { "event": "encrypt", "plaintext": h(b"x"), "randomness": rng.take(), "result": "invalid", "error": "non-contributory" },
                { "event": "save", "state": h(&low) },
            ],
        }),
    ));

    // A skipped key stored for N = 0xFFFFFFFF of a chain that is neither
    // open nor closed: the counter check comes before the skipped lookup.
    let mut max = Saved::parse(&bob_state);
    max.skipped.push(([0x77; 32], u32::MAX, [0x01; 32]));
    let max = max.encode();
    let mut msg = vec![0x11];
    msg.extend([0x77; 32]);
    msg.extend(0u32.to_be_bytes());
    msg.extend(u32::MAX.to_be_bytes());
    msg.extend([0u8; 20]);
    tests.push(f.test(
        "a stored skipped key for N = 0xFFFFFFFF is never used: counter-exhausted first",
        &["Session", "Counter"],
        None,
        json!({
            "kind": "session",
            "state": h(&max),
            "events": [
                { "event": "decrypt", "message": h(&msg), "result": "invalid", "error": "counter-exhausted" },
                { "event": "save", "state": h(&max) },
            ],
        }),
    ));

    // A new chain that closes the open one at PN > Nr, received at N > 0:
    // the closed chain's keys are stored before the new chain's.
    let mut o = Transcript::new(70, false, b"");
    o.establish();
    let x0 = o.encrypt("alice", b"A2 0");
    let _x1 = o.encrypt("alice", b"A2 1, never delivered");
    let _x2 = o.encrypt("alice", b"A2 2, never delivered");
    o.decrypt("bob", &x0, OK);
    let r = o.encrypt("bob", b"reply");
    o.decrypt("alice", &r, OK);
    let _y0 = o.encrypt("alice", b"A3 0, never delivered");
    let y1 = o.encrypt("alice", b"A3 1, PN = 3");
    let before_close = o.bob.as_ref().unwrap().to_bytes().to_vec();
    o.decrypt("bob", &y1, OK);
    let after_close = o.bob.as_ref().unwrap().to_bytes().to_vec();
    let parsed = Saved::parse(&after_close);
    assert_eq!(parsed.skipped.iter().map(|k| k.1).collect::<Vec<_>>(), vec![1, 2, 0]);
    tests.push(f.test(
        "closing a chain at PN = 3 with Nr = 1 while opening the next at N = 1: skipped keys A2:1, A2:2, then A3:0",
        &["Session", "ClosedChain"],
        None,
        json!({
            "kind": "session",
            "state": h(&before_close),
            "events": [
                { "event": "decrypt", "message": h(&y1), "result": "valid", "plaintext": h(b"A3 1, PN = 3") },
                { "event": "save", "state": h(&after_close) },
            ],
        }),
    ));

    // ------------------------------------------------ invalid saved states
    let mut invalid: Vec<(&str, String, Vec<u8>)> = vec![
        ("session", "truncated".into(), bob_state[..bob_state.len() - 1].to_vec()),
        ("session", "trailing byte".into(), [bob_state.clone(), vec![0]].concat()),
        ("session", "unknown format revision".into(), flip(&bob_state, 1, 0x02)),
        ("session", "revision 1's pre-release format byte 0x01".into(), flip(&bob_state, 1, 0x03)),
        ("group_receiver", "revision 1's pre-release format byte 0x01".into(), flip(&receiver_state, 1, 0x03)),
        ("group_sender", "revision 1's pre-release format byte 0x01".into(), flip(&sender_state, 1, 0x03)),
        ("session", "unknown version".into(), flip(&bob_state, 0, 0x20)),
        (
            "session",
            "version 3 with a wrong type nibble: the version is checked first".into(),
            flip(&bob_state, 0, 0x21),
        ),
        ("session", "a saved group sender's type nibble".into(), flip(&bob_state, 0, 0x01)),
        ("group_sender", "truncated".into(), sender_state[..sender_state.len() - 1].to_vec()),
        ("group_sender", "a saved session's type nibble".into(), flip(&sender_state, 0, 0x01)),
        ("group_receiver", "trailing byte".into(), [receiver_state.clone(), vec![0]].concat()),
        ("group_receiver", "a saved session's type nibble".into(), flip(&receiver_state, 0, 0x0e)),
    ];
    // Ed25519 keys are checked on restore, in all three kinds.
    let mut bad = bob_state.clone();
    bad[2 + 64..2 + 96].copy_from_slice(&with_torsion(&t.parties.alice.public_key().to_bytes(), 2));
    invalid.push(("session", "remote identity key with a torsion component".into(), bad));
    let mut bad = bob_state.clone();
    bad[2 + 32..2 + 64].copy_from_slice(&[0u8; 32]);
    invalid.push(("session", "local identity key of small order".into(), bad.clone()));
    // Keys are checked as they are read, before the trailing-bytes check.
    bad.push(0);
    invalid.push(("session", "local identity key of small order and a trailing byte: invalid-key first".into(), bad));
    let mut bad = sender_state.clone();
    bad[3 + gid_len..3 + gid_len + 32].copy_from_slice(&with_torsion(&id.to_bytes(), 8));
    invalid.push(("group_sender", "sender identity key with a torsion component".into(), bad));
    let sk_at = 2 + 1 + gid_len + 32 + 1 + 4;
    let mut bad = receiver_state.clone();
    let sk: [u8; 32] = bad[sk_at..sk_at + 32].try_into().unwrap();
    bad[sk_at..sk_at + 32].copy_from_slice(&with_torsion(&sk, 4));
    invalid.push(("group_receiver", "signing key with a torsion component".into(), bad));
    let mut zero_gid = sender_state.clone();
    zero_gid[2] = 0;
    invalid.push(("group_sender", "group id of length 0".into(), zero_gid));
    let mut zero_gid = receiver_state.clone();
    zero_gid[2] = 0;
    invalid.push(("group_receiver", "group id of length 0".into(), zero_gid));

    // Session consistency (SPEC.md §11.2), each state otherwise well formed.
    let bob = Saved::parse(&bob_state);
    assert_eq!(bob.skipped.len(), 2);
    let open = bob.open.unwrap();
    let mut s = bob.clone();
    s.skipped.push(s.skipped[0]);
    invalid.push(("session", "a skipped key stored twice".into(), s.encode()));
    let mut s = bob.clone();
    s.skipped.push((open.0, open.2, [7u8; 32]));
    invalid.push(("session", "a skipped key at its open chain's next number Nr".into(), s.encode()));
    let mut s = bob.clone();
    s.skipped.push((open.0, open.2 + 5, [7u8; 32]));
    invalid.push(("session", "a skipped key past its open chain's next number".into(), s.encode()));
    let closed = Saved::parse(&closed_state);
    let (old_key, old_len) = closed.closed[1];
    let mut s = closed.clone();
    s.skipped.push((old_key, old_len, [7u8; 32]));
    invalid.push(("session", "a skipped key at a closed chain's PN".into(), s.encode()));
    let mut s = closed.clone();
    s.closed[0].0 = s.closed[1].0;
    invalid.push(("session", "two closed chains with one ratchet key".into(), s.encode()));
    let mut s = closed.clone();
    s.closed[1].0 = s.open.unwrap().0;
    invalid.push(("session", "a closed chain with the open chain's ratchet key".into(), s.encode()));
    let mut s = bob.clone();
    s.open = None;
    invalid.push(("session", "a pending sending chain without an open receiving chain".into(), s.encode()));
    let mut s = bob.clone();
    s.head[2 + 4 * 32 + 1] = 1; // pending-prekey flag on a responder's session
    invalid.push(("session", "the pending-prekey flag on a responder's session".into(), s.encode()));
    let mut s = bob.clone();
    s.head[2 + 4 * 32] = 2;
    invalid.push(("session", "role flag 2".into(), s.encode()));
    // Counts over their bounds, with every entry present and consistent.
    let mut s = closed.clone();
    while s.closed.len() <= MAX_CLOSED_CHAINS {
        let n = s.closed.len() as u8;
        s.closed.push(([0xc0 | n; 32], 1));
    }
    invalid.push(("session", "MAX_CLOSED_CHAINS + 1 closed chains, all distinct".into(), s.encode()));
    let mut s = bob.clone();
    s.skipped = (0..=MAX_SKIPPED_KEYS as u32).map(|i| ([0x51; 32], i, [(i % 253) as u8; 32])).collect();
    invalid.push(("session", "MAX_SKIPPED_KEYS + 1 skipped keys, all distinct".into(), s.encode()));
    let at_max = {
        let mut s = bob.clone();
        s.skipped = (0..MAX_SKIPPED_KEYS as u32).map(|i| ([0x51; 32], i, [(i % 253) as u8; 32])).collect();
        s.encode()
    };
    assert!(Session::from_bytes(&at_max).is_ok());

    // Group receiver consistency and bounds.
    let states_at = 2 + 1 + gid_len + 32;
    assert_eq!(receiver_state[states_at], 1);
    let mut zero = receiver_state[..states_at].to_vec();
    zero.push(0);
    invalid.push(("group_receiver", "no sender key state".into(), zero));
    let state = receiver_state[states_at + 1..].to_vec();
    let with_states = |ids: &[u32]| {
        let mut b = receiver_state[..states_at].to_vec();
        b.push(ids.len() as u8);
        for id in ids {
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&state[4..]);
        }
        b
    };
    invalid.push(("group_receiver", "two sender key states with one key id".into(), with_states(&[7, 7])));
    let six: Vec<u32> = (1..=MAX_SENDER_KEY_STATES as u32 + 1).collect();
    invalid.push(("group_receiver", "MAX_SENDER_KEY_STATES + 1 states, distinct key ids".into(), with_states(&six)));
    assert!(GroupReceiver::from_bytes(&with_states(&six[..MAX_SENDER_KEY_STATES])).is_ok());
    // The one state: key id, signing key, CK, next = 2, one skipped key (0).
    let skipped_at = states_at + 1 + 4 + 32 + 32 + 4 + 2;
    assert_eq!(&receiver_state[skipped_at - 6..skipped_at], &[0, 0, 0, 2, 0, 1]);
    let mut twice = receiver_state[..skipped_at - 2].to_vec();
    twice.extend_from_slice(&2u16.to_be_bytes());
    twice.extend_from_slice(&receiver_state[skipped_at..]);
    twice.extend_from_slice(&receiver_state[skipped_at..]);
    invalid.push(("group_receiver", "a skipped key stored twice".into(), twice));
    let mut at_next = receiver_state.clone();
    at_next[skipped_at..skipped_at + 4].copy_from_slice(&2u32.to_be_bytes());
    invalid.push(("group_receiver", "a skipped key at the state's next iteration".into(), at_next));
    invalid.push((
        "group_receiver",
        "MAX_GROUP_SKIPPED_KEYS + 1 skipped keys, all distinct".into(),
        receiver_with(MAX_GROUP_SKIPPED_KEYS as u32 + 1),
    ));
    // Saved accounts (SPEC.md §11.5): layout after the seed: next id (u32),
    // u8 count { id | priv }, u16 count { id | priv } (format revision 2,
    // which every later release reads).
    let acc = |next: u32, signed: &[u32], one_time: &[u32]| {
        let mut b = account_state[..2 + 32].to_vec();
        b.extend(next.to_be_bytes());
        b.push(signed.len() as u8);
        for id in signed {
            b.extend(id.to_be_bytes());
            b.extend([0x33u8; 32]);
        }
        b.extend((one_time.len() as u16).to_be_bytes());
        for id in one_time {
            b.extend(id.to_be_bytes());
            b.extend([(*id % 251) as u8; 32]);
        }
        b
    };
    assert!(Account::from_bytes(&acc(10, &[1, 2], &[3, 4, 9])).is_ok());
    let thousand: Vec<u32> = (3..1003).collect();
    assert!(Account::from_bytes(&acc(2000, &[1, 2], &thousand)).is_ok());
    let thousand_one: Vec<u32> = (3..1004).collect();
    for (comment, b) in [
        ("no signed prekey", acc(10, &[], &[3])),
        ("three signed prekeys", acc(10, &[1, 2, 3], &[])),
        ("MAX one-time prekeys + 1, all distinct", acc(2000, &[1, 2], &thousand_one)),
        ("a prekey id at the next prekey id", acc(9, &[1, 2], &[3, 4, 9])),
        ("a one-time prekey id used by a signed prekey", acc(10, &[1, 3], &[3, 4])),
        ("one-time prekeys out of id order", acc(10, &[1], &[4, 3])),
        ("a one-time prekey id twice", acc(10, &[1], &[4, 4])),
        ("trailing byte", [account_state.clone(), vec![0]].concat()),
        ("truncated", account_state[..account_state.len() - 1].to_vec()),
        ("unknown format revision", flip(&account_state, 1, 0x02)),
        ("a saved session's type nibble", flip(&account_state, 0, 0x0c)),
    ] {
        invalid.push(("account", comment.into(), b));
    }
    for (kind, comment, bytes) in invalid {
        let e = match kind {
            "session" => Session::from_bytes(&bytes).err(),
            "group_sender" => GroupSender::from_bytes(&bytes).err(),
            "account" => Account::from_bytes(&bytes).err(),
            _ => GroupReceiver::from_bytes(&bytes).err(),
        }
        .unwrap_or_else(|| panic!("{kind}: {comment} restored"))
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
    let shortest = sealed[..1 + 12 + 16].to_vec();
    let too_short = sealed[..1 + 12 + 15].to_vec();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, what) in [(0usize, "version"), (5, "nonce"), (20, "ciphertext"), (sealed.len() - 1, "tag")] {
        cases.push((format!("tampered {what}"), flip(&sealed, i, if i == 0 { 0x30 } else { 0x01 })));
    }
    cases.push(("a saved session's type nibble".into(), flip(&sealed, 0, 0x0f)));
    // Sealed contents are restored with every bound and consistency check.
    let mut inconsistent = Saved::parse(&state);
    inconsistent.head[2 + 4 * 32 + 1] = 1;
    inconsistent.head[2 + 4 * 32] = 0; // a responder with the pending-prekey flag
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    cases.push((
        "a sealed state that authenticates but is inconsistent".into(),
        seal_raw(&key, &nonce, &inconsistent.encode()),
    ));
    cases.push(("exactly 1 + 12 + 16 bytes: an empty state that does not authenticate".into(), shortest));
    cases.push(("1 + 12 + 15 bytes: shorter than the tag".into(), too_short));
    for (comment, t2) in cases {
        let e = Session::unseal(&key, &t2).unwrap_err().category();
        tests.push(f.test(&comment, &[], Some(e), json!({ "storageKey": h(&key), "sealed": h(&t2) })));
    }
    f.group("sealed_state", "States sealed under a storage key (SPEC.md §11.4)", tests);
    f.write();
}

/// SPEC.md §11.4 sealing of arbitrary bytes (the library only seals states
/// it holds): `0x19 || nonce || AES-256-GCM(key, nonce, SEALED_STATE_AD || 0x19, bytes)`.
fn seal_raw(key: &[u8; 32], nonce: &[u8; 12], bytes: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    let cipher = aes_gcm::Aes256Gcm::new(&(*key).into());
    let ad = [labels::SEALED_STATE_AD, &[0x19]].concat();
    let mut body = bytes.to_vec();
    let tag = cipher.encrypt_inout_detached(&(*nonce).into(), &ad, body.as_mut_slice().into()).unwrap();
    [&[0x19u8][..], &nonce[..], &body, &tag[..]].concat()
}

fn main() {
    kdf_file();
    x3dh_file();
    wire_file();
    session_file();
    sender_keys_file();
    persistence_file();
    conversations::conversations_file();
    pqxdh::pqxdh_file();
}
