//! The device side of a protocol: what a tracker sends and how it reads the
//! server's answers. Pure like the server side (bytes out, bytes in, no
//! I/O); `trackgate simulate` drives it over real sockets, so the load tool
//! and the demo source speak each protocol exactly as its devices do and
//! honour its acknowledgements the same way.
//!
//! A protocol offers one through [`super::Protocol::device_side`]; adding
//! it touches only the protocol's folder.

use bytes::BytesMut;

/// One fix a simulated device reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    /// Fix time, Unix milliseconds (UTC).
    pub fix_ms: i64,
    /// WGS84 degrees.
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: u16,
    /// Degrees, 0..360.
    pub course: u16,
}

/// Which answer the device is waiting for (some protocols' answers only
/// make sense knowing the question, e.g. Teltonika's bare `01`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Login,
    Packet,
}

/// What a server message means to the waiting device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Login accepted, or every record of the packet acknowledged: the
    /// device deletes them.
    Accepted,
    /// Refused or "send again": the device keeps its records.
    Refused,
    /// Not the answer to what the device sent (another message); keep
    /// waiting.
    Unrelated,
}

/// The server sent bytes no device of this protocol could make sense of;
/// a device drops the connection and starts over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable server message: {0}")]
pub struct BadReply(pub String);

/// A tracker's half of a protocol.
pub trait DeviceSide: Send + Sync {
    /// Most fixes one packet can carry (the protocol's count field, or its
    /// length field divided by a record's size).
    fn max_records(&self) -> usize;

    /// The step of the protocol's fix time in milliseconds (1000 where the
    /// wire carries whole seconds): successive fixes of one device differ by
    /// at least this, so none collapses into another.
    fn time_step_ms(&self) -> i64;

    /// `fix` as the server will read it back: time and coordinates rounded
    /// to the wire's units, so a device's record of what was acknowledged
    /// compares equal to what was stored.
    fn quantize(&self, fix: Fix) -> Fix;

    /// The device id the server derives from device number `n` (an IMEI
    /// for most protocols).
    fn device_id(&self, n: u64) -> String {
        format!("{n:015}")
    }

    /// What device `n` sends right after connecting; `None` when the
    /// protocol has no login (each packet names its device).
    fn login(&self, n: u64, serial: u16) -> Option<Vec<u8>>;

    /// A data packet of device `n` carrying `fixes` (at most
    /// [`Self::max_records`]), numbered `serial` where the protocol numbers
    /// its messages.
    fn packet(&self, n: u64, fixes: &[Fix], serial: u16) -> Vec<u8>;

    /// Cuts the next complete server message off the front of `buf`;
    /// `Ok(None)` while more bytes are needed.
    fn next_reply(&self, buf: &mut BytesMut, stage: Stage) -> Result<Option<BytesMut>, BadReply>;

    /// What `reply` means for the login or packet numbered `serial`
    /// carrying `sent` fixes.
    fn answer(&self, reply: &[u8], stage: Stage, serial: u16, sent: usize) -> Answer;
}

/// `deg` as the server reads it back from a wire carrying integer units of
/// 1/`per_degree` degree (sign in the value or in a flag alike: rounding is
/// symmetric, and the decoders divide the same integer by the same unit).
pub fn quantized(deg: f64, per_degree: f64) -> f64 {
    (deg * per_degree).round() / per_degree
}

/// Degrees in the 1e-7° integer units Teltonika and Ruptela send.
pub fn e7(deg: f64) -> i32 {
    (deg * 1e7).round() as i32
}

/// `ms` cut to whole seconds, for wires whose time stamps carry no more.
pub fn whole_seconds(ms: i64) -> i64 {
    ms.div_euclid(1000).saturating_mul(1000)
}

/// `ms` as UTC yy (two digits), MM, dd, HH, mm, ss: the date most tracker
/// wires carry, binary or BCD.
pub fn utc_fields(ms: i64) -> [u32; 6] {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    [
        u32::try_from(t.year().rem_euclid(100)).unwrap_or(0),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    ]
}

/// Splits off `n` bytes once `buf` holds them.
pub(crate) fn take(buf: &mut BytesMut, n: usize) -> Option<BytesMut> {
    (buf.len() >= n).then(|| buf.split_to(n))
}

/// Splits off the next line, through its `\n`, once `buf` holds one
/// (the text answers of Wialon and Meitrack servers).
pub(crate) fn take_line(buf: &mut BytesMut) -> Option<BytesMut> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    Some(buf.split_to(end.saturating_add(1)))
}
