//! The AVL data field shared by TCP packets and UDP datagrams, and the
//! records of codecs 8, 8E and 16.
//!
//! ```text
//! data      u8 codec | u8 count | records… | u8 count (again)
//! record    u64 ms timestamp | u8 priority | i32 lon ×1e-7 | i32 lat ×1e-7
//!           i16 altitude m | u16 course ° | u8 satellites | u16 speed km/h
//!           event IO id | [codec 16: u8 generation type] | total IO count
//!           N1 group | N2 group | N4 group | N8 group
//!           [extended firmware: N16 group] | [8E: NX group]
//! group     count, then count × (IO id, value of the group's width)
//! NX group  u16 count, then count × (u16 id, u16 length, bytes)
//!
//!             event id  IO id  counts
//! codec 8     u8        u8     u8
//! codec 16    u16       u16    u8
//! codec 8E    u16       u16    u16
//! ```
//!
//! Some firmwares ("extended" in Traccar's configuration) add a group of
//! 16-byte values after N8. We do not need a setting: when a packet does not
//! parse to exactly its record count without that group, it is parsed again
//! with it (see `protocols/teltonika.md`).

use chrono::{DateTime, Utc};
use nom::bytes::complete::take;
use nom::error::{context, ContextError, ErrorKind, ParseError};
use nom::number::complete::{be_i16, be_i32, be_u16, be_u32, be_u64, be_u8};
use nom::IResult;

use super::io::{self, Dictionary};
use super::{command, gh3000, NAME};
use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Position, Report};
use crate::protocol::{DecodeError, MessageKind};

/// A parse failure: where it happened and what was being read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Fail<'a> {
    /// The input left when the failing read started.
    pub rest: &'a [u8],
    pub what: &'static str,
}

const UNLABELLED: &str = "field";

impl<'a> ParseError<&'a [u8]> for Fail<'a> {
    fn from_error_kind(input: &'a [u8], _kind: ErrorKind) -> Self {
        Self {
            rest: input,
            what: UNLABELLED,
        }
    }
    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

impl<'a> ContextError<&'a [u8]> for Fail<'a> {
    /// Keeps the innermost label.
    fn add_context(_input: &'a [u8], ctx: &'static str, other: Self) -> Self {
        if other.what == UNLABELLED {
            Self { what: ctx, ..other }
        } else {
            other
        }
    }
}

pub(super) type PResult<'a, T> = IResult<&'a [u8], T, Fail<'a>>;

/// A value that parsed but makes no sense (e.g. a timestamp out of range).
pub(super) fn invalid<'a, T>(rest: &'a [u8], what: &'static str) -> PResult<'a, T> {
    Err(nom::Err::Failure(Fail { rest, what }))
}

/// Reads a count or an id that is one byte or, in wider codecs, two.
pub(super) fn var(wide: bool, what: &'static str) -> impl Fn(&[u8]) -> PResult<'_, u16> {
    move |i| {
        if wide {
            context(what, be_u16)(i)
        } else {
            context(what, be_u8)(i).map(|(i, v)| (i, u16::from(v)))
        }
    }
}

/// Codecs a device sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codec {
    Gh3000,
    C8,
    C8Ext,
    C12,
    C13,
    C16,
}

impl Codec {
    pub(super) fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0x07 => Self::Gh3000,
            0x08 => Self::C8,
            0x8E => Self::C8Ext,
            0x0C => Self::C12,
            0x0D => Self::C13,
            0x10 => Self::C16,
            _ => return None,
        })
    }

    /// Codec 12/13: command responses, never acknowledged.
    pub(super) fn is_command(self) -> bool {
        matches!(self, Self::C12 | Self::C13)
    }
}

/// Who sent the records and when they arrived.
pub(super) struct RecordCtx<'a> {
    pub device: &'a DeviceId,
    pub received: DateTime<Utc>,
}

/// What the records of one packet became.
#[derive(Debug)]
pub(super) struct Out {
    pub positions: Vec<Position>,
    pub reports: Vec<Report>,
    /// Records that were camera (photo) packets.
    pub camera: usize,
}

impl Out {
    fn new(records: u8) -> Self {
        Self {
            positions: Vec::with_capacity(usize::from(records)),
            reports: Vec::new(),
            camera: 0,
        }
    }

    /// Emits a located record as a position, or as a report when its
    /// coordinates are out of WGS84 range (a corrupt or absent fix).
    pub(super) fn located(&mut self, p: Position) {
        if p.has_valid_coordinates() {
            self.positions.push(p);
        } else {
            self.reports.push(Report {
                device_id: p.device_id,
                time: p.fix_time,
                protocol: NAME,
                attributes: p.attributes,
            });
        }
    }
}

/// A decoded data field.
#[derive(Debug)]
pub(super) struct Data {
    pub codec: Codec,
    /// The record count both count bytes agree on.
    pub count: u8,
    pub positions: Vec<Position>,
    pub reports: Vec<Report>,
    /// Records that were camera (photo) packets.
    pub camera: usize,
}

impl Data {
    pub(super) fn kind(&self) -> MessageKind {
        if !self.codec.is_command() {
            MessageKind::Data
        } else if self.camera > 0 && self.camera == usize::from(self.count) {
            MessageKind::Other
        } else {
            MessageKind::CommandResponse
        }
    }
}

/// Why a data field was not decoded.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum DataError {
    /// Shorter than codec + count + count.
    TooShort {
        offset: usize,
    },
    /// The two record counts differ.
    CountMismatch {
        offset: usize,
    },
    UnsupportedCodec(u8),
    Malformed {
        what: &'static str,
        offset: usize,
    },
}

impl DataError {
    /// Whether the packet contradicts itself (corruption in transit: worth
    /// an immediate resend) rather than being well-formed but not understood.
    pub(super) fn is_integrity(&self) -> bool {
        matches!(self, Self::TooShort { .. } | Self::CountMismatch { .. })
    }
}

impl From<DataError> for DecodeError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::TooShort { offset } => DecodeError::Malformed {
                what: "data field (shorter than codec id and two record counts)",
                offset,
            },
            DataError::CountMismatch { offset } => DecodeError::Malformed {
                what: "record count (differs from the first one)",
                offset,
            },
            DataError::UnsupportedCodec(id) => DecodeError::Unsupported {
                what: "codec",
                value: format!("{id:#04x}"),
            },
            DataError::Malformed { what, offset } => DecodeError::Malformed { what, offset },
        }
    }
}

/// Decodes a data field (codec id .. second count). `base` is the field's
/// offset in the frame, for error messages.
pub(super) fn decode(data: &[u8], base: usize, ctx: &RecordCtx<'_>) -> Result<Data, DataError> {
    let at = |n: usize| base.saturating_add(n);
    let [codec_id, count, body @ .., count2] = data else {
        return Err(DataError::TooShort { offset: base });
    };
    if count != count2 {
        return Err(DataError::CountMismatch {
            offset: at(data.len().saturating_sub(1)),
        });
    }
    let codec = Codec::from_id(*codec_id).ok_or(DataError::UnsupportedCodec(*codec_id))?;
    let count = *count;
    let body_base = at(2);
    let fail = |f: Fail<'_>| DataError::Malformed {
        what: f.what,
        offset: body_base.saturating_add(body.len().saturating_sub(f.rest.len())),
    };
    let out = match codec {
        Codec::C8 | Codec::C8Ext | Codec::C16 => {
            match records(body, count, |i, out| location(i, codec, false, ctx, out)) {
                Ok(out) => out,
                Err(first) => records(body, count, |i, out| location(i, codec, true, ctx, out))
                    .map_err(|_| fail(first))?,
            }
        }
        Codec::Gh3000 => {
            records(body, count, |i, out| gh3000::record(i, ctx, out)).map_err(fail)?
        }
        Codec::C12 => records(body, count, |i, out| command::codec12(i, ctx, out)).map_err(fail)?,
        Codec::C13 => records(body, count, |i, out| command::codec13(i, ctx, out)).map_err(fail)?,
    };
    Ok(Data {
        codec,
        count,
        positions: out.positions,
        reports: out.reports,
        camera: out.camera,
    })
}

/// Parses exactly `count` records that use up all of `body`.
fn records<'a>(
    body: &'a [u8],
    count: u8,
    mut one: impl FnMut(&'a [u8], &mut Out) -> PResult<'a, ()>,
) -> Result<Out, Fail<'a>> {
    let mut out = Out::new(count);
    let mut rest = body;
    for _ in 0..count {
        rest = match one(rest, &mut out) {
            Ok((rest, ())) => rest,
            Err(nom::Err::Error(f) | nom::Err::Failure(f)) => return Err(f),
            Err(nom::Err::Incomplete(_)) => {
                return Err(Fail {
                    rest,
                    what: "record",
                })
            }
        };
    }
    if rest.is_empty() {
        Ok(out)
    } else {
        Err(Fail {
            rest,
            what: "bytes after the last record",
        })
    }
}

/// A millisecond Unix timestamp as UTC.
fn millis(i: &[u8]) -> PResult<'_, DateTime<Utc>> {
    let (rest, ms) = context("timestamp", be_u64)(i)?;
    match i64::try_from(ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
    {
        Some(t) => Ok((rest, t)),
        None => invalid(i, "timestamp (out of range)"),
    }
}

/// Fixed-width IO groups, widths in wire order.
const WIDTHS: [u8; 4] = [1, 2, 4, 8];
/// Width of the extended firmware's extra group.
const EXTENDED_WIDTH: usize = 16;

/// One codec 8 / 8E / 16 record.
fn location<'a>(
    i: &'a [u8],
    codec: Codec,
    extended: bool,
    ctx: &RecordCtx<'_>,
    out: &mut Out,
) -> PResult<'a, ()> {
    let wide_count = codec == Codec::C8Ext;
    let wide_id = matches!(codec, Codec::C8Ext | Codec::C16);
    let (i, fix_time) = millis(i)?;
    let (i, priority) = context("priority", be_u8)(i)?;
    let (i, lon) = context("longitude", be_i32)(i)?;
    let (i, lat) = context("latitude", be_i32)(i)?;
    let (i, altitude) = context("altitude", be_i16)(i)?;
    let (i, course) = context("course", be_u16)(i)?;
    let (i, satellites) = context("satellites", be_u8)(i)?;
    let (i, speed) = context("speed", be_u16)(i)?;
    let (i, event) = var(wide_id, "event IO id")(i)?;
    let (i, generation) = if codec == Codec::C16 {
        let (i, g) = context("generation type", be_u8)(i)?;
        (i, Some(g))
    } else {
        (i, None)
    };
    // The total only repeats the group counts (8E: including NX); unused.
    let (i, _total) = var(wide_count, "total IO count")(i)?;

    let mut attrs =
        Attributes::with_capacity(RECORD_ATTRS.saturating_add(io_entries(i, codec, extended)));
    attrs.push(
        AttrKey::named("priority"),
        AttrValue::Int(i64::from(priority)),
    );
    attrs.push(AttrKey::named("event_io"), AttrValue::Int(i64::from(event)));
    if let Some(g) = generation {
        attrs.push(
            AttrKey::named("generation_type"),
            AttrValue::Int(i64::from(g)),
        );
    }

    let mut i = i;
    for width in WIDTHS {
        let (rest, n) = var(wide_count, "IO group count")(i)?;
        i = rest;
        for _ in 0..n {
            let (rest, id) = var(wide_id, "IO id")(i)?;
            let (rest, raw) = fixed(width)(rest)?;
            io::push_fixed(&mut attrs, Dictionary::Fm, id, width, raw);
            i = rest;
        }
    }
    if extended {
        let (rest, n) = var(wide_count, "16-byte IO group count")(i)?;
        i = rest;
        for _ in 0..n {
            let (rest, id) = var(wide_id, "IO id")(i)?;
            let (rest, bytes) = context("16-byte IO value", take(EXTENDED_WIDTH))(rest)?;
            io::push_bytes(&mut attrs, id, bytes);
            i = rest;
        }
    }
    if codec == Codec::C8Ext {
        let (rest, n) = context("variable IO group count", be_u16)(i)?;
        i = rest;
        for _ in 0..n {
            let (rest, id) = context("IO id", be_u16)(i)?;
            let (rest, len) = context("variable IO length", be_u16)(rest)?;
            let (rest, bytes) = context("variable IO value", take(len))(rest)?;
            io::push_variable(&mut attrs, id, bytes);
            i = rest;
        }
    }

    out.located(Position {
        device_id: ctx.device.clone(),
        fix_time,
        received_time: ctx.received,
        lat: f64::from(lat) / 1e7,
        lon: f64::from(lon) / 1e7,
        altitude_m: f64::from(altitude),
        speed_kmh: f64::from(speed),
        course_deg: f64::from(course),
        satellites: Some(satellites),
        valid: satellites != 0,
        protocol: NAME,
        attributes: attrs,
    });
    Ok((i, ()))
}

/// Attributes every location record carries besides its IO elements.
const RECORD_ATTRS: usize = 3;

/// How many attributes the IO section at `i` will produce (each element and
/// its named twin), found by a walk that reads only counts and ids, so the
/// record's attributes are allocated once at their final size: stored
/// positions carry no spare capacity and decoding never grows a vector. BLE
/// lists inside variable-length elements are not counted (rare; they grow
/// the vector). 0 when the section does not parse (decoding then fails).
fn io_entries(i: &[u8], codec: Codec, extended: bool) -> usize {
    let walk = || -> Option<usize> {
        let wide_count = codec == Codec::C8Ext;
        let wide_id = matches!(codec, Codec::C8Ext | Codec::C16);
        let mut rest = i;
        let mut n: usize = 0;
        for width in WIDTHS {
            let (r, count) = var(wide_count, "")(rest).ok()?;
            rest = r;
            for _ in 0..count {
                let (r, id) = var(wide_id, "")(rest).ok()?;
                rest = r.get(usize::from(width)..)?;
                n = n.checked_add(io::fixed_entries(Dictionary::Fm, id))?;
            }
        }
        if extended {
            let (r, count) = var(wide_count, "")(rest).ok()?;
            rest = r;
            for _ in 0..count {
                let (r, _) = var(wide_id, "")(rest).ok()?;
                rest = r.get(EXTENDED_WIDTH..)?;
                n = n.checked_add(1)?;
            }
        }
        if codec == Codec::C8Ext {
            let (r, count) = be_u16::<_, Fail<'_>>(rest).ok()?;
            rest = r;
            for _ in 0..count {
                let (r, id) = be_u16::<_, Fail<'_>>(rest).ok()?;
                let (r, len) = be_u16::<_, Fail<'_>>(r).ok()?;
                rest = r.get(usize::from(len)..)?;
                n = n.checked_add(io::variable_entries(id))?;
            }
        }
        Some(n)
    };
    walk().unwrap_or(0)
}

/// Reads one unsigned value of `width` bytes (1, 2, 4 or 8).
pub(super) fn fixed(width: u8) -> impl Fn(&[u8]) -> PResult<'_, u64> {
    move |i| match width {
        1 => context("IO value", be_u8)(i).map(|(i, v)| (i, u64::from(v))),
        2 => context("IO value", be_u16)(i).map(|(i, v)| (i, u64::from(v))),
        4 => context("IO value", be_u32)(i).map(|(i, v)| (i, u64::from(v))),
        _ => context("IO value", be_u64)(i),
    }
}
