//! Property tests: generated AAA, CCC and CCE messages decode to the
//! values encoded, with the exact CCC ack; arbitrary bytes never panic.

use proptest::prelude::*;

use super::*;
use encode::Fix;

pub(super) fn sample() -> Fix {
    Fix {
        event: 1,
        lat_e6: -7_266_504,
        lon_e6: 112_743_650,
        secs: 454_222_789,
        valid: true,
        satellites: 9,
        speed: 63,
        course: 270,
        altitude: -12,
        mileage: 123_456,
    }
}

fn fix() -> impl Strategy<Value = Fix> {
    (
        any::<u8>(),
        -90_000_000i32..=90_000_000,
        -180_000_000i32..=180_000_000,
        0u32..3_155_760_000,
        any::<bool>(),
        any::<u8>(),
        0u16..1000,
        0u16..=360,
        any::<i16>(),
        any::<u32>(),
    )
        .prop_map(
            |(event, lat_e6, lon_e6, secs, valid, satellites, speed, course, altitude, mileage)| {
                Fix {
                    event,
                    lat_e6,
                    lon_e6,
                    secs,
                    valid,
                    satellites,
                    speed,
                    course,
                    altitude,
                    mileage,
                }
            },
        )
}

fn check(f: &Fix, p: &crate::model::Position) -> Result<(), TestCaseError> {
    use crate::model::AttrValue;
    prop_assert_eq!(p.fix_time.timestamp(), 946_684_800 + i64::from(f.secs));
    prop_assert!((p.lat - f64::from(f.lat_e6) / 1e6).abs() < 1e-9);
    prop_assert!((p.lon - f64::from(f.lon_e6) / 1e6).abs() < 1e-9);
    prop_assert_eq!(p.valid, f.valid);
    prop_assert_eq!(p.satellites, Some(f.satellites));
    prop_assert_eq!(p.speed_kmh, f64::from(f.speed));
    prop_assert_eq!(p.course_deg, f64::from(f.course));
    prop_assert_eq!(p.altitude_m, f64::from(f.altitude));
    prop_assert_eq!(
        p.attributes.get("event"),
        Some(&AttrValue::Int(f.event.into()))
    );
    prop_assert_eq!(
        p.attributes.get("odometer_m"),
        Some(&AttrValue::Int(f.mileage.into()))
    );
    prop_assert_eq!(&p.device_id, &imei());
    Ok(())
}

proptest! {
    #[test]
    fn aaa_round_trips(f in fix(), flag in b'A'..=b'z') {
        let frame = encode::frame(flag, IMEI, "AAA", &encode::aaa(&f));
        let d = decode(&frame).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(d.reply.accept, None);
        check(&f, &d.positions[0])?;
    }

    #[test]
    fn ccc_round_trips_with_the_exact_ack(fixes in prop::collection::vec(fix(), 0..30), flag in b'A'..=b'z') {
        let frame = encode::frame(flag, IMEI, "CCC", &encode::ccc(&fixes));
        let d = decode(&frame).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(d.positions.len(), fixes.len());
        for (f, p) in fixes.iter().zip(&d.positions) {
            check(f, p)?;
        }
        // `@@<flag><len>,IMEI,CCC,<n>*XX\r\n`, len through \r\n, XX the sum.
        let ack = d.reply.accept.clone().unwrap_or_default();
        let tail = format!(",{IMEI},CCC,{}*", fixes.len());
        let head = format!("@@{}{}{tail}", flag as char, tail.len() + 4);
        let sum = crate::protocol::checksum::sum8(head.as_bytes());
        prop_assert_eq!(String::from_utf8_lossy(&ack), format!("{head}{sum:02X}\r\n"));
    }

    #[test]
    fn cce_round_trips(fixes in prop::collection::vec(fix(), 0..10)) {
        let frame = encode::frame(b'Y', IMEI, "CCE", &encode::cce(&fixes));
        let d = decode(&frame).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(d.positions.len(), fixes.len());
        for (f, p) in fixes.iter().zip(&d.positions) {
            check(f, p)?;
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut s = session();
        let _ = s.decode(&bytes, &ctx());
        let mut buf = bytes::BytesMut::from(bytes.as_slice());
        while let Ok(Some(f)) = s.frame(&mut buf) {
            let _ = s.decode(&f, &ctx());
        }
    }

    #[test]
    fn arbitrary_payloads_in_a_valid_envelope_never_panic(
        cmd in prop_oneof![Just("AAA"), Just("CCC"), Just("CCE"), Just("AFF")],
        payload in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let _ = decode(&encode::frame(b'A', IMEI, cmd, &payload));
    }
}
