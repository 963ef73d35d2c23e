//! Fuzz target `session_decrypt`: see `fuzz/checks.rs` for what it asserts.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::session_decrypt(data));
