//! Every message kind byte for byte, the envelope checks, and bad input.

use super::*;
use crate::model::AttrValue;
use crate::protocol::{DecodeError, MessageKind};

const AAA: &[u8] = b"$$N127,863071013803066,AAA,35,-1.302680,36.852135,150409211026,A,9,0,0.1,0,5,1653,4096,32648,639|02|1004|90C,0000,0|0|0|3FF|300,*7C\r\n";

#[test]
fn aaa_has_exact_values_and_no_reply() {
    let d = decode(AAA).unwrap();
    assert_eq!(d.kind, MessageKind::Data);
    assert_eq!(d.reply, crate::protocol::Reply::NONE);
    let [p] = d.positions.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(p.device_id, DeviceId::new("863071013803066").unwrap());
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2015, 4, 9, 21, 10, 26).unwrap()
    );
    assert_eq!((p.lat, p.lon), (-1.30268, 36.852135));
    assert!(p.valid);
    assert_eq!(p.satellites, Some(9));
    assert_eq!(p.speed_kmh, 0.1);
    assert_eq!(p.course_deg, 0.0);
    assert_eq!(p.altitude_m, 1653.0);
    let a = &p.attributes;
    assert_eq!(a.get("event"), Some(&AttrValue::Int(35)));
    assert_eq!(a.get("alarm"), None);
    assert_eq!(a.get("hdop"), Some(&AttrValue::Float(5.0)));
    assert_eq!(a.get("odometer_m"), Some(&AttrValue::Int(4096)));
    assert_eq!(a.get("runtime_s"), Some(&AttrValue::Int(32648)));
    assert_eq!(a.get("battery_v"), Some(&AttrValue::Float(10.23)));
    assert_eq!(a.get("power_v"), Some(&AttrValue::Float(7.68)));
    let Some(AttrValue::Text(net)) = a.get("network") else {
        panic!("{a:?}")
    };
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(net).unwrap(),
        serde_json::json!([{"mcc": 639, "mnc": 2, "lac": 0x1004, "cid": 0x90c}])
    );
}

#[test]
fn model_scales_hex_battery_and_power() {
    let config = SessionConfig {
        model: Some("MVT380".into()),
        ..SessionConfig::new(Transport::Tcp)
    };
    let d = super::super::Session::new(&config)
        .decode(AAA, &ctx())
        .unwrap();
    let a = &d.positions[0].attributes;
    assert_eq!(
        a.get("battery_v"),
        Some(&AttrValue::Float(1023.0 * 6.0 / 1024.0))
    );
    assert_eq!(
        a.get("power_v"),
        Some(&AttrValue::Float(768.0 * 48.0 / 1024.0))
    );
}

#[test]
fn sos_event_is_an_alarm_and_a_missing_crlf_is_tolerated() {
    let f = encode::frame(
        b'A',
        IMEI,
        "AAA",
        &encode::aaa(&super::properties::sample()),
    );
    let mut f = f;
    let i = f.iter().position(|&b| b == b'A').unwrap();
    assert_eq!(i, 2);
    let d = decode(&f).unwrap();
    assert_eq!(
        d.positions[0].attributes.get("alarm"),
        Some(&AttrValue::Text("sos".into()))
    );
    f.truncate(f.len() - 2);
    assert!(decode(&f).is_ok(), "frame without its final \\r\\n");
}

#[test]
fn checksum_and_length_faults_are_rejected_and_not_acknowledged() {
    let mut bad = AAA.to_vec();
    let star = bad.len() - 5;
    bad[star + 2] = b'D';
    let r = decode(&bad).unwrap_err();
    assert_eq!(
        r.error,
        DecodeError::Checksum {
            carried: 0x7D,
            computed: 0x7C
        }
    );
    assert_eq!(r.reply, None);
    assert!(!r.close);

    let r = decode(b"$$z28,861451040910625,D82,0*D6").unwrap_err();
    assert_eq!(
        r.error,
        DecodeError::Length {
            declared: 28,
            actual: 25
        }
    );
    let r = decode(b"$$z27,861451040910625,AAC,1*D3\r\n\r\n").unwrap_err();
    assert_eq!(r.error.kind(), "length");
}

#[test]
fn ccc_batch_is_acked_with_its_count_and_flag() {
    let fixes = vec![super::properties::sample(); 12];
    let f = encode::frame(b'X', IMEI, "CCC", &encode::ccc(&fixes));
    let d = decode(&f).unwrap();
    assert_eq!(d.positions.len(), 12);
    assert_eq!(
        d.reply.accept.as_deref(),
        Some(&b"@@X28,861451040910625,CCC,12*20\r\n"[..])
    );
    assert_eq!(d.reply.refuse, None);
    let p = &d.positions[0];
    assert_eq!(p.attributes.get("battery_v"), Some(&AttrValue::Float(4.19)));
    assert_eq!(p.attributes.get("power_v"), Some(&AttrValue::Float(12.34)));
    assert_eq!(p.attributes.get("status"), Some(&AttrValue::Int(0x0102)));
}

#[test]
fn ccc_with_a_partial_record_is_a_length_error() {
    let mut payload = encode::ccc(&[super::properties::sample()]);
    payload.pop();
    let r = decode(&encode::frame(b'X', IMEI, "CCC", &payload)).unwrap_err();
    assert_eq!(r.error.kind(), "length");
}

#[test]
fn aac_is_answered_with_z27() {
    let d = decode(b"$$z27,861451040910625,AAC,1*D3\r\n").unwrap();
    assert_eq!(d.kind, MessageKind::Other);
    assert_eq!(
        d.reply.accept.as_deref(),
        Some(&b"@@z27,861451040910625,AAC,1*0B\r\n"[..])
    );
}

#[test]
fn cce_is_decoded_and_not_acked() {
    let fixes = vec![super::properties::sample(); 2];
    let d = decode(&encode::frame(b'Y', IMEI, "CCE", &encode::cce(&fixes))).unwrap();
    assert_eq!(d.positions.len(), 2);
    assert_eq!(d.reply, crate::protocol::Reply::NONE);
    assert_eq!(
        d.positions[1].attributes.get("index"),
        Some(&AttrValue::Int(1))
    );
}

#[test]
fn cce_records_that_overrun_are_malformed() {
    let mut payload = encode::cce(&[super::properties::sample()]);
    payload[6] += 1; // the record claims one byte more than there is
    let r = decode(&encode::frame(b'Y', IMEI, "CCE", &payload)).unwrap_err();
    assert_eq!(r.error.kind(), "malformed");
    let mut payload = encode::cce(&[super::properties::sample()]);
    payload.push(0);
    let r = decode(&encode::frame(b'Y', IMEI, "CCE", &payload)).unwrap_err();
    assert_eq!(r.error.kind(), "malformed");
}

#[test]
fn command_answers_become_result_reports() {
    let d = decode(b"$$D28,353358017784062,D03,OK*F3").unwrap();
    assert_eq!(d.kind, MessageKind::CommandResponse);
    assert!(d.positions.is_empty());
    assert_eq!(
        d.reports[0].attributes.get("result"),
        Some(&AttrValue::Text("D03,OK".into()))
    );
}

#[test]
fn bad_text_records_are_malformed() {
    for payload in [
        &b"35,-1.3,36.8"[..],
        b"35,-91.302680,36.852135,150409211026,A,9,0,0.1,0,5,1653,4096,32648,639|02|1004|90C,0000,0|0|0|3FF|300,",
        b"35,-1.302680,36.852135,151309211026,A,9,0,0.1,0,5,1653,4096,32648,639|02|1004|90C,0000,0|0|0|3FF|300,",
        b"35,-1.302680,36.852135,150409211026,X,9,0,0.1,0,5,1653,4096,32648,639|02|1004|90C,0000,0|0|0|3FF|300,",
        b"35,-1.302680,36.852135,150409211026,A,9,0,0.1,0,5,1653,4096,32648,639|02,0000,0|0|0|3FF|300,",
        b"35,-1.302680,36.852135,150409211026,A,9,0,0.1,0,5,1653,4096,32648,639|02|1004|90C,00Z0,0|0|0|3FF|300,",
        b"35,-1.302680,36.852135,150409211026,A,9,0,0.1,0,5,1653,4096,32648,639|02|1004|90C,0000,0|0,",
    ] {
        let r = decode(&encode::frame(b'A', IMEI, "AAA", payload)).unwrap_err();
        assert_eq!(r.error.kind(), "malformed", "{}", String::from_utf8_lossy(payload));
    }
}
