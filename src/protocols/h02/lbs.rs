//! Text messages without a GNSS fix; each becomes a `Report` (the device's
//! time where it sends one, else the time of arrival).
//!
//! ```text
//! *HQ,<id>,HTBT[,<battery %>]#    heartbeat, echoed (V0 likewise)
//! *HQ,<id>,NBR,hhmmss,mcc,mnc,<delay>,<n>,[lac,cid,rssi,]×n ddmmyy,<status>[,…]#
//! *HQ,<id>,LINK,hhmmss,rssi,sats,battery %,steps,turnovers,ddmmyy,<status>#
//! *HQ,<id>,V3,hhmmss,<mcc(3)><mnc>,<n>,[lac,cid,rssi,x,]×n <battery hex4>,<reboot>,X,ddmmyy,<status>#
//! *hq,<id>,VP1,V,mcc,mnc,lac,cid,rssiYlac,cid,rssi…#     (VP1 with A/B: a fix, see below)
//! *HQ,<id>,SMS,<free text, may hold commas and newlines>#
//! ```
//!
//! Cell lists become one `network` attribute: a JSON list of
//! `{"mcc","mnc","lac","cid"[,"rssi"]}`.

use chrono::{DateTime, Utc};

use super::fields::{self, malformed};
use super::text::Message;
use super::{reply, status, Ctx, NAME};
use crate::model::{AttrKey, AttrValue, Attributes, Position, Report};
use crate::protocol::{Decoded, MessageKind, Rejected, Reply};

const KNOTS: f64 = 1.852;

/// One cell tower.
struct Cell {
    mcc: u64,
    mnc: u64,
    lac: u64,
    cid: u64,
    rssi: Option<i64>,
}

fn network(cells: &[Cell]) -> AttrValue {
    let list: Vec<serde_json::Value> = cells
        .iter()
        .map(|c| {
            let mut o = serde_json::json!({"mcc": c.mcc, "mnc": c.mnc, "lac": c.lac, "cid": c.cid});
            if let (Some(rssi), Some(map)) = (c.rssi, o.as_object_mut()) {
                map.insert("rssi".into(), rssi.into());
            }
            o
        })
        .collect();
    AttrValue::Text(serde_json::Value::Array(list).to_string())
}

fn data(m: &Message, time: DateTime<Utc>, attributes: Attributes, reply: Reply) -> Decoded {
    Decoded {
        kind: MessageKind::Data,
        device: Some(m.device.clone()),
        positions: Vec::new(),
        reports: vec![Report {
            device_id: m.device.clone(),
            time,
            protocol: NAME,
            attributes,
        }],
        reply,
    }
}

/// `hhmmss` at `t` and `ddmmyy` at `d`, device-local, in UTC.
fn when(m: &Message, t: usize, d: usize, c: &Ctx) -> Result<DateTime<Utc>, Rejected> {
    let time = m
        .get(t)
        .and_then(fields::time)
        .ok_or(malformed("time (hhmmss)", t))?;
    let date = m
        .get(d)
        .and_then(fields::date)
        .ok_or(malformed("date (ddmmyy)", d))?;
    fields::to_utc(date, time, c.time_zone).ok_or(malformed("date and time", d))
}

fn status_at(m: &Message, i: usize, attrs: &mut Attributes) -> Result<(), Rejected> {
    let word = m
        .get(i)
        .filter(|s| fields::is_hex8(s))
        .and_then(fields::hex)
        .and_then(|w| u32::try_from(w).ok())
        .ok_or(malformed("status (8 hex digits)", i))?;
    status::apply(attrs, word);
    Ok(())
}

fn num(m: &Message, i: usize, what: &'static str) -> Result<u64, Rejected> {
    m.get(i).and_then(fields::uint).ok_or(malformed(what, i))
}

fn int_attr(v: u64) -> AttrValue {
    AttrValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

/// `HTBT` / `V0`: echoed; a battery level, when sent, is reported.
pub(super) fn heartbeat(m: &Message, c: &Ctx) -> Decoded {
    let echo = reply::echo(m.maker, m.id_field, m.command);
    let battery = m.get(3).and_then(fields::uint);
    match battery {
        Some(level) => {
            let mut attrs = Attributes::new();
            attrs.push(AttrKey::named("battery_level_pct"), int_attr(level));
            let mut d = data(m, c.received, attrs, Reply::accept_only(echo));
            d.kind = MessageKind::Keepalive;
            d
        }
        None => Decoded::control(
            MessageKind::Keepalive,
            Some(m.device.clone()),
            Reply::accept_only(echo),
        ),
    }
}

/// `NBR`: neighbouring cells; confirmed with `*HQ,<id>,V4,NBR,<time>#`.
pub(super) fn nbr(m: &Message, c: &Ctx) -> Result<Decoded, Rejected> {
    let mcc = num(m, 4, "mcc")?;
    let mnc = num(m, 5, "mnc")?;
    let count = usize::try_from(num(m, 7, "cell count")?).unwrap_or(usize::MAX);
    let cells_end = count
        .checked_mul(3)
        .and_then(|n| n.checked_add(8))
        .filter(|end| *end <= m.fields.len())
        .ok_or(malformed("cell count", 7))?;
    let cells = m
        .fields
        .get(8..cells_end)
        .unwrap_or_default()
        .chunks_exact(3)
        .enumerate()
        .map(|(n, t)| {
            let at = n.saturating_mul(3).saturating_add(8);
            match t {
                [lac, cid, rssi] => Ok(Cell {
                    mcc,
                    mnc,
                    lac: fields::uint(lac).ok_or(malformed("lac", at))?,
                    cid: fields::uint(cid).ok_or(malformed("cid", at))?,
                    rssi: Some(fields::int(rssi).ok_or(malformed("rssi", at))?),
                }),
                _ => Err(malformed("cell", at)),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let time = when(m, 3, cells_end, c)?;
    let mut attrs = Attributes::new();
    attrs.push(AttrKey::named("network"), network(&cells));
    status_at(m, cells_end.saturating_add(1), &mut attrs)?;
    let reply = Reply::accept_only(reply::confirm(m.id_field_or_device(), "NBR", c.received));
    Ok(data(m, time, attrs, reply))
}

/// `LINK`: signal, satellites, battery and pedometer of a watch.
pub(super) fn link(m: &Message, c: &Ctx) -> Result<Decoded, Rejected> {
    let time = when(m, 3, 9, c)?;
    let mut attrs = Attributes::new();
    for (i, name) in [
        (4, "rssi"),
        (5, "satellites"),
        (6, "battery_level_pct"),
        (7, "steps"),
        (8, "turnovers"),
    ] {
        attrs.push(AttrKey::named(name), int_attr(num(m, i, name)?));
    }
    status_at(m, 10, &mut attrs)?;
    Ok(data(m, time, attrs, Reply::NONE))
}

/// `V3`: serving and neighbour cells, battery, status.
pub(super) fn v3(m: &Message, c: &Ctx) -> Result<Decoded, Rejected> {
    let n = m.fields.len();
    let last = |k: usize| n.checked_sub(k).ok_or(malformed("V3 layout", 0));
    let (status_i, date_i, x_i, battery_i) = (last(1)?, last(2)?, last(3)?, last(5)?);
    if m.get(x_i) != Some("X") {
        return Err(malformed("V3 layout (X before the date)", x_i));
    }
    let operator = m.get(4).unwrap_or("");
    let mcc = operator
        .get(..3)
        .and_then(fields::uint)
        .ok_or(malformed("mcc", 4))?;
    let mnc = operator
        .get(3..)
        .and_then(fields::uint)
        .ok_or(malformed("mnc", 4))?;
    let count = usize::try_from(num(m, 5, "cell count")?).unwrap_or(usize::MAX);
    let cell_fields = m.fields.get(6..battery_i).unwrap_or_default();
    if count.checked_mul(4) != Some(cell_fields.len()) {
        return Err(malformed("cell count", 5));
    }
    let cells = cell_fields
        .chunks_exact(4)
        .enumerate()
        .map(|(k, q)| {
            let at = k.saturating_mul(4).saturating_add(6);
            match q {
                [lac, cid, rssi, _] => Ok(Cell {
                    mcc,
                    mnc,
                    lac: fields::uint(lac).ok_or(malformed("lac", at))?,
                    cid: fields::uint(cid).ok_or(malformed("cid", at))?,
                    rssi: fields::int(rssi),
                }),
                _ => Err(malformed("cell", at)),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let time = when(m, 3, date_i, c)?;
    let mut attrs = Attributes::new();
    attrs.push(AttrKey::named("network"), network(&cells));
    let battery = m
        .get(battery_i)
        .and_then(fields::hex)
        .ok_or(malformed("battery", battery_i))?;
    attrs.push(AttrKey::named("battery_raw"), int_attr(battery));
    status_at(m, status_i, &mut attrs)?;
    Ok(data(m, time, attrs, Reply::NONE))
}

/// `VP1`: either cells (`V,mcc,mnc,cells`) or a fix with a date and no time
/// (`A|B,lat,N,lon,E,speed,course,ddmmyy`).
pub(super) fn vp1(m: &Message, c: &Ctx) -> Result<Decoded, Rejected> {
    if m.get(3) == Some("V") {
        let mcc = num(m, 4, "mcc")?;
        let mnc = num(m, 5, "mnc")?;
        let joined = m.from(6).join(",");
        let cells = joined
            .split('Y')
            .map(|cell| {
                let v: Vec<&str> = cell.split(',').collect();
                match v[..] {
                    [lac, cid, rssi] => Some(Cell {
                        mcc,
                        mnc,
                        lac: fields::uint(lac)?,
                        cid: fields::uint(cid)?,
                        rssi: Some(fields::int(rssi)?),
                    }),
                    _ => None,
                }
            })
            .collect::<Option<Vec<_>>>()
            .ok_or(malformed("VP1 cells", 6))?;
        let mut attrs = Attributes::new();
        attrs.push(AttrKey::named("network"), network(&cells));
        return Ok(data(m, c.received, attrs, Reply::NONE));
    }
    if !matches!(m.get(3), Some("A" | "B")) {
        return Err(malformed("VP1 validity", 3));
    }
    let at = |i: usize| m.get(i).unwrap_or("");
    let lat = fields::coordinate(at(4), at(5)).ok_or(malformed("latitude", 4))?;
    let lon = fields::coordinate(at(6), at(7)).ok_or(malformed("longitude", 6))?;
    if !Position::valid_coordinates(lat, lon) {
        return Err(malformed("coordinates (out of range)", 4));
    }
    let speed = fields::decimal(at(8)).ok_or(malformed("speed", 8))?;
    let course = fields::decimal(at(9))
        .filter(|c| *c <= 360.0)
        .ok_or(malformed("course", 9))?;
    let date = fields::date(at(10)).ok_or(malformed("date (ddmmyy)", 10))?;
    let fix_time =
        fields::to_utc(date, fields::TimeOfDay(0), c.time_zone).ok_or(malformed("date", 10))?;
    Ok(Decoded {
        kind: MessageKind::Data,
        device: Some(m.device.clone()),
        positions: vec![Position {
            device_id: m.device.clone(),
            fix_time,
            received_time: c.received,
            lat,
            lon,
            altitude_m: 0.0,
            speed_kmh: speed * KNOTS,
            course_deg: course,
            satellites: None,
            valid: true,
            protocol: NAME,
            attributes: Attributes::new(),
        }],
        reports: Vec::new(),
        reply: Reply::NONE,
    })
}

/// `SMS`: the device forwards a text (its answer to an SMS command).
pub(super) fn sms(m: &Message, c: &Ctx) -> Decoded {
    let mut attrs = Attributes::new();
    attrs.push(
        AttrKey::named("result"),
        AttrValue::Text(m.from(3).join(",")),
    );
    let mut d = data(m, c.received, attrs, Reply::NONE);
    d.kind = MessageKind::CommandResponse;
    d
}
