//! One `#SD#`/`#D#` record (also each record of a `#B#` batch).
//!
//! ```text
//! 0 date ddmmyy | 1 time hhmmss | 2 lat ddmm.mm | 3 N/S | 4 lon dddmm.mm | 5 E/W
//! 6 speed km/h | 7 course ° | 8 altitude m | 9 satellites            (end of #SD#)
//! 10 hdop | 11 inputs | 12 outputs | 13 adc1,adc2,… | 14 iButton | 15 params
//! ```
//!
//! `NA` (or an empty field) means "not available". A record without a date
//! takes the time it was received; a record without coordinates becomes a
//! [`Report`] (Traccar instead repeats the last known location).

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use super::message::{DATA_FIELDS, SHORT_FIELDS};
use super::{params, NAME};
use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Position, Report};
use crate::protocol::{DecodeContext, DecodeError, Decoded};

/// Satellites from which a fix counts as valid (as Traccar decides).
const MIN_VALID_SATELLITES: u8 = 3;

/// A decoded record: with or without a location.
#[derive(Debug)]
pub(super) enum Record {
    Position(Position),
    Report(Report),
}

impl Record {
    pub(super) fn attributes_mut(&mut self) -> &mut Attributes {
        match self {
            Self::Position(p) => &mut p.attributes,
            Self::Report(r) => &mut r.attributes,
        }
    }

    pub(super) fn push_into(self, decoded: &mut Decoded) {
        match self {
            Self::Position(p) => decoded.positions.push(p),
            Self::Report(r) => decoded.reports.push(r),
        }
    }
}

/// A field with its offset in the line, for error messages.
#[derive(Clone, Copy)]
struct Field<'a> {
    at: usize,
    text: &'a str,
}

impl<'a> Field<'a> {
    /// `None` for `NA` or an empty field.
    fn value(self) -> Option<&'a str> {
        let t = self.text.trim();
        (!t.is_empty() && t != "NA").then_some(t)
    }

    fn malformed(self, what: &'static str) -> DecodeError {
        DecodeError::Malformed {
            what,
            offset: self.at,
        }
    }

    fn number(self, what: &'static str) -> Result<Option<f64>, DecodeError> {
        self.value()
            .map(|v| match v.parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(n),
                _ => Err(self.malformed(what)),
            })
            .transpose()
    }
}

/// Parses `text` (the record, no CRC), whose first byte is at offset `at`.
pub(super) fn parse(
    text: &str,
    at: usize,
    device: &DeviceId,
    ctx: &DecodeContext,
) -> Result<Record, DecodeError> {
    let mut fields = Vec::with_capacity(DATA_FIELDS);
    let mut offset = at;
    for part in text.split(';') {
        fields.push(Field {
            at: offset,
            text: part,
        });
        offset = offset.saturating_add(part.len()).saturating_add(1);
    }
    if fields.len() < SHORT_FIELDS || fields.len() > DATA_FIELDS {
        return Err(DecodeError::Malformed {
            what: "record field count",
            offset: at,
        });
    }
    let na = Field { at, text: "NA" };
    let f = |i: usize| fields.get(i).copied().unwrap_or(na);

    let time = fix_time(f(0), f(1))?.unwrap_or(ctx.received);
    let lat = coordinate(f(2), f(3), b'N', b'S', 90.0)?;
    let lon = coordinate(f(4), f(5), b'E', b'W', 180.0)?;
    let speed = f(6).number("speed")?.unwrap_or(0.0);
    if speed < 0.0 {
        return Err(f(6).malformed("speed"));
    }
    let course = f(7).number("course")?.unwrap_or(0.0).rem_euclid(360.0);
    let altitude = f(8).number("altitude")?.unwrap_or(0.0);
    let satellites = f(9)
        .value()
        .map(|v| v.parse::<u8>().map_err(|_| f(9).malformed("satellites")))
        .transpose()?;

    // hdop, inputs, outputs, driver and one per ADC value or parameter
    // (a list's commas counted; at most 64 ahead, whatever a line of commas
    // claims): one allocation, not one per doubling.
    let listed = |i: usize| {
        f(i).value().map_or(0, |v| {
            v.bytes().filter(|&b| b == b',').count().saturating_add(1)
        })
    };
    let mut attributes = Attributes::with_capacity(
        4usize
            .saturating_add(listed(13))
            .saturating_add(listed(15))
            .min(64),
    );
    if let Some(hdop) = f(10).number("hdop")? {
        attributes.push(AttrKey::named(params::HDOP), AttrValue::Float(hdop));
    }
    for (i, key) in [(11, params::INPUT), (12, params::OUTPUT)] {
        if let Some(v) = f(i).value() {
            let bits = v.parse::<i64>().map_err(|_| f(i).malformed(key))?;
            attributes.push(AttrKey::named(key), AttrValue::Int(bits));
        }
    }
    if let Some(adc) = f(13).value() {
        params::adc(&mut attributes, adc);
    }
    if let Some(ibutton) = f(14).value() {
        attributes.push(
            AttrKey::named(params::DRIVER),
            AttrValue::Text(ibutton.to_owned()),
        );
    }
    if let Some(list) = f(15).value() {
        params::apply(&mut attributes, list, f(15).at)?;
    }

    Ok(match (lat, lon) {
        (Some(lat), Some(lon)) => Record::Position(Position {
            device_id: device.clone(),
            fix_time: time,
            received_time: ctx.received,
            lat,
            lon,
            altitude_m: altitude,
            speed_kmh: speed,
            course_deg: course,
            satellites,
            valid: satellites.is_some_and(|s| s >= MIN_VALID_SATELLITES),
            protocol: NAME,
            attributes,
        }),
        _ => {
            if let Some(s) = satellites {
                attributes.push(
                    AttrKey::named(params::SATELLITES),
                    AttrValue::Int(i64::from(s)),
                );
            }
            Record::Report(Report {
                device_id: device.clone(),
                time,
                protocol: NAME,
                attributes,
            })
        }
    })
}

/// `ddmmyy` and `hhmmss` (UTC); `None` when either is not available.
fn fix_time(date: Field<'_>, time: Field<'_>) -> Result<Option<DateTime<Utc>>, DecodeError> {
    let (Some(d), Some(t)) = (date.value(), time.value()) else {
        return Ok(None);
    };
    let [dd, mm, yy] = two_digit_groups(d).ok_or(date.malformed("date"))?;
    let [h, m, s] = two_digit_groups(t).ok_or(time.malformed("time"))?;
    let day = NaiveDate::from_ymd_opt(i32::from(yy).saturating_add(2000), mm.into(), dd.into())
        .ok_or(date.malformed("date"))?;
    let clock =
        NaiveTime::from_hms_opt(h.into(), m.into(), s.into()).ok_or(time.malformed("time"))?;
    Ok(Some(NaiveDateTime::new(day, clock).and_utc()))
}

/// Six ASCII digits as three two-digit numbers.
fn two_digit_groups(s: &str) -> Option<[u8; 3]> {
    let b = s.as_bytes();
    if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let pair = |i: usize| -> Option<u8> {
        let hi = b.get(i)?.checked_sub(b'0')?;
        let lo = b.get(i.checked_add(1)?)?.checked_sub(b'0')?;
        hi.checked_mul(10)?.checked_add(lo)
    };
    Some([pair(0)?, pair(2)?, pair(4)?])
}

/// `(d)ddmm.mmmm` with its hemisphere letter, in signed degrees; `None`
/// when not available.
/// Degrees from the wire's `ddmm.mmmmmm` read as one number (the device
/// side quantizes with it, so what it sends reads back equal).
pub(super) fn from_ddmm(raw: f64) -> f64 {
    let degrees = (raw / 100.0).trunc();
    let minutes = raw - degrees * 100.0;
    degrees + minutes / 60.0
}

fn coordinate(
    value: Field<'_>,
    hemisphere: Field<'_>,
    positive: u8,
    negative: u8,
    limit: f64,
) -> Result<Option<f64>, DecodeError> {
    let (Some(v), Some(h)) = (value.value(), hemisphere.value()) else {
        return Ok(None);
    };
    let raw = v
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0)
        .ok_or(value.malformed("coordinate"))?;
    let magnitude = from_ddmm(raw);
    // Minutes of 60 or more are not rejected: a captured device sends
    // `5364.0167` (Traccar reads it the same way, 53° + 64.0167′).
    if magnitude > limit {
        return Err(value.malformed("coordinate"));
    }
    match h.as_bytes() {
        [c] if *c == positive => Ok(Some(magnitude)),
        [c] if *c == negative => Ok(Some(-magnitude)),
        _ => Err(hemisphere.malformed("hemisphere")),
    }
}
