//! Saved states as one value type, for storage layers and `serde`
//! (SPEC.md §11).
//!
//! Live states ([`crate::Session`], [`crate::GroupSender`],
//! [`crate::GroupReceiver`]) are never `Serialize`: saving is an explicit
//! step that yields a [`Snapshot`], and restoring re-checks every invariant.

use alloc::vec::Vec;
use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The saved bytes of a session, group sender or group receiver (SPEC.md
/// §11.2, §11.3). Zeroized on drop; `Debug` prints only its length.
///
/// With the `serde` feature it serializes as a byte string, so it fits any
/// serde format; restoring still goes through `Session::from_bytes` (and
/// the group equivalents), which reject anything malformed.
///
/// # Security
/// Holds every secret of the state. Serialize it only into encrypted
/// storage, or use `seal` instead; never restore an older copy and send.
///
/// ```
/// # use sottovoce::*;
/// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
/// # let alice = Account::new(&mut rng);
/// # let bob = Account::new(&mut rng);
/// # let bundle = bob.prekey_bundle(None).unwrap();
/// let session = Session::initiate(&mut rng, alice.identity_key_pair(), &bundle, b"")?;
/// let snapshot = session.snapshot();
/// let restored = Session::restore(&snapshot)?;
/// assert_eq!(restored.session_id(), session.session_id());
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
///
/// Not `PartialEq`: comparing two snapshots would compare every secret of a
/// state with an early exit. Compare what identifies a state instead.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Snapshot(Vec<u8>);

impl Snapshot {
    pub(crate) fn new(mut bytes: Zeroizing<Vec<u8>>) -> Self {
        // Moves the buffer out: no copy left behind.
        Self(core::mem::take(&mut *bytes))
    }

    /// The saved-state bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Wraps saved-state bytes (checked only when restored).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Snapshot({} bytes, <redacted>)", self.0.len())
    }
}

/// The saving methods every saved state has, on top of its own
/// `to_bytes` / `from_bytes` (SPEC.md §11).
macro_rules! persistence_methods {
    ($ty:ident) => {
        impl $ty {
            /// Saves the state as a [`crate::Snapshot`] (the bytes of
            /// `to_bytes`).
            ///
            /// # Security
            /// Holds every secret of the state. Never restore an older copy:
            /// a session, record or sender would reuse message keys, an
            /// account would bring back used one-time prekeys (SPEC.md §12).
            pub fn snapshot(&self) -> crate::Snapshot {
                crate::Snapshot::new(self.to_bytes())
            }

            /// Restores a state from a [`crate::Snapshot`], checking it as
            /// `from_bytes` does.
            ///
            /// # Errors
            /// [`crate::DecodeError`] for anything malformed or out of bounds.
            pub fn restore(snapshot: &crate::Snapshot) -> Result<Self, crate::DecodeError> {
                Self::from_bytes(snapshot.as_bytes())
            }

            /// Saves the state sealed under a 32-byte storage key with
            /// AES-256-GCM and a random nonce (SPEC.md §11.4). Consumes 12
            /// bytes of `rng`.
            ///
            /// # Security
            /// Sealing hides and authenticates the state but cannot stop
            /// rollback: putting back an older sealed blob makes the state
            /// reuse message keys when it sends. Keep a monotonic counter
            /// next to it if storage is not trusted.
            pub fn seal<R: rand_core::CryptoRng + ?Sized>(
                &self,
                rng: &mut R,
                storage_key: &[u8; crate::crypto::KEY_LEN],
            ) -> alloc::vec::Vec<u8> {
                crate::sealed::seal(rng, storage_key, &self.to_bytes())
            }

            /// Opens a state sealed by `seal`. Bounds and consistency are
            /// checked as by `from_bytes`; the Ed25519 keys inside, accepted
            /// when they first arrived and authenticated by the storage key
            /// now, are not validated again (SPEC.md §11.4), which makes
            /// this the fast way to restore a state around each message.
            ///
            /// # Security
            /// A sealed blob does not name its storage slot: after unsealing,
            /// check that it is the state you expected (a session's id or
            /// remote identity, a record's remote address, a group's id, an
            /// account's identity key), SPEC.md §12.
            ///
            /// # Errors
            /// [`crate::RestoreError::Authentication`] for a wrong key or
            /// changed bytes, [`crate::RestoreError::Decode`] for malformed
            /// contents.
            pub fn unseal(
                storage_key: &[u8; crate::crypto::KEY_LEN],
                sealed: &[u8],
            ) -> Result<Self, crate::RestoreError> {
                let plain = crate::sealed::open(storage_key, sealed)?;
                Ok(Self::decode(&plain, crate::wire::Keys::Trust)?)
            }
        }
    };
}

pub(crate) use persistence_methods;

#[cfg(feature = "serde")]
mod serde_impl {
    use alloc::vec::Vec;
    use core::fmt;

    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use zeroize::{Zeroize, Zeroizing};

    use super::Snapshot;

    /// Upper bound on a snapshot's size when deserializing, so a hostile
    /// input cannot make us allocate without bound: a session with
    /// `MAX_SKIPPED_KEYS` skipped keys is about 136 KiB, a session record
    /// with every session full about 820 KiB; a group receiver with every
    /// bound reached about 350 KiB. A group state of many members with full
    /// receivers can be larger: serializing one over the bound fails (so it
    /// is never written and then lost); save such states with `to_bytes` or
    /// `seal`, which have no such bound.
    const MAX_SNAPSHOT_LEN: usize = 4 << 20;

    impl Serialize for Snapshot {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            if self.0.len() > MAX_SNAPSHOT_LEN {
                return Err(serde::ser::Error::custom(
                    "saved state too large for a serde snapshot: use to_bytes or seal",
                ));
            }
            serializer.serialize_bytes(&self.0)
        }
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Snapshot;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("saved-state bytes")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Snapshot, E> {
            if v.len() > MAX_SNAPSHOT_LEN {
                return Err(E::invalid_length(v.len(), &self));
            }
            Ok(Snapshot(v.to_vec()))
        }

        /// An owned buffer (reader-based formats): moved in, never copied,
        /// so no unwiped copy is left behind.
        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Snapshot, E> {
            let mut v = Zeroizing::new(v);
            if v.len() > MAX_SNAPSHOT_LEN {
                return Err(E::invalid_length(v.len(), &self));
            }
            Ok(Snapshot(core::mem::take(&mut *v)))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Snapshot, A::Error> {
            // Every buffer that held saved bytes is wiped before it is freed:
            // on growth, on error and on success alike.
            let mut out = Zeroizing::new(Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_SNAPSHOT_LEN)));
            while let Some(b) = seq.next_element::<u8>()? {
                if out.len() == MAX_SNAPSHOT_LEN {
                    return Err(de::Error::invalid_length(out.len() + 1, &self));
                }
                if out.len() == out.capacity() {
                    let mut grown = Vec::with_capacity(out.capacity().saturating_mul(2).clamp(64, MAX_SNAPSHOT_LEN));
                    grown.extend_from_slice(&out);
                    // Wipe the old buffer's whole capacity before it is freed.
                    out.zeroize();
                    *out = grown;
                }
                out.push(b);
            }
            Ok(Snapshot(core::mem::take(&mut *out)))
        }
    }

    impl<'de> Deserialize<'de> for Snapshot {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Snapshot, D::Error> {
            deserializer.deserialize_bytes(BytesVisitor)
        }
    }
}
