//! Unit tests: the framer (all prefixes, limits), replies byte for byte,
//! records and extended records, bad input, and property tests over
//! generated packets.

// Test code: a panic is a failed test, and sizes here are tiny.
#![allow(
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used
)]

mod decoding;
mod properties;

use bytes::BytesMut;
use chrono::{TimeZone, Utc};

use crate::protocol::{DecodeContext, Decoded, Rejected, Session as _, SessionConfig, Transport};

pub(super) const IMEI: u64 = 13_226_005_504_143;

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap(),
    }
}

fn session() -> super::Session {
    super::Session::new(&SessionConfig::new(Transport::Tcp))
}

fn run(bytes: &[u8]) -> Vec<Result<Decoded, Rejected>> {
    let mut s = session();
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
