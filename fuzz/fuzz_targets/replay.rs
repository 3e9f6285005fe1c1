//! Every registered protocol through the same replay driver the server
//! uses. Byte 0 picks the protocol, byte 1 the transport and how the rest is
//! cut into chunks (TCP segments or UDP datagrams). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trackgate::protocol::{registry, replay, DecodeContext, Transport};

fuzz_target!(|data: &[u8]| {
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
});
