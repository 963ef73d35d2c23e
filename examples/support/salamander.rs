//! AES-256-GCM "invisible salamanders": one ciphertext and tag that
//! authenticate under two different (key, nonce) pairs.
//!
//! GCM does not commit to its key. This is the attack of Dodis, Grubbs,
//! Ristenpart and Woodage, "Fast Message Franking: From Invisible Salamanders
//! to Encryptment" (CRYPTO 2018), in the form given by Albertini, Duong,
//! Gueron, Kölbl, Luykx and Schmieg, "How to Abuse and Fix Authenticated
//! Encryption Without Key Commitment" (USENIX Security 2022, ePrint
//! 2020/1456).
//!
//! For key `K_i` and 96-bit nonce `N_i`, GCM computes `H_i = AES_{K_i}(0^128)`,
//! `J0_i = N_i || 0x00000001` and the tag
//! `T_i = AES_{K_i}(J0_i) + GHASH_{H_i}(A, C)`. GHASH is the polynomial
//! `X_1 H^m + X_2 H^(m-1) + ... + X_m H` over GF(2^128), where `X_1..X_m` are
//! the zero-padded blocks of `A`, the blocks of `C` and the length block
//! `len(A) || len(C)` (bit counts, 64-bit big-endian). With `a` AD blocks and
//! `n` ciphertext blocks, ciphertext block `C_j` (1-based) has exponent
//! `e = n - j + 2`; the free block is the last one, so `e = 2`.
//!
//! Fix every block but `C_n`, evaluate both tags with `C_n = 0` (`T_1^0`,
//! `T_2^0`); then `T_1 = T_2` is the linear equation
//! `C_n (H_1^2 + H_2^2) = T_1^0 + T_2^0`, solvable whenever `H_1 != H_2`
//! (squaring is injective in characteristic 2). Its solution gives a
//! ciphertext whose common tag verifies under both pairs; the two plaintexts
//! are the two keystreams XORed onto it and so differ.
//!
//! Field arithmetic follows NIST SP 800-38D: a block is the big-endian
//! `u128`, whose most significant bit is the coefficient of `x^0`, reduced
//! modulo `x^128 + x^7 + x^2 + x + 1`.

use aes::Aes256;
use aes::cipher::{BlockCipherEncrypt, KeyInit};

/// The reduction constant `R = 11100001 || 0^120` of SP 800-38D.
const R: u128 = 0xE1 << 120;

/// The field element 1 (the `x^0` coefficient is the top bit).
const ONE: u128 = 1 << 127;

/// Product in GF(2^128), SP 800-38D Algorithm 1.
fn gf_mul(x: u128, y: u128) -> u128 {
    let mut z = 0u128;
    let mut v = y;
    for i in 0..128 {
        if (x >> (127 - i)) & 1 == 1 {
            z ^= v;
        }
        v = if v & 1 == 1 { (v >> 1) ^ R } else { v >> 1 };
    }
    z
}

/// Inverse in GF(2^128) as `a^(2^128 - 2) = a^2 * a^4 * ... * a^(2^127)`.
fn gf_inv(a: u128) -> u128 {
    assert_ne!(a, 0, "zero has no inverse in GF(2^128)");
    let mut acc = ONE;
    let mut sq = a;
    for _ in 1..128 {
        sq = gf_mul(sq, sq);
        acc = gf_mul(acc, sq);
    }
    acc
}

/// `a^e` in GF(2^128).
fn gf_pow(a: u128, mut e: u64) -> u128 {
    let mut acc = ONE;
    let mut base = a;
    while e != 0 {
        if e & 1 == 1 {
            acc = gf_mul(acc, base);
        }
        base = gf_mul(base, base);
        e >>= 1;
    }
    acc
}

/// One AES-256 block encryption.
fn aes256(key: &[u8; 32], block: [u8; 16]) -> u128 {
    let cipher = Aes256::new(key.into());
    let mut b = aes::Block::from(block);
    cipher.encrypt_block(&mut b);
    u128::from_be_bytes(b.into())
}

/// A byte string as zero-padded 16-byte blocks.
fn blocks_of(data: &[u8]) -> impl Iterator<Item = u128> + '_ {
    data.chunks(16).map(|chunk| {
        let mut b = [0u8; 16];
        for (dst, src) in b.iter_mut().zip(chunk) {
            *dst = *src;
        }
        u128::from_be_bytes(b)
    })
}

/// GHASH_H(A, C) with C given as whole blocks.
fn ghash(h: u128, ad: &[u8], ct: &[u128]) -> u128 {
    let len_block = (u128::from(ad.len() as u64 * 8) << 64) | u128::from(ct.len() as u64 * 128);
    blocks_of(ad).chain(ct.iter().copied()).chain([len_block]).fold(0, |y, x| gf_mul(y ^ x, h))
}

/// GCM subkey `H` and tag mask `AES_K(J0)` for a key and 96-bit nonce.
fn gcm_params(key: &[u8; 32], nonce: &[u8; 12]) -> (u128, u128) {
    let h = aes256(key, [0u8; 16]);
    let mut j0 = [0u8; 16];
    for (dst, src) in j0.iter_mut().zip(nonce) {
        *dst = *src;
    }
    j0[15] = 1;
    (h, aes256(key, j0))
}

/// Returns `ciphertext || tag` (16-byte tag) such that AES-256-GCM decryption
/// with (key1, nonce1, ad) and with (key2, nonce2, ad) both succeed.
/// `blocks` is the ciphertext length in 16-byte blocks (>= 2); every block
/// but one free block is taken from `fill` (repeated/truncated as needed);
/// the free block (the last one) is solved for.
///
/// An empty `fill` gives all-zero fixed blocks. Panics if `blocks < 2` or if
/// the two keys have the same GHASH subkey (in practice: the same key), in
/// which case no solution exists unless the tag masks already agree.
#[allow(dead_code, unreachable_pub)]
pub fn two_key_ciphertext(
    key1: &[u8; 32],
    nonce1: &[u8; 12],
    key2: &[u8; 32],
    nonce2: &[u8; 12],
    ad: &[u8],
    fill: &[u8],
    blocks: usize,
) -> Vec<u8> {
    assert!(blocks >= 2, "need at least two ciphertext blocks");
    let (h1, s1) = gcm_params(key1, nonce1);
    let (h2, s2) = gcm_params(key2, nonce2);
    assert_ne!(h1, h2, "the two keys share a GHASH subkey; no equivocating block exists");

    // Fixed blocks from `fill`, cycled; the free (last) block starts at zero.
    let fixed_len = (blocks - 1) * 16;
    let fixed: Vec<u8> =
        if fill.is_empty() { vec![0u8; fixed_len] } else { fill.iter().copied().cycle().take(fixed_len).collect() };
    let mut ct: Vec<u128> = blocks_of(&fixed).collect();
    ct.push(0);

    // Tags with the free block zero; the free block enters with H^2.
    let t1 = s1 ^ ghash(h1, ad, &ct);
    let t2 = s2 ^ ghash(h2, ad, &ct);
    let coeff = gf_pow(h1, 2) ^ gf_pow(h2, 2);
    let free = gf_mul(t1 ^ t2, gf_inv(coeff));
    if let Some(last) = ct.last_mut() {
        *last = free;
    }

    let tag = s1 ^ ghash(h1, ad, &ct);
    debug_assert_eq!(tag, s2 ^ ghash(h2, ad, &ct));

    let mut out: Vec<u8> = ct.iter().flat_map(|b| b.to_be_bytes()).collect();
    out.extend_from_slice(&tag.to_be_bytes());
    out
}

/// Decrypts `ct || tag` with aes-gcm; `None` if the tag does not verify.
fn open(key: &[u8; 32], nonce: &[u8; 12], ad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce, Tag};

    let (ct, tag) = sealed.split_at(sealed.len().checked_sub(16)?);
    let tag: [u8; 16] = tag.try_into().ok()?;
    let mut buf = ct.to_vec();
    let cipher = Aes256Gcm::new(&(*key).into());
    let nonce = Nonce::from(*nonce);
    cipher.decrypt_inout_detached(&nonce, ad, buf.as_mut_slice().into(), &Tag::from(tag)).ok()?;
    Some(buf)
}

/// Checks the construction against the aes-gcm crate: the field arithmetic,
/// this module's GHASH against a genuine GCM tag, and that a built
/// ciphertext opens under both (key, nonce) pairs to different plaintexts
/// while a one-bit change opens under neither. Panics on failure.
#[allow(dead_code, unreachable_pub)]
pub fn self_check() {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};

    // Field sanity: 1 is the identity and inversion inverts.
    let a = 0x66e9_4bd4_ef8a_2c3b_884c_fa59_ca34_2b2eu128;
    assert_eq!(gf_mul(a, ONE), a);
    assert_eq!(gf_mul(ONE, a), a);
    assert_eq!(gf_mul(a, gf_inv(a)), ONE);
    assert_eq!(gf_pow(a, 3), gf_mul(a, gf_mul(a, a)));

    let key1: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(0x9d).wrapping_add(0x3b) ^ 0x5a);
    let key2: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(0x6b).wrapping_add(0xc1).rotate_left(3));
    let nonce1: [u8; 12] = core::array::from_fn(|i| (i as u8).wrapping_mul(0x35).wrapping_add(0x17));
    let nonce2: [u8; 12] = core::array::from_fn(|i| (i as u8).wrapping_mul(0xa7).wrapping_add(0x82));
    let ad = b"salamander self-check: associated data not a multiple of 16";

    // Our GHASH and tag mask reproduce a genuine aes-gcm tag.
    let msg = [0x42u8; 48];
    let mut buf = msg;
    let tag = Aes256Gcm::new(&key1.into())
        .encrypt_inout_detached(&Nonce::from(nonce1), ad, buf.as_mut_slice().into())
        .expect("aes-gcm encryption");
    let (h1, s1) = gcm_params(&key1, &nonce1);
    let ct_blocks: Vec<u128> = blocks_of(&buf).collect();
    let tag_bytes: [u8; 16] = tag.into();
    assert_eq!(s1 ^ ghash(h1, ad, &ct_blocks), u128::from_be_bytes(tag_bytes), "GHASH disagrees with aes-gcm");

    for blocks in [2usize, 5] {
        let sealed = two_key_ciphertext(&key1, &nonce1, &key2, &nonce2, ad, b"fixed ciphertext fill", blocks);
        assert_eq!(sealed.len(), blocks * 16 + 16);
        let p1 = open(&key1, &nonce1, ad, &sealed).expect("opens under (key1, nonce1)");
        let p2 = open(&key2, &nonce2, ad, &sealed).expect("opens under (key2, nonce2)");
        assert_ne!(p1, p2, "the two plaintexts must differ");

        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert!(open(&key1, &nonce1, ad, &tampered).is_none());
        assert!(open(&key2, &nonce2, ad, &tampered).is_none());
        assert!(open(&key1, &nonce1, b"other ad", &sealed).is_none());
    }

    // Distinct keys under one nonce, with empty AD and empty (zero) fill.
    let sealed = two_key_ciphertext(&key1, &nonce1, &key2, &nonce1, &[], &[], 3);
    assert!(open(&key1, &nonce1, &[], &sealed).is_some());
    assert!(open(&key2, &nonce1, &[], &sealed).is_some());
}
