"""test-vectors/README.md "Conversations (conversations.json)": replay every test group of
conversations.json (SPEC §3.6, §3.7, §4.6, §4.7, §6.7, §7.7, §11.5-§11.7).

As in vectors.py: valid outputs are recomputed and compared byte for byte; an invalid test
or event must fail with exactly its SPEC §10 category, and with exactly its `cause` (SPEC
§10: no-sender-key, not-member; an error without `cause` must have neither); every state
involved must be unchanged by a rejection (compared through its §11 encoding); randomness is
replayed in order (§8)."""

from .devices import accept_device_list, sign_certificate, sign_device_list, verify_certificate
from .envelope import KIND_NAMES, decode_envelope
from .errors import Mismatch, ProtocolError, check, check_eq
from .groupstate import GroupState
from .persistence import (RESTORERS, restore_account, save_account, save_group_state,
                          save_record, seal_state, unseal, upgraded_account_bytes)
from .primitives import ed25519_public
from .publish import (assemble_bundle, decode_upload, generate_one_time_prekeys,
                      mark_published, retire_previous_signed_prekey, rotate_signed_prekey,
                      to_publish, verify_upload)
from .randomness import ReplayRng
from .records import Address, SessionRecord, binding
from .wire import decode_bundle

H = bytes.fromhex


def _want_error(obj):
    return obj.get("error") if obj.get("result") == "invalid" else None


def expect(obj, fn, what):
    """Run fn(); compare with obj's result/error and cause (README: a `cause` next to a
    state-mismatch error names the cause SPEC §10 requires). Returns (value, None) on
    success or (None, error) on the expected error."""
    want = _want_error(obj)
    try:
        value = fn()
    except ProtocolError as e:
        if want is None:
            raise Mismatch(f"{what}: unexpected error {e}") from None
        check_eq(e.category, want, f"{what}: error category ({e})")
        check_eq(e.cause, obj.get("cause"), f"{what}: cause ({e})")
        return None, e
    if want is not None:
        raise Mismatch(f"{what}: succeeded, expected error {want}")
    check("cause" not in obj, f"{what}: a cause on a valid outcome")
    return value, None


def address(obj):
    return Address(H(obj["user"]), obj["device"])


def transcript_result(test):
    """README: a transcript's `result` is invalid if any event is, with the first invalid
    event's category."""
    invalid = [e for e in test["events"] if e.get("result") == "invalid"]
    if invalid:
        check_eq(test["result"], "invalid", "test result vs its events")
        check_eq(test.get("error"), invalid[0].get("error"), "test error vs first invalid event")
    else:
        check_eq(test["result"], "valid", "test result vs its events")


def _roundtrip(kind, data, what):
    """Every saved state the vectors give must restore and re-save to itself (§11)."""
    restore, save = RESTORERS[kind]
    check_eq(save(restore(data)), data, f"{what}: restore and re-save")


# =========================================================================================
# publication (§3.6, §11.5) and upload (§3.6, §6.4)
# =========================================================================================

def run_publication(test):
    account = restore_account(H(test["account"]))
    check_eq(save_account(account), upgraded_account_bytes(H(test["account"])),
             "account re-saved")
    uploads = []   # the earlier toPublish results
    for idx, ev in enumerate(test["events"]):
        kind = ev["event"]
        what = f"event {idx} ({kind})"
        rng = ReplayRng(ev.get("randomness"))
        if kind == "toPublish":
            upload = to_publish(account)
            check_eq(upload, H(ev["upload"]), f"{what}: upload")
            verify_upload(decode_upload(upload))   # what the server then accepts
            uploads.append(upload)
        elif kind == "markPublished":
            # README: `upload`, an earlier toPublish result, was stored (SPEC §3.6).
            stored = H(ev["upload"])
            check(stored in uploads, f"{what}: the upload is not an earlier toPublish result")
            account = mark_published(account, decode_upload(stored))
        elif kind == "generateOneTimePreKeys":
            account = generate_one_time_prekeys(account, ev["count"], rng)
        elif kind == "rotateSignedPreKey":
            account = rotate_signed_prekey(account, rng)
        elif kind == "retirePreviousSignedPreKey":
            account = retire_previous_signed_prekey(account)
        else:
            raise Mismatch(f"{what}: unknown publication event")
        rng.finish()
        if "state" in ev:
            check_eq(save_account(account), H(ev["state"]), f"{what}: saved account")
            _roundtrip("account", H(ev["state"]), what)


def run_upload(test):
    data = H(test["upload"])
    out, _ = expect(test, lambda: _decode_and_verify(data), "upload")
    if out is None:
        return
    check_eq(out.ik.hex(), test["identityKey"], "identityKey")
    spk = test["signedPreKey"]
    if out.signed is None:
        check(spk is None, "signedPreKey: the upload has no signed entry")
    else:
        check_eq({"id": out.signed[0], "public": out.signed[1].hex(),
                  "signature": out.signed[2].hex()}, spk, "signedPreKey")
    check_eq([{"id": i, "public": k.hex()} for i, k in out.one_time], test["oneTimePreKeys"],
             "oneTimePreKeys")
    check_eq(out.encode(), data, "re-encoding")
    for b in test["bundles"]:
        bundle = assemble_bundle(out, b["oneTimePreKeyId"])
        check_eq(bundle, H(b["bundle"]), f"bundle with one-time prekey {b['oneTimePreKeyId']}")
        decode_bundle(bundle)


def _decode_and_verify(data):
    u = decode_upload(data)
    verify_upload(u)
    return u


# =========================================================================================
# device_certificate, device_list (§3.7)
# =========================================================================================

def run_device_certificate(test):
    cert = H(test["certificate"])
    if test["result"] == "valid":
        seed = H(test["userSeed"])
        check_eq(ed25519_public(seed), H(test["userKey"]), "userKey vs userSeed")
        check_eq(sign_certificate(seed, test["deviceId"], H(test["deviceKey"])), cert,
                 "certificate")
    out, _ = expect(test, lambda: verify_certificate(cert, H(test["userKey"])), "certificate")
    if out is not None:
        check_eq(out, (test["deviceId"], H(test["deviceKey"])), "certified device")


def run_device_list(test):
    if "sign" in test:
        seed = H(test["userSeed"])
        user_key = H(test["userKey"])
        check_eq(ed25519_public(seed), user_key, "userKey vs userSeed")
        previous = None
        for i, entry in enumerate(test["sign"]):
            devices = [(d["id"], H(d["key"])) for d in entry["devices"]]
            lst = sign_device_list(seed, entry["version"], devices)
            check_eq(lst, H(entry["list"]), f"sign[{i}]: list")
            # the comment: "and which later lists are accepted" (each after the one before)
            out, _ = expect(test, lambda: accept_device_list(lst, user_key, previous),
                            f"sign[{i}]: accepted")
            check_eq(sorted(out.devices), sorted(devices), f"sign[{i}]: devices")
            previous = lst
        return
    previous = test["previous"]
    expect(test, lambda: accept_device_list(H(test["list"]), H(test["userKey"]),
                                            None if previous is None else H(previous)),
           "device list")


# =========================================================================================
# binding (§4.6), envelope (§6.7)
# =========================================================================================

def run_binding(test):
    got = binding(address(test["initiator"]), address(test["responder"]))
    check_eq(got, H(test["binding"]), "binding")


ENVELOPE_FIELDS = {"content": ("content",), "distribution": ("distribution",),
                   "distribution-request": ("groupId",), "removed": ("groupId",),
                   "group-message": ("groupId", "sender", "message")}


def run_envelope(test):
    data = H(test["envelope"])
    env, _ = expect(test, lambda: decode_envelope(data), "envelope")
    if env is None:
        return
    name = KIND_NAMES[env.kind]
    check_eq(name, test["kind"], "kind")
    fields = {"content": env.content, "distribution": env.distribution,
              "groupId": env.group_id, "message": env.message}
    for f in ("content", "distribution", "groupId", "message", "sender"):
        if f not in ENVELOPE_FIELDS[name]:
            check(f not in test, f"{f}: not a field of a {name} envelope")
        elif f == "sender":
            check_eq(env.sender, address(test["sender"]), "sender")
        else:
            check_eq(fields[f].hex(), test[f], f)
    check_eq(env.encode(), data, "re-encoding")


# =========================================================================================
# records (§4.6, §4.7)
# =========================================================================================

def _ids(rec):
    cur = rec.current.session_id.hex() if rec.current is not None else None
    return cur, [s.session_id.hex() for s in rec.archived]


def _check_ids(ev, rec, what):
    cur, archived = _ids(rec)
    check_eq(cur, ev["current"], f"{what}: current")
    check_eq(archived, ev["archived"], f"{what}: archived")


def run_records(test):
    transcript_result(test)
    check_eq(sorted(p["name"] for p in test["parties"]), ["alice", "bob"], "parties")
    parties = {p["name"]: p for p in test["parties"]}
    accounts, records = {}, {}
    for name, p in parties.items():
        acct = restore_account(H(p["account"]))
        check_eq(save_account(acct), upgraded_account_bytes(H(p["account"])),
                 f"{name}: account re-saved")
        check_eq(acct.identity.pub, H(p["identityKey"]), f"{name}: identityKey vs account")
        accounts[name] = acct
    for name, p in parties.items():
        other = parties["bob" if name == "alice" else "alice"]
        # README: local address its own, remote the other's, IK_R the other's identity key.
        records[name] = SessionRecord(address(p["address"]), address(other["address"]),
                                      H(other["identityKey"]))
    for idx, ev in enumerate(test["events"]):
        party, kind = ev["party"], ev["event"]
        what = f"event {idx} ({kind} by {party})"
        rec, acct = records[party], accounts[party]
        before = save_record(rec)
        rng = ReplayRng(ev.get("randomness"))
        if kind == "initiate":
            out, err = expect(ev, lambda: rec.initiate(acct.identity, H(ev["bundle"]), rng),
                              what)
            rng.finish()
            if err is None:
                records[party] = out
                _check_ids(ev, out, what)
            else:
                check(save_record(rec) == before, f"{what}: record changed by a rejection")
        elif kind == "encrypt":
            out, err = expect(ev, lambda: rec.encrypt(H(ev["plaintext"]), rng), what)
            rng.finish()
            if err is None:
                records[party] = out[0]
                check_eq(out[1], H(ev["message"]), f"{what}: message")
            else:
                check(save_record(rec) == before, f"{what}: record changed by a rejection")
        elif kind == "decrypt":
            store = acct.prekey_store()
            store_before = store.snapshot()
            out, err = expect(ev, lambda: rec.decrypt(H(ev["message"]), store), what)
            if err is None:
                records[party] = out[0]
                accounts[party] = acct.with_store(store)
                check_eq(out[1], H(ev["plaintext"]), f"{what}: plaintext")
            else:
                check(save_record(rec) == before, f"{what}: record changed by a rejection")
                check(store.snapshot() == store_before,
                      f"{what}: prekey store changed by a rejection")
            _check_ids(ev, records[party], what)
            check_eq([i for i, _ in accounts[party].one_time], ev["oneTimePreKeyIds"],
                     f"{what}: one-time prekey ids")
        elif kind == "loseSessions":
            records[party] = SessionRecord(rec.local, rec.remote, rec.ik_r)
        elif kind == "useAccount":
            # README: the party's prekey store (and identity, for later initiate events)
            # becomes the saved `account` (§11.5); its record stays as it is.
            data = H(ev["account"])
            new_account = restore_account(data)
            check_eq(save_account(new_account), upgraded_account_bytes(data),
                     f"{what}: account re-saved")
            accounts[party] = new_account
        elif kind == "setRemoteAddress":
            records[party] = SessionRecord(rec.local, address(ev["address"]), rec.ik_r)
        elif kind == "save":
            check_eq(before, H(ev["record"]), f"{what}: saved record")
            _roundtrip("record", before, what)
        else:
            raise Mismatch(f"{what}: unknown records event")


# =========================================================================================
# groups (§7.7)
# =========================================================================================

def run_groups(test):
    transcript_result(test)
    group_id = H(test["groupId"])
    parties = [(address(p["address"]), H(p["identityKey"])) for p in test["parties"]]
    states = {}
    for idx, ev in enumerate(test["events"]):
        p, kind = ev["party"], ev["event"]
        what = f"event {idx} ({kind} by {p})"
        rng = ReplayRng(ev.get("randomness"))
        if kind == "create":
            members = [(address(m["address"]), H(m["identityKey"])) for m in ev["members"]]
            states[p] = GroupState.create(group_id, parties[p][0], parties[p][1], members, rng)
        elif kind == "encrypt":
            st = states[p]
            before = save_group_state(st)
            out, err = expect(ev, lambda: st.encrypt(H(ev["plaintext"])), what)
            if err is None:
                states[p] = out[0]
                check_eq(out[1], H(ev["envelope"]), f"{what}: envelope")
            else:
                check(save_group_state(st) == before, f"{what}: group state changed by a "
                      f"rejection")
        elif kind in ("addMember", "removeMember"):
            # README: addMember lists `member` with `identityKey` and no receiver; removeMember
            # removes it, rotating with `randomness`; the party's distribution then encodes
            # to `distribution` (SPEC §7.7); or either is refused (§7.7 Refusals: decode),
            # drawing and changing nothing.
            st = states[p]
            before = save_group_state(st)
            if kind == "addMember":
                fn = lambda: st.add_member(address(ev["member"]),  # noqa: E731
                                           H(ev["identityKey"]), rng)
            else:
                fn = lambda: st.remove_member(address(ev["member"]), rng)  # noqa: E731
            out, err = expect(ev, fn, what)
            if err is None:
                states[p] = out
                check_eq(out.sender.distribution(), H(ev["distribution"]),
                         f"{what}: distribution")
            else:
                check(save_group_state(st) == before, f"{what}: group state changed by a "
                      f"rejection")
        elif kind == "answerRequest":
            # README: a distribution request for `groupId` over a record with remote address
            # `from` and remote identity `fromIdentity` (SPEC §6.7); answering changes
            # nothing.
            st = states[p]
            before = save_group_state(st)
            out, err = expect(ev, lambda: st.answer_request(H(ev["groupId"]),
                                                            address(ev["from"]),
                                                            H(ev["fromIdentity"])), what)
            if err is None:
                check_eq(out, H(ev["distribution"]), f"{what}: distribution")
            check(save_group_state(st) == before, f"{what}: group state changed by a "
                  f"distribution request")
        elif kind in ("addDistribution", "decrypt"):
            st = states[p]
            before = save_group_state(st)
            if kind == "addDistribution":
                fn = lambda: (st.add_distribution(H(ev["distribution"]),  # noqa: E731
                                                  address(ev["from"]),
                                                  H(ev["fromIdentity"])), None)
            else:
                fn = lambda: st.decrypt(H(ev["envelope"]))  # noqa: E731
            out, err = expect(ev, fn, what)
            if err is None:
                states[p] = out[0]
                if kind == "decrypt":
                    check_eq(out[1], H(ev["plaintext"]), f"{what}: plaintext")
            else:
                check(save_group_state(st) == before, f"{what}: group state changed by a "
                      f"rejection")
        elif kind == "markRemoved":
            states[p] = states[p].mark_removed()
        elif kind != "save":
            raise Mismatch(f"{what}: unknown groups event")
        rng.finish()
        if "state" in ev:
            saved = save_group_state(states[p])
            check_eq(saved, H(ev["state"]), f"{what}: saved group state")
            _roundtrip("group", saved, what)


# =========================================================================================
# saved (§11.5-§11.7)
# =========================================================================================

def resaved_form(kind, data):
    """What restoring `data` and saving it again gives: the same bytes, except that a
    revision 0x02 account is written as revision 0x03 (§11.5: "Writers write 0x03")."""
    return upgraded_account_bytes(data) if kind == "account" else data


def run_saved(test):
    kind = test["kind"]
    data = H(test["state"])
    restore, save = RESTORERS[kind]
    state, _ = expect(test, lambda: restore(data), "restore")
    if state is None:
        check(not test.get("events"), "events after a failed restore")
        return
    check_eq(save(state), resaved_form(kind, data), "re-saved state")
    if kind == "record":
        if "current" in test or "archived" in test:
            _check_ids(test, state, "restored record")
    if "sealed" in test:
        key, sealed = H(test["storageKey"]), H(test["sealed"])
        opened, sealed_kind, sealed_state = unseal(key, sealed)
        check_eq(opened, data, "unsealed state")
        check_eq(sealed_kind, kind, "kind of the sealed state")
        check_eq(RESTORERS[kind][1](sealed_state), resaved_form(kind, opened),
                 "re-saved unsealed state")
        # No `randomness` is given: re-seal with the nonce the blob carries (§11.4).
        check_eq(seal_state(key, opened, ReplayRng([sealed[1:13].hex()])), sealed,
                 "re-sealed state")
    for idx, ev in enumerate(test["events"]):
        what = f"event {idx} ({ev['event']} by the restored {kind})"
        if ev["event"] == "save":
            check_eq(save(state), H(ev["state"]), f"{what}: saved state")
        elif ev["event"] == "toPublish" and kind == "account":
            check_eq(to_publish(state), H(ev["upload"]), f"{what}: upload")
        elif ev["event"] == "addMember" and kind == "group":
            # README: a saved group test's events may be addMember, on the restored state
            # (as in `groups`: §7.7 Adding a member, or a refusal that changes nothing).
            before = save(state)
            rng = ReplayRng(ev.get("randomness"))
            out, err = expect(ev, lambda: state.add_member(address(ev["member"]),
                                                           H(ev["identityKey"]), rng), what)
            rng.finish()
            if err is None:
                state = out
                check_eq(state.sender.distribution(), H(ev["distribution"]),
                         f"{what}: distribution")
                check_eq(save(state), H(ev["state"]), f"{what}: saved state")
            else:
                check(save(state) == before, f"{what}: group state changed by a rejection")
        elif ev["event"] == "decrypt" and kind == "group":
            before = save(state)
            out, err = expect(ev, lambda: state.decrypt(H(ev["envelope"])), what)
            if err is None:
                state = out[0]
                check_eq(out[1], H(ev["plaintext"]), f"{what}: plaintext")
            else:
                check(save(state) == before, f"{what}: group state changed by a rejection")
        else:
            raise Mismatch(f"{what}: unknown saved-state event")


RUNNERS = {"publication": run_publication, "upload": run_upload,
           "device_certificate": run_device_certificate, "device_list": run_device_list,
           "binding": run_binding, "envelope": run_envelope, "records": run_records,
           "groups": run_groups, "saved": run_saved}


def run_conversations(test, group_type):
    runner = RUNNERS.get(group_type)
    if runner is None:
        raise Mismatch(f"unknown conversations group type {group_type}")
    runner(test)
