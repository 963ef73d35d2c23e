#!/usr/bin/env python3
"""Prints the README performance table from criterion's results.

Run `cargo bench --bench ratchet` first. With directory arguments (copies of
`target/criterion` from several runs), each median is the lowest across the
runs: on a shared machine noise only ever adds time, so the minimum of
medians is the steadiest estimate. Each operation is shown with its
floor: the primitive calls it cannot avoid, benched in the same run
(`floor/...`), immediately before the operation.
"""
import json
import os
import sys

ROOTS = sys.argv[1:] or [os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "criterion")]


def median_us(bench_id):
    # criterion stores "group/name/with/slashes" as group/name_with_slashes.
    group, _, name = bench_id.partition("/")
    found = []
    for root in ROOTS:
        path = os.path.join(root, group, name.replace("/", "_"), "new", "estimates.json")
        if os.path.exists(path):
            with open(path) as f:
                found.append(json.load(f)["median"]["point_estimate"] / 1000.0)
    if not found:
        raise FileNotFoundError(bench_id)
    return min(found)


def main():
    m = median_us
    rows = [
        ("1:1 chain message, encrypt + decrypt, 100 B", "session/chain_message_encrypt_decrypt/100", m("floor/chain_message/100"), "", 1.5),
        ("1:1 chain message, encrypt + decrypt, 1 KiB", "session/chain_message_encrypt_decrypt/1024", m("floor/chain_message/1024"), "", 1.5),
        ("1:1 chain message, encrypt + decrypt, 16 KiB", "session/chain_message_encrypt_decrypt/16384", m("floor/chain_message/16384"), "", 1.5),
        ("1:1 chain message, encrypt only, 100 B", "session/chain_message_encrypt/100", None, "", None),
        ("1:1 chain message, encrypt_into (no alloc), 100 B", "session/chain_message_encrypt_into/100", None, "", None),
        ("1:1 chain message, decrypt only, 100 B", "session/chain_message_decrypt/100", None, "", None),
        ("1:1 DH-ratchet (ping-pong) message, 100 B", "session/ping_pong_message/100", m("floor/dh_ratchet_message/100"), "", 1.05),
        ("session setup: initiate, with one-time prekey", "session/initiate_opk", m("floor/x3dh_initiate_opk"), "", 1.05),
        ("session setup: initiate, without", "session/initiate_no_opk", m("floor/x3dh_initiate_no_opk"), "", 1.05),
        ("session setup: respond + first message, with one-time prekey", "session/respond_opk/100", m("floor/x3dh_respond_opk/100"), "", 1.05),
        ("session setup: respond + first message, without", "session/respond_no_opk/100", m("floor/x3dh_respond_no_opk/100"), "", 1.05),
        ("PQXDH setup: initiate, with one-time prekeys", "session/pqxdh_initiate_opk", m("floor/pqxdh_initiate_opk"), "", 1.05),
        ("PQXDH setup: initiate, last-resort KEM prekey, no one-time prekey", "session/pqxdh_initiate_no_opk", m("floor/pqxdh_initiate_no_opk"), "", 1.05),
        ("PQXDH setup: respond + first message, with one-time prekeys", "session/pqxdh_respond_opk/100", m("floor/pqxdh_respond_opk/100"), "", 1.05),
        ("PQXDH setup: respond + first message, last-resort KEM prekey", "session/pqxdh_respond_no_opk/100", m("floor/pqxdh_respond_no_opk/100"), "", 1.05),
        ("ML-KEM-1024 keygen from seed (libcrux)", "floor/mlkem1024_keygen", None, "", None),
        ("ML-KEM-1024 encapsulate", "floor/mlkem1024_encaps", None, "", None),
        ("ML-KEM-1024 decapsulate", "floor/mlkem1024_decaps", None, "", None),
        ("1:1 decrypt after skipping 1000", "session/decrypt_after_skipping_1000", m("floor/chain_steps_1000"), "", 1.2),
        ("group message, encrypt + decrypt, 100 B", "group/message_encrypt_decrypt/100", m("floor/group_message/100"), "", 1.05),
        ("group message, encrypt + decrypt, 1 KiB", "group/message_encrypt_decrypt/1024", m("floor/group_message/1024"), "", 1.05),
        ("group decrypt after skipping 1000", "group/decrypt_after_skipping_1000", m("floor/group_skip_1000"), "", 1.2),
        ("sender key distribution to 1024 members", "group/distribute_to_1024", m("group/floor_distribute_to_1024"), "", None),
        ("save session, 0 skipped keys", "persistence/save_session/0_skipped", None, "", None),
        ("restore session, 0 skipped keys", "persistence/restore_session/0_skipped", None, "", None),
        ("save session, 100 skipped keys", "persistence/save_session/100_skipped", None, "", None),
        ("restore session, 100 skipped keys", "persistence/restore_session/100_skipped", None, "", None),
        ("unseal session, 100 skipped keys", "persistence/unseal_session/100_skipped", None, "", None),
        ("stateless: unseal + decrypt + seal, 100 B chain message", "stateless/unseal_decrypt_seal/100", m("floor/stateless_chain_message/100"), "", 2.0),
        ("stateless: unseal + encrypt + seal, 100 B chain message", "stateless/unseal_encrypt_seal/100", m("floor/stateless_chain_message_encrypt/100"), "", 2.0),
        ("restore: unseal a session (goal: 1 µs)", "stateless/unseal_session", m("floor/state_open"), " (AEAD)", None),
        ("restore: from_bytes with every key check", "stateless/from_bytes_session_all_checks", None, "", None),
        ("restore: unseal a group receiver", "stateless/unseal_group_receiver", m("floor/group_receiver_open"), " (AEAD + key decoding)", None),
        ("forged message, MAX_SKIP ahead on the open chain", "forged/known_chain_max_skip", None, "", None),
        ("forged message, new ratchet key, N and PN gap at MAX_SKIP", "forged/new_chain_max_skip", None, "", None),
        ("forged prekey message, N = MAX_SKIP", "forged/prekey_message_max_skip", None, "", None),
        ("record: message on the current session's known chain", "record/known_chain_current_session/100", None, "", None),
        ("record: message on an archived session's known chain", "record/known_chain_archived_session/100", m("record/known_chain_current_session/100"), " (current-session hit)", 2.0),
        ("record: new chain, record of one session", "record/new_chain_one_session/100", None, "", None),
        ("record: new chain on an archived session (current tried first)", "record/new_chain_archived_session/100", m("record/new_chain_one_session/100"), " (one decrypt)", 2.0),
        ("record: forged new chain, N = MAX_SKIP, six sessions with DHs", "record/forged_new_chain_max_skip_six_sessions", m("forged/new_chain_max_skip"), " (one session)", None),
        ("record: unseal + decrypt + seal, 100 B", "record/unseal_decrypt_seal/100", m("floor/stateless_chain_message/100"), "", 2.0),
    ]
    print("| Operation | Median (µs) | Floor (µs) | Ratio | Goal |")
    print("|---|---:|---:|---:|---:|")
    for name, bench, floor, note, goal in rows:
        try:
            t = m(bench)
        except FileNotFoundError:
            print(f"| {name} | not run | | | |")
            continue
        if floor:
            ratio = t / floor
            mark = "" if goal is None or ratio <= goal else " ⚠"
            print(f"| {name} | {t:.2f} | {floor:.2f}{note} | {ratio:.2f}{mark} | {'' if goal is None else f'<= {goal}'} |")
        else:
            print(f"| {name} | {t:.2f} | | | |")
    print()
    print("Primitives (floor), same run: " + ", ".join(
        f"{label} {m(b):.2f}" for label, b in [
            ("AES-256-GCM seal+open 100 B", "floor/aes256gcm_seal_open/100"),
            ("2 HMAC chain steps", "floor/hmac_chain_step_x2"),
            ("HKDF extract+expand", "floor/hkdf_extract_expand"),
            ("X25519 keygen", "floor/x25519_keygen"),
            ("X25519 DH", "floor/x25519_dh"),
            ("Ed25519 sign", "floor/ed25519_sign/200"),
            ("Ed25519 verify (strict)", "floor/ed25519_verify_strict/200"),
        ]) + " µs.")


if __name__ == "__main__":
    sys.exit(main())
