//! Unit tests: the framer (all prefixes, limits, garbage), every message
//! kind byte for byte, bad input, and property tests over generated packets.

// Test code: a panic is a failed test, and sizes here are tiny.
#![allow(clippy::panic, clippy::arithmetic_side_effects)]

mod decoding;
mod framing;
mod properties;
mod replies;

use bytes::BytesMut;
use chrono::{TimeZone, Utc};

use super::encode;
use crate::model::DeviceId;
use crate::protocol::{
    DecodeContext, Decoded, FrameError, Rejected, Session as _, SessionConfig, Transport,
};

pub(super) const IMEI: &str = "356307042441013";

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap(),
    }
}

fn imei() -> DeviceId {
    DeviceId::new(IMEI).unwrap()
}

fn session(transport: Transport) -> super::Session {
    super::Session::new(&SessionConfig::new(transport))
}

/// A TCP session that has logged in with `IMEI`.
fn logged_in() -> super::Session {
    let mut s = session(Transport::Tcp);
    s.decode(&encode::login(IMEI), &ctx()).unwrap();
    s
}

fn decode_tcp(frame: &[u8]) -> Result<Decoded, Rejected> {
    logged_in().decode(frame, &ctx())
}

fn frame_once(
    s: &mut super::Session,
    bytes: &[u8],
) -> (Result<Option<BytesMut>, FrameError>, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let r = s.frame(&mut buf);
    (r, buf)
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}
