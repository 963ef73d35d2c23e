//! Byte-level codec shared by every wire and saved-state format (SPEC.md §6).
//!
//! No cryptography happens here: a [`Reader`] walks a byte slice and can
//! only return errors, never panic; a writer is a `Vec<u8>`.

use alloc::vec::Vec;

use crate::error::DecodeError;

/// The version nibble of version 1 (X3DH), and of every encoding version 2
/// does not change (SPEC.md §6.1).
pub(crate) const VERSION: u8 = 1;

/// The version nibble of version 2 (PQXDH, SPEC.md §6.8).
pub(crate) const VERSION_PQ: u8 = 2;

/// Type nibbles (SPEC.md §6.1).
pub(crate) mod kind {
    pub(crate) const SAVED_GROUP: u8 = 0x0;
    pub(crate) const MESSAGE: u8 = 0x1;
    pub(crate) const PREKEY_MESSAGE: u8 = 0x2;
    pub(crate) const PREKEY_BUNDLE: u8 = 0x3;
    pub(crate) const SENDER_KEY_DISTRIBUTION: u8 = 0x4;
    pub(crate) const GROUP_MESSAGE: u8 = 0x5;
    pub(crate) const SAVED_SESSION: u8 = 0x6;
    pub(crate) const SAVED_GROUP_SENDER: u8 = 0x7;
    pub(crate) const SAVED_GROUP_RECEIVER: u8 = 0x8;
    pub(crate) const SEALED_STATE: u8 = 0x9;
    pub(crate) const SAVED_ACCOUNT: u8 = 0xA;
    pub(crate) const PREKEY_UPLOAD: u8 = 0xB;
    pub(crate) const DEVICE_CERTIFICATE: u8 = 0xC;
    pub(crate) const DEVICE_LIST: u8 = 0xD;
    pub(crate) const ENVELOPE: u8 = 0xE;
    pub(crate) const SAVED_RECORD: u8 = 0xF;
}

/// The first byte of a version-1 encoding of the given type.
pub(crate) const fn first_byte(kind: u8) -> u8 {
    (VERSION << 4) | kind
}

/// The first byte of an encoding of the given version and type.
pub(crate) const fn first_byte_of(version: u8, kind: u8) -> u8 {
    (version << 4) | kind
}

/// Which Ed25519 key checks a decode makes (SPEC.md §11.1, §11.4): all of
/// them for bytes from anywhere, none for a state read back from a sealed
/// blob that authenticated under the caller's storage key (every key in it
/// was accepted when it first arrived). Bounds and consistency are checked
/// either way.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keys {
    Check,
    Trust,
}

/// A cursor over untrusted bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Reads and checks the first byte: version nibble, then type nibble.
    pub(crate) fn header(&mut self, kind: u8) -> Result<(), DecodeError> {
        let b = self.u8()?;
        if b >> 4 != VERSION {
            return Err(DecodeError::UnknownVersion(b));
        }
        if b & 0x0f != kind {
            return Err(DecodeError::UnexpectedType(b));
        }
        Ok(())
    }

    /// As [`Reader::header`] for a type that both versions define (SPEC.md
    /// §6.1): returns the version.
    pub(crate) fn header_any(&mut self, kind: u8) -> Result<u8, DecodeError> {
        let b = self.u8()?;
        if b >> 4 != VERSION && b >> 4 != VERSION_PQ {
            return Err(DecodeError::UnknownVersion(b));
        }
        if b & 0x0f != kind {
            return Err(DecodeError::UnexpectedType(b));
        }
        Ok(b >> 4)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated { offset: self.pos })?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated { offset: self.pos })?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A flag byte: 0x00 is false, 0x01 true, anything else an error.
    pub(crate) fn flag(&mut self) -> Result<bool, DecodeError> {
        let offset = self.pos;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidField { offset }),
        }
    }

    /// A count that must not exceed `max`.
    pub(crate) fn count_u16(&mut self, max: usize) -> Result<usize, DecodeError> {
        let n = usize::from(self.u16()?);
        if n > max {
            return Err(DecodeError::LimitExceeded { got: n as u32, max: max as u32 });
        }
        Ok(n)
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        out
    }

    /// Ends a full-buffer decode: trailing bytes are an error.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        let extra = self.buf.len().saturating_sub(self.pos);
        if extra == 0 { Ok(()) } else { Err(DecodeError::TrailingBytes { extra }) }
    }
}

/// Appends big-endian integers and byte strings.
pub(crate) trait Writer {
    fn put(&mut self, bytes: &[u8]);
    fn put_u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn put_u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }
    fn put_flag(&mut self, v: bool) {
        self.put_u8(u8::from(v));
    }
}

impl Writer for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_never_reads_past_the_end() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16().unwrap(), 0x0102);
        assert_eq!(r.u16(), Err(DecodeError::Truncated { offset: 2 }));
        assert_eq!(r.u8().unwrap(), 3);
        assert_eq!(r.u8(), Err(DecodeError::Truncated { offset: 3 }));
        assert!(r.finish().is_ok());
    }

    #[test]
    fn huge_length_is_truncation_not_overflow() {
        let mut r = Reader::new(&[0; 4]);
        r.u8().unwrap();
        assert_eq!(r.bytes(usize::MAX), Err(DecodeError::Truncated { offset: 1 }));
    }

    #[test]
    fn header_checks_version_before_type() {
        assert_eq!(Reader::new(&[0x21]).header(kind::MESSAGE), Err(DecodeError::UnknownVersion(0x21)));
        assert_eq!(Reader::new(&[0x12]).header(kind::MESSAGE), Err(DecodeError::UnexpectedType(0x12)));
        assert_eq!(Reader::new(&[0x11]).header(kind::MESSAGE), Ok(()));
        assert_eq!(Reader::new(&[]).header(kind::MESSAGE), Err(DecodeError::Truncated { offset: 0 }));
    }

    #[test]
    fn flags_are_strict() {
        assert_eq!(Reader::new(&[0]).flag(), Ok(false));
        assert_eq!(Reader::new(&[1]).flag(), Ok(true));
        assert_eq!(Reader::new(&[2]).flag(), Err(DecodeError::InvalidField { offset: 0 }));
    }

    #[test]
    fn trailing_bytes_are_counted() {
        let mut r = Reader::new(&[0, 0, 0]);
        r.u8().unwrap();
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes { extra: 2 }));
    }
}
