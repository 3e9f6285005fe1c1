//! The message header and the frame's own checks (XOR, body length).
//!
//! ```text
//! 7E | msg id u16 | attrs u16 | [version u8] | terminal id | serial | [packets] | body | XOR | 7E
//!
//! attrs     bits 0-9 body length, 10-12 encryption, 13 subpackage, 14 2019 form, 15 vendor "reply wanted"
//! version   2019 form only (bit 14)
//! id        BCD phone number: 6 bytes (2013), 10 bytes (2019), 7 bytes (E7 variant)
//! serial    u16; a single byte in the vendor location reports 0x5501 / 0x5502
//! packets   subpackage only: total u16, index u16 (counted in neither the body length nor the body)
//! XOR       of every byte between the delimiters before it, after unescaping
//! ```

use super::frame::ALT_DELIMITER;
use super::read::Reader;
use crate::model::{DeviceId, DeviceIdError};
use crate::protocol::checksum::xor8;
use crate::protocol::DecodeError;

/// Vendor location reports whose serial is one byte.
pub(super) const LOCATION_2: u16 = 0x5501;
pub(super) const LOCATION_BLIND: u16 = 0x5502;

const BODY_LEN_MASK: u16 = 0x03ff;
const SUBPACKAGE: u16 = 1 << 13;
const VERSION_2019: u16 = 1 << 14;
/// Set by some vendor firmwares on 0x5501/0x5502 when they want 0x4401.
pub(super) const REPLY_WANTED: u16 = 1 << 15;

/// Terminal id lengths.
const ID_2013: usize = 6;
const ID_2019: usize = 10;
const ID_ALT: usize = 7;

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header<'a> {
    pub delimiter: u8,
    pub msg_id: u16,
    pub attrs: u16,
    /// Protocol version byte of the 2019 form.
    pub version: Option<u8>,
    /// The terminal id bytes as received (echoed in replies).
    pub terminal: &'a [u8],
    pub serial: u16,
    /// `(total, index)` of a subpackage.
    pub packet: Option<(u16, u16)>,
}

impl Header<'_> {
    pub fn body_len(&self) -> usize {
        usize::from(self.attrs & BODY_LEN_MASK)
    }
}

/// One message: header, body, and where the body starts in the frame.
#[derive(Debug, Clone)]
pub(super) struct Message<'a> {
    pub header: Header<'a>,
    pub body: &'a [u8],
    pub body_offset: usize,
}

/// Why a frame fails before its body is read; `header` is there when it
/// could be read, so the device can be told to send again.
#[derive(Debug)]
pub(super) struct Broken<'a> {
    pub error: DecodeError,
    pub header: Option<Header<'a>>,
}

/// Parses and checks an unescaped binary frame (delimiters included).
pub(super) fn parse(frame: &[u8]) -> Result<Message<'_>, Broken<'_>> {
    let broken = |what, offset| Broken {
        error: DecodeError::Malformed { what, offset },
        header: None,
    };
    let [delimiter, inner @ .., _end] = frame else {
        return Err(broken("frame (shorter than two delimiters)", 0));
    };
    let Some((&carried, content)) = inner.split_last() else {
        return Err(broken("frame (empty)", 1));
    };
    let mut r = Reader::new(content, 1);
    let header =
        read_header(&mut r, *delimiter).map_err(|s| broken("header (truncated)", s.offset))?;
    let computed = xor8(content);
    if computed != carried {
        return Err(Broken {
            error: DecodeError::Checksum {
                carried: u32::from(carried),
                computed: u32::from(computed),
            },
            header: Some(header),
        });
    }
    let body = r.rest();
    if body.len() != header.body_len() {
        return Err(Broken {
            error: DecodeError::Length {
                declared: header.body_len(),
                actual: body.len(),
            },
            header: Some(header),
        });
    }
    Ok(Message {
        header,
        body,
        body_offset: r.offset(),
    })
}

fn read_header<'a>(r: &mut Reader<'a>, delimiter: u8) -> super::read::Res<Header<'a>> {
    let msg_id = r.u16()?;
    let attrs = r.u16()?;
    let version = if attrs & VERSION_2019 != 0 {
        Some(r.u8()?)
    } else {
        None
    };
    let id_len = match (version, delimiter) {
        (Some(_), _) => ID_2019,
        (None, ALT_DELIMITER) => ID_ALT,
        (None, _) => ID_2013,
    };
    let terminal = r.take(id_len)?;
    let serial = if matches!(msg_id, LOCATION_2 | LOCATION_BLIND) {
        u16::from(r.u8()?)
    } else {
        r.u16()?
    };
    let packet = if attrs & SUBPACKAGE != 0 {
        Some((r.u16()?, r.u16()?))
    } else {
        None
    };
    Ok(Header {
        delimiter,
        msg_id,
        attrs,
        version,
        terminal,
        serial,
        packet,
    })
}

/// The terminal id as text: its BCD digits, or, when the bytes are not BCD
/// (some trackers put their IMEI there in binary), the 15-digit IMEI: the
/// first six bytes as a number plus its Luhn check digit.
pub(super) fn terminal_text(terminal: &[u8]) -> String {
    let digits = hex::encode(terminal);
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits;
    }
    let imei = terminal
        .iter()
        .take(ID_2013)
        .fold(0u64, |acc, &b| acc.wrapping_shl(8) | u64::from(b));
    format!("{imei}{}", luhn(imei))
}

/// The device id: [`terminal_text`] without leading zeros (a phone number
/// is padded to 12 or 20 digits; the same device must get the same id in
/// either form). An all-zero id stays `0`.
pub(super) fn device_id(terminal: &[u8]) -> Result<DeviceId, DeviceIdError> {
    let text = terminal_text(terminal);
    let stripped = text.trim_start_matches('0');
    DeviceId::new(if stripped.is_empty() { "0" } else { stripped })
}

/// The Luhn check digit of `n`.
pub(super) fn luhn(n: u64) -> u64 {
    let mut sum = 0u64;
    let mut rest = n;
    let mut double = true;
    while rest > 0 {
        let d = rest % 10;
        rest /= 10;
        let v = if double {
            let dd = d.wrapping_mul(2);
            if dd > 9 {
                dd.wrapping_sub(9)
            } else {
                dd
            }
        } else {
            d
        };
        sum = sum.wrapping_add(v);
        double = !double;
    }
    (10u64.wrapping_sub(sum % 10)) % 10
}
