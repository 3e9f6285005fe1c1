//! Unit tests: the framer (all prefixes, escaping, garbage, limits), replies
//! byte for byte, header forms, bad input, and property tests over
//! generated messages.

// Test code: a panic is a failed test, and sizes here are tiny.
#![allow(
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used
)]

mod decoding;
mod framing;
mod properties;

use bytes::BytesMut;
use chrono::{TimeZone, Utc};

use crate::protocol::{DecodeContext, Decoded, Rejected, Session as _, SessionConfig, Transport};

/// Terminal id 013511221122 → device id 13511221122.
pub(super) const PHONE: [u8; 6] = [0x01, 0x35, 0x11, 0x22, 0x11, 0x22];

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap(),
    }
}

fn session() -> super::Session {
    super::Session::new(&SessionConfig::new(Transport::Tcp))
}

/// Frames `bytes` and decodes every frame on one session.
fn run(s: &mut super::Session, bytes: &[u8]) -> Vec<Result<Decoded, Rejected>> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(f) = s.frame(&mut buf).unwrap() {
        out.push(s.decode(&f, &ctx()));
    }
    out
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}
