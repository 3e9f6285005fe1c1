//! The exact bytes a GT06 device gets back.
//!
//! ```text
//! ack        78 78 05 | proto | serial u16 | crc u16 | 0D 0A      (for a 78 78 frame)
//!            79 79 00 05 | proto | serial u16 | crc u16 | 0D 0A   (for a 79 79 frame)
//! content    the same with content before the serial; length = 5 + content
//! ```
//!
//! The CRC-16/X-25 covers length .. serial. Login with serial 1 gives
//! `78 78 05 01 00 01 D9 DC 0D 0A`. GT06 has no negative reply: an unknown
//! device simply gets nothing.

use bytes::Bytes;

use super::frame::{END, START_LONG, START_SHORT};
use crate::protocol::checksum::crc16_x25;

/// Length field value of a reply without content: protocol, serial, CRC.
const BARE: usize = 5;

/// The echo acknowledgement of protocol `protocol` with `serial`.
pub(super) fn ack(extended: bool, protocol: u8, serial: u16) -> Bytes {
    with_content(extended, protocol, &[], serial)
}

/// A reply carrying `content` (time response, address response).
pub(super) fn with_content(extended: bool, protocol: u8, content: &[u8], serial: u16) -> Bytes {
    let length = BARE.saturating_add(content.len());
    let mut out = Vec::with_capacity(length.saturating_add(6));
    if extended {
        out.extend_from_slice(&START_LONG);
        let l = u16::try_from(length).unwrap_or(u16::MAX);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.extend_from_slice(&START_SHORT);
        out.push(u8::try_from(length).unwrap_or(u8::MAX));
    }
    out.push(protocol);
    out.extend_from_slice(content);
    out.extend_from_slice(&serial.to_be_bytes());
    let crc = crc16_x25(out.get(2..).unwrap_or_default());
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&END);
    Bytes::from(out)
}
