"""SPEC §4: X3DH (associated data, initiator, responder) and §4.5 (routing prekey messages)."""

from .errors import ProtocolError
from .limits import MAX_BINDING_LEN
from .mutation import mutated, switch
from .primitives import (KEM_PREKEY_CONTEXT, SIGNED_PREKEY_CONTEXT, X3DH_INFO, dh,
                         edwards_to_montgomery, hkdf, pub, sha256, u32, verify)
from .ratchet import decrypt, decrypt_session_message, init_initiator, init_responder
from .wire import VERSION_PQ, decode_bundle, decode_prekey_message

BINDING_UNBOUNDED = switch(
    "binding-unbounded", "§4.1, §9",
    "a binding longer than MAX_BINDING_LEN (1024) is decode (mutated: any length accepted)")
BINDING_AT_BOUND = switch(
    "binding-at-bound-rejected", "§9",
    "'At' the bound succeeds: a 1024-byte binding is valid (mutated: refused)")
BINDING_LATE_INITIATOR = switch(
    "binding-checked-late-initiator", "§4.1, §4.2",
    "the binding length is checked before anything else in §4.2 (mutated: after decoding the "
    "bundle and verifying its signature)")
BINDING_LATE_RESPONDER = switch(
    "binding-checked-late-responder", "§4.1, §4.4",
    "the binding length is checked before anything else in §4.4 (mutated: after decoding the "
    "prekey message and the prekey lookup of step 1)")
BINDING_NOT_IN_AD = switch(
    "binding-not-in-ad", "§4.1",
    "AD = IK_A.pub || IK_B.pub || binding (mutated: the binding is left out)")
SPK_SIG_UNCHECKED = switch(
    "spk-signature-unchecked", "§4.2 step 1",
    "the initiator verifies SPK_B.sig, else bad-signature (mutated: not verified)")
SPK_SIG_UNDER_KEM_CONTEXT = switch(
    "spk-signature-under-kem-context", "§4.8 initiator step 1, §2.3",
    "in a version-2 bundle SPK_B.sig is still verified under SIGNED_PREKEY_CONTEXT "
    "(mutated: under KEM_PREKEY_CONTEXT, the other kind's)")
SPK_SIG_AFTER_DH = switch(
    "spk-signature-after-dh", "§4.2 step 1",
    "the signature is verified before any DH (mutated: after the DHs of step 3)")
INIT_NO_ZERO = switch(
    "x3dh-initiator-no-zero-check", "§2.2, §4.2 step 3",
    "every DH of the initiator's X3DH is checked per §2.2 (mutated: none is)")
INIT_DH4_NO_ZERO = switch(
    "x3dh-initiator-dh4-no-zero-check", "§2.2, §4.2 step 3",
    "DH4 = DH(EK_A.priv, OPK_B.pub) is checked per §2.2 (mutated: DH4 is not)")
RESP_NO_ZERO = switch(
    "x3dh-responder-no-zero-check", "§2.2, §4.4 step 3",
    "every DH of the responder's X3DH is checked per §2.2 (mutated: none is)")
EK_AFTER_DH1 = switch(
    "x3dh-dh1-before-ek-draw", "§4.2 steps 2-3, §8",
    "EK_A.priv is drawn (step 2) before DH1 is computed and checked (step 3), so a low-order "
    "SPK_B fails having drawn EK_A (mutated: DH1 first, so it fails having drawn nothing)")
INITIATE_DRAW_ORDER = switch(
    "initiate-draw-order", "§8",
    "initiate draws EK_A.priv, then DHs.priv (mutated: the other way round)")
SPK_UNKNOWN_FALLBACK = switch(
    "spk-unknown-fallback", "§4.4 step 1",
    "an unknown SPK id is unknown-prekey (mutated: the responder's newest signed prekey is used)")
OPK_UNKNOWN_IGNORED = switch(
    "opk-unknown-ignored", "§4.4 step 1",
    "an unknown OPK id is unknown-prekey (mutated: X3DH runs without DH4)")
OPK_DELETED_EARLY = switch(
    "opk-deleted-before-auth", "§3.3, §4.4 step 6, §10",
    "the one-time prekey is deleted only after the first message authenticates; on any "
    "error the store is unchanged (mutated: deleted before decrypting)")
OPK_NOT_DELETED = switch(
    "opk-not-deleted", "§3.3, §4.4 step 6",
    "a one-time prekey is used for at most one session: deleted on success (mutated: kept)")
DOWNGRADE_BEFORE_BINDING = switch(
    "downgrade-before-binding-check", "§4.8 Requiring PQXDH, §4.1",
    "a requiring responder refuses a version-1 prekey message with downgrade after the "
    "binding check, so an over-long binding is decode (mutated: downgrade first)")
NO_ROUTING = switch(
    "no-routing", "§4.5 rule 1",
    "a prekey message whose EK_A is a held session id goes to that session and §4.4 MUST NOT "
    "run for it (mutated: §4.4 runs and replaces the session)")


def check_binding(binding):
    """§4.1: at most MAX_BINDING_LEN bytes, else decode."""
    if len(binding) > MAX_BINDING_LEN and not mutated(BINDING_UNBOUNDED):
        raise ProtocolError("decode", f"binding of {len(binding)} bytes")
    if len(binding) == MAX_BINDING_LEN and mutated(BINDING_AT_BOUND):
        raise ProtocolError("decode", "binding at the bound (mutation)")


def associated_data(ik_a_pub, ik_b_pub, binding):
    """§4.1: AD = IK_A.pub || IK_B.pub || binding, H_AD = SHA256(AD)."""
    ad = ik_a_pub + ik_b_pub + (b"" if mutated(BINDING_NOT_IN_AD) else binding)
    return ad, sha256(ad)


def shared_secret(dh_outputs):
    """§4.2 step 4: SK = HKDF(0x00^32, 0xFF^32 || DH1 || DH2 || DH3 [|| DH4], X3DH_INFO, 32)."""
    return hkdf(bytes(32), b"\xff" * 32 + b"".join(dh_outputs), X3DH_INFO, 32)


class X3DHResult:
    __slots__ = ("bundle", "ek_priv", "ek_pub", "dh", "sk", "ad", "h_ad")


def x3dh_initiate(alice, bundle_bytes, binding, rng, draw_dhs_first=None, after_verify=None):
    """§4.2 steps 1-4 (the `x3dh` vectors stop here, before §5.1). `after_verify(bundle)`,
    if given, runs after step 1 and before anything is drawn (§4.8 step 1 verifies the KEM
    prekey's signature there)."""
    if not mutated(BINDING_LATE_INITIATOR):
        check_binding(binding)
    bundle = decode_bundle(bundle_bytes)
    context = SIGNED_PREKEY_CONTEXT
    if bundle.version == VERSION_PQ and mutated(SPK_SIG_UNDER_KEM_CONTEXT):
        context = KEM_PREKEY_CONTEXT
    signed = context + u32(bundle.spk_id) + bundle.spk_pub

    def verify_spk():
        if not verify(bundle.ik, signed, bundle.spk_sig) and not mutated(SPK_SIG_UNCHECKED):
            raise ProtocolError("bad-signature", "signed prekey signature")

    # Step 1, before any DH.
    if not mutated(SPK_SIG_AFTER_DH):
        verify_spk()
    if after_verify is not None:
        after_verify(bundle)
    if mutated(BINDING_LATE_INITIATOR):
        check_binding(binding)
    dh1 = dh(alice.priv_x, bundle.spk_pub, INIT_NO_ZERO) if mutated(EK_AFTER_DH1) else None
    # Step 2.
    if draw_dhs_first is not None:
        draw_dhs_first()
    ek_priv = rng.draw(32)
    ek_pub = pub(ek_priv)
    # Step 3, each checked per §2.2, in this order.
    ik_b_pub_x = edwards_to_montgomery(bundle.ik)
    if dh1 is None:
        dh1 = dh(alice.priv_x, bundle.spk_pub, INIT_NO_ZERO)
    outs = [dh1,
            dh(ek_priv, ik_b_pub_x, INIT_NO_ZERO),
            dh(ek_priv, bundle.spk_pub, INIT_NO_ZERO)]
    if bundle.opk_id is not None:
        outs.append(dh(ek_priv, bundle.opk_pub, (INIT_NO_ZERO, INIT_DH4_NO_ZERO)))
    if mutated(SPK_SIG_AFTER_DH):
        verify_spk()
    # Step 4.
    x = X3DHResult()
    x.bundle, x.ek_priv, x.ek_pub, x.dh = bundle, ek_priv, ek_pub, outs
    x.sk = shared_secret(outs)
    x.ad, x.h_ad = associated_data(alice.pub, bundle.ik, binding)
    return x


def initiate(alice, bundle_bytes, binding, rng):
    """§4.2 then §4.2 step 5: initialise the ratchet as initiator (§5.1)."""
    return initiate_with_x3dh(alice, bundle_bytes, binding, rng)[0]


def initiate_with_x3dh(alice, bundle_bytes, binding, rng):
    """As `initiate`, also returning the X3DH result (SK, AD, H_AD) for the vectors."""
    early = {}
    if mutated(INITIATE_DRAW_ORDER):
        x = x3dh_initiate(alice, bundle_bytes, binding, rng,
                          draw_dhs_first=lambda: early.setdefault("dhs", rng.draw(32)))

        class _Replay:
            def draw(self, n):
                return early["dhs"]
        s = init_initiator(x.sk, x.bundle.spk_pub, _Replay())
    else:
        x = x3dh_initiate(alice, bundle_bytes, binding, rng)
        s = init_initiator(x.sk, x.bundle.spk_pub, rng)
    s.session_id = x.ek_pub
    s.local_ik = alice.pub
    s.remote_ik = x.bundle.ik
    s.h_ad = x.h_ad
    s.pending_prekey = True
    s.spk_id = x.bundle.spk_id
    s.opk_id = x.bundle.opk_id
    return s, x


def x3dh_respond(store, pkm, binding, after_lookup=None):
    """§4.4 steps 1-4 on a decoded prekey message: (SK, H_AD, [DH1..], SPK.priv, whether
    a one-time prekey was used). `after_lookup()`, if given, runs after the prekey lookups
    and before the DHs (§4.8 steps 2-3 look up the KEM prekey and check its base keys
    there)."""
    # Step 1.
    if pkm.spk_id in store.signed:
        spk_priv = store.signed[pkm.spk_id]
    elif mutated(SPK_UNKNOWN_FALLBACK) and store.signed:
        spk_priv = store.signed[max(store.signed)]
    else:
        raise ProtocolError("unknown-prekey", "signed prekey")
    opk_priv = None
    if pkm.opk_id is not None:
        if pkm.opk_id in store.one_time:
            opk_priv = store.one_time[pkm.opk_id]
        elif not mutated(OPK_UNKNOWN_IGNORED):
            raise ProtocolError("unknown-prekey", "one-time prekey")
    if after_lookup is not None:
        after_lookup()
    if mutated(BINDING_LATE_RESPONDER):
        check_binding(binding)
    # Step 2: IK_A was accepted by decoding (§3.1, §6.3).
    ik_a_pub_x = edwards_to_montgomery(pkm.ik_a)
    # Step 3, each checked per §2.2, in this order.
    outs = [dh(spk_priv, ik_a_pub_x, RESP_NO_ZERO),
            dh(store.identity.priv_x, pkm.ek_a, RESP_NO_ZERO),
            dh(spk_priv, pkm.ek_a, RESP_NO_ZERO)]
    if opk_priv is not None:
        outs.append(dh(opk_priv, pkm.ek_a, RESP_NO_ZERO))
    # Step 4.
    sk = shared_secret(outs)
    _, h_ad = associated_data(pkm.ik_a, store.identity.pub, binding)
    return sk, h_ad, outs, spk_priv, opk_priv is not None


def respond(store, data, binding):
    """§4.4 on the bytes of a prekey message. On success deletes the one-time prekey from
    `store` (step 6) and returns (session, plaintext); on error `store` is unchanged. A
    version-2 prekey message (0x22) goes to §4.8's responder; a version-1 one to a store
    that requires PQXDH is refused (§4.8, downgrade)."""
    early_downgrade = mutated(DOWNGRADE_BEFORE_BINDING)
    if not mutated(BINDING_LATE_RESPONDER) and not early_downgrade:
        check_binding(binding)
    pkm = decode_prekey_message(data)
    from .pqxdh import check_downgrade, respond_pq   # §4.8 builds on this module
    if early_downgrade:
        if pkm.version != VERSION_PQ:
            check_downgrade(store, pkm)
        if not mutated(BINDING_LATE_RESPONDER):
            check_binding(binding)
    if pkm.version == VERSION_PQ:
        return respond_pq(store, pkm, binding)
    # §4.8 Requiring PQXDH: after routing (the caller's, §4.5) and the binding check,
    # before any prekey lookup.
    check_downgrade(store, pkm)
    sk, h_ad, _, spk_priv, used_opk = x3dh_respond(store, pkm, binding)
    if used_opk and mutated(OPK_DELETED_EARLY):
        del store.one_time[pkm.opk_id]
    # Step 5: initialise as responder (§5.1) and decrypt the embedded message (§5.6).
    s = init_responder(sk, spk_priv)
    s.session_id = pkm.ek_a
    s.local_ik = store.identity.pub
    s.remote_ik = pkm.ik_a
    s.h_ad = h_ad
    s.spk_id = pkm.spk_id
    s.opk_id = pkm.opk_id
    s, plaintext = decrypt(s, pkm.inner)
    # Step 6: only now delete the one-time prekey.
    if used_opk and not mutated(OPK_DELETED_EARLY) and not mutated(OPK_NOT_DELETED):
        del store.one_time[pkm.opk_id]
    return s, plaintext


class Responder:
    """A responder device: its prekey store and its sessions by session id (§4.5)."""

    def __init__(self, store):
        self.store = store
        self.sessions = {}   # EK_A.pub -> Session

    def receive_prekey_message(self, data, binding):
        """§4.5: deliver to the session whose id is the message's EK_A if held (§5.7),
        else run §4.4. Returns (session, plaintext); the caller commits the session.

        §4.1: "routing, §4.5, only reads the message's EK_A beforehand", so routing reads
        the EK_A field (bytes 33..65 of a 0x12 encoding) before the binding check, and the
        binding is then checked before anything else of §4.4. (The README gives `respond`
        events only for session ids Bob does not hold, so the vectors only see §4.4.)"""
        ek_a = data[33:65] if len(data) >= 65 and data[0] in (0x12, 0x22) else None
        held = self.sessions.get(ek_a) if ek_a is not None else None
        if held is not None and not mutated(NO_ROUTING):
            return decrypt_session_message(held, decode_prekey_message(data))
        return respond(self.store, data, binding)
