//! The device side, for `trackgate simulate`: a Meitrack tracker emptying
//! its cache in `CCC` batches (no login; each frame names its IMEI). The
//! server answers `@@<flag><len>,<IMEI>,CCC,<n>*XX` with the batch's flag;
//! the records leave the cache when `n` covers them. Meitrack has no
//! negative answer: an unanswered batch is sent again after the timeout.

use bytes::BytesMut;

use crate::protocol::checksum::sum8;
use crate::protocol::device::{take_line, whole_seconds, Answer, BadReply, DeviceSide, Fix, Stage};

/// Meitrack's device side.
pub struct Device;

/// Unix seconds of 2000-01-01, Meitrack's binary epoch.
const EPOCH_2000: i64 = 946_684_800;

/// One `CCC` record's values, in the units the device sends.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub event: u8,
    pub lat_e6: i32,
    pub lon_e6: i32,
    /// Seconds since 2000-01-01.
    pub secs: u32,
    pub valid: bool,
    pub satellites: u8,
    pub speed: u16,
    pub course: u16,
    pub altitude: i16,
    pub mileage: u32,
}

/// Wraps `,imei,command,payload` in `$$<flag><len>` … `*XX\r\n`.
pub(crate) fn frame(flag: u8, imei: &str, command: &str, payload: &[u8]) -> Vec<u8> {
    let mut counted = format!(",{imei},{command},").into_bytes();
    counted.extend_from_slice(payload);
    counted.push(b'*');
    let len = counted.len().saturating_add(4); // XX\r\n
    let mut out = vec![b'$', b'$', flag];
    out.extend_from_slice(len.to_string().as_bytes());
    out.extend_from_slice(&counted);
    let sum = sum8(&out);
    out.extend_from_slice(format!("{sum:02X}\r\n").as_bytes());
    out
}

/// A `CCC` payload: version 0x0102, 52-byte records, `left` still cached.
pub(crate) fn ccc(records: &[Record], left: u32) -> Vec<u8> {
    let mut out = vec![0x02, 0x01, 0x34, 0x00];
    out.extend_from_slice(&left.to_le_bytes());
    for r in records {
        out.push(r.event);
        out.extend_from_slice(&r.lat_e6.to_le_bytes());
        out.extend_from_slice(&r.lon_e6.to_le_bytes());
        out.extend_from_slice(&r.secs.to_le_bytes());
        out.push(u8::from(r.valid));
        out.push(r.satellites);
        out.push(20); // gsm signal
        out.extend_from_slice(&r.speed.to_le_bytes());
        out.extend_from_slice(&r.course.to_le_bytes());
        out.extend_from_slice(&9u16.to_le_bytes()); // hdop ×10
        out.extend_from_slice(&r.altitude.to_le_bytes());
        out.extend_from_slice(&r.mileage.to_le_bytes());
        out.extend_from_slice(&3600u32.to_le_bytes()); // runtime
                                                       // mcc, mnc, lac, ci, status, adc1, battery, power
        for v in [262u16, 2, 0x1a2b, 0x3c4d, 0x0102, 5, 419, 1234] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&0u32.to_le_bytes()); // geofence
    }
    out
}

/// Degrees in the 1e-6° integer units of `CCC`.
fn e6(deg: f64) -> i32 {
    (deg * 1e6).round() as i32
}

/// The flag of batch `serial`: a rolling letter, echoed in the answer.
fn flag(serial: u16) -> u8 {
    b'A'.saturating_add(u8::try_from(serial % 26).unwrap_or(0))
}

impl DeviceSide for Device {
    fn max_records(&self) -> usize {
        // 52 bytes a record: 13 KiB, inside the default 64 KiB frame.
        255
    }
    fn time_step_ms(&self) -> i64 {
        1000
    }
    fn quantize(&self, fix: Fix) -> Fix {
        // As the server reads them: the integer times 1e-6.
        Fix {
            fix_ms: whole_seconds(fix.fix_ms),
            lat: f64::from(e6(fix.lat)) * 1e-6,
            lon: f64::from(e6(fix.lon)) * 1e-6,
            ..fix
        }
    }
    fn login(&self, _n: u64, _serial: u16) -> Option<Vec<u8>> {
        None
    }
    fn packet(&self, n: u64, fixes: &[Fix], serial: u16) -> Vec<u8> {
        let records: Vec<Record> = fixes
            .iter()
            .map(|f| Record {
                event: 35, // track by time interval
                lat_e6: e6(f.lat),
                lon_e6: e6(f.lon),
                secs: u32::try_from((f.fix_ms / 1000).saturating_sub(EPOCH_2000)).unwrap_or(0),
                valid: true,
                satellites: 9,
                speed: f.speed_kmh,
                course: f.course,
                altitude: 120,
                mileage: 0,
            })
            .collect();
        frame(flag(serial), &self.device_id(n), "CCC", &ccc(&records, 0))
    }
    fn next_reply(&self, buf: &mut BytesMut, _stage: Stage) -> Result<Option<BytesMut>, BadReply> {
        let Some(line) = take_line(buf) else {
            return Ok(None);
        };
        let bad = || BadReply(String::from_utf8_lossy(&line).into_owned());
        // `@@…*XX\r\n`: the sum of everything through `*` in XX.
        let star = line.len().checked_sub(5).ok_or_else(bad)?;
        let (Some(covered), Some(sum)) = (line.get(..star.saturating_add(1)), line.get(star..))
        else {
            return Err(bad());
        };
        let sent = std::str::from_utf8(sum.get(1..3).unwrap_or_default()).unwrap_or_default();
        if !covered.starts_with(b"@@")
            || sum.first() != Some(&b'*')
            || u8::from_str_radix(sent, 16) != Ok(sum8(covered))
        {
            return Err(bad());
        }
        Ok(Some(line))
    }
    fn answer(&self, reply: &[u8], _stage: Stage, serial: u16, sent: usize) -> Answer {
        // @@<flag><len>,<imei>,<command>,<value>*XX\r\n
        let text = String::from_utf8_lossy(reply);
        let mut fields = text.split(['*', ',']);
        let head = fields.next().unwrap_or_default();
        let (_imei, command, value) = (fields.next(), fields.next(), fields.next());
        if command != Some("CCC") || head.as_bytes().get(2) != Some(&flag(serial)) {
            return Answer::Unrelated;
        }
        if value.and_then(|v| v.parse::<usize>().ok()) == Some(sent) {
            Answer::Accepted
        } else {
            Answer::Refused
        }
    }
}
