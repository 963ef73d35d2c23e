"""SPEC §11: saved sessions (§11.2), saved group states (§11.3), sealed states (§11.4),
saved accounts (§11.5, revisions 3 and 2), saved session records (§11.6) and saved groups
(§11.7), with the restore checks of §11.1 in their order: decode in layout order (keys
accepted when read), no trailing bytes, consistency."""

from collections import OrderedDict

from .errors import ProtocolError
from .group import GroupReceiver, GroupSender, SenderKeyState
from .keys import (Identity, PrekeyStore, accept_public_key, kem_prekey_signature, kem_public,
                   signed_prekey_signature)
from .limits import (MAX_CLOSED_CHAINS, MAX_GROUP_SKIPPED_KEYS, MAX_LAST_RESORT_KEM_PREKEYS,
                     MAX_LAST_RESORT_USES, MAX_ONE_TIME_KEM_PREKEYS, MAX_SENDER_KEY_STATES,
                     MAX_SKIPPED_KEYS)
from .mutation import mutated, switch
from .primitives import (KEM_CT_LEN, Reader, SEALED_STATE_AD, flag, len8, open_, pub, seal,
                         u8, u16, u32)
from .ratchet import Session
from .groupstate import MAX_GROUP_MEMBERS, GroupState, Member, member_order
from .records import MAX_ARCHIVED_SESSIONS, MAX_RETIRED_SESSIONS, SessionRecord, read_address
from .wire import (T_SAVED_ACCOUNT, T_SAVED_GROUP, T_SAVED_RECEIVER, T_SAVED_RECORD,
                   T_SAVED_SENDER, T_SAVED_SESSION, T_SEALED, VERSION, VERSION_PQ, Bundle,
                   first_byte, read_first_byte, read_group_id, versions_of)

FORMAT_REVISION = 0x02      # §11.1: revision 2's saved states; 0x01 (revision 1's) is refused
REVISION_1 = 0x01
ACCOUNT_REVISION = 0x03     # §11.5: writers write 0x03 (it adds "published below") ...
ACCOUNT_REVISION_2 = 0x02   # ... and 0x02 MUST still be read, published below = next id

REVISION_UNCHECKED = switch(
    "restore-revision-unchecked", "§11.1",
    "a format revision byte other than 0x02 is decode (mutated: ignored)")
REVISION_1_ACCEPTED = switch(
    "restore-accepts-revision-1", "§11.1, §13",
    "revision 1's pre-release saved states carry format revision 0x01 and are refused with "
    "decode (mutated: 0x01 is read as 0x02)")
TRAILING_IGNORED = switch(
    "restore-trailing-ignored", "§11.1 step 2",
    "trailing bytes after a saved state are decode (mutated: ignored)")
KEYS_LAST = switch(
    "restore-keys-checked-last", "§11.1 step 1 and order",
    "every Ed25519 key is checked when it is read, before the trailing-bytes and consistency "
    "checks (mutated: keys are checked after steps 1-3)")
SESSION_KEYS_UNCHECKED = switch(
    "restore-session-keys-unchecked", "§11.1 step 1, §3.1",
    "the identity keys of a saved session are acceptable, else invalid-key (mutated: not "
    "checked)")
CLOSED_COUNT = switch(
    "restore-closed-count-unbounded", "§11.2, §9",
    "a count of closed chains over MAX_CLOSED_CHAINS is decode (mutated: accepted)")
SKIPPED_COUNT = switch(
    "restore-skipped-count-unbounded", "§11.2, §9",
    "a count of skipped keys over MAX_SKIPPED_KEYS is decode (mutated: accepted)")
C_PENDING_PREKEY = switch(
    "restore-pending-prekey-responder", "§11.2 consistency rule 1",
    "the pending-prekey flag is 1 only if the role flag is 1 (mutated: not checked)")
C_PENDING_OPEN = switch(
    "restore-pending-without-open-chain", "§11.2 consistency rule 2",
    "a pending sending chain comes with an open receiving chain (mutated: not checked)")
C_DISTINCT = switch(
    "restore-chains-not-distinct", "§11.2 consistency rule 3",
    "the ratchet keys of the open and closed chains are pairwise distinct (mutated: not "
    "checked)")
C_DUP_SKIPPED = switch(
    "restore-duplicate-skipped-keys", "§11.2 consistency rule 4",
    "no two skipped keys have the same (DHr, N) (mutated: not checked)")
C_BEYOND_NR = switch(
    "restore-skipped-beyond-nr", "§11.2 consistency rule 5",
    "no skipped key of the open chain's DHr has N >= Nr (mutated: not checked)")
C_BEYOND_PN = switch(
    "restore-skipped-beyond-pn", "§11.2 consistency rule 5",
    "no skipped key of a closed chain's DHr has N >= that chain's PN (mutated: not checked)")
SAVE_NO_KEM_ID = switch(
    "save-session-v2-without-kem-id", "§11.2",
    "a saved version-2 session (0x26) holds its KEM id after the OPK part (mutated: left "
    "out)")
SAVE_NO_CT = switch(
    "save-session-v2-without-ct", "§11.2",
    "a pending initiator's 0x26 holds ct, which its prekey messages repeat (mutated: left "
    "out)")
SAVE_NO_CT_HASH = switch(
    "save-session-v2-without-ct-hash", "§11.2",
    "a responder's 0x26 holds SHA256(ct), for §5.7 (mutated: left out)")
RESTORE_V2_AS_V1 = switch(
    "restore-session-0x26-as-version-1", "§11.2, §6.8",
    "a session restored from 0x26 is a version-2 session (mutated: a version-1 one)")
SENDER_KEY_UNCHECKED = switch(
    "restore-sender-ik-unchecked", "§11.1 step 1, §11.3",
    "IK_S.pub of a saved group sender is acceptable, else invalid-key (mutated: not checked)")
RECEIVER_KEYS_UNCHECKED = switch(
    "restore-receiver-keys-unchecked", "§11.1 step 1, §11.3",
    "IK_S.pub and the signing keys of a saved group receiver are acceptable, else invalid-key "
    "(mutated: not checked)")
RECEIVER_ZERO = switch(
    "restore-receiver-zero-states", "§11.3",
    "a saved receiver holds 1..=5 states: 0 is decode (mutated: accepted)")
RECEIVER_MANY = switch(
    "restore-receiver-states-unbounded", "§11.3, §9",
    "a saved receiver holds 1..=5 states: more is decode (mutated: accepted)")
RECEIVER_SKIPPED_COUNT = switch(
    "restore-receiver-skipped-unbounded", "§11.3, §9",
    "a state's count of skipped keys over MAX_GROUP_SKIPPED_KEYS is decode (mutated: accepted)")
R_DUP_KEYIDS = switch(
    "restore-receiver-duplicate-keyids", "§11.3 consistency",
    "the key ids of a saved receiver are pairwise distinct (mutated: not checked)")
R_DUP_ITERATIONS = switch(
    "restore-receiver-duplicate-iterations", "§11.3 consistency",
    "no two skipped keys of a state have the same iteration (mutated: not checked)")
R_BEYOND_NEXT = switch(
    "restore-receiver-skipped-beyond-next", "§11.3 consistency",
    "every skipped key's iteration is below the state's next iteration (mutated: not checked)")
SEALED_FIRST_BYTE = switch(
    "sealed-first-byte-unchecked", "§11.4",
    "the first byte of a sealed state is checked as in §6.1 (mutated: not checked)")
SEALED_SHORT = switch(
    "sealed-min-length-unchecked", "§11.4",
    "input shorter than 1 + 12 + 16 bytes is decode (mutated: left to the AEAD)")
SEALED_AD = switch(
    "sealed-ad-without-type", "§11.4",
    "the associated data is SEALED_STATE_AD || 0x19 (mutated: SEALED_STATE_AD alone)")
SEALED_NOT_RESTORED = switch(
    "sealed-inner-not-restored", "§11.4",
    "the opened bytes are restored as §11.1 says (mutated: returned unchecked)")


class _Restore:
    """Reader plus the §11.1 order of checks. `revisions` are the format revisions this
    format reads (§11.1: 0x02; §11.5: an account also 0x03). `reader`, if given, is the
    Reader of an enclosing state to read from in place (only under a mutation that ignores
    a nested state's length)."""

    def __init__(self, data, expected_type, revisions=(FORMAT_REVISION,), reader=None):
        self.r = Reader(data) if reader is None else reader
        self.deferred_keys = []
        self.version = read_first_byte(self.r, expected_type) >> 4
        if self.version == VERSION_PQ and expected_type == T_SAVED_ACCOUNT \
                and not mutated(ACC_PQ_REVISION_2):
            revisions = (ACCOUNT_REVISION,)   # §11.1: 0x2A has only revision 0x03
        rev = self.r.u8()
        if rev == REVISION_1 and mutated(REVISION_1_ACCEPTED):
            rev = revisions[0]
        if rev not in revisions and not mutated(REVISION_UNCHECKED):
            raise ProtocolError("decode", f"format revision {rev:#04x}")
        self.revision = rev

    def key(self, site_switch):
        b = self.r.take(32)
        if mutated(KEYS_LAST):
            self.deferred_keys.append((b, site_switch))
        else:
            accept_public_key(b, site_switch)
        return b

    def end(self):
        """§11.1 step 2: no trailing bytes."""
        if not self.r.at_end() and not mutated(TRAILING_IGNORED):
            raise ProtocolError("decode", "trailing bytes after a saved state")

    def finish(self):
        for b, site_switch in self.deferred_keys:
            accept_public_key(b, site_switch)


def _inconsistent(what):
    raise ProtocolError("decode", f"inconsistent saved state: {what}")


# ----- §11.2 Saved session ------------------------------------------------------------------

def save_session(s):
    """§11.2. A responder's transient first-message state is never saved."""
    if s.first_dhs is not None:
        raise AssertionError("a responder's transient first-message state is never saved")
    out = [first_byte(s.version, T_SAVED_SESSION), u8(FORMAT_REVISION), s.session_id,
           s.local_ik, s.remote_ik, s.h_ad, flag(s.initiator), flag(s.pending_prekey),
           u32(s.spk_id)]
    out.append(b"\x00" if s.opk_id is None else b"\x01" + u32(s.opk_id))
    if s.version == VERSION_PQ:
        # §11.2 0x26: KEM id | [ct, if pending-prekey] | [SHA256(ct), if a responder's]
        if not mutated(SAVE_NO_KEM_ID):
            out.append(u32(s.kem_id))
        if s.pending_prekey and not mutated(SAVE_NO_CT):
            out.append(s.kem_ct)
        if not s.initiator and not mutated(SAVE_NO_CT_HASH):
            out.append(s.kem_ct_hash)
    out += [s.rk, u32(s.pn)]
    if s.sending is None:
        out.append(b"\x00")
    else:
        dhs_priv, dhs_pub, cks, ns = s.sending
        out += [b"\x01", dhs_priv, dhs_pub, cks, u32(ns)]
    if s.open is None:
        out.append(b"\x00")
    else:
        dhr, ckr, nr = s.open
        out += [b"\x01", dhr, ckr, u32(nr)]
    out.append(u8(len(s.closed)))
    for dhr, pn in s.closed:
        out += [dhr, u32(pn)]
    out.append(u16(len(s.skipped)))
    for (dhr, n), mk in s.skipped.items():
        out += [dhr, u32(n), mk]
    return b"".join(out)


def restore_session(data):
    """§11.2 with the checks of §11.1."""
    rs = _Restore(data, T_SAVED_SESSION)
    s, skipped = _read_session(rs)
    # Step 2.
    rs.end()
    _check_session(s, skipped)
    rs.finish()
    return s


def _read_session(rs):
    """§11.1 step 1 for a saved session: every field in layout order."""
    r = rs.r
    s = Session()
    s.session_id = r.take(32)
    s.local_ik = rs.key(SESSION_KEYS_UNCHECKED)
    s.remote_ik = rs.key(SESSION_KEYS_UNCHECKED)
    s.h_ad = r.take(32)
    s.initiator = r.flag()
    s.pending_prekey = r.flag()
    s.spk_id = r.u32()
    s.opk_id = r.u32() if r.flag() else None
    if rs.version == VERSION_PQ:
        s.version = VERSION if mutated(RESTORE_V2_AS_V1) else VERSION_PQ
        s.kem_id = r.u32()
        if s.pending_prekey:
            s.kem_ct = r.take(KEM_CT_LEN)
        if not s.initiator:
            s.kem_ct_hash = r.take(32)
    s.rk = r.take(32)
    s.pn = r.u32()
    if r.flag():
        s.sending = (r.take(32), r.take(32), r.take(32), r.u32())
    if r.flag():
        s.open = (r.take(32), r.take(32), r.u32())
    count = r.u8()
    if count > MAX_CLOSED_CHAINS and not mutated(CLOSED_COUNT):
        raise ProtocolError("decode", f"{count} closed chains")
    s.closed = [(r.take(32), r.u32()) for _ in range(count)]
    count = r.u16()
    if count > MAX_SKIPPED_KEYS and not mutated(SKIPPED_COUNT):
        raise ProtocolError("decode", f"{count} skipped keys")
    skipped = [(r.take(32), r.u32(), r.take(32)) for _ in range(count)]
    return s, skipped


def _check_session(s, skipped):
    """§11.1 step 3: a saved session's consistency (§11.2)."""
    if s.pending_prekey and not s.initiator and not mutated(C_PENDING_PREKEY):
        _inconsistent("pending-prekey flag on a responder's session")
    if s.sending is None and s.open is None and not mutated(C_PENDING_OPEN):
        _inconsistent("pending sending chain without an open receiving chain")
    ratchet_keys = ([s.open[0]] if s.open else []) + [dhr for dhr, _ in s.closed]
    if len(set(ratchet_keys)) != len(ratchet_keys) and not mutated(C_DISTINCT):
        _inconsistent("open and closed chains share a ratchet key")
    seen = set()
    for dhr, n, _ in skipped:
        if (dhr, n) in seen and not mutated(C_DUP_SKIPPED):
            _inconsistent("two skipped keys with the same (DHr, N)")
        seen.add((dhr, n))
    closed_pn = {}
    for dhr, pn in s.closed:
        closed_pn.setdefault(dhr, pn)
    for dhr, n, _ in skipped:
        if s.open is not None and dhr == s.open[0] and n >= s.open[2] \
                and not mutated(C_BEYOND_NR):
            _inconsistent("skipped key of the open chain at or beyond Nr")
        if dhr in closed_pn and n >= closed_pn[dhr] and not mutated(C_BEYOND_PN):
            _inconsistent("skipped key of a closed chain at or beyond its PN")
    s.skipped = OrderedDict(((dhr, n), mk) for dhr, n, mk in skipped)


# ----- §11.3 Saved group states --------------------------------------------------------------

def save_group_sender(g):
    """§11.3 sender (0x17)."""
    return (b"\x17" + u8(FORMAT_REVISION) + len8(g.group_id) + g.ik_s + u32(g.key_id)
            + g.chain_key + u32(g.iteration) + g.seed)


def restore_group_sender(data):
    rs = _Restore(data, T_SAVED_SENDER)
    r = rs.r
    g = GroupSender()
    g.group_id = read_group_id(r)
    g.ik_s = rs.key(SENDER_KEY_UNCHECKED)
    g.key_id = r.u32()
    g.chain_key = r.take(32)
    g.iteration = r.u32()
    g.seed = r.take(32)
    g.first_chain_key = g.first_iteration = None
    rs.end()
    rs.finish()
    return g


def save_group_receiver(g):
    """§11.3 receiver (0x18)."""
    out = [b"\x18", u8(FORMAT_REVISION), len8(g.group_id), g.ik_s, u8(len(g.states))]
    for st in g.states:
        out += [u32(st.key_id), st.signing_key, st.chain_key, u32(st.next),
                u16(len(st.skipped))]
        for it, mk in st.skipped.items():
            out += [u32(it), mk]
    return b"".join(out)


def restore_group_receiver(data):
    rs = _Restore(data, T_SAVED_RECEIVER)
    r = rs.r
    group_id = read_group_id(r)
    ik_s = rs.key(RECEIVER_KEYS_UNCHECKED)
    count = r.u8()
    if count == 0 and not mutated(RECEIVER_ZERO):
        raise ProtocolError("decode", "a saved receiver without states")
    if count > MAX_SENDER_KEY_STATES and not mutated(RECEIVER_MANY):
        raise ProtocolError("decode", f"{count} sender key states")
    raw = []
    for _ in range(count):
        key_id = r.u32()
        signing_key = rs.key(RECEIVER_KEYS_UNCHECKED)
        chain_key = r.take(32)
        nxt = r.u32()
        n = r.u16()
        if n > MAX_GROUP_SKIPPED_KEYS and not mutated(RECEIVER_SKIPPED_COUNT):
            raise ProtocolError("decode", f"{n} group skipped keys")
        raw.append((key_id, signing_key, chain_key, nxt,
                    [(r.u32(), r.take(32)) for _ in range(n)]))
    rs.end()
    ids = [x[0] for x in raw]
    if len(set(ids)) != len(ids) and not mutated(R_DUP_KEYIDS):
        _inconsistent("duplicate key ids")
    states = []
    for key_id, signing_key, chain_key, nxt, skipped in raw:
        its = [it for it, _ in skipped]
        if len(set(its)) != len(its) and not mutated(R_DUP_ITERATIONS):
            _inconsistent("two skipped keys with the same iteration")
        if any(it >= nxt for it in its) and not mutated(R_BEYOND_NEXT):
            _inconsistent("skipped key at or beyond the next iteration")
        states.append(SenderKeyState(key_id, signing_key, chain_key, nxt,
                                     OrderedDict(skipped)))
    rs.finish()
    return GroupReceiver(group_id, ik_s, states)


# ----- §11.5 Saved account -------------------------------------------------------------------

MAX_ACCOUNT_SIGNED_PREKEYS = 2      # §11.5 / §9: the current one and its predecessor
MAX_ACCOUNT_ONE_TIME_PREKEYS = 1000

ACC_NO_SIGNED = switch(
    "restore-account-no-signed-prekey", "§11.5",
    "a saved account has 1..=2 signed prekeys: 0 is decode (mutated: accepted)")
ACC_SIGNED_MANY = switch(
    "restore-account-signed-unbounded", "§11.5, §9",
    "a saved account has 1..=2 signed prekeys: more is decode (mutated: accepted)")
ACC_OPK_MANY = switch(
    "restore-account-opk-unbounded", "§11.5, §9",
    "a saved account has at most 1000 one-time prekeys, else decode (mutated: accepted)")
ACC_BELOW_NEXT = switch(
    "restore-account-id-not-below-next", "§11.5 consistency",
    "every prekey id is below the next prekey id (mutated: not checked)")
ACC_DISTINCT = switch(
    "restore-account-ids-not-distinct", "§11.5 consistency",
    "all prekey ids, signed and one-time together, are pairwise distinct (mutated: not "
    "checked)")
ACC_OPK_ORDER = switch(
    "restore-account-opk-order", "§11.5 consistency",
    "the one-time prekey ids are strictly increasing (mutated: not checked)")
ACC_BUNDLE_OLDEST = switch(
    "account-bundle-oldest-signed-prekey", "§11.5, §3.4",
    "the bundle carries the current signed prekey, the newest of the oldest-first list "
    "(mutated: the oldest)")
ACC_BUNDLE_UNKNOWN = switch(
    "account-bundle-unknown-opk-omitted", "§3.4, README",
    "a bundle for a one-time prekey id the account does not hold is unknown-prekey "
    "(mutated: the bundle is given without a one-time prekey)")


ACC_REV2_REFUSED = switch(
    "restore-account-revision-2-refused", "§11.5, §13",
    "a saved account of format revision 0x02 MUST still be read (mutated: decode)")
ACC_REV2_MARK = switch(
    "restore-account-revision-2-mark", "§11.5",
    "revision 0x02 is read with published below = the next prekey id: the keys it holds "
    "count as published (mutated: = 0, nothing published, the rule before the security "
    "review)")
ACC_WRITES_OLD = switch(
    "save-account-keeps-revision", "§11.5",
    "writers write revision 0x03 (mutated: an account read as revision 0x02 is written as "
    "revision 0x02, without published below)")
ACC_MARK_PAST = switch(
    "restore-account-mark-past-next", "§11.5 consistency",
    "published below is at most the next prekey id, else decode (mutated: not checked)")
ACC_MARK_AT_NEXT = switch(
    "restore-account-mark-at-next-rejected", "§11.5 consistency, §3.6",
    "published below may equal the next prekey id, as after marking an upload (mutated: "
    "decode)")
ACC_MARK_NOT_SAVED = switch(
    "save-account-mark-zero", "§11.5",
    "revision 0x03 saves the published-below mark (mutated: saved as 0)")



ACC_PQ_REVISION_2 = switch(
    "restore-pq-account-revision-2", "§11.1, §11.5",
    "version 2's saved states have one revision each: 0x2A has only 0x03, so 0x2A with "
    "revision 0x02 is decode (mutated: read like 0x1A's revision 0x02, without published "
    "below)")
ACC_PQ_NO_LAST_RESORT = switch(
    "restore-pq-account-no-last-resort", "§11.5",
    "a saved 0x2A account has 1..=2 last-resort KEM prekeys: 0 is decode (mutated: accepted)")
ACC_PQ_LAST_RESORT_MANY = switch(
    "restore-pq-account-last-resort-unbounded", "§11.5, §9",
    "more than MAX_LAST_RESORT_KEM_PREKEYS (2) last-resort KEM prekeys is decode (mutated: "
    "accepted)")
ACC_PQ_USES_MANY = switch(
    "restore-pq-account-used-base-keys-unbounded", "§11.5, §9",
    "more than MAX_LAST_RESORT_USES (1000) used base keys is decode (mutated: accepted)")
ACC_PQ_KEM_OT_MANY = switch(
    "restore-pq-account-one-time-kem-unbounded", "§11.5, §9",
    "more than MAX_ONE_TIME_KEM_PREKEYS (100) one-time KEM prekeys is decode (mutated: "
    "accepted)")
ACC_PQ_IDS_DISTINCT = switch(
    "restore-pq-account-kem-ids-not-distinct", "§11.5 consistency",
    "all ids of all four kinds are pairwise distinct: the KEM prekey ids count among the "
    "prekey ids (mutated: the KEM ids are left out of the distinctness rule)")
ACC_PQ_IDS_BELOW_NEXT = switch(
    "restore-pq-account-kem-id-not-below-next", "§11.5 consistency",
    "every KEM prekey id is below the next prekey id (mutated: not checked for KEM ids)")
ACC_PQ_KEM_OT_ORDER = switch(
    "restore-pq-account-one-time-kem-order", "§11.5 consistency",
    "the one-time KEM prekey ids are strictly increasing (mutated: not checked)")
ACC_PQ_BASE_KEY_TWICE = switch(
    "restore-pq-account-base-key-twice", "§11.5 consistency",
    "no last-resort KEM prekey lists a base key twice (mutated: not checked)")
ACC_PQ_REQUIRES_NOT_SAVED = switch(
    "save-pq-account-requires-pq-lost", "§11.5",
    "the requires-PQ flag is saved and restored (mutated: restored as 1 whatever it says)")
ACC_BUNDLE_KEM_UNKNOWN = switch(
    "account-bundle-unknown-kem-prekey", "§4.8, README",
    "a version-2 bundle names a KEM prekey the account holds; another id is unknown-prekey "
    "(mutated: the current last-resort KEM prekey is used)")


class Account:
    """§11.5: an identity with its prekeys (§3). `signed` is [(SPK id, SPK.priv)], oldest
    first (the last is the current one); `one_time` is [(OPK id, OPK.priv)] in id order;
    `published_below` the mark of §3.6; `revision` the format revision it was read with.
    An account with KEM prekeys (§4.8, saved as 0x2A) also has `last_resort`
    [(KEM id, seed, [used base keys])], oldest first (the last is the current one),
    `kem_one_time` [(KEM id, seed)] in id order, and `requires_pq`; `pq` says which."""

    def __init__(self, seed, next_id, signed, one_time, published_below=0,
                 revision=ACCOUNT_REVISION, last_resort=None, kem_one_time=(),
                 requires_pq=False):
        self.seed, self.next_id = seed, next_id
        self.signed, self.one_time = list(signed), list(one_time)
        self.published_below = published_below
        self.revision = revision
        self.identity = Identity(seed)   # IK is derived from the seed (§3.1)
        self.pq = last_resort is not None
        self.last_resort = [(i, k, list(u)) for i, k, u in (last_resort or ())]
        self.kem_one_time = list(kem_one_time)
        self.requires_pq = requires_pq

    def copy(self):
        return Account(self.seed, self.next_id, self.signed, self.one_time,
                       self.published_below, self.revision,
                       self.last_resort if self.pq else None, self.kem_one_time,
                       self.requires_pq)

    def prekey_store(self):
        """The responder's prekey store (§4.4, §4.8) holding this account's keys."""
        return PrekeyStore(self.identity, dict(self.signed), dict(self.one_time),
                           self.last_resort, self.kem_one_time, self.requires_pq)

    def with_store(self, store):
        """The account after §4.4 / §4.8 changed `store` (they delete one-time prekeys of
        either kind and record used base keys, step 6): what the store still holds, in the
        account's order."""
        a = self.copy()
        a.one_time = [(i, k) for i, k in self.one_time if i in store.one_time]
        a.kem_one_time = [(i, k) for i, k in self.kem_one_time if i in store.kem_one_time]
        a.last_resort = [(i, k, list(store.last_resort[i][1])) for i, k, _ in self.last_resort
                         if i in store.last_resort]
        return a

    def bundle(self, opk_id, kem_id=None):
        """§3.4 / §6.4: the bundle with the current signed prekey and the one-time prekey
        `opk_id` (None: none); with `kem_id`, the version-2 bundle (§6.8) with that KEM
        prekey (one-time or last-resort)."""
        spk_id, spk_priv = self.signed[0 if mutated(ACC_BUNDLE_OLDEST) else -1]
        spk_pub = pub(spk_priv)
        opk_pub = None
        if opk_id is not None:
            held = dict(self.one_time)
            if opk_id in held:
                opk_pub = pub(held[opk_id])
            elif mutated(ACC_BUNDLE_UNKNOWN):
                opk_id = None
            else:
                raise ProtocolError("unknown-prekey", f"one-time prekey {opk_id}")
        b = Bundle(self.identity.pub, spk_id, spk_pub,
                   signed_prekey_signature(self.seed, spk_id, spk_pub), opk_id, opk_pub)
        if kem_id is not None:
            held = dict(self.kem_one_time)
            held.update((i, k) for i, k, _ in self.last_resort)
            if kem_id not in held:
                if not mutated(ACC_BUNDLE_KEM_UNKNOWN) or not self.last_resort:
                    raise ProtocolError("unknown-prekey", f"KEM prekey {kem_id}")
                kem_id = self.last_resort[-1][0]
            ek = kem_public(held[kem_id])
            b.version, b.kem_id, b.kem_pub = VERSION_PQ, kem_id, ek
            b.kem_sig = kem_prekey_signature(self.seed, kem_id, ek)
        return b.encode()


def save_account(a):
    """§11.5: writers write revision 0x03; an account with KEM prekeys is saved as 0x2A."""
    if a.pq:
        out = [b"\x2a", u8(ACCOUNT_REVISION), a.seed, u32(a.next_id), u32(a.published_below),
               flag(a.requires_pq)]
    elif mutated(ACC_WRITES_OLD) and a.revision == ACCOUNT_REVISION_2:
        out = [b"\x1a", u8(ACCOUNT_REVISION_2), a.seed, u32(a.next_id)]
    else:
        mark = 0 if mutated(ACC_MARK_NOT_SAVED) else a.published_below
        out = [b"\x1a", u8(ACCOUNT_REVISION), a.seed, u32(a.next_id), u32(mark)]
    out.append(u8(len(a.signed)))
    out += [u32(i) + k for i, k in a.signed]
    out.append(u16(len(a.one_time)))
    out += [u32(i) + k for i, k in a.one_time]
    if a.pq:
        out.append(u8(len(a.last_resort)))
        for i, k, used in a.last_resort:
            out += [u32(i), k, u16(len(used))] + used
        out.append(u8(len(a.kem_one_time)))
        out += [u32(i) + k for i, k in a.kem_one_time]
    return b"".join(out)


def upgraded_account_bytes(data):
    """§11.5: what a revision 0x02 account re-saves as: revision 0x03 with published below
    = the next prekey id (bytes 34..38 of the revision 0x02 form), the rest unchanged. (A
    revision 0x03 account re-saves as itself.) The vectors' own `save` events pin the bytes
    independently of this."""
    if len(data) >= 38 and data[1] == ACCOUNT_REVISION_2:
        return data[:1] + bytes([ACCOUNT_REVISION]) + data[2:38] + data[34:38] + data[38:]
    return data


def restore_account(data):
    """§11.5 with the checks of §11.1 (an account holds no public key to accept): format
    revision 0x03, or 0x02 (the same layout without published below, read as the next
    prekey id: its application published the keys it held by its own means); and 0x2A, an
    account with KEM prekeys (revision 0x03 only)."""
    revisions = (ACCOUNT_REVISION,) if mutated(ACC_REV2_REFUSED) else \
        (ACCOUNT_REVISION, ACCOUNT_REVISION_2)
    rs = _Restore(data, T_SAVED_ACCOUNT, revisions)
    pq = rs.version == VERSION_PQ
    r = rs.r
    seed = r.take(32)
    next_id = r.u32()
    if rs.revision == ACCOUNT_REVISION_2:
        mark = 0 if mutated(ACC_REV2_MARK) else next_id
    else:
        mark = r.u32()
    requires_pq = r.flag() if pq else False
    if pq and mutated(ACC_PQ_REQUIRES_NOT_SAVED):
        requires_pq = True
    count = r.u8()
    if count == 0 and not mutated(ACC_NO_SIGNED):
        raise ProtocolError("decode", "a saved account without a signed prekey")
    if count > MAX_ACCOUNT_SIGNED_PREKEYS and not mutated(ACC_SIGNED_MANY):
        raise ProtocolError("decode", f"{count} signed prekeys")
    signed = [(r.u32(), r.take(32)) for _ in range(count)]
    count = r.u16()
    if count > MAX_ACCOUNT_ONE_TIME_PREKEYS and not mutated(ACC_OPK_MANY):
        raise ProtocolError("decode", f"{count} one-time prekeys")
    one_time = [(r.u32(), r.take(32)) for _ in range(count)]
    last_resort, kem_one_time = None, []
    if pq:
        count = r.u8()
        if count == 0 and not mutated(ACC_PQ_NO_LAST_RESORT):
            raise ProtocolError("decode", "a saved account without a last-resort KEM prekey")
        if count > MAX_LAST_RESORT_KEM_PREKEYS and not mutated(ACC_PQ_LAST_RESORT_MANY):
            raise ProtocolError("decode", f"{count} last-resort KEM prekeys")
        last_resort = []
        for _ in range(count):
            kem_id, kem_seed, uses = r.u32(), r.take(64), r.u16()
            if uses > MAX_LAST_RESORT_USES and not mutated(ACC_PQ_USES_MANY):
                raise ProtocolError("decode", f"{uses} used base keys")
            last_resort.append((kem_id, kem_seed, [r.take(32) for _ in range(uses)]))
        count = r.u8()
        if count > MAX_ONE_TIME_KEM_PREKEYS and not mutated(ACC_PQ_KEM_OT_MANY):
            raise ProtocolError("decode", f"{count} one-time KEM prekeys")
        kem_one_time = [(r.u32(), r.take(64)) for _ in range(count)]
    rs.end()
    ids = [i for i, _ in signed] + [i for i, _ in one_time]
    kem_ids = [i for i, _, _ in last_resort or ()] + [i for i, _ in kem_one_time]
    if any(i >= next_id for i in ids) and not mutated(ACC_BELOW_NEXT):
        _inconsistent("a prekey id at or above the next prekey id")
    if any(i >= next_id for i in kem_ids) and not mutated(ACC_PQ_IDS_BELOW_NEXT):
        _inconsistent("a KEM prekey id at or above the next prekey id")
    if len(set(ids)) != len(ids) and not mutated(ACC_DISTINCT):
        _inconsistent("two prekeys with one id")
    if (len(set(kem_ids)) != len(kem_ids) or set(kem_ids) & set(ids)) \
            and not mutated(ACC_PQ_IDS_DISTINCT):
        _inconsistent("a KEM prekey id that another prekey of any kind has")
    opk_ids = [i for i, _ in one_time]
    if any(a >= b for a, b in zip(opk_ids, opk_ids[1:])) and not mutated(ACC_OPK_ORDER):
        _inconsistent("one-time prekey ids not strictly increasing")
    ot_kem_ids = [i for i, _ in kem_one_time]
    if any(a >= b for a, b in zip(ot_kem_ids, ot_kem_ids[1:])) \
            and not mutated(ACC_PQ_KEM_OT_ORDER):
        _inconsistent("one-time KEM prekey ids not strictly increasing")
    for _, _, used in last_resort or ():
        if len(set(used)) != len(used) and not mutated(ACC_PQ_BASE_KEY_TWICE):
            _inconsistent("a base key listed twice")
    if mark > next_id and not mutated(ACC_MARK_PAST):
        _inconsistent("published below past the next prekey id")
    if mark == next_id and rs.revision == ACCOUNT_REVISION and mutated(ACC_MARK_AT_NEXT):
        _inconsistent("published below at the next prekey id (mutation)")
    rs.finish()
    return Account(seed, next_id, signed, one_time, mark, rs.revision, last_resort,
                   kem_one_time, requires_pq)


# ----- §11.6 Saved session record ----------------------------------------------------------

REC_ARCHIVED_WITHOUT_CURRENT = switch(
    "restore-record-archived-without-current", "§11.6 consistency",
    "archived sessions come only with a current session (mutated: not checked)")
REC_SESSION_IDS = switch(
    "restore-record-session-ids-not-distinct", "§11.6 consistency",
    "the session ids of all sessions of a record are pairwise distinct (mutated: not "
    "checked)")
REC_RETIRED_IDS = switch(
    "restore-record-retired-ids-not-distinct", "§11.6 consistency",
    "the retired ids are distinct from every session id and from each other (mutated: not "
    "checked)")
REC_REMOTE_IK = switch(
    "restore-record-remote-identity", "§11.6 consistency",
    "every session's remote identity key is IK_R (mutated: not checked)")
REC_LOCAL_IK = switch(
    "restore-record-local-identity", "§11.6 consistency",
    "all sessions of a record have the same local identity key (mutated: not checked)")
REC_ARCHIVED_COUNT = switch(
    "restore-record-archived-unbounded", "§11.6, §9",
    "a count of archived sessions over MAX_ARCHIVED_SESSIONS (5) is decode (mutated: "
    "accepted)")
REC_RETIRED_COUNT = switch(
    "restore-record-retired-unbounded", "§11.6, §9",
    "a count of retired ids over MAX_RETIRED_SESSIONS (40) is decode (mutated: accepted)")
REC_LENGTH_IGNORED = switch(
    "restore-record-session-length-ignored", "§11.6",
    "each saved session must fill its length exactly (mutated: the length is skipped and the "
    "session read in place, to its own end)")
REC_IK_UNCHECKED = switch(
    "restore-record-ik-unchecked", "§11.6, §11.1 step 1",
    "IK_R.pub of a saved record is accepted per §3.1 when read, else invalid-key (mutated: "
    "not checked)")


def save_record(rec):
    """§11.6."""
    out = [b"\x1f", u8(FORMAT_REVISION), rec.local.encode(), rec.remote.encode(), rec.ik_r]
    if rec.current is None:
        out.append(b"\x00")
    else:
        saved = save_session(rec.current)
        out += [b"\x01", u32(len(saved)), saved]
    out.append(u8(len(rec.archived)))
    for sess in rec.archived:
        saved = save_session(sess)
        out += [u32(len(saved)), saved]
    out.append(u8(len(rec.retired)))
    out += rec.retired
    return b"".join(out)


def _nested(rs, restore, read_in_place=None):
    """A nested saved state `u32 length | state`: decoded per its own section (its errors are
    the enclosing state's), filling its length exactly."""
    r = rs.r
    length = r.u32()
    if read_in_place is not None and mutated(REC_LENGTH_IGNORED):
        return read_in_place(r)
    return restore(r.take(length))


def _session_in_place(r):
    """Only under REC_LENGTH_IGNORED: a saved session read from the record's own reader."""
    inner = _Restore(None, T_SAVED_SESSION, reader=r)
    sess, skipped = _read_session(inner)
    _check_session(sess, skipped)
    inner.finish()
    return sess


def restore_record(data):
    """§11.6 with the checks of §11.1."""
    rs = _Restore(data, T_SAVED_RECORD)
    r = rs.r
    local = read_address(r)
    remote = read_address(r)
    ik_r = rs.key(REC_IK_UNCHECKED)
    current = None
    if r.flag():
        current = _nested(rs, restore_session, _session_in_place)
    count = r.u8()
    if count > MAX_ARCHIVED_SESSIONS and not mutated(REC_ARCHIVED_COUNT):
        raise ProtocolError("decode", f"{count} archived sessions")
    archived = [_nested(rs, restore_session, _session_in_place)
                for _ in range(count)]
    count = r.u8()
    if count > MAX_RETIRED_SESSIONS and not mutated(REC_RETIRED_COUNT):
        raise ProtocolError("decode", f"{count} retired ids")
    retired = [r.take(32) for _ in range(count)]
    rs.end()
    # Consistency (§11.6).
    if archived and current is None and not mutated(REC_ARCHIVED_WITHOUT_CURRENT):
        _inconsistent("archived sessions without a current one")
    sessions = ([current] if current is not None else []) + archived
    if any(x.remote_ik != ik_r for x in sessions) and not mutated(REC_REMOTE_IK):
        _inconsistent("a session whose remote identity is not IK_R")
    if len({x.local_ik for x in sessions}) > 1 and not mutated(REC_LOCAL_IK):
        _inconsistent("sessions with different local identity keys")
    ids = [x.session_id for x in sessions]
    if len(set(ids)) != len(ids) and not mutated(REC_SESSION_IDS):
        _inconsistent("two sessions with one id")
    if (len(set(retired)) != len(retired) or set(retired) & set(ids)) \
            and not mutated(REC_RETIRED_IDS):
        _inconsistent("a retired id that is held or retired twice")
    rs.finish()
    return SessionRecord(local, remote, ik_r, current, archived, retired)


# ----- §11.7 Saved group ---------------------------------------------------------------------

GRP_MEMBER_COUNT = switch(
    "restore-group-members-unbounded", "§11.7, §9",
    "a count of members over MAX_GROUP_MEMBERS (1024) is decode (mutated: accepted)")
GRP_KEYS_UNCHECKED = switch(
    "restore-group-member-keys-unchecked", "§11.7, §11.1 step 1",
    "each member's IK.pub is accepted per §3.1 when read, else invalid-key (mutated: not "
    "checked)")
GRP_ORDER = switch(
    "restore-group-members-unordered", "§11.7 consistency",
    "the members' addresses are strictly increasing in the order of §7.7: a smaller one "
    "after a larger one is decode (mutated: only a repeated address is refused)")
GRP_REPEATED = switch(
    "restore-group-member-twice", "§11.7 consistency",
    "the members' addresses are strictly increasing: a member twice is decode (mutated: "
    "non-decreasing accepted)")
GRP_LOCAL_MEMBER = switch(
    "restore-group-local-member", "§11.7 consistency",
    "no member is the local address (mutated: not checked)")
GRP_RECEIVER_GROUP = switch(
    "restore-group-receiver-other-group", "§11.7 consistency",
    "every receiver is of the sender's group (mutated: not checked)")
GRP_RECEIVER_IK = switch(
    "restore-group-receiver-other-identity", "§11.7 consistency",
    "every receiver's sender key IK_S is its member's IK (mutated: not checked)")
GRP_REMOVED_RECEIVER = switch(
    "restore-group-removed-with-receiver", "§11.7 consistency",
    "a state whose member flag is 0 holds no receiver (mutated: not checked)")


def save_group_state(g):
    """§11.7."""
    sender = save_group_sender(g.sender)
    out = [b"\x10", u8(FORMAT_REVISION), g.local.encode(), flag(g.member),
           u32(len(sender)), sender, u16(len(g.members))]
    for m in g.members:
        out += [m.address.encode(), m.ik]
        if m.receiver is None:
            out.append(b"\x00")
        else:
            saved = save_group_receiver(m.receiver)
            out += [b"\x01", u32(len(saved)), saved]
    return b"".join(out)


def restore_group_state(data):
    """§11.7 with the checks of §11.1. (§11.7 does not repeat §11.6's rule that a nested
    state fills its length exactly and that its errors are the enclosing state's; this
    verifier applies it here too.)"""
    rs = _Restore(data, T_SAVED_GROUP)
    r = rs.r
    local = read_address(r)
    member = r.flag()
    sender = _nested(rs, restore_group_sender)
    count = r.u16()
    if count > MAX_GROUP_MEMBERS and not mutated(GRP_MEMBER_COUNT):
        raise ProtocolError("decode", f"{count} members")
    members = []
    for _ in range(count):
        address = read_address(r)
        ik = rs.key(GRP_KEYS_UNCHECKED)
        receiver = _nested(rs, restore_group_receiver) if r.flag() else None
        members.append(Member(address, ik, receiver))
    rs.end()
    # Consistency (§11.7).
    keys = [member_order(m.address) for m in members]
    for a, b in zip(keys, keys[1:]):
        if b < a and not mutated(GRP_ORDER):
            _inconsistent("members out of address order")
        if b == a and not mutated(GRP_REPEATED):
            _inconsistent("a member twice")
    if any(m.address == local for m in members) and not mutated(GRP_LOCAL_MEMBER):
        _inconsistent("the local address listed as a member")
    for m in members:
        if m.receiver is None:
            continue
        if m.receiver.group_id != sender.group_id and not mutated(GRP_RECEIVER_GROUP):
            _inconsistent("a receiver of another group")
        if m.receiver.ik_s != m.ik and not mutated(GRP_RECEIVER_IK):
            _inconsistent("a receiver whose sender is not its member's identity")
        if not member and not mutated(GRP_REMOVED_RECEIVER):
            _inconsistent("a removed member's state holding a receiver")
    rs.finish()
    return GroupState(sender.group_id, local, member, sender, members)


RESTORERS = {"session": (restore_session, save_session),
             "group_sender": (restore_group_sender, save_group_sender),
             "group_receiver": (restore_group_receiver, save_group_receiver),
             "account": (restore_account, save_account),
             "record": (restore_record, save_record),
             "group": (restore_group_state, save_group_state)}
KIND_BY_TYPE = {T_SAVED_SESSION: "session", T_SAVED_SENDER: "group_sender",
                T_SAVED_RECEIVER: "group_receiver", T_SAVED_ACCOUNT: "account",
                T_SAVED_RECORD: "record", T_SAVED_GROUP: "group"}


def restore_any(data):
    """Restore a saved state "by the first byte it carries" (§11.4): version nibble first
    (unknown-version), then a saved-state type nibble (else decode)."""
    if not data:
        raise ProtocolError("decode", "empty saved state")
    if data[0] >> 4 not in versions_of(data[0] & 0x0F):
        raise ProtocolError("unknown-version", f"first byte {data[0]:#04x}")
    kind = KIND_BY_TYPE.get(data[0] & 0x0F)
    if kind is None:
        raise ProtocolError("decode", f"not a saved state type: {data[0]:#04x}")
    return kind, RESTORERS[kind][0](data)


# ----- §11.4 Sealed state --------------------------------------------------------------------

def _sealed_ad():
    return SEALED_STATE_AD if mutated(SEALED_AD) else SEALED_STATE_AD + b"\x19"


def seal_state(storage_key, state_bytes, rng):
    """§11.4: 0x19 | nonce (12) | SEAL(storage key, nonce, SEALED_STATE_AD || 0x19, state)."""
    nonce = rng.draw(12)
    return b"\x19" + nonce + seal(storage_key, nonce, _sealed_ad(), state_bytes)


def open_sealed(storage_key, sealed):
    """§11.4: first byte as §6.1, at least 1 + 12 + 16 bytes, then OPEN."""
    if not mutated(SEALED_FIRST_BYTE):
        read_first_byte(Reader(sealed), T_SEALED)
    elif not sealed:
        raise ProtocolError("decode", "empty")
    if len(sealed) < 1 + 12 + 16 and not mutated(SEALED_SHORT):
        raise ProtocolError("decode", "sealed state shorter than 29 bytes")
    if len(sealed) < 1 + 12:
        raise ProtocolError("decode", "truncated")
    if len(sealed) < 1 + 12 + 16:  # only under SEALED_SHORT: the AEAD refuses it
        raise ProtocolError("authentication", "no room for a tag")
    return open_(storage_key, sealed[1:13], _sealed_ad(), sealed[13:])


def unseal(storage_key, sealed):
    """§11.4: open, then restore the opened bytes (§11.1) by their first byte. Returns
    (opened bytes, kind, restored state).

    §11.4 lets an implementation skip the Ed25519 acceptance checks for opened bytes (MAY:
    it need not decode identity keys at all, and decodes group signing keys only as far as
    verifying needs), but never the bounds and consistency rules. This verifier keeps every
    check, which the MAY allows; so no vector may depend on either choice, and none does:
    no sealed state of the vectors holds an unacceptable key. A revision 1 state (format
    revision 0x01) is refused sealed or not (§11.1)."""
    opened = open_sealed(storage_key, sealed)
    if mutated(SEALED_NOT_RESTORED):
        try:
            kind, state = restore_any(opened)
        except ProtocolError:
            kind, state = None, None
        return opened, kind, state
    kind, state = restore_any(opened)
    return opened, kind, state
