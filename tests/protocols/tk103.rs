//! tk103: every vector row through the replay driver (TCP and UDP), then
//! the running gateway over real sockets.
//!
//! - Rows are whole `(…)` frames; each is sent alone on a fresh session.
//! - A cell/Wi-Fi-only row whose expectation is a position (`DW5B`) is sent
//!   after a fix from the same device on the same session: such frames are
//!   placed at the session's last fix (as Traccar places them at the last
//!   known location).
//! - Replies byte for byte: fixed-form BP00 → `(<id>AP01HSO)`, fixed-form
//!   BP05 → `(<id>AP05)`, everything else → nothing.
//! - TK103 has no checksum: no `@integrity` rows; no `@model` rows.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use trackgate::model::DeviceId;
use trackgate::protocol::testkit::{self, Expectation, Vector};
use trackgate::protocol::{replay, DecodeContext, Protocol, SessionConfig, Transport};
use trackgate::protocols::tk103::Tk103;

use crate::support::{http_get, metric, start, test_config};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/protocols/vectors/tk103.tsv");

/// Traccar's attribute names → ours, beyond testkit::COMMON_KEYS.
const KEY_MAP: &[(&str, &str)] = &[
    ("fuel", "fuel_raw"),
    ("odometer", "odometer_m"),
    ("batteryTemp2", "battery_temp2_c"),
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
    assert_eq!(rows.len(), 78);
    assert!(rows
        .iter()
        .all(|v| v.integrity().is_none() && v.tag("model").is_none()));
}

fn command_and_id(message: &[u8]) -> (String, String, bool) {
    let text = String::from_utf8_lossy(message);
    let body = text.trim_start_matches('(');
    match body.split_once(',') {
        Some((id, rest))
            if rest.len() >= 4
                && rest.as_bytes()[..2].iter().all(u8::is_ascii_uppercase)
                && rest.as_bytes().get(4).is_none_or(|b| *b == b',') =>
        {
            (rest[..4].to_string(), id.to_string(), true)
        }
        _ => (
            body.get(12..16).unwrap_or("").to_string(),
            body.get(..12).unwrap_or("").to_string(),
            false,
        ),
    }
}

fn check(v: &Vector) -> Result<(), String> {
    if testkit::is_framer_row(v) {
        let mut session = Tk103.session(&SessionConfig::new(Transport::Tcp));
        return testkit::check_framer(session.as_mut(), v);
    }
    for t in [Transport::Udp, Transport::Tcp] {
        check_on(v, t).map_err(|e| format!("{t}: {e}"))?;
    }
    Ok(())
}

fn check_on(v: &Vector, transport: Transport) -> Result<(), String> {
    let (command, id, comma) = command_and_id(&v.message);
    let needs_fix =
        command.starts_with("DW5") && matches!(v.expectation, Expectation::Position { .. });
    let prior =
        format!("({id},DW30,050117,A,5135.82713N,00001.17918E,0.089,154745,000.0,43.40,12)")
            .into_bytes();
    let mut chunks: Vec<&[u8]> = Vec::new();
    if needs_fix {
        chunks.push(&prior);
    }
    chunks.push(&v.message);
    let (steps, frame_error) = replay(&Tk103, transport, chunks, &ctx());
    if let Some(e) = frame_error {
        return Err(format!("framing failed: {e}"));
    }
    let steps = if needs_fix {
        steps.get(1..).unwrap_or_default()
    } else {
        &steps[..]
    };
    let [step] = steps else {
        return Err(format!("expected one frame, got {}", steps.len()));
    };
    if step.frame.as_ref() != v.message.as_slice() {
        return Err("the frame cut differs from the row's bytes".into());
    }
    let d = step
        .outcome
        .as_ref()
        .map_err(|r| format!("rejected: {r:?}"))?;
    if d.device.is_none() {
        return Err("no device".into());
    }
    for p in &d.positions {
        if Some(&p.device_id) != d.device.as_ref()
            || p.protocol != "tk103"
            || p.received_time != received()
        {
            return Err(format!("position identity wrong: {p:?}"));
        }
    }
    let fixed = !comma
        && d.device
            .as_ref()
            .is_some_and(|dev| dev.as_str().len() == 12);
    let expected_reply = match command.as_str() {
        "BP00" if fixed => Some(format!("({id}AP01HSO)").into_bytes()),
        "BP05" if fixed => Some(format!("({id}AP05)").into_bytes()),
        _ => None,
    };
    if step.reply.as_deref() != expected_reply.as_deref() {
        return Err(format!(
            "reply {:?}, expected {:?}",
            step.reply.as_deref().map(String::from_utf8_lossy),
            expected_reply.as_deref().map(String::from_utf8_lossy)
        ));
    }
    if d.reply.refuse.is_some() {
        return Err("tk103 has no negative reply".into());
    }
    testkit::check_expectation(&v.expectation, d, KEY_MAP)
}

// ---- the running gateway ------------------------------------------------

fn read_frame(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while out.last() != Some(&b')') {
        s.read_exact(&mut b).unwrap();
        out.push(b[0]);
    }
    String::from_utf8(out).unwrap()
}

fn silent_for(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    let silent = matches!(s.read(&mut b), Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    silent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_handshake_login_position_and_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("tk103", Transport::Tcp).unwrap();
    let http = gw.http;
    let text = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"(088047365460BP00088047365460HSO)").unwrap();
        assert_eq!(read_frame(&mut s), "(088047365460AP01HSO)");
        // Login with a fix, split across two writes.
        s.write_all(b"(088047365460BP05354188047365460150929A3258.1754S027").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(b"55.4323E009.4193927301.9000000000L00000000)").unwrap();
        assert_eq!(read_frame(&mut s), "(088047365460AP05)");
        // Noise, then a BR00 position: stored, no reply.
        s.write_all(b"garbage)$$\r\n(088047365460BR00151024A2555.3531S02855.3329E004.7055148276.1701000000L00009AA3)").unwrap();
        assert!(silent_for(&mut s, Duration::from_millis(300)), "positions get no reply");
        // A malformed report: counted, nothing sent, connection stays.
        s.write_all(b"(088047365460BR00151024A9955.3531S02855.3329E004.7055148276.1701000000L00009AA3)").unwrap();
        assert!(silent_for(&mut s, Duration::from_millis(300)));
        s.write_all(b"(088047365460BP00HSO)").unwrap();
        assert_eq!(read_frame(&mut s), "(088047365460AP01HSO)");
        http_get(http, "/metrics").1
    })
    .await
    .unwrap();
    let p = gw
        .engine
        .get(&DeviceId::new("088047365460").unwrap())
        .expect("stored");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2015, 10, 24, 5, 51, 48).unwrap()
    );
    assert!((p.lat - -25.92255).abs() < 1e-5, "{}", p.lat);
    assert!((p.lon - 28.92222).abs() < 1e-5, "{}", p.lon);
    assert!((p.speed_kmh - 4.7).abs() < 1e-4, "{}", p.speed_kmh);
    assert!((p.course_deg - 276.17).abs() < 1e-3);
    let l = "protocol=\"tk103\"";
    assert_eq!(metric(&text, "trackgate_positions_total", l), 2.0);
    assert_eq!(
        metric(
            &text,
            "trackgate_decode_errors_total",
            "kind=\"malformed\",protocol=\"tk103\""
        ),
        1.0
    );
    assert_eq!(metric(&text, "trackgate_connections", l), 1.0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_handshake_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("tk103", Transport::Udp).unwrap();
    tokio::task::spawn_blocking(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.send_to(b"(012345678901BP00HSO)", addr).unwrap();
        let mut buf = [0u8; 64];
        let n = s.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"(012345678901AP01HSO)");
        s.send_to(
            b"(352606090042050,BP05,240414,A,4527.3513N,00909.9758E,4.80,112825,155.49)",
            addr,
        )
        .unwrap();
    })
    .await
    .unwrap();
    let id = DeviceId::new("352606090042050").unwrap();
    let mut waited = 0;
    while gw.engine.get(&id).is_none() && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let p = gw.engine.get(&id).expect("stored");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2014, 4, 24, 11, 28, 25).unwrap()
    );
    assert!((p.lat - 45.45586).abs() < 1e-5 && (p.lon - 9.16626).abs() < 1e-5);
    assert!((p.speed_kmh - 4.8).abs() < 1e-4);
    gw.shutdown().await;
}
