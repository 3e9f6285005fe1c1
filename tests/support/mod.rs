//! Shared helpers for tests that talk to a real gateway over real sockets:
//! an in-process gateway on ephemeral ports, the release binary as a child
//! process, a minimal HTTP/1.1 client, and metric lookup.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub mod partners;

use trackgate::app::{self, Running};
use trackgate::config::Config;

/// A config with every protocol and HTTP on 127.0.0.1 ephemeral ports.
pub fn test_config(data_dir: &std::path::Path) -> Config {
    let mut c = Config {
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    c.http.listen = "127.0.0.1:0".parse().unwrap();
    for p in trackgate::protocol::registry() {
        c.set_listen(&format!("{}=127.0.0.1:0", p.name())).unwrap();
    }
    c.engine.index_interval_ms = 50;
    // Protocol tests speak for devices nobody registered; the API tests
    // register theirs and switch this off.
    c.ingest.accept_unregistered_devices = true;
    c
}

/// Starts an in-process gateway.
pub async fn start(config: &Config) -> Running {
    app::start(config).await.expect("gateway starts")
}

/// GET `path` over a fresh connection; returns status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_request(addr, "GET", path, &[], None)
}

/// A minimal HTTP/1.1 request (Connection: close); status and text body.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let r = http_raw(addr, method, path, headers, body);
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

/// An HTTP answer with its head and (de-chunked) body bytes.
pub struct HttpResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// A minimal HTTP/1.1 request (Connection: close), bodies kept as bytes.
pub fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpResponse {
    let mut s = TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("bad http response: {}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    let mut r = HttpResponse {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    };
    if r.header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        r.body = dechunk(&r.body);
    }
    r
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..nl]).unwrap_or("0");
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[(nl + 2 + n + 2).min(b.len())..];
    }
    out
}

/// `/metrics` once `done` holds for it, polled every 20 ms for at most
/// 10 s (then the last text, for the caller's asserts to explain): what
/// the metrics count may land a commit or a task switch after the event.
pub fn metrics_when(http: SocketAddr, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, text) = http_get(http, "/metrics");
        if done(&text) || std::time::Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The value of the series `name{labels}` in Prometheus text, 0 if absent.
/// `labels` is the exact label set as rendered, e.g. `protocol="teltonika"`.
pub fn metric(text: &str, name: &str, labels: &str) -> f64 {
    let want = if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            (series == want).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// The gateway binary as a child process, killed on drop.
pub struct Process {
    pub child: Child,
    pub http: SocketAddr,
    /// The admin token printed on first start.
    pub admin_token: Option<String>,
    /// (protocol, transport, addr) as printed at start-up.
    pub listening: Vec<(String, String, SocketAddr)>,
}

impl Process {
    /// Starts `trackgate` with `args` and waits for its listening list.
    pub fn spawn(args: &[&str]) -> Process {
        Self::spawn_with_env(args, &[])
    }

    /// As [`spawn`](Self::spawn), with `env` added to the environment.
    pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trackgate"))
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn trackgate");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut http = None;
        let mut admin_token = None;
        let mut listening = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("read stdout");
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["http", addr, ..] => http = Some(addr.parse().unwrap()),
                ["admin", "token", .., token] => admin_token = Some(token.to_string()),
                [proto, transport @ ("tcp" | "udp"), addr] => listening.push((
                    proto.to_string(),
                    transport.to_string(),
                    addr.parse().unwrap(),
                )),
                [] if http.is_some() => break,
                _ => {}
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Process {
            child,
            http: http.expect("trackgate printed its http address"),
            admin_token,
            listening,
        }
    }

    pub fn addr(&self, protocol: &str, transport: &str) -> SocketAddr {
        self.listening
            .iter()
            .find(|(p, t, _)| p == protocol && t == transport)
            .map(|(_, _, a)| *a)
            .unwrap_or_else(|| panic!("{protocol}/{transport} not listening: {:?}", self.listening))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM")
    }

    /// Sends `SIG<name>` (e.g. `INT`) and waits for the exit status.
    pub fn signal(&mut self, name: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes `token` the operator's admin token for a gateway on `data_dir`.
pub fn write_admin_token(data_dir: &std::path::Path, token: &str) {
    use sha2::Digest;
    std::fs::create_dir_all(data_dir).unwrap();
    let hash = sha2::Sha256::digest(token.as_bytes());
    std::fs::write(data_dir.join("admin-token.sha256"), hex::encode(hash)).unwrap();
}

/// Connects to a Teltonika TCP listener and logs in as `imei`; asserts the
/// login is accepted.
pub fn login_teltonika(addr: SocketAddr, imei: u64) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&trackgate::simulate::login_packet(imei))
        .unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    assert_eq!(b[0], 1, "login accepted");
    s
}

/// Sends a Teltonika AVL packet; the 4-byte ack count, or None when none
/// came within `wait`.
pub fn send_avl(s: &mut TcpStream, packet: &[u8], wait: Duration) -> Option<u32> {
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(packet).unwrap();
    let mut b = [0u8; 4];
    match s.read_exact(&mut b) {
        Ok(()) => Some(u32::from_be_bytes(b)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("read: {e}"),
    }
}

/// A fix of `device` at `fix_ms` (received 10 ms later) for history tests.
pub fn fix(device: &str, fix_ms: i64, lat: f64) -> trackgate::model::Position {
    use chrono::TimeZone;
    trackgate::model::Position {
        device_id: trackgate::model::DeviceId::new(device).unwrap(),
        fix_time: chrono::Utc.timestamp_millis_opt(fix_ms).unwrap(),
        received_time: chrono::Utc.timestamp_millis_opt(fix_ms + 10).unwrap(),
        lat,
        lon: 13.4,
        altitude_m: 30.0,
        speed_kmh: 50.0,
        course_deg: 90.0,
        satellites: Some(8),
        valid: true,
        protocol: "teltonika",
        attributes: Default::default(),
    }
}

/// Every stored fix of `device` as (fix ms, lat, lon), in key order.
pub async fn stored_fixes(h: &trackgate::history::History, device: &str) -> Vec<(i64, f64, f64)> {
    let page = h
        .range(trackgate::history::Range {
            device: trackgate::model::DeviceId::new(device).unwrap(),
            from_ms: 0,
            to_ms: i64::MAX,
            limit: 100_000,
            after: None,
            records: trackgate::history::Records::Positions,
        })
        .await
        .unwrap();
    page.positions
        .iter()
        .map(|p| (p.fix_time.timestamp_millis(), p.lat, p.lon))
        .collect()
}

/// A device's whole history paged `limit` at a time, through cursors that
/// went through their text form: (fix ms, lat) in order.
pub async fn all_pages(
    h: &trackgate::history::History,
    device: &str,
    limit: usize,
) -> Vec<(i64, f64)> {
    use trackgate::history::{Cursor, Range};
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = h
            .range(Range {
                device: trackgate::model::DeviceId::new(device).unwrap(),
                from_ms: 0,
                to_ms: i64::MAX,
                limit,
                after,
                records: trackgate::history::Records::Positions,
            })
            .await
            .unwrap();
        out.extend(
            page.positions
                .iter()
                .map(|p| (p.fix_time.timestamp_millis(), p.lat)),
        );
        match page.next {
            Some(c) => after = Some(Cursor::decode(&c.encode()).unwrap()),
            None => return out,
        }
    }
}

/// A report of `device` at `time_ms` whose one attribute `a` is `value`.
pub fn no_fix(device: &str, time_ms: i64, value: i64) -> trackgate::model::Report {
    let mut attributes = trackgate::model::Attributes::new();
    attributes.push(
        trackgate::model::AttrKey::named("a"),
        trackgate::model::AttrValue::Int(value),
    );
    trackgate::model::Report {
        device_id: trackgate::model::DeviceId::new(device).unwrap(),
        time: chrono::DateTime::from_timestamp_millis(time_ms).unwrap(),
        protocol: "wialon",
        attributes,
    }
}

/// What every history backend must do with reports (records without a
/// fix), on a store holding nothing of `device` yet: each stored once
/// however often resent, two different ones of the same millisecond both;
/// read apart from the positions, paged through text cursors; never the
/// latest position. `t0` is a fix time in ms.
pub async fn reports_keep_the_store_contract(
    h: &trackgate::history::History,
    device: &str,
    t0: i64,
) {
    use trackgate::config::AckMode::Durable;
    use trackgate::history::{Cursor, Range, Records};
    let before = h.count().await.unwrap();
    let positions = [fix(device, t0, 50.0), fix(device, t0 + 2000, 50.1)];
    let reports = [
        no_fix(device, t0 + 1000, 1),
        no_fix(device, t0 + 1000, 2),
        no_fix(device, t0 + 3000, 3),
    ];
    h.append_records(&positions, &reports[..2], Durable)
        .await
        .unwrap();
    h.flush().await.unwrap();
    // Resent, with one more; the last one stays in the journal where the
    // embedded store has one.
    h.append_records(&positions[1..], &reports, Durable)
        .await
        .unwrap();
    assert_eq!(
        h.count().await.unwrap() - before,
        5,
        "two positions, three reports"
    );
    let range = |limit, after, records| Range {
        device: trackgate::model::DeviceId::new(device).unwrap(),
        from_ms: t0,
        to_ms: t0 + 10_000,
        limit,
        after,
        records,
    };
    for limit in [1, 2, 10] {
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = h
                .range(range(limit, after, Records::Reports))
                .await
                .unwrap();
            assert!(page.positions.is_empty());
            assert!(page.reports.len() <= limit);
            got.extend(page.reports.iter().map(|(r, received)| {
                assert_eq!((r.device_id.as_str(), r.protocol), (device, "wialon"));
                assert!(*received >= r.time, "stamped received at the append");
                let a = match r.attributes.get("a") {
                    Some(trackgate::model::AttrValue::Int(a)) => *a,
                    other => panic!("attribute a: {other:?}"),
                };
                (r.time.timestamp_millis(), a)
            }));
            match page.next {
                Some(c) => after = Some(Cursor::decode(&c.encode()).unwrap()),
                None => break,
            }
        }
        // The two of one millisecond come in the order of their content's
        // digest: the same wherever they are stored.
        let mut same_ms = got[..2].to_vec();
        same_ms.sort();
        assert_eq!(
            same_ms,
            [(t0 + 1000, 1), (t0 + 1000, 2)],
            "limit {limit}: {got:?}"
        );
        assert_eq!(got[2..], [(t0 + 3000, 3)], "limit {limit}");
    }
    let page = h.range(range(10, None, Records::Positions)).await.unwrap();
    assert!(page.reports.is_empty());
    let fixes: Vec<_> = page
        .positions
        .iter()
        .map(|p| (p.fix_time.timestamp_millis(), p.lat))
        .collect();
    assert_eq!(fixes, [(t0, 50.0), (t0 + 2000, 50.1)]);
    h.flush().await.unwrap();
    let latest = h.latest_all().await.unwrap();
    let latest = latest
        .iter()
        .find(|p| p.device_id.as_str() == device)
        .unwrap();
    assert_eq!(
        latest.fix_time.timestamp_millis(),
        t0 + 2000,
        "the later report is no position"
    );
}
