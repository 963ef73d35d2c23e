//! PQXDH (SPEC.md §4.8) through the public API: what a post-quantum account
//! publishes, what it consumes and when, what it refuses, and the sizes of
//! the version-2 encodings (§6.8).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sottovoce::*;

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// Alice's first message to Bob from `bundle`, and her session.
fn first_message(rng: &mut ChaCha20Rng, alice: &Account, bundle: &PreKeyBundle) -> (Session, Box<PreKeyMessage>) {
    let mut a = Session::initiate(rng, alice.identity_key_pair(), bundle, b"").unwrap();
    let Message::PreKey(m) = a.encrypt(rng, b"hello").unwrap() else { panic!("a first message is a prekey message") };
    (a, m)
}

#[test]
fn a_new_account_is_post_quantum_and_its_sessions_are_version_2() {
    let mut rng = rng(1);
    let alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    assert!(bob.is_post_quantum() && bob.requires_pq());
    let opk = bob.generate_one_time_prekeys(&mut rng, 1)[0];
    let kem = bob.generate_kem_prekeys(&mut rng, 1)[0];
    let bundle = bob.prekey_bundle_with_kem(Some(opk), Some(kem)).unwrap();
    // Sizes of SPEC.md §6.8.
    assert_eq!(bundle.to_bytes().len(), 1808);
    assert_eq!(bob.prekey_bundle(None).unwrap().to_bytes().len(), 1772);
    let (mut a, m) = first_message(&mut rng, &alice, &bundle);
    let wire = m.to_bytes();
    assert_eq!(wire[0], 0x22);
    assert_eq!(wire.len(), b"hello".len() + 1705);
    let inbound = Session::respond(&mut bob, &m, b"").unwrap();
    assert_eq!(inbound.plaintext, b"hello");
    let mut b = inbound.session;
    assert!(b.is_post_quantum() && a.is_post_quantum());
    assert_eq!((a.version(), b.version()), (2, 2));
    // Both one-time prekeys are gone.
    assert!(bob.one_time_prekey_ids().is_empty() && bob.kem_prekey_ids().is_empty());
    let reply = b.encrypt(&mut rng, b"hi").unwrap().to_bytes();
    assert_eq!(reply[0], 0x21);
    assert_eq!(a.decrypt_bytes(&reply).unwrap(), b"hi");
    let next = a.encrypt(&mut rng, b"no more prekey header").unwrap().to_bytes();
    assert_eq!((next[0], next.len()), (0x21, 21 + MESSAGE_OVERHEAD));
    assert_eq!(b.decrypt_bytes(&next).unwrap(), b"no more prekey header");
}

#[test]
fn a_failed_first_message_consumes_no_prekey_of_either_kind() {
    let mut rng = rng(2);
    let alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    let opk = bob.generate_one_time_prekeys(&mut rng, 1)[0];
    let kem = bob.generate_kem_prekeys(&mut rng, 1)[0];
    let bundle = bob.prekey_bundle_with_kem(Some(opk), Some(kem)).unwrap();
    let (_a, m) = first_message(&mut rng, &alice, &bundle);
    let wire = m.to_bytes();
    let before = bob.to_bytes();
    // A flipped bit anywhere in the KEM ciphertext: implicit rejection gives
    // another SS, so the embedded message fails to authenticate.
    for at in [80, 81, 900, 80 + KEM_CIPHERTEXT_LEN - 1] {
        let mut bad = wire.clone();
        bad[at] ^= 0x01;
        let bad = PreKeyMessage::try_from(bad.as_slice()).unwrap();
        assert_eq!(
            Session::respond(&mut bob, &bad, b"").unwrap_err(),
            KeyAgreementError::Decrypt(DecryptError::Authentication)
        );
        assert_eq!(*bob.to_bytes(), *before, "byte {at}: nothing consumed");
    }
    assert!(Session::respond(&mut bob, &m, b"").is_ok());
    assert_ne!(*bob.to_bytes(), *before);
}

#[test]
fn the_last_resort_kem_prekey_accepts_each_base_key_once_and_at_most_its_bound() {
    let mut rng = rng(3);
    let alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    let bundle = bob.prekey_bundle(None).unwrap();
    assert_eq!(bundle.kem_prekey().unwrap().id(), bob.last_resort_kem_prekey_id().unwrap());
    let (_a, m) = first_message(&mut rng, &alice, &bundle);
    Session::respond(&mut bob, &m, b"").unwrap();
    assert_eq!(bob.last_resort_uses(), 1);
    let saved = bob.to_bytes();
    // The replay (Bob lost the session, or never routed it): duplicate.
    assert_eq!(Session::respond(&mut bob, &m, b"").unwrap_err(), KeyAgreementError::Duplicate);
    // Restored from its saved form, the account still remembers.
    let mut restored = Account::from_bytes(&saved).unwrap();
    assert_eq!(Session::respond(&mut restored, &m, b"").unwrap_err(), KeyAgreementError::Duplicate);
    // Up to MAX_LAST_RESORT_USES sessions, then the key is used up.
    for _ in 1..MAX_LAST_RESORT_USES {
        let (_a, m) = first_message(&mut rng, &alice, &bundle);
        Session::respond(&mut bob, &m, b"").unwrap();
    }
    assert_eq!(bob.last_resort_uses(), MAX_LAST_RESORT_USES);
    let (_a, m) = first_message(&mut rng, &alice, &bundle);
    let before = bob.to_bytes();
    assert_eq!(Session::respond(&mut bob, &m, b"").unwrap_err(), KeyAgreementError::UnknownPreKey);
    assert_eq!(*bob.to_bytes(), *before);
    // A rotation brings a fresh last-resort KEM prekey; the old one stays
    // (used up) for the grace period, then is retired.
    let old = bob.last_resort_kem_prekey_id().unwrap();
    bob.rotate_signed_prekey(&mut rng).unwrap();
    assert_ne!(bob.last_resort_kem_prekey_id().unwrap(), old);
    assert_eq!(bob.last_resort_uses(), 0);
    let (_a, fresh) = first_message(&mut rng, &alice, &bob.prekey_bundle(None).unwrap());
    Session::respond(&mut bob, &fresh, b"").unwrap();
    assert_eq!(Account::from_bytes(&bob.to_bytes()).unwrap().to_bytes(), bob.to_bytes());
}

#[test]
fn a_rotation_keeps_the_previous_last_resort_key_until_it_is_retired() {
    let mut rng = rng(4);
    let alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    let old_bundle = bob.prekey_bundle(None).unwrap();
    bob.rotate_signed_prekey(&mut rng).unwrap();
    let (_a, in_flight) = first_message(&mut rng, &alice, &old_bundle);
    let (_a, late) = first_message(&mut rng, &alice, &old_bundle);
    Session::respond(&mut bob, &in_flight, b"").unwrap();
    bob.retire_previous_signed_prekey();
    assert_eq!(Session::respond(&mut bob, &late, b"").unwrap_err(), KeyAgreementError::UnknownPreKey);
    // Two rotations: at most MAX_LAST_RESORT_KEM_PREKEYS are kept.
    bob.rotate_signed_prekey(&mut rng).unwrap();
    bob.rotate_signed_prekey(&mut rng).unwrap();
    let (_a, m) = first_message(&mut rng, &alice, &old_bundle);
    assert_eq!(Session::respond(&mut bob, &m, b"").unwrap_err(), KeyAgreementError::UnknownPreKey);
}

/// The same keys as a version-1 bundle: what a server that strips the KEM
/// prekey hands out.
fn stripped(bundle: &PreKeyBundle) -> PreKeyBundle {
    let b = bundle.to_bytes();
    let end = 133 + 4 + 2 + KEM_PUBLIC_KEY_LEN + 64;
    PreKeyBundle::try_from([&[0x13u8][..], &b[1..133], &b[end..]].concat().as_slice()).unwrap()
}

#[test]
fn a_responder_that_requires_pqxdh_refuses_a_downgrade() {
    let mut rng = rng(5);
    let alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    let opk = bob.generate_one_time_prekeys(&mut rng, 1)[0];
    let classical = stripped(&bob.prekey_bundle(Some(opk)).unwrap());
    assert_eq!(classical.version(), 1);
    classical.verify().unwrap(); // the signed prekey's signature stands alone
    let (_a, m) = first_message(&mut rng, &alice, &classical);
    assert_eq!(m.version(), 1);
    let before = bob.to_bytes();
    assert_eq!(Session::respond(&mut bob, &m, b"").unwrap_err(), KeyAgreementError::Downgrade);
    assert_eq!(*bob.to_bytes(), *before, "the one-time prekey is kept");
    // Through a record the same.
    let (a, b) = (Address::new(b"alice", DeviceId(1)).unwrap(), Address::new(b"bob", DeviceId(1)).unwrap());
    let mut record = SessionRecord::new(b, a, alice.identity_key());
    assert_eq!(record.decrypt(&mut bob, &Message::PreKey(m.clone())).unwrap_err().category(), ErrorCategory::Downgrade);
    // Turned off (saved with the account), the classical session works.
    bob.set_requires_pq(false);
    let mut bob = Account::from_bytes(&bob.to_bytes()).unwrap();
    assert!(!bob.requires_pq());
    let inbound = Session::respond(&mut bob, &m, b"").unwrap();
    assert_eq!((inbound.session.version(), inbound.session.is_post_quantum()), (1, false));
}

#[test]
fn a_classical_account_stays_classical_until_enabled() {
    let mut rng = rng(6);
    let alice = Account::new_classical(&mut rng);
    let mut bob = Account::new_classical(&mut rng);
    assert!(!bob.is_post_quantum() && !bob.requires_pq());
    assert_eq!(bob.to_bytes()[0], 0x1A);
    assert!(bob.generate_kem_prekeys(&mut rng, 3).is_empty(), "no KEM prekeys without a last-resort one");
    let bundle = bob.prekey_bundle(None).unwrap();
    assert_eq!(bundle.version(), 1);
    let (_a, m) = first_message(&mut rng, &alice, &bundle);
    assert!(!Session::respond(&mut bob, &m, b"").unwrap().session.is_post_quantum());
    let id = bob.enable_pq(&mut rng).unwrap();
    assert_eq!(bob.last_resort_kem_prekey_id(), Some(id));
    assert!(bob.enable_pq(&mut rng).is_none());
    assert_eq!(bob.to_bytes()[0], 0x2A);
    assert_eq!(bob.prekey_bundle(None).unwrap().version(), 2);
}

#[test]
fn a_message_of_the_other_version_is_refused_by_a_session() {
    let mut rng = rng(7);
    let alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    let (mut a, m) = first_message(&mut rng, &alice, &bob.prekey_bundle(None).unwrap());
    let mut b = Session::respond(&mut bob, &m, b"").unwrap().session;
    let reply = b.encrypt(&mut rng, b"r").unwrap().to_bytes();
    let mut as_v1 = reply.clone();
    as_v1[0] = 0x11;
    let before = a.to_bytes();
    assert_eq!(a.decrypt_bytes(&as_v1).unwrap_err(), DecryptError::StateMismatch);
    assert_eq!(*a.to_bytes(), *before);
    assert_eq!(a.decrypt_bytes(&reply).unwrap(), b"r");
    // A prekey message of Bob's session with another ciphertext.
    let (_a2, m2) = (0, a.encrypt(&mut rng, b"x").unwrap().to_bytes());
    assert_eq!(m2[0], 0x21);
    let mut other = m.to_bytes();
    other[100] ^= 1;
    assert_eq!(b.decrypt_bytes(&other).unwrap_err(), DecryptError::StateMismatch);
    assert_eq!(b.decrypt_bytes(&m.to_bytes()).unwrap_err(), DecryptError::Duplicate);
}

#[test]
fn saved_post_quantum_states_round_trip() {
    let mut rng = rng(8);
    let alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    bob.generate_one_time_prekeys(&mut rng, 2);
    bob.generate_kem_prekeys(&mut rng, 3);
    bob.set_requires_pq(false);
    let (a, m) = first_message(&mut rng, &alice, &bob.prekey_bundle(None).unwrap());
    let b = Session::respond(&mut bob, &m, b"").unwrap().session;
    let again = Account::from_bytes(&bob.to_bytes()).unwrap();
    assert_eq!(again.kem_prekey_ids(), bob.kem_prekey_ids());
    assert_eq!(again.last_resort_uses(), 1);
    assert!(!again.requires_pq());
    assert_eq!(*again.to_bytes(), *bob.to_bytes());
    // Sessions: a pending initiator keeps its ciphertext (1572 more bytes
    // than a version-1 session), a responder its digest (36 more).
    let (sa, sb) = (a.to_bytes(), b.to_bytes());
    assert_eq!((sa[0], sb[0]), (0x26, 0x26));
    assert_eq!(sb.len(), 246 + 36);
    assert_eq!(sa.len(), 278 + 1572);
    let mut a2 = Session::from_bytes(&sa).unwrap();
    let resent = a2.encrypt(&mut rng, b"again").unwrap();
    let Message::PreKey(resent) = resent else { panic!("still pending") };
    assert_eq!(resent.kem_ciphertext(), m.kem_ciphertext());
    assert_eq!(*Session::from_bytes(&sb).unwrap().to_bytes(), *sb);
}

#[test]
fn a_server_assembles_version_2_bundles_from_uploads() {
    let mut rng = rng(9);
    let alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    bob.replenish(&mut rng, 2);
    bob.replenish_kem(&mut rng, 2);
    let up = bob.prekeys_to_publish();
    assert_eq!(up.version(), 2);
    let wire = up.to_bytes();
    assert_eq!(wire[0], 0x2B);
    // 35 + 101 + 2 x 37 + 3 x 1639 bytes.
    assert_eq!(wire.len(), 35 + 101 + 74 + 3 * 1639);
    let server = PreKeyUpload::try_from(wire.as_slice()).unwrap();
    server.verify().unwrap();
    assert_eq!(server, up);
    bob.mark_published(&up);
    assert!(bob.prekeys_to_publish().is_empty());
    let spk = server.signed_prekey().unwrap();
    for (kem, opk) in [
        (&server.one_time_kem_prekeys()[0], Some(&server.one_time_prekeys()[0])),
        (server.last_resort_kem_prekey().unwrap(), None),
    ] {
        let bundle = PreKeyBundle::assemble(server.identity_key(), &spk, opk).with_kem_prekey(kem.clone());
        let bundle = PreKeyBundle::try_from(bundle.to_bytes().as_slice()).unwrap();
        let (_a, m) = first_message(&mut rng, &alice, &bundle);
        assert_eq!(Session::respond(&mut bob, &m, b"").unwrap().plaintext, b"hello");
    }
    // A KEM prekey under another identity's signature is refused first.
    let mallory = Account::new(&mut rng);
    let forged = PreKeyBundle::assemble(server.identity_key(), &spk, None)
        .with_kem_prekey(mallory.prekey_bundle(None).unwrap().kem_prekey().unwrap().clone());
    assert_eq!(
        Session::initiate(&mut rng, alice.identity_key_pair(), &forged, b"").unwrap_err(),
        KeyAgreementError::BadSignature
    );
}

#[test]
fn an_encapsulation_key_that_fails_the_modulus_check_does_not_decode() {
    let mut rng = rng(10);
    let bob = Account::new(&mut rng);
    let mut b = bob.prekey_bundle(None).unwrap().to_bytes();
    // Coefficient 0 (the low 12 bits of the first two key bytes) set to q.
    b[139] = 0x01;
    b[140] = (b[140] & 0xf0) | 0x0d;
    assert_eq!(PreKeyBundle::try_from(b.as_slice()).unwrap_err(), DecodeError::InvalidKey);
    // q - 1 is fine.
    b[139] = 0x00;
    assert!(PreKeyBundle::try_from(b.as_slice()).is_ok());
}

#[test]
fn a_record_with_a_pqxdh_session_refuses_a_stripped_bundle() {
    let mut rng = rng(11);
    let alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    let (a, b) = (Address::new(b"alice", DeviceId(1)).unwrap(), Address::new(b"bob", DeviceId(1)).unwrap());
    let mut to_bob = SessionRecord::new(a.clone(), b.clone(), bob.identity_key());
    let mut to_alice = SessionRecord::new(b, a, alice.identity_key());
    let pq = bob.prekey_bundle(None).unwrap();
    // Before any PQXDH session, a classical bundle is taken (a device may
    // not publish KEM prekeys yet).
    let mut fresh = SessionRecord::new(to_bob.local().clone(), to_bob.remote().clone(), bob.identity_key());
    fresh.initiate(&mut rng, alice.identity_key_pair(), &stripped(&pq)).unwrap();
    to_bob.initiate(&mut rng, alice.identity_key_pair(), &pq).unwrap();
    let m = to_bob.encrypt(&mut rng, b"pq").unwrap();
    to_alice.decrypt(&mut bob, &m).unwrap();
    let before = to_bob.to_bytes();
    assert_eq!(
        to_bob.initiate(&mut rng, alice.identity_key_pair(), &stripped(&pq)).unwrap_err(),
        KeyAgreementError::Downgrade
    );
    assert_eq!(*to_bob.to_bytes(), *before);
    to_bob.initiate(&mut rng, alice.identity_key_pair(), &pq).unwrap();
}
