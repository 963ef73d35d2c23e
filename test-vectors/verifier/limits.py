"""SPEC §9: every bound is a named constant. "At" the bound succeeds; "past" it fails."""

MAX_SKIP = 1000                 # gap N - Nr, N on a new chain (§5.6) -> skip-limit; at most
                                # this many keys stored when a chain is closed at PN (§5.6 step 7)
MAX_SKIPPED_KEYS = 2000         # skipped session message keys stored; oldest deleted first
MAX_CLOSED_CHAINS = 5           # closed receiving chains (DHr, PN) remembered; oldest forgotten
MAX_BINDING_LEN = 1024          # bytes of X3DH binding (§4.1) -> decode
MAX_GROUP_ID_LEN = 64           # group id bytes, min 1 (§6.5) -> decode
MAX_GROUP_SKIP = 1000           # gap j - n of a group message; steps of forget-below
MAX_GROUP_SKIPPED_KEYS = 1000   # skipped keys per sender key state; oldest deleted first
MAX_SENDER_KEY_STATES = 5       # key ids kept per group receiver; oldest deleted
COUNTER_MAX = 0xFFFFFFFF        # §5.3: a chain key at this number has no successor, so the
                                # last number a chain sends is 0xFFFFFFFE (§9)
