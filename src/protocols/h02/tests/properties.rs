//! Property tests: generated fixes encoded as a V1 text report and as a
//! binary record decode back to the same values; streams of them frame
//! exactly at every prefix; arbitrary bytes never panic.

use chrono::NaiveDate;
use proptest::prelude::*;

use super::*;
use encode::Fix;

fn fix() -> impl Strategy<Value = Fix> {
    (
        (1_000_000_000u64..=9_999_999_999, 0i64..3_155_760_000),
        (0u8..90, 0u32..600_000, any::<bool>()),
        (0u8..180, 0u32..600_000, any::<bool>()),
        (
            any::<bool>(),
            0u16..1000,
            0u16..=360,
            any::<u32>(),
            7u8..=100,
        ),
    )
        .prop_map(
            |(
                (id, secs),
                (lat_deg, lat_min_e4, south),
                (lon_deg, lon_min_e4, west),
                (valid, speed_kn, course, status, battery),
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
                    speed_kn,
                    course,
                    status,
                    battery,
                }
            },
        )
}

fn check(f: &Fix, d: &Decoded) -> Result<(), TestCaseError> {
    let [p] = &d.positions[..] else {
        return Err(TestCaseError::fail("one position"));
    };
    prop_assert_eq!(p.device_id.as_str(), format!("{:010}", f.id));
    prop_assert_eq!(p.fix_time, f.time.and_utc());
    prop_assert!((p.lat - f.lat()).abs() < 1e-9, "{} {}", p.lat, f.lat());
    prop_assert!((p.lon - f.lon()).abs() < 1e-9, "{} {}", p.lon, f.lon());
    prop_assert!((p.speed_kmh - f64::from(f.speed_kn) * 1.852).abs() < 1e-9);
    prop_assert_eq!(p.course_deg, f64::from(f.course));
    prop_assert_eq!(p.valid, f.valid);
    prop_assert_eq!(
        p.attributes.get("status"),
        Some(&crate::model::AttrValue::Int(i64::from(f.status)))
    );
    prop_assert_eq!(
        p.attributes.get("ignition"),
        Some(&crate::model::AttrValue::Bool(f.status & (1 << 10) != 0))
    );
    Ok(())
}

proptest! {
    #[test]
    fn text_reports_round_trip(f in fix()) {
        let msg = encode::text_v1(&f);
        let d = decode(&msg).unwrap();
        check(&f, &d)?;
        let reply = format!("*HQ,{:010},V4,V1,20260506070809#", f.id);
        prop_assert_eq!(d.reply.accept.as_deref(), Some(reply.as_bytes()));
    }

    #[test]
    fn binary_records_round_trip(f in fix()) {
        let d = decode(&encode::binary(&f)).unwrap();
        check(&f, &d)?;
        prop_assert_eq!(
            d.positions[0].attributes.get("battery_level_pct"),
            Some(&crate::model::AttrValue::Int(i64::from(f.battery)))
        );
        prop_assert_eq!(d.reply.accept, None);
    }

    #[test]
    fn every_prefix_of_a_generated_stream_frames_right(
        fixes in prop::collection::vec((fix(), any::<bool>()), 1..4),
    ) {
        // One connection is one device: every record carries the same id.
        let id = fixes[0].0.id;
        let expected: Vec<Vec<u8>> = fixes
            .iter()
            .map(|(f, text)| {
                let f = Fix { id, ..f.clone() };
                if *text { encode::text_v1(&f) } else { encode::binary(&f) }
            })
            .collect();
        let stream = expected.concat();
        for n in 0..=stream.len() {
            let mut s = session(Transport::Tcp);
            let (got, _) = frames(&mut s, &stream[..n]);
            for (g, e) in got.iter().zip(&expected) {
                prop_assert_eq!(g, e, "prefix {}", n);
            }
        }
        let mut s = session(Transport::Tcp);
        let (got, rest) = frames(&mut s, &stream);
        prop_assert_eq!(got, expected);
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..120), text in "\\*HQ,[0-9,A-Z.#-]{0,80}") {
        let _ = decode(&bytes);
        let _ = decode(text.as_bytes());
        let mut s = session(Transport::Tcp);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(f)) = s.frame(&mut buf) {
            let _ = s.decode(&f, &ctx());
        }
    }
}
