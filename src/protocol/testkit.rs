//! Test kit for captured device messages (`protocols/vectors/*.tsv`, from
//! Traccar's test suite): parses rows and checks decoded output against each
//! row's expectation. Used by every protocol's vector test.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use bytes::BytesMut;

use super::{Decoded, Session, Step};
use crate::model::{AttrValue, Attributes, Position};

/// Knots → km/h (Traccar keeps speed in knots; we keep km/h).
pub const KNOTS_TO_KMH: f64 = 1.852;

/// One row of a vector file.
#[derive(Debug, Clone)]
pub struct Vector {
    /// 1-based line in the TSV file.
    pub line: usize,
    pub transport: String,
    pub message: Vec<u8>,
    pub expectation: Expectation,
    /// `@key=value` context tags (`source`, `model`, `integrity`, `test`, …).
    pub tags: HashMap<String, String>,
}

impl Vector {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
    /// Whether the row is flagged as failing the protocol's own integrity check.
    pub fn integrity(&self) -> Option<&str> {
        self.tag("integrity")
    }
}

/// What a row asserts.
#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    /// One plausible position, optionally with exact values.
    Position {
        time: Option<DateTime<Utc>>,
        valid: Option<bool>,
        lat: Option<f64>,
        lon: Option<f64>,
    },
    /// A non-empty list; `location_checked` false: only non-empty.
    Positions {
        location_checked: bool,
    },
    /// One record with at least one attribute.
    Attributes,
    /// The first record's attribute (Traccar's key and JSON value).
    Attribute {
        key: String,
        value: serde_json::Value,
    },
    NotNull,
    NoPosition,
    Frame(Vec<u8>),
    Frames(Vec<Vec<u8>>),
    NoFrame,
}

/// Parses a vector file's text.
pub fn parse_tsv(text: &str) -> Result<Vec<Vector>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [_protocol, transport, encoding, message, expectation] = cols[..] else {
            return Err(format!(
                "line {}: expected 5 columns, found {}",
                i + 1,
                cols.len()
            ));
        };
        let message = match encoding {
            "hex" => hex::decode(message).map_err(|e| format!("line {}: {e}", i + 1))?,
            "text" => unescape(message).map_err(|e| format!("line {}: {e}", i + 1))?,
            other => return Err(format!("line {}: unknown encoding {other}", i + 1)),
        };
        let (expectation, tags) =
            parse_expectation(expectation).map_err(|e| format!("line {}: {e}", i + 1))?;
        out.push(Vector {
            line: i + 1,
            transport: transport.to_string(),
            message,
            expectation,
            tags,
        });
    }
    Ok(out)
}

fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            continue;
        }
        match chars.next() {
            Some('\\') => out.push(b'\\'),
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('x') => {
                let h: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&h, 16).map_err(|e| format!("bad \\x{h}: {e}"))?);
            }
            other => return Err(format!("bad escape \\{other:?}")),
        }
    }
    Ok(out)
}

/// Splits on spaces outside double quotes.
fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn parse_expectation(s: &str) -> Result<(Expectation, HashMap<String, String>), String> {
    let toks = tokens(s);
    let mut tags = HashMap::new();
    let mut words = Vec::new();
    for t in toks {
        if let Some(tag) = t.strip_prefix('@') {
            let (k, v) = tag.split_once('=').unwrap_or((tag, ""));
            tags.insert(k.to_string(), v.trim_matches('"').to_string());
        } else {
            words.push(t);
        }
    }
    let first = words.first().ok_or("empty expectation")?;
    let exp = match first.as_str() {
        "position" => {
            let mut time = None;
            let mut valid = None;
            let mut lat = None;
            let mut lon = None;
            for w in &words[1..] {
                let (k, v) = w.split_once('=').ok_or(format!("bad position field {w}"))?;
                match k {
                    "time" => {
                        time = Some(
                            DateTime::parse_from_rfc3339(v)
                                .map_err(|e| format!("bad time {v}: {e}"))?
                                .with_timezone(&Utc),
                        )
                    }
                    "valid" => valid = Some(v == "true"),
                    "lat" => lat = Some(v.parse().map_err(|e| format!("bad lat {v}: {e}"))?),
                    "lon" => lon = Some(v.parse().map_err(|e| format!("bad lon {v}: {e}"))?),
                    _ => return Err(format!("unknown position field {k}")),
                }
            }
            Expectation::Position {
                time,
                valid,
                lat,
                lon,
            }
        }
        "positions" => Expectation::Positions {
            location_checked: !words.iter().any(|w| w == "location_unchecked"),
        },
        "attributes" => Expectation::Attributes,
        "attribute" => {
            let kv = words.get(1).ok_or("attribute without key=value")?;
            let (k, v) = kv.split_once('=').ok_or(format!("bad attribute {kv}"))?;
            let value = serde_json::from_str(v)
                .unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
            Expectation::Attribute {
                key: k.to_string(),
                value,
            }
        }
        "not_null" => Expectation::NotNull,
        "no_position" => Expectation::NoPosition,
        "no_frame" => Expectation::NoFrame,
        f if f.starts_with("frame=") => {
            Expectation::Frame(hex::decode(&f[6..]).map_err(|e| e.to_string())?)
        }
        f if f.starts_with("frames=") => Expectation::Frames(
            f[7..]
                .split(',')
                .map(hex::decode)
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?,
        ),
        other => return Err(format!("unknown expectation {other}")),
    };
    Ok((exp, tags))
}

/// Traccar's plausibility check on a position (`verifyDecodedPosition`),
/// in our units: speed limit 869 knots in km/h.
pub fn plausible(p: &Position, now: DateTime<Utc>) -> Result<(), String> {
    let min = DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z")
        .map_err(|e| e.to_string())?
        .with_timezone(&Utc);
    if p.fix_time < min || p.fix_time > now + chrono::Duration::hours(25) {
        return Err(format!("fix time {} out of range", p.fix_time));
    }
    if !p.has_valid_coordinates() {
        return Err(format!("coordinates {},{} out of range", p.lat, p.lon));
    }
    if !(-12262.0..=18000.0).contains(&p.altitude_m) {
        return Err(format!("altitude {} out of range", p.altitude_m));
    }
    if !(0.0..=869.0 * KNOTS_TO_KMH).contains(&p.speed_kmh) {
        return Err(format!("speed {} km/h out of range", p.speed_kmh));
    }
    if !(0.0..=360.0).contains(&p.course_deg) {
        return Err(format!("course {} out of range", p.course_deg));
    }
    Ok(())
}

/// Compares an attribute value with a Traccar expectation value. Numbers
/// compare within 1e-6 relative, so `12` matches `Int(12)` and `Float(12.0)`.
pub fn value_matches(actual: &AttrValue, expected: &serde_json::Value) -> bool {
    match (actual, expected) {
        (AttrValue::Bool(a), serde_json::Value::Bool(e)) => a == e,
        (AttrValue::Text(a), serde_json::Value::String(e)) => a == e,
        (AttrValue::Int(a), serde_json::Value::Number(e)) => {
            e.as_f64().is_some_and(|e| approx(*a as f64, e))
        }
        (AttrValue::Float(a), serde_json::Value::Number(e)) => {
            e.as_f64().is_some_and(|e| approx(*a, e))
        }
        (AttrValue::Text(a), serde_json::Value::Number(e)) => a == &e.to_string(),
        // Structured values (cell lists, …) are kept as JSON text.
        (AttrValue::Text(a), e @ (serde_json::Value::Array(_) | serde_json::Value::Object(_))) => {
            serde_json::from_str::<serde_json::Value>(a).is_ok_and(|a| &a == e)
        }
        _ => false,
    }
}

fn approx(a: f64, e: f64) -> bool {
    (a - e).abs() <= 1e-6 * e.abs().max(1.0)
}

/// Every position and report decoded across `steps`.
pub fn decoded(steps: &[Step]) -> impl Iterator<Item = &Decoded> {
    steps.iter().filter_map(|s| s.outcome.as_ref().ok())
}

/// Traccar attribute names (as vectors assert them) → trackgate's, for names
/// that mean the same in every protocol. A protocol's test passes its own
/// table for the rest; that table is consulted first.
pub const COMMON_KEYS: &[(&str, &str)] = &[
    ("alarm", "alarm"),
    ("event", "event"),
    ("status", "status"),
    ("result", "result"),
    ("ignition", "ignition"),
    ("motion", "motion"),
    ("charge", "charging"),
    ("door", "door"),
    ("iccid", "iccid"),
    ("imei", "imei"),
    ("vin", "vin"),
    ("rpm", "rpm"),
    ("steps", "steps"),
    ("input", "input"),
    ("batteryLevel", "battery_level_pct"),
    ("power", "power_v"),
    ("battery", "battery_v"),
    ("humidity", "humidity_pct"),
    ("deviceTemp", "device_temp_c"),
    ("temp1", "temp1_c"),
    ("temp2", "temp2_c"),
    ("temp3", "temp3_c"),
    ("temp4", "temp4_c"),
    ("driverUniqueId", "driver_unique_id"),
];

/// Our name for Traccar's attribute `traccar`: `keys` first, then [`COMMON_KEYS`].
pub fn our_key<'a>(keys: &[(&str, &'a str)], traccar: &str) -> Result<&'a str, String>
where
    'static: 'a,
{
    keys.iter()
        .chain(COMMON_KEYS.iter())
        .find(|(t, _)| *t == traccar)
        .map(|(_, ours)| *ours)
        .ok_or(format!(
            "no mapping for Traccar attribute {traccar}; add it to the protocol's key table"
        ))
}

/// The attributes of the first record: the first position's, or for frames
/// without a fix the first report's.
pub fn first_attributes(d: &Decoded) -> Option<&Attributes> {
    d.positions
        .first()
        .map(|p| &p.attributes)
        .or(d.reports.first().map(|r| &r.attributes))
}

/// Checks a decoded frame against a row's decoder expectation (everything
/// but the framer rows). `keys` maps Traccar attribute names to ours.
pub fn check_expectation(
    e: &Expectation,
    d: &Decoded,
    keys: &[(&str, &'static str)],
) -> Result<(), String> {
    let now = Utc::now();
    match e {
        Expectation::Position {
            time,
            valid,
            lat,
            lon,
        } => {
            let [p] = d.positions.as_slice() else {
                return Err(format!("expected one position, got {}", d.positions.len()));
            };
            plausible(p, now)?;
            if time.is_some_and(|t| t != p.fix_time) {
                return Err(format!("fix time {} != {time:?}", p.fix_time));
            }
            if valid.is_some_and(|v| v != p.valid) {
                return Err(format!("valid {} != {valid:?}", p.valid));
            }
            if lat.is_some_and(|l| (l - p.lat).abs() > 1e-5)
                || lon.is_some_and(|l| (l - p.lon).abs() > 1e-5)
            {
                return Err(format!("location {},{} != {lat:?},{lon:?}", p.lat, p.lon));
            }
        }
        Expectation::Positions {
            location_checked: true,
        } => {
            if d.positions.is_empty() {
                return Err(format!("no positions (reports: {})", d.reports.len()));
            }
            for p in &d.positions {
                plausible(p, now).map_err(|e| format!("{e}: {p:?}"))?;
            }
        }
        Expectation::Positions {
            location_checked: false,
        } => {
            // Location unchecked: records, located or not. trackgate emits a
            // record without a fix as a report, never as a position at 0,0.
            if d.positions.is_empty() && d.reports.is_empty() {
                return Err(format!("neither positions nor reports: {d:?}"));
            }
        }
        Expectation::Attributes => {
            if first_attributes(d).is_none_or(Attributes::is_empty) {
                return Err("first record has no attributes".into());
            }
        }
        Expectation::Attribute { key, value } => check_attribute(d, key, value, keys)?,
        Expectation::NotNull => {
            if d.positions.is_empty() && d.reports.is_empty() {
                return Err("decoded nothing".into());
            }
        }
        Expectation::NoPosition => {
            if !d.positions.is_empty() {
                return Err(format!("expected no position, got {}", d.positions.len()));
            }
        }
        Expectation::Frame(_) | Expectation::Frames(_) | Expectation::NoFrame => {
            return Err("framer rows are checked with check_framer".into())
        }
    }
    Ok(())
}

/// `attribute KEY=VALUE`: `speed` (knots in Traccar), `course` and `altitude`
/// are position fields; other keys are looked up under our name.
pub fn check_attribute(
    d: &Decoded,
    key: &str,
    expected: &serde_json::Value,
    keys: &[(&str, &'static str)],
) -> Result<(), String> {
    let p = d.positions.first();
    let field = |v: f64| Some(AttrValue::Float(v));
    let (ours, actual) = match key {
        "speed" => (key, p.and_then(|p| field(p.speed_kmh / KNOTS_TO_KMH))),
        "course" => (key, p.and_then(|p| field(p.course_deg))),
        "altitude" => (key, p.and_then(|p| field(p.altitude_m))),
        _ => {
            let ours = our_key(keys, key)?;
            (ours, first_attributes(d).and_then(|a| a.get(ours)).cloned())
        }
    };
    match (actual, expected) {
        (None, serde_json::Value::Null) => Ok(()),
        (Some(a), e) if value_matches(&a, e) => Ok(()),
        (a, e) => Err(format!(
            "attribute {key} (ours: {ours}) is {a:?}, expected {e}"
        )),
    }
}

/// `frame=`, `frames=` and `no_frame` rows: the framer alone, on `session`.
pub fn check_framer(session: &mut dyn Session, v: &Vector) -> Result<(), String> {
    let mut buf = BytesMut::from(v.message.as_slice());
    let mut next = || session.frame(&mut buf).map_err(|e| e.to_string());
    match &v.expectation {
        Expectation::Frame(expected) => match next()? {
            Some(f) if f.as_ref() == expected.as_slice() => Ok(()),
            other => Err(format!(
                "first frame {:?}, expected {}",
                other.map(hex::encode),
                hex::encode(expected)
            )),
        },
        Expectation::Frames(expected) => {
            for e in expected {
                match next()? {
                    Some(f) if f.as_ref() == e.as_slice() => {}
                    other => {
                        return Err(format!(
                            "frame {:?}, expected {}",
                            other.map(hex::encode),
                            hex::encode(e)
                        ))
                    }
                }
            }
            Ok(())
        }
        Expectation::NoFrame => match next()? {
            None => Ok(()),
            Some(f) => Err(format!("expected no frame, got {}", hex::encode(f))),
        },
        _ => Err("not a framer row".into()),
    }
}

/// Whether a row checks the framer rather than the decoder.
pub fn is_framer_row(v: &Vector) -> bool {
    matches!(
        v.expectation,
        Expectation::Frame(_) | Expectation::Frames(_) | Expectation::NoFrame
    )
}

/// Runs `check` on every row of the vector file at `path` and panics with
/// every failing row, so one run shows all failures. Returns the rows.
pub fn run_file(path: &str, mut check: impl FnMut(&Vector) -> Result<(), String>) -> Vec<Vector> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let rows = parse_tsv(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let lines = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(rows.len(), lines, "{path}: every line parses to a row");
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|v| check(v).err().map(|e| format!("line {}: {e}", v.line)))
        .collect();
    assert!(
        failures.is_empty(),
        "{path}: {} of {} rows fail:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    println!("{path}: all {} rows meet their expectation", rows.len());
    rows
}
