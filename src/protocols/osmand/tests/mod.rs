//! Unit tests: the request framer (all prefixes, limits, chunked, garbage),
//! query / form / JSON decoding with exact values and replies, and
//! property tests.

// Test code: a panic is a failed test, and sizes here are tiny.
#![allow(
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]

mod decoding;
mod framing;

use chrono::{TimeZone, Utc};

use crate::protocol::{DecodeContext, Decoded, Rejected, Session as _, SessionConfig, Transport};

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap(),
    }
}

fn session() -> super::Session {
    super::Session::new(&SessionConfig::new(Transport::Tcp))
}

fn decode(req: &str) -> Result<Decoded, Rejected> {
    session().decode(req.as_bytes(), &ctx())
}

fn get(query: &str) -> String {
    format!("GET /?{query} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

fn post(content_type: &str, body: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}
