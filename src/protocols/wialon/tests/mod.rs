//! Unit tests: the line framer, every message kind with its exact reply,
//! bad input, and property tests over generated records.

// Test code: a panic is a failed test, and sizes here are tiny.
#![allow(
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]

mod decoding;
mod device;
mod framing;
mod properties;

use chrono::{TimeZone, Utc};

use super::encode;
use crate::model::DeviceId;
use crate::protocol::{DecodeContext, Decoded, Rejected, Session as _, SessionConfig, Transport};

pub(super) const IMEI: &str = "123456789012345";

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap(),
    }
}

fn imei() -> DeviceId {
    DeviceId::new(IMEI).unwrap()
}

fn session() -> super::Session {
    super::Session::new(&SessionConfig::new(Transport::Tcp))
}

fn logged_in() -> super::Session {
    let mut s = session();
    s.decode(format!("#L#{IMEI};pass\r\n").as_bytes(), &ctx())
        .unwrap();
    s
}

fn decode(line: &str) -> Result<Decoded, Rejected> {
    logged_in().decode(line.as_bytes(), &ctx())
}

fn reply(d: &Decoded) -> &[u8] {
    d.reply.accept.as_deref().unwrap_or_default()
}
