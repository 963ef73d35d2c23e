"""SPEC §4.8: PQXDH (version 2): X3DH with one more shared secret, from ML-KEM-1024.

The initiator (steps 1-5), the responder (steps 1-6, in their order, all-or-nothing: the
store changes only in step 6), the used base keys of last-resort KEM prekeys, and the
refusal of version-1 prekey messages by a responder that requires PQXDH (downgrade). The
ML-KEM functions are primitives.kem_*; the KEM prekeys' keys and signatures keys.kem_*;
the encodings wire.py (§6.8); the ratchet after it is ratchet.py's, unchanged (§4.8)."""

from .errors import ProtocolError
from .mutation import mutated, switch
from .limits import MAX_LAST_RESORT_USES
from .primitives import (PQXDH_INFO, X3DH_INFO, hkdf, kem_decaps, kem_encaps, kem_keygen,
                         sha256, u32, verify)
from .keys import kem_prekey_context
from .ratchet import decrypt, init_initiator, init_responder
from .wire import VERSION_PQ, decode_bundle
from .x3dh import (OPK_DELETED_EARLY, OPK_NOT_DELETED, check_binding, initiate_with_x3dh,
                   x3dh_initiate, x3dh_respond)

KEM_SIG_UNCHECKED = switch(
    "kem-prekey-signature-unchecked", "§4.8 initiator step 1",
    "the initiator verifies KEM_B.sig, else bad-signature (mutated: not verified)")
KEM_SIG_AFTER_DRAW = switch(
    "kem-prekey-signature-after-draw", "§4.8 initiator step 1, §8",
    "both signatures are verified before anything is drawn (mutated: the KEM prekey's after "
    "EK_A is drawn and the DHs computed)")
KEM_SIG_BEFORE_SPK = switch(
    "kem-prekey-signature-before-spk", "§4.8 initiator step 1",
    "SPK_B.sig is verified first, then KEM_B.sig (mutated: the other way round)",
    unpinnable=("SPEC §14: '§4.8 step 1, the order of the two signature checks (the signed "
                "X25519 prekey's, then the KEM prekey's): both failures are bad-signature and "
                "nothing is drawn before either, so the order is not observable'"))
M_BEFORE_EK = switch(
    "pqxdh-m-drawn-before-ek", "§4.8 steps 2-3, §8",
    "PQXDH initiate draws EK_A, then m, then DHs (mutated: m before EK_A)")
M_AFTER_DHS = switch(
    "pqxdh-m-drawn-after-dhs", "§4.8 steps 3 and 5, §8",
    "m is drawn before the ratchet's DHs (mutated: after it)")
M_BEFORE_DH = switch(
    "pqxdh-m-drawn-before-dh-checks", "§4.8 steps 2-3, §8",
    "m is drawn after DH1..DH4 are computed and checked, so a low-order prekey fails having "
    "drawn EK_A only (mutated: m is drawn right after EK_A)")
SS_FIRST = switch(
    "pqxdh-ss-before-dhs", "§4.8 step 4",
    "ikm = 0xFF^32 || DH1 || DH2 || DH3 [|| DH4] || SS (mutated: SS before the DHs)")
X3DH_LABEL = switch(
    "pqxdh-info-is-x3dh-info", "§4.8 step 4, §2.3",
    "a version-2 SK has info PQXDH_INFO (mutated: X3DH_INFO)")
NO_SS = switch(
    "pqxdh-without-ss", "§4.8 step 4",
    "SS enters the version-2 SK (mutated: SK is X3DH's)")
KEM_UNKNOWN_FALLBACK = switch(
    "kem-prekey-unknown-fallback", "§4.8 responder step 2",
    "an unknown KEM id is unknown-prekey (mutated: the current last-resort KEM prekey is used)")
KEM_LOOKUP_LATE = switch(
    "kem-prekey-lookup-after-dh", "§4.8 responder steps 2-4",
    "the KEM prekey is looked up with the X25519 prekeys, before any DH (mutated: after the "
    "DHs, so a low-order EK_A with an unknown KEM id is non-contributory)")
BASE_KEY_UNCHECKED = switch(
    "used-base-keys-not-checked", "§4.8 responder step 3",
    "a last-resort KEM prekey whose used base keys hold EK_A.pub refuses it with duplicate "
    "(mutated: not checked)")
BASE_KEY_NOT_RECORDED = switch(
    "used-base-keys-not-recorded", "§4.8 responder step 6",
    "on success EK_A.pub is appended to the last-resort KEM prekey's used base keys "
    "(mutated: not recorded)")
BASE_KEY_RECORDED_ON_FAILURE = switch(
    "used-base-keys-recorded-on-failure", "§4.8 responder step 6, §10",
    "on any error no base key is recorded (mutated: recorded before the embedded message is "
    "decrypted)")
USED_UP_UNCHECKED = switch(
    "last-resort-used-up-unchecked", "§4.8 responder step 3, §9",
    "a last-resort KEM prekey with MAX_LAST_RESORT_USES (1000) used base keys refuses new "
    "sessions with unknown-prekey (mutated: no bound)")
USED_UP_AT_BOUND = switch(
    "last-resort-used-up-off-by-one", "§4.8 responder step 3, §9",
    "'At' the bound: 999 used base keys still accept one more session (mutated: refused "
    "at 999)")
USED_UP_BEFORE_DUPLICATE = switch(
    "last-resort-used-up-before-duplicate", "§4.8 responder step 3",
    "the repeated-base-key check (duplicate) precedes the used-up check (unknown-prekey) "
    "(mutated: the other way round)")
PQ_OPK_NOT_DELETED = switch(
    "pqxdh-one-time-prekey-not-deleted", "§4.8 responder step 6",
    "on success the one-time X25519 prekey named by a 0x22 prekey message is deleted too "
    "(mutated: kept)")
KEM_OT_NOT_DELETED = switch(
    "one-time-kem-prekey-not-deleted", "§4.8 responder step 6",
    "a one-time KEM prekey is deleted when its first message authenticates (mutated: kept)")
KEM_OT_DELETED_EARLY = switch(
    "one-time-kem-prekey-deleted-on-failure", "§4.8 responder step 6, §10",
    "on any error no prekey of either kind is deleted (mutated: the one-time KEM prekey is "
    "deleted before the embedded message is decrypted)")
LAST_RESORT_DELETED = switch(
    "last-resort-kem-prekey-deleted", "§4.8 responder step 6",
    "a last-resort KEM prekey is kept (its base key recorded), not deleted like a one-time "
    "one (mutated: deleted)")
KEYGEN_FROM_ONE_TIME_ONLY = switch(
    "kem-prekey-last-resort-not-looked-up", "§4.8 responder step 2",
    "the KEM id is looked up among the last-resort and the one-time KEM prekeys (mutated: "
    "among the one-time ones only)")
DOWNGRADE_NOT_REFUSED = switch(
    "downgrade-not-refused", "§4.8 Requiring PQXDH, §10",
    "a responder that requires PQXDH refuses a version-1 prekey message that would create "
    "a session with downgrade (mutated: X3DH runs)")
REQUIRES_PQ_IGNORED = switch(
    "requires-pq-flag-ignored", "§4.8 Requiring PQXDH, §11.5",
    "only a responder whose requires-PQ flag is set refuses version-1 prekey messages "
    "(mutated: every responder with KEM prekeys does)")
DOWNGRADE_AFTER_LOOKUP = switch(
    "downgrade-after-prekey-lookup", "§4.8 Requiring PQXDH",
    "downgrade is refused before any prekey lookup (mutated: after the lookups of §4.4 "
    "step 1)")

# =========================================================================================
# The shared secret
# =========================================================================================

def shared_secret_pq(dh_outputs, ss):
    """§4.8 step 4: SK = HKDF(0x00^32, 0xFF^32 || DH1 || DH2 || DH3 [|| DH4] || SS,
    PQXDH_INFO, 32)."""
    dhs = b"".join(dh_outputs)
    if mutated(NO_SS):
        ss = b""
    ikm = b"\xff" * 32 + (ss + dhs if mutated(SS_FIRST) else dhs + ss)
    return hkdf(bytes(32), ikm, X3DH_INFO if mutated(X3DH_LABEL) else PQXDH_INFO, 32)


# =========================================================================================
# Initiator (Alice), given a version-2 bundle
# =========================================================================================

def _verify_kem(bundle):
    """Step 1, second half: VERIFY(IK_B.pub, KEM_PREKEY_CONTEXT || u32(KEM_B.id) || ek_B,
    KEM_B.sig), else bad-signature."""
    signed = kem_prekey_context() + u32(bundle.kem_id) + bundle.kem_pub
    if not verify(bundle.ik, signed, bundle.kem_sig) and not mutated(KEM_SIG_UNCHECKED):
        raise ProtocolError("bad-signature", "KEM prekey signature")


class PQXDHResult:
    __slots__ = ("bundle", "ek_priv", "ek_pub", "dh", "ss", "ct", "sk", "ad", "h_ad")


def pqxdh_initiate(alice, bundle_bytes, binding, rng, draw_dhs=None):
    """§4.8 initiator steps 1-4 (the `pqxdh_valid` vectors stop here, before §5.1): binding,
    both signatures before anything is drawn, EK_A and DH1..DH4 (x3dh.py), then m and
    ENCAPS, then SK. `draw_dhs` (only under M_AFTER_DHS) draws DHs before m."""
    early = {}

    def after_verify(bundle):
        if bundle.version != VERSION_PQ:
            raise ProtocolError("decode", "PQXDH needs a version-2 bundle")
        if not mutated(KEM_SIG_AFTER_DRAW):
            _verify_kem(bundle)
        if mutated(M_BEFORE_EK):
            early["m"] = rng.draw(32)

    class _EarlyM:
        """Only under M_BEFORE_DH: m drawn right after EK_A, before the DHs."""
        def draw(self, n):
            out = rng.draw(n)
            if "ek" not in early:
                early["ek"] = out
                early["m"] = rng.draw(32)
            return out

    if mutated(KEM_SIG_BEFORE_SPK):
        bundle = decode_bundle(bundle_bytes) if bundle_bytes else None
        if bundle is not None and bundle.version == VERSION_PQ:
            check_binding(binding)
            _verify_kem(bundle)
    x = x3dh_initiate(alice, bundle_bytes, binding,
                      _EarlyM() if mutated(M_BEFORE_DH) else rng, after_verify=after_verify)
    b = x.bundle
    if mutated(KEM_SIG_AFTER_DRAW):
        _verify_kem(b)
    if draw_dhs is not None:
        draw_dhs()
    # Step 3.
    m = early["m"] if "m" in early else rng.draw(32)
    ss, ct = kem_encaps(b.kem_pub, m)
    # Step 4.
    r = PQXDHResult()
    r.bundle, r.ek_priv, r.ek_pub, r.dh, r.ss, r.ct = b, x.ek_priv, x.ek_pub, x.dh, ss, ct
    r.sk = shared_secret_pq(x.dh, ss)
    r.ad, r.h_ad = x.ad, x.h_ad
    return r


def initiate_with_pqxdh(alice, bundle_bytes, binding, rng):
    """§4.8 steps 1-5: PQXDH, then the ratchet as initiator (§5.1, drawing DHs.priv). The
    session's prekey messages carry KEM_B.id and ct (§6.8)."""
    early = {}
    if mutated(M_AFTER_DHS):
        x = pqxdh_initiate(alice, bundle_bytes, binding, rng,
                           draw_dhs=lambda: early.setdefault("dhs", rng.draw(32)))

        class _Replay:
            def draw(self, n):
                return early["dhs"]
        s = init_initiator(x.sk, x.bundle.spk_pub, _Replay())
    else:
        x = pqxdh_initiate(alice, bundle_bytes, binding, rng)
        s = init_initiator(x.sk, x.bundle.spk_pub, rng)
    s.version = VERSION_PQ
    s.session_id = x.ek_pub
    s.local_ik = alice.pub
    s.remote_ik = x.bundle.ik
    s.h_ad = x.h_ad
    s.pending_prekey = True
    s.spk_id, s.opk_id = x.bundle.spk_id, x.bundle.opk_id
    s.kem_id, s.kem_ct = x.bundle.kem_id, x.ct
    return s, x


def initiate_any(alice, bundle_bytes, binding, rng):
    """§4.8 "a version-2 bundle always gives a version-2 session": PQXDH for 0x23, X3DH for
    0x13 (§6.1: a bundle decoder accepts both). Returns (session, X3DH or PQXDH result)."""
    if bundle_bytes and bundle_bytes[0] >> 4 == VERSION_PQ:
        return initiate_with_pqxdh(alice, bundle_bytes, binding, rng)
    return initiate_with_x3dh(alice, bundle_bytes, binding, rng)


# =========================================================================================
# Responder (Bob), given a version-2 prekey message
# =========================================================================================

class _KemLookup:
    """§4.8 responder steps 2-3 for the KEM prekey: found by its id among the last-resort
    and one-time KEM prekeys (else unknown-prekey); a last-resort one refuses a base key it
    accepted before (duplicate) and, used up, new sessions (unknown-prekey)."""

    def __init__(self, store, pkm):
        self.store, self.pkm = store, pkm
        self.seed = self.last_resort = None
        self.kem_id = pkm.kem_id

    def __call__(self):
        store, kem_id, ek_a = self.store, self.pkm.kem_id, self.pkm.ek_a
        if kem_id in store.last_resort and not mutated(KEYGEN_FROM_ONE_TIME_ONLY):
            self.seed, used = store.last_resort[kem_id]
            self.last_resort = True
        elif kem_id in store.kem_one_time:
            self.seed, used = store.kem_one_time[kem_id], None
            self.last_resort = False
        elif mutated(KEM_UNKNOWN_FALLBACK) and store.last_resort:
            self.kem_id = list(store.last_resort)[-1]
            self.seed, used = store.last_resort[self.kem_id]
            self.last_resort = True
        else:
            raise ProtocolError("unknown-prekey", "KEM prekey")
        if not self.last_resort:
            return
        limit = MAX_LAST_RESORT_USES - (1 if mutated(USED_UP_AT_BOUND) else 0)
        used_up = len(used) >= limit and not mutated(USED_UP_UNCHECKED)
        if used_up and mutated(USED_UP_BEFORE_DUPLICATE):
            raise ProtocolError("unknown-prekey", "a used-up last-resort KEM prekey")
        if ek_a in used and not mutated(BASE_KEY_UNCHECKED):
            raise ProtocolError("duplicate", "a base key this last-resort KEM prekey accepted")
        if used_up:
            raise ProtocolError("unknown-prekey", "a used-up last-resort KEM prekey")


def pqxdh_respond(store, pkm, binding, lookup=None):
    """§4.8 responder steps 2-4 on a decoded 0x22 prekey message (binding checked by the
    caller, step 1): (SK, H_AD, [DH1..], SS, SPK.priv, whether a one-time prekey was used,
    the KEM lookup)."""
    lookup = lookup or _KemLookup(store, pkm)
    late = mutated(KEM_LOOKUP_LATE)
    _, h_ad, outs, spk_priv, used_opk = x3dh_respond(
        store, pkm, binding, after_lookup=None if late else lookup)
    if late:
        lookup()
    # Step 4: (dk, ek) = KEYGEN(d, z) from the KEM prekey's seed; SS = DECAPS(dk, ct).
    _, dk = kem_keygen(lookup.seed)
    ss = kem_decaps(dk, pkm.ct)
    return shared_secret_pq(outs, ss), h_ad, outs, ss, spk_priv, used_opk, lookup


def respond_pq(store, pkm, binding):
    """§4.8 responder steps 2-6 (step 1, the binding, was checked by x3dh.respond, which
    routes 0x22 here). On success changes `store` by step 6 and returns (session,
    plaintext); on error `store` is unchanged."""
    sk, h_ad, _, _, spk_priv, used_opk, lookup = pqxdh_respond(store, pkm, binding)
    kem_id = lookup.kem_id
    if not lookup.last_resort and mutated(KEM_OT_DELETED_EARLY):
        del store.kem_one_time[kem_id]
    if lookup.last_resort and mutated(BASE_KEY_RECORDED_ON_FAILURE):
        _record_base_key(store, kem_id, pkm.ek_a)
    if used_opk and mutated(OPK_DELETED_EARLY):
        del store.one_time[pkm.opk_id]
    # Step 5: initialise as responder (§5.1) and decrypt the embedded message (§5.6).
    s = init_responder(sk, spk_priv)
    s.version = VERSION_PQ
    s.session_id = pkm.ek_a
    s.local_ik = store.identity.pub
    s.remote_ik = pkm.ik_a
    s.h_ad = h_ad
    s.spk_id, s.opk_id = pkm.spk_id, pkm.opk_id
    s.kem_id, s.kem_ct_hash = pkm.kem_id, sha256(pkm.ct)
    s, plaintext = decrypt(s, pkm.inner)
    # Step 6: only now delete the one-time prekeys, or record the base key.
    if used_opk and not mutated(OPK_DELETED_EARLY) and not mutated(OPK_NOT_DELETED) \
            and not mutated(PQ_OPK_NOT_DELETED):
        del store.one_time[pkm.opk_id]
    if lookup.last_resort:
        if mutated(LAST_RESORT_DELETED):
            del store.last_resort[kem_id]
        elif not mutated(BASE_KEY_NOT_RECORDED) and not mutated(BASE_KEY_RECORDED_ON_FAILURE):
            _record_base_key(store, kem_id, pkm.ek_a)
    elif not mutated(KEM_OT_NOT_DELETED) and not mutated(KEM_OT_DELETED_EARLY):
        del store.kem_one_time[kem_id]
    return s, plaintext


def _record_base_key(store, kem_id, ek_a):
    seed, used = store.last_resort[kem_id]
    store.last_resort[kem_id] = (seed, used + [ek_a])


def check_downgrade(store, pkm):
    """§4.8 "Requiring PQXDH": a responder that requires PQXDH refuses every version-1
    prekey message that would create a session (after routing and the binding check,
    before any prekey lookup) with downgrade."""
    requires = store.requires_pq or (mutated(REQUIRES_PQ_IGNORED) and bool(store.last_resort))
    if not requires or mutated(DOWNGRADE_NOT_REFUSED):
        return
    if mutated(DOWNGRADE_AFTER_LOOKUP):
        if pkm.spk_id not in store.signed or \
                (pkm.opk_id is not None and pkm.opk_id not in store.one_time):
            raise ProtocolError("unknown-prekey", "prekey (mutation: before the downgrade)")
    raise ProtocolError("downgrade", "a version-1 prekey message to a responder that "
                                     "requires PQXDH")
