"""SPEC §6.7: envelopes (0x1E), what one device sends another.

    0x1E | 0x01 | content (the rest)
    0x1E | 0x02 | distribution (the rest, §6.5)
    0x1E | 0x03 | gid                                   distribution request
    0x1E | 0x04 | gid                                   removed
    0x1E | 0x05 | gid | sender address (§4.6) | group message (the rest, §6.6)
"""

from .errors import ProtocolError
from .mutation import mutated, switch
from .primitives import Reader, len8
from .records import read_address
from .wire import (T_ENVELOPE, decode_distribution, decode_group_message, end,
                   read_first_byte, read_group_id)

CONTENT, DISTRIBUTION, REQUEST, REMOVED, GROUP_MESSAGE = 0x01, 0x02, 0x03, 0x04, 0x05
KIND_NAMES = {CONTENT: "content", DISTRIBUTION: "distribution",
              REQUEST: "distribution-request", REMOVED: "removed",
              GROUP_MESSAGE: "group-message"}

UNKNOWN_KIND = switch(
    "envelope-unknown-kind-accepted", "§6.7",
    "an unknown envelope kind is decode (mutated: read as content)")
GID_TRAILING = switch(
    "envelope-gid-trailing-ignored", "§6.7, §6.1",
    "a distribution request or removed envelope ends after its gid: trailing bytes are "
    "decode (mutated: ignored)")
EMBEDDED_UNDECODED = switch(
    "envelope-embedded-not-decoded", "§6.7",
    "the embedded distribution or group message is decoded as its own section says, its "
    "errors being the envelope's (mutated: carried as opaque bytes)")
EMPTY_CONTENT = switch(
    "envelope-empty-content-refused", "§6.7",
    "content may be empty (mutated: an empty content is decode)")


class Envelope:
    """A decoded envelope: `kind` (byte), and per kind `content`, `distribution` (bytes of
    the §6.5 encoding), `group_id`, `sender` (records.Address), `message` (bytes of the §6.6
    encoding)."""

    __slots__ = ("kind", "content", "distribution", "group_id", "sender", "message")

    def __init__(self, kind, content=None, distribution=None, group_id=None, sender=None,
                 message=None):
        self.kind, self.content, self.distribution = kind, content, distribution
        self.group_id, self.sender, self.message = group_id, sender, message

    def encode(self):
        head = b"\x1e" + bytes([self.kind])
        if self.kind == CONTENT:
            return head + self.content
        if self.kind == DISTRIBUTION:
            return head + self.distribution
        if self.kind in (REQUEST, REMOVED):
            return head + len8(self.group_id)
        return head + len8(self.group_id) + self.sender.encode() + self.message


def decode_envelope(data):
    """§6.7, fields in order (§6.1); gid = len8(group id) with 1 to 64 bytes."""
    r = Reader(data)
    read_first_byte(r, T_ENVELOPE)
    kind = r.u8()
    if kind not in KIND_NAMES:
        if not mutated(UNKNOWN_KIND):
            raise ProtocolError("decode", f"envelope kind {kind:#04x}")
        kind = CONTENT
    if kind == CONTENT:
        content = r.rest()
        if not content and mutated(EMPTY_CONTENT):
            raise ProtocolError("decode", "empty content (mutation)")
        return Envelope(kind, content=content)
    if kind == DISTRIBUTION:
        rest = r.rest()
        if not mutated(EMBEDDED_UNDECODED):
            decode_distribution(rest)
        return Envelope(kind, distribution=rest)
    group_id = read_group_id(r)
    if kind in (REQUEST, REMOVED):
        end(r, GID_TRAILING)
        return Envelope(kind, group_id=group_id)
    sender = read_address(r)
    rest = r.rest()
    if not mutated(EMBEDDED_UNDECODED):
        decode_group_message(rest)
    return Envelope(kind, group_id=group_id, sender=sender, message=rest)


def group_message_envelope(group_id, sender, message):
    """§6.7 kind 0x05, as a group state sends it (§7.7)."""
    return Envelope(GROUP_MESSAGE, group_id=group_id, sender=sender, message=message).encode()
