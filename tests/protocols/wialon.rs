//! Wialon IPS: every vector row through the replay driver (over TCP after a
//! login, and as UDP datagrams), then the gateway over real TCP and UDP
//! sockets: login, data acks byte for byte, CRC failure, garbage.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use trackgate::model::DeviceId;
use trackgate::protocol::testkit::{self, Vector};
use trackgate::protocol::{replay, DecodeContext, Decoded, MessageKind, Step, Transport};
use trackgate::protocols::wialon::Wialon;

use crate::support::{http_get, metric, start, test_config};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/protocols/vectors/wialon.tsv");
const IMEI: &str = "123456789012345";
const LOGIN: &[u8] = b"#L#123456789012345;NA\r\n";

/// Traccar's attribute names in the vectors → ours (beyond testkit::COMMON_KEYS).
const KEY_MAP: &[(&str, &str)] = &[("di_light", "di_light"), ("network", "network")];

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    }
}

/// The id a row names itself (prefix or login), else the session login.
fn row_id(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    let (prefix, rest) = text.split_once('#').unwrap();
    if let Some(body) = rest.strip_prefix("L#") {
        let f: Vec<&str> = body.split(';').collect();
        return if f[0].contains('.') { f[1] } else { f[0] }.to_string();
    }
    if prefix.is_empty() {
        IMEI.to_string()
    } else {
        prefix.rsplit(';').next().unwrap().to_string()
    }
}

fn expected_reply(message: &[u8], d: &Decoded) -> Vec<u8> {
    let text = String::from_utf8_lossy(message);
    let kind = text.split('#').nth(1).unwrap();
    match kind {
        "L" => b"#AL#1\r\n".to_vec(),
        "P" => b"#AP#\r\n".to_vec(),
        "SD" => b"#ASD#1\r\n".to_vec(),
        "D" => b"#AD#1\r\n".to_vec(),
        "B" => format!("#AB#{}\r\n", d.positions.len() + d.reports.len()).into_bytes(),
        other => panic!("no reply rule for {other}"),
    }
}

fn check_row(v: &Vector, transport: Transport) -> Result<(), String> {
    let needs_login = row_id(&v.message) == IMEI && !v.message.starts_with(b"#L#");
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    if needs_login {
        chunks.push(LOGIN.to_vec());
    }
    let mut msg = v.message.clone();
    if transport == Transport::Tcp {
        msg.extend_from_slice(b"\r\n");
    }
    chunks.push(msg.clone());
    let (steps, err) = replay(&Wialon, transport, chunks.iter().map(Vec::as_slice), &ctx());
    if let Some(e) = err {
        return Err(format!("{transport}: framing failed: {e}"));
    }
    let mut steps: &[Step] = &steps;
    if needs_login {
        let (first, rest) = steps.split_first().ok_or("no login step")?;
        if first.reply.as_deref() != Some(&b"#AL#1\r\n"[..]) {
            return Err(format!("{transport}: login step {first:?}"));
        }
        steps = rest;
    }
    let [step] = steps else {
        return Err(format!("{transport}: expected one step, got {steps:?}"));
    };
    if step.frame.as_ref() != msg.as_slice() {
        return Err(format!("{transport}: frame differs from the row"));
    }
    let d = step
        .outcome
        .as_ref()
        .map_err(|r| format!("{transport}: rejected: {r:?}"))?;
    let id = DeviceId::new(&row_id(&v.message)).unwrap();
    if d.device.as_ref() != Some(&id) {
        return Err(format!(
            "{transport}: device {:?}, expected {id:?}",
            d.device
        ));
    }
    if d.positions
        .iter()
        .any(|p| p.device_id != id || p.protocol != "wialon")
        || d.reports.iter().any(|r| r.device_id != id)
    {
        return Err(format!("{transport}: record identity wrong: {d:?}"));
    }
    let expected = expected_reply(&v.message, d);
    if step.reply.as_deref() != Some(expected.as_slice()) {
        return Err(format!(
            "{transport}: reply {:?}, expected {:?}",
            step.reply,
            String::from_utf8_lossy(&expected)
        ));
    }
    if d.kind == MessageKind::Login && d.reply.refuse.as_deref() != Some(&b"#AL#0\r\n"[..]) {
        return Err("login refusal must be #AL#0".into());
    }
    testkit::check_expectation(&v.expectation, d, KEY_MAP).map_err(|e| format!("{transport}: {e}"))
}

#[test]
fn every_vector_row_meets_its_expectation_over_tcp_and_udp() {
    let rows = testkit::run_file(VECTORS, |v| {
        if v.integrity().is_some() || v.tag("model").is_some() || testkit::is_framer_row(v) {
            return Err("wialon rows carry no @integrity, @model or framer rows".into());
        }
        check_row(v, Transport::Tcp)?;
        check_row(v, Transport::Udp)
    });
    assert_eq!(rows.len(), 27);
}

fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_udp_sessions_get_exact_answers_and_store_positions() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let tcp = gw.addr("wialon", Transport::Tcp).unwrap();
    let udp = gw.addr("wialon", Transport::Udp).unwrap();
    let http = gw.http;

    let text = tokio::task::spawn_blocking(move || {
        let s = TcpStream::connect(tcp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        w.write_all(b"#L#2.0;123456789012345;secret;CE45\r\n").unwrap();
        assert_eq!(read_line(&mut r), "#AL#1\r\n");
        w.write_all(b"#P#\r\n").unwrap();
        assert_eq!(read_line(&mut r), "#AP#\r\n");
        // 2.0 short data with a good CRC, split over two writes.
        w.write_all(b"#SD#300924;154245;5554.350052;N;3644.6704").unwrap();
        w.write_all(b"10;E;2.92;NA;NA;NA;7A01\r\n").unwrap();
        assert_eq!(read_line(&mut r), "#ASD#1\r\n");
        // The same with a wrong CRC: the CRC-error answer, nothing stored.
        w.write_all(b"#SD#300924;164245;5554.350052;N;3644.670410;E;2.92;NA;NA;NA;7A01\r\n")
            .unwrap();
        assert_eq!(read_line(&mut r), "#ASD#14\r\n");
        // Garbage: an error line, the connection stays.
        w.write_all(b"\x00\x01garbage\r\n#XX#\r\n").unwrap();
        w.write_all(b"#B#270425;205601;5544.6025;N;03739.6834;E;1;2;3;4|270425;205701;5544.6025;N;03739.6834;E;36;90;150;7\r\n").unwrap();
        assert_eq!(read_line(&mut r), "#AB#2\r\n");

        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        u.send_to(b"99999999#D#270425;205801;5544.6025;S;03739.6834;W;18;45;-4;9;0.8;NA;NA;NA;NA;fuel:2:45.8\r\n", udp)
            .unwrap();
        let mut buf = [0u8; 64];
        let n = u.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"#AD#1\r\n");
        http_get(http, "/metrics").1
    })
    .await
    .unwrap();

    let p = gw
        .engine
        .get(&DeviceId::new(IMEI).unwrap())
        .expect("stored");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2025, 4, 27, 20, 57, 1).unwrap()
    );
    assert!((p.lat - 55.743375).abs() < 1e-9, "{}", p.lat);
    assert!((p.lon - 37.66139).abs() < 1e-9, "{}", p.lon);
    assert_eq!(p.speed_kmh, 36.0);
    assert_eq!(p.course_deg, 90.0);
    assert_eq!(p.altitude_m, 150.0);
    assert_eq!(p.protocol, "wialon");

    let q = gw
        .engine
        .get(&DeviceId::new("99999999").unwrap())
        .expect("udp stored");
    assert_eq!(
        q.fix_time,
        Utc.with_ymd_and_hms(2025, 4, 27, 20, 58, 1).unwrap()
    );
    assert!((q.lat + 55.743375).abs() < 1e-9);
    assert!((q.lon + 37.66139).abs() < 1e-9);
    assert_eq!(q.speed_kmh, 18.0);
    assert_eq!(q.satellites, Some(9));

    let l = "protocol=\"wialon\"";
    assert_eq!(
        metric(&text, "trackgate_positions_total", l),
        4.0,
        "SD, 2×B, UDP D"
    );
    assert_eq!(
        metric(
            &text,
            "trackgate_decode_errors_total",
            "kind=\"checksum\",protocol=\"wialon\""
        ),
        1.0
    );
    gw.shutdown().await;
}
