//! Text messages: `*<maker>,<id>,<command>,<fields…>#`, where maker is two
//! letters (`HQ`, `hq`, `TH`), id the device's digits (may be empty: then
//! the device last named on the session) and command selects the layout.
//!
//! The position report (`V1`, and every other `V…` command that shares its
//! layout: V2, V5, V6, V8, V19, VI1, and `V4`, the device's answer to a
//! command, whose answer fields come first):
//!
//! ```text
//! *HQ,<id>,V1,hhmmss,A|V|B|<digit>,<lat>,N|S,<lon>,E|W,<speed kn>,<course>,
//!      [<battery>,]ddmmyy[,<sim1>,<sim2>,<sim3>][,<status hex8>[,<extra…>]]#
//! *HQ,<id>,V4,<answer…>,hhmmss,A,<lat>,…
//! ```
//!
//! `extra` is either `odometer,temperature,fuel,altitude,lac(hex),cid(hex)`
//! or device-specific values kept as `io1`, `io2`, …

use super::fields::{self, malformed};
use super::{lbs, reply, status, Ctx, NAME};
use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Position};
use crate::protocol::{DecodeError, Decoded, MessageKind, Rejected, Reply};

/// Index of the first field after the command.
const FIRST: usize = 3;
/// Knots → km/h.
const KNOTS: f64 = 1.852;

/// A text frame split into fields.
pub(super) struct Message<'a> {
    pub maker: &'a str,
    /// The id field as sent (possibly empty).
    pub id_field: &'a str,
    pub device: DeviceId,
    pub command: &'a str,
    /// Every field, the three above included.
    pub fields: Vec<&'a str>,
}

impl Message<'_> {
    pub fn get(&self, i: usize) -> Option<&str> {
        self.fields.get(i).copied()
    }
    /// The fields from `i` on.
    pub fn from(&self, i: usize) -> &[&str] {
        self.fields.get(i..).unwrap_or_default()
    }
}

pub(super) fn decode(frame: &[u8], c: &Ctx) -> Result<Decoded, Rejected> {
    let text = String::from_utf8_lossy(frame);
    let body = text
        .trim_end()
        .strip_prefix('*')
        .and_then(|t| t.strip_suffix('#'))
        .ok_or_else(|| malformed("text frame (expected '*' … '#')", 0))?;
    let fields: Vec<&str> = body.split(',').collect();
    let [maker, id_field, command, ..] = fields[..] else {
        return Err(malformed("text frame (fewer than 3 fields)", 1));
    };
    if maker.len() != 2 || !maker.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(malformed("maker (two letters)", 1));
    }
    let device = if id_field.is_empty() {
        c.last_device
            .cloned()
            .ok_or(Rejected::skip(DecodeError::NotIdentified))?
    } else if fields::is_digits(id_field) {
        DeviceId::new(id_field).map_err(|e| Rejected::skip(e.into()))?
    } else {
        return Err(malformed("device id (digits)", 4));
    };
    let m = Message {
        maker,
        id_field,
        device,
        command,
        fields,
    };
    match command {
        "HTBT" | "V0" => Ok(lbs::heartbeat(&m, c)),
        "NBR" => lbs::nbr(&m, c),
        "LINK" => lbs::link(&m, c),
        "V3" => lbs::v3(&m, c),
        "VP1" => lbs::vp1(&m, c),
        "SMS" => Ok(lbs::sms(&m, c)),
        v if v.starts_with('V') => report(&m, c),
        _ => Ok(Decoded::control(
            MessageKind::Other,
            Some(m.device),
            Reply::NONE,
        )),
    }
}

/// A `V…` position report. Without a location (`V1,,V,,N,,E,…` or a
/// hemisphere that is not N/S/E/W) it is a report of no fix: recognised,
/// nothing stored, no reply.
fn report(m: &Message, c: &Ctx) -> Result<Decoded, Rejected> {
    let Some(p) = position(m, c)? else {
        return Ok(Decoded::control(
            MessageKind::Other,
            Some(m.device.clone()),
            Reply::NONE,
        ));
    };
    let reply = match m.command {
        "V1" => Reply {
            accept: Some(reply::confirm(m.id_field_or_device(), "V1", c.received)),
            ..Reply::NONE
        },
        _ => Reply::NONE,
    };
    Ok(Decoded {
        kind: MessageKind::Data,
        device: Some(m.device.clone()),
        positions: vec![p],
        reports: Vec::new(),
        reply,
    })
}

impl Message<'_> {
    /// The id to answer with: as sent, or the session's device.
    pub fn id_field_or_device(&self) -> &str {
        if self.id_field.is_empty() {
            self.device.as_str()
        } else {
            self.id_field
        }
    }
}

fn position(m: &Message, c: &Ctx) -> Result<Option<Position>, Rejected> {
    let f = &m.fields;
    // The latitude hemisphere: the first N/S field followed, two later, by E/W.
    let hemi = (FIRST..f.len()).find(|&j| {
        matches!(f.get(j), Some(&("N" | "S")))
            && matches!(f.get(j.saturating_add(2)), Some(&("E" | "W")))
    });
    let Some(j) = hemi else {
        return Ok(None);
    };
    // time, validity, latitude come right before: j - 3 is the time field.
    let time_at = j.checked_sub(3).ok_or(malformed("position layout", j))?;
    let mut attrs = Attributes::new();
    if m.command == "V4" && time_at > FIRST {
        let answer = f.get(FIRST..time_at).unwrap_or_default().join(",");
        attrs.push(AttrKey::named("result"), AttrValue::Text(answer));
    } else if time_at != FIRST {
        return Err(malformed("position layout (time field)", time_at));
    }
    let at = |i: usize| f.get(i).copied().unwrap_or("");
    let field = |k: usize| time_at.saturating_add(k);

    let time = match at(time_at) {
        "" => None,
        t => Some(fields::time(t).ok_or(malformed("time (hhmmss)", time_at))?),
    };
    let valid = match at(field(1)) {
        "A" => true,
        "" | "V" | "B" => false,
        s if fields::is_digits(s) => true, // a coding scheme: the fix is good
        _ => return Err(malformed("validity", field(1))),
    };
    let (lat_s, lon_s) = (at(field(2)), at(field(4)));
    if lat_s.trim().is_empty() || lon_s.trim().is_empty() {
        return Ok(None);
    }
    let lat = fields::coordinate(lat_s, at(field(3))).ok_or(malformed("latitude", field(2)))?;
    let lon = fields::coordinate(lon_s, at(field(5))).ok_or(malformed("longitude", field(4)))?;
    if !Position::valid_coordinates(lat, lon) {
        return Err(malformed("coordinates (out of range)", field(2)));
    }
    let speed = fields::decimal(at(field(6))).ok_or(malformed("speed", field(6)))?;
    let course = match at(field(7)) {
        "" => 0.0,
        s => fields::decimal(s)
            .filter(|c| *c <= 360.0)
            .ok_or(malformed("course", field(7)))?,
    };

    // [battery,] ddmmyy — the date may also be empty or absent.
    let mut i = field(8);
    let is_date = |s: &str| s.len() == 6 && fields::is_digits(s);
    if fields::is_digits(at(i)) && !is_date(at(i)) && is_date(at(i.saturating_add(1))) {
        i = i.saturating_add(1); // battery bars: not stored, see protocols/h02.md
    }
    let date = match at(i) {
        s if is_date(s) => Some(fields::date(s).ok_or(malformed("date (ddmmyy)", i))?),
        _ => None,
    };
    if f.get(i).is_some_and(|s| s.is_empty() || is_date(s)) {
        i = i.saturating_add(1);
    }
    let fix_time = match (date, time) {
        (Some(d), t) => fields::to_utc(d, t.unwrap_or_default(), c.time_zone)
            .ok_or(malformed("date and time", i))?,
        (None, _) => c.received, // no date sent: the time of arrival
    };

    // [sim1,sim2,sim3,] status [,extra…]
    let mut altitude = 0.0;
    let status_at = if fields::is_hex8(at(i)) {
        Some(i)
    } else if fields::is_hex8(at(i.saturating_add(3))) {
        Some(i.saturating_add(3))
    } else {
        None
    };
    if let Some(s) = status_at {
        let word = fields::hex(at(s)).and_then(|w| u32::try_from(w).ok());
        status::apply(&mut attrs, word.ok_or(malformed("status", s))?);
        let extra = m.from(s.saturating_add(1));
        altitude = extras(&mut attrs, extra);
    }
    Ok(Some(Position {
        device_id: m.device.clone(),
        fix_time,
        received_time: c.received,
        lat,
        lon,
        altitude_m: altitude,
        speed_kmh: speed * KNOTS,
        course_deg: course,
        satellites: None,
        valid,
        protocol: NAME,
        attributes: attrs,
    }))
}

/// The fields after the status word. Returns the altitude, if they carry one.
fn extras(attrs: &mut Attributes, extra: &[&str]) -> f64 {
    if let [odometer, temp, fuel, alt, lac, cid] = extra {
        let parsed = (
            fields::uint(odometer),
            fields::int(temp),
            fuel.contains('.').then(|| fields::decimal(fuel)).flatten(),
            fields::int(alt),
            fields::hex(lac),
            fields::hex(cid),
        );
        if let (Some(o), Some(t), Some(fl), Some(a), Some(l), Some(ci)) = parsed {
            let int = |v: u64| AttrValue::Int(i64::try_from(v).unwrap_or(i64::MAX));
            attrs.push(AttrKey::named("odometer_m"), int(o));
            attrs.push(AttrKey::named("temp1_c"), AttrValue::Int(t));
            attrs.push(AttrKey::named("fuel_l"), AttrValue::Float(fl));
            attrs.push(AttrKey::named("lac"), int(l));
            attrs.push(AttrKey::named("cid"), int(ci));
            return a as f64;
        }
    }
    // Java's split drops trailing empty strings; so do we.
    let used = extra
        .iter()
        .rposition(|s| !s.is_empty())
        .map_or(0, |p| p.saturating_add(1));
    for (n, value) in (1u32..).zip(extra.iter().take(used)) {
        attrs.push(AttrKey::Io(n), AttrValue::Text(value.trim().to_string()));
    }
    0.0
}
