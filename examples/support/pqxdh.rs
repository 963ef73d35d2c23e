//! `pqxdh.json`: ML-KEM-1024 known answers, PQXDH with every intermediate
//! (SPEC.md §4.8), the version-2 encodings (§6.8), uploads (§3.6),
//! transcripts that continue into the ratchet, and the version-2 saved
//! states (§11.2, §11.5).

use super::*;

const KEM_LEN: usize = KEM_PUBLIC_KEY_LEN;

fn res(e: Expect) -> Value {
    match e {
        Ok(()) => json!({ "result": "valid" }),
        Err(c) => json!({ "result": "invalid", "error": c.name() }),
    }
}

fn with(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

/// An encapsulation key with one 12-bit coefficient set to q = 3329: it
/// fails FIPS 203's modulus check, and only it.
fn unacceptable_ek(ek: &[u8]) -> Vec<u8> {
    let mut b = ek.to_vec();
    // Coefficient 0 is the low 12 bits of bytes 0..2 (little-endian).
    b[0] = (3329 & 0xff) as u8;
    b[1] = (b[1] & 0xf0) | ((3329 >> 8) as u8);
    b
}

/// Bob: an account made from `rng` (identity seed, signed prekey, the
/// last-resort KEM prekey), then one-time prekeys of both kinds; and the
/// listing of every private value, in the order drawn.
struct Bob {
    account: Account,
    listing: Value,
}

impl Bob {
    fn new(rng: &mut Recorder, one_time: usize, one_time_kem: usize) -> Self {
        let mut account = Account::new(rng);
        let d = rng.take();
        let (seed, spk, lr) = (d[0].clone(), d[1].clone(), d[2].clone());
        let opk_ids = account.generate_one_time_prekeys(rng, one_time);
        let opks: Vec<Value> =
            opk_ids.iter().zip(rng.take()).map(|(id, p)| json!({ "id": id.0, "private": p })).collect();
        let kem_ids = account.generate_kem_prekeys(rng, one_time_kem);
        let mut kems = vec![json!({ "id": 2, "kind": "lastResort", "seed": lr })];
        kems.extend(kem_ids.iter().zip(rng.take()).map(|(id, s)| json!({ "id": id.0, "kind": "oneTime", "seed": s })));
        let listing = json!({
            "identitySeed": seed,
            "identityKey": h(&account.identity_key().to_bytes()),
            "signedPreKey": { "id": 1, "private": spk },
            "oneTimePreKeys": opks,
            "kemPreKeys": kems,
        });
        Self { account, listing }
    }
}

// ------------------------------------------------------------ ML-KEM

fn mlkem(f: &mut VectorFile) {
    let mut tests = Vec::new();
    let mut rng = Recorder::new(200);
    for i in 0..3 {
        let seed = rng.bytes::<64>();
        let m = rng.bytes::<32>();
        let reject = rng.bytes::<KEM_LEN>();
        let ek = hazmat::kem_public_key(&seed);
        let ek_arr: [u8; KEM_LEN] = ek.as_slice().try_into().unwrap();
        let (ct, ss) = hazmat::kem_encapsulate(&ek_arr, &m);
        let ct_arr: [u8; KEM_LEN] = ct.as_slice().try_into().unwrap();
        assert_eq!(hazmat::kem_decapsulate(&seed, &ct_arr), ss);
        let rejected = hazmat::kem_decapsulate(&seed, &reject);
        rng.take();
        tests.push(f.test(
            &format!("KEYGEN(d, z), ENCAPS(ek, m), DECAPS of the ciphertext and of random bytes (implicit rejection), case {i}"),
            &["MlKem"],
            None,
            json!({
                "seed": h(&seed), "encapsulationKey": h(&ek), "m": h(&m), "ciphertext": h(&ct),
                "sharedSecret": h(&ss), "otherCiphertext": h(&reject), "otherSharedSecret": h(&rejected),
            }),
        ));
    }
    let seed = rng.bytes::<64>();
    rng.take();
    let ek = hazmat::kem_public_key(&seed);
    let bad = unacceptable_ek(&ek);
    assert!(!hazmat::kem_key_acceptable(&bad.as_slice().try_into().unwrap()));
    tests.push(f.test(
        "an encapsulation key whose first coefficient is q = 3329 fails the modulus check",
        &["MlKem", "ModulusCheck"],
        Some(ErrorCategory::InvalidKey),
        json!({ "encapsulationKey": h(&bad) }),
    ));
    f.group("mlkem", "ML-KEM-1024 (FIPS 203) as PQXDH uses it (SPEC.md §4.8)", tests);
}

// ------------------------------------------------------------ handshakes

fn handshakes(f: &mut VectorFile) {
    let mut tests = Vec::new();
    for (seed, opk, one_time_kem, binding, comment) in [
        (210u8, true, true, &b""[..], "one-time X25519 and one-time KEM prekey (DH1..DH4, SS)"),
        (211, false, false, &b""[..], "no one-time prekey, the last-resort KEM prekey (DH1..DH3, SS)"),
        (
            212,
            true,
            false,
            &b"\x05alice\x00\x00\x00\x01\x03bob\x00\x00\x00\x02"[..],
            "a binding, one-time X25519 prekey, last-resort KEM prekey",
        ),
    ] {
        let mut rng = Recorder::new(seed);
        let bob = Bob::new(&mut rng, usize::from(opk), usize::from(one_time_kem));
        let alice_seed = rng.bytes::<32>();
        rng.take();
        let alice = IdentityKeyPair::from_seed(&alice_seed);
        let opk_id = bob.account.one_time_prekey_ids().first().copied();
        let kem_id = if one_time_kem { bob.account.kem_prekey_ids()[0] } else { PreKeyId(2) };
        let bundle = bob.account.prekey_bundle_with_kem(opk_id, Some(kem_id)).unwrap();
        let (ek, tr) = hazmat::x3dh_initiate(&mut rng, &alice, &bundle, binding).unwrap();
        let randomness = rng.take();
        let kem = bundle.kem_prekey().unwrap();
        tests.push(f.test(
            comment,
            &["Pqxdh"],
            None,
            json!({
                "alice": { "identitySeed": h(&alice_seed), "identityKey": h(&alice.public_key().to_bytes()) },
                "bob": bob.listing,
                "binding": h(binding),
                "bundle": h(&bundle.to_bytes()),
                "kemPreKeyId": kem.id().0,
                "kemPublicKey": h(kem.public_key()),
                "kemSignature": h(&kem.signature()),
                "randomness": randomness,
                "ephemeralPublic": h(&ek),
                "dh": tr.dh.iter().map(|d| h(d)).collect::<Vec<_>>(),
                "kemCiphertext": h(tr.kem_ciphertext.as_ref().unwrap()),
                "kemSharedSecret": h(&tr.kem_shared_secret.unwrap()),
                "sk": h(&tr.sk),
                "ad": h(&tr.ad),
                "adHash": h(&tr.ad_hash),
            }),
        ));
    }
    f.group("pqxdh_valid", "Initiator and responder agree; every intermediate (SPEC.md §4.8)", tests);

    // Bundles an initiator must refuse before drawing anything.
    let mut tests = Vec::new();
    let mut rng = Recorder::new(215);
    let bob = Bob::new(&mut rng, 1, 0);
    let alice_seed = rng.bytes::<32>();
    rng.take();
    let ik = IdentityKeyPair::from_seed(
        &bob.listing["identitySeed"]
            .as_str()
            .map(|s| {
                let v = hex::decode(s).unwrap();
                <[u8; 32]>::try_from(v.as_slice()).unwrap()
            })
            .unwrap(),
    );
    let good = bob.account.prekey_bundle(Some(PreKeyId(3))).unwrap();
    let kem = good.kem_prekey().unwrap().clone();
    let spk = bob.account.public_signed_prekey().unwrap();
    let opk = PublicOneTimePreKey::clone(&bob.account.prekeys_to_publish().one_time_prekeys()[0]);
    let assemble = |kem: PublicKemPreKey, spk_sig: Option<[u8; 64]>| -> Vec<u8> {
        let mut b = PreKeyBundle::assemble(good.identity_key(), &spk, Some(&opk)).with_kem_prekey(kem).to_bytes();
        if let Some(sig) = spk_sig {
            b[69..133].copy_from_slice(&sig);
        }
        b
    };
    let mut bad_kem_sig = kem.signature();
    bad_kem_sig[10] ^= 1;
    let as_x25519 = hazmat::sign_prekey_with_context(&ik, labels::SIGNED_PREKEY_CONTEXT, kem.id().0, kem.public_key());
    let spk_as_kem = hazmat::sign_prekey_with_context(&ik, labels::KEM_PREKEY_CONTEXT, spk.id().0, &spk.public_key());
    let mut bad_spk_sig = spk.signature();
    bad_spk_sig[3] ^= 0x40;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "the KEM prekey's signature has a flipped bit",
            assemble(hazmat::public_kem_prekey(kem.id().0, kem.public_key(), &bad_kem_sig), None),
        ),
        (
            "the KEM prekey signed like an X25519 prekey (SIGNED_PREKEY_CONTEXT)",
            assemble(hazmat::public_kem_prekey(kem.id().0, kem.public_key(), &as_x25519), None),
        ),
        (
            "the signed X25519 prekey signed like a KEM prekey (KEM_PREKEY_CONTEXT)",
            assemble(kem.clone(), Some(spk_as_kem)),
        ),
        (
            "the signed X25519 prekey's signature has a flipped bit (checked before the KEM prekey's)",
            assemble(kem.clone(), Some(bad_spk_sig)),
        ),
        (
            "the KEM prekey's signature is valid for another id",
            assemble(hazmat::public_kem_prekey(kem.id().0 + 1, kem.public_key(), &kem.signature()), None),
        ),
    ];
    let alice = IdentityKeyPair::from_seed(&alice_seed);
    for (comment, bytes) in cases {
        let bundle = PreKeyBundle::try_from(bytes.as_slice()).unwrap();
        let err = Session::initiate(&mut rng, &alice, &bundle, b"").unwrap_err();
        assert!(rng.take().is_empty(), "{comment}: nothing drawn");
        tests.push(f.test(
            comment,
            &["BadSignature"],
            Some(err.category()),
            json!({ "aliceIdentitySeed": h(&alice_seed), "bundle": h(&bytes), "binding": "", "randomness": [] }),
        ));
    }
    // A low-order signed prekey (validly signed): DH1 is all zero, after
    // EK_A was drawn and before m.
    let low = [0u8; 32];
    let sig = hazmat::sign_prekey_with_context(&ik, labels::SIGNED_PREKEY_CONTEXT, 1, &low);
    let mut bytes = assemble(kem.clone(), Some(sig));
    bytes[37..69].copy_from_slice(&low);
    let bundle = PreKeyBundle::try_from(bytes.as_slice()).unwrap();
    let err = Session::initiate(&mut rng, &alice, &bundle, b"").unwrap_err();
    tests.push(f.test(
        "a low-order signed prekey: non-contributory after EK_A is drawn, before m",
        &["NonContributory"],
        Some(err.category()),
        json!({ "aliceIdentitySeed": h(&alice_seed), "bundle": h(&bytes), "binding": "", "randomness": rng.take() }),
    ));
    f.group("pqxdh_invalid_bundle", "Version-2 bundles an initiator must refuse (SPEC.md §4.8)", tests);
}

// ------------------------------------------------------------ encodings

fn encodings(f: &mut VectorFile) {
    let mut rng = Recorder::new(220);
    let mut bob = Bob::new(&mut rng, 1, 1);
    let alice = Account::new(&mut rng);
    rng.take();
    let bundle = bob.account.prekey_bundle_with_kem(Some(PreKeyId(3)), Some(PreKeyId(4))).unwrap();
    let bundle_last_resort = bob.account.prekey_bundle(None).unwrap();
    let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    let Message::PreKey(pre) = a.encrypt(&mut rng, b"first").unwrap() else { unreachable!() };
    let mut b = Session::respond(&mut bob.account, &pre, b"").unwrap().session;
    let normal = b.encrypt(&mut rng, b"reply").unwrap().to_bytes();
    rng.take();
    let pre_bytes = pre.to_bytes();
    let mut valid = Vec::new();
    for (comment, bundle) in [
        ("with a one-time prekey and a one-time KEM prekey", &bundle),
        ("without one-time prekeys (last-resort KEM prekey)", &bundle_last_resort),
    ] {
        let kem = bundle.kem_prekey().unwrap();
        let fields = json!({
            "identityKey": h(&bundle.identity_key().to_bytes()),
            "signedPreKeyId": bundle.signed_prekey_id().0,
            "signedPreKey": h(&bytes_of(bundle, 37, 69)),
            "signature": h(&bytes_of(bundle, 69, 133)),
            "kemPreKeyId": kem.id().0,
            "kemPreKey": h(kem.public_key()),
            "kemSignature": h(&kem.signature()),
            "oneTimePreKeyId": bundle.one_time_prekey_id().map(|i| i.0),
            "oneTimePreKey": bundle.one_time_prekey_id().map(|_| h(&bundle.to_bytes()[bundle.to_bytes().len() - 32..])),
        });
        valid.push(f.test(
            &format!("prekey bundle 0x23 {comment}"),
            &[],
            None,
            json!({ "type": "prekey_bundle", "encoded": h(&bundle.to_bytes()), "fields": fields }),
        ));
    }
    valid.push(f.test(
        "prekey message 0x22 with a one-time prekey",
        &[],
        None,
        json!({
            "type": "prekey_message", "encoded": h(&pre_bytes),
            "fields": {
                "identityKey": h(&pre.identity_key().to_bytes()), "baseKey": h(&pre.base_key()),
                "signedPreKeyId": pre.signed_prekey_id().0, "oneTimePreKeyId": pre.one_time_prekey_id().map(|i| i.0),
                "kemPreKeyId": pre.kem_prekey_id().unwrap().0, "kemCiphertext": h(pre.kem_ciphertext().unwrap()),
                "message": h(&pre.message().to_bytes()),
            },
        }),
    ));
    let nm = NormalMessage::try_from(normal.as_slice()).unwrap();
    valid.push(f.test("message 0x21 of a version-2 session", &[], None, json!({
        "type": "message", "encoded": h(&normal),
        "fields": { "ratchetKey": h(&nm.ratchet_key()), "previousCounter": nm.previous_counter(), "counter": nm.counter(), "ciphertext": h(&normal[41..]) },
    })));
    f.group("decode_valid", "Version-2 encodings and their fields (SPEC.md §6.8)", valid);

    let b23 = bundle.to_bytes();
    let mut bad: Vec<(&str, String, Vec<u8>, ErrorCategory)> = Vec::new();
    let mut short_len = b23.clone();
    short_len[137..139].copy_from_slice(&1567u16.to_be_bytes());
    bad.push(("prekey_bundle", "ek length field 1567".into(), short_len, ErrorCategory::Decode));
    let mut zero_len = b23.clone();
    zero_len[137..139].copy_from_slice(&0u16.to_be_bytes());
    bad.push(("prekey_bundle", "ek length field 0".into(), zero_len, ErrorCategory::Decode));
    let mut unacc = b23.clone();
    let ek = unacceptable_ek(&b23[139..139 + KEM_LEN]);
    unacc[139..139 + KEM_LEN].copy_from_slice(&ek);
    bad.push((
        "prekey_bundle",
        "ek fails the modulus check (its signature is not looked at)".into(),
        unacc.clone(),
        ErrorCategory::InvalidKey,
    ));
    bad.push((
        "prekey_bundle",
        "ek fails the modulus check and the bundle is truncated after it: the key is reported".into(),
        unacc[..139 + KEM_LEN + 10].to_vec(),
        ErrorCategory::InvalidKey,
    ));
    bad.push(("prekey_bundle", "truncated in the ek".into(), b23[..500].to_vec(), ErrorCategory::Decode));
    bad.push(("prekey_bundle", "trailing byte".into(), [&b23[..], &[0]].concat(), ErrorCategory::Decode));
    bad.push((
        "prekey_bundle",
        "a version-1 bundle's layout with first byte 0x23".into(),
        flip(&bundle.clone_v1(), 0, 0x30),
        ErrorCategory::Decode,
    ));
    let mut ct_len = pre_bytes.clone();
    ct_len[78..80].copy_from_slice(&1567u16.to_be_bytes());
    bad.push(("prekey_message", "ct length field 1567".into(), ct_len, ErrorCategory::Decode));
    let mut ct_len = pre_bytes.clone();
    ct_len[78..80].copy_from_slice(&1569u16.to_be_bytes());
    bad.push(("prekey_message", "ct length field 1569".into(), ct_len, ErrorCategory::Decode));
    bad.push(("prekey_message", "truncated in the ct".into(), pre_bytes[..1000].to_vec(), ErrorCategory::Decode));
    let emb = 80 + KEM_LEN;
    bad.push((
        "prekey_message",
        "embedded message with first byte 0x11 (version 1 in a version-2 prekey message)".into(),
        flip(&pre_bytes, emb, 0x30),
        ErrorCategory::Decode,
    ));
    bad.push((
        "prekey_message",
        "embedded message with version nibble 3".into(),
        flip(&pre_bytes, emb, 0x10),
        ErrorCategory::UnknownVersion,
    ));
    bad.push((
        "prekey_message",
        "embedded message of type prekey message".into(),
        flip(&pre_bytes, emb, 0x03),
        ErrorCategory::Decode,
    ));
    // A version-1 prekey message carrying a version-2 message.
    let v1 = {
        let mut rng = Recorder::new(221);
        let mut c = Account::new_classical(&mut rng);
        let a1 = Account::new_classical(&mut rng);
        let bundle = c.prekey_bundle(None).unwrap();
        let mut s = Session::initiate(&mut rng, a1.identity_key_pair(), &bundle, b"").unwrap();
        let m = s.encrypt(&mut rng, b"v1").unwrap().to_bytes();
        let _ = &mut c;
        m
    };
    bad.push((
        "prekey_message",
        "a version-1 prekey message whose embedded message has first byte 0x21".into(),
        flip(&v1, 70, 0x30),
        ErrorCategory::Decode,
    ));
    bad.push((
        "message",
        "first byte 0x2f: version 2, no such type".into(),
        flip(&normal, 0, 0x0e),
        ErrorCategory::Decode,
    ));
    let mut invalid = Vec::new();
    for (ty, comment, b, want) in bad {
        let got = match ty {
            "prekey_bundle" => PreKeyBundle::try_from(b.as_slice()).map(|_| ()).expect_err(&comment).category(),
            "prekey_message" => PreKeyMessage::try_from(b.as_slice()).map(|_| ()).expect_err(&comment).category(),
            _ => Message::try_from(b.as_slice()).map(|_| ()).expect_err(&comment).category(),
        };
        assert_eq!(got, want, "{comment}");
        invalid.push(f.test(&format!("{ty}: {comment}"), &[], Some(got), json!({ "type": ty, "encoded": h(&b) })));
    }
    f.group("decode_invalid", "Malformed version-2 encodings (SPEC.md §6.8)", invalid);
}

fn bytes_of(bundle: &PreKeyBundle, from: usize, to: usize) -> Vec<u8> {
    bundle.to_bytes()[from..to].to_vec()
}

trait V1 {
    fn clone_v1(&self) -> Vec<u8>;
}

impl V1 for PreKeyBundle {
    /// The same keys as a version-1 bundle (its KEM prekey dropped).
    fn clone_v1(&self) -> Vec<u8> {
        let b = self.to_bytes();
        let kem_end = 133 + 4 + 2 + KEM_LEN + 64;
        [&[0x13u8][..], &b[1..133], &b[kem_end..]].concat()
    }
}

// ------------------------------------------------------------ uploads

fn uploads(f: &mut VectorFile) {
    let mut tests = Vec::new();
    let mut rng = Recorder::new(230);
    let bob = Bob::new(&mut rng, 2, 2);
    rng.take();
    let up = bob.account.prekeys_to_publish();
    let bytes = up.to_bytes();
    tests.push(f.test(
        "a new post-quantum account's first upload: signed prekey, two one-time prekeys, the last-resort KEM prekey, two one-time KEM prekeys",
        &["Upload"],
        None,
        json!({ "account": bob.listing, "upload": h(&bytes), "verify": "valid" }),
    ));
    // Entry offsets: 1 + 32 + 2, then 101 (kind 1), 37, 37 (kind 2), then
    // KEM entries of 1 + 4 + 2 + 1568 + 64 = 1639 bytes.
    let e0 = 35;
    let k3 = e0 + 101 + 37 + 37;
    let k4a = k3 + 1639;
    let k4b = k4a + 1639;
    let entry = |at: usize, len: usize| bytes[at..at + len].to_vec();
    let header = |n: u16| [&bytes[..33], &n.to_be_bytes()[..]].concat();
    let mut bad: Vec<(String, Vec<u8>, ErrorCategory)> = Vec::new();
    bad.push((
        "kinds out of order: a one-time KEM prekey before the last-resort one".into(),
        [header(2), entry(k4a, 1639), entry(k3, 1639)].concat(),
        ErrorCategory::Decode,
    ));
    bad.push((
        "two last-resort KEM prekeys".into(),
        [header(2), entry(k3, 1639), {
            let mut e = entry(k4a, 1639);
            e[0] = 3;
            e
        }]
        .concat(),
        ErrorCategory::Decode,
    ));
    bad.push((
        "one-time KEM prekey ids not increasing".into(),
        [header(2), entry(k4b, 1639), entry(k4a, 1639)].concat(),
        ErrorCategory::Decode,
    ));
    bad.push((
        "a one-time KEM prekey with the id of a one-time X25519 prekey".into(),
        [header(2), entry(e0 + 101, 37), {
            let mut e = entry(k4a, 1639);
            e[1..5].copy_from_slice(&bytes[e0 + 102..e0 + 106]);
            e
        }]
        .concat(),
        ErrorCategory::Decode,
    ));
    bad.push((
        "kind 0x05".into(),
        [header(1), {
            let mut e = entry(k4a, 1639);
            e[0] = 5;
            e
        }]
        .concat(),
        ErrorCategory::Decode,
    ));
    bad.push((
        "a KEM entry in a version-1 upload (0x1B)".into(),
        [flip(&header(1), 0, 0x30), entry(k3, 1639)].concat(),
        ErrorCategory::Decode,
    ));
    bad.push((
        "a KEM entry's ek fails the modulus check".into(),
        [header(1), {
            let mut e = entry(k3, 1639);
            let ek = unacceptable_ek(&e[7..7 + KEM_LEN]);
            e[7..7 + KEM_LEN].copy_from_slice(&ek);
            e
        }]
        .concat(),
        ErrorCategory::InvalidKey,
    ));
    bad.push((
        "a KEM entry's ek length field 1567".into(),
        [header(1), {
            let mut e = entry(k3, 1639);
            e[5..7].copy_from_slice(&1567u16.to_be_bytes());
            e
        }]
        .concat(),
        ErrorCategory::Decode,
    ));
    bad.push(("a count of 1103 entries".into(), header(1103), ErrorCategory::Decode));
    let bad_ek_entry = |kind: u8| {
        let mut e = entry(k3, 1639);
        e[0] = kind;
        let ek = unacceptable_ek(&e[7..7 + KEM_LEN]);
        e[7..7 + KEM_LEN].copy_from_slice(&ek);
        e
    };
    bad.push((
        "a count of 1103 entries, the first a KEM entry whose ek fails the modulus check: the count is read first"
            .into(),
        [header(1103), bad_ek_entry(3)].concat(),
        ErrorCategory::Decode,
    ));
    bad.push((
        "two signed X25519 prekeys".into(),
        [header(2), entry(e0, 101), {
            let mut e = entry(e0, 101);
            e[4] ^= 0x10;
            e
        }]
        .concat(),
        ErrorCategory::Decode,
    ));
    bad.push((
        "one-time X25519 prekey ids decreasing".into(),
        [header(2), entry(e0 + 101 + 37, 37), entry(e0 + 101, 37)].concat(),
        ErrorCategory::Decode,
    ));
    bad.push(("a kind below the previous entry's, then a KEM entry whose ek fails the modulus check: the kind order is checked as it is read".into(),
        [header(3), entry(k4a, 1639), entry(k3, 1639), bad_ek_entry(4)].concat(), ErrorCategory::Decode));
    bad.push((
        "the id rules are checked after the whole upload: ids not increasing, then an ek that fails the modulus check"
            .into(),
        [header(3), entry(k4b, 1639), entry(k4a, 1639), bad_ek_entry(4)].concat(),
        ErrorCategory::InvalidKey,
    ));
    bad.push((
        "a second last-resort KEM entry whose own ek fails the modulus check: the kind rule comes before the entry's fields".into(),
        [header(2), entry(k3, 1639), bad_ek_entry(3)].concat(),
        ErrorCategory::Decode,
    ));
    for (comment, b, want) in bad {
        let got = PreKeyUpload::try_from(b.as_slice()).map(|_| ()).unwrap_err().category();
        assert_eq!(got, want, "{comment}");
        tests.push(f.test(&comment, &["Upload"], Some(got), json!({ "upload": h(&b) })));
    }
    // 1001 one-time X25519 prekeys (count 1001 is within the version-2
    // bound, the per-kind bound is not); and an upload at every bound:
    // 1102 entries, which decodes.
    let opk_entry = |id: u32| {
        let mut e = entry(e0 + 101, 37);
        e[1..5].copy_from_slice(&id.to_be_bytes());
        e
    };
    let kem_entry = |kind: u8, id: u32| {
        let mut e = entry(k4a, 1639);
        e[0] = kind;
        e[1..5].copy_from_slice(&id.to_be_bytes());
        e
    };
    let mut too_many = header(1001);
    for i in 0..1001u32 {
        too_many.extend(opk_entry(10 + i));
    }
    let got = PreKeyUpload::try_from(too_many.as_slice()).map(|_| ()).unwrap_err().category();
    tests.push(f.test(
        "1001 one-time X25519 prekeys: past MAX_ONE_TIME_PREKEYS",
        &["Upload", "Bound"],
        Some(got),
        json!({ "upload": h(&too_many) }),
    ));
    let mut full = header(1102);
    full.extend(entry(e0, 101));
    for i in 0..1000u32 {
        full.extend(opk_entry(10 + i));
    }
    full.extend(kem_entry(3, 2));
    for i in 0..100u32 {
        full.extend(kem_entry(4, 2000 + i));
    }
    let decoded = PreKeyUpload::try_from(full.as_slice()).unwrap();
    assert_eq!(decoded.to_bytes(), full);
    tests.push(f.test("1102 entries: one signed prekey, 1000 one-time prekeys, a last-resort and 100 one-time KEM prekeys decode (every bound reached; the signatures are not checked by decoding)", &["Upload", "Bound"], None, json!({ "upload": h(&full) })));
    // 101 one-time KEM prekeys: one past MAX_ONE_TIME_KEM_PREKEYS. The same
    // entry with rising ids (signatures are not checked by decoding).
    let mut many = header(101);
    for i in 0..101u32 {
        let mut e = entry(k4a, 1639);
        e[1..5].copy_from_slice(&(1000 + i).to_be_bytes());
        many.extend(e);
    }
    let got = PreKeyUpload::try_from(many.as_slice()).map(|_| ()).unwrap_err().category();
    tests.push(f.test(
        "101 one-time KEM prekeys: past MAX_ONE_TIME_KEM_PREKEYS",
        &["Upload", "Bound"],
        Some(got),
        json!({ "upload": h(&many) }),
    ));
    // Decodes, but a server's verification fails.
    let mut bad_sig = bytes.clone();
    bad_sig[k4b + 1639 - 1] ^= 1;
    let decoded = PreKeyUpload::try_from(bad_sig.as_slice()).unwrap();
    let got = decoded.verify().unwrap_err().category();
    tests.push(f.test(
        "a one-time KEM prekey's signature has a flipped bit: decodes, verify fails",
        &["Upload", "BadSignature"],
        Some(got),
        json!({ "upload": h(&bad_sig), "verify": "bad-signature" }),
    ));
    let mut bad_lr = bytes.clone();
    bad_lr[k3 + 1639 - 1] ^= 1;
    let got = PreKeyUpload::try_from(bad_lr.as_slice()).unwrap().verify().unwrap_err().category();
    tests.push(f.test(
        "the last-resort KEM prekey's signature has a flipped bit: decodes, verify fails",
        &["Upload", "BadSignature"],
        Some(got),
        json!({ "upload": h(&bad_lr), "verify": "bad-signature" }),
    ));
    f.group("upload", "Version-2 uploads (0x2B) as a server decodes and verifies them (SPEC.md §3.6)", tests);
}

// ------------------------------------------------------------ transcripts

struct PqTranscript {
    rng: Recorder,
    bob: Bob,
    alice: IdentityKeyPair,
    alice_seed: [u8; 32],
    a: Option<Session>,
    b: Option<Session>,
    events: Vec<Value>,
    first_error: Option<ErrorCategory>,
}

impl PqTranscript {
    fn new(seed: u8, one_time: usize, one_time_kem: usize) -> Self {
        let mut rng = Recorder::new(seed);
        let bob = Bob::new(&mut rng, one_time, one_time_kem);
        let alice_seed = rng.bytes::<32>();
        rng.take();
        Self {
            rng,
            bob,
            alice: IdentityKeyPair::from_seed(&alice_seed),
            alice_seed,
            a: None,
            b: None,
            events: Vec::new(),
            first_error: None,
        }
    }

    fn note(&mut self, e: Expect) {
        if let Err(c) = e {
            self.first_error.get_or_insert(c);
        }
    }

    fn initiate(&mut self, bundle: &PreKeyBundle, binding: &[u8]) {
        // The intermediates, from the same draws through the hazmat steps.
        let s = Session::initiate(&mut self.rng, &self.alice, bundle, binding).unwrap();
        let draws = self.rng.take();
        let raw: Vec<u8> = draws
            .iter()
            .take(if bundle.kem_prekey().is_some() { 2 } else { 1 })
            .flat_map(|d| hex::decode(d).unwrap())
            .collect();
        let mut fixed = rand_core::UnwrapErr(Fixed(raw));
        let (_, tr) = hazmat::x3dh_initiate(&mut fixed, &self.alice, bundle, binding).unwrap();
        let mut ev = json!({
            "event": "initiate", "party": "alice", "bundle": h(&bundle.to_bytes()), "binding": h(binding),
            "randomness": draws, "dh": tr.dh.iter().map(|d| h(d)).collect::<Vec<_>>(),
            "sk": h(&tr.sk), "adHash": h(&tr.ad_hash),
        });
        if let (Some(ct), Some(ss)) = (&tr.kem_ciphertext, &tr.kem_shared_secret) {
            ev["kemCiphertext"] = json!(h(ct));
            ev["kemSharedSecret"] = json!(h(ss));
        }
        self.events.push(ev);
        self.a = Some(s);
    }

    fn encrypt(&mut self, party: &str, plaintext: &[u8]) -> Vec<u8> {
        let s = if party == "alice" { self.a.as_mut() } else { self.b.as_mut() }.unwrap();
        let m = s.encrypt(&mut self.rng, plaintext).unwrap().to_bytes();
        let r = self.rng.take();
        self.events.push(
            json!({ "event": "encrypt", "party": party, "plaintext": h(plaintext), "randomness": r, "message": h(&m) }),
        );
        m
    }

    /// Bob runs the responder (SPEC.md §4.8); the event lists his saved
    /// account afterwards (what was consumed, or that nothing changed).
    fn respond(&mut self, m: &[u8], binding: &[u8], want: Expect) {
        let before = self.bob.account.to_bytes().to_vec();
        let got = PreKeyMessage::try_from(m)
            .map_err(|e| e.category())
            .and_then(|pm| Session::respond(&mut self.bob.account, &pm, binding).map_err(|e| e.category()));
        let mut ev = json!({ "event": "respond", "party": "bob", "message": h(m), "binding": h(binding) });
        match got {
            Ok(inbound) => {
                assert_eq!(want, OK);
                ev = with(ev, json!({ "result": "valid", "plaintext": h(&inbound.plaintext) }));
                self.b = Some(inbound.session);
            }
            Err(c) => {
                assert_eq!(want, Err(c), "respond");
                assert_eq!(before, *self.bob.account.to_bytes(), "a refusal changes nothing");
                ev = with(ev, res(Err(c)));
            }
        }
        ev["account"] = json!(h(&self.bob.account.to_bytes()));
        self.note(want);
        self.events.push(ev);
    }

    fn decrypt(&mut self, party: &str, m: &[u8], want: Expect) {
        let s = if party == "alice" { self.a.as_mut() } else { self.b.as_mut() }.unwrap();
        let before = s.to_bytes().to_vec();
        let got = s.decrypt_bytes(m);
        let ev = json!({ "event": "decrypt", "party": party, "message": h(m) });
        let ev = match got {
            Ok(p) => {
                assert_eq!(want, OK, "decrypt");
                with(ev, json!({ "result": "valid", "plaintext": h(&p) }))
            }
            Err(e) => {
                assert_eq!(want, Err(e.category()), "decrypt");
                assert_eq!(before, *s.to_bytes());
                with(ev, res(Err(e.category())))
            }
        };
        self.note(want);
        self.events.push(ev);
    }

    fn save(&mut self, party: &str) {
        let s = if party == "alice" { self.a.as_ref() } else { self.b.as_ref() }.unwrap();
        let state = s.to_bytes().to_vec();
        // Restoring gives the same bytes.
        assert_eq!(*Session::from_bytes(&state).unwrap().to_bytes(), state);
        self.events.push(json!({ "event": "save", "party": party, "state": h(&state) }));
    }

    fn finish(self, f: &mut VectorFile, comment: &str, flags: &[&str]) -> Value {
        let fields = json!({
            "alice": { "identitySeed": h(&self.alice_seed), "identityKey": h(&self.alice.public_key().to_bytes()) },
            "bob": self.bob.listing.clone(),
            "bobAccount": null,
            "events": self.events,
        });
        f.test(comment, flags, self.first_error, fields)
    }
}

fn transcripts(f: &mut VectorFile) {
    let mut tests = Vec::new();

    // One-time prekeys of both kinds: consumed only by the first message
    // that authenticates; the session goes on into the ratchet.
    let mut t = PqTranscript::new(240, 1, 1);
    let start = t.bob.account.to_bytes().to_vec();
    let bundle = t.bob.account.prekey_bundle_with_kem(Some(PreKeyId(3)), Some(PreKeyId(4))).unwrap();
    t.initiate(&bundle, b"");
    t.save("alice");
    let m1 = t.encrypt("alice", b"first, post-quantum");
    let m2 = t.encrypt("alice", b"second, still a prekey message");
    let mut tampered_ct = m1.clone();
    tampered_ct[500] ^= 1;
    t.respond(&tampered_ct, b"", Err(ErrorCategory::Authentication));
    t.respond(&m1, b"", OK);
    t.save("bob");
    t.decrypt("bob", &m2, OK);
    // m2 with another ciphertext, to Bob's session: state-mismatch.
    let mut other_ct = m2.clone();
    other_ct[900] ^= 1;
    t.decrypt("bob", &other_ct, Err(ErrorCategory::StateMismatch));
    // ... and with another KEM prekey id.
    let mut other_id = m2.clone();
    other_id[77] ^= 0x01;
    t.decrypt("bob", &other_id, Err(ErrorCategory::StateMismatch));
    // Replayed to the responder (as if Bob had lost the session): the
    // one-time prekeys are gone.
    t.respond(&m1, b"", Err(ErrorCategory::UnknownPreKey));
    let r1 = t.encrypt("bob", b"reply 0x21");
    t.decrypt("alice", &r1, OK);
    t.save("alice");
    let a3 = t.encrypt("alice", b"a normal message now");
    t.decrypt("bob", &flip(&a3, 0, 0x30), Err(ErrorCategory::StateMismatch));
    t.decrypt("bob", &a3, OK);
    let r2 = t.encrypt("bob", b"and back");
    t.decrypt("alice", &r2, OK);
    t.save("bob");
    let mut test = t.finish(f, "one-time X25519 and KEM prekeys: a tampered ciphertext is refused and consumes nothing, the genuine message consumes both, a prekey message of the session with another ciphertext is state-mismatch, the ratchet goes on with 0x21 messages", &["OneTime", "Ratchet"]);
    test["bobAccount"] = json!(h(&start));
    tests.push(test);

    // The last-resort KEM prekey: each base key once.
    let mut t = PqTranscript::new(241, 0, 0);
    let start = t.bob.account.to_bytes().to_vec();
    let bundle = t.bob.account.prekey_bundle(None).unwrap();
    t.initiate(&bundle, b"");
    let m1 = t.encrypt("alice", b"under the last-resort KEM prekey");
    // A failing message under the last-resort KEM prekey records nothing.
    let mut tampered = m1.clone();
    tampered[300] ^= 1;
    t.respond(&tampered, b"", Err(ErrorCategory::Authentication));
    t.respond(&m1, b"", OK);
    t.respond(&m1, b"", Err(ErrorCategory::Duplicate));
    // Bob rotates (signed prekey id 3, last-resort KEM prekey id 4); the
    // old last-resort KEM prekey still refuses the base key, also when the
    // message names the new signed prekey.
    t.bob.account.rotate_signed_prekey(&mut t.rng).unwrap();
    let r = t.rng.take();
    t.events
        .push(json!({ "event": "rotate", "party": "bob", "randomness": r, "account": h(&t.bob.account.to_bytes()) }));
    t.respond(&m1, b"", Err(ErrorCategory::Duplicate));
    let mut other_spk = m1.clone();
    other_spk[65..69].copy_from_slice(&3u32.to_be_bytes());
    t.respond(&other_spk, b"", Err(ErrorCategory::Duplicate));
    // A second rotation: at most two of each kind are kept, so the first
    // last-resort KEM prekey (id 2) is gone; then retiring the predecessors.
    t.bob.account.rotate_signed_prekey(&mut t.rng).unwrap();
    let r = t.rng.take();
    t.events
        .push(json!({ "event": "rotate", "party": "bob", "randomness": r, "account": h(&t.bob.account.to_bytes()) }));
    t.respond(&other_spk, b"", Err(ErrorCategory::UnknownPreKey));
    t.bob.account.retire_previous_signed_prekey();
    t.events.push(json!({ "event": "retire", "party": "bob", "account": h(&t.bob.account.to_bytes()) }));
    let r = t.encrypt("bob", b"ok");
    t.decrypt("alice", &r, OK);
    let mut test = t.finish(f, "the last-resort KEM prekey records each base key it accepts: the replayed first message is duplicate (before and after a rotation, whatever signed prekey it names) and the account unchanged", &["LastResort", "Replay"]);
    test["bobAccount"] = json!(h(&start));
    tests.push(test);

    // Downgrade: a version-1 prekey message made from the same keys.
    let mut t = PqTranscript::new(242, 1, 0);
    let start = t.bob.account.to_bytes().to_vec();
    let pq = t.bob.account.prekey_bundle(Some(PreKeyId(3))).unwrap();
    let classical = PreKeyBundle::try_from(pq.clone_v1().as_slice()).unwrap();
    t.initiate(&classical, b"");
    let m1 = t.encrypt("alice", b"classical");
    t.respond(&m1, b"", Err(ErrorCategory::Downgrade));
    // Refused before any prekey lookup: a signed prekey Bob does not hold.
    let mut unheld = m1.clone();
    unheld[68] ^= 0x40;
    t.respond(&unheld, b"", Err(ErrorCategory::Downgrade));
    // ... and after the binding check (SPEC.md §4.1).
    t.respond(&m1, &[0x61; 1025], Err(ErrorCategory::Decode));
    let mut test = t.finish(
        f,
        "a version-1 prekey message to a responder that requires PQXDH: downgrade, nothing consumed",
        &["Downgrade"],
    );
    test["bobAccount"] = json!(h(&start));
    tests.push(test);

    let mut t = PqTranscript::new(243, 1, 0);
    t.bob.account.set_requires_pq(false);
    let start = t.bob.account.to_bytes().to_vec();
    let pq = t.bob.account.prekey_bundle(Some(PreKeyId(3))).unwrap();
    let classical = PreKeyBundle::try_from(pq.clone_v1().as_slice()).unwrap();
    t.initiate(&classical, b"");
    let m1 = t.encrypt("alice", b"classical, accepted");
    t.respond(&m1, b"", OK);
    let r = t.encrypt("bob", b"a version-1 session");
    t.decrypt("alice", &r, OK);
    t.save("bob");
    let mut test =
        t.finish(f, "the same with the requirement off (requires-PQ flag 0): a version-1 session", &["Downgrade"]);
    test["bobAccount"] = json!(h(&start));
    tests.push(test);

    // Unknown KEM prekey, binding mismatch.
    let mut t = PqTranscript::new(244, 0, 1);
    let start = t.bob.account.to_bytes().to_vec();
    let bundle = t.bob.account.prekey_bundle_with_kem(None, Some(PreKeyId(3))).unwrap();
    t.initiate(&bundle, b"ab");
    let m1 = t.encrypt("alice", b"x");
    let mut unknown = m1.clone();
    unknown[73] ^= 0x40;
    t.respond(&unknown, b"ab", Err(ErrorCategory::UnknownPreKey));
    // A low-order EK_A with an unknown KEM prekey: the lookup comes first.
    let mut low = unknown.clone();
    low[33..65].copy_from_slice(&[0u8; 32]);
    t.respond(&low, b"ab", Err(ErrorCategory::UnknownPreKey));
    // The same with the KEM prekey Bob holds: non-contributory.
    let mut low = m1.clone();
    low[33..65].copy_from_slice(&[0u8; 32]);
    t.respond(&low, b"ab", Err(ErrorCategory::NonContributory));
    t.respond(&m1, b"", Err(ErrorCategory::Authentication));
    t.respond(&m1, b"ab", OK);
    let mut test = t.finish(f, "a KEM prekey id Bob does not hold is unknown-prekey; another binding fails authentication; neither consumes the one-time KEM prekey", &["UnknownPreKey", "Binding"]);
    test["bobAccount"] = json!(h(&start));
    tests.push(test);

    // The used-up bound: Bob's last-resort KEM prekey has accepted 999 base
    // keys (sessions the generator ran before the transcript starts).
    let mut t = PqTranscript::new(245, 0, 0);
    let bundle = t.bob.account.prekey_bundle(None).unwrap();
    let mut warm = Recorder::new(246);
    for _ in 0..MAX_LAST_RESORT_USES - 1 {
        let mut a = Session::initiate(&mut warm, &t.alice, &bundle, b"").unwrap();
        let Message::PreKey(m) = a.encrypt(&mut warm, b"w").unwrap() else { unreachable!() };
        Session::respond(&mut t.bob.account, &m, b"").unwrap();
    }
    assert_eq!(t.bob.account.last_resort_uses(), MAX_LAST_RESORT_USES - 1);
    let start = t.bob.account.to_bytes().to_vec();
    t.initiate(&bundle, b"");
    let last = t.encrypt("alice", b"the 1000th");
    t.respond(&last, b"", OK);
    t.initiate(&bundle, b"");
    let over = t.encrypt("alice", b"the 1001st");
    t.respond(&over, b"", Err(ErrorCategory::UnknownPreKey));
    t.respond(&last, b"", Err(ErrorCategory::Duplicate));
    let used_up = t.bob.account.to_bytes().to_vec();
    let mut test = t.finish(f, "a last-resort KEM prekey that has accepted 999 base keys accepts one more (MAX_LAST_RESORT_USES = 1000), then refuses new ones with unknown-prekey; a replay is still duplicate (checked first)", &["LastResort", "Bound"]);
    test["bobAccount"] = json!(h(&start));
    tests.push(test);
    USED_UP.with(|u| *u.borrow_mut() = used_up);

    f.group("transcript", "PQXDH sessions from the first message into the ratchet (SPEC.md §4.8, §5.7, §6.8)", tests);
}

// ------------------------------------------------------------ saved states

fn saved(f: &mut VectorFile) {
    let mut tests = Vec::new();
    let mut rng = Recorder::new(250);
    let mut bob = Bob::new(&mut rng, 1, 2);
    let alice = Account::new(&mut rng);
    rng.take();
    // Use the last-resort KEM prekey twice so its used base keys show.
    for _ in 0..2 {
        let bundle = bob.account.prekey_bundle(None).unwrap();
        let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
        let Message::PreKey(m) = a.encrypt(&mut rng, b"x").unwrap() else { unreachable!() };
        Session::respond(&mut bob.account, &m, b"").unwrap();
    }
    rng.take();
    let acc = bob.account.to_bytes().to_vec();
    tests.push(f.test("a post-quantum account: two used base keys, one one-time prekey, two one-time KEM prekeys", &["Account"], None, json!({
        "kind": "account", "state": h(&acc),
        "events": [
            { "event": "bundle", "oneTimePreKeyId": 3, "kemPreKeyId": 4, "bundle": h(&bob.account.prekey_bundle_with_kem(Some(PreKeyId(3)), Some(PreKeyId(4))).unwrap().to_bytes()) },
            { "event": "bundle", "oneTimePreKeyId": null, "kemPreKeyId": 2, "bundle": h(&bob.account.prekey_bundle(None).unwrap().to_bytes()) },
            { "event": "bundle", "oneTimePreKeyId": null, "kemPreKeyId": 9, "result": "invalid", "error": "unknown-prekey" },
        ],
    })));
    // Offsets: 0x2A rev seed(32) next(4) mark(4) flag | u8 1 {id key} | u16 1 {id key}
    //   | u8 1 {id seed(64) u16 2 {32 32}} | u8 2 {id seed} {id seed}
    let flag = 2 + 32 + 8;
    let spk = flag + 1;
    let opk = spk + 1 + 36;
    let lr = opk + 2 + 36;
    let uses = lr + 1 + 4 + 64;
    let otk = uses + 2 + 64;
    let mut bad: Vec<(String, Vec<u8>, ErrorCategory)> = Vec::new();
    bad.push((
        "format revision 0x02 in revision 2's layout (no published-below field)".into(),
        {
            let mut b = acc.clone();
            b[1] = 2;
            b.drain(38..42);
            b
        },
        ErrorCategory::Decode,
    ));
    bad.push((
        "three well-formed last-resort KEM prekeys".into(),
        {
            // Two more copies of the entry with fresh ids and no used keys.
            let mut b = acc[..lr].to_vec();
            b.push(3);
            b.extend_from_slice(&acc[lr + 1..otk]);
            for id in [7u32, 8] {
                b.extend_from_slice(&id.to_be_bytes());
                b.extend_from_slice(&acc[lr + 5..lr + 69]);
                b.extend_from_slice(&[0, 0]);
            }
            b.extend_from_slice(&acc[otk..]);
            b[34..38].copy_from_slice(&9u32.to_be_bytes());
            b
        },
        ErrorCategory::Decode,
    ));
    bad.push((
        "format revision 0x02 (there is no revision-2 0x2A)".into(),
        {
            let mut b = acc.clone();
            b[1] = 2;
            b
        },
        ErrorCategory::Decode,
    ));
    bad.push((
        "requires-PQ flag 2".into(),
        {
            let mut b = acc.clone();
            b[flag] = 2;
            b
        },
        ErrorCategory::Decode,
    ));
    bad.push((
        "no last-resort KEM prekey".into(),
        [&acc[..lr], &[0u8][..], &acc[otk..]].concat(),
        ErrorCategory::Decode,
    ));
    bad.push((
        "three last-resort KEM prekeys (count byte 3)".into(),
        {
            let mut b = acc.clone();
            b[lr] = 3;
            b
        },
        ErrorCategory::Decode,
    ));
    bad.push((
        "a used base key listed twice".into(),
        {
            let mut b = acc.clone();
            let k = b[uses + 2..uses + 34].to_vec();
            b[uses + 34..uses + 66].copy_from_slice(&k);
            b
        },
        ErrorCategory::Decode,
    ));
    bad.push((
        "the last-resort KEM prekey has the signed prekey's id".into(),
        {
            let mut b = acc.clone();
            b[lr + 1..lr + 5].copy_from_slice(&1u32.to_be_bytes());
            b
        },
        ErrorCategory::Decode,
    ));
    bad.push((
        "one-time KEM prekey ids not increasing".into(),
        {
            let mut b = acc.clone();
            let (x, y) = (b[otk + 1..otk + 69].to_vec(), b[otk + 69..otk + 137].to_vec());
            b[otk + 1..otk + 69].copy_from_slice(&y);
            b[otk + 69..otk + 137].copy_from_slice(&x);
            b
        },
        ErrorCategory::Decode,
    ));
    bad.push((
        "a one-time KEM prekey id at the next prekey id".into(),
        {
            let mut b = acc.clone();
            let next = b[34..38].to_vec();
            b[otk + 69..otk + 73].copy_from_slice(&next);
            b
        },
        ErrorCategory::Decode,
    ));
    bad.push((
        "101 one-time KEM prekeys (count byte)".into(),
        {
            let mut b = acc.clone();
            b[otk] = 101;
            b
        },
        ErrorCategory::Decode,
    ));
    bad.push((
        "used base keys count 1001".into(),
        {
            let mut b = acc.clone();
            b[uses..uses + 2].copy_from_slice(&1001u16.to_be_bytes());
            b
        },
        ErrorCategory::Decode,
    ));
    bad.push(("trailing byte".into(), [&acc[..], &[0]].concat(), ErrorCategory::Decode));
    // 1001 well-formed used base keys: the used-up account of the
    // transcripts plus one.
    let used_up = USED_UP.with(|u| u.borrow().clone());
    let uses_at = 2 + 32 + 8 + 1 + 1 + 36 + 2 + 1 + 4 + 64;
    assert_eq!(u16::from_be_bytes([used_up[uses_at], used_up[uses_at + 1]]), 1000);
    bad.push((
        "1001 used base keys (each well-formed)".into(),
        {
            let mut b = used_up.clone();
            b[uses_at..uses_at + 2].copy_from_slice(&1001u16.to_be_bytes());
            let end = uses_at + 2 + 1000 * 32;
            b.splice(end..end, [0x5a; 32]);
            b
        },
        ErrorCategory::Decode,
    ));
    // 101 well-formed one-time KEM prekeys: an account at the bound plus one.
    let mut full = Account::new(&mut rng);
    full.generate_kem_prekeys(&mut rng, MAX_ONE_TIME_KEM_PREKEYS);
    rng.take();
    let full = full.to_bytes().to_vec();
    let count_at = 2 + 32 + 8 + 1 + 1 + 36 + 2 + 1 + 4 + 64 + 2;
    assert_eq!(usize::from(full[count_at]), MAX_ONE_TIME_KEM_PREKEYS);
    bad.push((
        "101 one-time KEM prekeys (each well-formed)".into(),
        {
            let mut b = full.clone();
            b[count_at] = 101;
            let next = u32::from_be_bytes(b[34..38].try_into().unwrap());
            b[34..38].copy_from_slice(&(next + 1).to_be_bytes());
            b.extend_from_slice(&next.to_be_bytes());
            b.extend_from_slice(&[0x33; 64]);
            b
        },
        ErrorCategory::Decode,
    ));
    for (comment, b, want) in bad {
        let got = Account::from_bytes(&b).map(|_| ()).unwrap_err().category();
        assert_eq!(got, want, "{comment}");
        tests.push(f.test(
            &format!("account: {comment}"),
            &["Account"],
            Some(got),
            json!({ "kind": "account", "state": h(&b), "events": [] }),
        ));
    }
    f.group("saved_state", "Saved post-quantum accounts (0x2A, SPEC.md §11.5); saved version-2 sessions are in the transcripts' save events", tests);
}

thread_local! {
    /// A saved account whose last-resort KEM prekey has 1000 used base keys.
    static USED_UP: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

pub(crate) fn pqxdh_file() {
    let mut f = VectorFile::new("pqxdh");
    mlkem(&mut f);
    handshakes(&mut f);
    encodings(&mut f);
    uploads(&mut f);
    transcripts(&mut f);
    conversations::pq_records(&mut f);
    saved(&mut f);
    f.write_pq();
}
