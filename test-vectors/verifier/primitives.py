"""SPEC §1 (notation and encodings) and §2 (the suite, labels, Ed25519 points and VERIFY).

X25519 (RFC 7748) and Ed25519 (RFC 8032) are written here with plain integers, so that every
rule of §2.2 and §2.4 is visible (and breakable by a mutation switch) rather than hidden in a
library. SHA-2, HMAC and HKDF come from the Python standard library; AES-256-GCM from
`cryptography`; ML-KEM-1024 (version 2, §4.8) from `kyber-py`, whose deterministic internal
functions are the ones SPEC §4.8 names (see mlkem_kat.py for its known-answer tests).
"""

import hashlib
import hmac as _hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from kyber_py.ml_kem import ML_KEM_1024   # FIPS 203 ML-KEM-1024 (PyPI kyber-py)

from .errors import ProtocolError
from .mutation import mutated, switch

# =========================================================================================
# §1 Notation and encodings
# =========================================================================================

FLAG_LAX = switch("flag-nonzero-is-true", "§1",
                  "a flag byte other than 0x00/0x01 is a decode error (mutated: any non-zero "
                  "byte reads as true)")


def u8(n):
    return n.to_bytes(1, "big")


def u16(n):
    return n.to_bytes(2, "big")


def u32(n):
    """§1: u32 big-endian."""
    return n.to_bytes(4, "big")


def flag(b):
    return b"\x01" if b else b"\x00"


def len8(x):
    """§1: len8(x) = u8(length of x) || x."""
    return u8(len(x)) + x


class Reader:
    """A cursor that cannot run past its input: running out of bytes, or a flag other than
    0x00/0x01 (§1), is a `decode` error."""

    __slots__ = ("data", "pos")

    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ProtocolError("decode", "truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return int.from_bytes(self.take(2), "big")

    def u32(self):
        return int.from_bytes(self.take(4), "big")

    def flag(self):
        b = self.u8()
        if b not in (0, 1):
            if mutated(FLAG_LAX):
                return True
            raise ProtocolError("decode", f"flag byte {b:#04x}")
        return b == 1

    def rest(self):
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out

    def remaining(self):
        return len(self.data) - self.pos

    def at_end(self):
        return self.pos == len(self.data)


# =========================================================================================
# §2.1 Primitives: hashes, HMAC, HKDF, AES-256-GCM
# =========================================================================================

def sha256(x):
    return hashlib.sha256(x).digest()


def sha512(x):
    return hashlib.sha512(x).digest()


def hmac_sha256(key, data):
    """HMAC(key, data), 32 bytes (RFC 2104)."""
    return _hmac.digest(key, data, "sha256")


def hkdf(salt, ikm, info, length):
    """HKDF-SHA256 (RFC 5869): extract then expand to `length` bytes."""
    prk = _hmac.digest(salt, ikm, "sha256")
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = _hmac.digest(prk, t + info + bytes([i]), "sha256")
        out += t
        i += 1
    return out[:length]


def seal(key, nonce, ad, plaintext):
    """SEAL(k, n, ad, p): AES-256-GCM, output ciphertext || tag (16 bytes)."""
    return AESGCM(key).encrypt(nonce, plaintext, ad)


def open_(key, nonce, ad, ciphertext_and_tag):
    """OPEN: the inverse of SEAL; a bad tag is `authentication` (§10)."""
    try:
        return AESGCM(key).decrypt(nonce, ciphertext_and_tag, ad)
    except InvalidTag:
        raise ProtocolError("authentication", "AEAD tag") from None


# =========================================================================================
# §2.1 X25519 (RFC 7748 §5), plain integers
# =========================================================================================

P = 2**255 - 19
_X25519_CACHE = {}


def x25519(k_bytes, u_bytes):
    """RFC 7748 §5: the private key is clamped here (§2.1: stored keys are unclamped); the
    u-coordinate's top bit is masked and non-canonical values are reduced."""
    key = (k_bytes, u_bytes)
    out = _X25519_CACHE.get(key)
    if out is not None:
        return out
    k = bytearray(k_bytes)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    x1 = (int.from_bytes(u_bytes, "little") & ((1 << 255) - 1)) % P
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in range(254, -1, -1):
        bit = (k >> t) & 1
        if swap ^ bit:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a = x2 + z2
        b = x2 - z2
        aa = a * a % P
        bb = b * b % P
        e = aa - bb
        c = x3 + z3
        d = x3 - z3
        da = d * a % P
        cb = c * b % P
        x3 = (da + cb) ** 2 % P
        z3 = x1 * ((da - cb) ** 2 % P) % P
        x2 = aa * bb % P
        z2 = e * (aa + 121665 * e) % P
    if swap:
        x2, z2 = x3, z3
    out = (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")
    _X25519_CACHE[key] = out
    return out


BASE_U = (9).to_bytes(32, "little")


def pub(priv):
    """PUB(priv) = DH(priv, 9) (§2.1)."""
    return x25519(priv, BASE_U)


def dh(priv, peer_pub, skip_check=None):
    """DH(priv, pub) checked per §2.2: an all-zero output is `non-contributory`.

    `skip_check` names the mutation switch(es) of the call site (each DH site of §4 and §5
    has its own), so that breaking the check at one site leaves the others intact."""
    out = x25519(priv, peer_pub)
    if isinstance(skip_check, str):
        skip_check = (skip_check,)
    if out == bytes(32) and not any(mutated(name) for name in skip_check or ()):
        raise ProtocolError("non-contributory", "all-zero X25519 output")
    return out


# =========================================================================================
# §2.3 Labels
# =========================================================================================

SUITE = b"sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256"


def label(name):
    """Every label is SUITE || "/" || name, ASCII, no terminating zero."""
    return SUITE + b"/" + name.encode("ascii")


X3DH_INFO = label("X3DH")
ROOT_INFO = label("RootKey")
MESSAGE_KEY_INFO = label("MessageKey")
SIGNED_PREKEY_CONTEXT = label("SignedPreKey")
GROUP_MESSAGE_KEY_INFO = label("SenderKey/MessageKey")
GROUP_SIGNATURE_CONTEXT = label("SenderKey/Signature")
GROUP_COMMITMENT_LABEL = label("SenderKey/Commitment")
SEALED_STATE_AD = label("SealedState")
SAFETY_NUMBER_LABEL = label("SafetyNumber")
DEVICE_CERTIFICATE_CONTEXT = label("DeviceCertificate")
DEVICE_LIST_CONTEXT = label("DeviceList")

# Version 2 (§4.8) adds SUITE_PQ and two labels SUITE_PQ || "/" || name; every label above
# keeps its value in version 2.
SUITE_PQ = b"sottovoce-v2/X25519-MLKEM1024-Ed25519-AES256GCM-SHA256"


def label_pq(name):
    return SUITE_PQ + b"/" + name.encode("ascii")


PQXDH_INFO = label_pq("PQXDH")
KEM_PREKEY_CONTEXT = label_pq("KemPreKey")

assert len(SUITE) == 44
assert len(SUITE_PQ) == 54
assert PQXDH_INFO.hex() == ("736f74746f766f63652d76322f5832353531392d4d4c4b454d313032342d"
                            "456432353531392d41455332353647434d2d5348413235362f5051584448")
assert X3DH_INFO.hex() == ("736f74746f766f63652d76312f5832353531392d456432353531392d"
                           "41455332353647434d2d5348413235362f58334448")

# =========================================================================================
# §2.4 Ed25519 points and VERIFY, plain integers (RFC 8032 §5.1)
# =========================================================================================

L = 2**252 + 27742317777372353535851937790883648493
ED_D = (-121665 * pow(121666, P - 2, P)) % P
_D2 = 2 * ED_D % P
_SQRT_M1 = pow(2, (P - 1) // 4, P)
IDENTITY = (0, 1, 1, 0)  # extended coordinates (X, Y, Z, T)


def _add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * _D2 % P * t2 % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _double(p1):
    x1, y1, z1, _ = p1
    a = x1 * x1 % P
    b = y1 * y1 % P
    c = 2 * z1 * z1 % P
    h = a + b
    e = (h - (x1 + y1) ** 2) % P
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _neg(p1):
    x, y, z, t = p1
    return ((-x) % P, y, z, (-t) % P)


def _mul(k, pt):
    """[k]pt, 4-bit fixed window."""
    table = [IDENTITY, pt]
    for _ in range(14):
        table.append(_add(table[-1], pt))
    acc = IDENTITY
    nibbles = []
    while k:
        nibbles.append(k & 15)
        k >>= 4
    for nib in reversed(nibbles):
        acc = _double(_double(_double(_double(acc))))
        if nib:
            acc = _add(acc, table[nib])
    return acc


def _is_identity(pt):
    x, y, z, _ = pt
    return x % P == 0 and (y - z) % P == 0


def _eq(p1, p2):
    return ((p1[0] * p2[2] - p2[0] * p1[2]) % P == 0
            and (p1[1] * p2[2] - p2[1] * p1[2]) % P == 0)


def _encode(pt):
    """RFC 8032 §5.1.2."""
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


_BASE_Y = 4 * pow(5, P - 2, P) % P


def _decode_lax(b):
    """RFC 8032 §5.1.3 decoding "if y is reduced first" (§2.4): y is taken mod p and x = 0
    with the sign bit set decodes to x = 0. Returns a point or None (no square root). The
    canonical-encoding test is separate (`is_canonical`)."""
    v = int.from_bytes(b, "little")
    sign = v >> 255
    y = (v & ((1 << 255) - 1)) % P
    u = (y * y - 1) % P
    w = (ED_D * y * y + 1) % P
    x = u * pow(w, 3, P) * pow(u * pow(w, 7, P), (P - 5) // 8, P) % P
    if (w * x * x - u) % P != 0:
        x = x * _SQRT_M1 % P
        if (w * x * x - u) % P != 0:
            return None
    if x != 0 and (x & 1) != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def _base_point():
    pt = _decode_lax(_BASE_Y.to_bytes(32, "little"))
    return pt


B = _base_point()
_B_POWERS = [B]
for _i in range(255):
    _B_POWERS.append(_double(_B_POWERS[-1]))


def _mul_base(k):
    """[k]B from a table of [2^i]B."""
    acc = IDENTITY
    i = 0
    while k:
        if k & 1:
            acc = _add(acc, _B_POWERS[i])
        k >>= 1
        i += 1
    return acc


_POINT_INFO = {}


def point_info(b):
    """Facts about a 32-byte string used by §2.4, cached (pure): (point or None,
    canonical, in prime-order subgroup ([L]P = identity), is identity, small order)."""
    info = _POINT_INFO.get(b)
    if info is None:
        pt = _decode_lax(b) if len(b) == 32 else None
        if pt is None:
            info = (None, False, False, False, False)
        else:
            canonical = _encode(pt) == b
            torsion_free = _is_identity(_mul(L, pt))
            small = _is_identity(_double(_double(_double(pt))))
            info = (pt, canonical, torsion_free, _is_identity(pt), small)
        _POINT_INFO[b] = info
    return info


KEY_NONCANONICAL = switch(
    "key-accept-noncanonical", "§2.4",
    "an acceptable public key is the canonical encoding of its point (mutated: the "
    "re-encoding test is skipped)",
    unpinnable=("SPEC §2.4: 'The canonical-encoding part of this rule cannot be pinned by a "
                "vector on its own: ... no point with y < 19 other than the identity lies in "
                "the prime-order subgroup, so every such key is also refused by the subgroup "
                "rule.'"))
KEY_TORSION = switch(
    "key-accept-torsion", "§2.4",
    "an acceptable public key lies in the prime-order subgroup, [L]P = identity (mutated: "
    "points with a torsion component are accepted)")
KEY_IDENTITY = switch(
    "key-accept-identity", "§2.4",
    "an acceptable public key is not the identity (mutated: the identity is accepted)")


def is_acceptable_key(b):
    """§2.4: A is acceptable when its 32 bytes are the canonical encoding of a point P with
    [L]P the identity and P not the identity."""
    pt, canonical, torsion_free, identity, _ = point_info(b)
    if pt is None:
        return False
    if not canonical and not mutated(KEY_NONCANONICAL):
        return False
    if not torsion_free and not mutated(KEY_TORSION):
        return False
    if identity and not mutated(KEY_IDENTITY):
        return False
    return True


_PUBLIC_CACHE = {}


def ed25519_secret(seed):
    """RFC 8032 §5.1.5: the clamped scalar and the prefix from SHA512(seed)."""
    h = sha512(seed)
    a = bytearray(h[:32])
    a[0] &= 248
    a[31] &= 127
    a[31] |= 64
    return int.from_bytes(a, "little"), h[32:]


def ed25519_public(seed):
    """The 32-byte Ed25519 public key of a seed (RFC 8032 §5.1.5)."""
    out = _PUBLIC_CACHE.get(seed)
    if out is None:
        a, _ = ed25519_secret(seed)
        out = _encode(_mul_base(a))
        _PUBLIC_CACHE[seed] = out
    return out


_SIGN_CACHE = {}


def sign(seed, message):
    """SIGN(seed, m): pure Ed25519 (RFC 8032 §5.1.6), deterministic (so cached)."""
    key = (seed, message)
    out = _SIGN_CACHE.get(key)
    if out is not None:
        return out
    a, prefix = ed25519_secret(seed)
    public = ed25519_public(seed)
    r = int.from_bytes(sha512(prefix + message), "little") % L
    r_bytes = _encode(_mul_base(r))
    k = int.from_bytes(sha512(r_bytes + public + message), "little") % L
    s = (r + k * a) % L
    out = r_bytes + s.to_bytes(32, "little")
    _SIGN_CACHE[key] = out
    return out


VERIFY_S = switch(
    "verify-s-unreduced", "§2.4 VERIFY rule 1",
    "S is below L (mutated: S is only required to be a 256-bit integer and is used mod L)")
VERIFY_R_CANONICAL = switch(
    "verify-r-noncanonical", "§2.4 VERIFY rule 2",
    "R_bytes is the canonical encoding of a point (mutated: non-canonical R accepted)",
    unpinnable=("SPEC §2.4: 'Rule 2 cannot be pinned by a vector on its own: a non-canonical "
                "R_bytes that satisfies rule 4 ... needs a point whose discrete logarithm is "
                "known, and the only such points with a non-canonical encoding ... are of "
                "small order, which rule 3 rejects.'"))
VERIFY_R_SMALL = switch(
    "verify-r-small-order", "§2.4 VERIFY rule 3",
    "R is not of small order, [8]R != identity (mutated: small-order R accepted)")
VERIFY_COFACTORED = switch(
    "verify-cofactored", "§2.4 VERIFY rule 4",
    "the cofactorless equation [S]B = R + [k]A is used; the cofactored one MUST NOT be "
    "(mutated: [8][S]B = [8]R + [8][k]A)")

_VERIFY_CACHE = {}


def _verify_facts(public, message, sig):
    """The facts VERIFY's rules test, cached (pure)."""
    key = (public, sig, message)
    facts = _VERIFY_CACHE.get(key)
    if facts is None:
        r_bytes, s_bytes = sig[:32], sig[32:]
        s = int.from_bytes(s_bytes, "little")
        r_pt, r_canonical, _, _, r_small = point_info(r_bytes)
        a_pt = point_info(public)[0]
        cofactorless = cofactored = False
        if r_pt is not None and a_pt is not None:
            k = int.from_bytes(sha512(r_bytes + public + message), "little") % L
            # [S]B - [k]A, compared with R as points (§2.4 rule 4).
            q = _add(_mul_base(s % L), _neg(_mul(k, a_pt)))
            cofactorless = _eq(q, r_pt)
            diff = _add(q, _neg(r_pt))
            cofactored = _is_identity(_double(_double(_double(diff))))
        facts = (s < L, r_pt is not None, r_canonical, r_small, cofactorless, cofactored)
        _VERIFY_CACHE[key] = facts
    return facts


def verify(public, message, sig):
    """VERIFY(A, m, sig) of §2.4 for an acceptable A: True iff rules 1-4 hold, in order."""
    if len(sig) != 64:
        return False
    s_ok, r_decodes, r_canonical, r_small, cofactorless, cofactored = \
        _verify_facts(public, message, sig)
    # Rule 1: S < L.
    if not s_ok and not mutated(VERIFY_S):
        return False
    # Rule 2: R_bytes is the canonical encoding of a point R.
    if not r_decodes:
        return False
    if not r_canonical and not mutated(VERIFY_R_CANONICAL):
        return False
    # Rule 3: [8]R is not the identity.
    if r_small and not mutated(VERIFY_R_SMALL):
        return False
    # Rule 4: the cofactorless equation (never the cofactored one).
    if mutated(VERIFY_COFACTORED):
        return cofactored
    return cofactorless


def edwards_to_montgomery(ed_pub):
    """§3.1: u = (1 + y) / (1 - y) mod p, y the Edwards y-coordinate encoded in ed_pub."""
    y = (int.from_bytes(ed_pub, "little") & ((1 << 255) - 1)) % P
    return ((1 + y) * pow((1 - y) % P, P - 2, P) % P).to_bytes(32, "little")


# =========================================================================================
# §2.1 / §4.8 ML-KEM-1024 (FIPS 203), deterministic internal functions (kyber-py)
# =========================================================================================

KEM_EK_LEN, KEM_DK_LEN, KEM_CT_LEN, KEM_SS_LEN = 1568, 3168, 1568, 32
KEM_Q = 3329

# Pure-Python ML-KEM is slow (tens of ms a call) and every function is deterministic, so
# each result is cached by its inputs; --mutate's worker processes inherit the caches.
_KEYGEN_CACHE, _ENCAPS_CACHE, _DECAPS_CACHE = {}, {}, {}


def kem_keygen(seed):
    """KEYGEN(d, z) = ML-KEM.KeyGen_internal(d, z) with seed = d || z (64 bytes):
    (ek 1568 bytes, dk 3168 bytes)."""
    out = _KEYGEN_CACHE.get(seed)
    if out is None:
        if len(seed) != 64:
            raise ValueError("a KEM seed is d || z, 64 bytes")
        out = ML_KEM_1024._keygen_internal(seed[:32], seed[32:])
        _KEYGEN_CACHE[seed] = out
    return out


def kem_encaps(ek, m):
    """ENCAPS(ek, m) = ML-KEM.Encaps_internal(ek, m): (SS 32 bytes, ct 1568 bytes). The ek
    must be acceptable (keys.accept_kem_key); this does not check it again."""
    key = (ek, m)
    out = _ENCAPS_CACHE.get(key)
    if out is None:
        out = ML_KEM_1024._encaps_internal(ek, m)
        _ENCAPS_CACHE[key] = out
    return out


def kem_decaps(dk, ct):
    """DECAPS(dk, ct) = ML-KEM.Decaps_internal(dk, ct): SS (32 bytes). Never fails: a ct
    not made for ek gives a pseudorandom SS (implicit rejection)."""
    key = (dk, ct)
    out = _DECAPS_CACHE.get(key)
    if out is None:
        out = ML_KEM_1024.decaps(dk, ct)
        _DECAPS_CACHE[key] = out
    return out


def byte_decode_12(b):
    """FIPS 203 ByteDecode_12 without the reduction: the 12-bit little-endian integers of
    `b` (two per three bytes)."""
    out = []
    for i in range(0, len(b) - 2, 3):
        x = b[i] | b[i + 1] << 8 | b[i + 2] << 16
        out.append(x & 0xFFF)
        out.append(x >> 12)
    return out
