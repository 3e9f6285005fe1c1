//! OsmAnd: every vector row (a full HTTP request) through the replay
//! driver, then the gateway over real TCP: keep-alive requests answered
//! `200 OK` byte for byte, query/form/JSON positions stored with the right
//! units, a bad request answered 400 on the same connection, chunked 411
//! and garbage 400 with close.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use trackgate::model::DeviceId;
use trackgate::protocol::testkit::{self, Expectation, Vector};
use trackgate::protocol::{replay, DecodeContext, Transport};
use trackgate::protocols::osmand::Osmand;

use crate::support::{http_get, metric, start, test_config};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/protocols/vectors/osmand.tsv");
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
const BAD: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

/// Traccar's attribute names in the vectors → ours (beyond testkit::COMMON_KEYS).
const KEY_MAP: &[(&str, &str)] = &[("device_integer_twelve_test", "device_integer_twelve_test")];

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    }
}

fn check(v: &Vector) -> Result<(), String> {
    if v.transport != "http" || v.integrity().is_some() || testkit::is_framer_row(v) {
        return Err("osmand rows are plain http requests".into());
    }
    let (steps, err) = replay(&Osmand, Transport::Tcp, [v.message.as_slice()], &ctx());
    if let Some(e) = err {
        return Err(format!("framing failed: {e}"));
    }
    let [step] = steps.as_slice() else {
        return Err(format!("expected one request, got {}", steps.len()));
    };
    if step.frame.as_ref() != v.message.as_slice() {
        return Err("the request cut differs from the row".into());
    }
    match &step.outcome {
        // A request without a device id: 400, nothing stored.
        Err(r) if v.expectation == Expectation::NoPosition => {
            if r.reply.as_deref() != Some(BAD) || r.close {
                return Err(format!("refusal {r:?}"));
            }
            Ok(())
        }
        Err(r) => Err(format!("rejected: {r:?}")),
        Ok(d) => {
            if step.reply.as_deref() != Some(OK) {
                return Err(format!("reply {:?}", step.reply));
            }
            testkit::check_expectation(&v.expectation, d, KEY_MAP)
        }
    }
}

#[test]
fn every_vector_row_meets_its_expectation() {
    let rows = testkit::run_file(VECTORS, check);
    assert_eq!(rows.len(), 15);
}

fn read_response(s: &mut TcpStream) -> Vec<u8> {
    // Every answer is a head with Content-Length: 0.
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut b).unwrap(),
            1,
            "connection closed early: {out:?}"
        );
        out.push(b[0]);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_requests_are_answered_and_positions_stored() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("osmand", Transport::Tcp).unwrap();
    let http = gw.http;

    let text = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // GET query: speed in knots.
        s.write_all(b"GET /?id=353861053849681&lat=49.60688&lon=6.15788&timestamp=2014-06-04+09%3A10%3A11&altitude=384.7&speed=10.0&bearing=45 HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut s), OK);
        // Malformed: 400 on the same connection, which stays usable.
        s.write_all(b"GET /?id=353861053849681&lat=abc&lon=1 HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut s), BAD);
        // Form POST, split across writes.
        let body = "id=777&lat=60.5&lon=30.25&timestamp=1700000000&speed=0";
        let req = format!("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let (a, b) = req.split_at(50);
        s.write_all(a.as_bytes()).unwrap();
        s.write_all(b.as_bytes()).unwrap();
        assert_eq!(read_response(&mut s), OK);
        // JSON: speed in m/s.
        let json = r#"{"location":{"timestamp":"2025-06-15T13:45:12.862Z","coords":{"latitude":37.4219983,"longitude":-122.084,"speed":5,"heading":90,"altitude":5}},"device_id":"48241179"}"#;
        s.write_all(format!("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}", json.len()).as_bytes()).unwrap();
        assert_eq!(read_response(&mut s), OK);

        // Chunked: 411 and the connection closes.
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nid=12\r\n0\r\n\r\n").unwrap();
        let mut all = Vec::new();
        c.read_to_end(&mut all).unwrap();
        assert!(all.starts_with(b"HTTP/1.1 411 Length Required\r\n"), "{all:?}");

        // Garbage: 400 and close; the gateway keeps serving.
        let mut g = TcpStream::connect(addr).unwrap();
        g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        g.write_all(b"\x16\x03\x01\x02\x00garbage\r\n\r\n").unwrap();
        let mut all = Vec::new();
        g.read_to_end(&mut all).unwrap();
        assert!(all.starts_with(b"HTTP/1.1 400 Bad Request\r\n"), "{all:?}");
        http_get(http, "/metrics").1
    })
    .await
    .unwrap();

    let p = gw
        .engine
        .get(&DeviceId::new("353861053849681").unwrap())
        .expect("query stored");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2014, 6, 4, 9, 10, 11).unwrap()
    );
    assert_eq!((p.lat, p.lon), (49.60688, 6.15788));
    assert!(
        (p.speed_kmh - 18.52).abs() < 1e-4,
        "knots → km/h: {}",
        p.speed_kmh
    );
    assert_eq!(p.course_deg, 45.0);
    assert!(
        (p.altitude_m - 384.7).abs() < 1e-3,
        "engine keeps f32: {}",
        p.altitude_m
    );
    assert_eq!(p.protocol, "osmand");

    let f = gw
        .engine
        .get(&DeviceId::new("777").unwrap())
        .expect("form stored");
    assert_eq!(f.fix_time.timestamp(), 1_700_000_000);
    assert_eq!((f.lat, f.lon), (60.5, 30.25));

    let j = gw
        .engine
        .get(&DeviceId::new("48241179").unwrap())
        .expect("json stored");
    assert_eq!(
        j.fix_time,
        Utc.timestamp_millis_opt(1_749_995_112_862).unwrap()
    );
    assert_eq!(j.speed_kmh, 18.0, "m/s → km/h");
    assert_eq!(j.course_deg, 90.0);

    let l = "protocol=\"osmand\"";
    assert_eq!(metric(&text, "trackgate_positions_total", l), 3.0);
    assert_eq!(
        metric(
            &text,
            "trackgate_decode_errors_total",
            "kind=\"malformed\",protocol=\"osmand\""
        ),
        2.0,
        "the bad query and the garbage head"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_failure_answers_503_and_the_retry_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let addr = gw.addr("osmand", Transport::Tcp).unwrap();
    let faults = gw.history.faults.clone();
    faults
        .fail_commits
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let req = b"GET /?id=503test&lat=52.5&lon=13.4&timestamp=1764158400&speed=10 HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut s = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(req).unwrap();
        let r = read_response(&mut s);
        assert!(
            r.starts_with(b"HTTP/1.1 503 "),
            "{}",
            String::from_utf8_lossy(&r)
        );
        s
    })
    .await
    .unwrap();
    assert!(gw.engine.get(&DeviceId::new("503test").unwrap()).is_none());
    faults
        .fail_commits
        .store(false, std::sync::atomic::Ordering::SeqCst);
    s = tokio::task::spawn_blocking(move || {
        s.write_all(req).unwrap();
        assert_eq!(read_response(&mut s), OK);
        s
    })
    .await
    .unwrap();
    drop(s);
    let p = gw.engine.get(&DeviceId::new("503test").unwrap()).unwrap();
    assert_eq!((p.lat, p.lon), (52.5, 13.4));
    assert_eq!(gw.history.count().await.unwrap(), 1);
    gw.shutdown().await;
}
