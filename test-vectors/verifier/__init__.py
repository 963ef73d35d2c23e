"""Independent verifier for the sottovoce test vectors, written from SPEC.md (revision 3:
version 1, X3DH, and version 2, PQXDH) and test-vectors/README.md alone.

One module per part of SPEC.md, so a rule is found in both by its section number:

  primitives.py   §1 notation and encodings, §2 suite, labels (SUITE_PQ's too), X25519,
                  Ed25519 and VERIFY, and ML-KEM-1024 (KEYGEN, ENCAPS, DECAPS: kyber-py)
  keys.py         §3 identity keys (§3.1 key acceptance), prekeys, the prekey store,
                  §3.5 safety numbers; §4.8's ML-KEM key acceptance (modulus check) and
                  KEM prekey signatures, and the store's KEM prekeys
  publish.py      §3.6 publishing prekeys: prekey uploads (0x1B, and 0x2B with KEM
                  prekeys), bundles a server assembles, what an account uploads by its
                  published mark, rotation (with KEM prekeys)
  devices.py      §3.7 users and devices: device certificates and device lists
  x3dh.py         §4 X3DH, and §4.5 routing of prekey messages
  pqxdh.py        §4.8 PQXDH (version 2): initiator, responder, used base keys, downgrade
  records.py      §4.6 addresses and the binding, §4.7 session records
  ratchet.py      §5 Double Ratchet, and §5.7 prekey messages to an existing session
  wire.py         §6 message formats, §6.1 first bytes of both versions, §6.8 version 2
  envelope.py     §6.7 envelopes
  group.py        §7 Sender Keys
  groupstate.py   §7.7 group states (and the two causes of §10)
  randomness.py   §8 replayed randomness
  limits.py       §9 limits
  errors.py       §10 error categories and causes
  persistence.py  §11 saved sessions (0x16, 0x26), group states, sealed states, saved
                  accounts (§11.5, 0x1A revisions 3 and 2, 0x2A), saved session records
                  (§11.6), saved groups (§11.7)
  vectors.py      §14 / README: replaying each vector file
  conversations.py  README "Conversations": replaying conversations.json
  pqxdh_vectors.py  README "PQXDH (pqxdh.json, version 2)": replaying pqxdh.json
  mutation.py     the mutation switches (§14: "one switch per rule")
  cli.py          the command line of ../verify.py
"""
