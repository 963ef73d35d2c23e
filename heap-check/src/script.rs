//! The recorded run: a few hundred library operations covering every place
//! that holds a secret (accounts and prekeys, X3DH, the ratchet with skipped
//! keys, failed decrypts, every persistence path, groups with rotation and
//! forgetting). After each step the states involved are read (recording
//! off) so every intermediate ratchet key is known.
//!
//! Calls whose signatures are about to change live in the small helpers at
//! the top, so adapting to the new API touches one place each.

use sottovoce::{
    Account, DecryptError, GroupId, GroupMessage, GroupReceiver, GroupSender, MAX_GROUP_SKIP, MAX_SKIP,
    MAX_SKIPPED_KEYS, Message, PreKeyBundle, PreKeyMessage, PreKeyStore, SenderKeyDistribution, Session, Snapshot,
    hazmat,
};

/// A distribution encrypted once per session, as bare bytes (distribution
/// envelopes over session records are in `conversations.rs`).
fn fan_out<'a>(
    rng: &mut Recorder,
    d: &SenderKeyDistribution,
    sessions: impl IntoIterator<Item = &'a mut Session>,
) -> Vec<Result<Message, sottovoce::EncryptError>> {
    let bytes = d.to_bytes();
    sessions.into_iter().map(|s| s.encrypt(rng, &bytes)).collect()
}

use crate::heap;
use crate::rng::Recorder;
use crate::secrets::Observer;

pub(crate) type R<T> = Result<T, String>;

pub(crate) fn must<T, E: std::fmt::Debug>(r: Result<T, E>, what: &str) -> R<T> {
    r.map_err(|e| format!("{what}: {e:?}"))
}

fn must_fail<T, E>(r: Result<T, E>, what: &str) -> R<()> {
    match r {
        Ok(_) => Err(format!("{what}: succeeded but must fail")),
        Err(_) => Ok(()),
    }
}

// ------------------------------------------------ API that is changing

/// The prekey message inside a `Message` (`Message::PreKey(Box<_>)`; the
/// deref coercion below also accepts an unboxed variant).
fn prekey_message(m: &Message) -> Option<&PreKeyMessage> {
    match m {
        Message::PreKey(p) => {
            let p: &PreKeyMessage = p;
            Some(p)
        }
        _ => None,
    }
}

/// Forget-below of one sender key.
fn forget_below(r: &mut GroupReceiver, key_id: u32, iteration: u32) -> Result<(), DecryptError> {
    r.forget_below(key_id, iteration)
}

/// Account persistence round trip: `to_bytes`/`from_bytes`, then a
/// `Snapshot` through serde JSON and `restore` (no randomness drawn).
fn account_roundtrip(account: Account) -> R<Account> {
    let saved = account.to_bytes();
    drop(account);
    let restored = must(Account::from_bytes(&saved), "Account::from_bytes")?;
    drop(saved);
    let snapshot = restored.snapshot();
    drop(restored);
    let json = must(serde_json::to_string(&snapshot), "serde_json::to_string(account snapshot)")?;
    drop(snapshot);
    let back: sottovoce::Snapshot = must(serde_json::from_str(&json), "serde_json::from_str(account snapshot)")?;
    must(Account::restore(&back), "Account::restore")
}

// ------------------------------------------------ steps

macro_rules! step {
    ($obs:expr, $rng:expr, $kinds:expr, $($fmt:tt)+) => {{
        let n = $obs.step(format_args!($($fmt)+));
        $rng.expect($kinds, n);
    }};
}
pub(crate) use step;

pub(crate) const NONE: &[&str] = &["unexpected draw"];
pub(crate) const ACCOUNT: &[&str] = &["identity seed", "SPK.priv"];
pub(crate) const OPK: &[&str] = &["OPK.priv"];
const SPK: &[&str] = &["SPK.priv"];
/// A PQXDH initiate (every account of the script is post-quantum): EK_A,
/// the encapsulation randomness m, then the first ratchet key.
pub(crate) const INITIATE: &[&str] = &["EK_A.priv", "ML-KEM m", "DHs.priv"];
pub(crate) const DHS: &[&str] = &["DHs.priv"];
pub(crate) const SENDER_KEY: &[&str] = &["group CK", "group signing seed"];

const AB: &[u8] = b"alice|bob";
const CB: &[u8] = b"carol|bob";
const CA: &[u8] = b"carol|alice";

/// Notes the X3DH of a prekey message before `respond` consumes the
/// one-time prekey (hazmat transcript, recording off).
fn note_x3dh(obs: &mut Observer, store: &Account, m: &PreKeyMessage, binding: &[u8], init: &str, resp: &str) -> R<()> {
    heap::paused(|| {
        let spk = store.signed_prekey(m.signed_prekey_id()).ok_or("signed prekey not held")?;
        let opk = match m.one_time_prekey_id() {
            Some(id) => Some(store.one_time_prekey(id).ok_or("one-time prekey not held")?),
            None => None,
        };
        let kem = match (m.kem_prekey_id(), m.kem_ciphertext()) {
            (Some(id), Some(ct)) => Some((store.kem_prekey(id).ok_or("KEM prekey not held")?, ct)),
            _ => None,
        };
        let t = must(
            hazmat::x3dh_respond(store.identity_key_pair(), spk, opk, kem, &m.identity_key(), &m.base_key(), binding),
            "x3dh_respond",
        )?;
        obs.x3dh(init, resp, &t, (&spk.to_secret(), &spk.public_key()));
        Ok(())
    })
}

/// One result of `distribute`.
fn sent(fan: &[Result<Message, sottovoce::EncryptError>], i: usize) -> R<&Message> {
    match fan.get(i) {
        Some(Ok(m)) => Ok(m),
        other => Err(format!("distribute result {i}: {other:?}")),
    }
}

fn bundle(store: &Account, opk: Option<sottovoce::PreKeyId>) -> R<PreKeyBundle> {
    let b = store.prekey_bundle(opk).ok_or("prekey_bundle: None")?;
    must(PreKeyBundle::try_from(b.to_bytes().as_slice()), "bundle decode")
}

/// A session pair.
struct Pair {
    a: Session,
    b: Session,
    an: &'static str,
    bn: &'static str,
}

/// Initiate from `init` to `resp`'s bundle, send `first` prekey messages,
/// respond to the first and deliver the rest to the new session.
#[allow(clippy::too_many_arguments)]
fn establish(
    obs: &mut Observer,
    rng: &mut Recorder,
    init: &Account,
    resp: &mut Account,
    opk: Option<sottovoce::PreKeyId>,
    binding: &[u8],
    names: (&'static str, &'static str),
    first: usize,
) -> R<Pair> {
    let (an, bn) = names;
    step!(obs, rng, NONE, "{an}: fetch bundle (OPK: {})", opk.is_some());
    let b = bundle(resp, opk)?;
    step!(obs, rng, INITIATE, "{an}: Session::initiate (OPK: {})", opk.is_some());
    let mut a = must(Session::initiate(rng, init.identity_key_pair(), &b, binding), "initiate")?;
    obs.session(an, &a);
    let mut wires = Vec::new();
    for i in 0..first {
        step!(obs, rng, DHS, "{an}: encrypt prekey message #{i}");
        wires.push(must(a.encrypt(rng, format!("{an} prekey message {i}").as_bytes()), "encrypt")?.to_bytes());
        obs.session(an, &a);
    }
    step!(obs, rng, NONE, "{bn}: Session::respond to a tampered prekey message (fails, keeps the OPK)");
    let mut t = wires[0].clone();
    let last = t.len() - 1;
    t[last] ^= 1;
    let tm = must(Message::try_from(t.as_slice()), "decode tampered prekey message")?;
    must_fail(Session::respond(resp, prekey_message(&tm).ok_or("not a prekey message")?, binding), "tampered respond")?;
    drop(tm);
    step!(obs, rng, NONE, "{bn}: Session::respond (OPK: {})", opk.is_some());
    let m = must(Message::try_from(wires[0].as_slice()), "decode prekey message")?;
    let pkm = prekey_message(&m).ok_or("not a prekey message")?;
    note_x3dh(obs, resp, pkm, binding, an, bn)?;
    let inbound = must(Session::respond(resp, pkm, binding), "respond")?;
    let mut bs = inbound.session;
    drop(inbound.plaintext);
    drop(m);
    obs.session(bn, &bs);
    for (i, w) in wires.iter().enumerate().skip(1) {
        step!(obs, rng, NONE, "{bn}: decrypt prekey message #{i} on the session");
        must(bs.decrypt_bytes(w), "decrypt prekey message")?;
        obs.session(bn, &bs);
    }
    Ok(Pair { a, b: bs, an, bn })
}

/// `rounds` round trips: the sender of each round sends several messages,
/// delivered out of order (one held back within the round, one held back
/// until after the last round), a tampered copy is refused first, then the
/// other side answers, its answers delivered in reverse on odd rounds.
fn converse(obs: &mut Observer, rng: &mut Recorder, p: &mut Pair, rounds: usize, tag: &str) -> R<()> {
    let (an, bn) = (p.an, p.bn);
    let mut late: Vec<Vec<u8>> = Vec::new();
    for r in 0..rounds {
        let n = 3 + r % 3;
        let mut wires = Vec::new();
        for i in 0..n {
            step!(obs, rng, DHS, "{tag} round {r}: {an} encrypt #{i}");
            wires.push(must(p.a.encrypt(rng, format!("{an} {tag} {r}.{i}").as_bytes()), "encrypt")?.to_bytes());
            obs.session(an, &p.a);
        }
        if r % 2 == 0 {
            step!(obs, rng, NONE, "{tag} round {r}: {bn} decrypt tampered (new ratchet key)");
            let mut t = wires[0].clone();
            let last = t.len() - 1;
            t[last] ^= 1;
            must_fail(p.b.decrypt_bytes(&t), "tampered decrypt")?;
            obs.session(bn, &p.b);
        }
        let held = wires.remove(1);
        if r == 0 && rounds > 1 {
            late.push(wires.remove(1));
        }
        for (i, w) in wires.iter().enumerate() {
            step!(obs, rng, NONE, "{tag} round {r}: {bn} decrypt in order #{i}");
            if i % 2 == 0 {
                must(p.b.decrypt_bytes(w), "decrypt")?;
            } else {
                let m = must(Message::try_from(w.as_slice()), "decode")?;
                must(p.b.decrypt(&m), "decrypt")?;
            }
            obs.session(bn, &p.b);
        }
        step!(obs, rng, NONE, "{tag} round {r}: {bn} decrypt held-back message (skipped key)");
        must(p.b.decrypt_bytes(&held), "decrypt held")?;
        obs.session(bn, &p.b);
        step!(obs, rng, NONE, "{tag} round {r}: {bn} replay (duplicate)");
        must_fail(p.b.decrypt_bytes(&held), "replay")?;

        let mut replies = Vec::new();
        for i in 0..2 {
            step!(obs, rng, DHS, "{tag} round {r}: {bn} encrypt reply #{i}");
            replies.push(must(p.b.encrypt(rng, format!("{bn} {tag} {r}.{i}").as_bytes()), "encrypt")?.to_bytes());
            obs.session(bn, &p.b);
        }
        if r % 2 == 1 {
            replies.reverse();
        }
        for (i, w) in replies.iter().enumerate() {
            step!(obs, rng, NONE, "{tag} round {r}: {an} decrypt reply #{i}");
            must(p.a.decrypt_bytes(w), "decrypt reply")?;
            obs.session(an, &p.a);
        }
    }
    for (i, w) in late.iter().enumerate() {
        step!(obs, rng, NONE, "{tag}: {bn} decrypt message held back across ratchet steps #{i}");
        must(p.b.decrypt_bytes(w), "decrypt late")?;
        obs.session(bn, &p.b);
    }
    Ok(())
}

/// One exchange through `encrypt_into` / `decrypt_into` (normal messages).
fn into_buffers(obs: &mut Observer, rng: &mut Recorder, p: &mut Pair, tag: &str) -> R<()> {
    let (an, bn) = (p.an, p.bn);
    step!(obs, rng, DHS, "{tag}: {an} encrypt_into");
    let text = b"into a caller buffer";
    let mut out = vec![0u8; text.len() + sottovoce::MESSAGE_OVERHEAD];
    let n = must(p.a.encrypt_into(rng, text, &mut out), "encrypt_into")?;
    obs.session(an, &p.a);
    step!(obs, rng, NONE, "{tag}: {bn} decrypt_into");
    let mut plain = vec![0u8; n];
    must(p.b.decrypt_into(&out[..n], &mut plain), "decrypt_into")?;
    obs.session(bn, &p.b);
    Ok(())
}

/// Every persistence path on a session: to_bytes/from_bytes, seal/unseal,
/// snapshot/restore, serde JSON of a Snapshot.
fn persist_session(
    obs: &mut Observer,
    rng: &mut Recorder,
    s: Session,
    name: &str,
    key: &[u8; 32],
    how: u8,
) -> R<Session> {
    let s = match how {
        0 => {
            step!(obs, rng, NONE, "{name}: Session::to_bytes + from_bytes (and a truncated copy, refused)");
            let bytes = s.to_bytes();
            drop(s);
            must_fail(Session::from_bytes(&bytes[..bytes.len() - 1]), "truncated from_bytes")?;
            must(Session::from_bytes(&bytes), "from_bytes")?
        }
        1 => {
            step!(obs, rng, NONE, "{name}: Session::seal + unseal (and a tampered copy, refused)");
            let sealed = s.seal(rng, key);
            drop(s);
            let mut bad = sealed.clone();
            bad[40] ^= 1;
            must_fail(Session::unseal(key, &bad), "tampered unseal")?;
            must(Session::unseal(key, &sealed), "unseal")?
        }
        2 => {
            step!(obs, rng, NONE, "{name}: Session::snapshot + restore");
            let snap = s.snapshot();
            drop(s);
            must(Session::restore(&snap), "restore")?
        }
        _ => {
            step!(obs, rng, NONE, "{name}: snapshot + serde_json::to_string");
            let snap = s.snapshot();
            drop(s);
            let json = must(serde_json::to_string(&snap), "to_string")?;
            drop(snap);
            step!(obs, rng, NONE, "{name}: serde_json::from_str::<Snapshot> + restore");
            let snap: Snapshot = must(serde_json::from_str(&json), "from_str")?;
            // The JSON text is the application's buffer: wiped, not counted.
            heap::wipe_string(json);
            must(Session::restore(&snap), "restore")?
        }
    };
    obs.session(name, &s);
    Ok(s)
}

fn persist_receiver(
    obs: &mut Observer,
    rng: &mut Recorder,
    r: GroupReceiver,
    name: &str,
    key: &[u8; 32],
    how: u8,
) -> R<GroupReceiver> {
    let r = match how {
        0 => {
            step!(obs, rng, NONE, "{name}: GroupReceiver::to_bytes + from_bytes (and a truncated copy, refused)");
            let bytes = r.to_bytes();
            drop(r);
            must_fail(GroupReceiver::from_bytes(&bytes[..bytes.len() - 1]), "truncated from_bytes")?;
            must(GroupReceiver::from_bytes(&bytes), "from_bytes")?
        }
        1 => {
            step!(obs, rng, NONE, "{name}: GroupReceiver::seal + unseal");
            let sealed = r.seal(rng, key);
            drop(r);
            must(GroupReceiver::unseal(key, &sealed), "unseal")?
        }
        2 => {
            step!(obs, rng, NONE, "{name}: GroupReceiver::snapshot + restore");
            let snap = r.snapshot();
            drop(r);
            must(GroupReceiver::restore(&snap), "restore")?
        }
        _ => {
            step!(obs, rng, NONE, "{name}: group snapshot + serde_json round trip");
            let snap = r.snapshot();
            drop(r);
            let json = must(serde_json::to_string(&snap), "to_string")?;
            drop(snap);
            let snap: Snapshot = must(serde_json::from_str(&json), "from_str")?;
            heap::wipe_string(json);
            must(GroupReceiver::restore(&snap), "restore")?
        }
    };
    obs.receiver(name, &r);
    Ok(r)
}

fn persist_sender(
    obs: &mut Observer,
    rng: &mut Recorder,
    s: GroupSender,
    name: &str,
    key: &[u8; 32],
    how: u8,
) -> R<GroupSender> {
    let s = match how {
        0 => {
            step!(obs, rng, NONE, "{name}: GroupSender::to_bytes + from_bytes");
            let bytes = s.to_bytes();
            drop(s);
            must(GroupSender::from_bytes(&bytes), "from_bytes")?
        }
        1 => {
            step!(obs, rng, NONE, "{name}: GroupSender::seal + unseal (and a tampered copy, refused)");
            let sealed = s.seal(rng, key);
            drop(s);
            let mut bad = sealed.clone();
            bad[40] ^= 1;
            must_fail(GroupSender::unseal(key, &bad), "tampered unseal")?;
            must(GroupSender::unseal(key, &sealed), "unseal")?
        }
        _ => {
            step!(obs, rng, NONE, "{name}: GroupSender::snapshot + restore");
            let snap = s.snapshot();
            drop(s);
            must(GroupSender::restore(&snap), "restore")?
        }
    };
    obs.sender(name, &s);
    Ok(s)
}

/// A distribution sent over a session and turned into a receiver (or
/// added to one). The decrypted bytes hold the chain key: wiped.
fn receive_distribution(
    obs: &mut Observer,
    rng: &mut Recorder,
    session: &mut Session,
    wire: &Message,
    receiver: Option<&mut GroupReceiver>,
    name: &str,
) -> R<Option<GroupReceiver>> {
    step!(
        obs,
        rng,
        NONE,
        "{name}: decrypt distribution + {}",
        if receiver.is_some() { "add_distribution" } else { "GroupReceiver::new" }
    );
    let plain = must(session.decrypt(wire), "decrypt distribution")?;
    let dist = SenderKeyDistribution::try_from(plain.as_slice());
    heap::wipe_vec(plain);
    let dist = must(dist, "decode distribution")?;
    let from = session.remote_identity();
    let out = match receiver {
        Some(r) => {
            must(r.add_distribution(from, &dist), "add_distribution")?;
            obs.receiver(name, r);
            None
        }
        None => {
            let r = GroupReceiver::new(from, &dist);
            obs.receiver(name, &r);
            Some(r)
        }
    };
    Ok(out)
}

fn group_send(obs: &mut Observer, rng: &mut Recorder, s: &mut GroupSender, name: &str, n: usize) -> R<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for i in 0..n {
        step!(obs, rng, NONE, "{name}: group encrypt #{}", s.iteration());
        out.push(must(s.encrypt(format!("{name} group message {i}").as_bytes()), "group encrypt")?.to_bytes());
        obs.sender(name, s);
    }
    Ok(out)
}

fn group_recv(
    obs: &mut Observer,
    rng: &mut Recorder,
    r: &mut GroupReceiver,
    name: &str,
    wires: &[Vec<u8>],
    order: &[usize],
) -> R<()> {
    for &i in order {
        step!(obs, rng, NONE, "{name}: group decrypt message {i} of {}", wires.len());
        if i % 2 == 0 {
            must(r.decrypt_bytes(&wires[i]), "group decrypt")?;
        } else {
            let m = must(GroupMessage::try_from(wires[i].as_slice()), "group decode")?;
            must(r.decrypt(&m), "group decrypt")?;
        }
        obs.receiver(name, r);
    }
    Ok(())
}

/// Skipped-key eviction (MAX_SKIPPED_KEYS) in one receiving chain: two
/// jumps of MAX_SKIP, then one more skipped key.
fn session_bounds(obs: &mut Observer, rng: &mut Recorder, p: &mut Pair) -> R<()> {
    let (an, bn) = (p.an, p.bn);
    step!(obs, rng, DHS, "bounds: {an} encrypt, {bn} decrypt (chains in step)");
    let w = must(p.a.encrypt(rng, b"sync"), "encrypt")?.to_bytes();
    obs.session(an, &p.a);
    must(p.b.decrypt_bytes(&w), "decrypt")?;
    obs.session(bn, &p.b);
    for jump in 0..2 {
        step!(obs, rng, DHS, "bounds: {an} encrypt {} messages", MAX_SKIP + 1);
        let mut last = Vec::new();
        for _ in 0..=MAX_SKIP {
            last = must(p.a.encrypt(rng, b"bulk"), "encrypt")?.to_bytes();
            obs.session(an, &p.a);
        }
        step!(obs, rng, NONE, "bounds: {bn} decrypt the last (skips MAX_SKIP) #{jump}");
        must(p.b.decrypt_bytes(&last), "decrypt after MAX_SKIP")?;
        obs.session(bn, &p.b);
    }
    step!(obs, rng, DHS, "bounds: {an} encrypt 2 messages");
    let one = must(p.a.encrypt(rng, b"one"), "encrypt")?.to_bytes();
    obs.session(an, &p.a);
    let two = must(p.a.encrypt(rng, b"two"), "encrypt")?.to_bytes();
    obs.session(an, &p.a);
    step!(obs, rng, NONE, "bounds: {bn} decrypt past MAX_SKIPPED_KEYS (evicts the oldest skipped key)");
    must(p.b.decrypt_bytes(&two), "decrypt")?;
    obs.session(bn, &p.b);
    step!(obs, rng, NONE, "bounds: {bn} decrypt with a skipped key from the full store");
    must(p.b.decrypt_bytes(&one), "decrypt")?;
    obs.session(bn, &p.b);
    if p.b.skipped_keys() != MAX_SKIPPED_KEYS - 1 {
        return Err(format!("bounds: {} skipped keys, expected {}", p.b.skipped_keys(), MAX_SKIPPED_KEYS - 1));
    }
    Ok(())
}

pub fn run(obs: &mut Observer, rng: &mut Recorder, storage_key: &[u8; 32]) -> R<()> {
    obs.add(*storage_key, "storage key");

    // ---------------------------------------------------- accounts
    step!(obs, rng, ACCOUNT, "Account::new alice");
    let mut alice = Account::new(rng);
    step!(obs, rng, ACCOUNT, "Account::new bob");
    let mut bob = Account::new(rng);
    step!(obs, rng, ACCOUNT, "Account::new carol");
    let mut carol = Account::new(rng);
    step!(obs, rng, OPK, "bob: generate 20 one-time prekeys");
    let bob_opks = bob.generate_one_time_prekeys(rng, 20);
    step!(obs, rng, OPK, "alice: generate 3 one-time prekeys");
    let alice_opks = alice.generate_one_time_prekeys(rng, 3);
    step!(obs, rng, OPK, "carol: generate 2 one-time prekeys");
    carol.generate_one_time_prekeys(rng, 2);

    // ---------------------------------------------------- sessions
    let mut ab = establish(obs, rng, &alice, &mut bob, Some(bob_opks[3]), AB, ("alice→bob", "bob→alice"), 3)?;
    converse(obs, rng, &mut ab, 4, "alice/bob")?;
    into_buffers(obs, rng, &mut ab, "alice/bob")?;
    let mut ba = Pair { a: ab.b, b: ab.a, an: ab.bn, bn: ab.an };
    converse(obs, rng, &mut ba, 2, "bob/alice")?;
    let mut ab = Pair { a: ba.b, b: ba.a, an: ba.bn, bn: ba.an };

    let mut cb = establish(obs, rng, &carol, &mut bob, None, CB, ("carol→bob", "bob→carol"), 2)?;
    converse(obs, rng, &mut cb, 3, "carol/bob")?;
    let mut ca = establish(obs, rng, &carol, &mut alice, Some(alice_opks[1]), CA, ("carol→alice", "alice→carol"), 1)?;
    converse(obs, rng, &mut ca, 2, "carol/alice")?;

    // ---------------------------------------------------- persistence
    for how in 0..4u8 {
        ab.a = persist_session(obs, rng, ab.a, ab.an, storage_key, how)?;
        ab.b = persist_session(obs, rng, ab.b, ab.bn, storage_key, (how + 1) % 4)?;
        converse(obs, rng, &mut ab, 1, "alice/bob after restore")?;
    }
    cb.b = persist_session(obs, rng, cb.b, cb.bn, storage_key, 3)?;
    converse(obs, rng, &mut cb, 1, "carol/bob after restore")?;

    // ---------------------------------------------------- prekey upkeep
    step!(obs, rng, SPK, "bob: rotate signed prekey ×3");
    for _ in 0..3 {
        bob.rotate_signed_prekey(rng).ok_or("rotate_signed_prekey")?;
    }
    step!(obs, rng, OPK, "bob: generate 5 more one-time prekeys");
    let more = bob.generate_one_time_prekeys(rng, 5);
    let mut ab2 = establish(obs, rng, &alice, &mut bob, Some(more[0]), AB, ("alice→bob #2", "bob→alice #2"), 2)?;
    converse(obs, rng, &mut ab2, 1, "alice/bob #2")?;
    step!(obs, rng, NONE, "account persistence round trips");
    let alice = account_roundtrip(alice)?;
    let bob = account_roundtrip(bob)?;

    // ---------------------------------------------------- groups
    let gid = must(GroupId::new(b"book club"), "GroupId")?;
    step!(obs, rng, SENDER_KEY, "alice: GroupSender::new");
    let mut ga = GroupSender::new(rng, gid.clone(), alice.identity_key());
    obs.sender("alice group", &ga);
    step!(obs, rng, DHS, "alice: distribute to bob and carol");
    // Kept as the library returns it (no in-place collect that would move
    // the messages again through our own stack).
    let fan = fan_out(rng, &ga.distribution(), [&mut ab.a, &mut ca.b]);
    obs.session(ab.an, &ab.a);
    obs.session(ca.bn, &ca.b);
    // What an application may well do with the results: collect them into
    // a Vec<Message>. Each move copies the whole enum, so the bytes a
    // smaller variant leaves unused come from wherever the value sat on the
    // stack (STYLE.md item 25: box the large variant).
    step!(obs, rng, NONE, "application: distribute results re-collected into Vec<Message> (enum moves), dropped");
    let copies: Vec<Message> = fan.clone().into_iter().map(|r| must(r, "distribute")).collect::<R<_>>()?;
    drop(std::hint::black_box(copies));
    let mut bob_from_alice =
        receive_distribution(obs, rng, &mut ab.b, sent(&fan, 0)?, None, "bob's receiver of alice")?
            .ok_or("receiver")?;
    obs.session(ab.bn, &ab.b);
    let mut carol_from_alice =
        receive_distribution(obs, rng, &mut ca.a, sent(&fan, 1)?, None, "carol's receiver of alice")?
            .ok_or("receiver")?;
    obs.session(ca.an, &ca.a);
    step!(obs, rng, NONE, "drop the Vec<Result<Message, _>> returned by distribute (alice)");
    drop(fan);

    step!(obs, rng, SENDER_KEY, "bob: GroupSender::new");
    let mut gb = GroupSender::new(rng, gid.clone(), bob.identity_key());
    obs.sender("bob group", &gb);
    step!(obs, rng, DHS, "bob: distribute to alice");
    let fan = fan_out(rng, &gb.distribution(), [&mut ab.b]);
    let mut alice_from_bob =
        receive_distribution(obs, rng, &mut ab.a, sent(&fan, 0)?, None, "alice's receiver of bob")?
            .ok_or("receiver")?;
    step!(obs, rng, NONE, "drop the Vec<Result<Message, _>> returned by distribute (bob)");
    drop(fan);

    let m = group_send(obs, rng, &mut ga, "alice group", 8)?;
    group_recv(obs, rng, &mut bob_from_alice, "bob's receiver of alice", &m, &[0, 2, 3, 5, 1, 4, 7, 6])?;
    group_recv(obs, rng, &mut carol_from_alice, "carol's receiver of alice", &m, &[7, 0, 1])?;
    step!(obs, rng, NONE, "carol's receiver of alice: tampered group message");
    let mut t = m[2].clone();
    t[20] ^= 1;
    must_fail(carol_from_alice.decrypt_bytes(&t), "tampered group decrypt")?;
    obs.receiver("carol's receiver of alice", &carol_from_alice);
    step!(obs, rng, NONE, "bob's receiver of alice: replay");
    must_fail(bob_from_alice.decrypt_bytes(&m[3]), "group replay")?;
    group_recv(obs, rng, &mut carol_from_alice, "carol's receiver of alice", &m, &[4])?;
    step!(obs, rng, NONE, "carol's receiver of alice: forget_below({})", ga.iteration());
    must(forget_below(&mut carol_from_alice, ga.key_id(), ga.iteration()), "forget_below")?;
    obs.receiver("carol's receiver of alice", &carol_from_alice);
    must_fail(carol_from_alice.decrypt_bytes(&m[2]), "forgotten key")?;
    let m2 = group_send(obs, rng, &mut ga, "alice group", 6)?;
    group_recv(obs, rng, &mut carol_from_alice, "carol's receiver of alice", &m2, &[5, 1])?;
    step!(obs, rng, NONE, "carol's receiver of alice: forget_below({})", ga.iteration() - 2);
    must(forget_below(&mut carol_from_alice, ga.key_id(), ga.iteration() - 2), "forget_below")?;
    obs.receiver("carol's receiver of alice", &carol_from_alice);
    group_recv(obs, rng, &mut bob_from_alice, "bob's receiver of alice", &m2, &[0, 1, 2, 4, 3, 5])?;

    let mb = group_send(obs, rng, &mut gb, "bob group", 4)?;
    group_recv(obs, rng, &mut alice_from_bob, "alice's receiver of bob", &mb, &[3, 2, 1, 0])?;

    // Group persistence.
    for how in 0..4u8 {
        bob_from_alice = persist_receiver(obs, rng, bob_from_alice, "bob's receiver of alice", storage_key, how)?;
    }
    carol_from_alice = persist_receiver(obs, rng, carol_from_alice, "carol's receiver of alice", storage_key, 3)?;
    for how in 0..3u8 {
        ga = persist_sender(obs, rng, ga, "alice group", storage_key, how)?;
    }
    let m3 = group_send(obs, rng, &mut ga, "alice group", 3)?;
    group_recv(obs, rng, &mut bob_from_alice, "bob's receiver of alice", &m3, &[1, 0, 2])?;
    group_recv(obs, rng, &mut carol_from_alice, "carol's receiver of alice", &m3, &[2])?;

    // Carol leaves: alice rotates and distributes to bob only; a message
    // sent before the rotation is still in flight. Then enough rotations to
    // evict bob's oldest sender key states.
    let in_flight = group_send(obs, rng, &mut ga, "alice group", 2)?;
    for k in 0..6 {
        step!(obs, rng, SENDER_KEY, "alice: rotate sender key #{k}");
        let dist = ga.rotate(rng);
        obs.sender("alice group", &ga);
        step!(obs, rng, DHS, "alice: distribute rotated key #{k} to bob");
        let wire = must(ab.a.encrypt(rng, &dist.to_bytes()), "encrypt distribution")?;
        drop(dist);
        obs.session(ab.an, &ab.a);
        receive_distribution(obs, rng, &mut ab.b, &wire, Some(&mut bob_from_alice), "bob's receiver of alice")?;
        obs.session(ab.bn, &ab.b);
        let mk = group_send(obs, rng, &mut ga, "alice group", 3)?;
        group_recv(obs, rng, &mut bob_from_alice, "bob's receiver of alice", &mk, &[2, 0])?;
        if k == 0 {
            group_recv(obs, rng, &mut bob_from_alice, "bob's receiver of alice (in flight)", &in_flight, &[1, 0])?;
            step!(obs, rng, NONE, "carol's receiver of alice: message after rotation (removed)");
            must_fail(carol_from_alice.decrypt_bytes(&mk[1]), "removed member")?;
        }
    }
    bob_from_alice = persist_receiver(obs, rng, bob_from_alice, "bob's receiver of alice", storage_key, 0)?;

    // ---------------------------------------------------- bounds
    session_bounds(obs, rng, &mut ab)?;
    let bulk = group_send(obs, rng, &mut gb, "bob group (bulk)", MAX_GROUP_SKIP as usize + 1)?;
    group_recv(
        obs,
        rng,
        &mut alice_from_bob,
        "alice's receiver of bob: jump MAX_GROUP_SKIP",
        &bulk,
        &[bulk.len() - 1],
    )?;
    drop(bulk);
    let two = group_send(obs, rng, &mut gb, "bob group", 2)?;
    group_recv(obs, rng, &mut alice_from_bob, "alice's receiver of bob: evict oldest skipped key", &two, &[1, 0])?;

    // ---------------------------------------------------- the end
    step!(obs, rng, NONE, "drop sessions");
    drop(ab);
    drop(ab2);
    drop(cb);
    drop(ca);
    step!(obs, rng, NONE, "drop group senders and receivers");
    drop(ga);
    drop(gb);
    drop(bob_from_alice);
    drop(carol_from_alice);
    drop(alice_from_bob);
    step!(obs, rng, NONE, "drop accounts");
    drop(alice);
    drop(bob);
    drop(carol);
    Ok(())
}
