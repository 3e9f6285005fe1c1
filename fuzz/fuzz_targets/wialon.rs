//! wialon through the replay driver over each of its transports; byte 0
//! picks the transport and the TCP segment size (see
//! `trackgate::protocol::fuzzing::one_protocol`). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(trackgate::protocol::fuzzing::run_target("wialon", data), "unknown target");
});
