//! Heap allocations on the hot path, counted by an instrumented global
//! allocator (its own test binary, one test, so nothing else allocates
//! concurrently). Counts, never times.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

mod common;

use std::alloc::System;

use sottovoce::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn chain_message_path_allocates_only_its_output() {
    let (mut rng, mut a, mut b) = common::talking_pair(1);
    // Open Alice's sending chain (the deferred DH step), and warm up.
    b.decrypt(&a.encrypt(&mut rng, b"warm up").unwrap()).unwrap();
    let pt = [7u8; 100];

    let region = Region::new(GLOBAL);
    let m = a.encrypt(&mut rng, &pt).unwrap();
    let encrypt = region.change();
    assert_eq!(encrypt.allocations, 1, "encrypt: only the output message ({encrypt:?})");

    let region = Region::new(GLOBAL);
    let plain = b.decrypt(&m).unwrap();
    let decrypt = region.change();
    assert_eq!(decrypt.allocations, 1, "decrypt: only the plaintext ({decrypt:?})");
    assert_eq!(plain, pt);

    let mut buf = [0u8; 100 + MESSAGE_OVERHEAD];
    let region = Region::new(GLOBAL);
    let n = a.encrypt_into(&mut rng, &pt, &mut buf).unwrap();
    let into = region.change();
    assert_eq!(into.allocations, 0, "encrypt_into allocates nothing ({into:?})");
    assert_eq!(b.decrypt_bytes(&buf[..n]).unwrap(), pt);
}
