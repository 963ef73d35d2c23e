#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! Session records (SPEC.md §4.7): routing, replays, simultaneous
//! initiation, archived sessions, promotion, bounds, persistence.

mod common;

use common::rng;
use rand_chacha::ChaCha20Rng;
use sottovoce::*;

/// One device: its account and its record with the other side.
struct Device {
    account: Account,
    record: SessionRecord,
}

impl Device {
    fn send(&mut self, rng: &mut ChaCha20Rng, text: &[u8]) -> Message {
        self.record.encrypt(rng, text).unwrap()
    }

    fn receive(&mut self, m: &Message) -> Result<Vec<u8>, DecryptError> {
        self.record.decrypt(&mut self.account, m).map(|p| p.to_vec())
    }

    fn initiate(&mut self, rng: &mut ChaCha20Rng, peer: &mut Device) {
        let id = peer.account.generate_one_time_prekeys(rng, 1)[0];
        let bundle = peer.account.prekey_bundle(Some(id)).unwrap();
        self.record.initiate(rng, self.account.identity_key_pair(), &bundle).unwrap();
    }

    /// The saved record: compared to check that a failure changed nothing.
    fn saved(&self) -> Vec<u8> {
        [self.record.to_bytes().to_vec(), self.account.to_bytes().to_vec()].concat()
    }
}

fn devices(seed: u8) -> (ChaCha20Rng, Device, Device) {
    let mut rng = rng(seed);
    let a = Account::new(&mut rng);
    let b = Account::new(&mut rng);
    let (at_a, at_b) = (Address::new(b"alice", DeviceId(1)).unwrap(), Address::new(b"bob", DeviceId(2)).unwrap());
    let ra = SessionRecord::new(at_a.clone(), at_b.clone(), b.identity_key());
    let rb = SessionRecord::new(at_b, at_a, a.identity_key());
    (rng, Device { account: a, record: ra }, Device { account: b, record: rb })
}

#[test]
fn a_record_derives_the_binding_from_both_addresses() {
    let (mut rng, mut alice, mut bob) = devices(1);
    alice.initiate(&mut rng, &mut bob);
    let m = alice.send(&mut rng, b"hi");
    // The same message through a plain session with the derived binding.
    let Message::PreKey(pm) = &m else { panic!() };
    let binding = binding(alice.record.local(), alice.record.remote());
    let mut account = Account::from_bytes(&bob.account.to_bytes()).unwrap();
    assert!(Session::respond(&mut account, pm, &binding).is_ok());
    // A record for another address of the same user computes another
    // binding: the message does not authenticate there.
    let mut wrong = SessionRecord::new(
        Address::new(b"bob", DeviceId(3)).unwrap(),
        alice.record.local().clone(),
        alice.account.identity_key(),
    );
    let before = bob.account.to_bytes().to_vec();
    assert_eq!(wrong.decrypt(&mut bob.account, &m), Err(DecryptError::Authentication));
    assert_eq!(*bob.account.to_bytes(), before, "no prekey burned");
    assert_eq!(bob.receive(&m).unwrap(), b"hi");
}

#[test]
fn a_replayed_first_message_is_duplicate_never_a_new_session() {
    let (mut rng, mut alice, mut bob) = devices(2);
    // Without a one-time prekey, the first message could create a session
    // again and again; the record routes it by its session id.
    let bundle = bob.account.prekey_bundle(None).unwrap();
    alice.record.initiate(&mut rng, alice.account.identity_key_pair(), &bundle).unwrap();
    let first = alice.send(&mut rng, b"first");
    assert_eq!(bob.receive(&first).unwrap(), b"first");
    let id = bob.record.current_id();
    let before = bob.saved();
    assert_eq!(bob.receive(&first), Err(DecryptError::Duplicate));
    assert_eq!(bob.saved(), before);
    assert_eq!(bob.record.current_id(), id);
    assert_eq!(bob.record.archived().count(), 0);
    // The conversation goes on.
    let reply = bob.send(&mut rng, b"reply");
    assert_eq!(alice.receive(&reply).unwrap(), b"reply");
    assert_eq!(bob.receive(&alice.send(&mut rng, b"again")).unwrap(), b"again");
}

#[test]
fn prekey_messages_and_bundles_of_another_identity_are_refused() {
    let (mut rng, mut alice, mut bob) = devices(3);
    let mallory = Account::new(&mut rng);
    let bundle = mallory.prekey_bundle(None).unwrap();
    assert_eq!(
        alice.record.initiate(&mut rng, alice.account.identity_key_pair(), &bundle),
        Err(KeyAgreementError::IdentityMismatch)
    );
    assert!(alice.record.current().is_none());
    // Mallory's own prekey message to Bob's record with Alice.
    let mut from_mallory =
        SessionRecord::new(alice.record.local().clone(), alice.record.remote().clone(), bob.account.identity_key());
    from_mallory.initiate(&mut rng, mallory.identity_key_pair(), &bob.account.prekey_bundle(None).unwrap()).unwrap();
    let m = from_mallory.encrypt(&mut rng, b"I am alice").unwrap();
    let before = bob.saved();
    assert_eq!(bob.receive(&m), Err(DecryptError::StateMismatch));
    assert_eq!(bob.saved(), before);
    assert_eq!(
        SessionRecord::new(alice.record.local().clone(), alice.record.remote().clone(), bob.account.identity_key())
            .encrypt(&mut rng, b"x")
            .unwrap_err(),
        EncryptError::NoSession
    );
}

/// Both sides initiate before either hears from the other; every delivery
/// order of the two first messages ends, after one exchange, on the session
/// with the smaller id, and nothing is lost.
#[test]
fn simultaneous_initiation_converges_on_the_smaller_session_id() {
    for seed in 10..30 {
        for bob_first in [false, true] {
            let (mut rng, mut alice, mut bob) = devices(seed);
            alice.initiate(&mut rng, &mut bob);
            bob.initiate(&mut rng, &mut alice);
            let (sa, sb) = (alice.record.current_id().unwrap(), bob.record.current_id().unwrap());
            let a1 = alice.send(&mut rng, b"a1");
            let b1 = bob.send(&mut rng, b"b1");
            if bob_first {
                assert_eq!(alice.receive(&b1).unwrap(), b"b1");
                assert_eq!(bob.receive(&a1).unwrap(), b"a1");
            } else {
                assert_eq!(bob.receive(&a1).unwrap(), b"a1");
                assert_eq!(alice.receive(&b1).unwrap(), b"b1");
            }
            // Rule 1: each side takes the other's new session, and keeps
            // its own archived for messages in flight.
            assert_eq!(alice.record.current_id(), Some(sb));
            assert_eq!(bob.record.current_id(), Some(sa));
            assert_eq!(alice.record.archived().count(), 1);
            // Rule 2: the first normal messages, crossing, bring both to the
            // smaller id, and nothing is lost.
            let a2 = alice.send(&mut rng, b"a2");
            let b2 = bob.send(&mut rng, b"b2");
            assert_eq!(bob.receive(&a2).unwrap(), b"a2");
            assert_eq!(alice.receive(&b2).unwrap(), b"b2");
            let smaller = if sa.0 < sb.0 { sa } else { sb };
            assert_eq!(alice.record.current_id(), Some(smaller));
            assert_eq!(bob.record.current_id(), Some(smaller));
            for i in 0..3u8 {
                assert_eq!(bob.receive(&alice.send(&mut rng, &[i])).unwrap(), [i]);
                assert_eq!(alice.receive(&bob.send(&mut rng, &[i])).unwrap(), [i]);
            }
            assert_eq!(alice.record.current_id(), Some(smaller));
            assert_eq!(bob.record.current_id(), Some(smaller));
        }
    }
}

/// The race with reordering: Bob's reply on Alice's session overtakes
/// Bob's own first message. Alice first takes Bob's session for a restart,
/// then Bob's next message on the smaller session brings her back.
#[test]
fn a_race_whose_messages_overtake_each_other_still_converges() {
    let mut seen = [false; 2];
    for seed in 30..80 {
        let (mut rng, mut alice, mut bob) = devices(seed);
        alice.initiate(&mut rng, &mut bob);
        bob.initiate(&mut rng, &mut alice);
        let (sa, sb) = (alice.record.current_id().unwrap(), bob.record.current_id().unwrap());
        let b1 = bob.send(&mut rng, b"b1");
        let a1 = alice.send(&mut rng, b"a1");
        assert_eq!(bob.receive(&a1).unwrap(), b"a1");
        let r1 = bob.send(&mut rng, b"r1");
        assert_eq!(alice.receive(&r1).unwrap(), b"r1");
        assert_eq!(alice.receive(&b1).unwrap(), b"b1");
        seen[usize::from(sa.0 < sb.0)] = true;
        // Talk until one round passes without a switch, at most 4 rounds.
        for i in 0..4u8 {
            assert_eq!(bob.receive(&alice.send(&mut rng, &[i])).unwrap(), [i]);
            assert_eq!(alice.receive(&bob.send(&mut rng, &[i])).unwrap(), [i]);
        }
        assert_eq!(alice.record.current_id(), bob.record.current_id(), "seed {seed}");
        let smaller = if sa.0 < sb.0 { sa } else { sb };
        assert_eq!(alice.record.current_id(), Some(smaller));
    }
    assert_eq!(seen, [true, true], "both orders of the ids were exercised");
}

#[test]
fn a_peer_that_starts_over_gets_a_new_current_session_and_old_messages_still_decrypt() {
    let (mut rng, mut alice, mut bob) = devices(4);
    alice.initiate(&mut rng, &mut bob);
    assert_eq!(bob.receive(&alice.send(&mut rng, b"1")).unwrap(), b"1");
    assert_eq!(alice.receive(&bob.send(&mut rng, b"2")).unwrap(), b"2");
    let late = alice.send(&mut rng, b"late");
    let old = alice.record.current_id();
    // Alice loses her session and starts a new one.
    alice.record =
        SessionRecord::new(alice.record.local().clone(), alice.record.remote().clone(), bob.account.identity_key());
    alice.initiate(&mut rng, &mut bob);
    let fresh = alice.send(&mut rng, b"fresh");
    assert_eq!(bob.receive(&fresh).unwrap(), b"fresh");
    assert_eq!(bob.record.current_id(), alice.record.current_id());
    assert_eq!(bob.record.archived().next().map(Session::session_id), old);
    // A message of the old session, overtaken by the new one, still
    // decrypts from the archive (it starts a new chain there), and does not
    // bring the old session back: Alice initiated both, so she gave the
    // older one up.
    assert_eq!(bob.receive(&late).unwrap(), b"late");
    assert_eq!(alice.receive(&bob.send(&mut rng, b"on the new one")).unwrap(), b"on the new one");
}

#[test]
fn failed_decrypts_in_a_two_session_record_change_nothing() {
    let (mut rng, mut alice, mut bob) = devices(5);
    alice.initiate(&mut rng, &mut bob);
    bob.initiate(&mut rng, &mut alice);
    let a1 = alice.send(&mut rng, b"a1");
    let b1 = bob.send(&mut rng, b"b1");
    bob.receive(&a1).unwrap();
    alice.receive(&b1).unwrap();
    // Two sessions on each side now. Tamper with a message of each.
    for m in [alice.send(&mut rng, b"x"), alice.send(&mut rng, b"y")] {
        let mut bytes = m.to_bytes();
        *bytes.last_mut().unwrap() ^= 1;
        let before = bob.saved();
        assert_eq!(bob.record.decrypt_bytes(&mut bob.account, &bytes), Err(DecryptError::Authentication));
        assert_eq!(bob.saved(), before);
        assert_eq!(bob.receive(&m).unwrap().len(), 1);
        assert_eq!(bob.receive(&m), Err(DecryptError::Duplicate));
    }
    // A forged new ratchet key is tried on each session that can take one,
    // and changes nothing.
    let m = bob.send(&mut rng, b"z").to_bytes();
    let mut forged = m.clone();
    forged[1..33].copy_from_slice(&[9u8; 32]);
    let before = alice.saved();
    assert_eq!(alice.record.decrypt_bytes(&mut alice.account, &forged), Err(DecryptError::Authentication));
    assert_eq!(alice.saved(), before);
    assert!(matches!(alice.record.decrypt_bytes(&mut alice.account, &m[..20]), Err(DecryptError::Decode(_))));
}

#[test]
fn the_archive_is_bounded_and_forgotten_sessions_stay_retired() {
    let (mut rng, mut alice, mut bob) = devices(6);
    let bundle = bob.account.prekey_bundle(None).unwrap();
    let mut firsts = Vec::new();
    for i in 0..(MAX_ARCHIVED_SESSIONS + 3) {
        alice.record.initiate(&mut rng, alice.account.identity_key_pair(), &bundle).unwrap();
        let m = alice.send(&mut rng, &[i as u8]);
        assert_eq!(bob.receive(&m).unwrap(), [i as u8]);
        firsts.push(m);
    }
    assert_eq!(bob.record.archived().count(), MAX_ARCHIVED_SESSIONS);
    let saved = bob.record.to_bytes();
    let restored = SessionRecord::from_bytes(&saved).unwrap();
    assert_eq!(*restored.to_bytes(), *saved);
    // The two forgotten sessions' first messages (no one-time prekey, so
    // X3DH would succeed again) are duplicates, not new sessions.
    for m in &firsts[..2] {
        let before = bob.saved();
        assert_eq!(bob.receive(m), Err(DecryptError::Duplicate));
        assert_eq!(bob.saved(), before);
    }
    for m in &firsts[2..] {
        assert_eq!(bob.receive(m), Err(DecryptError::Duplicate));
    }
}

#[test]
fn saved_records_restore_sealed_and_refuse_inconsistency() {
    let (mut rng, mut alice, mut bob) = devices(7);
    alice.initiate(&mut rng, &mut bob);
    bob.initiate(&mut rng, &mut alice);
    bob.receive(&alice.send(&mut rng, b"1")).unwrap();
    let saved = bob.record.to_bytes();
    let key = [1u8; 32];
    let sealed = bob.record.seal(&mut rng, &key);
    assert_eq!(*SessionRecord::unseal(&key, &sealed).unwrap().to_bytes(), *saved);
    assert_eq!(*SessionRecord::from_bytes(&saved).unwrap().to_bytes(), *saved);
    for cut in 0..saved.len() {
        assert!(SessionRecord::from_bytes(&saved[..cut]).is_err());
    }
    let mut trailing = saved.to_vec();
    trailing.push(0);
    assert_eq!(SessionRecord::from_bytes(&trailing).unwrap_err(), DecodeError::TrailingBytes { extra: 1 });
    // A record for another remote identity than its sessions': inconsistent.
    let mut other = saved.to_vec();
    let at = 2 + (1 + 3 + 4) + (1 + 5 + 4);
    other[at..at + 32].copy_from_slice(&bob.account.identity_key().to_bytes());
    assert_eq!(SessionRecord::from_bytes(&other).unwrap_err(), DecodeError::InconsistentState);
}

/// A first session the peer can never open (a server swapped the one-time
/// prekey of the bundle) is given up as soon as the peer's own session
/// arrives: the peer's new session always becomes current (rule 1).
#[test]
fn a_session_the_peer_cannot_open_is_given_up_for_the_peers_new_one() {
    for seed in 40..60 {
        let (mut rng, mut alice, mut bob) = devices(seed);
        let id = bob.account.generate_one_time_prekeys(&mut rng, 1)[0];
        let mut bundle = bob.account.prekey_bundle(Some(id)).unwrap().to_bytes();
        let n = bundle.len();
        bundle[n - 32..].copy_from_slice(&[0x55; 32]);
        let bundle = PreKeyBundle::try_from(bundle.as_slice()).unwrap();
        alice.record.initiate(&mut rng, alice.account.identity_key_pair(), &bundle).unwrap();
        let dead = alice.send(&mut rng, b"never readable");
        assert_eq!(bob.receive(&dead), Err(DecryptError::Authentication));
        assert!(bob.record.current().is_none());
        // Bob, with no session, starts one; Alice takes it whatever the ids.
        bob.initiate(&mut rng, &mut alice);
        assert_eq!(alice.receive(&bob.send(&mut rng, b"hello?")).unwrap(), b"hello?");
        assert_eq!(alice.record.current_id(), bob.record.current_id());
        for i in 0..3u8 {
            assert_eq!(bob.receive(&alice.send(&mut rng, &[i])).unwrap(), [i]);
            assert_eq!(alice.receive(&bob.send(&mut rng, &[i])).unwrap(), [i]);
        }
    }
}
