"""SPEC §4.6 (addresses and the binding) and §4.7 (session records: every session between one
local device address and one remote device address, which session a message belongs to,
which one is sent on).

A record works on copies: every operation returns a new record (and, for a prekey message
that creates a session, a new prekey store) or raises, leaving its inputs unchanged (§4.7:
"Every rule here is all-or-nothing"). Sessions are the ratchet's immutable-by-convention
Session objects (§5: every ratchet step returns a new one)."""

from .errors import ProtocolError
from .keys import MAX_USER_ID_LEN
from .mutation import mutated, switch
from .primitives import len8, u32
from .ratchet import decrypt, decrypt_session_message
from .ratchet import encrypt as ratchet_encrypt
from .wire import VERSION_PQ, PrekeyMessage, decode_bundle, decode_session_message
from .pqxdh import check_downgrade, initiate_any
from .x3dh import respond

MAX_ARCHIVED_SESSIONS = 5    # §4.7 / §9: oldest forgotten, its id retired
MAX_RETIRED_SESSIONS = 40    # §4.7 / §9: oldest dropped

# =========================================================================================
# §4.6 Addresses and the binding
# =========================================================================================

BINDING_RESPONDER_FIRST = switch(
    "binding-responder-first", "§4.6",
    "binding = len8(user_A) || u32(device_A) || len8(user_B) || u32(device_B), the "
    "initiator's address A first (mutated: the responder's first)")
ADDRESS_WITHOUT_LENGTH = switch(
    "address-user-id-without-length", "§4.6",
    "an address is len8(user id) || u32(device id) (mutated: the user id without its length)")
ADDRESS_AT_BOUND = switch(
    "address-user-id-at-bound-rejected", "§4.6, §9",
    "'At' the bound succeeds: a user id of MAX_USER_ID_LEN (255) bytes is valid (mutated: "
    "decode)")


class Address(tuple):
    """§4.6: (user id, device id). Ordered as §7.7 says: user id bytewise, shorter first
    when one is a prefix of the other (Python's bytes order), then device id."""

    __slots__ = ()

    def __new__(cls, user, device):
        if len(user) > MAX_USER_ID_LEN:
            raise ProtocolError("decode", f"user id of {len(user)} bytes")
        if len(user) == MAX_USER_ID_LEN and mutated(ADDRESS_AT_BOUND):
            raise ProtocolError("decode", "user id at the bound (mutation)")
        if not 0 <= device <= 0xFFFFFFFF:
            raise ProtocolError("decode", "device id out of range")
        return super().__new__(cls, (bytes(user), device))

    @property
    def user(self):
        return self[0]

    @property
    def device(self):
        return self[1]

    def encode(self):
        """§4.6: len8(user id) || u32(device id)."""
        if mutated(ADDRESS_WITHOUT_LENGTH):
            return self.user + u32(self.device)
        return len8(self.user) + u32(self.device)


def read_address(r):
    """§4.6 as it appears inside other encodings (§6.7, §11.6, §11.7): len8 user id, u32."""
    n = r.u8()
    user = r.take(n)
    return Address(user, r.u32())


def binding(initiator, responder):
    """§4.6: the binding of a session between the initiator's address and the responder's
    (at most 520 bytes, so §4.1's bound never refuses it)."""
    if mutated(BINDING_RESPONDER_FIRST):
        initiator, responder = responder, initiator
    return initiator.encode() + responder.encode()


# =========================================================================================
# §4.7 Session records
# =========================================================================================

BUNDLE_IDENTITY_UNCHECKED = switch(
    "record-bundle-identity-unchecked", "§4.7 Initiating",
    "the record refuses a bundle whose IK_B.pub is not IK_R with state-mismatch (mutated: "
    "not compared)")
BUNDLE_IDENTITY_AFTER_SIGNATURE = switch(
    "record-bundle-identity-after-signature", "§4.7 Initiating, §8",
    "the bundle's identity is compared with IK_R before the signature check, so before "
    "anything of §4.2 and before EK_A is drawn (mutated: after §4.2)")
INITIATOR_BINDING_REMOTE_FIRST = switch(
    "record-initiator-binding-remote-first", "§4.7 Initiating, §4.6",
    "the initiating record derives the binding with its local address first (mutated: the "
    "remote address first)")
RESPONDER_BINDING_LOCAL_FIRST = switch(
    "record-responder-binding-local-first", "§4.7 step 4, §4.6",
    "the responding record derives the binding with the remote address first: the remote "
    "device is the initiator (mutated: the local address first)")
ENCRYPT_NO_CURRENT = switch(
    "record-encrypt-without-current-category", "§4.7 Encrypting",
    "a record without a current session refuses to encrypt with state-mismatch (mutated: "
    "decode, as for a missing field)")
ARCHIVE_AT_BACK = switch(
    "record-archive-at-back", "§4.7 Archiving",
    "archiving puts a session at the front of the archive, which is newest first (mutated: "
    "at the back)")
ARCHIVE_UNBOUNDED = switch(
    "record-archive-unbounded", "§4.7 Archiving, §9",
    "while the archive holds more than MAX_ARCHIVED_SESSIONS (5), its oldest is forgotten "
    "(mutated: none forgotten)")
ARCHIVE_AT_BOUND = switch(
    "record-archive-at-bound-forgets", "§4.7 Archiving, §9",
    "'At' the bound succeeds: the archive holds 5 sessions (mutated: 4)")
ARCHIVE_EVICT_NEWEST = switch(
    "record-archive-evicts-newest", "§4.7 Archiving",
    "the archive's oldest session is the one forgotten (mutated: the newest other one)")
FORGOTTEN_NOT_RETIRED = switch(
    "record-forgotten-not-retired", "§4.7 Archiving",
    "a session forgotten from the archive has its id appended to the retired ids (mutated: "
    "not retired)")
RETIRED_UNBOUNDED = switch(
    "record-retired-unbounded", "§4.7 Archiving, §9",
    "while there are more than MAX_RETIRED_SESSIONS (40) retired ids, the oldest is dropped "
    "(mutated: none dropped)")
RETIRED_DROP_NEWEST = switch(
    "record-retired-drops-newest", "§4.7 Archiving",
    "the oldest retired id is the one dropped (mutated: the newest earlier one)")
PREKEY_ONLY_CURRENT = switch(
    "record-prekey-routes-to-current-only", "§4.7 prekey step 1, §4.5 rule 1",
    "a prekey message whose EK_A is the id of any held session (current or archived) goes "
    "to that session (mutated: only the current session's id is looked at)")
DOWNGRADE_BEFORE_ROUTING = switch(
    "record-downgrade-before-routing", "§4.8 Requiring PQXDH, §4.7 prekey step 1, §4.5",
    "a requiring responder refuses only version-1 prekey messages that would create a "
    "session: one of a held session goes to it first (mutated: downgrade before routing)")
PREKEY_PROMOTES = switch(
    "record-prekey-message-promotes", "§4.7 prekey step 1",
    "a prekey message delivered to a held session leaves the record's current and archived "
    "sessions as they are; prekey messages never promote (mutated: rule 2 applies)")
RETIRED_IGNORED = switch(
    "record-retired-ids-ignored", "§4.7 prekey step 2",
    "a prekey message whose EK_A is a retired id is duplicate (mutated: retired ids are not "
    "consulted, and §4.4 creates a new session)")
RETIRED_AFTER_IDENTITY = switch(
    "record-retired-after-identity", "§4.7 prekey steps 2-3",
    "the retired-id check (step 2) precedes the identity check (step 3) (mutated: after it)")
PREKEY_IDENTITY_UNCHECKED = switch(
    "record-prekey-identity-unchecked", "§4.7 prekey step 3",
    "a new prekey message whose IK_A.pub is not IK_R is state-mismatch (mutated: not "
    "compared; §4.4 runs)")
LOCAL_IDENTITY_UNCHECKED = switch(
    "record-prekey-local-identity-unchecked", "§4.7 prekey step 4",
    "a new prekey message to a record whose sessions belong to another local identity than "
    "the prekey store's is state-mismatch: a record holds one local identity (mutated: not "
    "compared; §4.4 runs)")
LOCAL_IDENTITY_FIRST = switch(
    "record-prekey-local-identity-first", "§4.7 prekey steps 1-4",
    "the local-identity check is step 4, after the held-session, retired-id and IK_R steps "
    "(mutated: before step 1)")
INITIATE_LOCAL_IDENTITY_UNCHECKED = switch(
    "record-initiate-local-identity-unchecked", "§4.7 Initiating, prekey step 4",
    "a record whose sessions belong to another local identity than the initiating one "
    "refuses to initiate with state-mismatch (mutated: not compared; §4.2 runs)")
INITIATE_LOCAL_IDENTITY_AFTER_DRAW = switch(
    "record-initiate-local-identity-after-x3dh", "§4.7 Initiating, §8",
    "the initiator's identity is compared with the record's local identity before the "
    "signature check and before anything is drawn (mutated: after §4.2, so EK_A and DHs are "
    "drawn first)")
INITIATE_DOWNGRADE_UNCHECKED = switch(
    "record-initiate-downgrade-unchecked", "§4.7 Initiating, §4.8 Requiring PQXDH",
    "a record holding a version-2 session (current or archived) refuses a version-1 bundle "
    "with downgrade (mutated: not refused; §4.2 runs)")
INITIATE_DOWNGRADE_BEFORE_IDENTITY = switch(
    "record-initiate-downgrade-before-identity", "§4.7 Initiating",
    "the version-1 bundle is refused after the identity checks (state-mismatch first) "
    "(mutated: downgrade before them)")
INITIATE_DOWNGRADE_AFTER_DRAW = switch(
    "record-initiate-downgrade-after-x3dh", "§4.7 Initiating, §8",
    "the version-1 bundle is refused before the signature check and before anything is "
    "drawn (mutated: after §4.2, so EK_A is drawn first)")
PREKEY_DOWNGRADE_UNCHECKED = switch(
    "record-prekey-downgrade-unchecked", "§4.7 prekey step 4, §4.8 Requiring PQXDH",
    "a version-1 prekey message that would create a session is downgrade at a record that "
    "holds a version-2 session, whatever the prekey store requires (mutated: not refused; "
    "§4.4 runs)")
PREKEY_DOWNGRADE_BEFORE_IDENTITY = switch(
    "record-prekey-downgrade-before-identity", "§4.7 prekey steps 3-4",
    "the record's downgrade check follows the IK_R and local-identity checks (mutated: "
    "before the IK_R check of step 3)")
STORE_DOWNGRADE_BEFORE_IDENTITY = switch(
    "record-store-downgrade-before-identity", "§4.7 prekey steps 3-5, §4.8 Requiring PQXDH",
    "a requiring prekey store's downgrade (§4.8, in §4.4 of step 5) comes after the record's "
    "IK_R check: a version-1 first message of another identity is state-mismatch (mutated: "
    "the store's downgrade before the IK_R check)")
DOWNGRADE_CURRENT_ONLY = switch(
    "record-downgrade-current-session-only", "§4.7 Initiating, prekey step 4",
    "a record refuses version-1 bundles and first messages while it holds a version-2 "
    "session, current or archived (mutated: only the current session is looked at)")
RULE1_KEEPS_OWN_PENDING = switch(
    "rule1-keeps-own-pending-session", "§4.7 rule 1",
    "a new session from a prekey message always becomes current (mutated: the rule before "
    "the security review: while the current session is an initiator's that has not yet "
    "decrypted a message, the one with the smaller id is current, the other archived)")
RULE1_NEW_ARCHIVED = switch(
    "rule1-new-session-archived", "§4.7 rule 1",
    "the new session becomes current and the previous current session is archived "
    "(mutated: when there is a current session, it stays current and the new one is "
    "archived)")
RULE1_CURRENT_DROPPED = switch(
    "rule1-previous-current-dropped", "§4.7 rule 1",
    "the previous current session is archived (mutated: it is dropped, neither archived nor "
    "retired)")
KNOWN_NOT_EXCLUSIVE = switch(
    "record-known-key-not-exclusive", "§4.7 normal step 1",
    "a normal message whose ratchet key a session knows goes to the first such session only "
    "(mutated: no knowledge step: every message is tried in trial order until one succeeds)")
KNOWN_ONLY_OPEN = switch(
    "record-known-key-open-chain-only", "§4.7 normal step 1",
    "a session knows DHr' if it is the key of its open chain, of a closed chain, or of a "
    "stored skipped key (mutated: only the open chain's key counts)")
ERROR_OF_LAST = switch(
    "record-error-of-last-session", "§4.7 normal step 2",
    "when no session decrypts a new ratchet key, the error is that of the first session "
    "tried (mutated: of the last)")
EMPTY_RECORD_CATEGORY = switch(
    "record-empty-normal-message-category", "§4.7 normal step 2",
    "a normal message to a record with no session at all is state-mismatch (mutated: "
    "authentication)")
RULE2_NEVER = switch(
    "rule2-never-promotes", "§4.7 rule 2",
    "an archived session of the other side with the smaller id that decrypts a normal "
    "message becomes current (mutated: never)")
RULE2_SAME_SIDE = switch(
    "rule2-same-side-promotes", "§4.7 rule 2",
    "rule 2 promotes only between sessions created on different sides (mutated: any side)")
RULE2_LARGER = switch(
    "rule2-larger-id-promotes", "§4.7 rule 2",
    "rule 2 promotes only the session with the smaller id (mutated: whatever its id)")
RULE2_C_AT_BACK = switch(
    "rule2-demoted-at-back", "§4.7 rule 2",
    "the demoted current session is archived at the front (mutated: at the back)")


class SessionRecord:
    """§4.7: local and remote address, IK_R, at most one current session, up to 5 archived
    (newest first) and up to 40 retired ids (oldest first)."""

    __slots__ = ("local", "remote", "ik_r", "current", "archived", "retired")

    def __init__(self, local, remote, ik_r, current=None, archived=(), retired=()):
        self.local, self.remote, self.ik_r = local, remote, ik_r
        self.current = current
        self.archived = list(archived)
        self.retired = list(retired)

    def copy(self):
        return SessionRecord(self.local, self.remote, self.ik_r, self.current,
                             self.archived, self.retired)

    def sessions(self):
        """The trial order: the current session, then the archived ones, newest first."""
        return ([self.current] if self.current is not None else []) + self.archived

    def _set(self, index, session):
        if index == 0 and self.current is not None:
            self.current = session
        else:
            self.archived[index - (1 if self.current is not None else 0)] = session

    # ----- Archiving -----------------------------------------------------------------

    def archive(self, session):
        """§4.7 Archiving: to the front; past 5, the oldest is forgotten and retired; past
        40 retired ids, the oldest is dropped."""
        if mutated(ARCHIVE_AT_BACK):
            self.archived.append(session)
        else:
            self.archived.insert(0, session)
        bound = MAX_ARCHIVED_SESSIONS - (1 if mutated(ARCHIVE_AT_BOUND) else 0)
        while len(self.archived) > bound and not mutated(ARCHIVE_UNBOUNDED):
            gone = self.archived.pop(-2 if mutated(ARCHIVE_EVICT_NEWEST) else -1)
            if not mutated(FORGOTTEN_NOT_RETIRED):
                self.retired.append(gone.session_id)
        while len(self.retired) > MAX_RETIRED_SESSIONS and not mutated(RETIRED_UNBOUNDED):
            del self.retired[-2 if mutated(RETIRED_DROP_NEWEST) else 0]

    # ----- Initiating and encrypting -------------------------------------------------

    def initiate(self, identity, bundle_bytes, rng):
        """§4.7 Initiating: refuse a bundle of another identity than IK_R, then an initiator
        identity other than the record's sessions' local identity (both state-mismatch; the
        order of the two cannot be observed: same category, no cause), then a version-1
        bundle while the record holds a version-2 session (downgrade), all before the
        signature check and before anything is drawn; else §4.2 (§4.8 for a version-2
        bundle) with the binding of §4.6, local address first. The new session becomes
        current, the previous current one is archived."""
        bundle = decode_bundle(bundle_bytes)
        if mutated(BUNDLE_IDENTITY_AFTER_SIGNATURE):
            s, _ = initiate_any(identity, bundle_bytes, self._initiator_binding(), rng)
        if mutated(INITIATE_DOWNGRADE_BEFORE_IDENTITY):
            self._check_downgrade(bundle.version, "bundle")
        if bundle.ik != self.ik_r and not mutated(BUNDLE_IDENTITY_UNCHECKED):
            raise ProtocolError("state-mismatch", "a bundle of another identity than IK_R")
        if not mutated(INITIATE_LOCAL_IDENTITY_UNCHECKED) \
                and not mutated(INITIATE_LOCAL_IDENTITY_AFTER_DRAW):
            self._check_local_identity(identity.pub)
        if not mutated(INITIATE_DOWNGRADE_UNCHECKED) \
                and not mutated(INITIATE_DOWNGRADE_BEFORE_IDENTITY) \
                and not mutated(INITIATE_DOWNGRADE_AFTER_DRAW):
            self._check_downgrade(bundle.version, "bundle")
        if not mutated(BUNDLE_IDENTITY_AFTER_SIGNATURE):
            s, _ = initiate_any(identity, bundle_bytes, self._initiator_binding(), rng)
        if mutated(INITIATE_LOCAL_IDENTITY_AFTER_DRAW):
            self._check_local_identity(identity.pub)
        if mutated(INITIATE_DOWNGRADE_AFTER_DRAW):
            self._check_downgrade(bundle.version, "bundle")
        new = self.copy()
        if new.current is not None:
            new.archive(new.current)
        new.current = s
        return new

    def _initiator_binding(self):
        if mutated(INITIATOR_BINDING_REMOTE_FIRST):
            return binding(self.remote, self.local)
        return binding(self.local, self.remote)

    def _responder_binding(self):
        if mutated(RESPONDER_BINDING_LOCAL_FIRST):
            return binding(self.local, self.remote)
        return binding(self.remote, self.local)

    def encrypt(self, plaintext, rng):
        """§4.7 Encrypting: the current session (§5.5); none: state-mismatch."""
        if self.current is None:
            if mutated(ENCRYPT_NO_CURRENT):
                raise ProtocolError("decode", "no current session (mutation)")
            raise ProtocolError("state-mismatch", "a record without a current session")
        s, message = ratchet_encrypt(self.current, plaintext, rng)
        new = self.copy()
        new.current = s
        return new, message

    # ----- Decrypting ----------------------------------------------------------------

    def decrypt(self, data, store):
        """§4.7 Decrypting, on the bytes of a session message (§6.1: 0x11 or 0x12), with the
        prekey store `store` (keys.PrekeyStore, the account's keys; §4.4 may delete a
        one-time prekey from it). Returns (new record, plaintext)."""
        m = decode_session_message(data)
        if isinstance(m, PrekeyMessage):
            return self._decrypt_prekey(m, data, store)
        return self._decrypt_normal(m)

    def _check_local_identity(self, local_ik):
        """§4.7 prekey step 4 (and initiating): the record's sessions belong to one local
        identity; another one is state-mismatch. (A record without sessions has none.)"""
        if any(s.local_ik != local_ik for s in self.sessions()):
            raise ProtocolError("state-mismatch",
                                "the record's sessions belong to another local identity")

    def _check_downgrade(self, version, what):
        """§4.7 Initiating and prekey step 4: a record holding a version-2 session (current
        or archived) refuses a version-1 bundle and a version-1 prekey message that would
        create a session (downgrade), whatever the prekey store requires (§4.8)."""
        held = self.sessions()
        if mutated(DOWNGRADE_CURRENT_ONLY):
            held = [self.current] if self.current is not None else []
        if version != VERSION_PQ and any(s.version == VERSION_PQ for s in held):
            raise ProtocolError("downgrade", f"a version-1 {what} to a record holding a "
                                             "version-2 session")

    def _decrypt_prekey(self, m, data, store):
        if mutated(DOWNGRADE_BEFORE_ROUTING) and m.version != VERSION_PQ:
            check_downgrade(store, m)
        if mutated(LOCAL_IDENTITY_FIRST):
            self._check_local_identity(store.identity.pub)
        sessions = self.sessions()
        # Step 1: a held session with session id EK_A (§4.5, §5.7); no placement change.
        candidates = sessions
        if mutated(PREKEY_ONLY_CURRENT):
            candidates = [self.current] if self.current is not None else []
        for index, s in enumerate(candidates):
            if s.session_id == m.ek_a:
                s2, plaintext = decrypt_session_message(s, m)
                new = self.copy()
                new._set(index, s2)
                if mutated(PREKEY_PROMOTES) and index > 0:
                    new._rule2(index, s2)
                return new, plaintext
        # Steps 2 and 3.
        retired = m.ek_a in self.retired and not mutated(RETIRED_IGNORED)
        other = m.ik_a != self.ik_r and not mutated(PREKEY_IDENTITY_UNCHECKED)
        if mutated(RETIRED_AFTER_IDENTITY) and other:
            raise ProtocolError("state-mismatch", "a prekey message from another identity")
        if retired:
            raise ProtocolError("duplicate", "a prekey message of a retired session")
        if mutated(PREKEY_DOWNGRADE_BEFORE_IDENTITY):
            self._check_downgrade(m.version, "prekey message")
        if mutated(STORE_DOWNGRADE_BEFORE_IDENTITY) and m.version != VERSION_PQ:
            check_downgrade(store, m)
        if other:
            raise ProtocolError("state-mismatch", "a prekey message from another identity")
        # Step 4: a record holds one local identity.
        if not mutated(LOCAL_IDENTITY_UNCHECKED) and not mutated(LOCAL_IDENTITY_FIRST):
            self._check_local_identity(store.identity.pub)
        # ... and a record holding a version-2 session starts no version-1 one.
        if not mutated(PREKEY_DOWNGRADE_UNCHECKED) \
                and not mutated(PREKEY_DOWNGRADE_BEFORE_IDENTITY):
            self._check_downgrade(m.version, "prekey message")
        # Step 5: §4.4 with the binding of §4.6, the remote address first.
        s, plaintext = respond(store, data, self._responder_binding())
        new = self.copy()
        new._rule1(s)
        return new, plaintext

    def _rule1(self, s):
        """§4.7 rule 1: the new session S becomes current; the previous current session, if
        any, is archived (the peer is starting over or initiating at the same moment; rule 2
        settles the latter)."""
        c = self.current
        if c is None:
            self.current = s
            return
        if mutated(RULE1_KEEPS_OWN_PENDING) and c.initiator and c.pending_prekey \
                and not s.session_id < c.session_id:
            self.archive(s)
            return
        if mutated(RULE1_NEW_ARCHIVED):
            self.archive(s)
            return
        if not mutated(RULE1_CURRENT_DROPPED):
            self.archive(c)
        self.current = s

    def _decrypt_normal(self, m):
        sessions = self.sessions()
        # Step 1: a session that knows DHr' decrypts it, and no other is tried.
        if not mutated(KNOWN_NOT_EXCLUSIVE):
            for index, s in enumerate(sessions):
                if _knows(s, m.dhr):
                    s2, plaintext = decrypt(s, m)
                    return self._after_normal(index, s2), plaintext
        # Step 2: a new ratchet key, tried in trial order until one succeeds.
        if not sessions:
            if mutated(EMPTY_RECORD_CATEGORY):
                raise ProtocolError("authentication", "no session (mutation)")
            raise ProtocolError("state-mismatch", "a record without sessions")
        errors = []
        for index, s in enumerate(sessions):
            try:
                s2, plaintext = decrypt(s, m)
            except ProtocolError as e:
                errors.append(e)
                continue
            return self._after_normal(index, s2), plaintext
        raise errors[-1] if mutated(ERROR_OF_LAST) else errors[0]

    def _after_normal(self, index, s2):
        new = self.copy()
        new._set(index, s2)
        if index > 0 and self.current is not None:
            new._rule2(index, s2)
        return new

    def _rule2(self, index, s):
        """§4.7 rule 2: the archived session S (at trial index `index`) that decrypted becomes
        current if it and C were created on different sides and S has the smaller id."""
        c = self.current
        if mutated(RULE2_NEVER):
            return
        sides = s.initiator != c.initiator or mutated(RULE2_SAME_SIDE)
        smaller = s.session_id < c.session_id or mutated(RULE2_LARGER)
        if sides and smaller:
            del self.archived[index - 1]
            self.current = s
            if mutated(RULE2_C_AT_BACK):
                self.archived.append(c)
            else:
                self.archived.insert(0, c)


def _knows(s, dhr):
    """§4.7: a session knows DHr' if it is the key of its open receiving chain or of one of
    its closed chains, or a skipped key is stored with it (§5.1)."""
    if s.open is not None and s.open[0] == dhr:
        return True
    if mutated(KNOWN_ONLY_OPEN):
        return False
    return any(d == dhr for d, _ in s.closed) or any(k[0] == dhr for k in s.skipped)
