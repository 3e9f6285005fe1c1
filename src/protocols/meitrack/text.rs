//! `AAA` (and `AFF`) position records: comma-separated text.
//!
//! ```text
//! [AFF: sequence,] event, lat, lon, yyMMddHHmmss, A|V, sats, gsm, speed km/h,
//! course, hdop, altitude m, mileage m, runtime s, mcc|mnc|lac|ci (hex),
//! io (2 hex inputs + 2 hex outputs), analog,
//! [event data, sensor, protocol, fuel (4 hex), temps (6 hex|6 hex…), …]
//! analog: adc1|adc2|adc3|battery|power in hex (scaled per model)
//!      or battery|power|rtc|mcu|gps in volts with a decimal point
//! ```

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use super::envelope::Envelope;
use super::{names, NAME};
use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Position};
use crate::protocol::{DecodeContext, DecodeError};

/// Fields up to and including `analog`: all mandatory.
const MANDATORY: usize = 16;
/// The event code that carries a driver card in its event data.
const EVENT_DRIVER_CARD: u32 = 37;

/// How a model's hex analog battery and power readings become volts.
#[derive(Clone, Copy)]
enum Scale {
    /// ADC counts × factor.
    Counts { battery: f64, power: f64 },
    /// MT90: battery in counts, power as sent.
    Mt90,
    /// Default (T311, T333, T355, newer firmware): hundredths of a volt.
    Hundredths,
}

fn scale(model: Option<&str>) -> Scale {
    let upper = model.map(str::to_ascii_uppercase).unwrap_or_default();
    match upper.as_str() {
        "MVT340" | "MVT380" => Scale::Counts {
            battery: 3.0 * 2.0 / 1024.0,
            power: 3.0 * 16.0 / 1024.0,
        },
        "MT90" => Scale::Mt90,
        "T1" | "T3" | "MVT100" | "MVT600" | "MVT800" | "TC68" | "TC68S" => Scale::Counts {
            battery: 3.3 * 2.0 / 4096.0,
            power: 3.3 * 16.0 / 4096.0,
        },
        _ => Scale::Hundredths,
    }
}

#[derive(Clone, Copy)]
struct Field<'a> {
    at: usize,
    text: &'a str,
}

impl<'a> Field<'a> {
    fn malformed(self, what: &'static str) -> DecodeError {
        DecodeError::Malformed {
            what,
            offset: self.at,
        }
    }
    fn parse<T: std::str::FromStr>(self, what: &'static str) -> Result<T, DecodeError> {
        self.text.trim().parse().map_err(|_| self.malformed(what))
    }
    fn float(self, what: &'static str) -> Result<f64, DecodeError> {
        self.parse::<f64>(what)
            .ok()
            .filter(|v| v.is_finite())
            .ok_or(self.malformed(what))
    }
}

fn hex(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

pub(super) fn parse(
    env: &Envelope<'_>,
    device: &DeviceId,
    model: Option<&str>,
    ctx: &DecodeContext,
) -> Result<Position, DecodeError> {
    let text = std::str::from_utf8(env.payload).map_err(|_| DecodeError::Malformed {
        what: "text payload",
        offset: env.payload_at,
    })?;
    let mut fields = Vec::new();
    let mut at = env.payload_at;
    for part in text.split(',') {
        fields.push(Field { at, text: part });
        at = at.saturating_add(part.len()).saturating_add(1);
    }
    // AFF puts a sequence number before the event: the latitude (with its
    // decimal point) is then one field later.
    let has_point = |i: usize| fields.get(i).is_some_and(|f| f.text.contains('.'));
    if !has_point(1) && has_point(2) {
        fields.remove(0);
    }
    if fields.len() < MANDATORY {
        return Err(DecodeError::Malformed {
            what: "position record (too few fields)",
            offset: env.payload_at,
        });
    }
    let empty = Field { at, text: "" };
    let f = |i: usize| fields.get(i).copied().unwrap_or(empty);

    let mut a = Attributes::new();
    let event: u32 = f(0).parse("event")?;
    a.push(AttrKey::named(names::EVENT), AttrValue::Int(event.into()));
    if let Some(alarm) = names::alarm(event) {
        a.push(AttrKey::named(names::ALARM), AttrValue::Text(alarm.into()));
    }
    let lat = f(1).float("latitude")?;
    let lon = f(2).float("longitude")?;
    if !Position::valid_coordinates(lat, lon) {
        return Err(f(1).malformed("coordinates"));
    }
    let fix_time = time(f(3))?;
    let valid = match f(4).text {
        "A" => true,
        "V" => false,
        _ => return Err(f(4).malformed("validity A/V")),
    };
    let satellites: u8 = f(5).parse("satellites")?;
    let rssi: i64 = f(6).parse("gsm signal")?;
    a.push(AttrKey::named(names::RSSI), AttrValue::Int(rssi));
    let speed = f(7).float("speed")?;
    let course = f(8).float("course")?;
    if speed < 0.0 || !(0.0..=360.0).contains(&course) {
        return Err(f(7).malformed("speed or course"));
    }
    a.push(
        AttrKey::named(names::HDOP),
        AttrValue::Float(f(9).float("hdop")?),
    );
    let altitude = f(10).float("altitude")?;
    let mileage: i64 = f(11).parse("mileage")?;
    a.push(AttrKey::named(names::ODOMETER), AttrValue::Int(mileage));
    let runtime: i64 = f(12).parse("runtime")?;
    a.push(AttrKey::named(names::RUNTIME), AttrValue::Int(runtime));
    cell(f(13), &mut a)?;
    io(f(14), &mut a)?;
    analog(f(15), scale(model), &mut a)?;
    tail(&fields, event, &mut a);

    Ok(Position {
        device_id: device.clone(),
        fix_time,
        received_time: ctx.received,
        lat,
        lon,
        altitude_m: altitude,
        speed_kmh: speed,
        course_deg: course,
        satellites: Some(satellites),
        valid,
        protocol: NAME,
        attributes: a,
    })
}

/// `yyMMddHHmmss`, UTC.
fn time(field: Field<'_>) -> Result<DateTime<Utc>, DecodeError> {
    let b = field.text.as_bytes();
    if b.len() != 12 || !b.iter().all(u8::is_ascii_digit) {
        return Err(field.malformed("time yyMMddHHmmss"));
    }
    let n = |i: usize| -> u32 {
        let d = |j: usize| b.get(j).map_or(0, |c| u32::from(c.saturating_sub(b'0')));
        d(i).saturating_mul(10)
            .saturating_add(d(i.saturating_add(1)))
    };
    let year = i32::try_from(n(0)).unwrap_or(0).saturating_add(2000);
    let date = NaiveDate::from_ymd_opt(year, n(2), n(4)).ok_or(field.malformed("date"))?;
    let clock = NaiveTime::from_hms_opt(n(6), n(8), n(10)).ok_or(field.malformed("time"))?;
    Ok(NaiveDateTime::new(date, clock).and_utc())
}

/// `mcc|mnc|lac|ci`, lac and ci in hex (may be empty). A cell with mcc or
/// mnc 0 is "no cell" and left out.
fn cell(field: Field<'_>, a: &mut Attributes) -> Result<(), DecodeError> {
    let parts: Vec<&str> = field.text.split('|').collect();
    let [mcc, mnc, lac, ci] = parts.as_slice() else {
        return Err(field.malformed("base station mcc|mnc|lac|ci"));
    };
    let mcc: u32 = mcc.parse().map_err(|_| field.malformed("mcc"))?;
    let mnc: u32 = mnc.parse().map_err(|_| field.malformed("mnc"))?;
    let lac = if lac.is_empty() { Some(0) } else { hex(lac) };
    let ci = if ci.is_empty() { Some(0) } else { hex(ci) };
    let (Some(lac), Some(ci)) = (lac, ci) else {
        return Err(field.malformed("lac/ci"));
    };
    if mcc != 0 && mnc != 0 {
        let json = serde_json::json!([{"mcc": mcc, "mnc": mnc, "lac": lac, "cid": ci}]);
        a.push(
            AttrKey::named(names::NETWORK),
            AttrValue::Text(json.to_string()),
        );
    }
    Ok(())
}

/// Four hex digits: inputs then outputs, one bit each.
fn io(field: Field<'_>, a: &mut Attributes) -> Result<(), DecodeError> {
    let t = field.text;
    let (Some(input), Some(output)) = (
        t.get(..2).and_then(hex),
        t.get(2..).filter(|o| o.len() == 2).and_then(hex),
    ) else {
        return Err(field.malformed("io status"));
    };
    a.push(AttrKey::named(names::INPUT), AttrValue::Int(input.into()));
    a.push(AttrKey::named(names::OUTPUT), AttrValue::Int(output.into()));
    Ok(())
}

fn analog(field: Field<'_>, scale: Scale, a: &mut Attributes) -> Result<(), DecodeError> {
    let parts: Vec<&str> = field.text.split('|').collect();
    if parts.len() < 5 {
        return Err(field.malformed("analog values"));
    }
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    if part(0).contains('.') {
        for (i, key) in [(0, names::BATTERY), (1, names::POWER)] {
            let v: f64 = part(i)
                .parse()
                .map_err(|_| field.malformed("analog volts"))?;
            a.push(AttrKey::named(key), AttrValue::Float(v));
        }
        return Ok(());
    }
    let value = |i: usize| -> Result<Option<u32>, DecodeError> {
        match part(i) {
            "" => Ok(None),
            s => hex(s).map(Some).ok_or(field.malformed("analog hex")),
        }
    };
    for (i, key) in names::ADC.iter().enumerate() {
        if let Some(v) = value(i)? {
            a.push(AttrKey::named(key), AttrValue::Int(v.into()));
        }
    }
    let (battery, power) = (value(3)?, value(4)?);
    let (battery, power) = match scale {
        Scale::Counts {
            battery: b,
            power: p,
        } => (
            battery.map(|v| f64::from(v) * b),
            power.map(|v| f64::from(v) * p),
        ),
        Scale::Mt90 => (
            battery.map(|v| f64::from(v) * 3.3 * 2.0 / 4096.0),
            power.map(f64::from),
        ),
        Scale::Hundredths => (
            battery.map(|v| f64::from(v) / 100.0),
            power.map(|v| f64::from(v) / 100.0),
        ),
    };
    for (key, v) in [(names::BATTERY, battery), (names::POWER, power)] {
        if let Some(v) = v {
            a.push(AttrKey::named(key), AttrValue::Float(v));
        }
    }
    Ok(())
}

/// The optional, model-dependent fields after `analog`. Read where they
/// are well formed, skipped otherwise (firmwares differ here).
fn tail(fields: &[Field<'_>], event: u32, a: &mut Attributes) {
    let get = |i: usize| fields.get(i).map(|f| f.text).unwrap_or_default();
    let event_data = get(MANDATORY);
    if !event_data.is_empty() {
        if event == EVENT_DRIVER_CARD {
            let card: String = event_data
                .chars()
                .filter(|c| !matches!(c, ' ' | '\r' | '|'))
                .collect();
            a.push(AttrKey::named(names::DRIVER), AttrValue::Text(card));
        } else {
            a.push(
                AttrKey::named(names::EVENT_DATA),
                AttrValue::Text(event_data.into()),
            );
        }
    }
    let protocol: u32 = get(MANDATORY.saturating_add(2)).parse().unwrap_or(0);
    let fuel = get(MANDATORY.saturating_add(3));
    if fuel.len() == 4 {
        if let (Some(whole), Some(hundredths)) =
            (fuel.get(..2).and_then(hex), fuel.get(2..).and_then(hex))
        {
            let level = f64::from(whole) + f64::from(hundredths) * 0.01;
            a.push(AttrKey::named(names::FUEL_LEVEL), AttrValue::Float(level));
        }
    }
    for probe in get(MANDATORY.saturating_add(4)).split('|') {
        if let Some((index, value)) = temperature(probe, protocol) {
            a.push(
                AttrKey::Named(names::temp(index).into()),
                AttrValue::Float(value),
            );
        }
    }
}

/// `IIVVVV`: probe index and value; protocol 3+: signed hundredths,
/// older: signed whole degrees then hundredths.
fn temperature(probe: &str, protocol: u32) -> Option<(u8, f64)> {
    if probe.len() != 6 {
        return None;
    }
    let index = u8::try_from(hex(probe.get(..2)?)?).ok()?;
    if protocol >= 3 {
        let raw = u16::try_from(hex(probe.get(2..)?)?).ok()?;
        return Some((
            index,
            f64::from(i16::from_ne_bytes(raw.to_ne_bytes())) * 0.01,
        ));
    }
    let whole = u8::try_from(hex(probe.get(2..4)?)?).ok()?;
    let whole = f64::from(i8::from_ne_bytes([whole]));
    let fraction = f64::from(hex(probe.get(4..)?)?) * 0.01;
    Some((
        index,
        if whole < 0.0 {
            whole - fraction
        } else {
            whole + fraction
        },
    ))
}
