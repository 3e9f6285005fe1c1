//! Unit tests: the framer (all prefixes, limits, garbage), the envelope
//! checks, every message kind with its exact reply, and property tests.

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

pub(super) const IMEI: &str = "861451040910625";

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

fn decode(frame: &[u8]) -> Result<Decoded, Rejected> {
    session().decode(frame, &ctx())
}
