"""SPEC §3.6: publishing prekeys. The prekey upload (0x1B) as a server decodes and verifies
it, the bundles (§6.4) a server assembles from it, and what an account (§11.5) uploads by its
"published below" mark.

The account operations work on a copy and return it (all-or-nothing, §10); the account
object is persistence.Account (§11.5), used here by its fields only."""

from .errors import ProtocolError
from .keys import accept_public_key, signed_prekey_signature
from .mutation import mutated, switch
from .persistence import MAX_ACCOUNT_ONE_TIME_PREKEYS as MAX_ONE_TIME_PREKEYS  # §9, §11.5
from .primitives import Reader, SIGNED_PREKEY_CONTEXT, pub, u16, u32, verify
from .wire import T_UPLOAD, Bundle, end, read_first_byte

MAX_UPLOAD_PREKEYS = 1001   # §3.6 / §9: entries of a prekey upload, past it decode
KIND_SIGNED, KIND_ONE_TIME = 0x01, 0x02

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

    __slots__ = ("ik", "signed", "one_time")

    def __init__(self, ik, signed, one_time):
        self.ik, self.signed, self.one_time = ik, signed, one_time

    def encode(self):
        out = [b"\x1b", self.ik,
               u16(len(self.one_time) + (1 if self.signed is not None else 0))]
        if self.signed is not None:
            spk_id, spk_pub, spk_sig = self.signed
            out += [bytes([KIND_SIGNED]), u32(spk_id), spk_pub, spk_sig]
        for opk_id, opk_pub in self.one_time:
            out += [bytes([KIND_ONE_TIME]), u32(opk_id), opk_pub]
        return b"".join(out)


def decode_upload(data):
    """§3.6: 0x1B | IK.pub | u16 count (<= 1001) | entries; fields read in order (§6.1),
    IK.pub accepted per §3.1 when read; the order rules and unknown kinds are decode, and so
    are trailing bytes."""
    r = Reader(data)
    read_first_byte(r, T_UPLOAD)
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


def verify_upload(upload):
    """§3.6: the server verifies the signed entry (§3.2) before storing it."""
    if upload.signed is None:
        return
    spk_id, spk_pub, spk_sig = upload.signed
    if not verify(upload.ik, SIGNED_PREKEY_CONTEXT + u32(spk_id) + spk_pub, spk_sig) \
            and not mutated(UPLOAD_SIG_UNCHECKED):
        raise ProtocolError("bad-signature", "signed prekey entry of an upload")


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
    return Upload(account.identity.pub, signed, one_time).encode()


def upload_prekey_ids(upload):
    """The prekey ids an upload (§3.6) carries: its signed entry's and its one-time
    entries'."""
    ids = [i for i, _ in upload.one_time]
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
    spk_id = _take_id(a, "signed")
    a.signed = a.signed + [(spk_id, rng.draw(32))]
    if mutated(ROTATE_DROPS_PREDECESSOR):
        a.signed = a.signed[-1:]
    while len(a.signed) > 2 and not mutated(ROTATE_UNBOUNDED):
        a.signed = a.signed[1:]
    return a


def retire_previous_signed_prekey(account):
    """§3.6 Rotation: the grace period ends; every signed prekey but the newest is deleted."""
    a = account.copy()
    if not mutated(RETIRE_KEEPS):
        a.signed = a.signed[-1:]
    return a
