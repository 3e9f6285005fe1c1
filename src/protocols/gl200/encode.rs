//! Test-only encoders: build valid messages from known values so property
//! tests can check that decoding gives them back.

// Test code: a panic is a failed test, and sizes here are tiny.
#![allow(clippy::panic, clippy::arithmetic_side_effects)]

use chrono::{DateTime, Utc};

/// One GNSS fix in the units the device sends.
#[derive(Debug, Clone)]
pub(super) struct Point {
    pub hdop: u8,
    /// Tenths of km/h.
    pub speed_dkmh: u32,
    pub course: u16,
    /// Tenths of metres.
    pub alt_dm: i32,
    /// Micro-degrees.
    pub lon_u: i32,
    pub lat_u: i32,
    pub time: DateTime<Utc>,
}

/// `a` ÷ 10^`places` written with exactly `places` decimals.
fn decimal(a: i64, places: u32) -> String {
    let scale = 10i64.pow(places);
    let sign = if a < 0 { "-" } else { "" };
    let abs = a.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / scale.unsigned_abs(),
        abs % scale.unsigned_abs(),
        width = places as usize
    )
}

/// A text `GTFRI` report of GV-series firmware with `points` fixes.
pub(super) fn fri(
    buffered: bool,
    imei: &str,
    points: &[Point],
    battery: u8,
    send: DateTime<Utc>,
    count: u16,
) -> String {
    let mut s = format!(
        "+{}:GTFRI,060100,{imei},,12500,10,{}",
        if buffered { "BUFF" } else { "RESP" },
        points.len()
    );
    for p in points {
        s.push_str(&format!(
            ",{},{},{},{},{},{},{},0460,0000,18d8,6141,00",
            p.hdop,
            decimal(i64::from(p.speed_dkmh), 1),
            p.course,
            decimal(i64::from(p.alt_dm), 1),
            decimal(i64::from(p.lon_u), 6),
            decimal(i64::from(p.lat_u), 6),
            p.time.format("%Y%m%d%H%M%S"),
        ));
    }
    s.push_str(&format!(
        ",2000.0,,,,{battery},210100,,,,{},{count:04X}$",
        send.format("%Y%m%d%H%M%S")
    ));
    s
}

/// The heartbeat `+ACK:GTHBD`.
pub(super) fn heartbeat(version: &str, imei: &str, send: DateTime<Utc>, count: u16) -> String {
    format!(
        "+ACK:GTHBD,{version},{imei},,{},{count:04X}$",
        send.format("%Y%m%d%H%M%S")
    )
}

/// A Protocol Pro report with one record carrying data item 82.
pub(super) fn pro(buffered: bool, imei: &str, p: &Point, satellites: u8) -> Vec<u8> {
    let mut item = vec![0x29u8];
    item.extend_from_slice(&p.lon_u.to_be_bytes());
    item.extend_from_slice(&p.lat_u.to_be_bytes());
    let t = u32::try_from(p.time.timestamp()).unwrap_or(0);
    item.extend_from_slice(&t.to_be_bytes());
    item.extend_from_slice(
        &u16::try_from(p.speed_dkmh)
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    item.push(p.hdop);
    item.extend_from_slice(&p.course.to_be_bytes());
    item.extend_from_slice(&p.alt_dm.to_be_bytes()[1..]);
    item.push(satellites);
    let mut record = Vec::new();
    record.extend_from_slice(&t.to_be_bytes());
    record.extend_from_slice(&[0x01, 0x89, 0x50, 0x00, 82, item.len() as u8]);
    record.extend_from_slice(&item);
    let mut f = vec![if buffered { 0x2d } else { 0x2b }, 0x00, 0, 0, 0x00];
    f.extend_from_slice(&hex::decode(format!("0{imei}")).unwrap_or_default());
    f.extend_from_slice(&[0x82, 0x03, 0x00, 0x03, 0x00, 0x00]);
    f.push((record.len() + 1) as u8);
    f.extend_from_slice(&record);
    f.extend_from_slice(&[0x01, 0x0f]);
    let len = (f.len() + 2) as u16;
    f[2..4].copy_from_slice(&len.to_be_bytes());
    let crc = crc::Crc::<u8>::new(&crc::CRC_8_NRSC_5).checksum(&f);
    f.push(crc);
    f.push(b'$');
    f
}
