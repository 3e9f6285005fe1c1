//! Records without a fix — an alarm sent without GPS, a status line — over
//! a real Wialon IPS connection: acknowledged only once stored, stored once
//! however often the device resends, never a device's latest position, and
//! served by `/reports` to the owner and, clamped to the permission's
//! window and logged, to a recipient; an outsider gets 404. They survive a
//! restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use support::partners::{call, gateway, get_raw, partner_log, setup, D1};
use support::{metric, start};
use trackgate::protocol::Transport;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn iso(ms: i64) -> String {
    trackgate::api::ms_to_rfc3339(ms)
}

/// A Wialon IPS 1.1 `#D#` line without coordinates at `ms` (second
/// precision), carrying `params`.
fn no_fix(ms: i64, params: &str) -> Vec<u8> {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
    format!(
        "#D#{};NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;{params}\r\n",
        t.format("%d%m%y;%H%M%S")
    )
    .into_bytes()
}

/// Sends `line` and returns the reply line, or `None` if none came within
/// `wait`.
fn send(s: &mut BufReader<TcpStream>, line: &[u8], wait: Duration) -> Option<String> {
    s.get_mut().set_read_timeout(Some(wait)).unwrap();
    s.get_mut().write_all(line).unwrap();
    let mut reply = String::new();
    match s.read_line(&mut reply) {
        Ok(n) if n > 0 => Some(reply),
        _ => None,
    }
}

fn reports(http: SocketAddr, key: &str, query: &str) -> (u16, Value) {
    call(
        http,
        "GET",
        &format!("/api/v1/devices/{D1}/reports?{query}"),
        Some(key),
        None,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_without_a_fix_is_stored_before_its_ack_and_read_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let (http, faults) = (gw.http, gw.history.faults.clone());
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    let wialon = gw.addr("wialon", Transport::Tcp).unwrap();
    let now = now_ms();
    let h = 3_600_000;
    // Whole seconds: the wire has no milliseconds.
    let (sos_at, status_at) = ((now - 2 * h) / 1000 * 1000, (now - h / 6) / 1000 * 1000);
    let world = tokio::task::spawn_blocking(move || {
        let w = setup(http, tcp);
        let mut s = BufReader::new(TcpStream::connect(wialon).unwrap());
        let login = format!("#L#{D1};NA\r\n");
        let wait = Duration::from_secs(5);
        assert_eq!(
            send(&mut s, login.as_bytes(), wait).as_deref(),
            Some("#AL#1\r\n")
        );
        let sos = no_fix(sos_at, "sos:1:1,board:2:12.5");
        assert_eq!(send(&mut s, &sos, wait).as_deref(), Some("#AD#1\r\n"));
        // The device missed the ack and resends: acked again, stored once.
        assert_eq!(send(&mut s, &sos, wait).as_deref(), Some("#AD#1\r\n"));
        // While storage fails the record is not acked; once it recovers
        // the device's resend is.
        let status = no_fix(status_at, "status:3:parked");
        faults.fail_commits.store(true, Ordering::SeqCst);
        assert_eq!(send(&mut s, &status, Duration::from_millis(1500)), None);
        faults.fail_commits.store(false, Ordering::SeqCst);
        assert_eq!(send(&mut s, &status, wait).as_deref(), Some("#AD#1\r\n"));
        w
    })
    .await
    .unwrap();
    assert_eq!(
        gw.history.count().await.unwrap(),
        2,
        "two reports, each once"
    );
    let m = gw.metrics.render();
    // Accepted, the resend included (as positions are counted).
    assert_eq!(
        metric(&m, "trackgate_reports_total", "protocol=\"wialon\""),
        3.0
    );
    assert_eq!(
        metric(&m, "trackgate_positions_total", "protocol=\"wialon\""),
        0.0
    );

    let range = format!("from={}&to={}", iso(now - 4 * h), iso(now + h)).replace('+', "%2B");
    let w = world;
    let pid = tokio::task::spawn_blocking(move || {
        // The owner reads both, oldest first, with their attributes.
        let (st, v) = reports(w.http, &w.carrier_user, &range);
        assert_eq!(st, 200, "{v}");
        let list = v["reports"].as_array().unwrap();
        assert_eq!(list.len(), 2, "{v}");
        assert_eq!(list[0]["time"], iso(sos_at));
        assert_eq!(list[0]["protocol"], "wialon");
        assert_eq!(list[0]["attributes"]["sos"], 1);
        assert_eq!(list[0]["attributes"]["board"], 12.5);
        assert_eq!(list[1]["time"], iso(status_at));
        assert_eq!(list[1]["attributes"]["status"], "parked");
        let received =
            chrono::DateTime::parse_from_rfc3339(list[1]["received_time"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
        assert!((now..=now_ms()).contains(&received), "{v}");
        assert_eq!(v["next_cursor"], Value::Null);
        // They are no positions: neither in the history nor the latest.
        let (_, v) = call(
            w.http,
            "GET",
            &format!("/api/v1/devices/{D1}/positions?{range}"),
            Some(&w.carrier_user),
            None,
        );
        assert_eq!(v["positions"].as_array().unwrap().len(), 0, "{v}");
        let (_, v) = call(
            w.http,
            "GET",
            &format!("/api/v1/devices/{D1}/position"),
            Some(&w.carrier_user),
            None,
        );
        assert_eq!(v["position"], Value::Null, "{v}");
        // Pages of one, then the cursor.
        let (_, p1) = reports(w.http, &w.carrier_user, &format!("{range}&limit=1"));
        assert_eq!(p1["reports"][0]["time"], iso(sos_at));
        let cursor = p1["next_cursor"].as_str().unwrap().to_string();
        let (_, p2) = reports(
            w.http,
            &w.carrier_user,
            &format!("{range}&limit=1&cursor={cursor}"),
        );
        assert_eq!(p2["reports"].as_array().unwrap().len(), 1, "{p2}");
        assert_eq!(p2["reports"][0]["time"], iso(status_at));
        assert_eq!(p2["next_cursor"], Value::Null);

        // A recipient whose permission started 1 h ago sees the status
        // line only, and the read is logged before it is answered.
        let (st, perm) = call(
            w.http,
            "POST",
            "/api/v1/permissions",
            Some(&w.carrier),
            Some(
                serde_json::json!({"name": "tour", "recipient_company_id": "0815",
                "device_ids": [D1], "valid_from": iso(now - h), "valid_until": iso(now + h)}),
            ),
        );
        assert_eq!(st, 201, "{perm}");
        let pid = perm["id"].as_i64().unwrap();
        let (st, logged, body) = get_raw(
            w.http,
            &format!("/api/v1/devices/{D1}/reports?{range}"),
            &w.shipper_user,
        );
        assert_eq!(st, 200);
        assert!(logged.is_some(), "the read names its log entry");
        let v: Value = serde_json::from_slice(&body).unwrap();
        let list = v["reports"].as_array().unwrap();
        assert_eq!(
            list.len(),
            1,
            "the alarm before valid_from is clamped away: {v}"
        );
        assert_eq!(list[0]["attributes"]["status"], "parked");
        assert_eq!(v["from"], iso(now - h));
        // CSV: a header and the one report, its attributes as JSON.
        let (st, _, csv) = get_raw(
            w.http,
            &format!("/api/v1/devices/{D1}/reports?{range}&format=csv"),
            &w.shipper_user,
        );
        assert_eq!(st, 200);
        let csv = String::from_utf8(csv).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "device_id,time,received_time,protocol,attributes");
        assert_eq!(lines.len(), 2, "{csv}");
        assert!(
            lines[1].starts_with(&format!("{D1},{},", iso(status_at)))
                && lines[1].ends_with(",wialon,\"{\"\"status\"\":\"\"parked\"\"}\""),
            "{csv}"
        );
        let (st, _) = reports(w.http, &w.shipper_user, &format!("{range}&format=gpx"));
        assert_eq!(st, 400, "reports have no track");
        // Outsiders learn nothing, not even that the device exists.
        let (st, _) = reports(w.http, &w.outsider, &range);
        assert_eq!(st, 404);
        // The provider sees the recipient's reads, each with its count.
        let reads: Vec<Value> = partner_log(w.http, pid, &w.carrier)
            .into_iter()
            .filter(|e| e["query"] == "reports")
            .collect();
        assert_eq!(reads.len(), 2, "{reads:?}");
        assert_eq!(reads[0]["device_id"], D1);
        assert_eq!(reads[0]["positions"], 1);
        assert_eq!(reads[0]["channel"], "api");
        // Revoked: nothing more.
        let (st, _) = call(
            w.http,
            "DELETE",
            &format!("/api/v1/permissions/{pid}"),
            Some(&w.carrier),
            None,
        );
        assert_eq!(st, 204);
        let (st, _) = reports(w.http, &w.shipper_user, &range);
        assert_eq!(st, 404);
        (pid, w.carrier_user, range)
    })
    .await
    .unwrap();
    gw.shutdown().await;

    // After a restart the reports are still there and still no position.
    let config = {
        let mut c = support::test_config(dir.path());
        c.ingest.accept_unregistered_devices = false;
        c
    };
    let gw = start(&config).await;
    assert_eq!(gw.restored.0, 0, "no device has a latest position");
    let http = gw.http;
    tokio::task::spawn_blocking(move || {
        let (_, key, range) = pid;
        let (st, v) = reports(http, &key, &range);
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["reports"].as_array().unwrap().len(), 2, "{v}");
    })
    .await
    .unwrap();
    gw.shutdown().await;
}
