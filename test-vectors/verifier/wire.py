"""SPEC §6: message formats. Parses and encodes bytes; no cryptography beyond the §3.1 key
acceptance that decoding requires."""

from .errors import ProtocolError
from .keys import accept_kem_key, accept_public_key
from .limits import MAX_GROUP_ID_LEN
from .mutation import mutated, switch
from .primitives import KEM_CT_LEN, KEM_EK_LEN, Reader, len8, u16, u32, x25519

# §6.1 type nibbles
T_MESSAGE, T_PREKEY, T_BUNDLE, T_DISTRIBUTION, T_GROUP = 0x1, 0x2, 0x3, 0x4, 0x5
T_SAVED_SESSION, T_SAVED_SENDER, T_SAVED_RECEIVER, T_SEALED = 0x6, 0x7, 0x8, 0x9
T_SAVED_ACCOUNT = 0xA
T_UPLOAD, T_CERTIFICATE, T_DEVICE_LIST, T_ENVELOPE = 0xB, 0xC, 0xD, 0xE   # §3.6, §3.7, §6.7
T_SAVED_RECORD, T_SAVED_GROUP = 0xF, 0x0                                 # §11.6, §11.7
VERSION = 1
VERSION_PQ = 2   # §6.8: version 2 (PQXDH, §4.8)
# §6.1: the versions that define each type. Version 2 defines six (§6.8); every other type
# is version 1's only.
PQ_TYPES = (T_MESSAGE, T_PREKEY, T_BUNDLE, T_SAVED_SESSION, T_SAVED_ACCOUNT, T_UPLOAD)


def versions_of(expected_type):
    """§6.1: "a decoder expecting a type accepts the versions that define it"."""
    if expected_type in PQ_TYPES or mutated(V2_EVERY_TYPE):
        return (VERSION, VERSION_PQ)
    return (VERSION,)


VERSION_AFTER_TYPE = switch(
    "version-after-type", "§6.1",
    "a decoder checks the version nibble first, then the type nibble (mutated: type first)")
VERSION_UNCHECKED = switch(
    "version-unchecked", "§6.1",
    "a version nibble other than 1 is unknown-version (mutated: the version nibble is ignored)")
V2_EVERY_TYPE = switch(
    "version-2-for-every-type", "§6.1, §6.8",
    "version 2 defines only message, prekey message, bundle, saved session, saved account "
    "and upload; version nibble 2 on any other type is unknown-version (mutated: accepted "
    "for every type)")
V2_TYPES_REFUSED = switch(
    "version-2-types-refused", "§6.1, §6.8",
    "a decoder for one of the six version-2 types accepts version nibble 2 (mutated: "
    "unknown-version, as in revision 2)")
EMBEDDED_VERSION_UNCHECKED = switch(
    "embedded-version-unchecked", "§6.8, §6.3",
    "the message embedded in a prekey message has the prekey message's version: 0x11 in a "
    "0x22 (or 0x21 in a 0x12) is decode (mutated: either version accepted)")
EMBEDDED_OTHER_VERSION_UNKNOWN = switch(
    "embedded-other-version-unknown-version", "§6.1, §6.8",
    "in a prekey message, an embedded message of the other version (0x21 in a 0x12, 0x11 in "
    "a 0x22) is decode; only a version nibble that defines no message is unknown-version "
    "(mutated: unknown-version)")
KEM_LENGTH_UNCHECKED = switch(
    "kem-ek-length-field-unchecked", "§6.8, §3.6",
    "an ek length field other than 1568 (bundle, upload) is decode when the length is read "
    "(mutated: the field is not compared; 1568 bytes are read)")
CT_LENGTH_UNCHECKED = switch(
    "kem-ct-length-field-unchecked", "§6.8",
    "a ct length field other than 1568 is decode when the length is read (mutated: the "
    "field is not compared; 1568 bytes are read)")
KEM_KEY_UNCHECKED = switch(
    "kem-key-unchecked-in-bundle", "§6.8, §4.8",
    "the ek of a version-2 bundle is acceptable (modulus check), else invalid-key when it "
    "has been read (mutated: not checked)")
KEM_KEY_LATE = switch(
    "kem-key-checked-after-fields", "§6.8, §6.1",
    "the ek of a bundle is checked when it has been read, so a bad ek is invalid-key even if "
    "the bundle is truncated later (mutated: after the whole bundle has been read)")
TYPE_UNCHECKED = switch(
    "type-unchecked", "§6.1",
    "a type nibble other than the one expected is decode (mutated: the type nibble is ignored)")
SESSION_DISPATCH_LAX = switch(
    "session-dispatch-lax", "§6.1",
    "a session-message decoder accepts 0x11 or 0x12 only; any other type nibble is decode "
    "(mutated: any other type is read as a §6.2 message)")
KEYS_AFTER_FIELDS = switch(
    "decode-keys-after-fields", "§6.1",
    "decoders read fields in order and report the first failure, so a bad Ed25519 key is "
    "invalid-key even if the input is also truncated later (mutated: keys are checked after "
    "the whole encoding has been read)")
X25519_AT_DECODE = switch(
    "x25519-checked-at-decode", "§6.1",
    "X25519 public keys are not checked at decode time; a low-order key is non-contributory "
    "when used (mutated: low-order X25519 keys are rejected with decode when decoded)")
MESSAGE_SHORT = switch(
    "message-short-ciphertext", "§6.2",
    "the ciphertext of a message is at least 16 bytes (mutated: shorter is accepted)")
PREKEY_IK_UNCHECKED = switch(
    "prekey-message-ik-unchecked", "§6.3, §3.1",
    "IK_A.pub of a prekey message is accepted per §3.1, else invalid-key (mutated: not checked)")
EMBEDDED_UNCHECKED = switch(
    "embedded-first-byte-unchecked", "§6.3, §6.1",
    "the embedded message is decoded exactly like a §6.2 message, first byte included "
    "(mutated: its first byte is not checked)")
BUNDLE_IK_UNCHECKED = switch(
    "bundle-ik-unchecked", "§6.4, §3.1",
    "IK_B.pub of a bundle is accepted per §3.1, else invalid-key (mutated: not checked)")
BUNDLE_TRAILING = switch(
    "bundle-trailing-ignored", "§6.4",
    "trailing bytes after a bundle are an error (mutated: ignored)")
DIST_KEY_UNCHECKED = switch(
    "distribution-key-unchecked", "§6.5, §3.1",
    "the signing key of a distribution is accepted per §3.1, else invalid-key (mutated: not "
    "checked)")
DIST_TRAILING = switch(
    "distribution-trailing-ignored", "§6.5",
    "trailing bytes after a distribution are an error (mutated: ignored)")
GROUP_ID_EMPTY = switch(
    "group-id-empty-accepted", "§6.5, §9",
    "1 <= L: an empty group id is decode (mutated: accepted)")
GROUP_ID_LONG = switch(
    "group-id-long-accepted", "§6.5, §9",
    "L <= MAX_GROUP_ID_LEN (64), else decode (mutated: longer accepted)")
GROUP_ID_AT_BOUND = switch(
    "group-id-at-bound-rejected", "§9",
    "'At' the bound succeeds: a 64-byte group id is valid (mutated: L = 64 rejected)")
GROUP_MESSAGE_SHORT = switch(
    "group-message-short-accepted", "§6.6",
    "a group message is at least 89 bytes (ciphertext and tag at least 16), else decode "
    "(mutated: a shorter ciphertext is accepted)")


def version_known(b, expected_type):
    """§6.1: whether the version nibble of `b` is one that defines `expected_type`."""
    if mutated(V2_TYPES_REFUSED):
        return (b >> 4) == VERSION
    return (b >> 4) in versions_of(expected_type)


def read_first_byte(r, expected_type):
    """§6.1: the version nibble first (unknown-version if not one that defines the type
    expected: 1, or 1 and 2 for the six types of §6.8), then the type nibble (decode if not
    the type expected). Returns the byte; its version is b >> 4."""
    b = r.u8()
    version_ok = version_known(b, expected_type) or mutated(VERSION_UNCHECKED)
    type_ok = (b & 0x0F) == expected_type or mutated(TYPE_UNCHECKED)
    if mutated(VERSION_AFTER_TYPE):
        if not type_ok:
            raise ProtocolError("decode", f"type nibble of {b:#04x}")
        if not version_ok:
            raise ProtocolError("unknown-version", f"first byte {b:#04x}")
        return b
    if not version_ok:
        raise ProtocolError("unknown-version", f"first byte {b:#04x}")
    if not type_ok:
        raise ProtocolError("decode", f"type nibble of {b:#04x}")
    return b


def end(r, trailing_switch=None):
    """A full-buffer decode rejects trailing bytes (§6.1)."""
    if not r.at_end() and not (trailing_switch and mutated(trailing_switch)):
        raise ProtocolError("decode", "trailing bytes")


class _KeyQueue:
    """Ed25519 key acceptance in field order (§6.1), or deferred under KEYS_AFTER_FIELDS."""

    def __init__(self):
        self.deferred = []

    def accept(self, b, site_switch):
        if mutated(KEYS_AFTER_FIELDS):
            self.deferred.append((b, site_switch))
        else:
            accept_public_key(b, site_switch)
        return b

    def finish(self):
        for entry in self.deferred:
            if len(entry) == 3:   # an ML-KEM ek deferred under KEM_KEY_LATE
                accept_kem_key(entry[0], entry[2])
            else:
                accept_public_key(*entry)


def _x25519_field(b):
    """An X25519 public key field: not checked at decode time (§6.1)."""
    if mutated(X25519_AT_DECODE) and x25519(b"\x07" * 32, b) == bytes(32):
        raise ProtocolError("decode", "low-order X25519 key (mutation)")
    return b


# ----- §6.2 Message (and 0x21, §6.8) -------------------------------------------------------

def first_byte(version, type_nibble):
    """§6.1: version << 4 | type."""
    return bytes([version << 4 | type_nibble])


class Message:
    """§6.2: 0x11 | DHs.pub (32) | PN (u32) | N (u32) | ciphertext || tag (>= 16); the same
    with 0x21 for a version-2 session (§6.8)."""

    __slots__ = ("dhr", "pn", "n", "ciphertext", "header", "encoded", "version")

    def __init__(self, dhr, pn, n, ciphertext, version=VERSION):
        self.dhr, self.pn, self.n, self.ciphertext = dhr, pn, n, ciphertext
        self.version = version
        self.header = first_byte(version, T_MESSAGE) + dhr + u32(pn) + u32(n)  # 41 bytes
        self.encoded = self.header + ciphertext


HEADER_LEN = 41


def decode_message(data):
    """§6.2 / §6.8: first byte 0x11 or 0x21."""
    r = Reader(data)
    b = read_first_byte(r, T_MESSAGE)
    dhr = _x25519_field(r.take(32))
    pn = r.u32()
    n = r.u32()
    ciphertext = r.rest()
    if len(ciphertext) < 16 and not mutated(MESSAGE_SHORT):
        raise ProtocolError("decode", "ciphertext shorter than the tag")
    m = Message(dhr, pn, n, ciphertext, b >> 4)
    m.header = bytes(data[:HEADER_LEN])  # as received (equal to the re-encoding)
    return m


# ----- §6.3 Prekey message (and 0x22, §6.8) ------------------------------------------------

class PrekeyMessage:
    """§6.3: 0x12 | IK_A.pub | EK_A.pub | SPK id | flag | [OPK id] | message §6.2, and §6.8's
    0x22, which adds KEM id | u16 ct length | ct before the message."""

    __slots__ = ("ik_a", "ek_a", "spk_id", "opk_id", "embedded", "inner", "version",
                 "kem_id", "ct")

    def __init__(self, ik_a, ek_a, spk_id, opk_id, embedded, inner=None, version=VERSION,
                 kem_id=None, ct=None):
        self.ik_a, self.ek_a, self.spk_id, self.opk_id = ik_a, ek_a, spk_id, opk_id
        self.embedded, self.inner = embedded, inner
        self.version, self.kem_id, self.ct = version, kem_id, ct

    def encode(self):
        return encode_prekey_message(self.ik_a, self.ek_a, self.spk_id, self.opk_id,
                                     self.embedded, self.version, self.kem_id, self.ct)


def _read_kem_field(r, length, what, site_switch):
    """§6.8: u16 length (= 1568) | the bytes; another length is decode when it is read."""
    n = r.u16()
    if n != length and not mutated(site_switch):
        raise ProtocolError("decode", f"{what} length field {n}")
    return r.take(length)


def decode_prekey_message(data):
    """§6.3 / §6.8; IK_A accepted per §3.1 when read; the embedded message is a complete
    message encoding, first byte included, of the prekey message's own version."""
    r = Reader(data)
    keys = _KeyQueue()
    b = read_first_byte(r, T_PREKEY)
    version = b >> 4
    ik_a = keys.accept(r.take(32), PREKEY_IK_UNCHECKED)
    ek_a = _x25519_field(r.take(32))
    spk_id = r.u32()
    opk_id = r.u32() if r.flag() else None
    kem_id = ct = None
    if version == VERSION_PQ:
        kem_id = r.u32()
        ct = _read_kem_field(r, KEM_CT_LEN, "ct", CT_LENGTH_UNCHECKED)
    embedded = r.rest()
    if mutated(EMBEDDED_UNCHECKED) and embedded:
        embedded_for_decode = first_byte(version, T_MESSAGE) + embedded[1:]
        inner = decode_message(embedded_for_decode)
        inner.header = embedded[:HEADER_LEN]
    else:
        inner = decode_message(embedded)
        # §6.1: decoded exactly like a message, first byte included: a version nibble that
        # defines no message is unknown-version (decode_message), and a message of the
        # other version than the prekey message's (0x21 in a 0x12, 0x11 in a 0x22) decode.
        if inner.version != version and not mutated(EMBEDDED_VERSION_UNCHECKED):
            if mutated(EMBEDDED_OTHER_VERSION_UNKNOWN):
                raise ProtocolError("unknown-version", "embedded message (mutation)")
            raise ProtocolError("decode", "embedded message of the other version")
    keys.finish()
    return PrekeyMessage(ik_a, ek_a, spk_id, opk_id, embedded, inner, version, kem_id, ct)


def encode_prekey_message(ik_a, ek_a, spk_id, opk_id, message, version=VERSION,
                          kem_id=None, ct=None):
    out = first_byte(version, T_PREKEY) + ik_a + ek_a + u32(spk_id)
    out += b"\x00" if opk_id is None else b"\x01" + u32(opk_id)
    if version == VERSION_PQ:
        out += u32(kem_id) + u16(len(ct)) + ct
    return out + message


def decode_session_message(data):
    """§6.1: a decoder for "a session message" accepts 0x11, 0x12, 0x21 or 0x22 and
    dispatches on it; any other type nibble with version 1 or 2 is decode. Returns a
    Message or PrekeyMessage."""
    if not data:
        raise ProtocolError("decode", "empty")
    b = data[0]
    t = b & 0x0F
    version_ok = version_known(b, T_MESSAGE) or mutated(VERSION_UNCHECKED)
    type_ok = (t in (T_MESSAGE, T_PREKEY) or mutated(SESSION_DISPATCH_LAX)
               or mutated(TYPE_UNCHECKED))
    if mutated(VERSION_AFTER_TYPE):
        if not type_ok:
            raise ProtocolError("decode", f"type nibble of {b:#04x}")
    if not version_ok:
        raise ProtocolError("unknown-version", f"first byte {b:#04x}")
    if not type_ok:
        raise ProtocolError("decode", f"type nibble of {b:#04x}")
    if t == T_PREKEY:
        return decode_prekey_message(data)
    if t == T_MESSAGE and (b >> 4) in (VERSION, VERSION_PQ):
        return decode_message(data)
    m = decode_message(b"\x11" + data[1:])  # only under a mutation
    m.header = bytes(data[:HEADER_LEN])
    return m


# ----- §6.4 Prekey bundle (and 0x23, §6.8) -------------------------------------------------

class Bundle:
    """§6.4, and §6.8's 0x23 with one KEM prekey (kem_id, kem_pub = ek, kem_sig)."""

    __slots__ = ("ik", "spk_id", "spk_pub", "spk_sig", "opk_id", "opk_pub", "version",
                 "kem_id", "kem_pub", "kem_sig")

    def __init__(self, ik, spk_id, spk_pub, spk_sig, opk_id=None, opk_pub=None,
                 version=VERSION, kem_id=None, kem_pub=None, kem_sig=None):
        self.ik, self.spk_id, self.spk_pub, self.spk_sig = ik, spk_id, spk_pub, spk_sig
        self.opk_id, self.opk_pub = opk_id, opk_pub
        self.version, self.kem_id, self.kem_pub, self.kem_sig = version, kem_id, kem_pub, kem_sig

    def encode(self):
        out = (first_byte(self.version, T_BUNDLE) + self.ik + u32(self.spk_id) + self.spk_pub
               + self.spk_sig)
        if self.version == VERSION_PQ:
            out += u32(self.kem_id) + u16(len(self.kem_pub)) + self.kem_pub + self.kem_sig
        if self.opk_id is None:
            return out + b"\x00"
        return out + b"\x01" + u32(self.opk_id) + self.opk_pub


def read_kem_key(r, keys=None, site_switch=KEM_KEY_UNCHECKED):
    """§6.8 / §3.6: u16 ek length (= 1568) | ek, the ek checked (§4.8: modulus check,
    else invalid-key) when it has been read."""
    ek = _read_kem_field(r, KEM_EK_LEN, "ek", KEM_LENGTH_UNCHECKED)
    if keys is not None and mutated(KEM_KEY_LATE):
        keys.deferred.append((ek, None, site_switch))
    else:
        accept_kem_key(ek, site_switch)
    return ek


def decode_bundle(data):
    """§6.4 / §6.8; decoding does not verify the signatures (the initiator does, §4.2,
    §4.8)."""
    r = Reader(data)
    keys = _KeyQueue()
    b = read_first_byte(r, T_BUNDLE)
    version = b >> 4
    ik = keys.accept(r.take(32), BUNDLE_IK_UNCHECKED)
    spk_id = r.u32()
    spk_pub = _x25519_field(r.take(32))
    spk_sig = r.take(64)
    kem_id = kem_pub = kem_sig = None
    if version == VERSION_PQ:
        kem_id = r.u32()
        kem_pub = read_kem_key(r, keys)
        kem_sig = r.take(64)
    opk_id = opk_pub = None
    if r.flag():
        opk_id = r.u32()
        opk_pub = _x25519_field(r.take(32))
    end(r, BUNDLE_TRAILING)
    keys.finish()
    return Bundle(ik, spk_id, spk_pub, spk_sig, opk_id, opk_pub, version, kem_id, kem_pub,
                  kem_sig)


# ----- §6.5 Sender key distribution --------------------------------------------------------

def read_group_id(r):
    """§6.5 / §7.1: gid = len8(group id), 1 <= L <= MAX_GROUP_ID_LEN, else decode."""
    n = r.u8()
    if n == 0 and not mutated(GROUP_ID_EMPTY):
        raise ProtocolError("decode", "empty group id")
    if n > MAX_GROUP_ID_LEN and not mutated(GROUP_ID_LONG):
        raise ProtocolError("decode", f"group id of {n} bytes")
    if n == MAX_GROUP_ID_LEN and mutated(GROUP_ID_AT_BOUND):
        raise ProtocolError("decode", "group id at the bound (mutation)")
    return r.take(n)


class Distribution:
    __slots__ = ("group_id", "key_id", "iteration", "chain_key", "signing_key")

    def __init__(self, group_id, key_id, iteration, chain_key, signing_key):
        self.group_id, self.key_id, self.iteration = group_id, key_id, iteration
        self.chain_key, self.signing_key = chain_key, signing_key

    def encode(self):
        return (b"\x14" + len8(self.group_id) + u32(self.key_id) + u32(self.iteration)
                + self.chain_key + self.signing_key)


def decode_distribution(data):
    """§6.5."""
    r = Reader(data)
    keys = _KeyQueue()
    read_first_byte(r, T_DISTRIBUTION)
    group_id = read_group_id(r)
    key_id = r.u32()
    iteration = r.u32()
    chain_key = r.take(32)
    signing_key = keys.accept(r.take(32), DIST_KEY_UNCHECKED)
    end(r, DIST_TRAILING)
    keys.finish()
    return Distribution(group_id, key_id, iteration, chain_key, signing_key)


# ----- §6.6 Group message ------------------------------------------------------------------

class GroupMessage:
    __slots__ = ("key_id", "iteration", "ciphertext", "signature", "header", "body")

    def __init__(self, key_id, iteration, ciphertext, signature):
        self.key_id, self.iteration = key_id, iteration
        self.ciphertext, self.signature = ciphertext, signature
        self.header = b"\x15" + u32(key_id) + u32(iteration)
        self.body = self.header + ciphertext

    def encode(self):
        return self.body + self.signature


def decode_group_message(data):
    """§6.6: the last 64 bytes are the signature; between byte 9 and them, ciphertext and
    tag of at least 16 bytes (so at least 89 bytes, else decode)."""
    r = Reader(data)
    read_first_byte(r, T_GROUP)
    key_id = r.u32()
    iteration = r.u32()
    rest = r.rest()
    minimum = 64 if mutated(GROUP_MESSAGE_SHORT) else 16 + 64
    if len(rest) < minimum:
        raise ProtocolError("decode", "group message shorter than 89 bytes")
    return GroupMessage(key_id, iteration, rest[:-64], rest[-64:])
