//! Packets byte for byte: replies, records, extended records, rejections.

use super::*;
use crate::model::AttrValue;
use crate::protocol::{DecodeError, FrameError, MessageKind};
use crate::protocols::ruptela::encode::{self, Record};

fn record() -> Record {
    Record {
        time: 1_700_000_000,
        lon: 253_456_789,
        lat: 546_543_210,
        altitude: 1234,
        course: 27_050,
        satellites: 9,
        speed: 88,
        hdop: 12,
        event: 7,
        io: [
            vec![(2, 1)],
            vec![(29, 12_345)],
            vec![(65, 100_000)],
            vec![(126, 0x3031_3233_3435_3637), (127, 0x3839_4142_4344_4546)],
        ],
    }
}

#[test]
fn the_records_ack_is_the_documented_constant() {
    assert_eq!(
        crate::protocols::ruptela::packet::records_ack().as_ref(),
        h("0002640113bc")
    );
    assert_eq!(
        super::super::reply::encode(9, 1).as_ref(),
        h("00026d01c4a4")
    );
}

#[test]
fn records_decode_with_io_twins_and_the_fixed_ack() {
    let d = run(&encode::packet(
        IMEI,
        1,
        &encode::records(&[record()], false),
    ))
    .remove(0)
    .unwrap();
    assert_eq!(d.kind, MessageKind::Data);
    assert_eq!(d.device.as_ref().unwrap().as_str(), "013226005504143");
    let p = &d.positions[0];
    assert_eq!(p.fix_time, Utc.timestamp_opt(1_700_000_000, 0).unwrap());
    assert!((p.lat - 54.654321).abs() < 1e-9);
    assert!((p.lon - 25.3456789).abs() < 1e-9);
    assert_eq!(p.altitude_m, 123.4);
    assert_eq!(p.course_deg, 270.5);
    assert_eq!(p.speed_kmh, 88.0);
    assert_eq!(p.satellites, Some(9));
    let a = &p.attributes;
    assert_eq!(a.get("hdop"), Some(&AttrValue::Float(1.2)));
    assert_eq!(a.get("event"), Some(&AttrValue::Int(7)));
    assert_eq!(a.get("io29"), Some(&AttrValue::Int(12_345)));
    assert_eq!(a.get("power_v"), Some(&AttrValue::Float(12.345)));
    assert_eq!(a.get("odometer_m"), Some(&AttrValue::Int(100_000)));
    assert_eq!(a.get("din1"), Some(&AttrValue::Int(1)));
    assert_eq!(
        a.get("driver_unique_id"),
        Some(&AttrValue::Text("0123456789ABCDEF".into()))
    );
    assert_eq!(d.reply.accept.as_deref(), Some(&h("0002640113bc")[..]));
    assert_eq!(d.reply.refuse, None, "an unknown device gets no ack");
}

#[test]
fn extended_records_merge_their_parts_and_get_the_records_ack() {
    let mut data = encode::records(&[record(), record()], true);
    // Second record: record extension 0x22 = part 2 of 2 → merged into the first.
    let second = 2 + (data.len() - 2) / 2;
    data[second + 5] = 0x22;
    let d = run(&encode::packet(IMEI, 68, &data)).remove(0).unwrap();
    assert_eq!(d.positions.len(), 1);
    assert_eq!(d.reply.accept.as_deref(), Some(&h("0002640113bc")[..]));
}

#[test]
fn a_record_without_a_fix_is_a_report() {
    let mut r = record();
    r.lat = i32::MIN;
    r.lon = i32::MIN;
    let d = run(&encode::packet(IMEI, 1, &encode::records(&[r], false)))
        .remove(0)
        .unwrap();
    assert!(d.positions.is_empty());
    assert_eq!(d.reports.len(), 1);
    assert_eq!(
        d.reports[0].attributes.get("event"),
        Some(&AttrValue::Int(7))
    );
}

#[test]
fn identification_and_heartbeat_get_their_replies() {
    let d = run(&encode::packet(IMEI, 15, &[0; 10])).remove(0).unwrap();
    assert_eq!(d.kind, MessageKind::Login);
    assert_eq!(d.reply.accept, Some(super::super::reply::encode(15, 1)));
    assert_eq!(d.reply.accept.as_deref().unwrap()[..4], h("00027301"));
    assert_eq!(d.reply.refuse, Some(super::super::reply::encode(15, 0)));
    let d = run(&encode::packet(IMEI, 16, &[])).remove(0).unwrap();
    assert_eq!(d.kind, MessageKind::Keepalive);
    assert_eq!(d.reply.accept.as_deref().unwrap()[..4], h("00027401"));
}

#[test]
fn a_bad_crc_is_rejected_with_the_negative_ack() {
    let mut p = encode::packet(IMEI, 1, &encode::records(&[record()], false));
    let n = p.len();
    p[n - 1] ^= 0x55;
    let r = run(&p).remove(0).unwrap_err();
    assert!(matches!(r.error, DecodeError::Checksum { .. }));
    assert!(!r.close);
    assert_eq!(r.reply.as_deref(), Some(&h("000264000235")[..]));
}

#[test]
fn truncated_records_are_malformed_not_a_panic() {
    let data = encode::records(&[record()], false);
    for cut in 0..data.len() {
        let r = run(&encode::packet(IMEI, 1, &data[..cut])).remove(0);
        assert!(
            matches!(
                r,
                Err(Rejected {
                    error: DecodeError::Malformed { .. } | DecodeError::Length { .. },
                    ..
                })
            ),
            "cut {cut}: {r:?}"
        );
    }
}

#[test]
fn framer_waits_for_every_prefix_and_refuses_impossible_lengths() {
    let p = encode::packet(IMEI, 1, &encode::records(&[record()], false));
    for n in 0..p.len() {
        let mut buf = BytesMut::from(&p[..n]);
        assert!(matches!(session().frame(&mut buf), Ok(None)), "prefix {n}");
        assert_eq!(buf.len(), n);
    }
    let mut buf = BytesMut::from(&p[..]);
    assert_eq!(
        session().frame(&mut buf).unwrap().unwrap().as_ref(),
        p.as_slice()
    );
    let mut buf = BytesMut::from(&h("0003aabbcc")[..]);
    assert!(matches!(
        session().frame(&mut buf),
        Err(FrameError::Garbage(_))
    ));
    let mut s = super::super::Session::new(&SessionConfig {
        max_frame_bytes: 64,
        ..SessionConfig::new(Transport::Tcp)
    });
    let mut buf = BytesMut::from(&h("0100")[..]);
    assert!(matches!(
        s.frame(&mut buf),
        Err(FrameError::TooLarge { .. })
    ));
}
