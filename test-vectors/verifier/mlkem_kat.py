#!/usr/bin/env python3
"""Known-answer tests of kyber-py's ML-KEM-1024 (FIPS 203, final) for the verifier.

    python3 test-vectors/verifier/mlkem_kat.py             100 accumulated cases, modulus check
    python3 test-vectors/verifier/mlkem_kat.py --full      also 10,000 accumulated cases (~10 min)
    python3 test-vectors/verifier/mlkem_kat.py --cctv-ipd  also CCTV's own 10,000-case digest,
                                                           for FIPS 203 ipd (~10 min, see below)

Exit status 0 if every check passes, 1 on any mismatch, 2 if kyber-py is missing. Needs
the PyPI package kyber-py (written against 1.2.0); the ML-KEM functions used here are the
ones the rest of the verifier is to use: ML_KEM_1024._keygen_internal(d, z) -> (ek, dk),
ML_KEM_1024._encaps_internal(ek, m) -> (K, c), ML_KEM_1024.decaps(dk, c) -> K.

The accumulated test
--------------------
The procedure is C2SP CCTV's "accumulated pq-crystals vectors" (github.com/C2SP/CCTV,
ML-KEM/README.md, read at commit 1e3d2860d46e94e777e1b17c7a6f2436387e3ecc). SHAKE-128 of
the empty string is a deterministic RNG (its output starts 7f9c2ba4e88f827d616045507605853e);
for each case it yields, in order, d (32 bytes), z (32), m (32) and a random ciphertext
(1568). The case computes (ek, dk) = KeyGen_internal(d, z), (c, K) = Encaps_internal(ek, m),
checks Decaps(dk, c) == K, and decapsulates the random ciphertext (implicit rejection gives
a pseudorandom K'). ek, dk, c, K and K' go, in that order, into a second, running SHAKE-128
whose first 32 output bytes after the last case are the digest.

CCTV's README publishes digests for 10,000 and 1,000,000 cases, but for FIPS 203 ipd (the
2023 draft, whose K-PKE.KeyGen has G(d) where the final standard has G(d || k)), so they
cannot match a final-standard implementation. --cctv-ipd runs kyber-py with that one change
(a copy of ML_KEM_1024 whose G drops the k byte of key generation's 33-byte input) and must
give CCTV's 10,000-case ML-KEM-1024 digest: the procedure here is exactly CCTV's. The digests
of the same procedure under the final standard checked here are published by:

  100 cases     crystals-kyber-js, github.com/dajiaji/crystals-kyber-js, test/mlkem.test.ts
                ("pq-crystals/kyber Accumulated vectors"), read at commit
                e06f3d24b1809f7dcca45147539fa687251261df
  10,000 cases  BoringSSL, github.com/google/boringssl, crypto/mlkem/mlkem_test.cc
                (MLKEMTest.Iterate1024), read at commit
                a0689af29e8e460f1e5380e0fb74cef1b342e810

The crate's own test, tests/mlkem_kat.rs, checks libcrux-ml-kem against both.

The modulus check
-----------------
FIPS 203 section 7.2: Encaps must refuse an encapsulation key with a coefficient >= q = 3329
(kyber-py does it inside Encaps, raising ValueError). Wycheproof (github.com/C2SP/wycheproof,
testvectors_v1/mlkem_1024_encaps_test.json, read at commit
dac1dd4729fd1f8dd9e1e9f3dce51d783da6c166, group source "CCTV/modulus") publishes such keys;
tcId 2 is below, and tcId 17 is the same key with four bytes changed.
"""

import copy
import hashlib
import sys
import time

sys.dont_write_bytecode = True  # leave no __pycache__ in the repository

try:
    from kyber_py.ml_kem import ML_KEM_1024
except ImportError as e:  # an environment problem, not a known-answer mismatch
    if __name__ != "__main__":
        raise
    sys.stderr.write(f"mlkem_kat.py: {e}; install the PyPI package kyber-py\n")
    sys.exit(2)

EK_BYTES, DK_BYTES, CT_BYTES = 1568, 3168, 1568
Q = 3329

RNG_PREFIX = "7f9c2ba4e88f827d616045507605853e"  # CCTV README
DIGEST_100 = "c3ffe9ebecfa479c142656cbfbc6417efa05b77e994fe538eef4daed166363df"  # crystals-kyber-js
DIGEST_10_000 = "e3bf82b013307b2e9d47dde791ff6dfc82e694e6382404abdb948b908b75bad5"  # BoringSSL
CCTV_IPD_10_000 = "47ac888fe61544efc0518f46094b4f8a600965fc89822acb06dc7169d24f3543"  # CCTV README

# Wycheproof mlkem_1024_encaps_test.json tcId 2 (flag ModulusOverflow, result invalid):
# coefficient 0 of t-hat is 3329 = q.
WYCHEPROOF_TC2_EK = (
    "01ed3b18940b68a85b55309be11872c3318f89423c32a3ab705202805b0bdf7455aab06eed648c443066ed837435d593"
    "cbd1769f3a669ae414394a26b4956680c790b49b80f9b9c8d893656cd001c218789cbc91f22702ce9881700936837692"
    "16057a865c5a65c54f25f166302b9b73254ad2185df37b83cbfa8aa03439e56a8a6e82410fa82be1874f6b6acc04517e"
    "ea08391ba190d19cc883482b703493d9102145f55fb5f85f4ae76bca212324c4663acc0df9269b05db081f81b9ee824d"
    "4ea6bd59979c3d2ca6b4d689ada3c7f505ad02c5142afa6c48b90bb8316baf479f352066c1e3055ca319c2703ff432cd"
    "da2c4d63b45b3852811a5a26328227daeac344856b7adc4808c9ce07e737170603256a2be693cc82f22513b518f2d897"
    "4e4146dbb84e49c896adb069b8d32f27a64eabd73664b916f9a3bc7382b16914c807121fe8d351ebd361937142fc2990"
    "2d1c3fdd923428f20aa9994e796ca185db9910496d7f389b2fd73074369e66f42de4234e88a1669db969f4d738106cb3"
    "b47bc07c8cacfda5b828937b6d714a4d23a92d445b7952cda7fa81351c3e431bb520294c2adcb41b31a2535bb1a7b0cc"
    "5cc3770a433d3eaa3505768c37e1adfe88b97d2c39cca6a806316cdd663d6d1c4e9e2bacb6aa9de9d52ecc4b88b55020"
    "cd45c1db192e5aa0cd631642f7a1ce1a7003648445957418cc7649ac217919b5062a4938ee025b8764015ada5bc43a78"
    "8a293d7fe82abd328e7d678662db6a218b2fea5138d5808872d0c7fc31b81551906fd357e9a13178a3116c93b460b090"
    "03396fee64ad02c915911c798d588bd9f33bab01b91f20b466b89214b7436b96b837070786215dddc61df9e99459168b"
    "3c3046ef5877f165c425ec9561aaba87e384a0114973740546e59c4e1c11a45842b772547d247c19d668caaa6edf175a"
    "bdf7141fd534bf953228b5766f04bd943c38eb7634f252700e2a296d1b688a73166b9c7c8a2ac48e434f0d43434548be"
    "f03b4201b943b3e357abfa8d6c8a8bb2f83f04e4a2fad8c830868a53e3c065d33a501a8b030961bbb53eb4a462b600cb"
    "094304c2337227074d8c0bade99897056c88655b9edc63515a784b85d3c8fb0910b8f71f7bca332690adcf2b6c513500"
    "e53b6dd5431e04f0b7865178d8b19200a432e61c891ab932c75c2ed093b2ef4227013445adeab06442033520643e7012"
    "bab1015c027641054c496851181b2182e741b1341d5f27b11df49046290f7b71945bb96dc32c4fb2aa44819c594a3003"
    "98fc330f95698289caee444651d162c9bbbd7ce09dd595805f12cdb7b70838402eebc79cb9e2526734bf7bd45d01f7c6"
    "6e9b542584a1d2811ba15a1ebf699c2d4a4aff9b9c8ce3996e498b7ffb0a4e2943c6e34fbd591046203616d6a6034928"
    "5bd895a2eb6c231cae9bb87adf21c21a5abdd7e2896965c786019a4661cebed5105aa9633c4091b7c954d034429b5b5f"
    "6ce42da49cc93dc46e997170a097900e8b32fc4b5483394ad958096fec7c37c48018028c3d07917a563d2ddb967d7ac6"
    "e9e28d440121f896aea82469d3c49c2f2ac41e8c0c9834201dd9af6eb5087d048e37d1774d521399b07cd6d05f6f24b1"
    "f0c07261b03afbfb18c0e4b945e12aaf63c00822894a43a57b8514a5524db703451c7aa678d5100ffca01654c9556095"
    "b33700372a9766e9852c5255b774500a29b61aa0ac32f1bd3af61161ba437f58a330dc9d7f0c2c61054a020981a6e406"
    "eab200042b69a146387c11295815626dc9cd2ca067376a42800650fe849d67146918859d917a36dba6c0b3c528021334"
    "16b262f555186777c397ab9605cb1a35586ce125a9118a5a48566714a1757c04065ae181a8f0ce80f8a449ec9bc149a1"
    "8cec1213e1213a4c2780609d9d839f4b038aed19b1cc8893a9a9277eb25be8b848fb035f04e2cf090682dc61b51b23aa"
    "d4559d7fec2ba4694d710c5e0fc804585509f80a720dc84e9131097f8710d8344f4aac62b7b0696fa07c62102f6b0a92"
    "80b81f6ac185ac7c14b1f36f9de5770b65afced0ba273a5e1bd210d1d0749c49040b4b605ecc805db803b1c092ee021b"
    "b0db9ddb532f22ab87849275d2c9772a37ce4b7a4f0c9c8cf8dc0b0e5bb5bad62cd5b608dac6a282c7658be13ddeb855"
    "42256b0eb52ccea708f6fe4295de6d4636ba419ab92618a52b673929972bef0b"
)


def keygen(d, z, kem=ML_KEM_1024):
    """ML-KEM.KeyGen_internal (FIPS 203 Algorithm 16) -> (ek, dk)."""
    return kem._keygen_internal(d, z)


def encaps(ek, m, kem=ML_KEM_1024):
    """ML-KEM.Encaps_internal (FIPS 203 Algorithm 17) -> (c, K), with the section 7.2 checks.

    kyber-py returns (K, c); this returns them in the standard's order."""
    shared, ct = kem._encaps_internal(ek, m)
    return ct, shared


def decaps(dk, ct, kem=ML_KEM_1024):
    """ML-KEM.Decaps (FIPS 203 Algorithm 21) -> K, implicit rejection included."""
    return kem.decaps(dk, ct)


def ipd_kem():
    """A copy of ML_KEM_1024 with FIPS 203 ipd's key generation, (rho, sigma) = G(d) instead
    of G(d || k): G's only 33-byte input is d || k; Encaps and Decaps call it on 64 bytes."""
    kem = copy.copy(ML_KEM_1024)
    kem._G = lambda s: ML_KEM_1024._G(s[:32] if len(s) == 33 else s)
    return kem


def accumulated(cases, checkpoints, kem=ML_KEM_1024):
    """Runs `cases` accumulated cases; returns {n: hex digest after n cases} for each
    n in `checkpoints`, and a list of failures."""
    per_case = 32 + 32 + 32 + CT_BYTES
    stream = hashlib.shake_128(b"").digest(cases * per_case)
    digest = hashlib.shake_128()
    digests, failures = {}, []
    for case in range(cases):
        at = case * per_case
        d, z, m = stream[at : at + 32], stream[at + 32 : at + 64], stream[at + 64 : at + 96]
        random_ct = stream[at + 96 : at + per_case]
        ek, dk = keygen(d, z, kem)
        if (len(ek), len(dk)) != (EK_BYTES, DK_BYTES):
            failures.append(f"case {case}: key sizes {len(ek)}, {len(dk)}")
        ct, shared = encaps(ek, m, kem)
        if decaps(dk, ct, kem) != shared:
            failures.append(f"case {case}: Decaps(dk, c) != K")
        rejected = decaps(dk, random_ct, kem)
        for part in (ek, dk, ct, shared, rejected):
            digest.update(part)
        if case + 1 in checkpoints:
            digests[case + 1] = digest.copy().hexdigest(32)
    return digests, failures


def set_coefficient(ek, index, value):
    """Sets coefficient `index` of the ByteEncode_12-encoded t-hat in the bytearray `ek`."""
    at = index // 2 * 3
    if index % 2 == 0:
        ek[at] = value & 0xFF
        ek[at + 1] = (ek[at + 1] & 0xF0) | (value >> 8)
    else:
        ek[at + 1] = (ek[at + 1] & 0x0F) | ((value & 0x0F) << 4)
        ek[at + 2] = value >> 4


def encaps_accepts(ek):
    try:
        encaps(bytes(ek), bytes(32))
    except ValueError:
        return False
    return True


def modulus_check():
    """Returns (number of keys checked, failures)."""
    failures = []
    tc2 = bytearray.fromhex(WYCHEPROOF_TC2_EK)
    if len(tc2) != EK_BYTES or tc2[:2] != b"\x01\xed":
        return 0, ["the embedded tcId 2 key is not the published one"]
    # tcId 17: coefficient 0 back in range (bytes 0..2 = 0d e8), coefficient 1023 = 4095
    # (bytes 1534..1536 = f8 ff); byte for byte the published key.
    tc17 = bytearray(tc2)
    tc17[0:2] = b"\x0d\xe8"
    tc17[1534:1536] = b"\xf8\xff"
    checked = 0
    for name, ek in (("tcId 2", tc2), ("tcId 17", tc17)):
        checked += 1
        if encaps_accepts(ek):
            failures.append(f"Wycheproof {name} accepted")
    # Every out-of-range value at coefficient 0 is refused; reduced modulo q, accepted.
    for value in range(Q, 4096):
        ek = bytearray(tc2)
        set_coefficient(ek, 0, value)
        checked += 1
        if encaps_accepts(ek):
            failures.append(f"coefficient 0 = {value} accepted")
    for name, ek, index, value in (("tcId 2", tc2, 0, Q), ("tcId 17", tc17, 1023, 4095)):
        fixed = bytearray(ek)
        set_coefficient(fixed, index, value - Q)
        checked += 1
        if not encaps_accepts(fixed):
            failures.append(f"{name} with coefficient {index} reduced refused")
    return checked, failures


def main(argv):
    full, ipd = "--full" in argv[1:], "--cctv-ipd" in argv[1:]
    unknown = [a for a in argv[1:] if a not in ("--full", "--cctv-ipd")]
    if unknown:
        sys.stderr.write(f"usage: {argv[0]} [--full] [--cctv-ipd]\n")
        return 2
    failures = []
    started = time.perf_counter()

    prefix = hashlib.shake_128(b"").hexdigest(16)
    if prefix != RNG_PREFIX:
        failures.append(f"SHAKE-128('') starts {prefix}, CCTV says {RNG_PREFIX}")

    cases = 10_000 if full else 100
    expected = {100: DIGEST_100}
    if full:
        expected[10_000] = DIGEST_10_000
    t = time.perf_counter()
    digests, case_failures = accumulated(cases, set(expected))
    elapsed = time.perf_counter() - t
    failures += case_failures
    print(f"accumulated ML-KEM-1024 (CCTV procedure, FIPS 203 final): {cases} cases in "
          f"{elapsed:.1f} s ({1000 * elapsed / cases:.0f} ms a case: KeyGen, Encaps, 2 Decaps)")
    for n, want in sorted(expected.items()):
        got = digests.get(n)
        print(f"  after {n:>6} cases: {got} {'ok' if got == want else 'MISMATCH, expected ' + want}")
        if got != want:
            failures.append(f"digest after {n} cases")

    if ipd:
        t = time.perf_counter()
        digests, case_failures = accumulated(10_000, {10_000}, ipd_kem())
        failures += case_failures
        got = digests.get(10_000)
        print(f"accumulated ML-KEM-1024, FIPS 203 ipd key generation: 10000 cases in "
              f"{time.perf_counter() - t:.1f} s")
        print(f"  after  10000 cases: {got} "
              f"{'ok (CCTV README)' if got == CCTV_IPD_10_000 else 'MISMATCH, expected ' + CCTV_IPD_10_000}")
        if got != CCTV_IPD_10_000:
            failures.append("FIPS 203 ipd digest after 10000 cases")

    t = time.perf_counter()
    checked, modulus_failures = modulus_check()
    failures += modulus_failures
    print(f"modulus check (FIPS 203 section 7.2, Wycheproof CCTV/modulus tcId 2 and 17): "
          f"{checked} keys in {time.perf_counter() - t:.1f} s")

    for failure in failures:
        print(f"FAIL: {failure}")
    total = time.perf_counter() - started
    print(f"mlkem_kat.py: {'FAILED' if failures else 'all passed'} in {total:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
