"""SPEC §7: Sender Keys (sender key, encrypt with key commitment, decrypt, forgetting,
adding a distribution)."""

from collections import OrderedDict

from .errors import ProtocolError
from .limits import (COUNTER_MAX, MAX_GROUP_SKIP, MAX_GROUP_SKIPPED_KEYS,
                     MAX_SENDER_KEY_STATES)
from .mutation import mutated, switch
from .primitives import (GROUP_COMMITMENT_LABEL, GROUP_MESSAGE_KEY_INFO,
                         GROUP_SIGNATURE_CONTEXT, ed25519_public, hmac_sha256, len8, open_,
                         seal, sign, u32, verify)
from .ratchet import kdf_ck, message_key_expansion, next_chain_key, step_chain
from .wire import Distribution, decode_distribution, decode_group_message

DRAW_ORDER = switch(
    "sender-key-draw-order", "§7.2, §8",
    "a sender key draws chain key, signing seed, key id, in this order (mutated: key id first)")
DIST_AT_START = switch(
    "distribution-at-first-iteration", "§7.2",
    "a distribution carries the chain key at the current iteration (mutated: the key's "
    "first chain key and iteration)")
SEND_COUNTER_UNCHECKED = switch(
    "group-send-counter-unchecked", "§7.3 step 1",
    "encrypting at iteration 0xFFFFFFFF is counter-exhausted (mutated: not checked)")
SEND_NOT_ATOMIC = switch(
    "group-encrypt-changes-on-counter-exhausted", "§7.3 step 1, §10",
    "encrypting at iteration 0xFFFFFFFF fails and changes nothing (mutated: CK is stepped)")
SEND_COUNTER_AT_BOUND = switch(
    "group-send-counter-at-bound-rejected", "§9",
    "'At' the bound succeeds: iteration 0xFFFFFFFE encrypts (mutated: counter-exhausted)")
NO_COMMITMENT = switch(
    "signature-without-commitment", "§7.3 steps 2 and 5, §7.4 step 4",
    "the signature covers commitment = HMAC(MK, GROUP_COMMITMENT_LABEL) (mutated: signed "
    "and verified without the commitment, as in revision 1)")
KEYID_FALLBACK = switch(
    "group-unknown-keyid-uses-newest", "§7.4 step 1",
    "a message whose key id no state holds is state-mismatch (mutated: the newest state is "
    "used)")
KEYID_NO_CAUSE = switch(
    "group-unknown-keyid-without-cause", "§7.4 step 1, §10",
    "a message whose key id no state holds is state-mismatch with cause no-sender-key, "
    "which MUST be told apart (mutated: no cause)")
COUNTER_BEFORE_KEYID = switch(
    "group-counter-before-keyid", "§7.4 steps 1-2",
    "the key id lookup (step 1) precedes the iteration = 0xFFFFFFFF check (mutated: after)")
RECV_COUNTER_UNCHECKED = switch(
    "group-recv-counter-unchecked", "§7.4 step 2, §9",
    "a received iteration 0xFFFFFFFF is counter-exhausted (mutated: not checked)")
RECV_COUNTER_LATE = switch(
    "group-counter-after-iteration-checks", "§7.4 steps 2-3",
    "iteration 0xFFFFFFFF is refused before the duplicate and skip checks of step 3 "
    "(mutated: after them)")
NO_SKIPPED_LOOKUP = switch(
    "group-no-skipped-lookup", "§7.4 step 3",
    "j < n uses a stored skipped key for j (mutated: always duplicate)")
SKIPPED_KEPT = switch(
    "group-skipped-key-kept", "§7.4 step 6",
    "a used skipped key is deleted (mutated: kept, so a replay decrypts again)")
GAP_UNBOUNDED = switch(
    "group-gap-unbounded", "§7.4 step 3, §9",
    "j - n > MAX_GROUP_SKIP is skip-limit (mutated: not checked)")
GAP_AT_BOUND = switch(
    "group-gap-at-bound-rejected", "§9",
    "'At' the bound succeeds: j - n = MAX_GROUP_SKIP decrypts (mutated: skip-limit)")
SIGNATURE_UNCHECKED = switch(
    "group-signature-unchecked", "§7.4 step 4",
    "the group signature is verified, failure authentication (mutated: not verified)")
OPEN_BEFORE_VERIFY = switch(
    "group-open-before-verify", "§7.4 steps 4-5, §12",
    "the signature is verified before the AEAD is opened (mutated: OPEN first)",
    unpinnable=("SPEC §14: '§7.4, the order of steps 4 and 5: both fail as authentication "
                "and neither releases plaintext'"))
COMMIT_ON_FAILURE = switch(
    "group-decrypt-commits-on-failure", "§7.4, §10",
    "nothing changes before step 6 (mutated: chain and skipped keys are committed even if "
    "the signature or the AEAD fails)")
SKIPPED_UNBOUNDED = switch(
    "group-skipped-unbounded", "§7.4 step 6, §9",
    "more than MAX_GROUP_SKIPPED_KEYS skipped keys deletes the oldest (mutated: none deleted)")
SKIPPED_EVICT_NEWEST = switch(
    "group-skipped-evict-newest", "§7.4 step 6, §9",
    "the oldest group skipped key is deleted first (mutated: the newest)")
FORGET_ALL_KEYIDS = switch(
    "forget-below-all-key-ids", "§7.4 Forgetting",
    "forget below (key id, n) touches only the state with that key id (mutated: every state)")
FORGET_UNKNOWN_OK = switch(
    "forget-below-unknown-keyid-ignored", "§7.4 Forgetting",
    "forgetting for a key id no state holds is state-mismatch (mutated: a no-op)")
FORGET_UNBOUNDED = switch(
    "forget-below-unbounded", "§7.4 Forgetting, §9",
    "a chain more than MAX_GROUP_SKIP behind n is skip-limit (mutated: stepped anyway)")
FORGET_AT_BOUND = switch(
    "forget-below-at-bound-rejected", "§9",
    "'At' the bound succeeds: n - next = MAX_GROUP_SKIP forgets (mutated: skip-limit)")
FORGET_NOT_ATOMIC = switch(
    "forget-below-not-atomic", "§7.4 Forgetting, §10",
    "nothing changes on an error of forget-below (mutated: skipped keys below n are deleted "
    "before the skip bound is checked, and stay deleted)")
FORGET_KEEPS_SKIPPED = switch(
    "forget-below-keeps-skipped", "§7.4 Forgetting",
    "skipped keys below n are deleted (mutated: kept)")
FORGET_NO_STEP = switch(
    "forget-below-no-chain-step", "§7.4 Forgetting",
    "a chain whose next iteration is below n is stepped forward to n (mutated: not stepped)")
ADD_ANY_SENDER = switch(
    "add-distribution-any-sender", "§7.4 Adding a distribution, §7.2",
    "a distribution over a session whose remote identity is not IK_S is state-mismatch "
    "(mutated: accepted)")
ADD_ANY_GROUP = switch(
    "add-distribution-any-group", "§7.4 Adding a distribution",
    "a distribution for another group is state-mismatch (mutated: accepted)")
ADD_HELD_REPLACED = switch(
    "add-distribution-held-keyid-replaced", "§7.4 Adding a distribution",
    "a held key id with the same signing key is ignored, the held state kept exactly "
    "(mutated: the state is replaced by the distribution)")
ADD_HELD_OTHER_KEY = switch(
    "add-distribution-held-keyid-other-key-accepted", "§7.4 Adding a distribution",
    "a held key id with another signing key is state-mismatch (mutated: the state is "
    "replaced)")
ADD_SENDER_BEFORE_DECODE = switch(
    "add-distribution-sender-before-decode", "§7.4 Adding a distribution",
    "the distribution is decoded before the sender check (mutated: sender checked first)")
ADD_NOT_ATOMIC = switch(
    "add-distribution-not-atomic", "§7.4 Adding a distribution, §10",
    "nothing changes when adding a distribution fails (mutated: the new state is appended "
    "before the sender and group checks, and stays on their error)")
STATES_UNBOUNDED = switch(
    "sender-key-states-unbounded", "§7.4, §9",
    "more than MAX_SENDER_KEY_STATES states deletes the oldest (mutated: none deleted)")
STATES_EVICT_NEWEST = switch(
    "sender-key-states-evict-newest", "§7.4, §9",
    "the oldest sender key state is deleted (mutated: the newest earlier one)")


class GroupSender:
    """§7.2: a member's own sender key for one group (it encrypts)."""

    __slots__ = ("group_id", "ik_s", "key_id", "chain_key", "iteration", "seed",
                 "first_chain_key", "first_iteration")

    @classmethod
    def create(cls, group_id, ik_s, rng):
        g = cls()
        g.group_id, g.ik_s = group_id, ik_s
        g.draw(rng)
        return g

    def draw(self, rng):
        """§7.2 / §8: chain key (32), signing seed (32), key id (4, big-endian u32)."""
        if mutated(DRAW_ORDER):
            self.key_id = int.from_bytes(rng.draw(4), "big")
            self.chain_key = rng.draw(32)
            self.seed = rng.draw(32)
        else:
            self.chain_key = rng.draw(32)
            self.seed = rng.draw(32)
            self.key_id = int.from_bytes(rng.draw(4), "big")
        self.iteration = 0
        self.first_chain_key, self.first_iteration = self.chain_key, 0

    def copy(self):
        c = GroupSender()
        for name in GroupSender.__slots__:
            setattr(c, name, getattr(self, name, None))
        return c

    def distribution(self):
        """§6.5 at the current iteration (§7.2)."""
        ck, it = self.chain_key, self.iteration
        if mutated(DIST_AT_START) and self.first_chain_key is not None:
            ck, it = self.first_chain_key, self.first_iteration
        return Distribution(self.group_id, self.key_id, it, ck,
                            ed25519_public(self.seed)).encode()


def commitment(mk):
    """§7.3 step 2: commitment = HMAC(MK, GROUP_COMMITMENT_LABEL)."""
    return hmac_sha256(mk, GROUP_COMMITMENT_LABEL)


def signature_input(gid, ik_s, mk, body):
    """§7.3 step 5: GROUP_SIGNATURE_CONTEXT || gid || IK_S.pub || commitment || body."""
    if mutated(NO_COMMITMENT):
        return GROUP_SIGNATURE_CONTEXT + gid + ik_s + body
    return GROUP_SIGNATURE_CONTEXT + gid + ik_s + commitment(mk) + body


def group_encrypt(sender, plaintext):
    """§7.3. Returns (new_sender, message)."""
    i = sender.iteration
    # Step 1.
    if i == COUNTER_MAX and not mutated(SEND_COUNTER_UNCHECKED):
        e = ProtocolError("counter-exhausted", "group iteration 0xFFFFFFFF")
        if mutated(SEND_NOT_ATOMIC):
            e.partial_state = sender.copy()
            e.partial_state.chain_key = next_chain_key(sender.chain_key)
        raise e
    if i == COUNTER_MAX - 1 and mutated(SEND_COUNTER_AT_BOUND):
        raise ProtocolError("counter-exhausted", "at the bound (mutation)")
    gid = len8(sender.group_id)
    # Step 2.
    mk, ck_next = kdf_ck(sender.chain_key)
    key, nonce = message_key_expansion(mk, GROUP_MESSAGE_KEY_INFO)
    # Steps 3-5.
    header = b"\x15" + u32(sender.key_id) + u32(i)
    body = header + seal(key, nonce, gid + sender.ik_s + header, plaintext)
    signature = sign(sender.seed, signature_input(gid, sender.ik_s, mk, body))
    # Step 6.
    new = sender.copy()
    new.chain_key, new.iteration = ck_next, i + 1
    return new, body + signature


class SenderKeyState:
    """§7.4: (key id, signing key, CK, next iteration, skipped keys: iteration -> MK)."""

    __slots__ = ("key_id", "signing_key", "chain_key", "next", "skipped")

    def __init__(self, key_id, signing_key, chain_key, next_iteration, skipped=None):
        self.key_id, self.signing_key = key_id, signing_key
        self.chain_key, self.next = chain_key, next_iteration
        self.skipped = OrderedDict() if skipped is None else skipped

    def copy(self):
        return SenderKeyState(self.key_id, self.signing_key, self.chain_key, self.next,
                              OrderedDict(self.skipped))


class GroupReceiver:
    """§7.4: a receiver for one sender and group; it cannot encrypt."""

    __slots__ = ("group_id", "ik_s", "states")

    def __init__(self, group_id, ik_s, states=None):
        self.group_id, self.ik_s = group_id, ik_s
        self.states = [] if states is None else states

    def copy(self):
        return GroupReceiver(self.group_id, self.ik_s, [st.copy() for st in self.states])

    def find(self, key_id):
        for idx, st in enumerate(self.states):
            if st.key_id == key_id:
                return idx
        return None


def receiver_from_distribution(data, ik_s):
    """§7.2: a receiver from a distribution and the identity key IK_S.pub of the session it
    arrived on (the sender's), never from an identity named inside a message."""
    d = decode_distribution(data)
    return GroupReceiver(d.group_id, ik_s,
                         [SenderKeyState(d.key_id, d.signing_key, d.chain_key, d.iteration)])


def _append_skipped(store, iteration, mk):
    if len(store) >= MAX_GROUP_SKIPPED_KEYS and not mutated(SKIPPED_UNBOUNDED):
        store.popitem(last=mutated(SKIPPED_EVICT_NEWEST))
    store[iteration] = mk


def group_decrypt(receiver, data):
    """§7.4 steps 1-6. Returns (new_receiver, plaintext)."""
    m = decode_group_message(data)
    j = m.iteration
    if mutated(COUNTER_BEFORE_KEYID) and j == COUNTER_MAX:
        raise ProtocolError("counter-exhausted", "iteration 0xFFFFFFFF")
    # Step 1.
    idx = receiver.find(m.key_id)
    if idx is None:
        if mutated(KEYID_FALLBACK) and receiver.states:
            idx = len(receiver.states) - 1
        else:
            raise ProtocolError("state-mismatch", "no sender key state for this key id",
                                cause=None if mutated(KEYID_NO_CAUSE) else "no-sender-key")
    st = receiver.states[idx]
    # Step 2.
    if j == COUNTER_MAX and not mutated(RECV_COUNTER_UNCHECKED) \
            and not mutated(RECV_COUNTER_LATE):
        raise ProtocolError("counter-exhausted", "iteration 0xFFFFFFFF")
    # Step 3.
    n = st.next
    if j < n:
        if j in st.skipped and not mutated(NO_SKIPPED_LOOKUP):
            mk = st.skipped[j]
            how = ("skipped",)
        else:
            raise ProtocolError("duplicate", "iteration already used or before the start")
    else:
        if j - n > MAX_GROUP_SKIP and not mutated(GAP_UNBOUNDED):
            raise ProtocolError("skip-limit", "j - n > MAX_GROUP_SKIP")
        if j - n == MAX_GROUP_SKIP and mutated(GAP_AT_BOUND):
            raise ProtocolError("skip-limit", "at the bound (mutation)")
        if j == COUNTER_MAX and mutated(RECV_COUNTER_LATE):
            raise ProtocolError("counter-exhausted", "iteration 0xFFFFFFFF")
        keys, ck = step_chain(st.chain_key, n, j)
        mk, ck_next = kdf_ck(ck)
        how = ("chain", keys, ck_next)
    gid = len8(receiver.group_id)
    new = _commit(receiver, idx, j, how) if mutated(COMMIT_ON_FAILURE) else None
    key, nonce = message_key_expansion(mk, GROUP_MESSAGE_KEY_INFO)
    try:
        if mutated(OPEN_BEFORE_VERIFY):
            plaintext = open_(key, nonce, gid + receiver.ik_s + m.header, m.ciphertext)
        # Step 4.
        if not verify(st.signing_key, signature_input(gid, receiver.ik_s, mk, m.body),
                      m.signature) and not mutated(SIGNATURE_UNCHECKED):
            raise ProtocolError("authentication", "group signature")
        # Step 5.
        if not mutated(OPEN_BEFORE_VERIFY):
            plaintext = open_(key, nonce, gid + receiver.ik_s + m.header, m.ciphertext)
    except ProtocolError as e:
        if new is not None:
            e.partial_state = new
        raise
    # Step 6.
    return (new if new is not None else _commit(receiver, idx, j, how)), plaintext


def _commit(receiver, idx, j, how):
    new = receiver.copy()
    st = new.states[idx]
    if how[0] == "skipped":
        if not mutated(SKIPPED_KEPT):
            del st.skipped[j]
    else:
        _, keys, ck_next = how
        st.chain_key, st.next = ck_next, j + 1
        for i, k in keys:
            _append_skipped(st.skipped, i, k)
    return new


def forget_below(receiver, key_id, n):
    """§7.4 Forgetting: forget below (key id, n). All or nothing; returns the new receiver."""
    new = receiver.copy()
    idx = new.find(key_id)
    if idx is None:
        if mutated(FORGET_UNKNOWN_OK):
            return new
        raise ProtocolError("state-mismatch", "no sender key state for this key id")
    targets = new.states if mutated(FORGET_ALL_KEYIDS) else [new.states[idx]]
    for st in targets:
        if mutated(FORGET_NOT_ATOMIC):
            for it in [it for it in st.skipped if it < n]:
                del st.skipped[it]
        if st.next < n:
            if n - st.next > MAX_GROUP_SKIP and not mutated(FORGET_UNBOUNDED):
                e = ProtocolError("skip-limit", "forget below more than MAX_GROUP_SKIP ahead")
                if mutated(FORGET_NOT_ATOMIC):
                    e.partial_state = new
                raise e
            if n - st.next == MAX_GROUP_SKIP and mutated(FORGET_AT_BOUND):
                raise ProtocolError("skip-limit", "at the bound (mutation)")
    for st in targets:
        if not mutated(FORGET_KEEPS_SKIPPED):
            for it in [it for it in st.skipped if it < n]:
                del st.skipped[it]
        if st.next < n and not mutated(FORGET_NO_STEP):
            ck = st.chain_key
            for _ in range(st.next, n):
                ck = next_chain_key(ck)
            st.chain_key, st.next = ck, n
    return new


def add_distribution(receiver, data, session_ik):
    """§7.4 Adding a distribution, received over a pairwise session whose remote identity
    key is `session_ik`, checked in the SPEC's order. Returns the new receiver."""
    if mutated(ADD_SENDER_BEFORE_DECODE) and session_ik != receiver.ik_s:
        raise ProtocolError("state-mismatch", "distribution not from the receiver's sender")
    d = decode_distribution(data)
    if mutated(ADD_NOT_ATOMIC) and receiver.find(d.key_id) is None:
        receiver = receiver.copy()   # appended before the checks below (mutation)
        receiver.states.append(SenderKeyState(d.key_id, d.signing_key, d.chain_key,
                                              d.iteration))
        partial = receiver
    else:
        partial = None
    try:
        return _add_checked(receiver, d, session_ik, partial)
    except ProtocolError as e:
        if partial is not None:
            e.partial_state = partial
        raise


def _add_checked(receiver, d, session_ik, partial):
    if partial is not None:
        receiver = receiver.copy()
        del receiver.states[-1]
    if session_ik != receiver.ik_s and not mutated(ADD_ANY_SENDER):
        raise ProtocolError("state-mismatch", "distribution not from the receiver's sender")
    if d.group_id != receiver.group_id and not mutated(ADD_ANY_GROUP):
        raise ProtocolError("state-mismatch", "distribution for another group")
    new = receiver.copy()
    idx = new.find(d.key_id)
    fresh = SenderKeyState(d.key_id, d.signing_key, d.chain_key, d.iteration)
    if idx is not None:
        if new.states[idx].signing_key == d.signing_key:
            if mutated(ADD_HELD_REPLACED):
                new.states[idx] = fresh
            return new  # ignored: the held state is kept exactly as it is
        if mutated(ADD_HELD_OTHER_KEY):
            new.states[idx] = fresh
            return new
        raise ProtocolError("state-mismatch", "key id held with another signing key")
    new.states.append(fresh)
    if len(new.states) > MAX_SENDER_KEY_STATES and not mutated(STATES_UNBOUNDED):
        del new.states[-2 if mutated(STATES_EVICT_NEWEST) else 0]
    return new
