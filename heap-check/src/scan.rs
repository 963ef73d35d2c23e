//! Searching the recorded freed blocks for the collected secrets: every
//! byte offset of every block is looked up (8 bytes at a time) in an index
//! of the secrets' first and third quarters, then compared in full.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::heap::Block;
use crate::secrets::Secret;

/// The secrets are random, so their bytes already are a hash.
#[derive(Default)]
struct Spread(u64);

impl Hasher for Spread {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Match {
    /// All 32 bytes.
    Full,
    /// Only the first 16 bytes (e.g. a copy cut by the block's end).
    FirstHalf,
    /// Only the last 16 bytes.
    SecondHalf,
}

pub struct Hit {
    pub secret: usize,
    pub block: usize,
    pub offset: usize,
    pub what: Match,
    /// How many bytes match (32 for a whole copy, 16 to 31 for a half).
    pub len: usize,
}

fn word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

pub fn scan(secrets: &[Secret], blocks: &[Block]) -> Vec<Hit> {
    // word -> (secret index, which half the word starts)
    let mut index: HashMap<u64, Vec<(usize, u8)>, BuildHasherDefault<Spread>> = HashMap::default();
    for (i, s) in secrets.iter().enumerate() {
        index.entry(word(&s.bytes, 0)).or_default().push((i, 0));
        index.entry(word(&s.bytes, 16)).or_default().push((i, 1));
    }
    let mut hits = Vec::new();
    for (bi, block) in blocks.iter().enumerate() {
        // SAFETY: recorded blocks are never freed nor written again.
        let b = unsafe { block.bytes() };
        if b.len() < 16 {
            continue;
        }
        for o in 0..=b.len() - 8 {
            let Some(cands) = index.get(&word(b, o)) else { continue };
            for &(si, half) in cands {
                let s = &secrets[si].bytes;
                if half == 0 {
                    if b.get(o..o + 32) == Some(&s[..]) {
                        hits.push(Hit { secret: si, block: bi, offset: o, what: Match::Full, len: 32 });
                    } else if b.get(o..o + 16) == Some(&s[..16]) {
                        let len = b[o..].iter().zip(s.iter()).take_while(|(x, y)| x == y).count();
                        hits.push(Hit { secret: si, block: bi, offset: o, what: Match::FirstHalf, len });
                    }
                } else if b.get(o..o + 16) == Some(&s[16..]) {
                    let full = o >= 16 && b.get(o - 16..o + 16) == Some(&s[..]);
                    if !full {
                        // Matching bytes counted backwards from the secret's end.
                        let end = o + 16;
                        let len = b[..end].iter().rev().zip(s.iter().rev()).take_while(|(x, y)| x == y).count();
                        hits.push(Hit { secret: si, block: bi, offset: end - len, what: Match::SecondHalf, len });
                    }
                }
            }
        }
    }
    // A half match inside a whole copy is the same copy seen again (e.g.
    // the clamped form of a private key shares 15 of its first 16 bytes).
    let whole: std::collections::HashSet<(usize, usize)> = hits
        .iter()
        .filter(|h| h.what == Match::Full)
        .flat_map(|h| (h.offset..h.offset + 32).map(move |o| (h.block, o)))
        .collect();
    hits.retain(|h| h.what == Match::Full || !(h.offset..h.offset + h.len).any(|o| whole.contains(&(h.block, o))));
    hits
}
