//! Comma-separated field access for text messages: an out-of-range index
//! reads as an empty field, so walking a short or malformed message never
//! reads out of bounds, and numbers parse to `Option` instead of failing.

use chrono::{DateTime, NaiveDateTime, Utc};

/// The fields of one text message (`+RESP:GTFRI,…,<count>` split on `,`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields<'a> {
    v: &'a [&'a str],
}

impl<'a> Fields<'a> {
    pub(super) fn new(v: &'a [&'a str]) -> Self {
        Self { v }
    }

    pub(super) fn len(&self) -> usize {
        self.v.len()
    }

    /// Field `i`, or `""` past the end.
    pub(super) fn get(&self, i: usize) -> &'a str {
        self.v.get(i).copied().unwrap_or("")
    }

    /// Field `len - back` (1 = last), or `""`.
    pub(super) fn back(&self, back: usize) -> &'a str {
        self.len().checked_sub(back).map_or("", |i| self.get(i))
    }
}

/// A finite decimal number (`12.5`, `-3`); `nan`/`inf` are rejected.
pub(super) fn float(s: &str) -> Option<f64> {
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A decimal integer.
pub(super) fn int(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 18 {
        return None;
    }
    s.parse().ok()
}

/// A hexadecimal integer of at most 16 digits.
pub(super) fn hex(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// `yyyyMMddHHmmss` in UTC.
pub(super) fn time(s: &str) -> Option<DateTime<Utc>> {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// Longitude/latitude as Queclink writes them: optional `-`, 1–3 integer
/// digits, a point, exactly six decimals.
pub(super) fn is_coordinate(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    match digits.split_once('.') {
        Some((i, d)) => {
            (1..=3).contains(&i.len())
                && d.len() == 6
                && i.bytes().all(|b| b.is_ascii_digit())
                && d.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Whether every byte is a hex digit and the length is in `len`.
pub(super) fn is_hex(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `s` is 1 to `max` decimal digits.
pub(super) fn is_digits(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// `HHHHH:MM:SS` hour meter → seconds.
pub(super) fn hours(s: &str) -> Option<i64> {
    let mut parts = s.split(':');
    let h = int(parts.next()?)?;
    let m = parts.next().map_or(Some(0), int)?;
    let sec = parts.next().map_or(Some(0), int)?;
    h.checked_mul(3600)?
        .checked_add(m.checked_mul(60)?)?
        .checked_add(sec)
}
