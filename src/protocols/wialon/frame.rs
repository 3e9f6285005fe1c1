//! TCP framing: one message per line. A line ends with `\n` (devices send
//! `\r\n`; a bare `\n` is accepted too). The frame keeps its terminator;
//! empty lines between messages are dropped.

use bytes::BytesMut;

use crate::protocol::FrameError;

/// Cuts the next line off `buf`; `None` while its end has not arrived.
/// A line longer than `max` bytes closes the stream.
pub(super) fn next(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, FrameError> {
    loop {
        let Some(end) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > max {
                return Err(FrameError::TooLarge {
                    declared: buf.len(),
                    max,
                });
            }
            return Ok(None);
        };
        // `end` is an index into `buf`, so `end + 1 <= buf.len()`.
        let len = end.saturating_add(1);
        if len > max {
            return Err(FrameError::TooLarge { declared: len, max });
        }
        let line = buf.split_to(len);
        if line.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            continue;
        }
        return Ok(Some(line));
    }
}
