//! Query, form and JSON requests with exact values and replies.

use proptest::prelude::*;

use super::*;
use crate::model::{AttrValue, DeviceId};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

#[test]
fn query_with_knots_and_unix_seconds() {
    let d = decode(&get("id=123456789012345&timestamp=1504763810&lat=40.7232948571&lon=-74.0061408571&bearing=7.19889788244&speed=40&ignition=true&rpm=933&fuel=24&altitude=12.5&batt=87&hdop=0.9&accuracy=4")).unwrap();
    assert_eq!(d.reply.accept.as_deref(), Some(OK));
    assert_eq!(
        d.reply.refuse.as_deref(),
        Some(&b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"[..])
    );
    let p = &d.positions[0];
    assert_eq!(p.device_id, DeviceId::new("123456789012345").unwrap());
    assert_eq!(p.fix_time.timestamp(), 1_504_763_810);
    assert_eq!((p.lat, p.lon), (40.7232948571, -74.0061408571));
    assert!((p.speed_kmh - 40.0 * 1.852).abs() < 1e-9);
    assert_eq!(p.course_deg, 7.19889788244);
    assert_eq!(p.altitude_m, 12.5);
    assert!(p.valid);
    let a = &p.attributes;
    assert_eq!(a.get("ignition"), Some(&AttrValue::Bool(true)));
    assert_eq!(a.get("rpm"), Some(&AttrValue::Int(933)));
    assert_eq!(a.get("fuel"), Some(&AttrValue::Int(24)));
    assert_eq!(a.get("battery_level_pct"), Some(&AttrValue::Float(87.0)));
    assert_eq!(a.get("hdop"), Some(&AttrValue::Float(0.9)));
    assert_eq!(a.get("accuracy_m"), Some(&AttrValue::Float(4.0)));
}

#[test]
fn timestamps_in_every_form() {
    for (ts, expected) in [
        (
            "1442068686579",
            Utc.timestamp_millis_opt(1_442_068_686_579).unwrap(),
        ),
        (
            "2016-01-27T18%3A55%3A47Z",
            Utc.with_ymd_and_hms(2016, 1, 27, 18, 55, 47).unwrap(),
        ),
        (
            "2014-06-04+09%3A10%3A11",
            Utc.with_ymd_and_hms(2014, 6, 4, 9, 10, 11).unwrap(),
        ),
        (
            "2014-06-04T11%3A10%3A11%2B02%3A00",
            Utc.with_ymd_and_hms(2014, 6, 4, 9, 10, 11).unwrap(),
        ),
    ] {
        let d = decode(&get(&format!("id=1&lat=1&lon=2&timestamp={ts}"))).unwrap();
        assert_eq!(d.positions[0].fix_time, expected, "{ts}");
    }
    let d = decode(&get("id=1&lat=1&lon=2")).unwrap();
    assert_eq!(d.positions[0].fix_time, ctx().received);
}

#[test]
fn form_post_location_and_valid() {
    let d = decode(&post(
        "application/x-www-form-urlencoded",
        "deviceid=77&location=60.5,30.25&valid=false",
    ))
    .unwrap();
    let p = &d.positions[0];
    assert_eq!(p.device_id, DeviceId::new("77").unwrap());
    assert_eq!((p.lat, p.lon), (60.5, 30.25));
    assert!(!p.valid);
}

#[test]
fn cells_and_wifi_without_a_fix_make_a_report() {
    let d = decode(&get(
        "id=123456&timestamp=1377177267&cell=257,02,16,2224&wifi=00-14-22-01-23-45,-80",
    ))
    .unwrap();
    assert!(d.positions.is_empty());
    let r = &d.reports[0];
    let Some(AttrValue::Text(net)) = r.attributes.get("network") else {
        panic!("{r:?}")
    };
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(net).unwrap(),
        serde_json::json!([{"mcc": 257, "mnc": 2, "lac": 16, "cid": 2224}])
    );
    let Some(AttrValue::Text(w)) = r.attributes.get("wifi") else {
        panic!("{r:?}")
    };
    assert!(w.contains("00:14:22:01:23:45"));
}

#[test]
fn missing_id_or_bad_values_get_400_and_keep_the_connection() {
    for q in [
        "lat=60.0&lon=30.0",
        "id=1&lat=x&lon=1",
        "id=1&lat=91&lon=1",
        "id=1&lat=1",
        "id=1&lat=1&lon=1&timestamp=yesterday",
        "id=a%20b&lat=1&lon=1",
    ] {
        let r = decode(&get(q)).unwrap_err();
        assert!(!r.close, "{q}");
        assert_eq!(
            r.reply.as_deref(),
            Some(&b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"[..]),
            "{q}"
        );
    }
    let r = decode("DELETE /?id=1 HTTP/1.1\r\n\r\n").unwrap_err();
    assert!(r.reply.unwrap().starts_with(b"HTTP/1.1 405"));
}

#[test]
fn json_location_in_mps_with_extras_and_404_refusal() {
    let body = r#"{"location":{"timestamp":"2021-07-21T08:06:34.444Z","odometer":12,"is_moving":true,"coords":{"latitude":-6.1148096,"longitude":106.6837015,"accuracy":3.8,"speed":10,"heading":63,"altitude":35.7},"battery":{"is_charging":true,"level":0.79},"activity":{"type":"still"},"extras":{"n":12,"f":1.5,"s":"x","b":false}},"device_id":"8737767034"}"#;
    let d = decode(&post("application/json", body)).unwrap();
    assert_eq!(d.reply.accept.as_deref(), Some(OK));
    assert_eq!(
        d.reply.refuse.as_deref(),
        Some(&b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"[..])
    );
    let p = &d.positions[0];
    assert_eq!(
        p.fix_time,
        Utc.timestamp_millis_opt(1_626_854_794_444).unwrap()
    );
    assert_eq!((p.lat, p.lon), (-6.1148096, 106.6837015));
    assert_eq!(p.speed_kmh, 36.0);
    assert_eq!(p.course_deg, 63.0);
    assert_eq!(p.altitude_m, 35.7);
    let a = &p.attributes;
    assert_eq!(a.get("battery_level_pct"), Some(&AttrValue::Float(79.0)));
    assert_eq!(a.get("charging"), Some(&AttrValue::Bool(true)));
    assert_eq!(a.get("motion"), Some(&AttrValue::Bool(true)));
    assert_eq!(a.get("odometer_m"), Some(&AttrValue::Float(12.0)));
    assert_eq!(a.get("activity"), Some(&AttrValue::Text("still".into())));
    assert_eq!(a.get("n"), Some(&AttrValue::Int(12)));
    assert_eq!(a.get("f"), Some(&AttrValue::Float(1.5)));
    assert_eq!(a.get("b"), Some(&AttrValue::Bool(false)));
}

#[test]
fn json_batches_negative_unknowns_and_bad_json() {
    let body = r#"{"device_id":"5","location":[{"coords":{"latitude":1,"longitude":2,"speed":-1,"heading":-1}},{"timestamp":1600000000000,"coords":{"latitude":3,"longitude":4}}]}"#;
    let d = decode(&post("application/json", body)).unwrap();
    assert_eq!(d.positions.len(), 2);
    assert_eq!(
        (d.positions[0].speed_kmh, d.positions[0].course_deg),
        (0.0, 0.0)
    );
    assert_eq!(d.positions[1].fix_time.timestamp(), 1_600_000_000);
    for bad in [
        r#"{"device_id":"5""#,
        r#"{"location":{}}"#,
        r#"{"device_id":"5","location":{"coords":{}}}"#,
    ] {
        let r = decode(&post("application/json", bad)).unwrap_err();
        assert!(r.reply.unwrap().starts_with(b"HTTP/1.1 400"), "{bad}");
    }
}

#[test]
fn client_named_attributes_are_bounded_like_http_ingest() {
    use crate::model::{MAX_ATTRIBUTES, MAX_ATTRIBUTE_BYTES};
    let extras = |n: usize| (0..n).map(|i| format!("&x{i}={i}")).collect::<String>();
    let ok = decode(&get(&format!("id=1&lat=1&lon=2{}", extras(MAX_ATTRIBUTES)))).unwrap();
    assert_eq!(ok.positions[0].attributes.len(), MAX_ATTRIBUTES);
    let long = "v".repeat(MAX_ATTRIBUTE_BYTES + 1);
    let cells = |n: usize| (0..n).map(|_| "&cell=262,1,100,200").collect::<String>();
    decode(&get(&format!("id=1&lat=1&lon=2{}", cells(MAX_ATTRIBUTES)))).unwrap();
    let cells = cells(MAX_ATTRIBUTES + 1);
    for q in [
        format!("id=1&lat=1&lon=2{}", extras(MAX_ATTRIBUTES + 1)),
        format!("id=1&lat=1&lon=2&note={long}"),
        format!("id=1&lat=1&lon=2&{long}=1"),
        format!("id=1&lat=1&lon=2{cells}"),
    ] {
        let r = decode(&get(&q)).unwrap_err();
        assert!(!r.close);
        assert!(
            r.reply.unwrap().starts_with(b"HTTP/1.1 400"),
            "{}",
            &q[..40]
        );
    }
    let many: Vec<String> = (0..=MAX_ATTRIBUTES)
        .map(|i| format!(r#""e{i}":{i}"#))
        .collect();
    let body = format!(
        r#"{{"device_id":"5","location":{{"coords":{{"latitude":1,"longitude":2}},"extras":{{{}}}}}}}"#,
        many.join(",")
    );
    let r = decode(&post("application/json", &body)).unwrap_err();
    assert!(r.reply.unwrap().starts_with(b"HTTP/1.1 400"));
}

proptest! {
    #[test]
    fn query_round_trips(
        lat in -90.0f64..=90.0, lon in -180.0f64..=180.0, secs in 946_684_800i64..4_102_444_800,
        knots in 0.0f64..500.0, course in 0.0f64..360.0, id in "[0-9A-Za-z]{1,20}", form in any::<bool>(),
    ) {
        let q = format!("id={id}&lat={lat}&lon={lon}&timestamp={secs}&speed={knots}&bearing={course}");
        let req = if form { post("application/x-www-form-urlencoded", &q) } else { get(&q) };
        let d = decode(&req).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let p = &d.positions[0];
        prop_assert_eq!(p.device_id.as_str(), id.as_str());
        prop_assert_eq!((p.lat, p.lon), (lat, lon));
        prop_assert_eq!(p.fix_time.timestamp(), secs);
        prop_assert!((p.speed_kmh - knots * 1.852).abs() < 1e-9);
        prop_assert_eq!(p.course_deg, course);
    }
}
