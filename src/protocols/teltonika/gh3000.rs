//! Codec 7 (GH3000 personal trackers): masks say which fields follow.
//!
//! ```text
//! record         u32 time: low 30 bits = seconds since 2007-01-01 UTC
//!                u8 global mask: bit 0 location block, bit 1 N1, bit 2 N2, bit 3 N4
//! location block u8 location mask, then in bit order:
//!                0: f32 latitude, f32 longitude   1: u16 altitude m
//!                2: u8 course ×360/256            3: u8 speed km/h
//!                4: u8 satellites                 5: u16 LAC, u16 cell id
//!                6: u8 signal quality             7: u32 operator code
//! groups         u8 count, count × (u8 id, value of 1, 2 or 4 bytes)
//! ```
//!
//! A record without coordinates (no location block, or no bit 0) becomes a
//! `Report`: it still carries its time and IO elements.

use chrono::{DateTime, Utc};
use nom::error::context;
use nom::number::complete::{be_f32, be_u16, be_u32, be_u8};

use super::avl::{fixed_group, invalid, Out, PResult, RecordCtx};
use super::io;
use super::NAME;
use crate::model::{AttrKey, AttrValue, Attributes, Position, Report};

/// 2007-01-01T00:00:00Z, the epoch of GH3000 timestamps.
const EPOCH_2007: i64 = 1_167_609_600;
/// The timestamp's low 30 bits are the seconds.
const TIME_MASK: u32 = 0x3fff_ffff;

/// Initial attribute room of a record.
const TYPICAL_ATTRS: usize = 8;

/// Global mask bits.
const HAS_LOCATION: u8 = 0x01;
const GROUPS: [(u8, u8); 3] = [(0x02, 1), (0x04, 2), (0x08, 4)];

/// Location mask bits.
const LAT_LON: u8 = 0x01;
const ALTITUDE: u8 = 0x02;
const COURSE: u8 = 0x04;
const SPEED: u8 = 0x08;
const SATELLITES: u8 = 0x10;
const CELL: u8 = 0x20;
const SIGNAL: u8 = 0x40;
const OPERATOR: u8 = 0x80;

#[derive(Default)]
struct Fix {
    lat_lon: Option<(f32, f32)>,
    altitude_m: f64,
    course_deg: f64,
    speed_kmh: f64,
    satellites: Option<u8>,
}

/// One codec 7 record.
pub(super) fn record<'a>(i: &'a [u8], ctx: &RecordCtx<'_>, out: &mut Out) -> PResult<'a, ()> {
    let start = i;
    let (i, raw_time) = context("timestamp", be_u32)(i)?;
    let seconds = i64::from(raw_time & TIME_MASK).saturating_add(EPOCH_2007);
    let Some(time) = DateTime::<Utc>::from_timestamp(seconds, 0) else {
        return invalid(start, "timestamp (out of range)");
    };
    let (i, global) = context("global mask", be_u8)(i)?;

    // No total count to size from; GH3000 records carry a handful of fields.
    let mut attrs = Attributes::with_capacity(TYPICAL_ATTRS);
    attrs.set_namer(io::gh3000);
    let mut fix = Fix::default();
    let mut i = i;
    if global & HAS_LOCATION != 0 {
        i = location(i, &mut fix, &mut attrs)?.0;
    }
    for (bit, width) in GROUPS {
        if global & bit == 0 {
            continue;
        }
        let (rest, n) = context("IO group count", be_u8)(i)?;
        i = fixed_group(rest, u16::from(n), width, &mut attrs)?.0;
    }

    match fix.lat_lon {
        Some((lat, lon)) => {
            let (lat, lon) = (f64::from(lat), f64::from(lon));
            out.located(lat, lon, move || Position {
                device_id: ctx.device.clone(),
                fix_time: time,
                received_time: ctx.received,
                lat,
                lon,
                altitude_m: fix.altitude_m,
                speed_kmh: fix.speed_kmh,
                course_deg: fix.course_deg,
                satellites: fix.satellites,
                valid: fix.satellites.is_none_or(|s| s != 0),
                protocol: NAME,
                attributes: attrs,
            })
        }
        None => out.reports.push(Report {
            device_id: ctx.device.clone(),
            time,
            protocol: NAME,
            attributes: attrs,
        }),
    }
    Ok((i, ()))
}

fn location<'a>(i: &'a [u8], fix: &mut Fix, attrs: &mut Attributes) -> PResult<'a, ()> {
    let (mut i, mask) = context("location mask", be_u8)(i)?;
    if mask & LAT_LON != 0 {
        let (rest, lat) = context("latitude", be_f32)(i)?;
        let (rest, lon) = context("longitude", be_f32)(rest)?;
        fix.lat_lon = Some((lat, lon));
        i = rest;
    }
    if mask & ALTITUDE != 0 {
        let (rest, altitude) = context("altitude", be_u16)(i)?;
        fix.altitude_m = f64::from(altitude);
        i = rest;
    }
    if mask & COURSE != 0 {
        let (rest, course) = context("course", be_u8)(i)?;
        fix.course_deg = f64::from(course) * 360.0 / 256.0;
        i = rest;
    }
    if mask & SPEED != 0 {
        let (rest, speed) = context("speed", be_u8)(i)?;
        fix.speed_kmh = f64::from(speed);
        i = rest;
    }
    if mask & SATELLITES != 0 {
        let (rest, satellites) = context("satellites", be_u8)(i)?;
        fix.satellites = Some(satellites);
        i = rest;
    }
    if mask & CELL != 0 {
        let (rest, lac) = context("LAC", be_u16)(i)?;
        let (rest, cid) = context("cell id", be_u16)(rest)?;
        attrs.push(AttrKey::named("lac"), AttrValue::Int(i64::from(lac)));
        attrs.push(AttrKey::named("cid"), AttrValue::Int(i64::from(cid)));
        i = rest;
    }
    if mask & SIGNAL != 0 {
        let (rest, signal) = context("signal quality", be_u8)(i)?;
        attrs.push(
            AttrKey::named("gsm_signal"),
            AttrValue::Int(i64::from(signal)),
        );
        i = rest;
    }
    if mask & OPERATOR != 0 {
        let (rest, operator) = context("operator code", be_u32)(i)?;
        attrs.push(
            AttrKey::named("gsm_operator"),
            AttrValue::Int(i64::from(operator)),
        );
        i = rest;
    }
    Ok((i, ()))
}
