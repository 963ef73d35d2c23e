//! Property tests over random delivery schedules (SPEC.md §5.6, §7.4):
//! reorder, drop, duplicate, tamper, save-and-restore, both directions, many
//! ratchet steps; and several group senders with rotations.
//!
//! Invariants: every genuine message decrypts exactly once, to what was
//! sent, unless a documented bound made it undecryptable (its receiving
//! chain or sender key was evicted), which the model predicts exactly;
//! every tampered or replayed message is rejected; a rejection never
//! changes the state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

mod common;

// The delivery model (`Known`) is the one the `conversation` fuzz target uses.
#[path = "support/checks.rs"]
mod checks;

use checks::Known;

use proptest::prelude::*;
use sottovoce::*;

#[derive(Clone, Debug)]
enum Op {
    /// Party `0` (Alice) or `1` (Bob) sends a message.
    Send(u8),
    /// Deliver the in-flight message picked by the index (mod count).
    Deliver(u8, usize),
    /// Deliver the newest in-flight message.
    DeliverNewest(u8),
    /// Deliver an already delivered message again.
    Replay(u8, usize),
    /// Deliver a copy with one byte changed.
    Tamper(u8, usize, usize, u8),
    /// Save and restore a party.
    SaveRestore(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..2).prop_map(Op::Send),
        4 => (0u8..2, any::<usize>()).prop_map(|(d, i)| Op::Deliver(d, i)),
        1 => (0u8..2).prop_map(Op::DeliverNewest),
        1 => (0u8..2, any::<usize>()).prop_map(|(d, i)| Op::Replay(d, i)),
        1 => (0u8..2, any::<usize>(), any::<usize>(), 1u8..=255).prop_map(|(d, i, p, x)| Op::Tamper(d, i, p, x)),
        1 => (0u8..2).prop_map(Op::SaveRestore),
    ]
}

struct Sent {
    previous: u32,
    counter: u32,
    bytes: Vec<u8>,
    plaintext: Vec<u8>,
    ratchet_key: [u8; 32],
    delivered: bool,
}

fn reject_unchanged(s: &mut Session, bytes: &[u8]) {
    let before = s.to_bytes();
    assert!(s.decrypt_bytes(bytes).is_err(), "accepted a message that must be rejected");
    assert_eq!(*before, *s.to_bytes(), "rejection changed the session");
}

/// Counts of genuine first deliveries: decrypted, and lost to a bound.
#[derive(Default, Debug)]
struct Stats {
    decrypted: usize,
    lost_to_bound: usize,
}

fn deliver(s: &mut Session, known: &mut Known, m: &mut Sent, stats: &mut Stats) {
    if known.decryptable(&m.ratchet_key, m.counter) {
        assert_eq!(s.decrypt_bytes(&m.bytes).expect("genuine message must decrypt"), m.plaintext);
        known.learn(m.ratchet_key, m.previous, m.counter);
        m.delivered = true;
        stats.decrypted += 1;
    } else {
        reject_unchanged(s, &m.bytes);
        stats.lost_to_bound += 1;
    }
}

fn run_session_schedule(seed: u8, ops: Vec<Op>) -> Stats {
    let mut stats = Stats::default();
    let mut rng = common::rng(seed);
    let alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    let bundle = bob.prekey_bundle(None).unwrap();
    let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    let Message::PreKey(first) = a.encrypt(&mut rng, b"first").unwrap() else { panic!() };
    let b = Session::respond(&mut bob, &first, b"").unwrap().session;
    let mut parties = [a, b];
    // flights[d]: messages sent by party d.
    let mut flights: [Vec<Sent>; 2] = [Vec::new(), Vec::new()];
    let mut known: [Known; 2] = [Known::default(), Known::default()];
    // Bob already decrypted Alice's first message (her first chain).
    known[1].learn(first.message().ratchet_key(), 0, 0);
    let mut counter = 0u32;
    for op in ops {
        match op {
            Op::Send(d) => {
                let d = usize::from(d);
                counter += 1;
                let plaintext = counter.to_be_bytes().to_vec();
                let m = parties[d].encrypt(&mut rng, &plaintext).unwrap();
                let n = match &m {
                    Message::Normal(n) => n,
                    Message::PreKey(p) => p.message(),
                };
                let (ratchet_key, previous, counter) = (n.ratchet_key(), n.previous_counter(), n.counter());
                flights[d].push(Sent {
                    previous,
                    counter,
                    bytes: m.to_bytes(),
                    plaintext,
                    ratchet_key,
                    delivered: false,
                });
            }
            Op::Deliver(_, _) | Op::DeliverNewest(_) => {
                let (d, i) = match op {
                    Op::Deliver(d, i) => (usize::from(d), Some(i)),
                    Op::DeliverNewest(d) => (usize::from(d), None),
                    _ => unreachable!(),
                };
                let pending: Vec<usize> = (0..flights[d].len()).filter(|&j| !flights[d][j].delivered).collect();
                if pending.is_empty() {
                    continue;
                }
                let j = match i {
                    Some(i) => pending[i % pending.len()],
                    None => pending[pending.len() - 1],
                };
                let (left, right) = parties.split_at_mut(1);
                let receiver = if d == 0 { &mut right[0] } else { &mut left[0] };
                deliver(receiver, &mut known[1 - d], &mut flights[d][j], &mut stats);
            }
            Op::Replay(d, i) => {
                let d = usize::from(d);
                let done: Vec<usize> = (0..flights[d].len()).filter(|&j| flights[d][j].delivered).collect();
                if done.is_empty() {
                    continue;
                }
                let j = done[i % done.len()];
                reject_unchanged(&mut parties[1 - d], &flights[d][j].bytes.clone());
            }
            Op::Tamper(d, i, p, x) => {
                let d = usize::from(d);
                if flights[d].is_empty() {
                    continue;
                }
                let mut t = flights[d][i % flights[d].len()].bytes.clone();
                let p = p % t.len();
                t[p] ^= x;
                reject_unchanged(&mut parties[1 - d], &t);
            }
            Op::SaveRestore(d) => {
                let d = usize::from(d);
                let saved = parties[d].to_bytes();
                parties[d] = Session::from_bytes(&saved).unwrap();
                assert_eq!(*parties[d].to_bytes(), *saved);
            }
        }
    }
    // Finally deliver everything still in flight, in order.
    for d in 0..2 {
        for j in 0..flights[d].len() {
            if !flights[d][j].delivered {
                let (left, right) = parties.split_at_mut(1);
                let receiver = if d == 0 { &mut right[0] } else { &mut left[0] };
                deliver(receiver, &mut known[1 - d], &mut flights[d][j], &mut stats);
            }
        }
    }
    stats
}

// ------------------------------------------------------------------ groups

#[derive(Clone, Debug)]
enum GroupOp {
    Send(usize),
    Deliver(usize),
    Replay(usize),
    Tamper(usize, usize, u8),
    Rotate(usize),
    SaveRestore(usize),
}

fn group_op() -> impl Strategy<Value = GroupOp> {
    prop_oneof![
        4 => (0usize..3).prop_map(GroupOp::Send),
        4 => any::<usize>().prop_map(GroupOp::Deliver),
        1 => any::<usize>().prop_map(GroupOp::Replay),
        1 => (any::<usize>(), any::<usize>(), 1u8..=255).prop_map(|(i, p, x)| GroupOp::Tamper(i, p, x)),
        1 => (0usize..3).prop_map(GroupOp::Rotate),
        1 => (0usize..3).prop_map(GroupOp::SaveRestore),
    ]
}

struct GroupSent {
    sender: usize,
    bytes: Vec<u8>,
    plaintext: Vec<u8>,
    key_id: u32,
    delivered: bool,
}

fn group_reject_unchanged(r: &mut GroupReceiver, bytes: &[u8]) {
    let before = r.to_bytes();
    assert!(r.decrypt_bytes(bytes).is_err(), "accepted a group message that must be rejected");
    assert_eq!(*before, *r.to_bytes());
}

fn group_deliver(r: &mut GroupReceiver, key_ids: &[u32], m: &mut GroupSent) {
    // Decryptable iff its key id is among the newest MAX_SENDER_KEY_STATES.
    let p = key_ids.iter().rposition(|k| *k == m.key_id).unwrap();
    if key_ids.len() - p <= MAX_SENDER_KEY_STATES {
        assert_eq!(r.decrypt_bytes(&m.bytes).expect("genuine group message must decrypt"), m.plaintext);
        m.delivered = true;
    } else {
        group_reject_unchanged(r, &m.bytes);
    }
}

fn run_group_schedule(seed: u8, ops: Vec<GroupOp>) {
    let mut rng = common::rng(seed);
    let group = GroupId::new(b"proptest group").unwrap();
    let ids: Vec<IdentityKey> = (0..3).map(|_| IdentityKeyPair::generate(&mut rng).public_key()).collect();
    let mut senders: Vec<GroupSender> = ids.iter().map(|id| GroupSender::new(&mut rng, group.clone(), *id)).collect();
    // One receiver (a fourth member) holding a GroupReceiver per sender.
    let mut receivers: Vec<GroupReceiver> =
        senders.iter().zip(&ids).map(|(s, id)| GroupReceiver::new(*id, &s.distribution())).collect();
    let mut key_history: Vec<Vec<u32>> = senders.iter().map(|s| vec![s.key_id()]).collect();
    let mut flight: Vec<GroupSent> = Vec::new();
    let mut counter = 0u32;
    for op in ops {
        match op {
            GroupOp::Send(s) => {
                counter += 1;
                let plaintext = counter.to_be_bytes().to_vec();
                let m = senders[s].encrypt(&plaintext).unwrap();
                flight.push(GroupSent {
                    sender: s,
                    key_id: m.key_id(),
                    bytes: m.into_bytes(),
                    plaintext,
                    delivered: false,
                });
            }
            GroupOp::Deliver(i) => {
                let pending: Vec<usize> = (0..flight.len()).filter(|&j| !flight[j].delivered).collect();
                if pending.is_empty() {
                    continue;
                }
                let m = &mut flight[pending[i % pending.len()]];
                group_deliver(&mut receivers[m.sender], &key_history[m.sender], m);
            }
            GroupOp::Replay(i) => {
                let done: Vec<usize> = (0..flight.len()).filter(|&j| flight[j].delivered).collect();
                if done.is_empty() {
                    continue;
                }
                let m = &flight[done[i % done.len()]];
                group_reject_unchanged(&mut receivers[m.sender], &m.bytes);
            }
            GroupOp::Tamper(i, p, x) => {
                if flight.is_empty() {
                    continue;
                }
                let m = &flight[i % flight.len()];
                let mut t = m.bytes.clone();
                let p = p % t.len();
                t[p] ^= x;
                // Any receiver must reject it; try the right one.
                group_reject_unchanged(&mut receivers[m.sender], &t);
            }
            GroupOp::Rotate(s) => {
                let d = senders[s].rotate(&mut rng);
                receivers[s].add_distribution(ids[s], &d).unwrap();
                key_history[s].push(d.key_id());
            }
            GroupOp::SaveRestore(s) => {
                let saved = receivers[s].to_bytes();
                receivers[s] = GroupReceiver::from_bytes(&saved).unwrap();
                let saved = senders[s].to_bytes();
                senders[s] = GroupSender::from_bytes(&saved).unwrap();
            }
        }
    }
    for m in flight.iter_mut().filter(|m| !m.delivered) {
        let s = m.sender;
        group_deliver(&mut receivers[s], &key_history[s], m);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_session_delivery_schedule_keeps_the_invariants(seed in any::<u8>(), ops in prop::collection::vec(op(), 0..120)) {
        let _ = run_session_schedule(seed, ops);
    }

    #[test]
    fn any_group_interleaving_keeps_the_invariants(seed in any::<u8>(), ops in prop::collection::vec(group_op(), 0..120)) {
        run_group_schedule(seed, ops);
    }
}

#[test]
fn skipped_keys_outlive_their_deleted_chains() {
    // Each round the older of two messages is skipped over; its key is
    // stored, so it decrypts at the end even though its chain is gone.
    let mut ops = Vec::new();
    for _ in 0..20 {
        ops.extend([Op::Send(0), Op::Send(0), Op::DeliverNewest(0), Op::Send(1), Op::DeliverNewest(1)]);
    }
    let stats = run_session_schedule(78, ops);
    assert_eq!(stats.lost_to_bound, 0, "{stats:?}");
    assert_eq!(stats.decrypted, 60, "{stats:?}");
}

#[test]
fn delayed_messages_of_long_closed_chains_still_decrypt() {
    // Many DH ratchet steps; each round the last message of a chain is held
    // back and never skipped over within its chain. Revision 1 kept only the
    // newest five receiving chains and lost 15 of these 20; with PN the
    // receiver stores each one's key when the next chain closes the old one,
    // so all 20 decrypt at the end, twenty ratchet steps later.
    let mut ops = Vec::new();
    for _ in 0..20 {
        ops.extend([Op::Send(0), Op::DeliverNewest(0), Op::Send(0), Op::Send(1), Op::DeliverNewest(1)]);
    }
    let stats = run_session_schedule(77, ops);
    assert_eq!(stats.lost_to_bound, 0, "{stats:?}");
    assert_eq!(stats.decrypted, 20 + 20 + 20, "{stats:?}");
}
