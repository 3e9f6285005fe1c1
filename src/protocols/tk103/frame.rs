//! Cuts TCP frames: `(` … `)`. A `)` inside free text (between a pair of
//! `$`, as in command results `$Notice: …)…$`) does not end the frame.
//! Bytes before a `(` are skipped; a buffer without one is dropped. A frame
//! still open after `max` bytes closes the connection.

use bytes::BytesMut;

use crate::protocol::FrameError;

/// First byte of a frame.
pub(super) const START: u8 = b'(';
/// Last byte of a frame.
pub(super) const END: u8 = b')';
/// Opens and closes free text.
pub(super) const FREE_TEXT: u8 = b'$';

pub(super) fn next(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, FrameError> {
    let Some(start) = buf.iter().position(|b| *b == START) else {
        buf.clear();
        return Ok(None);
    };
    let _noise = buf.split_to(start);
    let mut free_text = false;
    let end = buf.iter().enumerate().skip(1).find_map(|(i, b)| {
        match *b {
            FREE_TEXT => free_text = !free_text,
            END if !free_text => return Some(i),
            _ => {}
        }
        None
    });
    match end {
        Some(end) => {
            let len = end.saturating_add(1);
            if len > max {
                return Err(FrameError::TooLarge { declared: len, max });
            }
            Ok(Some(buf.split_to(len)))
        }
        None if buf.len() > max => Err(FrameError::TooLarge {
            declared: buf.len(),
            max,
        }),
        None => Ok(None),
    }
}
