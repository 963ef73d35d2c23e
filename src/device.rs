//! Users, devices and addresses (SPEC.md §3.7, §4.6).
//!
//! A **user** is named by the application (a user id) and has one **user
//! identity key**, the key safety numbers are computed over (SPEC.md §3.5).
//! Each of its **devices** has its own identity key pair, the one X3DH uses.
//! The user identity signs each device's identity key: as a
//! [`DeviceCertificate`] for one device, and as a [`DeviceList`] for all of
//! them, so a peer who knows the user identity key (and compared its safety
//! number) can check every device's key without trusting the server.

use alloc::vec::Vec;
use core::fmt;

use crate::crypto::{KEY_LEN, SIGNATURE_LEN};
use crate::error::{DecodeError, KeyAgreementError};
use crate::keys::{IdentityKey, IdentityKeyPair};
use crate::labels::{DEVICE_CERTIFICATE_CONTEXT, DEVICE_LIST_CONTEXT};
use crate::safety::MAX_USER_ID_LEN;
use crate::wire::{Reader, Writer, first_byte, kind};

/// At most this many devices a [`DeviceList`] names (SPEC.md §9).
pub const MAX_DEVICES: usize = 16;

/// A device's number within its user, chosen by the user's primary device
/// or the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(pub u32);

/// Where a session ends: a user id (0 to [`MAX_USER_ID_LEN`] bytes, the
/// application's stable name for the user) and a device id (SPEC.md §4.6).
///
/// ```
/// use sottovoce::{Address, DeviceId};
/// let alice_phone = Address::new(b"alice", DeviceId(1))?;
/// assert_eq!(alice_phone.user(), b"alice");
/// assert!(Address::new(&[0u8; 256], DeviceId(1)).is_err());
/// # Ok::<(), sottovoce::DecodeError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    user: Vec<u8>,
    device: DeviceId,
}

impl Address {
    /// An address from a user id and a device id.
    ///
    /// # Errors
    /// [`DecodeError::LimitExceeded`] for a user id over
    /// [`MAX_USER_ID_LEN`] bytes.
    pub fn new(user: &[u8], device: DeviceId) -> Result<Self, DecodeError> {
        if user.len() > MAX_USER_ID_LEN {
            return Err(DecodeError::LimitExceeded {
                got: u32::try_from(user.len()).unwrap_or(u32::MAX),
                max: MAX_USER_ID_LEN as u32,
            });
        }
        Ok(Self { user: user.to_vec(), device })
    }

    /// The user id.
    pub fn user(&self) -> &[u8] {
        &self.user
    }

    /// The device id.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// `len8(user id) || u32(device id)` (SPEC.md §4.6).
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(self.user.len() as u8);
        out.put(&self.user);
        out.put_u32(self.device.0);
    }

    pub(crate) fn encoded_len(&self) -> usize {
        1 + self.user.len() + 4
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = usize::from(r.u8()?);
        let user = r.bytes(n)?.to_vec();
        Ok(Self { user, device: DeviceId(r.u32()?) })
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(&self.user) {
            Ok(s) => write!(f, "Address({s:?}, {})", self.device.0),
            Err(_) => write!(f, "Address({:02x?}, {})", self.user, self.device.0),
        }
    }
}

/// The X3DH binding of a session between two addresses (SPEC.md §4.6):
/// `len8(user_A) || u32(device_A) || len8(user_B) || u32(device_B)`, the
/// initiator's address first. A [`crate::SessionRecord`] derives it
/// itself, so an application cannot leave the unknown-key-share gap open.
///
/// ```
/// use sottovoce::{Address, DeviceId, binding};
/// let a = Address::new(b"alice", DeviceId(1))?;
/// let b = Address::new(b"bob", DeviceId(7))?;
/// assert_eq!(binding(&a, &b), b"\x05alice\0\0\0\x01\x03bob\0\0\0\x07");
/// # Ok::<(), sottovoce::DecodeError>(())
/// ```
pub fn binding(initiator: &Address, responder: &Address) -> Vec<u8> {
    let mut out = Vec::with_capacity(initiator.encoded_len() + responder.encoded_len());
    initiator.write(&mut out);
    responder.write(&mut out);
    out
}

/// A user identity's signature on one device's identity key (SPEC.md §3.7).
///
/// ```text
///  0      1                   33          37                  69              133
///  +------+-------------------+-----------+-------------------+---------------+
///  | 0x1C | user IK.pub (32)  | device id | device IK.pub (32)| signature (64)|
///  +------+-------------------+-----------+-------------------+---------------+
/// ```
///
/// ```
/// # use sottovoce::*;
/// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
/// let user = IdentityKeyPair::generate(&mut rng);
/// let phone = IdentityKeyPair::generate(&mut rng);
/// let cert = DeviceCertificate::sign(&user, DeviceId(1), phone.public_key());
/// let received = DeviceCertificate::try_from(cert.to_bytes().as_slice())?;
/// assert_eq!(received.verify(&user.public_key()), Ok(()));
/// assert_eq!(received.device_key(), phone.public_key());
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCertificate {
    user_key: IdentityKey,
    device: DeviceId,
    device_key: IdentityKey,
    signature: [u8; SIGNATURE_LEN],
}

/// Length of a device certificate's encoding.
const DEVICE_CERTIFICATE_LEN: usize = 1 + KEY_LEN + 4 + KEY_LEN + SIGNATURE_LEN;

impl DeviceCertificate {
    /// Signs `device_key` as device `device` of the user `user`:
    /// `SIGN(user seed, DEVICE_CERTIFICATE_CONTEXT || u32(device id) || device IK.pub)`.
    pub fn sign(user: &IdentityKeyPair, device: DeviceId, device_key: IdentityKey) -> Self {
        let signature = user.sign(&[DEVICE_CERTIFICATE_CONTEXT, &device.0.to_be_bytes(), &device_key.to_bytes()]);
        Self { user_key: user.public_key(), device, device_key, signature }
    }

    /// Checks that `user` signed this certificate.
    ///
    /// # Errors
    /// [`KeyAgreementError::IdentityMismatch`] if the certificate names
    /// another user key; [`KeyAgreementError::BadSignature`] if the
    /// signature does not verify.
    pub fn verify(&self, user: &IdentityKey) -> Result<(), KeyAgreementError> {
        if self.user_key != *user {
            return Err(KeyAgreementError::IdentityMismatch);
        }
        let ok = self.user_key.verify(
            &[DEVICE_CERTIFICATE_CONTEXT, &self.device.0.to_be_bytes(), &self.device_key.to_bytes()],
            &self.signature,
        );
        if ok { Ok(()) } else { Err(KeyAgreementError::BadSignature) }
    }

    /// The user identity key that signed.
    pub fn user_key(&self) -> IdentityKey {
        self.user_key
    }

    /// The device id.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// The device's identity key (the one X3DH uses).
    pub fn device_key(&self) -> IdentityKey {
        self.device_key
    }

    /// The encoding of SPEC.md §3.7 (133 bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(DEVICE_CERTIFICATE_LEN);
        out.put_u8(first_byte(kind::DEVICE_CERTIFICATE));
        out.put(&self.user_key.to_bytes());
        out.put_u32(self.device.0);
        out.put(&self.device_key.to_bytes());
        out.put(&self.signature);
        out
    }
}

impl TryFrom<&[u8]> for DeviceCertificate {
    type Error = DecodeError;

    /// Decodes SPEC.md §3.7, accepting both keys per §2.4. Does not verify
    /// the signature ([`DeviceCertificate::verify`] does).
    fn try_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header(kind::DEVICE_CERTIFICATE)?;
        let user_key = IdentityKey::from_bytes(&r.array()?)?;
        let device = DeviceId(r.u32()?);
        let device_key = IdentityKey::from_bytes(&r.array()?)?;
        let signature = r.array()?;
        r.finish()?;
        Ok(Self { user_key, device, device_key, signature })
    }
}

/// Every device of a user, signed by the user identity (SPEC.md §3.7).
/// The version only grows: a client that has seen version `v` refuses any
/// list older than `v`, so a server cannot bring back a removed device.
///
/// ```text
/// 0x1D | user IK.pub (32) | version (u32) | u8 count (1..=16)
///      | { device id (u32) | device IK.pub (32) }   ids strictly increasing
///      | signature (64) over DEVICE_LIST_CONTEXT || every byte before it
/// ```
///
/// ```
/// # use sottovoce::*;
/// # let mut rng = sottovoce::rand_core::UnwrapErr(getrandom::SysRng);
/// let user = IdentityKeyPair::generate(&mut rng);
/// let phone = IdentityKeyPair::generate(&mut rng).public_key();
/// let laptop = IdentityKeyPair::generate(&mut rng).public_key();
/// let list = DeviceList::sign(&user, 1, &[(DeviceId(1), phone), (DeviceId(2), laptop)])?;
/// let seen = DeviceList::verify(&list.to_bytes(), &user.public_key(), None)?;
/// assert_eq!(seen.device_key(DeviceId(2)), Some(laptop));
/// // Once version 1 was seen, a list must be newer or the very same one:
/// // a server cannot swap in another version 1 without the laptop.
/// let fewer = DeviceList::sign(&user, 1, &[(DeviceId(1), phone)])?;
/// assert!(DeviceList::verify(&fewer.to_bytes(), &user.public_key(), Some(&seen)).is_err());
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceList {
    user_key: IdentityKey,
    version: u32,
    devices: Vec<(DeviceId, IdentityKey)>,
    signature: [u8; SIGNATURE_LEN],
}

impl DeviceList {
    /// Signs a device list. `devices` may come in any order; they are
    /// encoded by increasing id.
    ///
    /// # Errors
    /// [`DecodeError::LimitExceeded`] for no device or more than
    /// [`MAX_DEVICES`]; [`DecodeError::InconsistentState`] if two devices
    /// share an id or a key.
    pub fn sign(
        user: &IdentityKeyPair,
        version: u32,
        devices: &[(DeviceId, IdentityKey)],
    ) -> Result<Self, DecodeError> {
        let mut devices = devices.to_vec();
        devices.sort_by_key(|(id, _)| *id);
        check_devices(&devices)?;
        let mut list = Self { user_key: user.public_key(), version, devices, signature: [0; SIGNATURE_LEN] };
        let body = list.body();
        list.signature = user.sign(&[DEVICE_LIST_CONTEXT, &body]);
        Ok(list)
    }

    /// Decodes a device list, checks that `user` signed it and, if
    /// `previous` (the list last accepted for this user) is given, that it
    /// is newer than `previous` or exactly `previous` again.
    ///
    /// # Errors
    /// [`KeyAgreementError::Decode`] for malformed bytes (ids not strictly
    /// increasing, a key listed twice, a count out of bounds, an
    /// unacceptable key); [`KeyAgreementError::IdentityMismatch`] for
    /// another user's list, or one older than `previous` (or of the same
    /// version with other contents); [`KeyAgreementError::BadSignature`]
    /// if the signature fails.
    pub fn verify(bytes: &[u8], user: &IdentityKey, previous: Option<&DeviceList>) -> Result<Self, KeyAgreementError> {
        let list = Self::decode(bytes).map_err(KeyAgreementError::Decode)?;
        if list.user_key != *user {
            return Err(KeyAgreementError::IdentityMismatch);
        }
        let body = list.body();
        if !list.user_key.verify(&[DEVICE_LIST_CONTEXT, &body], &list.signature) {
            return Err(KeyAgreementError::BadSignature);
        }
        if let Some(prev) = previous {
            let newer = list.version > prev.version || (list.version == prev.version && list == *prev);
            if prev.user_key != list.user_key || !newer {
                return Err(KeyAgreementError::IdentityMismatch);
            }
        }
        Ok(list)
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.header(kind::DEVICE_LIST)?;
        let user_key = IdentityKey::from_bytes(&r.array()?)?;
        let version = r.u32()?;
        let n = usize::from(r.u8()?);
        if n == 0 || n > MAX_DEVICES {
            return Err(DecodeError::LimitExceeded { got: n as u32, max: MAX_DEVICES as u32 });
        }
        let mut devices = Vec::with_capacity(n);
        for _ in 0..n {
            let id = DeviceId(r.u32()?);
            devices.push((id, IdentityKey::from_bytes(&r.array()?)?));
        }
        let signature = r.array()?;
        r.finish()?;
        check_devices(&devices)?;
        Ok(Self { user_key, version, devices, signature })
    }

    /// The bytes the signature covers (after the context): everything
    /// before the signature.
    fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + KEY_LEN + 4 + 1 + 36 * self.devices.len());
        out.put_u8(first_byte(kind::DEVICE_LIST));
        out.put(&self.user_key.to_bytes());
        out.put_u32(self.version);
        out.put_u8(self.devices.len() as u8);
        for (id, key) in &self.devices {
            out.put_u32(id.0);
            out.put(&key.to_bytes());
        }
        out
    }

    /// The encoding of SPEC.md §3.7.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.body();
        out.put(&self.signature);
        out
    }

    /// The user identity key that signed.
    pub fn user_key(&self) -> IdentityKey {
        self.user_key
    }

    /// The list's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The devices, by increasing id.
    pub fn devices(&self) -> &[(DeviceId, IdentityKey)] {
        &self.devices
    }

    /// The identity key of device `id`, if listed.
    pub fn device_key(&self, id: DeviceId) -> Option<IdentityKey> {
        self.devices.iter().find(|(d, _)| *d == id).map(|(_, k)| *k)
    }
}

impl TryFrom<&[u8]> for DeviceList {
    type Error = DecodeError;

    /// Decodes SPEC.md §3.7 without checking the signature (for
    /// inspection and storage; [`DeviceList::verify`] decodes and checks).
    fn try_from(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(bytes)
    }
}

/// Ids strictly increasing (so distinct), keys distinct, 1..=MAX_DEVICES.
fn check_devices(devices: &[(DeviceId, IdentityKey)]) -> Result<(), DecodeError> {
    if devices.is_empty() || devices.len() > MAX_DEVICES {
        return Err(DecodeError::LimitExceeded { got: devices.len() as u32, max: MAX_DEVICES as u32 });
    }
    let rising = devices.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0));
    let distinct =
        devices.iter().enumerate().all(|(i, (_, k))| devices.iter().skip(i + 1).all(|(_, other)| other != k));
    if rising && distinct { Ok(()) } else { Err(DecodeError::InconsistentState) }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn a_certificate_signed_by_another_user_or_altered_fails() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let user = IdentityKeyPair::generate(&mut rng);
        let other = IdentityKeyPair::generate(&mut rng);
        let device = IdentityKeyPair::generate(&mut rng).public_key();
        let cert = DeviceCertificate::sign(&user, DeviceId(3), device);
        assert_eq!(cert.verify(&other.public_key()), Err(KeyAgreementError::IdentityMismatch));
        let mut bytes = cert.to_bytes();
        bytes[36] ^= 1; // the device id
        let altered = DeviceCertificate::try_from(bytes.as_slice()).unwrap();
        assert_eq!(altered.verify(&user.public_key()), Err(KeyAgreementError::BadSignature));
        // Signed as a device list entry is not a certificate: other context.
        let list = DeviceList::sign(&user, 1, &[(DeviceId(3), device)]).unwrap();
        let forged = DeviceCertificate { signature: list.signature, ..cert.clone() };
        assert_eq!(forged.verify(&user.public_key()), Err(KeyAgreementError::BadSignature));
        assert_eq!(
            DeviceCertificate::try_from(&cert.to_bytes()[..132]).unwrap_err(),
            DecodeError::Truncated { offset: 69 }
        );
    }

    #[test]
    fn device_lists_only_move_forward() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let user = IdentityKeyPair::generate(&mut rng);
        let a = IdentityKeyPair::generate(&mut rng).public_key();
        let b = IdentityKeyPair::generate(&mut rng).public_key();
        let v2 = DeviceList::sign(&user, 2, &[(DeviceId(2), b), (DeviceId(1), a)]).unwrap();
        assert_eq!(v2.devices().first().map(|d| d.0), Some(DeviceId(1)));
        let seen = DeviceList::verify(&v2.to_bytes(), &user.public_key(), None).unwrap();
        let v1 = DeviceList::sign(&user, 1, &[(DeviceId(1), a)]).unwrap();
        assert_eq!(
            DeviceList::verify(&v1.to_bytes(), &user.public_key(), Some(&seen)).unwrap_err(),
            KeyAgreementError::IdentityMismatch
        );
        assert!(DeviceList::verify(&v2.to_bytes(), &user.public_key(), Some(&seen)).is_ok());
        let v3 = DeviceList::sign(&user, 3, &[(DeviceId(1), a)]).unwrap();
        assert!(DeviceList::verify(&v3.to_bytes(), &user.public_key(), Some(&seen)).is_ok());
        assert_eq!(
            DeviceList::sign(&user, 3, &[(DeviceId(1), a), (DeviceId(2), a)]),
            Err(DecodeError::InconsistentState)
        );
        assert!(DeviceList::sign(&user, 3, &[]).is_err());
        let mut tampered = v2.to_bytes();
        tampered[34] ^= 1; // the version
        assert_eq!(
            DeviceList::verify(&tampered, &user.public_key(), None).unwrap_err(),
            KeyAgreementError::BadSignature
        );
    }
}
