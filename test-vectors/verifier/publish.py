"""SPEC §3.6: publishing prekeys. The prekey upload (0x1B) as a server decodes and verifies
it, the bundles (§6.4) a server assembles from it, and what an account (§11.5) uploads by its
"published below" mark.

The account operations work on a copy and return it (all-or-nothing, §10); the account
object is persistence.Account (§11.5), used here by its fields only."""

from .errors import ProtocolError
from .keys import (accept_public_key, kem_prekey_context, kem_prekey_signature, kem_public,
                   signed_prekey_signature)
from .mutation import mutated, switch
from .persistence import MAX_ACCOUNT_ONE_TIME_PREKEYS as MAX_ONE_TIME_PREKEYS  # §9, §11.5
from .limits import (MAX_LAST_RESORT_KEM_PREKEYS, MAX_ONE_TIME_KEM_PREKEYS,
                     MAX_UPLOAD_PREKEYS_PQ)
from .primitives import Reader, SIGNED_PREKEY_CONTEXT, pub, u16, u32, verify
from .wire import T_UPLOAD, VERSION_PQ, Bundle, end, first_byte, read_first_byte, read_kem_key

MAX_UPLOAD_PREKEYS = 1001   # §3.6 / §9: entries of a prekey upload, past it decode
KIND_SIGNED, KIND_ONE_TIME = 0x01, 0x02
KIND_LAST_RESORT_KEM, KIND_ONE_TIME_KEM = 0x03, 0x04   # §3.6, version-2 uploads (0x2B)
MAX_UPLOAD_ONE_TIME_PQ = 1000                         # §3.6: kind 0x02 entries of a 0x2B

UPLOAD_COUNT_UNBOUNDED = switch(
    "upload-count-unbounded", "§3.6, §9",
    "an upload of more than MAX_UPLOAD_PREKEYS (1001) entries is decode (mutated: accepted)")
UPLOAD_COUNT_AT_BOUND = switch(
    "upload-count-at-bound-rejected", "§9",
    "'At' the bound succeeds: an upload of exactly 1001 entries decodes (mutated: decode)")
UPLOAD_IK_UNCHECKED = switch(
    "upload-ik-unchecked", "§3.6, §3.1",
    "IK.pub of an upload is accepted per §3.1, else invalid-key (mutated: not checked)")
UPLOAD_SIGNED_ANYWHERE = switch(
    "upload-signed-entry-anywhere", "§3.6",
    "a signed entry (kind 0x01) is allowed only as the first entry, else decode (mutated: "
    "allowed anywhere, the last one counting)")
UPLOAD_UNKNOWN_KIND = switch(
    "upload-unknown-kind-accepted", "§3.6",
    "an entry kind other than 0x01 and 0x02 is decode in this suite (mutated: read with the "
    "one-time layout)")
UPLOAD_OPK_DECREASING = switch(
    "upload-one-time-ids-unordered", "§3.6",
    "the one-time entries' ids are strictly increasing: a smaller id after a larger one is "
    "decode (mutated: only a repeated id is refused)")
UPLOAD_OPK_REPEATED = switch(
    "upload-one-time-ids-non-strict", "§3.6",
    "the one-time entries' ids are strictly increasing: the same id twice is decode "
    "(mutated: non-decreasing ids accepted)")
UPLOAD_OPK_IS_SIGNED = switch(
    "upload-one-time-id-equals-signed", "§3.6",
    "no one-time entry's id equals the signed entry's id, else decode (mutated: not checked)")
UPLOAD_TRAILING = switch(
    "upload-trailing-ignored", "§3.6",
    "trailing bytes after an upload are decode (mutated: ignored)")
UPLOAD_SIG_UNCHECKED = switch(
    "upload-signature-unchecked", "§3.6, §3.2",
    "a server MUST verify the signed entry (§3.2) and refuse the upload with bad-signature "
    "if it fails (mutated: not verified)")

PQ_COUNT_UNBOUNDED = switch(
    "upload-pq-count-unbounded", "§3.6, §9",
    "a 0x2B upload of more than MAX_UPLOAD_PREKEYS_PQ (1102) entries is decode when the "
    "count is read (mutated: no bound; the per-kind rules still refuse it after reading)")
PQ_COUNT_AT_BOUND = switch(
    "upload-pq-count-at-bound-rejected", "§9",
    "'At' the bound succeeds: a 0x2B upload of 1102 entries decodes (mutated: decode)")
PQ_KIND_ORDER = switch(
    "upload-pq-kind-order-unchecked", "§3.6",
    "entries of a 0x2B upload come in non-decreasing kind order (mutated: any order)")
PQ_SIGNED_TWICE = switch(
    "upload-pq-signed-twice", "§3.6",
    "kind 0x01 appears at most once in a 0x2B upload (mutated: twice accepted)")
PQ_LAST_RESORT_TWICE = switch(
    "upload-pq-last-resort-twice", "§3.6",
    "kind 0x03 appears at most once in a 0x2B upload (mutated: twice accepted)")
PQ_OT_IDS = switch(
    "upload-pq-one-time-ids-unordered", "§3.6",
    "the ids of kind 0x02 entries of a 0x2B upload are strictly increasing (mutated: not "
    "checked)")
PQ_OT_KEM_IDS = switch(
    "upload-pq-one-time-kem-ids-unordered", "§3.6",
    "the ids of kind 0x04 entries are strictly increasing (mutated: not checked)")
PQ_IDS_DISTINCT = switch(
    "upload-pq-ids-not-distinct", "§3.6",
    "no two entries of a 0x2B upload have the same id, whatever their kinds (mutated: only "
    "within a kind)")
PQ_OT_BOUND = switch(
    "upload-pq-one-time-unbounded", "§3.6",
    "at most 1000 entries of kind 0x02 in a 0x2B upload (mutated: no per-kind bound)")
PQ_OT_KEM_BOUND = switch(
    "upload-pq-one-time-kem-unbounded", "§3.6, §9",
    "at most MAX_ONE_TIME_KEM_PREKEYS (100) entries of kind 0x04 (mutated: no per-kind "
    "bound)")
PQ_OT_AT_BOUND = switch(
    "upload-pq-one-time-at-bound-rejected", "§3.6, §9",
    "'At' the bound succeeds: a 0x2B upload with exactly 1000 kind-0x02 entries decodes "
    "(mutated: decode)")
PQ_OT_KEM_AT_BOUND = switch(
    "upload-pq-one-time-kem-at-bound-rejected", "§3.6, §9",
    "'At' the bound succeeds: a 0x2B upload with exactly MAX_ONE_TIME_KEM_PREKEYS (100) "
    "kind-0x04 entries decodes (mutated: decode)")
PQ_RULES_EAGER = switch(
    "upload-pq-id-rules-while-reading", "§3.6",
    "the id and per-kind count rules of a 0x2B upload are checked after the whole upload "
    "has been read and trailing bytes checked (mutated: as each entry is read)")
PQ_KIND_RULES_LATE = switch(
    "upload-pq-kind-rules-after-reading", "§3.6",
    "the kind rules of a 0x2B upload (order, a second 0x01 or 0x03) are checked as each kind "
    "byte is read (mutated: after the whole upload and trailing bytes, with the id rules)")
PQ_KIND_RULES_AFTER_FIELDS = switch(
    "upload-pq-kind-rules-after-entry-fields", "§3.6",
    "the kind rules of a 0x2B upload are checked when the kind byte is read, before the "
    "entry's fields (mutated: once the entry's fields have been read, so its ek is checked "
    "first)")
PQ_KIND_IN_V1 = switch(
    "upload-v1-accepts-kem-kinds", "§3.6",
    "a version-1 upload (0x1B) has kinds 0x01 and 0x02 only: a KEM entry there is decode "
    "(mutated: read as in 0x2B)")
PQ_KEM_SIG_UNCHECKED = switch(
    "upload-kem-signatures-unchecked", "§3.6, §4.8",
    "a server verifies every signed entry of a 0x2B upload, the KEM entries (0x03, 0x04) "
    "under KEM_PREKEY_CONTEXT included, else bad-signature (mutated: KEM entries not "
    "verified)")
PQ_LAST_RESORT_SIG_UNCHECKED = switch(
    "upload-last-resort-signature-unchecked", "§3.6, §4.8",
    "the last-resort KEM entry (0x03) of an upload is verified too (mutated: only 0x04)")
PUBLISH_PQ_KIND_ORDER = switch(
    "publish-pq-upload-order", "§3.6",
    "an account with KEM prekeys uploads in kind order: signed, one-time, last-resort KEM, "
    "one-time KEM (mutated: the KEM entries first)")
ROTATE_PQ_ORDER = switch(
    "rotate-pq-kem-first", "§3.6 Rotating, §8",
    "rotating with KEM prekeys makes the new signed prekey first, then the new last-resort "
    "KEM prekey, each with the next id, drawing SPK.priv then the KEM seed (mutated: the "
    "KEM prekey first)")
ROTATE_PQ_KEM_KEPT = switch(
    "rotate-pq-last-resort-not-rotated", "§3.6 Rotating",
    "rotating a device with KEM prekeys rotates its last-resort KEM prekey together with "
    "the signed prekey (mutated: only the signed prekey)")
ROTATE_PQ_UNBOUNDED = switch(
    "rotate-pq-keeps-more-than-two", "§3.6, §9",
    "an account keeps MAX_LAST_RESORT_KEM_PREKEYS (2): the oldest of more is deleted at a "
    "rotation (mutated: none deleted)")
RETIRE_PQ_KEEPS = switch(
    "retire-pq-keeps-kem-predecessor", "§3.6 Rotating",
    "ending the grace period retires both predecessors, the last-resort KEM prekey's too "
    "(mutated: the KEM predecessor is kept)")
PUBLISH_SIGNED_ALWAYS = switch(
    "publish-signed-prekey-below-mark", "§3.6",
    "the current signed prekey is uploaded only if its id is at or above the published mark "
    "(mutated: always)")
PUBLISH_OLDEST_SIGNED = switch(
    "publish-oldest-signed-prekey", "§3.6",
    "the signed prekey to upload is the current one, the newest (mutated: the oldest held)")
PUBLISH_ALL_ONE_TIME = switch(
    "publish-one-time-below-mark", "§3.6",
    "only one-time prekeys with ids at or above the published mark are uploaded (mutated: "
    "every one-time prekey)")
MARK_NOT_ADVANCED = switch(
    "publish-mark-not-advanced", "§3.6",
    "after the server stored an upload the mark moves past the upload's highest prekey id "
    "(mutated: it stays)")
MARK_TO_NEXT_ID = switch(
    "publish-mark-to-next-id", "§3.6",
    "the mark becomes one more than the highest prekey id in the stored upload, so keys made "
    "after the upload was built stay unpublished (mutated: the next prekey id, the rule "
    "before the security review)")
MARK_ONE_TIME_ONLY = switch(
    "publish-mark-one-time-entries-only", "§3.6",
    "the highest prekey id of an upload is over all its entries, the signed one included "
    "(mutated: over its one-time entries only)")
MARK_MAY_DECREASE = switch(
    "publish-mark-may-decrease", "§3.6",
    "the mark moves only if one more than the upload's highest id is larger (mutated: it "
    "is set to that value even when smaller)")
MARK_EMPTY_MOVES = switch(
    "publish-mark-empty-upload-moves", "§3.6",
    "an empty upload moves nothing (mutated: storing it moves the mark to the next prekey "
    "id, as if everything held had been uploaded)")
SEPARATE_COUNTERS = switch(
    "prekey-ids-separate-counters", "§3.6, §11.5",
    "prekey ids come from one counter shared by signed and one-time prekeys (mutated: each "
    "kind continues from its own highest id)")
ROTATE_DROPS_PREDECESSOR = switch(
    "rotate-drops-predecessor", "§3.6 Rotation",
    "a rotation keeps the new signed prekey and its predecessor (mutated: only the new one)")
ROTATE_UNBOUNDED = switch(
    "rotate-keeps-more-than-two", "§3.6 Rotation, §11.5",
    "the account keeps at most MAX_SIGNED_PREKEYS (2): the oldest of more is deleted "
    "(mutated: none deleted)")
GENERATE_PAST_BOUND = switch(
    "generate-one-time-past-bound", "§9 MAX_ONE_TIME_PREKEYS, §3.6",
    "generating one-time prekeys stops at MAX_ONE_TIME_PREKEYS (1000) held: fewer are made "
    "(and drawn) (mutated: all `count` are made)")
RETIRE_KEEPS = switch(
    "retire-keeps-predecessor", "§3.6 Rotation",
    "retiring the predecessor deletes every signed prekey but the newest (mutated: kept)")


# ----- the upload (0x1B) ---------------------------------------------------------------------

class Upload:
    """A decoded prekey upload: IK.pub, the signed entry (id, pub, sig) or None, and the
    one-time entries [(id, pub)] in id order."""

    __slots__ = ("ik", "signed", "one_time", "version", "last_resort", "kem_one_time")

    def __init__(self, ik, signed, one_time, version=1, last_resort=None, kem_one_time=()):
        self.ik, self.signed, self.one_time = ik, signed, one_time
        # version 2 (0x2B): the last-resort KEM entry (id, ek, sig) or None, and the
        # one-time KEM entries [(id, ek, sig)] in id order
        self.version, self.last_resort = version, last_resort
        self.kem_one_time = list(kem_one_time)

    def encode(self):
        if self.version == VERSION_PQ:
            return self._encode_v2()
        out = [b"\x1b", self.ik,
               u16(len(self.one_time) + (1 if self.signed is not None else 0))]
        if self.signed is not None:
            spk_id, spk_pub, spk_sig = self.signed
            out += [bytes([KIND_SIGNED]), u32(spk_id), spk_pub, spk_sig]
        for opk_id, opk_pub in self.one_time:
            out += [bytes([KIND_ONE_TIME]), u32(opk_id), opk_pub]
        return b"".join(out)

    def _encode_v2(self):
        """§3.6 0x2B, entries in kind order."""
        x25519_entries = []
        if self.signed is not None:
            spk_id, spk_pub, spk_sig = self.signed
            x25519_entries.append(bytes([KIND_SIGNED]) + u32(spk_id) + spk_pub + spk_sig)
        x25519_entries += [bytes([KIND_ONE_TIME]) + u32(i) + k for i, k in self.one_time]
        kem_entries = []
        kem = ([(KIND_LAST_RESORT_KEM,) + self.last_resort] if self.last_resort else []) + \
            [(KIND_ONE_TIME_KEM,) + e for e in self.kem_one_time]
        for kind, i, ek, sig in kem:
            kem_entries.append(bytes([kind]) + u32(i) + u16(len(ek)) + ek + sig)
        entries = x25519_entries + kem_entries
        if mutated(PUBLISH_PQ_KIND_ORDER):
            entries = kem_entries + x25519_entries
        return b"".join([first_byte(VERSION_PQ, T_UPLOAD), self.ik, u16(len(entries))] + entries)


def decode_upload(data):
    """§3.6: an upload, 0x1B or 0x2B (§6.1: "for an upload 0x1B and 0x2B")."""
    r = Reader(data)
    version = read_first_byte(r, T_UPLOAD) >> 4
    if version == VERSION_PQ:
        return _decode_upload_v2(r)
    return _decode_upload_v1(r)


def _decode_upload_v1(r):
    """§3.6: 0x1B | IK.pub | u16 count (<= 1001) | entries; fields read in order (§6.1),
    IK.pub accepted per §3.1 when read; the order rules and unknown kinds are decode, and so
    are trailing bytes."""
    ik = accept_public_key(r.take(32), UPLOAD_IK_UNCHECKED)
    count = r.u16()
    if count > MAX_UPLOAD_PREKEYS and not mutated(UPLOAD_COUNT_UNBOUNDED):
        raise ProtocolError("decode", f"{count} upload entries")
    if count == MAX_UPLOAD_PREKEYS and mutated(UPLOAD_COUNT_AT_BOUND):
        raise ProtocolError("decode", "upload at the bound (mutation)")
    signed, one_time = None, []
    for index in range(count):
        kind = r.u8()
        if kind == KIND_SIGNED:
            if index != 0 and not mutated(UPLOAD_SIGNED_ANYWHERE):
                raise ProtocolError("decode", "a signed entry that is not the first")
            signed = (r.u32(), r.take(32), r.take(64))
            continue
        if kind in (KIND_LAST_RESORT_KEM, KIND_ONE_TIME_KEM) and mutated(PQ_KIND_IN_V1):
            r.u32(), read_kem_key(r), r.take(64)
            continue
        if kind != KIND_ONE_TIME and not mutated(UPLOAD_UNKNOWN_KIND):
            raise ProtocolError("decode", f"upload entry kind {kind:#04x}")
        opk_id, opk_pub = r.u32(), r.take(32)
        if one_time:
            last = one_time[-1][0]
            if opk_id < last and not mutated(UPLOAD_OPK_DECREASING):
                raise ProtocolError("decode", "one-time ids not increasing")
            if opk_id == last and not mutated(UPLOAD_OPK_REPEATED):
                raise ProtocolError("decode", "a one-time id twice")
        if signed is not None and opk_id == signed[0] and not mutated(UPLOAD_OPK_IS_SIGNED):
            raise ProtocolError("decode", "a one-time id equal to the signed prekey's")
        one_time.append((opk_id, opk_pub))
    end(r, UPLOAD_TRAILING)
    return Upload(ik, signed, one_time)


def _decode_upload_v2(r):
    """§3.6 version-2 uploads (0x2B): kinds 0x01-0x04. The kind rules are checked as each
    kind byte is read, before the entry's fields (a kind other than the four, a kind below
    the previous entry's, a second 0x01 or 0x03: decode); each ek is checked as in a bundle
    when read (length, then acceptable); the id and per-kind count rules come after the
    whole upload has been read and trailing bytes checked."""
    ik = accept_public_key(r.take(32), UPLOAD_IK_UNCHECKED)
    count = r.u16()
    if count > MAX_UPLOAD_PREKEYS_PQ and not mutated(PQ_COUNT_UNBOUNDED):
        raise ProtocolError("decode", f"{count} upload entries")
    if count == MAX_UPLOAD_PREKEYS_PQ and mutated(PQ_COUNT_AT_BOUND):
        raise ProtocolError("decode", "upload at the bound (mutation)")
    kinds_late = mutated(PQ_KIND_RULES_LATE)
    kinds_after_fields = mutated(PQ_KIND_RULES_AFTER_FIELDS)
    entries = []   # (kind, id, public key or ek, signature or None)
    for _ in range(count):
        kind = r.u8()
        if kind not in (KIND_SIGNED, KIND_ONE_TIME, KIND_LAST_RESORT_KEM, KIND_ONE_TIME_KEM):
            raise ProtocolError("decode", f"upload entry kind {kind:#04x}")
        kinds = [e[0] for e in entries]
        if not kinds_late and not kinds_after_fields:
            _check_v2_kind(kinds, kind)
        if kind == KIND_SIGNED:
            entries.append((kind, r.u32(), r.take(32), r.take(64)))
        elif kind == KIND_ONE_TIME:
            entries.append((kind, r.u32(), r.take(32), None))
        else:
            kem_id = r.u32()
            entries.append((kind, kem_id, read_kem_key(r), r.take(64)))
        if kinds_after_fields:
            _check_v2_kind(kinds, kind)
        if mutated(PQ_RULES_EAGER):
            _check_v2_id_rules(entries)
    end(r, UPLOAD_TRAILING)
    if kinds_late:
        for n, e in enumerate(entries):
            _check_v2_kind([x[0] for x in entries[:n]], e[0])
    _check_v2_id_rules(entries)
    u = Upload(ik, None, [])
    u.version = VERSION_PQ
    for kind, i, key, sig in entries:
        if kind == KIND_SIGNED:
            u.signed = (i, key, sig)
        elif kind == KIND_ONE_TIME:
            u.one_time.append((i, key))
        elif kind == KIND_LAST_RESORT_KEM:
            u.last_resort = (i, key, sig)
        else:
            u.kem_one_time.append((i, key, sig))
    return u


def _check_v2_kind(previous_kinds, kind):
    """§3.6, checked as the kind byte is read: non-decreasing kind order; kinds 0x01 and
    0x03 at most once. Each broken rule is decode. (A second 0x01 or 0x03 after another
    kind breaks the order as well; either way it is decode.)"""
    if previous_kinds and kind < previous_kinds[-1] and not mutated(PQ_KIND_ORDER):
        raise ProtocolError("decode", "upload kinds out of order")
    if kind == KIND_SIGNED and KIND_SIGNED in previous_kinds and not mutated(PQ_SIGNED_TWICE):
        raise ProtocolError("decode", "two signed prekeys")
    if kind == KIND_LAST_RESORT_KEM and KIND_LAST_RESORT_KEM in previous_kinds \
            and not mutated(PQ_LAST_RESORT_TWICE):
        raise ProtocolError("decode", "two last-resort KEM prekeys")


def _check_v2_id_rules(entries):
    """§3.6, checked after the whole upload and its trailing bytes: the ids of kind 0x02 and
    of kind 0x04 strictly increasing; no id twice; at most 1000 of kind 0x02 and 100 of
    kind 0x04. Each broken rule is decode."""
    kinds = [e[0] for e in entries]
    for kind, switch_name in ((KIND_ONE_TIME, PQ_OT_IDS), (KIND_ONE_TIME_KEM, PQ_OT_KEM_IDS)):
        ids = [e[1] for e in entries if e[0] == kind]
        if any(a >= b for a, b in zip(ids, ids[1:])) and not mutated(switch_name):
            raise ProtocolError("decode", f"kind {kind:#04x} ids not strictly increasing")
    ids = [e[1] for e in entries]
    if len(set(ids)) != len(ids) and not mutated(PQ_IDS_DISTINCT):
        raise ProtocolError("decode", "two entries with one id")
    if kinds.count(KIND_ONE_TIME) > MAX_UPLOAD_ONE_TIME_PQ and not mutated(PQ_OT_BOUND):
        raise ProtocolError("decode", "more than 1000 one-time prekeys")
    if kinds.count(KIND_ONE_TIME_KEM) > MAX_ONE_TIME_KEM_PREKEYS \
            and not mutated(PQ_OT_KEM_BOUND):
        raise ProtocolError("decode", "more than 100 one-time KEM prekeys")
    if kinds.count(KIND_ONE_TIME) == MAX_UPLOAD_ONE_TIME_PQ and mutated(PQ_OT_AT_BOUND):
        raise ProtocolError("decode", "1000 one-time prekeys (mutation)")
    if kinds.count(KIND_ONE_TIME_KEM) == MAX_ONE_TIME_KEM_PREKEYS \
            and mutated(PQ_OT_KEM_AT_BOUND):
        raise ProtocolError("decode", "100 one-time KEM prekeys (mutation)")


def verify_upload(upload):
    """§3.6: the server verifies the signed entry (§3.2) before storing it, and in a 0x2B
    upload every signed entry (kinds 0x01, 0x03, 0x04: §3.2, §4.8)."""
    if upload.signed is not None:
        spk_id, spk_pub, spk_sig = upload.signed
        if not verify(upload.ik, SIGNED_PREKEY_CONTEXT + u32(spk_id) + spk_pub, spk_sig) \
                and not mutated(UPLOAD_SIG_UNCHECKED):
            raise ProtocolError("bad-signature", "signed prekey entry of an upload")
    kem = ([upload.last_resort] if upload.last_resort else []) + upload.kem_one_time
    for n, (kem_id, ek, sig) in enumerate(kem):
        if mutated(PQ_KEM_SIG_UNCHECKED) or \
                (n == 0 and upload.last_resort and mutated(PQ_LAST_RESORT_SIG_UNCHECKED)):
            continue
        if not verify(upload.ik, kem_prekey_context() + u32(kem_id) + ek, sig):
            raise ProtocolError("bad-signature", "KEM prekey entry of an upload")


def assemble_bundle(upload, opk_id):
    """§3.6 server rule 2: a bundle (§6.4) from the identity key, the latest signed prekey
    and at most one one-time prekey (`opk_id`, or None for none)."""
    if upload.signed is None:
        raise ProtocolError("state-mismatch", "no signed prekey uploaded")
    spk_id, spk_pub, spk_sig = upload.signed
    opk_pub = None
    if opk_id is not None:
        held = dict(upload.one_time)
        if opk_id not in held:
            raise ProtocolError("unknown-prekey", f"one-time prekey {opk_id} not uploaded")
        opk_pub = held[opk_id]
    return Bundle(upload.ik, spk_id, spk_pub, spk_sig, opk_id, opk_pub).encode()


# ----- what an account publishes (§3.6, §11.5) ---------------------------------------------

def to_publish(account):
    """§3.6: the upload of exactly the current signed prekey if its id is at or above the
    published mark, and the one-time prekeys with ids at or above it."""
    mark = account.published_below
    spk_id, spk_priv = account.signed[0 if mutated(PUBLISH_OLDEST_SIGNED) else -1]
    signed = None
    if spk_id >= mark or mutated(PUBLISH_SIGNED_ALWAYS):
        spk_pub = pub(spk_priv)
        signed = (spk_id, spk_pub, signed_prekey_signature(account.seed, spk_id, spk_pub))
    one_time = [(i, pub(k)) for i, k in account.one_time
                if i >= mark or mutated(PUBLISH_ALL_ONE_TIME)]
    if not account.pq:
        return Upload(account.identity.pub, signed, one_time).encode()
    # §3.6 version-2 uploads: the same mark for the KEM prekeys: the current last-resort KEM
    # prekey and the one-time KEM prekeys with ids at or above it.
    def kem_entry(kem_id, seed):
        ek = kem_public(seed)
        return (kem_id, ek, kem_prekey_signature(account.seed, kem_id, ek))

    lr_id, lr_seed, _ = account.last_resort[-1]
    last_resort = kem_entry(lr_id, lr_seed) if lr_id >= mark else None
    kem_one_time = [kem_entry(i, k) for i, k in account.kem_one_time if i >= mark]
    return Upload(account.identity.pub, signed, one_time, VERSION_PQ, last_resort,
                  kem_one_time).encode()


def upload_prekey_ids(upload):
    """The prekey ids an upload (§3.6) carries: its signed entry's and its one-time
    entries'."""
    ids = [i for i, _ in upload.one_time] + [e[0] for e in upload.kem_one_time]
    if upload.last_resort is not None:
        ids.append(upload.last_resort[0])
    if upload.signed is not None and not mutated(MARK_ONE_TIME_ONLY):
        ids.append(upload.signed[0])
    return ids


def mark_published(account, upload):
    """§3.6: after the server stored `upload` (decoded), the mark becomes one more than the
    highest prekey id in that upload, if that is larger (it never moves back); an upload
    without entries moves nothing. Keys made after the upload was built stay unpublished."""
    a = account.copy()
    if mutated(MARK_NOT_ADVANCED):
        return a
    if mutated(MARK_TO_NEXT_ID):
        a.published_below = a.next_id
        return a
    ids = upload_prekey_ids(upload)
    if not ids and mutated(MARK_EMPTY_MOVES):
        a.published_below = max(a.published_below, a.next_id)
    if ids:
        past = max(ids) + 1
        if past > a.published_below or mutated(MARK_MAY_DECREASE):
            a.published_below = past
    return a


def _take_id(a, kind):
    """§11.5: the id the account's next new prekey gets, from one shared counter."""
    if mutated(SEPARATE_COUNTERS):
        own = [i for i, _ in (a.signed if kind == "signed" else a.one_time)]
        new_id = max(own) + 1 if own else a.next_id
        a.next_id = max(a.next_id, new_id + 1)
        return new_id
    new_id = a.next_id
    a.next_id += 1
    return new_id


def generate_one_time_prekeys(account, count, rng):
    """README `generateOneTimePreKeys`: `count` new one-time prekeys, each taking the next
    prekey id and drawing its private key (§8: OPK.priv, 32 bytes). §9: generating stops at
    MAX_ONE_TIME_PREKEYS held (fewer are made)."""
    a = account.copy()
    room = max(0, MAX_ONE_TIME_PREKEYS - len(a.one_time))
    for _ in range(count if mutated(GENERATE_PAST_BOUND) else min(count, room)):
        opk_id = _take_id(a, "one-time")
        a.one_time = a.one_time + [(opk_id, rng.draw(32))]
    return a


def rotate_signed_prekey(account, rng):
    """§3.6 Rotation: a new signed prekey with the next prekey id (§8: SPK.priv); the
    account keeps it and its predecessor (MAX_SIGNED_PREKEYS = 2), the oldest of more is
    deleted."""
    a = account.copy()
    if a.pq and mutated(ROTATE_PQ_ORDER):
        _rotate_last_resort(a, rng)
    spk_id = _take_id(a, "signed")
    a.signed = a.signed + [(spk_id, rng.draw(32))]
    if mutated(ROTATE_DROPS_PREDECESSOR):
        a.signed = a.signed[-1:]
    while len(a.signed) > 2 and not mutated(ROTATE_UNBOUNDED):
        a.signed = a.signed[1:]
    if a.pq and not mutated(ROTATE_PQ_ORDER) and not mutated(ROTATE_PQ_KEM_KEPT):
        _rotate_last_resort(a, rng)
    return a


def _rotate_last_resort(a, rng):
    """§3.6 Rotating with KEM prekeys: a new last-resort KEM prekey with the next id (§8:
    its seed, 64 bytes), no used base keys; the oldest of more than
    MAX_LAST_RESORT_KEM_PREKEYS is deleted."""
    kem_id = a.next_id
    a.next_id += 1
    a.last_resort = a.last_resort + [(kem_id, rng.draw(64), [])]
    while len(a.last_resort) > MAX_LAST_RESORT_KEM_PREKEYS and not mutated(ROTATE_PQ_UNBOUNDED):
        a.last_resort = a.last_resort[1:]


def retire_previous_signed_prekey(account):
    """§3.6 Rotation: the grace period ends; every signed prekey but the newest is deleted."""
    a = account.copy()
    if not mutated(RETIRE_KEEPS):
        a.signed = a.signed[-1:]
    if a.pq and not mutated(RETIRE_PQ_KEEPS):   # §3.6: ending the grace period retires both
        a.last_resort = a.last_resort[-1:]
    return a
