use super::*;
use crate::model::DeviceId;
use crate::protocol::MessageKind;

#[test]
fn login_is_echoed_with_its_serial_and_crc() {
    let mut s = session();
    // PROTOCOLS.md: login with serial 1 → 78 78 05 01 00 01 D9 DC 0D 0A.
    let d = s.decode(&encode::login(IMEI, None, 1), &ctx()).unwrap();
    assert_eq!(d.kind, MessageKind::Login);
    assert_eq!(d.device, Some(DeviceId::new(IMEI).unwrap()));
    assert_eq!(
        d.reply.accept.as_deref(),
        Some(&h("787805010001d9dc0d0a")[..])
    );
    assert_eq!(d.reply.refuse, None, "GT06 has no negative reply");
    assert_eq!(s.device(), Some(&DeviceId::new(IMEI).unwrap()));
}

#[test]
fn heartbeat_is_echoed_and_reports_status() {
    let d = decode(&encode::heartbeat(0x46, 4, 3, 0x0d0a)).unwrap();
    assert_eq!(d.kind, MessageKind::Keepalive);
    let expected = {
        let mut v = h("787805130d0a");
        let crc = crate::protocol::checksum::crc16_x25(&v[2..]);
        v.extend_from_slice(&crc.to_be_bytes());
        v.extend_from_slice(&[0x0d, 0x0a]);
        v
    };
    assert_eq!(d.reply.accept.as_deref(), Some(&expected[..]));
    let a = &d.reports[0].attributes;
    assert_eq!(a.get("status"), Some(&crate::model::AttrValue::Int(0x46)));
    assert_eq!(
        a.get("ignition"),
        Some(&crate::model::AttrValue::Bool(true))
    );
    assert_eq!(
        a.get("battery_level_pct"),
        Some(&crate::model::AttrValue::Int(66))
    );
    assert_eq!(a.get("rssi"), Some(&crate::model::AttrValue::Int(3)));
}

#[test]
fn extended_frames_are_answered_in_79_79_form() {
    // AZ735 0x33 alarm (Traccar capture): serial 01 09.
    let d = decode(&h("797900143311070609020b00000000a0030046000109e4610d0a")).unwrap();
    let mut expected = h("79790005330109");
    let crc = crate::protocol::checksum::crc16_x25(&expected[2..]);
    expected.extend_from_slice(&crc.to_be_bytes());
    expected.extend_from_slice(&[0x0d, 0x0a]);
    assert_eq!(d.reply.accept.as_deref(), Some(&expected[..]));
}

#[test]
fn time_request_gets_the_current_utc_time() {
    let d = decode(&h("7878058a000688290d0a")).unwrap();
    // 2026-05-06 07:08:09 UTC, serial 0.
    let mut expected = h("78780b8a1a05060708090000");
    let crc = crate::protocol::checksum::crc16_x25(&expected[2..]);
    expected.extend_from_slice(&crc.to_be_bytes());
    expected.extend_from_slice(&[0x0d, 0x0a]);
    assert_eq!(d.reply.accept.as_deref(), Some(&expected[..]));
}

#[test]
fn bad_crc_and_bad_length_are_rejected_without_a_reply() {
    let mut frame = encode::heartbeat(0x46, 4, 3, 9);
    let n = frame.len();
    frame[n - 3] ^= 0x01;
    let err = decode(&frame).unwrap_err();
    assert_eq!(err.error.kind(), "checksum");
    assert_eq!((err.reply, err.close), (None, false));

    // Length field says one byte more than the frame holds (CRC recomputed).
    let mut frame = encode::frame(false, 0x12, &[0; 26], 5);
    frame[2] += 1;
    let crc = crate::protocol::checksum::crc16_x25(&frame[2..frame.len() - 4]);
    let n = frame.len();
    frame[n - 4..n - 2].copy_from_slice(&crc.to_be_bytes());
    let err = decode(&frame).unwrap_err();
    assert_eq!(err.error.kind(), "length");
}

#[test]
fn data_before_login_is_not_acknowledged() {
    let err = session()
        .decode(&encode::heartbeat(0x46, 4, 3, 9), &ctx())
        .unwrap_err();
    assert_eq!(err.error.kind(), "not_identified");
    assert_eq!(err.reply, None);
}

#[test]
fn truncated_content_is_malformed_not_a_panic() {
    // A 0x12 GPS message cut to 5 content bytes, with a valid CRC.
    let err = decode(&encode::frame(
        false,
        0x12,
        &[0x1a, 0x05, 0x06, 0x07, 0x08],
        1,
    ))
    .unwrap_err();
    assert_eq!(err.error.kind(), "malformed");
    // Every protocol number over short content: never a panic.
    for proto in 0..=255u8 {
        for len in 0..40 {
            let content: Vec<u8> = (0..len)
                .map(|i| (i * 37 + usize::from(proto)) as u8)
                .collect();
            let _ = decode(&encode::frame(false, proto, &content, 1));
            let _ = decode(&encode::frame(true, proto, &content, 1));
        }
    }
}

#[test]
fn a_configured_time_zone_wins_over_the_login_one() {
    let g = encode::Gps {
        time: [26, 5, 6, 12, 0, 0],
        satellites: 7,
        lat: 90_000_000,
        lon: 45_000_000,
        south: false,
        west: false,
        speed: 0,
        course: 0,
        valid: true,
        mcc: 1,
        mnc: 1,
        lac: 1,
        cid: 1,
    };
    // Port at +03:00, login says +08:00 (0x320 << 4): the port's zone applies.
    let mut s = super::super::Session::new(&SessionConfig {
        time_zone: chrono::FixedOffset::east_opt(3 * 3600).unwrap(),
        ..SessionConfig::new(Transport::Tcp)
    });
    s.decode(&encode::login(IMEI, Some(0x3200), 1), &ctx())
        .unwrap();
    let d = s.decode(&g.frame(2), &ctx()).unwrap();
    assert_eq!(
        d.positions[0].fix_time,
        Utc.with_ymd_and_hms(2026, 5, 6, 9, 0, 0).unwrap()
    );
    // Port left at UTC: the login's +08:00 applies.
    let mut s = session();
    s.decode(&encode::login(IMEI, Some(0x3200), 1), &ctx())
        .unwrap();
    let d = s.decode(&g.frame(2), &ctx()).unwrap();
    assert_eq!(
        d.positions[0].fix_time,
        Utc.with_ymd_and_hms(2026, 5, 6, 4, 0, 0).unwrap()
    );
}
