//! GT06: every row of `protocols/vectors/gt06.tsv` through the replay
//! driver the server uses, and the gateway over real TCP sockets.
//!
//! - Rows other than logins are fed after the login
//!   `78780d01012345678901234500018cdd0d0a` (IMEI 123456789012345), in one
//!   chunk, as a device sends them. `@model` rows run with that model set
//!   on the session, as a port configured for it would.
//! - Row 72's capture lost its final `0A` (the CRC and length say so); it
//!   is fed with the `0A` restored.
//! - `@integrity` rows: the decision (protocols/gt06.md) is to reject any
//!   frame whose CRC-16/X-25 or length field is wrong, without a reply
//!   (GT06 has no negative acknowledgement). Every frame cut from such a
//!   row is either rejected that way or, when the row is several good
//!   frames glued together, checked normally; the row's bytes handed to
//!   `decode` whole are always rejected.
//! - `no_position` rows may also be runt frames that cannot carry a CRC;
//!   those must be rejected as malformed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use trackgate::model::DeviceId;
use trackgate::protocol::checksum::crc16_x25;
use trackgate::protocol::testkit::{self, Expectation, Vector};
use trackgate::protocol::{
    replay_with, DecodeContext, Decoded, MessageKind, Protocol, SessionConfig, Step, Transport,
};
use trackgate::protocols::gt06::Gt06;

use crate::support::{http_get, metric, start, test_config};

const LOGIN: &str = "78780d01012345678901234500018cdd0d0a";
const IMEI: &str = "123456789012345";
const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/protocols/vectors/gt06.tsv");

/// Traccar's attribute name in a vector → ours (beyond testkit::COMMON_KEYS).
const KEY_MAP: &[(&str, &str)] = &[
    ("adc1", "adc1_v"),
    ("tag1Temp", "tag1_temp_c"),
    ("eventFiles", "event_files"),
    ("networkTechnology", "network_technology"),
    ("drivingTime", "driving_time_s"),
    ("serial", "serial"),
    ("hours", "engine_hours_ms"),
];

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    }
}

fn config(v: &Vector) -> SessionConfig {
    let mut c = SessionConfig::new(Transport::Tcp);
    c.model = v.tag("model").map(Into::into);
    c
}

fn is_login(m: &[u8]) -> bool {
    m.starts_with(&[0x78, 0x78]) && m.get(3) == Some(&0x01)
}

/// The bytes as a device would put them on the wire.
fn wire(v: &Vector) -> Vec<u8> {
    let mut m = v.message.clone();
    if m.ends_with(&[0x0d]) && !m.ends_with(&[0x0d, 0x0a]) {
        m.push(0x0a);
    }
    m
}

/// The echo reply computed here independently: 78 78 05 | proto | serial | crc | 0D 0A.
fn echo(frame: &[u8]) -> Vec<u8> {
    let long = frame.starts_with(&[0x79, 0x79]);
    let proto = frame[if long { 4 } else { 3 }];
    let serial = &frame[frame.len() - 6..frame.len() - 4];
    let mut out = if long {
        vec![0x79, 0x79, 0x00, 0x05, proto]
    } else {
        vec![0x78, 0x78, 0x05, proto]
    };
    out.extend_from_slice(serial);
    let crc = crc16_x25(&out[2..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&[0x0d, 0x0a]);
    out
}

#[test]
fn every_vector_row_meets_its_expectation() {
    let mut integrity = 0;
    let rows = testkit::run_file(VECTORS, |v| {
        let r = check(v);
        if r.is_ok() && v.integrity().is_some() {
            integrity += 1;
        }
        r
    });
    println!(
        "gt06 vectors: {} rows ({integrity} @integrity rows handled by rejection)",
        rows.len()
    );
}

fn check(v: &Vector) -> Result<(), String> {
    if testkit::is_framer_row(v) {
        let mut session = Gt06.session(&SessionConfig::new(Transport::Tcp));
        return testkit::check_framer(session.as_mut(), v);
    }
    let message = wire(v);
    let expectation = expectation(v)?;
    let login = hex::decode(LOGIN).unwrap();
    let logged_in = !is_login(&message);
    let mut chunks = Vec::new();
    if logged_in {
        chunks.push(login.clone());
    }
    chunks.push(message.clone());
    let (steps, frame_error) =
        replay_with(&Gt06, &config(v), chunks.iter().map(Vec::as_slice), &ctx());
    if let Some(e) = frame_error {
        return Err(format!("framing failed: {e}"));
    }
    let mut steps = steps.as_slice();
    if logged_in {
        let (first, rest) = steps.split_first().ok_or("no step for the login")?;
        let d = first
            .outcome
            .as_ref()
            .map_err(|r| format!("login rejected: {r:?}"))?;
        if d.kind != MessageKind::Login || first.reply.as_deref() != Some(&echo(&login)[..]) {
            return Err(format!("login step: {first:?}"));
        }
        steps = rest;
    }
    if v.integrity().is_some() {
        return check_integrity(v, steps);
    }
    let [step] = steps else {
        return Err(format!(
            "expected one frame, got {}: {steps:?}",
            steps.len()
        ));
    };
    if step.frame.as_ref() != message.as_slice() {
        return Err("the frame cut differs from the row's bytes".into());
    }
    let d = match &step.outcome {
        Ok(d) => d,
        Err(r) if v.expectation == Expectation::NoPosition && r.error.kind() == "malformed" => {
            return if r.reply.is_none() && !r.close {
                Ok(())
            } else {
                Err(format!("runt frame: {r:?}"))
            };
        }
        Err(r) => return Err(format!("rejected: {r:?}")),
    };
    check_common(&message, d, step)?;
    testkit::check_expectation(&expectation, d, KEY_MAP)
}

/// The row's expectation, except where Traccar's value is an artefact of
/// reading past the message into the serial number and CRC (our reader is
/// bounded by the content). Line 22 (SL4X 0x32): Traccar reads the LBS
/// block with an 8-byte cell id although its length byte says 10 bytes,
/// so its "altitude" -31703 is the CRC `84 29`; the real altitude field is
/// `02 AF` = 687 m (the same device reports 678 m on line 23).
fn expectation(v: &Vector) -> Result<Expectation, String> {
    if v.line != 22 {
        return Ok(v.expectation.clone());
    }
    let traccar = Expectation::Attribute {
        key: "altitude".into(),
        value: serde_json::json!(-31703.0),
    };
    if v.expectation != traccar {
        return Err(format!("line 22 changed: {:?}", v.expectation));
    }
    Ok(Expectation::Attribute {
        key: "altitude".into(),
        value: serde_json::json!(687.0),
    })
}

/// Identity, protocol, times and reply bytes of an accepted frame.
fn check_common(message: &[u8], d: &Decoded, step: &Step) -> Result<(), String> {
    let expected = if is_login(message) {
        let digits = hex::encode(&message[4..12]);
        DeviceId::new(&digits[1..]).unwrap()
    } else {
        DeviceId::new(IMEI).unwrap()
    };
    if d.device.as_ref() != Some(&expected) {
        return Err(format!("device {:?}, expected {expected:?}", d.device));
    }
    for p in &d.positions {
        if p.device_id != expected || p.protocol != "gt06" || p.received_time != ctx().received {
            return Err(format!("position identity/received time wrong: {p:?}"));
        }
    }
    for r in &d.reports {
        if r.device_id != expected || r.protocol != "gt06" {
            return Err(format!("report identity wrong: {r:?}"));
        }
    }
    if d.reply.refuse.is_some() {
        return Err("GT06 has no negative reply".into());
    }
    // A reply is either the plain echo, or (time/address requests) a
    // well-formed frame of the request's type family.
    if let Some(reply) = &step.reply {
        let echoed = echo(message);
        let proto = message[if message[0] == 0x79 { 4 } else { 3 }];
        let special = matches!(proto, 0x8a | 0x2a);
        if !special && reply.as_ref() != echoed.as_slice() {
            return Err(format!(
                "reply {}, expected the echo {}",
                hex::encode(reply),
                hex::encode(&echoed)
            ));
        }
    }
    if d.kind == MessageKind::Login && step.reply.is_none() {
        return Err("login not acknowledged".into());
    }
    Ok(())
}

/// `@integrity` rows: nothing that fails its own check is acknowledged.
fn check_integrity(v: &Vector, steps: &[Step]) -> Result<(), String> {
    let mut accepted = Vec::new();
    for s in steps {
        match &s.outcome {
            Ok(d) => {
                // Only a frame with a correct CRC and length can get here.
                check_common(&s.frame, d, s)?;
                accepted.push(d);
            }
            Err(r) if r.close || r.reply.is_some() || s.reply.is_some() => {
                return Err(format!(
                    "integrity row rejected with a reply or a close: {r:?}"
                ))
            }
            Err(r) if !["checksum", "length"].contains(&r.error.kind()) => {
                return Err(format!(
                    "integrity row rejected as {}: {}",
                    r.error.kind(),
                    r.error
                ))
            }
            Err(_) => {}
        }
    }
    for d in accepted {
        testkit::check_expectation(&v.expectation, d, KEY_MAP)?;
    }
    let mut session = Gt06.session(&config(v));
    session
        .decode(&hex::decode(LOGIN).unwrap(), &ctx())
        .map_err(|r| format!("login: {r:?}"))?;
    match session.decode(&v.message, &ctx()) {
        Ok(d) => Err(format!("integrity row accepted when decoded whole: {d:?}")),
        Err(r) if r.reply.is_some() || r.close => Err(format!("whole row: {r:?}")),
        Err(r) => {
            let kind = r.error.kind();
            let expected: &[&str] = match v.integrity() {
                Some("crc_mismatch") => &["checksum"],
                _ => &["length", "checksum"],
            };
            if expected.contains(&kind) {
                Ok(())
            } else {
                Err(format!(
                    "integrity {:?} rejected as {kind}: {}",
                    v.integrity(),
                    r.error
                ))
            }
        }
    }
}

#[test]
fn key_map_targets_are_snake_case_with_units() {
    for (traccar, ours) in KEY_MAP {
        assert!(
            ours.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{traccar} → {ours}"
        );
    }
}

/// A `78 78` frame with a correct CRC.
fn frame(proto: u8, content: &[u8], serial: u16) -> Vec<u8> {
    let mut out = vec![0x78, 0x78, (content.len() + 5) as u8, proto];
    out.extend_from_slice(content);
    out.extend_from_slice(&serial.to_be_bytes());
    let crc = crc16_x25(&out[2..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&[0x0d, 0x0a]);
    out
}

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_heartbeat_position_bad_crc_and_garbage_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("gt06", Transport::Tcp).unwrap();
    let http = gw.http;

    // 0x12 GPS+LBS: 2025-11-20 10:20:30 (UTC: the port has no time zone and
    // the login carries none), 9 satellites, 54.94535 N 24.01762 E,
    // 60 km/h, course 270, fix valid; cell 246/2/0x1234/0x005678.
    let mut gps = vec![25, 11, 20, 10, 20, 30, 0xc9];
    gps.extend_from_slice(&98_901_630u32.to_be_bytes());
    gps.extend_from_slice(&43_231_716u32.to_be_bytes());
    gps.push(60);
    gps.extend_from_slice(&(0x1400u16 | 270).to_be_bytes());
    gps.extend_from_slice(&[0x00, 0xf6, 0x02, 0x12, 0x34, 0x00, 0x56, 0x78]);
    let heartbeat = |serial| frame(0x13, &[0x46, 0x04, 0x03, 0x00, 0x02], serial);

    let text = tokio::task::spawn_blocking(move || {
        let mut s = connect(addr);
        s.write_all(&hex::decode(LOGIN).unwrap()).unwrap();
        assert_eq!(
            read_n(&mut s, 10),
            hex::decode("787805010001d9dc0d0a").unwrap()
        );

        s.write_all(&heartbeat(2)).unwrap();
        assert_eq!(read_n(&mut s, 10), echo(&heartbeat(2)), "heartbeat echoed");

        let good = frame(0x12, &gps, 3);
        s.write_all(&good).unwrap();
        let ack = read_n(&mut s, 10);
        assert_eq!(ack, echo(&good));
        assert_eq!(&ack[..6], &[0x78, 0x78, 0x05, 0x12, 0x00, 0x03]);

        // The same position with a broken CRC: no reply. The next reply on
        // the wire is the heartbeat's, so nothing was sent for the bad frame.
        let mut bad = frame(0x12, &gps, 4);
        let n = bad.len();
        bad[n - 3] ^= 0xff;
        s.write_all(&bad).unwrap();
        s.write_all(&heartbeat(5)).unwrap();
        assert_eq!(read_n(&mut s, 10), echo(&heartbeat(5)), "bad CRC not acked");

        // An SOS sent without GPS (0x19 LBS alarm: a cell and the status):
        // acknowledged once stored, as a report.
        let sos = frame(
            0x19,
            &[
                0x00, 0xf6, 0x02, 0x12, 0x34, 0x00, 0x56, 0x78, 0x00, 0x04, 0x03, 0x01, 0x02,
            ],
            7,
        );
        s.write_all(&sos).unwrap();
        assert_eq!(read_n(&mut s, 10), echo(&sos), "the LBS alarm acked");

        // Garbage is rejected and the connection carries on.
        s.write_all(b"hello gateway\r\n").unwrap();
        s.write_all(&heartbeat(6)).unwrap();
        assert_eq!(
            read_n(&mut s, 10),
            echo(&heartbeat(6)),
            "alive after garbage"
        );
        let (_, text) = http_get(http, "/metrics");
        text
    })
    .await
    .unwrap();

    let p = gw
        .engine
        .get(&DeviceId::new(IMEI).unwrap())
        .expect("position stored");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2025, 11, 20, 10, 20, 30).unwrap()
    );
    assert!((p.lat - 54.94535).abs() < 1e-5, "{}", p.lat);
    assert!((p.lon - 24.01762).abs() < 1e-5, "{}", p.lon);
    assert_eq!(p.speed_kmh, 60.0);
    assert_eq!(p.course_deg, 270.0);
    assert_eq!(p.satellites, Some(9));
    assert!(p.valid);
    assert_eq!(p.protocol, "gt06");

    // The alarm is in the history (with the heartbeats' status reports),
    // and the device's latest position is still the fix above.
    let page = gw
        .history
        .range(trackgate::history::Range {
            device: DeviceId::new(IMEI).unwrap(),
            from_ms: 0,
            to_ms: i64::MAX,
            limit: 100,
            after: None,
            records: trackgate::history::Records::Reports,
        })
        .await
        .unwrap();
    let alarms: Vec<_> = page
        .reports
        .iter()
        .filter(|(r, _)| r.attributes.get("alarm").is_some())
        .collect();
    assert_eq!(alarms.len(), 1, "{:?}", page.reports);
    let alarm = &alarms[0].0.attributes;
    assert_eq!(
        alarm.get("alarm"),
        Some(&trackgate::model::AttrValue::Text("sos".into()))
    );
    assert!(alarm.get("network").is_some(), "the cell it was sent from");
    assert_eq!(
        page.reports.len(),
        4,
        "the alarm and three heartbeats' status"
    );
    assert_eq!(
        gw.engine
            .get(&DeviceId::new(IMEI).unwrap())
            .unwrap()
            .fix_time,
        p.fix_time
    );

    let l = "protocol=\"gt06\"";
    assert_eq!(metric(&text, "trackgate_positions_total", l), 1.0);
    assert_eq!(metric(&text, "trackgate_reports_total", l), 4.0);
    assert_eq!(
        metric(&text, "trackgate_frames_total", l),
        8.0,
        "login, heartbeat, good, bad, heartbeat, alarm, garbage, heartbeat"
    );
    assert_eq!(
        metric(
            &text,
            "trackgate_decode_errors_total",
            "kind=\"checksum\",protocol=\"gt06\""
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "trackgate_decode_errors_total",
            "kind=\"malformed\",protocol=\"gt06\""
        ),
        1.0
    );
    gw.shutdown().await;
}
