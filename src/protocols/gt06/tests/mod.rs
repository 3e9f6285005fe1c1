//! Unit tests: the framer (every prefix, lying lengths, garbage, limits),
//! replies byte for byte, bad input, and property tests over generated
//! frames.

// Test code: a panic is a failed test, and sizes here are tiny.
#![allow(
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used
)]

mod framing;
mod properties;
mod replies;

use bytes::BytesMut;
use chrono::{TimeZone, Utc};

use super::encode;
use crate::protocol::{DecodeContext, Decoded, Rejected, Session as _, SessionConfig, Transport};

pub(super) const IMEI: &str = "356307042441013";

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap(),
    }
}

fn session() -> super::Session {
    super::Session::new(&SessionConfig::new(Transport::Tcp))
}

fn logged_in() -> super::Session {
    let mut s = session();
    s.decode(&encode::login(IMEI, None, 1), &ctx()).unwrap();
    s
}

fn decode(frame: &[u8]) -> Result<Decoded, Rejected> {
    logged_in().decode(frame, &ctx())
}

/// Every frame the session cuts from `bytes`, and what is left.
fn frames(s: &mut super::Session, bytes: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(f) = s.frame(&mut buf).unwrap() {
        out.push(f.to_vec());
    }
    (out, buf.len())
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}
