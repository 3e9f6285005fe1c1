//! Meitrack: every vector row through the replay driver (TCP with the
//! `\r\n` the captures omit, and as UDP datagrams), then the gateway over
//! real TCP and UDP sockets: CCC acks byte for byte, AAC, a bad checksum,
//! garbage.
//!
//! `@integrity` rows: a `checksum_mismatch` or `length_mismatch` is never
//! accepted (rejected as `checksum`/`length` when decoded whole, nothing
//! acknowledged over TCP); a row that only lacks its final `\r\n` is
//! accepted (see protocols/meitrack.md).

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use trackgate::model::DeviceId;
use trackgate::protocol::checksum::sum8;
use trackgate::protocol::testkit::{self, Vector};
use trackgate::protocol::{replay, DecodeContext, Protocol, SessionConfig, Transport};
use trackgate::protocols::meitrack::Meitrack;

use crate::support::{http_get, metric, start, test_config};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/protocols/vectors/meitrack.tsv"
);

/// Traccar's attribute names in the vectors → ours (beyond testkit::COMMON_KEYS).
const KEY_MAP: &[(&str, &str)] = &[
    ("tagTemp", "tag_temp_c"),
    ("tagName", "tag_name"),
    ("battery2Level", "battery2_level_pct"),
    ("lock", "lock"),
    ("image", "image"),
    ("hours", "engine_hours_s"),
];

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    }
}

/// `@@<flag><len>,<imei>,<cmd>,<value>*XX\r\n`.
fn answer(flag: char, imei: &str, cmd: &str, value: &str) -> Vec<u8> {
    let tail = format!(",{imei},{cmd},{value}*");
    let head = format!("@@{flag}{}{tail}", tail.len() + 4);
    format!("{head}{:02X}\r\n", sum8(head.as_bytes())).into_bytes()
}

fn fields(message: &[u8]) -> (char, String, String) {
    let text = String::from_utf8_lossy(message);
    let flag = text.chars().nth(2).unwrap();
    let mut parts = text.splitn(4, ',');
    parts.next();
    let imei = parts.next().unwrap().to_string();
    let cmd = parts.next().unwrap().chars().take(3).collect();
    (flag, imei, cmd)
}

fn strict_fault(v: &Vector) -> bool {
    v.integrity()
        .is_some_and(|i| i.contains("checksum_mismatch") || i.contains("length_mismatch"))
}

fn check(v: &Vector) -> Result<(), String> {
    if testkit::is_framer_row(v) {
        let mut s = Meitrack.session(&SessionConfig::new(Transport::Tcp));
        return testkit::check_framer(s.as_mut(), v);
    }
    let mut tcp = v.message.clone();
    if !tcp.ends_with(b"\r\n") {
        tcp.extend_from_slice(b"\r\n");
    }
    let (flag, imei, cmd) = fields(&v.message);
    for (transport, bytes) in [(Transport::Tcp, &tcp), (Transport::Udp, &v.message)] {
        let (steps, err) = replay(&Meitrack, transport, [bytes.as_slice()], &ctx());
        if strict_fault(v) {
            if let Some(s) = steps
                .iter()
                .find(|s| s.outcome.is_ok() || s.reply.is_some())
            {
                return Err(format!(
                    "{transport}: integrity row accepted or answered: {s:?}"
                ));
            }
            continue;
        }
        if let Some(e) = err {
            return Err(format!("{transport}: framing failed: {e}"));
        }
        let [step] = steps.as_slice() else {
            return Err(format!(
                "{transport}: expected one frame, got {}",
                steps.len()
            ));
        };
        if step.frame.as_ref() != bytes.as_slice() {
            return Err(format!("{transport}: frame differs from the row"));
        }
        let d = step
            .outcome
            .as_ref()
            .map_err(|r| format!("{transport}: rejected: {r:?}"))?;
        let id = DeviceId::new(&imei).unwrap();
        if d.device.as_ref() != Some(&id)
            || d.positions
                .iter()
                .any(|p| p.device_id != id || p.protocol != "meitrack")
        {
            return Err(format!("{transport}: identity wrong: {d:?}"));
        }
        let expected = match cmd.as_str() {
            "CCC" => Some(answer(flag, &imei, "CCC", &d.positions.len().to_string())),
            "AAC" => Some(answer('z', &imei, "AAC", "1")),
            _ => None,
        };
        if step.reply.as_deref() != expected.as_deref() {
            return Err(format!(
                "{transport}: reply {:?}, expected {:?}",
                step.reply,
                expected.map(|e| String::from_utf8_lossy(&e).into_owned())
            ));
        }
        testkit::check_expectation(&v.expectation, d, KEY_MAP)
            .map_err(|e| format!("{transport}: {e}"))?;
    }
    if strict_fault(v) {
        let mut s = Meitrack.session(&SessionConfig::new(Transport::Udp));
        match s.decode(&v.message, &ctx()) {
            Ok(d) => return Err(format!("integrity row accepted whole: {d:?}")),
            Err(r) if r.reply.is_some() || r.close => return Err(format!("{r:?}")),
            Err(r) if !["checksum", "length"].contains(&r.error.kind()) => {
                return Err(format!("integrity row rejected as {}", r.error))
            }
            Err(_) => {}
        }
    }
    Ok(())
}

#[test]
fn every_vector_row_meets_its_expectation() {
    let rows = testkit::run_file(VECTORS, check);
    assert_eq!(rows.len(), 52);
    assert_eq!(rows.iter().filter(|v| strict_fault(v)).count(), 10);
}

fn frame(flag: u8, imei: &str, command: &str, payload: &[u8]) -> Vec<u8> {
    let mut counted = format!(",{imei},{command},").into_bytes();
    counted.extend_from_slice(payload);
    counted.push(b'*');
    let mut out = format!("$${}{}", flag as char, counted.len() + 4).into_bytes();
    out.extend_from_slice(&counted);
    let sum = sum8(&out);
    out.extend_from_slice(format!("{sum:02X}\r\n").as_bytes());
    out
}

/// A CCC payload: header, then one 52-byte record per (lat, lon, secs since 2000, speed).
fn ccc(records: &[(i32, i32, u32, u16)]) -> Vec<u8> {
    let mut out = vec![0x02, 0x01, 0x34, 0x00, 0, 0, 0, 0];
    for &(lat, lon, secs, speed) in records {
        out.push(35);
        out.extend_from_slice(&lat.to_le_bytes());
        out.extend_from_slice(&lon.to_le_bytes());
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&[1, 9, 20]);
        for v in [speed, 90, 8, 150] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&1000u32.to_le_bytes());
        out.extend_from_slice(&60u32.to_le_bytes());
        for v in [262u16, 2, 1, 2, 0, 0, 410, 1250] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    out
}

const IMEI: &str = "861451040910625";
/// 2025-01-01T00:00:00Z in seconds since 2000-01-01.
const T2025: u32 = 789_004_800;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ccc_acks_aac_bad_checksums_and_garbage_over_tcp_and_udp() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let tcp = gw.addr("meitrack", Transport::Tcp).unwrap();
    let udp = gw.addr("meitrack", Transport::Udp).unwrap();
    let http = gw.http;

    let text = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(tcp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let read = |s: &mut TcpStream, n: usize| {
            let mut b = vec![0u8; n];
            s.read_exact(&mut b).unwrap();
            b
        };
        // AAA: stored, no reply. Then a CCC batch of two, written in two pieces.
        s.write_all(b"$$N127,863071013803066,AAA,35,-1.302680,36.852135,150409211026,A,9,0,0.1,0,5,1653,4096,32648,639|02|1004|90C,0000,0|0|0|3FF|300,*7C\r\n").unwrap();
        let batch = frame(b'Q', IMEI, "CCC", &ccc(&[
            (54_000_000, 25_000_000, T2025, 40),
            (54_001_000, 25_002_000, T2025 + 60, 63),
        ]));
        let (a, b) = batch.split_at(40);
        s.write_all(a).unwrap();
        s.write_all(b).unwrap();
        let ack = answer('Q', IMEI, "CCC", "2");
        assert_eq!(read(&mut s, ack.len()), ack);
        // A batch with a broken sum gets no ack: the next answer is AAC's.
        let mut bad = frame(b'Q', IMEI, "CCC", &ccc(&[(1, 1, T2025 + 120, 1)]));
        let n = bad.len();
        bad[n - 3] = if bad[n - 3] == b'0' { b'1' } else { b'0' };
        s.write_all(&bad).unwrap();
        s.write_all(format!("$$z27,{IMEI},AAC,1*D3\r\n").as_bytes()).unwrap();
        let aac = answer('z', IMEI, "AAC", "1");
        assert_eq!(read(&mut s, aac.len()), aac);

        // Garbage closes that connection only.
        let mut g = TcpStream::connect(tcp).unwrap();
        g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        g.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut one = [0u8; 1];
        assert!(matches!(g.read(&mut one), Ok(0) | Err(_)), "garbage closes");

        // UDP: one datagram, one ack.
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let dgram = frame(b'U', "013777001293701", "CCC", &ccc(&[(-7_266_504, 112_743_650, T2025, 18)]));
        u.send_to(&dgram, udp).unwrap();
        let mut buf = [0u8; 128];
        let n = u.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], answer('U', "013777001293701", "CCC", "1").as_slice());
        http_get(http, "/metrics").1
    })
    .await
    .unwrap();

    let p = gw
        .engine
        .get(&DeviceId::new(IMEI).unwrap())
        .expect("CCC stored");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 1, 0).unwrap()
    );
    assert!((p.lat - 54.001).abs() < 1e-9 && (p.lon - 25.002).abs() < 1e-9);
    assert_eq!(p.speed_kmh, 63.0);
    assert_eq!(p.course_deg, 90.0);
    assert_eq!(p.altitude_m, 150.0);
    assert_eq!(p.satellites, Some(9));
    assert!(p.valid);

    let q = gw
        .engine
        .get(&DeviceId::new("863071013803066").unwrap())
        .expect("AAA stored");
    assert_eq!(
        q.fix_time,
        Utc.with_ymd_and_hms(2015, 4, 9, 21, 10, 26).unwrap()
    );
    assert_eq!((q.lat, q.lon), (-1.30268, 36.852135));

    let r = gw
        .engine
        .get(&DeviceId::new("013777001293701").unwrap())
        .expect("UDP stored");
    assert!((r.lat + 7.266504).abs() < 1e-9);
    assert_eq!(r.speed_kmh, 18.0);

    let l = "protocol=\"meitrack\"";
    assert_eq!(metric(&text, "trackgate_positions_total", l), 4.0);
    assert_eq!(
        metric(
            &text,
            "trackgate_decode_errors_total",
            "kind=\"checksum\",protocol=\"meitrack\""
        ),
        1.0
    );
    gw.shutdown().await;
}

#[test]
fn answers_are_well_formed_envelopes() {
    assert_eq!(
        answer('z', IMEI, "AAC", "1"),
        b"@@z27,861451040910625,AAC,1*0B\r\n"
    );
}
