//! One packet after framing: the length and CRC checks, the IMEI, and the
//! command.
//!
//! ```text
//! u16 payload length | IMEI u64 | command u8 | data | u16 CRC-16/KERMIT (of IMEI..data)
//! ```
//!
//! A packet whose length field or CRC disagrees with its bytes is rejected;
//! when it claims to carry records, the device gets the negative ack so it
//! sends them again at once.

use super::frame::{MIN_PAYLOAD, OVERHEAD};
use super::read::Reader;
use super::records::{self, EXTENDED, RECORDS};
use super::reply;
use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Report};
use crate::protocol::checksum::crc16_kermit;
use crate::protocol::{DecodeContext, DecodeError, Decoded, MessageKind, Rejected, Reply};

pub(super) const DEVICE_CONFIGURATION: u8 = 2;
pub(super) const DEVICE_VERSION: u8 = 3;
pub(super) const FIRMWARE_UPDATE: u8 = 4;
pub(super) const SMS_VIA_GPRS_RESPONSE: u8 = 7;
pub(super) const DTCS: u8 = 9;
pub(super) const IDENTIFICATION: u8 = 15;
pub(super) const HEARTBEAT: u8 = 16;
pub(super) const SET_IO: u8 = 17;

/// Offset of the IMEI in the frame.
const PAYLOAD_AT: usize = 2;

/// Decodes one frame.
pub(super) fn decode(frame: &[u8], ctx: &DecodeContext) -> Result<Decoded, Rejected> {
    let command = frame.get(PAYLOAD_AT.saturating_add(8)).copied();
    let resend = |error| Rejected {
        error,
        reply: match command {
            Some(c @ (RECORDS | EXTENDED | DTCS)) => {
                Some(reply::encode(reply::acked_as(c), reply::REFUSE))
            }
            _ => None,
        },
        close: false,
    };
    let Some((&[l0, l1], rest)) = frame.split_first_chunk::<2>() else {
        return Err(Rejected::skip(DecodeError::Malformed {
            what: "length",
            offset: 0,
        }));
    };
    let declared = usize::from(u16::from_be_bytes([l0, l1]));
    let actual = frame.len().saturating_sub(OVERHEAD);
    let Some((payload, &[c0, c1])) = rest.split_last_chunk::<2>() else {
        return Err(resend(DecodeError::Length { declared, actual }));
    };
    if declared != actual || payload.len() < MIN_PAYLOAD {
        return Err(resend(DecodeError::Length { declared, actual }));
    }
    let carried = u16::from_be_bytes([c0, c1]);
    let computed = crc16_kermit(payload);
    if carried != computed {
        return Err(resend(DecodeError::Checksum {
            carried: u32::from(carried),
            computed: u32::from(computed),
        }));
    }
    let mut r = Reader::new(payload, PAYLOAD_AT);
    let (imei, command) = match (r.u64(), r.u8()) {
        (Ok(i), Ok(c)) => (i, c),
        _ => {
            return Err(Rejected::skip(DecodeError::Malformed {
                what: "IMEI and command",
                offset: PAYLOAD_AT,
            }))
        }
    };
    let device = DeviceId::new(&format!("{imei:015}")).map_err(|e| Rejected::skip(e.into()))?;
    let control = |kind, reply| Ok(Decoded::control(kind, Some(device.clone()), reply));
    match command {
        RECORDS | EXTENDED => {
            let d =
                records::decode(&mut r, command, &device, ctx.received).map_err(Rejected::skip)?;
            Ok(Decoded {
                kind: MessageKind::Data,
                device: Some(device),
                positions: d.positions,
                reports: d.reports,
                reply: reply::records(command),
            })
        }
        DTCS => {
            let positions = records::dtcs(&mut r, &device, ctx.received).map_err(Rejected::skip)?;
            Ok(Decoded {
                kind: MessageKind::Data,
                device: Some(device),
                positions,
                reports: Vec::new(),
                reply: reply::records(command),
            })
        }
        IDENTIFICATION => control(MessageKind::Login, reply::identification(command)),
        HEARTBEAT => control(MessageKind::Keepalive, reply::heartbeat(command)),
        DEVICE_CONFIGURATION
        | DEVICE_VERSION
        | FIRMWARE_UPDATE
        | SMS_VIA_GPRS_RESPONSE
        | SET_IO => {
            let result = if command == SET_IO {
                r.u8().map(|b| b.to_string()).unwrap_or_default()
            } else {
                let text: String = r.rest().iter().map(|&b| char::from(b)).collect();
                text.trim_matches(|c: char| c <= ' ').to_string()
            };
            let mut attributes = Attributes::new();
            attributes.push(AttrKey::named("type"), AttrValue::Int(command.into()));
            attributes.push(AttrKey::named("result"), AttrValue::Text(result));
            Ok(Decoded {
                kind: MessageKind::CommandResponse,
                device: Some(device.clone()),
                positions: Vec::new(),
                reports: vec![Report {
                    device_id: device,
                    time: ctx.received,
                    protocol: super::NAME,
                    attributes,
                }],
                reply: Reply::NONE,
            })
        }
        _ => control(MessageKind::Other, Reply::NONE),
    }
}

/// The records ack, for tests and docs.
#[cfg(test)]
pub(super) fn records_ack() -> bytes::Bytes {
    reply::encode(reply::acked_as(RECORDS), reply::ACCEPT)
}
