"""SPEC §6: message formats. Parses and encodes bytes; no cryptography beyond the §3.1 key
acceptance that decoding requires."""

from .errors import ProtocolError
from .keys import accept_public_key
from .limits import MAX_GROUP_ID_LEN
from .mutation import mutated, switch
from .primitives import Reader, len8, u32, x25519

# §6.1 type nibbles
T_MESSAGE, T_PREKEY, T_BUNDLE, T_DISTRIBUTION, T_GROUP = 0x1, 0x2, 0x3, 0x4, 0x5
T_SAVED_SESSION, T_SAVED_SENDER, T_SAVED_RECEIVER, T_SEALED = 0x6, 0x7, 0x8, 0x9
T_SAVED_ACCOUNT = 0xA
T_UPLOAD, T_CERTIFICATE, T_DEVICE_LIST, T_ENVELOPE = 0xB, 0xC, 0xD, 0xE   # §3.6, §3.7, §6.7
T_SAVED_RECORD, T_SAVED_GROUP = 0xF, 0x0                                 # §11.6, §11.7
VERSION = 1

VERSION_AFTER_TYPE = switch(
    "version-after-type", "§6.1",
    "a decoder checks the version nibble first, then the type nibble (mutated: type first)")
VERSION_UNCHECKED = switch(
    "version-unchecked", "§6.1",
    "a version nibble other than 1 is unknown-version (mutated: the version nibble is ignored)")
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


def read_first_byte(r, expected_type):
    """§6.1: the version nibble first (unknown-version if not 1), then the type nibble
    (decode if not the type expected)."""
    b = r.u8()
    version_ok = (b >> 4) == VERSION or mutated(VERSION_UNCHECKED)
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
        for b, site_switch in self.deferred:
            accept_public_key(b, site_switch)


def _x25519_field(b):
    """An X25519 public key field: not checked at decode time (§6.1)."""
    if mutated(X25519_AT_DECODE) and x25519(b"\x07" * 32, b) == bytes(32):
        raise ProtocolError("decode", "low-order X25519 key (mutation)")
    return b


# ----- §6.2 Message ------------------------------------------------------------------------

class Message:
    """§6.2: 0x11 | DHs.pub (32) | PN (u32) | N (u32) | ciphertext || tag (>= 16)."""

    __slots__ = ("dhr", "pn", "n", "ciphertext", "header", "encoded")

    def __init__(self, dhr, pn, n, ciphertext):
        self.dhr, self.pn, self.n, self.ciphertext = dhr, pn, n, ciphertext
        self.header = b"\x11" + dhr + u32(pn) + u32(n)   # the first 41 bytes
        self.encoded = self.header + ciphertext


HEADER_LEN = 41


def decode_message(data):
    """§6.2."""
    r = Reader(data)
    read_first_byte(r, T_MESSAGE)
    dhr = _x25519_field(r.take(32))
    pn = r.u32()
    n = r.u32()
    ciphertext = r.rest()
    if len(ciphertext) < 16 and not mutated(MESSAGE_SHORT):
        raise ProtocolError("decode", "ciphertext shorter than the tag")
    m = Message(dhr, pn, n, ciphertext)
    m.header = bytes(data[:HEADER_LEN])  # as received (equal to the re-encoding)
    return m


# ----- §6.3 Prekey message -----------------------------------------------------------------

class PrekeyMessage:
    """§6.3: 0x12 | IK_A.pub | EK_A.pub | SPK id | flag | [OPK id] | message §6.2."""

    __slots__ = ("ik_a", "ek_a", "spk_id", "opk_id", "embedded", "inner")

    def __init__(self, ik_a, ek_a, spk_id, opk_id, embedded, inner=None):
        self.ik_a, self.ek_a, self.spk_id, self.opk_id = ik_a, ek_a, spk_id, opk_id
        self.embedded, self.inner = embedded, inner

    def encode(self):
        return encode_prekey_message(self.ik_a, self.ek_a, self.spk_id, self.opk_id,
                                     self.embedded)


def decode_prekey_message(data):
    """§6.3; IK_A accepted per §3.1 when read; the embedded message is a complete §6.2
    encoding, first byte included."""
    r = Reader(data)
    keys = _KeyQueue()
    read_first_byte(r, T_PREKEY)
    ik_a = keys.accept(r.take(32), PREKEY_IK_UNCHECKED)
    ek_a = _x25519_field(r.take(32))
    spk_id = r.u32()
    opk_id = r.u32() if r.flag() else None
    embedded = r.rest()
    if mutated(EMBEDDED_UNCHECKED) and embedded:
        embedded_for_decode = b"\x11" + embedded[1:]
        inner = decode_message(embedded_for_decode)
        inner.header = embedded[:HEADER_LEN]
    else:
        inner = decode_message(embedded)
    keys.finish()
    return PrekeyMessage(ik_a, ek_a, spk_id, opk_id, embedded, inner)


def encode_prekey_message(ik_a, ek_a, spk_id, opk_id, message):
    out = b"\x12" + ik_a + ek_a + u32(spk_id)
    out += b"\x00" if opk_id is None else b"\x01" + u32(opk_id)
    return out + message


def decode_session_message(data):
    """§6.1: a decoder for "a session message" accepts 0x11 or 0x12 and dispatches on it;
    any other type nibble with version 1 is decode. Returns a Message or PrekeyMessage."""
    if not data:
        raise ProtocolError("decode", "empty")
    b = data[0]
    t = b & 0x0F
    version_ok = (b >> 4) == VERSION or mutated(VERSION_UNCHECKED)
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
    if t == T_MESSAGE and (b >> 4) == VERSION:
        return decode_message(data)
    m = decode_message(b"\x11" + data[1:])  # only under a mutation
    m.header = bytes(data[:HEADER_LEN])
    return m


# ----- §6.4 Prekey bundle ------------------------------------------------------------------

class Bundle:
    __slots__ = ("ik", "spk_id", "spk_pub", "spk_sig", "opk_id", "opk_pub")

    def __init__(self, ik, spk_id, spk_pub, spk_sig, opk_id=None, opk_pub=None):
        self.ik, self.spk_id, self.spk_pub, self.spk_sig = ik, spk_id, spk_pub, spk_sig
        self.opk_id, self.opk_pub = opk_id, opk_pub

    def encode(self):
        out = b"\x13" + self.ik + u32(self.spk_id) + self.spk_pub + self.spk_sig
        if self.opk_id is None:
            return out + b"\x00"
        return out + b"\x01" + u32(self.opk_id) + self.opk_pub


def decode_bundle(data):
    """§6.4; decoding does not verify the signature (the initiator does, §4.2)."""
    r = Reader(data)
    keys = _KeyQueue()
    read_first_byte(r, T_BUNDLE)
    ik = keys.accept(r.take(32), BUNDLE_IK_UNCHECKED)
    spk_id = r.u32()
    spk_pub = _x25519_field(r.take(32))
    spk_sig = r.take(64)
    opk_id = opk_pub = None
    if r.flag():
        opk_id = r.u32()
        opk_pub = _x25519_field(r.take(32))
    end(r, BUNDLE_TRAILING)
    keys.finish()
    return Bundle(ik, spk_id, spk_pub, spk_sig, opk_id, opk_pub)


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
