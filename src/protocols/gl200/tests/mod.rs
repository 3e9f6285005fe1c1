//! Unit tests of the gl200 module: framing (every prefix), property
//! round-trips through the test encoder, and decoding edge cases.

// Test code: a panic is a failed test, and sizes here are tiny.
#![allow(clippy::panic, clippy::arithmetic_side_effects)]

use bytes::BytesMut;
use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::protocol::{DecodeContext, Session as _};

mod decoding;
mod framing;
mod properties;

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .unwrap_or_default(),
    }
}

fn session(transport: Transport, model: Option<&str>) -> Session {
    let mut c = SessionConfig::new(transport);
    c.model = model.map(std::sync::Arc::from);
    Session::new(&c)
}

/// Every frame `session` cuts from `bytes`, or the framing error.
fn frames(session: &mut Session, bytes: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(f) = session.frame(&mut buf)? {
        out.push(f.to_vec());
    }
    Ok(out)
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}
