//! TCP framing: finds where the frame at the front of the stream ends.
//!
//! ```text
//! IMEI packet  u16 length (1..=64) | ASCII IMEI
//! AVL packet   00 00 00 00 | u32 data length | data | u32 CRC (upper half 0)
//! keepalive    FF
//! ```
//!
//! A frame therefore starts with `00` or `FF`; any other first byte, or an
//! AVL preamble that is not four zero bytes, means the stream is lost.

use crate::protocol::FrameError;

/// The keepalive byte some firmwares send between packets.
pub(super) const KEEPALIVE: u8 = 0xFF;
/// Longest IMEI packet payload accepted (the model's device id limit).
pub(super) const MAX_IMEI_BYTES: usize = 64;
/// Preamble, data length and CRC around an AVL packet's data field.
pub(super) const AVL_OVERHEAD: usize = 12;
/// Bytes before the data field: preamble and data length.
pub(super) const AVL_HEADER: usize = 8;

/// The length of the complete frame at the front of `buf`; `None` while
/// more bytes are needed. The declared length is checked against `max` as
/// soon as it is readable, before its bytes are waited for.
pub(super) fn next_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first == KEEPALIVE {
        return Ok(Some(1));
    }
    if first != 0 {
        return Err(garbage(first, 0));
    }
    let Some(&second) = buf.get(1) else {
        return Ok(None);
    };
    if second != 0 {
        return imei_packet_len(buf, usize::from(second), max);
    }
    avl_packet_len(buf, max)
}

fn imei_packet_len(buf: &[u8], imei_len: usize, max: usize) -> Result<Option<usize>, FrameError> {
    if imei_len > MAX_IMEI_BYTES {
        return Err(FrameError::Garbage(format!(
            "IMEI packet declares {imei_len} bytes at offset 0, at most {MAX_IMEI_BYTES} allowed"
        )));
    }
    // imei_len <= 64, so the sum cannot overflow.
    let total = imei_len.saturating_add(2);
    complete(buf, total, max)
}

fn avl_packet_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    for offset in 2..4 {
        match buf.get(offset) {
            None => return Ok(None),
            Some(0) => {}
            Some(&b) => return Err(garbage(b, offset)),
        }
    }
    let Some(len) = buf
        .get(4..AVL_HEADER)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
    else {
        return Ok(None);
    };
    let declared = u32::from_be_bytes(len);
    let total = usize::try_from(declared)
        .ok()
        .and_then(|d| d.checked_add(AVL_OVERHEAD))
        .ok_or(FrameError::TooLarge {
            declared: usize::MAX,
            max,
        })?;
    complete(buf, total, max)
}

fn complete(buf: &[u8], total: usize, max: usize) -> Result<Option<usize>, FrameError> {
    if total > max {
        return Err(FrameError::TooLarge {
            declared: total,
            max,
        });
    }
    Ok((buf.len() >= total).then_some(total))
}

fn garbage(byte: u8, offset: usize) -> FrameError {
    FrameError::Garbage(format!(
        "byte {byte:#04x} at offset {offset} cannot start a Teltonika frame (00 00 00 00 preamble, 00 + IMEI length, or ff)"
    ))
}
