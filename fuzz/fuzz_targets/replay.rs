//! Every registered protocol through the same replay driver the server
//! uses; byte 0 picks the protocol, byte 1 the transport and the cut (see
//! `trackgate::protocol::fuzzing::any_protocol`). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(trackgate::protocol::fuzzing::run_target("replay", data), "unknown target");
});
