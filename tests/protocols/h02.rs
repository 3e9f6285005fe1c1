//! h02: every vector row through the replay driver (over TCP and UDP where
//! the row says `tcp|udp`), then the running gateway over real sockets.
//!
//! - Text rows are sent as they are; over TCP a trailing `\r\n` is dropped by
//!   the framer. Binary rows of 32, 42 or 45 bytes go over TCP as one
//!   segment (the length is latched from it); every binary row goes over UDP
//!   as one datagram (the 47-byte capture only there: TCP devices send one
//!   of the three fixed lengths).
//! - The row with an empty id field (`*HQ,,V1,…`) follows a heartbeat from
//!   `HEARTBEAT_ID` on the same session, whose device it then belongs to.
//! - Replies are checked byte for byte: V1 → `*HQ,<id>,V4,V1,<time>#`, NBR →
//!   `*HQ,<id>,V4,NBR,<time>#`, HTBT/V0 → echo, everything else → nothing.
//! - H02 has no checksum: there are no `@integrity` rows, and no `@model` rows.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use trackgate::model::DeviceId;
use trackgate::protocol::testkit::{self, Vector};
use trackgate::protocol::{
    replay, replay_with, DecodeContext, MessageKind, Protocol, SessionConfig, Transport,
};
use trackgate::protocols::h02::H02;

use crate::support::{http_get, metric, start, test_config};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/protocols/vectors/h02.tsv");
const HEARTBEAT_ID: &str = "4109198974";

/// Traccar's attribute names → ours, beyond testkit::COMMON_KEYS.
const KEY_MAP: &[(&str, &str)] = &[
    ("odometer", "odometer_m"),
    ("fuel", "fuel_l"),
    ("rssi", "rssi"),
    ("sat", "satellites"),
    ("turnovers", "turnovers"),
];

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn ctx() -> DecodeContext {
    DecodeContext {
        received: received(),
    }
}

#[test]
fn every_vector_row_meets_its_expectation() {
    let rows = testkit::run_file(VECTORS, check);
    assert_eq!(rows.len(), 99);
    assert!(rows
        .iter()
        .all(|v| v.integrity().is_none() && v.tag("model").is_none()));
}

fn check(v: &Vector) -> Result<(), String> {
    if testkit::is_framer_row(v) {
        let mut session = H02.session(&SessionConfig::new(Transport::Tcp));
        return testkit::check_framer(session.as_mut(), v);
    }
    let binary = v.message.first() == Some(&b'$');
    let mut transports = Vec::new();
    if v.transport.contains("udp") {
        transports.push(Transport::Udp);
    }
    if v.transport.contains("tcp") && (!binary || [32, 42, 45].contains(&v.message.len())) {
        transports.push(Transport::Tcp);
    }
    for t in transports {
        check_on(v, t).map_err(|e| format!("{t}: {e}"))?;
    }
    Ok(())
}

fn check_on(v: &Vector, transport: Transport) -> Result<(), String> {
    let empty_id = v.message.starts_with(b"*HQ,,");
    let heartbeat = format!("*HQ,{HEARTBEAT_ID},V0#").into_bytes();
    let mut chunks: Vec<&[u8]> = Vec::new();
    if empty_id {
        chunks.push(&heartbeat);
    }
    chunks.push(&v.message);
    let (steps, frame_error) = replay(&H02, transport, chunks, &ctx());
    if let Some(e) = frame_error {
        return Err(format!("framing failed: {e}"));
    }
    let steps = if empty_id {
        steps.get(1..).unwrap_or_default()
    } else {
        &steps[..]
    };
    let [step] = steps else {
        return Err(format!(
            "expected one frame, got {}: {steps:?}",
            steps.len()
        ));
    };
    let expected_frame = match transport {
        Transport::Udp => &v.message[..],
        Transport::Tcp => v.message.strip_suffix(b"\r\n").unwrap_or(&v.message),
    };
    if step.frame.as_ref() != expected_frame {
        return Err("the frame cut differs from the row's bytes".into());
    }
    let d = step
        .outcome
        .as_ref()
        .map_err(|r| format!("rejected: {r:?}"))?;
    let id = device_of(v);
    if d.device.as_ref().map(DeviceId::as_str) != Some(id.as_str()) {
        return Err(format!("device {:?}, expected {id}", d.device));
    }
    for p in &d.positions {
        if p.device_id.as_str() != id || p.protocol != "h02" || p.received_time != received() {
            return Err(format!("position identity wrong: {p:?}"));
        }
    }
    let expected_reply = expected_reply(v, &id);
    if step.reply.as_deref() != expected_reply.as_deref() {
        return Err(format!(
            "reply {:?}, expected {:?}",
            step.reply.as_deref().map(String::from_utf8_lossy),
            expected_reply.as_deref().map(String::from_utf8_lossy)
        ));
    }
    if d.reply.refuse.is_some() {
        return Err("h02 has no negative reply".into());
    }
    testkit::check_expectation(&v.expectation, d, KEY_MAP)
}

/// The id a row's message names.
fn device_of(v: &Vector) -> String {
    match v.message.first() {
        Some(b'$') if v.message.len() == 42 => hex::encode(&v.message[1..9])[..15].to_string(),
        Some(b'$') => hex::encode(&v.message[1..6]),
        _ => {
            let text = String::from_utf8_lossy(&v.message);
            let id = text.split(',').nth(1).unwrap_or("").to_string();
            if id.is_empty() {
                HEARTBEAT_ID.into()
            } else {
                id
            }
        }
    }
}

fn command_of(v: &Vector) -> String {
    String::from_utf8_lossy(&v.message)
        .trim_end()
        .trim_end_matches('#')
        .split(',')
        .nth(2)
        .unwrap_or("")
        .to_string()
}

fn expected_reply(v: &Vector, id: &str) -> Option<Vec<u8>> {
    if v.message.first() != Some(&b'*') {
        return None;
    }
    let time = received().format("%Y%m%d%H%M%S");
    let text = String::from_utf8_lossy(&v.message);
    let command = command_of(v);
    match command.as_str() {
        "V1" if !matches!(v.expectation, testkit::Expectation::NoPosition) => {
            Some(format!("*HQ,{id},V4,V1,{time}#").into_bytes())
        }
        "NBR" => Some(format!("*HQ,{id},V4,NBR,{time}#").into_bytes()),
        "HTBT" | "V0" => {
            let maker = &text[1..3];
            Some(format!("*{maker},{id},{command}#").into_bytes())
        }
        _ => None,
    }
}

/// A device on UTC+3 sends local time; the fix is stored in UTC.
#[test]
fn local_device_time_becomes_utc() {
    let mut config = SessionConfig::new(Transport::Udp);
    config.time_zone = chrono::FixedOffset::east_opt(3 * 3600).unwrap();
    let msg = b"*HQ,4210051415,V1,164549,A,0956.3869,N,08406.7068,W,000.00,000,221215,FFFFFBFF#";
    let (steps, _) = replay_with(&H02, &config, [&msg[..]], &ctx());
    let d = steps[0].outcome.as_ref().unwrap();
    assert_eq!(
        d.positions[0].fix_time,
        Utc.with_ymd_and_hms(2015, 12, 22, 13, 45, 49).unwrap()
    );
    assert_eq!(d.kind, MessageKind::Data);
}

// ---- the running gateway ------------------------------------------------

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads one `*…#` reply.
fn read_reply(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while out.last() != Some(&b'#') {
        s.read_exact(&mut b).unwrap();
        out.push(b[0]);
    }
    String::from_utf8(out).unwrap()
}

/// Whether nothing arrives within `wait`.
fn silent_for(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    let silent = matches!(s.read(&mut b), Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    silent
}

/// `*HQ,<id>,V4,V1,<14 digits>#` with a server time within a minute of now.
fn assert_v1_reply(reply: &str, id: &str) {
    let prefix = format!("*HQ,{id},V4,V1,");
    let time = reply
        .strip_prefix(&prefix)
        .and_then(|r| r.strip_suffix('#'))
        .unwrap_or_else(|| panic!("{reply}"));
    assert_eq!(time.len(), 14, "{reply}");
    let t = chrono::NaiveDateTime::parse_from_str(time, "%Y%m%d%H%M%S")
        .unwrap()
        .and_utc();
    assert!((Utc::now() - t).num_seconds().abs() < 60, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_heartbeat_reports_binary_records_and_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("h02", Transport::Tcp).unwrap();
    let http = gw.http;
    let text = tokio::task::spawn_blocking(move || {
        let mut s = connect(addr);
        // Heartbeat: echoed up to the command.
        s.write_all(b"*HQ,135790246811220,HTBT,100#").unwrap();
        assert_eq!(read_reply(&mut s), "*HQ,135790246811220,HTBT#");
        // V1 with a trailing CRLF, split over two writes: confirmed with the server time.
        s.write_all(b"*HQ,4210051415,V1,164549,A,0956.3869,N,0840")
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(b"6.7068,W,010.00,090,221215,FFFFFBFF#\r\n")
            .unwrap();
        assert_v1_reply(&read_reply(&mut s), "4210051415");
        // Line noise between messages is skipped; the connection stays.
        s.write_all(b"\x00\x01garbage\r\n").unwrap();
        // A binary record (32 bytes): no reply.
        s.write_all(
            &hex::decode("2441060116601245431311165035313006004318210e000000fffffbffff0024")
                .unwrap(),
        )
        .unwrap();
        assert!(
            silent_for(&mut s, Duration::from_millis(300)),
            "binary records get no reply"
        );
        // A malformed V1 (latitude minutes not a number): not confirmed.
        s.write_all(b"*HQ,4210051415,V1,164550,A,09x6.3869,N,08406.7068,W,0.00,0,221215,FFFFFBFF#")
            .unwrap();
        assert!(
            silent_for(&mut s, Duration::from_millis(300)),
            "a bad report is not confirmed"
        );
        // The connection still works.
        s.write_all(b"*HQ,135790246811220,V0#").unwrap();
        assert_eq!(read_reply(&mut s), "*HQ,135790246811220,V0#");
        http_get(http, "/metrics").1
    })
    .await
    .unwrap();

    let p = gw
        .engine
        .get(&DeviceId::new("4210051415").unwrap())
        .expect("V1 stored");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2015, 12, 22, 16, 45, 49).unwrap()
    );
    assert!((p.lat - 9.939781).abs() < 1e-5, "{}", p.lat);
    assert!((p.lon - -84.111780).abs() < 1e-5, "{}", p.lon);
    assert!((p.speed_kmh - 18.52).abs() < 1e-4, "{}", p.speed_kmh);
    assert_eq!(p.course_deg, 90.0);
    assert!(p.valid);

    let b = gw
        .engine
        .get(&DeviceId::new("4106011660").unwrap())
        .expect("binary stored");
    assert_eq!(
        b.fix_time,
        Utc.with_ymd_and_hms(2016, 11, 13, 12, 45, 43).unwrap()
    );
    assert!((b.lat - (50.0 + 35.3130 / 60.0)).abs() < 1e-6, "{}", b.lat);
    assert!((b.lon - (4.0 + 31.8210 / 60.0)).abs() < 1e-6, "{}", b.lon);

    let l = "protocol=\"h02\"";
    assert_eq!(metric(&text, "trackgate_positions_total", l), 2.0);
    assert_eq!(
        metric(
            &text,
            "trackgate_decode_errors_total",
            "kind=\"malformed\",protocol=\"h02\""
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "trackgate_connections", l),
        1.0,
        "still connected"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_report_is_confirmed_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("h02", Transport::Udp).unwrap();
    tokio::task::spawn_blocking(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.send_to(b"*HQ,2705171109,V1,213324,A,5002.5849,N,01433.7822,E,0.00,000,140613,FFFFFFFF#", addr)
            .unwrap();
        let mut buf = [0u8; 128];
        let n = s.recv(&mut buf).unwrap();
        assert_v1_reply(std::str::from_utf8(&buf[..n]).unwrap(), "2705171109");
        // A binary datagram: stored, no reply.
        s.send_to(&hex::decode("24410600082621532131081504419390060740418306000000fffffbfdff0015060000002c02dc0c000000001f").unwrap(), addr).unwrap();
    })
    .await
    .unwrap();
    let p = gw
        .engine
        .get(&DeviceId::new("2705171109").unwrap())
        .expect("stored");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2013, 6, 14, 21, 33, 24).unwrap()
    );
    assert!((p.lat - (50.0 + 2.5849 / 60.0)).abs() < 1e-6);
    assert!((p.lon - (14.0 + 33.7822 / 60.0)).abs() < 1e-6);
    let id = DeviceId::new("4106000826").unwrap();
    let mut waited = 0;
    while gw.engine.get(&id).is_none() && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let b = gw.engine.get(&id).expect("binary datagram stored");
    assert_eq!(
        b.fix_time,
        Utc.with_ymd_and_hms(2015, 8, 31, 21, 53, 21).unwrap()
    );
    assert!((b.lat - 4.69898).abs() < 1e-5 && (b.lon - -74.06971).abs() < 1e-5);
    gw.shutdown().await;
}
