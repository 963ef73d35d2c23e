//! A deterministic RNG that remembers every 32-byte draw: the library draws
//! every private key and seed it creates as 32 bytes from the caller's RNG
//! (SPEC.md §8), so this list is every secret the run *created*.

use std::convert::Infallible;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};

use crate::heap;

/// One 32-byte draw and what the script expected it to be.
pub struct Draw {
    pub bytes: [u8; 32],
    pub kind: &'static str,
    pub step: u32,
}

pub struct Recorder {
    inner: ChaCha20Rng,
    /// What the next draws are (SPEC.md §8 order); the last one repeats.
    kinds: &'static [&'static str],
    drawn: usize,
    step: u32,
    pub draws: Vec<Draw>,
    pub other_draws: usize,
}

impl Recorder {
    pub fn new(seed: u8) -> Self {
        heap::paused(|| Self {
            inner: ChaCha20Rng::from_seed([seed; 32]),
            kinds: &["unlabelled draw"],
            drawn: 0,
            step: 0,
            draws: Vec::with_capacity(1024),
            other_draws: 0,
        })
    }

    /// Names the 32-byte draws of the next library call, in order.
    pub fn expect(&mut self, kinds: &'static [&'static str], step: u32) {
        self.kinds = kinds;
        self.drawn = 0;
        self.step = step;
    }

    /// Wipes the draw log (harness-held copies of secrets) and frees it
    /// with recording off.
    pub fn wipe(&mut self) {
        heap::paused(|| {
            for d in &mut self.draws {
                // SAFETY: a 32-byte array is valid for 32 byte writes.
                unsafe { heap::wipe_raw(d.bytes.as_mut_ptr(), 32) };
            }
            self.draws = Vec::new();
        });
    }
}

impl TryRng for Recorder {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_be_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.inner.fill_bytes(dst);
        if let Ok(bytes) = <[u8; 32]>::try_from(&*dst) {
            let kind = self.kinds.get(self.drawn).or(self.kinds.last()).copied().unwrap_or("unlabelled draw");
            self.drawn += 1;
            let step = self.step;
            // The log grows with recording off: its old buffers are wiped.
            heap::paused(|| self.draws.push(Draw { bytes, kind, step }));
        } else if let Ok(seed) = <[u8; 64]>::try_from(&*dst) {
            // A KEM prekey's seed d || z (SPEC.md §4.8): two secrets.
            let step = self.step;
            heap::paused(|| {
                let (mut d, mut z) = ([0u8; 32], [0u8; 32]);
                d.copy_from_slice(&seed[..32]);
                z.copy_from_slice(&seed[32..]);
                self.draws.push(Draw { bytes: d, kind: "ML-KEM seed d", step });
                self.draws.push(Draw { bytes: z, kind: "ML-KEM seed z", step });
            });
        } else {
            // Key ids (4 bytes) and seal nonces (12): public.
            self.other_draws += 1;
        }
        Ok(())
    }
}

impl TryCryptoRng for Recorder {}
