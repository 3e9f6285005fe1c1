//! Text messages some e-lock firmwares send on the same port:
//! `(<id>,<n>,<seq>,<command>,…)`. `BASE,2` asks for the time: it is
//! answered with the same text, `TIME` replaced by `yyyyMMddHHmmss` (UTC).
//! Anything else is a command result, stored as the `result` attribute.
//! The device id is the first field, or the id of the last binary message
//! on this connection when that field is not a number.

use bytes::Bytes;

use super::record::{Ctx, Rec};
use crate::model::DeviceId;
use crate::protocol::{DecodeContext, DecodeError, Decoded, MessageKind, Rejected, Reply};

/// Decodes one `(…)` frame.
pub(super) fn decode(
    frame: &[u8],
    last_device: Option<&DeviceId>,
    ctx: &DecodeContext,
) -> Result<Decoded, Rejected> {
    let text = super::read::latin1(frame);
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or(Rejected::skip(DecodeError::Malformed {
            what: "text message",
            offset: 0,
        }))?;
    let first = inner.split(',').next().unwrap_or_default();
    let device = if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
        DeviceId::new(first.trim_start_matches('0'))
            .or_else(|_| DeviceId::new(first))
            .map_err(|e| Rejected::skip(e.into()))?
    } else {
        last_device
            .cloned()
            .ok_or(Rejected::skip(DecodeError::NotIdentified))?
    };
    if inner.contains("BASE,2") {
        let now = ctx.received.format("%Y%m%d%H%M%S").to_string();
        let answer = text.replace("TIME", &now);
        return Ok(Decoded::control(
            MessageKind::Other,
            Some(device),
            Reply::accept_only(Bytes::from(answer.into_bytes())),
        ));
    }
    let c = Ctx {
        device: &device,
        time_zone: chrono::Utc.fix(),
        model: None,
        received: ctx.received,
    };
    let mut rec = Rec::new();
    rec.text("result", text.clone());
    let report = rec.into_report(&c, None);
    Ok(Decoded {
        kind: MessageKind::CommandResponse,
        device: Some(device.clone()),
        positions: Vec::new(),
        reports: vec![report],
        reply: Reply::NONE,
    })
}

use chrono::Offset;
