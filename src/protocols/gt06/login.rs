//! 0x01 login: the IMEI as 8 BCD bytes (16 digits, a leading 0), then
//! optionally a u16 type identifier and a u16 time zone word.
//!
//! ```text
//! time zone word: bits 15..4 = hhmm as a decimal number (e.g. 0x320 = 800 → 8:00),
//!                 bit 3 = west (negative), bits 2..0 reserved
//! ```

use chrono::FixedOffset;

use super::fields::hex;
use super::packet::Packet;
use super::reader::Reader;
use crate::model::DeviceId;
use crate::protocol::DecodeError;

pub(super) struct Login {
    pub imei: DeviceId,
    pub time_zone: Option<FixedOffset>,
}

pub(super) fn decode(pk: &Packet<'_>) -> Result<Login, DecodeError> {
    let mut r = Reader::new(pk.content, pk.content_offset);
    let bcd = r.bytes(8, "IMEI")?;
    let digits = hex(bcd);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecodeError::Malformed {
            what: "IMEI (not BCD)",
            offset: pk.content_offset,
        });
    }
    let imei = DeviceId::new(digits.get(1..).unwrap_or_default())?;
    let mut time_zone = None;
    if r.remaining() >= 4 {
        r.u16("type identifier")?;
        let word = r.u16("time zone")?;
        let hhmm = i32::from(word >> 4);
        let minutes = (hhmm / 100).saturating_mul(60).saturating_add(hhmm % 100);
        let seconds = minutes.saturating_mul(60);
        let seconds = if word & 0x08 != 0 {
            seconds.saturating_neg()
        } else {
            seconds
        };
        time_zone = FixedOffset::east_opt(seconds);
    }
    Ok(Login { imei, time_zone })
}
