"""SPEC §3: identity keys, signed and one-time prekeys, the responder's prekey store, and
safety numbers (§3.5)."""

from .errors import ProtocolError
from .mutation import mutated, switch
from .primitives import (KEM_EK_LEN, KEM_PREKEY_CONTEXT, KEM_Q, SAFETY_NUMBER_LABEL,
                         SIGNED_PREKEY_CONTEXT, byte_decode_12, edwards_to_montgomery,
                         ed25519_public, is_acceptable_key, kem_keygen, len8, sha512, sign,
                         u32)


class Identity:
    """§3.1: one Ed25519 key pair given by its 32-byte seed, and its X25519 form."""

    __slots__ = ("seed", "pub", "priv_x", "pub_x")

    def __init__(self, seed):
        self.seed = seed
        self.pub = ed25519_public(seed)          # IK.pub (RFC 8032 §5.1.5)
        self.priv_x = sha512(seed)[:32]          # IK.priv_x = SHA512(seed)[0..32]
        self.pub_x = edwards_to_montgomery(self.pub)  # IK.pub_x = (1 + y) / (1 - y)


def accept_public_key(b, site_switch=None):
    """§3.1 "Accepting an identity public key" (and every other Ed25519 public key: group
    signing keys, §6.5): `invalid-key` unless acceptable per §2.4. `site_switch` names the
    mutation switch of the receiving site (bundle, prekey message, distribution, saved
    state), each of which MUST check."""
    if not is_acceptable_key(b) and not (site_switch and mutated(site_switch)):
        raise ProtocolError("invalid-key", "Ed25519 public key not acceptable (§2.4)")
    return b


def signed_prekey_signature(identity_seed, spk_id, spk_pub):
    """§3.2: SPK.sig = SIGN(IK.seed, SIGNED_PREKEY_CONTEXT || u32(SPK.id) || SPK.pub)."""
    return sign(identity_seed, SIGNED_PREKEY_CONTEXT + u32(spk_id) + spk_pub)


# =========================================================================================
# §4.8 ML-KEM encapsulation keys and KEM prekeys (kept here with the other keys of §3)
# =========================================================================================

MODULUS_UNCHECKED = switch(
    "kem-modulus-check-skipped", "§4.8, FIPS 203 §7.2",
    "an encapsulation key is acceptable only if every 12-bit coefficient of ByteDecode_12 "
    "of its first 1536 bytes is below q = 3329, else invalid-key (mutated: not checked)")
MODULUS_AT_Q = switch(
    "kem-modulus-check-off-by-one", "§4.8, FIPS 203 §7.2",
    "a coefficient equal to q = 3329 fails the modulus check (mutated: only > q fails)")
KEM_CONTEXT_SWAPPED = switch(
    "kem-signature-under-spk-context", "§4.8, §2.3",
    "KEM.sig = SIGN(IK.seed, KEM_PREKEY_CONTEXT || u32(KEM.id) || ek) (mutated: "
    "SIGNED_PREKEY_CONTEXT, the X25519 prekeys' context)")
_TOP_COEFFICIENT = {}   # ek -> its largest coefficient (pure: cached)


def accept_kem_key(ek, site_switch=None):
    """§4.8: an encapsulation key is acceptable when it is 1568 bytes and passes FIPS 203's
    modulus check (§7.2 there: ByteEncode_12(ByteDecode_12(ek[0:1536])) == ek[0:1536], i.e.
    every 12-bit coefficient is below q = 3329), else invalid-key. `site_switch` names the
    receiving site's mutation switch (bundle, upload)."""
    if (site_switch and mutated(site_switch)) or mutated(MODULUS_UNCHECKED):
        return ek
    top = _TOP_COEFFICIENT.get(ek)
    if top is None:
        top = max(byte_decode_12(ek[:1536])) if len(ek) == KEM_EK_LEN else 1 << 12
        _TOP_COEFFICIENT[ek] = top
    if top >= (KEM_Q + 1 if mutated(MODULUS_AT_Q) else KEM_Q):
        raise ProtocolError("invalid-key", "ML-KEM encapsulation key fails the modulus check")
    return ek


def kem_prekey_context():
    return SIGNED_PREKEY_CONTEXT if mutated(KEM_CONTEXT_SWAPPED) else KEM_PREKEY_CONTEXT


def kem_prekey_signature(identity_seed, kem_id, ek):
    """§4.8: KEM.sig = SIGN(IK.seed, KEM_PREKEY_CONTEXT || u32(KEM.id) || ek)."""
    return sign(identity_seed, kem_prekey_context() + u32(kem_id) + ek)


def kem_public(seed):
    """§4.8: a KEM prekey is stored as its 64-byte seed d || z; ek = KEYGEN(d, z)[0]."""
    return kem_keygen(seed)[0]


class PrekeyStore:
    """The responder's identity, signed prekeys and one-time prekeys (§3.2, §3.3, §4.4),
    and, for a device with KEM prekeys (§4.8), its last-resort KEM prekeys with their used
    base keys, its one-time KEM prekeys, and whether it requires PQXDH."""

    def __init__(self, identity, signed_prekeys, one_time_prekeys, last_resort=(),
                 kem_one_time=(), requires_pq=False):
        self.identity = identity
        self.signed = dict(signed_prekeys)      # SPK id -> SPK.priv
        self.one_time = dict(one_time_prekeys)  # OPK id -> OPK.priv
        # KEM id -> (seed, [used base keys, in the order accepted]), oldest first
        self.last_resort = {i: (seed, list(used)) for i, seed, used in last_resort}
        self.kem_one_time = dict(kem_one_time)  # KEM id -> seed
        self.requires_pq = requires_pq

    def snapshot(self):
        return (sorted(self.signed.items()), sorted(self.one_time.items()),
                sorted((i, seed, tuple(used)) for i, (seed, used) in self.last_resort.items()),
                sorted(self.kem_one_time.items()), self.requires_pq)


# =========================================================================================
# §3.5 Safety numbers
# =========================================================================================

MAX_USER_ID_LEN = 255       # §3.5: a user id is 0 to 255 bytes, longer is decode
FINGERPRINT_ITERATIONS = 5200

USER_ID_UNBOUNDED = switch(
    "user-id-unbounded", "§3.5",
    "a user id longer than 255 bytes is decode (mutated: any length, len8 truncated)")
USER_ID_AT_BOUND = switch(
    "user-id-at-bound-rejected", "§3.5",
    "a user id of exactly 255 bytes is valid (mutated: refused)")
SAFETY_ORDER = switch(
    "safety-number-fixed-order", "§3.5",
    "the safety number puts the smaller 30-digit string first, so both users see the same "
    "digits (mutated: own digits first)")
SCAN_ORDER = switch(
    "scan-accepts-reflection", "§3.5",
    "a scanned form is accepted only if it equals 0x01 || peer's fingerprint[0..32] || own "
    "fingerprint[0..32] (mutated: the user's own form is accepted too)")


def fingerprint(ik_pub, user_id):
    """§3.5: F_0 = SHA512(SAFETY_NUMBER_LABEL || len8(user id) || IK.pub),
    F_i = SHA512(F_(i-1) || IK.pub) for i = 1 .. 5200; the fingerprint is F_5200."""
    if len(user_id) > MAX_USER_ID_LEN and not mutated(USER_ID_UNBOUNDED):
        raise ProtocolError("decode", f"user id of {len(user_id)} bytes")
    if len(user_id) == MAX_USER_ID_LEN and mutated(USER_ID_AT_BOUND):
        raise ProtocolError("decode", "user id at the bound (mutation)")
    uid = bytes([len(user_id) & 0xFF]) + user_id if len(user_id) > 255 else len8(user_id)
    key = (uid, ik_pub)
    f = _FINGERPRINT_CACHE.get(key)
    if f is None:   # the iteration is pure: cached
        f = sha512(SAFETY_NUMBER_LABEL + uid + ik_pub)
        for _ in range(FINGERPRINT_ITERATIONS):
            f = sha512(f + ik_pub)
        _FINGERPRINT_CACHE[key] = f
    return f


_FINGERPRINT_CACHE = {}


def fingerprint_digits(fp):
    """§3.5: for j = 0 .. 5, the 40-bit big-endian integer fp[5j .. 5j+5] mod 100000, as 5
    digits with leading zeros: 30 digits."""
    return "".join(f"{int.from_bytes(fp[5 * j:5 * j + 5], 'big') % 100000:05d}"
                   for j in range(6))


def safety_number(own_fp, peer_fp):
    """§3.5: the 60 digits of both 30-digit strings, the smaller (as a string) first."""
    own, peer = fingerprint_digits(own_fp), fingerprint_digits(peer_fp)
    if mutated(SAFETY_ORDER):
        return own + peer
    return min(own, peer) + max(own, peer)


def scannable_form(own_fp, peer_fp):
    """§3.5: 0x01 || own fingerprint[0..32] || peer's fingerprint[0..32] (65 bytes)."""
    return b"\x01" + own_fp[:32] + peer_fp[:32]


def accepts_scanned(own_fp, peer_fp, scanned):
    """§3.5: accept the peer's form only if it equals 0x01 || peer fp[0..32] || own fp[0..32]."""
    if mutated(SCAN_ORDER) and scanned == scannable_form(own_fp, peer_fp):
        return True
    return scanned == scannable_form(peer_fp, own_fp)
