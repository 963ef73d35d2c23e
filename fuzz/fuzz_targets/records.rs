//! Fuzz target `records`: see `records` in `tests/support/checks.rs` for what it asserts.
#![no_main]

#[path = "../../tests/support/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::records(data));
