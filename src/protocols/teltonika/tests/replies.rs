//! Every message kind decoded to exact values, and its reply byte for byte.
//! Inputs are the examples of Teltonika's "Codec" documentation (CRCs and
//! lengths verified) and Traccar captures.

use chrono::DateTime;

use super::*;
use crate::model::AttrValue;
use crate::protocol::{MessageKind, Reply, Verdict};

fn attr<'a>(a: &'a crate::model::Attributes, name: &str) -> &'a AttrValue {
    a.get(name)
        .unwrap_or_else(|| panic!("no attribute {name} in {a:?}"))
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

#[test]
fn login_accepts_with_01_refuses_with_00_and_is_remembered() {
    let mut s = session(Transport::Tcp);
    let d = s
        .decode(&h("000f333536333037303432343431303133"), &ctx())
        .unwrap();
    assert_eq!(d.kind, MessageKind::Login);
    assert_eq!(d.device, Some(imei()));
    assert!(d.positions.is_empty() && d.reports.is_empty());
    assert_eq!(
        d.reply.for_verdict(Verdict::Accepted).map(|b| b.as_ref()),
        Some(&[0x01][..])
    );
    assert_eq!(
        d.reply.for_verdict(Verdict::Refused).map(|b| b.as_ref()),
        Some(&[0x00][..])
    );
    assert_eq!(d.reply.for_verdict(Verdict::Failed), None);
    assert_eq!(s.device(), Some(&imei()));
}

#[test]
fn keepalive_gets_no_reply() {
    let d = decode_tcp(&[0xff]).unwrap();
    assert_eq!(d.kind, MessageKind::Keepalive);
    assert_eq!(d.reply, Reply::NONE);
    assert_eq!(d.device, Some(imei()));
}

#[test]
fn codec8_documentation_example() {
    let d = decode_tcp(&h("000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF")).unwrap();
    assert_eq!(d.kind, MessageKind::Data);
    assert_eq!(d.device, Some(imei()));
    assert_eq!(d.reply.accept.as_deref(), Some(&[0, 0, 0, 1][..]));
    assert_eq!(d.reply.refuse, None);
    let [p] = d.positions.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(p.device_id, imei());
    assert_eq!(p.fix_time, time(0x016B_40D8_EA30));
    assert_eq!(p.fix_time.to_rfc3339(), "2019-06-10T10:04:46+00:00");
    assert_eq!(p.received_time, ctx().received);
    assert_eq!(
        (p.lat, p.lon, p.altitude_m, p.course_deg, p.speed_kmh),
        (0.0, 0.0, 0.0, 0.0, 0.0)
    );
    assert_eq!(p.satellites, Some(0));
    assert!(!p.valid, "no satellites: not valid");
    assert_eq!(p.protocol, "teltonika");
    let a = &p.attributes;
    assert_eq!(attr(a, "priority"), &AttrValue::Int(1));
    assert_eq!(attr(a, "event_io"), &AttrValue::Int(1));
    assert_eq!(attr(a, "io21"), &AttrValue::Int(3));
    assert_eq!(attr(a, "gsm_signal"), &AttrValue::Int(3));
    assert_eq!(attr(a, "io1"), &AttrValue::Int(1));
    assert_eq!(attr(a, "din1"), &AttrValue::Bool(true));
    assert_eq!(attr(a, "io66"), &AttrValue::Int(0x5E0F));
    assert_eq!(attr(a, "power_v"), &AttrValue::Float(24.079));
    assert_eq!(attr(a, "io241"), &AttrValue::Int(0x601A));
    assert_eq!(attr(a, "io78"), &AttrValue::Int(0));
    assert_eq!(
        a.get("driver_unique_id"),
        None,
        "an all-zero iButton is no driver"
    );
    assert_eq!(attr(a, "gsm_operator"), &AttrValue::Int(0x601A));
    // priority, event, 5 IO elements, 4 named twins.
    assert_eq!(a.len(), 2 + 5 + 4);
    assert_eq!(a.iter().count(), 2 + 5 + 4);
    assert_eq!(a.stored().count(), 2 + 5, "twins are derived, not stored");
    // Each twin follows its raw element in the public JSON form.
    assert_eq!(
        serde_json::to_string(a).unwrap(),
        concat!(
            r#"{"priority":1,"event_io":1,"io21":3,"gsm_signal":3,"io1":1,"din1":true,"#,
            r#""io66":24079,"power_v":24.079,"io241":24602,"gsm_operator":24602,"io78":0}"#
        )
    );
}

#[test]
fn codec8_extended_documentation_example() {
    let d = decode_tcp(&h("000000000000004A8E010000016B412CEE000100000000000000000000000000000000010005000100010100010011001D00010010015E2C880002000B000000003544C87A000E000000001DD7E06A00000100002994")).unwrap();
    assert_eq!(d.reply.accept.as_deref(), Some(&[0, 0, 0, 1][..]));
    let [p] = d.positions.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(p.fix_time, time(0x016B_412C_EE00));
    let a = &p.attributes;
    assert_eq!(attr(a, "event_io"), &AttrValue::Int(1));
    assert_eq!(attr(a, "io1"), &AttrValue::Int(1));
    assert_eq!(attr(a, "io17"), &AttrValue::Int(0x1D));
    assert_eq!(attr(a, "axis_x_mg"), &AttrValue::Int(0x1D));
    assert_eq!(attr(a, "io16"), &AttrValue::Int(0x015E_2C88));
    assert_eq!(attr(a, "odometer_m"), &AttrValue::Int(22_949_000));
    assert_eq!(attr(a, "io11"), &AttrValue::Int(0x3544_C87A));
    assert_eq!(attr(a, "io14"), &AttrValue::Int(0x1DD7_E06A));
}

#[test]
fn codec16_documentation_example() {
    let d = decode_tcp(&h("000000000000005F10020000016BDBC7833000000000000000000000000000000000000B05040200010000030002000B00270042563A00000000016BDBC7871800000000000000000000000000000000000B05040200010000030002000B00260042563A00000200005FB3")).unwrap();
    assert_eq!(d.reply.accept.as_deref(), Some(&[0, 0, 0, 2][..]));
    let [p1, p2] = d.positions.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(p1.fix_time, time(0x016B_DBC7_8330));
    assert_eq!(p2.fix_time, time(0x016B_DBC7_8718));
    for (p, io11) in [(p1, 0x27), (p2, 0x26)] {
        let a = &p.attributes;
        assert_eq!(attr(a, "event_io"), &AttrValue::Int(0x0B));
        assert_eq!(attr(a, "generation_type"), &AttrValue::Int(5));
        assert_eq!(attr(a, "io1"), &AttrValue::Int(0));
        assert_eq!(attr(a, "io3"), &AttrValue::Int(0));
        assert_eq!(attr(a, "io11"), &AttrValue::Int(io11));
        assert_eq!(attr(a, "power_v"), &AttrValue::Float(22.074));
    }
}

#[test]
fn codec12_response_is_a_report_without_ack() {
    let d = decode_tcp(&h("00000000000000370C01060000002F4449313A31204449323A30204449333A302041494E313A302041494E323A313639323420444F313A3020444F323A3101000066E3")).unwrap();
    assert_eq!(d.kind, MessageKind::CommandResponse);
    assert_eq!(d.reply, Reply::NONE);
    assert!(d.positions.is_empty());
    let [r] = d.reports.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(r.device_id, imei());
    assert_eq!(r.time, ctx().received, "codec 12 has no time of its own");
    assert_eq!(attr(&r.attributes, "response_type"), &AttrValue::Int(6));
    assert_eq!(
        attr(&r.attributes, "result"),
        &AttrValue::Text("DI1:1 DI2:0 DI3:0 AIN1:0 AIN2:16924 DO1:0 DO2:1".into())
    );
}

#[test]
fn codec12_binary_response_is_hex() {
    let d = decode_tcp(&h(
        "00000000000000100c010600000008010300010015d5c5010000d988",
    ))
    .unwrap();
    let [r] = d.reports.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(
        attr(&r.attributes, "result"),
        &AttrValue::Text("010300010015d5c5".into())
    );
}

#[test]
fn codec13_driver_id_and_timestamp() {
    let d = decode_tcp(&h("00000000000000240d01060000001c642b3ad14754534c7c367c317c307c31323734393838347c317c0d0a010000ec11")).unwrap();
    assert_eq!(d.kind, MessageKind::CommandResponse);
    assert_eq!(d.reply, Reply::NONE);
    let [r] = d.reports.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(r.time, DateTime::from_timestamp(0x642b_3ad1, 0).unwrap());
    assert_eq!(
        attr(&r.attributes, "driver_unique_id"),
        &AttrValue::Text("12749884".into())
    );
    assert_eq!(r.attributes.get("result"), None);
}

#[test]
fn camera_packets_are_recognised_not_fetched() {
    // Subtype 0: nothing to report.
    let d = decode_tcp(&h("00000000000000090c010d00000001000100000cd8")).unwrap();
    assert_eq!(d.kind, MessageKind::Other);
    assert_eq!(d.reply, Reply::NONE);
    assert!(d.positions.is_empty() && d.reports.is_empty());
    // Subtype 1 (photo 0x598493ed of 2059 bytes announced): one report.
    let data = h("0c010d0000000901598493ed0000080b01");
    let d = decode_tcp(&encode::tcp_packet(&data)).unwrap();
    assert_eq!(d.kind, MessageKind::Other);
    assert_eq!(d.reply, Reply::NONE);
    let [r] = d.reports.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(
        attr(&r.attributes, "photo_id"),
        &AttrValue::Int(0x5984_93ed)
    );
    assert_eq!(
        attr(&r.attributes, "photo_size_bytes"),
        &AttrValue::Int(2059)
    );
}

#[test]
fn gh3000_records_with_and_without_a_fix() {
    let d = decode_tcp(&h("0000000000000055070450aa14320201f00150aa17f3031f42332a4c4193d68c008d00020901f00150aa1b6a031f423383f54193624f009d00000a01f00150aa1c230fc01a0000552b040164f400dd00f0010143100c0105000000050400006846")).unwrap();
    assert_eq!(
        d.reply.accept.as_deref(),
        Some(&[0, 0, 0, 4][..]),
        "all four records acknowledged"
    );
    let [p1, _] = d.positions.as_slice() else {
        panic!("{d:?}")
    };
    // 0x50aa17f3 & 0x3fffffff = 0x10aa17f3 seconds after 2007-01-01.
    assert_eq!(
        p1.fix_time,
        DateTime::from_timestamp(1_167_609_600 + 0x10aa_17f3, 0).unwrap()
    );
    assert_eq!(p1.lat, f64::from(f32::from_bits(0x4233_2a4c)));
    assert_eq!(p1.lon, f64::from(f32::from_bits(0x4193_d68c)));
    assert_eq!(
        (p1.altitude_m, p1.course_deg, p1.speed_kmh, p1.satellites),
        (141.0, 0.0, 2.0, Some(9))
    );
    assert!(p1.valid);
    assert_eq!(attr(&p1.attributes, "motion"), &AttrValue::Bool(true));
    let [no_location, no_coordinates] = d.reports.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(
        no_location.time,
        DateTime::from_timestamp(1_167_609_600 + 0x10aa_1432, 0).unwrap()
    );
    let a = &no_coordinates.attributes;
    assert_eq!(attr(a, "gsm_signal"), &AttrValue::Int(0x1a));
    assert_eq!(attr(a, "gsm_operator"), &AttrValue::Int(0x552b));
    assert_eq!(attr(a, "battery_level_pct"), &AttrValue::Int(100));
    assert_eq!(attr(a, "battery_v"), &AttrValue::Float(4.108));
    assert_eq!(attr(a, "io5"), &AttrValue::Int(5));
}

#[test]
fn udp_documentation_example_ack_echoes_both_ids() {
    let mut s = session(Transport::Udp);
    let d = s
        .decode(&h("003DCAFE0105000F33353230393330383634303336353508010000016B4F815B30010000000000000000000000000000000103021503010101425DBC000001"), &ctx())
        .unwrap();
    assert_eq!(d.kind, MessageKind::Data);
    assert_eq!(d.device, Some(DeviceId::new("352093086403655").unwrap()));
    assert_eq!(d.reply.accept.as_deref(), Some(&h("0005CAFE010501")[..]));
    assert_eq!(d.reply.refuse, None);
    let [p] = d.positions.as_slice() else {
        panic!("{d:?}")
    };
    assert_eq!(p.device_id.as_str(), "352093086403655");
    assert_eq!(p.fix_time, time(0x016B_4F81_5B30));
    assert_eq!(attr(&p.attributes, "power_v"), &AttrValue::Float(23.996));
}

#[test]
fn named_attributes_convert_units_and_signs() {
    use super::super::io::{fixed_entry, fm, gh3000};
    let mut attributes = crate::model::Attributes::new();
    attributes.set_namer(fm);
    attributes.extend([
        fixed_entry(10800, 0xfb5d),
        fixed_entry(72, 0xffff_ff9c),
        fixed_entry(78, 0x0100_0B00_791C_1793),
        fixed_entry(239, 1),
        fixed_entry(9999, u64::MAX),
        fixed_entry(17, 0xffff_ffe3),
        fixed_entry(18, 0x0001_0000),
    ]);
    let a = attributes;
    assert_eq!(attr(&a, "eye_temp1_c"), &AttrValue::Float(-11.87));
    assert_eq!(attr(&a, "dallas_temp1_c"), &AttrValue::Float(-10.0));
    assert_eq!(
        attr(&a, "driver_unique_id"),
        &AttrValue::Text("93171C79000B0001".into())
    );
    assert_eq!(attr(&a, "ignition"), &AttrValue::Bool(true));
    assert_eq!(
        attr(&a, "io9999"),
        &AttrValue::UInt(u64::MAX),
        "an 8-byte value is the raw unsigned integer"
    );
    assert_eq!(
        attr(&a, "axis_x_mg"),
        &AttrValue::Int(-29),
        "sign-extended in a 4-byte group"
    );
    assert_eq!(
        attr(&a, "axis_y_mg"),
        &AttrValue::Int(65_536),
        "too wide for its 2 bytes: read at the width it needs"
    );
    let mut gh = crate::model::Attributes::new();
    gh.set_namer(gh3000);
    gh.extend([fixed_entry(1, 55)]);
    assert_eq!(attr(&gh, "battery_level_pct"), &AttrValue::Int(55));
}
