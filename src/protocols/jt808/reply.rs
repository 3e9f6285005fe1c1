//! The exact bytes a terminal gets back. Every reply has the request's
//! form: same delimiter, terminal id bytes as received, the 2019 version
//! byte and attribute bit when the request had them; our own serial
//! (counted per connection); escaped like any message.
//!
//! ```text
//! general response 0x8001   request serial u16 | request msg id u16 | result u8
//! register reply   0x8100   request serial u16 | result u8 | auth code (ASCII terminal id, on success only)
//! vendor response  0x4401   request msg id u16 | result u8          (one-byte serial, always 01)
//! time sync        0x8109   year u16 | month | day | hour | minute | second (UTC) | result u8
//! ```
//!
//! Results: 0 success, 1 failure (device refused), 2 message error (failed
//! the XOR or length check: send again), 3 not supported. Register result 4:
//! no such terminal in the database.

use bytes::Bytes;
use chrono::{DateTime, Datelike, Timelike, Utc};

use super::frame::escape_into;
use super::header::Header;
use crate::protocol::checksum::xor8;

pub(super) const GENERAL_RESPONSE: u16 = 0x8001;
pub(super) const REGISTER_RESPONSE: u16 = 0x8100;
pub(super) const VENDOR_RESPONSE: u16 = 0x4401;
pub(super) const TIME_SYNC_RESPONSE: u16 = 0x8109;

pub(super) const SUCCESS: u8 = 0;
pub(super) const FAILURE: u8 = 1;
pub(super) const MESSAGE_ERROR: u8 = 2;
pub(super) const NOT_SUPPORTED: u8 = 3;
pub(super) const NO_SUCH_TERMINAL: u8 = 4;

const VERSION_2019: u16 = 1 << 14;

/// Builds one message addressed to the terminal of `to`.
pub(super) fn message(to: &Header<'_>, msg_id: u16, serial: Option<u16>, body: &[u8]) -> Bytes {
    let mut content = Vec::with_capacity(body.len().saturating_add(20));
    content.extend_from_slice(&msg_id.to_be_bytes());
    // Bodies built here are a few bytes plus a terminal id: far below 1024.
    let mut attrs = u16::try_from(body.len()).unwrap_or(0) & 0x03ff;
    if to.version.is_some() {
        attrs |= VERSION_2019;
    }
    content.extend_from_slice(&attrs.to_be_bytes());
    if let Some(v) = to.version {
        content.push(v);
    }
    content.extend_from_slice(to.terminal);
    match serial {
        Some(s) => content.extend_from_slice(&s.to_be_bytes()),
        None => content.push(1),
    }
    content.extend_from_slice(body);
    content.push(xor8(&content));
    let mut out = Vec::with_capacity(content.len().saturating_add(4));
    out.push(to.delimiter);
    escape_into(&mut out, &content, to.delimiter);
    out.push(to.delimiter);
    Bytes::from(out)
}

/// 0x8001 for the request `to`.
pub(super) fn general(to: &Header<'_>, serial: u16, result: u8) -> Bytes {
    let [s0, s1] = to.serial.to_be_bytes();
    let [m0, m1] = to.msg_id.to_be_bytes();
    message(
        to,
        GENERAL_RESPONSE,
        Some(serial),
        &[s0, s1, m0, m1, result],
    )
}

/// 0x8100 for a registration: the auth code is the terminal id as text.
pub(super) fn register(to: &Header<'_>, serial: u16, result: u8, auth_code: &str) -> Bytes {
    let mut body = Vec::with_capacity(auth_code.len().saturating_add(3));
    body.extend_from_slice(&to.serial.to_be_bytes());
    body.push(result);
    if result == SUCCESS {
        body.extend_from_slice(auth_code.as_bytes());
    }
    message(to, REGISTER_RESPONSE, Some(serial), &body)
}

/// 0x4401 for a vendor location report that asked for it.
pub(super) fn vendor(to: &Header<'_>, result: u8) -> Bytes {
    let [m0, m1] = to.msg_id.to_be_bytes();
    message(to, VENDOR_RESPONSE, None, &[m0, m1, result])
}

/// 0x8109: the current UTC time.
pub(super) fn time_sync(to: &Header<'_>, serial: u16, now: DateTime<Utc>, result: u8) -> Bytes {
    let year = u16::try_from(now.year()).unwrap_or(0).to_be_bytes();
    let part = |v: u32| u8::try_from(v).unwrap_or(0);
    message(
        to,
        TIME_SYNC_RESPONSE,
        Some(serial),
        &[
            year[0],
            year[1],
            part(now.month()),
            part(now.day()),
            part(now.hour()),
            part(now.minute()),
            part(now.second()),
            result,
        ],
    )
}
