"""test-vectors/README.md "PQXDH (pqxdh.json, version 2)": replay every test group of
pqxdh.json (SPEC §3.6, §4.8, §6.8, §11.2, §11.5).

As in vectors.py: valid outputs are recomputed and compared byte for byte; an invalid test
or event must fail with exactly its SPEC §10 category, and every state involved (sessions,
Bob's account) must be unchanged by a rejection (compared through its §11 encoding);
randomness is replayed in order (§8)."""

from .errors import Mismatch, ProtocolError, check, check_eq
from .keys import Identity, accept_kem_key, kem_prekey_signature, kem_public
from .persistence import Account, restore_account, restore_session, save_account, save_session
from .pqxdh import initiate_any, pqxdh_initiate, pqxdh_respond
from .primitives import kem_decaps, kem_encaps, kem_keygen
from .publish import (decode_upload, retire_previous_signed_prekey, rotate_signed_prekey,
                      to_publish, verify_upload)
from .randomness import ReplayRng
from .ratchet import decrypt_session_message, encrypt
from .wire import VERSION_PQ, PrekeyMessage, decode_bundle, decode_session_message
from .x3dh import respond

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


def party_identity(party):
    ident = Identity(H(party["identitySeed"]))
    check_eq(ident.pub, H(party["identityKey"]), "identityKey vs identitySeed")
    return ident


# ----- Bob's listing ---------------------------------------------------------------------

def _kem_lists(listing):
    """README: `kemPreKeys` (`id`, `kind` lastResort/oneTime, `seed`)."""
    last_resort = [(k["id"], H(k["seed"]), []) for k in listing["kemPreKeys"]
                   if k["kind"] == "lastResort"]
    one_time = [(k["id"], H(k["seed"])) for k in listing["kemPreKeys"] if k["kind"] == "oneTime"]
    check(len(last_resort) + len(one_time) == len(listing["kemPreKeys"]), "KEM prekey kind")
    return last_resort, one_time


def listing_account(listing, requires_pq=True):
    """An account (§11.5, 0x2A) holding exactly the listing's keys."""
    ident = party_identity(listing)
    spk = listing["signedPreKey"]
    last_resort, kem_one_time = _kem_lists(listing)
    ids = [spk["id"]] + [k["id"] for k in listing["oneTimePreKeys"]] + \
        [k["id"] for k in listing["kemPreKeys"]]
    return Account(ident.seed, max(ids) + 1, [(spk["id"], H(spk["private"]))],
                   [(k["id"], H(k["private"])) for k in listing["oneTimePreKeys"]], 0,
                   last_resort=last_resort, kem_one_time=kem_one_time, requires_pq=requires_pq)


def _check_account_holds(account, listing):
    """README: Bob's account is the one made from his listing (its keys, by id)."""
    check_eq(account.identity.pub.hex(), listing["identityKey"], "bobAccount identity")
    spk = listing["signedPreKey"]
    check_eq(account.signed[-1], (spk["id"], H(spk["private"])), "bobAccount signed prekey")
    check_eq(account.one_time, [(k["id"], H(k["private"])) for k in listing["oneTimePreKeys"]],
             "bobAccount one-time prekeys")
    last_resort, kem_one_time = _kem_lists(listing)
    check_eq([(i, k) for i, k, _ in account.last_resort], [(i, k) for i, k, _ in last_resort],
             "bobAccount last-resort KEM prekeys")
    check_eq(account.kem_one_time, kem_one_time, "bobAccount one-time KEM prekeys")


# ----- groups ----------------------------------------------------------------------------

def run_mlkem(test):
    """README `mlkem`: seed -> encapsulationKey; ENCAPS(ek, m) -> ciphertext, sharedSecret;
    DECAPS of both ciphertexts; the invalid test's key fails the modulus check."""
    ek = H(test["encapsulationKey"])
    if test["result"] == "invalid":
        expect(test, lambda: accept_kem_key(ek), "modulus check")
        return
    ek_got, dk = kem_keygen(H(test["seed"]))
    check_eq(ek_got, ek, "KEYGEN: ek")
    accept_kem_key(ek)
    ss, ct = kem_encaps(ek, H(test["m"]))
    check_eq(ct, H(test["ciphertext"]), "ENCAPS: ct")
    check_eq(ss, H(test["sharedSecret"]), "ENCAPS: SS")
    check_eq(kem_decaps(dk, ct), ss, "DECAPS(ct)")
    check_eq(kem_decaps(dk, H(test["otherCiphertext"])), H(test["otherSharedSecret"]),
             "DECAPS of random bytes (implicit rejection)")


def run_pqxdh_valid(test):
    """README `pqxdh_valid`: as x3dh_valid, for a version-2 bundle; randomness [EK_A, m]."""
    binding = H(test["binding"])
    alice = party_identity(test["alice"])
    account = listing_account(test["bob"])
    store = account.prekey_store()
    kem_id = test["kemPreKeyId"]
    seeds = dict(account.kem_one_time)
    seeds.update((i, k) for i, k, _ in account.last_resort)
    check(kem_id in seeds, "the bundle's KEM prekey is not in Bob's listing")
    ek = kem_public(seeds[kem_id])
    check_eq(ek, H(test["kemPublicKey"]), "KEM prekey ek = KEYGEN(seed)")
    check_eq(kem_prekey_signature(account.seed, kem_id, ek), H(test["kemSignature"]),
             "KEM.sig")
    opks = test["bob"]["oneTimePreKeys"]
    check(len(opks) <= 1, "a bundle carries at most one one-time prekey")
    check_eq(account.bundle(opks[0]["id"] if opks else None, kem_id), H(test["bundle"]),
             "bundle from Bob's keys")
    rng = ReplayRng(test["randomness"])
    x = pqxdh_initiate(alice, H(test["bundle"]), binding, rng)
    rng.finish()
    check_eq(x.ek_pub, H(test["ephemeralPublic"]), "EK_A.pub")
    check_eq([d.hex() for d in x.dh], test["dh"], "initiator DH1..DHn")
    check_eq(x.ct, H(test["kemCiphertext"]), "ct")
    check_eq(x.ss, H(test["kemSharedSecret"]), "initiator SS")
    check_eq(x.sk, H(test["sk"]), "initiator SK")
    check_eq(x.ad, H(test["ad"]), "AD")
    check_eq(x.h_ad, H(test["adHash"]), "SHA256(AD)")
    b = x.bundle
    pkm = PrekeyMessage(alice.pub, x.ek_pub, b.spk_id, b.opk_id, b"", None, VERSION_PQ,
                        b.kem_id, H(test["kemCiphertext"]))
    sk_b, h_ad_b, dh_b, ss_b, _, _, _ = pqxdh_respond(store, pkm, binding)
    check_eq([d.hex() for d in dh_b], test["dh"], "responder DH1..DHn")
    check_eq(ss_b, H(test["kemSharedSecret"]), "responder SS = DECAPS(ct)")
    check_eq(sk_b, H(test["sk"]), "responder SK")
    check_eq(h_ad_b, H(test["adHash"]), "responder SHA256(AD)")


def run_pqxdh_invalid_bundle(test):
    alice = Identity(H(test["aliceIdentitySeed"]))
    bundle = H(test["bundle"])
    decode_bundle(bundle)  # README: "it decodes"
    rng = ReplayRng(test["randomness"])
    expect(test, lambda: pqxdh_initiate(alice, bundle, H(test["binding"]), rng), "initiate")
    rng.finish()


def run_upload(test):
    """README `upload`: `upload` decodes or fails with `error`; with `verify`, it decodes
    and verifying every signature gives `verify`. The first test's `account` is the
    listing of the device that built it: its upload is everything it holds (§3.6)."""
    data = H(test["upload"])
    if "verify" in test:
        u = decode_upload(data)
        outcome = {"result": "valid"} if test["verify"] == "valid" else \
            {"result": "invalid", "error": test["verify"]}
        check_eq(test["result"], outcome["result"], "result vs verify")
        check_eq(test.get("error"), outcome.get("error"), "error vs verify")
        expect(outcome, lambda: verify_upload(u), "verify")
    else:
        u, _ = expect(test, lambda: decode_upload(data), "decode")
    if u is None:
        return
    check_eq(u.encode(), data, "re-encoding")
    if "account" in test:
        check_eq(to_publish(listing_account(test["account"])), data,
                 "the upload of everything the device holds")


def run_transcript(test):
    """README `transcript`."""
    invalid = [e for e in test["events"] if e.get("result") == "invalid"]
    check_eq(test["result"], "invalid" if invalid else "valid", "test result vs its events")
    check_eq(test.get("error"), invalid[0].get("error") if invalid else None,
             "test error vs first invalid event")
    alice = party_identity(test["alice"])
    account = restore_account(H(test["bobAccount"]))
    check_eq(save_account(account), H(test["bobAccount"]), "bobAccount re-saved")
    _check_account_holds(account, test["bob"])
    identities = {"alice": alice, "bob": account.identity}
    sessions = {}
    for idx, ev in enumerate(test["events"]):
        kind, party = ev["event"], ev["party"]
        what = f"event {idx} ({kind} by {party})"
        rng = ReplayRng(ev.get("randomness"))
        if kind == "initiate":
            bundle = H(ev["bundle"])
            b = decode_bundle(bundle)
            check_eq(account.bundle(b.opk_id, b.kem_id), bundle, f"{what}: Bob's bundle")
            s, x = initiate_any(identities[party], bundle, H(ev["binding"]), rng)
            rng.finish()
            check_eq([d.hex() for d in x.dh], ev["dh"], f"{what}: DH1..DHn")
            check_eq(x.sk, H(ev["sk"]), f"{what}: SK")
            check_eq(x.h_ad, H(ev["adHash"]), f"{what}: SHA256(AD)")
            pq = b.version == VERSION_PQ
            check_eq("kemCiphertext" in ev, pq, f"{what}: KEM fields for a version-2 bundle")
            if pq:
                check_eq(x.ct, H(ev["kemCiphertext"]), f"{what}: ct")
                check_eq(x.ss, H(ev["kemSharedSecret"]), f"{what}: SS")
            sessions[party] = s
        elif kind == "encrypt":
            s = sessions[party]
            s2, message = encrypt(s, H(ev["plaintext"]), rng)
            rng.finish()
            check_eq(message, H(ev["message"]), f"{what}: message")
            sessions[party] = s2
        elif kind == "respond":
            check_eq(party, "bob", f"{what}: party")
            before = save_account(account)
            store = account.prekey_store()
            out, err = expect(ev, lambda: respond(store, H(ev["message"]), H(ev["binding"])),
                              what)
            after = account.with_store(store)
            check_eq(save_account(after), H(ev["account"]), f"{what}: Bob's account")
            if err is not None:
                check_eq(save_account(after), before, f"{what}: account changed by a rejection")
            else:
                check_eq(out[1], H(ev["plaintext"]), f"{what}: plaintext")
                sessions["bob"], account = out[0], after
        elif kind == "decrypt":
            s = sessions[party]
            before = save_session(s)
            out, err = expect(ev, lambda: decrypt_session_message(
                s, decode_session_message(H(ev["message"]))), what)
            if err is not None:
                check_eq(save_session(getattr(err, "partial_state", s)), before,
                         f"{what}: session changed by a rejection")
            else:
                check_eq(out[1], H(ev["plaintext"]), f"{what}: plaintext")
                sessions[party] = out[0]
        elif kind == "rotate":
            account = rotate_signed_prekey(account, rng)
            rng.finish()
            check_eq(save_account(account), H(ev["account"]), f"{what}: Bob's account")
        elif kind == "retire":
            # README: the grace period ends (§3.6): every signed prekey and last-resort KEM
            # prekey but the newest is deleted.
            check_eq(party, "bob", f"{what}: party")
            account = retire_previous_signed_prekey(account)
            check_eq(save_account(account), H(ev["account"]), f"{what}: Bob's account")
        elif kind == "save":
            state = H(ev["state"])
            check_eq(save_session(sessions[party]), state, f"{what}: saved session")
            check_eq(save_session(restore_session(state)), state, f"{what}: restore, re-save")
        else:
            raise Mismatch(f"{what}: unknown event")


def run_saved_state(test):
    """README `saved_state` (kind `account`): restore, re-save to the same bytes, then the
    `bundle` events."""
    check_eq(test["kind"], "account", "kind")
    data = H(test["state"])
    account, _ = expect(test, lambda: restore_account(data), "restore")
    if account is None:
        check(not test.get("events"), "events after a failed restore")
        return
    check(account.pq, "a saved post-quantum account (0x2A)")
    check_eq(save_account(account), data, "re-saved state")
    for idx, ev in enumerate(test["events"]):
        what = f"event {idx} ({ev['event']})"
        check_eq(ev["event"], "bundle", what)
        out, _ = expect(ev, lambda: account.bundle(ev["oneTimePreKeyId"], ev["kemPreKeyId"]),
                        what)
        check_eq(save_account(account), data, f"{what}: account changed by a bundle")
        if out is not None:
            check_eq(out, H(ev["bundle"]), f"{what}: bundle")
            decode_bundle(out)


def run_wire_pq(test, group_type):
    from .vectors import wire_fields   # the field names of wire.json, plus §6.8's
    data = H(test["encoded"])
    if group_type == "decode_valid":
        fields, reencoded = wire_fields(test["type"], data)
        check_eq(fields, test["fields"], "decoded fields")
        check_eq(reencoded, data, "re-encoding")
    else:
        expect(test, lambda: wire_fields(test["type"], data), "decode")


def run_records(test):
    """README `records`: as conversations.json's `records` group, with post-quantum
    accounts (0x2A): the same runner, whose records initiate PQXDH from a 0x23 bundle."""
    from .conversations import run_records as run_conversations_records
    for p in test["parties"]:
        check(restore_account(H(p["account"])).pq, f"{p['name']}: a post-quantum account")
    run_conversations_records(test)


RUNNERS = {"mlkem": run_mlkem, "pqxdh_valid": run_pqxdh_valid,
           "pqxdh_invalid_bundle": run_pqxdh_invalid_bundle, "upload": run_upload,
           "transcript": run_transcript, "saved_state": run_saved_state,
           "records": run_records}


def run_pqxdh_file(test, group_type):
    if group_type in ("decode_valid", "decode_invalid"):
        return run_wire_pq(test, group_type)
    if group_type not in RUNNERS:
        raise Mismatch(f"unknown pqxdh group type {group_type}")
    return RUNNERS[group_type](test)
