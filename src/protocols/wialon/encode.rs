//! Test encoder: builds Wialon IPS lines from values, so property tests can
//! check that decoding gives the values back.

#![allow(clippy::arithmetic_side_effects)]

use crate::protocol::checksum::crc16_ibm;

/// One record's values, in the units the device sends.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// Seconds since the unix epoch, 2000..2099.
    pub unix: i64,
    /// Microdegrees.
    pub lat_e6: i32,
    pub lon_e6: i32,
    pub speed_kmh: u16,
    pub course: u16,
    pub altitude: i16,
    pub satellites: u8,
    pub hdop_tenths: u8,
    pub inputs: u32,
    pub outputs: u32,
    pub params: Vec<(String, i64)>,
}

/// `ddmm.mmmmmm` / `dddmm.mmmmmm` and the hemisphere letter.
fn coordinate(e6: i32, width: usize, pos: char, neg: char) -> String {
    let abs = f64::from(e6.unsigned_abs()) / 1e6;
    let degrees = abs.trunc();
    let minutes = (abs - degrees) * 60.0;
    let hemi = if e6 < 0 { neg } else { pos };
    format!("{:0width$}{:09.6};{hemi}", degrees as u32, minutes)
}

fn short_fields(r: &Record) -> String {
    let t = chrono::DateTime::from_timestamp(r.unix, 0).unwrap_or_default();
    format!(
        "{};{};{};{};{};{};{};{}",
        t.format("%d%m%y"),
        t.format("%H%M%S"),
        coordinate(r.lat_e6, 2, 'N', 'S'),
        coordinate(r.lon_e6, 3, 'E', 'W'),
        r.speed_kmh,
        r.course,
        r.altitude,
        r.satellites
    )
}

/// The body of a `#D#` record (no CRC).
pub(crate) fn data_body(r: &Record) -> String {
    let params: Vec<String> = r
        .params
        .iter()
        .map(|(name, v)| format!("{name}:1:{v}"))
        .collect();
    format!(
        "{};{}.{};{};{};NA;NA;{}",
        short_fields(r),
        r.hdop_tenths / 10,
        r.hdop_tenths % 10,
        r.inputs,
        r.outputs,
        if params.is_empty() {
            "NA".to_string()
        } else {
            params.join(",")
        }
    )
}

/// The body of a `#SD#` record (no CRC).
pub(crate) fn short_body(r: &Record) -> String {
    short_fields(r)
}

/// `body;CRC` as Wialon IPS 2.0 sends it.
pub(crate) fn with_crc(body: &str) -> String {
    let covered = format!("{body};");
    format!("{covered}{:04X}", crc16_ibm(covered.as_bytes()))
}

/// A full line: `#<kind>#<body>\r\n`.
pub(crate) fn line(kind: &str, body: &str) -> Vec<u8> {
    format!("#{kind}#{body}\r\n").into_bytes()
}
