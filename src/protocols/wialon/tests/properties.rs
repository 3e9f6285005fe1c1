//! Property tests: generated records decode to the values encoded, with and
//! without the 2.0 CRC; arbitrary bytes never panic.

use proptest::prelude::*;

use super::*;
use crate::model::AttrValue;
use encode::Record;

pub(super) fn sample() -> Record {
    Record {
        unix: 1_700_000_000,
        lat_e6: 55_743_375,
        lon_e6: -37_661_390,
        speed_kmh: 63,
        course: 270,
        altitude: 120,
        satellites: 9,
        hdop_tenths: 12,
        inputs: 3,
        outputs: 1,
        params: vec![("fuel1".into(), 42)],
    }
}

fn record() -> impl Strategy<Value = Record> {
    (
        946_684_800i64..4_102_444_799,
        -89_999_999i32..=89_999_999,
        -179_999_999i32..=179_999_999,
        0u16..1000,
        0u16..360,
        any::<i16>(),
        any::<u8>(),
        0u8..100,
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(("[a-z][a-z0-9_]{0,8}", any::<i64>()), 0..4),
    )
        .prop_map(
            |(
                unix,
                lat_e6,
                lon_e6,
                speed_kmh,
                course,
                altitude,
                satellites,
                hdop,
                i,
                o,
                params,
            )| {
                Record {
                    unix,
                    lat_e6,
                    lon_e6,
                    speed_kmh,
                    course,
                    altitude,
                    satellites,
                    hdop_tenths: hdop,
                    inputs: i,
                    outputs: o,
                    // Cell names would be folded into `network`.
                    params: params
                        .into_iter()
                        .filter(|(n, _)| {
                            !["mcc", "mnc", "lac", "cell_id", "temp", "bat"]
                                .iter()
                                .any(|p| n.starts_with(p))
                        })
                        .collect(),
                }
            },
        )
}

fn check(r: &Record, d: &Decoded) -> Result<(), TestCaseError> {
    let [p] = d.positions.as_slice() else {
        return Err(TestCaseError::fail(format!("{d:?}")));
    };
    prop_assert_eq!(p.fix_time.timestamp(), r.unix);
    prop_assert!(
        (p.lat - f64::from(r.lat_e6) / 1e6).abs() < 1e-6,
        "{} {}",
        p.lat,
        r.lat_e6
    );
    prop_assert!(
        (p.lon - f64::from(r.lon_e6) / 1e6).abs() < 1e-6,
        "{} {}",
        p.lon,
        r.lon_e6
    );
    prop_assert_eq!(p.speed_kmh, f64::from(r.speed_kmh));
    prop_assert_eq!(p.course_deg, f64::from(r.course));
    prop_assert_eq!(p.altitude_m, f64::from(r.altitude));
    prop_assert_eq!(p.satellites, Some(r.satellites));
    prop_assert_eq!(p.valid, r.satellites >= 3);
    Ok(())
}

proptest! {
    #[test]
    fn data_records_round_trip(r in record(), v2 in any::<bool>()) {
        let body = encode::data_body(&r);
        let body = if v2 { encode::with_crc(&body) } else { body };
        let d = decode(std::str::from_utf8(&encode::line("D", &body)).unwrap())
            .map_err(|e| TestCaseError::fail(format!("{e:?} for {body}")))?;
        prop_assert_eq!(reply(&d), b"#AD#1\r\n");
        check(&r, &d)?;
        let a = &d.positions[0].attributes;
        prop_assert_eq!(a.get("hdop"), Some(&AttrValue::Float(f64::from(r.hdop_tenths) / 10.0)));
        prop_assert_eq!(a.get("input"), Some(&AttrValue::Int(i64::from(r.inputs))));
        prop_assert_eq!(a.get("output"), Some(&AttrValue::Int(i64::from(r.outputs))));
        for (name, v) in &r.params {
            // A later duplicate name wins, as `Attributes::get` reads.
            let last = r.params.iter().rev().find(|(n, _)| n == name).map(|(_, v)| AttrValue::Int(*v));
            prop_assert_eq!(a.get(name), last.as_ref(), "{} {}", name, v);
        }
    }

    #[test]
    fn short_records_round_trip_and_a_flipped_crc_is_caught(r in record(), flip in 1u16..) {
        let body = encode::short_body(&r);
        let d = decode(std::str::from_utf8(&encode::line("SD", &encode::with_crc(&body))).unwrap())
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(reply(&d), b"#ASD#1\r\n");
        check(&r, &d)?;
        let covered = format!("{body};");
        let bad = crate::protocol::checksum::crc16_ibm(covered.as_bytes()) ^ flip;
        let e = decode(&format!("#SD#{covered}{bad:04X}\r\n")).unwrap_err();
        prop_assert_eq!(e.error.kind(), "checksum");
    }

    #[test]
    fn arbitrary_lines_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut s = logged_in();
        let _ = s.decode(&bytes, &ctx());
        let mut buf = bytes::BytesMut::from(bytes.as_slice());
        while let Ok(Some(f)) = s.frame(&mut buf) {
            let _ = s.decode(&f, &ctx());
        }
    }

    #[test]
    fn arbitrary_record_text_never_panics(
        fields in prop::collection::vec("(NA|[0-9.:,A-Za-z-]{0,12})", 0..20)
    ) {
        let _ = decode(&format!("#D#{}\r\n", fields.join(";")));
    }
}
