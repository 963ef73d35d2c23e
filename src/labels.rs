//! Every KDF label and domain-separation string, defined once (SPEC.md §2.3).
//!
//! Each label starts with the suite name, so a future suite (SPEC.md §13)
//! can never derive the same keys from the same inputs.

/// The suite name that prefixes every label.
pub const SUITE: &str = "sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256";

/// HKDF info for the X3DH shared secret SK (SPEC.md §4.3).
pub const X3DH_INFO: &[u8] = b"sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256/X3DH";
/// HKDF info of KDF_RK (SPEC.md §5.2).
pub const ROOT_INFO: &[u8] = b"sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256/RootKey";
/// HKDF info expanding a session message key into AES key and nonce (SPEC.md §5.4).
pub const MESSAGE_KEY_INFO: &[u8] = b"sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256/MessageKey";
/// Prefix of the signed prekey signature input (SPEC.md §3.2).
pub const SIGNED_PREKEY_CONTEXT: &[u8] = b"sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256/SignedPreKey";
/// HKDF info expanding a group message key into AES key and nonce (SPEC.md §7.3).
pub const GROUP_MESSAGE_KEY_INFO: &[u8] = b"sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256/SenderKey/MessageKey";
/// Prefix of the group message signature input (SPEC.md §7.3).
pub const GROUP_SIGNATURE_CONTEXT: &[u8] = b"sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256/SenderKey/Signature";
/// HMAC data of a group message's key commitment (SPEC.md §7.3):
/// `commitment = HMAC-SHA256(MK, GROUP_COMMITMENT_LABEL)`.
pub const GROUP_COMMITMENT_LABEL: &[u8] = b"sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256/SenderKey/Commitment";
/// Prefix of a safety-number fingerprint's first hash input (SPEC.md §3.5).
pub const SAFETY_NUMBER_LABEL: &[u8] = b"sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256/SafetyNumber";
/// AEAD associated data of a sealed saved state (SPEC.md §11.4).
pub const SEALED_STATE_AD: &[u8] = b"sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256/SealedState";
/// Prefix of a device certificate's signature input (SPEC.md §3.7).
pub const DEVICE_CERTIFICATE_CONTEXT: &[u8] = b"sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256/DeviceCertificate";
/// Prefix of a device list's signature input (SPEC.md §3.7).
pub const DEVICE_LIST_CONTEXT: &[u8] = b"sottovoce-v1/X25519-Ed25519-AES256GCM-SHA256/DeviceList";

/// The suite of version 2, PQXDH (SPEC.md §2.3, §4.8).
pub const SUITE_PQ: &str = "sottovoce-v2/X25519-MLKEM1024-Ed25519-AES256GCM-SHA256";
/// HKDF info of a version-2 (PQXDH) SK (SPEC.md §4.8).
pub const PQXDH_INFO: &[u8] = b"sottovoce-v2/X25519-MLKEM1024-Ed25519-AES256GCM-SHA256/PQXDH";
/// Prefix of a KEM prekey's signature input (SPEC.md §4.8).
pub const KEM_PREKEY_CONTEXT: &[u8] = b"sottovoce-v2/X25519-MLKEM1024-Ed25519-AES256GCM-SHA256/KemPreKey";

/// Chain step input for the message key: MK = HMAC-SHA256(CK, 0x01) (SPEC.md §5.3).
pub const CHAIN_MESSAGE_KEY_BYTE: u8 = 0x01;
/// Chain step input for the next chain key: CK' = HMAC-SHA256(CK, 0x02) (SPEC.md §5.3).
pub const CHAIN_NEXT_KEY_BYTE: u8 = 0x02;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_starts_with_the_suite_name() {
        for l in [
            X3DH_INFO,
            ROOT_INFO,
            MESSAGE_KEY_INFO,
            SIGNED_PREKEY_CONTEXT,
            GROUP_MESSAGE_KEY_INFO,
            GROUP_SIGNATURE_CONTEXT,
            GROUP_COMMITMENT_LABEL,
            SAFETY_NUMBER_LABEL,
            SEALED_STATE_AD,
            DEVICE_CERTIFICATE_CONTEXT,
            DEVICE_LIST_CONTEXT,
        ] {
            assert!(l.starts_with(SUITE.as_bytes()));
            assert_eq!(l[SUITE.len()], b'/');
        }
        for l in [PQXDH_INFO, KEM_PREKEY_CONTEXT] {
            assert!(l.starts_with(SUITE_PQ.as_bytes()));
            assert_eq!(l[SUITE_PQ.len()], b'/');
        }
    }

    #[test]
    fn labels_are_distinct() {
        let all = [
            X3DH_INFO,
            ROOT_INFO,
            MESSAGE_KEY_INFO,
            SIGNED_PREKEY_CONTEXT,
            GROUP_MESSAGE_KEY_INFO,
            GROUP_SIGNATURE_CONTEXT,
            GROUP_COMMITMENT_LABEL,
            SAFETY_NUMBER_LABEL,
            SEALED_STATE_AD,
            DEVICE_CERTIFICATE_CONTEXT,
            DEVICE_LIST_CONTEXT,
            PQXDH_INFO,
            KEM_PREKEY_CONTEXT,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
