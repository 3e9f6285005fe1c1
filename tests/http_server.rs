//! The HTTP listener's connection handling against the running gateway:
//! clients that never finish their headers and idle keep-alive connections
//! are closed after `http.header_timeout_secs`; requests in time are served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::{http_get, start, test_config};

/// Reads until the server closes the connection (or 10 s pass); returns
/// what arrived and when the connection ended, counted from `since`.
fn until_closed(s: &mut TcpStream, since: Instant) -> (String, Duration) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("still open after 10 s: {e}"),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), since.elapsed())
}

fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_keep_alive_connections_are_closed_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.http.header_timeout_secs = 1;
    let gw = start(&config).await;
    let addr = gw.http;

    let (slow, idle, served) = tokio::task::spawn_blocking(move || {
        // Headers begun and never finished (a slowloris client).
        let mut slow = connect(addr);
        let t = Instant::now();
        slow.write_all(b"GET /health HTTP/1.1\r\nHost: trackgate\r\n")
            .unwrap();
        let slow = until_closed(&mut slow, t);

        // One request answered on a keep-alive connection, then silence.
        let mut idle = connect(addr);
        idle.write_all(b"GET /health HTTP/1.1\r\nHost: trackgate\r\n\r\n")
            .unwrap();
        let t = Instant::now();
        let idle = until_closed(&mut idle, t);

        // A client that sends its request at once is served as before.
        let served = http_get(addr, "/health");
        (slow, idle, served)
    })
    .await
    .unwrap();

    let (text, after) = slow;
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(5),
        "unfinished headers closed after {after:?}: {text:?}"
    );
    assert!(!text.contains("200 OK"), "{text:?}");

    let (text, after) = idle;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text:?}");
    assert!(text.contains("\"status\":\"ok\""), "{text:?}");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(5),
        "idle keep-alive connection closed after {after:?}"
    );

    assert_eq!(served.0, 200);
    assert!(served.1.contains("\"status\":\"ok\""), "{}", served.1);
    gw.shutdown().await;
}

/// A zero timeout is refused at start, with the key named.
#[test]
fn a_zero_header_timeout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.http.header_timeout_secs = 0;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("http.header_timeout_secs"), "{err}");
}
