//! Collecting the secrets to look for.
//!
//! Three sources, all read with recording off:
//! - every 32-byte RNG draw (private keys, seeds, sender chain keys), see
//!   `rng.rs`;
//! - the secret fields of every saved state (SPEC.md §11.2, §11.3), read
//!   after every script step, since ratchet keys change at every message;
//! - what follows from those through `sottovoce::hazmat` and SHA-512:
//!   message keys and AES keys along every chain, ratchet DH outputs and
//!   KDF_RK results, X3DH DH outputs and SK, Ed25519 scalars and nonce
//!   prefixes, clamped X25519 scalars.
//!
//! Every buffer here is allocated and freed with recording off, so the
//! allocator wipes it when it is freed: none of it can be counted as a leak.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use sha2::{Digest, Sha512};
use sottovoce::hazmat;
use sottovoce::{GroupReceiver, GroupSender, IdentityKeyPair, PreKeyId, Session, SignedPreKey};

use crate::heap;
use crate::rng::Draw;

/// How far every chain key is stepped forward when deriving message keys:
/// more than the largest gap the script skips over in one message.
const CHAIN_WALK: usize = 24;

/// A secret to look for.
pub struct Secret {
    pub bytes: [u8; 32],
    pub kind: &'static str,
    /// The script step after which it was first seen (or drawn).
    pub step: u32,
}

/// Distinct secrets; the first kind a value is added under is kept.
#[derive(Default)]
pub struct Secrets {
    pub list: Vec<Secret>,
    index: HashMap<[u8; 32], usize>,
}

impl Secrets {
    pub fn contains(&self, bytes: &[u8; 32]) -> bool {
        self.index.contains_key(bytes)
    }

    pub fn add(&mut self, bytes: [u8; 32], kind: &'static str, step: u32) {
        if bytes == [0u8; 32] || self.index.contains_key(&bytes) {
            return;
        }
        self.index.insert(bytes, self.list.len());
        self.list.push(Secret { bytes, kind, step });
    }

    /// Distinct secrets per kind.
    pub fn kinds(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for s in &self.list {
            *m.entry(s.kind).or_insert(0) += 1;
        }
        m
    }

    /// Wipes every value (harness copies of secrets).
    pub fn wipe(&mut self) {
        heap::paused(|| {
            for s in &mut self.list {
                // SAFETY: a 32-byte array is valid for 32 byte writes.
                unsafe { heap::wipe_raw(s.bytes.as_mut_ptr(), 32) };
            }
            self.list = Vec::new();
            self.index = HashMap::new();
        });
    }
}

/// What one side of one session has held over time: the inputs of the
/// ratchet DHs and KDF_RK steps it can have computed.
#[derive(Default)]
struct Track {
    /// DHs.priv values (and, for a responder, the signed prekey copy).
    privs: Vec<[u8; 32]>,
    /// DHr values (and, for an initiator, the responder's signed prekey).
    pubs: Vec<[u8; 32]>,
    /// RK values (and SK).
    rks: Vec<[u8; 32]>,
}

fn push_unique(v: &mut Vec<[u8; 32]>, x: [u8; 32]) {
    if !v.contains(&x) {
        v.push(x);
    }
}

/// A chain key and whether it is a session chain (message keys expanded
/// with MESSAGE_KEY_INFO) or a group chain (GROUP_MESSAGE_KEY_INFO).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Chain {
    Session,
    Group,
}

/// The harness's notebook: script steps, secrets seen, inputs to derive
/// from at the end.
pub struct Observer {
    pub secrets: Secrets,
    pub steps: Vec<String>,
    tracks: BTreeMap<String, Track>,
    chain_keys: Vec<([u8; 32], Chain, u32)>,
    message_keys: Vec<([u8; 32], Chain, u32)>,
    seeds: Vec<([u8; 32], u32)>,
    parse_errors: Vec<String>,
}

impl Observer {
    pub fn new() -> Self {
        heap::paused(|| Self {
            secrets: Secrets::default(),
            steps: vec!["setup".to_string()],
            tracks: BTreeMap::new(),
            chain_keys: Vec::new(),
            message_keys: Vec::new(),
            seeds: Vec::new(),
            parse_errors: Vec::new(),
        })
    }

    /// Starts a new script step; blocks freed from now on are tagged with it.
    pub fn step(&mut self, label: fmt::Arguments<'_>) -> u32 {
        heap::paused(|| {
            let n = self.steps.len() as u32;
            self.steps.push(label.to_string());
            heap::set_step(n);
            n
        })
    }

    fn current(&self) -> u32 {
        (self.steps.len() - 1) as u32
    }

    pub fn parse_errors(&self) -> &[String] {
        &self.parse_errors
    }

    /// Reads a session's saved bytes (SPEC.md §11.2) and notes every secret.
    pub fn session(&mut self, name: &str, session: &Session) {
        heap::paused(|| {
            let step = self.current();
            let bytes = session.to_bytes();
            match parse_session(&bytes) {
                Some(s) => {
                    let t = self.tracks.entry(name.to_string()).or_default();
                    push_unique(&mut t.rks, s.rk);
                    self.secrets.add(s.rk, "RK", step);
                    if let Some((dhs, cks)) = s.sending {
                        push_unique(&mut t.privs, dhs);
                        self.secrets.add(dhs, "DHs.priv", step);
                        self.secrets.add(cks, "CKs/CKr", step);
                        self.chain_keys.push((cks, Chain::Session, step));
                    }
                    for (dhr, ckr) in s.receiving {
                        push_unique(&mut t.pubs, dhr);
                        self.secrets.add(ckr, "CKs/CKr", step);
                        self.chain_keys.push((ckr, Chain::Session, step));
                    }
                    for mk in s.skipped {
                        self.secrets.add(mk, "skipped MK", step);
                        self.message_keys.push((mk, Chain::Session, step));
                    }
                }
                None => self.parse_errors.push(format!("saved session of {name} after step {step}")),
            }
        });
    }

    /// Reads a group sender's saved bytes (SPEC.md §11.3).
    pub fn sender(&mut self, name: &str, sender: &GroupSender) {
        heap::paused(|| {
            let step = self.current();
            let bytes = sender.to_bytes();
            match parse_sender(&bytes) {
                Some((ck, seed)) => {
                    self.secrets.add(ck, "group CK", step);
                    self.secrets.add(seed, "group signing seed", step);
                    self.chain_keys.push((ck, Chain::Group, step));
                    self.seeds.push((seed, step));
                }
                None => self.parse_errors.push(format!("saved group sender {name} after step {step}")),
            }
        });
    }

    /// Reads a group receiver's saved bytes (SPEC.md §11.3).
    pub fn receiver(&mut self, name: &str, receiver: &GroupReceiver) {
        heap::paused(|| {
            let step = self.current();
            let bytes = receiver.to_bytes();
            match parse_receiver(&bytes) {
                Some(states) => {
                    for (ck, skipped) in states {
                        self.secrets.add(ck, "group CK", step);
                        self.chain_keys.push((ck, Chain::Group, step));
                        for mk in skipped {
                            self.secrets.add(mk, "skipped group MK", step);
                            self.message_keys.push((mk, Chain::Group, step));
                        }
                    }
                }
                None => self.parse_errors.push(format!("saved group receiver {name} after step {step}")),
            }
        });
    }

    /// Notes an X3DH run: its DH outputs and SK (from the hazmat
    /// transcript), and the inputs of the first ratchet steps of both sides.
    pub fn x3dh(
        &mut self,
        initiator: &str,
        responder: &str,
        transcript: &hazmat::X3dhTranscript,
        responder_spk: (&[u8; 32], &[u8; 32]),
    ) {
        heap::paused(|| {
            let step = self.current();
            for (i, dh) in transcript.dh.iter().enumerate() {
                let kind = ["X3DH DH1", "X3DH DH2", "X3DH DH3", "X3DH DH4"].get(i).copied().unwrap_or("X3DH DH");
                self.secrets.add(*dh, kind, step);
            }
            self.secrets.add(transcript.sk, "X3DH SK", step);
            if let Some(ss) = transcript.kem_shared_secret {
                self.secrets.add(ss, "PQXDH ML-KEM shared secret", step);
            }
            let (spk_priv, spk_pub) = responder_spk;
            let t = self.tracks.entry(initiator.to_string()).or_default();
            push_unique(&mut t.rks, transcript.sk);
            push_unique(&mut t.pubs, *spk_pub);
            let t = self.tracks.entry(responder.to_string()).or_default();
            push_unique(&mut t.rks, transcript.sk);
            push_unique(&mut t.privs, *spk_priv);
        });
    }

    /// Any other secret the script handles (e.g. a storage key).
    pub fn add(&mut self, bytes: [u8; 32], kind: &'static str) {
        heap::paused(|| {
            let step = self.current();
            self.secrets.add(bytes, kind, step);
        });
    }

    /// Adds the RNG draws and everything derived from what was seen.
    pub fn derive(&mut self, draws: &[Draw]) {
        heap::paused(|| self.derive_inner(draws));
    }

    fn derive_inner(&mut self, draws: &[Draw]) {
        let s = &mut self.secrets;
        for d in draws {
            s.add(d.bytes, d.kind, d.step);
        }
        // A KEM seed d || z (SPEC.md §4.8): the secret part of the
        // decapsulation key it expands to (ByteEncode12(s), 1536 bytes) in
        // 32-byte pieces; the library keeps it on the stack only.
        for w in draws.windows(2) {
            if let [d, z] = w
                && d.kind == "ML-KEM seed d"
                && z.kind == "ML-KEM seed z"
            {
                let mut seed = [0u8; 64];
                seed[..32].copy_from_slice(&d.bytes);
                seed[32..].copy_from_slice(&z.bytes);
                let mut dk = hazmat::kem_decapsulation_key(&seed);
                for piece in dk[..1536].chunks_exact(32) {
                    s.add(piece.try_into().unwrap_or_default(), "ML-KEM dk (s), a 32-byte piece", d.step);
                }
                // SAFETY: the vector's buffer is valid for its length.
                unsafe {
                    heap::wipe_raw(dk.as_mut_ptr(), dk.len());
                    heap::wipe_raw(seed.as_mut_ptr(), 64);
                }
            }
        }
        for d in draws {
            match d.kind {
                "ML-KEM seed d" | "ML-KEM seed z" => {}
                "identity seed" | "group signing seed" => ed25519_derived(s, &d.bytes, d.step),
                "group CK" => self.chain_keys.push((d.bytes, Chain::Group, d.step)),
                _ => s.add(clamp(d.bytes), "X25519 private key, clamped", d.step),
            }
        }
        for (seed, step) in &self.seeds {
            ed25519_derived(s, seed, *step);
        }
        // Ratchet DHs and KDF_RK: every (DHs.priv, DHr) pair one side held,
        // and KDF_RK of each of its RKs with each of those outputs.
        let dummy = IdentityKeyPair::from_seed(&[7u8; 32]);
        for t in self.tracks.values() {
            let mut outputs = Vec::new();
            for p in &t.privs {
                for q in &t.pubs {
                    if let Some(out) = dh(&dummy, p, q) {
                        s.add(out, "ratchet DH output", 0);
                        outputs.push(out);
                    }
                }
            }
            for rk in &t.rks {
                for out in &outputs {
                    // Speculative (a KDF_RK the side may have run): the
                    // result and its first message key only.
                    let (rk2, ck) = hazmat::kdf_rk(rk, out);
                    s.add(rk2, "RK (derived)", 0);
                    s.add(ck, "CK (derived)", 0);
                    let (mk, _) = hazmat::kdf_ck(&ck);
                    s.add(mk, "MK (derived)", 0);
                    s.add(aes_key(&mk, Chain::Session), "AES key (derived)", 0);
                }
            }
        }
        // Every chain seen, forward: MK, AES key, next CK. A walk stops
        // where it reaches a chain key already known (that one is walked
        // on its own), so consecutive observations cost one step each.
        for (ck, chain, step) in &self.chain_keys {
            let (mk_kind, aes_kind, ck_kind) = match chain {
                Chain::Session => ("MK (derived)", "AES key (derived)", "CK (derived)"),
                Chain::Group => ("group MK (derived)", "group AES key (derived)", "group CK (derived)"),
            };
            let mut cur = *ck;
            for _ in 0..CHAIN_WALK {
                let (mk, next) = hazmat::kdf_ck(&cur);
                s.add(mk, mk_kind, *step);
                s.add(aes_key(&mk, *chain), aes_kind, *step);
                if s.contains(&next) {
                    break;
                }
                s.add(next, ck_kind, *step);
                cur = next;
            }
        }
        for (mk, chain, step) in &self.message_keys {
            let kind = match chain {
                Chain::Session => "AES key (derived)",
                Chain::Group => "group AES key (derived)",
            };
            s.add(aes_key(mk, *chain), kind, *step);
        }
    }
}

fn aes_key(mk: &[u8; 32], chain: Chain) -> [u8; 32] {
    match chain {
        Chain::Session => hazmat::expand_message_key(mk).0,
        Chain::Group => hazmat::expand_group_message_key(mk).0,
    }
}

/// X25519 clamping (RFC 7748).
fn clamp(mut k: [u8; 32]) -> [u8; 32] {
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    k
}

/// Ed25519's group order l, little-endian 64-bit limbs.
const L: [u64; 4] = [0x5812_631a_5cf5_d3ed, 0x14de_f9de_a2f7_9cd6, 0, 0x1000_0000_0000_0000];

/// A 256-bit little-endian integer reduced mod l (at most 16 subtractions).
fn mod_l(bytes: &[u8; 32]) -> [u8; 32] {
    let mut x = [0u64; 4];
    for (i, limb) in x.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[8 * i..8 * i + 8]);
        *limb = u64::from_le_bytes(b);
    }
    let ge = |x: &[u64; 4]| {
        for i in (0..4).rev() {
            if x[i] != L[i] {
                return x[i] > L[i];
            }
        }
        true
    };
    while ge(&x) {
        let mut borrow = 0u64;
        for i in 0..4 {
            let (d1, b1) = x[i].overflowing_sub(L[i]);
            let (d2, b2) = d1.overflowing_sub(borrow);
            x[i] = d2;
            borrow = u64::from(b1 | b2);
        }
    }
    let mut out = [0u8; 32];
    for i in 0..4 {
        out[8 * i..8 * i + 8].copy_from_slice(&x[i].to_le_bytes());
    }
    out
}

/// What an Ed25519 seed expands to: SHA-512(seed) = scalar half || nonce
/// prefix; the scalar clamped (also the identity's X25519 key, SPEC.md
/// §3.1) and reduced mod l (what signing computes with).
fn ed25519_derived(s: &mut Secrets, seed: &[u8; 32], step: u32) {
    let mut h: [u8; 64] = Sha512::digest(seed).into();
    let mut lo = [0u8; 32];
    let mut hi = [0u8; 32];
    lo.copy_from_slice(&h[..32]);
    hi.copy_from_slice(&h[32..]);
    s.add(lo, "Ed25519 scalar bytes (SHA-512 low half)", step);
    s.add(hi, "Ed25519 nonce prefix (SHA-512 high half)", step);
    s.add(clamp(lo), "Ed25519/X25519 scalar, clamped", step);
    s.add(mod_l(&clamp(lo)), "Ed25519 scalar mod l", step);
    s.add(hazmat::identity_x25519_secret(&IdentityKeyPair::from_seed(seed)), "identity X25519 private key", step);
    // SAFETY: a 64-byte array is valid for 64 byte writes.
    unsafe { heap::wipe_raw(h.as_mut_ptr(), 64) };
}

/// X25519(private, public), through the hazmat X3DH responder: its DH3 is
/// DH(SPK.priv, EK_A.pub).
fn dh(dummy: &IdentityKeyPair, private: &[u8; 32], public: &[u8; 32]) -> Option<[u8; 32]> {
    let spk = SignedPreKey::from_secret_bytes(PreKeyId(1), private, dummy);
    let t = hazmat::x3dh_respond(dummy, &spk, None, None, &dummy.public_key(), public, b"").ok()?;
    t.dh.get(2).copied()
}

// ---------------------------------------------------------------- parsing

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Self {
        Self { b, i: 0 }
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn key(&mut self) -> Option<[u8; 32]> {
        self.take(32)?.try_into().ok()
    }
    fn flag(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    /// First byte, then the format revision: 0x02 (SPEC.md revision 2), or
    /// 0x01 for a library mid-change.
    fn header(&mut self, first: u8) -> Option<()> {
        (self.u8()? == first && matches!(self.u8()?, 1 | 2)).then_some(())
    }
    fn gid(&mut self) -> Option<()> {
        let n = self.u8()? as usize;
        self.take(n).map(|_| ())
    }
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

struct SavedSession {
    rk: [u8; 32],
    sending: Option<([u8; 32], [u8; 32])>,
    receiving: Vec<([u8; 32], [u8; 32])>,
    skipped: Vec<[u8; 32]>,
}

/// SPEC.md §11.2 (revision 2: role, PN, one open chain, closed chains;
/// the layout before it is still read, for a library mid-change).
fn parse_session(b: &[u8]) -> Option<SavedSession> {
    parse_session_open_chain(b).or_else(|| parse_session_chain_list(b))
}

fn parse_session_prefix(c: &mut Cursor<'_>, role_flag: bool) -> Option<()> {
    // 0x16, or 0x26 for a PQXDH session (SPEC.md §11.2).
    let pq = c.b.first() == Some(&0x26);
    c.header(if pq { 0x26 } else { 0x16 })?;
    c.take(4 * 32)?; // session id, local IK, remote IK, H_AD
    let initiator = if role_flag { c.flag()? } else { true };
    let pending = c.flag()?; // pending prekey
    c.u32()?; // SPK id
    if c.flag()? {
        c.u32()?; // OPK id
    }
    if pq {
        c.u32()?; // KEM id
        if pending {
            c.take(1568)?; // the KEM ciphertext (public)
        } else if !initiator {
            c.key()?; // SHA-256 of the KEM ciphertext (public)
        }
    }
    Some(())
}

fn parse_skipped(c: &mut Cursor<'_>) -> Option<Vec<[u8; 32]>> {
    let mut skipped = Vec::new();
    for _ in 0..c.u16()? {
        c.key()?; // DHr
        c.u32()?; // N
        skipped.push(c.key()?);
    }
    Some(skipped)
}

/// `... | role | pending | SPK id | OPK | RK | PN | sending [DHs.priv DHs.pub CKs Ns]
/// | open chain [DHr CKr Nr] | closed { DHr PN } | skipped { DHr N MK }`.
fn parse_session_open_chain(b: &[u8]) -> Option<SavedSession> {
    let mut c = Cursor::new(b);
    parse_session_prefix(&mut c, true)?;
    let rk = c.key()?;
    c.u32()?; // PN
    let sending = if c.flag()? {
        let dhs = c.key()?;
        c.key()?; // DHs.pub
        let cks = c.key()?;
        c.u32()?;
        Some((dhs, cks))
    } else {
        None
    };
    let mut receiving = Vec::new();
    if c.flag()? {
        let dhr = c.key()?;
        let ckr = c.key()?;
        c.u32()?;
        receiving.push((dhr, ckr));
    }
    for _ in 0..c.u8()? {
        c.key()?; // closed DHr (public)
        c.u32()?; // its PN
    }
    let skipped = parse_skipped(&mut c)?;
    c.done().then_some(SavedSession { rk, sending, receiving, skipped })
}

/// The first draft: `... | pending | SPK id | OPK | RK | sending [DHs.priv CKs Ns]
/// | u8 chains { DHr CKr Nr } | skipped { DHr N MK }`.
fn parse_session_chain_list(b: &[u8]) -> Option<SavedSession> {
    let mut c = Cursor::new(b);
    parse_session_prefix(&mut c, false)?;
    let rk = c.key()?;
    let sending = if c.flag()? {
        let dhs = c.key()?;
        let cks = c.key()?;
        c.u32()?;
        Some((dhs, cks))
    } else {
        None
    };
    let mut receiving = Vec::new();
    for _ in 0..c.u8()? {
        let dhr = c.key()?;
        let ckr = c.key()?;
        c.u32()?;
        receiving.push((dhr, ckr));
    }
    let skipped = parse_skipped(&mut c)?;
    c.done().then_some(SavedSession { rk, sending, receiving, skipped })
}

/// SPEC.md §11.3, sender: (CK, signing seed).
fn parse_sender(b: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    let mut c = Cursor::new(b);
    c.header(0x17)?;
    c.gid()?;
    c.key()?; // IK_S
    c.u32()?; // key id
    let ck = c.key()?;
    c.u32()?; // iteration
    let seed = c.key()?;
    c.done().then_some((ck, seed))
}

/// A receiver's sender key state: its chain key and skipped message keys.
type ReceiverState = ([u8; 32], Vec<[u8; 32]>);

/// SPEC.md §11.3, receiver: per state (CK, skipped MKs).
fn parse_receiver(b: &[u8]) -> Option<Vec<ReceiverState>> {
    let mut c = Cursor::new(b);
    c.header(0x18)?;
    c.gid()?;
    c.key()?; // IK_S
    let mut states = Vec::new();
    for _ in 0..c.u8()? {
        c.u32()?; // key id
        c.key()?; // signing key (public)
        let ck = c.key()?;
        c.u32()?; // next iteration
        let mut skipped = Vec::new();
        for _ in 0..c.u16()? {
            c.u32()?;
            skipped.push(c.key()?);
        }
        states.push((ck, skipped));
    }
    c.done().then_some(states)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mod_l_reduces() {
        let mut l = [0u8; 32];
        for i in 0..4 {
            l[8 * i..8 * i + 8].copy_from_slice(&L[i].to_le_bytes());
        }
        assert_eq!(mod_l(&l), [0u8; 32]);
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(mod_l(&one), one);
    }
}
