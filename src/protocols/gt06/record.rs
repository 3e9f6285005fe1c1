//! One decoded message on its way to a `Position` (when it carried a GPS
//! block with a usable date) or a `Report` (status, command results, cell
//! lists: records without a fix).

use chrono::{DateTime, Utc};

use super::NAME;
use crate::model::{AttrKey, AttrValue, Attributes, DeviceId, Position, Report};

/// The GPS block of a message.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fix {
    pub time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: f64,
    pub course_deg: f64,
    pub valid: bool,
    pub satellites: Option<u8>,
}

/// A serving or neighbouring cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cell {
    pub mcc: u16,
    pub mnc: u16,
    pub lac: i64,
    pub cid: i64,
    pub rssi: Option<i16>,
}

#[derive(Debug, Default)]
pub(super) struct Record {
    pub fix: Option<Fix>,
    /// The device's own time stamp when the message has no fix.
    pub time: Option<DateTime<Utc>>,
    pub altitude_m: f64,
    pub attrs: Attributes,
    cells: Vec<Cell>,
    wifi: Vec<(String, Option<i64>)>,
}

/// What a record becomes.
pub(super) enum Output {
    Position(Position),
    Report(Report),
}

impl Record {
    pub(super) fn set(&mut self, key: &'static str, value: AttrValue) {
        self.attrs.set(AttrKey::named(key), value);
    }

    pub(super) fn int(&mut self, key: &'static str, value: impl Into<i64>) {
        self.set(key, AttrValue::Int(value.into()));
    }

    pub(super) fn float(&mut self, key: &'static str, value: f64) {
        self.set(key, AttrValue::Float(value));
    }

    pub(super) fn flag(&mut self, key: &'static str, value: bool) {
        self.set(key, AttrValue::Bool(value));
    }

    pub(super) fn text(&mut self, key: &'static str, value: impl Into<String>) {
        self.set(key, AttrValue::Text(value.into()));
    }

    /// Adds an alarm; several alarms are kept comma-separated, as Traccar does.
    pub(super) fn alarm(&mut self, alarm: Option<&'static str>) {
        let Some(alarm) = alarm else { return };
        let value = match self.attrs.get("alarm") {
            Some(AttrValue::Text(old)) if !old.split(',').any(|a| a == alarm) => {
                format!("{old},{alarm}")
            }
            Some(AttrValue::Text(old)) => old.clone(),
            _ => alarm.to_string(),
        };
        self.text("alarm", value);
    }

    pub(super) fn cell(&mut self, cell: Cell) {
        self.cells.push(cell);
    }

    pub(super) fn wifi(&mut self, mac: String, rssi: Option<i64>) {
        self.wifi.push((mac, rssi));
    }

    /// Whether any field was decoded at all.
    pub(super) fn is_empty(&self) -> bool {
        self.fix.is_none() && self.attrs.is_empty() && self.cells.is_empty() && self.wifi.is_empty()
    }

    pub(super) fn finish(mut self, device: &DeviceId, received: DateTime<Utc>) -> Output {
        if !self.cells.is_empty() {
            let cells: Vec<serde_json::Value> = self
                .cells
                .iter()
                .map(|c| {
                    let mut v = serde_json::json!({
                        "mcc": c.mcc, "mnc": c.mnc, "lac": c.lac, "cid": c.cid,
                    });
                    if let (Some(rssi), Some(o)) = (c.rssi, v.as_object_mut()) {
                        o.insert("rssi".into(), rssi.into());
                    }
                    v
                })
                .collect();
            self.text("network", serde_json::Value::Array(cells).to_string());
        }
        if !self.wifi.is_empty() {
            let aps: Vec<serde_json::Value> = self
                .wifi
                .iter()
                .map(|(mac, rssi)| serde_json::json!({ "mac": mac, "rssi": rssi }))
                .collect();
            self.text("wifi", serde_json::Value::Array(aps).to_string());
        }
        match self.fix {
            Some(fix) if Position::valid_coordinates(fix.lat, fix.lon) => {
                Output::Position(Position {
                    device_id: device.clone(),
                    fix_time: fix.time,
                    received_time: received,
                    lat: fix.lat,
                    lon: fix.lon,
                    altitude_m: self.altitude_m,
                    speed_kmh: fix.speed_kmh,
                    course_deg: fix.course_deg,
                    satellites: fix.satellites,
                    valid: fix.valid,
                    protocol: NAME,
                    attributes: self.attrs,
                })
            }
            fix => Output::Report(Report {
                device_id: device.clone(),
                time: fix.map(|f| f.time).or(self.time).unwrap_or(received),
                protocol: NAME,
                attributes: self.attrs,
            }),
        }
    }
}
