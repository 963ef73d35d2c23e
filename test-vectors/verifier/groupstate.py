"""SPEC §7.7: a member device's group state (group id, own address, member flag, own group
sender, and up to MAX_GROUP_MEMBERS other member devices ordered by address, each with its
device identity key and, once its distribution arrived, a group receiver), with the two
causes of state-mismatch that §10 requires (no-sender-key, not-member).

Every operation works on a copy and returns it (all-or-nothing, §7.7, §10)."""

from .envelope import GROUP_MESSAGE, decode_envelope, group_message_envelope
from .errors import ProtocolError
from .group import (GroupSender, add_distribution, group_decrypt, group_encrypt,
                    receiver_from_distribution)
from .mutation import mutated, switch
from .wire import decode_distribution

MAX_GROUP_MEMBERS = 1024     # §7.7 / §9

ORDER_ENCODED = switch(
    "group-members-encoded-order", "§7.7",
    "members are ordered by address: user id bytewise, shorter first when one is a prefix of "
    "the other, then device id (mutated: by the address encoding, len8 first, so shorter "
    "user ids first)")
DECRYPT_FLAG_UNCHECKED = switch(
    "group-decrypt-member-flag-unchecked", "§7.7 Decrypting",
    "a group state whose member flag is off refuses a group message with state-mismatch "
    "(mutated: not checked)")
NOT_MEMBER_NO_CAUSE = switch(
    "group-not-member-without-cause", "§7.7, §10",
    "a state marked removed refuses with cause not-member, which MUST be told apart "
    "(mutated: no cause)")
DECRYPT_GROUP_UNCHECKED = switch(
    "group-decrypt-group-id-unchecked", "§7.7 Decrypting",
    "an envelope for another group id is state-mismatch (mutated: not compared)")
SENDER_NOT_MEMBER_CAUSE = switch(
    "group-non-member-sender-no-sender-key", "§7.7 Decrypting, §10",
    "a sender address that is not a member is state-mismatch without the cause "
    "no-sender-key: there is no key to ask for (mutated: cause no-sender-key)")
NO_RECEIVER_NO_CAUSE = switch(
    "group-no-receiver-without-cause", "§7.7 Decrypting, §10",
    "a member without a receiver is state-mismatch with cause no-sender-key (mutated: no "
    "cause)")
DECRYPT_GROUP_LATE = switch(
    "group-decrypt-group-after-receiver", "§7.7 Decrypting order",
    "the group id is compared before the sender's receiver is looked up (mutated: after, so "
    "another group's message from a member without a receiver is no-sender-key)")
DECRYPT_FLAG_AFTER_GROUP = switch(
    "group-decrypt-flag-after-group", "§7.7 Decrypting order",
    "the member flag is checked first (mutated: after the group id and the sender)")
ENCRYPT_WHEN_REMOVED = switch(
    "group-encrypt-when-removed", "§7.7 Marking removed",
    "a state marked removed refuses to encrypt (mutated: encrypts)")
ADD_FLAG_UNCHECKED = switch(
    "group-add-member-flag-unchecked", "§7.7 Adding a distribution",
    "a state whose member flag is off refuses a distribution: state-mismatch, cause "
    "not-member (mutated: not checked)")
ADD_GROUP_UNCHECKED = switch(
    "group-add-group-id-unchecked", "§7.7 Adding a distribution",
    "a distribution for another group is state-mismatch (mutated: not compared here; the "
    "receiver created for it takes its group)")
ADD_IDENTITY_UNCHECKED = switch(
    "group-add-identity-unchecked", "§7.7 Adding a distribution",
    "a distribution over a record whose remote identity is not the listed member's is "
    "state-mismatch (mutated: not compared; a receiver created for it takes the record's "
    "identity, §7.2)")
ADD_UNLISTED = switch(
    "group-add-unlisted-sender", "§7.7 Adding a distribution",
    "a distribution over a record whose address is not a member is state-mismatch (mutated: "
    "ignored, nothing added)")
REMOVE_NO_ROTATION = switch(
    "group-remove-without-rotation", "§7.7, §7.5",
    "removing a member rotates our sender key (mutated: not rotated)")
REMOVE_KEEPS_RECEIVER = switch(
    "group-remove-keeps-member", "§7.7",
    "removing a member deletes it with its receiver (mutated: its receiver stays, the "
    "member listed)")
ADD_MEMBER_APPENDED = switch(
    "group-add-member-appended", "§7.7 Adding a member",
    "an added member is listed in address order (mutated: appended after the members "
    "already listed)")
ADD_MEMBER_ROTATES = switch(
    "group-add-member-rotates", "§7.7 Adding a member, §8",
    "adding a member does not rotate our sender key: our current distribution, at our "
    "current iteration, is sent to it, and nothing is drawn (mutated: rotated, as on a "
    "removal)")
ADD_MEMBER_PAST_BOUND = switch(
    "group-add-member-past-bound", "§7.7 Refusals, §9",
    "adding a member to a state that lists MAX_GROUP_MEMBERS (1024) is decode and changes "
    "nothing (mutated: accepted)")
ADD_MEMBER_TWICE = switch(
    "group-add-member-already-listed", "§7.7 Refusals",
    "adding an address already listed is decode and changes nothing (mutated: listed a "
    "second time)")
ADD_MEMBER_OWN_ADDRESS = switch(
    "group-add-member-own-address", "§7.7 Refusals",
    "adding the local address as a member is decode and changes nothing (mutated: listed)")
ADD_MEMBER_WHEN_REMOVED = switch(
    "group-add-member-when-removed", "§7.7 Refusals",
    "adding any member to a state marked removed is decode and changes nothing (mutated: "
    "listed)")
REMOVE_MEMBER_WHEN_REMOVED = switch(
    "group-remove-member-when-removed", "§7.7 Refusals",
    "removing a member from a state marked removed is decode, draws nothing and changes "
    "nothing (mutated: removed, the sender key rotated)")
REMOVE_UNLISTED = switch(
    "group-remove-unlisted-member", "§7.7 Refusals",
    "removing a member that is not listed is decode and changes nothing (mutated: nothing "
    "removed, the sender key rotated)")
CREATE_PAST_BOUND = switch(
    "group-create-past-bound", "§7.7 Refusals, §9",
    "creating a group state with more than MAX_GROUP_MEMBERS (1024) other members is decode "
    "(mutated: created)",
    unpinnable="SPEC §14: '§7.7, the checks on creating a group state (members over the bound, listed twice, or the local address): they judge the caller's arguments, not received bytes, and the vectors give no refused create'")
CREATE_TWICE = switch(
    "group-create-member-twice", "§7.7 Refusals",
    "creating a group state with a member listed twice is decode (mutated: created, listed "
    "twice)",
    unpinnable="SPEC §14: '§7.7, the checks on creating a group state (members over the bound, listed twice, or the local address): they judge the caller's arguments, not received bytes, and the vectors give no refused create'")
CREATE_OWN_ADDRESS = switch(
    "group-create-own-address", "§7.7 Refusals",
    "creating a group state with the local address as a member is decode (mutated: created, "
    "listed)",
    unpinnable="SPEC §14: '§7.7, the checks on creating a group state (members over the bound, listed twice, or the local address): they judge the caller's arguments, not received bytes, and the vectors give no refused create'")
ADD_DECODE_AFTER_FLAG = switch(
    "group-add-decode-after-flag", "§7.7 Adding a distribution",
    "a distribution is decoded first: its decoding errors come before the member flag "
    "(mutated: the flag is checked first)")
DECRYPT_OTHER_KIND_DECODE = switch(
    "group-decrypt-other-kind-decode", "§7.7 Decrypting",
    "an envelope of another kind than 0x05 is state-mismatch (mutated: decode)")
ANSWER_FLAG_UNCHECKED = switch(
    "group-answer-member-flag-unchecked", "§7.7 Answering a distribution request",
    "a state whose member flag is off refuses a distribution request: state-mismatch, cause "
    "not-member (mutated: not checked; a listed member is answered)")
ANSWER_FLAG_LAST = switch(
    "group-answer-member-flag-last", "§7.7 Answering a distribution request",
    "the member flag is checked first, before the group id and the listed member "
    "(mutated: after them, so another group's request to a removed state has no cause)")
ANSWER_NON_MEMBER = switch(
    "group-answer-non-member", "§6.7 distribution request, §7.7",
    "a distribution request is answered only over the record of a device the group state "
    "lists now (mutated: answered whoever asks)")
ANSWER_IDENTITY_UNCHECKED = switch(
    "group-answer-identity-unchecked", "§6.7 distribution request, §7.7",
    "a request over a record whose remote identity is not the listed member's is refused "
    "(mutated: only the address is compared)")
ANSWER_GROUP_UNCHECKED = switch(
    "group-answer-group-id-unchecked", "§7.7 Answering a distribution request",
    "a distribution request for another group id is state-mismatch (mutated: answered)")
MARK_KEEPS_RECEIVERS = switch(
    "group-mark-removed-keeps-receivers", "§7.7 Marking removed",
    "marking removed clears the member flag and deletes every receiver (mutated: the "
    "receivers stay)")


def member_order(address):
    """§7.7: user id bytewise (shorter first on a prefix), then device id."""
    if mutated(ORDER_ENCODED):
        return address.encode()
    return (address.user, address.device)


class Member:
    __slots__ = ("address", "ik", "receiver")

    def __init__(self, address, ik, receiver=None):
        self.address, self.ik, self.receiver = address, ik, receiver


class GroupState:
    __slots__ = ("group_id", "local", "member", "sender", "members")

    def __init__(self, group_id, local, member, sender, members):
        self.group_id, self.local, self.member = group_id, local, member
        self.sender, self.members = sender, list(members)

    def copy(self):
        return GroupState(self.group_id, self.local, self.member, self.sender,
                          [Member(m.address, m.ik, m.receiver) for m in self.members])

    @classmethod
    def create(cls, group_id, local, local_ik, members, rng):
        """§7.7 Creating: draws the sender key (§7.2, §8); the members (address, IK) are
        listed without receivers, in address order. §7.7 Refusals: more than
        MAX_GROUP_MEMBERS other members, a member listed twice or equal to the local address
        is decode (checked before anything is drawn: a refusal changes nothing)."""
        if len(members) > MAX_GROUP_MEMBERS and not mutated(CREATE_PAST_BOUND):
            raise ProtocolError("decode", "more than MAX_GROUP_MEMBERS members")
        addresses = [a for a, _ in members]
        if len(set(addresses)) != len(addresses) and not mutated(CREATE_TWICE):
            raise ProtocolError("decode", "a member listed twice")
        if local in addresses and not mutated(CREATE_OWN_ADDRESS):
            raise ProtocolError("decode", "the own address as a member")
        sender = GroupSender.create(group_id, local_ik, rng)
        listed = sorted((Member(a, ik) for a, ik in members),
                        key=lambda m: member_order(m.address))
        return cls(group_id, local, True, sender, listed)

    def find(self, address):
        for index, m in enumerate(self.members):
            if m.address == address:
                return index
        return None

    def _not_member(self, what):
        return ProtocolError("state-mismatch", what,
                             cause=None if mutated(NOT_MEMBER_NO_CAUSE) else "not-member")

    def encrypt(self, plaintext):
        """§7.3 with our sender, sent as an envelope of kind 0x05 (§6.7) naming our address."""
        if not self.member and not mutated(ENCRYPT_WHEN_REMOVED):
            raise self._not_member("a group state marked removed")
        sender, message = group_encrypt(self.sender, plaintext)
        new = self.copy()
        new.sender = sender
        return new, group_message_envelope(self.group_id, self.local, message)

    def add_distribution(self, data, from_address, from_ik):
        """§7.7 Adding a distribution that arrived over the record with address X and remote
        identity IK_X: decoded first, then the member flag, the group id, X listed with
        IK_X."""
        if mutated(ADD_DECODE_AFTER_FLAG) and not self.member \
                and not mutated(ADD_FLAG_UNCHECKED):
            raise self._not_member("a group state marked removed")
        d = decode_distribution(data)   # decoding errors come first (§7.7)
        if not self.member and not mutated(ADD_FLAG_UNCHECKED):
            raise self._not_member("a group state marked removed")
        if d.group_id != self.group_id and not mutated(ADD_GROUP_UNCHECKED):
            raise ProtocolError("state-mismatch", "a distribution for another group")
        index = self.find(from_address)
        if index is None:
            if mutated(ADD_UNLISTED):
                return self.copy()
            raise ProtocolError("state-mismatch", "a distribution from a non-member")
        m = self.members[index]
        if m.ik != from_ik and not mutated(ADD_IDENTITY_UNCHECKED):
            raise ProtocolError("state-mismatch", "a distribution over another identity")
        if m.receiver is None:
            receiver = receiver_from_distribution(data, from_ik)   # §7.2: the session's IK
        else:
            receiver = add_distribution(m.receiver, data, from_ik)  # §7.4
        new = self.copy()
        new.members[index].receiver = receiver
        return new

    def decrypt(self, data):
        """§7.7 Decrypting a group message envelope, in the SPEC's order; the envelope is
        decoded first (§6.7: its errors are the envelope's)."""
        env = decode_envelope(data)
        if env.kind != GROUP_MESSAGE:
            # §7.7: "an envelope of another kind is state-mismatch".
            raise ProtocolError("decode" if mutated(DECRYPT_OTHER_KIND_DECODE)
                                else "state-mismatch", "not a group message envelope")

        def flag():
            if not self.member and not mutated(DECRYPT_FLAG_UNCHECKED):
                raise self._not_member("a group state marked removed")

        def group():
            if env.group_id != self.group_id and not mutated(DECRYPT_GROUP_UNCHECKED):
                raise ProtocolError("state-mismatch", "an envelope for another group")

        def sender():
            index = self.find(env.sender)
            if index is None:
                raise ProtocolError("state-mismatch", "a sender that is not a member",
                                    cause="no-sender-key" if mutated(SENDER_NOT_MEMBER_CAUSE)
                                    else None)
            return index

        # (The order of the group and sender checks cannot be observed: both are
        # state-mismatch without a cause.)
        if not mutated(DECRYPT_FLAG_AFTER_GROUP):
            flag()
        if not mutated(DECRYPT_GROUP_LATE):
            group()
        index = sender()
        if mutated(DECRYPT_FLAG_AFTER_GROUP):
            flag()
        m = self.members[index]
        if m.receiver is None:
            raise ProtocolError("state-mismatch", "no distribution of this member yet",
                                cause=None if mutated(NO_RECEIVER_NO_CAUSE)
                                else "no-sender-key")
        if mutated(DECRYPT_GROUP_LATE):
            group()
        receiver, plaintext = group_decrypt(m.receiver, env.message)
        new = self.copy()
        new.members[index].receiver = receiver
        return new, plaintext

    def add_member(self, address, ik, rng):
        """§7.7 Adding a member: it is listed (in address order) with its device identity key
        and no receiver; our sender key is not rotated: its current distribution (§7.2, at
        our current iteration) is what goes to the new member.

        §7.7 Refusals: adding past MAX_GROUP_MEMBERS, an address already listed, the local
        address, or any member to a state marked removed is decode and changes nothing (all
        the same category, so their order cannot be observed)."""
        if not self.member and not mutated(ADD_MEMBER_WHEN_REMOVED):
            raise ProtocolError("decode", "a group state marked removed")
        if self.find(address) is not None and not mutated(ADD_MEMBER_TWICE):
            raise ProtocolError("decode", "already a member")
        if address == self.local and not mutated(ADD_MEMBER_OWN_ADDRESS):
            raise ProtocolError("decode", "the own address as a member")
        if len(self.members) >= MAX_GROUP_MEMBERS and not mutated(ADD_MEMBER_PAST_BOUND):
            raise ProtocolError("decode", "MAX_GROUP_MEMBERS members already")
        new = self.copy()
        new.members.append(Member(address, ik))
        if not mutated(ADD_MEMBER_APPENDED):
            new.members.sort(key=lambda m: member_order(m.address))
        if mutated(ADD_MEMBER_ROTATES):
            sender = new.sender.copy()
            sender.draw(rng)
            new.sender = sender
        return new

    def remove_member(self, address, rng):
        """§7.7 Removing a member: it is deleted with its receiver, and our sender key is
        rotated (§7.5: new chain key, signing key and key id, §8). §7.7 Refusals: removing
        from a state marked removed, or a member that is not listed, is decode, drawing and
        changing nothing."""
        if not self.member and not mutated(REMOVE_MEMBER_WHEN_REMOVED):
            raise ProtocolError("decode", "a group state marked removed")
        index = self.find(address)
        if index is None and not mutated(REMOVE_UNLISTED):
            raise ProtocolError("decode", "not a member")
        new = self.copy()
        if index is not None and not mutated(REMOVE_KEEPS_RECEIVER):
            del new.members[index]
        if not mutated(REMOVE_NO_ROTATION):
            sender = new.sender.copy()
            sender.draw(rng)
            new.sender = sender
        return new

    def answer_request(self, group_id, from_address, from_ik):
        """§7.7 Answering a distribution request (§6.7) for group G that arrived over the
        session record with address X and remote identity IK_X: member flag off:
        state-mismatch, cause not-member; G not this group, or X not listed with IK_X:
        state-mismatch (no cause, so the order of these two cannot be observed); else our
        current distribution (§6.5, at our current iteration, §7.2). Answering changes
        nothing."""
        if not mutated(ANSWER_FLAG_LAST):
            self._answer_flag()
        if group_id != self.group_id and not mutated(ANSWER_GROUP_UNCHECKED):
            raise ProtocolError("state-mismatch", "a distribution request for another group")
        index = self.find(from_address)
        if index is None and not mutated(ANSWER_NON_MEMBER):
            raise ProtocolError("state-mismatch", "a distribution request from a non-member")
        if index is not None and self.members[index].ik != from_ik \
                and not mutated(ANSWER_IDENTITY_UNCHECKED):
            raise ProtocolError("state-mismatch",
                                "a distribution request over another identity")
        if mutated(ANSWER_FLAG_LAST):
            self._answer_flag()
        return self.sender.distribution()

    def _answer_flag(self):
        if not self.member and not mutated(ANSWER_FLAG_UNCHECKED):
            raise self._not_member("a group state marked removed")

    def mark_removed(self):
        """§7.7 Marking removed: the member flag is cleared and every receiver deleted."""
        new = self.copy()
        new.member = False
        if not mutated(MARK_KEEPS_RECEIVERS):
            for m in new.members:
                m.receiver = None
        return new
