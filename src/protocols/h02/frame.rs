//! Cuts TCP frames. Three kinds of frame share a stream, told apart by their
//! first byte:
//!
//! ```text
//! '*' …  '#'      text report; a following "\r\n" is dropped
//! '$' + record    binary record of a fixed length: 32 (5-byte id), 42 (8-byte
//!                 id) or 45 (5-byte id + 13 extra bytes), latched per stream
//! 'X' + record    32-byte record
//! ```
//!
//! Bytes before a marker (line noise, stray terminators) are skipped, as
//! the markers resynchronise the stream. The `$` length is not on the wire:
//! it is decided on the stream's first `$` record, by evidence when there is
//! some (another record or text report starts right after 32, 42 or 45
//! bytes), else by the segment holding exactly one record (32, 42 or 45
//! bytes), else 32 once 52 bytes show no record boundary (Traccar's default).
//! A 45-byte device whose first record arrives split after 32 or 42 bytes is
//! mis-latched; see `protocols/h02.md`.

use bytes::BytesMut;

use crate::protocol::FrameError;

/// First byte of a text report.
pub(super) const TEXT: u8 = b'*';
/// Last byte of a text report.
pub(super) const TEXT_END: u8 = b'#';
/// First byte of a binary record.
pub(super) const BINARY: u8 = b'$';
/// First byte of the `X` variant of the binary record.
pub(super) const BINARY_X: u8 = b'X';

/// A record with a 5-byte id.
pub(super) const SHORT: usize = 32;
/// A record with an 8-byte (IMEI) id.
pub(super) const LONG_ID: usize = 42;
/// A record with a 5-byte id and 13 extra bytes (cell data).
pub(super) const LONG: usize = 45;
const LENGTHS: [usize; 3] = [SHORT, LONG_ID, LONG];
/// Bytes of the next record that prove a boundary: marker + 5 id bytes.
const EVIDENCE: usize = 6;

/// The next frame of `buf`; `binary_len` is the stream's latched `$` length.
pub(super) fn next(
    buf: &mut BytesMut,
    binary_len: &mut Option<usize>,
    max: usize,
) -> Result<Option<BytesMut>, FrameError> {
    match buf
        .iter()
        .position(|b| matches!(*b, TEXT | BINARY | BINARY_X))
    {
        Some(start) => {
            let _noise = buf.split_to(start);
        }
        None => {
            buf.clear();
            return Ok(None);
        }
    }
    let len = match buf.first() {
        Some(&TEXT) => return text(buf, max),
        Some(&BINARY_X) => Some(SHORT),
        _ => match *binary_len {
            Some(len) => Some(len),
            None => {
                let decided = decide(buf);
                *binary_len = decided;
                decided
            }
        },
    };
    Ok(match len {
        Some(len) if buf.len() >= len => Some(buf.split_to(len)),
        _ => None,
    })
}

fn text(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, FrameError> {
    let Some(end) = buf.iter().position(|b| *b == TEXT_END) else {
        if buf.len() > max {
            return Err(FrameError::TooLarge {
                declared: buf.len(),
                max,
            });
        }
        return Ok(None);
    };
    let len = end.saturating_add(1);
    if len > max {
        return Err(FrameError::TooLarge { declared: len, max });
    }
    let frame = buf.split_to(len);
    let newlines = buf
        .iter()
        .take_while(|b| matches!(**b, b'\r' | b'\n'))
        .count();
    let _newlines = buf.split_to(newlines);
    Ok(Some(frame))
}

/// The `$` record length of this stream, if the bytes so far tell it.
fn decide(buf: &[u8]) -> Option<usize> {
    if let Some(len) = LENGTHS.into_iter().find(|&l| boundary_at(buf, l)) {
        return Some(len);
    }
    if LENGTHS.contains(&buf.len()) {
        return Some(buf.len());
    }
    (buf.len() > LONG.saturating_add(EVIDENCE)).then_some(SHORT)
}

/// Whether a record (`$` + the same 5 id bytes) or a text report (`*XX,`)
/// starts at `at`.
fn boundary_at(buf: &[u8], at: usize) -> bool {
    match buf.get(at..) {
        Some([BINARY, rest @ ..]) => match (rest.get(..5), buf.get(1..EVIDENCE)) {
            (Some(next), Some(this)) => next == this,
            _ => false,
        },
        Some([TEXT, a, b, b',', ..]) => a.is_ascii_alphabetic() && b.is_ascii_alphabetic(),
        _ => false,
    }
}
