//! jt808: every vector row through the replay driver (replies checked byte
//! for byte against an encoder written here from the spec), and the gateway
//! over a real TCP socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use trackgate::model::DeviceId;
use trackgate::protocol::testkit::{self, Expectation, Vector};
use trackgate::protocol::{
    replay_with, DecodeContext, Decoded, Protocol, SessionConfig, Step, Transport,
};
use trackgate::protocols::jt808::Jt808;

use crate::support::{http_get, metric, start, test_config};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/protocols/vectors/jt808.tsv");

/// Traccar's attribute names in the vectors → ours (beyond testkit::COMMON_KEYS).
const KEYS: &[(&str, &str)] = &[
    ("cardCode", "card_code"),
    ("timezone", "timezone"),
    ("videoAlarm", "video_alarm"),
    ("tire1Pressure", "tire1_pressure_bar"),
    ("fuelUsed", "fuel_used_l"),
    ("unlockResult", "unlock_result"),
    ("lock2Battery", "lock2_battery_v"),
    ("lock1Locked", "lock1_locked"),
    ("dtcs", "dtcs"),
    ("driver", "driver"),
    ("tilt", "tilt"),
    ("fuel1", "fuel1_l"),
    ("fuel2", "fuel2_l"),
    ("alarmLabel", "alarm_label"),
    ("tag1Mac", "tag1_mac"),
];

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    }
}

fn config(model: Option<&str>) -> SessionConfig {
    let mut c = SessionConfig::new(Transport::Tcp);
    c.model = model.map(Arc::from);
    c
}

// ---- an independent encoder, from the spec ----

fn xor(b: &[u8]) -> u8 {
    b.iter().fold(0, |a, x| a ^ x)
}

fn escape(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x7e];
    for &b in content {
        match b {
            0x7e => out.extend_from_slice(&[0x7d, 0x02]),
            0x7d => out.extend_from_slice(&[0x7d, 0x01]),
            _ => out.push(b),
        }
    }
    out.push(0x7e);
    out
}

/// The content between the delimiters, unescaped. `keep_invalid`: an escape
/// byte followed by anything else stays as it came (what the device meant,
/// for repairing rows); otherwise both bytes go, as the framer does.
fn unescape_with(frame: &[u8], keep_invalid: bool) -> Vec<u8> {
    let inner = &frame[1..frame.len() - 1];
    let mut out = Vec::new();
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == 0x7d && i + 1 < inner.len() {
            match inner[i + 1] {
                1 => out.push(0x7d),
                2 => out.push(0x7e),
                other if keep_invalid => out.extend_from_slice(&[0x7d, other]),
                _ => {}
            }
            i += 2;
        } else {
            out.push(inner[i]);
            i += 1;
        }
    }
    out
}

fn unescape(frame: &[u8]) -> Vec<u8> {
    unescape_with(frame, true)
}

/// The row as one unescaped frame, delimiters included, as the framer
/// would hand it over had the device escaped every 7E.
fn whole_frame(message: &[u8]) -> Vec<u8> {
    let mut f = vec![0x7e];
    f.extend(unescape_with(message, false));
    f.push(0x7e);
    f
}

/// Whether the row carries a raw 7E between its delimiters (Traccar's tests
/// feed the decoder directly; on a socket such a message would be cut there).
fn has_raw_delimiter(message: &[u8]) -> bool {
    message[1..message.len() - 1].contains(&0x7e)
}

/// The header fields of a request (unescaped content without the XOR).
struct Head {
    msg_id: u16,
    attrs: u16,
    version: Option<u8>,
    terminal: Vec<u8>,
    serial: u16,
}

fn head(content: &[u8]) -> Head {
    let msg_id = u16::from_be_bytes([content[0], content[1]]);
    let attrs = u16::from_be_bytes([content[2], content[3]]);
    let (version, id_at) = if attrs & 0x4000 != 0 {
        (Some(content[4]), 5)
    } else {
        (None, 4)
    };
    let id_len = if version.is_some() { 10 } else { 6 };
    let terminal = content[id_at..id_at + id_len].to_vec();
    let s = id_at + id_len;
    let serial = if matches!(msg_id, 0x5501 | 0x5502) {
        u16::from(content[s])
    } else {
        u16::from_be_bytes([content[s], content[s + 1]])
    };
    Head {
        msg_id,
        attrs,
        version,
        terminal,
        serial,
    }
}

/// A platform message to the terminal of `to`.
fn encode(to: &Head, msg_id: u16, serial: Option<u16>, body: &[u8]) -> Vec<u8> {
    let mut c = msg_id.to_be_bytes().to_vec();
    let attrs = body.len() as u16 | if to.version.is_some() { 0x4000 } else { 0 };
    c.extend_from_slice(&attrs.to_be_bytes());
    c.extend(to.version);
    c.extend_from_slice(&to.terminal);
    match serial {
        Some(s) => c.extend_from_slice(&s.to_be_bytes()),
        None => c.push(1),
    }
    c.extend_from_slice(body);
    c.push(xor(&c));
    escape(&c)
}

fn general(to: &Head, result: u8) -> Vec<u8> {
    let mut body = to.serial.to_be_bytes().to_vec();
    body.extend_from_slice(&to.msg_id.to_be_bytes());
    body.push(result);
    encode(to, 0x8001, Some(0), &body)
}

/// The reply a correct platform sends to the request `content`.
fn expected_reply(content: &[u8]) -> Option<Vec<u8>> {
    let h = head(content);
    let body_len = (h.attrs & 0x3ff) as usize;
    Some(match h.msg_id {
        0x0100 => {
            let mut body = h.serial.to_be_bytes().to_vec();
            body.push(0);
            body.extend_from_slice(hex::encode(&h.terminal).as_bytes());
            encode(&h, 0x8100, Some(0), &body)
        }
        0x5501 | 0x5502 if h.attrs & 0x8000 != 0 => {
            let mut body = h.msg_id.to_be_bytes().to_vec();
            body.push(0);
            encode(&h, 0x4401, None, &body)
        }
        0x5501 | 0x5502 | 0x1300 | 0x2070 | 0x0201 => return None,
        0x0002 | 0x0102 | 0x0200 | 0x0704 | 0x0210 | 0x0900 | 0x6006 | 0x0107 | 0x0701 | 0x0702
        | 0x1007 => general(&h, 0),
        other => panic!("no expected reply for {other:#06x} (body {body_len})"),
    })
}

/// The row's message as its author meant it: most `@integrity` rows were
/// written without escaping (a `7D 01` meant literally), the others with a
/// stale body length or XOR. The bytes between the delimiters are taken as
/// they are, body length and XOR recomputed, and the result escaped.
fn repaired(frame: &[u8]) -> Vec<u8> {
    let mut c = frame[1..frame.len() - 1].to_vec();
    c.pop();
    let h = head(&c);
    let header_len = 4
        + h.version.map_or(0, |_| 1)
        + h.terminal.len()
        + if matches!(h.msg_id, 0x5501 | 0x5502) {
            1
        } else {
            2
        };
    let body_len = (c.len() - header_len) as u16;
    let attrs = (h.attrs & !0x3ff) | body_len;
    c[2..4].copy_from_slice(&attrs.to_be_bytes());
    c.push(xor(&c));
    escape(&c)
}

// ---- the vector rows ----

#[test]
fn every_vector_row_meets_its_expectation() {
    let rows = testkit::run_file(VECTORS, check);
    let integrity = rows.iter().filter(|v| v.integrity().is_some()).count();
    let models = rows.iter().filter(|v| v.tag("model").is_some()).count();
    println!("jt808: {integrity} @integrity rows rejected (and decoded once repaired), {models} @model rows");
}

fn check(v: &Vector) -> Result<(), String> {
    let config = config(v.tag("model"));
    if testkit::is_framer_row(v) {
        let mut session = Jt808.session(&config);
        return testkit::check_framer(session.as_mut(), v);
    }
    if v.message.first() == Some(&b'(') {
        return check_text(v, &config);
    }
    if v.integrity().is_some() {
        check_integrity(v, &config)?;
        return check_decoded(v, &repaired(&v.message), &config)
            .map_err(|e| format!("repaired: {e}"));
    }
    check_decoded(v, &v.message, &config)
}

fn one_step(message: &[u8], config: &SessionConfig) -> Result<Step, String> {
    let (steps, err) = replay_with(&Jt808, config, [message], &ctx());
    if let Some(e) = err {
        return Err(format!("framing failed: {e}"));
    }
    match <[Step; 1]>::try_from(steps) {
        Ok([s]) => Ok(s),
        Err(steps) => Err(format!("expected one frame, got {}", steps.len())),
    }
}

fn check_decoded(v: &Vector, message: &[u8], config: &SessionConfig) -> Result<(), String> {
    let step = if has_raw_delimiter(message) {
        let outcome = Jt808.session(config).decode(&whole_frame(message), &ctx());
        let reply = outcome.as_ref().ok().and_then(|d| d.reply.accept.clone());
        Step {
            frame: whole_frame(message).into(),
            outcome,
            reply,
            offset: 0,
        }
    } else {
        one_step(message, config)?
    };
    let d = step
        .outcome
        .as_ref()
        .map_err(|r| format!("rejected: {r:?}"))?;
    let content = {
        let mut c = unescape(message);
        c.pop();
        c
    };
    let h = head(&content);
    let text = hex::encode(&h.terminal);
    let expected_id = if text.bytes().all(|b| b.is_ascii_digit()) {
        let s = text.trim_start_matches('0');
        if s.is_empty() {
            "0".to_string()
        } else {
            s.to_string()
        }
    } else {
        let n = h.terminal.iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
        format!("{n}{}", luhn(n))
    };
    let device = DeviceId::new(&expected_id).unwrap();
    if d.device.as_ref() != Some(&device) {
        return Err(format!("device {:?}, expected {device:?}", d.device));
    }
    for p in &d.positions {
        if p.device_id != device || p.protocol != "jt808" || p.received_time != ctx().received {
            return Err(format!("position identity wrong: {p:?}"));
        }
    }
    let expected = expected_reply(&content);
    if step.reply.as_deref() != expected.as_deref() {
        return Err(format!(
            "reply {:?}, expected {:?}",
            step.reply.as_deref().map(hex::encode),
            expected.map(hex::encode)
        ));
    }
    check_expectation(v, d)
}

fn check_expectation(v: &Vector, d: &Decoded) -> Result<(), String> {
    if let Expectation::Attribute { key, value } = &v.expectation {
        if key == "sat" {
            let sats = d.positions.first().and_then(|p| p.satellites);
            return if sats.map(serde_json::Value::from).as_ref() == Some(value) {
                Ok(())
            } else {
                Err(format!("satellites {sats:?}, expected {value}"))
            };
        }
    }
    testkit::check_expectation(&v.expectation, d, KEYS)
}

fn luhn(n: u64) -> u64 {
    let digits: Vec<u64> = n.to_string().bytes().map(|b| u64::from(b - b'0')).collect();
    let sum: u64 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// `@integrity` rows are rejected with the error they have, counted, and
/// answered with 0x8001 "message error" so the terminal sends again.
fn check_integrity(v: &Vector, config: &SessionConfig) -> Result<(), String> {
    let (steps, _) = replay_with(&Jt808, config, [v.message.as_slice()], &ctx());
    if let Some(d) = steps.iter().find_map(|s| s.outcome.as_ref().ok()) {
        return Err(format!("integrity row accepted: {d:?}"));
    }
    let r = match Jt808
        .session(config)
        .decode(&whole_frame(&v.message), &ctx())
    {
        Ok(d) => return Err(format!("integrity row accepted whole: {d:?}")),
        Err(r) => r,
    };
    let kinds: &[&str] = match v.integrity() {
        Some("checksum_mismatch") => &["checksum"],
        Some("length_mismatch") => &["length"],
        _ => &["checksum", "length"],
    };
    if r.close || !kinds.contains(&r.error.kind()) {
        return Err(format!("integrity {:?} rejected as {r:?}", v.integrity()));
    }
    let mut content = unescape_with(&v.message, false);
    content.pop();
    let expected = general(&head(&content), 2);
    if r.reply.as_deref() != Some(expected.as_slice()) {
        return Err(format!(
            "integrity reply {:?}, expected {}",
            r.reply.as_deref().map(hex::encode),
            hex::encode(expected)
        ));
    }
    Ok(())
}

/// `(…)` text rows: the time request is echoed with the time, results are reports.
fn check_text(v: &Vector, config: &SessionConfig) -> Result<(), String> {
    let step = one_step(&v.message, config)?;
    let d = step
        .outcome
        .as_ref()
        .map_err(|r| format!("rejected: {r:?}"))?;
    let text = String::from_utf8(v.message.clone()).unwrap();
    let id = text[1..].split(',').next().unwrap();
    if d.device.as_ref().map(DeviceId::as_str) != Some(id) {
        return Err(format!("device {:?}", d.device));
    }
    let expected = text
        .contains("BASE,2")
        .then(|| text.replace("TIME", "20260102030405").into_bytes());
    if step.reply.as_deref() != expected.as_deref() {
        return Err(format!("reply {:?}", step.reply));
    }
    check_expectation(v, d)
}

// ---- over a real socket ----

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        s.read_exact(&mut b).unwrap();
        out.push(b[0]);
        if out.len() > 1 && b[0] == 0x7e {
            return out;
        }
    }
}

const PHONE: [u8; 6] = [0x01, 0x35, 0x11, 0x22, 0x11, 0x22];

fn request(msg_id: u16, serial: u16, body: &[u8]) -> (Head, Vec<u8>) {
    let h = Head {
        msg_id,
        attrs: body.len() as u16,
        version: None,
        terminal: PHONE.to_vec(),
        serial,
    };
    let mut c = msg_id.to_be_bytes().to_vec();
    c.extend_from_slice(&h.attrs.to_be_bytes());
    c.extend_from_slice(&PHONE);
    c.extend_from_slice(&serial.to_be_bytes());
    c.extend_from_slice(body);
    c.push(xor(&c));
    (h, escape(&c))
}

/// A 0x0200 body: 51.5° N, 0.125° W (west bit), 35 m, 72.5 km/h, 181°, 2026-03-04 05:06:07 (UTC config).
fn location_body() -> Vec<u8> {
    let mut b = 0u32.to_be_bytes().to_vec(); // alarm
    b.extend_from_slice(&(0b1011u32).to_be_bytes()); // ACC, fix, west
    b.extend_from_slice(&51_500_000u32.to_be_bytes());
    b.extend_from_slice(&125_000u32.to_be_bytes());
    b.extend_from_slice(&35i16.to_be_bytes());
    b.extend_from_slice(&725u16.to_be_bytes());
    b.extend_from_slice(&181u16.to_be_bytes());
    b.extend_from_slice(&[0x26, 0x03, 0x04, 0x05, 0x06, 0x07]);
    b.extend_from_slice(&[0x01, 0x04, 0, 0, 0x30, 0x39]); // mileage 12345 × 100 m
    b.extend_from_slice(&[0x31, 0x01, 0x09]); // 9 satellites
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_authenticate_report_and_bad_checksum_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("jt808", Transport::Tcp).unwrap();
    let http = gw.http;

    let text = tokio::task::spawn_blocking(move || {
        let mut s = connect(addr);
        // Garbage first: skipped, the connection stays usable.
        s.write_all(b"$$garbage").unwrap();

        // Registration → 0x8100 with the terminal id as auth code.
        let mut reg_body = vec![0u8; 37];
        reg_body.extend_from_slice(b"X");
        let (h, reg) = request(0x0100, 7, &reg_body);
        s.write_all(&reg).unwrap();
        let mut body = 7u16.to_be_bytes().to_vec();
        body.push(0);
        body.extend_from_slice(b"013511221122");
        assert_eq!(read_frame(&mut s), encode(&h, 0x8100, Some(0), &body));

        // Authentication → 0x8001 success, our serial counts up.
        let (h, auth) = request(0x0102, 8, b"013511221122");
        s.write_all(&auth).unwrap();
        let mut exp = encode(&h, 0x8001, Some(1), &[0, 8, 0x01, 0x02, 0]);
        assert_eq!(read_frame(&mut s), exp);

        // Location, split across two writes → 0x8001 success.
        let (h, loc) = request(0x0200, 9, &location_body());
        s.write_all(&loc[..10]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(&loc[10..]).unwrap();
        exp = encode(&h, 0x8001, Some(2), &[0, 9, 0x02, 0x00, 0]);
        assert_eq!(read_frame(&mut s), exp);

        // The same location with a broken XOR → 0x8001 "message error" (2).
        let (h, mut bad) = request(0x0200, 10, &location_body());
        let n = bad.len();
        bad[n - 2] ^= 0x01;
        s.write_all(&bad).unwrap();
        exp = encode(&h, 0x8001, Some(3), &[0, 10, 0x02, 0x00, 2]);
        assert_eq!(
            read_frame(&mut s),
            exp,
            "a bad checksum is never acked as accepted"
        );

        // Heartbeat → 0x8001 success.
        let (h, hb) = request(0x0002, 11, &[]);
        s.write_all(&hb).unwrap();
        exp = encode(&h, 0x8001, Some(4), &[0, 11, 0x00, 0x02, 0]);
        assert_eq!(read_frame(&mut s), exp);

        let (_, text) = http_get(http, "/metrics");
        text
    })
    .await
    .unwrap();

    let p = gw
        .engine
        .get(&DeviceId::new("13511221122").unwrap())
        .expect("position stored under the phone number without its leading zero");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap()
    );
    assert!((p.lat - 51.5).abs() < 1e-9, "{}", p.lat);
    assert!((p.lon + 0.125).abs() < 1e-9, "{}", p.lon);
    assert!((p.speed_kmh - 72.5).abs() < 1e-9);
    assert_eq!(p.course_deg, 181.0);
    assert_eq!(p.altitude_m, 35.0);
    assert_eq!(p.satellites, Some(9));
    assert!(p.valid);
    assert_eq!(
        p.attributes.get("odometer_m"),
        Some(&trackgate::model::AttrValue::Int(1_234_500))
    );
    let l = "protocol=\"jt808\"";
    assert_eq!(
        metric(
            &text,
            "trackgate_decode_errors_total",
            "kind=\"checksum\",protocol=\"jt808\""
        ),
        1.0
    );
    assert_eq!(metric(&text, "trackgate_positions_total", l), 1.0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_does_not_crash_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("jt808", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        let mut s = connect(addr);
        // Truncated header, a lone escape, an empty frame, random bytes.
        s.write_all(&[0x7e, 0x02, 0x00, 0x7e, 0x7d, 0x7e, 0x7e, 0x7e, 0xde, 0xad])
            .unwrap();
        s.write_all(&[0x7e, 0x7e]).unwrap();
        // Still served: a heartbeat gets its answer.
        let (h, hb) = request(0x0002, 1, &[]);
        s.write_all(&hb).unwrap();
        assert_eq!(
            read_frame(&mut s),
            encode(&h, 0x8001, Some(0), &[0, 1, 0x00, 0x02, 0])
        );
        // A fresh connection works too.
        let mut s2 = connect(addr);
        s2.write_all(&hb).unwrap();
        assert_eq!(
            read_frame(&mut s2),
            encode(&h, 0x8001, Some(0), &[0, 1, 0x00, 0x02, 0])
        );
    })
    .await
    .unwrap();
    gw.shutdown().await;
}

#[test]
fn key_targets_are_snake_case() {
    for (traccar, ours) in KEYS {
        assert!(
            ours.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{traccar} → {ours}"
        );
    }
}
