"""SPEC §3.7: users and devices. Device certificates (0x1C) and device lists (0x1D), signed by
the user identity key UK, and which device list a peer accepts."""

from .errors import ProtocolError
from .keys import accept_public_key
from .mutation import mutated, switch
from .primitives import (DEVICE_CERTIFICATE_CONTEXT, DEVICE_LIST_CONTEXT, Reader,
                         ed25519_public, sign, u8, u32, verify)
from .wire import T_CERTIFICATE, T_DEVICE_LIST, end, read_first_byte

MAX_DEVICES = 16                                           # §3.7 / §9, min 1

CERT_CONTEXT_SHARED = switch(
    "certificate-list-context", "§2.3, §3.7",
    "a certificate is signed over DEVICE_CERTIFICATE_CONTEXT, a list over DEVICE_LIST_CONTEXT: "
    "the two contexts differ (mutated: certificates use the list's context)")
LIST_CONTEXT_SHARED = switch(
    "device-list-certificate-context", "§2.3, §3.7",
    "a device list is signed over DEVICE_LIST_CONTEXT (mutated: over the certificate's "
    "context)")
CERT_KEYS_UNCHECKED = switch(
    "certificate-keys-unchecked", "§3.7, §3.1",
    "a certificate's device key IK.pub is accepted per §3.1, else invalid-key (mutated: not "
    "checked)")
CERT_UK_UNCHECKED = switch(
    "certificate-user-key-unchecked", "§3.7, §3.1",
    "a certificate's UK.pub is accepted per §3.1 when read, else invalid-key (mutated: not "
    "checked, so an unacceptable UK is state-mismatch against the expected key)")
CERT_TRAILING = switch(
    "certificate-trailing-ignored", "§3.7, §6.1",
    "a certificate is 133 bytes: trailing bytes are decode (mutated: ignored)")
CERT_UK_NOT_COMPARED = switch(
    "certificate-user-key-not-compared", "§3.7",
    "a certificate verifies only if its UK.pub is the expected key, else state-mismatch "
    "(mutated: not compared)")
CERT_VERIFY_FIRST = switch(
    "certificate-verify-before-user-key", "§3.7",
    "the certificate's UK.pub is compared with the expected key before VERIFY (mutated: "
    "VERIFY under the expected key first, so another user's certificate is bad-signature)")
CERT_SIG_UNCHECKED = switch(
    "certificate-signature-unchecked", "§3.7",
    "a certificate whose signature fails VERIFY is bad-signature (mutated: not verified)")
LIST_COUNT_ZERO = switch(
    "device-list-empty-accepted", "§3.7, §9",
    "a device list names 1 ..= MAX_DEVICES devices: 0 is decode (mutated: accepted)")
LIST_COUNT_LONG = switch(
    "device-list-count-unbounded", "§3.7, §9",
    "a count over MAX_DEVICES (16) is decode (mutated: accepted)")
LIST_COUNT_AT_BOUND = switch(
    "device-list-count-at-bound-rejected", "§9",
    "'At' the bound succeeds: a list of 16 devices is valid (mutated: decode)")
LIST_KEYS_UNCHECKED = switch(
    "device-list-keys-unchecked", "§3.7, §3.1",
    "every device key of a list is accepted per §3.1, else invalid-key (mutated: not checked)")
LIST_UK_UNCHECKED = switch(
    "device-list-user-key-unchecked", "§3.7, §3.1",
    "a list's UK.pub is accepted per §3.1 when read, else invalid-key (mutated: not checked)")
LIST_IDS_UNORDERED = switch(
    "device-list-ids-unordered", "§3.7",
    "device ids are strictly increasing: a smaller id after a larger one is decode (mutated: "
    "only a repeated id is refused)")
LIST_IDS_REPEATED = switch(
    "device-list-ids-non-strict", "§3.7",
    "device ids are strictly increasing: the same id twice is decode (mutated: accepted)")
LIST_KEYS_REPEATED = switch(
    "device-list-key-twice", "§3.7",
    "the device keys of a list are pairwise distinct, else decode (mutated: not checked)")
LIST_ORDER_EARLY = switch(
    "device-list-order-checked-early", "§3.7",
    "the order and distinctness rules are checked after the whole list has been read, "
    "trailing bytes first (mutated: checked after each device entry, id and key, is read, "
    "so before the later entries' keys are accepted)")
LIST_SIGN_GIVEN_ORDER = switch(
    "device-list-signed-in-given-order", "§3.7",
    "a signed list encodes its devices by strictly increasing id, whatever order they are "
    "given in (mutated: encoded in the given order)")
LIST_ORDER_PER_ID = switch(
    "device-list-order-checked-per-id", "§3.7",
    "the id order is checked after the whole list has been read (mutated: each id against "
    "the one before as soon as it is read, before its key is accepted)")
LIST_TRAILING = switch(
    "device-list-trailing-ignored", "§3.7, §6.1",
    "trailing bytes after a device list are decode (mutated: ignored)")
LIST_UK_NOT_COMPARED = switch(
    "device-list-user-key-not-compared", "§3.7",
    "a list is accepted only if its UK.pub is the expected key, else state-mismatch "
    "(mutated: not compared)")
LIST_VERIFY_FIRST = switch(
    "device-list-verify-before-user-key", "§3.7",
    "the list's UK.pub is compared with the expected key before VERIFY (mutated: VERIFY "
    "under the expected key first)")
LIST_SIG_UNCHECKED = switch(
    "device-list-signature-unchecked", "§3.7",
    "a list whose signature fails VERIFY is bad-signature (mutated: not verified)")
LIST_OLDER_ACCEPTED = switch(
    "device-list-older-version-accepted", "§3.7",
    "with a previous list, a list of a smaller version is state-mismatch (mutated: accepted)")
LIST_SAME_VERSION_ACCEPTED = switch(
    "device-list-same-version-other-bytes", "§3.7",
    "a list of the previous list's version is accepted only if it is byte for byte the "
    "previous list, else state-mismatch (mutated: any list of that version)")
LIST_REPLAY_REFUSED = switch(
    "device-list-replay-refused", "§3.7",
    "the previous list itself, byte for byte, is accepted again (mutated: versions must grow "
    "strictly)")
LIST_VERSION_BEFORE_VERIFY = switch(
    "device-list-version-before-verify", "§3.7",
    "the version rule is checked after VERIFY (mutated: before it)")


# ----- Device certificate (0x1C) -----------------------------------------------------------

def certificate_input(device_id, ik_pub):
    """§3.7: DEVICE_CERTIFICATE_CONTEXT || u32(device id) || IK.pub."""
    context = DEVICE_LIST_CONTEXT if mutated(CERT_CONTEXT_SHARED) else DEVICE_CERTIFICATE_CONTEXT
    return context + u32(device_id) + ik_pub


def sign_certificate(user_seed, device_id, ik_pub):
    """§3.7: 0x1C | UK.pub | device id | IK.pub | SIGN(UK.seed, input) (133 bytes)."""
    return (b"\x1c" + ed25519_public(user_seed) + u32(device_id) + ik_pub
            + sign(user_seed, certificate_input(device_id, ik_pub)))


def decode_certificate(data):
    """§3.7 / §6.1: fields in order, both keys accepted per §3.1 when read, 133 bytes."""
    r = Reader(data)
    read_first_byte(r, T_CERTIFICATE)
    uk = accept_public_key(r.take(32), CERT_UK_UNCHECKED)
    device_id = r.u32()
    ik = accept_public_key(r.take(32), CERT_KEYS_UNCHECKED)
    signature = r.take(64)
    end(r, CERT_TRAILING)
    return uk, device_id, ik, signature


def verify_certificate(data, expected_uk):
    """§3.7: it verifies for an expected UK.pub when its UK.pub is that key (else
    state-mismatch) and VERIFY succeeds (else bad-signature). Returns (device id, IK.pub)."""
    uk, device_id, ik, signature = decode_certificate(data)
    signed = certificate_input(device_id, ik)
    if mutated(CERT_VERIFY_FIRST) and not verify(expected_uk, signed, signature):
        raise ProtocolError("bad-signature", "device certificate (mutation: expected key)")
    if uk != expected_uk and not mutated(CERT_UK_NOT_COMPARED):
        raise ProtocolError("state-mismatch", "a certificate of another user")
    if not verify(uk, signed, signature) and not mutated(CERT_SIG_UNCHECKED):
        raise ProtocolError("bad-signature", "device certificate")
    return device_id, ik


# ----- Device list (0x1D) ------------------------------------------------------------------

class DeviceList:
    __slots__ = ("uk", "version", "devices", "signature", "encoded")

    def __init__(self, uk, version, devices, signature, encoded):
        self.uk, self.version, self.devices = uk, version, devices
        self.signature, self.encoded = signature, encoded


def list_signature_input(body):
    """§3.7: DEVICE_LIST_CONTEXT || every byte of the list before the signature."""
    context = DEVICE_CERTIFICATE_CONTEXT if mutated(LIST_CONTEXT_SHARED) else DEVICE_LIST_CONTEXT
    return context + body


def sign_device_list(user_seed, version, devices):
    """§3.7: devices [(device id, IK.pub)] encoded with ids strictly increasing (the only
    order the encoding admits), then SIGN(UK.seed, DEVICE_LIST_CONTEXT || body)."""
    ordered = list(devices) if mutated(LIST_SIGN_GIVEN_ORDER) else sorted(devices)
    body = (b"\x1d" + ed25519_public(user_seed) + u32(version) + u8(len(ordered))
            + b"".join(u32(i) + k for i, k in ordered))
    return body + sign(user_seed, list_signature_input(body))


def _check_order(devices, upto):
    ids = [i for i, _ in devices[:upto]]
    for a, b in zip(ids, ids[1:]):
        if b < a and not mutated(LIST_IDS_UNORDERED):
            raise ProtocolError("decode", "device ids not increasing")
        if b == a and not mutated(LIST_IDS_REPEATED):
            raise ProtocolError("decode", "a device id twice")
    keys = [k for _, k in devices[:upto]]
    if len(set(keys)) != len(keys) and not mutated(LIST_KEYS_REPEATED):
        raise ProtocolError("decode", "a device key twice")


def decode_device_list(data):
    """§3.7: fields in order (keys accepted when read, §6.1), the count 1 ..= 16; then, after
    the whole list has been read (trailing bytes first), ids strictly increasing and keys
    pairwise distinct."""
    r = Reader(data)
    read_first_byte(r, T_DEVICE_LIST)
    uk = accept_public_key(r.take(32), LIST_UK_UNCHECKED)
    version = r.u32()
    count = r.u8()
    if count == 0 and not mutated(LIST_COUNT_ZERO):
        raise ProtocolError("decode", "a device list without devices")
    if count > MAX_DEVICES and not mutated(LIST_COUNT_LONG):
        raise ProtocolError("decode", f"{count} devices")
    if count == MAX_DEVICES and mutated(LIST_COUNT_AT_BOUND):
        raise ProtocolError("decode", "devices at the bound (mutation)")
    devices = []
    for _ in range(count):
        device_id = r.u32()
        if mutated(LIST_ORDER_PER_ID) and devices and device_id <= devices[-1][0]:
            raise ProtocolError("decode", "device ids not increasing (mutation: per id)")
        devices.append((device_id, accept_public_key(r.take(32), LIST_KEYS_UNCHECKED)))
        if mutated(LIST_ORDER_EARLY):
            _check_order(devices, len(devices))
    signature = r.take(64)
    end(r, LIST_TRAILING)
    _check_order(devices, len(devices))
    return DeviceList(uk, version, devices, signature, bytes(data))


def accept_device_list(data, expected_uk, previous):
    """§3.7: a list is accepted for an expected UK.pub and the list accepted before
    (`previous` bytes, or None) when, in this order: it decodes; its UK.pub is the expected
    key (else state-mismatch); VERIFY succeeds (else bad-signature); and, with a previous
    list, its version is greater than the previous one's or it is byte for byte the
    previous list (else state-mismatch)."""
    lst = decode_device_list(data)
    signed = list_signature_input(bytes(data[:-64]))

    def version_rule():
        if previous is None:
            return
        prev = decode_device_list(previous)
        if bytes(data) == bytes(previous) and not mutated(LIST_REPLAY_REFUSED):
            return
        if lst.version > prev.version:
            return
        if lst.version == prev.version and mutated(LIST_SAME_VERSION_ACCEPTED):
            return
        if lst.version < prev.version and mutated(LIST_OLDER_ACCEPTED):
            return
        raise ProtocolError("state-mismatch", "a device list not newer than the previous one")

    if mutated(LIST_VERIFY_FIRST) and not verify(expected_uk, signed, lst.signature):
        raise ProtocolError("bad-signature", "device list (mutation: expected key)")
    if lst.uk != expected_uk and not mutated(LIST_UK_NOT_COMPARED):
        raise ProtocolError("state-mismatch", "a device list of another user")
    if mutated(LIST_VERSION_BEFORE_VERIFY):
        version_rule()
    if not verify(lst.uk, signed, lst.signature) and not mutated(LIST_SIG_UNCHECKED):
        raise ProtocolError("bad-signature", "device list")
    if not mutated(LIST_VERSION_BEFORE_VERIFY):
        version_rule()
    return lst
