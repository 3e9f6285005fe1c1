//! ruptela: every vector row through the replay driver with its exact
//! reply, and the gateway over a real TCP socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use trackgate::model::DeviceId;
use trackgate::protocol::testkit::{self, Expectation, Vector};
use trackgate::protocol::{replay, DecodeContext, SessionConfig, Transport};
use trackgate::protocols::ruptela::Ruptela;

use crate::support::{http_get, metric, start, test_config};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/protocols/vectors/ruptela.tsv");

/// Traccar's attribute names in the vectors → ours (beyond testkit::COMMON_KEYS).
const KEYS: &[(&str, &str)] = &[];

const RECORDS_ACK: [u8; 6] = [0x00, 0x02, 0x64, 0x01, 0x13, 0xbc];

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    }
}

fn kermit(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// `00 02 | command + 100 | status | CRC-16/KERMIT`, computed here
/// independently (records are acked as command 0: `64`).
fn reply(command: u8, status: u8) -> Vec<u8> {
    let c = [command + 100, status];
    let mut out = vec![0, 2, c[0], c[1]];
    out.extend_from_slice(&kermit(&c).to_be_bytes());
    out
}

#[test]
fn every_vector_row_meets_its_expectation() {
    let rows = testkit::run_file(VECTORS, check);
    assert_eq!(rows.len(), 16);
}

fn check(v: &Vector) -> Result<(), String> {
    let (steps, err) = replay(&Ruptela, Transport::Tcp, [v.message.as_slice()], &ctx());
    let command = v.message[10];
    if v.integrity().is_some() {
        let first = steps.first().ok_or(format!("no frame (framer: {err:?})"))?;
        let r = match &first.outcome {
            Ok(d) => return Err(format!("integrity row accepted: {d:?}")),
            Err(r) => r,
        };
        if !matches!(r.error.kind(), "checksum" | "length") || r.close {
            return Err(format!("rejected as {r:?}"));
        }
        let expected =
            matches!(command, 1 | 68 | 9).then(|| reply(if command == 9 { 9 } else { 0 }, 0));
        if first.reply.as_deref() != expected.as_deref() {
            return Err(format!("integrity reply {:?}", first.reply));
        }
        // Whatever follows the short frame is never accepted either.
        if steps.iter().any(|s| s.outcome.is_ok()) {
            return Err("a later frame of the integrity row was accepted".into());
        }
        return Ok(());
    }
    if let Some(e) = err {
        return Err(format!("framing failed: {e}"));
    }
    let [step] = steps.as_slice() else {
        return Err(format!("expected one frame, got {}", steps.len()));
    };
    let d = step
        .outcome
        .as_ref()
        .map_err(|r| format!("rejected: {r:?}"))?;
    let imei = format!(
        "{:015}",
        u64::from_be_bytes(v.message[2..10].try_into().unwrap())
    );
    let device = DeviceId::new(&imei).unwrap();
    if d.device.as_ref() != Some(&device) {
        return Err(format!("device {:?}", d.device));
    }
    for p in &d.positions {
        if p.device_id != device || p.protocol != "ruptela" || p.received_time != ctx().received {
            return Err(format!("position identity wrong: {p:?}"));
        }
    }
    let expected = match command {
        1 | 68 => Some(RECORDS_ACK.to_vec()),
        9 => Some(reply(9, 1)),
        15 | 16 => Some(reply(command, 1)),
        _ => None,
    };
    if step.reply.as_deref() != expected.as_deref() {
        return Err(format!(
            "reply {:?}, expected {:?}",
            step.reply.as_deref().map(hex::encode),
            expected.map(hex::encode)
        ));
    }
    // Records without a fix are reports, not positions at 0,0: Traccar's
    // "positions, location unchecked" means records were decoded.
    if matches!(
        v.expectation,
        Expectation::Positions {
            location_checked: false
        }
    ) && d.positions.is_empty()
    {
        return if d.reports.is_empty() {
            Err("no records".into())
        } else {
            Ok(())
        };
    }
    testkit::check_expectation(&v.expectation, d, KEYS)
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

fn packet(imei: u64, command: u8, data: &[u8]) -> Vec<u8> {
    let mut payload = imei.to_be_bytes().to_vec();
    payload.push(command);
    payload.extend_from_slice(data);
    let mut out = (payload.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&payload);
    out.extend_from_slice(&kermit(&payload).to_be_bytes());
    out
}

/// One command-1 record: 2023-11-14T22:13:20Z, 54.6543210 N 25.3456789 E,
/// 123.4 m, 270.5°, 9 satellites, 88 km/h, HDOP 1.2, event 7, power 12.345 V.
fn record_data() -> Vec<u8> {
    let mut d = vec![0, 1];
    d.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(&253_456_789i32.to_be_bytes());
    d.extend_from_slice(&546_543_210i32.to_be_bytes());
    d.extend_from_slice(&1234u16.to_be_bytes());
    d.extend_from_slice(&27_050u16.to_be_bytes());
    d.push(9);
    d.extend_from_slice(&88u16.to_be_bytes());
    d.push(12);
    d.push(7);
    d.extend_from_slice(&[0, 1, 29, 0x30, 0x39, 0, 0]);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identification_records_heartbeat_and_bad_crc_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("ruptela", Transport::Tcp).unwrap();
    let http = gw.http;
    const IMEI: u64 = 13_226_005_504_143;

    let text = tokio::task::spawn_blocking(move || {
        let mut s = connect(addr);
        s.write_all(&packet(IMEI, 15, &[0; 20])).unwrap();
        assert_eq!(read_n(&mut s, 6), reply(15, 1), "identification accepted");

        let p = packet(IMEI, 1, &record_data());
        s.write_all(&p[..7]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(&p[7..]).unwrap();
        assert_eq!(read_n(&mut s, 6), RECORDS_ACK);

        let mut bad = packet(IMEI, 1, &record_data());
        let n = bad.len();
        bad[n - 1] ^= 0xff;
        s.write_all(&bad).unwrap();
        assert_eq!(
            read_n(&mut s, 6),
            reply(0, 0),
            "a bad CRC gets the negative ack"
        );

        s.write_all(&packet(IMEI, 16, &[])).unwrap();
        assert_eq!(read_n(&mut s, 6), reply(16, 1), "heartbeat answered");
        let (_, text) = http_get(http, "/metrics");
        text
    })
    .await
    .unwrap();

    let p = gw
        .engine
        .get(&DeviceId::new("013226005504143").unwrap())
        .expect("position stored");
    assert_eq!(p.fix_time, Utc.timestamp_opt(1_700_000_000, 0).unwrap());
    assert!((p.lat - 54.654321).abs() < 1e-9);
    assert!((p.lon - 25.3456789).abs() < 1e-9);
    assert_eq!(p.speed_kmh, 88.0);
    assert!((p.course_deg - 270.5).abs() < 1e-3);
    assert!((p.altitude_m - 123.4).abs() < 1e-3, "{}", p.altitude_m);
    assert_eq!(p.satellites, Some(9));
    assert_eq!(
        p.attributes.get("power_v"),
        Some(&trackgate::model::AttrValue::Float(12.345))
    );
    assert_eq!(
        metric(
            &text,
            "trackgate_decode_errors_total",
            "kind=\"checksum\",protocol=\"ruptela\""
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "trackgate_positions_total", "protocol=\"ruptela\""),
        1.0
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_device_gets_no_ack_for_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.ingest.accept_unregistered_devices = false;
    let gw = start(&config).await;
    let addr = gw.addr("ruptela", Transport::Tcp).unwrap();
    const IMEI: u64 = 13_226_005_504_144;
    tokio::task::spawn_blocking(move || {
        let mut s = connect(addr);
        s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        s.write_all(&packet(IMEI, 1, &record_data())).unwrap();
        let mut b = [0u8; 6];
        let r = s.read(&mut b);
        assert!(
            matches!(&r, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
            "records of an unknown device get no reply at all: {r:?} {b:02x?}"
        );
        // Its identification is refused, and the connection closed.
        let mut s = connect(addr);
        s.write_all(&packet(IMEI, 15, &[0; 20])).unwrap();
        assert_eq!(read_n(&mut s, 6), reply(15, 0), "identification refused");
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)), "then closed");
    })
    .await
    .unwrap();
    assert!(gw
        .engine
        .get(&DeviceId::new("013226005504144").unwrap())
        .is_none());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_closes_only_its_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("ruptela", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        let mut s = connect(addr);
        s.write_all(&[0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]).unwrap();
        let mut b = [0u8; 1];
        assert!(
            matches!(s.read(&mut b), Ok(0) | Err(_)),
            "an impossible length closes"
        );
        let mut s2 = connect(addr);
        s2.write_all(&packet(1, 16, &[])).unwrap();
        assert_eq!(read_n(&mut s2, 6), reply(16, 1), "the server still serves");
    })
    .await
    .unwrap();
    gw.shutdown().await;
}

#[test]
fn decode_cli_path_uses_the_registry() {
    let p = trackgate::protocol::find("ruptela").expect("registered");
    assert_eq!(p.default_port(), 5046);
    let _ = p.session(&SessionConfig::new(Transport::Tcp));
}
