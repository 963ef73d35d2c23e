//! Property test over session records (SPEC.md §4.7): random interleavings
//! of two devices initiating (at once or not), sending, losing, reordering,
//! replaying and tampering with messages, and restoring their records. The
//! model and its assertions are the `records` fuzz target's
//! (`tests/support/checks.rs`): every genuine message decrypts exactly
//! once, rejections change nothing, and both sides end on one session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

#[path = "support/checks.rs"]
mod checks;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn any_interleaving_of_two_devices_converges_without_losing_a_message(
        script in proptest::collection::vec(any::<u8>(), 0..120)
    ) {
        checks::records(&script);
    }

    /// Scripts that start with both sides initiating: the race itself.
    #[test]
    fn simultaneous_initiations_under_any_delivery_order_converge(
        opk in any::<[bool; 2]>(),
        rest in proptest::collection::vec(any::<u8>(), 0..100)
    ) {
        let mut script = vec![u8::from(opk[0]) << 6, 0x80 | (u8::from(opk[1]) << 6), 0x01, 0x81];
        script.extend(rest);
        checks::records(&script);
    }
}
