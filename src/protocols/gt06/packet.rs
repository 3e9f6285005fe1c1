//! The envelope of one frame: start marker, length, protocol number,
//! content, serial number, CRC-16/X-25 and terminator, and its checks.
//!
//! ```text
//! 78 78 | len u8  | proto | content | serial u16 | crc u16 | 0D 0A
//! 79 79 | len u16 | proto | content | serial u16 | crc u16 | 0D 0A
//!         └──────────── CRC-16/X-25 over these ───┘
//! ```

use super::frame::{END, START_LONG, START_SHORT};
use crate::protocol::checksum::crc16_x25;
use crate::protocol::DecodeError;

/// Protocol number of the status / heartbeat packet (see `#1727` below).
const STATUS: u8 = 0x13;

/// A frame that passed its own checks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Packet<'a> {
    /// `79 79` framing (u16 length).
    pub extended: bool,
    /// The length field as sent.
    pub length: usize,
    pub protocol: u8,
    pub content: &'a [u8],
    /// Offset of `content` in the frame.
    pub content_offset: usize,
    pub serial: u16,
}

/// Splits and checks `frame`: start marker, minimum size, terminator,
/// CRC, then the length field.
pub(super) fn parse(frame: &[u8]) -> Result<Packet<'_>, DecodeError> {
    let extended = match frame.get(..2) {
        Some(s) if s == START_SHORT => false,
        Some(s) if s == START_LONG => true,
        _ => {
            return Err(DecodeError::Malformed {
                what: "start marker (78 78 or 79 79)",
                offset: 0,
            })
        }
    };
    let header: usize = if extended { 4 } else { 3 };
    // header + protocol + serial + crc + end
    let min = header.saturating_add(7);
    if frame.len() < min {
        return Err(DecodeError::Malformed {
            what: "frame (too short for protocol, serial and CRC)",
            offset: frame.len(),
        });
    }
    let Some((body, end)) = frame.split_last_chunk::<2>() else {
        return Err(DecodeError::Malformed {
            what: "terminator",
            offset: frame.len(),
        });
    };
    if *end != END {
        return Err(DecodeError::Malformed {
            what: "terminator (0D 0A)",
            offset: frame.len().saturating_sub(2),
        });
    }
    let Some((signed, crc)) = body.split_last_chunk::<2>() else {
        return Err(DecodeError::Malformed {
            what: "CRC",
            offset: body.len(),
        });
    };
    let carried = u16::from_be_bytes(*crc);
    let computed = crc16_x25(signed.get(2..).unwrap_or_default());
    if carried != computed {
        return Err(DecodeError::Checksum {
            carried: u32::from(carried),
            computed: u32::from(computed),
        });
    }
    let length = if extended {
        usize::from(u16::from_be_bytes([byte(frame, 2), byte(frame, 3)]))
    } else {
        usize::from(byte(frame, 2))
    };
    let protocol = byte(frame, header);
    // Bytes the length field counts: protocol .. CRC.
    let actual = frame.len().saturating_sub(header.saturating_add(2));
    // Some status packets declare 2 bytes less than they carry (Traccar
    // issue #1727); the CRC above already vouched for the bytes.
    let quirk = !extended && protocol == STATUS && length.saturating_add(2) == actual;
    if length != actual && !quirk {
        return Err(DecodeError::Length {
            declared: length,
            actual,
        });
    }
    let Some((rest, serial)) = signed.split_last_chunk::<2>() else {
        return Err(DecodeError::Malformed {
            what: "serial number",
            offset: header.saturating_add(1),
        });
    };
    let content = rest.get(header.saturating_add(1)..).unwrap_or_default();
    Ok(Packet {
        extended,
        length,
        protocol,
        content,
        content_offset: header.saturating_add(1),
        serial: u16::from_be_bytes(*serial),
    })
}

fn byte(frame: &[u8], i: usize) -> u8 {
    frame.get(i).copied().unwrap_or(0)
}
