use proptest::prelude::*;

use super::*;
use crate::model::AttrValue;

fn gps() -> impl Strategy<Value = encode::Gps> {
    (
        (0u8..=99, 1u8..=12, 1u8..=28, 0u8..24, 0u8..60, 0u8..60),
        0u8..=15,
        0u32..=162_000_000,
        0u32..=324_000_000,
        any::<(bool, bool, bool)>(),
        any::<u8>(),
        0u16..360,
        (1u16..1000, any::<u8>(), 1u16..=u16::MAX, 0u32..=0xff_ffff),
    )
        .prop_map(
            |(
                t,
                satellites,
                lat,
                lon,
                (south, west, valid),
                speed,
                course,
                (mcc, mnc, lac, cid),
            )| encode::Gps {
                time: [t.0, t.1, t.2, t.3, t.4, t.5],
                satellites,
                lat,
                lon,
                south,
                west,
                speed,
                course,
                valid,
                mcc,
                mnc,
                lac,
                cid,
            },
        )
}

/// Whether a 78 78 frame has 0D 0A before its end (see frame.rs: such a
/// frame split right after it would be cut short).
fn inner_terminator(frame: &[u8]) -> bool {
    frame[..frame.len() - 2]
        .windows(2)
        .any(|w| w == [0x0d, 0x0a])
}

proptest! {
    #[test]
    fn gps_messages_round_trip(g in gps(), serial in any::<u16>()) {
        let frame = g.frame(serial);
        let d = decode(&frame).unwrap();
        let p = &d.positions[0];
        let t = Utc
            .with_ymd_and_hms(2000 + i32::from(g.time[0]), g.time[1].into(), g.time[2].into(), g.time[3].into(), g.time[4].into(), g.time[5].into())
            .unwrap();
        prop_assert_eq!(p.fix_time, t);
        let lat = f64::from(g.lat) / 1_800_000.0 * if g.south { -1.0 } else { 1.0 };
        let lon = f64::from(g.lon) / 1_800_000.0 * if g.west { -1.0 } else { 1.0 };
        prop_assert!((p.lat - lat).abs() < 1e-9);
        prop_assert!((p.lon - lon).abs() < 1e-9);
        prop_assert_eq!(p.speed_kmh, f64::from(g.speed));
        prop_assert_eq!(p.course_deg, f64::from(g.course));
        prop_assert_eq!(p.valid, g.valid);
        prop_assert_eq!(p.satellites, Some(g.satellites));
        let network = serde_json::json!([{"mcc": g.mcc, "mnc": g.mnc, "lac": g.lac, "cid": g.cid}]).to_string();
        prop_assert_eq!(p.attributes.get("network"), Some(&AttrValue::Text(network)));
        let mut expected = vec![0x78, 0x78, 0x05, 0x12];
        expected.extend_from_slice(&serial.to_be_bytes());
        let crc = crate::protocol::checksum::crc16_x25(&expected[2..]);
        expected.extend_from_slice(&crc.to_be_bytes());
        expected.extend_from_slice(&[0x0d, 0x0a]);
        prop_assert_eq!(d.reply.accept.as_deref(), Some(&expected[..]));
    }

    #[test]
    fn the_login_time_zone_applies_to_later_fixes(hours in 0u16..=12, west in any::<bool>(), g in gps()) {
        let word = (hours * 100) << 4 | if west { 0x08 } else { 0 };
        let mut s = session();
        s.decode(&encode::login(IMEI, Some(word), 1), &ctx()).unwrap();
        let d = s.decode(&g.frame(2), &ctx()).unwrap();
        let local = Utc
            .with_ymd_and_hms(2000 + i32::from(g.time[0]), g.time[1].into(), g.time[2].into(), g.time[3].into(), g.time[4].into(), g.time[5].into())
            .unwrap();
        let offset = chrono::Duration::hours(i64::from(hours)) * if west { -1 } else { 1 };
        prop_assert_eq!(d.positions[0].fix_time, local - offset);
    }

    #[test]
    fn any_split_of_a_valid_stream_gives_its_frames(gs in proptest::collection::vec(gps(), 1..5), cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..6)) {
        let mut frames_in = vec![encode::login(IMEI, None, 1)];
        for (i, g) in gs.iter().enumerate() {
            frames_in.push(g.frame(i as u16 + 2));
        }
        prop_assume!(frames_in.iter().all(|f| !inner_terminator(f)));
        let bytes = frames_in.concat();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len())).collect();
        points.push(bytes.len());
        points.sort_unstable();
        let mut s = session();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut from = 0;
        for to in points {
            buf.extend_from_slice(&bytes[from..to]);
            from = to;
            while let Some(f) = s.frame(&mut buf).unwrap() {
                got.push(f.to_vec());
            }
        }
        prop_assert_eq!(got, frames_in);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut s = logged_in();
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(f)) = s.frame(&mut buf) {
            let _ = s.decode(&f, &ctx());
        }
        let _ = s.decode(&bytes, &ctx());
    }
}
