#!/usr/bin/env python3
"""Independent verifier for the sottovoce test vectors.

Written from SPEC.md (revision 1) and test-vectors/README.md alone, without looking at the
Rust implementation. It re-implements every layer of the protocol in Python and replays
every test of kdf.json, x3dh.json, wire.json, session.json, sender_keys.json and
persistence.json:

  * valid tests: every output is recomputed and compared byte for byte;
  * invalid tests/events: the operation must fail with exactly the SPEC §10 category, and
    the state must be unchanged afterwards (compared through its §11 encoding);
  * randomness: the listed byte strings are replayed in order (SPEC §8); an operation that
    asks for a different number or length of draws is a failure.

Where SPEC.md leaves a choice open, the choice made is marked "Interpretation" below.

Usage:  python3 verify.py [DIRECTORY]      (default: the directory holding this script)
Needs:  the packages in requirements.txt (cryptography, jsonschema)
"""

import copy
import hashlib
import json
import os
import sys
from collections import OrderedDict

try:
    from cryptography.exceptions import InvalidSignature, InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import hmac as crypto_hmac
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF as CryptoHKDF
except ImportError:  # pragma: no cover - environment problem, not a vector problem
    sys.stderr.write("verify.py needs the 'cryptography' package: pip install cryptography\n")
    sys.exit(2)


# =========================================================================================
# SPEC §10 - error categories
# =========================================================================================

ERROR_CATEGORIES = (
    "decode", "unknown-version", "invalid-key", "bad-signature", "non-contributory",
    "unknown-prekey", "authentication", "duplicate", "skip-limit", "counter-exhausted",
    "state-mismatch",
)


class ProtocolError(Exception):
    """A protocol failure; `category` is one of the closed list of SPEC §10."""

    def __init__(self, category, detail=""):
        assert category in ERROR_CATEGORIES, category
        super().__init__(f"{category}: {detail}" if detail else category)
        self.category = category


class Mismatch(Exception):
    """The vectors disagree with this implementation (a failed check)."""


def check(condition, message):
    if not condition:
        raise Mismatch(message)


def check_eq(got, want, what):
    if got != want:
        if isinstance(got, bytes):
            got = got.hex()
        if isinstance(want, bytes):
            want = want.hex()
        raise Mismatch(f"{what}: got {got!r}, expected {want!r}")


# =========================================================================================
# SPEC §9 - limits
# =========================================================================================

MAX_SKIP = 1000
MAX_SKIPPED_KEYS = 2000
MAX_RECEIVING_CHAINS = 5
MAX_BINDING_LEN = 1024
MAX_GROUP_ID_LEN = 64
MAX_GROUP_SKIP = 1000
MAX_GROUP_SKIPPED_KEYS = 1000
MAX_SENDER_KEY_STATES = 5
COUNTER_MAX = 0xFFFFFFFF  # a chain key at this number has no successor (§5.3)


# =========================================================================================
# SPEC §1 - notation and encodings
# =========================================================================================

def u8(n):
    return n.to_bytes(1, "big")


def u16(n):
    return n.to_bytes(2, "big")


def u32(n):
    return n.to_bytes(4, "big")


def flag(b):
    return b"\x01" if b else b"\x00"


def len8(x):
    return u8(len(x)) + x


class Reader:
    """Strict reader: running out of bytes or a bad flag is a `decode` error (§1, §6.1)."""

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
            raise ProtocolError("decode", f"flag {b}")
        return b == 1

    def rest(self):
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out

    def end(self):
        if self.pos != len(self.data):
            raise ProtocolError("decode", "trailing bytes")


# =========================================================================================
# SPEC §2.1 - primitives
# =========================================================================================

def sha256(x):
    return hashlib.sha256(x).digest()


def sha512(x):
    return hashlib.sha512(x).digest()


def hkdf(salt, ikm, info, length):
    """HKDF-SHA256, extract then expand (RFC 5869)."""
    return CryptoHKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hmac_sha256(key, data):
    h = crypto_hmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


def seal(key, nonce, ad, plaintext):
    """AES-256-GCM; returns ciphertext || tag."""
    return AESGCM(key).encrypt(nonce, plaintext, ad)


def open_(key, nonce, ad, ciphertext_and_tag):
    """Inverse of SEAL; a bad tag is `authentication` (§10)."""
    try:
        return AESGCM(key).decrypt(nonce, ciphertext_and_tag, ad)
    except InvalidTag:
        raise ProtocolError("authentication", "AEAD tag") from None


# ----- X25519 (RFC 7748) ------------------------------------------------------------------

P = 2**255 - 19


def _x25519_ladder(k_bytes, u_bytes):
    """Plain-integer RFC 7748 §5 X25519, used only to confirm an all-zero output when the
    library refuses to return it (OpenSSL rejects all-zero shared secrets itself)."""
    k = bytearray(k_bytes)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    x1 = int.from_bytes(u_bytes, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3 = (da + cb) ** 2 % P
        z3 = x1 * (da - cb) ** 2 % P
        x2 = aa * bb % P
        z2 = e * (aa + 121665 * e) % P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")


def dh_raw(priv, pub):
    """DH(priv, pub) of §2.1, unchecked."""
    try:
        return X25519PrivateKey.from_private_bytes(priv).exchange(
            X25519PublicKey.from_public_bytes(pub))
    except ValueError:
        out = _x25519_ladder(priv, pub)
        if out != bytes(32):
            raise RuntimeError("X25519 library failure on a non-zero output")
        return out


def dh(priv, pub):
    """DH checked per §2.2: an all-zero output is `non-contributory`."""
    out = dh_raw(priv, pub)
    if out == bytes(32):
        raise ProtocolError("non-contributory", "all-zero X25519 output")
    return out


def pub_x25519(priv):
    """PUB(priv) = DH(priv, 9) (§2.1)."""
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes_raw()


# ----- Ed25519 with plain integers (RFC 8032 §5.1) -----------------------------------------

ED_D = (-121665 * pow(121666, P - 2, P)) % P
ED_L = 2**252 + 27742317777372353535851937790883648493
SQRT_M1 = pow(2, (P - 1) // 4, P)
ED_IDENTITY = (0, 1, 1, 0)


def ed_decode_point(b):
    """RFC 8032 §5.1.3 decoding; returns extended coordinates or None. Rejects y >= p."""
    if len(b) != 32:
        return None
    v = int.from_bytes(b, "little")
    sign = v >> 255
    y = v & ((1 << 255) - 1)
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(ED_D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if x == 0 and sign == 1:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def ed_encode_point(pt):
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def ed_add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * 2 * ED_D * t2 % P
    d = z1 * 2 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def ed_is_identity(pt):
    x, y, z, _ = pt
    return x % P == 0 and (y - z) % P == 0


def ed_is_small_order(pt):
    q = pt
    for _ in range(3):
        q = ed_add(q, q)
    return ed_is_identity(q)  # 8·P is the identity


def ed25519_point_acceptable(b):
    """§3.1: canonical encoding of a point on Ed25519, not of small order."""
    pt = ed_decode_point(b)
    return pt is not None and ed_encode_point(pt) == b and not ed_is_small_order(pt)


def accept_identity_key(b):
    """§3.1 'Accepting an identity public key' (also used for signing keys, §6.5)."""
    if not ed25519_point_acceptable(b):
        raise ProtocolError("invalid-key", "unacceptable Ed25519 public key")
    return b


def ed25519_public(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def sign(seed, message):
    """SIGN(seed, m): pure Ed25519, deterministic (§2.1)."""
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def verify_strict(pk, message, sig):
    """VERIFY of §2.1: strict. Extra checks done here because the library is lenient:
    S < L, canonical and not-small-order R and A; then the library's cofactorless check."""
    if len(sig) != 64 or len(pk) != 32:
        return False
    if int.from_bytes(sig[32:], "little") >= ED_L:
        return False
    if not ed25519_point_acceptable(pk) or not ed25519_point_acceptable(sig[:32]):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, message)
        return True
    except InvalidSignature:
        return False


def edwards_to_montgomery(ed_pub):
    """§3.1: u = (1 + y) / (1 - y) mod p."""
    y = int.from_bytes(ed_pub, "little") & ((1 << 255) - 1)
    return ((1 + y) * pow((1 - y) % P, P - 2, P) % P).to_bytes(32, "little")


# =========================================================================================
# SPEC §2.3 - labels
# =========================================================================================

SUITE = b"sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256"


def label(name):
    return SUITE + b"/" + name.encode("ascii")


X3DH_INFO = label("X3DH")
ROOT_INFO = label("RootKey")
MESSAGE_KEY_INFO = label("MessageKey")
SIGNED_PREKEY_CONTEXT = label("SignedPreKey")
GROUP_MESSAGE_KEY_INFO = label("SenderKey/MessageKey")
GROUP_SIGNATURE_CONTEXT = label("SenderKey/Signature")
SEALED_STATE_AD = label("SealedState")

assert len(SUITE) == 44
assert X3DH_INFO.hex() == ("736f74746f766f63652d76312f5832353531392d456432353531392d"
                           "41455332353647434d2d5348413235362f58334448")


# =========================================================================================
# SPEC §8 - randomness (replayed)
# =========================================================================================

class ReplayRng:
    """Returns exactly the listed byte strings, one per draw, checking each length."""

    def __init__(self, hex_strings):
        self.items = [bytes.fromhex(h) for h in (hex_strings or [])]
        self.next = 0

    def draw(self, n):
        if self.next >= len(self.items):
            raise Mismatch(f"operation drew {n} random bytes beyond the {len(self.items)} listed")
        item = self.items[self.next]
        if len(item) != n:
            raise Mismatch(f"draw #{self.next} asked for {n} bytes, vector lists {len(item)}")
        self.next += 1
        return item

    def finish(self):
        if self.next != len(self.items):
            raise Mismatch(f"only {self.next} of {len(self.items)} listed random values were drawn")


# =========================================================================================
# SPEC §3 - keys, prekeys, bundles
# =========================================================================================

class Identity:
    """§3.1: one Ed25519 key pair given by its seed, plus its X25519 form."""

    def __init__(self, seed):
        self.seed = seed
        self.pub = ed25519_public(seed)
        self.priv_x = sha512(seed)[:32]
        self.pub_x = edwards_to_montgomery(self.pub)


def signed_prekey_signature(identity_seed, spk_id, spk_pub):
    """§3.2."""
    return sign(identity_seed, SIGNED_PREKEY_CONTEXT + u32(spk_id) + spk_pub)


# =========================================================================================
# SPEC §6 - message formats
# =========================================================================================

T_MESSAGE, T_PREKEY, T_BUNDLE, T_DISTRIBUTION, T_GROUP = 0x1, 0x2, 0x3, 0x4, 0x5
T_SAVED_SESSION, T_SAVED_SENDER, T_SAVED_RECEIVER, T_SEALED = 0x6, 0x7, 0x8, 0x9


def read_first_byte(r, expected_type):
    """§6.1: version nibble first (`unknown-version`), then type nibble (`decode`)."""
    b = r.u8()
    if b >> 4 != 1:
        raise ProtocolError("unknown-version", f"first byte {b:#04x}")
    if b & 0x0F != expected_type:
        raise ProtocolError("decode", f"type nibble of {b:#04x}")


def decode_message(data):
    """§6.2 -> dict(dhr, n, ciphertext, header)."""
    r = Reader(data)
    read_first_byte(r, T_MESSAGE)
    dhr = r.take(32)
    n = r.u32()
    ciphertext = r.rest()
    if len(ciphertext) < 16:
        raise ProtocolError("decode", "ciphertext shorter than the tag")
    return {"dhr": dhr, "n": n, "ciphertext": ciphertext, "header": bytes(data[:37])}


def encode_message(dhr, n, ciphertext):
    return b"\x11" + dhr + u32(n) + ciphertext


def decode_prekey_message(data):
    """§6.3; IK_A accepted per §3.1; the embedded message is a complete §6.2 encoding."""
    r = Reader(data)
    read_first_byte(r, T_PREKEY)
    ik_a = accept_identity_key(r.take(32))
    ek_a = r.take(32)
    spk_id = r.u32()
    opk_id = r.u32() if r.flag() else None
    embedded = r.rest()
    inner = decode_message(embedded)
    return {"ik_a": ik_a, "ek_a": ek_a, "spk_id": spk_id, "opk_id": opk_id,
            "embedded": embedded, "inner": inner}


def encode_prekey_message(ik_a, ek_a, spk_id, opk_id, message):
    out = b"\x12" + ik_a + ek_a + u32(spk_id)
    out += b"\x00" if opk_id is None else b"\x01" + u32(opk_id)
    return out + message


def decode_bundle(data):
    """§6.4; the signature is not verified here."""
    r = Reader(data)
    read_first_byte(r, T_BUNDLE)
    b = {"ik": accept_identity_key(r.take(32)), "spk_id": r.u32(), "spk_pub": r.take(32),
         "spk_sig": r.take(64), "opk_id": None, "opk_pub": None}
    if r.flag():
        b["opk_id"] = r.u32()
        b["opk_pub"] = r.take(32)
    r.end()
    return b


def encode_bundle(b):
    out = b"\x13" + b["ik"] + u32(b["spk_id"]) + b["spk_pub"] + b["spk_sig"]
    if b["opk_id"] is None:
        return out + b"\x00"
    return out + b"\x01" + u32(b["opk_id"]) + b["opk_pub"]


def read_group_id(r):
    """§6.5 / §7.1: 1 <= L <= MAX_GROUP_ID_LEN."""
    n = r.u8()
    if not 1 <= n <= MAX_GROUP_ID_LEN:
        raise ProtocolError("decode", f"group id length {n}")
    return r.take(n)


def decode_distribution(data):
    """§6.5."""
    r = Reader(data)
    read_first_byte(r, T_DISTRIBUTION)
    d = {"group_id": read_group_id(r), "key_id": r.u32(), "iteration": r.u32(),
         "chain_key": r.take(32), "signing_key": accept_identity_key(r.take(32))}
    r.end()
    return d


def encode_distribution(group_id, key_id, iteration, chain_key, signing_key):
    return b"\x14" + len8(group_id) + u32(key_id) + u32(iteration) + chain_key + signing_key


def decode_group_message(data):
    """§6.6: header 9 bytes, ciphertext||tag >= 16 bytes, signature 64 bytes."""
    r = Reader(data)
    read_first_byte(r, T_GROUP)
    key_id = r.u32()
    iteration = r.u32()
    rest = r.rest()
    if len(rest) < 16 + 64:
        raise ProtocolError("decode", "group message too short")
    return {"key_id": key_id, "iteration": iteration, "ciphertext": rest[:-64],
            "signature": rest[-64:], "header": bytes(data[:9]), "body": bytes(data[:-64])}


# =========================================================================================
# SPEC §5.2 - §5.4 - KDFs
# =========================================================================================

def kdf_rk(rk, dh_output):
    """§5.2."""
    okm = hkdf(rk, dh_output, ROOT_INFO, 64)
    return okm[:32], okm[32:]


def kdf_ck(ck):
    """§5.3: (MK, CK')."""
    return hmac_sha256(ck, b"\x01"), hmac_sha256(ck, b"\x02")


def message_key_expansion(mk, info=MESSAGE_KEY_INFO):
    """§5.4 (and §7.3 step 2 with GROUP_MESSAGE_KEY_INFO): (key, nonce)."""
    okm = hkdf(bytes(32), mk, info, 44)
    return okm[:32], okm[32:]


# =========================================================================================
# SPEC §4 - X3DH
# =========================================================================================

def associated_data(ik_a_pub, ik_b_pub, binding):
    """§4.1: AD and H_AD."""
    if len(binding) > MAX_BINDING_LEN:
        raise ProtocolError("decode", "binding too long")
    ad = ik_a_pub + ik_b_pub + binding
    return ad, sha256(ad)


def x3dh_shared_secret(dhs):
    """§4.2 step 4 / §4.3."""
    return hkdf(bytes(32), b"\xff" * 32 + b"".join(dhs), X3DH_INFO, 32)


def x3dh_initiate(alice, bundle_bytes, binding, rng):
    """§4.2 steps 1-4 (ratchet initialisation is separate, §5.1)."""
    if len(binding) > MAX_BINDING_LEN:
        raise ProtocolError("decode", "binding too long")
    bundle = decode_bundle(bundle_bytes)
    # Step 1: verify the signed prekey, before any DH (and before any draw).
    if not verify_strict(bundle["ik"], SIGNED_PREKEY_CONTEXT + u32(bundle["spk_id"])
                         + bundle["spk_pub"], bundle["spk_sig"]):
        raise ProtocolError("bad-signature", "signed prekey")
    # Step 2.
    ek_priv = rng.draw(32)
    ek_pub = pub_x25519(ek_priv)
    # Step 3, each checked per §2.2, in this order.
    ik_b_pub_x = edwards_to_montgomery(bundle["ik"])
    dhs = [dh(alice.priv_x, bundle["spk_pub"]),
           dh(ek_priv, ik_b_pub_x),
           dh(ek_priv, bundle["spk_pub"])]
    if bundle["opk_id"] is not None:
        dhs.append(dh(ek_priv, bundle["opk_pub"]))
    # Step 4.
    sk = x3dh_shared_secret(dhs)
    ad, h_ad = associated_data(alice.pub, bundle["ik"], binding)
    return {"bundle": bundle, "ek_priv": ek_priv, "ek_pub": ek_pub, "dhs": dhs, "sk": sk,
            "ad": ad, "h_ad": h_ad}


class PrekeyStore:
    """The responder's identity, signed prekeys and one-time prekeys (§3, §4.4)."""

    def __init__(self, identity, signed_prekeys, one_time_prekeys):
        self.identity = identity
        self.signed = dict(signed_prekeys)      # id -> private
        self.one_time = dict(one_time_prekeys)  # id -> private

    def snapshot(self):
        return (sorted(self.signed.items()), sorted(self.one_time.items()))


def x3dh_respond_secret(store, pkm, binding):
    """§4.4 steps 1-4 -> (sk, h_ad, dhs, spk_priv)."""
    if len(binding) > MAX_BINDING_LEN:
        raise ProtocolError("decode", "binding too long")
    # Step 1.
    if pkm["spk_id"] not in store.signed:
        raise ProtocolError("unknown-prekey", "signed prekey")
    spk_priv = store.signed[pkm["spk_id"]]
    opk_priv = None
    if pkm["opk_id"] is not None:
        if pkm["opk_id"] not in store.one_time:
            raise ProtocolError("unknown-prekey", "one-time prekey")
        opk_priv = store.one_time[pkm["opk_id"]]
    # Step 2: IK_A was accepted by decode_prekey_message (§3.1, §6.3).
    ik_a_pub_x = edwards_to_montgomery(pkm["ik_a"])
    # Step 3, in this order, each checked.
    dhs = [dh(spk_priv, ik_a_pub_x),
           dh(store.identity.priv_x, pkm["ek_a"]),
           dh(spk_priv, pkm["ek_a"])]
    if opk_priv is not None:
        dhs.append(dh(opk_priv, pkm["ek_a"]))
    # Step 4.
    sk = x3dh_shared_secret(dhs)
    _, h_ad = associated_data(pkm["ik_a"], store.identity.pub, binding)
    return sk, h_ad, dhs, spk_priv


# =========================================================================================
# SPEC §5 - Double Ratchet
# =========================================================================================

class Session:
    """§5.1 state, plus the X3DH facts that §5.5/§5.6/§11.2 need.

    DHs (`dhs_priv`, `dhs_pub`) exists only while sending is active, plus the responder's
    transient first-message copy of its signed prekey (§5.1), which lives only inside
    `session_respond` and is never saved (§11.2)."""

    def __init__(self):
        self.session_id = None      # EK_A.pub
        self.local_ik = None
        self.remote_ik = None
        self.h_ad = None
        self.pending_prekey = False  # initiator that has not yet decrypted a message
        self.spk_id = 0
        self.opk_id = None
        self.rk = None
        self.dhs_priv = None         # None unless sending is active (or responder's first
        self.dhs_pub = None          # message, §5.1)
        self.sending = None          # None = pending (no DHs), else [CKs, Ns] with DHs
        self.receiving = []          # [[DHr, CKr, Nr]], oldest first
        self.skipped = OrderedDict()  # (DHr, N) -> MK, oldest first


def session_initiate(alice, bundle_bytes, binding, rng):
    """§4.2 then §5.1 (initiator)."""
    x = x3dh_initiate(alice, bundle_bytes, binding, rng)
    s = Session()
    s.session_id = x["ek_pub"]
    s.local_ik = alice.pub
    s.remote_ik = x["bundle"]["ik"]
    s.h_ad = x["h_ad"]
    s.pending_prekey = True
    s.spk_id = x["bundle"]["spk_id"]
    s.opk_id = x["bundle"]["opk_id"]
    s.dhs_priv = rng.draw(32)
    s.dhs_pub = pub_x25519(s.dhs_priv)
    s.rk, cks = kdf_rk(x["sk"], dh(s.dhs_priv, x["bundle"]["spk_pub"]))
    s.sending = [cks, 0]
    return s


def session_encrypt(s, plaintext, rng):
    """§5.5. Works on a copy; returns (new_state, message)."""
    s = copy.deepcopy(s)
    # Step 1.
    if s.sending is None:
        priv = rng.draw(32)
        dhr = s.receiving[-1][0]
        s.rk, cks = kdf_rk(s.rk, dh(priv, dhr))
        s.dhs_priv, s.dhs_pub = priv, pub_x25519(priv)
        s.sending = [cks, 0]
    cks, ns = s.sending
    # Step 2.
    if ns == COUNTER_MAX:
        raise ProtocolError("counter-exhausted", "sending chain")
    # Steps 3-5.
    mk, ck_next = kdf_ck(cks)
    key, nonce = message_key_expansion(mk)
    header = b"\x11" + s.dhs_pub + u32(ns)
    message = header + seal(key, nonce, s.h_ad + header, plaintext)
    # Step 6.
    s.sending = [ck_next, ns + 1]
    if s.pending_prekey:
        message = encode_prekey_message(s.local_ik, s.session_id, s.spk_id, s.opk_id, message)
    return s, message


def _step_chain(ck, start, n):
    """Step a chain from number `start` to `n`: skipped keys for start..n-1, MK for n and
    the chain key at n+1 (§5.6 step 3)."""
    skipped = []
    for i in range(start, n):
        mk, ck = kdf_ck(ck)
        skipped.append((i, mk))
    mk, ck = kdf_ck(ck)
    return skipped, mk, ck


def _append_skipped(store, key, mk, bound):
    """Appending when `bound` keys are stored first deletes the oldest (§5.6, §7.4)."""
    if len(store) >= bound:
        store.popitem(last=False)
    store[key] = mk


def ratchet_decrypt(s, msg):
    """§5.6 on a decoded §6.2 message. Steps 1-5 only compute; returns (new_state, pt)."""
    dhr, n, header = msg["dhr"], msg["n"], msg["header"]
    # Step 1.
    if n == COUNTER_MAX:
        raise ProtocolError("counter-exhausted", "received N = 0xFFFFFFFF")
    commit = None
    # Step 2.
    if (dhr, n) in s.skipped:
        mk = s.skipped[(dhr, n)]
        commit = ("skipped",)
    else:
        chain_index = next((i for i, c in enumerate(s.receiving) if c[0] == dhr), None)
        if chain_index is not None:
            # Step 3.
            _, ckr, nr = s.receiving[chain_index]
            if n < nr:
                raise ProtocolError("duplicate", "N below Nr")
            if n - nr > MAX_SKIP:
                raise ProtocolError("skip-limit", "gap in a known chain")
            skipped, mk, ck_next = _step_chain(ckr, nr, n)
            commit = ("chain", chain_index, skipped, ck_next)
        else:
            # Step 4.
            if n > MAX_SKIP:
                raise ProtocolError("skip-limit", "gap on a new chain")
            if s.dhs_priv is None:
                # No DHs: no honest peer can start a new chain now, a forgery (before any DH).
                # Interpretation: the test is "no DHs", not "sending is pending" (the text's
                # parenthetical): the responder's first message is pending yet has DHs (§5.1).
                raise ProtocolError("authentication", "new ratchet key while DHs is deleted")
            rk_new, ckr = kdf_rk(s.rk, dh(s.dhs_priv, dhr))
            skipped, mk, ck_next = _step_chain(ckr, 0, n)
            commit = ("new", rk_new, skipped, ck_next)
    # Step 5.
    key, nonce = message_key_expansion(mk)
    plaintext = open_(key, nonce, s.h_ad + header, msg["ciphertext"])
    # Step 6: commit on a copy.
    s = copy.deepcopy(s)
    if commit[0] == "skipped":
        del s.skipped[(dhr, n)]
    elif commit[0] == "chain":
        _, idx, skipped, ck_next = commit
        s.receiving[idx][1] = ck_next
        s.receiving[idx][2] = n + 1
        for i, k in skipped:
            _append_skipped(s.skipped, (dhr, i), k, MAX_SKIPPED_KEYS)
    else:
        _, rk_new, skipped, ck_next = commit
        s.rk = rk_new
        s.receiving.append([dhr, ck_next, n + 1])
        if len(s.receiving) > MAX_RECEIVING_CHAINS:
            del s.receiving[0]  # its skipped keys stay
        for i, k in skipped:
            _append_skipped(s.skipped, (dhr, i), k, MAX_SKIPPED_KEYS)
        # Sending becomes pending and DHs is deleted (for a responder's first message, this
        # deletes its copy of the signed prekey, §5.1).
        s.sending = None
        s.dhs_priv = s.dhs_pub = None
    s.pending_prekey = False  # the initiator stops wrapping (§5.5)
    return s, plaintext


def session_decrypt(s, data):
    """Decrypt either a §6.2 message or a §6.3 prekey message in an existing session (§5.6,
    last paragraph)."""
    if not data:
        raise ProtocolError("decode", "empty")
    if data[0] >> 4 != 1:
        raise ProtocolError("unknown-version", f"first byte {data[0]:#04x}")
    if data[0] & 0x0F == T_PREKEY:
        pkm = decode_prekey_message(data)
        # Interpretation: the session state records no role (§5.1, §11.2), so IK_A is
        # compared with the remote identity key (an initiator thus rejects any prekey
        # message with state-mismatch). No vector changes IK_A or the OPK id here.
        if (pkm["ik_a"] != s.remote_ik or pkm["ek_a"] != s.session_id
                or pkm["spk_id"] != s.spk_id or pkm["opk_id"] != s.opk_id):
            raise ProtocolError("state-mismatch", "prekey message of another session")
        return ratchet_decrypt(s, pkm["inner"])
    return ratchet_decrypt(s, decode_message(data))


def session_respond(store, data, binding):
    """§4.4: returns (new_session, plaintext, opk_id_to_delete). The caller deletes the
    one-time prekey only on success (step 6)."""
    pkm = decode_prekey_message(data)
    sk, h_ad, _, spk_priv = x3dh_respond_secret(store, pkm, binding)
    # Step 5: initialise as responder (§5.1) and decrypt.
    s = Session()
    s.session_id = pkm["ek_a"]
    s.local_ik = store.identity.pub
    s.remote_ik = pkm["ik_a"]
    s.h_ad = h_ad
    s.pending_prekey = False
    s.spk_id = pkm["spk_id"]
    s.opk_id = pkm["opk_id"]
    s.rk = sk
    # Sending pending, but for this first message only DHs = SPK_B (§5.1); committing the
    # first message (a new chain, §5.6 step 6) deletes the copy.
    s.dhs_priv = spk_priv
    s.dhs_pub = pub_x25519(spk_priv)
    s.sending = None
    s, plaintext = ratchet_decrypt(s, pkm["inner"])
    return s, plaintext, pkm["opk_id"]


# =========================================================================================
# SPEC §7 - Sender Keys
# =========================================================================================

class GroupSender:
    """§7.2: own sender key for one group."""

    def __init__(self, group_id, ik_s, rng):
        self.group_id = group_id
        self.ik_s = ik_s
        self.draw(rng)

    def draw(self, rng):
        """§7.2 / §8: chain key, signing seed, key id (u32 big-endian), iteration 0."""
        self.chain_key = rng.draw(32)
        self.seed = rng.draw(32)
        self.key_id = int.from_bytes(rng.draw(4), "big")
        self.iteration = 0

    def distribution(self):
        """§6.5 at the current iteration."""
        return encode_distribution(self.group_id, self.key_id, self.iteration,
                                   self.chain_key, ed25519_public(self.seed))


def group_encrypt(sender, plaintext):
    """§7.3. Returns (new_sender, message)."""
    if sender.iteration == COUNTER_MAX:
        raise ProtocolError("counter-exhausted", "group sender")
    gid = len8(sender.group_id)
    mk, ck_next = kdf_ck(sender.chain_key)
    key, nonce = message_key_expansion(mk, GROUP_MESSAGE_KEY_INFO)
    header = b"\x15" + u32(sender.key_id) + u32(sender.iteration)
    body = header + seal(key, nonce, gid + sender.ik_s + header, plaintext)
    signature = sign(sender.seed, GROUP_SIGNATURE_CONTEXT + gid + sender.ik_s + body)
    new = copy.copy(sender)
    new.chain_key, new.iteration = ck_next, sender.iteration + 1
    return new, body + signature


class GroupReceiver:
    """§7.4: states (key id, signing key, CK, next iteration, skipped keys), oldest first."""

    def __init__(self, group_id, ik_s):
        self.group_id = group_id
        self.ik_s = ik_s
        self.states = []  # dicts: key_id, signing_key, chain_key, next, skipped(OrderedDict)


def group_receiver_from_distribution(data, ik_s):
    """§7.2: a receiver from a distribution and the session's identity key."""
    d = decode_distribution(data)
    r = GroupReceiver(d["group_id"], ik_s)
    r.states.append({"key_id": d["key_id"], "signing_key": d["signing_key"],
                     "chain_key": d["chain_key"], "next": d["iteration"],
                     "skipped": OrderedDict()})
    return r


def group_add_distribution(receiver, data, session_ik):
    """§7.4 'Adding a distribution', received over a pairwise session whose remote
    identity key is `session_ik`. Returns the new receiver."""
    # Interpretation: §7.4 does not order decoding against the session check; the
    # distribution is decoded first (no vector tells them apart).
    d = decode_distribution(data)
    if session_ik != receiver.ik_s:
        raise ProtocolError("state-mismatch", "distribution not from the receiver's sender")
    if d["group_id"] != receiver.group_id:
        raise ProtocolError("state-mismatch", "distribution for another group")
    for st in receiver.states:
        if st["key_id"] == d["key_id"]:
            if st["signing_key"] == d["signing_key"]:
                return receiver  # ignored
            raise ProtocolError("state-mismatch", "key id held with another signing key")
    new = copy.deepcopy(receiver)
    new.states.append({"key_id": d["key_id"], "signing_key": d["signing_key"],
                       "chain_key": d["chain_key"], "next": d["iteration"],
                       "skipped": OrderedDict()})
    while len(new.states) > MAX_SENDER_KEY_STATES:
        del new.states[0]
    return new


def group_decrypt(receiver, data):
    """§7.4 steps 1-5. Returns (new_receiver, plaintext)."""
    m = decode_group_message(data)
    gid = len8(receiver.group_id)
    # Step 1.
    idx = next((i for i, st in enumerate(receiver.states) if st["key_id"] == m["key_id"]), None)
    if idx is None:
        raise ProtocolError("state-mismatch", "unknown key id")
    st = receiver.states[idx]
    # Step 2.
    if not verify_strict(st["signing_key"], GROUP_SIGNATURE_CONTEXT + gid + receiver.ik_s
                         + m["body"], m["signature"]):
        raise ProtocolError("authentication", "group signature")
    # Step 3.
    j, n = m["iteration"], st["next"]
    if j == COUNTER_MAX:
        # Interpretation: §5.6/§9 only name a received session N = 0xFFFFFFFF; the same
        # rule is applied to a group iteration, after the signature (no vector covers it).
        raise ProtocolError("counter-exhausted", "iteration 0xFFFFFFFF")
    if j < n:
        if j not in st["skipped"]:
            raise ProtocolError("duplicate", "iteration already used or before the start")
        mk = st["skipped"][j]
        commit = ("skipped",)
    else:
        if j - n > MAX_GROUP_SKIP:
            raise ProtocolError("skip-limit", "group gap")
        skipped, mk, ck_next = _step_chain(st["chain_key"], n, j)
        commit = ("chain", skipped, ck_next)
    # Step 4.
    key, nonce = message_key_expansion(mk, GROUP_MESSAGE_KEY_INFO)
    plaintext = open_(key, nonce, gid + receiver.ik_s + m["header"], m["ciphertext"])
    # Step 5.
    new = copy.deepcopy(receiver)
    nst = new.states[idx]
    if commit[0] == "skipped":
        del nst["skipped"][j]
    else:
        _, skipped, ck_next = commit
        nst["chain_key"], nst["next"] = ck_next, j + 1
        for i, k in skipped:
            _append_skipped(nst["skipped"], i, k, MAX_GROUP_SKIPPED_KEYS)
    return new, plaintext


def group_forget_below(receiver, n):
    """§7.4 'Forgetting': all or nothing. Interpretation: "every chain" is read as every
    key-id state of the receiver (the vectors only have one state)."""
    new = copy.deepcopy(receiver)
    for st in new.states:
        for it in [it for it in st["skipped"] if it < n]:
            del st["skipped"][it]
        if st["next"] < n:
            if n - st["next"] > MAX_GROUP_SKIP:
                raise ProtocolError("skip-limit", "forget below too far ahead")
            ck = st["chain_key"]
            for _ in range(st["next"], n):
                ck = hmac_sha256(ck, b"\x02")
            st["chain_key"], st["next"] = ck, n
    return new


# =========================================================================================
# SPEC §11 - persistence
# =========================================================================================

FORMAT_REVISION = 0x01


def read_saved_header(r, expected_type):
    """§11.1: first byte as §6.1, then the format revision byte."""
    read_first_byte(r, expected_type)
    rev = r.u8()
    if rev != FORMAT_REVISION:
        raise ProtocolError("decode", f"format revision {rev}")


def save_session(s):
    """§11.2. DHs.priv is saved inside the active-sending part; a responder's transient
    first-message state (pending sending with DHs) is never saved."""
    assert (s.sending is None) == (s.dhs_priv is None), "transient state is never saved"
    out = b"\x16" + u8(FORMAT_REVISION) + s.session_id + s.local_ik + s.remote_ik + s.h_ad
    out += flag(s.pending_prekey) + u32(s.spk_id)
    out += b"\x00" if s.opk_id is None else b"\x01" + u32(s.opk_id)
    out += s.rk
    if s.sending is None:
        out += b"\x00"  # pending: no DHs
    else:
        out += b"\x01" + s.dhs_priv + s.sending[0] + u32(s.sending[1])
    out += u8(len(s.receiving))
    for dhr, ckr, nr in s.receiving:
        out += dhr + ckr + u32(nr)
    out += u16(len(s.skipped))
    for (dhr, n), mk in s.skipped.items():
        out += dhr + u32(n) + mk
    return out


def restore_session(data):
    """§11.2 with the §11.1 checks."""
    r = Reader(data)
    read_saved_header(r, T_SAVED_SESSION)
    s = Session()
    s.session_id = r.take(32)
    s.local_ik = accept_identity_key(r.take(32))
    s.remote_ik = accept_identity_key(r.take(32))
    s.h_ad = r.take(32)
    s.pending_prekey = r.flag()
    s.spk_id = r.u32()
    s.opk_id = r.u32() if r.flag() else None
    s.rk = r.take(32)
    if r.flag():
        s.dhs_priv = r.take(32)
        s.dhs_pub = pub_x25519(s.dhs_priv)  # recomputed on restore
        s.sending = [r.take(32), r.u32()]
    count = r.u8()
    if count > MAX_RECEIVING_CHAINS:
        raise ProtocolError("decode", "too many receiving chains")
    for _ in range(count):
        s.receiving.append([r.take(32), r.take(32), r.u32()])
    count = r.u16()
    if count > MAX_SKIPPED_KEYS:
        raise ProtocolError("decode", "too many skipped keys")
    for _ in range(count):
        dhr, n, mk = r.take(32), r.u32(), r.take(32)
        s.skipped[(dhr, n)] = mk
    r.end()
    if s.sending is None and not s.receiving:
        raise ProtocolError("decode", "pending sending chain without a receiving chain")
    return s


def save_group_sender(g):
    """§11.3 sender."""
    return (b"\x17" + u8(FORMAT_REVISION) + len8(g.group_id) + g.ik_s + u32(g.key_id)
            + g.chain_key + u32(g.iteration) + g.seed)


def restore_group_sender(data):
    r = Reader(data)
    read_saved_header(r, T_SAVED_SENDER)
    g = GroupSender.__new__(GroupSender)
    g.group_id = read_group_id(r)
    g.ik_s = accept_identity_key(r.take(32))
    g.key_id = r.u32()
    g.chain_key = r.take(32)
    g.iteration = r.u32()
    g.seed = r.take(32)
    r.end()
    return g


def save_group_receiver(g):
    """§11.3 receiver."""
    out = b"\x18" + u8(FORMAT_REVISION) + len8(g.group_id) + g.ik_s + u8(len(g.states))
    for st in g.states:
        out += u32(st["key_id"]) + st["signing_key"] + st["chain_key"] + u32(st["next"])
        out += u16(len(st["skipped"]))
        for it, mk in st["skipped"].items():
            out += u32(it) + mk
    return out


def restore_group_receiver(data):
    r = Reader(data)
    read_saved_header(r, T_SAVED_RECEIVER)
    g = GroupReceiver(read_group_id(r), None)
    g.ik_s = accept_identity_key(r.take(32))
    count = r.u8()
    if not 1 <= count <= MAX_SENDER_KEY_STATES:
        raise ProtocolError("decode", "group receiver state count")
    for _ in range(count):
        st = {"key_id": r.u32(), "signing_key": accept_identity_key(r.take(32)),
              "chain_key": r.take(32), "next": r.u32(), "skipped": OrderedDict()}
        n = r.u16()
        if n > MAX_GROUP_SKIPPED_KEYS:
            raise ProtocolError("decode", "too many group skipped keys")
        for _ in range(n):
            it = r.u32()
            st["skipped"][it] = r.take(32)
        g.states.append(st)
    r.end()
    return g


def seal_state(storage_key, state_bytes, rng):
    """§11.4."""
    nonce = rng.draw(12)
    return b"\x19" + nonce + seal(storage_key, nonce, SEALED_STATE_AD + b"\x19", state_bytes)


def unseal_state(storage_key, sealed):
    """§11.4 inverse; wrong key or any changed byte is `authentication`."""
    r = Reader(sealed)
    read_first_byte(r, T_SEALED)
    nonce = r.take(12)
    body = r.rest()
    if len(body) < 16:
        raise ProtocolError("decode", "sealed state shorter than a tag")
    return open_(storage_key, nonce, SEALED_STATE_AD + b"\x19", body)


RESTORERS = {"session": (restore_session, save_session),
             "group_sender": (restore_group_sender, save_group_sender),
             "group_receiver": (restore_group_receiver, save_group_receiver)}
KIND_BY_FIRST_BYTE = {0x16: "session", 0x17: "group_sender", 0x18: "group_receiver"}


# =========================================================================================
# SPEC §14 - replaying the vector files (README.md)
# =========================================================================================

H = bytes.fromhex

def expect_outcome(event, fn, what):
    """Run fn(); compare against the event's result/error. Returns fn's value or None."""
    want_error = event.get("error") if event.get("result") == "invalid" else None
    try:
        value = fn()
    except ProtocolError as e:
        if want_error is None:
            raise Mismatch(f"{what}: unexpected error {e}") from None
        check_eq(e.category, want_error, f"{what}: error category")
        return None
    if want_error is not None:
        raise Mismatch(f"{what}: succeeded, expected error {want_error}")
    return value


def run_kdf(test, group_type):
    """kdf.json (SPEC §3.1, §5.2-5.4, §7.3)."""
    if group_type == "kdf_rk":
        rk, ck = kdf_rk(H(test["rk"]), H(test["dhOutput"]))
        check_eq(rk, H(test["newRk"]), "new RK")
        check_eq(ck, H(test["chainKey"]), "chain key")
    elif group_type == "kdf_ck":
        ck, index = H(test["chainKey"]), 0
        for step in sorted(test["steps"], key=lambda s: s["index"]):
            while index < step["index"]:
                ck = kdf_ck(ck)[1]
                index += 1
            check_eq(ck, H(step["chainKey"]), f"CK_{index}")
            check_eq(kdf_ck(ck)[0], H(step["messageKey"]), f"MK_{index}")
    elif group_type == "message_key":
        info = {"session": MESSAGE_KEY_INFO, "group": GROUP_MESSAGE_KEY_INFO}[test["label"]]
        key, nonce = message_key_expansion(H(test["messageKey"]), info)
        check_eq(key, H(test["key"]), "key")
        check_eq(nonce, H(test["nonce"]), "nonce")
    elif group_type == "identity":
        ident = Identity(H(test["seed"]))
        check_eq(ident.pub, H(test["public"]), "IK.pub")
        check_eq(ident.priv_x, H(test["x25519Private"]), "IK.priv_x")
        check_eq(ident.pub_x, H(test["x25519Public"]), "IK.pub_x = (1+y)/(1-y)")
        check_eq(pub_x25519(ident.priv_x), H(test["x25519Public"]), "PUB(IK.priv_x)")
        check(ed25519_point_acceptable(ident.pub), "IK.pub not acceptable per §3.1")
    else:
        raise Mismatch(f"unknown kdf group type {group_type}")


def party_identity(party):
    ident = Identity(H(party["identitySeed"]))
    check_eq(ident.pub, H(party["identityKey"]), "identityKey vs identitySeed")
    return ident


def responder_store(bob):
    ident = party_identity(bob)
    spk = bob["signedPreKey"]
    return PrekeyStore(ident, {spk["id"]: H(spk["private"])},
                       {k["id"]: H(k["private"]) for k in bob["oneTimePreKeys"]})


def expected_bundle(store, bob):
    """The bundle Bob publishes (§3.4, §6.4), with the signature reproduced (§3.2)."""
    spk = bob["signedPreKey"]
    spk_pub = pub_x25519(H(spk["private"]))
    opks = bob["oneTimePreKeys"]
    check(len(opks) <= 1, "bundle carries at most one one-time prekey")
    return {"ik": store.identity.pub, "spk_id": spk["id"], "spk_pub": spk_pub,
            "spk_sig": signed_prekey_signature(store.identity.seed, spk["id"], spk_pub),
            "opk_id": opks[0]["id"] if opks else None,
            "opk_pub": pub_x25519(H(opks[0]["private"])) if opks else None}


def run_x3dh(test, group_type):
    """x3dh.json (SPEC §4)."""
    binding = H(test["binding"])
    rng = ReplayRng(test["randomness"])
    if group_type == "x3dh_valid":
        alice = party_identity(test["alice"])
        store = responder_store(test["bob"])
        bundle = expected_bundle(store, test["bob"])
        check_eq(bundle["spk_pub"], H(test["signedPreKeyPublic"]), "SPK.pub")
        check_eq(bundle["spk_sig"], H(test["signedPreKeySignature"]), "SPK.sig")
        check_eq(encode_bundle(bundle), H(test["bundle"]), "bundle encoding")
        x = x3dh_initiate(alice, H(test["bundle"]), binding, rng)
        rng.finish()
        check_eq(x["ek_pub"], H(test["ephemeralPublic"]), "EK_A.pub")
        check_eq([d.hex() for d in x["dhs"]], test["dh"], "initiator DH1..DHn")
        check_eq(x["sk"], H(test["sk"]), "initiator SK")
        check_eq(x["ad"], H(test["ad"]), "AD")
        check_eq(x["h_ad"], H(test["adHash"]), "SHA256(AD)")
        pkm = {"ik_a": alice.pub, "ek_a": x["ek_pub"], "spk_id": bundle["spk_id"],
               "opk_id": bundle["opk_id"]}
        sk_b, h_ad_b, dhs_b, _ = x3dh_respond_secret(store, pkm, binding)
        check_eq([d.hex() for d in dhs_b], test["dh"], "responder DH1..DHn")
        check_eq(sk_b, H(test["sk"]), "responder SK")
        check_eq(h_ad_b, H(test["adHash"]), "responder SHA256(AD)")
    elif group_type == "x3dh_invalid_bundle":
        alice = Identity(H(test["aliceIdentitySeed"]))
        decode_bundle(H(test["bundle"]))  # README: "it decodes"
        expect_outcome(test, lambda: session_initiate(alice, H(test["bundle"]), binding, rng),
                       "initiate")
        rng.finish()
    else:
        raise Mismatch(f"unknown x3dh group type {group_type}")


def _opt_hex(b):
    return None if b is None else b.hex()


def wire_fields(kind, data):
    """Decode `data` as `kind` (§6.2-§6.6) -> (fields as in wire.json, re-encoding)."""
    if kind == "message":
        m = decode_message(data)
        return ({"ratchetKey": m["dhr"].hex(), "counter": m["n"],
                 "ciphertext": m["ciphertext"].hex()},
                encode_message(m["dhr"], m["n"], m["ciphertext"]))
    if kind == "prekey_message":
        m = decode_prekey_message(data)
        return ({"identityKey": m["ik_a"].hex(), "baseKey": m["ek_a"].hex(),
                 "signedPreKeyId": m["spk_id"], "oneTimePreKeyId": m["opk_id"],
                 "message": m["embedded"].hex()},
                encode_prekey_message(m["ik_a"], m["ek_a"], m["spk_id"], m["opk_id"],
                                      m["embedded"]))
    if kind == "prekey_bundle":
        b = decode_bundle(data)
        return ({"identityKey": b["ik"].hex(), "signedPreKeyId": b["spk_id"],
                 "signedPreKey": b["spk_pub"].hex(), "signature": b["spk_sig"].hex(),
                 "oneTimePreKeyId": b["opk_id"], "oneTimePreKey": _opt_hex(b["opk_pub"])},
                encode_bundle(b))
    if kind == "sender_key_distribution":
        d = decode_distribution(data)
        return ({"groupId": d["group_id"].hex(), "keyId": d["key_id"],
                 "iteration": d["iteration"], "chainKey": d["chain_key"].hex(),
                 "signingKey": d["signing_key"].hex()},
                encode_distribution(d["group_id"], d["key_id"], d["iteration"],
                                    d["chain_key"], d["signing_key"]))
    if kind == "group_message":
        m = decode_group_message(data)
        return ({"keyId": m["key_id"], "iteration": m["iteration"],
                 "ciphertext": m["ciphertext"].hex(), "signature": m["signature"].hex()},
                m["body"] + m["signature"])
    raise Mismatch(f"unknown wire type {kind}")


def run_wire(test, group_type):
    """wire.json (SPEC §6)."""
    data = H(test["encoded"])
    if group_type == "decode_valid":
        fields, reencoded = wire_fields(test["type"], data)
        check_eq(fields, test["fields"], "decoded fields")
        check_eq(reencoded, data, "re-encoding")
    elif group_type == "decode_invalid":
        expect_outcome(test, lambda: wire_fields(test["type"], data), "decode")
    else:
        raise Mismatch(f"unknown wire group type {group_type}")


def run_session_events(events, parties, store=None, binding=b"", bundle=None):
    """Replay session events (README 'Replaying a session transcript'). `parties` maps a
    party name to {'identity':..., 'session':...}."""
    for idx, ev in enumerate(events):
        what = f"event {idx} ({ev['event']} by {ev.get('party', 'restored state')})"
        p = parties[ev.get("party", "self")]
        kind = ev["event"]
        rng = ReplayRng(ev.get("randomness"))
        if kind == "initiate":
            p["session"] = expect_outcome(
                ev, lambda: session_initiate(p["identity"], bundle, binding, rng), what)
            rng.finish()
        elif kind == "encrypt":
            check(p["session"] is not None, f"{what}: no session")
            out = expect_outcome(ev, lambda: session_encrypt(p["session"], H(ev["plaintext"]),
                                                             rng), what)
            rng.finish()
            if out is not None:
                p["session"], message = out
                check_eq(message, H(ev["message"]), f"{what}: message")
        elif kind == "respond":
            before = (store.snapshot(), p["session"] and save_session(p["session"]))
            # README: the event's own `binding` (normally the test's).
            b = H(ev["binding"]) if "binding" in ev else binding
            out = expect_outcome(ev, lambda: session_respond(store, H(ev["message"]), b), what)
            if out is None:
                after = (store.snapshot(), p["session"] and save_session(p["session"]))
                check(before == after, f"{what}: state changed by a rejection")
            else:
                s, pt, opk_id = out
                check_eq(pt, H(ev["plaintext"]), f"{what}: plaintext")
                if opk_id is not None:
                    del store.one_time[opk_id]  # §4.4 step 6
                p["session"] = s  # replaces any earlier session
        elif kind == "decrypt":
            check(p["session"] is not None, f"{what}: no session")
            before = save_session(p["session"])
            out = expect_outcome(ev, lambda: session_decrypt(p["session"], H(ev["message"])),
                                 what)
            if out is None:
                check(save_session(p["session"]) == before,
                      f"{what}: state changed by a rejection")
            else:
                p["session"], pt = out
                check_eq(pt, H(ev["plaintext"]), f"{what}: plaintext")
        else:
            raise Mismatch(f"{what}: unknown session event")
        if ev.get("result") == "valid" and "error" in ev:
            raise Mismatch(f"{what}: valid event carries an error")


def transcript_result(test):
    """README: a test is invalid iff an event is; its error is the first invalid one's."""
    invalid = [e for e in test["events"] if e.get("result") == "invalid"]
    if invalid:
        check_eq(test["result"], "invalid", "test result vs events")
        check_eq(test.get("error"), invalid[0].get("error"), "test error vs first event")
    else:
        check_eq(test["result"], "valid", "test result vs events")


def run_session(test, group_type):
    """session.json (SPEC §4, §5)."""
    check_eq(group_type, "transcript", "group type")
    transcript_result(test)
    alice = party_identity(test["alice"])
    store = responder_store(test["bob"])
    check_eq(encode_bundle(expected_bundle(store, test["bob"])), H(test["bundle"]),
             "bundle vs Bob's keys")
    parties = {"alice": {"identity": alice, "session": None},
               "bob": {"identity": store.identity, "session": None}}
    run_session_events(test["events"], parties, store, H(test["binding"]), H(test["bundle"]))


def run_group_events(events, members, receivers, senders, group_id):
    """Replay group events (README 'Replaying a group transcript'). `receivers` maps
    (party, sender) -> GroupReceiver; `senders` maps party -> GroupSender."""
    for idx, ev in enumerate(events):
        party = ev.get("party", "self")
        what = f"event {idx} ({ev['event']} by {party})"
        kind = ev["event"]
        rng = ReplayRng(ev.get("randomness"))
        if kind == "create":
            senders[party] = GroupSender(group_id, members[party].pub, rng)
            rng.finish()
            check_eq(senders[party].distribution(), H(ev["distribution"]),
                     f"{what}: distribution")
        elif kind == "rotate":
            new = copy.copy(senders[party])
            new.draw(rng)
            rng.finish()
            senders[party] = new
            check_eq(new.distribution(), H(ev["distribution"]), f"{what}: distribution")
        elif kind == "distribution":
            check_eq(senders[party].distribution(), H(ev["distribution"]),
                     f"{what}: distribution")
        elif kind == "join":
            r = expect_outcome(ev, lambda: group_receiver_from_distribution(
                H(ev["distribution"]), members[ev["sender"]].pub), what)
            if r is not None:
                check_eq(r.group_id, group_id, f"{what}: group id of the distribution")
                receivers[(party, ev["sender"])] = r
        elif kind in ("add_distribution", "decrypt", "forget_below"):
            key = (party, ev.get("sender"))
            check(key in receivers, f"{what}: no receiver")
            before = save_group_receiver(receivers[key])
            if kind == "add_distribution":
                # README: received over the pairwise session with member `from`.
                out = expect_outcome(ev, lambda: (group_add_distribution(
                    receivers[key], H(ev["distribution"]), members[ev["from"]].pub), None),
                    what)
            elif kind == "decrypt":
                out = expect_outcome(ev, lambda: group_decrypt(receivers[key],
                                                               H(ev["message"])), what)
            else:
                out = expect_outcome(ev, lambda: (group_forget_below(
                    receivers[key], ev["iteration"]), None), what)
            if out is None:
                check(save_group_receiver(receivers[key]) == before,
                      f"{what}: state changed by a rejection")
            else:
                receivers[key], pt = out
                if kind == "decrypt":
                    check_eq(pt, H(ev["plaintext"]), f"{what}: plaintext")
        elif kind == "encrypt":
            out = expect_outcome(ev, lambda: group_encrypt(senders[party],
                                                           H(ev["plaintext"])), what)
            if out is not None:
                senders[party], message = out
                check_eq(message, H(ev["message"]), f"{what}: message")
        else:
            raise Mismatch(f"{what}: unknown group event")


def run_sender_keys(test, group_type):
    """sender_keys.json (SPEC §7)."""
    check_eq(group_type, "transcript", "group type")
    transcript_result(test)
    members = {name: party_identity(m) for name, m in test["members"].items()}
    run_group_events(test["events"], members, {}, {}, H(test["groupId"]))


def run_persistence(test, group_type):
    """persistence.json (SPEC §11)."""
    if group_type == "saved_state":
        data = H(test["state"])
        restore, save = RESTORERS[test["kind"]]
        state = expect_outcome(test, lambda: restore(data), "restore")
        if state is None:
            check(not test.get("events"), "events after a failed restore")
            return
        check_eq(save(state), data, "re-saved state")
        # README: in persistence.json `result` is the outcome of the restore; events carry
        # their own results (tc 1 and 4 are valid restores followed by a `duplicate`).
        if test["kind"] == "session":
            parties = {"self": {"identity": None, "session": state}}
            run_session_events(test["events"], parties)
        elif test["kind"] == "group_sender":
            run_group_events(test["events"], {}, {}, {"self": state}, state.group_id)
        else:
            run_group_events(test["events"], {}, {("self", None): state}, {}, state.group_id)
    elif group_type == "sealed_state":
        key, sealed = H(test["storageKey"]), H(test["sealed"])
        state = expect_outcome(test, lambda: unseal_state(key, sealed), "unseal")
        if state is None:
            return
        check_eq(state, H(test["state"]), "unsealed state")
        kind = KIND_BY_FIRST_BYTE.get(state[0])
        check(kind is not None, "sealed state of unknown kind")
        restore, save = RESTORERS[kind]
        check_eq(save(restore(state)), state, "re-saved unsealed state")
        rng = ReplayRng(test["randomness"])
        check_eq(seal_state(key, state, rng), sealed, "re-sealed state")
        rng.finish()
    else:
        raise Mismatch(f"unknown persistence group type {group_type}")


FILES = [("kdf.json", run_kdf), ("x3dh.json", run_x3dh), ("wire.json", run_wire),
         ("session.json", run_session), ("sender_keys.json", run_sender_keys),
         ("persistence.json", run_persistence)]


def validate_schema(directory, file_name, doc):
    """§14 / README: a JSON Schema (draft 2020-12) per file, if present."""
    schema_path = os.path.join(directory, "schema", file_name.replace(".json", ".schema.json"))
    if not os.path.exists(schema_path):
        return f"no schema ({os.path.relpath(schema_path, directory)} absent)"
    try:
        import jsonschema
    except ImportError:
        raise Mismatch("schema present but the 'jsonschema' package is missing: "
                       "pip install jsonschema") from None
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=str)
    if errors:
        raise Mismatch(f"schema: {errors[0].message} at {list(errors[0].absolute_path)}")
    return "schema ok"


def check_envelope(file_name, doc):
    """README 'Envelope'."""
    check_eq(doc.get("specRevision"), 1, "specRevision")
    check_eq(doc.get("suite"), SUITE.decode(), "suite")
    check_eq(doc.get("schema"), "sottovoce-" + file_name[:-5] + "-v1", "schema name")
    tests = [t for g in doc["testGroups"] for t in g["tests"]]
    check_eq(doc.get("numberOfTests"), len(tests), "numberOfTests")
    ids = [t["tcId"] for t in tests]
    check(len(ids) == len(set(ids)), "tcId not unique")
    for t in tests:
        check(t["result"] in ("valid", "invalid"), f"tc {t['tcId']}: result")
        if t["result"] == "invalid":
            check(t.get("error") in ERROR_CATEGORIES, f"tc {t['tcId']}: error category")


def main(argv):
    directory = argv[1] if len(argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    total_pass = total_fail = 0
    for file_name, runner in FILES:
        path = os.path.join(directory, file_name)
        passed = failed = 0
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            print(f"{file_name}: FAILED to load: {e}")
            total_fail += 1
            continue
        try:
            note = validate_schema(directory, file_name, doc)
            check_envelope(file_name, doc)
        except (Mismatch, KeyError, TypeError) as e:
            # Counted as one failure of the file; its tests still run.
            note = "schema/envelope FAILED"
            print(f"  {file_name}: {note}: {str(e)[:300]}")
            failed += 1
        for group in doc["testGroups"]:
            for test in group["tests"]:
                try:
                    runner(test, group["type"])
                    passed += 1
                except (Mismatch, ProtocolError, KeyError, ValueError, TypeError) as e:
                    failed += 1
                    print(f"  {file_name} tc {test.get('tcId')} ({test.get('comment')}): "
                          f"FAIL: {type(e).__name__}: {e}")
        print(f"{file_name}: {passed} passed, {failed} failed ({note})")
        total_pass += passed
        total_fail += failed
    print(f"{total_pass} passed, {total_fail} failed")
    return 0 if total_fail == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
