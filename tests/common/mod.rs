#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]
//! Shared helpers for the integration tests.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sottovoce::{Account, Message, Session};

pub fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// Alice and Bob with an established session (Alice's first message
/// delivered, Bob has not replied yet).
pub fn pair(seed: u8) -> (ChaCha20Rng, Session, Session) {
    let mut rng = rng(seed);
    let alice = Account::new_classical(&mut rng);
    let mut bob = Account::new_classical(&mut rng);
    let opk = bob.generate_one_time_prekeys(&mut rng, 1)[0];
    let bundle = bob.prekey_bundle(Some(opk)).unwrap();
    let mut a = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"alice|bob").unwrap();
    let Message::PreKey(m) = a.encrypt(&mut rng, b"hello").unwrap() else { panic!("expected prekey message") };
    let inbound = Session::respond(&mut bob, &m, b"alice|bob").unwrap();
    assert_eq!(inbound.plaintext, b"hello");
    (rng, a, inbound.session)
}

/// A pair where Bob has replied once, so Alice sends normal messages.
pub fn talking_pair(seed: u8) -> (ChaCha20Rng, Session, Session) {
    let (mut rng, mut a, mut b) = pair(seed);
    let r = b.encrypt(&mut rng, b"reply").unwrap();
    assert_eq!(a.decrypt(&r).unwrap(), b"reply");
    (rng, a, b)
}

/// Asserts that `f` fails on `s` and leaves its saved state byte-identical.
pub fn assert_rejects_unchanged<E: core::fmt::Debug>(
    s: &mut Session,
    f: impl FnOnce(&mut Session) -> Result<Vec<u8>, E>,
) -> E {
    let before = s.to_bytes();
    let err = f(s).expect_err("expected an error");
    assert_eq!(*before, *s.to_bytes(), "a rejected message changed the session");
    err
}
