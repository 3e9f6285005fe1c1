//! The GNSS block every located text report carries, and the walks over it:
//!
//! ```text
//! <accuracy>,<speed km/h>,<azimuth>,<altitude m>,<lon>,<lat>,<yyyyMMddHHmmss>,
//! [<wifi count>,(<mac>,<rssi>,,,)*]<mcc>,<mnc>,<lac hex>,<cid hex>,<tail field>
//! ```
//!
//! Longitude comes before latitude. The field after the cell is the
//! "position append mask" on newer firmware (bit 0: satellites follow,
//! bit 1: GNSS trigger type follows, bit 4: jamming state follows) and the
//! mileage (`km`, with a point) or reserved `00` on older firmware.

use super::fields::{self, Fields};
use super::record::{Fix, Record};

/// A cursor over the fields of one message.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cursor<'a> {
    pub f: Fields<'a>,
    pub i: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(f: Fields<'a>, i: usize) -> Self {
        Self { f, i }
    }
    /// The current field, then advance.
    pub(super) fn next(&mut self) -> &'a str {
        let v = self.f.get(self.i);
        self.skip(1);
        v
    }
    pub(super) fn skip(&mut self, n: usize) {
        self.i = self.i.saturating_add(n);
    }
    pub(super) fn peek(&self, off: usize) -> &'a str {
        self.f.get(self.i.saturating_add(off))
    }
    /// Whether the cursor is before the send time and count.
    pub(super) fn before_tail(&self) -> bool {
        self.i.saturating_add(2) < self.f.len()
    }
}

/// How the field after the cell tower is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
    /// One field: mileage if it has a point, else ignored (FRI-style lists).
    Single,
    /// Per device model: CSQ fields (GL5xx), append mask or mileage.
    Model,
}

/// Reads one GNSS block at the cursor into `r` (fix, accuracy, cell,
/// satellites, mileage) and leaves the cursor after it.
pub(super) fn read(c: &mut Cursor<'_>, r: &mut Record, model: &str, after: After) {
    let hdop = fields::float(c.next());
    let speed = fields::float(c.next()).unwrap_or(0.0);
    let course = fields::float(c.next()).unwrap_or(0.0);
    let altitude = fields::float(c.next()).unwrap_or(0.0);
    r.float("hdop", hdop);
    let (lon, lat, time) = (c.next(), c.next(), c.next());
    if let (Some(lon), Some(lat), Some(time)) =
        (fields::float(lon), fields::float(lat), fields::time(time))
    {
        if crate::model::Position::valid_coordinates(lat, lon) {
            r.fix = Some(Fix {
                time,
                lat,
                lon,
                altitude_m: altitude,
                speed_kmh: speed.max(0.0),
                course_deg: if (0.0..=360.0).contains(&course) {
                    course
                } else {
                    0.0
                },
                // Accuracy 0 means the device had no fix and repeats the last one.
                valid: hdop.is_none_or(|h| h > 0.0),
            });
        }
    }
    if c.peek(1).len() == 12 && fields::is_hex(c.peek(1), 12..=12) {
        let count = fields::int(c.next()).unwrap_or(0).clamp(0, 32);
        let mut aps = Vec::new();
        for _ in 0..count {
            let mac = c.next();
            let rssi = c.next();
            c.skip(3);
            aps.push(format!(
                "{{\"mac\":\"{mac}\",\"rssi\":{}}}",
                fields::int(rssi).unwrap_or(0)
            ));
        }
        r.set(
            "wifi",
            crate::model::AttrValue::Text(format!("[{}]", aps.join(","))),
        );
    }
    if c.peek(0).is_empty() {
        c.skip(4);
    } else {
        let (mcc, mnc, lac, cid) = (c.next(), c.next(), c.next(), c.next());
        cell(r, mcc, mnc, lac, cid);
    }
    match after {
        After::Single => {
            let v = c.next();
            if v.contains('.') {
                r.float("odometer_m", fields::float(v).map(|km| km * 1000.0));
            }
        }
        After::Model => {
            if model.starts_with("GL5") {
                c.skip(2); // CSQ RSSI, CSQ BER
            }
            if model == "GT500MA" || model == "GT501" {
                c.skip(1); // CSQ RSSI
            } else if model != "GL320M" {
                let v = c.next();
                if v.contains('.') {
                    r.float("odometer_m", fields::float(v).map(|km| km * 1000.0));
                } else if let Some(mask) = fields::hex(v) {
                    if mask & 1 != 0 {
                        r.satellites = fields::int(c.next()).and_then(|s| u8::try_from(s).ok());
                    }
                    if mask & 2 != 0 {
                        c.skip(1); // GNSS trigger type
                    }
                    if mask & 0x10 != 0 {
                        c.skip(1); // GNSS jamming state
                    }
                }
            }
        }
    }
}

/// Stores the serving cell (`mcc`, `mnc` decimal; `lac`, `cid` hex).
pub(super) fn cell(r: &mut Record, mcc: &str, mnc: &str, lac: &str, cid: &str) {
    if let (Some(mcc), Some(mnc), Some(lac), Some(cid)) = (
        fields::int(mcc),
        fields::int(mnc),
        fields::hex(lac),
        fields::hex(cid),
    ) {
        r.set(
            "network",
            crate::model::AttrValue::Text(format!(
                "[{{\"mcc\":{mcc},\"mnc\":{mnc},\"lac\":{lac},\"cid\":{cid}}}]"
            )),
        );
    }
}

/// Indices of the longitude field of every GNSS block with a fix:
/// a longitude, a latitude and a 14-digit time in a row.
pub(super) fn anchors(f: &Fields<'_>, from: usize) -> Vec<usize> {
    (from..f.len())
        .filter(|&j| {
            fields::is_coordinate(f.get(j))
                && fields::is_coordinate(f.get(j.saturating_add(1)))
                && fields::time(f.get(j.saturating_add(2))).is_some()
        })
        .collect()
}
