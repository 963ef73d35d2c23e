"""SPEC §5: the Double Ratchet (state, KDF_RK, KDF_CK, message keys, encrypt, decrypt) and
§5.7 (prekey messages delivered to an existing session)."""

from collections import OrderedDict

from .errors import ProtocolError
from .limits import COUNTER_MAX, MAX_CLOSED_CHAINS, MAX_SKIP, MAX_SKIPPED_KEYS
from .mutation import mutated, switch
from .primitives import (MESSAGE_KEY_INFO, ROOT_INFO, dh, hkdf, hmac_sha256, open_, pub,
                         seal, sha256, u32)
from .wire import (T_MESSAGE, VERSION, VERSION_PQ, Message, PrekeyMessage,
                   encode_prekey_message, first_byte)

# =========================================================================================
# §5.2 - §5.4 KDFs
# =========================================================================================


def kdf_rk(rk, dh_output):
    """§5.2: okm = HKDF(salt = RK, ikm = dh_output, info = ROOT_INFO, L = 64)."""
    okm = hkdf(rk, dh_output, ROOT_INFO, 64)
    return okm[:32], okm[32:]


def kdf_ck(ck):
    """§5.3: MK = HMAC(CK, 0x01), CK' = HMAC(CK, 0x02)."""
    return hmac_sha256(ck, b"\x01"), hmac_sha256(ck, b"\x02")


def next_chain_key(ck):
    return hmac_sha256(ck, b"\x02")


def message_key_expansion(mk, info=MESSAGE_KEY_INFO):
    """§5.4 (and §7.3 step 2 with GROUP_MESSAGE_KEY_INFO): key = okm[0..32],
    nonce = okm[32..44] of HKDF(0x00^32, MK, info, 44). Never a random nonce."""
    okm = hkdf(bytes(32), mk, info, 44)
    return okm[:32], okm[32:]


def step_chain(ck, start, stop):
    """§5.3 "stepping a chain from a to b": the message keys for start .. stop-1 and the
    chain key at stop."""
    keys = []
    for i in range(start, stop):
        mk, ck = kdf_ck(ck)
        keys.append((i, mk))
    return keys, ck


# =========================================================================================
# §5.1 State and initialisation
# =========================================================================================

INIT_NO_ZERO = switch(
    "ratchet-init-no-zero-check", "§2.2, §5.1",
    "the initiator's first ratchet DH, DH(DHs.priv, SPK_B.pub), is checked per §2.2 "
    "(mutated: not checked)",
    unpinnable=("SPEC §14: '§2.2 for the initiator's first ratchet step (§5.1): "
                "DH(DHs.priv, SPK_B.pub) is all zero exactly when DH1 = DH(IK_A.priv_x, "
                "SPK_B.pub) is ... and DH1 is checked first'"))
RESPONDER_KEEPS_SPK = switch(
    "responder-keeps-spk", "§5.1",
    "committing the responder's first message deletes its copy DHs = SPK_B (mutated: the "
    "copy is kept while sending is pending and used for the next new ratchet key)")


class Session:
    """§5.1 state plus what §5.7 and §11.2 need.

    `sending` is None (pending) or (DHs.priv, DHs.pub, CKs, Ns); `first_dhs` is the
    responder's transient (SPK.priv, SPK.pub) for its first message only; `open` is None or
    (DHr, CKr, Nr); `closed` is [(DHr, PN)], oldest first; `skipped` maps (DHr, N) -> MK,
    oldest first. `ghost` only exists under mutations that keep deleted keys."""

    __slots__ = ("session_id", "local_ik", "remote_ik", "h_ad", "initiator",
                 "pending_prekey", "spk_id", "opk_id", "rk", "pn", "sending", "first_dhs",
                 "open", "closed", "skipped", "ghost", "version", "kem_id", "kem_ct",
                 "kem_ct_hash")

    def __init__(self):
        self.session_id = None   # EK_A.pub (§4.3)
        self.local_ik = None
        self.remote_ik = None
        self.h_ad = None
        self.initiator = False   # the role (§5.1, §11.2)
        self.pending_prekey = False
        self.spk_id = 0
        self.opk_id = None
        self.rk = None
        self.pn = 0
        self.sending = None
        self.first_dhs = None
        self.open = None
        self.closed = []
        self.skipped = OrderedDict()
        self.ghost = {}
        # §4.8 / §11.2: a version-2 session also has its PQXDH's KEM id, and ct (a pending
        # initiator repeats it) or SHA256(ct) (a responder, for §5.7).
        self.version = VERSION
        self.kem_id = None
        self.kem_ct = None
        self.kem_ct_hash = None

    def clone(self):
        c = Session.__new__(Session)
        for name in Session.__slots__:
            setattr(c, name, getattr(self, name))
        c.closed = list(self.closed)
        c.skipped = OrderedDict(self.skipped)
        c.ghost = dict(self.ghost)
        return c


def init_initiator(sk, spk_b_pub, rng):
    """§5.1 Initiator, after §4.2: draw DHs.priv, (RK, CKs) = KDF_RK(SK, DH(DHs.priv,
    SPK_B.pub)) checked per §2.2, Ns = 0, PN = 0, no chains, no skipped keys."""
    s = Session()
    s.initiator = True
    dhs_priv = rng.draw(32)
    s.rk, cks = kdf_rk(sk, dh(dhs_priv, spk_b_pub, INIT_NO_ZERO))
    s.sending = (dhs_priv, pub(dhs_priv), cks, 0)
    s.pn = 0
    return s


def init_responder(sk, spk_priv):
    """§5.1 Responder, after §4.4 step 4: RK = SK, sending pending but, for this first
    message only, DHs = SPK_B; PN = 0; no chains, no skipped keys."""
    s = Session()
    s.initiator = False
    s.rk = sk
    s.sending = None
    s.first_dhs = (spk_priv, pub(spk_priv))
    s.pn = 0
    return s


# =========================================================================================
# §5.5 Encrypt
# =========================================================================================

SEND_NO_ZERO = switch(
    "ratchet-send-no-zero-check", "§2.2, §5.5 step 1",
    "the DH of a pending sending chain's first send is checked per §2.2 (mutated: not checked)")
SEND_COUNTER_UNCHECKED = switch(
    "send-counter-unchecked", "§5.5 step 2, §9",
    "encrypt with Ns = 0xFFFFFFFF fails with counter-exhausted (mutated: it sends)")
SEND_COUNTER_AT_BOUND = switch(
    "send-counter-at-bound-rejected", "§5.3, §9",
    "the last number a chain sends is 0xFFFFFFFE, so Ns = 0xFFFFFFFE succeeds (mutated: "
    "refused with counter-exhausted)")
RANDOM_NONCE = switch(
    "random-session-nonce", "§5.4",
    "implementations MUST NOT use random nonces: the nonce is derived from MK (mutated: a "
    "random 12-byte nonce is drawn)")
SEND_NOT_ATOMIC = switch(
    "encrypt-changes-on-counter-exhausted", "§5.5 step 2, §10",
    "encrypt at Ns = 0xFFFFFFFF fails and changes nothing (mutated: CKs is stepped anyway)")
SEND_VERSION_1 = switch(
    "send-version-1-nibble", "§4.8, §6.8",
    "a version-2 session's messages have version nibble 2 (0x21, 0x22) (mutated: 0x11, "
    "0x12)")
WRAP_FIRST_ONLY = switch(
    "wrap-only-first-message", "§5.5",
    "the initiator wraps every message in a prekey message until it has decrypted a message "
    "of the session (mutated: only its first message)")


def encrypt(s, plaintext, rng):
    """§5.5. Works on a copy; returns (new_state, message bytes)."""
    s = s.clone()
    # Step 1: a pending sending chain draws a new DHs.
    if s.sending is None:
        priv = rng.draw(32)
        dhr = s.open[0] if s.open is not None else None
        if dhr is None:
            raise ProtocolError("decode", "pending sending chain without an open chain")
        s.rk, cks = kdf_rk(s.rk, dh(priv, dhr, SEND_NO_ZERO))
        s.sending = (priv, pub(priv), cks, 0)
        s.ghost.pop("dhs", None)
    dhs_priv, dhs_pub, cks, ns = s.sending
    # Step 2: fail and change nothing.
    if ns == COUNTER_MAX and not mutated(SEND_COUNTER_UNCHECKED):
        e = ProtocolError("counter-exhausted", "Ns = 0xFFFFFFFF")
        if mutated(SEND_NOT_ATOMIC):
            s.sending = (dhs_priv, dhs_pub, next_chain_key(cks), ns)
            e.partial_state = s
        raise e
    if ns == COUNTER_MAX - 1 and mutated(SEND_COUNTER_AT_BOUND):
        raise ProtocolError("counter-exhausted", "Ns at the bound (mutation)")
    # Steps 3-5.
    mk, ck_next = kdf_ck(cks)
    key, nonce = message_key_expansion(mk)
    if mutated(RANDOM_NONCE):
        nonce = rng.draw(12)
    version = s.version
    if mutated(SEND_VERSION_1):
        version = VERSION
    header = first_byte(version, T_MESSAGE) + dhs_pub + u32(s.pn) + u32(ns & 0xFFFFFFFF)
    message = header + seal(key, nonce, s.h_ad + header, plaintext)
    # Step 6.
    s.sending = (dhs_priv, dhs_pub, ck_next, ns + 1)
    if s.pending_prekey:
        # §6.3, and §6.8 for a version-2 session: KEM id and ct besides (§4.8 step 5).
        message = encode_prekey_message(s.local_ik, s.session_id, s.spk_id, s.opk_id, message,
                                        version, s.kem_id, s.kem_ct)
        if mutated(WRAP_FIRST_ONLY):
            s.pending_prekey = False
    return s, message


# =========================================================================================
# §5.6 Decrypt
# =========================================================================================

RECV_COUNTER_UNCHECKED = switch(
    "recv-counter-unchecked", "§5.6 step 1, §9",
    "a received N = 0xFFFFFFFF is counter-exhausted (mutated: not checked)")
RECV_COUNTER_AFTER_SKIPPED = switch(
    "recv-counter-after-skipped", "§5.6 steps 1-2",
    "N = 0xFFFFFFFF is refused before the skipped-key lookup (mutated: after it)")
NO_SKIPPED_LOOKUP = switch(
    "no-skipped-lookup", "§5.6 step 2",
    "a stored skipped key (DHr', N) is used (mutated: the skipped keys are not consulted)")
OPEN_BEFORE_SKIPPED = switch(
    "open-chain-before-skipped", "§5.6 steps 2-3",
    "stored skipped keys are consulted before the open chain (mutated: the open chain's "
    "N < Nr check comes first, so its skipped keys are refused as duplicate)")
CLOSED_BEFORE_SKIPPED = switch(
    "closed-chain-before-skipped", "§5.6 steps 2 and 4",
    "stored skipped keys are consulted before the closed chains (mutated: a closed chain's "
    "record answers first, so its skipped keys are refused)")
SKIPPED_KEY_KEPT = switch(
    "skipped-key-kept", "§5.6 step 7",
    "a used skipped key is deleted (mutated: kept, so a replay decrypts again)")
OPEN_GAP_UNBOUNDED = switch(
    "open-chain-gap-unbounded", "§5.6 step 3, §9",
    "N - Nr > MAX_SKIP on the open chain is skip-limit (mutated: not checked)")
OPEN_GAP_AT_BOUND = switch(
    "open-chain-gap-at-bound-rejected", "§9",
    "'At' the bound succeeds: N - Nr = MAX_SKIP decrypts (mutated: skip-limit)")
OPEN_BELOW_NR = switch(
    "open-chain-below-nr-authentication", "§5.6 step 3",
    "N < Nr on the open chain is duplicate (mutated: authentication)")
NO_CLOSED_LOOKUP = switch(
    "no-closed-chain-lookup", "§5.6 step 4",
    "a message of a closed chain is answered from its (DHr, PN) record without derivation "
    "(mutated: closed chains are not consulted; the message is handled as a new ratchet key)")
CLOSED_BELOW_PN_AUTH = switch(
    "closed-chain-below-pn-authentication", "§5.6 step 4",
    "on a closed chain, N below its PN is duplicate (mutated: authentication)")
CLOSED_BEYOND_PN_DUP = switch(
    "closed-chain-beyond-pn-duplicate", "§5.6 step 4",
    "on a closed chain, N at or beyond its PN is authentication (mutated: duplicate)")
NO_REUSED_KEY_CHECK = switch(
    "no-reused-ratchet-key-check", "§5.6 step 4 (second rule)",
    "a DHr' that is neither the open chain's nor a remembered closed chain's but has a "
    "stored skipped key is authentication (mutated: not checked; handled as a new ratchet "
    "key)")
OLD_CHAINS_STAY_OPEN = switch(
    "old-chains-stay-open", "§5 item 4, §5.6 steps 4 and 7",
    "the chain a new ratchet key closes loses its chain key; nothing at or beyond PN' is ever "
    "accepted (mutated: the old chain keeps its key and derives messages past PN', as in "
    "revision 1)")
NEW_GAP_UNBOUNDED = switch(
    "new-chain-gap-unbounded", "§5.6 step 5.1, §9",
    "N > MAX_SKIP on a new ratchet key is skip-limit (mutated: not checked)")
NEW_GAP_AT_BOUND = switch(
    "new-chain-gap-at-bound-rejected", "§9",
    "'At' the bound succeeds: N = MAX_SKIP on a new chain decrypts (mutated: skip-limit)")
PN_WITHOUT_OPEN = switch(
    "pn-without-open-chain-accepted", "§5.6 step 5.2",
    "with no open chain, PN' != 0 is authentication (mutated: accepted)")
DRAFT_PN_BELOW_NR = switch(
    "draft-pn-below-nr-refused", "§5 item 5, §5.6 step 5",
    "no PN' is checked against the open chain: PN' < Nr is accepted (and closes the chain "
    "at PN' in step 7) (mutated: refused with authentication before the DH, as the first "
    "revision 2 draft did)")
DRAFT_PN_GAP = switch(
    "draft-pn-gap-skip-limit", "§5 item 5, §5.6 step 5, §9",
    "a PN' more than MAX_SKIP past Nr is accepted (the chain loses the rest) (mutated: "
    "skip-limit before the DH, as the first revision 2 draft did)")
PN_BEFORE_N = switch(
    "pn-checked-before-n", "§5.6 step 5 order",
    "step 5.1 (N > MAX_SKIP) is checked before step 5.2 (PN') (mutated: PN' first)")
REUSED_AFTER_N = switch(
    "reused-ratchet-key-checked-after-n-bound", "§5.6 steps 4-5",
    "the reused-ratchet-key rule of step 4 comes before anything else of step 5 (mutated: "
    "after step 5.1, the N > MAX_SKIP bound)")
DHS_CHECK_FIRST = switch(
    "dhs-deleted-checked-first", "§5.6 step 5 order",
    "steps 5.1-5.2 (bounds) precede step 5.3 (DHs deleted) (mutated: 5.3 first)")
DH_BEFORE_BOUNDS = switch(
    "dh-before-bounds", "§5.6 step 5, §9",
    "all bounds are checked before the first derivation; steps 5.1 to 5.3 precede the DH "
    "(mutated: the DH of step 5.4 is computed first)")
DHS_KEPT = switch(
    "dhs-kept-after-receive", "§5 item 6, §5.6 steps 5.3 and 7",
    "DHs is deleted when a receiving step is committed, and a new ratchet key while DHs is "
    "deleted is authentication without a DH (mutated: DHs.priv is kept and used)")
RECV_NO_ZERO = switch(
    "ratchet-recv-no-zero-check", "§2.2, §5.6 step 5.4",
    "the DH of a receiving ratchet step is checked per §2.2 (mutated: not checked)")
NO_SKIP_TO_PN = switch(
    "no-skip-to-pn", "§5 item 4, §5.6 step 7",
    "closing the open chain at PN' >= Nr stores its keys Nr .. E-1 as skipped keys "
    "(mutated: not stored)")
CLOSE_UNCAPPED = switch(
    "close-stores-uncapped", "§5 item 5, §5.6 step 7, §9",
    "closing at PN' stores at most MAX_SKIP keys, Nr .. min(PN', Nr + MAX_SKIP) - 1 "
    "(mutated: all PN' - Nr keys are stored)")
CLOSE_CAP_SHORT = switch(
    "close-cap-at-bound-short", "§5.6 step 7, §9",
    "'At' the bound succeeds: closing stores exactly MAX_SKIP keys when PN' - Nr >= MAX_SKIP "
    "(mutated: one fewer, E = Nr + MAX_SKIP - 1)")
PN_BELOW_NR_KEEPS_AT_PN = switch(
    "pn-below-nr-keeps-key-at-pn", "§5.6 step 7",
    "closing at PN' < Nr deletes the stored keys with N >= PN', the one at N = PN' included "
    "(mutated: only N > PN')")
PN_BELOW_NR_ANY_CHAIN = switch(
    "pn-below-nr-deletes-other-chains", "§5.6 step 7",
    "closing at PN' < Nr deletes only that chain's stored keys (with its DHr) (mutated: "
    "every stored key with N >= PN', whatever its DHr)")
CLOSE_CAP_LONG = switch(
    "close-cap-at-bound-long", "§5.6 step 7, §9",
    "closing at PN' stores at most MAX_SKIP keys (mutated: one more, E = Nr + MAX_SKIP + 1)")
PN_BELOW_NR_KEEPS = switch(
    "pn-below-nr-deletes-nothing", "§5 item 5, §5.6 step 7",
    "closing at PN' < Nr deletes the chain's stored skipped keys with N >= PN' (mutated: "
    "nothing is deleted)")
CLOSED_RECORD_NR = switch(
    "closed-record-at-nr", "§5.6 step 7",
    "a chain closed at PN' < Nr is remembered as (DHr, PN') (mutated: as (DHr, Nr), what was "
    "received of it)")
CLOSED_RECORD_E = switch(
    "closed-record-at-stored-end", "§5.6 step 7",
    "a chain closed at PN' > Nr + MAX_SKIP is remembered as (DHr, PN'), so its lost numbers "
    "E .. PN'-1 are duplicate (mutated: as (DHr, E), so they are authentication)")
CLOSED_NOT_RECORDED = switch(
    "closed-chain-not-recorded", "§5.6 step 7",
    "the closed chain's (DHr, PN') is appended to the closed chains (mutated: not recorded)")
CLOSED_UNBOUNDED = switch(
    "closed-chains-unbounded", "§5.6 step 7, §9",
    "more than MAX_CLOSED_CHAINS closed chains deletes the oldest (mutated: none deleted)")
CLOSED_EVICT_NEWEST = switch(
    "closed-chains-evict-newest", "§5.6 step 7, §9",
    "the oldest closed chain is forgotten (mutated: the newest earlier one)")
CLOSED_EVICT_DROPS_SKIPPED = switch(
    "closed-evict-drops-skipped", "§9",
    "a forgotten closed chain's skipped keys stay (mutated: deleted with it)")
SKIPPED_UNBOUNDED = switch(
    "skipped-keys-unbounded", "§5.6 step 7, §9",
    "appending a skipped key when MAX_SKIPPED_KEYS are stored deletes the oldest (mutated: "
    "none deleted)")
SKIPPED_EVICT_NEWEST = switch(
    "skipped-keys-evict-newest", "§5.6 step 7, §9",
    "the oldest skipped key is deleted first (mutated: the newest)")
SKIPPED_APPEND_ORDER = switch(
    "skipped-append-order", "§5.6 step 7",
    "the keys of the closed chain are appended before those of step 5.5 (mutated: after)")
PN_NOT_UPDATED = switch(
    "pn-not-updated", "§5.6 step 7",
    "if sending was active, PN = Ns when a new chain is committed (mutated: PN unchanged)")
COMMIT_ON_FAILURE = switch(
    "decrypt-commits-on-failure", "§5 item 9, §5.6 steps 6-7, §10",
    "decryption is all-or-nothing: nothing changes before the AEAD verifies (mutated: the "
    "derived chains and skipped keys are committed even if OPEN fails)")
KEEP_WRAPPING = switch(
    "keeps-wrapping-after-reply", "§5.5, §5.6 step 7",
    "the initiator stops wrapping messages in prekey messages once it decrypted a message "
    "(mutated: keeps wrapping)")


def _append_skipped(store, key, mk, bound=MAX_SKIPPED_KEYS,
                    unbounded=SKIPPED_UNBOUNDED, newest=SKIPPED_EVICT_NEWEST):
    """Appending a skipped key when `bound` are stored first deletes the oldest."""
    if len(store) >= bound and not mutated(unbounded):
        store.popitem(last=mutated(newest))
    store[key] = mk


def _has_skipped_for(s, dhr):
    """Whether any stored skipped key has this DHr (§5.6 step 4, second rule)."""
    return any(key[0] == dhr for key in s.skipped)


def decrypt(s, msg):
    """§5.6 on a decoded §6.2 message. Steps 1 to 5 only compute; nothing is changed before
    step 7. Returns (new_state, plaintext)."""
    check_version(s, msg)   # §6.8: before anything else of §5.6
    dhr_new, pn_new, n = msg.dhr, msg.pn, msg.n
    # Step 1.
    if n == COUNTER_MAX and not mutated(RECV_COUNTER_UNCHECKED) \
            and not mutated(RECV_COUNTER_AFTER_SKIPPED):
        raise ProtocolError("counter-exhausted", "received N = 0xFFFFFFFF")
    # Step 2 (first, unless a mutation moves the chain lookups before it).
    if mutated(OPEN_BEFORE_SKIPPED) and s.open is not None and s.open[0] == dhr_new \
            and n < s.open[2]:
        raise ProtocolError("duplicate", "N below Nr (mutation: before the skipped keys)")
    if mutated(CLOSED_BEFORE_SKIPPED):
        for dhr, pn in s.closed:
            if dhr == dhr_new:
                raise ProtocolError("duplicate" if n < pn else "authentication",
                                    "closed chain (mutation: before the skipped keys)")
    if (dhr_new, n) in s.skipped and not mutated(NO_SKIPPED_LOOKUP):
        return _finish(s, msg, s.skipped[(dhr_new, n)], ("skipped",))
    if n == COUNTER_MAX and mutated(RECV_COUNTER_AFTER_SKIPPED):
        raise ProtocolError("counter-exhausted", "received N = 0xFFFFFFFF")
    # Step 3: the open chain.
    if s.open is not None and s.open[0] == dhr_new:
        _, ckr, nr = s.open
        if n < nr:
            if mutated(OPEN_BELOW_NR):
                raise ProtocolError("authentication", "N below Nr (mutation)")
            raise ProtocolError("duplicate", "N below Nr")
        if n - nr > MAX_SKIP and not mutated(OPEN_GAP_UNBOUNDED):
            raise ProtocolError("skip-limit", "N - Nr > MAX_SKIP")
        if n - nr == MAX_SKIP and mutated(OPEN_GAP_AT_BOUND):
            raise ProtocolError("skip-limit", "at the bound (mutation)")
        keys, ck = step_chain(ckr, nr, n)
        mk, ck_next = kdf_ck(ck)
        return _finish(s, msg, mk, ("open", keys, ck_next))
    # Step 4: a closed chain ...
    if not mutated(NO_CLOSED_LOOKUP):
        for dhr, pn in s.closed:
            if dhr == dhr_new:
                if mutated(OLD_CHAINS_STAY_OPEN) and n >= pn and dhr in s.ghost.get("ck", {}):
                    return _old_chain(s, msg)
                if n < pn:
                    if mutated(CLOSED_BELOW_PN_AUTH):
                        raise ProtocolError("authentication", "closed chain (mutation)")
                    raise ProtocolError("duplicate", "closed chain, N below its PN")
                if mutated(CLOSED_BEYOND_PN_DUP):
                    raise ProtocolError("duplicate", "closed chain (mutation)")
                raise ProtocolError("authentication", "closed chain, N at or beyond its PN")
    # ... else a ratchet key that still has stored skipped keys (a closed chain whose record
    # was forgotten): no honest peer reuses a ratchet key. Before anything else of step 5.
    def check_reused():
        if not mutated(NO_REUSED_KEY_CHECK) and _has_skipped_for(s, dhr_new):
            raise ProtocolError("authentication", "a reused ratchet key")

    if not mutated(REUSED_AFTER_N):
        check_reused()
    # Step 5: a new ratchet key.
    dhs_priv = None
    if s.sending is not None:
        dhs_priv = s.sending[0]
    elif s.first_dhs is not None:
        dhs_priv = s.first_dhs[0]
    elif "dhs" in s.ghost:  # only under DHS_KEPT / RESPONDER_KEEPS_SPK
        dhs_priv = s.ghost["dhs"]

    def check_n():          # 5.1
        if n > MAX_SKIP and not mutated(NEW_GAP_UNBOUNDED):
            raise ProtocolError("skip-limit", "N > MAX_SKIP on a new chain")
        if n == MAX_SKIP and mutated(NEW_GAP_AT_BOUND):
            raise ProtocolError("skip-limit", "at the bound (mutation)")

    def check_pn():         # 5.2 (and, only under mutations, the first draft's PN checks)
        if s.open is None:
            if pn_new != 0 and not mutated(PN_WITHOUT_OPEN):
                raise ProtocolError("authentication", "PN' != 0 without an open chain")
            return
        nr = s.open[2]
        if mutated(DRAFT_PN_BELOW_NR) and pn_new < nr:
            raise ProtocolError("authentication", "PN' below Nr (mutation: the draft rule)")
        if mutated(DRAFT_PN_GAP) and pn_new - nr > MAX_SKIP:
            raise ProtocolError("skip-limit", "PN' - Nr > MAX_SKIP (mutation: the draft rule)")

    def check_dhs():        # 5.3
        if dhs_priv is None:
            raise ProtocolError("authentication", "new ratchet key while DHs is deleted")

    def ratchet_dh():       # 5.4
        return dh(dhs_priv, dhr_new, RECV_NO_ZERO)

    dh_out = None
    if mutated(DH_BEFORE_BOUNDS) and dhs_priv is not None:
        dh_out = ratchet_dh()
    if mutated(DHS_CHECK_FIRST):
        check_dhs()
    if mutated(PN_BEFORE_N):
        check_pn()
        check_n()
    else:
        check_n()
        if mutated(REUSED_AFTER_N):
            check_reused()
        check_pn()
    check_dhs()
    if dh_out is None:
        dh_out = ratchet_dh()
    rk_new, ckr_new = kdf_rk(s.rk, dh_out)
    # 5.5: step the new chain from 0 to N. (The open chain is closed only at commit.)
    new_keys, ck = step_chain(ckr_new, 0, n)
    mk, ck_next = kdf_ck(ck)
    return _finish(s, msg, mk, ("new", rk_new, new_keys, ck_next))


def _old_chain(s, msg):
    """Only under OLD_CHAINS_STAY_OPEN: derive on a closed chain beyond its PN."""
    ck, start = s.ghost["ck"][msg.dhr]
    if msg.n - start > MAX_SKIP:
        raise ProtocolError("skip-limit", "old chain gap")
    keys, ck = step_chain(ck, start, msg.n)
    mk, ck_next = kdf_ck(ck)
    return _finish(s, msg, mk, ("old", keys, ck_next))


def _close_open_chain(s, pn_new):
    """§5.6 step 7, "it is closed at PN'" (on the copy `s`, whose open chain is set): store
    its keys Nr .. E-1 (E = min(PN', Nr + MAX_SKIP)) if PN' >= Nr, else delete its stored
    skipped keys with N >= PN'; remember (DHr, PN'); delete its chain key."""
    dhr, ckr, nr = s.open
    ghost_ck, ghost_start = ckr, nr
    record_pn = pn_new
    if pn_new >= nr:
        cap = MAX_SKIP - 1 if mutated(CLOSE_CAP_SHORT) else \
            MAX_SKIP + 1 if mutated(CLOSE_CAP_LONG) else MAX_SKIP
        e = pn_new if mutated(CLOSE_UNCAPPED) else min(pn_new, nr + cap)
        keys, ghost_ck = step_chain(ckr, nr, e)
        ghost_start = e
        if mutated(CLOSED_RECORD_E):
            record_pn = e
        if not mutated(NO_SKIP_TO_PN):
            for i, k in keys:
                _append_skipped(s.skipped, (dhr, i), k)
    else:
        first = pn_new + 1 if mutated(PN_BELOW_NR_KEEPS_AT_PN) else pn_new
        if not mutated(PN_BELOW_NR_KEEPS):
            any_chain = mutated(PN_BELOW_NR_ANY_CHAIN)
            for key in [k for k in s.skipped
                        if (k[0] == dhr or any_chain) and k[1] >= first]:
                del s.skipped[key]
        if mutated(CLOSED_RECORD_NR):
            record_pn = nr
    if mutated(OLD_CHAINS_STAY_OPEN):
        ghosts = dict(s.ghost.get("ck", {}))
        ghosts[dhr] = (ghost_ck, ghost_start)
        s.ghost["ck"] = ghosts
    if not mutated(CLOSED_NOT_RECORDED):
        s.closed.append((dhr, record_pn))
        if len(s.closed) > MAX_CLOSED_CHAINS and not mutated(CLOSED_UNBOUNDED):
            gone = s.closed.pop(-2 if mutated(CLOSED_EVICT_NEWEST) else 0)
            if mutated(CLOSED_EVICT_DROPS_SKIPPED):
                for key in [k for k in s.skipped if k[0] == gone[0]]:
                    del s.skipped[key]
    s.open = None   # its chain key is deleted


def _commit(s, msg, how):
    """§5.6 step 7, on a copy."""
    s = s.clone()
    dhr_new, n = msg.dhr, msg.n
    kind = how[0]
    if kind == "skipped":
        if not mutated(SKIPPED_KEY_KEPT):
            del s.skipped[(dhr_new, n)]
    elif kind == "open":
        _, keys, ck_next = how
        s.open = (dhr_new, ck_next, n + 1)
        for i, k in keys:
            _append_skipped(s.skipped, (dhr_new, i), k)
    elif kind == "old":
        _, keys, ck_next = how
        ghosts = dict(s.ghost["ck"])
        ghosts[dhr_new] = (ck_next, n + 1)
        s.ghost["ck"] = ghosts
        for i, k in keys:
            _append_skipped(s.skipped, (dhr_new, i), k)
    else:
        _, rk_new, new_keys, ck_next = how
        s.rk = rk_new
        if mutated(SKIPPED_APPEND_ORDER):
            for i, k in new_keys:
                _append_skipped(s.skipped, (dhr_new, i), k)
        if s.open is not None:
            _close_open_chain(s, msg.pn)
        if not mutated(SKIPPED_APPEND_ORDER):
            for i, k in new_keys:
                _append_skipped(s.skipped, (dhr_new, i), k)
        s.open = (dhr_new, ck_next, n + 1)
        old_dhs = s.sending[0] if s.sending is not None else None
        if s.sending is not None and not mutated(PN_NOT_UPDATED):
            s.pn = s.sending[3]
        if s.first_dhs is not None:
            if mutated(RESPONDER_KEEPS_SPK):
                s.ghost["dhs"] = s.first_dhs[0]
            s.first_dhs = None
        elif old_dhs is not None and mutated(DHS_KEPT):
            s.ghost["dhs"] = old_dhs
        s.sending = None
    if not mutated(KEEP_WRAPPING):
        s.pending_prekey = False
    return s


def _finish(s, msg, mk, how):
    """§5.6 step 6 (OPEN) then step 7 (commit)."""
    key, nonce = message_key_expansion(mk)
    if mutated(COMMIT_ON_FAILURE):
        committed = _commit(s, msg, how)
        try:
            return committed, open_(key, nonce, s.h_ad + msg.header, msg.ciphertext)
        except ProtocolError as e:
            e.partial_state = committed  # the runner sees the changed state
            raise
    plaintext = open_(key, nonce, s.h_ad + msg.header, msg.ciphertext)
    return _commit(s, msg, how), plaintext


# =========================================================================================
# §5.7 Prekey messages to an existing session
# =========================================================================================

PREKEY_TO_INITIATOR = switch(
    "prekey-to-initiator-accepted", "§5.7 step 1, §4.5",
    "an initiator's session rejects every prekey message with state-mismatch (mutated: "
    "handled by step 2)")
PREKEY_IK_NOT_COMPARED = switch(
    "prekey-ik-not-compared", "§5.7 step 2",
    "IK_A must be the session's remote identity key (mutated: not compared)")
PREKEY_EK_NOT_COMPARED = switch(
    "prekey-ek-not-compared", "§5.7 step 2",
    "EK_A must be the session id (mutated: not compared)")
PREKEY_SPK_NOT_COMPARED = switch(
    "prekey-spk-not-compared", "§5.7 step 2",
    "the SPK id must be that of the session's X3DH (mutated: not compared)")
PREKEY_OPK_NOT_COMPARED = switch(
    "prekey-opk-not-compared", "§5.7 step 2",
    "the OPK id (or its absence) must be that of the session's X3DH (mutated: not compared)")
PREKEY_CHECKS_LATE = switch(
    "prekey-checks-after-counter", "§5.7",
    "the §5.7 checks come before §5.6 step 1 (mutated: after it)")
VERSION_NOT_COMPARED = switch(
    "message-version-not-compared", "§6.8, §5.7 step 2",
    "a version-1 session accepts only 0x11/0x12, a version-2 session only 0x21/0x22: a "
    "message of the other version is state-mismatch, before anything else of §5.6 and as §5.7 "
    "step 2 (mutated: not compared)")
KEM_ID_NOT_COMPARED = switch(
    "prekey-kem-id-not-compared", "§5.7 step 2",
    "for a version-2 session, the prekey message's KEM id must be the session's (mutated: "
    "not compared)")
CT_HASH_NOT_COMPARED = switch(
    "prekey-ct-hash-not-compared", "§5.7 step 2",
    "for a version-2 session, SHA256(ct) of the prekey message must be the one the "
    "responder stored (mutated: not compared)")


def check_version(s, m):
    """§6.8 "Messages of a session": a message of the other version is state-mismatch,
    checked before anything else of §5.6, and as step 2 of §5.7 (after step 1: a prekey
    message to an initiator's session is state-mismatch either way)."""
    if m.version != s.version and not mutated(VERSION_NOT_COMPARED):
        raise ProtocolError("state-mismatch", "a message of the other version")


def decrypt_session_message(s, m):
    """Decrypt a decoded session message (Message or PrekeyMessage) in session `s`: a
    prekey message is checked by §5.7 first, then its embedded message goes to §5.6."""
    if isinstance(m, PrekeyMessage):
        if mutated(PREKEY_CHECKS_LATE) and m.inner.n == COUNTER_MAX:
            raise ProtocolError("counter-exhausted", "received N = 0xFFFFFFFF")
        # §5.7 step 1.
        if s.initiator and not mutated(PREKEY_TO_INITIATOR):
            raise ProtocolError("state-mismatch", "prekey message to an initiator's session")
        # Step 2: the version first (§6.8), then the fields of the session's X3DH / PQXDH.
        check_version(s, m)
        if ((m.ik_a != s.remote_ik and not mutated(PREKEY_IK_NOT_COMPARED))
                or (m.ek_a != s.session_id and not mutated(PREKEY_EK_NOT_COMPARED))
                or (m.spk_id != s.spk_id and not mutated(PREKEY_SPK_NOT_COMPARED))
                or (m.opk_id != s.opk_id and not mutated(PREKEY_OPK_NOT_COMPARED))
                or (s.version == VERSION_PQ and m.version == VERSION_PQ and (
                    (m.kem_id != s.kem_id and not mutated(KEM_ID_NOT_COMPARED))
                    or (sha256(m.ct) != s.kem_ct_hash
                        and not mutated(CT_HASH_NOT_COMPARED))))):
            raise ProtocolError("state-mismatch", "prekey message of another session")
        return decrypt(s, m.inner)
    assert isinstance(m, Message)
    check_version(s, m)   # §6.8: before anything else of §5.6
    return decrypt(s, m)
