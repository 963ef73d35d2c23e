//! Benchmarks of every protocol operation next to the primitives it is made
//! of, in the same run, so each ratio to its floor is measured (README,
//! "Performance"). `cargo bench --bench ratchet`, then
//! `python3 benches/report.py` prints the table.
//!
//! Floors are benched as the exact primitive calls an operation cannot
//! avoid (named `floor/...`), using the same primitive crates.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::hint::black_box;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sha2::Sha256;
use sottovoce::*;
use x25519_dalek::{PublicKey, StaticSecret};

const SIZES: [usize; 3] = [100, 1024, 16 * 1024];

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([42; 32])
}

// ------------------------------------------------------------------ primitives

#[path = "support/floors.rs"]
mod floors;
use floors::{ReadOnly, chain_floor, hkdf44, hmac_step, seal_open};

/// A DH ratchet message's floor: the sender's keygen and DH, the
/// receiver's DH, plus a chain message.
fn dh_ratchet_floor(r: &mut ChaCha20Rng, sk: &StaticSecret, pk: &PublicKey, ck: &mut [u8; 32], buf: &mut [u8]) {
    let mut s = [0u8; 32];
    r.fill_bytes(&mut s);
    let ours = StaticSecret::from(s);
    let _ = PublicKey::from(&ours);
    let _ = ours.diffie_hellman(pk);
    let _ = sk.diffie_hellman(pk);
    chain_floor(ck, buf);
}

/// Every floor is benched immediately before the operation it bounds: on a
/// shared machine noise drifts over minutes, so adjacent runs compare best.
fn all(c: &mut Criterion) {
    let mut r = rng();
    let sk = StaticSecret::from([3u8; 32]);
    let pk = PublicKey::from(&StaticSecret::from([4u8; 32]));
    let signing = SigningKey::from_bytes(&[5u8; 32]);
    let vk = signing.verifying_key();
    let msg = [9u8; 200];
    let sig = signing.sign(&msg);

    // Primitives, for reference.
    {
        let mut g = c.benchmark_group("floor");
        let mut buf = vec![0u8; 100];
        let key = [1u8; 32];
        g.bench_function("aes256gcm_seal_open/100", |b| b.iter(|| seal_open(&key, black_box(&mut buf))));
        let ck = [2u8; 32];
        g.bench_function("hmac_chain_step_x2", |b| b.iter(|| hmac_step(black_box(&ck))));
        g.bench_function("hkdf_extract_expand", |b| b.iter(|| hkdf44(black_box(&ck))));
        g.bench_function("x25519_keygen", |b| {
            b.iter(|| {
                let mut s = [0u8; 32];
                r.fill_bytes(&mut s);
                PublicKey::from(&StaticSecret::from(s))
            })
        });
        g.bench_function("x25519_dh", |b| b.iter(|| sk.diffie_hellman(black_box(&pk))));
        g.bench_function("ed25519_sign/200", |b| b.iter(|| signing.sign(black_box(&msg))));
        g.bench_function("ed25519_verify_strict/200", |b| b.iter(|| vk.verify_strict(black_box(&msg), &sig).unwrap()));
    }

    // Chain messages, each size right after its floor.
    for size in SIZES {
        let mut buf = vec![0u8; size];
        let mut ck = [6u8; 32];
        c.benchmark_group("floor")
            .bench_function(format!("chain_message/{size}"), |b| b.iter(|| chain_floor(&mut ck, black_box(&mut buf))));
        let (mut a, mut bs) = talking_pair(&mut r);
        let pt = vec![0u8; size];
        c.benchmark_group("session").bench_function(format!("chain_message_encrypt_decrypt/{size}"), |bn| {
            bn.iter(|| {
                let m = a.encrypt(&mut r, black_box(&pt)).unwrap();
                bs.decrypt(&m).unwrap()
            })
        });
    }
    {
        let mut g = c.benchmark_group("session");
        let (mut a, _b) = talking_pair(&mut r);
        let pt = vec![0u8; 100];
        g.bench_function("chain_message_encrypt/100", |bn| bn.iter(|| a.encrypt(&mut r, black_box(&pt)).unwrap()));
        let mut buf = vec![0u8; 100 + MESSAGE_OVERHEAD];
        g.bench_function("chain_message_encrypt_into/100", |bn| {
            bn.iter(|| a.encrypt_into(&mut r, black_box(&pt), &mut buf).unwrap())
        });
        let (mut a, mut b2) = talking_pair(&mut r);
        let mut r2 = rng();
        g.bench_function("chain_message_decrypt/100", |bn| {
            bn.iter_batched(|| a.encrypt(&mut r2, &pt).unwrap(), |m| b2.decrypt(&m).unwrap(), BatchSize::SmallInput)
        });
    }

    // A DH ratchet step every message.
    {
        let mut buf = vec![0u8; 100];
        let mut ck = [8u8; 32];
        c.benchmark_group("floor").bench_function("dh_ratchet_message/100", |b| {
            b.iter(|| dh_ratchet_floor(&mut r, &sk, &pk, &mut ck, &mut buf))
        });
        let (mut a, mut b) = talking_pair(&mut r);
        let pt = vec![0u8; 100];
        c.benchmark_group("session").bench_function("ping_pong_message/100", |bn| {
            bn.iter(|| {
                let m = a.encrypt(&mut r, black_box(&pt)).unwrap();
                b.decrypt(&m).unwrap();
                std::mem::swap(&mut a, &mut b);
            })
        });
    }

    // Session setup. Initiator floor: strict verify + 2 keygens + DH1..DH3
    // (+ DH4) + the first ratchet DH. Responder floor: the same DHs + one
    // chain message.
    {
        let alice = Account::new_classical(&mut r);
        let mut bob = Account::new_classical(&mut r);
        let ids = bob.generate_one_time_prekeys(&mut r, 1);
        let mut buf = vec![0u8; 100];
        let mut ck = [10u8; 32];
        for (label, opk, dhs) in [("opk", Some(ids[0]), 5), ("no_opk", None, 4)] {
            c.benchmark_group("floor").bench_function(format!("x3dh_initiate_{label}"), |b| {
                b.iter(|| {
                    vk.verify_strict(&msg, &sig).unwrap();
                    for _ in 0..2 {
                        let mut s = [0u8; 32];
                        r.fill_bytes(&mut s);
                        let _ = PublicKey::from(&StaticSecret::from(s));
                    }
                    for _ in 0..dhs {
                        let _ = sk.diffie_hellman(black_box(&pk));
                    }
                })
            });
            let bundle = bob.prekey_bundle(opk).unwrap();
            c.benchmark_group("session").bench_function(format!("initiate_{label}"), |b| {
                b.iter(|| Session::initiate(&mut r, alice.identity_key_pair(), &bundle, b"").unwrap())
            });
            c.benchmark_group("floor").bench_function(format!("x3dh_respond_{label}/100"), |b| {
                b.iter(|| {
                    for _ in 0..dhs {
                        let _ = sk.diffie_hellman(black_box(&pk));
                    }
                    chain_floor(&mut ck, &mut buf);
                })
            });
            let mut a = Session::initiate(&mut r, alice.identity_key_pair(), &bundle, b"").unwrap();
            let Message::PreKey(m) = a.encrypt(&mut r, &[0u8; 100]).unwrap() else { unreachable!() };
            c.benchmark_group("session").bench_function(format!("respond_{label}/100"), |b| {
                b.iter(|| Session::respond(&mut ReadOnly(&bob), black_box(&m), b"").unwrap())
            });
        }
    }

    // PQXDH setup (SPEC.md §4.8). Floors: the X3DH floors above plus, for
    // the initiator, one more strict verify (over the KEM prekey's 1640
    // signed bytes) and one ML-KEM-1024 encapsulation; for the responder,
    // ML-KEM key generation from the 64-byte seed, decapsulation, and the
    // SHA-256 of the ciphertext it keeps (SPEC.md §5.7).
    {
        use libcrux_ml_kem::mlkem1024;
        let alice = Account::new(&mut r);
        let mut bob = Account::new(&mut r);
        let ids = bob.generate_one_time_prekeys(&mut r, 1);
        let kems = bob.generate_kem_prekeys(&mut r, 1);
        let kem_msg = vec![3u8; 1640];
        let kem_sig = signing.sign(&kem_msg);
        let pair = mlkem1024::generate_key_pair([9u8; 64]);
        let ct = mlkem1024::encapsulate(pair.public_key(), [8u8; 32]).0;
        let mut buf = vec![0u8; 100];
        let mut ck = [10u8; 32];
        for (label, opk, kem, dhs) in [("opk", Some(ids[0]), kems[0], 5), ("no_opk", None, PreKeyId(2), 4)] {
            c.benchmark_group("floor").bench_function(format!("pqxdh_initiate_{label}"), |b| {
                b.iter(|| {
                    vk.verify_strict(&msg, &sig).unwrap();
                    vk.verify_strict(black_box(&kem_msg), &kem_sig).unwrap();
                    for _ in 0..2 {
                        let mut s = [0u8; 32];
                        r.fill_bytes(&mut s);
                        let _ = PublicKey::from(&StaticSecret::from(s));
                    }
                    for _ in 0..dhs {
                        let _ = sk.diffie_hellman(black_box(&pk));
                    }
                    let mut m = [0u8; 32];
                    r.fill_bytes(&mut m);
                    black_box(mlkem1024::encapsulate(pair.public_key(), m));
                })
            });
            let bundle = bob.prekey_bundle_with_kem(opk, Some(kem)).unwrap();
            c.benchmark_group("session").bench_function(format!("pqxdh_initiate_{label}"), |b| {
                b.iter(|| Session::initiate(&mut r, alice.identity_key_pair(), &bundle, b"").unwrap())
            });
            c.benchmark_group("floor").bench_function(format!("pqxdh_respond_{label}/100"), |b| {
                b.iter(|| {
                    for _ in 0..dhs {
                        let _ = sk.diffie_hellman(black_box(&pk));
                    }
                    let pair = mlkem1024::generate_key_pair(black_box([9u8; 64]));
                    black_box(mlkem1024::decapsulate(pair.private_key(), &ct));
                    black_box(<Sha256 as sha2::Digest>::digest(ct.as_ref()));
                    chain_floor(&mut ck, &mut buf);
                })
            });
            let mut a = Session::initiate(&mut r, alice.identity_key_pair(), &bundle, b"").unwrap();
            let Message::PreKey(m) = a.encrypt(&mut r, &[0u8; 100]).unwrap() else { unreachable!() };
            c.benchmark_group("session").bench_function(format!("pqxdh_respond_{label}/100"), |b| {
                b.iter(|| Session::respond(&mut ReadOnly(&bob), black_box(&m), b"").unwrap())
            });
        }
        // The KEM alone, for the README.
        let mut g = c.benchmark_group("floor");
        g.bench_function("mlkem1024_keygen", |b| b.iter(|| mlkem1024::generate_key_pair(black_box([9u8; 64]))));
        g.bench_function("mlkem1024_encaps", |b| {
            b.iter(|| mlkem1024::encapsulate(pair.public_key(), black_box([8u8; 32])))
        });
        g.bench_function("mlkem1024_decaps", |b| b.iter(|| mlkem1024::decapsulate(pair.private_key(), black_box(&ct))));
    }

    // Decrypt after skipping 1000.
    {
        let mut ck = [7u8; 32];
        c.benchmark_group("floor").bench_function("chain_steps_1000", |b| {
            b.iter(|| {
                for _ in 0..1000 {
                    ck = hmac_step(black_box(&ck)).1;
                }
            })
        });
        let (mut a, mut tracker) = talking_pair(&mut r);
        let mut r2 = rng();
        let pt = [0u8; 100];
        c.benchmark_group("session").bench_function("decrypt_after_skipping_1000", |bn| {
            bn.iter_batched(
                || {
                    // A receiver exactly 1000 messages behind the one to
                    // decrypt, with no skipped keys stored yet. The tracker
                    // catches up in order (storing nothing).
                    let receiver = Session::from_bytes(&tracker.to_bytes()).unwrap();
                    let msgs: Vec<_> = (0..=1000).map(|_| a.encrypt(&mut r2, &pt).unwrap()).collect();
                    for m in &msgs {
                        tracker.decrypt(m).unwrap();
                    }
                    (receiver, msgs.into_iter().last().unwrap())
                },
                |(mut receiver, msg)| receiver.decrypt(&msg).unwrap(),
                BatchSize::PerIteration,
            )
        });
    }

    // Group messages: sign + strict verify of what is signed (the message
    // plus its context prefix: label, group id, sender) + a chain message.
    let id = IdentityKeyPair::generate(&mut r).public_key();
    for size in [100usize, 1024] {
        let mut buf = vec![0u8; size];
        let mut ck = [11u8; 32];
        let signed = vec![0u8; 64 + 1 + 11 + 32 + 9 + size + 16];
        c.benchmark_group("floor").bench_function(format!("group_message/{size}"), |b| {
            b.iter(|| {
                let s = signing.sign(black_box(&signed));
                vk.verify_strict(&signed, &s).unwrap();
                chain_floor(&mut ck, &mut buf);
            })
        });
        let mut s = GroupSender::new(&mut r, GroupId::new(b"bench group").unwrap(), id);
        let mut rc = GroupReceiver::new(id, &s.distribution());
        let pt = vec![0u8; size];
        c.benchmark_group("group").bench_function(format!("message_encrypt_decrypt/{size}"), |bn| {
            bn.iter(|| {
                let m = s.encrypt(black_box(&pt)).unwrap();
                rc.decrypt(&m).unwrap()
            })
        });
    }
    {
        let mut ck = [12u8; 32];
        c.benchmark_group("floor").bench_function("group_skip_1000", |b| {
            b.iter(|| {
                vk.verify_strict(&msg, &sig).unwrap();
                for _ in 0..1000 {
                    ck = hmac_step(black_box(&ck)).1;
                }
            })
        });
        let mut s = GroupSender::new(&mut r, GroupId::new(b"bench group").unwrap(), id);
        let mut tracker = GroupReceiver::new(id, &s.distribution());
        let pt = [0u8; 100];
        c.benchmark_group("group").bench_function("decrypt_after_skipping_1000", |bn| {
            bn.iter_batched(
                || {
                    let receiver = GroupReceiver::from_bytes(&tracker.to_bytes()).unwrap();
                    let msgs: Vec<_> = (0..=1000).map(|_| s.encrypt(&pt).unwrap()).collect();
                    for m in &msgs {
                        tracker.decrypt(m).unwrap();
                    }
                    (receiver, msgs.into_iter().last().unwrap())
                },
                |(mut rc, m)| rc.decrypt(&m).unwrap(),
                BatchSize::PerIteration,
            )
        });
    }

    // Distribution of one sender key to a 1024-member group over
    // established pairwise sessions.
    {
        let me = Account::new(&mut r);
        let mut sessions = Vec::with_capacity(1024);
        let me_at = Address::new(b"me", DeviceId(1)).unwrap();
        for i in 0..1024 {
            let mut peer = Account::new(&mut r);
            let peer_at = Address::new(b"peer", DeviceId(i)).unwrap();
            let mut a = SessionRecord::new(me_at.clone(), peer_at.clone(), peer.identity_key());
            let mut b = SessionRecord::new(peer_at, me_at.clone(), me.identity_key());
            a.initiate(&mut r, me.identity_key_pair(), &peer.prekey_bundle(None).unwrap()).unwrap();
            b.decrypt(&mut peer, &a.encrypt(&mut r, b"hi").unwrap()).unwrap();
            a.decrypt(&mut peer, &b.encrypt(&mut r, b"hi").unwrap()).unwrap();
            a.encrypt(&mut r, b"open chain").unwrap();
            sessions.push(a);
        }
        let sender = GroupSender::new(&mut r, GroupId::new(b"a group of 1024").unwrap(), me.identity_key());
        let d = sender.distribution();
        let mut buf = vec![0u8; d.to_bytes().len()];
        let mut ck = [9u8; 32];
        let mut g = c.benchmark_group("group");
        g.sample_size(20);
        g.bench_function("floor_distribute_to_1024", |bn| {
            bn.iter(|| {
                for _ in 0..1024 {
                    // Sender side only: chain step, expansion, seal.
                    let (mk, next) = hmac_step(&ck);
                    let okm = hkdf44(&mk);
                    ck = next;
                    let c = Aes256Gcm::new(&<[u8; 32]>::try_from(&okm[..32]).unwrap().into());
                    let _ = c.encrypt_inout_detached(&Nonce::from([0u8; 12]), &[0u8; 69], buf.as_mut_slice().into());
                }
            })
        });
        g.bench_function("distribute_to_1024", |bn| bn.iter(|| distribute(&mut r, &d, sessions.iter_mut())));
    }
}

// ------------------------------------------------------------------ sessions

fn talking_pair(rng: &mut ChaCha20Rng) -> (Session, Session) {
    let alice = Account::new(rng);
    let mut bob = Account::new(rng);
    let bundle = bob.prekey_bundle(None).unwrap();
    let mut a = Session::initiate(rng, alice.identity_key_pair(), &bundle, b"").unwrap();
    let Message::PreKey(m) = a.encrypt(rng, b"hi").unwrap() else { unreachable!() };
    let mut b = Session::respond(&mut bob, &m, b"").unwrap().session;
    a.decrypt(&b.encrypt(rng, b"hi").unwrap()).unwrap();
    // Alice's next send opens her chain; Bob learns it.
    b.decrypt(&a.encrypt(rng, b"open chain").unwrap()).unwrap();
    (a, b)
}

fn persistence(c: &mut Criterion) {
    let mut g = c.benchmark_group("persistence");
    let mut r = rng();
    let (mut a, mut b) = talking_pair(&mut r);
    let key = [3u8; 32];
    for skipped in [0usize, 100] {
        if skipped > 0 {
            let ms: Vec<_> = (0..=skipped).map(|_| a.encrypt(&mut r, b"m").unwrap()).collect();
            b.decrypt(ms.last().unwrap()).unwrap();
        }
        assert_eq!(b.skipped_keys(), skipped);
        let bytes = b.to_bytes();
        g.bench_function(format!("save_session/{skipped}_skipped"), |bn| bn.iter(|| b.to_bytes()));
        g.bench_function(format!("restore_session/{skipped}_skipped"), |bn| {
            bn.iter(|| Session::from_bytes(black_box(&bytes)).unwrap())
        });
        let sealed = b.seal(&mut r, &key);
        g.bench_function(format!("unseal_session/{skipped}_skipped"), |bn| {
            bn.iter(|| Session::unseal(&key, black_box(&sealed)).unwrap())
        });
    }
    g.finish();
    stateless(c);
}

/// The loop deployments run per message when sessions live in storage:
/// unseal the state, decrypt (or encrypt) one 100-byte chain message, seal
/// the state again (SPEC.md §11.4). Its floor: the chain message floor plus
/// AES-256-GCM open and seal over the saved state's length.
fn stateless(c: &mut Criterion) {
    let mut r = rng();
    let (mut a, mut b) = talking_pair(&mut r);
    // Bob receives on Alice's chain; Alice sends on it (both established).
    b.decrypt(&a.encrypt(&mut r, b"open the chain").unwrap()).unwrap();
    let key = [3u8; 32];
    let pt = [0u8; 100];
    let state_len = b.to_bytes().len();
    let mut ck = [1u8; 32];
    let mut msg = [0u8; 100];
    let mut state = vec![0u8; state_len];
    c.benchmark_group("floor").bench_function("stateless_chain_message/100", |bn| {
        bn.iter(|| {
            chain_floor(&mut ck, black_box(&mut msg));
            seal_open(&key, black_box(&mut state));
        })
    });
    let mut bob_sealed = b.seal(&mut r, &key);
    let mut r2 = rng();
    c.benchmark_group("stateless").bench_function("unseal_decrypt_seal/100", |bn| {
        bn.iter_batched(
            || a.encrypt(&mut r, &pt).unwrap().to_bytes(),
            |m| {
                let mut s = Session::unseal(&key, &bob_sealed).unwrap();
                let out = s.decrypt_bytes(&m).unwrap();
                bob_sealed = s.seal(&mut r2, &key);
                out
            },
            BatchSize::SmallInput,
        )
    });
    let mut alice_sealed = a.seal(&mut r, &key);
    c.benchmark_group("floor").bench_function("stateless_chain_message_encrypt/100", |bn| {
        bn.iter(|| {
            chain_floor(&mut ck, black_box(&mut msg));
            seal_open(&key, black_box(&mut state));
        })
    });
    c.benchmark_group("stateless").bench_function("unseal_encrypt_seal/100", |bn| {
        bn.iter(|| {
            let mut s = Session::unseal(&key, &alice_sealed).unwrap();
            let m = s.encrypt(&mut r2, &pt).unwrap();
            alice_sealed = s.seal(&mut r2, &key);
            m
        })
    });
    // Restore alone, against the AEAD open it cannot avoid.
    let sealed = b.seal(&mut r, &key);
    let mut buf = vec![0u8; state_len];
    c.benchmark_group("floor").bench_function("state_open", |bn| bn.iter(|| seal_open(&key, black_box(&mut buf))));
    c.benchmark_group("stateless")
        .bench_function("unseal_session", |bn| bn.iter(|| Session::unseal(&key, black_box(&sealed)).unwrap()));
    let saved = b.to_bytes();
    c.benchmark_group("stateless").bench_function("from_bytes_session_all_checks", |bn| {
        bn.iter(|| Session::from_bytes(black_box(&saved)).unwrap())
    });
    forged(c);
    let id = IdentityKeyPair::generate(&mut r).public_key();
    let mut sender = GroupSender::new(&mut r, GroupId::new(b"bench").unwrap(), id);
    let mut receiver = GroupReceiver::new(id, &sender.distribution());
    receiver.decrypt(&sender.encrypt(b"x").unwrap()).unwrap();
    let sealed = receiver.seal(&mut r, &key);
    let mut buf = vec![0u8; receiver.to_bytes().len()];
    let signing = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]).verifying_key().to_bytes();
    c.benchmark_group("floor").bench_function("group_receiver_open", |bn| {
        bn.iter(|| {
            seal_open(&key, black_box(&mut buf));
            ed25519_dalek::VerifyingKey::from_bytes(black_box(&signing)).unwrap()
        })
    });
    c.benchmark_group("stateless").bench_function("unseal_group_receiver", |bn| {
        bn.iter(|| GroupReceiver::unseal(&key, black_box(&sealed)).unwrap())
    });
}

criterion_group!(benches, all, persistence, records);
criterion_main!(benches);

/// What one forged message costs a receiver (SPEC.md §9), each as far ahead
/// as the bounds allow; a rejection changes nothing, so it repeats.
fn forged(c: &mut Criterion) {
    let mut r = rng();
    let (mut a, mut b) = talking_pair(&mut r);
    b.decrypt(&a.encrypt(&mut r, b"open").unwrap()).unwrap();
    let genuine = a.encrypt(&mut r, &[0u8; 100]).unwrap().to_bytes();
    let with = |dhs: Option<[u8; 32]>, pn: u32, n: u32| {
        let mut m = genuine.clone();
        if let Some(k) = dhs {
            m[1..33].copy_from_slice(&k);
        }
        m[33..37].copy_from_slice(&pn.to_be_bytes());
        m[37..41].copy_from_slice(&n.to_be_bytes());
        let last = m.len() - 1;
        m[last] ^= 1;
        m
    };
    let mut g = c.benchmark_group("forged");
    // On the open chain, MAX_SKIP ahead of Nr = 1.
    let known = with(None, 1, 1 + MAX_SKIP);
    g.bench_function("known_chain_max_skip", |bn| bn.iter(|| b.decrypt_bytes(black_box(&known)).unwrap_err()));
    // A new ratchet key with N = MAX_SKIP and PN = Nr + MAX_SKIP, while Bob's
    // DHs exists (he has sent since): the DH and N chain steps are paid, the
    // PN steps are not (they wait for authentication).
    let _ = b.encrypt(&mut r, b"so that DHs exists").unwrap();
    let new_chain = with(Some([9u8; 32]), 1 + MAX_SKIP, MAX_SKIP);
    g.bench_function("new_chain_max_skip", |bn| bn.iter(|| b.decrypt_bytes(black_box(&new_chain)).unwrap_err()));
    // A prekey message with N = MAX_SKIP to a responder: X3DH, then the
    // first chain (PN must be 0).
    let alice = Account::new(&mut r);
    let mut bob = Account::new(&mut r);
    let bundle = bob.prekey_bundle(None).unwrap();
    let mut s = Session::initiate(&mut r, alice.identity_key_pair(), &bundle, b"").unwrap();
    let mut pre = s.encrypt(&mut r, &[0u8; 100]).unwrap().to_bytes();
    let inner = pre.len() - (100 + MESSAGE_OVERHEAD);
    pre[inner + 37..inner + 41].copy_from_slice(&MAX_SKIP.to_be_bytes());
    let last = pre.len() - 1;
    pre[last] ^= 1;
    let pre = PreKeyMessage::try_from(pre.as_slice()).unwrap();
    g.bench_function("prekey_message_max_skip", |bn| {
        bn.iter(|| Session::respond(&mut bob, black_box(&pre), b"").unwrap_err())
    });
    g.finish();
}

/// Session records (SPEC.md §4.7, §9): a hit on the current session, a
/// message for an archived session (on a chain it knows, and starting a new
/// chain there, which is tried on the current session first), the worst
/// forged message to a record whose six sessions can all start a chain, and
/// the stateless loop through a record.
fn records(c: &mut Criterion) {
    let mut r = rng();
    let key = [3u8; 32];
    // Alice and Bob with session S1 (Alice initiated); Bob has replied, so
    // Alice's next message starts a new chain; then Bob initiates S2, which
    // becomes his current session and archives S1. Seeds are tried until
    // S1's id is larger, so nothing is promoted and S1 stays archived.
    let (bob_before, bob_after, a1, a2, mut alice_rec, alice, mut bob) = loop {
        let alice = Account::new(&mut r);
        let mut bob = Account::new(&mut r);
        let (at_a, at_b) = (Address::new(b"alice", DeviceId(1)).unwrap(), Address::new(b"bob", DeviceId(1)).unwrap());
        let mut ra = SessionRecord::new(at_a.clone(), at_b.clone(), bob.identity_key());
        let mut rb = SessionRecord::new(at_b, at_a, alice.identity_key());
        ra.initiate(&mut r, alice.identity_key_pair(), &bob.prekey_bundle(None).unwrap()).unwrap();
        rb.decrypt(&mut bob, &ra.encrypt(&mut r, b"m0").unwrap()).unwrap();
        let mut alice_store = Account::from_bytes(&alice.to_bytes()).unwrap();
        ra.decrypt(&mut alice_store, &rb.encrypt(&mut r, b"r").unwrap()).unwrap();
        let a1 = ra.encrypt(&mut r, &[0u8; 100]).unwrap();
        let a2 = ra.encrypt(&mut r, &[1u8; 100]).unwrap();
        let before = rb.to_bytes().to_vec();
        let s1 = rb.current_id().unwrap();
        rb.initiate(&mut r, bob.identity_key_pair(), &alice.prekey_bundle(None).unwrap()).unwrap();
        if s1.0 > rb.current_id().unwrap().0 {
            break (before, rb.to_bytes().to_vec(), a1, a2, ra, alice, bob);
        }
    };
    let mut g = c.benchmark_group("record");
    g.bench_function("new_chain_one_session/100", |bn| {
        bn.iter_batched(
            || SessionRecord::from_bytes(&bob_before).unwrap(),
            |mut rec| rec.decrypt(&mut bob, &a1).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("new_chain_archived_session/100", |bn| {
        bn.iter_batched(
            || SessionRecord::from_bytes(&bob_after).unwrap(),
            |mut rec| rec.decrypt(&mut bob, &a1).unwrap(),
            BatchSize::SmallInput,
        )
    });
    // a2 is on the chain a1 opened: known to S1 once a1 is in.
    let mut with_a1 = SessionRecord::from_bytes(&bob_after).unwrap();
    with_a1.decrypt(&mut bob, &a1).unwrap();
    assert_ne!(with_a1.current_id(), alice_rec.current_id(), "S1 stays archived");
    let with_a1 = with_a1.to_bytes().to_vec();
    let mut only_s1 = SessionRecord::from_bytes(&bob_before).unwrap();
    only_s1.decrypt(&mut bob, &a1).unwrap();
    let only_s1 = only_s1.to_bytes().to_vec();
    g.bench_function("known_chain_current_session/100", |bn| {
        bn.iter_batched(
            || SessionRecord::from_bytes(&only_s1).unwrap(),
            |mut rec| rec.decrypt(&mut bob, &a2).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("known_chain_archived_session/100", |bn| {
        bn.iter_batched(
            || SessionRecord::from_bytes(&with_a1).unwrap(),
            |mut rec| rec.decrypt(&mut bob, &a2).unwrap(),
            BatchSize::SmallInput,
        )
    });
    // The worst forged message: Bob's record holds 1 + MAX_ARCHIVED_SESSIONS
    // sessions he initiated (each with DHs); a new ratchet key with
    // N = MAX_SKIP is tried on each, and changes nothing.
    let mut full = SessionRecord::new(
        Address::new(b"bob", DeviceId(1)).unwrap(),
        Address::new(b"alice", DeviceId(1)).unwrap(),
        alice.identity_key(),
    );
    for _ in 0..=MAX_ARCHIVED_SESSIONS {
        full.initiate(&mut r, bob.identity_key_pair(), &alice.prekey_bundle(None).unwrap()).unwrap();
    }
    let mut forged = alice_rec.encrypt(&mut r, &[0u8; 100]).unwrap().to_bytes();
    forged[1..33].copy_from_slice(&[9u8; 32]);
    forged[33..37].copy_from_slice(&0u32.to_be_bytes());
    forged[37..41].copy_from_slice(&MAX_SKIP.to_be_bytes());
    g.bench_function("forged_new_chain_max_skip_six_sessions", |bn| {
        bn.iter(|| full.decrypt_bytes(&mut bob, black_box(&forged)).unwrap_err())
    });
    // The stateless loop through a record: unseal, decrypt, seal.
    let mut sealed = SessionRecord::from_bytes(&only_s1).unwrap().seal(&mut r, &key);
    let mut r2 = rng();
    g.bench_function("unseal_decrypt_seal/100", |bn| {
        bn.iter_batched(
            || alice_rec.encrypt(&mut r, &[0u8; 100]).unwrap(),
            |m| {
                let mut rec = SessionRecord::unseal(&key, &sealed).unwrap();
                let out = rec.decrypt(&mut bob, &m).unwrap();
                sealed = rec.seal(&mut r2, &key);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}
