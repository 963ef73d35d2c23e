//! Known-answer tests of the ML-KEM-1024 implementation we use
//! (`libcrux_ml_kem::mlkem1024`) against FIPS 203 (final, August 2024).
//!
//! # The accumulated test
//!
//! The procedure is C2SP CCTV's "accumulated pq-crystals vectors"
//! (github.com/C2SP/CCTV, `ML-KEM/README.md`, read at commit
//! 1e3d2860d46e94e777e1b17c7a6f2436387e3ecc). One SHAKE-128 instance with an
//! empty input is the deterministic RNG (its output starts with
//! 7f9c2ba4e88f827d616045507605853e). For each case, in order, it yields
//! d (32 bytes), z (32 bytes), m (32 bytes) and a random ciphertext (1568
//! bytes). The case runs ML-KEM.KeyGen_internal(d, z) -> (ek, dk),
//! ML-KEM.Encaps_internal(ek, m) -> (c, K), checks that ML-KEM.Decaps(dk, c)
//! gives K back, and decapsulates the random ciphertext, which implicit
//! rejection turns into a pseudorandom key K'. Then ek, dk, c, K and K' are
//! written, in that order, into a second, running SHAKE-128 instance; after the
//! last case its first 32 bytes of output are the digest. The digest thus pins
//! every byte of 100 or 10,000 key pairs, ciphertexts and shared keys, rejected
//! ciphertexts included.
//!
//! CCTV's README publishes digests for 10,000 and 1,000,000 cases, but for
//! FIPS 203 *ipd*, the August 2023 draft, whose K-PKE.KeyGen computes
//! (rho, sigma) = G(d) where the final standard has G(d || k): for ML-KEM-1024
//! its 10,000-case digest is 47ac888fe61544efc0518f46094b4f8a600965fc89822acb06dc7169d24f3543,
//! which no implementation of the final standard can give (kyber-py with only
//! that step changed back to G(d) gives it: `mlkem_kat.py --cctv-ipd`). The
//! digests of the same procedure under the final standard are published by:
//!
//! * 10,000 cases: BoringSSL, github.com/google/boringssl,
//!   `crypto/mlkem/mlkem_test.cc`, test `MLKEMTest.Iterate1024`, whose expected
//!   value its comment says is CCTV's procedure updated to the final standard,
//!   read at commit a0689af29e8e460f1e5380e0fb74cef1b342e810 (LibreSSL's
//!   regress test `mlkem1024_iteration_test.c` has the same value);
//! * 100 cases: crystals-kyber-js, github.com/dajiaji/crystals-kyber-js,
//!   `test/mlkem.test.ts`, test "pq-crystals/kyber Accumulated vectors", read
//!   at commit e06f3d24b1809f7dcca45147539fa687251261df (the value came in
//!   with commit c6ff3edb8b65c4793496a196ca47e6bd2652455a); the same file
//!   lists BoringSSL's 10,000-case value for the same procedure.
//!
//! The independent verifier checks its own ML-KEM (kyber-py) against the
//! 100-case digest: test-vectors/verifier/mlkem_kat.py.
//!
//! SHAKE-128 is RustCrypto's `shake` crate (a dev-dependency); its stream is
//! also checked against the RNG prefix CCTV publishes.
//!
//! # The modulus check
//!
//! FIPS 203 section 7.2 requires Encaps to refuse an encapsulation key whose
//! coefficients are not all below q = 3329. Wycheproof
//! (github.com/C2SP/wycheproof, `testvectors_v1/mlkem_1024_encaps_test.json`,
//! read at commit dac1dd4729fd1f8dd9e1e9f3dce51d783da6c166; group source
//! "CCTV/modulus") publishes such keys; `validate_public_key` must refuse them
//! and accept the same key with the offending coefficient reduced.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use libcrux_ml_kem::mlkem1024::{self, MlKem1024Ciphertext, MlKem1024PublicKey};
use shake::{ExtendableOutput, Update, XofReader};

/// ML-KEM-1024 sizes (FIPS 203 section 8, table 3).
const EK_BYTES: usize = 1568;
const DK_BYTES: usize = 3168;
const CT_BYTES: usize = 1568;

/// Digest of the first 100 cases under FIPS 203 (crystals-kyber-js, see the
/// module documentation).
const DIGEST_100: &str = "c3ffe9ebecfa479c142656cbfbc6417efa05b77e994fe538eef4daed166363df";

/// Digest of the first 10,000 cases under FIPS 203 (BoringSSL's
/// `MLKEMTest.Iterate1024` `kExpected`, see the module documentation).
const DIGEST_10_000: &str = "e3bf82b013307b2e9d47dde791ff6dfc82e694e6382404abdb948b908b75bad5";

/// The first 16 bytes of SHAKE-128(""), as CCTV's README gives them.
const RNG_PREFIX: &str = "7f9c2ba4e88f827d616045507605853e";

// ---------------------------------------------------------------------------
// SHAKE-128 (FIPS 202), from RustCrypto's `shake`: the RNG of the procedure
// (its empty-input output stream) and the running digest.

struct Stream(shake::Shake128Reader);

impl Stream {
    /// SHAKE-128 of the empty input, read as a stream.
    fn new() -> Self {
        Self(shake::Shake128::default().finalize_xof())
    }

    fn squeeze(&mut self, out: &mut [u8]) {
        self.0.read(out);
    }
}

// ---------------------------------------------------------------------------
// The accumulated test.

/// Runs the first `cases` cases of the accumulated procedure and returns the
/// hex digest.
fn accumulated(cases: usize) -> String {
    let mut rng = Stream::new();
    let mut digest = shake::Shake128::default();
    for case in 0..cases {
        // d || z, as generate_key_pair takes them
        let mut seed = [0u8; 64];
        rng.squeeze(&mut seed);
        let mut m = [0u8; 32];
        rng.squeeze(&mut m);
        let mut random_ct = [0u8; CT_BYTES];
        rng.squeeze(&mut random_ct);

        let keys = mlkem1024::generate_key_pair(seed);
        let (ek, dk) = (keys.public_key(), keys.private_key());
        assert_eq!(ek.as_ref().len(), EK_BYTES);
        assert_eq!(dk.as_ref().len(), DK_BYTES);
        assert!(mlkem1024::validate_public_key(ek), "case {case}: own encapsulation key refused");

        let (ct, shared) = mlkem1024::encapsulate(ek, m);
        assert_eq!(mlkem1024::decapsulate(dk, &ct), shared, "case {case}: decapsulation");
        let rejected = mlkem1024::decapsulate(dk, &MlKem1024Ciphertext::from(random_ct));

        digest.update(ek.as_ref());
        digest.update(dk.as_ref());
        digest.update(ct.as_ref());
        digest.update(&shared);
        digest.update(&rejected);
    }
    let mut out = [0u8; 32];
    digest.finalize_xof().read(&mut out);
    hex::encode(out)
}

#[test]
fn the_rng_starts_as_cctv_publishes() {
    let mut rng = Stream::new();
    let mut prefix = [0u8; 16];
    rng.squeeze(&mut prefix);
    assert_eq!(hex::encode(prefix), RNG_PREFIX);
}

#[test]
fn accumulated_100_cases_match_the_published_fips_203_digest() {
    assert_eq!(accumulated(100), DIGEST_100);
}

#[test]
fn accumulated_10_000_cases_match_the_published_fips_203_digest() {
    assert_eq!(accumulated(10_000), DIGEST_10_000);
}

// ---------------------------------------------------------------------------
// The modulus check.

/// Wycheproof `mlkem_1024_encaps_test.json` tcId 2 (group "CCTV/modulus",
/// flag ModulusOverflow, result invalid): coefficient 0 of t-hat is 3329 = q.
const WYCHEPROOF_TC2_EK: &str = "\
    01ed3b18940b68a85b55309be11872c3318f89423c32a3ab705202805b0bdf7455aab06eed648c443066ed837435d593\
    cbd1769f3a669ae414394a26b4956680c790b49b80f9b9c8d893656cd001c218789cbc91f22702ce9881700936837692\
    16057a865c5a65c54f25f166302b9b73254ad2185df37b83cbfa8aa03439e56a8a6e82410fa82be1874f6b6acc04517e\
    ea08391ba190d19cc883482b703493d9102145f55fb5f85f4ae76bca212324c4663acc0df9269b05db081f81b9ee824d\
    4ea6bd59979c3d2ca6b4d689ada3c7f505ad02c5142afa6c48b90bb8316baf479f352066c1e3055ca319c2703ff432cd\
    da2c4d63b45b3852811a5a26328227daeac344856b7adc4808c9ce07e737170603256a2be693cc82f22513b518f2d897\
    4e4146dbb84e49c896adb069b8d32f27a64eabd73664b916f9a3bc7382b16914c807121fe8d351ebd361937142fc2990\
    2d1c3fdd923428f20aa9994e796ca185db9910496d7f389b2fd73074369e66f42de4234e88a1669db969f4d738106cb3\
    b47bc07c8cacfda5b828937b6d714a4d23a92d445b7952cda7fa81351c3e431bb520294c2adcb41b31a2535bb1a7b0cc\
    5cc3770a433d3eaa3505768c37e1adfe88b97d2c39cca6a806316cdd663d6d1c4e9e2bacb6aa9de9d52ecc4b88b55020\
    cd45c1db192e5aa0cd631642f7a1ce1a7003648445957418cc7649ac217919b5062a4938ee025b8764015ada5bc43a78\
    8a293d7fe82abd328e7d678662db6a218b2fea5138d5808872d0c7fc31b81551906fd357e9a13178a3116c93b460b090\
    03396fee64ad02c915911c798d588bd9f33bab01b91f20b466b89214b7436b96b837070786215dddc61df9e99459168b\
    3c3046ef5877f165c425ec9561aaba87e384a0114973740546e59c4e1c11a45842b772547d247c19d668caaa6edf175a\
    bdf7141fd534bf953228b5766f04bd943c38eb7634f252700e2a296d1b688a73166b9c7c8a2ac48e434f0d43434548be\
    f03b4201b943b3e357abfa8d6c8a8bb2f83f04e4a2fad8c830868a53e3c065d33a501a8b030961bbb53eb4a462b600cb\
    094304c2337227074d8c0bade99897056c88655b9edc63515a784b85d3c8fb0910b8f71f7bca332690adcf2b6c513500\
    e53b6dd5431e04f0b7865178d8b19200a432e61c891ab932c75c2ed093b2ef4227013445adeab06442033520643e7012\
    bab1015c027641054c496851181b2182e741b1341d5f27b11df49046290f7b71945bb96dc32c4fb2aa44819c594a3003\
    98fc330f95698289caee444651d162c9bbbd7ce09dd595805f12cdb7b70838402eebc79cb9e2526734bf7bd45d01f7c6\
    6e9b542584a1d2811ba15a1ebf699c2d4a4aff9b9c8ce3996e498b7ffb0a4e2943c6e34fbd591046203616d6a6034928\
    5bd895a2eb6c231cae9bb87adf21c21a5abdd7e2896965c786019a4661cebed5105aa9633c4091b7c954d034429b5b5f\
    6ce42da49cc93dc46e997170a097900e8b32fc4b5483394ad958096fec7c37c48018028c3d07917a563d2ddb967d7ac6\
    e9e28d440121f896aea82469d3c49c2f2ac41e8c0c9834201dd9af6eb5087d048e37d1774d521399b07cd6d05f6f24b1\
    f0c07261b03afbfb18c0e4b945e12aaf63c00822894a43a57b8514a5524db703451c7aa678d5100ffca01654c9556095\
    b33700372a9766e9852c5255b774500a29b61aa0ac32f1bd3af61161ba437f58a330dc9d7f0c2c61054a020981a6e406\
    eab200042b69a146387c11295815626dc9cd2ca067376a42800650fe849d67146918859d917a36dba6c0b3c528021334\
    16b262f555186777c397ab9605cb1a35586ce125a9118a5a48566714a1757c04065ae181a8f0ce80f8a449ec9bc149a1\
    8cec1213e1213a4c2780609d9d839f4b038aed19b1cc8893a9a9277eb25be8b848fb035f04e2cf090682dc61b51b23aa\
    d4559d7fec2ba4694d710c5e0fc804585509f80a720dc84e9131097f8710d8344f4aac62b7b0696fa07c62102f6b0a92\
    80b81f6ac185ac7c14b1f36f9de5770b65afced0ba273a5e1bd210d1d0749c49040b4b605ecc805db803b1c092ee021b\
    b0db9ddb532f22ab87849275d2c9772a37ce4b7a4f0c9c8cf8dc0b0e5bb5bad62cd5b608dac6a282c7658be13ddeb855\
    42256b0eb52ccea708f6fe4295de6d4636ba419ab92618a52b673929972bef0b";

fn public_key(bytes: &[u8]) -> MlKem1024PublicKey {
    let array: [u8; EK_BYTES] = bytes.try_into().unwrap();
    MlKem1024PublicKey::from(array)
}

/// Sets coefficient `index` of the ByteEncode_12-encoded t-hat to `value`.
fn set_coefficient(ek: &mut [u8], index: usize, value: u16) {
    let at = index / 2 * 3;
    let [low, high] = value.to_le_bytes();
    if index.is_multiple_of(2) {
        ek[at] = low;
        ek[at + 1] = (ek[at + 1] & 0xf0) | high;
    } else {
        ek[at + 1] = (ek[at + 1] & 0x0f) | (low << 4);
        ek[at + 2] = ((value >> 4) & 0xff) as u8;
    }
}

#[test]
fn validate_public_key_refuses_wycheproof_modulus_overflow_keys() {
    let invalid = hex::decode(WYCHEPROOF_TC2_EK).unwrap();
    assert_eq!(invalid.len(), EK_BYTES);
    assert_eq!(invalid[..2], [0x01, 0xed], "coefficient 0 is 0xd01 = 3329");
    assert!(!mlkem1024::validate_public_key(&public_key(&invalid)), "tcId 2 accepted");

    // tcId 17 of the same group is tcId 2 with coefficient 0 back in range
    // (bytes 0..2 = 0d e8) and the last coefficient, 1023, set to 4095
    // (bytes 1534..1536 = f8 ff): the published key, byte for byte.
    let mut tc17 = invalid.clone();
    tc17[..2].copy_from_slice(&[0x0d, 0xe8]);
    tc17[1534..1536].copy_from_slice(&[0xf8, 0xff]);
    assert!(!mlkem1024::validate_public_key(&public_key(&tc17)), "tcId 17 accepted");

    // Every other out-of-range value at coefficient 0 is refused too, and
    // reducing it modulo q makes the key valid: the check is the modulus check.
    for value in 3329..4096u16 {
        let mut ek = invalid.clone();
        set_coefficient(&mut ek, 0, value);
        assert!(!mlkem1024::validate_public_key(&public_key(&ek)), "coefficient 0 = {value} accepted");
        set_coefficient(&mut ek, 0, value - 3329);
        assert!(mlkem1024::validate_public_key(&public_key(&ek)), "coefficient 0 = {} refused", value - 3329);
    }
    let mut last = tc17;
    set_coefficient(&mut last, 1023, 4095 - 3329);
    assert!(mlkem1024::validate_public_key(&public_key(&last)), "tcId 17 with coefficient 1023 reduced refused");
}
