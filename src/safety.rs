//! Safety numbers: what two users compare to authenticate each other's
//! identity keys (SPEC.md §3.5).
//!
//! X3DH authenticates keys, not people (SPEC.md §12): an application MUST
//! let its users compare identity keys. A [`SafetyNumber`] is the same 60
//! digits on both users' screens, and a 65-byte scannable form (for a QR
//! code) that each side checks against its own view.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use sha2::{Digest, Sha512};

use crate::error::DecodeError;
use crate::keys::IdentityKey;
use crate::labels::SAFETY_NUMBER_LABEL;

/// Iterations of SHA-512 in a fingerprint (SPEC.md §3.5): each guess of a
/// key whose digits collide with a target costs this many hashes.
pub const SAFETY_NUMBER_ITERATIONS: u32 = 5200;

/// Longest user id (the application's stable name for a user: an account
/// id, a phone number, a username) that enters a fingerprint.
pub const MAX_USER_ID_LEN: usize = 255;

/// Version byte of the scannable form.
const SCANNABLE_VERSION: u8 = 0x01;

/// One user's fingerprint: `F_5200` of SPEC.md §3.5.
fn fingerprint(identity: &IdentityKey, user_id: &[u8]) -> [u8; 64] {
    let ik = identity.to_bytes();
    let mut h = Sha512::new();
    h.update(SAFETY_NUMBER_LABEL);
    h.update([user_id.len() as u8]);
    h.update(user_id);
    h.update(ik);
    let mut f: [u8; 64] = h.finalize().into();
    for _ in 0..SAFETY_NUMBER_ITERATIONS {
        let mut h = Sha512::new();
        h.update(f);
        h.update(ik);
        f = h.finalize().into();
    }
    f
}

/// 30 decimal digits from a fingerprint: six 5-digit groups, each a
/// big-endian 40-bit chunk mod 100000.
fn digits(f: &[u8; 64]) -> [u8; 30] {
    let mut out = [b'0'; 30];
    for (chunk, group) in f.chunks_exact(5).take(6).zip(out.chunks_exact_mut(5)) {
        let v = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) % 100_000;
        let mut v = v;
        for d in group.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    out
}

/// The safety number of a pair of users (SPEC.md §3.5): the same 60 digits
/// for both, whichever side computes it.
///
/// ```
/// use sottovoce::{IdentityKeyPair, SafetyNumber};
/// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
/// let alice = IdentityKeyPair::generate(&mut rng).public_key();
/// let bob = IdentityKeyPair::generate(&mut rng).public_key();
/// let on_alices_phone = SafetyNumber::new((&alice, b"alice@example.org"), (&bob, b"bob@example.org"))?;
/// let on_bobs_phone = SafetyNumber::new((&bob, b"bob@example.org"), (&alice, b"alice@example.org"))?;
/// assert_eq!(on_alices_phone.digits(), on_bobs_phone.digits());
/// // Bob scans the code on Alice's screen:
/// assert!(on_bobs_phone.matches_scanned(&on_alices_phone.scannable()));
/// # Ok::<(), sottovoce::DecodeError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    local: [u8; 64],
    remote: [u8; 64],
}

impl SafetyNumber {
    /// The safety number between `local` (our identity key and user id) and
    /// `remote` (the peer's). User ids are the application's stable names
    /// for the two users, at most [`MAX_USER_ID_LEN`] bytes.
    ///
    /// # Errors
    /// [`DecodeError::LimitExceeded`] for a user id over [`MAX_USER_ID_LEN`].
    pub fn new(local: (&IdentityKey, &[u8]), remote: (&IdentityKey, &[u8])) -> Result<Self, DecodeError> {
        for id in [local.1, remote.1] {
            if id.len() > MAX_USER_ID_LEN {
                return Err(DecodeError::LimitExceeded {
                    got: u32::try_from(id.len()).unwrap_or(u32::MAX),
                    max: MAX_USER_ID_LEN as u32,
                });
            }
        }
        Ok(Self { local: fingerprint(local.0, local.1), remote: fingerprint(remote.0, remote.1) })
    }

    /// The 60 digits: the two users' 30-digit halves, the smaller first.
    pub fn digits(&self) -> String {
        let (a, b) = (digits(&self.local), digits(&self.remote));
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        first.iter().chain(second.iter()).map(|d| char::from(*d)).collect()
    }

    /// The scannable form (65 bytes, e.g. for a QR code): version `0x01`,
    /// then the first 32 bytes of our fingerprint, then the peer's.
    pub fn scannable(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(65);
        out.push(SCANNABLE_VERSION);
        out.extend_from_slice(self.local.get(..32).unwrap_or_default());
        out.extend_from_slice(self.remote.get(..32).unwrap_or_default());
        out
    }

    /// Whether `scanned`, read from the peer's screen, shows the same two
    /// keys: the peer's fingerprint first, ours second.
    pub fn matches_scanned(&self, scanned: &[u8]) -> bool {
        let mut want = Vec::with_capacity(65);
        want.push(SCANNABLE_VERSION);
        want.extend_from_slice(self.remote.get(..32).unwrap_or_default());
        want.extend_from_slice(self.local.get(..32).unwrap_or_default());
        scanned == want.as_slice()
    }
}

impl fmt::Display for SafetyNumber {
    /// Twelve groups of five digits, separated by spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.digits();
        for (i, c) in d.chars().enumerate() {
            if i > 0 && i % 5 == 0 {
                f.write_str(" ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafetyNumber({self})")
    }
}
