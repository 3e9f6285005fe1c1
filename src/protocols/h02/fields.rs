//! Field readers shared by the text messages: numbers, coordinates in the
//! three spellings H02 firmwares use, and device-local date/time → UTC.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};

use crate::protocol::{DecodeError, Rejected};

/// A rejection for a field that does not read as `what`.
pub(super) fn malformed(what: &'static str, offset: usize) -> Rejected {
    Rejected::skip(DecodeError::Malformed { what, offset })
}

/// Non-empty and ASCII digits only.
pub(super) fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Exactly eight hex digits (the status word).
pub(super) fn is_hex8(s: &str) -> bool {
    s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A decimal number `123`, `12.5`, `.5`; surrounding spaces allowed. No
/// sign, exponent, `inf` or `nan`.
pub(super) fn decimal(s: &str) -> Option<f64> {
    let s = s.trim();
    let dots = s.bytes().filter(|b| *b == b'.').count();
    let ok = !s.is_empty()
        && dots <= 1
        && s != "."
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    ok.then(|| s.parse().ok()).flatten()
}

/// An unsigned decimal integer (spaces allowed around it).
pub(super) fn uint(s: &str) -> Option<u64> {
    let s = s.trim();
    is_digits(s).then(|| s.parse().ok()).flatten()
}

/// A signed decimal integer.
pub(super) fn int(s: &str) -> Option<i64> {
    let s = s.trim();
    let digits = s.strip_prefix('-').unwrap_or(s);
    is_digits(digits).then(|| s.parse().ok()).flatten()
}

/// An unsigned hexadecimal integer (spaces allowed around it).
pub(super) fn hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let ok = !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| u64::from_str_radix(s, 16).ok()).flatten()
}

/// `hhmmss` as seconds after midnight. Hours must be below 24; minutes and
/// seconds over 59 roll over (`160169` is 16:02:09), as devices send them
/// and Traccar's lenient calendar reads them.
pub(super) fn time(s: &str) -> Option<TimeOfDay> {
    let [h, m, sec] = pairs(s)?;
    let secs = h
        .saturating_mul(3600)
        .saturating_add(m.saturating_mul(60))
        .saturating_add(sec);
    (h < 24).then_some(TimeOfDay(secs))
}

/// Seconds after midnight (may exceed one day by a few minutes, see [`time`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TimeOfDay(pub u32);

/// `ddmmyy` (years 2000–2099).
pub(super) fn date(s: &str) -> Option<NaiveDate> {
    let [d, m, y] = pairs(s)?;
    NaiveDate::from_ymd_opt(i32::try_from(y).ok()?.checked_add(2000)?, m, d)
}

/// Six digits as three two-digit numbers.
fn pairs(s: &str) -> Option<[u32; 3]> {
    if s.len() != 6 || !is_digits(s) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|p| p.parse().ok());
    Some([n(0..2)?, n(2..4)?, n(4..6)?])
}

/// A device-local date and time in UTC.
pub(super) fn to_utc(date: NaiveDate, time: TimeOfDay, zone: FixedOffset) -> Option<DateTime<Utc>> {
    let local = date
        .and_time(NaiveTime::MIN)
        .checked_add_signed(TimeDelta::seconds(i64::from(time.0)))?;
    zone.from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// A latitude (`hemisphere` N/S) or longitude (E/W) in degrees. The value
/// is spelled one of three ways:
///
/// ```text
/// DDMM.MMMM   degrees then two-digit minutes with a fraction (degrees may be
///             absent: "38.6508" is 0° 38.6508')
/// -DD-MM.MMMM degrees and minutes, each after a '-'
/// DDMMMMMM    degrees, two-digit minutes, four digits of fraction, no dot
/// ```
pub(super) fn coordinate(value: &str, hemisphere: &str) -> Option<f64> {
    let v = value.trim();
    let (degrees, minutes) = if let Some(rest) = v.strip_prefix('-') {
        let (d, m) = rest.split_once('-')?;
        (d, decimal(m)?)
    } else if let Some(dot) = v.find('.') {
        let split = dot.checked_sub(2)?;
        (v.get(..split)?, decimal(v.get(split..)?)?)
    } else {
        let split = v.len().checked_sub(6)?;
        let whole = uint(v.get(split..)?)?;
        (v.get(..split)?, whole as f64 / 10_000.0)
    };
    let degrees = match degrees {
        "" => 0.0,
        d => uint(d)? as f64,
    };
    let magnitude = degrees + minutes / 60.0;
    match hemisphere {
        "N" | "E" => Some(magnitude),
        "S" | "W" => Some(-magnitude),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_coordinate_spellings() {
        let close = |a: Option<f64>, e: f64| (a.unwrap() - e).abs() < 1e-6;
        assert!(close(coordinate("3542.2043", "N"), 35.0 + 42.2043 / 60.0));
        assert!(close(coordinate("38.6508", "W"), -38.6508 / 60.0));
        assert!(close(
            coordinate("-23-29.0095", "S"),
            -(23.0 + 29.0095 / 60.0)
        ));
        assert!(close(coordinate("145037022", "E"), 145.0 + 3.7022 / 60.0));
        assert!(close(coordinate("  701.8915", "S"), -(7.0 + 1.8915 / 60.0)));
        assert_eq!(coordinate("0.0000", "0"), None);
        assert_eq!(coordinate("", "N"), None);
        assert_eq!(coordinate("1x2.5", "N"), None);
        assert_eq!(coordinate("12345", "N"), None);
        assert_eq!(coordinate("inf", "N"), None);
    }

    #[test]
    fn numbers_refuse_signs_exponents_and_words() {
        assert_eq!(decimal(" 3.34"), Some(3.34));
        assert_eq!(decimal("1e5"), None);
        assert_eq!(decimal("nan"), None);
        assert_eq!(decimal("1.2.3"), None);
        assert_eq!(int("-62"), Some(-62));
        assert_eq!(hex("d75b"), Some(0xd75b));
        assert_eq!(uint("+1"), None);
    }

    #[test]
    fn dates_and_times_are_checked() {
        assert_eq!(date("310217"), None);
        assert_eq!(time("246000"), None);
        assert!(date("290216").is_some());
        assert_eq!(time("235959"), Some(TimeOfDay(86_399)));
        assert_eq!(time("160169"), Some(TimeOfDay(16 * 3600 + 2 * 60 + 9)));
    }
}
