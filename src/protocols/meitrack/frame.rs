//! TCP framing: `$$<flag><len>,` … where `len` (decimal) counts every byte
//! from the comma after it through the final `\r\n`. Stray `\r`/`\n`
//! between frames are dropped; anything else at a frame start is garbage.

use bytes::BytesMut;

use crate::protocol::FrameError;

/// Most digits a length field may have (the frame limit is checked too).
const MAX_LEN_DIGITS: usize = 6;

/// Cuts the next frame off `buf`; `None` while it is incomplete.
pub(super) fn next(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, FrameError> {
    let skip = buf
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    let _ = buf.split_to(skip);
    let Some(total) = frame_len(buf, max)? else {
        return Ok(None);
    };
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(buf.split_to(total)))
}

/// The declared size of the frame at the front of `buf`, once readable.
fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    for (i, want) in [b'$', b'$'].iter().enumerate() {
        match buf.get(i) {
            None => return Ok(None),
            Some(b) if b == want => {}
            Some(b) => {
                return Err(FrameError::Garbage(format!(
                    "byte {b:#04x} at offset {i}, expected '$$'"
                )))
            }
        }
    }
    // Offset 2 is the flag (any byte); the digits start at 3.
    let digits = buf.get(3..).unwrap_or_default();
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n > MAX_LEN_DIGITS {
        return Err(FrameError::Garbage(format!(
            "length field longer than {MAX_LEN_DIGITS} digits at offset 3"
        )));
    }
    match digits.get(n) {
        None => return Ok(None),
        Some(b',') if n > 0 => {}
        Some(b) => {
            return Err(FrameError::Garbage(format!(
                "byte {b:#04x} at offset {}, expected a length digit or ','",
                n.saturating_add(3)
            )))
        }
    }
    let declared: usize = digits
        .get(..n)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse().ok())
        .unwrap_or(usize::MAX);
    // `$$`, the flag and the digits come before the counted part.
    let total = declared.saturating_add(n).saturating_add(3);
    if total > max {
        return Err(FrameError::TooLarge {
            declared: total,
            max,
        });
    }
    Ok(Some(total))
}
