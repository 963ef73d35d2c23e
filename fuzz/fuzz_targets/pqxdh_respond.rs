//! Fuzz target `pqxdh_respond`: see `tests/support/checks.rs` for what it asserts.
#![no_main]

#[path = "../../tests/support/checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::pqxdh_respond(data));
