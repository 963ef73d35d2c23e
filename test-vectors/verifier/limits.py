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
MAX_UPLOAD_PREKEYS_PQ = 1102    # entries of a version-2 upload (§3.6) -> decode
MAX_ONE_TIME_KEM_PREKEYS = 100  # one-time KEM prekeys an account holds; kind 0x04 entries of
                                # an upload (§4.8, §11.5) -> generating stops; decode
MAX_LAST_RESORT_KEM_PREKEYS = 2 # last-resort KEM prekeys an account keeps (§3.6) -> the
                                # oldest is deleted at a rotation; decode (saved)
MAX_LAST_RESORT_USES = 1000     # used base keys per last-resort KEM prekey (§4.8) -> new
                                # sessions under it unknown-prekey; decode (saved)
