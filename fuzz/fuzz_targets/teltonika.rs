//! Teltonika over TCP after a valid IMEI login, so the fuzzer spends its
//! time in AVL parsing rather than in the login check. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trackgate::protocol::{find, replay, DecodeContext, Transport};

const LOGIN: &[u8] = b"\x00\x0f356307042441013";

fuzz_target!(|data: &[u8]| {
    let Some(p) = find("teltonika") else { return };
    let _ = replay(p, Transport::Tcp, [LOGIN, data], &DecodeContext::now());
    let _ = replay(p, Transport::Udp, [data], &DecodeContext::now());
});
