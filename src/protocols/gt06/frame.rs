//! TCP framing: cuts the frame at the front of the stream.
//!
//! ```text
//! 78 78 | len u8  | protocol .. CRC (len bytes) | 0D 0A     len covers protocol..CRC
//! 79 79 | len u16 | protocol .. CRC (len bytes) | 0D 0A
//! ```
//!
//! The declared length is trusted first: a frame whose `0D 0A` sits where the
//! length says is cut there, whatever its content holds (binary fields and
//! text often contain `0D 0A`). Some firmwares send a wrong length (Wi-Fi
//! `0x69`/`0x17` packets with length 0, logins shorter than declared), so,
//! like Traccar, a `78 78` frame whose length does not end in `0D 0A` is cut
//! at the first `0D 0A` instead — also while its declared end has not
//! arrived yet. Such frames never pass the CRC in the decoder. A `79 79`
//! frame always waits for its declared length. Bytes that do not start
//! with `78 78`/`79 79` are handed on up to the next start marker as one
//! frame, which the decoder rejects (counted), so the stream resynchronises.
//! See `protocols/gt06.md` for the trade-off.

use crate::protocol::FrameError;

pub(super) const START_SHORT: [u8; 2] = [0x78, 0x78];
pub(super) const START_LONG: [u8; 2] = [0x79, 0x79];
pub(super) const END: [u8; 2] = [0x0D, 0x0A];

/// The fewest bytes before a length can be read and a frame judged.
const MIN_PEEK: usize = 5;

/// The length of the frame at the front of `buf`; `None` while more bytes
/// are needed.
pub(super) fn next_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(start) = buf.get(..2) else {
        return Ok(None);
    };
    if start != START_SHORT && start != START_LONG {
        return Ok(garbage_len(buf));
    }
    if buf.len() < MIN_PEEK {
        return Ok(None);
    }
    let long = start == START_LONG;
    let declared = declared_total(buf, long);
    if declared > max {
        return Err(FrameError::TooLarge { declared, max });
    }
    if buf.get(declared.saturating_sub(2)..declared) == Some(&END[..]) {
        return Ok(Some(declared));
    }
    if long && buf.len() < declared {
        return Ok(None);
    }
    match find_end(buf) {
        Some(len) => Ok(Some(len)),
        None if buf.len() >= max => Err(FrameError::TooLarge {
            declared: buf.len(),
            max,
        }),
        None => Ok(None),
    }
}

/// Total frame length the header declares (start, length field, counted
/// bytes, terminator).
fn declared_total(buf: &[u8], long: bool) -> usize {
    let byte = |i: usize| usize::from(buf.get(i).copied().unwrap_or(0));
    if long {
        // 2 start + 2 length + len + 2 end; len <= 65535 so no overflow.
        (byte(2) << 8 | byte(3)).saturating_add(6)
    } else {
        byte(2).saturating_add(5)
    }
}

/// The length up to and including the first `0D 0A` after the header.
fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(2)
        .skip(3)
        .position(|w| w == END)
        .map(|i| i.saturating_add(5))
}

/// Bytes that cannot start a frame: everything up to the next start marker
/// (a lone trailing `78`/`79` is kept, it may begin one).
fn garbage_len(buf: &[u8]) -> Option<usize> {
    let next = buf
        .windows(2)
        .skip(1)
        .position(|w| w == START_SHORT || w == START_LONG)
        .map(|i| i.saturating_add(1));
    match next {
        Some(n) => Some(n),
        None => {
            let keep = matches!(buf.last(), Some(0x78 | 0x79));
            let n = if keep {
                buf.len().saturating_sub(1)
            } else {
                buf.len()
            };
            (n > 0).then_some(n)
        }
    }
}
