//! The text protocol: `+RESP:GTxxx,…`, `+BUFF:GTxxx,…` (buffered reports
//! sent after a coverage gap) and `+ACK:GTxxx,…` (command and heartbeat
//! acknowledgements), fields separated by `,`, ended by `$` (stripped by the
//! framer over TCP, present in UDP datagrams).
//!
//! ```text
//! +RESP:GTFRI,<ver>,<imei>,<name>,…,<gnss block>…,<send time>,<count>$
//! ```

use crate::model::{AttrValue, DeviceId};
use crate::protocol::{DecodeContext, DecodeError, Decoded, MessageKind, Rejected, Reply};

use super::fields::{self, Fields};
use super::messages;
use super::models;
use super::record::{LastFix, NoFix, Output, Record};
use super::reply;
use super::Settings;

/// Most fields a message may have (the longest vectors have ~110).
const MAX_FIELDS: usize = 1024;

/// Decodes one text message (with or without its `$`).
pub(super) fn decode(
    frame: &[u8],
    settings: &Settings,
    ctx: &DecodeContext,
    last: &mut Option<LastFix>,
) -> Result<Decoded, Rejected> {
    let trimmed = trim_end(frame);
    let text = std::str::from_utf8(trimmed).map_err(|e| {
        Rejected::skip(DecodeError::Malformed {
            what: "non-utf8 text message",
            offset: e.valid_up_to(),
        })
    })?;
    let (prefix, body) = text
        .split_once(':')
        .ok_or(Rejected::skip(DecodeError::Malformed {
            what: "message header",
            offset: 0,
        }))?;
    let kind = match prefix {
        "+RESP" => Kind::Report { buffered: false },
        "+BUFF" => Kind::Report { buffered: true },
        "+ACK" => Kind::Ack,
        other => {
            return Err(Rejected::skip(DecodeError::Unsupported {
                what: "message header",
                value: other.chars().take(16).collect(),
            }))
        }
    };
    let ty = body
        .strip_prefix("GT")
        .and_then(|b| b.get(..3))
        .filter(|t| t.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or(Rejected::skip(DecodeError::Malformed {
            what: "report type",
            offset: prefix.len().saturating_add(1),
        }))?;
    let parts: Vec<&str> = text.splitn(MAX_FIELDS, ',').collect();
    let f = Fields::new(&parts);
    // `<ver>,<imei>` normally; a few old firmwares send the IMEI first.
    let (version, imei, start) = if is_imei(f.get(1)) && !matches!(f.get(1).len(), 6 | 10) {
        ("", f.get(1), 2usize)
    } else {
        (f.get(1), f.get(2), 3)
    };
    if !is_imei(imei) {
        return Err(Rejected::skip(DecodeError::Malformed {
            what: "imei",
            offset: offset_of(&parts, start.saturating_sub(1)),
        }));
    }
    let device = DeviceId::new(imei).map_err(|e| Rejected::skip(e.into()))?;
    let count = f.back(1);
    let send_time = fields::time(f.back(2));
    let sack = if settings.sack {
        reply::sack(count)
    } else {
        None
    };
    match kind {
        Kind::Ack if ty == "HBD" => Ok(Decoded::control(
            MessageKind::Keepalive,
            Some(device),
            reply::heartbeat(version, count).map_or(Reply::NONE, Reply::accept_only),
        )),
        Kind::Ack => {
            let mut r = Record::default();
            r.set("result", AttrValue::Text(format!("GT{ty}")));
            r.text("command_data", f.get(start.saturating_add(1)));
            r.text("serial", f.back(3));
            let mut out = Output::default();
            let time = send_time.unwrap_or(ctx.received);
            out.push(&device, r, time, ctx.received, NoFix::Report, last);
            Ok(Decoded {
                kind: MessageKind::CommandResponse,
                device: Some(device),
                positions: out.positions,
                reports: out.reports,
                reply: sack.map_or(Reply::NONE, Reply::accept_only),
            })
        }
        Kind::Report { buffered } => {
            let model = models::model(version, settings.model.as_deref());
            let (records, no_fix) = records(f, start, &model, ty, version.is_empty());
            let time = send_time.unwrap_or(ctx.received);
            let mut out = Output::default();
            for mut r in records {
                r.set("type", AttrValue::Text(ty.to_string()));
                if buffered {
                    r.flag("buffered", true);
                }
                out.push(&device, r, time, ctx.received, no_fix, last);
            }
            Ok(Decoded {
                kind: MessageKind::Data,
                device: Some(device),
                positions: out.positions,
                reports: out.reports,
                reply: sack.map_or(Reply::NONE, Reply::accept_only),
            })
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Report { buffered: bool },
    Ack,
}

/// The records of a report by its type.
fn records(f: Fields<'_>, start: usize, model: &str, ty: &str, old: bool) -> (Vec<Record>, NoFix) {
    if old {
        return (messages::basic(f, start, model, ty), NoFix::Report);
    }
    match ty {
        "FRI" | "GEO" | "RTL" | "DOG" => (messages::fri(f, start), NoFix::OutdatedPosition),
        "ERI" => (messages::eri(f, start, model), NoFix::OutdatedPosition),
        "IGN" | "VGN" => (messages::ign(f, start, model, true), NoFix::Report),
        "IGF" | "VGF" => (messages::ign(f, start, model, false), NoFix::Report),
        "INF" => (messages::inf(f, start, model), NoFix::Report),
        "CAN" => (messages::can(f, start, model), NoFix::Report),
        "DAT" => (messages::dat(f, start, model), NoFix::Report),
        "DTT" => (messages::dtt(f, start), NoFix::Report),
        "DAR" => (messages::dar(f, start), NoFix::Report),
        "BAA" => (
            messages::accessory(f, start, 5, &[0, 1, 2, 3, 4, 5]),
            NoFix::Report,
        ),
        "BID" => (messages::accessory(f, start, 3, &[1, 3]), NoFix::Report),
        "LBS" => (messages::lbs(f, start), NoFix::Report),
        "VER" => (messages::ver(f, start), NoFix::Report),
        _ => (messages::basic(f, start, model, ty), NoFix::Report),
    }
}

/// A 15-digit IMEI or the 14-hex-digit id some CDMA models send.
fn is_imei(s: &str) -> bool {
    (s.len() == 15 && s.bytes().all(|b| b.is_ascii_digit())) || fields::is_hex(s, 14..=14)
}

/// Byte offset of field `i`.
fn offset_of(parts: &[&str], i: usize) -> usize {
    parts
        .iter()
        .take(i)
        .fold(0usize, |o, p| o.saturating_add(p.len()).saturating_add(1))
}

/// The message without its `$` and any trailing NUL / CR / LF.
fn trim_end(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., last] = b {
        if matches!(last, b'$' | 0 | b'\r' | b'\n') {
            b = rest;
        } else {
            break;
        }
    }
    b
}
