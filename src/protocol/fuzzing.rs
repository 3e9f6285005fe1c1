//! How the fuzz targets read their input, kept in the library so the
//! targets in `fuzz/` and the regression test (`tests/fuzz_regressions.rs`,
//! which replays every committed seed and every kept crash input) run the
//! very same code. Each function must never panic, whatever the bytes.

use super::{find, registry, replay, DecodeContext, Protocol, Transport};

/// The Teltonika target's login, so its time goes into AVL parsing.
const TELTONIKA_LOGIN: &[u8] = b"\x00\x0f356307042441013";

/// Runs `data` through fuzz target `target` (its file name in
/// `fuzz/fuzz_targets`). Returns false for an unknown target.
pub fn run_target(target: &str, data: &[u8]) -> bool {
    match target {
        "replay" => any_protocol(data),
        "teltonika" => teltonika_after_login(data),
        name => match find(name) {
            Some(p) => one_protocol(p, data),
            None => return false,
        },
    }
    true
}

/// Every registered protocol: byte 0 picks the protocol, byte 1 the
/// transport and how the rest is cut (TCP segments of `1 + byte1 >> 1`
/// bytes, or UDP datagrams split at 0xA5).
pub fn any_protocol(data: &[u8]) {
    let [p, t, rest @ ..] = data else { return };
    let protocols = registry();
    let protocol = protocols[*p as usize % protocols.len()];
    let transports = protocol.transports();
    let transport = transports[(*t & 1) as usize % transports.len()];
    let cut = 1 + (*t >> 1) as usize;
    let chunks: Vec<&[u8]> = match transport {
        Transport::Tcp => rest.chunks(cut).collect(),
        Transport::Udp => rest.split(|b| *b == 0xA5).collect(),
    };
    let _ = replay(protocol, transport, chunks, &DecodeContext::now());
}

/// One protocol over each of its transports: byte 0 picks the transport
/// and the TCP segment size; the rest is the stream or the datagram.
pub fn one_protocol(protocol: &dyn Protocol, data: &[u8]) {
    let [t, rest @ ..] = data else { return };
    let transports = protocol.transports();
    let transport = transports[(*t & 1) as usize % transports.len()];
    let cut = 1 + (*t >> 1) as usize;
    let chunks: Vec<&[u8]> = match transport {
        Transport::Tcp => rest.chunks(cut).collect(),
        Transport::Udp => vec![rest],
    };
    let _ = replay(protocol, transport, chunks, &DecodeContext::now());
}

/// Teltonika over TCP after a valid IMEI login, and the same bytes as one
/// UDP datagram.
pub fn teltonika_after_login(data: &[u8]) {
    let Some(p) = find("teltonika") else { return };
    let _ = replay(
        p,
        Transport::Tcp,
        [TELTONIKA_LOGIN, data],
        &DecodeContext::now(),
    );
    let _ = replay(p, Transport::Udp, [data], &DecodeContext::now());
}
