//! Cuts TCP frames. Three shapes share the port:
//!
//! - text: `+RESP:…$`, `+BUFF:…$`, `+ACK:…$` up to `$` (a NUL ends the
//!   GT300 dialect); the frame excludes the terminator;
//! - legacy binary: `+RSP +BSP +EVT +BVT +INF +BNF +HBD +CRD +BRD +LGN`, and
//!   `+ACK` not followed by `:`, with the frame length at a fixed offset
//!   (`+ACK` u8 at 6, `+HBD` u8 at 5, `+INF`/`+BNF` u16 at 7, `+CRD`/`+BRD`/`+LGN`
//!   u16 at 6, the others u16 at 9);
//! - Protocol Pro: `2B|2D 00` + u16 length, `2B 10` + u8 length.
//!
//! Line breaks and NULs between frames are skipped. Anything else at a
//! frame start cannot be resynchronised: the connection closes.

use bytes::BytesMut;

use crate::protocol::{DecodeError, FrameError};

use super::pro;

const BINARY_HEADERS: [&[u8; 4]; 10] = [
    b"+RSP", b"+BSP", b"+EVT", b"+BVT", b"+INF", b"+BNF", b"+HBD", b"+CRD", b"+BRD", b"+LGN",
];
/// Shortest binary frame we accept (header, type/mask, length).
const MIN_BINARY: usize = 8;

/// Whether `b` (at least 5 bytes) starts a legacy binary frame.
pub(super) fn is_binary(b: &[u8]) -> bool {
    match b {
        [b'+', b'A', b'C', b'K', next, ..] => *next != b':',
        [a, b1, c, d, ..] => BINARY_HEADERS.contains(&&[*a, *b1, *c, *d]),
        _ => false,
    }
}

/// The declared length of a legacy binary frame, `Ok(None)` if more bytes
/// are needed to read it.
pub(super) fn binary_length(b: &[u8]) -> Result<Option<usize>, DecodeError> {
    let header = b.get(..4).unwrap_or_default();
    let (at, wide) = match header {
        b"+ACK" => (6, false),
        b"+HBD" => (5, false),
        b"+INF" | b"+BNF" => (7, true),
        b"+CRD" | b"+BRD" | b"+LGN" => (6, true),
        _ => (9, true),
    };
    let n = if wide {
        match (b.get(at), b.get(at.saturating_add(1))) {
            (Some(&h), Some(&l)) => usize::from(u16::from_be_bytes([h, l])),
            _ => return Ok(None),
        }
    } else {
        match b.get(at) {
            Some(&n) => usize::from(n),
            None => return Ok(None),
        }
    };
    if n < MIN_BINARY.max(at.saturating_add(2)) {
        return Err(DecodeError::Length {
            declared: n,
            actual: b.len(),
        });
    }
    Ok(Some(n))
}

/// The next frame, `Ok(None)` when more bytes are needed.
pub(super) fn next(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, FrameError> {
    let skip = buf
        .iter()
        .take_while(|&&b| matches!(b, b'\r' | b'\n' | 0 | b' '))
        .count();
    let _ = buf.split_to(skip);
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if pro::is_pro(buf) {
        return match pro::length(buf) {
            None => Ok(None),
            Some(n) if n < 4 => Err(FrameError::Garbage(format!("protocol pro length {n}"))),
            Some(n) if n > max => Err(FrameError::TooLarge { declared: n, max }),
            Some(n) if buf.len() >= n => Ok(Some(buf.split_to(n))),
            Some(_) => Ok(None),
        };
    }
    if first != b'+' {
        return Err(FrameError::Garbage(format!(
            "byte {first:#04x} at frame start"
        )));
    }
    if buf.len() < 5 {
        return Ok(None);
    }
    if is_binary(buf) {
        return match binary_length(buf) {
            Err(e) => Err(FrameError::Garbage(e.to_string())),
            Ok(None) => Ok(None),
            Ok(Some(n)) if n > max => Err(FrameError::TooLarge { declared: n, max }),
            Ok(Some(n)) if buf.len() >= n => Ok(Some(buf.split_to(n))),
            Ok(Some(_)) => Ok(None),
        };
    }
    let end = buf.iter().position(|&b| b == b'$' || b == 0);
    match end {
        Some(i) if i > max => Err(FrameError::TooLarge { declared: i, max }),
        Some(i) => {
            let frame = buf.split_to(i);
            let _ = buf.split_to(1); // the terminator
            Ok(Some(frame))
        }
        None if buf.len() > max => Err(FrameError::TooLarge {
            declared: buf.len(),
            max,
        }),
        None => Ok(None),
    }
}
