#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod crypto;
mod device;
mod envelope;
mod error;
mod group;
mod kem;
mod keys;
pub mod labels;
mod message;
mod publish;
mod ratchet;
mod record;
mod safety;
mod sealed;
mod secret_vec;
mod session;
mod snapshot;
mod wire;
mod x3dh;

#[cfg(feature = "hazmat")]
pub mod hazmat;

/// The `rand_core` this crate takes its `CryptoRng` from, so callers name the
/// same version (an OS generator: `getrandom::SysRng` with getrandom's
/// `sys_rng` feature, wrapped in `rand_core::UnwrapErr`).
pub use rand_core;

pub use device::{Address, DeviceCertificate, DeviceId, DeviceList, MAX_DEVICES, binding};
pub use envelope::Envelope;
pub use error::{DecodeError, DecryptError, EncryptError, ErrorCategory, KeyAgreementError, RestoreError};
pub use group::{
    GROUP_MESSAGE_OVERHEAD, Group, GroupId, GroupMessage, GroupReceiver, GroupSender, MAX_GROUP_ID_LEN,
    MAX_GROUP_MEMBERS, MAX_GROUP_SKIP, MAX_GROUP_SKIPPED_KEYS, MAX_SENDER_KEY_STATES, SenderKeyDistribution,
    distribute,
};
pub use kem::{KEM_CIPHERTEXT_LEN, KEM_PUBLIC_KEY_LEN, KEM_SEED_LEN, KemPreKey, KemPreKeyKind, PublicKemPreKey};
pub use keys::{
    Account, IdentityKey, IdentityKeyPair, MAX_LAST_RESORT_KEM_PREKEYS, MAX_ONE_TIME_KEM_PREKEYS, MAX_ONE_TIME_PREKEYS,
    MAX_SIGNED_PREKEYS, OneTimePreKey, PreKeyBundle, PreKeyId, PreKeyStore, SignedPreKey,
};
pub use message::{MESSAGE_OVERHEAD, Message, NormalMessage, PreKeyMessage};
pub use publish::{MAX_UPLOAD_PREKEYS, MAX_UPLOAD_PREKEYS_PQ, PreKeyUpload, PublicOneTimePreKey, PublicSignedPreKey};
pub use ratchet::{MAX_CLOSED_CHAINS, MAX_SKIP, MAX_SKIPPED_KEYS};
pub use record::{MAX_ARCHIVED_SESSIONS, MAX_RETIRED_SESSIONS, SessionRecord};
pub use safety::{MAX_USER_ID_LEN, SAFETY_NUMBER_ITERATIONS, SafetyNumber};
pub use session::{InboundSession, MAX_LAST_RESORT_USES, Role, Session, SessionId};
pub use snapshot::Snapshot;
pub use x3dh::MAX_BINDING_LEN;
