//! Behaviour tests of the 1:1 session protocol (SPEC.md §4, §5, §11).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

mod common;

use common::{assert_rejects_unchanged, pair, rng, talking_pair};
use sottovoce::*;

#[test]
fn conversation_round_trips_both_ways_over_many_ratchet_steps() {
    let (mut rng, mut a, mut b) = talking_pair(1);
    for i in 0..50u32 {
        let text = format!("a->b {i}");
        let m = a.encrypt(&mut rng, text.as_bytes()).unwrap();
        assert!(matches!(m, Message::Normal(_)));
        assert_eq!(b.decrypt_bytes(&m.to_bytes()).unwrap(), text.as_bytes());
        let text = format!("b->a {i}");
        let m = b.encrypt(&mut rng, text.as_bytes()).unwrap();
        assert_eq!(a.decrypt_bytes(&m.to_bytes()).unwrap(), text.as_bytes());
    }
}

#[test]
fn each_ping_pong_message_carries_a_new_ratchet_key() {
    let (mut rng, mut a, mut b) = talking_pair(2);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        let Message::Normal(m) = a.encrypt(&mut rng, b"x").unwrap() else { panic!() };
        assert!(seen.insert(m.ratchet_key()));
        b.decrypt_normal(&m).unwrap();
        let Message::Normal(m) = b.encrypt(&mut rng, b"y").unwrap() else { panic!() };
        assert!(seen.insert(m.ratchet_key()));
        a.decrypt_normal(&m).unwrap();
    }
}

#[test]
fn chain_messages_share_a_ratchet_key_and_count_up() {
    let (mut rng, mut a, _b) = talking_pair(3);
    let ms: Vec<_> = (0..5)
        .map(|_| match a.encrypt(&mut rng, b"z").unwrap() {
            Message::Normal(m) => m,
            Message::PreKey(_) => panic!(),
        })
        .collect();
    for (i, m) in ms.iter().enumerate() {
        assert_eq!(m.counter(), i as u32);
        assert_eq!(m.ratchet_key(), ms[0].ratchet_key());
    }
}

#[test]
fn initiator_repeats_prekey_header_until_a_reply_decrypts() {
    let (mut rng, mut a, mut b) = pair(4);
    assert!(a.has_pending_prekey());
    let m1 = a.encrypt(&mut rng, b"second").unwrap();
    let Message::PreKey(p) = &m1 else { panic!("still a prekey message") };
    assert!(b.matches(p));
    assert_eq!(b.decrypt(&m1).unwrap(), b"second");
    let r = b.encrypt(&mut rng, b"reply").unwrap();
    assert!(matches!(r, Message::Normal(_)));
    a.decrypt(&r).unwrap();
    assert!(!a.has_pending_prekey());
    assert!(matches!(a.encrypt(&mut rng, b"third").unwrap(), Message::Normal(_)));
}

#[test]
fn out_of_order_and_lost_messages_within_a_chain() {
    let (mut rng, mut a, mut b) = talking_pair(5);
    let ms: Vec<_> = (0..6).map(|i| a.encrypt(&mut rng, &[i]).unwrap()).collect();
    // 0 lost, 3 before 1 and 2, 5 before 4.
    for i in [3usize, 1, 2, 5, 4] {
        assert_eq!(b.decrypt(&ms[i]).unwrap(), [i as u8]);
    }
    assert_eq!(b.skipped_keys(), 1, "only message 0 is still pending");
    assert_eq!(b.decrypt(&ms[0]).unwrap(), [0]);
    assert_eq!(b.skipped_keys(), 0);
}

#[test]
fn old_chain_message_decrypts_after_a_ratchet_step() {
    let (mut rng, mut a, mut b) = talking_pair(6);
    let old = a.encrypt(&mut rng, b"old chain").unwrap();
    let newer = a.encrypt(&mut rng, b"old chain 2").unwrap();
    b.decrypt(&newer).unwrap();
    // Two full DH ratchet steps later, the old-chain message arrives.
    for _ in 0..2 {
        let r = b.encrypt(&mut rng, b"r").unwrap();
        a.decrypt(&r).unwrap();
        let m = a.encrypt(&mut rng, b"m").unwrap();
        b.decrypt(&m).unwrap();
    }
    assert_eq!(b.decrypt(&old).unwrap(), b"old chain");
}

#[test]
fn undelivered_message_of_a_not_yet_skipped_old_chain_decrypts() {
    // The last message of a chain is never skipped over by a later one in the
    // same chain; it must still decrypt after the peer ratchets (the chain
    // key is kept, SPEC.md §5.6).
    let (mut rng, mut a, mut b) = talking_pair(7);
    let first = a.encrypt(&mut rng, b"1").unwrap();
    let last = a.encrypt(&mut rng, b"2").unwrap();
    b.decrypt(&first).unwrap();
    let r = b.encrypt(&mut rng, b"r").unwrap();
    a.decrypt(&r).unwrap();
    b.decrypt(&a.encrypt(&mut rng, b"next chain").unwrap()).unwrap();
    assert_eq!(b.decrypt(&last).unwrap(), b"2");
}

#[test]
fn duplicates_are_rejected_without_changing_state() {
    let (mut rng, mut a, mut b) = talking_pair(8);
    let m0 = a.encrypt(&mut rng, b"0").unwrap();
    let m1 = a.encrypt(&mut rng, b"1").unwrap();
    b.decrypt(&m1).unwrap();
    b.decrypt(&m0).unwrap();
    for m in [&m0, &m1] {
        let e = assert_rejects_unchanged(&mut b, |s| s.decrypt(m));
        assert_eq!(e, DecryptError::Duplicate);
    }
    // Bob's very first (prekey) message replayed into the session.
    let (mut rng, mut a, mut b) = pair(9);
    let first = a.encrypt(&mut rng, b"again").unwrap();
    b.decrypt(&first).unwrap();
    assert_eq!(assert_rejects_unchanged(&mut b, |s| s.decrypt(&first)), DecryptError::Duplicate);
}

#[test]
fn skip_exactly_max_skip_decrypts() {
    let (mut rng, mut a, mut b) = talking_pair(10);
    let ms: Vec<_> = (0..=MAX_SKIP).map(|_| a.encrypt(&mut rng, b"m").unwrap()).collect();
    // Message index MAX_SKIP with next index 0: gap exactly MAX_SKIP.
    b.decrypt(ms.last().unwrap()).unwrap();
    assert_eq!(b.skipped_keys(), MAX_SKIP as usize);
    b.decrypt(&ms[0]).unwrap();
}

#[test]
fn rejects_gap_above_max_skip_and_state_is_unchanged() {
    let (mut rng, mut a, mut b) = talking_pair(11);
    let ms: Vec<_> = (0..=MAX_SKIP + 1).map(|_| a.encrypt(&mut rng, b"m").unwrap()).collect();
    let far = ms.last().unwrap();
    let e = assert_rejects_unchanged(&mut b, |s| s.decrypt(far));
    assert_eq!(e, DecryptError::SkipLimit { got: MAX_SKIP + 1, max: MAX_SKIP });
    assert_eq!(e.category(), ErrorCategory::SkipLimit);
    // Everything genuine still works, and after catching up the far one too.
    b.decrypt(&ms[0]).unwrap();
    b.decrypt(far).unwrap();
}

#[test]
fn rejects_gap_above_max_skip_on_a_new_chain() {
    let (mut rng, mut a, mut b) = talking_pair(12);
    // Bob's next send starts a new chain; Alice sees its message MAX_SKIP+1.
    let ms: Vec<_> = (0..=MAX_SKIP + 1).map(|_| b.encrypt(&mut rng, b"m").unwrap()).collect();
    let e = assert_rejects_unchanged(&mut a, |s| s.decrypt(&ms[(MAX_SKIP + 1) as usize]));
    assert_eq!(e, DecryptError::SkipLimit { got: MAX_SKIP + 1, max: MAX_SKIP });
    a.decrypt(&ms[MAX_SKIP as usize]).unwrap();
    a.decrypt(&ms[(MAX_SKIP + 1) as usize]).unwrap();
}

#[test]
fn skipped_key_store_is_bounded_and_evicts_oldest() {
    let (mut rng, mut a, mut b) = talking_pair(13);
    let per = MAX_SKIP as usize;
    let rounds = MAX_SKIPPED_KEYS / per + 1;
    let mut all = Vec::new();
    for _ in 0..rounds {
        let ms: Vec<_> = (0..=per).map(|_| a.encrypt(&mut rng, b"m").unwrap()).collect();
        b.decrypt(ms.last().unwrap()).unwrap();
        all.extend(ms);
    }
    assert_eq!(b.skipped_keys(), MAX_SKIPPED_KEYS);
    // The very first skipped keys were evicted: those messages are lost.
    assert_eq!(assert_rejects_unchanged(&mut b, |s| s.decrypt(&all[0])), DecryptError::Duplicate);
    // The newest skipped ones are still there.
    let newest = &all[all.len() - 2];
    assert!(b.decrypt(newest).is_ok());
}

/// Alice's session restored with a lying PN for her next sending chain
/// (the saved-session codec of tests/support/saved.rs, SPEC.md §11.2).
fn with_previous_counter(a: &Session, pn: u32) -> Session {
    let mut saved = saved::Saved::parse(&a.to_bytes());
    saved.pn = pn;
    Session::from_bytes(&saved.encode()).unwrap()
}

#[test]
fn a_new_chain_closes_the_old_one_at_pn_and_keeps_its_late_messages() {
    let (mut rng, mut a, mut b) = talking_pair(14);
    // Chain A2: messages 0..3; Bob receives 0 only.
    let chain: Vec<_> = (0..4).map(|_| a.encrypt(&mut rng, b"late").unwrap()).collect();
    b.decrypt(&chain[0]).unwrap();
    a.decrypt(&b.encrypt(&mut rng, b"r").unwrap()).unwrap();
    // Alice's next chain announces PN = 4: Bob stores keys 1..3 and deletes
    // the chain key.
    let next = normal(a.encrypt(&mut rng, b"next").unwrap());
    assert_eq!(next.previous_counter(), 4);
    let before = b.skipped_keys();
    b.decrypt_normal(&next).unwrap();
    assert_eq!(b.skipped_keys(), before + 3);
    // Three more ratchet steps later the late messages still decrypt, once;
    // a replay is a duplicate while the closed chain is remembered.
    let steps = |rng: &mut _, a: &mut Session, b: &mut Session, n: usize| {
        for _ in 0..n {
            b.decrypt(&a.encrypt(rng, b"x").unwrap()).unwrap();
            a.decrypt(&b.encrypt(rng, b"y").unwrap()).unwrap();
        }
    };
    steps(&mut rng, &mut a, &mut b, 3);
    for m in &chain[1..3] {
        assert_eq!(b.decrypt(m).unwrap(), b"late");
        assert_eq!(assert_rejects_unchanged(&mut b, |s| s.decrypt(m)), DecryptError::Duplicate);
    }
    assert_eq!(assert_rejects_unchanged(&mut b, |s| s.decrypt(&chain[0])), DecryptError::Duplicate);
    // Past MAX_CLOSED_CHAINS newer chains the record is gone: the last late
    // message still decrypts from its skipped key, but a replay is then
    // indistinguishable from a forgery.
    steps(&mut rng, &mut a, &mut b, MAX_CLOSED_CHAINS);
    assert_eq!(b.decrypt(&chain[3]).unwrap(), b"late");
    assert_eq!(assert_rejects_unchanged(&mut b, |s| s.decrypt(&chain[3])), DecryptError::Authentication);
}

#[test]
fn nothing_at_or_past_pn_on_a_closed_chain_is_accepted() {
    let (mut rng, mut a, mut b) = talking_pair(20);
    // Chain A2 has two messages; Alice keeps a copy of her state to play an
    // attacker who learned the chain key and forges message 2 of it later.
    b.decrypt(&a.encrypt(&mut rng, b"0").unwrap()).unwrap();
    let mut attacker = Session::from_bytes(&a.to_bytes()).unwrap();
    b.decrypt(&a.encrypt(&mut rng, b"1").unwrap()).unwrap();
    a.decrypt(&b.encrypt(&mut rng, b"r").unwrap()).unwrap();
    b.decrypt(&a.encrypt(&mut rng, b"A3, PN = 2").unwrap()).unwrap();
    // Number 2 and beyond on the closed chain: refused without derivation,
    // though the attacker's chain key makes it authenticate.
    let _ = attacker.encrypt(&mut rng, b"1 again").unwrap();
    let forged = attacker.encrypt(&mut rng, b"injected").unwrap();
    assert_eq!(normal(forged.clone()).counter(), 2);
    assert_eq!(assert_rejects_unchanged(&mut b, |s| s.decrypt(&forged)), DecryptError::Authentication);
    let far = attacker.encrypt(&mut rng, b"injected").unwrap();
    assert_eq!(assert_rejects_unchanged(&mut b, |s| s.decrypt(&far)), DecryptError::Authentication);
}

#[test]
fn a_leaked_chain_key_stops_working_at_the_next_ratchet_step() {
    // An attacker who learned Bob's receiving chain key forges a message far
    // ahead on it; Bob accepts it (nothing can tell). Revision 2's first draft
    // then refused every later chain of Alice's, whose PN is below Bob's Nr;
    // now Alice's next chain closes the old one at its real length, deletes
    // the keys the forgery left, and the session heals.
    let (mut rng, mut a, mut b) = talking_pair(21);
    b.decrypt(&a.encrypt(&mut rng, b"0").unwrap()).unwrap();
    let mut attacker = Session::from_bytes(&a.to_bytes()).unwrap();
    let forged: Vec<_> = (0..=MAX_SKIP).map(|_| attacker.encrypt(&mut rng, b"forged").unwrap()).collect();
    assert_eq!(b.decrypt(&forged[MAX_SKIP as usize]).unwrap(), b"forged");
    assert_eq!(b.skipped_keys(), MAX_SKIP as usize);
    a.decrypt(&b.encrypt(&mut rng, b"r").unwrap()).unwrap();
    let next = a.encrypt(&mut rng, b"Alice's next chain, PN = 1").unwrap();
    assert_eq!(b.decrypt(&next).unwrap(), b"Alice's next chain, PN = 1");
    assert_eq!(b.skipped_keys(), 0, "the forgery's keys are gone");
    for m in &forged[..3] {
        assert_eq!(assert_rejects_unchanged(&mut b, |s| s.decrypt(m)), DecryptError::Authentication);
    }
    // And the conversation goes on both ways.
    a.decrypt(&b.encrypt(&mut rng, b"still here").unwrap()).unwrap();
    b.decrypt(&a.encrypt(&mut rng, b"me too").unwrap()).unwrap();
}

#[test]
fn losing_more_than_max_skip_of_a_chain_loses_only_those_messages() {
    let (mut rng, mut a, mut b) = talking_pair(22);
    b.decrypt(&a.encrypt(&mut rng, b"0").unwrap()).unwrap();
    let lost: Vec<_> = (0..MAX_SKIP + 5).map(|_| a.encrypt(&mut rng, b"lost").unwrap()).collect();
    a.decrypt(&b.encrypt(&mut rng, b"r").unwrap()).unwrap();
    // PN = 1 + MAX_SKIP + 5: Bob stores MAX_SKIP keys and goes on.
    assert_eq!(b.decrypt(&a.encrypt(&mut rng, b"next chain").unwrap()).unwrap(), b"next chain");
    assert_eq!(b.skipped_keys(), MAX_SKIP as usize);
    assert_eq!(b.decrypt(&lost[0]).unwrap(), b"lost");
    assert_eq!(b.decrypt(&lost[MAX_SKIP as usize - 1]).unwrap(), b"lost");
    for m in &lost[MAX_SKIP as usize..] {
        assert_eq!(assert_rejects_unchanged(&mut b, |s| s.decrypt(m)), DecryptError::Duplicate);
    }
    a.decrypt(&b.encrypt(&mut rng, b"and on").unwrap()).unwrap();
}

#[test]
fn a_first_chain_must_announce_pn_zero() {
    // Bob has no receiving chain before Alice's first message: PN != 0 on it
    // is refused before any DH.
    let mut rng = rng(22);
    let alice = Account::new_classical(&mut rng);
    let mut bob = Account::new_classical(&mut rng);
    let bundle = bob.prekey_bundle(None).unwrap();
    let a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    let mut liar = with_previous_counter(&a, 1);
    let Message::PreKey(m) = liar.encrypt(&mut rng, b"hi").unwrap() else { panic!() };
    let err = Session::respond(&mut bob, &m, b"").unwrap_err();
    assert_eq!(err, KeyAgreementError::Decrypt(DecryptError::Authentication));
}

#[test]
fn an_initiators_session_rejects_every_prekey_message() {
    let (mut rng, mut a, b) = pair(23);
    // A crafted prekey message naming Bob (Alice's peer) as initiator, Alice's
    // session id and prekey ids, wrapping Bob's genuine reply.
    let reply = {
        let mut b = b;
        normal(b.encrypt(&mut rng, b"reply").unwrap())
    };
    let Message::PreKey(own) = a.encrypt(&mut rng, b"x").unwrap() else { panic!() };
    let mut crafted = own.to_bytes();
    crafted[1..33].copy_from_slice(&a.remote_identity().to_bytes());
    let embedded = crafted.len() - own.message().to_bytes().len();
    crafted.truncate(embedded);
    crafted.extend_from_slice(&reply.to_bytes());
    let Message::PreKey(p) = Message::try_from(crafted.as_slice()).unwrap() else { panic!() };
    assert!(!a.matches(&p));
    assert_eq!(a.role(), Role::Initiator);
    let m = Message::PreKey(p);
    assert_eq!(assert_rejects_unchanged(&mut a, |s| s.decrypt(&m)), DecryptError::StateMismatch);
    // The genuine reply itself decrypts.
    assert_eq!(a.decrypt_normal(&reply).unwrap(), b"reply");
}

#[test]
fn a_replayed_first_message_routed_to_its_session_is_a_duplicate() {
    let mut rng = rng(24);
    let alice = Account::new_classical(&mut rng);
    let mut bob = Account::new_classical(&mut rng);
    let bundle = bob.prekey_bundle(None).unwrap();
    let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    let first = a.encrypt(&mut rng, b"first").unwrap();
    let Message::PreKey(p) = &first else { panic!() };
    let mut b = Session::respond(&mut bob, p, b"").unwrap().session;
    assert!(b.matches(p));
    assert_eq!(assert_rejects_unchanged(&mut b, |s| s.decrypt(&first)), DecryptError::Duplicate);
    a.decrypt(&b.encrypt(&mut rng, b"reply").unwrap()).unwrap();
}

fn normal(m: Message) -> NormalMessage {
    match m {
        Message::Normal(m) => m,
        Message::PreKey(_) => panic!("expected a normal message"),
    }
}

#[test]
fn every_byte_of_every_field_tampered_is_rejected_and_state_unchanged() {
    let (mut rng, mut a, mut b) = talking_pair(15);
    let genuine = normal(a.encrypt(&mut rng, b"tamper with me").unwrap()).to_bytes();
    for i in 0..genuine.len() {
        for flip in [0x01u8, 0x80] {
            let mut t = genuine.clone();
            t[i] ^= flip;
            assert_rejects_unchanged(&mut b, |s| s.decrypt_bytes(&t));
        }
    }
    assert_eq!(b.decrypt_bytes(&genuine).unwrap(), b"tamper with me");
}

#[test]
fn tampered_prekey_message_fields_are_rejected_and_prekey_kept() {
    let mut rng = rng(16);
    let alice = Account::new_classical(&mut rng);
    let mut bob = Account::new_classical(&mut rng);
    let opk = bob.generate_one_time_prekeys(&mut rng, 1)[0];
    let bundle = bob.prekey_bundle(Some(opk)).unwrap();
    let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    let genuine = a.encrypt(&mut rng, b"first").unwrap().to_bytes();
    for i in 0..genuine.len() {
        let mut t = genuine.clone();
        t[i] ^= 0x01;
        if let Ok(Message::PreKey(m)) = Message::try_from(t.as_slice()) {
            assert!(Session::respond(&mut bob, &m, b"").is_err(), "byte {i} tampered was accepted");
        }
        assert_eq!(bob.one_time_prekey_ids(), vec![opk], "byte {i}: one-time prekey burned");
    }
    let Message::PreKey(m) = Message::try_from(genuine.as_slice()).unwrap() else { panic!() };
    assert_eq!(Session::respond(&mut bob, &m, b"").unwrap().plaintext, b"first");
    assert!(bob.one_time_prekey_ids().is_empty(), "consumed after success");
}

#[test]
fn one_time_prekey_is_consumed_only_after_authentication() {
    let mut rng = rng(17);
    let alice = Account::new_classical(&mut rng);
    let mut bob = Account::new_classical(&mut rng);
    let opk = bob.generate_one_time_prekeys(&mut rng, 2)[0];
    let bundle = bob.prekey_bundle(Some(opk)).unwrap();
    let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    let Message::PreKey(m) = a.encrypt(&mut rng, b"hi").unwrap() else { panic!() };
    // Wrong binding: X3DH completes but the message does not authenticate.
    let e = Session::respond(&mut bob, &m, b"other binding").unwrap_err();
    assert_eq!(e, KeyAgreementError::Decrypt(DecryptError::Authentication));
    assert_eq!(bob.one_time_prekey_ids().len(), 2);
    Session::respond(&mut bob, &m, b"").unwrap();
    assert_eq!(bob.one_time_prekey_ids().len(), 1);
    // The same message again: its one-time prekey is gone.
    assert_eq!(Session::respond(&mut bob, &m, b"").unwrap_err(), KeyAgreementError::UnknownPreKey);
}

#[test]
fn unknown_prekeys_are_typed_errors() {
    let mut rng = rng(18);
    let alice = Account::new_classical(&mut rng);
    let mut bob = Account::new_classical(&mut rng);
    let mut carol = Account::new_classical(&mut rng);
    let bundle = carol.prekey_bundle(None).unwrap();
    let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    let Message::PreKey(m) = a.encrypt(&mut rng, b"hi").unwrap() else { panic!() };
    // Bob's signed prekey has the same id 1 but is another key.
    assert_eq!(
        Session::respond(&mut bob, &m, b"").unwrap_err(),
        KeyAgreementError::Decrypt(DecryptError::Authentication)
    );
    carol.rotate_signed_prekey(&mut rng).unwrap();
    carol.rotate_signed_prekey(&mut rng).unwrap();
    assert_eq!(Session::respond(&mut carol, &m, b"").unwrap_err(), KeyAgreementError::UnknownPreKey);
}

#[test]
fn bad_signature_is_rejected_before_any_dh() {
    let mut rng = rng(19);
    let alice = Account::new_classical(&mut rng);
    let bob = Account::new_classical(&mut rng);
    let mut bytes = bob.prekey_bundle(None).unwrap().to_bytes();
    bytes[40] ^= 1; // inside the signed prekey
    let bundle = PreKeyBundle::try_from(bytes.as_slice()).unwrap();
    let e = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap_err();
    assert_eq!(e, KeyAgreementError::BadSignature);
    assert_eq!(e.category(), ErrorCategory::BadSignature);
    // Signature from another identity.
    let mallory = Account::new_classical(&mut rng);
    let mut forged = bob.prekey_bundle(None).unwrap().to_bytes();
    forged[1..33].copy_from_slice(&mallory.identity_key().to_bytes());
    let bundle = PreKeyBundle::try_from(forged.as_slice()).unwrap();
    assert_eq!(
        Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap_err(),
        KeyAgreementError::BadSignature
    );
}

#[test]
fn low_order_ephemeral_key_is_non_contributory_and_prekey_kept() {
    let mut rng = rng(20);
    let alice = Account::new_classical(&mut rng);
    let mut bob = Account::new_classical(&mut rng);
    let opk = bob.generate_one_time_prekeys(&mut rng, 1)[0];
    let bundle = bob.prekey_bundle(Some(opk)).unwrap();
    let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    let mut bytes = a.encrypt(&mut rng, b"hi").unwrap().to_bytes();
    // EK_A := the point of order 1 (u = 0), and u = 1 (order 4... low order).
    for low in [[0u8; 32], {
        let mut u = [0u8; 32];
        u[0] = 1;
        u
    }] {
        bytes[33..65].copy_from_slice(&low);
        let Message::PreKey(m) = Message::try_from(bytes.as_slice()).unwrap() else { panic!() };
        let e = Session::respond(&mut bob, &m, b"").unwrap_err();
        assert_eq!(e, KeyAgreementError::NonContributory);
        assert_eq!(bob.one_time_prekey_ids(), vec![opk]);
    }
}

#[test]
fn low_order_ratchet_key_is_rejected_without_state_change() {
    let (mut rng, mut a, mut b) = talking_pair(21);
    let mut bytes = a.encrypt(&mut rng, b"x").unwrap().to_bytes();
    bytes[1..33].copy_from_slice(&[0u8; 32]);
    let e = assert_rejects_unchanged(&mut b, |s| s.decrypt_bytes(&bytes));
    assert_eq!(e, DecryptError::NonContributory);
}

#[test]
fn replayed_prekey_message_without_one_time_prekey_never_reuses_keys() {
    let mut rng = rng(22);
    let alice = Account::new_classical(&mut rng);
    let mut bob = Account::new_classical(&mut rng);
    let bundle = bob.prekey_bundle(None).unwrap();
    let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    let Message::PreKey(m) = a.encrypt(&mut rng, b"hi").unwrap() else { panic!() };
    let mut s1 = Session::respond(&mut bob, &m, b"").unwrap().session;
    let mut s2 = Session::respond(&mut bob, &m, b"").unwrap().session;
    assert_eq!(s1.session_id(), s2.session_id());
    let r1 = normal(s1.encrypt(&mut rng, b"same plaintext").unwrap());
    let r2 = normal(s2.encrypt(&mut rng, b"same plaintext").unwrap());
    assert_ne!(r1.ratchet_key(), r2.ratchet_key(), "each replay gets a fresh ratchet key");
    assert_ne!(r1.to_bytes()[37..], r2.to_bytes()[37..], "different keys, different ciphertexts");
}

#[test]
fn binding_bytes_must_match() {
    let mut rng = rng(23);
    let alice = Account::new_classical(&mut rng);
    let mut bob = Account::new_classical(&mut rng);
    let bundle = bob.prekey_bundle(None).unwrap();
    let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"alice@1|bob@1").unwrap();
    let Message::PreKey(m) = a.encrypt(&mut rng, b"hi").unwrap() else { panic!() };
    assert!(Session::respond(&mut bob, &m, b"alice@1|bob@2").is_err());
    assert!(Session::respond(&mut bob, &m, b"alice@1|bob@1").is_ok());
    let long = vec![0u8; MAX_BINDING_LEN + 1];
    assert!(Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, &long).is_err());
    assert!(Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, &long[1..]).is_ok());
}

#[test]
fn prekey_message_of_another_session_is_a_state_mismatch() {
    let (mut rng, _a, mut b) = pair(24);
    let (mut rng2, mut a2, _b2) = pair(25);
    let _ = &mut rng;
    let other = a2.encrypt(&mut rng2, b"x").unwrap();
    let e = assert_rejects_unchanged(&mut b, |s| s.decrypt(&other));
    assert_eq!(e, DecryptError::StateMismatch);
}

#[test]
fn wire_overhead_is_57_bytes() {
    let (mut rng, mut a, _b) = talking_pair(26);
    for len in [0usize, 1, 100, 1024] {
        let m = a.encrypt(&mut rng, &vec![7u8; len]).unwrap().to_bytes();
        assert_eq!(m.len() - len, MESSAGE_OVERHEAD);
        // 1 first byte + 32 DHs + 4 PN + 4 N + 16 tag (SPEC.md §6.2).
        assert_eq!(MESSAGE_OVERHEAD, 57);
    }
}

#[test]
fn decoders_reject_truncation_trailing_and_versions_without_panicking() {
    let (mut rng, mut a, _b) = pair(27);
    let pk = a.encrypt(&mut rng, b"payload").unwrap().to_bytes();
    for cut in 0..pk.len() {
        assert!(Message::try_from(&pk[..cut]).is_err() || cut >= 74 + 53, "cut {cut}");
    }
    let bundle = Account::new_classical(&mut rng).prekey_bundle(None).unwrap().to_bytes();
    for cut in 0..bundle.len() {
        assert!(PreKeyBundle::try_from(&bundle[..cut]).is_err());
    }
    let mut long = bundle.clone();
    long.push(0);
    assert_eq!(PreKeyBundle::try_from(long.as_slice()), Err(DecodeError::TrailingBytes { extra: 1 }));
    let mut v2 = bundle.clone();
    v2[0] = 0x33;
    assert_eq!(PreKeyBundle::try_from(v2.as_slice()), Err(DecodeError::UnknownVersion(0x33)));
    let mut flag = bundle.clone();
    flag[133] = 2;
    assert_eq!(PreKeyBundle::try_from(flag.as_slice()), Err(DecodeError::InvalidField { offset: 133 }));
    assert_eq!(Message::try_from(&[0x13u8][..]), Err(DecodeError::UnexpectedType(0x13)));
}

#[test]
fn bundle_round_trips() {
    let mut rng = rng(28);
    let mut bob = Account::new_classical(&mut rng);
    let ids = bob.generate_one_time_prekeys(&mut rng, 3);
    for opk in [None, Some(ids[1])] {
        let b = bob.prekey_bundle(opk).unwrap();
        let bytes = b.to_bytes();
        assert_eq!(bytes.len(), if opk.is_some() { 170 } else { 134 });
        assert_eq!(PreKeyBundle::try_from(bytes.as_slice()).unwrap(), b);
        b.verify().unwrap();
    }
}

#[test]
fn saved_session_restores_exactly_and_continues() {
    let (mut rng, mut a, mut b) = talking_pair(29);
    let skipped: Vec<_> = (0..4).map(|_| a.encrypt(&mut rng, b"s").unwrap()).collect();
    b.decrypt(&a.encrypt(&mut rng, b"t").unwrap()).unwrap();
    let saved = b.to_bytes();
    let mut restored = Session::from_bytes(&saved).unwrap();
    assert_eq!(*restored.to_bytes(), *saved);
    for m in &skipped {
        assert_eq!(restored.decrypt(m).unwrap(), b"s");
    }
    let r = restored.encrypt(&mut rng, b"from restored").unwrap();
    assert_eq!(a.decrypt(&r).unwrap(), b"from restored");
}

#[test]
fn corrupt_saved_session_is_an_error_never_a_panic() {
    let (mut rng, mut a, mut b) = talking_pair(30);
    for _ in 0..3 {
        a.encrypt(&mut rng, b"lost").unwrap();
    }
    b.decrypt(&a.encrypt(&mut rng, b"t").unwrap()).unwrap();
    let saved = b.to_bytes();
    for cut in 0..saved.len() {
        assert!(Session::from_bytes(&saved[..cut]).is_err());
    }
    for i in 0..saved.len() {
        let mut t = saved.to_vec();
        t[i] ^= 0xff;
        let _ = Session::from_bytes(&t); // must not panic
    }
    let mut t = saved.to_vec();
    t.push(0);
    assert_eq!(Session::from_bytes(&t).unwrap_err(), DecodeError::TrailingBytes { extra: 1 });
}

#[test]
fn sealed_session_needs_the_storage_key() {
    let (mut rng, _a, b) = talking_pair(31);
    let key = [9u8; 32];
    let sealed = b.seal(&mut rng, &key);
    assert_eq!(sealed[0], 0x19);
    let opened = Session::unseal(&key, &sealed).unwrap();
    assert_eq!(*opened.to_bytes(), *b.to_bytes());
    assert_eq!(Session::unseal(&[8u8; 32], &sealed).unwrap_err(), RestoreError::Authentication);
    for i in 0..sealed.len() {
        let mut t = sealed.clone();
        t[i] ^= 1;
        assert!(Session::unseal(&key, &t).is_err());
    }
    // Two seals of the same state use fresh nonces.
    assert_ne!(b.seal(&mut rng, &key), sealed);
}

#[test]
fn saved_sizes_are_small() {
    // SPEC.md §11.2: a responder right after its first message is 250 bytes
    // with a one-time prekey (246 without), an initiator right after
    // initiate 282 (278 without); 68 more per skipped key.
    let (mut rng, mut a, b) = pair(32);
    let fresh = b.to_bytes().len();
    assert_eq!(fresh, 250);
    let ms: Vec<_> = (0..=100).map(|_| a.encrypt(&mut rng, b"m").unwrap()).collect();
    let mut b = b;
    b.decrypt(ms.last().unwrap()).unwrap();
    assert_eq!(b.skipped_keys(), 100);
    let with_100 = b.to_bytes().len();
    assert_eq!(with_100, fresh + 100 * 68, "each skipped key costs DHr + N + MK");
    let mut r = common::rng(37);
    let alice = Account::new_classical(&mut r);
    let bob = Account::new_classical(&mut r);
    let s = Session::initiate(&mut r, alice.identity_key_pair(), &bob.prekey_bundle(None).unwrap(), b"").unwrap();
    assert_eq!(s.to_bytes().len(), 278);
    println!("saved session: fresh {fresh} B, with 100 skipped keys {with_100} B");
}

#[test]
fn debug_output_never_contains_secrets() {
    let mut rng = rng(33);
    let alice = Account::new_classical(&mut rng);
    let seed = alice.identity_key_pair().to_seed();
    let (mut rng2, a, _b) = talking_pair(34);
    let _ = &mut rng2;
    let seed_hex = hex::encode(&seed[..]);
    for text in [format!("{:?}", alice), format!("{:?}", alice.identity_key_pair()), format!("{:?}", a)] {
        assert!(!text.contains(&seed_hex));
        assert!(!text.contains(&format!("{:?}", &seed[..8])));
    }
    let saved = a.to_bytes();
    let text = format!("{a:?}");
    // No 8-byte window of the saved state (which holds every secret) shows up
    // in Debug output, as hex or as a byte list.
    let public =
        format!("{}{}", hex::encode(a.local_identity().to_bytes()), hex::encode(a.remote_identity().to_bytes()));
    for w in saved.windows(8).step_by(8) {
        if public.contains(&hex::encode(w)) {
            continue; // identity keys are public and printed on purpose
        }
        assert!(!text.contains(&hex::encode(w)));
        assert!(!text.contains(&format!("{w:?}").trim_matches(|c| c == '[' || c == ']').to_string()));
    }
}

#[test]
fn identity_round_trips_through_its_seed() {
    let mut rng = rng(35);
    let ik = IdentityKeyPair::generate(&mut rng);
    let again = IdentityKeyPair::from_seed(&ik.to_seed());
    assert_eq!(ik.public_key(), again.public_key());
    assert!(IdentityKey::from_bytes(&[0u8; 32]).is_err());
    let mut one = [0u8; 32];
    one[0] = 1; // the identity point: small order
    assert!(IdentityKey::from_bytes(&one).is_err());
}

#[test]
fn account_prekey_limits_hold_at_and_past_their_bounds() {
    let mut rng = rng(36);
    let mut bob = Account::new_classical(&mut rng);
    assert_eq!(bob.generate_one_time_prekeys(&mut rng, MAX_ONE_TIME_PREKEYS - 1).len(), MAX_ONE_TIME_PREKEYS - 1);
    assert_eq!(bob.generate_one_time_prekeys(&mut rng, 5).len(), 1, "exactly at the bound");
    assert_eq!(bob.one_time_prekey_ids().len(), MAX_ONE_TIME_PREKEYS);
    assert!(bob.generate_one_time_prekeys(&mut rng, 1).is_empty(), "one past the bound");
    // Signed prekeys: the current one and its predecessor answer; older ones do not.
    let alice = Account::new_classical(&mut rng);
    let old = bob.prekey_bundle(None).unwrap();
    let mut a_old = Session::initiate(&mut rng, alice.identity_key_pair(), &old, b"").unwrap();
    let Message::PreKey(m_old) = a_old.encrypt(&mut rng, b"old spk").unwrap() else { panic!() };
    bob.rotate_signed_prekey(&mut rng).unwrap();
    assert!(Session::respond(&mut bob, &m_old, b"").is_ok(), "predecessor still held");
    bob.rotate_signed_prekey(&mut rng).unwrap();
    assert_eq!(Session::respond(&mut bob, &m_old, b"").unwrap_err(), KeyAgreementError::UnknownPreKey);
    let _ = MAX_SIGNED_PREKEYS;
}

#[path = "support/saved.rs"]
mod saved;

#[test]
fn restore_refuses_states_that_could_decrypt_a_message_twice() {
    // SPEC.md §11.2: revision 1 restored these and then decrypted one
    // message twice.
    let (mut rng, mut a, mut b) = talking_pair(40);
    let skipped = a.encrypt(&mut rng, b"skipped").unwrap();
    b.decrypt(&a.encrypt(&mut rng, b"ahead").unwrap()).unwrap();
    let good = saved::Saved::parse(&b.to_bytes());
    assert_eq!(good.skipped.len(), 1);
    let open = good.open.unwrap();
    let mut twice = good.clone();
    twice.skipped.push(twice.skipped[0]);
    let mut at_nr = good.clone();
    at_nr.skipped.push((open.0, open.2, [9; 32]));
    let mut closed_dup = good.clone();
    closed_dup.closed.push((open.0, 1));
    let mut pending_no_chain = good.clone();
    pending_no_chain.open = None;
    for bad in [twice, at_nr, closed_dup, pending_no_chain] {
        assert_eq!(Session::from_bytes(&bad.encode()).unwrap_err(), DecodeError::InconsistentState);
    }
    // The consistent original restores and decrypts the skipped message once.
    let mut again = Session::from_bytes(&good.encode()).unwrap();
    assert_eq!(again.decrypt(&skipped).unwrap(), b"skipped");
    assert_eq!(again.decrypt(&skipped).unwrap_err(), DecryptError::Duplicate);
}

#[test]
fn a_saved_initiator_keeps_its_role() {
    let (mut rng, a, mut b) = pair(41);
    let mut restored = Session::from_bytes(&a.to_bytes()).unwrap();
    assert_eq!(restored.role(), Role::Initiator);
    assert_eq!(b.role(), Role::Responder);
    // Bob's reply wrapped in a prekey header naming Bob: still refused.
    let reply = normal(b.encrypt(&mut rng, b"reply").unwrap());
    let Message::PreKey(own) = restored.encrypt(&mut rng, b"x").unwrap() else { panic!() };
    let header_len = own.to_bytes().len() - own.message().to_bytes().len();
    let mut crafted = own.to_bytes()[..header_len].to_vec();
    crafted[1..33].copy_from_slice(&restored.remote_identity().to_bytes());
    crafted.extend_from_slice(&reply.to_bytes());
    assert_eq!(restored.decrypt_bytes(&crafted).unwrap_err(), DecryptError::StateMismatch);
    assert_eq!(restored.decrypt_normal(&reply).unwrap(), b"reply");
}

#[test]
fn a_normal_message_is_not_padded_to_the_prekey_variant() {
    // A moved `Message::Normal` must not carry stale bytes of a larger
    // variant into a caller's buffer: the prekey variant is boxed.
    assert!(std::mem::size_of::<Message>() <= std::mem::size_of::<NormalMessage>() + 8);
}

#[test]
fn an_account_survives_save_and_restore_and_keeps_answering() {
    let mut rng = rng(42);
    let alice = Account::new_classical(&mut rng);
    let mut bob = Account::new_classical(&mut rng);
    let opks = bob.generate_one_time_prekeys(&mut rng, 3);
    bob.rotate_signed_prekey(&mut rng).unwrap();
    let bundle = bob.prekey_bundle(Some(opks[0])).unwrap();
    let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    let Message::PreKey(m) = a.encrypt(&mut rng, b"after a restart").unwrap() else { panic!() };
    // Bob's app restarts between publishing and receiving.
    let key = [9u8; 32];
    let mut bob = Account::unseal(&key, &bob.seal(&mut rng, &key)).unwrap();
    assert_eq!(bob.prekey_bundle(Some(opks[0])).unwrap(), bundle);
    let inbound = Session::respond(&mut bob, &m, b"").unwrap();
    assert_eq!(inbound.plaintext, b"after a restart");
    let again = Account::from_bytes(&bob.to_bytes()).unwrap();
    assert_eq!(again.one_time_prekey_ids(), &opks[1..]);
    // New prekeys never reuse an id, even after a restore.
    let mut again = again;
    let fresh = again.generate_one_time_prekeys(&mut rng, 1)[0];
    assert!(fresh.0 > opks[2].0 && fresh.0 > bundle.signed_prekey_id().0);
    // Built around an existing identity.
    let seed = alice.identity_key_pair().to_seed();
    let rebuilt = Account::from_identity(&mut rng, IdentityKeyPair::from_seed(&seed));
    assert_eq!(rebuilt.identity_key(), alice.identity_key());
}

#[test]
fn safety_numbers_follow_spec_3_5_and_agree_on_both_sides() {
    use sha2::{Digest, Sha512};
    let mut rng = rng(43);
    let a = IdentityKeyPair::generate(&mut rng).public_key();
    let b = IdentityKeyPair::generate(&mut rng).public_key();
    let n = SafetyNumber::new((&a, b"alice"), (&b, b"bob")).unwrap();
    // SPEC.md §3.5 written out again, independently of src/safety.rs.
    let fp = |ik: &IdentityKey, id: &[u8]| {
        let mut f: Vec<u8> =
            Sha512::digest([labels::SAFETY_NUMBER_LABEL, &[id.len() as u8], id, &ik.to_bytes()].concat()).to_vec();
        for _ in 0..5200 {
            f = Sha512::digest([&f[..], &ik.to_bytes()].concat()).to_vec();
        }
        f
    };
    let half = |f: &[u8]| -> String {
        (0..6)
            .map(|j| {
                let v = f[5 * j..5 * j + 5].iter().fold(0u64, |acc, x| acc << 8 | u64::from(*x));
                format!("{:05}", v % 100_000)
            })
            .collect()
    };
    let (fa, fb) = (fp(&a, b"alice"), fp(&b, b"bob"));
    let (ha, hb) = (half(&fa), half(&fb));
    let want = if ha <= hb { ha + &hb } else { hb + &ha };
    assert_eq!(n.digits(), want);
    assert_eq!(n.scannable(), [&[1u8][..], &fa[..32], &fb[..32]].concat());
    let theirs = SafetyNumber::new((&b, b"bob"), (&a, b"alice")).unwrap();
    assert_eq!(theirs.digits(), n.digits());
    assert!(theirs.matches_scanned(&n.scannable()) && n.matches_scanned(&theirs.scannable()));
    // A different key or a different user id changes it.
    let c = IdentityKeyPair::generate(&mut rng).public_key();
    assert_ne!(SafetyNumber::new((&a, b"alice"), (&c, b"bob")).unwrap().digits(), n.digits());
    assert!(!theirs.matches_scanned(&SafetyNumber::new((&c, b"alice"), (&b, b"bob")).unwrap().scannable()));
    assert_ne!(SafetyNumber::new((&a, b"alice"), (&b, b"bob2")).unwrap().digits(), n.digits());
    assert_eq!(n.to_string().len(), 60 + 11);
}
