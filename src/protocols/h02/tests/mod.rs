//! Unit tests: the framer (all prefixes, latching, limits, noise), every
//! message kind with exact values and reply bytes, bad input, and property
//! tests over generated reports.

// Test code: a panic is a failed test, and sizes here are tiny.
#![allow(clippy::panic, clippy::arithmetic_side_effects)]

mod decoding;
mod framing;
mod properties;

use bytes::BytesMut;
use chrono::{DateTime, TimeZone, Utc};

use super::encode;
use crate::protocol::{DecodeContext, Decoded, Rejected, Session as _, SessionConfig, Transport};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap()
}

fn ctx() -> DecodeContext {
    DecodeContext { received: now() }
}

fn session(transport: Transport) -> super::Session {
    super::Session::new(&SessionConfig::new(transport))
}

fn decode(frame: &[u8]) -> Result<Decoded, Rejected> {
    session(Transport::Udp).decode(frame, &ctx())
}

/// Every frame the framer cuts from `bytes` fed at once, and what is left.
fn frames(s: &mut super::Session, bytes: &[u8]) -> (Vec<Vec<u8>>, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(f) = s.frame(&mut buf).unwrap() {
        out.push(f.to_vec());
    }
    (out, buf)
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}
