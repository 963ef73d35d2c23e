//! Session setup next to its floor, measured interleaved: `cargo bench
//! --bench handshake`.
//!
//! On a shared VM the speed of the machine drifts over seconds, so two
//! criterion benchmarks run one after the other can differ by 30 % on the
//! same code. Here each round runs the operation and its floor back to back
//! (in alternating order), thousands of times, and the ratio of the two
//! medians is reported: drift then affects both alike.
//!
//! Floors (the primitive calls an operation cannot avoid, same crates):
//! - X3DH initiate: one strict Ed25519 verify (the signed prekey), two
//!   X25519 key generations (EK_A, the first ratchet key), DH1..DH3 (+ DH4)
//!   and the first ratchet DH;
//! - PQXDH initiate: the same, plus one more strict verify (over the KEM
//!   prekey's 1636 signed bytes) and one ML-KEM-1024 encapsulation;
//! - X3DH respond + first message: the DHs and the first ratchet DH, plus
//!   one chain message (both sides' chain steps and key expansions, an
//!   AES-256-GCM seal and open of 100 B: the same floor as `ratchet`'s);
//! - PQXDH respond: the same, plus ML-KEM-1024 key generation from the
//!   seed, decapsulation, and the SHA-256 of the ciphertext the responder
//!   keeps (SPEC.md §5.7).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use libcrux_ml_kem::mlkem1024;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use sottovoce::*;
use x25519_dalek::{PublicKey, StaticSecret};

const ROUNDS: usize = 3000;

#[path = "support/floors.rs"]
mod floors;
use floors::{ReadOnly, chain_floor};

/// Medians of `op` and `floor` over interleaved rounds, in µs.
fn interleaved(mut op: impl FnMut(), mut floor: impl FnMut()) -> (f64, f64) {
    let (mut a, mut b) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for i in 0..ROUNDS + 100 {
        let time = |f: &mut dyn FnMut()| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        };
        let (x, y) = if i % 2 == 0 {
            let x = time(&mut op);
            (x, time(&mut floor))
        } else {
            let y = time(&mut floor);
            (time(&mut op), y)
        };
        // The first 100 rounds warm caches and the frequency governor.
        if i >= 100 {
            a.push(x);
            b.push(y);
        }
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    (a[a.len() / 2], b[b.len() / 2])
}

fn main() {
    let mut r = ChaCha20Rng::from_seed([42; 32]);
    let signing = SigningKey::from_bytes(&[5u8; 32]);
    let vk = signing.verifying_key();
    // The signed inputs' lengths: context || u32 id || key.
    let spk_msg = vec![9u8; labels::SIGNED_PREKEY_CONTEXT.len() + 4 + 32];
    let spk_sig = signing.sign(&spk_msg);
    let kem_msg = vec![3u8; labels::KEM_PREKEY_CONTEXT.len() + 4 + KEM_PUBLIC_KEY_LEN];
    let kem_sig = signing.sign(&kem_msg);
    let sk = StaticSecret::from([3u8; 32]);
    let pk = PublicKey::from(&StaticSecret::from([4u8; 32]));
    let pair = mlkem1024::generate_key_pair([9u8; 64]);
    let ct = mlkem1024::encapsulate(pair.public_key(), [8u8; 32]).0;
    let mut buf = vec![0u8; 100];
    let mut ck = [10u8; 32];

    println!("{:<52} {:>10} {:>10} {:>7}", "operation (medians of interleaved rounds)", "op µs", "floor µs", "ratio");
    for pq in [false, true] {
        let alice = if pq { Account::new(&mut r) } else { Account::new_classical(&mut r) };
        let mut bob = if pq { Account::new(&mut r) } else { Account::new_classical(&mut r) };
        let opk = bob.generate_one_time_prekeys(&mut r, 1)[0];
        let kem = bob.generate_kem_prekeys(&mut r, 1).first().copied();
        for (label, one_time, dhs) in [("with one-time prekeys", true, 5), ("without (last-resort)", false, 4)] {
            let kem_id = if one_time { kem } else { bob.last_resort_kem_prekey_id() };
            let bundle = bob.prekey_bundle_with_kem(one_time.then_some(opk), kem_id).unwrap();
            let mut r2 = ChaCha20Rng::from_seed([7; 32]);
            let (op, floor) = interleaved(
                || {
                    black_box(Session::initiate(&mut r2, alice.identity_key_pair(), &bundle, b"").unwrap());
                },
                || {
                    vk.verify_strict(&spk_msg, &spk_sig).unwrap();
                    if pq {
                        vk.verify_strict(black_box(&kem_msg), &kem_sig).unwrap();
                    }
                    for _ in 0..2 {
                        let mut s = [0u8; 32];
                        r.fill_bytes(&mut s);
                        black_box(PublicKey::from(&StaticSecret::from(s)));
                    }
                    for _ in 0..dhs {
                        black_box(sk.diffie_hellman(black_box(&pk)));
                    }
                    if pq {
                        let mut m = [0u8; 32];
                        r.fill_bytes(&mut m);
                        black_box(mlkem1024::encapsulate(pair.public_key(), m));
                    }
                },
            );
            let name = if pq { "PQXDH" } else { "X3DH" };
            println!("{:<52} {op:>10.1} {floor:>10.1} {:>7.3}", format!("{name} initiate, {label}"), op / floor);

            let mut a = Session::initiate(&mut r, alice.identity_key_pair(), &bundle, b"").unwrap();
            let Message::PreKey(m) = a.encrypt(&mut r, &[0u8; 100]).unwrap() else { unreachable!() };
            let (op, floor) = interleaved(
                || {
                    black_box(Session::respond(&mut ReadOnly(&bob), black_box(&m), b"").unwrap());
                },
                || {
                    for _ in 0..dhs {
                        black_box(sk.diffie_hellman(black_box(&pk)));
                    }
                    if pq {
                        let pair = mlkem1024::generate_key_pair(black_box([9u8; 64]));
                        black_box(mlkem1024::decapsulate(pair.private_key(), &ct));
                        black_box(Sha256::digest(ct.as_ref()));
                    }
                    chain_floor(&mut ck, &mut buf);
                },
            );
            println!(
                "{:<52} {op:>10.1} {floor:>10.1} {:>7.3}",
                format!("{name} respond + first message, {label}"),
                op / floor
            );
        }
    }
    let (keygen, encaps) = interleaved(
        || {
            black_box(mlkem1024::generate_key_pair(black_box([9u8; 64])));
        },
        || {
            black_box(mlkem1024::encapsulate(pair.public_key(), black_box([8u8; 32])));
        },
    );
    let (decaps, dh) = interleaved(
        || {
            black_box(mlkem1024::decapsulate(pair.private_key(), black_box(&ct)));
        },
        || {
            black_box(sk.diffie_hellman(black_box(&pk)));
        },
    );
    println!(
        "ML-KEM-1024 (libcrux, portable): keygen {keygen:.1} µs, encaps {encaps:.1} µs, decaps {decaps:.1} µs; X25519 DH {dh:.1} µs"
    );
}
