//! The conversation layer under the recording allocator: session records
//! (a simultaneous initiation, archive and promotion, replays, tampering,
//! every persistence path), group states with distributions in envelopes,
//! a removal and the removed member's state, and prekey uploads.

use sottovoce::{
    Account, Address, DeviceId, Envelope, Group, GroupId, Message, PreKeyBundle, PreKeyUpload, SessionRecord, Snapshot,
};

use crate::heap;
use crate::rng::Recorder;
use crate::secrets::Observer;

use crate::script::{ACCOUNT, DHS, INITIATE, NONE, OPK, R, SENDER_KEY, must, step};

/// Reads every session of a record.
fn note(obs: &mut Observer, name: &str, record: &SessionRecord) {
    let sessions: Vec<_> = record.current().into_iter().chain(record.archived()).collect();
    for s in sessions {
        let id = s.session_id().0;
        obs.session(&format!("{name} {:02x}{:02x}{:02x}", id[0], id[1], id[2]), s);
    }
}

struct Side {
    name: &'static str,
    account: Account,
    record: SessionRecord,
}

fn send(obs: &mut Observer, rng: &mut Recorder, s: &mut Side, text: &str) -> R<Vec<u8>> {
    step!(obs, rng, DHS, "{}: record encrypt {text:?}", s.name);
    let wire = must(s.record.encrypt(rng, text.as_bytes()), "record encrypt")?.to_bytes();
    note(obs, s.name, &s.record);
    Ok(wire)
}

fn recv(obs: &mut Observer, rng: &mut Recorder, s: &mut Side, wire: &[u8], ok: bool) -> R<()> {
    step!(obs, rng, NONE, "{}: record decrypt ({})", s.name, if ok { "genuine" } else { "must fail" });
    let r = s.record.decrypt_bytes(&mut s.account, wire);
    match (r, ok) {
        // The library wipes the plaintext buffer on drop.
        (Ok(plain), true) => drop(plain),
        (Err(_), false) => {}
        (Ok(_), false) => return Err(format!("{}: a bad message decrypted", s.name)),
        (Err(e), true) => return Err(format!("{}: record decrypt: {e:?}", s.name)),
    }
    note(obs, s.name, &s.record);
    Ok(())
}

fn bundle(peer: &mut Side, rng: &mut Recorder, obs: &mut Observer) -> R<PreKeyBundle> {
    step!(obs, rng, OPK, "{}: one more one-time prekey, published", peer.name);
    let id = *peer.account.generate_one_time_prekeys(rng, 1).first().ok_or("no prekey id")?;
    let kem_id = *peer.account.generate_kem_prekeys(rng, 1).first().ok_or("no KEM prekey id")?;
    let to_publish = peer.account.prekeys_to_publish();
    let upload = to_publish.to_bytes();
    peer.account.mark_published(&to_publish);
    let up = must(PreKeyUpload::try_from(upload.as_slice()), "upload")?;
    let spk = match up.signed_prekey() {
        Some(spk) => spk,
        None => peer.account.public_signed_prekey().ok_or("no signed prekey")?,
    };
    let opk = up.one_time_prekeys().iter().find(|k| k.id() == id).copied();
    let kem = up.one_time_kem_prekeys().iter().find(|k| k.id() == kem_id).ok_or("KEM prekey not uploaded")?;
    Ok(PreKeyBundle::assemble(up.identity_key(), &spk, opk.as_ref()).with_kem_prekey(kem.clone()))
}

fn persist(obs: &mut Observer, rng: &mut Recorder, s: &mut Side, key: &[u8; 32], how: u8) -> R<()> {
    let empty = SessionRecord::new(s.record.local().clone(), s.record.remote().clone(), s.record.remote_identity());
    let record = std::mem::replace(&mut s.record, empty);
    s.record = match how {
        0 => {
            step!(obs, rng, NONE, "{}: SessionRecord::to_bytes + from_bytes", s.name);
            let bytes = record.to_bytes();
            drop(record);
            must(SessionRecord::from_bytes(&bytes), "record from_bytes")?
        }
        1 => {
            step!(obs, rng, NONE, "{}: SessionRecord::seal + unseal (and a tampered copy)", s.name);
            let sealed = record.seal(rng, key);
            drop(record);
            let mut bad = sealed.clone();
            bad[30] ^= 1;
            if SessionRecord::unseal(key, &bad).is_ok() {
                return Err("tampered record unsealed".into());
            }
            must(SessionRecord::unseal(key, &sealed), "record unseal")?
        }
        _ => {
            step!(obs, rng, NONE, "{}: SessionRecord snapshot + serde_json + restore", s.name);
            let snap = record.snapshot();
            drop(record);
            let json = must(serde_json::to_string(&snap), "to_string")?;
            drop(snap);
            let snap: Snapshot = must(serde_json::from_str(&json), "from_str")?;
            heap::wipe_string(json);
            must(SessionRecord::restore(&snap), "record restore")?
        }
    };
    note(obs, s.name, &s.record);
    Ok(())
}

pub fn run(obs: &mut Observer, rng: &mut Recorder, key: &[u8; 32]) -> R<()> {
    // Sessions moved onto the heap (a Box, as a record holds them): every
    // byte moved must be defined, so an absent key is zeros, never stack
    // leftovers in an enum's unused payload.
    {
        step!(obs, rng, ACCOUNT, "boxed sessions: accounts");
        let a = Account::new(rng);
        let mut b = Account::new(rng);
        step!(obs, rng, INITIATE, "boxed sessions: initiate");
        let bundle = b.prekey_bundle(None).ok_or("bundle")?;
        let mut s = must(sottovoce::Session::initiate(rng, a.identity_key_pair(), &bundle, b""), "init")?;
        obs.session("boxed a", &s);
        step!(obs, rng, NONE, "boxed sessions: encrypt");
        let m = must(s.encrypt(rng, b"x"), "enc")?;
        obs.session("boxed a", &s);
        step!(obs, rng, NONE, "boxed sessions: box + drop the initiator session");
        let boxed = Box::new(s);
        drop(boxed);
        step!(obs, rng, NONE, "boxed sessions: respond");
        let Message::PreKey(pm) = &m else { return Err("pm".into()) };
        let inbound = must(sottovoce::Session::respond(&mut b, pm, b""), "respond")?;
        let bs = inbound.session;
        obs.session("boxed b", &bs);
        step!(obs, rng, NONE, "boxed sessions: box + drop the responder session");
        drop(Box::new(bs));
    }
    let (at_d, at_e) =
        (must(Address::new(b"dave", DeviceId(1)), "address")?, must(Address::new(b"erin", DeviceId(3)), "address")?);
    step!(obs, rng, ACCOUNT, "Account::new dave");
    let dave = Account::new(rng);
    step!(obs, rng, ACCOUNT, "Account::new erin");
    let erin = Account::new(rng);
    let (kd, ke) = (dave.identity_key(), erin.identity_key());
    let mut d =
        Side { name: "dave's record", account: dave, record: SessionRecord::new(at_d.clone(), at_e.clone(), ke) };
    let mut e =
        Side { name: "erin's record", account: erin, record: SessionRecord::new(at_e.clone(), at_d.clone(), kd) };

    // Both start a session at once.
    let bd = bundle(&mut e, rng, obs)?;
    let be = bundle(&mut d, rng, obs)?;
    step!(obs, rng, INITIATE, "dave: record initiate");
    must(d.record.initiate(rng, d.account.identity_key_pair(), &bd), "initiate")?;
    note(obs, d.name, &d.record);
    step!(obs, rng, INITIATE, "erin: record initiate");
    must(e.record.initiate(rng, e.account.identity_key_pair(), &be), "initiate")?;
    note(obs, e.name, &e.record);
    let d1 = send(obs, rng, &mut d, "d1")?;
    let e1 = send(obs, rng, &mut e, "e1")?;
    let mut bad = d1.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    recv(obs, rng, &mut e, &bad, false)?;
    recv(obs, rng, &mut e, &d1, true)?;
    recv(obs, rng, &mut d, &e1, true)?;
    recv(obs, rng, &mut e, &d1, false)?;
    for round in 0..3 {
        let a = send(obs, rng, &mut d, &format!("dave round {round} a"))?;
        let b = send(obs, rng, &mut d, &format!("dave round {round} b"))?;
        recv(obs, rng, &mut e, &b, true)?;
        recv(obs, rng, &mut e, &a, true)?;
        let c = send(obs, rng, &mut e, &format!("erin round {round}"))?;
        recv(obs, rng, &mut d, &c, true)?;
        persist(obs, rng, &mut d, key, round)?;
        persist(obs, rng, &mut e, key, (round + 1) % 3)?;
    }
    // A forged new ratchet key, tried on every session that can take one.
    let mut forged = send(obs, rng, &mut d, "to forge")?;
    forged[1..33].copy_from_slice(&[7u8; 32]);
    recv(obs, rng, &mut e, &forged, false)?;

    // A group of two over the records, then a third member who is removed.
    let gid = must(GroupId::new(b"records group"), "group id")?;
    let at_f = must(Address::new(b"frank", DeviceId(1)), "address")?;
    step!(obs, rng, ACCOUNT, "Account::new frank");
    let frank = Account::new(rng);
    let kf = frank.identity_key();
    step!(obs, rng, SENDER_KEY, "dave: Group::create");
    let mut gd =
        must(Group::create(rng, gid.clone(), at_d.clone(), kd, &[(at_e.clone(), ke), (at_f.clone(), kf)]), "create")?;
    step!(obs, rng, SENDER_KEY, "erin: Group::create");
    let mut ge = must(Group::create(rng, gid.clone(), at_e.clone(), ke, &[(at_d.clone(), kd)]), "create")?;
    {
        let (from, to, g_from, g_to) = (&mut d, &mut e, &gd, &mut ge);
        step!(obs, rng, DHS, "{}: distribution envelope over the record", from.name);
        let env = g_from.distribution().to_bytes();
        let wire = must(from.record.encrypt(rng, &env), "encrypt distribution")?;
        drop(env);
        note(obs, from.name, &from.record);
        step!(obs, rng, NONE, "{}: decrypt distribution envelope, add_distribution", to.name);
        let plain = must(to.record.decrypt(&mut to.account, &wire), "decrypt distribution")?;
        let parsed = Envelope::try_from(plain.as_slice());
        drop(plain);
        let Envelope::Distribution(dist) = must(parsed, "envelope")? else { return Err("not a distribution".into()) };
        must(g_to.add_distribution(&to.record, &dist), "add_distribution")?;
        drop(dist);
        note(obs, to.name, &to.record);
        drop::<Message>(wire);
    }
    for i in 0..4 {
        step!(obs, rng, NONE, "dave: group encrypt #{i}, erin decrypts");
        let m = must(gd.encrypt(format!("group {i}").as_bytes()), "group encrypt")?;
        heap::wipe_vec(must(ge.decrypt(&m), "group decrypt")?);
    }
    step!(obs, rng, NONE, "group states: to_bytes + from_bytes, seal + unseal");
    let bytes = gd.to_bytes();
    drop(gd);
    gd = must(Group::from_bytes(&bytes), "group from_bytes")?;
    drop(bytes);
    let sealed = ge.seal(rng, key);
    drop(ge);
    ge = must(Group::unseal(key, &sealed), "group unseal")?;
    step!(obs, rng, SENDER_KEY, "dave: remove frank (rotate)");
    let fresh = gd.remove_member(rng, &at_f).ok_or("frank not a member")?;
    let env = fresh.to_bytes();
    drop(fresh);
    step!(obs, rng, DHS, "dave: rotated distribution to erin");
    let wire = must(d.record.encrypt(rng, &env), "encrypt rotated")?;
    drop(env);
    note(obs, d.name, &d.record);
    step!(obs, rng, NONE, "erin: rotated distribution in");
    let plain = must(e.record.decrypt(&mut e.account, &wire), "decrypt rotated")?;
    let parsed = Envelope::try_from(plain.as_slice());
    drop(plain);
    let Envelope::Distribution(dist) = must(parsed, "envelope")? else { return Err("not a distribution".into()) };
    must(ge.add_distribution(&e.record, &dist), "add rotated")?;
    drop(dist);
    note(obs, e.name, &e.record);
    step!(obs, rng, NONE, "erin: mark removed (wipes every receiver)");
    let m = must(gd.encrypt(b"after the removal"), "group encrypt")?;
    heap::wipe_vec(must(ge.decrypt(&m), "group decrypt")?);
    ge.mark_removed();
    if ge.decrypt(&m).is_ok() {
        return Err("a removed member decrypted".into());
    }
    step!(obs, rng, NONE, "drop records, groups, accounts");
    drop(gd);
    drop(ge);
    drop(d);
    drop(e);
    drop(frank);
    Ok(())
}
