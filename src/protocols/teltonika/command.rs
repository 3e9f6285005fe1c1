//! Codec 12 and 13: what a device sends back over the command channel.
//! They become `Report`s (data without a fix) and are never acknowledged.
//!
//! ```text
//! codec 12 record  u8 type | u32 size | size bytes
//!                  type 0x06 response (0x05 command), 0x0D camera
//! codec 13 record  u8 type | u32 size | u32 Unix seconds | size − 4 bytes
//! camera payload   u8 subtype: 1 = photo announced (u32 photo id, u32 size),
//!                  2 = photo chunk (u32 photo id, u32 offset, u16 length, bytes)
//! ```
//!
//! Text that is printable ASCII becomes `result` (trimmed), anything else
//! lower-case hex. A codec 13 `GTSL|…` text carries a driver id in its fifth
//! field. Photos are not downloaded: a trackgate session only answers, it
//! does not request chunks; an announcement becomes a report with the
//! photo's id and size.

use nom::bytes::complete::take;
use nom::error::context;
use nom::number::complete::{be_u32, be_u8};

use chrono::{DateTime, Utc};

use super::avl::{invalid, Out, PResult, RecordCtx};
use super::io::lower_hex;
use super::NAME;
use crate::model::{AttrKey, AttrValue, Attributes, Report};

/// Codec 12 type of a camera packet.
const CAMERA: u8 = 0x0D;
/// Camera subtype: a photo is ready (id and size follow).
const PHOTO_ANNOUNCED: u8 = 0x01;
/// Codec 13 size counts its 4-byte timestamp.
const TIMESTAMP_BYTES: u32 = 4;
/// Codec 13 text that carries a driver id (`GTSL|…|<id>|…`).
const DRIVER_PREFIX: &str = "GTSL";
const DRIVER_FIELD: usize = 4;

/// One codec 12 record.
pub(super) fn codec12<'a>(i: &'a [u8], ctx: &RecordCtx<'_>, out: &mut Out) -> PResult<'a, ()> {
    let (i, kind) = context("response type", be_u8)(i)?;
    let (i, size) = context("response size", be_u32)(i)?;
    let (i, payload) = context("response payload", take(size))(i)?;
    if kind == CAMERA {
        out.camera = out.camera.saturating_add(1);
        if let Some(report) = camera(payload, ctx) {
            out.reports.push(report);
        }
        return Ok((i, ()));
    }
    out.reports.push(response(kind, payload, ctx.received, ctx));
    Ok((i, ()))
}

/// One codec 13 record.
pub(super) fn codec13<'a>(i: &'a [u8], ctx: &RecordCtx<'_>, out: &mut Out) -> PResult<'a, ()> {
    let (i, kind) = context("response type", be_u8)(i)?;
    let size_at = i;
    let (i, size) = context("response size", be_u32)(i)?;
    let Some(text_len) = size.checked_sub(TIMESTAMP_BYTES) else {
        return invalid(size_at, "response size (smaller than its timestamp)");
    };
    let (i, seconds) = context("response timestamp", be_u32)(i)?;
    let (i, payload) = context("response payload", take(text_len))(i)?;
    let Some(time) = DateTime::<Utc>::from_timestamp(i64::from(seconds), 0) else {
        return invalid(size_at, "response timestamp (out of range)");
    };
    out.reports.push(response(kind, payload, time, ctx));
    Ok((i, ()))
}

fn response(kind: u8, payload: &[u8], time: DateTime<Utc>, ctx: &RecordCtx<'_>) -> Report {
    let mut attributes = Attributes::with_capacity(2);
    attributes.push(
        AttrKey::named("response_type"),
        AttrValue::Int(i64::from(kind)),
    );
    match printable(payload) {
        Some(text) => match driver_id(text) {
            Some(driver) => attributes.push(
                AttrKey::named("driver_unique_id"),
                AttrValue::Text(driver.to_string()),
            ),
            None => attributes.push(AttrKey::named("result"), AttrValue::Text(text.to_string())),
        },
        None => attributes.push(
            AttrKey::named("result"),
            AttrValue::Text(lower_hex(payload)),
        ),
    }
    Report {
        device_id: ctx.device.clone(),
        time,
        protocol: NAME,
        attributes,
    }
}

/// The payload as trimmed text, if every byte is printable ASCII or CR/LF.
fn printable(payload: &[u8]) -> Option<&str> {
    if !payload
        .iter()
        .all(|b| matches!(b, b' '..=b'~' | b'\r' | b'\n'))
    {
        return None;
    }
    std::str::from_utf8(payload).ok().map(str::trim)
}

fn driver_id(text: &str) -> Option<&str> {
    if !text.starts_with(DRIVER_PREFIX) {
        return None;
    }
    text.split('|')
        .nth(DRIVER_FIELD)
        .filter(|id| !id.is_empty())
}

/// A camera payload: a report for a photo announcement, nothing for chunks.
fn camera(payload: &[u8], ctx: &RecordCtx<'_>) -> Option<Report> {
    let (&subtype, rest) = payload.split_first()?;
    if subtype != PHOTO_ANNOUNCED {
        return None;
    }
    let (id, rest) = rest.split_first_chunk::<4>()?;
    let mut attributes = Attributes::with_capacity(2);
    attributes.push(
        AttrKey::named("photo_id"),
        AttrValue::Int(i64::from(u32::from_be_bytes(*id))),
    );
    if let Some((size, _)) = rest.split_first_chunk::<4>() {
        attributes.push(
            AttrKey::named("photo_size_bytes"),
            AttrValue::Int(i64::from(u32::from_be_bytes(*size))),
        );
    }
    Some(Report {
        device_id: ctx.device.clone(),
        time: ctx.received,
        protocol: NAME,
        attributes,
    })
}
