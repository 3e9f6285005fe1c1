//! Field readers: numbers, `DDMM.MMMM` coordinates, lenient device-local
//! dates and times → UTC.

use chrono::{DateTime, FixedOffset, Months, NaiveDate, TimeDelta, TimeZone, Utc};

use crate::protocol::{DecodeError, Rejected};

/// A rejection for a field that does not read as `what`.
pub(super) fn malformed(what: &'static str, offset: usize) -> Rejected {
    Rejected::skip(DecodeError::Malformed { what, offset })
}

/// Non-empty and ASCII digits only.
pub(super) fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal number `12`, `12.5`, ` 46.0` (spaces around allowed, an
/// optional leading `-`). No exponent, `inf` or `nan`.
pub(super) fn decimal(s: &str) -> Option<f64> {
    let s = s.trim();
    let digits = s.strip_prefix('-').unwrap_or(s);
    let dots = digits.bytes().filter(|b| *b == b'.').count();
    let ok = digits.bytes().any(|b| b.is_ascii_digit())
        && dots <= 1
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    ok.then(|| s.parse().ok()).flatten()
}

/// An unsigned decimal integer.
pub(super) fn uint(s: &str) -> Option<u64> {
    let s = s.trim();
    is_digits(s).then(|| s.parse().ok()).flatten()
}

/// An unsigned hexadecimal integer of at most 16 digits.
pub(super) fn hex(s: &str) -> Option<u64> {
    let ok = !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| u64::from_str_radix(s, 16).ok()).flatten()
}

/// Six digits as three two-digit numbers.
pub(super) fn pairs(s: &str) -> Option<[u32; 3]> {
    if s.len() != 6 || !is_digits(s) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|p| p.parse().ok());
    Some([n(0..2)?, n(2..4)?, n(4..6)?])
}

/// Year (two digits, 2000–2099), month, day and hh:mm:ss, device-local, in
/// UTC. Lenient like the devices' firmware and Traccar's calendar: a month
/// or day of 0 or past its end rolls over (`00` month of 2000 is December
/// 1999), as do seconds and minutes up to 99. Hours must be below 24.
pub(super) fn to_utc(
    [yy, month, day]: [u32; 3],
    [hh, mm, ss]: [u32; 3],
    zone: FixedOffset,
) -> Option<DateTime<Utc>> {
    if hh >= 24 {
        return None;
    }
    let year = i32::try_from(yy).ok()?.checked_add(2000)?;
    let jan1 = NaiveDate::from_ymd_opt(year, 1, 1)?;
    let month_start = match month.checked_sub(1) {
        Some(m) => jan1.checked_add_months(Months::new(m))?,
        None => jan1.checked_sub_months(Months::new(1))?,
    };
    let seconds = i64::from(day)
        .checked_sub(1)?
        .checked_mul(86_400)?
        .checked_add(i64::from(hh).checked_mul(3600)?)?
        .checked_add(i64::from(mm).checked_mul(60)?)?
        .checked_add(i64::from(ss))?;
    let local = month_start
        .and_hms_opt(0, 0, 0)?
        .checked_add_signed(TimeDelta::seconds(seconds))?;
    zone.from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// `DDMM.MMMM` (degrees may be absent or space-padded) with hemisphere
/// `N`/`S`/`E`/`W`, in degrees.
pub(super) fn coordinate(value: &str, hemisphere: u8) -> Option<f64> {
    let v = value.trim();
    let dot = v.find('.')?;
    let split = dot.checked_sub(2)?;
    let minutes = v.get(split..).and_then(decimal).filter(|m| *m >= 0.0)?;
    let degrees = match v.get(..split)? {
        "" => 0.0,
        d => uint(d)? as f64,
    };
    let magnitude = degrees + minutes / 60.0;
    match hemisphere {
        b'N' | b'E' => Some(magnitude),
        b'S' | b'W' => Some(-magnitude),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_dates_roll_over() {
        let utc = |d, t| {
            to_utc(d, t, FixedOffset::east_opt(0).unwrap())
                .unwrap()
                .to_rfc3339()
        };
        assert_eq!(utc([15, 10, 24], [5, 51, 48]), "2015-10-24T05:51:48+00:00");
        assert_eq!(utc([0, 0, 7], [0, 14, 3]), "1999-12-07T00:14:03+00:00");
        assert_eq!(utc([6, 18, 30], [8, 3, 31]), "2007-06-30T08:03:31+00:00");
        assert!(to_utc([15, 1, 1], [24, 0, 0], FixedOffset::east_opt(0).unwrap()).is_none());
    }

    #[test]
    fn coordinates() {
        assert!((coordinate(" 8415.4076", b'W').unwrap() + 84.256793).abs() < 1e-5);
        assert!((coordinate("45.78950", b'E').unwrap() - 0.763158).abs() < 1e-5);
        assert_eq!(coordinate("1234", b'N'), None);
        assert_eq!(coordinate("12.34", b'X'), None);
    }
}
