//! Each message kind with exact values, reply bytes and rejections.

use super::*;
use crate::model::AttrValue;
use crate::protocol::{DecodeError, MessageKind};

fn attr<'a>(d: &'a Decoded, name: &str) -> Option<&'a AttrValue> {
    d.positions
        .first()
        .map(|p| &p.attributes)
        .or(d.reports.first().map(|r| &r.attributes))
        .and_then(|a| a.get(name))
}

#[test]
fn v1_report_values_status_and_confirmation() {
    let d = decode(b"*HQ,4210209006,V1,201812,A,2608.9437,N,08016.2521,W,000.80,090,150317,EFE7F9FF,310,260,0,0,6#").unwrap();
    assert_eq!(d.kind, MessageKind::Data);
    let p = &d.positions[0];
    assert_eq!(p.device_id.as_str(), "4210209006");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2017, 3, 15, 20, 18, 12).unwrap()
    );
    assert!((p.lat - (26.0 + 8.9437 / 60.0)).abs() < 1e-9);
    assert!((p.lon + (80.0 + 16.2521 / 60.0)).abs() < 1e-9);
    assert!((p.speed_kmh - 0.8 * 1.852).abs() < 1e-9);
    assert_eq!(p.course_deg, 90.0);
    assert!(p.valid);
    // 0xEFE7F9FF: bits 0, 1, 2 and 18 set, bit 19 cleared → power cut; bit 10 cleared.
    assert_eq!(
        attr(&d, "alarm"),
        Some(&AttrValue::Text("power_cut".into()))
    );
    assert_eq!(attr(&d, "ignition"), Some(&AttrValue::Bool(false)));
    assert_eq!(attr(&d, "status"), Some(&AttrValue::Int(0xEFE7_F9FF)));
    assert_eq!(attr(&d, "io1"), Some(&AttrValue::Text("310".into())));
    assert_eq!(attr(&d, "io5"), Some(&AttrValue::Text("6".into())));
    assert_eq!(
        d.reply.accept.as_deref(),
        Some(&b"*HQ,4210209006,V4,V1,20260506070809#"[..])
    );
    assert_eq!(d.reply.refuse, None);
}

#[test]
fn odometer_extras_and_v4_answers() {
    let d = decode(b"*HQ,2130510938,V1,012632,A,0520.0663,N,10028.6324,E,0.286,023,100317,FFFFDFFF,69129336,0,100.0,18,5141,5A20#").unwrap();
    assert_eq!(attr(&d, "odometer_m"), Some(&AttrValue::Int(69_129_336)));
    assert_eq!(attr(&d, "fuel_l"), Some(&AttrValue::Float(100.0)));
    assert_eq!(attr(&d, "lac"), Some(&AttrValue::Int(0x5141)));
    assert_eq!(attr(&d, "cid"), Some(&AttrValue::Int(0x5A20)));
    assert_eq!(d.positions[0].altitude_m, 18.0);

    let d = decode(b"*TH,2020916012,V4,S1,OK,pass_word,130305,050316,A,2212.8745,N,11346.6574,E,14.28,028,220902,FFFFFBFD#").unwrap();
    assert_eq!(
        attr(&d, "result"),
        Some(&AttrValue::Text("S1,OK,pass_word,130305".into()))
    );
    assert_eq!(
        d.positions[0].fix_time,
        Utc.with_ymd_and_hms(2002, 9, 22, 5, 3, 16).unwrap()
    );
    // 0xFFFFFBFD: bit 1 cleared → SOS.
    assert_eq!(attr(&d, "alarm"), Some(&AttrValue::Text("sos".into())));
    assert_eq!(d.reply.accept, None, "only V1 is confirmed");
}

#[test]
fn heartbeats_are_echoed() {
    let d = decode(b"*HQ,135790246811220,HTBT,100#").unwrap();
    assert_eq!(d.kind, MessageKind::Keepalive);
    assert_eq!(
        d.reply.accept.as_deref(),
        Some(&b"*HQ,135790246811220,HTBT#"[..])
    );
    assert_eq!(attr(&d, "battery_level_pct"), Some(&AttrValue::Int(100)));
    let d = decode(b"*HQ,135790246811220,V0#").unwrap();
    assert_eq!(
        d.reply.accept.as_deref(),
        Some(&b"*HQ,135790246811220,V0#"[..])
    );
    assert!(d.reports.is_empty() && d.positions.is_empty());
}

#[test]
fn nbr_cells_are_a_report_and_confirmed() {
    let d = decode(
        b"*HQ,7401004662,NBR,160453,234,10,0,2,21580,27766,-67,21580,27767,-60,291019,FFFFFBFF,6#",
    )
    .unwrap();
    assert!(d.positions.is_empty());
    let r = &d.reports[0];
    assert_eq!(
        r.time,
        Utc.with_ymd_and_hms(2019, 10, 29, 16, 4, 53).unwrap()
    );
    let net: serde_json::Value = match attr(&d, "network") {
        Some(AttrValue::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        net[1],
        serde_json::json!({"mcc":234,"mnc":10,"lac":21580,"cid":27767,"rssi":-60})
    );
    assert_eq!(
        d.reply.accept.as_deref(),
        Some(&b"*HQ,7401004662,V4,NBR,20260506070809#"[..])
    );
}

#[test]
fn binary_record_values() {
    let d = decode(&h("24410600082621532131081504419390060740418306000000fffffbfdff0015060000002c02dc0c000000001f")).unwrap();
    let p = &d.positions[0];
    assert_eq!(p.device_id.as_str(), "4106000826");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2015, 8, 31, 21, 53, 21).unwrap()
    );
    assert!((p.lat - (4.0 + 41.9390 / 60.0)).abs() < 1e-9);
    assert!((p.lon + (74.0 + 4.1830 / 60.0)).abs() < 1e-9);
    assert!(p.valid);
    assert_eq!(attr(&d, "battery_level_pct"), Some(&AttrValue::Int(100)));
    assert_eq!(d.reply, crate::protocol::Reply::NONE);
}

#[test]
fn the_x_record_reads_like_the_dollar_record() {
    let d = decode(&h(
        "5800009814991024031101175540227006012321670c000095fffffbffff0033",
    ))
    .unwrap();
    let p = &d.positions[0];
    assert_eq!(p.device_id.as_str(), "0000981499");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2017, 1, 11, 10, 24, 3).unwrap()
    );
    assert!((p.lat - (55.0 + 40.2270 / 60.0)).abs() < 1e-9);
}

#[test]
fn device_time_zone_is_honoured() {
    let mut s = super::super::Session::new(&SessionConfig {
        time_zone: chrono::FixedOffset::west_opt(5 * 3600).unwrap(),
        ..SessionConfig::new(Transport::Udp)
    });
    let d = s
        .decode(
            &h("2441060116601245431311165035313006004318210e000000fffffbffff0024"),
            &ctx(),
        )
        .unwrap();
    assert_eq!(
        d.positions[0].fix_time,
        Utc.with_ymd_and_hms(2016, 11, 13, 17, 45, 43).unwrap()
    );
}

#[test]
fn an_empty_id_belongs_to_the_last_device_or_is_refused() {
    let msg = b"*HQ,,V1,173212,A,2225.78879,S,02829.19021,E,0.00,0,290418,FFFFFBFF#";
    let r = decode(msg).unwrap_err();
    assert_eq!(r.error, DecodeError::NotIdentified);
    let mut s = session(Transport::Tcp);
    s.decode(b"*HQ,4109198974,V0#", &ctx()).unwrap();
    let d = s.decode(msg, &ctx()).unwrap();
    assert_eq!(d.positions[0].device_id.as_str(), "4109198974");
    assert_eq!(
        d.reply.accept.as_deref(),
        Some(&b"*HQ,4109198974,V4,V1,20260506070809#"[..])
    );
}

#[test]
fn bad_input_is_rejected_with_a_reason_never_a_panic() {
    let malformed = |b: &[u8]| match decode(b) {
        Err(r) => matches!(r.error, DecodeError::Malformed { .. }) && !r.close && r.reply.is_none(),
        Ok(d) => panic!("accepted {:?}: {d:?}", String::from_utf8_lossy(b)),
    };
    assert!(malformed(b"*HQ,123#extra"));
    assert!(malformed(b"*HQ#"));
    assert!(malformed(b"*H1,123,V1#"));
    assert!(malformed(b"*HQ,12a,V1#"));
    assert!(malformed(
        b"*HQ,1,V1,250000,A,2608.9437,N,08016.2521,W,0,0,150317#"
    ));
    assert!(malformed(
        b"*HQ,1,V1,201812,A,9608.9437,N,08016.2521,W,0,0,150317#"
    ));
    assert!(malformed(
        b"*HQ,1,V1,201812,A,2608.9437,N,08016.2521,W,x,0,150317#"
    ));
    assert!(malformed(
        b"*HQ,1,V1,201812,A,2608.9437,N,08016.2521,W,0,400,150317#"
    ));
    assert!(malformed(
        b"*HQ,1,V1,201812,A,2608.9437,N,08016.2521,W,0,0,320317#"
    ));
    assert!(malformed(
        b"*HQ,1,NBR,160453,234,10,0,9,1,2,3,291019,FFFFFBFF#"
    ));
    assert!(malformed(b"*HQ,1,LINK,180902,15,0,84#"));
    assert!(malformed(b"*HQ,1,V3,1,2#"));
    assert!(malformed(b"*hq,1,VP1,Q#"));
    // Binary: non-BCD time, short records.
    assert!(malformed(&h(
        "24410600082621a32131081504419390060740418306000000fffffbfdff0015"
    )));
    assert!(matches!(
        decode(&h("2441060008")).unwrap_err().error,
        DecodeError::Length {
            declared: 32,
            actual: 5
        }
    ));
    // Unknown commands are recognised and ignored; no-fix reports store nothing.
    for m in [
        &b"*HQ,8401016597,BASE,152609,0,0,0,0,211014,FFFFFFFF#"[..],
        b"*HQ,1,V1,,V,,N,,E,0.00,0,,FFFFF7FF#",
    ] {
        let d = decode(m).unwrap();
        assert_eq!(d.kind, MessageKind::Other);
        assert!(d.positions.is_empty() && d.reply.accept.is_none());
    }
}
