//! Timestamps as OsmAnd-style clients send them: unix seconds (possibly
//! fractional), unix milliseconds (13 digits and more), or ISO 8601 with
//! `T` or a space, with or without zone (none means UTC).

use chrono::{DateTime, NaiveDateTime, Utc};

/// Numbers from this on are milliseconds (1e11 s is the year 5138).
const MILLIS_FROM: f64 = 100_000_000_000.0;

pub(super) fn parse(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        let millis = if n >= MILLIS_FROM { n } else { n * 1000.0 };
        // In range: at most ~1.8e19 ms, beyond which chrono refuses anyway.
        if millis > i64::MAX as f64 {
            return None;
        }
        return DateTime::from_timestamp_millis(millis.round() as i64);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    None
}
