//! Property tests: generated record packets (commands 1 and 68) decode to
//! the values encoded with the fixed ack; arbitrary bytes never panic.

use proptest::prelude::*;

use super::*;
use crate::model::AttrValue;
use crate::protocols::ruptela::encode::{self, Record};

fn record(extended: bool) -> impl Strategy<Value = Record> {
    let id = if extended {
        any::<u16>().boxed()
    } else {
        any::<u8>().prop_map(u16::from).boxed()
    };
    let group = |width: u32, id: BoxedStrategy<u16>| {
        let max = if width == 64 {
            u64::MAX
        } else {
            (1u64 << width) - 1
        };
        prop::collection::vec((id, 0..=max), 0..4)
    };
    (
        (
            946_684_800u32..4_102_444_799,
            -1_800_000_000i32..=1_800_000_000,
            -900_000_000i32..=900_000_000,
            any::<u16>(),
            0u16..36_000,
            any::<u8>(),
            any::<u16>(),
            any::<u8>(),
            if extended {
                any::<u16>().boxed()
            } else {
                any::<u8>().prop_map(u16::from).boxed()
            },
        ),
        (
            group(8, id.clone()),
            group(16, id.clone()),
            group(32, id.clone()),
            group(64, id),
        ),
    )
        .prop_map(
            |((time, lon, lat, altitude, course, satellites, speed, hdop, event), (a, b, c, d))| {
                Record {
                    time,
                    lon,
                    lat,
                    altitude,
                    course,
                    satellites,
                    speed,
                    hdop,
                    event,
                    io: [a, b, c, d],
                }
            },
        )
}

fn packet() -> impl Strategy<Value = (bool, Vec<Record>)> {
    any::<bool>().prop_flat_map(|ext| (Just(ext), prop::collection::vec(record(ext), 1..4)))
}

proptest! {
    #[test]
    fn generated_records_round_trip((extended, records) in packet(), imei in 0u64..999_999_999_999_999) {
        let command = if extended { 68 } else { 1 };
        let bytes = encode::packet(imei, command, &encode::records(&records, extended));
        let mut out = run(&bytes);
        prop_assert_eq!(out.len(), 1);
        let d = out.remove(0).unwrap();
        prop_assert_eq!(d.device.as_ref().unwrap().as_str(), format!("{imei:015}"));
        prop_assert_eq!(d.positions.len(), records.len());
        for (p, r) in d.positions.iter().zip(&records) {
            prop_assert_eq!(p.fix_time.timestamp(), i64::from(r.time));
            prop_assert!((p.lat - f64::from(r.lat) / 1e7).abs() < 1e-9);
            prop_assert!((p.lon - f64::from(r.lon) / 1e7).abs() < 1e-9);
            prop_assert!((p.altitude_m - f64::from(r.altitude) / 10.0).abs() < 1e-9);
            prop_assert!((p.course_deg - f64::from(r.course) / 100.0).abs() < 1e-9);
            prop_assert_eq!(p.speed_kmh, f64::from(r.speed));
            prop_assert_eq!(p.satellites, Some(r.satellites));
            prop_assert_eq!(p.attributes.get("event"), Some(&AttrValue::Int(i64::from(r.event))));
            for group in &r.io {
                for &(id, v) in group {
                    // A later element with the same id replaces an earlier one.
                    let last = r.io.iter().flatten().rfind(|(i, _)| *i == id).unwrap().1;
                    prop_assert_eq!(p.attributes.get(&format!("io{id}")), Some(&AttrValue::Int(last as i64)), "io{} {}", id, v);
                }
            }
        }
        prop_assert_eq!(d.reply.accept.as_deref(), Some(&h("0002640113bc")[..]));
    }

    #[test]
    fn any_prefix_waits_and_any_split_gives_the_packet((extended, records) in packet(), cut in any::<prop::sample::Index>()) {
        let bytes = encode::packet(1, if extended { 68 } else { 1 }, &encode::records(&records, extended));
        let n = cut.index(bytes.len());
        let mut buf = BytesMut::from(&bytes[..n]);
        prop_assert!(matches!(session().frame(&mut buf), Ok(None)));
        buf.extend_from_slice(&bytes[n..]);
        let f = session().frame(&mut buf).unwrap().unwrap();
        prop_assert_eq!(f.as_ref(), bytes.as_slice());
    }

    #[test]
    fn arbitrary_payloads_never_panic(command in any::<u8>(), data in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = run(&encode::packet(7, command, &data));
    }
}
