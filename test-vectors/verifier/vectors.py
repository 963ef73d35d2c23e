"""SPEC §14 and test-vectors/README.md: replay every vector file.

  * valid tests: every output is recomputed and compared byte for byte;
  * invalid tests and events: the operation must fail with exactly the SPEC §10 category,
    and every state involved must be unchanged afterwards (compared through its §11
    encoding, and the responder's prekey store by content);
  * randomness: the listed byte strings are replayed in order (§8); an operation asking for
    another number or length of draws is a failure.
"""

from .conversations import resaved_form, run_conversations
from .pqxdh_vectors import run_pqxdh_file
from .errors import CATEGORIES, CAUSES, Mismatch, ProtocolError, check, check_eq
from .group import (GroupSender, add_distribution, commitment, forget_below, group_decrypt,
                    group_encrypt, receiver_from_distribution)
from .keys import (Identity, PrekeyStore, accept_public_key, accepts_scanned, fingerprint,
                   safety_number, scannable_form, signed_prekey_signature)
from .mutation import mutated
from .persistence import (RESTORERS, save_account, save_group_receiver, save_group_sender,
                          save_session, seal_state, unseal)
from .primitives import (GROUP_MESSAGE_KEY_INFO, MESSAGE_KEY_INFO, SUITE, SUITE_PQ, pub,
                         verify)
from .randomness import ReplayRng
from .ratchet import (decrypt_session_message, encrypt, kdf_ck, kdf_rk,
                      message_key_expansion)
from .wire import (VERSION_PQ, Bundle, PrekeyMessage, decode_bundle, decode_distribution,
                   decode_group_message, decode_message, decode_prekey_message,
                   decode_session_message)
from .x3dh import (NO_ROUTING, Responder, initiate_with_x3dh, respond, x3dh_initiate,
                   x3dh_respond)

H = bytes.fromhex


def _want_error(obj):
    return obj.get("error") if obj.get("result") == "invalid" else None


def expect(obj, fn, what):
    """Run fn(); compare with obj's result/error. Returns (value, None) on success or
    (None, error) on the expected error."""
    want = _want_error(obj)
    try:
        value = fn()
    except ProtocolError as e:
        if want is None:
            raise Mismatch(f"{what}: unexpected error {e}") from None
        check_eq(e.category, want, f"{what}: error category ({e})")
        return None, e
    if want is not None:
        raise Mismatch(f"{what}: succeeded, expected error {want}")
    return value, None


def _changed(error, original):
    """The state an implementation is left with after `error` (normally the original; a
    mutation that breaks atomicity attaches the state it had already committed)."""
    return getattr(error, "partial_state", original)


# =========================================================================================
# kdf.json
# =========================================================================================

def run_kdf(test, group_type):
    if group_type == "kdf_rk":
        rk, ck = kdf_rk(H(test["rk"]), H(test["dhOutput"]))
        check_eq(rk, H(test["newRk"]), "new RK")
        check_eq(ck, H(test["chainKey"]), "chain key")
    elif group_type == "kdf_ck":
        ck, index = H(test["chainKey"]), 0
        for step in test["steps"]:
            check(step["index"] >= index, "kdf_ck steps out of order")
            while index < step["index"]:
                ck = kdf_ck(ck)[1]
                index += 1
            check_eq(ck, H(step["chainKey"]), f"CK_{index}")
            check_eq(kdf_ck(ck)[0], H(step["messageKey"]), f"MK_{index}")
    elif group_type == "message_key":
        info = {"session": MESSAGE_KEY_INFO, "group": GROUP_MESSAGE_KEY_INFO}[test["label"]]
        key, nonce = message_key_expansion(H(test["messageKey"]), info)
        check_eq(key, H(test["key"]), "key")
        check_eq(nonce, H(test["nonce"]), "nonce")
        if test["label"] == "group":
            check_eq(commitment(H(test["messageKey"])), H(test["commitment"]), "commitment")
        else:
            check("commitment" not in test, "a session message key has no commitment")
    elif group_type == "identity":
        ident = Identity(H(test["seed"]))
        check_eq(ident.pub, H(test["public"]), "IK.pub")
        check_eq(ident.priv_x, H(test["x25519Private"]), "IK.priv_x")
        check_eq(ident.pub_x, H(test["x25519Public"]), "IK.pub_x = (1+y)/(1-y)")
        check_eq(pub(ident.priv_x), H(test["x25519Public"]), "PUB(IK.priv_x)")
        accept_public_key(ident.pub)  # §3.1: a key made from a seed is always acceptable
    elif group_type == "safety_number":
        run_safety_number(test)
    elif group_type == "ed25519_key":
        expect(test, lambda: accept_public_key(H(test["public"])), "key acceptance")
    elif group_type == "ed25519_verify":
        public = H(test["public"])
        accept_public_key(public)  # README: `public` (acceptable)

        def run():
            if not verify(public, H(test["message"]), H(test["signature"])):
                raise ProtocolError("authentication", "VERIFY failed")
        expect(test, run, "VERIFY")
    else:
        raise Mismatch(f"unknown kdf group type {group_type}")


def run_safety_number(test):
    """kdf.json `safety_number` (SPEC §3.5; README: `identityKeyA`, `userIdA`, `identityKeyB`,
    `userIdB` -> `digits`, `scannableA`, `scannableB`; invalid when a user id is too long)."""
    ik_a, ik_b = H(test["identityKeyA"]), H(test["identityKeyB"])
    accept_public_key(ik_a)  # §3.5: a fingerprint is over an acceptable key (§3.1)
    accept_public_key(ik_b)
    uid_a, uid_b = H(test["userIdA"]), H(test["userIdB"])
    out, _ = expect(test, lambda: (fingerprint(ik_a, uid_a), fingerprint(ik_b, uid_b)),
                    "fingerprints")
    if out is None:
        return
    fp_a, fp_b = out
    check_eq(safety_number(fp_a, fp_b), test["digits"], "safety number seen by A")
    check_eq(safety_number(fp_b, fp_a), test["digits"], "safety number seen by B")
    check_eq(scannable_form(fp_a, fp_b), H(test["scannableA"]), "A's scannable form")
    check_eq(scannable_form(fp_b, fp_a), H(test["scannableB"]), "B's scannable form")
    check(accepts_scanned(fp_a, fp_b, H(test["scannableB"])), "A refuses B's form")
    check(accepts_scanned(fp_b, fp_a, H(test["scannableA"])), "B refuses A's form")
    if fp_a != fp_b:
        check(not accepts_scanned(fp_a, fp_b, H(test["scannableA"])),
              "A accepts its own form (a reflection)")


# =========================================================================================
# x3dh.json
# =========================================================================================

def party_identity(party):
    ident = Identity(H(party["identitySeed"]))
    check_eq(ident.pub, H(party["identityKey"]), "identityKey vs identitySeed")
    return ident


def responder_store(bob):
    ident = party_identity(bob)
    spk = bob["signedPreKey"]
    return PrekeyStore(ident, {spk["id"]: H(spk["private"])},
                       {k["id"]: H(k["private"]) for k in bob["oneTimePreKeys"]})


def expected_bundle(store, bob):
    """The bundle Bob publishes (§3.4, §6.4), its signature reproduced (§3.2)."""
    spk = bob["signedPreKey"]
    spk_pub = pub(H(spk["private"]))
    opks = bob["oneTimePreKeys"]
    check(len(opks) <= 1, "a bundle carries at most one one-time prekey")
    return Bundle(store.identity.pub, spk["id"], spk_pub,
                  signed_prekey_signature(store.identity.seed, spk["id"], spk_pub),
                  opks[0]["id"] if opks else None,
                  pub(H(opks[0]["private"])) if opks else None)


def run_x3dh(test, group_type):
    binding = H(test["binding"])
    rng = ReplayRng(test["randomness"])
    if group_type == "x3dh_valid":
        alice = party_identity(test["alice"])
        store = responder_store(test["bob"])
        bundle = expected_bundle(store, test["bob"])
        check_eq(bundle.spk_pub, H(test["signedPreKeyPublic"]), "SPK.pub")
        check_eq(bundle.spk_sig, H(test["signedPreKeySignature"]), "SPK.sig")
        check_eq(bundle.encode(), H(test["bundle"]), "bundle encoding")
        x = x3dh_initiate(alice, H(test["bundle"]), binding, rng)
        rng.finish()
        check_eq(x.ek_pub, H(test["ephemeralPublic"]), "EK_A.pub")
        check_eq([d.hex() for d in x.dh], test["dh"], "initiator DH1..DHn")
        check_eq(x.sk, H(test["sk"]), "initiator SK")
        check_eq(x.ad, H(test["ad"]), "AD")
        check_eq(x.h_ad, H(test["adHash"]), "SHA256(AD)")
        pkm = PrekeyMessage(alice.pub, x.ek_pub, bundle.spk_id, bundle.opk_id, b"")
        sk_b, h_ad_b, dh_b, _, _ = x3dh_respond(store, pkm, binding)
        check_eq([d.hex() for d in dh_b], test["dh"], "responder DH1..DHn")
        check_eq(sk_b, H(test["sk"]), "responder SK")
        check_eq(h_ad_b, H(test["adHash"]), "responder SHA256(AD)")
    elif group_type == "x3dh_invalid_bundle":
        alice = Identity(H(test["aliceIdentitySeed"]))
        decode_bundle(H(test["bundle"]))  # README: "it decodes"
        expect(test, lambda: x3dh_initiate(alice, H(test["bundle"]), binding, rng), "initiate")
        rng.finish()
    else:
        raise Mismatch(f"unknown x3dh group type {group_type}")


# =========================================================================================
# wire.json
# =========================================================================================

def _opt_hex(b):
    return None if b is None else b.hex()


def wire_fields(kind, data):
    """Decode `data` as `kind` (§6.2-§6.6) -> (fields named as in the README, re-encoding)."""
    if kind == "message":
        m = decode_message(data)
        return ({"ratchetKey": m.dhr.hex(), "previousCounter": m.pn, "counter": m.n,
                 "ciphertext": m.ciphertext.hex()}, m.encoded)
    if kind == "prekey_message":
        m = decode_prekey_message(data)
        fields = {"identityKey": m.ik_a.hex(), "baseKey": m.ek_a.hex(),
                  "signedPreKeyId": m.spk_id, "oneTimePreKeyId": m.opk_id,
                  "message": m.embedded.hex()}
        if m.version == VERSION_PQ:   # README "PQXDH": kemPreKeyId and kemCiphertext
            fields.update(kemPreKeyId=m.kem_id, kemCiphertext=m.ct.hex())
        return fields, m.encode()
    if kind == "prekey_bundle":
        b = decode_bundle(data)
        fields = {"identityKey": b.ik.hex(), "signedPreKeyId": b.spk_id,
                  "signedPreKey": b.spk_pub.hex(), "signature": b.spk_sig.hex(),
                  "oneTimePreKeyId": b.opk_id, "oneTimePreKey": _opt_hex(b.opk_pub)}
        if b.version == VERSION_PQ:   # README "PQXDH": kemPreKeyId, kemPreKey, kemSignature
            fields.update(kemPreKeyId=b.kem_id, kemPreKey=b.kem_pub.hex(),
                          kemSignature=b.kem_sig.hex())
        return fields, b.encode()
    if kind == "sender_key_distribution":
        d = decode_distribution(data)
        return ({"groupId": d.group_id.hex(), "keyId": d.key_id, "iteration": d.iteration,
                 "chainKey": d.chain_key.hex(), "signingKey": d.signing_key.hex()},
                d.encode())
    if kind == "group_message":
        m = decode_group_message(data)
        return ({"keyId": m.key_id, "iteration": m.iteration,
                 "ciphertext": m.ciphertext.hex(), "signature": m.signature.hex()},
                m.encode())
    raise Mismatch(f"unknown wire type {kind}")


def run_wire(test, group_type):
    data = H(test["encoded"])
    if group_type == "decode_valid":
        fields, reencoded = wire_fields(test["type"], data)
        check_eq(fields, test["fields"], "decoded fields")
        check_eq(reencoded, data, "re-encoding")
    elif group_type == "decode_invalid":
        expect(test, lambda: wire_fields(test["type"], data), "decode")
    else:
        raise Mismatch(f"unknown wire group type {group_type}")


# =========================================================================================
# session.json (and the session events of persistence.json)
# =========================================================================================

class Party:
    """One device in a session transcript: Alice (initiator) or Bob (a responder device)."""

    def __init__(self, identity=None, responder=None, session=None):
        self.identity = identity
        self.responder = responder   # Responder (prekey store + sessions by id) for Bob
        self.session = session       # the party's (current) session

    def snapshot(self):
        store = self.responder.store.snapshot() if self.responder else None
        sessions = None
        if self.responder:
            sessions = sorted((sid, save_session(s)) for sid, s in self.responder.sessions.items())
        return (store, sessions, self.session and save_session(self.session))

    def adopt(self, session):
        self.session = session
        if self.responder is not None:
            self.responder.sessions[session.session_id] = session


def _session_decrypt(p, data, binding):
    """README `decrypt`: decode `data` (either type) and hand it directly to party p's
    session; a prekey message goes through §5.7's checks. Routing (§4.5) is not applied:
    the event names the session.

    §4.5 rule 1 is what makes a responder device deliver a prekey message of a session it
    holds to that session, which is what these events are. Under NO_ROUTING the device runs
    §4.4 for it instead (and the new session replaces the held one)."""
    m = decode_session_message(data)
    if mutated(NO_ROUTING) and p.responder is not None and isinstance(m, PrekeyMessage) \
            and m.ek_a in p.responder.sessions:
        return respond(p.responder.store, data, binding)
    return decrypt_session_message(p.session, m)


def _check_respond_routing(p, data):
    """README: a `respond` event is only given for a message whose session id Bob does not
    hold (§4.5 would deliver it to that session instead)."""
    try:
        pkm = decode_prekey_message(data)
    except ProtocolError:
        return
    check(pkm.ek_a not in p.responder.sessions,
          "a respond event for a prekey message whose session id Bob holds (README)")


def run_session_events(events, parties, binding=b"", bundle=None, sk=None, ad_hash=None):
    for idx, ev in enumerate(events):
        party = ev.get("party", "self")
        kind = ev["event"]
        what = f"event {idx} ({kind} by {party})"
        p = parties[party]
        rng = ReplayRng(ev.get("randomness"))
        if kind == "initiate":
            out, _ = expect(ev, lambda: initiate_with_x3dh(p.identity, bundle, binding, rng),
                            what)
            rng.finish()
            if out is not None:
                s, x = out
                # README: `sk` and `adHash` are those of the session Alice initiates.
                check_eq(x.sk, sk, f"{what}: SK")
                check_eq(x.h_ad, ad_hash, f"{what}: SHA256(AD)")
                p.adopt(s)
        elif kind == "encrypt":
            check(p.session is not None, f"{what}: no session")
            before = save_session(p.session)
            out, err = expect(ev, lambda: encrypt(p.session, H(ev["plaintext"]), rng), what)
            rng.finish()
            if err is not None:
                check(save_session(_changed(err, p.session)) == before,
                      f"{what}: state changed by a rejected encrypt")
            else:
                p.adopt(out[0])
                check_eq(out[1], H(ev["message"]), f"{what}: message")
        elif kind == "respond":
            check(p.responder is not None, f"{what}: respond by a party without prekeys")
            b = H(ev["binding"]) if "binding" in ev else binding
            _check_respond_routing(p, H(ev["message"]))
            before = p.snapshot()
            out, err = expect(ev, lambda: p.responder.receive_prekey_message(H(ev["message"]), b),
                              what)
            if err is not None:
                check(p.snapshot() == before, f"{what}: store or sessions changed by a rejection")
            else:
                p.adopt(out[0])
                check_eq(out[1], H(ev["plaintext"]), f"{what}: plaintext")
        elif kind == "decrypt":
            check(p.session is not None, f"{what}: no session")
            before = p.snapshot()
            out, err = expect(ev, lambda: _session_decrypt(p, H(ev["message"]), binding), what)
            if err is not None:
                partial = getattr(err, "partial_state", None)
                if partial is not None:
                    p.adopt(partial)
                check(p.snapshot() == before, f"{what}: state changed by a rejection")
            else:
                p.adopt(out[0])
                check_eq(out[1], H(ev["plaintext"]), f"{what}: plaintext")
        elif kind == "save":
            # persistence.json (README): re-saving the actor now (§11.2) gives `state`.
            check(p.session is not None, f"{what}: no session")
            check_eq(save_session(p.session), H(ev["state"]), f"{what}: saved state")
        else:
            raise Mismatch(f"{what}: unknown session event")


def transcript_result(test):
    """README: a transcript is invalid when any event is; its error is the first one's."""
    invalid = [e for e in test["events"] if e.get("result") == "invalid"]
    if invalid:
        check_eq(test["result"], "invalid", "test result vs its events")
        check_eq(test.get("error"), invalid[0].get("error"), "test error vs first invalid event")
    else:
        check_eq(test["result"], "valid", "test result vs its events")


def run_session(test, group_type):
    check_eq(group_type, "transcript", "group type")
    transcript_result(test)
    alice = party_identity(test["alice"])
    store = responder_store(test["bob"])
    check_eq(expected_bundle(store, test["bob"]).encode(), H(test["bundle"]),
             "bundle vs Bob's keys")
    parties = {"alice": Party(identity=alice),
               "bob": Party(identity=store.identity, responder=Responder(store))}
    run_session_events(test["events"], parties, H(test["binding"]), H(test["bundle"]),
                       H(test["sk"]), H(test["adHash"]))


# =========================================================================================
# sender_keys.json (and the group events of persistence.json)
# =========================================================================================

def run_group_events(events, members, receivers, senders, group_id):
    for idx, ev in enumerate(events):
        party = ev.get("party", "self")
        kind = ev["event"]
        what = f"event {idx} ({kind} by {party})"
        rng = ReplayRng(ev.get("randomness"))
        if kind == "create":
            senders[party] = GroupSender.create(group_id, members[party].pub, rng)
            rng.finish()
            check_eq(senders[party].distribution(), H(ev["distribution"]), f"{what}: distribution")
        elif kind == "rotate":
            new = senders[party].copy()
            new.draw(rng)
            rng.finish()
            senders[party] = new
            check_eq(new.distribution(), H(ev["distribution"]), f"{what}: distribution")
        elif kind == "distribution":
            check_eq(senders[party].distribution(), H(ev["distribution"]), f"{what}: distribution")
        elif kind == "join":
            r, _ = expect(ev, lambda: receiver_from_distribution(
                H(ev["distribution"]), members[ev["sender"]].pub), what)
            if r is not None:
                check_eq(r.group_id, group_id, f"{what}: group id of the distribution")
                receivers[(party, ev["sender"])] = r
        elif kind in ("add_distribution", "decrypt", "forget_below"):
            key = (party, ev.get("sender"))
            check(key in receivers, f"{what}: no receiver")
            receiver = receivers[key]
            before = save_group_receiver(receiver)
            if kind == "add_distribution":
                fn = lambda: (add_distribution(receiver, H(ev["distribution"]),  # noqa: E731
                                               members[ev["from"]].pub), None)
            elif kind == "decrypt":
                fn = lambda: group_decrypt(receiver, H(ev["message"]))  # noqa: E731
            else:
                fn = lambda: (forget_below(receiver, ev["keyId"], ev["iteration"]),  # noqa: E731
                              None)
            out, err = expect(ev, fn, what)
            if err is not None:
                check(save_group_receiver(_changed(err, receiver)) == before,
                      f"{what}: receiver changed by a rejection")
            else:
                receivers[key] = out[0]
                if kind == "decrypt":
                    check_eq(out[1], H(ev["plaintext"]), f"{what}: plaintext")
        elif kind == "encrypt":
            sender = senders[party]
            out, err = expect(ev, lambda: group_encrypt(sender, H(ev["plaintext"])), what)
            if err is not None:
                check(save_group_sender(_changed(err, sender)) == save_group_sender(sender),
                      f"{what}: sender changed by a rejected encrypt")
            else:
                senders[party] = out[0]
                check_eq(out[1], H(ev["message"]), f"{what}: message")
        elif kind == "save":
            # persistence.json (README): re-saving the actor now (§11.3) gives `state`.
            if party in senders:
                got = save_group_sender(senders[party])
            else:
                check((party, None) in receivers, f"{what}: nothing to save")
                got = save_group_receiver(receivers[(party, None)])
            check_eq(got, H(ev["state"]), f"{what}: saved state")
        else:
            raise Mismatch(f"{what}: unknown group event")


def run_sender_keys(test, group_type):
    check_eq(group_type, "transcript", "group type")
    transcript_result(test)
    members = {name: party_identity(m) for name, m in test["members"].items()}
    run_group_events(test["events"], members, {}, {}, H(test["groupId"]))


# =========================================================================================
# persistence.json
# =========================================================================================

def run_account_events(events, account):
    """README: an account test's events are `bundle` and `save`."""
    for idx, ev in enumerate(events):
        what = f"event {idx} ({ev['event']} by the restored account)"
        if ev["event"] == "bundle":
            before = save_account(account)
            out, err = expect(ev, lambda: account.bundle(ev["oneTimePreKeyId"]), what)
            check(save_account(account) == before, f"{what}: account changed by a bundle")
            if err is None:
                check_eq(out, H(ev["bundle"]), f"{what}: bundle")
                decode_bundle(out)
        elif ev["event"] == "save":
            check_eq(save_account(account), H(ev["state"]), f"{what}: saved state")
        else:
            raise Mismatch(f"{what}: unknown account event")


def run_persistence(test, group_type):
    if group_type == "saved_state":
        data = H(test["state"])
        restore, save = RESTORERS[test["kind"]]
        state, _ = expect(test, lambda: restore(data), "restore")
        if state is None:
            check(not test.get("events"), "events after a failed restore")
            return
        # §11.5: a revision 0x02 account is written as revision 0x03 ("Writers write 0x03"),
        # so it re-saves to its upgraded form, not to the same bytes (README says "the same
        # bytes", written before revision 3 existed).
        check_eq(save(state), resaved_form(test["kind"], data), "re-saved state")
        if test["kind"] == "session":
            run_session_events(test["events"], {"self": Party(session=state)})
        elif test["kind"] == "account":
            run_account_events(test["events"], state)
        elif test["kind"] == "group_sender":
            run_group_events(test["events"], {}, {}, {"self": state}, state.group_id)
        else:
            run_group_events(test["events"], {}, {("self", None): state}, {}, state.group_id)
    elif group_type == "sealed_state":
        key, sealed = H(test["storageKey"]), H(test["sealed"])
        out, _ = expect(test, lambda: unseal(key, sealed), "unseal")
        if out is None:
            return
        opened, kind, state = out
        check_eq(opened, H(test["state"]), "unsealed state")
        check(kind is not None, "sealed bytes are not a saved state")
        check_eq(RESTORERS[kind][1](state), resaved_form(kind, opened),
                 "re-saved unsealed state")
        rng = ReplayRng(test["randomness"])
        check_eq(seal_state(key, opened, rng), sealed, "re-sealed state")
        rng.finish()
    else:
        raise Mismatch(f"unknown persistence group type {group_type}")


# =========================================================================================
# Files and envelope
# =========================================================================================

RUNNERS = {"kdf.json": run_kdf, "x3dh.json": run_x3dh, "wire.json": run_wire,
           "session.json": run_session, "sender_keys.json": run_sender_keys,
           "persistence.json": run_persistence, "conversations.json": run_conversations,
           "pqxdh.json": run_pqxdh_file}
FILES = ["kdf.json", "x3dh.json", "wire.json", "session.json", "sender_keys.json",
         "persistence.json", "conversations.json", "pqxdh.json"]
# README "Envelope" / "Versioning": files are tied to the spec revision and the suite. The
# version-1 files were written for revision 2 (revision 3 changed nothing of version 1,
# SPEC §13); pqxdh.json for revision 3 and the version-2 suite.
SPEC_REVISION = 2
ENVELOPES = {"pqxdh.json": (3, SUITE_PQ)}


def count_events(test):
    return len(test.get("events") or [])


def check_envelope(file_name, doc):
    """README "Envelope"."""
    revision, suite = ENVELOPES.get(file_name, (SPEC_REVISION, SUITE))
    check_eq(doc.get("specRevision"), revision, "specRevision")
    check_eq(doc.get("suite"), suite.decode(), "suite")
    check_eq(doc.get("schema"), "sottovoce-" + file_name[:-5] + "-v1", "schema name")
    tests = [t for g in doc["testGroups"] for t in g["tests"]]
    check_eq(doc.get("numberOfTests"), len(tests), "numberOfTests")
    ids = [t["tcId"] for t in tests]
    check(len(ids) == len(set(ids)), "tcId not unique")
    for t in tests:
        check(t["result"] in ("valid", "invalid"), f"tc {t['tcId']}: result")
        if t["result"] == "invalid":
            check(t.get("error") in CATEGORIES, f"tc {t['tcId']}: error category")
        for ev in t.get("events") or []:
            if "result" in ev:
                check(ev["result"] in ("valid", "invalid"), f"tc {t['tcId']}: event result")
                if ev["result"] == "invalid":
                    check(ev.get("error") in CATEGORIES, f"tc {t['tcId']}: event error")
                else:
                    check("error" not in ev, f"tc {t['tcId']}: valid event with an error")
            if "cause" in ev:   # README (conversations): a cause only next to state-mismatch
                check(ev.get("error") == "state-mismatch" and ev["cause"] in CAUSES,
                      f"tc {t['tcId']}: event cause")


def iter_tests(doc):
    for group in doc["testGroups"]:
        for test in group["tests"]:
            yield group["type"], test


def run_test(file_name, group_type, test):
    """Run one test; raises on any disagreement."""
    RUNNERS[file_name](test, group_type)
