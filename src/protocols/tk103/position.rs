//! The position report, after the header:
//!
//! ```text
//! [<data>]<date>[,]A|V[,]<lat>N|S[,]<lon>E|W[,]<tail>
//!
//! fixed form  date yymmdd; tail = speed(5) time(6) course(6, or 2) [,]
//!             charge ignition io1 io2 io3 fuel(3 hex) L<odometer hex> [… ±ddd.d]
//!             or, without the L block: speed(5) time(6) course
//! comma form  date ddmmyy; tail = speed,hhmmss,course[,…]
//! ```
//!
//! `data` is the command's argument: an alarm code for BO01 (`BO012…`), or
//! `,ALARM,<code>,<n>,` for BQ81. Speed is km/h.

use super::fields::{self, malformed};
use super::header::Header;
use super::{Ctx, NAME};
use crate::model::{AttrKey, AttrValue, Attributes, Position};
use crate::protocol::Rejected;

/// Width of the charge/ignition/io/fuel block before `L`.
const IO_BLOCK: usize = 8;

pub(super) fn decode(h: &Header, c: &Ctx) -> Result<Option<Position>, Rejected> {
    let mut r = h.rest.trim_start_matches(',');
    let mut data = None;
    if let Some(after) = r.strip_prefix("ALARM,") {
        let mut parts = after.splitn(3, ',');
        data = parts.next();
        let _count = parts.next();
        r = parts.next().unwrap_or("");
    }
    let Some((date_at, valid_at)) = find_date(r) else {
        return Ok(None);
    };
    if data.is_none() {
        data = r.get(..date_at).map(|d| d.trim_matches(','));
    }
    let date = r
        .get(date_at..date_at.saturating_add(6))
        .and_then(fields::pairs)
        .ok_or(malformed("date", date_at))?;
    let date = if h.comma {
        [date[2], date[1], date[0]]
    } else {
        date
    };
    let valid = r.as_bytes().get(valid_at) == Some(&b'A');
    let after = skip_comma(r.get(valid_at.saturating_add(1)..).unwrap_or(""));

    let lat_end = after
        .find(['N', 'S'])
        .ok_or(malformed("latitude", valid_at))?;
    let lat_h = after.as_bytes().get(lat_end).copied().unwrap_or(b'N');
    let lat = after
        .get(..lat_end)
        .and_then(|v| fields::coordinate(v, lat_h))
        .ok_or(malformed("latitude", valid_at))?;
    let after = skip_comma(after.get(lat_end.saturating_add(1)..).unwrap_or(""));
    let lon_end = after
        .find(['E', 'W'])
        .ok_or(malformed("longitude", valid_at))?;
    let lon_h = after.as_bytes().get(lon_end).copied().unwrap_or(b'E');
    let lon = after
        .get(..lon_end)
        .and_then(|v| fields::coordinate(v, lon_h))
        .ok_or(malformed("longitude", valid_at))?;
    if !Position::valid_coordinates(lat, lon) {
        return Err(malformed("coordinates (out of range)", valid_at));
    }
    let tail = skip_comma(after.get(lon_end.saturating_add(1)..).unwrap_or(""));

    let mut attrs = Attributes::new();
    if let Some(alarm) = alarm(h.command, data.unwrap_or("")) {
        attrs.push(AttrKey::named("alarm"), AttrValue::Text(alarm.into()));
    }
    if let Some(on) = ignition(h.command) {
        attrs.push(AttrKey::named("ignition"), AttrValue::Bool(on));
    }
    let t = if h.comma {
        comma_tail(tail)
    } else {
        fixed_tail(tail, &mut attrs)
    }
    .ok_or(malformed("speed, time and course", 0))?;
    if let Some(temp) = temperature(tail) {
        attrs.push(AttrKey::named("temp1_c"), AttrValue::Float(temp));
    }
    let fix_time =
        fields::to_utc(date, t.time, c.time_zone).ok_or(malformed("date and time", date_at))?;
    Ok(Some(Position {
        device_id: h.device.clone(),
        fix_time,
        received_time: c.received,
        lat,
        lon,
        altitude_m: 0.0,
        speed_kmh: t.speed,
        course_deg: t.course,
        satellites: None,
        valid,
        protocol: NAME,
        attributes: attrs,
    }))
}

fn skip_comma(s: &str) -> &str {
    s.strip_prefix(',').unwrap_or(s)
}

/// The first `dddddd[,]A|V` followed by a coordinate: (date, validity) offsets.
fn find_date(r: &str) -> Option<(usize, usize)> {
    let b = r.as_bytes();
    (0..b.len()).find_map(|i| {
        let six = b.get(i..i.checked_add(6)?)?;
        if !six.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut v = i.checked_add(6)?;
        if b.get(v) == Some(&b',') {
            v = v.checked_add(1)?;
        }
        if !matches!(b.get(v), Some(b'A' | b'V')) {
            return None;
        }
        let mut n = v.checked_add(1)?;
        if b.get(n) == Some(&b',') {
            n = n.checked_add(1)?;
        }
        matches!(b.get(n), Some(c) if c.is_ascii_digit() || *c == b' ').then_some((i, v))
    })
}

struct Motion {
    speed: f64,
    time: [u32; 3],
    course: f64,
}

fn course(s: &str) -> Option<f64> {
    fields::decimal(s).filter(|c| (0.0..=360.0).contains(c))
}

/// `speed,hhmmss,course[,…]`
fn comma_tail(tail: &str) -> Option<Motion> {
    let mut f = tail.split(',');
    let speed = fields::decimal(f.next()?).filter(|s| *s >= 0.0)?;
    let time = fields::pairs(f.next()?)?;
    let course = match f.next() {
        Some(s) if !s.is_empty() => course(s)?,
        _ => 0.0,
    };
    Some(Motion {
        speed,
        time,
        course,
    })
}

/// The fixed-width tail (see the module doc); sets the IO attributes.
fn fixed_tail(tail: &str, attrs: &mut Attributes) -> Option<Motion> {
    let Some(l) = tail.find('L') else {
        // speed(5) time(6) course (a decimal up to a comma or the end)
        let speed = fields::decimal(tail.get(..5)?).filter(|s| *s >= 0.0)?;
        let time = fields::pairs(tail.get(5..11)?)?;
        let rest = tail.get(11..)?;
        let end = rest
            .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
            .unwrap_or(rest.len());
        let course = course(rest.get(..end)?).unwrap_or(0.0);
        return Some(Motion {
            speed,
            time,
            course,
        });
    };
    let before = tail.get(..l)?;
    let io_at = before.len().checked_sub(IO_BLOCK)?;
    let io = before.get(io_at..)?;
    let motion = before.get(..io_at)?;
    let motion = motion.strip_suffix(',').unwrap_or(motion);
    let course_len = if motion.len() >= 17 { 6 } else { 2 };
    let course_at = motion.len().checked_sub(course_len)?;
    let time_at = course_at.checked_sub(6)?;
    let speed = fields::decimal(motion.get(..time_at)?).filter(|s| *s >= 0.0)?;
    let time = fields::pairs(motion.get(time_at..course_at)?)?;
    let course = course(motion.get(course_at..)?)?;

    let odometer: String = tail
        .get(l.saturating_add(1)..)?
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    io_block(io, attrs)?;
    if let Some(m) = fields::hex(&odometer) {
        attrs.push(
            AttrKey::named("odometer_m"),
            AttrValue::Int(i64::try_from(m).unwrap_or(i64::MAX)),
        );
    }
    Some(Motion {
        speed,
        time,
        course,
    })
}

/// `charge ignition io1 io2 io3 fuel(3)`: each a hex digit but fuel.
fn io_block(io: &str, attrs: &mut Attributes) -> Option<()> {
    let digit = |i: usize| io.get(i..i.checked_add(1)?).and_then(fields::hex);
    let (charge, ign, m1, m2, m3) = (digit(0)?, digit(1)?, digit(2)?, digit(3)?, digit(4)?);
    let fuel = fields::hex(io.get(5..8)?)?;
    let bit = |m: u64, b: u32| m & (1 << b) != 0;
    let flag = |v: bool| AttrValue::Bool(v);
    attrs.push(AttrKey::named("charging"), flag(charge == 0));
    attrs.set(AttrKey::named("ignition"), flag(ign == 1));
    attrs.push(AttrKey::named("in2"), flag(bit(m1, 0)));
    attrs.push(AttrKey::named("panic"), flag(bit(m1, 1)));
    attrs.push(AttrKey::named("out2"), flag(bit(m1, 2)));
    if bit(m1, 3) {
        attrs.push(AttrKey::named("blocked"), flag(true));
    }
    for (b, name) in [(0, "hs3"), (1, "hs2"), (2, "hs1")] {
        if bit(m2, b) {
            attrs.push(AttrKey::named(name), flag(true));
        }
    }
    if bit(m2, 3) {
        attrs.push(AttrKey::named("door"), flag(true));
    }
    for (b, name) in [(1, "ls3"), (2, "ls2"), (3, "ls1")] {
        if bit(m3, b) {
            attrs.push(AttrKey::named(name), flag(true));
        }
    }
    attrs.push(
        AttrKey::named("fuel_raw"),
        AttrValue::Int(i64::try_from(fuel).unwrap_or(i64::MAX)),
    );
    Some(())
}

/// A trailing `+ddd.d` / `-ddd.d` temperature.
fn temperature(tail: &str) -> Option<f64> {
    let t = tail.get(tail.len().checked_sub(6)?..)?;
    let b = t.as_bytes();
    let shaped = matches!(b.first(), Some(b'+' | b'-')) && b.get(4) == Some(&b'.');
    shaped
        .then(|| fields::decimal(t.trim_start_matches('+')))
        .flatten()
}

/// The alarm a command (and its data) reports.
pub(super) fn alarm(command: &str, data: &str) -> Option<&'static str> {
    match command {
        "BQ81" => match data {
            "0" => Some("low_battery"),
            "1" => Some("overspeed"),
            "2" => Some("idle"),
            "3" => Some("acceleration"),
            "4" => Some("braking"),
            "5" => Some("temperature"),
            _ => None,
        },
        "BO01" => match data.as_bytes().first() {
            Some(b'1') => Some("accident"),
            Some(b'2') => Some("sos"),
            Some(b'3') => Some("vibration"),
            Some(b'4') => Some("low_speed"),
            Some(b'5') => Some("overspeed"),
            Some(b'6') => Some("geofence_exit"),
            _ => None,
        },
        "ZC11" | "DW31" | "DW51" => Some("movement"),
        "ZC12" | "DW32" | "DW52" => Some("low_battery"),
        "ZC13" | "DW33" | "DW53" => Some("power_cut"),
        "ZC17" | "DW37" | "DW57" => Some("removing"),
        "ZC25" | "DW3E" | "DW5E" => Some("sos"),
        "ZC26" | "DW3F" | "DW5F" => Some("tampering"),
        "ZC27" | "DW40" | "DW60" => Some("low_power"),
        _ => None,
    }
}

/// Ignition events.
pub(super) fn ignition(command: &str) -> Option<bool> {
    match command {
        "ZC15" | "DW35" | "DW55" | "ZC29" | "DW42" | "DW62" => Some(true),
        "ZC16" | "DW36" | "DW56" => Some(false),
        _ => None,
    }
}
