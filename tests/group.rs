//! Behaviour tests of Sender Keys (SPEC.md §7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

mod common;

use common::rng;
use sottovoce::*;

struct Member {
    id: IdentityKey,
    sender: GroupSender,
}

fn member(rng: &mut rand_chacha::ChaCha20Rng, group: &[u8]) -> Member {
    let id = IdentityKeyPair::generate(rng).public_key();
    Member { id, sender: GroupSender::new(rng, GroupId::new(group).unwrap(), id) }
}

fn receiver_of(m: &Member) -> GroupReceiver {
    GroupReceiver::new(m.id, &m.sender.distribution())
}

fn assert_rejects_unchanged(r: &mut GroupReceiver, bytes: &[u8]) -> DecryptError {
    let before = r.to_bytes();
    let e = r.decrypt_bytes(bytes).expect_err("expected rejection");
    assert_eq!(*before, *r.to_bytes(), "a rejected group message changed the receiver");
    e
}

#[test]
fn messages_decrypt_in_order_and_out_of_order() {
    let mut rng = rng(1);
    let mut alice = member(&mut rng, b"g");
    let mut r = receiver_of(&alice);
    let ms: Vec<_> = (0..6u8).map(|i| alice.sender.encrypt(&[i]).unwrap()).collect();
    for i in [0usize, 2, 1, 5, 3] {
        assert_eq!(r.decrypt(&ms[i]).unwrap(), [i as u8]);
    }
    assert_eq!(r.decrypt(&ms[4]).unwrap(), [4]);
}

#[test]
fn group_overhead_is_89_bytes_and_distribution_size() {
    let mut rng = rng(2);
    let mut alice = member(&mut rng, b"0123456789abcdef");
    for len in [0usize, 100, 1024] {
        let m = alice.sender.encrypt(&vec![1u8; len]).unwrap().to_bytes();
        assert_eq!(m.len() - len, GROUP_MESSAGE_OVERHEAD);
    }
    assert_eq!(GROUP_MESSAGE_OVERHEAD, 89);
    // 1 + 1 + 16 + 4 + 4 + 32 + 32 for a 16-byte group id.
    assert_eq!(alice.sender.distribution().to_bytes().len(), 90);
}

#[test]
fn replay_is_rejected_and_state_unchanged() {
    let mut rng = rng(3);
    let mut alice = member(&mut rng, b"g");
    let mut r = receiver_of(&alice);
    let m0 = alice.sender.encrypt(b"0").unwrap().to_bytes();
    let m1 = alice.sender.encrypt(b"1").unwrap().to_bytes();
    r.decrypt_bytes(&m1).unwrap();
    r.decrypt_bytes(&m0).unwrap();
    assert_eq!(assert_rejects_unchanged(&mut r, &m0), DecryptError::Duplicate);
    assert_eq!(assert_rejects_unchanged(&mut r, &m1), DecryptError::Duplicate);
}

#[test]
fn every_byte_tampered_is_rejected_and_state_unchanged() {
    let mut rng = rng(4);
    let mut alice = member(&mut rng, b"g");
    let mut r = receiver_of(&alice);
    let genuine = alice.sender.encrypt(b"group hello").unwrap().to_bytes();
    for i in 0..genuine.len() {
        for flip in [0x01u8, 0x80] {
            let mut t = genuine.clone();
            t[i] ^= flip;
            assert_rejects_unchanged(&mut r, &t);
        }
    }
    assert_eq!(r.decrypt_bytes(&genuine).unwrap(), b"group hello");
}

#[test]
fn every_byte_of_a_distribution_tampered_is_caught_or_breaks_decryption() {
    let mut rng = rng(5);
    let mut alice = member(&mut rng, b"grp");
    let d = alice.sender.distribution().to_bytes();
    let m = alice.sender.encrypt(b"x").unwrap();
    for i in 0..d.len() {
        let mut t = d.to_vec();
        t[i] ^= 1;
        if let Ok(dist) = SenderKeyDistribution::try_from(t.as_slice()) {
            let mut r = GroupReceiver::new(alice.id, &dist);
            assert!(r.decrypt(&m).is_err(), "tampered distribution byte {i} still decrypts");
        }
    }
}

#[test]
fn signature_by_another_members_key_is_rejected() {
    let mut rng = rng(6);
    let mut alice = member(&mut rng, b"g");
    let mut mallory = member(&mut rng, b"g");
    let mut r = receiver_of(&alice);
    let genuine = alice.sender.encrypt(b"real").unwrap().to_bytes();
    let other = mallory.sender.encrypt(b"fake").unwrap().to_bytes();
    // Mallory's signature on Alice's message.
    let mut t = genuine.clone();
    let n = t.len();
    t[n - 64..].copy_from_slice(&other[other.len() - 64..]);
    assert_eq!(assert_rejects_unchanged(&mut r, &t), DecryptError::Authentication);
    r.decrypt_bytes(&genuine).unwrap();
}

#[test]
fn forged_message_under_a_valid_key_id_from_the_wrong_sender_is_rejected() {
    let mut rng = rng(7);
    let mut alice = member(&mut rng, b"g");
    let mut mallory = member(&mut rng, b"g");
    let mut r = receiver_of(&alice);
    // Mallory builds a message with Alice's key id at Alice's next iteration,
    // under her own keys: correct shape, wrong signer.
    let mut forged = mallory.sender.encrypt(b"transfer all the money").unwrap().to_bytes();
    forged[1..5].copy_from_slice(&alice.sender.key_id().to_be_bytes());
    assert_eq!(assert_rejects_unchanged(&mut r, &forged), DecryptError::Authentication);
    // A receiver of Mallory's key, told the wrong sender identity, fails too:
    // the sender's identity is bound into AD and signature.
    let mut confused = GroupReceiver::new(alice.id, &mallory.sender.distribution());
    let m = mallory.sender.encrypt(b"hi").unwrap();
    assert_eq!(confused.decrypt(&m).unwrap_err(), DecryptError::Authentication);
    let ok = alice.sender.encrypt(b"still fine").unwrap();
    r.decrypt(&ok).unwrap();
}

#[test]
fn message_for_another_group_is_rejected() {
    let mut rng = rng(8);
    let id = IdentityKeyPair::generate(&mut rng).public_key();
    let mut s1 = GroupSender::new(&mut rng, GroupId::new(b"one").unwrap(), id);
    let d1 = s1.distribution();
    // Same keys claimed for group "two": the group id is in AD and signature.
    let mut bytes = d1.to_bytes().to_vec();
    bytes[1] = 3;
    bytes[2..5].copy_from_slice(b"two");
    let d2 = SenderKeyDistribution::try_from(bytes.as_slice()).unwrap();
    let mut r2 = GroupReceiver::new(id, &d2);
    let m = s1.encrypt(b"for one").unwrap();
    assert_eq!(r2.decrypt(&m).unwrap_err(), DecryptError::Authentication);
    let mut r1 = GroupReceiver::new(id, &d1);
    assert_eq!(r1.add_distribution(id, &d2).unwrap_err(), DecryptError::StateMismatch);
}

#[test]
fn skip_exactly_at_the_bound_decrypts_and_one_past_is_rejected() {
    let mut rng = rng(9);
    let mut alice = member(&mut rng, b"g");
    let mut r = receiver_of(&alice);
    let ms: Vec<_> = (0..=MAX_GROUP_SKIP + 1).map(|_| alice.sender.encrypt(b"m").unwrap().to_bytes()).collect();
    let e = assert_rejects_unchanged(&mut r, &ms[(MAX_GROUP_SKIP + 1) as usize]);
    assert_eq!(e, DecryptError::SkipLimit { got: MAX_GROUP_SKIP + 1, max: MAX_GROUP_SKIP });
    r.decrypt_bytes(&ms[MAX_GROUP_SKIP as usize]).unwrap();
    r.decrypt_bytes(&ms[0]).unwrap();
    r.decrypt_bytes(&ms[(MAX_GROUP_SKIP + 1) as usize]).unwrap();
}

#[test]
fn skipped_keys_are_bounded_per_sender_key() {
    let mut rng = rng(10);
    let mut alice = member(&mut rng, b"g");
    let mut r = receiver_of(&alice);
    let per = MAX_GROUP_SKIP as usize;
    let mut all = Vec::new();
    for _ in 0..2 {
        let ms: Vec<_> = (0..=per).map(|_| alice.sender.encrypt(b"m").unwrap().to_bytes()).collect();
        r.decrypt_bytes(ms.last().unwrap()).unwrap();
        all.extend(ms);
    }
    // 2 * MAX_GROUP_SKIP were skipped; only the newest MAX_GROUP_SKIPPED_KEYS kept.
    assert_eq!(assert_rejects_unchanged(&mut r, &all[0]), DecryptError::Duplicate);
    r.decrypt_bytes(&all[all.len() - 2]).unwrap();
}

#[test]
fn late_joiner_cannot_read_earlier_messages() {
    let mut rng = rng(11);
    let mut alice = member(&mut rng, b"g");
    let early: Vec<_> = (0..3).map(|_| alice.sender.encrypt(b"before").unwrap()).collect();
    let d = alice.sender.distribution();
    assert_eq!(d.iteration(), 3);
    let mut late = GroupReceiver::new(alice.id, &d);
    for m in &early {
        assert_eq!(late.decrypt(m).unwrap_err(), DecryptError::Duplicate);
    }
    let m = alice.sender.encrypt(b"after").unwrap();
    assert_eq!(late.decrypt(&m).unwrap(), b"after");
}

#[test]
fn forget_below_deletes_old_keys() {
    let mut rng = rng(12);
    let mut alice = member(&mut rng, b"g");
    let mut r = receiver_of(&alice);
    let ms: Vec<_> = (0..10).map(|_| alice.sender.encrypt(b"m").unwrap()).collect();
    r.decrypt(&ms[9]).unwrap(); // 0..9 skipped
    let id = alice.sender.key_id();
    r.forget_below(id, 5).unwrap();
    for m in &ms[..5] {
        assert_eq!(r.decrypt(m).unwrap_err(), DecryptError::Duplicate);
    }
    for m in &ms[5..9] {
        r.decrypt(m).unwrap();
    }
    // Forgetting ahead of the chain advances it, within the bound.
    let next: Vec<_> = (0..3).map(|_| alice.sender.encrypt(b"n").unwrap()).collect();
    r.forget_below(id, 12).unwrap();
    assert_eq!(r.decrypt(&next[1]).unwrap_err(), DecryptError::Duplicate);
    r.decrypt(&next[2]).unwrap();
    assert_eq!(
        r.forget_below(id, 13 + MAX_GROUP_SKIP + 1).unwrap_err(),
        DecryptError::SkipLimit { got: MAX_GROUP_SKIP + 1, max: MAX_GROUP_SKIP }
    );
}

#[test]
fn rotation_locks_out_the_removed_member_and_keeps_in_flight_messages() {
    let mut rng = rng(13);
    let mut alice = member(&mut rng, b"g");
    let mut bob_view = receiver_of(&alice);
    let mut carol_view = receiver_of(&alice);
    let in_flight = alice.sender.encrypt(b"before rotation").unwrap();
    // Carol leaves: Alice rotates and tells only Bob.
    let old_id = alice.sender.key_id();
    let d = alice.sender.rotate(&mut rng);
    assert_ne!(d.key_id(), old_id);
    assert_eq!(d.iteration(), 0);
    bob_view.add_distribution(alice.id, &d).unwrap();
    let after = alice.sender.encrypt(b"after rotation").unwrap();
    assert_eq!(bob_view.decrypt(&after).unwrap(), b"after rotation");
    assert_eq!(bob_view.decrypt(&in_flight).unwrap(), b"before rotation");
    assert_eq!(carol_view.decrypt(&after).unwrap_err(), DecryptError::NoSenderKey);
    assert_eq!(carol_view.decrypt(&after).unwrap_err().category(), ErrorCategory::StateMismatch);
}

#[test]
fn receivers_keep_a_bounded_number_of_sender_keys() {
    let mut rng = rng(14);
    let mut alice = member(&mut rng, b"g");
    let mut r = receiver_of(&alice);
    let mut per_key = vec![alice.sender.encrypt(b"k0").unwrap()];
    for _ in 0..MAX_SENDER_KEY_STATES {
        let d = alice.sender.rotate(&mut rng);
        r.add_distribution(alice.id, &d).unwrap();
        per_key.push(alice.sender.encrypt(b"k").unwrap());
    }
    assert_eq!(r.key_ids().len(), MAX_SENDER_KEY_STATES);
    assert_eq!(r.decrypt(&per_key[0]).unwrap_err(), DecryptError::NoSenderKey);
    for m in &per_key[1..] {
        r.decrypt(m).unwrap();
    }
    // Re-adding a held key id is a no-op; with another signing key an error.
    let d = alice.sender.distribution();
    r.add_distribution(alice.id, &d).unwrap();
    assert_eq!(r.key_ids().len(), MAX_SENDER_KEY_STATES);
    // Only the sender itself may add keys: a distribution that arrives over
    // another member's session is refused, and nothing changes.
    let mallory = IdentityKeyPair::generate(&mut rng).public_key();
    let d = alice.sender.rotate(&mut rng);
    let before = r.to_bytes();
    assert_eq!(r.add_distribution(mallory, &d).unwrap_err(), DecryptError::StateMismatch);
    assert_eq!(*before, *r.to_bytes());
}

#[test]
fn receivers_and_senders_save_restore_and_seal() {
    let mut rng = rng(15);
    let mut alice = member(&mut rng, b"g");
    let mut r = receiver_of(&alice);
    let ms: Vec<_> = (0..5).map(|_| alice.sender.encrypt(b"m").unwrap()).collect();
    r.decrypt(&ms[4]).unwrap();
    let saved = r.to_bytes();
    let mut r2 = GroupReceiver::from_bytes(&saved).unwrap();
    assert_eq!(*r2.to_bytes(), *saved);
    r2.decrypt(&ms[2]).unwrap();
    for cut in 0..saved.len() {
        assert!(GroupReceiver::from_bytes(&saved[..cut]).is_err());
    }
    let s = alice.sender.to_bytes();
    let mut restored = GroupSender::from_bytes(&s).unwrap();
    assert_eq!(*restored.to_bytes(), *s);
    let next = restored.encrypt(b"from restored").unwrap();
    assert_eq!(r2.decrypt(&next).unwrap(), b"from restored");
    for cut in 0..s.len() {
        assert!(GroupSender::from_bytes(&s[..cut]).is_err());
    }
    let key = [3u8; 32];
    let sealed = r2.seal(&mut rng, &key);
    assert_eq!(*GroupReceiver::unseal(&key, &sealed).unwrap().to_bytes(), *r2.to_bytes());
    assert_eq!(GroupReceiver::unseal(&[4u8; 32], &sealed).unwrap_err(), RestoreError::Authentication);
    let sealed = restored.seal(&mut rng, &key);
    assert_eq!(*GroupSender::unseal(&key, &sealed).unwrap().to_bytes(), *restored.to_bytes());
}

#[test]
fn distribution_fans_out_over_session_records_as_envelopes() {
    let mut rng = rng(16);
    let me = Account::new(&mut rng);
    let my_address = Address::new(b"me", DeviceId(1)).unwrap();
    let mut peers = Vec::new();
    let mut records = Vec::new();
    for i in 0..5u32 {
        let peer = Account::new(&mut rng);
        let address = Address::new(b"peer", DeviceId(i)).unwrap();
        let mut record = SessionRecord::new(my_address.clone(), address.clone(), peer.identity_key());
        record.initiate(&mut rng, me.identity_key_pair(), &peer.prekey_bundle(None).unwrap()).unwrap();
        records.push(record);
        peers.push((peer, SessionRecord::new(address, my_address.clone(), me.identity_key())));
    }
    let mut sender = GroupSender::new(&mut rng, GroupId::new(b"g").unwrap(), me.identity_key());
    let out = distribute(&mut rng, &sender.distribution(), records.iter_mut());
    let gm = sender.encrypt(b"to all").unwrap();
    for ((peer, record), msg) in peers.iter_mut().zip(out) {
        let plaintext = record.decrypt(peer, &msg.unwrap()).unwrap();
        assert_eq!(plaintext[..2], [0x1e, 0x02], "a distribution envelope");
        let Envelope::Distribution(d) = Envelope::try_from(plaintext.as_slice()).unwrap() else { panic!() };
        assert_eq!(d.to_bytes()[..], plaintext[2..]);
        let mut r = GroupReceiver::new(record.remote_identity(), &d);
        assert_eq!(r.decrypt(&gm).unwrap(), b"to all");
    }
}

#[test]
fn decoders_reject_malformed_group_bytes() {
    let mut rng = rng(17);
    let mut alice = member(&mut rng, b"g");
    let m = alice.sender.encrypt(b"x").unwrap().to_bytes();
    for cut in 0..m.len() {
        // Shorter than header + tag + signature: truncated. Longer prefixes
        // decode but cannot authenticate.
        if cut < GROUP_MESSAGE_OVERHEAD {
            assert!(GroupMessage::try_from(&m[..cut]).is_err());
        }
    }
    let d = alice.sender.distribution().to_bytes();
    for cut in 0..d.len() {
        assert!(SenderKeyDistribution::try_from(&d[..cut]).is_err());
    }
    let mut long = d.to_vec();
    long.push(0);
    assert_eq!(SenderKeyDistribution::try_from(long.as_slice()).unwrap_err(), DecodeError::TrailingBytes { extra: 1 });
    let mut zero_len = d.to_vec();
    zero_len[1] = 0;
    assert!(matches!(
        SenderKeyDistribution::try_from(zero_len.as_slice()),
        Err(DecodeError::InvalidField { offset: 1 })
    ));
    let mut v = m.clone();
    v[0] = 0x25;
    assert_eq!(GroupMessage::try_from(v.as_slice()).unwrap_err(), DecodeError::UnknownVersion(0x25));
    assert!(GroupId::new(&[0u8; MAX_GROUP_ID_LEN]).is_ok());
    assert!(GroupId::new(&[0u8; MAX_GROUP_ID_LEN + 1]).is_err());
}

#[test]
fn group_debug_output_hides_keys() {
    let mut rng = rng(18);
    let alice = member(&mut rng, b"g");
    let d = alice.sender.distribution();
    let bytes = d.to_bytes();
    let ck_hex = hex::encode(&bytes[11..43]);
    for text in [format!("{:?}", alice.sender), format!("{d:?}"), format!("{:?}", receiver_of(&alice))] {
        assert!(!text.contains(&ck_hex));
        assert!(!text.contains(&format!("{:?}", &bytes[11..19]).trim_matches(|c| c == '[' || c == ']').to_string()));
    }
}

#[test]
fn forget_below_is_per_key_id_and_spares_a_rotations_new_key() {
    let mut rng = rng(40);
    let mut alice = member(&mut rng, b"g");
    let mut r = receiver_of(&alice);
    let old_id = alice.sender.key_id();
    let old: Vec<_> = (0..3).map(|_| alice.sender.encrypt(b"old").unwrap()).collect();
    r.decrypt(&old[2]).unwrap();
    let d = alice.sender.rotate(&mut rng);
    r.add_distribution(alice.id, &d).unwrap();
    let new: Vec<_> = (0..3).map(|_| alice.sender.encrypt(b"new").unwrap()).collect();
    // Revision 1 applied this to every key id and burned new[0..2].
    r.forget_below(old_id, 3).unwrap();
    assert_eq!(r.decrypt(&old[0]).unwrap_err(), DecryptError::Duplicate);
    for m in &new {
        assert_eq!(r.decrypt(m).unwrap(), b"new");
    }
    assert_eq!(r.forget_below(old_id ^ d.key_id() ^ 1, 0).unwrap_err(), DecryptError::StateMismatch);
}

#[test]
fn restore_refuses_a_receiver_that_could_decrypt_a_message_twice() {
    let mut rng = rng(41);
    let mut alice = member(&mut rng, b"g");
    let mut r = receiver_of(&alice);
    let skipped = alice.sender.encrypt(b"skipped").unwrap();
    r.decrypt(&alice.sender.encrypt(b"ahead").unwrap()).unwrap();
    let saved = r.to_bytes().to_vec();
    // Layout (SPEC.md §11.3): ... | next iteration (u32) | u16 count | { iteration | MK }.
    let n = saved.len();
    let entry = saved[n - 36..].to_vec();
    let mut twice = saved[..n - 38].to_vec();
    twice.extend_from_slice(&2u16.to_be_bytes());
    twice.extend_from_slice(&entry);
    twice.extend_from_slice(&entry);
    assert_eq!(GroupReceiver::from_bytes(&twice).unwrap_err(), DecodeError::InconsistentState);
    let mut at_next = saved.clone();
    at_next[n - 36..n - 32].copy_from_slice(&2u32.to_be_bytes());
    assert_eq!(GroupReceiver::from_bytes(&at_next).unwrap_err(), DecodeError::InconsistentState);
    let mut r = GroupReceiver::from_bytes(&saved).unwrap();
    assert_eq!(r.decrypt(&skipped).unwrap(), b"skipped");
    assert_eq!(r.decrypt(&skipped).unwrap_err(), DecryptError::Duplicate);
}

#[path = "../examples/support/salamander.rs"]
mod salamander;

#[test]
fn an_equivocating_sender_cannot_make_one_message_mean_two_things() {
    // Alice hands Bob and Carol different chain keys under one key id and
    // one signing key, then sends one AES-GCM ciphertext that authenticates
    // under both derived keys. The signature commits to one message key.
    let mut rng = rng(42);
    let alice = member(&mut rng, b"eq");
    let d = alice.sender.distribution().to_bytes().to_vec();
    let ck_bob: [u8; 32] = d[2 + 2 + 8..2 + 2 + 8 + 32].try_into().unwrap();
    let mut dc = d.clone();
    dc[12..44].copy_from_slice(&[0x5a; 32]);
    let mut bob = GroupReceiver::new(alice.id, &SenderKeyDistribution::try_from(d.as_slice()).unwrap());
    let mut carol = GroupReceiver::new(alice.id, &SenderKeyDistribution::try_from(dc.as_slice()).unwrap());
    let mk = |ck: &[u8; 32]| hazmat::kdf_ck(ck).0;
    let (mk_bob, mk_carol) = (mk(&ck_bob), mk(&[0x5a; 32]));
    let (k1, n1) = hazmat::expand_group_message_key(&mk_bob);
    let (k2, n2) = hazmat::expand_group_message_key(&mk_carol);
    let mut header = vec![0x15];
    header.extend(alice.sender.key_id().to_be_bytes());
    header.extend(0u32.to_be_bytes());
    let ad = [&[2u8][..], b"eq", &alice.id.to_bytes(), &header].concat();
    let ct = salamander::two_key_ciphertext(&k1, &n1, &k2, &n2, &ad, b"two meanings", 2);
    let body = [&header[..], &ct[..]].concat();
    let seed: [u8; 32] = alice.sender.to_bytes()[alice.sender.to_bytes().len() - 32..].try_into().unwrap();
    let sign = |mk: &[u8; 32]| {
        use ed25519_dalek::Signer;
        let input = [
            labels::GROUP_SIGNATURE_CONTEXT,
            &[2u8],
            b"eq",
            &alice.id.to_bytes(),
            &hazmat::group_commitment(mk),
            &body,
        ]
        .concat();
        [&body[..], &ed25519_dalek::SigningKey::from_bytes(&seed).sign(&input).to_bytes()[..]].concat()
    };
    let for_bob = sign(&mk_bob);
    assert_eq!(carol.decrypt_bytes(&for_bob).unwrap_err(), DecryptError::Authentication);
    let bobs = bob.decrypt_bytes(&for_bob).unwrap();
    let for_carol = sign(&mk_carol);
    let carols = carol.decrypt_bytes(&for_carol).unwrap();
    // Without the commitment both would have accepted one message; here each
    // accepted only the message signed for its own key.
    assert_ne!(bobs, carols);
}
