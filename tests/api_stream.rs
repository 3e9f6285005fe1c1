//! Live positions over server-sent events, against the running gateway with
//! positions over real Teltonika TCP: a recipient's stream sends each newer
//! fix only after its access-log entry is committed (the event id is the
//! entry), a revocation removes the device within a tick, owners stream
//! unlogged, a revoked key ends its stream, streams are bounded per user,
//! and an open stream does not hold up the gateway's shutdown. A record
//! sent without a fix (over Wialon IPS) reaches open streams as a `report`,
//! logged first for a recipient and only within its window.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::partners::{call, gateway, grant, partner_log, report, setup, user, D1, D2};
use support::{metric, metrics_when};
use trackgate::protocol::Transport;

/// One server-sent event.
#[derive(Debug)]
struct Sse {
    event: String,
    id: Option<String>,
    data: Value,
}

/// A client reading a `text/event-stream` answer (chunked) event by event.
struct EventReader {
    r: BufReader<TcpStream>,
    text: String,
}

impl EventReader {
    /// Opens `path` with `key`; returns the status and, on 200, the reader.
    fn open(http: SocketAddr, path: &str, key: &str) -> (u16, Option<EventReader>) {
        let mut s = TcpStream::connect(http).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut chunked = false;
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            chunked |= line.eq_ignore_ascii_case("transfer-encoding: chunked\r\n");
        }
        if status != 200 {
            return (status, None);
        }
        assert!(chunked, "an open-ended stream is chunked");
        (
            status,
            Some(EventReader {
                r,
                text: String::new(),
            }),
        )
    }

    /// The next event (comments, i.e. keep-alives, skipped), or None when
    /// none comes within `wait`.
    fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut e = Sse {
                    event: "message".into(),
                    id: None,
                    data: Value::Null,
                };
                let mut data = String::new();
                for l in block.lines() {
                    if let Some(v) = l.strip_prefix("event:") {
                        e.event = v.trim().into();
                    } else if let Some(v) = l.strip_prefix("id:") {
                        e.id = Some(v.trim().into());
                    } else if let Some(v) = l.strip_prefix("data:") {
                        data += v.trim();
                    }
                }
                if data.is_empty() && e.id.is_none() && e.event == "message" {
                    continue; // a keep-alive comment
                }
                e.data = serde_json::from_str(&data).unwrap_or(Value::Null);
                return Some(e);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.r
                .get_ref()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut size = String::new();
            match self.r.read_line(&mut size) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(_) => return None,
            }
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0u8; n + 2];
            self.r
                .get_ref()
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            self.r.read_exact(&mut chunk).unwrap();
            self.text += &String::from_utf8_lossy(&chunk[..n]);
            if n == 0 {
                return None;
            }
        }
    }
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipients_stream_is_logged_before_each_event_and_ends_with_the_permission() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    let kept_open = tokio::task::spawn_blocking(move || {
        let w = setup(http, tcp);
        let pid = grant(http, &w.carrier, "Load 42", "0815", &[D1]);
        let t0 = chrono::Utc::now().timestamp_millis() as u64 + 1000;
        report(tcp, D1, t0, 52.52, 13.405);
        report(tcp, D2, t0, 48.1, 11.5);

        // Bad requests are refused before any stream opens.
        for (path, want) in [
            ("/api/v1/stream?scope=all", 400),
            ("/api/v1/stream?interval_ms=10", 400),
            ("/api/v1/stream?interval_ms=600000", 400),
        ] {
            let (st, _) = EventReader::open(http, path, &w.shipper_user);
            assert_eq!(st, want, "{path}");
        }
        let (st, _) = EventReader::open(http, "/api/v1/stream", "tg_wrong");
        assert_eq!(st, 401);

        // The snapshot: the shared truck only, its entry committed first.
        let path = "/api/v1/stream?scope=received&interval_ms=250";
        let (st, r) = EventReader::open(http, path, &w.shipper_user);
        assert_eq!(st, 200);
        let mut r = r.unwrap();
        let e = r.next(WAIT).expect("the first position");
        assert_eq!(e.event, "position");
        assert_eq!(
            (
                e.data["device_id"].clone(),
                e.data["position"]["lat"].clone()
            ),
            (json!(D1), json!(52.52))
        );
        assert_eq!(e.data["permission_id"], pid);
        let first: i64 = e.id.expect("the log entry's id").parse().unwrap();
        let entries = partner_log(http, pid, &w.carrier);
        let entry = entries
            .iter()
            .find(|x| x["id"] == first)
            .expect("committed before the event");
        assert_eq!(entry["event"], "read");
        assert_eq!(entry["channel"], "stream");
        assert_eq!(entry["query"], "stream");
        assert_eq!(entry["device_id"], D1);

        // A newer fix comes as the next event, with its own entry.
        report(tcp, D1, t0 + 1000, 52.6, 13.5);
        let e = r.next(WAIT).expect("the newer position");
        assert_eq!(
            (e.event.as_str(), e.data["position"]["lat"].clone()),
            ("position", json!(52.6))
        );
        let second: i64 = e.id.unwrap().parse().unwrap();
        assert!(second > first);
        assert!(partner_log(http, pid, &w.carrier)
            .iter()
            .any(|x| x["id"] == second && x["channel"] == "stream"));

        // Streams per user are bounded.
        // (Without a snapshot, so these send and log nothing.)
        let quiet = format!("{path}&changes_only=true");
        let mut more = Vec::new();
        for _ in 1..4 {
            let (st, r) = EventReader::open(http, &quiet, &w.shipper_user);
            assert_eq!(st, 200);
            more.push(r.unwrap());
        }
        let (st, _) = EventReader::open(http, &quiet, &w.shipper_user);
        assert_eq!(st, 503, "a fifth stream for one user");
        let open = |t: &str| metric(t, "trackgate_live_streams", "");
        assert_eq!(open(&metrics_when(http, |t| open(t) == 4.0)), 4.0);
        drop(more);
        // A client that went away is found at the next keep-alive (5 s).
        assert_eq!(open(&metrics_when(http, |t| open(t) == 1.0)), 1.0);

        // Revoked: the device leaves within a tick, and nothing follows.
        let (st, _) = call(
            http,
            "DELETE",
            &format!("/api/v1/permissions/{pid}"),
            Some(&w.carrier),
            None,
        );
        assert_eq!(st, 204);
        let e = r.next(WAIT).expect("the device leaves");
        assert_eq!(e.event, "gone");
        assert_eq!(
            (e.data["device_id"].clone(), e.data["permission_id"].clone()),
            (json!(D1), json!(pid))
        );
        report(tcp, D1, t0 + 2000, 52.7, 13.6);
        assert!(
            r.next(Duration::from_millis(1500)).is_none(),
            "nothing after revocation"
        );
        let streamed = partner_log(http, pid, &w.carrier)
            .iter()
            .filter(|x| x["channel"] == "stream")
            .count();
        assert_eq!(streamed, 2);

        // An owner streams its own devices, unlogged (no entry ids).
        let (st, r) = EventReader::open(
            http,
            "/api/v1/stream?scope=own&changes_only=true",
            &w.carrier,
        );
        assert_eq!(st, 200);
        let mut own = r.unwrap();
        report(tcp, D2, t0 + 3000, 48.2, 11.6);
        let e = own.next(WAIT).expect("only the change");
        assert_eq!(
            (
                e.data["device_id"].clone(),
                e.data["position"]["lat"].clone()
            ),
            (json!(D2), json!(48.2))
        );
        assert_eq!(e.id, None);

        // A revoked key ends its stream at the next tick.
        let key = user(http, "4711", "user");
        let path = "/api/v1/stream?scope=own&interval_ms=250";
        let (_, r) = EventReader::open(http, path, &key);
        let mut r = r.unwrap();
        let snapshot: Vec<String> = (0..2)
            .map(|_| {
                r.next(WAIT).unwrap().data["device_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(snapshot, [D1, D2]);
        let (_, me) = call(http, "GET", "/api/v1/session", Some(&key), None);
        let revoke = format!("/api/v1/api-keys/{}", me["api_key_id"]);
        let (st, _) = call(http, "DELETE", &revoke, Some(&key), None);
        assert_eq!(st, 204);
        let e = r.next(WAIT).expect("told why it ends");
        assert_eq!(
            (e.event.as_str(), e.data["error"].clone()),
            ("error", json!("unauthorized"))
        );
        assert!(r.next(WAIT).is_none(), "the stream has ended");
        own
    })
    .await
    .unwrap();
    // An open stream does not hold the gateway's shutdown.
    tokio::time::timeout(Duration::from_secs(10), gw.shutdown())
        .await
        .expect("shutdown with a live stream open");
    drop(kept_open);
}

/// Logs a Wialon IPS device in and sends one record without a fix at
/// `ms` (whole seconds) carrying `params`; asserts both acks.
fn no_fix_over_wialon(wialon: SocketAddr, imei: &str, ms: i64, params: &str) {
    let mut s = BufReader::new(TcpStream::connect(wialon).unwrap());
    s.get_ref().set_read_timeout(Some(WAIT)).unwrap();
    let at = chrono::DateTime::from_timestamp_millis(ms).unwrap();
    let mut line = String::new();
    for (send, want) in [
        (format!("#L#{imei};NA\r\n"), "#AL#1\r\n"),
        (
            format!(
                "#D#{};NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;{params}\r\n",
                at.format("%d%m%y;%H%M%S")
            ),
            "#AD#1\r\n",
        ),
    ] {
        s.get_mut().write_all(send.as_bytes()).unwrap();
        line.clear();
        s.read_line(&mut line).unwrap();
        assert_eq!(line, want, "{send:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_sent_while_a_stream_is_open_reaches_it_logged_for_the_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    let wialon = gw.addr("wialon", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        let w = setup(http, tcp);
        let pid = grant(http, &w.carrier, "Load 7", "0815", &[D1]);
        let path = "/api/v1/stream?scope=received&interval_ms=250";
        let (st, r) = EventReader::open(http, path, &w.shipper_user);
        assert_eq!(st, 200);
        let mut shipper = r.unwrap();
        let (st, r) = EventReader::open(
            http,
            "/api/v1/stream?scope=own&interval_ms=250",
            &w.carrier_user,
        );
        assert_eq!(st, 200);
        let mut owner = r.unwrap();
        // No fix yet: nothing to send, and no report before it happens.
        assert!(shipper.next(Duration::from_millis(600)).is_none());
        assert!(owner.next(Duration::from_millis(100)).is_none());

        // The shared truck's SOS (a whole second after the grant, which
        // the wire's seconds must not predate) and the unshared one's.
        let now = chrono::Utc::now().timestamp_millis();
        let sos_at = (now / 1000 + 1) * 1000;
        while chrono::Utc::now().timestamp_millis() <= sos_at {
            std::thread::sleep(Duration::from_millis(20));
        }
        // A record the truck kept from before the grant comes first: not
        // the recipient's to see.
        no_fix_over_wialon(wialon, D1, sos_at - 3_600_000, "buffered:1:1");
        no_fix_over_wialon(wialon, D1, sos_at, "sos:1:1");
        no_fix_over_wialon(wialon, D2, sos_at, "status:3:parked");

        let e = shipper.next(WAIT).expect("the shared truck's report");
        assert_eq!(e.event, "report");
        assert_eq!(
            (e.data["device_id"].clone(), e.data["permission_id"].clone()),
            (json!(D1), json!(pid))
        );
        assert_eq!(e.data["attributes"]["sos"], 1);
        assert_eq!(e.data["time"], trackgate::api::ms_to_rfc3339(sos_at));
        let id: i64 = e.id.expect("the log entry's id").parse().unwrap();
        let log = partner_log(http, pid, &w.carrier);
        let entry = log
            .iter()
            .find(|x| x["id"] == id)
            .expect("committed before the event");
        assert_eq!(
            (
                entry["channel"].clone(),
                entry["query"].clone(),
                entry["positions"].clone()
            ),
            (json!("stream"), json!("reports"), json!(1))
        );
        assert!(
            shipper.next(Duration::from_millis(800)).is_none(),
            "the unshared truck's report never reaches the recipient"
        );
        // The owner sees all three, unlogged.
        let mut seen = Vec::new();
        for _ in 0..3 {
            let e = owner.next(WAIT).expect("the owner's reports");
            assert_eq!(e.event, "report");
            assert!(e.id.is_none());
            let a = e.data["attributes"].as_object().unwrap();
            seen.push(format!(
                "{} {}",
                e.data["device_id"].as_str().unwrap(),
                a.keys().next().unwrap()
            ));
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                format!("{D1} buffered"),
                format!("{D1} sos"),
                format!("{D2} status")
            ]
        );
        assert_eq!(
            partner_log(http, pid, &w.carrier)
                .iter()
                .filter(|x| x["query"] == "reports")
                .count(),
            1
        );
    })
    .await
    .unwrap();
    gw.shutdown().await;
}
