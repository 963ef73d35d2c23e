//! The `serde` feature: snapshots round-trip through a serde format, and
//! hostile serialized input is refused, never trusted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

mod common;

use sottovoce::*;

#[test]
fn session_snapshot_round_trips_through_json() {
    let (mut rng, mut a, mut b) = common::talking_pair(1);
    let lost = a.encrypt(&mut rng, b"lost for now").unwrap();
    b.decrypt(&a.encrypt(&mut rng, b"next").unwrap()).unwrap();
    let json = serde_json::to_string(&b.snapshot()).unwrap();
    let snapshot: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(snapshot.as_bytes(), b.snapshot().as_bytes());
    let mut restored = Session::restore(&snapshot).unwrap();
    assert_eq!(restored.decrypt(&lost).unwrap(), b"lost for now");
    assert!(!format!("{snapshot:?}").contains(&hex::encode(&snapshot.as_bytes()[2..34])));
}

#[test]
fn group_snapshots_round_trip() {
    let mut rng = common::rng(2);
    let id = IdentityKeyPair::generate(&mut rng).public_key();
    let mut s = GroupSender::new(&mut rng, GroupId::new(b"g").unwrap(), id);
    let r = GroupReceiver::new(id, &s.distribution());
    let s2: Snapshot = serde_json::from_str(&serde_json::to_string(&s.snapshot()).unwrap()).unwrap();
    let r2: Snapshot = serde_json::from_str(&serde_json::to_string(&r.snapshot()).unwrap()).unwrap();
    let mut s2 = GroupSender::restore(&s2).unwrap();
    let mut r2 = GroupReceiver::restore(&r2).unwrap();
    assert_eq!(r2.decrypt(&s2.encrypt(b"hi").unwrap()).unwrap(), b"hi");
    let _ = s.encrypt(b"x").unwrap();
}

#[test]
fn hostile_serialized_snapshots_are_refused() {
    // Anything that deserializes as bytes is only bytes until restored:
    // a JSON string, garbage bytes; an oversized array is refused outright.
    let text: Snapshot = serde_json::from_str("\"nope\"").unwrap();
    assert!(Session::restore(&text).is_err());
    assert!(serde_json::from_str::<Snapshot>("{}").is_err());
    let garbage: Snapshot = serde_json::from_str("[22, 1, 2, 3]").unwrap();
    assert!(Session::restore(&garbage).is_err());
    // One byte past the bound (4 MiB) is refused; at the bound it reads,
    // and it serializes again; past it, serializing is refused too.
    let at = format!("[{}0]", "0,".repeat((4 << 20) - 1));
    let ok: Snapshot = serde_json::from_str(&at).unwrap();
    assert_eq!(ok.as_bytes().len(), 4 << 20);
    assert!(serde_json::to_string(&ok).is_ok());
    let huge = format!("[{}0]", "0,".repeat(4 << 20));
    assert!(serde_json::from_str::<Snapshot>(&huge).is_err());
    let too_big = Snapshot::from_bytes(&vec![0u8; (4 << 20) + 1]);
    assert!(serde_json::to_string(&too_big).is_err());
}
