//! h02 through the replay driver over each of its transports: byte 0 picks
//! the transport and how the rest is cut into TCP segments. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trackgate::protocol::{replay, DecodeContext, Protocol, Transport};
use trackgate::protocols::h02::H02;

fuzz_target!(|data: &[u8]| {
    let [t, rest @ ..] = data else { return };
    let transports = H02.transports();
    let transport = transports[(*t & 1) as usize % transports.len()];
    let cut = 1 + (*t >> 1) as usize;
    let chunks: Vec<&[u8]> = match transport {
        Transport::Tcp => rest.chunks(cut).collect(),
        Transport::Udp => vec![rest],
    };
    let _ = replay(&H02, transport, chunks, &DecodeContext::now());
});
