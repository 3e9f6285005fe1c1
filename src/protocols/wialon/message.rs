//! The envelope of every Wialon IPS message and the dispatch on its type.
//!
//! ```text
//! [<prefix>]#<type>#<body>\r\n      prefix (UDP, some TCP firmwares): IMEI or 2.0;IMEI
//! #L#<imei>;<password>              1.1 login
//! #L#2.0;<imei>;<password>;<crc>    2.0 login
//! #SD#<10 fields>[;<crc>]           short data
//! #D#<16 fields>[;<crc>]            extended data
//! #B#<record>|<record>…[|<crc>]     black box: SD or D records
//! #P#                               ping
//! #M#<text>[;<crc>]                 message to the operator
//! ```
//!
//! A 2.0 CRC is CRC-16/ARC over the body up to and including the `;` (or
//! `|`) before it, written as 1–4 hex digits (some firmwares add `0x`).

use std::borrow::Cow;

use super::{params, record, reply, NAME};
use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Report};
use crate::protocol::checksum::crc16_ibm;
use crate::protocol::{DecodeContext, DecodeError, Decoded, MessageKind, Rejected, Reply};

/// Field count of a 1.1 `#SD#` body; 2.0 appends the CRC.
pub(super) const SHORT_FIELDS: usize = 10;
/// Field count of a 1.1 `#D#` body; 2.0 appends the CRC.
pub(super) const DATA_FIELDS: usize = 16;

/// The parts of one line.
struct Envelope<'a> {
    /// The id before the first `#`, if any.
    prefix: Option<&'a [u8]>,
    kind: &'a [u8],
    body: &'a [u8],
    /// Offset of `body` in the line, for error offsets.
    body_at: usize,
}

pub(super) fn decode(
    device: &mut Option<DeviceId>,
    frame: &[u8],
    ctx: &DecodeContext,
) -> Result<Decoded, Rejected> {
    let line = trim_line_end(frame);
    let env = envelope(line).map_err(Rejected::skip)?;
    let prefixed = match env.prefix {
        Some(p) => Some(prefix_id(p).map_err(Rejected::skip)?),
        None => None,
    };
    match env.kind {
        b"L" => login(device, &env),
        b"P" => Ok(Decoded::control(
            MessageKind::Keepalive,
            prefixed.or_else(|| device.clone()),
            reply::accept(reply::PING),
        )),
        b"SD" | b"D" => {
            let id = identity(prefixed, device)?;
            data(&env, id, ctx)
        }
        b"B" => {
            let id = identity(prefixed, device)?;
            black_box(&env, id, ctx)
        }
        b"M" => {
            let id = identity(prefixed, device)?;
            Ok(message(&env, id, ctx))
        }
        other => Err(Rejected::skip(DecodeError::Unsupported {
            what: "message type",
            value: String::from_utf8_lossy(other).into_owned(),
        })),
    }
}

fn trim_line_end(frame: &[u8]) -> &[u8] {
    let mut line = frame;
    while let [rest @ .., b'\r' | b'\n'] = line {
        line = rest;
    }
    line
}

fn envelope(line: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let start = line
        .iter()
        .position(|&b| b == b'#')
        .ok_or(DecodeError::Malformed {
            what: "start '#'",
            offset: 0,
        })?;
    let (prefix, rest) = line.split_at(start);
    let rest = rest.get(1..).unwrap_or_default();
    let end = rest
        .iter()
        .position(|&b| b == b'#')
        .ok_or(DecodeError::Malformed {
            what: "message type",
            offset: start.saturating_add(1),
        })?;
    let (kind, body) = rest.split_at(end);
    Ok(Envelope {
        prefix: (!prefix.is_empty()).then_some(prefix),
        kind,
        body: body.get(1..).unwrap_or_default(),
        body_at: start.saturating_add(end).saturating_add(2),
    })
}

/// `IMEI` or `2.0;IMEI` before the first `#`.
fn prefix_id(prefix: &[u8]) -> Result<DeviceId, DecodeError> {
    let text = std::str::from_utf8(prefix).map_err(|_| DecodeError::Malformed {
        what: "device id prefix",
        offset: 0,
    })?;
    let id = text.rsplit(';').next().unwrap_or(text);
    Ok(DeviceId::new(id)?)
}

fn identity(prefixed: Option<DeviceId>, device: &Option<DeviceId>) -> Result<DeviceId, Rejected> {
    prefixed
        .or_else(|| device.clone())
        .ok_or(Rejected::fatal(DecodeError::NotIdentified))
}

fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn login(device: &mut Option<DeviceId>, env: &Envelope<'_>) -> Result<Decoded, Rejected> {
    let body = text(env.body);
    let fields: Vec<&str> = body.split(';').collect();
    // 2.0 puts the protocol version first: it is the only field with a dot.
    let id = match fields.as_slice() {
        [version, id, ..] if version.contains('.') => *id,
        [id, ..] => *id,
        [] => "",
    };
    let id = DeviceId::new(id).map_err(|e| Rejected {
        error: e.into(),
        reply: Some(bytes::Bytes::from_static(reply::LOGIN_REFUSE)),
        close: true,
    })?;
    *device = Some(id.clone());
    Ok(Decoded::control(
        MessageKind::Login,
        Some(id),
        reply::login(),
    ))
}

/// Splits off a trailing 2.0 CRC field and checks it. `covered` is the
/// body up to and including the separator before the CRC.
fn check_crc(covered: &[u8], carried: &str, at: usize) -> Result<(), DecodeError> {
    let digits = carried
        .strip_prefix("0x")
        .or_else(|| carried.strip_prefix("0X"))
        .unwrap_or(carried);
    let carried = u16::from_str_radix(digits, 16).map_err(|_| DecodeError::Malformed {
        what: "CRC16",
        offset: at,
    })?;
    let computed = crc16_ibm(covered);
    if carried == computed {
        Ok(())
    } else {
        Err(DecodeError::Checksum {
            carried: u32::from(carried),
            computed: u32::from(computed),
        })
    }
}

fn data(env: &Envelope<'_>, id: DeviceId, ctx: &DecodeContext) -> Result<Decoded, Rejected> {
    let short = env.kind == b"SD";
    let (crc_reply, structure_reply, accept) = if short {
        (
            reply::SHORT_CRC,
            reply::SHORT_STRUCTURE,
            reply::SHORT_ACCEPT,
        )
    } else {
        (reply::DATA_CRC, reply::DATA_STRUCTURE, reply::DATA_ACCEPT)
    };
    let with_reply = |error: DecodeError, bytes: &'static [u8]| Rejected {
        error,
        reply: Some(bytes::Bytes::from_static(bytes)),
        close: false,
    };
    // Fields = separators + 1; 2.0 adds one CRC field to either layout.
    let separators = env.body.iter().filter(|&&b| b == b';').count();
    let has_crc = separators == SHORT_FIELDS || (!short && separators == DATA_FIELDS);
    let mut body = env.body;
    if has_crc {
        if let Some(last) = env.body.iter().rposition(|&b| b == b';') {
            let (covered, crc) = env.body.split_at(last.saturating_add(1));
            let at = env.body_at.saturating_add(last).saturating_add(1);
            check_crc(covered, &text(crc), at).map_err(|e| match e {
                DecodeError::Checksum { .. } => with_reply(e, crc_reply),
                e => with_reply(e, structure_reply),
            })?;
            body = covered.get(..last).unwrap_or_default();
        }
    }
    let rec = record::parse(&text(body), env.body_at, &id, ctx)
        .map_err(|e| with_reply(e, structure_reply))?;
    let mut decoded = Decoded::control(MessageKind::Data, Some(id), reply::accept(accept));
    rec.push_into(&mut decoded);
    Ok(decoded)
}

fn black_box(env: &Envelope<'_>, id: DeviceId, ctx: &DecodeContext) -> Result<Decoded, Rejected> {
    let refuse = |error: DecodeError| Rejected {
        error,
        reply: Some(bytes::Bytes::from_static(reply::BLACK_BOX_NONE)),
        close: false,
    };
    let mut body = env.body;
    // 2.0: the last `|`-separated element is the CRC (no `;` in it).
    if let Some(last) = env.body.iter().rposition(|&b| b == b'|') {
        let (covered, tail) = env.body.split_at(last.saturating_add(1));
        if !tail.is_empty() && !tail.contains(&b';') {
            let at = env.body_at.saturating_add(last).saturating_add(1);
            check_crc(covered, &text(tail), at).map_err(refuse)?;
            body = covered.get(..last).unwrap_or_default();
        }
    }
    let body = text(body);
    let mut decoded = Decoded::control(MessageKind::Data, Some(id.clone()), Reply::NONE);
    let mut count = 0usize;
    let mut at = env.body_at;
    for part in body.split('|') {
        let mut rec = record::parse(part, at, &id, ctx).map_err(Rejected::skip)?;
        rec.attributes_mut()
            .set(AttrKey::named(params::ARCHIVE), AttrValue::Bool(true));
        rec.push_into(&mut decoded);
        count = count.saturating_add(1);
        at = at.saturating_add(part.len()).saturating_add(1);
    }
    decoded.reply = reply::black_box(count);
    Ok(decoded)
}

fn message(env: &Envelope<'_>, id: DeviceId, ctx: &DecodeContext) -> Decoded {
    let mut attributes = Attributes::new();
    attributes.push(
        AttrKey::named(params::MESSAGE),
        AttrValue::Text(text(env.body).into_owned()),
    );
    let report = Report {
        device_id: id.clone(),
        time: ctx.received,
        protocol: NAME,
        attributes,
    };
    let mut decoded = Decoded::control(
        MessageKind::Data,
        Some(id),
        reply::accept(reply::MESSAGE_ACCEPT),
    );
    decoded.reports.push(report);
    decoded
}
