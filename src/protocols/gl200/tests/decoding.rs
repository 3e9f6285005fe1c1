//! Decoding details the vectors do not pin down: exact values, the no-fix
//! rule, SACK settings, errors.

use super::*;
use crate::model::AttrValue;
use crate::protocol::{MessageKind, Reply};

fn decode(msg: &str, model: Option<&str>) -> Decoded {
    session(Transport::Udp, model)
        .decode(msg.as_bytes(), &ctx())
        .unwrap_or_else(|r| panic!("{msg}: {r:?}"))
}

fn attr<'a>(d: &'a Decoded, key: &str) -> Option<&'a AttrValue> {
    d.positions
        .first()
        .map(|p| &p.attributes)
        .or(d.reports.first().map(|r| &r.attributes))
        .and_then(|a| a.get(key))
}

#[test]
fn fri_values_lon_before_lat() {
    let d = decode("+RESP:GTFRI,060100,135790246811220,,,00,1,1,4.3,92,70.0,121.354335,31.222073,20090214013254,0460,0000,18d8,6141,00,2000.0,12345:12:34,,,80,210100,,,,20090214093254,11F0$", None);
    let [p] = d.positions.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(p.fix_time, at("2009-02-14T01:32:54Z"));
    assert_eq!((p.lat, p.lon), (31.222073, 121.354335));
    assert_eq!((p.speed_kmh, p.course_deg, p.altitude_m), (4.3, 92.0, 70.0));
    assert!(p.valid);
    assert_eq!(attr(&d, "odometer_m"), Some(&AttrValue::Float(2_000_000.0)));
    assert_eq!(
        attr(&d, "hours_s"),
        Some(&AttrValue::Int(12345 * 3600 + 12 * 60 + 34))
    );
    assert_eq!(attr(&d, "battery_level_pct"), Some(&AttrValue::Int(80)));
    assert_eq!(attr(&d, "ignition"), Some(&AttrValue::Bool(true)));
    assert_eq!(attr(&d, "type"), Some(&AttrValue::Text("FRI".into())));
    assert_eq!(
        attr(&d, "network"),
        Some(&AttrValue::Text(
            r#"[{"mcc":460,"mnc":0,"lac":6360,"cid":24897}]"#.into()
        ))
    );
    assert_eq!(d.reply, Reply::NONE);
}

#[test]
fn accuracy_zero_is_an_invalid_fix() {
    let d = decode("+RESP:GTFRI,060100,135790246811220,,,00,1,0,4.3,92,70.0,121.354335,31.222073,20090214013254,0460,0000,18d8,6141,00,,,,,80,210100,,,,20090214093254,11F0$", None);
    assert!(!d.positions[0].valid);
}

#[test]
fn a_report_without_fix_reuses_the_sessions_last_fix() {
    let mut s = session(Transport::Tcp, None);
    let empty = b"+RESP:GTFRI,120113,555564055560555,,1,1,1,,,,,,,,0282,0380,f080,cabf,6900,79,20140824165629,0001";
    // No fix yet in this session: a report, never a position at 0,0.
    let d = s.decode(empty, &ctx()).unwrap_or_else(|r| panic!("{r:?}"));
    assert!(d.positions.is_empty());
    assert_eq!(d.reports.len(), 1);
    assert_eq!(d.reports[0].time, at("2014-08-24T16:56:29Z"));
    s.decode(b"+RESP:GTFRI,060100,135790246811220,,,00,1,1,4.3,92,70.0,121.354335,31.222073,20090214013254,0460,0000,18d8,6141,00,,,,,80,210100,,,,20090214093254,11F0", &ctx())
        .unwrap_or_else(|r| panic!("{r:?}"));
    let d = s.decode(empty, &ctx()).unwrap_or_else(|r| panic!("{r:?}"));
    let p = &d.positions[0];
    assert!(!p.valid);
    assert_eq!((p.lat, p.lon), (31.222073, 121.354335));
    assert_eq!(p.fix_time, at("2014-08-24T16:56:29Z"));
    assert_eq!(p.attributes.get("outdated"), Some(&AttrValue::Bool(true)));
}

#[test]
fn other_reports_without_fix_are_reports() {
    let d = decode(
        "+RESP:GTPFA,F50201,866425030235982,GL300M,20190208124849,0BD4$",
        None,
    );
    assert!(d.positions.is_empty());
    assert_eq!(d.reports[0].time, at("2019-02-08T12:48:49Z"));
    assert_eq!(attr(&d, "alarm"), Some(&AttrValue::Text("powerOff".into())));
}

#[test]
fn sack_mode_and_model_come_from_the_port_model() {
    assert_eq!(Settings::from_model(None), Settings::default());
    assert_eq!(
        Settings::from_model(Some("gv350m+SACK")),
        Settings {
            model: Some("GV350M".into()),
            sack: true
        }
    );
    let msg = "+ACK:GTRTO,1A0800,860599000773978,GL300,VER,FFFF,20161006053520,0C19$";
    assert_eq!(decode(msg, None).reply, Reply::NONE);
    let d = decode(msg, Some("sack"));
    assert_eq!(d.kind, MessageKind::CommandResponse);
    assert_eq!(d.reply.accept.as_deref(), Some(&b"+SACK:0C19$"[..]));
    assert_eq!(attr(&d, "result"), Some(&AttrValue::Text("GTRTO".into())));
}

#[test]
fn the_model_setting_overrides_the_version() {
    // GV310LAU (6E) skips the field where other models put power2.
    let msg = "+RESP:GTINF,6E0202,868589060187625,RA82,11,89883030000091225018,41,0,1,12349,13000,4.15,0,1,0,0,20240328231013,0,0,0,0,00,00,+0000,0,20240328231015,7D4F";
    assert_eq!(attr(&decode(msg, None), "power2_v"), None);
    assert_eq!(
        attr(&decode(msg, Some("GV300")), "power2_v"),
        Some(&AttrValue::Float(13.0))
    );
}

#[test]
fn bad_messages_are_rejected_not_panicked() {
    let mut s = session(Transport::Udp, None);
    for (msg, kind) in [
        (&b"+RESP:GTFRI,060100,12345,,$"[..], "malformed"),
        (b"+XYZ:GTFRI,060100,135790246811220$", "unsupported"),
        (b"hello", "malformed"),
        (b"+RESP:\xff\xfe", "malformed"),
        (b"+RSP\x00\x00\x00\x00\x00\x00\x20", "length"),
    ] {
        let r = s
            .decode(msg, &ctx())
            .err()
            .unwrap_or_else(|| panic!("{msg:?} accepted"));
        assert_eq!(r.error.kind(), kind, "{msg:?}: {}", r.error);
        assert!(!r.close && r.reply.is_none());
    }
}

#[test]
fn binary_imei_is_read_as_decimal_pairs() {
    let evt = hex::decode("2b4556540c00fc1fbf005c4501010108563254030003430564312a41090100000000003f007dff75a11a025c6a7807e1070a14041202680003189c1ac500000000000000000000000000000000000007e1070b041134054e5c6e0d0a").unwrap_or_default();
    let d = session(Transport::Tcp, None)
        .decode(&evt, &ctx())
        .unwrap_or_else(|r| panic!("{r:?}"));
    assert_eq!(
        d.device.as_ref().map(|d| d.as_str()),
        Some("865084030003675")
    );
    let [p] = d.positions.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(p.fix_time, at("2017-07-10T20:04:18Z"));
    assert_eq!(
        (p.lat, p.lon, p.course_deg, p.altitude_m),
        (39.611, -9.068262, 63.0, 125.0)
    );
}

#[test]
fn pro_vector_values() {
    let f = hex::decode("2b000038000865134050947226820300030000216a3ed6f101895000521629fa8b28f402ac1a8e6a3ed6f100001600000010f505010ff824").unwrap_or_default();
    let d = session(Transport::Tcp, None)
        .decode(&f, &ctx())
        .unwrap_or_else(|r| panic!("{r:?}"));
    assert_eq!(
        d.device.as_ref().map(|d| d.as_str()),
        Some("865134050947226")
    );
    let [p] = d.positions.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!((p.lat, p.lon), (44.833422, -91.543308));
    assert_eq!(p.fix_time, at("2026-06-26T19:45:53Z"));
    assert!((p.altitude_m - 434.1).abs() < 1e-9);
    assert_eq!(p.satellites, Some(5));
    assert!(p.valid);
}
