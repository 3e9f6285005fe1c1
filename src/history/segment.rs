//! The journal's segment file format: what one group commit appends is one
//! frame ([`crate::framed`]: length and CRC-32C, so a torn tail ends the
//! readable part instead of corrupting it). Pure bytes in, rows out: the writer, the compactor, the
//! queries and the tests use the same two functions.
//!
//! ```text
//! file    MAGIC frame*
//! frame   u32 LE payload length | u32 LE CRC-32C of payload | payload
//! payload row*
//! row     u16 len, device id | i64 fix ms | i64 received ms | f64 lat, lon,
//!         altitude m, speed km/h, course deg | u8 has satellites, i64
//!         satellites | u8 valid | u16 len, protocol | u32 len, attributes
//! ```
//!
//! Integers and floats little-endian; strings UTF-8.

use crate::framed::fields::{put_str16, take, take_i64, take_str16_ref as take_str16};
use crate::framed::{put_frame, read_frames};

use super::StoredRow;
use crate::model::{Position, Report};

/// The first bytes of every segment file (format version 1).
pub const MAGIC: &[u8; 8] = b"TGJRNL01";

/// Appends one frame holding `rows` to `out`.
pub fn encode_frame<'a>(rows: impl IntoIterator<Item = &'a StoredRow>, out: &mut Vec<u8>) {
    put_frame(out, |out| {
        for r in rows {
            put_stored(out, r);
        }
    });
}

/// Rows in their segment encoding, built by the task that appends them:
/// the writer only copies them into its frame, and no row, string or
/// attribute map is built or freed per record on the way (at 10,000
/// devices the per-record allocations were a third of the durable path's
/// extra CPU).
#[derive(Debug, Clone, Default)]
pub struct Encoded {
    bytes: Vec<u8>,
    count: usize,
}

impl Encoded {
    /// `positions` as rows, the attributes as JSON text (their shown form).
    pub fn positions(positions: &[Position]) -> Self {
        Self::records(positions, &[], 0)
    }

    /// `positions`, then `reports` received at `received_ms`, as rows. A
    /// report is a row without a latitude (NaN): its longitude holds the
    /// CRC-32C of its attributes, so a resent report is stored once and two
    /// different reports of the same millisecond are both kept (see
    /// [`super::StoredRow::is_report`]).
    pub fn records(positions: &[Position], reports: &[Report], received_ms: i64) -> Self {
        let count = positions.len() + reports.len();
        let mut bytes = Vec::with_capacity(count * 160);
        for (i, p) in positions.iter().enumerate() {
            let fields = Fields {
                device_id: p.device_id.as_str(),
                fix_ms: p.fix_time.timestamp_millis(),
                received_ms: p.received_time.timestamp_millis(),
                numbers: [p.lat, p.lon, p.altitude_m, p.speed_kmh, p.course_deg],
                satellites: p.satellites.map(i64::from),
                valid: p.valid,
                protocol: p.protocol,
            };
            put_row(&mut bytes, &fields, |out| {
                if p.attributes.is_empty() {
                    return;
                }
                let start = out.len();
                if serde_json::to_writer(&mut *out, &p.attributes).is_err() {
                    // Not reachable for our attribute values; an unreadable
                    // half must not be stored either.
                    out.truncate(start);
                }
            });
            if i == 0 {
                // A frame's records are alike: room for the rest at the
                // first one's size, instead of growing (and copying) the
                // buffer as attribute-rich rows overflow the estimate.
                bytes.reserve(bytes.len() * (count - 1));
            }
        }
        let mut json = Vec::new();
        for r in reports {
            json.clear();
            if !r.attributes.is_empty() && serde_json::to_writer(&mut json, &r.attributes).is_err()
            {
                json.clear();
            }
            let fields = Fields {
                device_id: r.device_id.as_str(),
                fix_ms: r.time.timestamp_millis(),
                received_ms,
                numbers: [
                    f64::NAN,
                    f64::from(crate::framed::crc(&json)),
                    0.0,
                    0.0,
                    0.0,
                ],
                satellites: None,
                valid: false,
                protocol: r.protocol,
            };
            put_row(&mut bytes, &fields, |out| out.extend_from_slice(&json));
        }
        Self { bytes, count }
    }

    /// Rows already built (tests, older formats).
    pub fn rows<'a>(rows: impl IntoIterator<Item = &'a StoredRow>) -> Self {
        let mut out = Self::default();
        for r in rows {
            put_stored(&mut out.bytes, r);
            out.count += 1;
        }
        out
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The rows, borrowed; `None` if the bytes do not parse (never for
    /// bytes built here).
    pub fn refs(&self) -> Option<Vec<RowRef<'_>>> {
        let mut out = Vec::with_capacity(self.count);
        decode_rows(&self.bytes, &mut out)?;
        Some(out)
    }
}

/// Appends one frame holding every row of `parts`, in order.
pub fn encode_frame_parts(parts: &[Encoded], out: &mut Vec<u8>) {
    put_frame(out, |out| {
        for p in parts {
            out.extend_from_slice(&p.bytes);
        }
    });
}

/// A row's fields but its attributes, borrowed from whatever holds them.
struct Fields<'a> {
    device_id: &'a str,
    fix_ms: i64,
    received_ms: i64,
    /// Latitude, longitude, altitude m, speed km/h, course deg.
    numbers: [f64; 5],
    satellites: Option<i64>,
    valid: bool,
    protocol: &'a str,
}

fn put_stored(out: &mut Vec<u8>, r: &StoredRow) {
    let fields = Fields {
        device_id: &r.device_id,
        fix_ms: r.fix_ms,
        received_ms: r.received_ms,
        numbers: [r.lat, r.lon, r.altitude_m, r.speed_kmh, r.course_deg],
        satellites: r.satellites,
        valid: r.valid,
        protocol: &r.protocol,
    };
    put_row(out, &fields, |out| {
        out.extend_from_slice(r.attributes.as_bytes())
    });
}

/// The one row encoder: `attributes` writes the attributes' text, whose
/// length is filled in after.
fn put_row(out: &mut Vec<u8>, f: &Fields<'_>, attributes: impl FnOnce(&mut Vec<u8>)) {
    put_str16(out, f.device_id);
    out.extend_from_slice(&f.fix_ms.to_le_bytes());
    out.extend_from_slice(&f.received_ms.to_le_bytes());
    for v in f.numbers {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.push(u8::from(f.satellites.is_some()));
    out.extend_from_slice(&f.satellites.unwrap_or(0).to_le_bytes());
    out.push(u8::from(f.valid));
    put_str16(out, f.protocol);
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    attributes(out);
    let len = out.len() - at - 4;
    match u32::try_from(len) {
        Ok(n) => out[at..at + 4].copy_from_slice(&n.to_le_bytes()),
        // Input bounds keep attributes far below 4 GiB; store none rather
        // than a length that lies.
        Err(_) => out.truncate(at + 4),
    }
}

/// One row of a frame, borrowed from the bytes it was read from: no
/// allocation, and its own encoding, which a chunk copies as it is (the
/// compactor neither builds nor re-encodes a [`StoredRow`]).
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    pub device_id: &'a str,
    pub fix_ms: i64,
    pub received_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub altitude_m: f64,
    pub speed_kmh: f64,
    pub course_deg: f64,
    pub satellites: Option<i64>,
    pub valid: bool,
    pub protocol: &'a str,
    pub attributes: &'a str,
    /// The row's encoding.
    pub bytes: &'a [u8],
}

impl RowRef<'_> {
    pub fn to_row(self) -> StoredRow {
        StoredRow {
            device_id: self.device_id.to_string(),
            fix_ms: self.fix_ms,
            received_ms: self.received_ms,
            lat: self.lat,
            lon: self.lon,
            altitude_m: self.altitude_m,
            speed_kmh: self.speed_kmh,
            course_deg: self.course_deg,
            satellites: self.satellites,
            valid: self.valid,
            protocol: self.protocol.to_string(),
            attributes: self.attributes.to_string(),
        }
    }
}

/// Appends one frame of rows already encoded (as [`RowRef::bytes`]).
pub fn encode_frame_of<'a>(rows: impl IntoIterator<Item = &'a RowRef<'a>>, out: &mut Vec<u8>) {
    put_frame(out, |out| {
        for r in rows {
            out.extend_from_slice(r.bytes);
        }
    });
}

/// Every row of every intact frame of a segment file's bytes, in order,
/// and the length of the intact part. Reading stops at the first frame
/// that is short, too long, fails its CRC or does not parse: everything
/// after it was never acknowledged.
pub fn decode(bytes: &[u8]) -> (Vec<StoredRow>, usize) {
    let (rows, intact) = decode_refs(bytes);
    (rows.into_iter().map(RowRef::to_row).collect(), intact)
}

/// [`decode`], borrowing.
pub fn decode_refs(bytes: &[u8]) -> (Vec<RowRef<'_>>, usize) {
    let Some(body) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return (Vec::new(), 0);
    };
    let (rows, _, intact) = read_rows(body);
    (rows, MAGIC.len() + intact)
}

/// The rows of one chunk of `history.db` (one frame, no magic): `None`
/// unless the whole of `bytes` is one intact frame.
pub fn decode_chunk(bytes: &[u8]) -> Option<Vec<StoredRow>> {
    chunk_refs(bytes).map(|rows| rows.into_iter().map(RowRef::to_row).collect())
}

/// [`decode_chunk`], borrowing.
pub fn chunk_refs(bytes: &[u8]) -> Option<Vec<RowRef<'_>>> {
    let (rows, frames, intact) = read_rows(bytes);
    (intact == bytes.len() && frames == 1).then_some(rows)
}

/// The rows of frames (no magic) up to the first bad one, how many frames
/// were intact, and their length.
pub fn read_rows(bytes: &[u8]) -> (Vec<RowRef<'_>>, usize, usize) {
    let mut rows = Vec::new();
    let mut frames = 0;
    let intact = read_frames(bytes, |payload| {
        let before = rows.len();
        let parsed = decode_rows(payload, &mut rows);
        if parsed.is_none() {
            rows.truncate(before);
        } else {
            frames += 1;
        }
        parsed
    });
    (rows, frames, intact)
}

fn decode_rows<'a>(mut p: &'a [u8], out: &mut Vec<RowRef<'a>>) -> Option<()> {
    while !p.is_empty() {
        let start = p;
        let device_id = take_str16(&mut p)?;
        let fix_ms = take_i64(&mut p)?;
        let received_ms = take_i64(&mut p)?;
        let mut f = [0f64; 5];
        for v in &mut f {
            *v = f64::from_le_bytes(take(&mut p)?);
        }
        let [has_sats] = take::<1>(&mut p)?;
        let sats = take_i64(&mut p)?;
        let [valid] = take::<1>(&mut p)?;
        let protocol = take_str16(&mut p)?;
        let alen = u32::from_le_bytes(take(&mut p)?) as usize;
        let attributes = std::str::from_utf8(p.get(..alen)?).ok()?;
        p = &p[alen..];
        out.push(RowRef {
            device_id,
            fix_ms,
            received_ms,
            lat: f[0],
            lon: f[1],
            altitude_m: f[2],
            speed_kmh: f[3],
            course_deg: f[4],
            satellites: (has_sats == 1).then_some(sats),
            valid: valid == 1,
            protocol,
            attributes,
            bytes: &start[..start.len() - p.len()],
        });
    }
    Some(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(device: &str, fix_ms: i64, sats: Option<i64>, attributes: &str) -> StoredRow {
        StoredRow {
            device_id: device.into(),
            fix_ms,
            received_ms: fix_ms + 5,
            lat: -33.5,
            lon: -0.0,
            altitude_m: 1.5,
            speed_kmh: 2.0,
            course_deg: 359.9,
            satellites: sats,
            valid: fix_ms % 2 == 0,
            protocol: "teltonika".into(),
            attributes: attributes.into(),
        }
    }

    fn file(frames: &[&[StoredRow]]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        for f in frames {
            encode_frame(*f, &mut b);
        }
        b
    }

    #[test]
    fn frames_round_trip_every_field() {
        let a = [
            row("356307042441013", 1, Some(7), ""),
            row("ä-dev", -5, None, "{\"io1\":1}"),
        ];
        let b = [row("x", i64::MAX - 5, Some(0), "")];
        let bytes = file(&[&a, &[], &b]);
        let (rows, len) = decode(&bytes);
        assert_eq!(len, bytes.len());
        let want: Vec<StoredRow> = a.iter().chain(&b).cloned().collect();
        assert_eq!(rows, want);
        assert!(rows[0].lon.is_sign_negative(), "-0.0 kept bit for bit");
    }

    #[test]
    fn appends_travel_encoded_and_one_frame_holds_them_in_order() {
        let a = [row("a", 1, Some(7), ""), row("b", 2, None, "{\"io1\":1}")];
        let b = [row("c", 3, Some(0), "")];
        let parts = [Encoded::rows(&a), Encoded::default(), Encoded::rows(&b)];
        assert_eq!(
            parts.iter().map(Encoded::len).collect::<Vec<_>>(),
            [2, 0, 1]
        );
        let refs = parts[0].refs().unwrap();
        assert_eq!(
            (refs[1].device_id, refs[1].attributes),
            ("b", "{\"io1\":1}")
        );
        let mut bytes = MAGIC.to_vec();
        encode_frame_parts(&parts, &mut bytes);
        let (rows, len) = decode(&bytes);
        assert_eq!(len, bytes.len());
        assert_eq!(rows, [a.as_slice(), b.as_slice()].concat());
        assert_eq!(
            bytes,
            file(&[&[a.as_slice(), b.as_slice()].concat()]),
            "the same frame as rows encoded at once"
        );
    }

    #[test]
    fn a_torn_or_corrupt_tail_ends_the_readable_part() {
        let a = [row("a", 1, Some(7), "")];
        let b = [row("b", 2, Some(8), "{}")];
        let whole = file(&[&a, &b]);
        let first_end = file(&[&a]).len();
        // Cut anywhere inside the second frame: only the first is read.
        for cut in first_end..whole.len() {
            let (rows, len) = decode(&whole[..cut]);
            assert_eq!(
                (rows.as_slice(), len),
                (a.as_slice(), first_end),
                "cut {cut}"
            );
        }
        // A flipped bit in the second frame's payload fails its CRC.
        let mut bad = whole.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(decode(&bad), (a.to_vec(), first_end));
        // No magic: nothing.
        assert_eq!(decode(b"TGJRNL0"), (Vec::new(), 0));
        assert_eq!(decode(&whole[1..]), (Vec::new(), 0));
    }

    #[test]
    fn a_chunk_is_exactly_one_intact_frame() {
        let a = [row("a", 1, Some(7), ""), row("a", 2, None, "{}")];
        let mut chunk = Vec::new();
        encode_frame(&a, &mut chunk);
        assert_eq!(decode_chunk(&chunk), Some(a.to_vec()));
        assert_eq!(decode_chunk(&chunk[..chunk.len() - 1]), None);
        let mut two = chunk.clone();
        encode_frame(&a[..1], &mut two);
        assert_eq!(decode_chunk(&two), None, "a second frame is not a chunk");
        let mut bad = chunk.clone();
        bad[9] ^= 1;
        assert_eq!(decode_chunk(&bad), None);
        assert_eq!(decode_chunk(b""), None);
    }

    #[test]
    fn no_byte_string_panics() {
        use proptest::prelude::*;
        proptest!(|(tail in proptest::collection::vec(any::<u8>(), 0..300))| {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&tail);
            let _ = decode(&b);
            // A valid CRC over garbage rows must not panic either.
            let mut c = MAGIC.to_vec();
            c.extend_from_slice(&u32::try_from(tail.len()).unwrap().to_le_bytes());
            c.extend_from_slice(&crate::framed::crc(&tail).to_le_bytes());
            c.extend_from_slice(&tail);
            let (rows, len) = decode(&c);
            prop_assert!(len == MAGIC.len() || len == c.len());
            prop_assert!(len == c.len() || rows.is_empty());
        });
    }
}
