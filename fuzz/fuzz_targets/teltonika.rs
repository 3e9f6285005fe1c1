//! Teltonika over TCP after a valid IMEI login, and as a UDP datagram (see
//! `trackgate::protocol::fuzzing::teltonika_after_login`). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(trackgate::protocol::fuzzing::run_target("teltonika", data), "unknown target");
});
