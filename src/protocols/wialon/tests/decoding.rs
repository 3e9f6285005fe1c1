//! Every message kind byte for byte, and bad input.

use super::*;
use crate::model::AttrValue;
use crate::protocol::{DecodeError, MessageKind};

#[test]
fn login_1_1_and_2_0_answer_al1_and_refuse_with_al0() {
    let mut s = session();
    let d = s.decode(b"#L#123456789012345;test\r\n", &ctx()).unwrap();
    assert_eq!(d.kind, MessageKind::Login);
    assert_eq!(d.device, Some(imei()));
    assert_eq!(d.reply.accept.as_deref(), Some(&b"#AL#1\r\n"[..]));
    assert_eq!(d.reply.refuse.as_deref(), Some(&b"#AL#0\r\n"[..]));

    let d = s.decode(b"#L#2.0;42001300083;;CE45\r\n", &ctx()).unwrap();
    assert_eq!(d.device, Some(DeviceId::new("42001300083").unwrap()));
    assert_eq!(reply(&d), b"#AL#1\r\n");
}

#[test]
fn a_login_without_an_id_is_refused_and_closes() {
    let r = session().decode(b"#L#;pass\r\n", &ctx()).unwrap_err();
    assert!(r.close);
    assert_eq!(r.reply.as_deref(), Some(&b"#AL#0\r\n"[..]));
    assert_eq!(r.error.kind(), "device_id");
}

#[test]
fn ping_answers_ap() {
    let d = decode("#P#\r\n").unwrap();
    assert_eq!(d.kind, MessageKind::Keepalive);
    assert_eq!(reply(&d), b"#AP#\r\n");
    assert_eq!(d.device, Some(imei()));
}

#[test]
fn short_data_has_exact_values_and_answers_asd1() {
    let d = decode("#SD#270413;205601;5544.6025;N;03739.6834;E;12.5;271;-3;4\r\n").unwrap();
    assert_eq!(reply(&d), b"#ASD#1\r\n");
    let [p] = d.positions.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2013, 4, 27, 20, 56, 1).unwrap()
    );
    assert!((p.lat - 55.743375).abs() < 1e-9, "{}", p.lat);
    assert!((p.lon - 37.66139).abs() < 1e-6, "{}", p.lon);
    assert_eq!(p.speed_kmh, 12.5);
    assert_eq!(p.course_deg, 271.0);
    assert_eq!(p.altitude_m, -3.0);
    assert_eq!(p.satellites, Some(4));
    assert!(p.valid);
    assert_eq!(p.device_id, imei());
    assert_eq!(p.received_time, ctx().received);
}

#[test]
fn southern_and_western_hemispheres_are_negative() {
    let d = decode("#SD#010120;000000;3350.0000;S;07030.0000;W;0;0;0;2\r\n").unwrap();
    let p = &d.positions[0];
    assert!((p.lat + 33.833333).abs() < 1e-6);
    assert!((p.lon + 70.5).abs() < 1e-9);
    assert!(!p.valid, "two satellites are not a valid fix");
}

#[test]
fn extended_data_with_2_0_crc_maps_params() {
    let line = "#D#220323;114150;2234.80479;N;11354.87786;E;0;NA;59;11;NA;NA;NA;;NA;d_battr:1:94,d_csq:1:21,di_light:1:1;E7C9\r\n";
    let d = decode(line).unwrap();
    assert_eq!(reply(&d), b"#AD#1\r\n");
    let p = &d.positions[0];
    assert_eq!(p.attributes.get("d_battr"), Some(&AttrValue::Int(94)));
    assert_eq!(p.attributes.get("di_light"), Some(&AttrValue::Int(1)));
    assert_eq!(p.altitude_m, 59.0);
    assert_eq!(p.satellites, Some(11));
}

#[test]
fn extended_fields_become_attributes() {
    let d = decode("#D#270413;205601;5544.6025;N;03739.6834;E;1;2;3;4;0.9;5;6;14.77,0.02,3.6;AB45DF01145;count1:1:564,fuel:2:45.8,hw:3:V4.5,temp:3:18,bat:1:99,motion:3:false\r\n").unwrap();
    let a = &d.positions[0].attributes;
    assert_eq!(a.get("hdop"), Some(&AttrValue::Float(0.9)));
    assert_eq!(a.get("input"), Some(&AttrValue::Int(5)));
    assert_eq!(a.get("output"), Some(&AttrValue::Int(6)));
    assert_eq!(a.get("adc1"), Some(&AttrValue::Float(14.77)));
    assert_eq!(a.get("adc3"), Some(&AttrValue::Float(3.6)));
    assert_eq!(
        a.get("driver_unique_id"),
        Some(&AttrValue::Text("AB45DF01145".into()))
    );
    assert_eq!(a.get("count1"), Some(&AttrValue::Int(564)));
    assert_eq!(a.get("fuel"), Some(&AttrValue::Float(45.8)));
    assert_eq!(a.get("hw"), Some(&AttrValue::Text("V4.5".into())));
    assert_eq!(a.get("device_temp_c"), Some(&AttrValue::Int(18)));
    assert_eq!(a.get("battery_level_pct"), Some(&AttrValue::Int(99)));
    assert_eq!(a.get("motion"), Some(&AttrValue::Bool(false)));
}

#[test]
fn cells_become_a_network_list_and_no_coordinates_a_report() {
    let d = decode("#D#NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;;NA;mnc1:1:02,mcc1:1:250,lac1:1:5901,cell_id1:1:45542,mcc3:1:333\r\n").unwrap();
    assert!(d.positions.is_empty());
    let [r] = d.reports.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(r.time, ctx().received);
    let Some(AttrValue::Text(json)) = r.attributes.get("network") else {
        panic!("{r:?}")
    };
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{"mcc": 250, "mnc": 2, "lac": 5901, "cid": 45542}])
    );
    assert_eq!(r.attributes.get("mcc3"), Some(&AttrValue::Int(333)));
}

#[test]
fn crc_mismatch_is_rejected_with_the_crc_error_answer() {
    let r = decode("#D#220323;114150;2234.80479;N;11354.87786;E;0;NA;59;11;NA;NA;NA;;NA;d_battr:1:94,d_csq:1:21,di_light:1:1;E7CA\r\n").unwrap_err();
    assert_eq!(
        r.error,
        DecodeError::Checksum {
            carried: 0xE7CA,
            computed: 0xE7C9
        }
    );
    assert_eq!(r.reply.as_deref(), Some(&b"#AD#16\r\n"[..]));
    assert!(!r.close);

    let r =
        decode("#SD#300924;154245;5554.350052;N;3644.670410;E;2.92;NA;NA;NA;7A02\r\n").unwrap_err();
    assert_eq!(r.error.kind(), "checksum");
    assert_eq!(r.reply.as_deref(), Some(&b"#ASD#14\r\n"[..]));
}

#[test]
fn malformed_records_answer_structure_error() {
    for (line, answer) in [
        ("#SD#270413;205601;5544.6025;N\r\n", &b"#ASD#-1\r\n"[..]),
        (
            "#SD#321399;205601;5544.6025;N;03739.6834;E;1;2;3;4\r\n",
            b"#ASD#-1\r\n",
        ),
        (
            "#D#270413;205601;9144.6025;N;03739.6834;E;1;2;3;4\r\n",
            b"#AD#-1\r\n",
        ),
        (
            "#D#270413;205601;5544.6025;X;03739.6834;E;1;2;3;4\r\n",
            b"#AD#-1\r\n",
        ),
        (
            "#D#270413;205601;5544.6025;N;03739.6834;E;-1;2;3;4\r\n",
            b"#AD#-1\r\n",
        ),
        (
            "#D#270413;205601;5544.6025;N;03739.6834;E;1;2;3;999\r\n",
            b"#AD#-1\r\n",
        ),
        (
            "#D#270413;205601;5544.6025;N;03739.6834;E;1;2;3;4;NA;NA;NA;NA;NA;nocolon\r\n",
            b"#AD#-1\r\n",
        ),
        (
            "#D#270413;205601;5544.6025;N;03739.6834;E;1;2;3;4;NA;NA;NA;NA;NA;a:9:1\r\n",
            b"#AD#-1\r\n",
        ),
    ] {
        let r = decode(line).unwrap_err();
        assert_eq!(r.error.kind(), "malformed", "{line}");
        assert_eq!(r.reply.as_deref(), Some(answer), "{line}");
        assert!(!r.close);
    }
}

#[test]
fn black_box_answers_the_record_count_and_marks_archive() {
    let d = decode("#B#080914;073235;5027.50625;N;03026.19321;E;0.700;0.000;NA;4;NA;NA;NA;;NA;Батарея:3:100 %|080914;073420;5027.50845;N;03026.18854;E;1.996;292.540;NA;4\r\n").unwrap();
    assert_eq!(reply(&d), b"#AB#2\r\n");
    assert_eq!(d.positions.len(), 2);
    assert_eq!(
        d.positions[0].attributes.get("батарея"),
        Some(&AttrValue::Text("100 %".into()))
    );
    assert!(d
        .positions
        .iter()
        .all(|p| p.attributes.get("archive") == Some(&AttrValue::Bool(true))));
}

#[test]
fn black_box_2_0_crc_is_checked() {
    let r1 = encode::short_body(&super::properties::sample());
    let covered = format!("{r1}|{r1}|");
    let crc = crate::protocol::checksum::crc16_ibm(covered.as_bytes());
    let d = decode(&format!("#B#{covered}{crc:04X}\r\n")).unwrap();
    assert_eq!(reply(&d), b"#AB#2\r\n");
    let r = decode(&format!("#B#{covered}{:04X}\r\n", crc ^ 1)).unwrap_err();
    assert_eq!(r.error.kind(), "checksum");
    assert_eq!(r.reply.as_deref(), Some(&b"#AB#0\r\n"[..]));
}

#[test]
fn message_becomes_a_report_and_answers_am1() {
    let d = decode("#M#hello operator\r\n").unwrap();
    assert_eq!(reply(&d), b"#AM#1\r\n");
    assert_eq!(
        d.reports[0].attributes.get("message"),
        Some(&AttrValue::Text("hello operator".into()))
    );
}

#[test]
fn data_before_login_closes_but_a_prefix_identifies() {
    let r = session()
        .decode(
            b"#SD#270413;205601;5544.6025;N;03739.6834;E;1;2;3;4\r\n",
            &ctx(),
        )
        .unwrap_err();
    assert_eq!(r.error, DecodeError::NotIdentified);
    assert!(r.close);
    for line in [
        "99999999#SD#270413;205601;5544.6025;N;03739.6834;E;1;2;3;4",
        "2.0;99999999#SD#270413;205601;5544.6025;N;03739.6834;E;1;2;3;4",
    ] {
        let d = session().decode(line.as_bytes(), &ctx()).unwrap();
        assert_eq!(d.device, Some(DeviceId::new("99999999").unwrap()));
        assert_eq!(d.positions[0].device_id, DeviceId::new("99999999").unwrap());
    }
}

#[test]
fn garbage_and_unknown_types_are_rejected_not_closed() {
    for (line, kind) in [
        ("hello\r\n", "malformed"),
        ("#D\r\n", "malformed"),
        ("#XYZ#1;2\r\n", "unsupported"),
        ("\u{1}\u{2}#D#\r\n", "device_id"),
    ] {
        let r = decode(line).unwrap_err();
        assert_eq!(r.error.kind(), kind, "{line:?}");
        assert!(!r.close, "{line:?}");
    }
}
