//! Replays every published test vector (`test-vectors/*.json`) through the
//! crate's public API, as test-vectors/README.md describes.
//!
//! Random values are served from the vectors' `randomness` lists by a
//! generator that fails on any unexpected draw, so this also proves the
//! crate draws exactly what SPEC.md §8 says, in that order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};
use serde_json::Value;
use sottovoce::hazmat;
use sottovoce::*;

/// Serves listed byte strings, one per draw, checking each length.
struct Replay(VecDeque<Vec<u8>>);

impl Replay {
    fn from(v: &Value) -> Self {
        Self(v.as_array().map(|a| a.iter().map(bytes).collect()).unwrap_or_default())
    }

    fn done(&self) {
        assert!(self.0.is_empty(), "randomness left unused: {} draws", self.0.len());
    }
}

impl TryRng for Replay {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        panic!("the crate must draw bytes, not integers")
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        panic!("the crate must draw bytes, not integers")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let next = self.0.pop_front().expect("more randomness drawn than listed");
        assert_eq!(next.len(), dst.len(), "draw of unexpected length");
        dst.copy_from_slice(&next);
        Ok(())
    }
}

impl TryCryptoRng for Replay {}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    bytes(v).try_into().expect("length")
}

fn load(name: &str) -> Value {
    let path = format!("{}/test-vectors/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(v["schema"], format!("sottovoce-{name}-v1"));
    if name == "pqxdh" {
        assert_eq!(v["specRevision"], 3);
        assert_eq!(v["suite"], labels::SUITE_PQ);
    } else {
        assert_eq!(v["specRevision"], 2);
        assert_eq!(v["suite"], labels::SUITE);
    }
    let count: usize = v["testGroups"].as_array().unwrap().iter().map(|g| g["tests"].as_array().unwrap().len()).sum();
    assert_eq!(v["numberOfTests"], count);
    v
}

fn tests(v: &Value) -> impl Iterator<Item = (&str, &Value)> {
    v["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["tests"].as_array().unwrap().iter().map(move |t| (g["type"].as_str().unwrap(), t)))
}

/// Checks an outcome against an event's or test's `result` / `error` / `plaintext`.
fn check(t: &Value, r: Result<Option<Vec<u8>>, ErrorCategory>, ctx: &str) {
    match (t["result"].as_str().unwrap(), r) {
        ("valid", Ok(pt)) => {
            if let (Some(pt), Some(want)) = (pt, t.get("plaintext")) {
                assert_eq!(pt, bytes(want), "{ctx}: plaintext");
            }
        }
        ("invalid", Err(e)) => assert_eq!(e.name(), t["error"].as_str().unwrap(), "{ctx}: error category"),
        (want, Ok(_)) => panic!("{ctx}: expected {want} {}, got success", t["error"]),
        (want, Err(e)) => panic!("{ctx}: expected {want}, got {e}"),
    }
}

/// Every error type names its SPEC.md §10 category.
trait Categorize {
    fn cat(self) -> ErrorCategory;
}

macro_rules! categorize {
    ($($t:ty),*) => {$(
        impl Categorize for $t {
            fn cat(self) -> ErrorCategory {
                self.category()
            }
        }
    )*};
}
categorize!(DecodeError, DecryptError, KeyAgreementError, RestoreError);

struct EncryptCategory(EncryptError);

impl Categorize for EncryptCategory {
    fn cat(self) -> ErrorCategory {
        self.0.category()
    }
}

impl Categorize for ErrorCategory {
    fn cat(self) -> ErrorCategory {
        self
    }
}

fn c<T, E: Categorize>(r: Result<T, E>) -> Result<T, ErrorCategory> {
    r.map_err(Categorize::cat)
}

#[test]
fn kdf_vectors() {
    let v = load("kdf");
    for (kind, t) in tests(&v) {
        match kind {
            "kdf_rk" => {
                let (rk, ck) = hazmat::kdf_rk(&arr(&t["rk"]), &arr(&t["dhOutput"]));
                assert_eq!(rk.to_vec(), bytes(&t["newRk"]));
                assert_eq!(ck.to_vec(), bytes(&t["chainKey"]));
            }
            "kdf_ck" => {
                let mut ck: [u8; 32] = arr(&t["chainKey"]);
                let steps = t["steps"].as_array().unwrap();
                let mut i = 0;
                for n in 0..=steps.last().unwrap()["index"].as_u64().unwrap() {
                    let (mk, next) = hazmat::kdf_ck(&ck);
                    if steps[i]["index"].as_u64().unwrap() == n {
                        assert_eq!(ck.to_vec(), bytes(&steps[i]["chainKey"]), "CK_{n}");
                        assert_eq!(mk.to_vec(), bytes(&steps[i]["messageKey"]), "MK_{n}");
                        i += 1;
                    }
                    ck = next;
                }
                assert_eq!(i, steps.len());
            }
            "message_key" => {
                let mk = arr(&t["messageKey"]);
                let (key, nonce) = match t["label"].as_str().unwrap() {
                    "session" => hazmat::expand_message_key(&mk),
                    _ => hazmat::expand_group_message_key(&mk),
                };
                assert_eq!(key.to_vec(), bytes(&t["key"]));
                assert_eq!(nonce.to_vec(), bytes(&t["nonce"]));
                if let Some(want) = t.get("commitment") {
                    assert_eq!(hazmat::group_commitment(&mk).to_vec(), bytes(want));
                }
            }
            "safety_number" => {
                let ik_a = IdentityKey::from_bytes(&arr(&t["identityKeyA"])).unwrap();
                let ik_b = IdentityKey::from_bytes(&arr(&t["identityKeyB"])).unwrap();
                let (id_a, id_b) = (bytes(&t["userIdA"]), bytes(&t["userIdB"]));
                let r = SafetyNumber::new((&ik_a, &id_a), (&ik_b, &id_b));
                if let Ok(n) = &r {
                    assert_eq!(n.digits(), t["digits"].as_str().unwrap());
                    assert_eq!(n.scannable(), bytes(&t["scannableA"]));
                    assert!(n.matches_scanned(&bytes(&t["scannableB"])));
                    assert!(!n.matches_scanned(&bytes(&t["scannableA"])));
                }
                check(t, c(r.map(|_| None)), &format!("kdf tcId {}", t["tcId"]));
            }
            "ed25519_key" => {
                let key = arr(&t["public"]);
                let r = IdentityKey::from_bytes(&key).map(|_| None);
                assert_eq!(hazmat::ed25519_key_acceptable(&key), r.is_ok());
                check(t, c(r), &format!("kdf tcId {}", t["tcId"]));
            }
            "ed25519_verify" => {
                let ok = hazmat::ed25519_verify(&arr(&t["public"]), &bytes(&t["message"]), &arr(&t["signature"]));
                let r = if ok { Ok(None) } else { Err(ErrorCategory::Authentication) };
                check(t, r, &format!("kdf tcId {}", t["tcId"]));
            }
            "identity" => {
                let ik = IdentityKeyPair::from_seed(&arr(&t["seed"]));
                assert_eq!(ik.public_key().to_bytes().to_vec(), bytes(&t["public"]));
                assert_eq!(hazmat::identity_x25519_secret(&ik).to_vec(), bytes(&t["x25519Private"]));
                assert_eq!(hazmat::identity_public_x25519(&ik.public_key()).to_vec(), bytes(&t["x25519Public"]));
            }
            other => panic!("unknown group {other}"),
        }
    }
}

/// Bob's store from a test's `bob` object.
struct Store {
    identity: IdentityKeyPair,
    signed: SignedPreKey,
    one_time: BTreeMap<PreKeyId, OneTimePreKey>,
}

impl Store {
    fn from(bob: &Value) -> Self {
        let identity = IdentityKeyPair::from_seed(&arr(&bob["identitySeed"]));
        assert_eq!(identity.public_key().to_bytes().to_vec(), bytes(&bob["identityKey"]));
        let spk = &bob["signedPreKey"];
        let signed = SignedPreKey::from_secret_bytes(
            PreKeyId(spk["id"].as_u64().unwrap() as u32),
            &arr(&spk["private"]),
            &identity,
        );
        let one_time = bob["oneTimePreKeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let id = PreKeyId(k["id"].as_u64().unwrap() as u32);
                (id, OneTimePreKey::from_secret_bytes(id, &arr(&k["private"])))
            })
            .collect();
        Self { identity, signed, one_time }
    }
}

impl PreKeyStore for Store {
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

#[test]
fn x3dh_vectors() {
    let v = load("x3dh");
    for (kind, t) in tests(&v) {
        let ctx = format!("x3dh tcId {}", t["tcId"]);
        let binding = bytes(&t["binding"]);
        match kind {
            "x3dh_valid" => {
                let alice = IdentityKeyPair::from_seed(&arr(&t["alice"]["identitySeed"]));
                let store = Store::from(&t["bob"]);
                let bundle = PreKeyBundle::try_from(bytes(&t["bundle"]).as_slice()).unwrap();
                assert_eq!(store.signed.public_key().to_vec(), bytes(&t["signedPreKeyPublic"]));
                assert_eq!(store.signed.signature().to_vec(), bytes(&t["signedPreKeySignature"]));
                let mut rng = Replay::from(&t["randomness"]);
                let (ek, tr) = hazmat::x3dh_initiate(&mut rng, &alice, &bundle, &binding).unwrap();
                rng.done();
                assert_eq!(ek.to_vec(), bytes(&t["ephemeralPublic"]), "{ctx}");
                let dh: Vec<String> = tr.dh.iter().map(hex::encode).collect();
                assert_eq!(Value::from(dh), t["dh"], "{ctx}");
                assert_eq!(tr.sk.to_vec(), bytes(&t["sk"]), "{ctx}");
                assert_eq!(tr.ad, bytes(&t["ad"]), "{ctx}");
                assert_eq!(tr.ad_hash.to_vec(), bytes(&t["adHash"]), "{ctx}");
                let opk = store.one_time.values().next();
                let tb =
                    hazmat::x3dh_respond(&store.identity, &store.signed, opk, None, &alice.public_key(), &ek, &binding)
                        .unwrap();
                assert_eq!(tb.sk, tr.sk, "{ctx}: responder SK");
                assert_eq!(tb.dh, tr.dh, "{ctx}: responder DHs");
            }
            "x3dh_invalid_bundle" => {
                let alice = IdentityKeyPair::from_seed(&arr(&t["aliceIdentitySeed"]));
                let bundle = PreKeyBundle::try_from(bytes(&t["bundle"]).as_slice()).unwrap();
                let mut rng = Replay::from(&t["randomness"]);
                let r = Session::initiate(&mut rng, &alice, &bundle, &binding).map(|_| None);
                check(t, c(r), &ctx);
                rng.done();
            }
            other => panic!("unknown group {other}"),
        }
    }
}

#[test]
fn wire_vectors() {
    let v = load("wire");
    for (kind, t) in tests(&v) {
        let ctx = format!("wire tcId {}", t["tcId"]);
        let b = bytes(&t["encoded"]);
        let f = &t["fields"];
        let ty = t["type"].as_str().unwrap();
        let r: Result<Vec<u8>, DecodeError> = match ty {
            "message" => NormalMessage::try_from(b.as_slice()).map(|m| {
                assert_eq!(m.ratchet_key().to_vec(), bytes(&f["ratchetKey"]), "{ctx}");
                assert_eq!(u64::from(m.previous_counter()), f["previousCounter"].as_u64().unwrap(), "{ctx}");
                assert_eq!(u64::from(m.counter()), f["counter"].as_u64().unwrap(), "{ctx}");
                m.to_bytes()
            }),
            "prekey_message" => PreKeyMessage::try_from(b.as_slice()).map(|m| {
                assert_eq!(m.identity_key().to_bytes().to_vec(), bytes(&f["identityKey"]), "{ctx}");
                assert_eq!(m.base_key().to_vec(), bytes(&f["baseKey"]), "{ctx}");
                assert_eq!(u64::from(m.signed_prekey_id().0), f["signedPreKeyId"].as_u64().unwrap(), "{ctx}");
                assert_eq!(m.one_time_prekey_id().map(|i| u64::from(i.0)), f["oneTimePreKeyId"].as_u64(), "{ctx}");
                assert_eq!(m.message().to_bytes(), bytes(&f["message"]), "{ctx}");
                m.to_bytes()
            }),
            "prekey_bundle" => PreKeyBundle::try_from(b.as_slice()).map(|m| {
                assert_eq!(m.identity_key().to_bytes().to_vec(), bytes(&f["identityKey"]), "{ctx}");
                assert_eq!(u64::from(m.signed_prekey_id().0), f["signedPreKeyId"].as_u64().unwrap(), "{ctx}");
                assert_eq!(m.one_time_prekey_id().map(|i| u64::from(i.0)), f["oneTimePreKeyId"].as_u64(), "{ctx}");
                m.verify().unwrap();
                m.to_bytes()
            }),
            "sender_key_distribution" => SenderKeyDistribution::try_from(b.as_slice()).map(|m| {
                assert_eq!(m.group_id().as_bytes().to_vec(), bytes(&f["groupId"]), "{ctx}");
                assert_eq!(u64::from(m.key_id()), f["keyId"].as_u64().unwrap(), "{ctx}");
                assert_eq!(u64::from(m.iteration()), f["iteration"].as_u64().unwrap(), "{ctx}");
                m.to_bytes().to_vec()
            }),
            "group_message" => GroupMessage::try_from(b.as_slice()).map(|m| {
                assert_eq!(u64::from(m.key_id()), f["keyId"].as_u64().unwrap(), "{ctx}");
                assert_eq!(u64::from(m.iteration()), f["iteration"].as_u64().unwrap(), "{ctx}");
                m.to_bytes()
            }),
            other => panic!("unknown type {other}"),
        };
        if kind == "decode_valid" {
            assert_eq!(r.as_ref().unwrap(), &b, "{ctx}: re-encoding");
        }
        check(t, c(r.map(|_| None)), &ctx);
    }
}

fn run_session_events(
    ctx: &str,
    events: &Value,
    alice: &mut Option<Session>,
    bob: &mut Option<Session>,
    store: Option<&mut Store>,
) {
    let mut store = store;
    for (i, ev) in events.as_array().unwrap().iter().enumerate() {
        let ctx = format!("{ctx} event {i}");
        let party = ev["party"].as_str().unwrap_or("alice");
        match ev["event"].as_str().unwrap() {
            "encrypt" => {
                let s = if party == "alice" { alice.as_mut() } else { bob.as_mut() }.unwrap();
                let mut rng = Replay::from(&ev["randomness"]);
                let before = s.to_bytes();
                let r = s.encrypt(&mut rng, &bytes(&ev["plaintext"]));
                rng.done();
                if ev["result"] == "invalid" {
                    assert_eq!(*before, *s.to_bytes(), "{ctx}: a failed encrypt changed the session");
                    check(ev, c(r.map(|_| None).map_err(EncryptCategory)), &ctx);
                } else {
                    assert_eq!(r.unwrap().to_bytes(), bytes(&ev["message"]), "{ctx}: message bytes");
                }
            }
            "decrypt" => {
                let s = if party == "alice" { alice.as_mut() } else { bob.as_mut() }.unwrap();
                let before = s.to_bytes();
                let r = s.decrypt_bytes(&bytes(&ev["message"]));
                if r.is_err() {
                    assert_eq!(*before, *s.to_bytes(), "{ctx}: rejection changed the session");
                }
                check(ev, c(r.map(Some)), &ctx);
            }
            "save" => {
                let s = alice.as_ref().unwrap();
                assert_eq!(*s.to_bytes(), bytes(&ev["state"]), "{ctx}: saved state");
            }
            "respond" => {
                let st = store.as_deref_mut().unwrap();
                let opks_before: Vec<_> = st.one_time.keys().copied().collect();
                let r = c(Message::try_from(bytes(&ev["message"]).as_slice())).and_then(|m| match m {
                    Message::PreKey(p) => c(Session::respond(st, &p, &bytes(&ev["binding"]))),
                    Message::Normal(_) => Err(ErrorCategory::Decode),
                });
                let r = r.map(|inbound| {
                    *bob = Some(inbound.session);
                    Some(inbound.plaintext)
                });
                if r.is_err() {
                    assert_eq!(opks_before, st.one_time.keys().copied().collect::<Vec<_>>(), "{ctx}: prekey burned");
                }
                check(ev, r, &ctx);
            }
            other => panic!("{ctx}: unknown event {other}"),
        }
    }
}

#[test]
fn session_vectors() {
    let v = load("session");
    for (_, t) in tests(&v) {
        let ctx = format!("session tcId {}", t["tcId"]);
        let alice_id = IdentityKeyPair::from_seed(&arr(&t["alice"]["identitySeed"]));
        let mut store = Store::from(&t["bob"]);
        let binding = bytes(&t["binding"]);
        let bundle = PreKeyBundle::try_from(bytes(&t["bundle"]).as_slice()).unwrap();
        let events = t["events"].as_array().unwrap();
        assert_eq!(events[0]["event"], "initiate");
        let mut rng = Replay::from(&events[0]["randomness"]);
        let mut alice = Some(Session::initiate(&mut rng, &alice_id, &bundle, &binding).unwrap());
        rng.done();
        // SK and H_AD of this session, from the responder's side.
        let opk = store.one_time.values().next();
        let sid = alice.as_ref().unwrap().session_id().0;
        let x = hazmat::x3dh_respond(&store.identity, &store.signed, opk, None, &alice_id.public_key(), &sid, &binding)
            .unwrap();
        assert_eq!(x.sk.to_vec(), bytes(&t["sk"]), "{ctx}: SK");
        assert_eq!(x.ad_hash.to_vec(), bytes(&t["adHash"]), "{ctx}: H_AD");
        let mut bob = None;
        let rest = Value::from(events[1..].to_vec());
        run_session_events(&ctx, &rest, &mut alice, &mut bob, Some(&mut store));
        let any_invalid = events.iter().any(|e| e["result"] == "invalid");
        assert_eq!(t["result"], if any_invalid { "invalid" } else { "valid" }, "{ctx}");
    }
}

#[test]
fn sender_key_vectors() {
    let v = load("sender_keys");
    for (_, t) in tests(&v) {
        let ctx = format!("sender_keys tcId {}", t["tcId"]);
        let group = GroupId::new(&bytes(&t["groupId"])).unwrap();
        let ids: BTreeMap<String, IdentityKey> = t["members"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(n, m)| {
                let ik = IdentityKeyPair::from_seed(&arr(&m["identitySeed"])).public_key();
                assert_eq!(ik.to_bytes().to_vec(), bytes(&m["identityKey"]));
                (n.clone(), ik)
            })
            .collect();
        let mut senders: BTreeMap<String, GroupSender> = BTreeMap::new();
        let mut receivers: BTreeMap<(String, String), GroupReceiver> = BTreeMap::new();
        for (i, ev) in t["events"].as_array().unwrap().iter().enumerate() {
            let ctx = format!("{ctx} event {i}");
            let party = ev["party"].as_str().unwrap().to_string();
            let sender = ev["sender"].as_str().map(str::to_string);
            match ev["event"].as_str().unwrap() {
                "create" => {
                    let mut rng = Replay::from(&ev["randomness"]);
                    let s = GroupSender::new(&mut rng, group.clone(), ids[&party]);
                    rng.done();
                    assert_eq!(s.distribution().to_bytes().to_vec(), bytes(&ev["distribution"]), "{ctx}");
                    senders.insert(party, s);
                }
                "rotate" => {
                    let mut rng = Replay::from(&ev["randomness"]);
                    let d = senders.get_mut(&party).unwrap().rotate(&mut rng);
                    rng.done();
                    assert_eq!(d.to_bytes().to_vec(), bytes(&ev["distribution"]), "{ctx}");
                }
                "distribution" => {
                    assert_eq!(senders[&party].distribution().to_bytes().to_vec(), bytes(&ev["distribution"]), "{ctx}");
                }
                "join" => {
                    let d = SenderKeyDistribution::try_from(bytes(&ev["distribution"]).as_slice()).unwrap();
                    let s = sender.unwrap();
                    receivers.insert((party, s.clone()), GroupReceiver::new(ids[&s], &d));
                }
                "add_distribution" => {
                    let r = receivers.get_mut(&(party, sender.unwrap())).unwrap();
                    let before = r.to_bytes();
                    let from = ev["from"].as_str().map_or(r.sender(), |f| ids[f]);
                    let res = c(SenderKeyDistribution::try_from(bytes(&ev["distribution"]).as_slice()))
                        .and_then(|d| c(r.add_distribution(from, &d)));
                    if res.is_err() {
                        assert_eq!(*before, *r.to_bytes());
                    }
                    check(ev, c(res.map(|()| None)), &ctx);
                }
                "encrypt" => {
                    let m = senders.get_mut(&party).unwrap().encrypt(&bytes(&ev["plaintext"])).unwrap();
                    assert_eq!(m.to_bytes(), bytes(&ev["message"]), "{ctx}");
                }
                "decrypt" => {
                    let r = receivers.get_mut(&(party, sender.unwrap())).unwrap();
                    let before = r.to_bytes();
                    let res = r.decrypt_bytes(&bytes(&ev["message"]));
                    if res.is_err() {
                        assert_eq!(*before, *r.to_bytes(), "{ctx}: rejection changed the receiver");
                    }
                    check(ev, c(res.map(Some)), &ctx);
                }
                "forget_below" => {
                    let r = receivers.get_mut(&(party, sender.unwrap())).unwrap();
                    let before = r.to_bytes();
                    let key_id = ev["keyId"].as_u64().unwrap() as u32;
                    let res = r.forget_below(key_id, ev["iteration"].as_u64().unwrap() as u32);
                    if res.is_err() {
                        assert_eq!(*before, *r.to_bytes());
                    }
                    check(ev, c(res.map(|()| None)), &ctx);
                }
                other => panic!("{ctx}: unknown event {other}"),
            }
        }
    }
}

#[test]
fn persistence_vectors() {
    let v = load("persistence");
    for (kind, t) in tests(&v) {
        let ctx = format!("persistence tcId {}", t["tcId"]);
        match kind {
            "saved_state" => {
                let state = bytes(&t["state"]);
                match t["kind"].as_str().unwrap() {
                    "session" => match Session::from_bytes(&state) {
                        Ok(s) => {
                            assert_eq!(*s.to_bytes(), state, "{ctx}: re-save");
                            let mut alice = Some(s);
                            run_session_events(&ctx, &t["events"], &mut alice, &mut None, None);
                        }
                        Err(e) => check(t, c(Err::<Option<Vec<u8>>, _>(e)), &ctx),
                    },
                    "group_sender" => match GroupSender::from_bytes(&state) {
                        Ok(mut s) => {
                            assert_eq!(*s.to_bytes(), state, "{ctx}: re-save");
                            for ev in t["events"].as_array().unwrap() {
                                if ev["event"] == "save" {
                                    assert_eq!(*s.to_bytes(), bytes(&ev["state"]), "{ctx}: saved state");
                                    continue;
                                }
                                let before = s.to_bytes();
                                match s.encrypt(&bytes(&ev["plaintext"])) {
                                    Ok(m) => assert_eq!(m.to_bytes(), bytes(&ev["message"]), "{ctx}"),
                                    Err(e) => {
                                        assert_eq!(*before, *s.to_bytes(), "{ctx}");
                                        check(ev, Err(e.category()), &ctx);
                                    }
                                }
                            }
                        }
                        Err(e) => check(t, c(Err::<Option<Vec<u8>>, _>(e)), &ctx),
                    },
                    "account" => match Account::from_bytes(&state) {
                        Ok(a) => {
                            // Revision 2 input is re-saved as revision 3 (SPEC.md §11.5):
                            // the `save` event says what.
                            if state[1] != 2 {
                                assert_eq!(*a.to_bytes(), state, "{ctx}: re-save");
                            }
                            for ev in t["events"].as_array().unwrap() {
                                match ev["event"].as_str().unwrap() {
                                    "save" => assert_eq!(*a.to_bytes(), bytes(&ev["state"]), "{ctx}: saved state"),
                                    _ => {
                                        let id = ev["oneTimePreKeyId"].as_u64().map(|i| PreKeyId(i as u32));
                                        match a.prekey_bundle(id) {
                                            Some(b) => assert_eq!(b.to_bytes(), bytes(&ev["bundle"]), "{ctx}"),
                                            None => check(ev, Err(ErrorCategory::UnknownPreKey), &ctx),
                                        }
                                    }
                                }
                            }
                        }
                        Err(e) => check(t, c(Err::<Option<Vec<u8>>, _>(e)), &ctx),
                    },
                    _ => match GroupReceiver::from_bytes(&state) {
                        Ok(mut r) => {
                            assert_eq!(*r.to_bytes(), state, "{ctx}: re-save");
                            for ev in t["events"].as_array().unwrap() {
                                match ev["event"].as_str().unwrap() {
                                    "save" => assert_eq!(*r.to_bytes(), bytes(&ev["state"]), "{ctx}: saved state"),
                                    "forget_below" => {
                                        let key_id = ev["keyId"].as_u64().unwrap() as u32;
                                        let it = ev["iteration"].as_u64().unwrap() as u32;
                                        check(ev, c(r.forget_below(key_id, it).map(|()| None)), &ctx);
                                    }
                                    _ => check(ev, c(r.decrypt_bytes(&bytes(&ev["message"])).map(Some)), &ctx),
                                }
                            }
                        }
                        Err(e) => check(t, c(Err::<Option<Vec<u8>>, _>(e)), &ctx),
                    },
                }
            }
            "sealed_state" => {
                let key = arr(&t["storageKey"]);
                let sealed = bytes(&t["sealed"]);
                let r = Session::unseal(&key, &sealed);
                if let (Ok(s), Some(state)) = (&r, t.get("state")) {
                    assert_eq!(*s.to_bytes(), bytes(state), "{ctx}");
                    let mut rng = Replay::from(&t["randomness"]);
                    assert_eq!(s.seal(&mut rng, &key), sealed, "{ctx}: sealing");
                    rng.done();
                }
                check(t, c(r.map(|_| None)), &ctx);
            }
            other => panic!("unknown group {other}"),
        }
    }
}

fn address(v: &Value) -> Address {
    Address::new(&bytes(&v["user"]), DeviceId(v["device"].as_u64().unwrap() as u32)).unwrap()
}

fn ids_of(r: &SessionRecord) -> (Option<String>, Vec<String>) {
    (r.current_id().map(|i| hex::encode(i.0)), r.archived().map(|s| hex::encode(s.session_id().0)).collect())
}

fn check_ids(ev: &Value, r: &SessionRecord, ctx: &str) {
    let (current, archived) = ids_of(r);
    assert_eq!(ev["current"].as_str().map(String::from), current, "{ctx}: current session");
    let want: Vec<String> = ev["archived"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().into()).collect();
    assert_eq!(want, archived, "{ctx}: archived sessions");
}

/// Checks an outcome with SPEC.md §10's cause, if the event names one.
fn check_cause(ev: &Value, r: &Result<Vec<u8>, DecryptError>, ctx: &str) {
    let cause = match r {
        Err(DecryptError::NoSenderKey) => Some("no-sender-key"),
        Err(DecryptError::NotMember) => Some("not-member"),
        _ => None,
    };
    assert_eq!(ev.get("cause").and_then(Value::as_str), cause, "{ctx}: cause");
}

fn upload_of(a: &Account) -> Vec<u8> {
    a.prekeys_to_publish().to_bytes()
}

#[test]
fn conversation_vectors() {
    let v = load("conversations");
    for (kind, t) in tests(&v) {
        let ctx = format!("conversations tcId {}", t["tcId"]);
        match kind {
            "publication" => {
                let mut a = Account::from_bytes(&bytes(&t["account"])).unwrap();
                for ev in t["events"].as_array().unwrap() {
                    let mut rng = Replay::from(&ev["randomness"]);
                    match ev["event"].as_str().unwrap() {
                        "toPublish" => assert_eq!(upload_of(&a), bytes(&ev["upload"]), "{ctx}: upload"),
                        "markPublished" => {
                            a.mark_published(&PreKeyUpload::try_from(bytes(&ev["upload"]).as_slice()).unwrap());
                        }
                        "generateOneTimePreKeys" => {
                            a.generate_one_time_prekeys(&mut rng, ev["count"].as_u64().unwrap() as usize);
                        }
                        "rotateSignedPreKey" => {
                            a.rotate_signed_prekey(&mut rng).unwrap();
                        }
                        "retirePreviousSignedPreKey" => a.retire_previous_signed_prekey(),
                        other => panic!("{ctx}: event {other}"),
                    }
                    rng.done();
                    if let Some(state) = ev.get("state") {
                        assert_eq!(*a.to_bytes(), bytes(state), "{ctx}: saved account");
                    }
                }
            }
            "upload" => {
                let raw = bytes(&t["upload"]);
                let r = PreKeyUpload::try_from(raw.as_slice()).map_err(|e| e.category()).and_then(|u| {
                    u.verify().map_err(|e| e.category())?;
                    Ok(u)
                });
                if let Ok(u) = &r {
                    assert_eq!(u.to_bytes(), raw, "{ctx}: re-encode");
                    assert_eq!(u.identity_key().to_bytes().to_vec(), bytes(&t["identityKey"]), "{ctx}");
                    let spk = u.signed_prekey().unwrap();
                    assert_eq!(spk.id().0 as u64, t["signedPreKey"]["id"].as_u64().unwrap());
                    assert_eq!(spk.public_key().to_vec(), bytes(&t["signedPreKey"]["public"]));
                    assert_eq!(spk.signature().to_vec(), bytes(&t["signedPreKey"]["signature"]));
                    let opks = t["oneTimePreKeys"].as_array().unwrap();
                    assert_eq!(u.one_time_prekeys().len(), opks.len());
                    for (k, want) in u.one_time_prekeys().iter().zip(opks) {
                        assert_eq!(k.id().0 as u64, want["id"].as_u64().unwrap());
                        assert_eq!(k.public_key().to_vec(), bytes(&want["public"]));
                    }
                    for b in t["bundles"].as_array().unwrap() {
                        let opk = b["oneTimePreKeyId"]
                            .as_u64()
                            .map(|id| *u.one_time_prekeys().iter().find(|k| k.id().0 as u64 == id).unwrap());
                        let bundle = PreKeyBundle::assemble(u.identity_key(), &spk, opk.as_ref());
                        assert_eq!(bundle.to_bytes(), bytes(&b["bundle"]), "{ctx}: bundle");
                    }
                }
                check(t, r.map(|_| None), &ctx);
            }
            "device_certificate" => {
                if let Some(seed) = t.get("userSeed") {
                    let user = IdentityKeyPair::from_seed(&arr(seed));
                    let device = IdentityKey::from_bytes(&arr(&t["deviceKey"])).unwrap();
                    let cert = DeviceCertificate::sign(&user, DeviceId(t["deviceId"].as_u64().unwrap() as u32), device);
                    assert_eq!(cert.to_bytes(), bytes(&t["certificate"]), "{ctx}");
                    assert_eq!(cert.verify(&user.public_key()), Ok(()));
                } else {
                    let user = IdentityKey::from_bytes(&arr(&t["userKey"])).unwrap();
                    let r = DeviceCertificate::try_from(bytes(&t["certificate"]).as_slice())
                        .map_err(|e| e.category())
                        .and_then(|c| c.verify(&user).map_err(|e| e.category()));
                    check(t, r.map(|()| None), &ctx);
                }
            }
            "device_list" => {
                let user_key = IdentityKey::from_bytes(&arr(&t["userKey"])).unwrap();
                if let Some(seed) = t.get("userSeed") {
                    let user = IdentityKeyPair::from_seed(&arr(seed));
                    for s in t["sign"].as_array().unwrap() {
                        let devices: Vec<(DeviceId, IdentityKey)> = s["devices"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|d| {
                                (
                                    DeviceId(d["id"].as_u64().unwrap() as u32),
                                    IdentityKey::from_bytes(&arr(&d["key"])).unwrap(),
                                )
                            })
                            .collect();
                        let list = DeviceList::sign(&user, s["version"].as_u64().unwrap() as u32, &devices).unwrap();
                        assert_eq!(list.to_bytes(), bytes(&s["list"]), "{ctx}");
                        assert!(DeviceList::verify(&list.to_bytes(), &user_key, None).is_ok());
                    }
                } else {
                    let previous = t["previous"]
                        .as_str()
                        .map(|p| DeviceList::try_from(hex::decode(p).unwrap().as_slice()).unwrap());
                    let r = DeviceList::verify(&bytes(&t["list"]), &user_key, previous.as_ref());
                    check(t, c(r.map(|_| None)), &ctx);
                }
            }
            "binding" => {
                assert_eq!(
                    binding(&address(&t["initiator"]), &address(&t["responder"])),
                    bytes(&t["binding"]),
                    "{ctx}"
                );
            }
            "envelope" => {
                let raw = bytes(&t["envelope"]);
                let r = Envelope::try_from(raw.as_slice());
                if let Ok(e) = &r {
                    assert_eq!(*e.to_bytes(), raw, "{ctx}: re-encode");
                    let kind = t["kind"].as_str().unwrap();
                    match e {
                        Envelope::Content(x) => {
                            assert_eq!(kind, "content");
                            assert_eq!(*x, bytes(&t["content"]));
                        }
                        Envelope::Distribution(d) => {
                            assert_eq!(kind, "distribution");
                            assert_eq!(*d.to_bytes(), bytes(&t["distribution"]));
                        }
                        Envelope::DistributionRequest(g) => {
                            assert_eq!(kind, "distribution-request");
                            assert_eq!(g.as_bytes(), bytes(&t["groupId"]));
                        }
                        Envelope::Removed(g) => {
                            assert_eq!(kind, "removed");
                            assert_eq!(g.as_bytes(), bytes(&t["groupId"]));
                        }
                        Envelope::Group { group_id, sender, message } => {
                            assert_eq!(kind, "group-message");
                            assert_eq!(group_id.as_bytes(), bytes(&t["groupId"]));
                            assert_eq!(*sender, address(&t["sender"]));
                            assert_eq!(message.to_bytes(), bytes(&t["message"]));
                        }
                        _ => panic!("{ctx}: unknown envelope"),
                    }
                }
                check(t, c(r.map(|_| None)), &ctx);
            }
            "records" => run_records(t, &ctx),
            "groups" => run_groups(t, &ctx),
            "saved" => run_saved(t, &ctx),
            other => panic!("unknown group {other}"),
        }
    }
}

fn run_records(t: &Value, ctx: &str) {
    let parties = t["parties"].as_array().unwrap();
    let names: Vec<&str> = parties.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let mut accounts: Vec<Account> =
        parties.iter().map(|p| Account::from_bytes(&bytes(&p["account"])).unwrap()).collect();
    let addrs: Vec<Address> = parties.iter().map(|p| address(&p["address"])).collect();
    let keys: Vec<IdentityKey> =
        parties.iter().map(|p| IdentityKey::from_bytes(&arr(&p["identityKey"])).unwrap()).collect();
    let mut records: Vec<SessionRecord> =
        (0..2).map(|i| SessionRecord::new(addrs[i].clone(), addrs[1 - i].clone(), keys[1 - i])).collect();
    let mut first_error = None;
    for (n, ev) in t["events"].as_array().unwrap().iter().enumerate() {
        let ctx = format!("{ctx} event {n}");
        let p = names.iter().position(|x| *x == ev["party"].as_str().unwrap()).unwrap();
        let mut rng = Replay::from(&ev["randomness"]);
        match ev["event"].as_str().unwrap() {
            "initiate" => {
                let bundle = PreKeyBundle::try_from(bytes(&ev["bundle"]).as_slice()).unwrap();
                let before = records[p].to_bytes();
                let r = records[p].initiate(&mut rng, accounts[p].identity_key_pair(), &bundle);
                if r.is_ok() {
                    check_ids(ev, &records[p], &ctx);
                } else {
                    assert_eq!(*before, *records[p].to_bytes(), "{ctx}: unchanged");
                    first_error.get_or_insert(ev["error"].clone());
                }
                check(ev, c(r.map(|()| None)), &ctx);
            }
            "encrypt" => {
                let r = records[p].encrypt(&mut rng, &bytes(&ev["plaintext"]));
                if let Ok(m) = &r {
                    assert_eq!(m.to_bytes(), bytes(&ev["message"]), "{ctx}: message");
                } else {
                    first_error.get_or_insert(ev["error"].clone());
                }
                check(ev, r.map(|_| None).map_err(|e| e.category()), &ctx);
            }
            "decrypt" => {
                let before = (records[p].to_bytes(), accounts[p].to_bytes());
                let r = records[p].decrypt_bytes(&mut accounts[p], &bytes(&ev["message"])).map(|p| p.to_vec());
                check_cause(ev, &r, &ctx);
                if r.is_err() {
                    assert_eq!(*before.0, *records[p].to_bytes(), "{ctx}: record unchanged");
                    assert_eq!(*before.1, *accounts[p].to_bytes(), "{ctx}: account unchanged");
                    first_error.get_or_insert(ev["error"].clone());
                }
                check(ev, c(r.map(Some)), &ctx);
                check_ids(ev, &records[p], &ctx);
                let left: Vec<u64> = accounts[p].one_time_prekey_ids().iter().map(|i| u64::from(i.0)).collect();
                let want: Vec<u64> =
                    ev["oneTimePreKeyIds"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
                assert_eq!(left, want, "{ctx}: one-time prekeys left");
            }
            "loseSessions" => records[p] = SessionRecord::new(addrs[p].clone(), addrs[1 - p].clone(), keys[1 - p]),
            "useAccount" => accounts[p] = Account::from_bytes(&bytes(&ev["account"])).unwrap(),
            "setRemoteAddress" => {
                records[p] = SessionRecord::new(addrs[p].clone(), address(&ev["address"]), keys[1 - p])
            }
            "save" => assert_eq!(*records[p].to_bytes(), bytes(&ev["record"]), "{ctx}: saved record"),
            other => panic!("{ctx}: event {other}"),
        }
        rng.done();
    }
    assert_eq!(t["result"] == "invalid", first_error.is_some(), "{ctx}: result");
    if let Some(e) = first_error {
        assert_eq!(t["error"], e, "{ctx}: first error");
    }
}

fn run_groups(t: &Value, ctx: &str) {
    let parties = t["parties"].as_array().unwrap();
    let gid = GroupId::new(&bytes(&t["groupId"])).unwrap();
    let mut states: Vec<Option<Group>> = parties.iter().map(|_| None).collect();
    for (n, ev) in t["events"].as_array().unwrap().iter().enumerate() {
        let ctx = format!("{ctx} event {n}");
        let p = ev["party"].as_u64().unwrap() as usize;
        let mut rng = Replay::from(&ev["randomness"]);
        match ev["event"].as_str().unwrap() {
            "create" => {
                let members: Vec<(Address, IdentityKey)> = ev["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| (address(&m["address"]), IdentityKey::from_bytes(&arr(&m["identityKey"])).unwrap()))
                    .collect();
                let me = &parties[p];
                let g = Group::create(
                    &mut rng,
                    gid.clone(),
                    address(&me["address"]),
                    IdentityKey::from_bytes(&arr(&me["identityKey"])).unwrap(),
                    &members,
                )
                .unwrap();
                states[p] = Some(g);
            }
            "encrypt" => match states[p].as_mut().unwrap().encrypt(&bytes(&ev["plaintext"])) {
                Ok(e) => assert_eq!(*e.to_bytes(), bytes(&ev["envelope"]), "{ctx}: envelope"),
                Err(e) => {
                    assert_eq!(e, EncryptError::NotMember, "{ctx}");
                    assert_eq!(ev["cause"], "not-member", "{ctx}: cause");
                    check(ev, Err(e.category()), &ctx);
                }
            },
            "addMember" => add_member(states[p].as_mut().unwrap(), ev, &ctx),
            "addDistribution" => {
                let g = states[p].as_mut().unwrap();
                let via = SessionRecord::new(
                    g.local().clone(),
                    address(&ev["from"]),
                    IdentityKey::from_bytes(&arr(&ev["fromIdentity"])).unwrap(),
                );
                let d = match SenderKeyDistribution::try_from(bytes(&ev["distribution"]).as_slice()) {
                    Ok(d) => d,
                    Err(e) => {
                        // Decoded first (SPEC.md §7.7): whatever the state.
                        check(ev, Err(e.category()), &ctx);
                        rng.done();
                        continue;
                    }
                };
                let before = g.to_bytes();
                let r = g.add_distribution(&via, &d);
                if r.is_err() {
                    assert_eq!(*before, *g.to_bytes(), "{ctx}: unchanged");
                }
                check_cause(ev, &r.map(|()| Vec::new()), &ctx);
                check(ev, c(r.map(|()| None)), &ctx);
            }
            "decrypt" => {
                let g = states[p].as_mut().unwrap();
                let e = Envelope::try_from(bytes(&ev["envelope"]).as_slice()).unwrap();
                let before = g.to_bytes();
                let r = g.decrypt(&e);
                if r.is_err() {
                    assert_eq!(*before, *g.to_bytes(), "{ctx}: unchanged");
                }
                check_cause(ev, &r, &ctx);
                check(ev, c(r.map(Some)), &ctx);
            }
            "removeMember" => {
                let g = states[p].as_mut().unwrap();
                let before = g.to_bytes();
                match g.remove_member(&mut rng, &address(&ev["member"])) {
                    Some(Envelope::Distribution(d)) => {
                        assert_eq!(*d.to_bytes(), bytes(&ev["distribution"]), "{ctx}: distribution");
                        check(ev, Ok(None), &ctx);
                    }
                    _ => {
                        assert_eq!(*before, *g.to_bytes(), "{ctx}: unchanged");
                        check(ev, Err(ErrorCategory::Decode), &ctx);
                    }
                }
            }
            "markRemoved" => states[p].as_mut().unwrap().mark_removed(),
            "answerRequest" => {
                let g = states[p].as_ref().unwrap();
                let via = SessionRecord::new(
                    g.local().clone(),
                    address(&ev["from"]),
                    IdentityKey::from_bytes(&arr(&ev["fromIdentity"])).unwrap(),
                );
                let gid = GroupId::new(&bytes(&ev["groupId"])).unwrap();
                let r = g.answer_request(&via, &gid);
                if let Ok(Envelope::Distribution(d)) = &r {
                    assert_eq!(*d.to_bytes(), bytes(&ev["distribution"]), "{ctx}: distribution");
                }
                check(ev, c(r.map(|_| None)), &ctx);
            }
            "save" => {}
            other => panic!("{ctx}: event {other}"),
        }
        rng.done();
        if let Some(state) = ev.get("state") {
            assert_eq!(*states[p].as_ref().unwrap().to_bytes(), bytes(state), "{ctx}: saved group");
        }
    }
}

/// An `addMember` event: the distribution to send the new member, or a
/// refusal (`decode`) that changes nothing.
fn add_member(g: &mut Group, ev: &Value, ctx: &str) {
    let key = IdentityKey::from_bytes(&arr(&ev["identityKey"])).unwrap();
    let before = g.to_bytes();
    match g.add_member(address(&ev["member"]), key) {
        Ok(Envelope::Distribution(d)) => {
            assert_eq!(*d.to_bytes(), bytes(&ev["distribution"]), "{ctx}: distribution");
            check(ev, Ok(None), ctx);
        }
        Ok(_) => panic!("{ctx}: not a distribution"),
        Err(e) => {
            assert_eq!(*before, *g.to_bytes(), "{ctx}: unchanged");
            check(ev, Err(e.category()), ctx);
        }
    }
}

fn run_saved(t: &Value, ctx: &str) {
    let state = bytes(&t["state"]);
    match t["kind"].as_str().unwrap() {
        "account" => match Account::from_bytes(&state) {
            Ok(a) => {
                for ev in t["events"].as_array().unwrap() {
                    match ev["event"].as_str().unwrap() {
                        "save" => assert_eq!(*a.to_bytes(), bytes(&ev["state"]), "{ctx}: saved"),
                        _ => assert_eq!(upload_of(&a), bytes(&ev["upload"]), "{ctx}: upload"),
                    }
                }
                check(t, Ok(None), ctx);
            }
            Err(e) => check(t, Err(e.category()), ctx),
        },
        "record" => {
            let r = match t.get("sealed") {
                Some(sealed) => c(SessionRecord::unseal(&arr(&t["storageKey"]), &bytes(sealed))),
                None => c(SessionRecord::from_bytes(&state)),
            };
            if let Ok(r) = &r {
                assert_eq!(*r.to_bytes(), state, "{ctx}: re-save");
                if t.get("current").is_some() {
                    check_ids(t, r, ctx);
                }
            }
            check(t, r.map(|_| None), ctx);
        }
        _ => match Group::from_bytes(&state) {
            Ok(mut g) => {
                assert_eq!(*g.to_bytes(), state, "{ctx}: re-save");
                for ev in t["events"].as_array().unwrap() {
                    match ev["event"].as_str().unwrap() {
                        "save" => assert_eq!(*g.to_bytes(), bytes(&ev["state"]), "{ctx}: saved"),
                        "addMember" => add_member(&mut g, ev, ctx),
                        _ => {
                            let e = Envelope::try_from(bytes(&ev["envelope"]).as_slice()).unwrap();
                            check(ev, c(g.decrypt(&e).map(Some)), ctx);
                        }
                    }
                }
                check(t, Ok(None), ctx);
            }
            Err(e) => check(t, Err(e.category()), ctx),
        },
    }
}

// ------------------------------------------------------------ pqxdh.json

/// Bob's account, made as SPEC.md §8 says from the listed private values:
/// identity seed, signed prekey, last-resort KEM seed, then one-time
/// prekeys and one-time KEM prekeys.
fn pq_account(bob: &Value) -> Account {
    let kems = bob["kemPreKeys"].as_array().unwrap();
    assert_eq!(kems[0]["kind"], "lastResort");
    let first = serde_json::json!([bob["identitySeed"], bob["signedPreKey"]["private"], kems[0]["seed"]]);
    let mut rng = Replay::from(&first);
    let mut account = Account::new(&mut rng);
    rng.done();
    let opks: Vec<Value> = bob["oneTimePreKeys"].as_array().unwrap().iter().map(|k| k["private"].clone()).collect();
    let mut rng = Replay::from(&Value::from(opks.clone()));
    let ids = account.generate_one_time_prekeys(&mut rng, opks.len());
    rng.done();
    for (id, k) in ids.iter().zip(bob["oneTimePreKeys"].as_array().unwrap()) {
        assert_eq!(u64::from(id.0), k["id"].as_u64().unwrap());
    }
    let seeds: Vec<Value> = kems[1..].iter().map(|k| k["seed"].clone()).collect();
    let mut rng = Replay::from(&Value::from(seeds.clone()));
    let ids = account.generate_kem_prekeys(&mut rng, seeds.len());
    rng.done();
    for (id, k) in ids.iter().zip(&kems[1..]) {
        assert_eq!(u64::from(id.0), k["id"].as_u64().unwrap());
    }
    account
}

#[test]
fn pqxdh_vectors() {
    let v = load("pqxdh");
    for (kind, t) in tests(&v) {
        let ctx = format!("pqxdh tcId {}", t["tcId"]);
        match kind {
            "mlkem" if t["result"] == "valid" => {
                let seed: [u8; KEM_SEED_LEN] = arr(&t["seed"]);
                let ek = hazmat::kem_public_key(&seed);
                assert_eq!(ek, bytes(&t["encapsulationKey"]), "{ctx}");
                let (ct, ss) = hazmat::kem_encapsulate(&arr(&t["encapsulationKey"]), &arr(&t["m"]));
                assert_eq!(ct, bytes(&t["ciphertext"]), "{ctx}");
                assert_eq!(ss.to_vec(), bytes(&t["sharedSecret"]), "{ctx}");
                assert_eq!(hazmat::kem_decapsulate(&seed, &arr(&t["ciphertext"])), ss, "{ctx}");
                let other = hazmat::kem_decapsulate(&seed, &arr(&t["otherCiphertext"]));
                assert_eq!(other.to_vec(), bytes(&t["otherSharedSecret"]), "{ctx}");
            }
            "mlkem" => {
                assert!(!hazmat::kem_key_acceptable(&arr(&t["encapsulationKey"])), "{ctx}");
                assert_eq!(t["error"], "invalid-key");
            }
            "pqxdh_valid" => {
                let alice = IdentityKeyPair::from_seed(&arr(&t["alice"]["identitySeed"]));
                let mut bob = pq_account(&t["bob"]);
                let binding = bytes(&t["binding"]);
                let bundle = PreKeyBundle::try_from(bytes(&t["bundle"]).as_slice()).unwrap();
                let kem = bundle.kem_prekey().unwrap();
                assert_eq!(u64::from(kem.id().0), t["kemPreKeyId"].as_u64().unwrap(), "{ctx}");
                assert_eq!(kem.public_key().to_vec(), bytes(&t["kemPublicKey"]), "{ctx}");
                assert_eq!(kem.signature().to_vec(), bytes(&t["kemSignature"]), "{ctx}");
                assert_eq!(
                    bob.prekey_bundle_with_kem(bundle.one_time_prekey_id(), Some(kem.id())).unwrap().to_bytes(),
                    bytes(&t["bundle"]),
                    "{ctx}: Bob's own bundle"
                );
                let mut rng = Replay::from(&t["randomness"]);
                let (ek, tr) = hazmat::x3dh_initiate(&mut rng, &alice, &bundle, &binding).unwrap();
                rng.done();
                assert_eq!(ek.to_vec(), bytes(&t["ephemeralPublic"]), "{ctx}");
                let dh: Vec<String> = tr.dh.iter().map(hex::encode).collect();
                assert_eq!(Value::from(dh), t["dh"], "{ctx}");
                assert_eq!(tr.kem_ciphertext.clone().unwrap(), bytes(&t["kemCiphertext"]), "{ctx}");
                assert_eq!(tr.kem_shared_secret.unwrap().to_vec(), bytes(&t["kemSharedSecret"]), "{ctx}");
                assert_eq!(tr.sk.to_vec(), bytes(&t["sk"]), "{ctx}");
                assert_eq!(tr.ad, bytes(&t["ad"]), "{ctx}");
                assert_eq!(tr.ad_hash.to_vec(), bytes(&t["adHash"]), "{ctx}");
                // The responder, through the public API: a whole session.
                let mut rng = Replay::from(&Value::from(vec![
                    t["randomness"][0].clone(),
                    t["randomness"][1].clone(),
                    Value::from(hex::encode([7u8; 32])),
                ]));
                let mut a = Session::initiate(&mut rng, &alice, &bundle, &binding).unwrap();
                let Message::PreKey(m) = a.encrypt(&mut rng, b"vector").unwrap() else { panic!("{ctx}") };
                assert_eq!(m.kem_ciphertext().unwrap().to_vec(), bytes(&t["kemCiphertext"]), "{ctx}");
                let inbound = Session::respond(&mut bob, &m, &binding).unwrap();
                assert_eq!(inbound.plaintext, b"vector", "{ctx}");
                assert!(inbound.session.is_post_quantum());
            }
            "pqxdh_invalid_bundle" => {
                let alice = IdentityKeyPair::from_seed(&arr(&t["aliceIdentitySeed"]));
                let bundle = PreKeyBundle::try_from(bytes(&t["bundle"]).as_slice()).unwrap();
                let mut rng = Replay::from(&t["randomness"]);
                let r = Session::initiate(&mut rng, &alice, &bundle, &bytes(&t["binding"])).map(|_| None);
                check(t, c(r), &ctx);
                rng.done();
            }
            "decode_valid" | "decode_invalid" => {
                let b = bytes(&t["encoded"]);
                let f = &t["fields"];
                let r: Result<Vec<u8>, DecodeError> = match t["type"].as_str().unwrap() {
                    "message" => NormalMessage::try_from(b.as_slice()).map(|m| {
                        assert_eq!(m.ratchet_key().to_vec(), bytes(&f["ratchetKey"]), "{ctx}");
                        m.to_bytes()
                    }),
                    "prekey_message" => PreKeyMessage::try_from(b.as_slice()).map(|m| {
                        assert_eq!(m.version(), 2, "{ctx}");
                        assert_eq!(m.kem_prekey_id().map(|i| u64::from(i.0)), f["kemPreKeyId"].as_u64(), "{ctx}");
                        assert_eq!(m.kem_ciphertext().unwrap().to_vec(), bytes(&f["kemCiphertext"]), "{ctx}");
                        assert_eq!(m.message().to_bytes(), bytes(&f["message"]), "{ctx}");
                        m.to_bytes()
                    }),
                    "prekey_bundle" => PreKeyBundle::try_from(b.as_slice()).map(|m| {
                        let kem = m.kem_prekey().unwrap();
                        assert_eq!(kem.public_key().to_vec(), bytes(&f["kemPreKey"]), "{ctx}");
                        assert_eq!(
                            m.one_time_prekey_id().map(|i| u64::from(i.0)),
                            f["oneTimePreKeyId"].as_u64(),
                            "{ctx}"
                        );
                        m.verify().unwrap();
                        m.to_bytes()
                    }),
                    other => panic!("unknown type {other}"),
                };
                if kind == "decode_valid" {
                    assert_eq!(r.as_ref().unwrap(), &b, "{ctx}: re-encoding");
                }
                check(t, c(r.map(|_| None)), &ctx);
            }
            "upload" => {
                let b = bytes(&t["upload"]);
                let r = c(PreKeyUpload::try_from(b.as_slice()));
                match (t.get("verify"), r) {
                    (Some(want), Ok(u)) => {
                        assert_eq!(u.to_bytes(), b, "{ctx}: re-encoding");
                        let got = c(u.verify()).err().map_or("valid", ErrorCategory::name);
                        assert_eq!(want.as_str().unwrap(), got, "{ctx}");
                        if let Some(acc) = t.get("account") {
                            assert_eq!(
                                pq_account(acc).prekeys_to_publish().to_bytes(),
                                b,
                                "{ctx}: the account's upload"
                            );
                        }
                    }
                    (None, r) => check(t, r.map(|_| None), &ctx),
                    (Some(_), Err(e)) => panic!("{ctx}: {e}"),
                }
            }
            "transcript" => run_pq_transcript(t, &ctx),
            "records" => run_records(t, &ctx),
            "saved_state" => {
                let r = c(Account::from_bytes(&bytes(&t["state"])));
                if let Ok(account) = &r {
                    assert_eq!(*account.to_bytes(), bytes(&t["state"]), "{ctx}: re-save");
                    for ev in t["events"].as_array().unwrap() {
                        let opk = ev["oneTimePreKeyId"].as_u64().map(|i| PreKeyId(i as u32));
                        let kem = ev["kemPreKeyId"].as_u64().map(|i| PreKeyId(i as u32));
                        match account.prekey_bundle_with_kem(opk, kem) {
                            Some(b) => assert_eq!(b.to_bytes(), bytes(&ev["bundle"]), "{ctx}"),
                            None => assert_eq!(ev["error"], "unknown-prekey", "{ctx}"),
                        }
                    }
                }
                check(t, r.map(|_| None), &ctx);
            }
            other => panic!("unknown group {other}"),
        }
    }
}

fn run_pq_transcript(t: &Value, ctx: &str) {
    let alice = IdentityKeyPair::from_seed(&arr(&t["alice"]["identitySeed"]));
    let mut bob = Account::from_bytes(&bytes(&t["bobAccount"])).unwrap();
    let made = pq_account(&t["bob"]);
    // The listing makes the same account, apart from the requires-PQ flag
    // a test may have turned off.
    assert_eq!(made.identity_key(), bob.identity_key(), "{ctx}");
    let mut sessions: BTreeMap<&str, Session> = BTreeMap::new();
    let mut first_error = None;
    for (i, ev) in t["events"].as_array().unwrap().iter().enumerate() {
        let ctx = format!("{ctx} event {i}");
        let party = ev["party"].as_str().unwrap();
        match ev["event"].as_str().unwrap() {
            "initiate" => {
                let bundle = PreKeyBundle::try_from(bytes(&ev["bundle"]).as_slice()).unwrap();
                let mut rng = Replay::from(&ev["randomness"]);
                sessions.insert("alice", Session::initiate(&mut rng, &alice, &bundle, &bytes(&ev["binding"])).unwrap());
                rng.done();
            }
            "encrypt" => {
                let mut rng = Replay::from(&ev["randomness"]);
                let m = sessions.get_mut(party).unwrap().encrypt(&mut rng, &bytes(&ev["plaintext"])).unwrap();
                rng.done();
                assert_eq!(m.to_bytes(), bytes(&ev["message"]), "{ctx}");
            }
            "respond" => {
                let before = bob.to_bytes();
                let r = c(PreKeyMessage::try_from(bytes(&ev["message"]).as_slice()))
                    .and_then(|m| c(Session::respond(&mut bob, &m, &bytes(&ev["binding"]))));
                match r {
                    Ok(inbound) => {
                        check(ev, Ok(Some(inbound.plaintext.clone())), &ctx);
                        sessions.insert("bob", inbound.session);
                    }
                    Err(e) => {
                        assert_eq!(*before, *bob.to_bytes(), "{ctx}: unchanged");
                        first_error.get_or_insert(e);
                        check(ev, Err(e), &ctx);
                    }
                }
                assert_eq!(*bob.to_bytes(), bytes(&ev["account"]), "{ctx}: account");
            }
            "decrypt" => {
                let s = sessions.get_mut(party).unwrap();
                let before = s.to_bytes();
                let r = c(s.decrypt_bytes(&bytes(&ev["message"])));
                if let Err(e) = r {
                    assert_eq!(*before, *s.to_bytes(), "{ctx}: unchanged");
                    first_error.get_or_insert(e);
                }
                check(ev, r.map(Some), &ctx);
            }
            "rotate" => {
                let mut rng = Replay::from(&ev["randomness"]);
                bob.rotate_signed_prekey(&mut rng).unwrap();
                rng.done();
                assert_eq!(*bob.to_bytes(), bytes(&ev["account"]), "{ctx}: account");
            }
            "retire" => {
                bob.retire_previous_signed_prekey();
                assert_eq!(*bob.to_bytes(), bytes(&ev["account"]), "{ctx}: account");
            }
            "save" => {
                let state = sessions[party].to_bytes();
                assert_eq!(*state, bytes(&ev["state"]), "{ctx}");
                assert_eq!(*Session::from_bytes(&state).unwrap().to_bytes(), *state, "{ctx}: restore");
            }
            other => panic!("{ctx}: unknown event {other}"),
        }
    }
    assert_eq!(first_error.map(ErrorCategory::name), t["error"].as_str(), "{ctx}: first error");
}
