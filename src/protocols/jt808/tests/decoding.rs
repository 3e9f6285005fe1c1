//! Messages byte for byte: replies, header forms, the time zone, rejections.

use super::*;
use crate::model::{AttrValue, DeviceId};
use crate::protocol::{DecodeError, MessageKind};
use crate::protocols::jt808::encode;

fn one(bytes: &[u8]) -> Result<Decoded, Rejected> {
    let mut r = run(&mut session(), bytes);
    assert_eq!(r.len(), 1);
    r.remove(0)
}

fn sample() -> encode::Location {
    encode::Location {
        alarm: 1, // SOS
        ignition: true,
        valid: true,
        lat_e6: 22_543_096,
        lon_e6: -114_057_865,
        altitude_m: 12,
        speed: 603,
        course: 90,
        time: Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap(),
        odometer_100m: Some(77),
        satellites: Some(11),
    }
}

#[test]
fn register_gets_8100_with_the_terminal_id_as_auth_code_or_no_such_terminal() {
    let d = one(&h("7e0100002d013511221122000500000000373031303748422d52303347424400000000000000000000003233363631303402cbd5424136383630387e")).unwrap();
    assert_eq!(d.kind, MessageKind::Login);
    assert_eq!(d.device, Some(DeviceId::new("13511221122").unwrap()));
    // 8100, len 15, id, our serial 0, request serial 5, result 0, "013511221122", XOR.
    let mut expected = h("7e8100000f0135112211220000000500");
    expected.extend_from_slice(b"013511221122");
    let x = crate::protocol::checksum::xor8(&expected[1..]);
    expected.extend_from_slice(&[x, 0x7e]);
    assert_eq!(d.reply.accept.as_deref(), Some(expected.as_slice()));
    // Refused: result 4, no auth code.
    let mut refused = h("7e810000030135112211220000000504");
    let x = crate::protocol::checksum::xor8(&refused[1..]);
    refused.extend_from_slice(&[x, 0x7e]);
    assert_eq!(d.reply.refuse.as_deref(), Some(refused.as_slice()));
}

#[test]
fn location_decodes_and_gets_8001_with_an_increasing_serial() {
    let body = encode::location_body(&sample());
    let msg = encode::message(0x0200, None, &PHONE, 0x1234, &body);
    let mut s = session();
    let mut r = run(&mut s, &[msg.clone(), msg].concat());
    let d = r.remove(0).unwrap();
    let p = &d.positions[0];
    assert!((p.lat - 22.543096).abs() < 1e-9);
    assert!((p.lon + 114.057865).abs() < 1e-9);
    assert_eq!(p.speed_kmh, 60.3);
    assert_eq!(p.course_deg, 90.0);
    assert_eq!(p.altitude_m, 12.0);
    assert_eq!(p.satellites, Some(11));
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
    );
    assert_eq!(
        p.attributes.get("alarm"),
        Some(&AttrValue::Text("sos".into()))
    );
    assert_eq!(p.attributes.get("ignition"), Some(&AttrValue::Bool(true)));
    assert_eq!(p.attributes.get("odometer_m"), Some(&AttrValue::Int(7700)));
    assert_eq!(
        d.reply.accept.as_deref(),
        Some(encode::message(0x8001, None, &PHONE, 0, &h("1234020000")).as_slice())
    );
    assert_eq!(
        d.reply.refuse.as_deref(),
        Some(encode::message(0x8001, None, &PHONE, 0, &h("1234020001")).as_slice())
    );
    let second = r.remove(0).unwrap();
    assert_eq!(
        second.reply.accept.as_deref(),
        Some(encode::message(0x8001, None, &PHONE, 1, &h("1234020000")).as_slice())
    );
}

#[test]
fn the_2019_form_has_a_version_byte_and_a_ten_byte_id_and_is_answered_alike() {
    let terminal = h("00000000013511221122");
    let body = encode::location_body(&sample());
    let d = one(&encode::message(0x0200, Some(1), &terminal, 3, &body)).unwrap();
    assert_eq!(d.device, Some(DeviceId::new("13511221122").unwrap()));
    assert_eq!(d.positions.len(), 1);
    assert_eq!(
        d.reply.accept.as_deref(),
        Some(encode::message(0x8001, Some(1), &terminal, 0, &h("0003020000")).as_slice())
    );
}

#[test]
fn local_time_follows_the_configured_zone() {
    let mut s = super::super::Session::new(&SessionConfig {
        time_zone: chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        ..SessionConfig::new(Transport::Tcp)
    });
    let body = encode::location_body(&sample());
    let d = run(&mut s, &encode::message(0x0200, None, &PHONE, 1, &body))
        .remove(0)
        .unwrap();
    assert_eq!(
        d.positions[0].fix_time,
        Utc.with_ymd_and_hms(2025, 1, 1, 19, 4, 5).unwrap()
    );
}

#[test]
fn a_batch_gives_every_entry_and_one_ack() {
    let a = encode::location_body(&sample());
    let mut b = sample();
    b.lat_e6 = -1_000_000;
    let b = encode::location_body(&b);
    let mut body = h("000201");
    for e in [&a, &b] {
        body.extend_from_slice(&(e.len() as u16).to_be_bytes());
        body.extend_from_slice(e);
    }
    let d = one(&encode::message(0x0704, None, &PHONE, 9, &body)).unwrap();
    assert_eq!(d.positions.len(), 2);
    assert_eq!(d.positions[1].lat, -1.0);
    assert_eq!(
        d.positions[0].attributes.get("archive"),
        Some(&AttrValue::Bool(true))
    );
    assert_eq!(
        d.reply.accept.as_deref(),
        Some(encode::message(0x8001, None, &PHONE, 0, &h("0009070400")).as_slice())
    );
}

#[test]
fn unknown_messages_are_answered_not_supported() {
    let d = one(&encode::message(0x0f0f, None, &PHONE, 2, &[1, 2, 3])).unwrap();
    assert_eq!(d.kind, MessageKind::Other);
    let expected = encode::message(0x8001, None, &PHONE, 0, &h("00020f0f03"));
    assert_eq!(d.reply.accept.as_deref(), Some(expected.as_slice()));
    assert_eq!(d.reply.refuse.as_deref(), Some(expected.as_slice()));
}

#[test]
fn time_sync_is_answered_with_the_receive_time() {
    let d = one(&encode::message(0x0109, None, &PHONE, 2, &[])).unwrap();
    // 2026-05-06 07:08:09 UTC, result 0.
    let expected = encode::message(0x8109, None, &PHONE, 0, &h("07ea050607080900"));
    assert_eq!(d.reply.accept.as_deref(), Some(expected.as_slice()));
}

#[test]
fn checksum_and_length_failures_are_rejected_with_message_error() {
    let body = encode::location_body(&sample());
    let mut msg = encode::message(0x0200, None, &PHONE, 7, &body);
    let n = msg.len();
    msg[n - 2] ^= 0x40;
    let r = one(&msg).unwrap_err();
    assert!(matches!(r.error, DecodeError::Checksum { .. }), "{r:?}");
    assert!(!r.close);
    assert_eq!(
        r.reply.as_deref(),
        Some(encode::message(0x8001, None, &PHONE, 0, &h("0007020002")).as_slice())
    );

    // Declared length one more than sent (XOR fixed up).
    let mut c = crate::protocols::jt808::tests::h("0200");
    c.extend_from_slice(&((body.len() + 1) as u16).to_be_bytes());
    c.extend_from_slice(&PHONE);
    c.extend_from_slice(&[0, 7]);
    c.extend_from_slice(&body);
    c.push(crate::protocol::checksum::xor8(&c));
    let mut msg = vec![0x7e];
    crate::protocols::jt808::frame::escape_into(&mut msg, &c, 0x7e);
    msg.push(0x7e);
    let r = one(&msg).unwrap_err();
    assert!(matches!(r.error, DecodeError::Length { .. }), "{r:?}");
}

#[test]
fn truncated_and_short_messages_are_rejected_never_panic() {
    for bad in [
        h("7e7e"),
        h("7e007e"),
        h("7e0200000601351122117e"),
        // A location whose body stops inside the basic information (XOR right).
        encode::message(0x0200, None, &PHONE, 1, &[0; 10]),
        encode::message(0x0704, None, &PHONE, 1, &h("0001000050")),
        encode::message(0x0900, None, &PHONE, 1, &[]),
    ] {
        let mut s = session();
        for r in run(&mut s, &bad) {
            let e = r.unwrap_err();
            assert!(
                matches!(e.error, DecodeError::Malformed { .. }),
                "{}: {e:?}",
                hex::encode(&bad)
            );
        }
    }
}

#[test]
fn text_results_need_an_id_and_time_requests_are_echoed() {
    let d = one(b"(794104004140,1,001,BASE,2,TIME)").unwrap();
    assert_eq!(
        d.reply.accept.as_deref(),
        Some(&b"(794104004140,1,001,BASE,2,20260506070809)"[..])
    );
    let r = one(b"(ABC,1,001,ELOCK)").unwrap_err();
    assert_eq!(r.error, DecodeError::NotIdentified);
}
