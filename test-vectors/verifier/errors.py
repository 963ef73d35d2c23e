"""SPEC §10: error categories, plus the verifier's own failure type."""

# SPEC §10: "The closed list."
CATEGORIES = (
    "decode", "unknown-version", "invalid-key", "bad-signature", "non-contributory",
    "unknown-prekey", "authentication", "duplicate", "skip-limit", "counter-exhausted",
    "state-mismatch", "downgrade",   # downgrade: revision 3, version 2 (§4.8)
)


# SPEC §10: within state-mismatch, two causes MUST be told apart (the vectors name them in
# "cause"); implementations MAY distinguish further causes, which the vectors do not name.
CAUSES = ("no-sender-key", "not-member")


class ProtocolError(Exception):
    """A protocol failure; `category` is one of the closed list of SPEC §10, and `cause`, for
    a state-mismatch, one of CAUSES or None (§10)."""

    def __init__(self, category, detail="", cause=None):
        if category not in CATEGORIES:
            raise ValueError(f"not a SPEC §10 category: {category}")
        if cause is not None and (category != "state-mismatch" or cause not in CAUSES):
            raise ValueError(f"not a SPEC §10 cause of {category}: {cause}")
        text = f"{category}: {detail}" if detail else category
        super().__init__(f"{text} (cause {cause})" if cause else text)
        self.category = category
        self.cause = cause


class Mismatch(Exception):
    """The vectors disagree with this verifier (a failed check, not a protocol error)."""


def check(condition, message):
    if not condition:
        raise Mismatch(message)


def check_eq(got, want, what):
    if got != want:
        if isinstance(got, (bytes, bytearray)):
            got = bytes(got).hex()
        if isinstance(want, (bytes, bytearray)):
            want = bytes(want).hex()
        raise Mismatch(f"{what}: got {got!r}, expected {want!r}")
