//! Unit tests: the framer (all prefixes, free text, limits, noise), the
//! replies byte for byte, bad input, and property tests over generated
//! position reports.

// Test code: a panic is a failed test, and sizes here are tiny.
#![allow(clippy::panic, clippy::arithmetic_side_effects)]

use bytes::BytesMut;
use chrono::{NaiveDate, TimeZone, Utc};
use proptest::prelude::*;

use super::encode::{self, Fix};
use crate::model::AttrValue;
use crate::protocol::{
    DecodeContext, DecodeError, Decoded, FrameError, MessageKind, Rejected, Session as _,
    SessionConfig, Transport,
};

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap(),
    }
}

fn session(transport: Transport) -> super::Session {
    super::Session::new(&SessionConfig::new(transport))
}

fn decode(frame: &[u8]) -> Result<Decoded, Rejected> {
    session(Transport::Udp).decode(frame, &ctx())
}

fn frames(s: &mut super::Session, bytes: &[u8]) -> (Vec<Vec<u8>>, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(f) = s.frame(&mut buf).unwrap() {
        out.push(f.to_vec());
    }
    (out, buf)
}

const FREE_TEXT: &[u8] = b"(864555555555555,ZC03,191117,234207,$Notice: (a) done)$)";
const BR00: &[u8] =
    b"(088047365460BR00151024A2555.3531S02855.3329E004.7055148276.1701000000L00009AA3)";

#[test]
fn every_prefix_frames_only_whole_frames() {
    let expected = [
        BR00.to_vec(),
        FREE_TEXT.to_vec(),
        b"(027044702512BP00HSO)".to_vec(),
    ];
    let stream = expected.concat();
    for n in 0..=stream.len() {
        let (got, _) = frames(&mut session(Transport::Tcp), &stream[..n]);
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g, e, "prefix {n}");
        }
    }
    let (got, rest) = frames(&mut session(Transport::Tcp), &stream);
    assert_eq!(got, expected);
    assert!(rest.is_empty());
}

#[test]
fn a_paren_in_free_text_does_not_end_the_frame_and_noise_is_skipped() {
    let (got, _) = frames(
        &mut session(Transport::Tcp),
        &[b"xx)$".as_slice(), FREE_TEXT].concat(),
    );
    assert_eq!(got, [FREE_TEXT.to_vec()]);
    let (got, rest) = frames(&mut session(Transport::Tcp), b"no frame here");
    assert!(got.is_empty() && rest.is_empty());
}

#[test]
fn an_open_frame_over_the_limit_is_too_large() {
    let mut s = super::Session::new(&SessionConfig {
        max_frame_bytes: 8,
        ..SessionConfig::new(Transport::Tcp)
    });
    let mut buf = BytesMut::from(&b"(0123456789"[..]);
    assert!(matches!(
        s.frame(&mut buf),
        Err(FrameError::TooLarge { max: 8, .. })
    ));
}

#[test]
fn handshake_and_login_replies() {
    let d = decode(b"(027044702512BP00027044702512HSO01A4)").unwrap();
    assert_eq!(d.kind, MessageKind::Login);
    assert_eq!(
        d.reply.accept.as_deref(),
        Some(&b"(027044702512AP01HSO)"[..])
    );
    assert_eq!(d.reply.refuse, None);
    let d = decode(b"(088047365460BP05354188047365460150929A3258.1754S02755.4323E009.4193927301.9000000000L00000000)").unwrap();
    assert_eq!(d.reply.accept.as_deref(), Some(&b"(088047365460AP05)"[..]));
    assert_eq!(d.positions.len(), 1);
    // A login whose position cannot be read (course 999.9) is still
    // answered; the position is dropped, not stored.
    let d = decode(b"(088047365460BP05354188047365460150929A3258.1754S02755.4323E009.4193927999.9000000000L00000000)").unwrap();
    assert_eq!(d.kind, MessageKind::Login);
    assert_eq!(d.reply.accept.as_deref(), Some(&b"(088047365460AP05)"[..]));
    assert!(d.positions.is_empty());
    // Any other command with such a position is refused.
    assert!(decode(
        b"(088047365460BR00150929A3258.1754S02755.4323E009.4193927999.9000000000L00000000)"
    )
    .is_err());
    // Positions and the comma form get nothing.
    assert_eq!(decode(BR00).unwrap().reply.accept, None);
    let d = decode(b"(352606090042050,BP05,240414,A,4527.3513N,00909.9758E,4.80,112825,155.49)")
        .unwrap();
    assert_eq!(d.reply.accept, None);
}

#[test]
fn br00_values() {
    let d = decode(BR00).unwrap();
    let p = &d.positions[0];
    assert_eq!(p.device_id.as_str(), "088047365460");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2015, 10, 24, 5, 51, 48).unwrap()
    );
    assert!((p.lat + (25.0 + 55.3531 / 60.0)).abs() < 1e-9);
    assert!((p.lon - (28.0 + 55.3329 / 60.0)).abs() < 1e-9);
    assert_eq!(p.speed_kmh, 4.7);
    assert_eq!(p.course_deg, 276.17);
    assert!(p.valid);
    assert_eq!(p.attributes.get("ignition"), Some(&AttrValue::Bool(true)));
    assert_eq!(p.attributes.get("charging"), Some(&AttrValue::Bool(true)));
    assert_eq!(
        p.attributes.get("odometer_m"),
        Some(&AttrValue::Int(0x9AA3))
    );
}

#[test]
fn device_time_zone_is_honoured() {
    let mut s = super::Session::new(&SessionConfig {
        time_zone: chrono::FixedOffset::east_opt(2 * 3600).unwrap(),
        ..SessionConfig::new(Transport::Udp)
    });
    let d = s.decode(BR00, &ctx()).unwrap();
    assert_eq!(
        d.positions[0].fix_time,
        Utc.with_ymd_and_hms(2015, 10, 24, 3, 51, 48).unwrap()
    );
}

#[test]
fn bad_input_is_rejected_never_a_panic() {
    for bad in [
        &b"(088047365460BR00151024A2555.3531S02855.3329E004.7"[..],
        b"088047365460BR00)",
        b"(,)",
        b"(088047365460BR00151024A9555.3531S02855.3329E004.7055148276.1701000000L00009AA3)",
        b"(088047365460BR00151024A2555.3531S02855.3329E004.7055148476.1701000000L00009AA3)",
        b"(013632651491,ZC20,180716,x,6,392,65535,255)",
        b"(352602014867BS5000)",
    ] {
        let r = decode(bad).unwrap_err();
        assert!(
            matches!(r.error, DecodeError::Malformed { .. }),
            "{:?}: {r:?}",
            String::from_utf8_lossy(bad)
        );
        assert!(!r.close && r.reply.is_none());
    }
    // Unknown layouts are recognised and ignored.
    let d = decode(b"(027028258309BQ86,0,05550c21b10d1d0f431008bd114c0ea5078400010007a100423932,161117005322,01000001)").unwrap();
    assert_eq!(d.kind, MessageKind::Other);
}

fn fix() -> impl Strategy<Value = Fix> {
    (
        (0u64..=999_999_999_999, 0i64..3_155_760_000),
        (0u8..90, 0u32..600_000, any::<bool>()),
        (0u8..180, 0u32..600_000, any::<bool>()),
        (
            any::<bool>(),
            0u16..=9999,
            0u32..=36_000,
            any::<bool>(),
            any::<u32>(),
        ),
    )
        .prop_map(
            |(
                (id, secs),
                (lat_deg, lat_min_e4, south),
                (lon_deg, lon_min_e4, west),
                (valid, speed_e1, course_e2, ignition, odometer),
            )| {
                let base = NaiveDate::from_ymd_opt(2000, 1, 1)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap();
                Fix {
                    id,
                    time: base + chrono::Duration::seconds(secs),
                    lat_deg,
                    lat_min_e4,
                    south,
                    lon_deg,
                    lon_min_e4,
                    west,
                    valid,
                    speed_e1,
                    course_e2,
                    ignition,
                    odometer,
                }
            },
        )
}

proptest! {
    #[test]
    fn br00_round_trips(f in fix()) {
        let d = decode(&encode::br00(&f)).unwrap();
        let p = &d.positions[0];
        prop_assert_eq!(p.device_id.as_str(), format!("{:012}", f.id));
        prop_assert_eq!(p.fix_time, f.time.and_utc());
        prop_assert!((p.lat - f.lat()).abs() < 1e-9);
        prop_assert!((p.lon - f.lon()).abs() < 1e-9);
        prop_assert!((p.speed_kmh - f64::from(f.speed_e1) / 10.0).abs() < 1e-9);
        prop_assert!((p.course_deg - f64::from(f.course_e2) / 100.0).abs() < 1e-9);
        prop_assert_eq!(p.valid, f.valid);
        prop_assert_eq!(p.attributes.get("ignition"), Some(&AttrValue::Bool(f.ignition)));
        prop_assert_eq!(p.attributes.get("odometer_m"), Some(&AttrValue::Int(i64::from(f.odometer))));
    }

    #[test]
    fn every_prefix_of_generated_reports_frames_right(fixes in prop::collection::vec(fix(), 1..4)) {
        let expected: Vec<Vec<u8>> = fixes.iter().map(encode::br00).collect();
        let stream = expected.concat();
        for n in 0..=stream.len() {
            let (got, _) = frames(&mut session(Transport::Tcp), &stream[..n]);
            for (g, e) in got.iter().zip(&expected) {
                prop_assert_eq!(g, e);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..120), text in "\\([0-9A-Z,.$ -]{0,90}\\)") {
        let _ = decode(&bytes);
        let _ = decode(text.as_bytes());
        let mut s = session(Transport::Tcp);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(f)) = s.frame(&mut buf) {
            let _ = s.decode(&f, &ctx());
        }
    }
}
