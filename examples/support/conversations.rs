//! `conversations.json`: prekey publication (SPEC.md §3.6), devices (§3.7),
//! bindings (§4.6), session records (§4.7), envelopes (§6.7), groups
//! (§7.7) and their saved states (§11.5-§11.7).

#![allow(clippy::needless_range_loop, reason = "parties are indexed: p and 1 - p")]

use super::*;

fn addr(user: &[u8], device: u32) -> Address {
    Address::new(user, DeviceId(device)).unwrap()
}

fn addr_json(a: &Address) -> Value {
    json!({ "user": h(a.user()), "device": a.device().0 })
}

fn cat(e: &DecryptError) -> Value {
    let mut v = json!({ "result": "invalid", "error": e.category().name() });
    let cause = match e {
        DecryptError::NoSenderKey => Some("no-sender-key"),
        DecryptError::NotMember => Some("not-member"),
        _ => None,
    };
    if let Some(c) = cause {
        v["cause"] = json!(c);
    }
    v
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

// ------------------------------------------------------------ prekey publication

fn publication(f: &mut VectorFile) {
    let mut tests = Vec::new();
    // An account that publishes, replenishes, rotates and publishes again.
    let mut rng = Recorder::new(90);
    let mut account = Account::new_classical(&mut rng);
    account.generate_one_time_prekeys(&mut rng, 3);
    rng.take();
    let start = account.to_bytes().to_vec();
    let mut events = Vec::new();
    let up = account.prekeys_to_publish();
    events.push(json!({ "event": "toPublish", "upload": h(&up.to_bytes()) }));
    account.mark_published(&up);
    events.push(json!({ "event": "markPublished", "upload": h(&up.to_bytes()), "state": h(&account.to_bytes()) }));
    events.push(json!({ "event": "toPublish", "upload": h(&account.prekeys_to_publish().to_bytes()) }));
    // Built before two more one-time prekeys are made: marking it publishes
    // only what it holds.
    let before_more = account.prekeys_to_publish();
    account.generate_one_time_prekeys(&mut rng, 2);
    events.push(json!({ "event": "generateOneTimePreKeys", "count": 2, "randomness": rng.take() }));
    events.push(json!({ "event": "toPublish", "upload": h(&account.prekeys_to_publish().to_bytes()) }));
    account.mark_published(&before_more);
    events.push(
        json!({ "event": "markPublished", "upload": h(&before_more.to_bytes()), "state": h(&account.to_bytes()) }),
    );
    account.rotate_signed_prekey(&mut rng).unwrap();
    events.push(json!({ "event": "rotateSignedPreKey", "randomness": rng.take() }));
    let last = account.prekeys_to_publish();
    events.push(json!({ "event": "toPublish", "upload": h(&last.to_bytes()) }));
    account.mark_published(&last);
    events.push(json!({ "event": "markPublished", "upload": h(&last.to_bytes()), "state": h(&account.to_bytes()) }));
    account.retire_previous_signed_prekey();
    events.push(json!({ "event": "retirePreviousSignedPreKey", "state": h(&account.to_bytes()) }));
    tests.push(f.test(
        "an account publishes what is new since its mark: all at first, nothing after marking, new one-time prekeys, a rotated signed prekey",
        &["Publication"],
        None,
        json!({ "account": h(&start), "events": events }),
    ));
    // Two rotations: the account keeps MAX_SIGNED_PREKEYS (2) signed
    // prekeys, the oldest is deleted.
    let mut rng = Recorder::new(93);
    let mut account = Account::new_classical(&mut rng);
    rng.take();
    let start = account.to_bytes().to_vec();
    let mut events = Vec::new();
    for _ in 0..2 {
        account.rotate_signed_prekey(&mut rng).unwrap();
        events
            .push(json!({ "event": "rotateSignedPreKey", "randomness": rng.take(), "state": h(&account.to_bytes()) }));
    }
    events.push(json!({ "event": "toPublish", "upload": h(&account.prekeys_to_publish().to_bytes()) }));
    tests.push(f.test(
        "two rotations: the oldest of three signed prekeys is deleted (MAX_SIGNED_PREKEYS = 2)",
        &["Publication", "Bound"],
        None,
        json!({ "account": h(&start), "events": events }),
    ));
    // Marking an earlier upload after a later one does not move the mark back.
    let mut rng = Recorder::new(94);
    let mut account = Account::new_classical(&mut rng);
    rng.take();
    let start = account.to_bytes().to_vec();
    let mut events = Vec::new();
    let early = account.prekeys_to_publish();
    events.push(json!({ "event": "toPublish", "upload": h(&early.to_bytes()) }));
    account.generate_one_time_prekeys(&mut rng, 1);
    events.push(json!({ "event": "generateOneTimePreKeys", "count": 1, "randomness": rng.take() }));
    let later = account.prekeys_to_publish();
    events.push(json!({ "event": "toPublish", "upload": h(&later.to_bytes()) }));
    account.mark_published(&later);
    events.push(json!({ "event": "markPublished", "upload": h(&later.to_bytes()), "state": h(&account.to_bytes()) }));
    account.mark_published(&early);
    events.push(json!({ "event": "markPublished", "upload": h(&early.to_bytes()), "state": h(&account.to_bytes()) }));
    tests.push(f.test(
        "marking uploads out of order: the mark never moves back",
        &["Publication"],
        None,
        json!({ "account": h(&start), "events": events }),
    ));
    // 999 one-time prekeys held: asking for two makes one (MAX_ONE_TIME_PREKEYS).
    let mut rng = Recorder::new(95);
    let mut account = Account::new_classical(&mut rng);
    account.generate_one_time_prekeys(&mut rng, MAX_ONE_TIME_PREKEYS - 1);
    rng.take();
    let start = account.to_bytes().to_vec();
    let made = account.generate_one_time_prekeys(&mut rng, 2);
    assert_eq!(made.len(), 1);
    let events = vec![
        json!({ "event": "generateOneTimePreKeys", "count": 2, "randomness": rng.take(), "state": h(&account.to_bytes()) }),
    ];
    tests.push(f.test(
        "999 one-time prekeys held: generating two makes one, at MAX_ONE_TIME_PREKEYS",
        &["Publication", "Bound"],
        None,
        json!({ "account": h(&start), "events": events }),
    ));
    f.group("publication", "What an account uploads, by its published mark (SPEC.md §3.6, §11.5)", tests);

    // Uploads as a server decodes them, and the bundles it assembles.
    let mut tests = Vec::new();
    let upload = PreKeyUpload::try_from(up.to_bytes().as_slice()).unwrap();
    let spk = upload.signed_prekey().unwrap();
    let mut bundles = vec![
        json!({ "oneTimePreKeyId": null, "bundle": h(&PreKeyBundle::assemble(upload.identity_key(), &spk, None).to_bytes()) }),
    ];
    for k in upload.one_time_prekeys() {
        bundles.push(json!({ "oneTimePreKeyId": k.id().0, "bundle": h(&PreKeyBundle::assemble(upload.identity_key(), &spk, Some(k)).to_bytes()) }));
    }
    tests.push(f.test(
        "an upload with a signed prekey and three one-time prekeys, and the bundles a server assembles from it",
        &["Upload"],
        None,
        json!({
            "upload": h(&up.to_bytes()),
            "identityKey": h(&upload.identity_key().to_bytes()),
            "signedPreKey": { "id": spk.id().0, "public": h(&spk.public_key()), "signature": h(&spk.signature()) },
            "oneTimePreKeys": upload.one_time_prekeys().iter().map(|k| json!({ "id": k.id().0, "public": h(&k.public_key()) })).collect::<Vec<_>>(),
            "bundles": bundles,
        }),
    ));
    let valid = up.to_bytes();
    let ik = &valid[1..33];
    let entry_s =
        |id: u32, key: &[u8], sig: &[u8]| [vec![1u8], id.to_be_bytes().to_vec(), key.to_vec(), sig.to_vec()].concat();
    let entry_o = |id: u32, key: &[u8]| [vec![2u8], id.to_be_bytes().to_vec(), key.to_vec()].concat();
    let build = |entries: &[Vec<u8>]| {
        let mut b = vec![0x1b];
        b.extend(ik);
        b.extend((entries.len() as u16).to_be_bytes());
        for e in entries {
            b.extend(e);
        }
        b
    };
    let (sid, skey, ssig) = (spk.id().0, spk.public_key(), spk.signature());
    let k = [7u8; 32];
    assert!(PreKeyUpload::try_from(build(&[]).as_slice()).is_ok());
    assert!(PreKeyUpload::try_from(build(&[entry_o(5, &k)]).as_slice()).is_ok());
    let mut bad_sig = ssig;
    bad_sig[0] ^= 1;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a signed entry after a one-time entry", build(&[entry_o(5, &k), entry_s(sid, &skey, &ssig)]), "decode"),
        ("two signed entries", build(&[entry_s(sid, &skey, &ssig), entry_s(sid + 9, &skey, &ssig)]), "decode"),
        ("an unknown entry kind", build(&[[vec![3u8], 5u32.to_be_bytes().to_vec(), k.to_vec()].concat()]), "decode"),
        ("one-time ids not increasing", build(&[entry_o(6, &k), entry_o(5, &k)]), "decode"),
        ("a one-time id twice", build(&[entry_o(5, &k), entry_o(5, &k)]), "decode"),
        (
            "a one-time id equal to the signed prekey's",
            build(&[entry_s(sid, &skey, &ssig), entry_o(sid, &k)]),
            "decode",
        ),
        ("trailing byte", [valid.clone(), vec![0]].concat(), "decode"),
        ("truncated", valid[..valid.len() - 1].to_vec(), "decode"),
        ("an identity key of small order", [vec![0x1b], vec![0u8; 32], vec![0, 0]].concat(), "invalid-key"),
        ("a saved account's type nibble", flip(&valid, 0, 0x01), "decode"),
        (
            "a signed prekey whose signature fails (decodes; verifying fails)",
            build(&[entry_s(sid, &skey, &bad_sig)]),
            "bad-signature",
        ),
    ];
    let mut over = vec![0x1bu8];
    over.extend(ik);
    over.extend(1002u16.to_be_bytes());
    for i in 0..1002u32 {
        over.extend(entry_o(i + 10, &k));
    }
    let mut cases = cases;
    cases.push(("MAX_UPLOAD_PREKEYS + 1 entries", over, "decode"));
    // Exactly MAX_UPLOAD_PREKEYS entries: the signed prekey and 1000 one-time prekeys.
    let mut full: Vec<Vec<u8>> = vec![entry_s(sid, &skey, &ssig)];
    full.extend((0..1000u32).map(|i| entry_o(i + 10, &k)));
    let full = build(&full);
    let u = PreKeyUpload::try_from(full.as_slice()).unwrap();
    u.verify().unwrap();
    tests.push(f.test(
        "MAX_UPLOAD_PREKEYS entries (a signed prekey and 1000 one-time prekeys) decode",
        &["Upload", "Bound"],
        None,
        json!({
            "upload": h(&full),
            "identityKey": h(&u.identity_key().to_bytes()),
            "signedPreKey": { "id": sid, "public": h(&skey), "signature": h(&ssig) },
            "oneTimePreKeys": u.one_time_prekeys().iter().map(|k| json!({ "id": k.id().0, "public": h(&k.public_key()) })).collect::<Vec<_>>(),
            "bundles": [],
        }),
    ));
    for (comment, bytes, err) in cases {
        let got = match PreKeyUpload::try_from(bytes.as_slice()) {
            Ok(u) => u.verify().err().map(|e| e.category()),
            Err(e) => Some(e.category()),
        };
        assert_eq!(got.map(|c| c.name()), Some(err), "{comment}");
        tests.push(f.test(comment, &["Upload", "Malformed"], got, json!({ "upload": h(&bytes) })));
    }
    f.group(
        "upload",
        "Prekey uploads as a server decodes and verifies them, and assembled bundles (SPEC.md §3.6, §6.4)",
        tests,
    );
}

// ------------------------------------------------------------ devices

fn devices(f: &mut VectorFile) {
    let mut rng = Recorder::new(91);
    let user_seed = rng.bytes::<32>();
    let user = IdentityKeyPair::from_seed(&user_seed);
    let other = IdentityKeyPair::from_seed(&rng.bytes::<32>());
    let d1 = IdentityKeyPair::from_seed(&rng.bytes::<32>()).public_key();
    let d2 = IdentityKeyPair::from_seed(&rng.bytes::<32>()).public_key();
    let d3 = IdentityKeyPair::from_seed(&rng.bytes::<32>()).public_key();
    let mut tests = Vec::new();
    let cert = DeviceCertificate::sign(&user, DeviceId(7), d1);
    tests.push(f.test(
        "a device certificate",
        &["Certificate"],
        None,
        json!({ "userSeed": h(&user_seed), "userKey": h(&user.public_key().to_bytes()), "deviceId": 7, "deviceKey": h(&d1.to_bytes()), "certificate": h(&cert.to_bytes()) }),
    ));
    let c = cert.to_bytes();
    let list = DeviceList::sign(&user, 1, &[(DeviceId(7), d1)]).unwrap();
    let mut sig_of_list = c.clone();
    sig_of_list[69..].copy_from_slice(&list.to_bytes()[list.to_bytes().len() - 64..]);
    for (comment, bytes, user_key, err) in [
        ("another user's key expected", c.clone(), other.public_key(), "state-mismatch"),
        ("the device id changed", flip(&c, 36, 0x07 ^ 0x08), user.public_key(), "bad-signature"),
        (
            "the device key changed",
            {
                let mut b = c.clone();
                b[37..69].copy_from_slice(&d2.to_bytes());
                b
            },
            user.public_key(),
            "bad-signature",
        ),
        ("a device list's signature over the same device", sig_of_list, user.public_key(), "bad-signature"),
        (
            "a device key of small order",
            {
                let mut b = c.clone();
                b[37..69].copy_from_slice(&[0u8; 32]);
                b
            },
            user.public_key(),
            "invalid-key",
        ),
        ("truncated", c[..132].to_vec(), user.public_key(), "decode"),
        (
            "a user key of small order",
            {
                let mut b = c.clone();
                b[1..33].copy_from_slice(&[0u8; 32]);
                b
            },
            user.public_key(),
            "invalid-key",
        ),
        ("trailing byte", [c.clone(), vec![0]].concat(), user.public_key(), "decode"),
    ] {
        let got = match DeviceCertificate::try_from(bytes.as_slice()) {
            Ok(cert) => cert.verify(&user_key).err().map(|e| e.category()),
            Err(e) => Some(e.category()),
        };
        assert_eq!(got.map(|c| c.name()), Some(err), "{comment}");
        tests.push(f.test(
            &format!("certificate: {comment}"),
            &["Certificate"],
            got,
            json!({ "userKey": h(&user_key.to_bytes()), "certificate": h(&bytes) }),
        ));
    }
    f.group("device_certificate", "Device certificates (SPEC.md §3.7)", tests);

    let mut tests = Vec::new();
    let v2 = DeviceList::sign(&user, 2, &[(DeviceId(9), d2), (DeviceId(7), d1)]).unwrap();
    let v3 = DeviceList::sign(&user, 3, &[(DeviceId(7), d1), (DeviceId(9), d2), (DeviceId(12), d3)]).unwrap();
    let v2_other = DeviceList::sign(&user, 2, &[(DeviceId(7), d1)]).unwrap();
    let v1 = DeviceList::sign(&user, 1, &[(DeviceId(7), d1), (DeviceId(9), d2), (DeviceId(12), d3)]).unwrap();
    tests.push(f.test(
        "device lists signed by a user (devices encoded by increasing id), and which later lists are accepted",
        &["DeviceList"],
        None,
        json!({
            "userSeed": h(&user_seed),
            "userKey": h(&user.public_key().to_bytes()),
            "sign": [
                { "version": 2, "devices": [ { "id": 9, "key": h(&d2.to_bytes()) }, { "id": 7, "key": h(&d1.to_bytes()) } ], "list": h(&v2.to_bytes()) },
                { "version": 3, "devices": [ { "id": 7, "key": h(&d1.to_bytes()) }, { "id": 9, "key": h(&d2.to_bytes()) }, { "id": 12, "key": h(&d3.to_bytes()) } ], "list": h(&v3.to_bytes()) },
            ],
        }),
    ));
    let accept = |bytes: &[u8], expected: &IdentityKey, previous: Option<&DeviceList>| {
        DeviceList::verify(bytes, expected, previous).err().map(|e| e.category())
    };
    let signer = ed25519_dalek::SigningKey::from_bytes(&user_seed);
    let raw = |version: u32, devices: &[(u32, [u8; 32])]| {
        let mut b = vec![0x1d];
        b.extend(user.public_key().to_bytes());
        b.extend(version.to_be_bytes());
        b.push(devices.len() as u8);
        for (id, k) in devices {
            b.extend(id.to_be_bytes());
            b.extend(k);
        }
        use ed25519_dalek::Signer;
        let sig = signer.sign(&[labels::DEVICE_LIST_CONTEXT, &b].concat()).to_bytes();
        b.extend(sig);
        b
    };
    let (d1b, d2b) = (d1.to_bytes(), d2.to_bytes());
    let many: Vec<(u32, [u8; 32])> =
        (0..17u32).map(|i| (i, IdentityKeyPair::from_seed(&[i as u8 + 40; 32]).public_key().to_bytes())).collect();
    let sixteen = raw(4, &many[..16]);
    assert!(DeviceList::verify(&sixteen, &user.public_key(), None).is_ok());
    let cases: Vec<(&str, Vec<u8>, Option<&DeviceList>, IdentityKey)> = vec![
        ("MAX_DEVICES devices", sixteen, None, user.public_key()),
        ("a newer version after version 2", v3.to_bytes(), Some(&v2), user.public_key()),
        ("version 2 again, byte for byte", v2.to_bytes(), Some(&v2), user.public_key()),
        ("an older version after version 2", v1.to_bytes(), Some(&v2), user.public_key()),
        ("version 2 again with other devices", v2_other.to_bytes(), Some(&v2), user.public_key()),
        ("another user's key expected", v2.to_bytes(), None, other.public_key()),
        ("the signature fails", flip(&v2.to_bytes(), 34, 0x02 ^ 0x03), None, user.public_key()),
        ("MAX_DEVICES + 1 devices", raw(4, &many), None, user.public_key()),
        ("no device", raw(4, &[]), None, user.public_key()),
        ("device ids not increasing", raw(4, &[(9, d2b), (7, d1b)]), None, user.public_key()),
        ("a device id twice", raw(4, &[(7, d1b), (7, d2b)]), None, user.public_key()),
        ("a device key twice", raw(4, &[(7, d1b), (9, d1b)]), None, user.public_key()),
        ("a device key of small order", raw(4, &[(7, [0u8; 32])]), None, user.public_key()),
        (
            "a certificate's signature over one device",
            {
                let mut b = raw(4, &[(7, d1b)]);
                let n = b.len();
                b[n - 64..].copy_from_slice(&cert.to_bytes()[69..]);
                b
            },
            None,
            user.public_key(),
        ),
        ("trailing byte", [v2.to_bytes(), vec![0]].concat(), None, user.public_key()),
        (
            "a user key of small order",
            {
                let mut b = v2.to_bytes();
                b[1..33].copy_from_slice(&[0u8; 32]);
                b
            },
            None,
            user.public_key(),
        ),
        (
            "device ids out of order and a later device key of small order (keys are decoded as read, order checked after)",
            raw(4, &[(9, d2b), (7, [0u8; 32])]),
            None,
            user.public_key(),
        ),
        (
            "device ids out of order at the second entry, the third entry's key of small order",
            raw(4, &[(9, d2b), (7, d1b), (12, [0u8; 32])]),
            None,
            user.public_key(),
        ),
        (
            "an older version whose signature fails (the signature is checked first)",
            flip(&v1.to_bytes(), 41, 0x01),
            Some(&v2),
            user.public_key(),
        ),
        ("truncated", v2.to_bytes()[..v2.to_bytes().len() - 1].to_vec(), None, user.public_key()),
    ];
    for (comment, bytes, previous, expected) in cases {
        let got = accept(&bytes, &expected, previous);
        tests.push(f.test(
            &format!("device list: {comment}"),
            &["DeviceList"],
            got,
            json!({ "userKey": h(&expected.to_bytes()), "previous": previous.map(|p| h(&p.to_bytes())), "list": h(&bytes) }),
        ));
    }
    f.group("device_list", "Device lists and which ones are accepted (SPEC.md §3.7)", tests);

    let mut tests = Vec::new();
    for (a, b) in [
        (addr(b"alice", 1), addr(b"bob", 7)),
        (addr(b"", 0), addr(&[0xff; 255], u32::MAX)),
        (addr("+4915100000000".as_bytes(), 3), addr("+4915100000000".as_bytes(), 4)),
    ] {
        tests.push(f.test(
            "the binding of a session between two addresses, initiator first",
            &["Binding"],
            None,
            json!({ "initiator": addr_json(&a), "responder": addr_json(&b), "binding": h(&binding(&a, &b)) }),
        ));
    }
    f.group("binding", "Addresses and the binding derived from them (SPEC.md §4.6)", tests);
}

// ------------------------------------------------------------ envelopes

fn envelopes(f: &mut VectorFile) {
    let mut rng = Recorder::new(92);
    let me = IdentityKeyPair::from_seed(&rng.bytes::<32>());
    let gid = GroupId::new(b"family").unwrap();
    let mut sender = GroupSender::new(&mut rng, gid.clone(), me.public_key());
    rng.take();
    let d = sender.distribution();
    let gm = sender.encrypt(b"hi all").unwrap();
    let mut tests = Vec::new();
    let valid: Vec<(&str, Envelope, Value)> = vec![
        ("content", Envelope::Content(b"hello".to_vec()), json!({ "kind": "content", "content": h(b"hello") })),
        ("empty content", Envelope::Content(Vec::new()), json!({ "kind": "content", "content": "" })),
        (
            "a distribution",
            Envelope::Distribution(Box::new(d.clone())),
            json!({ "kind": "distribution", "distribution": h(&d.to_bytes()) }),
        ),
        (
            "a distribution request",
            Envelope::DistributionRequest(gid.clone()),
            json!({ "kind": "distribution-request", "groupId": h(gid.as_bytes()) }),
        ),
        ("removed", Envelope::Removed(gid.clone()), json!({ "kind": "removed", "groupId": h(gid.as_bytes()) })),
        (
            "a group message",
            Envelope::Group { group_id: gid.clone(), sender: addr(b"alice", 2), message: gm.clone() },
            json!({ "kind": "group-message", "groupId": h(gid.as_bytes()), "sender": addr_json(&addr(b"alice", 2)), "message": h(&gm.to_bytes()) }),
        ),
    ];
    for (comment, e, fields) in valid {
        let bytes = e.to_bytes().to_vec();
        tests.push(f.test(comment, &["Envelope"], None, merge(json!({ "envelope": h(&bytes) }), fields)));
    }
    let group_env =
        Envelope::Group { group_id: gid.clone(), sender: addr(b"alice", 2), message: gm.clone() }.to_bytes().to_vec();
    let mut bad_dist = Envelope::Distribution(Box::new(d.clone())).to_bytes().to_vec();
    let n = bad_dist.len();
    bad_dist[n - 32..].copy_from_slice(&[0u8; 32]);
    for (comment, bytes) in [
        ("an unknown kind", vec![0x1e, 0x06, 0x00]),
        ("no kind", vec![0x1e]),
        ("an empty group id", vec![0x1e, 0x03, 0x00]),
        ("a 65-byte group id", [vec![0x1e, 0x04, 65], vec![b'g'; 65]].concat()),
        ("a byte after the group id", [vec![0x1e, 0x03, 1, b'g'], vec![0]].concat()),
        (
            "a group message shorter than its overhead",
            group_env[..group_env.len() - 1 - (gm.to_bytes().len() - GROUP_MESSAGE_OVERHEAD)].to_vec(),
        ),
        ("a distribution with a small-order signing key", bad_dist),
        (
            "a distribution with a trailing byte",
            [Envelope::Distribution(Box::new(d.clone())).to_bytes().to_vec(), vec![0]].concat(),
        ),
        ("version 2", flip(&Envelope::Content(b"x".to_vec()).to_bytes(), 0, 0x1e ^ 0x2e)),
        ("a message's type nibble", flip(&Envelope::Content(b"x".to_vec()).to_bytes(), 0, 0x1e ^ 0x11)),
    ] {
        let e = Envelope::try_from(bytes.as_slice()).err().unwrap_or_else(|| panic!("{comment} decoded")).category();
        tests.push(f.test(comment, &["Envelope", "Malformed"], Some(e), json!({ "envelope": h(&bytes) })));
    }
    f.group("envelope", "Envelopes (SPEC.md §6.7)", tests);
}

// ------------------------------------------------------------ session records

/// A device in a record transcript.
struct Side {
    account: Account,
    record: SessionRecord,
    start: Vec<u8>,
}

struct RecordScript {
    sides: [Side; 2],
    rng: Recorder,
    events: Vec<Value>,
    first_error: Option<ErrorCategory>,
}

const NAMES: [&str; 2] = ["alice", "bob"];

impl RecordScript {
    fn new(seed: u8, one_time_prekeys: usize) -> Self {
        Self::new_with(seed, one_time_prekeys, false)
    }

    /// With post-quantum accounts (`Account::new`: PQXDH bundles).
    fn new_with(seed: u8, one_time_prekeys: usize, pq: bool) -> Self {
        let mut rng = Recorder::new(seed);
        let mut make = |user: &[u8], device: u32| {
            let mut a = if pq { Account::new(&mut rng) } else { Account::new_classical(&mut rng) };
            a.generate_one_time_prekeys(&mut rng, one_time_prekeys);
            (a, addr(user, device))
        };
        let (a, at_a) = make(b"alice", 1);
        let (b, at_b) = make(b"bob", 2);
        rng.take();
        let (ka, kb) = (a.identity_key(), b.identity_key());
        let sides = [
            Side {
                start: a.to_bytes().to_vec(),
                account: a,
                record: SessionRecord::new(at_a.clone(), at_b.clone(), kb),
            },
            Side { start: b.to_bytes().to_vec(), account: b, record: SessionRecord::new(at_b, at_a, ka) },
        ];
        Self { sides, rng, events: Vec::new(), first_error: None }
    }

    fn ids(&self, p: usize) -> Value {
        let r = &self.sides[p].record;
        json!({
            "current": r.current_id().map(|id| h(&id.0)),
            "archived": r.archived().map(|s| h(&s.session_id().0)).collect::<Vec<_>>(),
        })
    }

    fn bundle(&mut self, of: usize, one_time: bool) -> PreKeyBundle {
        let acc = &self.sides[of].account;
        let opk = if one_time { acc.one_time_prekey_ids().first().copied() } else { None };
        acc.prekey_bundle(opk).unwrap()
    }

    /// `p` initiates to the other side from the given bundle.
    fn initiate_with(&mut self, p: usize, bundle: &PreKeyBundle) -> Result<(), KeyAgreementError> {
        let s = &mut self.sides[p];
        let out = s.record.initiate(&mut self.rng, s.account.identity_key_pair(), bundle);
        let mut ev = json!({ "event": "initiate", "party": NAMES[p], "bundle": h(&bundle.to_bytes()), "randomness": self.rng.take() });
        match out {
            Ok(()) => ev = merge(ev, merge(json!({ "result": "valid" }), self.ids(p))),
            Err(e) => {
                ev = merge(ev, json!({ "result": "invalid", "error": e.category().name() }));
                self.first_error.get_or_insert(e.category());
            }
        }
        self.events.push(ev);
        out
    }

    fn initiate(&mut self, p: usize, one_time: bool) {
        let b = self.bundle(1 - p, one_time);
        self.initiate_with(p, &b).unwrap();
    }

    fn send(&mut self, p: usize, text: &[u8]) -> Vec<u8> {
        let m = self.sides[p].record.encrypt(&mut self.rng, text);
        let mut ev =
            json!({ "event": "encrypt", "party": NAMES[p], "plaintext": h(text), "randomness": self.rng.take() });
        match &m {
            Ok(m) => ev = merge(ev, json!({ "result": "valid", "message": h(&m.to_bytes()) })),
            Err(e) => {
                ev = merge(ev, json!({ "result": "invalid", "error": e.category().name() }));
                self.first_error.get_or_insert(e.category());
            }
        }
        self.events.push(ev);
        m.map(|m| m.to_bytes()).unwrap_or_default()
    }

    /// Delivers `bytes` to `p`; `expect` is what the generator must see.
    fn deliver(&mut self, p: usize, bytes: &[u8], expect: Result<&[u8], DecryptError>) {
        let s = &mut self.sides[p];
        let before = (s.record.to_bytes().to_vec(), s.account.to_bytes().to_vec());
        let got = s.record.decrypt_bytes(&mut s.account, bytes);
        match (&got, &expect) {
            (Ok(a), Ok(b)) => assert_eq!(a.as_slice(), *b),
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!("record transcript: got {got:?}, expected {expect:?}"),
        }
        let mut ev = json!({ "event": "decrypt", "party": NAMES[p], "message": h(bytes) });
        match got {
            Ok(pt) => ev = merge(ev, json!({ "result": "valid", "plaintext": h(&pt) })),
            Err(e) => {
                let s = &self.sides[p];
                assert_eq!(
                    (s.record.to_bytes().to_vec(), s.account.to_bytes().to_vec()),
                    before,
                    "a rejection changed state"
                );
                ev = merge(ev, cat(&e));
                self.first_error.get_or_insert(e.category());
            }
        }
        ev = merge(ev, self.ids(p));
        ev["oneTimePreKeyIds"] =
            json!(self.sides[p].account.one_time_prekey_ids().iter().map(|i| i.0).collect::<Vec<_>>());
        self.events.push(ev);
    }

    fn ok(&mut self, p: usize, bytes: &[u8], text: &[u8]) {
        self.deliver(p, bytes, Ok(text));
    }

    fn finish(mut self, f: &mut VectorFile, comment: &str, flags: &[&str]) -> Value {
        for p in 0..2 {
            let saved = self.sides[p].record.to_bytes().to_vec();
            assert_eq!(*SessionRecord::from_bytes(&saved).unwrap().to_bytes(), saved);
            self.events.push(json!({ "event": "save", "party": NAMES[p], "record": h(&saved) }));
        }
        let parties: Vec<Value> = (0..2)
            .map(|p| {
                let s = &self.sides[p];
                json!({
                    "name": NAMES[p],
                    "address": addr_json(s.record.local()),
                    "account": h(&s.start),
                    "identityKey": h(&Account::from_bytes(&s.start).unwrap().identity_key().to_bytes()),
                })
            })
            .collect();
        f.test(comment, flags, self.first_error, json!({ "parties": parties, "events": self.events }))
    }
}

fn records(f: &mut VectorFile) {
    let mut tests = Vec::new();
    const A: usize = 0;
    const B: usize = 1;

    // Handshake, then a replay of the first message (no one-time prekey).
    let mut s = RecordScript::new(100, 0);
    s.initiate(A, false);
    let m1 = s.send(A, b"hello bob");
    s.ok(B, &m1, b"hello bob");
    s.deliver(B, &m1, Err(DecryptError::Duplicate));
    let r1 = s.send(B, b"hello alice");
    s.ok(A, &r1, b"hello alice");
    s.deliver(B, &m1, Err(DecryptError::Duplicate));
    let m2 = s.send(A, b"and on");
    s.ok(B, &m2, b"and on");
    tests.push(s.finish(f, "a first message without a one-time prekey replayed, before and after the reply: duplicate, never a new session", &["Replay"]));

    // Simultaneous initiation, both delivery orders, over several seeds so
    // both orders of the session ids appear.
    let mut seen = [false; 2];
    for seed in 101..=120u8 {
        for bob_first in [false, true] {
            let mut s = RecordScript::new(seed, 1);
            s.initiate(A, true);
            s.initiate(B, true);
            let sa = s.sides[A].record.current_id().unwrap();
            let sb = s.sides[B].record.current_id().unwrap();
            let smaller_first = sa.0 < sb.0;
            if seen[usize::from(smaller_first)] {
                continue;
            }
            seen[usize::from(smaller_first)] = true;
            let a1 = s.send(A, b"a1");
            let b1 = s.send(B, b"b1");
            if bob_first {
                s.ok(A, &b1, b"b1");
                s.ok(B, &a1, b"a1");
            } else {
                s.ok(B, &a1, b"a1");
                s.ok(A, &b1, b"b1");
            }
            let a2 = s.send(A, b"a2");
            let b2 = s.send(B, b"b2");
            s.ok(B, &a2, b"a2");
            s.ok(A, &b2, b"b2");
            let a3 = s.send(A, b"a3");
            s.ok(B, &a3, b"a3");
            let b3 = s.send(B, b"b3");
            s.ok(A, &b3, b"b3");
            assert_eq!(s.sides[A].record.current_id(), s.sides[B].record.current_id());
            let which = if smaller_first { "Alice's" } else { "Bob's" };
            tests.push(s.finish(
                f,
                &format!(
                    "simultaneous initiation ({}first messages crossing): each side takes the other's session (rule 1), one exchange brings both to the smaller id (rule 2), {which}",
                    if bob_first { "Bob's delivered first, " } else { "" }
                ),
                &["Race"],
            ));
        }
    }
    assert_eq!(seen, [true, true]);

    // The race with overtaking: Bob's reply on Alice's session arrives
    // before Bob's own first message; rule 1 then rule 2.
    let mut done = false;
    for seed in 121..=160u8 {
        let mut s = RecordScript::new(seed, 1);
        // S0: a session Alice started and gave up before Bob heard of it,
        // so her archive holds two sessions when rule 2 applies.
        s.initiate(A, true);
        s.initiate(A, true);
        s.initiate(B, true);
        let sa = s.sides[A].record.current_id().unwrap();
        let sb = s.sides[B].record.current_id().unwrap();
        if sa.0 > sb.0 {
            continue;
        }
        let b1 = s.send(B, b"b1");
        let a1 = s.send(A, b"a1");
        s.ok(B, &a1, b"a1");
        let r1 = s.send(B, b"r1 (on Alice's session)");
        s.ok(A, &r1, b"r1 (on Alice's session)");
        s.ok(A, &b1, b"b1");
        let a2 = s.send(A, b"a2 (on Bob's session)");
        s.ok(B, &a2, b"a2 (on Bob's session)");
        let r2 = s.send(B, b"r2 (on Alice's session)");
        s.ok(A, &r2, b"r2 (on Alice's session)");
        let a3 = s.send(A, b"a3");
        s.ok(B, &a3, b"a3");
        assert_eq!(s.sides[A].record.current_id(), Some(sa));
        assert_eq!(s.sides[B].record.current_id(), Some(sa));
        tests.push(s.finish(
            f,
            "simultaneous initiation where Bob's reply overtakes his own first message: Alice first takes Bob's session (rule 1), Bob's next message on the smaller one brings her back (rule 2), the demoted session going to the front of her archive (which also holds a session she gave up)",
            &["Race", "Promotion"],
        ));
        done = true;
        break;
    }
    assert!(done);

    // A peer that starts over; a message of the old session overtaken by
    // the new one decrypts from the archive without a swap back, although
    // the old session has the smaller id (both were created on Bob's side as
    // responder: rule 2 does not apply). Replays of the old session's
    // messages, on a closed chain and on its open chain, are decided by that
    // session alone (duplicate), not tried on the current one.
    let mut done = false;
    for seed in 161..=200u8 {
        let mut s = RecordScript::new(seed, 2);
        s.initiate(A, true);
        let old = s.sides[A].record.current_id().unwrap();
        let m = s.send(A, b"1");
        s.ok(B, &m, b"1");
        let r = s.send(B, b"2");
        s.ok(A, &r, b"2");
        let x = s.send(A, b"2a");
        let y = s.send(A, b"2b");
        s.ok(B, &x, b"2a");
        s.ok(B, &y, b"2b");
        let r = s.send(B, b"3");
        s.ok(A, &r, b"3");
        let late = s.send(A, b"late, on the old session");
        let at_a = s.sides[A].record.local().clone();
        let at_b = s.sides[A].record.remote().clone();
        let kb = s.sides[B].account.identity_key();
        let lost = std::mem::replace(&mut s.sides[A].record, SessionRecord::new(at_a, at_b, kb));
        s.events.push(json!({ "event": "loseSessions", "party": "alice" }));
        s.initiate(A, true);
        if s.sides[A].record.current_id().unwrap().0 < old.0 {
            let _ = lost;
            continue;
        }
        let fresh = s.send(A, b"fresh");
        s.ok(B, &fresh, b"fresh");
        s.ok(B, &late, b"late, on the old session");
        let r2 = s.send(B, b"on the new session");
        s.ok(A, &r2, b"on the new session");
        s.deliver(B, &late, Err(DecryptError::Duplicate));
        s.deliver(B, &x, Err(DecryptError::Duplicate));
        tests.push(s.finish(
            f,
            "Alice loses her sessions and starts over: her new session becomes current for Bob; her old message decrypts from the archive and does not bring back the old session although its id is smaller (same side); replays of the old session's messages (its open chain, a closed chain) are duplicate",
            &["Restart", "Archive", "Replay"],
        ));
        done = true;
        break;
    }
    assert!(done);

    // A prekey message of an archived session never promotes it, even one
    // created on the other side with the smaller id.
    let mut done = false;
    for seed in 201..=240u8 {
        let mut s = RecordScript::new(seed, 2);
        s.initiate(B, true);
        let sb = s.sides[B].record.current_id().unwrap();
        let n1 = s.send(B, b"n1");
        let n2 = s.send(B, b"n2");
        s.ok(A, &n1, b"n1");
        s.initiate(A, true);
        if s.sides[A].record.current_id().unwrap().0 < sb.0 {
            continue;
        }
        s.ok(A, &n2, b"n2");
        tests.push(s.finish(
            f,
            "Alice answers Bob's first message, then starts a session of her own (current, larger id); Bob's second prekey message decrypts from her archive and does not promote his smaller session",
            &["Promotion"],
        ));
        done = true;
        break;
    }
    assert!(done);

    // A first session Bob can never open (the server swapped the one-time
    // prekey) is given up as soon as Bob's own session arrives (rule 1),
    // whichever id is smaller.
    let mut s = RecordScript::new(242, 2);
    let good = s.bundle(B, true).to_bytes();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 32..].copy_from_slice(&[0x55; 32]);
    s.initiate_with(A, &PreKeyBundle::try_from(bad.as_slice()).unwrap()).unwrap();
    let dead = s.send(A, b"never readable");
    s.deliver(B, &dead, Err(DecryptError::Authentication));
    s.initiate(B, true);
    let hello = s.send(B, b"hello?");
    s.ok(A, &hello, b"hello?");
    let reply = s.send(A, b"here");
    s.ok(B, &reply, b"here");
    assert_eq!(s.sides[A].record.current_id(), s.sides[B].record.current_id());
    tests.push(s.finish(
        f,
        "Alice's first session cannot be opened (its bundle's one-time prekey was swapped): when Bob starts his own, Alice takes it (rule 1) and they talk",
        &["Race", "Liveness"],
    ));

    // The first session tried decides the error: a low-order ratchet key is
    // non-contributory on the current session (it holds DHs), authentication
    // on the archived one (its DHs was deleted).
    let mut s = RecordScript::new(241, 1);
    s.initiate(A, true);
    s.initiate(B, true);
    let a1 = s.send(A, b"a1");
    let b1 = s.send(B, b"b1");
    s.ok(B, &a1, b"a1");
    s.ok(A, &b1, b"b1");
    let b2 = s.send(B, b"b2");
    s.ok(A, &b2, b"b2");
    let a2 = s.send(A, b"a2");
    s.ok(B, &a2, b"a2");
    let b3 = s.send(B, b"b3");
    let mut low = b3.clone();
    low[1..33].copy_from_slice(&[0u8; 32]);
    s.deliver(A, &low, Err(DecryptError::NonContributory));
    s.ok(A, &b3, b"b3");
    tests.push(s.finish(
        f,
        "a new ratchet key of low order: the current session (with DHs) refuses it as non-contributory, the archived one would say authentication; the first session tried gives the error",
        &["Archive", "LowOrder"],
    ));

    // The archive bound and retired ids.
    let mut s = RecordScript::new(162, 0);
    let mut firsts = Vec::new();
    for i in 0..(MAX_ARCHIVED_SESSIONS + 2) {
        s.initiate(A, false);
        let m = s.send(A, &[b'0' + i as u8]);
        s.ok(B, &m, &[b'0' + i as u8]);
        firsts.push(m);
    }
    for m in &firsts {
        s.deliver(B, m, Err(DecryptError::Duplicate));
    }
    tests.push(s.finish(
        f,
        "Alice starts seven sessions: Bob keeps the current and five archived, retires the oldest id, and every first message replayed is duplicate",
        &["Archive", "Bound", "Replay"],
    ));

    // More than MAX_RETIRED_SESSIONS forgotten sessions: the oldest retired
    // id is dropped, so its replayed first message (no one-time prekey)
    // creates a session again; the next one is still duplicate, also when
    // its identity key is replaced by another (the retired check comes
    // first).
    let mut s = RecordScript::new(243, 0);
    let total = 1 + MAX_ARCHIVED_SESSIONS + MAX_RETIRED_SESSIONS + 1;
    let mut firsts = Vec::new();
    for i in 0..total {
        s.initiate(A, false);
        let m = s.send(A, format!("s{i}").as_bytes());
        s.ok(B, &m, format!("s{i}").as_bytes());
        firsts.push(m);
    }
    s.deliver(B, &firsts[1], Err(DecryptError::Duplicate));
    let mut other = firsts[1].clone();
    other[1..33].copy_from_slice(&IdentityKeyPair::from_seed(&[0x66; 32]).public_key().to_bytes());
    s.deliver(B, &other, Err(DecryptError::Duplicate));
    s.ok(B, &firsts[0], b"s0");
    tests.push(s.finish(
        f,
        "47 sessions from Alice: Bob retires 41 ids and keeps the newest 40; the second session's first message is duplicate, even under another identity key; the oldest's creates a session again",
        &["Archive", "Bound", "Replay"],
    ));

    // A message to an archived session that starts a new chain there is
    // tried on the current session first; tampering changes nothing.
    let mut s = RecordScript::new(163, 2);
    s.initiate(A, true);
    s.initiate(B, true);
    let a1 = s.send(A, b"a1");
    let b1 = s.send(B, b"b1");
    s.ok(B, &a1, b"a1");
    s.ok(A, &b1, b"b1");
    let a2 = s.send(A, b"a2");
    let mut bad = a2.clone();
    *bad.last_mut().unwrap() ^= 1;
    s.deliver(B, &bad, Err(DecryptError::Authentication));
    s.ok(B, &a2, b"a2");
    let b2 = s.send(B, b"b2");
    let mut forged = b2.clone();
    forged[1..33].copy_from_slice(&[9u8; 32]);
    s.deliver(A, &forged, Err(DecryptError::Authentication));
    s.ok(A, &b2, b"b2");
    s.deliver(A, &b2, Err(DecryptError::Duplicate));
    tests.push(s.finish(
        f,
        "a record with two sessions: a tampered message and a forged new ratchet key fail and change nothing; the genuine ones decrypt once",
        &["Tamper", "Archive"],
    ));

    // Identities and empty records.
    let mut s = RecordScript::new(164, 1);
    let r = s.send(A, b"no session yet");
    assert!(r.is_empty());
    let mut mallory_rng = Recorder::new(165);
    let mallory = Account::new_classical(&mut mallory_rng);
    let wrong_bundle = mallory.prekey_bundle(None).unwrap();
    assert!(s.initiate_with(A, &wrong_bundle).is_err());
    // Mallory's prekey message to Bob's record with Alice.
    let mut from_mallory = SessionRecord::new(
        s.sides[A].record.local().clone(),
        s.sides[A].record.remote().clone(),
        s.sides[B].account.identity_key(),
    );
    let bb = s.bundle(B, true);
    from_mallory.initiate(&mut mallory_rng, mallory.identity_key_pair(), &bb).unwrap();
    let m = from_mallory.encrypt(&mut mallory_rng, b"I am alice").unwrap().to_bytes();
    s.deliver(B, &m, Err(DecryptError::StateMismatch));
    // A normal message to a record without sessions.
    s.initiate(A, true);
    let first = s.send(A, b"first");
    s.ok(B, &first, b"first");
    let reply = s.send(B, b"reply");
    let mut empty_side = SessionRecord::new(
        s.sides[A].record.local().clone(),
        s.sides[A].record.remote().clone(),
        s.sides[B].account.identity_key(),
    );
    assert_eq!(empty_side.decrypt_bytes(&mut s.sides[A].account, &reply), Err(DecryptError::StateMismatch));
    s.ok(A, &reply, b"reply");
    let reply2 = s.send(B, b"to a record without sessions");
    let (at_a, at_b) = (s.sides[A].record.local().clone(), s.sides[A].record.remote().clone());
    s.sides[A].record = SessionRecord::new(at_a, at_b, s.sides[B].account.identity_key());
    s.events.push(json!({ "event": "loseSessions", "party": "alice" }));
    s.deliver(A, &reply2, Err(DecryptError::StateMismatch));
    tests.push(s.finish(
        f,
        "encrypting with no session, a bundle of another identity, a prekey message from another identity and a normal message to a record without sessions are state-mismatch",
        &["Identity"],
    ));

    // A record holds one local identity: with another identity's prekey
    // store, a new session is refused (a held one still takes its prekey
    // messages), and so is initiating under another identity.
    let mut s = RecordScript::new(167, 2);
    s.initiate(A, true);
    let m1 = s.send(A, b"m1");
    let m2 = s.send(A, b"m2");
    s.ok(B, &m1, b"m1");
    let mut other_rng = Recorder::new(168);
    let other = Account::new_classical(&mut other_rng);
    let bob_account = std::mem::replace(&mut s.sides[B].account, Account::from_bytes(&other.to_bytes()).unwrap());
    s.events.push(json!({ "event": "useAccount", "party": "bob", "account": h(&other.to_bytes()) }));
    s.ok(B, &m2, b"m2");
    let bundle = bob_account.prekey_bundle(None).unwrap();
    s.initiate_with(A, &bundle).unwrap();
    let fresh = s.send(A, b"a new session");
    s.deliver(B, &fresh, Err(DecryptError::StateMismatch));
    let ab = s.sides[A].account.prekey_bundle(None).unwrap();
    assert!(s.initiate_with(B, &ab).is_err());
    tests.push(s.finish(
        f,
        "Bob's record holds sessions of his identity; with another identity's prekey store a new session is refused (state-mismatch) while the held one still takes its prekey message, and initiating under the other identity is refused",
        &["Identity"],
    ));

    // The binding comes from the addresses: Bob's record for another of
    // Alice's device ids cannot read her message.
    let mut s = RecordScript::new(166, 1);
    let at_b = s.sides[B].record.local().clone();
    let ka = s.sides[A].account.identity_key();
    s.sides[B].record = SessionRecord::new(at_b, addr(b"alice", 5), ka);
    s.events.push(json!({ "event": "setRemoteAddress", "party": "bob", "address": addr_json(&addr(b"alice", 5)) }));
    s.initiate(A, true);
    let m = s.send(A, b"for device 1's record");
    s.deliver(B, &m, Err(DecryptError::Authentication));
    tests.push(s.finish(
        f,
        "Bob's record names Alice's device 5, Alice sends from device 1: the derived bindings differ and the first message fails authentication, burning no prekey",
        &["Binding"],
    ));

    f.group(
        "records",
        "Session records: routing, replays, races, archive, promotion, identities (SPEC.md §4.6, §4.7)",
        tests,
    );
}

// ------------------------------------------------------------ groups

fn groups(f: &mut VectorFile) {
    let mut rng = Recorder::new(170);
    let gid = GroupId::new(b"book club").unwrap();
    let ids: Vec<IdentityKeyPair> = (0..3).map(|_| IdentityKeyPair::from_seed(&rng.bytes::<32>())).collect();
    let addrs = [addr(b"alice", 1), addr(b"bob", 1), addr(b"carol", 4)];
    rng.take();
    let members_of = |me: usize| -> Vec<(Address, IdentityKey)> {
        (0..3).filter(|&i| i != me).map(|i| (addrs[i].clone(), ids[i].public_key())).collect()
    };
    let mut events = Vec::new();
    let mut states = Vec::new();
    for i in 0..3 {
        let g = Group::create(&mut rng, gid.clone(), addrs[i].clone(), ids[i].public_key(), &members_of(i)).unwrap();
        let members: Vec<Value> = members_of(i)
            .iter()
            .map(|(a, k)| json!({ "address": addr_json(a), "identityKey": h(&k.to_bytes()) }))
            .collect();
        events.push(json!({ "event": "create", "party": i, "members": members, "randomness": rng.take(), "state": h(&g.to_bytes()) }));
        states.push(g);
    }
    let via =
        |from: usize, to: usize| SessionRecord::new(addrs[to].clone(), addrs[from].clone(), ids[from].public_key());
    let dist = |g: &Group| match g.distribution() {
        Envelope::Distribution(d) => d,
        _ => unreachable!(),
    };
    let check = |got: Result<Vec<u8>, DecryptError>, want: Result<&[u8], DecryptError>| {
        match (&got, &want) {
            (Ok(a), Ok(b)) => assert_eq!(a.as_slice(), *b),
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!("group transcript: got {got:?}, expected {want:?}"),
        }
        match got {
            Ok(p) => json!({ "result": "valid", "plaintext": h(&p) }),
            Err(e) => cat(&e),
        }
    };
    let add_event = |to: usize,
                     from: &Address,
                     from_id: &IdentityKey,
                     d: &SenderKeyDistribution,
                     r: &Result<(), DecryptError>| {
        let base = json!({ "event": "addDistribution", "party": to, "from": addr_json(from), "fromIdentity": h(&from_id.to_bytes()), "distribution": h(&d.to_bytes()) });
        match r {
            Ok(()) => merge(base, json!({ "result": "valid" })),
            Err(e) => merge(base, cat(e)),
        }
    };
    // Before any key arrived: a message for another group from a member
    // without a receiver is state-mismatch (the group is checked first),
    // and distributions for another group, over a record whose identity is
    // not the listed member's, or from a non-member are refused.
    let mut other_sender = GroupSender::new(&mut rng, GroupId::new(b"another").unwrap(), ids[0].public_key());
    rng.take();
    let early = other_sender.encrypt(b"for another group").unwrap();
    let env_other =
        Envelope::Group { group_id: GroupId::new(b"another").unwrap(), sender: addrs[0].clone(), message: early };
    let r = check(states[1].decrypt(&env_other), Err(DecryptError::StateMismatch));
    events.push(merge(json!({ "event": "decrypt", "party": 1, "envelope": h(&env_other.to_bytes()) }), r));
    let d_other = other_sender.distribution();
    let r = states[1].add_distribution(&via(0, 1), &d_other);
    assert_eq!(r, Err(DecryptError::StateMismatch));
    events.push(add_event(1, &addrs[0], &ids[0].public_key(), &d_other, &r));
    let d_alice0 = dist(&states[0]);
    let lying0 = SessionRecord::new(addrs[1].clone(), addrs[0].clone(), ids[2].public_key());
    let r = states[1].add_distribution(&lying0, &d_alice0);
    assert_eq!(r, Err(DecryptError::StateMismatch));
    events.push(add_event(1, &addrs[0], &ids[2].public_key(), &d_alice0, &r));
    let dave = addr(b"dave", 1);
    let from_dave = SessionRecord::new(addrs[1].clone(), dave.clone(), ids[0].public_key());
    let r = states[1].add_distribution(&from_dave, &d_alice0);
    assert_eq!(r, Err(DecryptError::StateMismatch));
    events.push(add_event(1, &dave, &ids[0].public_key(), &d_alice0, &r));
    // Alice's first message before Bob has her key: no-sender-key.
    let e0 = states[0].encrypt(b"before the keys").unwrap();
    events.push(
        json!({ "event": "encrypt", "party": 0, "plaintext": h(b"before the keys"), "envelope": h(&e0.to_bytes()) }),
    );
    let r = check(states[1].decrypt(&e0), Err(DecryptError::NoSenderKey));
    events.push(merge(json!({ "event": "decrypt", "party": 1, "envelope": h(&e0.to_bytes()) }), r));
    // Everyone's distribution to everyone.
    for from in 0..3 {
        let d = dist(&states[from]);
        for to in 0..3 {
            if to != from {
                states[to].add_distribution(&via(from, to), &d).unwrap();
                events.push(json!({ "event": "addDistribution", "party": to, "from": addr_json(&addrs[from]), "fromIdentity": h(&ids[from].public_key().to_bytes()), "distribution": h(&d.to_bytes()), "result": "valid" }));
            }
        }
    }
    // A distribution over a record whose address is a member's but whose
    // identity is not (Bob's key claiming Alice's address).
    let d_bob = dist(&states[1]);
    let lying = SessionRecord::new(addrs[2].clone(), addrs[0].clone(), ids[1].public_key());
    let e = states[2].add_distribution(&lying, &d_bob).unwrap_err();
    events.push(merge(json!({ "event": "addDistribution", "party": 2, "from": addr_json(&addrs[0]), "fromIdentity": h(&ids[1].public_key().to_bytes()), "distribution": h(&d_bob.to_bytes()) }), cat(&e)));
    // A distribution request from Bob, a member, over his record: answered
    // with Alice's current distribution.
    let ans = states[0].answer_request(&via(1, 0), &gid).unwrap();
    let Envelope::Distribution(ad) = &ans else { unreachable!() };
    events.push(json!({ "event": "answerRequest", "party": 0, "from": addr_json(&addrs[1]), "fromIdentity": h(&ids[1].public_key().to_bytes()), "groupId": h(gid.as_bytes()), "result": "valid", "distribution": h(&ad.to_bytes()) }));
    let e1 = states[0].encrypt(b"hello both").unwrap();
    events
        .push(json!({ "event": "encrypt", "party": 0, "plaintext": h(b"hello both"), "envelope": h(&e1.to_bytes()) }));
    for to in [1, 2] {
        let r = check(states[to].decrypt(&e1), Ok(b"hello both"));
        events.push(merge(json!({ "event": "decrypt", "party": to, "envelope": h(&e1.to_bytes()) }), r));
    }
    // Alice removes Carol: rotates; Bob gets the new key, Carol is told.
    let new = states[0].remove_member(&mut rng, &addrs[2]).unwrap();
    let Envelope::Distribution(nd) = &new else { unreachable!() };
    events.push(json!({ "event": "removeMember", "party": 0, "member": addr_json(&addrs[2]), "randomness": rng.take(), "result": "valid", "distribution": h(&nd.to_bytes()), "state": h(&states[0].to_bytes()) }));
    // Carol, removed, asks Alice for her (rotated) key: refused.
    let e = states[0].answer_request(&via(2, 0), &gid).unwrap_err();
    assert_eq!(e, DecryptError::StateMismatch);
    events.push(merge(json!({ "event": "answerRequest", "party": 0, "from": addr_json(&addrs[2]), "fromIdentity": h(&ids[2].public_key().to_bytes()), "groupId": h(gid.as_bytes()) }), cat(&e)));
    states[1].add_distribution(&via(0, 1), nd).unwrap();
    events.push(json!({ "event": "addDistribution", "party": 1, "from": addr_json(&addrs[0]), "fromIdentity": h(&ids[0].public_key().to_bytes()), "distribution": h(&nd.to_bytes()), "result": "valid" }));
    let e2 = states[0].encrypt(b"without carol").unwrap();
    events.push(
        json!({ "event": "encrypt", "party": 0, "plaintext": h(b"without carol"), "envelope": h(&e2.to_bytes()) }),
    );
    let r = check(states[1].decrypt(&e2), Ok(b"without carol"));
    events.push(merge(json!({ "event": "decrypt", "party": 1, "envelope": h(&e2.to_bytes()) }), r));
    let r = check(states[2].decrypt(&e2), Err(DecryptError::NoSenderKey));
    events.push(merge(json!({ "event": "decrypt", "party": 2, "envelope": h(&e2.to_bytes()) }), r));
    states[2].mark_removed();
    events.push(json!({ "event": "markRemoved", "party": 2, "state": h(&states[2].to_bytes()) }));
    let r = check(states[2].decrypt(&e2), Err(DecryptError::NotMember));
    events.push(merge(json!({ "event": "decrypt", "party": 2, "envelope": h(&e2.to_bytes()) }), r));
    // A removed state refuses everything first as not-member: another
    // group's message, encrypting, a distribution.
    let r = check(states[2].decrypt(&env_other), Err(DecryptError::NotMember));
    events.push(merge(json!({ "event": "decrypt", "party": 2, "envelope": h(&env_other.to_bytes()) }), r));
    let e = states[2].encrypt(b"from a removed member").unwrap_err();
    assert_eq!(e, EncryptError::NotMember);
    events.push(json!({ "event": "encrypt", "party": 2, "plaintext": h(b"from a removed member"), "result": "invalid", "error": "state-mismatch", "cause": "not-member" }));
    let r = states[2].add_distribution(&via(1, 2), &d_bob);
    assert_eq!(r, Err(DecryptError::NotMember));
    events.push(add_event(2, &addrs[1], &ids[1].public_key(), &d_bob, &r));
    // Alice adds Dave: he is listed without a receiver; her distribution
    // (at her current iteration) is what she sends him.
    let dave_key = IdentityKeyPair::from_seed(&[0x44; 32]).public_key();
    let to_dave = states[0].add_member(dave.clone(), dave_key).unwrap();
    let Envelope::Distribution(dd) = &to_dave else { unreachable!() };
    events.push(json!({ "event": "addMember", "party": 0, "member": addr_json(&dave), "identityKey": h(&dave_key.to_bytes()), "result": "valid", "distribution": h(&dd.to_bytes()), "state": h(&states[0].to_bytes()) }));
    // Aaron sorts before every listed member: he is inserted in address order.
    let aaron = addr(b"aaron", 2);
    let aaron_key = IdentityKeyPair::from_seed(&[0x45; 32]).public_key();
    let to_aaron = states[0].add_member(aaron.clone(), aaron_key).unwrap();
    let Envelope::Distribution(da) = &to_aaron else { unreachable!() };
    events.push(json!({ "event": "addMember", "party": 0, "member": addr_json(&aaron), "identityKey": h(&aaron_key.to_bytes()), "result": "valid", "distribution": h(&da.to_bytes()), "state": h(&states[0].to_bytes()) }));
    // Refusals that change nothing (decode): adding a listed member or the
    // own address; on Carol's removed state, adding or removing anyone, and
    // a malformed distribution (decoded first). A group decrypt of an
    // envelope of another kind, and distribution requests from a listed
    // address over another identity or for another group: state-mismatch.
    let refuse_add = |events: &mut Vec<Value>, g: &mut Group, party: usize, who: &Address, key: &IdentityKey| {
        let e = g.add_member(who.clone(), *key).unwrap_err();
        events.push(json!({ "event": "addMember", "party": party, "member": addr_json(who), "identityKey": h(&key.to_bytes()), "result": "invalid", "error": e.category().name() }));
    };
    refuse_add(&mut events, &mut states[0], 0, &addrs[1], &ids[1].public_key());
    refuse_add(&mut events, &mut states[0], 0, &addrs[0], &ids[0].public_key());
    refuse_add(&mut events, &mut states[2], 2, &aaron, &aaron_key);
    assert!(states[2].remove_member(&mut rng, &addrs[1]).is_none());
    events.push(json!({ "event": "removeMember", "party": 2, "member": addr_json(&addrs[1]), "randomness": rng.take(), "result": "invalid", "error": "decode" }));
    let truncated = &d_bob.to_bytes()[..20];
    assert!(SenderKeyDistribution::try_from(truncated).is_err());
    events.push(json!({ "event": "addDistribution", "party": 2, "from": addr_json(&addrs[1]), "fromIdentity": h(&ids[1].public_key().to_bytes()), "distribution": h(truncated), "result": "invalid", "error": "decode" }));
    // Removing an address Alice does not list: decode, nothing drawn.
    assert!(states[0].remove_member(&mut rng, &addr(b"zed", 1)).is_none());
    events.push(json!({ "event": "removeMember", "party": 0, "member": addr_json(&addr(b"zed", 1)), "randomness": rng.take(), "result": "invalid", "error": "decode" }));
    // Carol, removed, answers no distribution request: not-member comes
    // first, even for a listed member or another group.
    for (g, who) in [(&gid, 0usize), (&GroupId::new(b"another").unwrap(), 0)] {
        let e = states[2].answer_request(&via(who, 2), g).unwrap_err();
        assert_eq!(e, DecryptError::NotMember);
        events.push(merge(json!({ "event": "answerRequest", "party": 2, "from": addr_json(&addrs[who]), "fromIdentity": h(&ids[who].public_key().to_bytes()), "groupId": h(g.as_bytes()) }), cat(&e)));
    }
    let content = Envelope::Content(b"not a group message".to_vec());
    let r = check(states[1].decrypt(&content), Err(DecryptError::StateMismatch));
    events.push(merge(json!({ "event": "decrypt", "party": 1, "envelope": h(&content.to_bytes()) }), r));
    let lying_bob = SessionRecord::new(addrs[0].clone(), addrs[1].clone(), ids[2].public_key());
    let e = states[0].answer_request(&lying_bob, &gid).unwrap_err();
    events.push(merge(json!({ "event": "answerRequest", "party": 0, "from": addr_json(&addrs[1]), "fromIdentity": h(&ids[2].public_key().to_bytes()), "groupId": h(gid.as_bytes()) }), cat(&e)));
    let another = GroupId::new(b"another").unwrap();
    let e = states[0].answer_request(&via(1, 0), &another).unwrap_err();
    events.push(merge(json!({ "event": "answerRequest", "party": 0, "from": addr_json(&addrs[1]), "fromIdentity": h(&ids[1].public_key().to_bytes()), "groupId": h(another.as_bytes()) }), cat(&e)));
    // A message from Carol (no longer listed by Alice) and for another group.
    let ex = states[1].encrypt(b"x").unwrap();
    events.push(json!({ "event": "encrypt", "party": 1, "plaintext": h(b"x"), "envelope": h(&ex.to_bytes()) }));
    let Envelope::Group { message: bobs, .. } = ex else { unreachable!() };
    // Bob's message relabelled as from Carol, whom Alice no longer lists.
    let ec = Envelope::Group { group_id: gid.clone(), sender: addrs[2].clone(), message: bobs };
    let r = check(states[0].decrypt(&ec), Err(DecryptError::StateMismatch));
    events.push(merge(json!({ "event": "decrypt", "party": 0, "envelope": h(&ec.to_bytes()) }), r));
    let other = Envelope::Group {
        group_id: GroupId::new(b"another").unwrap(),
        sender: addrs[0].clone(),
        message: match &e2 {
            Envelope::Group { message, .. } => message.clone(),
            _ => unreachable!(),
        },
    };
    let r = check(states[1].decrypt(&other), Err(DecryptError::StateMismatch));
    events.push(merge(json!({ "event": "decrypt", "party": 1, "envelope": h(&other.to_bytes()) }), r));
    for (i, g) in states.iter().enumerate() {
        events.push(json!({ "event": "save", "party": i, "state": h(&g.to_bytes()) }));
    }
    let t = f.test(
        "three member devices: a message before the keys (no-sender-key), distributions, a distribution over the wrong record, a removal with rotation, the removed member before and after being told (no-sender-key, then not-member), messages from a non-member and for another group",
        &["Group", "Removal"],
        Some(ErrorCategory::StateMismatch),
        json!({
            "groupId": h(gid.as_bytes()),
            "parties": (0..3).map(|i| json!({ "address": addr_json(&addrs[i]), "identityKey": h(&ids[i].public_key().to_bytes()) })).collect::<Vec<_>>(),
            "events": events,
        }),
    );
    f.group(
        "groups",
        "Group states: sender keys per member device, membership, the two causes (SPEC.md §7.7)",
        vec![t],
    );
}

// ------------------------------------------------------------ saved states

fn saved_states(f: &mut VectorFile) {
    let mut tests = Vec::new();
    // Revision 2 of a saved account still restores (published below = the
    // next prekey id)
    // and is re-saved as revision 3.
    let rev2 = hex::decode(REVISION_2_ACCOUNT).unwrap();
    let account = Account::from_bytes(&rev2).unwrap();
    let rev3 = account.to_bytes().to_vec();
    assert_eq!(rev3[1], 3);
    tests.push(f.test(
        "a saved account of format revision 2 restores with every held prekey counted as published (nothing to upload) and is re-saved as revision 3",
        &["Account", "OlderRevision"],
        None,
        json!({ "kind": "account", "state": h(&rev2), "events": [ { "event": "save", "state": h(&rev3) }, { "event": "toPublish", "upload": h(&account.prekeys_to_publish().to_bytes()) } ] }),
    ));
    let mut bad = rev3.clone();
    let at = 2 + 32 + 4;
    bad[at..at + 4].copy_from_slice(&(u32::from_be_bytes(rev3[34..38].try_into().unwrap()) + 1).to_be_bytes());
    for (comment, b) in [
        ("an account whose published mark is past its next prekey id", bad),
        ("an account of format revision 4", flip(&rev3, 1, 0x03 ^ 0x04)),
        ("an account of format revision 1", flip(&rev3, 1, 0x03 ^ 0x01)),
    ] {
        let e = Account::from_bytes(&b).unwrap_err().category();
        tests.push(f.test(
            comment,
            &["Account", "Malformed"],
            Some(e),
            json!({ "kind": "account", "state": h(&b), "events": [] }),
        ));
    }

    // A record with a current and an archived session, and its malformed
    // variants.
    let mut s = RecordScript::new(180, 1);
    s.initiate(0, true);
    s.initiate(1, true);
    let a1 = s.send(0, b"a1");
    s.ok(1, &a1, b"a1");
    let rec = s.sides[1].record.to_bytes().to_vec();
    let restored = SessionRecord::from_bytes(&rec).unwrap();
    tests.push(f.test(
        "a session record with a current and an archived session",
        &["Record"],
        None,
        json!({
            "kind": "record",
            "state": h(&rec),
            "current": restored.current_id().map(|i| h(&i.0)),
            "archived": restored.archived().map(|x| h(&x.session_id().0)).collect::<Vec<_>>(),
            "events": [ { "event": "save", "state": h(&rec) } ],
        }),
    ));
    // Field offsets: 2 | local (1+3+4) | remote (1+5+4) | IK_R (32) | flag
    let ik_at = 2 + 8 + 10;
    let flag_at = ik_at + 32;
    let first_len = u32::from_be_bytes(rec[flag_at + 1..flag_at + 5].try_into().unwrap()) as usize;
    let archived_at = flag_at + 5 + first_len;
    let second_len = u32::from_be_bytes(rec[archived_at + 1..archived_at + 5].try_into().unwrap()) as usize;
    let retired_at = archived_at + 5 + second_len;
    let current_session = rec[flag_at + 5..flag_at + 5 + first_len].to_vec();
    let second_session = rec[archived_at + 5..archived_at + 5 + second_len].to_vec();
    let with_session = |flag: bool, current: &[u8], archived: &[&[u8]], retired: &[[u8; 32]]| {
        let mut b = rec[..flag_at].to_vec();
        b.push(u8::from(flag));
        if flag {
            b.extend((current.len() as u32).to_be_bytes());
            b.extend(current);
        }
        b.push(archived.len() as u8);
        for a in archived {
            b.extend((a.len() as u32).to_be_bytes());
            b.extend(*a);
        }
        b.push(retired.len() as u8);
        for r in retired {
            b.extend(r);
        }
        b
    };
    assert_eq!(with_session(true, &current_session, &[&second_session], &[]), rec);
    let id_of = |session: &[u8]| -> [u8; 32] { session[2..34].try_into().unwrap() };
    let mut other_ik = rec.clone();
    other_ik[ik_at..ik_at + 32].copy_from_slice(&s.sides[1].account.identity_key().to_bytes());
    let mut long = with_session(true, &current_session, &[&second_session], &[]);
    long[flag_at + 1..flag_at + 5].copy_from_slice(&((first_len + 1) as u32).to_be_bytes());
    // Six distinct archived sessions of the same pair: Bob starts six more
    // sessions to Alice and keeps each one's saved bytes.
    let mut extra = Vec::new();
    {
        let mut bob_side = SessionRecord::from_bytes(&rec).unwrap();
        let alice_bundle = s.sides[0].account.prekey_bundle(None).unwrap();
        let bob_identity = IdentityKeyPair::from_seed(&s.sides[1].account.identity_key_pair().to_seed());
        let mut r2 = Recorder::new(182);
        for _ in 0..6 {
            bob_side.initiate(&mut r2, &bob_identity, &alice_bundle).unwrap();
            extra.push(bob_side.current().unwrap().to_bytes().to_vec());
        }
    }
    let six: Vec<&[u8]> = extra.iter().map(Vec::as_slice).collect();
    let five: Vec<&[u8]> = extra.iter().take(5).map(Vec::as_slice).collect();
    assert!(SessionRecord::from_bytes(&with_session(true, &current_session, &five, &[])).is_ok());
    // A session of another local identity (Dave's) with the same remote.
    let dave_session = {
        let mut r3 = Recorder::new(183);
        let dave = Account::new_classical(&mut r3);
        let mut rd = SessionRecord::new(addr(b"dave", 1), addr(b"alice", 1), s.sides[0].account.identity_key());
        rd.initiate(&mut r3, dave.identity_key_pair(), &s.sides[0].account.prekey_bundle(None).unwrap()).unwrap();
        rd.current().unwrap().to_bytes().to_vec()
    };
    let mut empty_bad_ik = rec[..ik_at].to_vec();
    empty_bad_ik.extend([0u8; 32]);
    empty_bad_ik.extend([0, 0, 0]);
    for (comment, b) in [
        ("an archived session without a current one", with_session(false, &[], &[&second_session], &[])),
        ("the same session current and archived", with_session(true, &current_session, &[&current_session], &[])),
        (
            "a retired id that is a held session's",
            with_session(true, &current_session, &[&second_session], &[id_of(&second_session)]),
        ),
        ("a remote identity key that is not its sessions'", other_ik),
        ("MAX_ARCHIVED_SESSIONS + 1 archived sessions, all distinct", with_session(true, &current_session, &six, &[])),
        ("two sessions of different local identity keys", with_session(true, &current_session, &[&dave_session], &[])),
        ("a remote identity key of small order, no session", empty_bad_ik),
        (
            "MAX_RETIRED_SESSIONS + 1 retired ids",
            with_session(true, &current_session, &[], &(0..41u8).map(|i| [i; 32]).collect::<Vec<_>>()),
        ),
        ("a session length one past its session", long),
        ("a trailing byte", [rec.clone(), vec![0]].concat()),
        ("truncated in the retired ids", rec[..retired_at].to_vec()),
        ("format revision 1", flip(&rec, 1, 0x02 ^ 0x01)),
    ] {
        let e = SessionRecord::from_bytes(&b).err().unwrap_or_else(|| panic!("{comment} restored")).category();
        tests.push(f.test(
            &format!("record: {comment}"),
            &["Record", "Malformed"],
            Some(e),
            json!({ "kind": "record", "state": h(&b), "events": [] }),
        ));
    }
    let key = [0x42u8; 32];
    let nonce = rng_nonce();
    let sealed = seal_raw(&key, &nonce, &rec);
    tests.push(f.test(
        "a sealed session record",
        &["Record", "Sealed"],
        None,
        json!({ "kind": "record", "storageKey": h(&key), "sealed": h(&sealed), "state": h(&rec), "events": [] }),
    ));

    // A group state and malformed variants.
    let mut rng = Recorder::new(181);
    let me = IdentityKeyPair::from_seed(&rng.bytes::<32>());
    let bob = IdentityKeyPair::from_seed(&rng.bytes::<32>());
    let carol = IdentityKeyPair::from_seed(&rng.bytes::<32>());
    let gid = GroupId::new(b"g").unwrap();
    let (am, bm, cm) = (addr(b"me", 1), addr(b"bob", 1), addr(b"carol", 1));
    let mut g = Group::create(
        &mut rng,
        gid.clone(),
        am.clone(),
        me.public_key(),
        &[(cm.clone(), carol.public_key()), (bm.clone(), bob.public_key())],
    )
    .unwrap();
    let mut bob_group =
        Group::create(&mut rng, gid.clone(), bm.clone(), bob.public_key(), &[(am.clone(), me.public_key())]).unwrap();
    let Envelope::Distribution(bd) = bob_group.distribution() else { unreachable!() };
    g.add_distribution(&SessionRecord::new(am.clone(), bm.clone(), bob.public_key()), &bd).unwrap();
    let e = bob_group.encrypt(b"to me").unwrap();
    let saved = g.to_bytes().to_vec();
    tests.push(f.test(
        "a group state with two members, one with its sender key (members ordered by address)",
        &["Group"],
        None,
        json!({ "kind": "group", "state": h(&saved), "events": [ { "event": "save", "state": h(&saved) }, { "event": "decrypt", "envelope": h(&e.to_bytes()), "result": "valid", "plaintext": h(b"to me") } ] }),
    ));
    // Layout: 2 | local (1+2+4) | flag | u32 | sender | u16 | members...
    let flag_at = 2 + 7;
    let sender_len = u32::from_be_bytes(saved[flag_at + 1..flag_at + 5].try_into().unwrap()) as usize;
    let count_at = flag_at + 5 + sender_len;
    let members = &saved[count_at + 2..];
    // bob (1+3+4+32+1+4+len) first, then carol
    let bob_len = 8 + 32 + 1 + 4 + u32::from_be_bytes(members[41..45].try_into().unwrap()) as usize;
    let (bob_entry, carol_entry) = members.split_at(bob_len);
    let rebuild = |flag: u8, entries: &[&[u8]]| {
        let mut b = saved[..flag_at].to_vec();
        b.push(flag);
        b.extend(&saved[flag_at + 1..count_at]);
        b.extend((entries.len() as u16).to_be_bytes());
        for e in entries {
            b.extend(*e);
        }
        b
    };
    assert_eq!(rebuild(1, &[bob_entry, carol_entry]), saved);
    // Carol's entry under our own address ("me", 1), after Carol's.
    let mut me_entry = vec![2u8, b'm', b'e', 0, 0, 0, 1];
    me_entry.extend(carol.public_key().to_bytes());
    me_entry.push(0);
    let mut carol_small = carol_entry.to_vec();
    carol_small[10..42].copy_from_slice(&[0u8; 32]);
    let mut other_group_receiver = bob_entry.to_vec();
    // The receiver's group id "g" (at 8 + 32 + 1 + 4 + 2 + 1) becomes "h".
    let gid_at = 8 + 32 + 1 + 4 + 2 + 1;
    assert_eq!(other_group_receiver[gid_at], b'g');
    other_group_receiver[gid_at] = b'h';
    let mut many: Vec<Vec<u8>> = Vec::new();
    for i in 0..1025u32 {
        let mut e = vec![5u8];
        e.extend(format!("m{i:04}").as_bytes());
        e.extend(1u32.to_be_bytes());
        e.extend(carol.public_key().to_bytes());
        e.push(0);
        many.push(e);
    }
    let many_refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
    let full_group = rebuild(1, &many_refs[..1024]);
    let mut g1024 = Group::from_bytes(&full_group).unwrap();
    let e = g1024.add_member(addr(b"zz", 1), carol.public_key()).unwrap_err();
    tests.push(f.test(
        "a group state listing MAX_GROUP_MEMBERS members: adding one more is refused",
        &["Group", "Bound"],
        None,
        json!({ "kind": "group", "state": h(&full_group), "events": [
            { "event": "addMember", "member": addr_json(&addr(b"zz", 1)), "identityKey": h(&carol.public_key().to_bytes()), "result": "invalid", "error": e.category().name() },
            { "event": "save", "state": h(&full_group) },
        ] }),
    ));
    let mut wrong_sender = bob_entry.to_vec();
    wrong_sender[8..40].copy_from_slice(&carol.public_key().to_bytes());
    for (comment, b) in [
        ("members out of address order", rebuild(1, &[carol_entry, bob_entry])),
        ("a member twice", rebuild(1, &[bob_entry, bob_entry])),
        ("a removed member (flag 0) holding a receiver", rebuild(0, &[bob_entry, carol_entry])),
        ("a receiver whose sender is not its member's identity", rebuild(1, &[&wrong_sender, carol_entry])),
        ("a trailing byte", [saved.clone(), vec![0]].concat()),
        ("truncated", saved[..saved.len() - 1].to_vec()),
        ("MAX_GROUP_MEMBERS + 1 members", rebuild(1, &many_refs)),
        ("a member identity key of small order", rebuild(1, &[bob_entry, &carol_small])),
        ("its own address listed as a member", rebuild(1, &[bob_entry, carol_entry, &me_entry])),
        ("a receiver of another group", rebuild(1, &[&other_group_receiver, carol_entry])),
    ] {
        let e = Group::from_bytes(&b).err().unwrap_or_else(|| panic!("{comment} restored")).category();
        tests.push(f.test(
            &format!("group: {comment}"),
            &["Group", "Malformed"],
            Some(e),
            json!({ "kind": "group", "state": h(&b), "events": [] }),
        ));
    }
    f.group(
        "saved",
        "Saved accounts (revisions 2 and 3), session records and group states (SPEC.md §11.5-§11.7)",
        tests,
    );
}

fn rng_nonce() -> [u8; 12] {
    [0x0c; 12]
}

/// The saved account of `persistence.json` as published with format
/// revision 2 (before the published mark), kept to prove revision 2 is
/// still read (SPEC.md §11.5, §13).
const REVISION_2_ACCOUNT: &str = include_str!("account-revision-2.hex");

/// Session records with post-quantum accounts (for `pqxdh.json`, SPEC.md
/// §4.7, §4.8): the same rules over version-2 sessions, and routing before
/// the downgrade check.
pub(super) fn pq_records(f: &mut VectorFile) {
    let mut tests = Vec::new();
    const A: usize = 0;
    const B: usize = 1;
    let mut s = RecordScript::new_with(180, 1, true);
    s.initiate(A, true);
    let m1 = s.send(A, b"post-quantum hello");
    s.ok(B, &m1, b"post-quantum hello");
    s.deliver(B, &m1, Err(DecryptError::Duplicate));
    let r1 = s.send(B, b"hello alice");
    s.ok(A, &r1, b"hello alice");
    let m2 = s.send(A, b"and on");
    s.ok(B, &m2, b"and on");
    tests.push(s.finish(f, "a PQXDH session through records: the replayed first message goes to its session (duplicate), the ratchet goes on", &["Replay", "Pqxdh"]));

    // Simultaneous initiation with version-2 sessions.
    let mut s = RecordScript::new_with(181, 1, true);
    s.initiate(A, true);
    s.initiate(B, true);
    let a1 = s.send(A, b"a1");
    let b1 = s.send(B, b"b1");
    s.ok(B, &a1, b"a1");
    s.ok(A, &b1, b"b1");
    let a2 = s.send(A, b"a2");
    let b2 = s.send(B, b"b2");
    s.ok(B, &a2, b"a2");
    s.ok(A, &b2, b"b2");
    let a3 = s.send(A, b"a3");
    s.ok(B, &a3, b"a3");
    assert_eq!(s.sides[A].record.current_id(), s.sides[B].record.current_id());
    tests.push(s.finish(
        f,
        "a simultaneous PQXDH initiation: both end on the session with the smaller id",
        &["Simultaneous", "Pqxdh"],
    ));

    // Routing comes before the downgrade check: Bob accepted a classical
    // session while not requiring PQXDH, then turns the requirement on; a
    // replay of that session's first message still goes to the session,
    // while a new classical session is refused.
    let mut s = RecordScript::new_with(182, 1, true);
    s.sides[B].account.set_requires_pq(false);
    s.sides[B].start = s.sides[B].account.to_bytes().to_vec();
    let pq = s.sides[B].account.prekey_bundle(None).unwrap();
    let b = pq.to_bytes();
    let kem_end = 133 + 4 + 2 + KEM_PUBLIC_KEY_LEN + 64;
    let classical = PreKeyBundle::try_from([&[0x13u8][..], &b[1..133], &b[kem_end..]].concat().as_slice()).unwrap();
    s.initiate_with(A, &classical).unwrap();
    let c1 = s.send(A, b"classical");
    s.ok(B, &c1, b"classical");
    s.sides[B].account.set_requires_pq(true);
    let now = s.sides[B].account.to_bytes().to_vec();
    s.events.push(json!({ "event": "useAccount", "party": "bob", "account": h(&now) }));
    s.deliver(B, &c1, Err(DecryptError::Duplicate));
    s.sides[A].record = SessionRecord::new(
        s.sides[A].record.local().clone(),
        s.sides[A].record.remote().clone(),
        s.sides[B].account.identity_key(),
    );
    s.events.push(json!({ "event": "loseSessions", "party": "alice" }));
    s.initiate_with(A, &classical).unwrap();
    let c2 = s.send(A, b"a new classical session");
    s.deliver(B, &c2, Err(DecryptError::Downgrade));
    // A classical first message of another identity: the record's identity
    // check (§4.7 step 3) comes before the downgrade check.
    let mut mrng = Recorder::new(184);
    let mallory = Account::new_classical(&mut mrng);
    let mut ms = Session::initiate(&mut mrng, mallory.identity_key_pair(), &classical, b"").unwrap();
    let forged = ms.encrypt(&mut mrng, b"from mallory").unwrap().to_bytes();
    s.deliver(B, &forged, Err(DecryptError::StateMismatch));
    tests.push(s.finish(f, "routing before the downgrade check: a classical session's replayed first message is duplicate at its session after the requirement is turned on; a new classical session is downgrade", &["Downgrade", "Routing"]));
    // A record that holds a version-2 session refuses a version-1 bundle of
    // the same device (a server stripped its KEM prekey), before anything is
    // drawn, and a version-1 first message from it, even though Bob's
    // account does not require PQXDH; a version-2 bundle starts over as
    // usual.
    let mut s = RecordScript::new_with(183, 1, true);
    s.sides[B].account.set_requires_pq(false);
    s.sides[B].start = s.sides[B].account.to_bytes().to_vec();
    s.initiate(A, true);
    let m1 = s.send(A, b"post-quantum");
    s.ok(B, &m1, b"post-quantum");
    let b = s.sides[B].account.prekey_bundle(None).unwrap().to_bytes();
    let classical = PreKeyBundle::try_from([&[0x13u8][..], &b[1..133], &b[kem_end..]].concat().as_slice()).unwrap();
    let before = s.sides[A].record.to_bytes().to_vec();
    assert_eq!(s.initiate_with(A, &classical), Err(KeyAgreementError::Downgrade));
    assert_eq!(*s.sides[A].record.to_bytes(), before);
    let pq = s.bundle(B, false);
    s.initiate_with(A, &pq).unwrap();
    let m2 = s.send(A, b"started over, post-quantum");
    s.ok(B, &m2, b"started over, post-quantum");
    // Alice loses her sessions; her empty record takes a classical bundle,
    // but Bob's record, which holds PQXDH sessions with her, refuses it.
    s.sides[A].record = SessionRecord::new(
        s.sides[A].record.local().clone(),
        s.sides[A].record.remote().clone(),
        s.sides[B].account.identity_key(),
    );
    s.events.push(json!({ "event": "loseSessions", "party": "alice" }));
    s.initiate_with(A, &classical).unwrap();
    let c1 = s.send(A, b"classical, to a record with PQXDH sessions");
    s.deliver(B, &c1, Err(DecryptError::Downgrade));
    // Another identity's classical first message and bundle, to Bob's
    // record (which holds PQXDH sessions): the identity checks come first.
    let mut mrng = Recorder::new(185);
    let mallory = Account::new_classical(&mut mrng);
    let mut ms = Session::initiate(&mut mrng, mallory.identity_key_pair(), &classical, b"").unwrap();
    let forged = ms.encrypt(&mut mrng, b"from mallory").unwrap().to_bytes();
    s.deliver(B, &forged, Err(DecryptError::StateMismatch));
    let mallory_bundle = mallory.prekey_bundle(None).unwrap();
    assert_eq!(s.initiate_with(B, &mallory_bundle), Err(KeyAgreementError::IdentityMismatch));
    tests.push(s.finish(f, "a record holding a PQXDH session refuses a classical bundle of the device and a classical first message from it (downgrade, whatever the account requires), changing nothing; a PQXDH bundle starts over; another identity's classical message and bundle are state-mismatch (the identity checks come first)", &["Downgrade", "Initiate"]));

    // An archived PQXDH session counts too: Bob starts a classical session
    // S1 (Alice's account does not require PQXDH); Alice answers on it, then
    // starts a PQXDH session S2; Bob takes S2 (rule 1), then Alice's late
    // answer on S1 promotes S1 (rule 2: created on the other side, smaller
    // id). Bob's record is then on a classical session with a PQXDH one
    // archived, and still refuses a classical bundle of Alice.
    let mut done = false;
    for seed in 186..=230u8 {
        let mut s = RecordScript::new_with(seed, 1, true);
        s.sides[A].account.set_requires_pq(false);
        s.sides[A].start = s.sides[A].account.to_bytes().to_vec();
        let b = s.sides[A].account.prekey_bundle(None).unwrap().to_bytes();
        let classical_a =
            PreKeyBundle::try_from([&[0x13u8][..], &b[1..133], &b[kem_end..]].concat().as_slice()).unwrap();
        s.initiate_with(B, &classical_a).unwrap();
        let s1 = s.sides[B].record.current_id().unwrap();
        let p1 = s.send(B, b"S1, classical");
        s.ok(A, &p1, b"S1, classical");
        let n1 = s.send(A, b"an answer on S1");
        let pq = s.bundle(B, false);
        s.initiate_with(A, &pq).unwrap();
        let p2 = s.send(A, b"S2, post-quantum");
        s.ok(B, &p2, b"S2, post-quantum");
        s.ok(B, &n1, b"an answer on S1");
        if s.sides[B].record.current_id() != Some(s1) {
            continue;
        }
        assert!(!s.sides[B].record.current().unwrap().is_post_quantum());
        assert!(s.sides[B].record.archived().any(Session::is_post_quantum));
        assert_eq!(s.initiate_with(B, &classical_a), Err(KeyAgreementError::Downgrade));
        tests.push(s.finish(f, "a record whose current session is classical but which holds an archived PQXDH session refuses a classical bundle (downgrade)", &["Downgrade", "Archive"]));
        done = true;
        break;
    }
    assert!(done, "no seed gave the smaller id to S1");
    f.group(
        "records",
        "Session records with post-quantum accounts (SPEC.md §4.7, §4.8): as conversations.json's records",
        tests,
    );
}

pub(super) fn conversations_file() {
    let mut f = VectorFile::new("conversations");
    publication(&mut f);
    devices(&mut f);
    envelopes(&mut f);
    records(&mut f);
    groups(&mut f);
    saved_states(&mut f);
    f.write();
}
