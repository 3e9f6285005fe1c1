//! Property tests: generated locations (2013 and 2019 headers) decode back
//! to what was encoded, with the exact acknowledgement; arbitrary bytes and
//! any split of a valid stream never panic nor give a wrong frame.

use proptest::prelude::*;

use super::*;
use crate::protocols::jt808::encode::{self, Location};

fn location() -> impl Strategy<Value = Location> {
    (
        any::<u32>(),
        any::<bool>(),
        any::<bool>(),
        -90_000_000i32..=90_000_000,
        -180_000_000i32..=180_000_000,
        any::<i16>(),
        any::<u16>(),
        0u16..360,
        946_684_800i64..4_102_444_799, // 2000..2099
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(
            |(alarm, ignition, valid, lat_e6, lon_e6, altitude_m, speed, course, t, odo, sats)| {
                Location {
                    alarm,
                    ignition,
                    valid,
                    lat_e6,
                    lon_e6,
                    altitude_m,
                    speed,
                    course,
                    time: Utc.timestamp_opt(t, 0).unwrap(),
                    odometer_100m: odo,
                    satellites: sats,
                }
            },
        )
}

proptest! {
    #[test]
    fn generated_locations_round_trip(
        l in location(),
        serial in any::<u16>(),
        v2019 in any::<bool>(),
        phone in proptest::array::uniform6(0u8..=0x99),
    ) {
        let phone: Vec<u8> = phone.iter().map(|b| (b / 16 % 10) << 4 | (b % 10)).collect();
        let (version, terminal) = if v2019 {
            (Some(1u8), [vec![0u8; 4], phone.clone()].concat())
        } else {
            (None, phone.clone())
        };
        let body = encode::location_body(&l);
        let msg = encode::message(0x0200, version, &terminal, serial, &body);
        let mut r = run(&mut session(), &msg);
        prop_assert_eq!(r.len(), 1);
        let d = r.remove(0).unwrap();
        let p = &d.positions[0];
        prop_assert!((p.lat - f64::from(l.lat_e6) / 1e6).abs() < 1e-9);
        prop_assert!((p.lon - f64::from(l.lon_e6) / 1e6).abs() < 1e-9);
        prop_assert_eq!(p.altitude_m, f64::from(l.altitude_m));
        prop_assert!((p.speed_kmh - f64::from(l.speed) / 10.0).abs() < 1e-9);
        prop_assert_eq!(p.course_deg, f64::from(l.course));
        prop_assert_eq!(p.fix_time, l.time);
        prop_assert_eq!(p.valid, l.valid);
        prop_assert_eq!(p.satellites, l.satellites);
        prop_assert_eq!(
            p.attributes.get("odometer_m").cloned(),
            l.odometer_100m.map(|o| crate::model::AttrValue::Int(i64::from(o) * 100))
        );
        let text = hex::encode(&phone);
        let id = text.trim_start_matches('0');
        prop_assert_eq!(p.device_id.as_str(), if id.is_empty() { "0" } else { id });
        let mut ack = serial.to_be_bytes().to_vec();
        ack.extend_from_slice(&[0x02, 0x00, 0x00]);
        let expected = encode::message(0x8001, version, &terminal, 0, &ack);
        prop_assert_eq!(d.reply.accept.as_deref(), Some(expected.as_slice()));
    }

    #[test]
    fn any_prefix_of_a_valid_stream_is_a_wait_or_a_whole_frame(
        l in location(),
        cut in any::<prop::sample::Index>(),
    ) {
        let msg = encode::message(0x0200, None, &PHONE, 1, &encode::location_body(&l));
        let n = cut.index(msg.len());
        let mut buf = BytesMut::from(&msg[..n]);
        prop_assert!(matches!(session().frame(&mut buf), Ok(None)));
        let mut buf = BytesMut::from(msg.as_slice());
        let f = session().frame(&mut buf).unwrap().unwrap();
        let d = session().decode(&f, &ctx());
        prop_assert!(d.is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), start in 0u8..3) {
        let mut stream = vec![[0x7e, 0xe7, b'('][usize::from(start)]];
        stream.extend_from_slice(&bytes);
        stream.push(0x7e);
        let mut s = session();
        let mut buf = BytesMut::from(stream.as_slice());
        while let Ok(Some(f)) = s.frame(&mut buf) {
            let _ = s.decode(&f, &ctx());
        }
    }

    #[test]
    fn arbitrary_bodies_of_every_known_message_never_panic(
        id in prop::sample::select(vec![
            0x0001u16, 0x0002, 0x0100, 0x0102, 0x0104, 0x0107, 0x0109, 0x0200, 0x0201,
            0x0210, 0x0701, 0x0702, 0x0704, 0x0900, 0x1300, 0x2070, 0x5501, 0x5502, 0x6006,
        ]),
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let msg = encode::message(id, None, &PHONE, 1, &body);
        let _ = run(&mut session(), &msg);
    }
}
