//! Property tests: random valid text reports and Protocol Pro frames
//! decode to exactly the values encoded, over TCP (split anywhere) and UDP;
//! arbitrary bytes never panic the framer or the decoder.

use proptest::prelude::*;

use super::encode::{self, Point};
use super::*;
use crate::model::AttrValue;
use crate::protocol::MessageKind;

fn point() -> impl Strategy<Value = Point> {
    (
        1u8..=50,
        0u32..=9999,
        0u16..=359,
        -99_999i32..=99_999,
        -180_000_000i32..=180_000_000,
        -90_000_000i32..=90_000_000,
        946_684_800i64..2_000_000_000,
    )
        .prop_map(
            |(hdop, speed_dkmh, course, alt_dm, lon_u, lat_u, t)| Point {
                hdop,
                speed_dkmh,
                course,
                alt_dm,
                lon_u,
                lat_u,
                time: DateTime::from_timestamp(t, 0).unwrap_or_default(),
            },
        )
}

fn imei() -> impl Strategy<Value = String> {
    "[0-9]{15}"
}

fn assert_point(p: &crate::model::Position, e: &Point) {
    assert_eq!(p.fix_time, e.time);
    assert!(
        (p.lat - f64::from(e.lat_u) * 1e-6).abs() < 1e-9,
        "{} {}",
        p.lat,
        e.lat_u
    );
    assert!(
        (p.lon - f64::from(e.lon_u) * 1e-6).abs() < 1e-9,
        "{} {}",
        p.lon,
        e.lon_u
    );
    assert!((p.speed_kmh - f64::from(e.speed_dkmh) / 10.0).abs() < 1e-9);
    assert_eq!(p.course_deg, f64::from(e.course));
    assert!((p.altitude_m - f64::from(e.alt_dm) / 10.0).abs() < 1e-9);
    assert!(p.valid);
}

proptest! {
    #[test]
    fn text_reports_round_trip(
        imei in imei(),
        points in prop::collection::vec(point(), 1..4),
        battery in 0u8..=100,
        count in any::<u16>(),
        buffered in any::<bool>(),
        cut in any::<prop::sample::Index>(),
        sack in any::<bool>(),
    ) {
        let send = points[0].time;
        let msg = encode::fri(buffered, &imei, &points, battery, send, count);
        let bytes = msg.as_bytes();
        let model = sack.then_some("sack");
        let split = cut.index(bytes.len() + 1);
        let mut tcp = session(Transport::Tcp, model);
        let mut buf = BytesMut::new();
        let mut f = Vec::new();
        for part in [&bytes[..split], &bytes[split..]] {
            buf.extend_from_slice(part);
            while let Some(x) = tcp.frame(&mut buf).map_err(|e| TestCaseError::fail(e.to_string()))? {
                f.push(x.to_vec());
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(f.len(), 1);
        let mut udp = session(Transport::Udp, model);
        for (s, frame) in [(&mut tcp, &f[0][..]), (&mut udp, bytes)] {
            let d = s.decode(frame, &ctx()).map_err(|r| TestCaseError::fail(format!("{r:?}")))?;
            prop_assert_eq!(d.kind, MessageKind::Data);
            prop_assert_eq!(d.device.as_ref().map(|d| d.as_str()), Some(imei.as_str()));
            prop_assert_eq!(d.positions.len(), points.len());
            for (p, e) in d.positions.iter().zip(&points) {
                assert_point(p, e);
                prop_assert_eq!(p.attributes.get("buffered"), buffered.then_some(&AttrValue::Bool(true)));
            }
            let last = d.positions.last().map(|p| &p.attributes);
            prop_assert_eq!(last.and_then(|a| a.get("battery_level_pct")), Some(&AttrValue::Int(i64::from(battery))));
            prop_assert_eq!(last.and_then(|a| a.get("odometer_m")), Some(&AttrValue::Float(2_000_000.0)));
            let expected = sack.then(|| format!("+SACK:{count:04X}$"));
            prop_assert_eq!(d.reply.accept.as_deref(), expected.as_deref().map(str::as_bytes));
            prop_assert_eq!(d.reply.refuse.as_deref(), None);
        }
    }

    #[test]
    fn heartbeats_get_their_sack(imei in imei(), version in "[0-9A-F]{6}", count in any::<u16>(), p in point()) {
        let msg = encode::heartbeat(&version, &imei, p.time, count);
        let d = session(Transport::Udp, None).decode(msg.as_bytes(), &ctx())
            .map_err(|r| TestCaseError::fail(format!("{r:?}")))?;
        prop_assert_eq!(d.kind, MessageKind::Keepalive);
        let expected = format!("+SACK:GTHBD,{version},{count:04X}$");
        prop_assert_eq!(d.reply.accept.as_deref(), Some(expected.as_bytes()));
    }

    #[test]
    fn pro_frames_round_trip(imei in imei(), p in point(), sats in any::<u8>(), buffered in any::<bool>()) {
        let p = Point { alt_dm: p.alt_dm.clamp(-8_000_000, 8_000_000), speed_dkmh: p.speed_dkmh.min(65_535), ..p };
        let frame = encode::pro(buffered, &imei, &p, sats);
        let f = frames(&mut session(Transport::Tcp, None), &frame).unwrap_or_default();
        prop_assert_eq!(&f, &vec![frame.clone()]);
        let d = session(Transport::Tcp, None).decode(&frame, &ctx())
            .map_err(|r| TestCaseError::fail(format!("{r:?}")))?;
        prop_assert_eq!(d.device.as_ref().map(|d| d.as_str()), Some(imei.as_str()));
        let [pos] = d.positions.as_slice() else { return Err(TestCaseError::fail("one position")) };
        assert_point(pos, &p);
        prop_assert_eq!(pos.satellites, Some(sats));
        prop_assert_eq!(pos.attributes.get("buffered").is_some(), buffered);
        prop_assert_eq!(d.reply.accept.as_deref(), None);
    }

    #[test]
    fn pro_frames_with_a_bad_crc_are_rejected(imei in imei(), p in point(), flip in 1u8..=255) {
        let p = Point { alt_dm: 0, speed_dkmh: 0, ..p };
        let mut frame = encode::pro(false, &imei, &p, 5);
        let at = frame.len() - 2;
        frame[at] ^= flip;
        let r = session(Transport::Tcp, None).decode(&frame, &ctx());
        prop_assert!(matches!(r, Err(ref r) if r.error.kind() == "checksum" && r.reply.is_none() && !r.close), "{r:?}");
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), head in 0usize..6) {
        const HEADS: [&[u8]; 6] = [b"", b"+RESP:GTFRI,", b"+RSP", b"+EVT", b"+\x00\x00\x40", b"+ACK:GTHBD,"];
        let mut input = HEADS[head].to_vec();
        input.extend_from_slice(&bytes);
        let _ = session(Transport::Udp, None).decode(&input, &ctx());
        let _ = frames(&mut session(Transport::Tcp, None), &input);
    }

    #[test]
    fn mutated_vectors_never_panic(i in any::<prop::sample::Index>(), pos in any::<prop::sample::Index>(), b in any::<u8>()) {
        const SAMPLES: [&str; 3] = [
            "2b5253500700fc1fbf005d4501020209563254030003430564377e42071001000000000000007eff75a151025c6a8107e10801081a2a02680003189c1ac500000000000002100700000000000000000007e1080108241019e17ebe0d0a",
            "2b4556542d00fc1fbf0063450102020956325403000343056437f8220700000200000000010000160100f2007eff75a1f0025c6b1a07e1080108241a02680003189c1ac500000000000002100800000000000000000007e1080108241a19e24e4e0d0a",
            "2b494e4601fd7f0076676231303000000045010202090104020500004100054007e107150b061d0000003f010e02580000000000d0312a1013648935103226313921591f1200000000000302680003189c1ac3001b02680003189c1ac4000d02680003189c1ac5001207e107150b0d3704f658060d0a",
        ];
        let mut v = hex::decode(SAMPLES[i.index(SAMPLES.len())]).unwrap_or_default();
        let at = pos.index(v.len());
        v[at] = b;
        let _ = session(Transport::Udp, None).decode(&v, &ctx());
        let _ = frames(&mut session(Transport::Tcp, None), &v);
    }
}
