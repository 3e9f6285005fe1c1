//! TCP framing: `u16 payload length | payload | u16 CRC`.
//!
//! A payload holds at least the IMEI (8 bytes) and the command (1 byte).
//! A length below that cannot be a Ruptela packet, and the stream has no
//! delimiter to find the next packet by, so the connection closes.

use crate::protocol::FrameError;

/// Length prefix and CRC around the payload.
pub(super) const OVERHEAD: usize = 4;
/// IMEI u64 and command byte.
pub(super) const MIN_PAYLOAD: usize = 9;

/// The length of the complete frame at the front of `buf`; `None` while
/// more bytes are needed. The limit is checked as soon as the length is read.
pub(super) fn next_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(&[hi, lo]) = buf.first_chunk::<2>() else {
        return Ok(None);
    };
    let payload = usize::from(u16::from_be_bytes([hi, lo]));
    if payload < MIN_PAYLOAD {
        return Err(FrameError::Garbage(format!(
            "payload length {payload} at offset 0, at least {MIN_PAYLOAD} needed"
        )));
    }
    let total = payload.saturating_add(OVERHEAD);
    if total > max {
        return Err(FrameError::TooLarge {
            declared: total,
            max,
        });
    }
    Ok((buf.len() >= total).then_some(total))
}
