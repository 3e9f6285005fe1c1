//! TCP framing: cuts one message off the stream and undoes the escaping.
//!
//! ```text
//! binary   7E | escaped header, body, XOR | 7E       7D 01 → 7D, 7D 02 → 7E
//! variant  E7 | escaped header, body, XOR | E7       E6 01 → E6, E6 02 → E7,
//!                                                    3E 01 → 3E, 3E 02 → 3D
//! text     ( … )                                     not escaped
//! ```
//!
//! The frame handed to the decoder is unescaped, delimiters included. Bytes
//! that cannot start a frame (some firmwares put `$$` before a message, a
//! connection may start mid-message) are dropped until a delimiter; two
//! delimiters in a row are the end of a message we never saw the start of,
//! so the first is dropped. An escape followed by anything else is dropped
//! with that byte (as Traccar's framer does): the message then fails its XOR
//! or length check instead of being guessed at.

use bytes::{Buf, BytesMut};

use crate::protocol::FrameError;

/// Start and end of a binary message.
pub(super) const DELIMITER: u8 = 0x7e;
/// Start and end of the variant some devices use.
pub(super) const ALT_DELIMITER: u8 = 0xe7;
/// Start and end of a text message.
pub(super) const TEXT_OPEN: u8 = b'(';
const TEXT_CLOSE: u8 = b')';

/// The escaping of one delimiter: `(escape byte, [(second byte, meaning)])`.
fn escapes(delimiter: u8) -> &'static [(u8, &'static [(u8, u8)])] {
    match delimiter {
        DELIMITER => &[(0x7d, &[(0x01, 0x7d), (0x02, 0x7e)])],
        ALT_DELIMITER => &[
            (0xe6, &[(0x01, 0xe6), (0x02, 0xe7)]),
            (0x3e, &[(0x01, 0x3e), (0x02, 0x3d)]),
        ],
        _ => &[],
    }
}

fn starts_frame(b: u8) -> bool {
    matches!(b, DELIMITER | ALT_DELIMITER | TEXT_OPEN)
}

/// The next complete frame, unescaped; `None` while more bytes are needed.
/// A frame longer than `max` (escaped) is an error: the stream is lost.
pub(super) fn next(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, FrameError> {
    let first = loop {
        match buf.iter().position(|&b| starts_frame(b)) {
            None => {
                buf.clear();
                return Ok(None);
            }
            Some(skip) => buf.advance(skip),
        }
        match (buf.first(), buf.get(1)) {
            (Some(&a), Some(&b)) if a == b && a != TEXT_OPEN => buf.advance(1),
            (Some(&a), _) => break a,
            (None, _) => return Ok(None),
        }
    };
    let close = if first == TEXT_OPEN {
        TEXT_CLOSE
    } else {
        first
    };
    let end = buf
        .iter()
        .skip(1)
        .position(|&b| b == close)
        .and_then(|i| i.checked_add(2));
    let Some(len) = end else {
        return if buf.len() > max {
            Err(FrameError::TooLarge {
                declared: buf.len(),
                max,
            })
        } else {
            Ok(None)
        };
    };
    if len > max {
        return Err(FrameError::TooLarge { declared: len, max });
    }
    let raw = buf.split_to(len);
    Ok(Some(unescape(raw, first)))
}

/// Undoes the escaping between the delimiters of `raw`.
fn unescape(raw: BytesMut, delimiter: u8) -> BytesMut {
    let table = escapes(delimiter);
    if !raw
        .iter()
        .any(|b| table.iter().any(|(escape, _)| escape == b))
    {
        return raw;
    }
    let mut out = BytesMut::with_capacity(raw.len());
    let mut bytes = raw.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        let meaning = table
            .iter()
            .find(|(escape, _)| *escape == b)
            .and_then(|(_, pairs)| {
                let next = *bytes.peek()?;
                pairs.iter().find(|(second, _)| *second == next)
            })
            .map(|&(_, meaning)| meaning);
        let is_escape = table.iter().any(|(escape, _)| *escape == b);
        match meaning {
            Some(m) => {
                bytes.next();
                out.extend_from_slice(&[m]);
            }
            // An escape followed by anything else: both bytes are dropped
            // (as Traccar does), so the message fails its own checks.
            None if is_escape && bytes.peek().is_some() => {
                bytes.next();
            }
            None => out.extend_from_slice(&[b]),
        }
    }
    out
}

/// Escapes `content` (everything between the delimiters) for sending.
pub(super) fn escape_into(out: &mut Vec<u8>, content: &[u8], delimiter: u8) {
    let table = escapes(delimiter);
    for &b in content {
        let pair = table.iter().find_map(|(escape, pairs)| {
            pairs
                .iter()
                .find(|(_, meaning)| *meaning == b)
                .map(|(second, _)| [*escape, *second])
        });
        match pair {
            Some(p) => out.extend_from_slice(&p),
            None => out.push(b),
        }
    }
}
