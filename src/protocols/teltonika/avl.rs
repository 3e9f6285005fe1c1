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

use super::io;
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

    /// Emits a located record at `lat`, `lon` as the position `build` makes,
    /// or as a report when the coordinates are out of WGS84 range (a corrupt
    /// or absent fix). The position is built where it is stored: built first
    /// and pushed, its ~170 bytes were copied twice (8% of a 1-record frame).
    #[inline(always)]
    pub(super) fn located(&mut self, lat: f64, lon: f64, build: impl FnOnce() -> Position) {
        if Position::valid_coordinates(lat, lon) {
            self.positions.extend(std::iter::once_with(build));
        } else {
            let p = build();
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

/// The fixed-size start of a location record.
///
/// ```text
/// u64 ms timestamp | u8 priority | i32 lon ×1e-7 | i32 lat ×1e-7
/// i16 altitude m | u16 course ° | u8 satellites | u16 speed km/h
/// ```
struct Header {
    fix_time: DateTime<Utc>,
    priority: u8,
    lon: i32,
    lat: i32,
    altitude: i16,
    course: u16,
    satellites: u8,
    speed: u16,
}

/// Bytes of a location record's `Header`.
const HEADER_BYTES: usize = 24;

/// Reads a `Header` with one length check (field by field through nom, it
/// cost a tenth of a record's decode time).
fn header(i: &[u8]) -> PResult<'_, Header> {
    let Some((h, rest)) = i.split_first_chunk::<HEADER_BYTES>() else {
        return short_header(i);
    };
    let [t0, t1, t2, t3, t4, t5, t6, t7, priority, lo0, lo1, lo2, lo3, la0, la1, la2, la3, al0, al1, co0, co1, satellites, sp0, sp1] =
        *h;
    let ms = u64::from_be_bytes([t0, t1, t2, t3, t4, t5, t6, t7]);
    let Some(fix_time) = millis(ms) else {
        return invalid(i, "timestamp (out of range)");
    };
    Ok((
        rest,
        Header {
            fix_time,
            priority,
            lon: i32::from_be_bytes([lo0, lo1, lo2, lo3]),
            lat: i32::from_be_bytes([la0, la1, la2, la3]),
            altitude: i16::from_be_bytes([al0, al1]),
            course: u16::from_be_bytes([co0, co1]),
            satellites,
            speed: u16::from_be_bytes([sp0, sp1]),
        },
    ))
}

/// A `Header` cut short: the read that fails, as reading field by field
/// reports it.
#[cold]
fn short_header(i: &[u8]) -> PResult<'_, Header> {
    let (i, _) = context("timestamp", be_u64)(i)?;
    let (i, _) = context("priority", be_u8)(i)?;
    let (i, _) = context("longitude", be_i32)(i)?;
    let (i, _) = context("latitude", be_i32)(i)?;
    let (i, _) = context("altitude", be_i16)(i)?;
    let (i, _) = context("course", be_u16)(i)?;
    let (i, _) = context("satellites", be_u8)(i)?;
    let (i, _) = context("speed", be_u16)(i)?;
    invalid(i, "record")
}

/// A millisecond Unix timestamp as UTC, if chrono can hold it.
fn millis(ms: u64) -> Option<DateTime<Utc>> {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
}

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
    let (i, h) = header(i)?;
    let (i, event) = var(wide_id, "event IO id")(i)?;
    let (i, generation) = if codec == Codec::C16 {
        let (i, g) = context("generation type", be_u8)(i)?;
        (i, Some(g))
    } else {
        (i, None)
    };
    // The total repeats the group counts (8E: including NX); it only sizes
    // the attributes, never trusted beyond the bytes present.
    let (i, total) = var(wide_count, "total IO count")(i)?;

    let record_attrs: usize = if generation.is_some() { 3 } else { 2 };
    let io_entries = usize::from(total).min(i.len() / MIN_IO_BYTES);
    let mut attrs = Attributes::with_capacity(record_attrs.saturating_add(io_entries));
    attrs.set_namer(io::fm);
    // Built inside the iterator, not as an array of entries: see `fixed_group`.
    attrs.extend(
        ["priority", "event_io"]
            .into_iter()
            .zip([i64::from(h.priority), i64::from(event)])
            .map(|(name, v)| (AttrKey::named(name), AttrValue::Int(v))),
    );
    if let Some(g) = generation {
        attrs.push(
            AttrKey::named("generation_type"),
            AttrValue::Int(i64::from(g)),
        );
    }

    let (mut i, ()) = fixed_groups(i, wide_count, wide_id, &mut attrs)?;
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
    // Stored positions carry no spare room: a no-op unless the total lied,
    // a VIN or a BLE list added entries, or the 16-byte group was not counted.
    attrs.shrink_to_fit();

    let (lat, lon) = (f64::from(h.lat) / 1e7, f64::from(h.lon) / 1e7);
    out.located(lat, lon, move || Position {
        device_id: ctx.device.clone(),
        fix_time: h.fix_time,
        received_time: ctx.received,
        lat,
        lon,
        altitude_m: f64::from(h.altitude),
        speed_kmh: f64::from(h.speed),
        course_deg: f64::from(h.course),
        satellites: Some(h.satellites),
        valid: h.satellites != 0,
        protocol: NAME,
        attributes: attrs,
    });
    Ok((i, ()))
}

/// The fewest bytes an IO element takes (codec 8: 1-byte id, 1-byte value).
const MIN_IO_BYTES: usize = 2;

/// Reads one unsigned value of `width` bytes (1, 2, 4 or 8).
pub(super) fn fixed(width: u8) -> impl Fn(&[u8]) -> PResult<'_, u64> {
    move |i| match width {
        1 => context("IO value", be_u8)(i).map(|(i, v)| (i, u64::from(v))),
        2 => context("IO value", be_u16)(i).map(|(i, v)| (i, u64::from(v))),
        4 => context("IO value", be_u32)(i).map(|(i, v)| (i, u64::from(v))),
        _ => context("IO value", be_u64)(i),
    }
}

/// Reads the N1, N2, N4 and N8 groups of a codec 8 / 8E / 16 record at `i`
/// (counts two bytes if `wide_count`, ids if `wide_id`) into `attrs`.
fn fixed_groups<'a>(
    i: &'a [u8],
    wide_count: bool,
    wide_id: bool,
    attrs: &mut Attributes,
) -> PResult<'a, ()> {
    let mut i = i;
    for width in [1, 2, 4, 8] {
        let (rest, n) = var(wide_count, "IO group count")(i)?;
        i = match (wide_id, width) {
            (false, 1) => group::<1, 1>(rest, n, attrs)?,
            (false, 2) => group::<1, 2>(rest, n, attrs)?,
            (false, 4) => group::<1, 4>(rest, n, attrs)?,
            (false, _) => group::<1, 8>(rest, n, attrs)?,
            (true, 1) => group::<2, 1>(rest, n, attrs)?,
            (true, 2) => group::<2, 2>(rest, n, attrs)?,
            (true, 4) => group::<2, 4>(rest, n, attrs)?,
            (true, _) => group::<2, 8>(rest, n, attrs)?,
        }
        .0;
    }
    Ok((i, ()))
}

/// Reads a GH3000 IO group of `count` elements at `i` (1-byte ids, values
/// `width` bytes) into `attrs`.
pub(super) fn fixed_group<'a>(
    i: &'a [u8],
    count: u16,
    width: u8,
    attrs: &mut Attributes,
) -> PResult<'a, ()> {
    match width {
        1 => group::<1, 1>(i, count, attrs),
        2 => group::<1, 2>(i, count, attrs),
        4 => group::<1, 4>(i, count, attrs),
        _ => group::<1, 8>(i, count, attrs),
    }
}

/// Reads a group of `count` elements of an `ID`-byte id and a `W`-byte
/// value (big-endian) at `i` into `attrs`.
///
/// Every element has the same size, so one length check covers the group,
/// and its elements are read from exact chunks handed to `Attributes::extend`
/// as an exact-size iterator: each entry is built where it is stored.
/// Pushing entry by entry built each 48-byte entry on the stack and the copy
/// into the vector stalled on it, a tenth of decode time.
fn group<'a, const ID: usize, const W: usize>(
    i: &'a [u8],
    count: u16,
    attrs: &mut Attributes,
) -> PResult<'a, ()> {
    let size = ID.saturating_add(W);
    let Some((elements, rest)) = i.split_at_checked(usize::from(count).saturating_mul(size)) else {
        return short_group(i, count, ID == 2, W);
    };
    attrs.extend(elements.chunks_exact(size).map(|element| {
        // Always `ID + W` bytes: the split cannot fail.
        let (id, value) = element.split_at_checked(ID).unwrap_or_default();
        let id = id.iter().fold(0u16, |acc, &b| (acc << 8) | u16::from(b));
        let raw = value.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        io::fixed_entry(id, raw)
    }));
    Ok((rest, ()))
}

/// A group whose elements do not fit in the bytes left: the read that fails,
/// as reading element by element reports it.
#[cold]
fn short_group<T>(i: &[u8], count: u16, wide_id: bool, width: usize) -> PResult<'_, T> {
    let width = u8::try_from(width).unwrap_or(8);
    let mut i = i;
    for _ in 0..count {
        let (rest, _) = var(wide_id, "IO id")(i)?;
        i = fixed(width)(rest)?.0;
    }
    invalid(i, "IO group")
}
