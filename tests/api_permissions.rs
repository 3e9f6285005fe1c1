//! The partner-permission cycle over real HTTP against the running gateway,
//! with positions arriving over a real Teltonika connection: grant → read →
//! shipment number → access log (JSON, CSV, Excel read back) → revoke, for
//! provider, recipient and outsider; time windows; authentication on every
//! route; the access log surviving `kill -9`; tamper detection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use support::partners::{call, gateway, get_raw, report, setup, user, ADMIN, D1, D2, D9};
use support::{http_request, metric, start, test_config, write_admin_token};
use trackgate::model::DeviceId;
use trackgate::protocol::Transport;

/// The operator's security log once `done` holds for its entries: refused
/// calls are logged without making the caller wait.
fn security_log_until(http: SocketAddr, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut last = Value::Null;
    for _ in 0..500 {
        let (st, v) = call(http, "GET", "/api/v1/admin/security-log", Some(ADMIN), None);
        assert_eq!(st, 200, "{v}");
        let entries = v["entries"].as_array().unwrap().clone();
        if done(&entries) {
            return entries;
        }
        last = v;
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the security log never got there: {last}");
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn iso(ms: i64) -> String {
    trackgate::api::ms_to_rfc3339(ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_read_shipment_number_log_excel_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        let w = setup(http, tcp);
        let t0 = now_ms() as u64;
        // A fix from before the grant: never shown to the recipient.
        report(w.tcp, D1, t0 - 60_000, 50.1, 8.6);

        // Only a company admin grants, and only its own devices.
        let grant = json!({"name": "Load 42", "recipient_company_id": "0815", "device_ids": [D1]});
        let (st, _) = call(
            w.http,
            "POST",
            "/api/v1/permissions",
            Some(&w.carrier_user),
            Some(grant.clone()),
        );
        assert_eq!(st, 403, "a plain user cannot grant");
        let (st, v) = call(
            w.http,
            "POST",
            "/api/v1/permissions",
            Some(&w.carrier),
            Some(json!({"name": "x", "recipient_company_id": "0815", "device_ids": [D9]})),
        );
        assert_eq!(st, 400, "someone else's device: {v}");
        let (st, p) = call(
            w.http,
            "POST",
            "/api/v1/permissions",
            Some(&w.carrier),
            Some(grant),
        );
        assert_eq!(st, 201, "{p}");
        assert_eq!(p["kind"], "partner");
        assert_eq!(p["state"], "active");
        assert_eq!(p["devices"][0]["name"], "Truck 1");
        let pid = p["id"].as_i64().unwrap();

        // The recipient is told that access is logged before any read.
        let (st, r) = call(
            w.http,
            "GET",
            "/api/v1/permissions?side=received",
            Some(&w.shipper_user),
            None,
        );
        assert_eq!(st, 200);
        assert_eq!(r["permissions"][0]["id"], pid);
        assert_eq!(r["permissions"][0]["access_logged"], true);
        assert!(r["notice"].as_str().unwrap().contains("logged"));

        // Shared, but nothing since the grant: listed with a null position.
        let (st, logged, body) = get_raw(w.http, "/api/v1/devices?scope=received", &w.shipper_user);
        assert_eq!(st, 200);
        assert!(logged.is_some(), "list answer names its log entry");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["devices"].as_array().unwrap().len(), 1);
        assert_eq!(v["devices"][0]["device_id"], D1);
        assert_eq!(v["devices"][0]["permission_id"], pid);
        assert_eq!(v["devices"][0]["position"], Value::Null);

        // The owner sees the old fix; nobody else sees anything of D2 or D9.
        let (st, v) = call(
            w.http,
            "GET",
            &format!("/api/v1/devices/{D1}/position"),
            Some(&w.carrier_user),
            None,
        );
        assert_eq!(st, 200);
        assert!((v["position"]["lat"].as_f64().unwrap() - 50.1).abs() < 1e-6);
        for (key, dev) in [
            (&w.shipper_user, D2),
            (&w.shipper_user, D9),
            (&w.outsider, D1),
            (&w.shipper, "nope"),
        ] {
            let (st, v) = call(
                w.http,
                "GET",
                &format!("/api/v1/devices/{dev}/position"),
                Some(key),
                None,
            );
            assert_eq!(st, 404, "{dev}: {v}");
        }

        // A new fix arrives: the recipient sees it, and the read is logged.
        // Stamped now, after the grant, however long the steps above took.
        report(w.tcp, D1, now_ms() as u64, 50.2, 8.7);
        let (st, logged, body) = get_raw(
            w.http,
            &format!("/api/v1/devices/{D1}/position"),
            &w.shipper_user,
        );
        assert_eq!(st, 200);
        let first_read: i64 = logged.expect("logged header").parse().unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            (v["position"]["lat"].as_f64().unwrap() - 50.2).abs() < 1e-6,
            "{v}"
        );
        assert!((v["position"]["lon"].as_f64().unwrap() - 8.7).abs() < 1e-6);
        assert_eq!(v["position"]["speed_kmh"], 55.0);

        // Spatial query, received scope: the box holds D1 (index rebuilds every 50 ms).
        std::thread::sleep(Duration::from_millis(200));
        let (st, logged, body) = get_raw(
            w.http,
            "/api/v1/positions?scope=received&bbox=8,50,9,51",
            &w.shipper_user,
        );
        assert_eq!(st, 200);
        assert!(logged.is_some());
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["devices"][0]["device_id"], D1, "{v}");
        let (_, v) = call(
            w.http,
            "GET",
            "/api/v1/positions?scope=received&near=50.2,8.7&radius_m=1000",
            Some(&w.shipper_user),
            None,
        );
        assert_eq!(v["devices"][0]["device_id"], D1, "{v}");
        // A box without the truck tells where it is not: logged as well.
        let (st, missed, body) = get_raw(
            w.http,
            "/api/v1/positions?scope=received&bbox=0,0,1,1",
            &w.shipper_user,
        );
        assert_eq!(st, 200);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["devices"], json!([]));
        let missed: i64 = missed
            .expect("an empty spatial answer is logged too")
            .parse()
            .unwrap();
        let (st, _) = call(
            w.http,
            "GET",
            "/api/v1/positions?scope=received&bbox=8,50,9",
            Some(&w.shipper_user),
            None,
        );
        assert_eq!(st, 400, "bad bbox");

        // Shipment number: the recipient sets it; it is in force for later reads.
        let path = format!("/api/v1/permissions/{pid}/devices/{D1}/shipment-number");
        let (st, v) = call(
            w.http,
            "PUT",
            &path,
            Some(&w.shipper_user),
            Some(json!({"shipment_number": "=SUM(A1), \"X\""})),
        );
        assert_eq!(st, 200, "{v}");
        let (st, _) = call(
            w.http,
            "PUT",
            &path,
            Some(&w.carrier),
            Some(json!({"shipment_number": "x"})),
        );
        assert_eq!(st, 404, "the provider does not set shipment numbers");
        let (st, _) = call(
            w.http,
            "PUT",
            &path,
            Some(&w.shipper_user),
            Some(json!({"shipment_number": "x".repeat(201)})),
        );
        assert_eq!(st, 400, "length bound");
        let (st, _, _) = get_raw(
            w.http,
            &format!("/api/v1/devices/{D1}/position"),
            &w.shipper_user,
        );
        assert_eq!(st, 200);

        // The log: both sides see it; the outsider gets 404.
        let (st, _) = call(
            w.http,
            "GET",
            &format!("/api/v1/permissions/{pid}/access-log"),
            Some(&w.outsider),
            None,
        );
        assert_eq!(st, 404);
        let (st, log) = call(
            w.http,
            "GET",
            &format!("/api/v1/permissions/{pid}/access-log"),
            Some(&w.carrier_user),
            None,
        );
        assert_eq!(st, 200);
        let entries = log["entries"].as_array().unwrap();
        let events: Vec<&str> = entries
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(events[0], "grant");
        assert!(events.contains(&"shipment_number"));
        let reads: Vec<&Value> = entries.iter().filter(|e| e["event"] == "read").collect();
        assert_eq!(
            reads.len(),
            6,
            "list, latest, bbox, near, empty bbox, latest (404s are not partner reads): {events:?}"
        );
        let miss = reads
            .iter()
            .find(|e| e["id"] == missed)
            .expect("the empty answer's entry is in the log");
        assert_eq!(
            (&miss["device_id"], &miss["query"], &miss["positions"]),
            (&json!(D1), &json!("bbox"), &json!(0))
        );
        let r = reads
            .iter()
            .find(|e| e["id"] == first_read)
            .expect("the logged id is in the log");
        assert_eq!(r["device_id"], D1);
        assert_eq!(r["device_name"], "Truck 1");
        assert_eq!(r["channel"], "api");
        assert_eq!(r["query"], "latest");
        // The provider sees where every entry came from; the recipient
        // sees its own people's addresses, not the provider staff's.
        assert_eq!(
            entries[0]["client_addr"], "127.0.0.1",
            "the grant, to the provider"
        );
        let (st, theirs) = call(
            w.http,
            "GET",
            &format!("/api/v1/permissions/{pid}/access-log"),
            Some(&w.shipper_user),
            None,
        );
        assert_eq!(st, 200);
        let theirs = theirs["entries"].as_array().unwrap();
        assert_eq!(theirs[0]["event"], "grant");
        assert_eq!(
            (&theirs[0]["client_addr"], &theirs[0]["user_agent"]),
            (&Value::Null, &Value::Null)
        );
        let read = theirs.iter().find(|e| e["id"] == first_read).unwrap();
        assert_eq!(read["client_addr"], "127.0.0.1", "its own read");
        assert_eq!(r["positions"], 1);
        assert_eq!(r["provider_company_id"], "4711");
        assert_eq!(r["recipient_company_id"], "0815");
        assert_eq!(r["user_agent"], "trackgate-test/1");
        assert_eq!(r["client_addr"], "127.0.0.1");
        assert_eq!(r["shipment_number"], Value::Null, "before it was set");
        let last = reads.last().unwrap();
        assert_eq!(last["shipment_number"], "=SUM(A1), \"X\"");

        // Excel, read back with a reader crate.
        let (st, _, xlsx) = get_raw(
            w.http,
            &format!("/api/v1/permissions/{pid}/access-log?format=xlsx"),
            &w.shipper_user,
        );
        assert_eq!(st, 200);
        use calamine::Reader;
        let mut wb: calamine::Xlsx<_> =
            calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx)).unwrap();
        let sheets = wb.sheet_names().to_vec();
        assert_eq!(sheets, ["Permission", "Access log", "Changes"]);
        let summary = wb.worksheet_range(&sheets[0]).unwrap();
        let summary_text: Vec<String> = summary
            .rows()
            .flat_map(|r| r.iter().map(|c| c.to_string()))
            .collect();
        for want in [
            "Load 42",
            "4711",
            "0815",
            D1,
            "Truck 1",
            "partner",
            "active",
            "until revoked",
        ] {
            assert!(
                summary_text.iter().any(|c| c == want),
                "summary lacks {want}: {summary_text:?}"
            );
        }
        let sheet = wb.worksheet_range(&sheets[1]).unwrap();
        let rows: Vec<Vec<String>> = sheet
            .rows()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        let header = &rows[0];
        let col = |name: &str| {
            header
                .iter()
                .position(|h| h.to_lowercase().contains(name))
                .unwrap_or_else(|| panic!("no {name} column: {header:?}"))
        };
        // One row per retrieval, and nothing else on this sheet.
        let data: Vec<&Vec<String>> = rows[1..].iter().collect();
        assert_eq!(data.len(), 6);
        assert!(data.iter().all(|r| r[col("event")] == "read"), "{data:?}");
        let changes = wb.worksheet_range("Changes").unwrap();
        let events: Vec<String> = changes
            .rows()
            .skip(1)
            .map(|r| r[col("event")].to_string())
            .collect();
        assert!(
            events.contains(&"grant".to_string())
                && events.contains(&"shipment_number".to_string()),
            "{events:?}"
        );
        let lastrow = data.last().unwrap();
        assert_eq!(lastrow[col("device name")], "Truck 1");
        assert_eq!(lastrow[col("permission name")], "Load 42");
        assert_eq!(
            lastrow[col("shipment")],
            "=SUM(A1), \"X\"",
            "kept as text, not a formula"
        );
        assert_eq!(lastrow[col("provider")], "4711");
        assert_eq!(lastrow[col("recipient")], "0815");
        assert!(
            lastrow[col("date")].starts_with(&iso(now_ms())[..10]),
            "{:?}",
            lastrow[col("date")]
        );

        // CSV.
        let (st, _, csv) = get_raw(
            w.http,
            &format!("/api/v1/permissions/{pid}/access-log?format=csv"),
            &w.carrier,
        );
        assert_eq!(st, 200);
        let csv = String::from_utf8(csv).unwrap();
        assert!(csv.contains("Truck 1"));
        assert!(
            csv.contains("\"'=SUM(A1), \"\"X\"\"\""),
            "formula-safe and quoted: {csv}"
        );

        // Revoke: effective for the very next request.
        let (st, _) = call(
            w.http,
            "DELETE",
            &format!("/api/v1/permissions/{pid}"),
            Some(&w.shipper),
            None,
        );
        assert_eq!(st, 403, "the recipient cannot revoke");
        let (st, _) = call(
            w.http,
            "DELETE",
            &format!("/api/v1/permissions/{pid}"),
            Some(&w.carrier),
            None,
        );
        assert_eq!(st, 204);
        let (st, _) = call(
            w.http,
            "GET",
            &format!("/api/v1/devices/{D1}/position"),
            Some(&w.shipper_user),
            None,
        );
        assert_eq!(st, 404);
        let (_, v) = call(
            w.http,
            "GET",
            "/api/v1/devices?scope=received",
            Some(&w.shipper_user),
            None,
        );
        assert_eq!(v["devices"].as_array().unwrap().len(), 0);
        let (_, v) = call(
            w.http,
            "GET",
            "/api/v1/permissions?side=granted",
            Some(&w.carrier_user),
            None,
        );
        assert_eq!(v["permissions"][0]["state"], "revoked");
        let (_, log) = call(
            w.http,
            "GET",
            &format!("/api/v1/permissions/{pid}/access-log"),
            Some(&w.shipper),
            None,
        );
        let events: Vec<&str> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert!(
            events.contains(&"revoke") && events.contains(&"log_download"),
            "{events:?}"
        );
        // The operator sees the log's work in the metrics: every entry of
        // this (the only) permission's log, and the download just made, was
        // committed; nothing failed or was dropped.
        let (_, text) = support::http_get(w.http, "/metrics");
        let committed = metric(&text, "trackgate_access_log_entries_total", "");
        assert!(
            committed >= (events.len() + 1) as f64,
            "{committed} committed, {} in the log",
            events.len()
        );
        assert!(metric(&text, "trackgate_access_log_commit_seconds_count", "") >= 1.0);
        // Every awaited append (reads, downloads) timed its wait for the
        // commit; detached security entries are not waited for.
        let waits = metric(&text, "trackgate_access_log_wait_seconds_count", "");
        assert!(waits >= 1.0 && waits <= committed, "{waits} waits");
        assert!(metric(&text, "trackgate_access_log_wait_seconds_sum", "") > 0.0);
        assert_eq!(
            metric(&text, "trackgate_access_log_commit_errors_total", ""),
            0.0
        );
        assert_eq!(metric(&text, "trackgate_access_log_dropped_total", ""), 0.0);
    })
    .await
    .unwrap();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_windows_past_current_future() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        let w = setup(http, tcp);
        let now = now_ms();
        let h = 3_600_000;
        // The device's latest fix: 30 minutes ago.
        report(w.tcp, D1, (now - h / 2) as u64, 48.1, 11.5);
        let grant = |name: &str, from: i64, until: i64| {
            let (st, p) = call(
                w.http,
                "POST",
                "/api/v1/permissions",
                Some(&w.carrier),
                Some(json!({"name": name, "recipient_company_id": "0815", "device_ids": [D1],
                             "valid_from": iso(from), "valid_until": iso(until)})),
            );
            assert_eq!(st, 201, "{p}");
            assert_eq!(p["kind"], "temporary");
            p
        };
        let past = grant("past", now - 3 * h, now - 2 * h);
        assert_eq!(past["state"], "expired");
        let future = grant("future", now + h, now + 2 * h);
        assert_eq!(future["state"], "scheduled");
        let (st, _) = call(w.http, "GET", &format!("/api/v1/devices/{D1}/position"), Some(&w.shipper_user), None);
        assert_eq!(st, 404, "only expired and scheduled permissions");
        // The same in the list and in spatial answers (the index trails by
        // at most 50 ms here).
        std::thread::sleep(Duration::from_millis(200));
        let received = |what: &str| {
            let (st, v) = call(w.http, "GET", what, Some(&w.shipper_user), None);
            assert_eq!(st, 200, "{what}: {v}");
            v["devices"].as_array().unwrap().clone()
        };
        let list = "/api/v1/devices?scope=received";
        let bbox = "/api/v1/positions?scope=received&bbox=11,48,12,49";
        let near = "/api/v1/positions?scope=received&near=48.1,11.5&radius_m=5000";
        for what in [list, bbox, near] {
            assert!(received(what).is_empty(), "{what}: nothing before or after the window");
        }
        // Current, but starting after the fix: the device shows with no position.
        let late = grant("late", now - h / 4, now + h);
        assert_eq!(late["state"], "active");
        let (st, v) = call(w.http, "GET", &format!("/api/v1/devices/{D1}/position"), Some(&w.shipper_user), None);
        assert_eq!(st, 200);
        assert_eq!(v["position"], Value::Null, "a fix before valid_from is never shown");
        let listed = received(list);
        assert_eq!(listed.len(), 1);
        assert_eq!((&listed[0]["device_id"], &listed[0]["position"]), (&json!(D1), &Value::Null));
        assert!(received(bbox).is_empty(), "nor found by a spatial query");
        assert!(received(near).is_empty());
        // Current and covering the fix: shown.
        let cur = grant("current", now - h, now + h);
        assert_eq!(cur["state"], "active");
        let (st, v) = call(w.http, "GET", &format!("/api/v1/devices/{D1}/position"), Some(&w.shipper_user), None);
        assert_eq!(st, 200);
        assert!((v["position"]["lat"].as_f64().unwrap() - 48.1).abs() < 1e-6, "{v}");
        for what in [bbox, near] {
            let found = received(what);
            assert_eq!(found.len(), 1, "{what}");
            assert_eq!(found[0]["device_id"], D1);
            assert_eq!(found[0]["permission_id"], cur["id"], "{what}: through the covering permission");
        }
        // A narrower permission granted later (a higher id) does not hide
        // the fix: each hit goes through a permission whose window holds it.
        let later = grant("later", now - h / 8, now + h);
        for what in [bbox, near] {
            let found = received(what);
            assert_eq!(found.len(), 1, "{what}");
            assert_eq!(found[0]["permission_id"], cur["id"], "{what}: still the covering permission");
        }
        // Both sides list every window with its state.
        for (side, key) in [("granted", &w.carrier), ("received", &w.shipper_user)] {
            let (st, v) = call(w.http, "GET", &format!("/api/v1/permissions?side={side}"), Some(key), None);
            assert_eq!(st, 200, "{v}");
            let listed = v["permissions"].as_array().unwrap();
            let state = |p: &Value| {
                let found = listed.iter().find(|x| x["id"] == p["id"]);
                found.map_or(Value::Null, |x| x["state"].clone())
            };
            assert_eq!(state(&past), "expired", "{side}");
            assert_eq!(state(&future), "scheduled", "{side}");
            for p in [&late, &cur, &later] {
                assert_eq!(state(p), "active", "{side}: {}", p["name"]);
            }
        }
        let (st, _) = call(
            w.http,
            "POST",
            "/api/v1/permissions",
            Some(&w.carrier),
            Some(json!({"name": "bad", "recipient_company_id": "0815", "device_ids": [D1],
                         "valid_from": iso(now), "valid_until": iso(now - 1)})),
        );
        assert_eq!(st, 400, "window ends before it starts");
        let (st, _) = call(
            w.http,
            "POST",
            "/api/v1/permissions",
            Some(&w.carrier),
            Some(json!({"name": "bad", "recipient_company_id": "0815", "device_ids": [D1], "valid_from": "yesterday"})),
        );
        assert_eq!(st, 400, "not a time");
    })
    .await
    .unwrap();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_the_right_key() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        let w = setup(http, tcp);
        let routes: &[(&str, &str, Option<Value>)] = &[
            (
                "POST",
                "/api/v1/admin/companies",
                Some(json!({"id": "1", "name": "n"})),
            ),
            (
                "POST",
                "/api/v1/admin/companies/4711/users",
                Some(json!({"name": "n", "role": "user"})),
            ),
            (
                "POST",
                "/api/v1/admin/companies/4711/devices",
                Some(json!({"device_id": "1", "name": "n"})),
            ),
            ("GET", "/api/v1/admin/unknown-devices", None),
            ("GET", "/api/v1/admin/security-log", None),
            (
                "POST",
                "/api/v1/users",
                Some(json!({"name": "n", "role": "user"})),
            ),
            ("DELETE", "/api/v1/api-keys/1", None),
            (
                "POST",
                "/api/v1/permissions",
                Some(json!({"name": "n", "recipient_company_id": "0815", "device_ids": [D1]})),
            ),
            ("GET", "/api/v1/permissions?side=granted", None),
            ("DELETE", "/api/v1/permissions/1", None),
            (
                "PUT",
                "/api/v1/permissions/1/devices/1/shipment-number",
                Some(json!({"shipment_number": "1"})),
            ),
            ("GET", "/api/v1/permissions/1/access-log", None),
            ("GET", "/api/v1/devices?scope=own", None),
            ("GET", "/api/v1/session", None),
            ("GET", "/api/v1/stream?scope=received", None),
            ("DELETE", "/api/v1/session", None),
            ("GET", &format!("/api/v1/devices/{D1}/position"), None),
            ("GET", &format!("/api/v1/devices/{D1}/positions"), None),
            ("GET", &format!("/api/v1/devices/{D1}/reports"), None),
            ("GET", "/api/v1/positions?bbox=0,0,1,1", None),
            (
                "POST",
                "/api/v1/ingest/positions",
                Some(json!([{"device_id": D1, "fix_time": "2026-01-01T00:00:00Z", "lat": 1, "lon": 2}])),
            ),
        ];
        for (method, path, body) in routes {
            let (st, v) = call(w.http, method, path, None, body.clone());
            assert_eq!(st, 401, "{method} {path} without a key: {v}");
            let (st, _) = call(w.http, method, path, Some("tg_wrong"), body.clone());
            assert_eq!(st, 401, "{method} {path} with a wrong key");
            if path.contains("/admin/") {
                let (st, _) = call(w.http, method, path, Some(&w.carrier), body.clone());
                assert_eq!(st, 403, "{method} {path} with a company key");
            }
        }
        // Another company's key sees nothing of the carrier's.
        let (_, v) = call(
            w.http,
            "GET",
            "/api/v1/devices?scope=own",
            Some(&w.outsider),
            None,
        );
        let ids: Vec<&str> = v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["device_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [D9]);
        // The scheme is case-insensitive; anything but Bearer is no key.
        for (auth, want) in [
            (format!("bearer {}", w.outsider), 200),
            (format!("BEARER  {}", w.outsider), 200),
            (format!("Basic {}", w.outsider), 401),
            (w.outsider.clone(), 401),
            ("Bearer".to_string(), 401),
        ] {
            let (st, _) = http_request(w.http, "GET", "/api/v1/devices", &[("Authorization", &auth)], None);
            assert_eq!(st, want, "{auth:?}");
        }
        let (_, v) = call(
            w.http,
            "GET",
            "/api/v1/positions?scope=own&bbox=-180,-90,180,90",
            Some(&w.outsider),
            None,
        );
        assert!(v["devices"].as_array().unwrap().is_empty());
        // A revoked key stops working at once.
        let (st, u) = call(
            w.http,
            "POST",
            "/api/v1/users",
            Some(&w.shipper),
            Some(json!({"name": "temp", "role": "user"})),
        );
        assert_eq!(st, 201);
        let key = u["api_key"].as_str().unwrap();
        let (st, _) = call(w.http, "GET", "/api/v1/devices", Some(key), None);
        assert_eq!(st, 200);
        let (st, _) = call(
            w.http,
            "DELETE",
            &format!("/api/v1/api-keys/{}", u["api_key_id"]),
            Some(&w.outsider),
            None,
        );
        assert_eq!(st, 404, "another company's admin cannot revoke it");
        let (st, _) = call(
            w.http,
            "DELETE",
            &format!("/api/v1/api-keys/{}", u["api_key_id"]),
            Some(&w.shipper),
            None,
        );
        assert_eq!(st, 204);
        let (st, _) = call(w.http, "GET", "/api/v1/devices", Some(key), None);
        assert_eq!(st, 401);
        // A plain user reads; managing is for the company's admins.
        let (st, p) = call(
            w.http,
            "POST",
            "/api/v1/permissions",
            Some(&w.carrier),
            Some(json!({"name": "roles", "recipient_company_id": "0815", "device_ids": [D1]})),
        );
        assert_eq!(st, 201, "{p}");
        let (st, u) = call(
            w.http,
            "POST",
            "/api/v1/users",
            Some(&w.carrier),
            Some(json!({"name": "colleague", "role": "user"})),
        );
        assert_eq!(st, 201, "{u}");
        let refused: [(&str, String, Option<Value>); 4] = [
            (
                "POST",
                "/api/v1/permissions".into(),
                Some(json!({"name": "x", "recipient_company_id": "0815", "device_ids": [D1]})),
            ),
            ("DELETE", format!("/api/v1/permissions/{}", p["id"]), None),
            (
                "POST",
                "/api/v1/users".into(),
                Some(json!({"name": "y", "role": "admin"})),
            ),
            ("DELETE", format!("/api/v1/api-keys/{}", u["api_key_id"]), None),
        ];
        for (method, path, body) in refused {
            let (st, v) = call(w.http, method, &path, Some(&w.carrier_user), body);
            assert_eq!(st, 403, "a plain user: {method} {path}: {v}");
        }
        let (_, v) = call(w.http, "GET", "/api/v1/permissions?side=granted", Some(&w.carrier_user), None);
        assert_eq!(v["permissions"][0]["state"], "active", "still in force: {v}");
        let (st, _) = call(w.http, "GET", "/api/v1/devices", Some(u["api_key"].as_str().unwrap()), None);
        assert_eq!(st, 200, "the colleague's key still works");
        // Bad bodies get clear 400s.
        let (st, v) = call(
            w.http,
            "POST",
            "/api/v1/admin/companies",
            Some(ADMIN),
            Some(json!({"id": "x"})),
        );
        assert_eq!(st, 400, "{v}");
        assert!(v["message"].as_str().unwrap().contains("name"), "{v}");
        let big = json!({"id": "big", "name": "x".repeat(70_000)});
        let (st, _) = call(
            w.http,
            "POST",
            "/api/v1/admin/companies",
            Some(ADMIN),
            Some(big),
        );
        assert!(st == 400 || st == 413, "oversize body: {st}");
    })
    .await
    .unwrap();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_are_refused_on_every_permission_route_and_the_operator_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        let w = setup(http, tcp);
        let t0 = now_ms();
        let (st, p) = call(
            w.http,
            "POST",
            "/api/v1/permissions",
            Some(&w.carrier),
            Some(json!({"name": "Load 7", "recipient_company_id": "0815", "device_ids": [D1, D2]})),
        );
        assert_eq!(st, 201, "{p}");
        let pid = p["id"].as_i64().unwrap();
        report(w.tcp, D1, now_ms() as u64, 50.2, 8.7);

        // Another company's key: every permission route answers as if the
        // permission did not exist; lists and searches come back empty.
        let sn = format!("/api/v1/permissions/{pid}/devices/{D1}/shipment-number");
        let refused: &[(&str, String, Option<Value>)] = &[
            ("GET", format!("/api/v1/permissions/{pid}/access-log"), None),
            ("PUT", sn.clone(), Some(json!({"shipment_number": "X"}))),
            ("DELETE", format!("/api/v1/permissions/{pid}"), None),
            ("GET", format!("/api/v1/devices/{D1}/position"), None),
            ("GET", format!("/api/v1/devices/{D1}/positions"), None),
        ];
        for (method, path, body) in refused {
            let (st, v) = call(w.http, method, path, Some(&w.outsider), body.clone());
            assert_eq!(st, 404, "{method} {path} by an outsider: {v}");
        }
        for path in [
            "/api/v1/permissions?side=received",
            "/api/v1/permissions?side=granted",
        ] {
            let (st, v) = call(w.http, "GET", path, Some(&w.outsider), None);
            assert_eq!(
                (st, v["permissions"].as_array().map(Vec::len)),
                (200, Some(0)),
                "{path}"
            );
        }
        for path in [
            "/api/v1/devices?scope=received",
            "/api/v1/positions?scope=received&bbox=-180,-90,180,90",
            "/api/v1/positions?scope=received&near=50.2,8.7&radius_m=10000",
        ] {
            let (st, v) = call(w.http, "GET", path, Some(&w.outsider), None);
            assert_eq!(
                (st, v["devices"].as_array().map(Vec::len)),
                (200, Some(0)),
                "{path}"
            );
        }
        // The recipient may not revoke.
        let (st, _) = call(
            w.http,
            "DELETE",
            &format!("/api/v1/permissions/{pid}"),
            Some(&w.shipper),
            None,
        );
        assert_eq!(st, 403);

        // The operator's security log has each refused call on the
        // permission; the partners' log has none of them.
        let on_pid =
            |entries: &[Value]| entries.iter().filter(|e| e["permission_id"] == pid).count();
        let entries = security_log_until(w.http, |entries| on_pid(entries) >= 4);
        let mine: Vec<(String, String)> = entries
            .iter()
            .filter(|e| e["permission_id"] == pid)
            .map(|e| {
                assert_eq!(e["event"], "denied");
                assert_eq!(e["scope"], "security");
                assert_eq!(e["user_agent"], "trackgate-test/1");
                (
                    e["recipient_company_id"].as_str().unwrap().to_string(),
                    e["query"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for want in [
            ("9999", "access_log"),
            ("9999", "shipment_number"),
            ("9999", "revoke"),
            ("0815", "revoke"),
        ] {
            assert!(
                mine.iter().any(|(c, q)| (c.as_str(), q.as_str()) == want),
                "{want:?} in {mine:?}"
            );
        }
        let (st, _) = call(
            w.http,
            "GET",
            "/api/v1/admin/security-log?limit=0",
            Some(ADMIN),
            None,
        );
        assert_eq!(st, 400);
        let (_, log) = call(
            w.http,
            "GET",
            &format!("/api/v1/permissions/{pid}/access-log"),
            Some(&w.carrier),
            None,
        );
        let entries = log["entries"].as_array().unwrap();
        assert!(!entries.is_empty());
        assert!(entries.iter().all(|e| e["scope"] == "partner"
            && e["recipient_company_id"] != "9999"
            && e["event"] != "denied"));

        // from / to bound the log: nothing before the grant, nothing after now.
        let count = |q: String| {
            let (st, v) = call(
                w.http,
                "GET",
                &format!("/api/v1/permissions/{pid}/access-log?{q}"),
                Some(&w.carrier),
                None,
            );
            assert_eq!(st, 200, "{q}: {v}");
            v["entries"].as_array().unwrap().len()
        };
        let enc = |ms: i64| iso(ms).replace('+', "%2B");
        assert_eq!(count(format!("to={}", enc(t0 - 1000))), 0);
        assert_eq!(count(format!("from={}", enc(now_ms() + 60_000))), 0);
        // Up to now, exclusive: the downloads below log entries of their
        // own, all after it.
        std::thread::sleep(Duration::from_millis(5));
        let all = format!("from={}&to={}", enc(t0 - 1000), enc(now_ms()));
        std::thread::sleep(Duration::from_millis(5));
        let everything = count(all.clone());
        assert!(everything >= 1);
        // The same bounds in the CSV and Excel forms: rows after the header.
        let csv_rows = |q: &str| {
            let path = format!("/api/v1/permissions/{pid}/access-log?format=csv&{q}");
            let (st, _, csv) = get_raw(w.http, &path, &w.carrier);
            assert_eq!(st, 200, "{q}");
            String::from_utf8(csv).unwrap().lines().count() - 1
        };
        let xlsx_rows = |q: &str| {
            use calamine::Reader;
            let path = format!("/api/v1/permissions/{pid}/access-log?format=xlsx&{q}");
            let (st, _, xlsx) = get_raw(w.http, &path, &w.carrier);
            assert_eq!(st, 200, "{q}");
            let mut wb: calamine::Xlsx<_> =
                calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx)).unwrap();
            let mut n = |sheet: &str| wb.worksheet_range(sheet).unwrap().rows().count() - 1;
            n("Access log") + n("Changes")
        };
        let before = format!("to={}", enc(t0 - 1000));
        assert_eq!((csv_rows(&before), xlsx_rows(&before)), (0, 0));
        assert_eq!(csv_rows(&all), everything);
        assert_eq!(xlsx_rows(&all), everything);

        // A shipment number is set, then cleared with null; many concurrent
        // changes race a revoke, and the revoke is never undone.
        let (st, v) = call(
            w.http,
            "PUT",
            &sn,
            Some(&w.shipper),
            Some(json!({"shipment_number": "SN-1"})),
        );
        assert_eq!((st, v["shipment_number"].as_str()), (200, Some("SN-1")));
        let (st, v) = call(
            w.http,
            "PUT",
            &sn,
            Some(&w.shipper),
            Some(json!({"shipment_number": null})),
        );
        assert_eq!((st, v["shipment_number"].clone()), (200, Value::Null));
        let (_, v) = call(
            w.http,
            "GET",
            "/api/v1/permissions?side=granted",
            Some(&w.carrier),
            None,
        );
        let d1 = v["permissions"][0]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["device_id"] == D1)
            .unwrap()
            .clone();
        assert_eq!(d1["shipment_number"], Value::Null, "cleared");
        std::thread::scope(|scope| {
            for i in 0..8 {
                let (w, sn) = (&w, &sn);
                scope.spawn(move || {
                    for j in 0..10 {
                        let n = json!({"shipment_number": format!("SN-{i}-{j}")});
                        let (st, _) = call(w.http, "PUT", sn, Some(&w.shipper), Some(n));
                        assert!(st == 200 || st == 404, "{st}");
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(20));
            let (st, _) = call(
                w.http,
                "DELETE",
                &format!("/api/v1/permissions/{pid}"),
                Some(&w.carrier),
                None,
            );
            assert_eq!(st, 204);
        });
        let (_, v) = call(
            w.http,
            "GET",
            "/api/v1/permissions?side=granted",
            Some(&w.carrier),
            None,
        );
        assert_eq!(v["permissions"][0]["state"], "revoked", "{v}");
        let (st, _) = call(
            w.http,
            "GET",
            &format!("/api/v1/devices/{D1}/position"),
            Some(&w.shipper),
            None,
        );
        assert_eq!(st, 404, "revoked stays revoked");
    })
    .await
    .unwrap();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    tokio::task::spawn_blocking(move || {
        let (st, _) = call(http, "GET", "/api/v1/openapi.json", None, None);
        assert_eq!(st, 401, "the API's description needs a key too");
        let (st, _) = call(http, "GET", "/api/v1/openapi.json", Some("tg_wrong"), None);
        assert_eq!(st, 401);
        let (st, doc) = call(http, "GET", "/api/v1/openapi.json", Some(ADMIN), None);
        assert_eq!(st, 200);
        let routes = [
            ("post", "/api/v1/admin/companies"),
            ("post", "/api/v1/admin/companies/{company}/users"),
            ("post", "/api/v1/admin/companies/{company}/devices"),
            ("get", "/api/v1/admin/unknown-devices"),
            ("get", "/api/v1/admin/security-log"),
            ("post", "/api/v1/users"),
            ("delete", "/api/v1/api-keys/{id}"),
            ("post", "/api/v1/permissions"),
            ("get", "/api/v1/permissions"),
            ("delete", "/api/v1/permissions/{id}"),
            (
                "put",
                "/api/v1/permissions/{id}/devices/{device_id}/shipment-number",
            ),
            ("get", "/api/v1/permissions/{id}/access-log"),
            ("get", "/api/v1/devices"),
            ("get", "/api/v1/devices/{device_id}/position"),
            ("get", "/api/v1/positions"),
            ("post", "/api/v1/ingest/positions"),
            ("get", "/api/v1/devices/{device_id}/positions"),
            ("get", "/api/v1/devices/{device_id}/reports"),
            ("get", "/api/v1/openapi.json"),
            ("get", "/api/v1/session"),
            ("delete", "/api/v1/session"),
            ("get", "/api/v1/stream"),
        ];
        let paths = doc["paths"].as_object().unwrap();
        for (method, path) in routes {
            let op = &paths[path][method];
            assert!(
                op.is_object(),
                "{method} {path} missing from the OpenAPI document"
            );
            assert!(
                op["security"].is_array(),
                "{method} {path} documents its authentication"
            );
            assert!(
                op["responses"]["401"].is_object(),
                "{method} {path} documents 401"
            );
        }
        // Signing in takes the key in its body: documented, no scheme.
        let sign_in = &paths["/api/v1/session"]["post"];
        assert!(sign_in["responses"]["401"].is_object() && sign_in["security"].is_null());
        let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(
            documented,
            routes.len() + 1,
            "no undocumented extra operations"
        );
        assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
        // Every reference resolves (a schema used only in parameters is
        // not collected into the components by itself).
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(
            refs.len() > 20,
            "error answers refer to their body: {refs:?}"
        );
        for r in refs {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} resolves"
            );
        }
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let answers = op["responses"].as_object().unwrap();
                for (status, answer) in answers {
                    if status.starts_with(['4', '5']) {
                        assert_eq!(
                            answer["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{method} {path} {status} documents the error body"
                        );
                    }
                }
                let takes_input = op["parameters"].as_array().is_some_and(|p| !p.is_empty())
                    || op["requestBody"].is_object();
                assert!(
                    !takes_input || answers.contains_key("400"),
                    "{method} {path} documents 400"
                );
            }
        }
        // Bounds the handlers enforce are in the document.
        let grant = &doc["components"]["schemas"]["Grant"]["properties"];
        assert_eq!(grant["name"]["maxLength"], trackgate::api::MAX_TEXT);
        assert_eq!(grant["name"]["minLength"], 1);
        assert_eq!(grant["valid_from"]["format"], "date-time");
        // Fixed choices are documented as such.
        let scope = &paths["/api/v1/devices"]["get"]["parameters"][0];
        assert_eq!(scope["name"], "scope");
        assert_eq!(scope["schema"]["enum"], json!(["own", "received"]));
    })
    .await
    .unwrap();
    gw.shutdown().await;
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// A path or query value that does not parse is the API's JSON 400, like
/// every other error, not the framework's plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_parameters_answer_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        let w = setup(http, tcp);
        for (method, path) in [
            ("DELETE", "/api/v1/permissions/9223372036854775808"),
            ("GET", "/api/v1/permissions/abc/access-log"),
            ("GET", "/api/v1/positions?near=50.1,8.6&radius_m=abc"),
            ("GET", &format!("/api/v1/devices/{D1}/positions?limit=-1")),
            ("GET", "/api/v1/stream?interval_ms=soon"),
            ("GET", "/api/v1/devices?scope=theirs"),
        ] {
            let (st, body) = call(http, method, path, Some(&w.carrier), None);
            assert_eq!(st, 400, "{method} {path}: {body}");
            assert_eq!(body["error"], "bad_request", "{method} {path}: {body}");
            assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{method} {path}: {body}"
            );
        }
        // Authentication still comes first: no key, no parsing.
        let (st, body) = call(http, "DELETE", "/api/v1/permissions/x", None, None);
        assert_eq!((st, body["error"].as_str()), (401, Some("unauthorized")));
    })
    .await
    .unwrap();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_ingest_takes_own_devices_and_reports_every_item() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    let engine = gw.engine.clone();
    let text = tokio::task::spawn_blocking(move || {
        let w = setup(http, tcp);
        let ingest = user(http, "4711", "ingest");
        let now = now_ms();
        let body = json!([
            {"device_id": D1, "fix_time": iso(now - 60_000), "lat": 52.52, "lon": 13.405, "speed_kmh": 72.5,
             "course_deg": 90, "satellites": 11, "attributes": {"fuel_l": 210.5, "ignition": true}},
            {"device_id": D9, "fix_time": iso(now - 60_000), "lat": 1, "lon": 2},
            {"device_id": "never-registered", "fix_time": iso(now), "lat": 1, "lon": 2},
            {"device_id": D2, "fix_time": iso(now), "lat": 95, "lon": 2},
            {"device_id": D2, "lat": 1, "lon": 2},
            {"device_id": D2, "fix_time": iso(now - 1000), "lat": 48.1, "lon": 11.6},
            42
        ]);
        let (st, v) = call(http, "POST", "/api/v1/ingest/positions", Some(&ingest), Some(body));
        assert_eq!(st, 207, "{v}");
        assert_eq!(v["accepted"], 2);
        assert_eq!(v["rejected"], 5);
        let statuses: Vec<&str> = v["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["accepted", "unknown_device", "unknown_device", "invalid", "invalid", "accepted", "invalid"]);
        assert!(v["results"][3]["error"].as_str().unwrap().contains("WGS84"), "{v}");
        assert!(v["results"][4]["error"].as_str().unwrap().contains("fix_time"), "{v}");
        assert!(v["results"][6]["error"].as_str().unwrap().contains("not a JSON object"), "{v}");

        // All accepted: 200.
        let (st, v) = call(http, "POST", "/api/v1/ingest/positions", Some(&ingest),
            Some(json!([{"device_id": D2, "fix_time": iso(now), "lat": 48.2, "lon": 11.7}])));
        assert_eq!((st, v["accepted"].as_i64()), (200, Some(1)), "{v}");

        // Only the ingest role may push; bad bodies are clear 400s.
        for key in [&w.carrier, &w.carrier_user, &w.shipper] {
            let (st, _) = call(http, "POST", "/api/v1/ingest/positions", Some(key),
                Some(json!([{"device_id": D1, "fix_time": iso(now), "lat": 1, "lon": 2}])));
            assert_eq!(st, 403);
        }
        let (st, _) = call(http, "POST", "/api/v1/ingest/positions", Some(&ingest), Some(json!([])));
        assert_eq!(st, 400);
        let (st, _) = call(http, "POST", "/api/v1/ingest/positions", Some(&ingest), Some(json!({"device_id": D1})));
        assert_eq!(st, 400);
        let big: Vec<Value> = (0..1001).map(|_| json!({})).collect();
        let (st, _) = call(http, "POST", "/api/v1/ingest/positions", Some(&ingest), Some(Value::Array(big)));
        assert_eq!(st, 400);
        let huge = format!("[{}]", vec![r#"{"device_id":"x","fix_time":"2026-01-01T00:00:00Z","lat":1,"lon":2}"#; 2000].join(","));
        let (st, _) = http_request(http, "POST", "/api/v1/ingest/positions",
            &[("Authorization", &format!("Bearer {ingest}")), ("Content-Type", "application/json")], Some(&huge));
        assert_eq!(st, 413, "body over 64 KiB");
        let (_, text) = support::http_get(http, "/metrics");
        text
    })
    .await
    .unwrap();
    let p = engine.get(&DeviceId::new(D1).unwrap()).unwrap();
    assert_eq!(
        (p.lat, p.lon, p.speed_kmh, p.course_deg, p.satellites),
        (52.52, 13.405, 72.5, 90.0, Some(11))
    );
    assert_eq!(p.protocol, "http");
    assert_eq!(
        p.attributes.get("fuel_l"),
        Some(&trackgate::model::AttrValue::Float(210.5))
    );
    assert!((engine.get(&DeviceId::new(D2).unwrap()).unwrap().lat - 48.2).abs() < 1e-9);
    assert!(
        engine.get(&DeviceId::new(D9).unwrap()).is_none(),
        "another company's device"
    );
    assert_eq!(
        metric(&text, "trackgate_positions_total", "protocol=\"http\""),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            "trackgate_unknown_device_messages_total",
            "protocol=\"http\""
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "trackgate_decode_errors_total",
            "kind=\"invalid_value\",protocol=\"http\""
        ),
        3.0
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_clamped_to_the_permission_window_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        let w = setup(http, tcp);
        let now = now_ms();
        let h = 3_600_000;
        // Fixes 3 h, 2 h, 1 h and 10 min ago.
        let fixes = [now - 3 * h, now - 2 * h, now - h, now - h / 6];
        for (i, t) in fixes.iter().enumerate() {
            report(w.tcp, D1, *t as u64, 48.0 + i as f64 * 0.01, 11.5);
        }
        let hist = |key: &str, query: &str| {
            call(
                w.http,
                "GET",
                &format!("/api/v1/devices/{D1}/positions?{query}"),
                Some(key),
                None,
            )
        };
        let range = format!("from={}&to={}", iso(now - 4 * h), iso(now + h)).replace('+', "%2B");

        // The owner sees everything, oldest first, and is not logged.
        let (st, v) = hist(&w.carrier_user, &range);
        assert_eq!(st, 200, "{v}");
        let lats: Vec<f64> = v["positions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["lat"].as_f64().unwrap())
            .collect();
        assert_eq!(lats.len(), 4, "{v}");
        assert!((lats[0] - 48.0).abs() < 1e-6 && (lats[3] - 48.03).abs() < 1e-6);
        // Pages: limit 3, then the cursor.
        let (_, p1) = hist(&w.carrier_user, &format!("{range}&limit=3"));
        assert_eq!(p1["positions"].as_array().unwrap().len(), 3);
        let cursor = p1["next_cursor"].as_str().unwrap().to_string();
        let (_, p2) = hist(&w.carrier_user, &format!("{range}&limit=3&cursor={cursor}"));
        assert_eq!(p2["positions"].as_array().unwrap().len(), 1);
        assert_eq!(p2["next_cursor"], Value::Null);
        assert!((p2["positions"][0]["lat"].as_f64().unwrap() - 48.03).abs() < 1e-6);

        // A temporary permission from 2.5 h ago until 30 min ago.
        let (st, perm) = call(
            w.http,
            "POST",
            "/api/v1/permissions",
            Some(&w.carrier),
            Some(
                json!({"name": "tour", "recipient_company_id": "0815", "device_ids": [D1],
                        "valid_from": iso(now - 5 * h / 2), "valid_until": iso(now - h / 2)}),
            ),
        );
        assert_eq!(st, 201, "{perm}");
        // Expired already: nothing at all for the recipient.
        let (st, _) = hist(&w.shipper_user, &range);
        assert_eq!(st, 404, "an expired permission reads nothing");

        // Current window: 2.5 h ago until 1 h from now; asks for 4 h ago..now.
        let (st, perm) = call(
            w.http,
            "POST",
            "/api/v1/permissions",
            Some(&w.carrier),
            Some(
                json!({"name": "current", "recipient_company_id": "0815", "device_ids": [D1],
                        "valid_from": iso(now - 5 * h / 2), "valid_until": iso(now + h)}),
            ),
        );
        assert_eq!(st, 201, "{perm}");
        let pid = perm["id"].as_i64().unwrap();
        // A fix stamped 20 min ahead (a tracker whose clock runs fast): the
        // owner sees it; the recipient's range ends now, so it does not.
        report(w.tcp, D1, (now + h / 3) as u64, 48.09, 11.5);
        let (_, v) = hist(&w.carrier_user, &range);
        assert_eq!(v["positions"].as_array().unwrap().len(), 5, "{v}");
        let (st, logged, body) = get_raw(
            w.http,
            &format!("/api/v1/devices/{D1}/positions?{range}"),
            &w.shipper_user,
        );
        assert_eq!(st, 200);
        assert!(logged.is_some(), "the read names its log entry");
        let v: Value = serde_json::from_slice(&body).unwrap();
        let lats: Vec<f64> = v["positions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["lat"].as_f64().unwrap())
            .collect();
        assert_eq!(
            lats.len(),
            3,
            "the fix before valid_from is clamped away: {v}"
        );
        assert!((lats[0] - 48.01).abs() < 1e-6);
        assert_eq!(
            v["from"],
            iso(now - 5 * h / 2),
            "range starts at valid_from"
        );
        let to = chrono::DateTime::parse_from_rfc3339(v["to"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        assert!(
            (now..=now_ms()).contains(&to),
            "the range ends now, not at the asked {}: {v}",
            iso(now + h)
        );
        // CSV and GPX carry the same clamped positions.
        let (st, _, csv) = get_raw(
            w.http,
            &format!("/api/v1/devices/{D1}/positions?{range}&format=csv"),
            &w.shipper_user,
        );
        assert_eq!(st, 200);
        let csv = String::from_utf8(csv).unwrap();
        assert_eq!(csv.lines().count(), 4, "{csv}");
        assert!(csv.starts_with("device_id,fix_time,"));
        let (st, _, gpx) = get_raw(
            w.http,
            &format!("/api/v1/devices/{D1}/positions?{range}&format=gpx"),
            &w.shipper_user,
        );
        assert_eq!(st, 200);
        let gpx = String::from_utf8(gpx).unwrap();
        assert_eq!(gpx.matches("<trkpt ").count(), 3, "{gpx}");

        // The provider sees each history read in the permission's log.
        let (st, log) = call(
            w.http,
            "GET",
            &format!("/api/v1/permissions/{pid}/access-log"),
            Some(&w.carrier),
            None,
        );
        assert_eq!(st, 200, "{log}");
        let reads: Vec<&Value> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["query"] == "history")
            .collect();
        assert_eq!(reads.len(), 3, "json, csv and gpx reads: {log}");
        assert_eq!(reads[0]["positions"], 3);
        assert_eq!(reads[0]["device_id"], D1);
        assert_eq!(reads[0]["channel"], "api");
        assert_eq!(reads[0]["recipient_company_id"], "0815");
        assert_eq!(reads[0]["provider_company_id"], "4711");
        // The clamped range, exactly as the answer gave it.
        assert_eq!(
            reads[0]["detail"],
            format!(
                "from={} to={}",
                v["from"].as_str().unwrap(),
                v["to"].as_str().unwrap()
            ),
            "{log}"
        );
        assert_eq!(v["from"], iso(now - 5 * h / 2));

        // Outsiders and bad input; the operator sees the outsider's attempt.
        let (st, _) = hist(&w.outsider, &range);
        assert_eq!(st, 404);
        security_log_until(w.http, |entries| {
            entries.iter().any(|e| {
                e["query"] == "history"
                    && e["device_id"] == D1
                    && e["recipient_company_id"] == "9999"
            })
        });
        for q in [
            "limit=0",
            "limit=10001",
            "format=kml",
            "from=yesterday",
            "cursor=xyz",
        ] {
            let (st, _) = hist(&w.carrier_user, q);
            assert_eq!(st, 400, "{q}");
        }

        // Revoked mid-range: the recipient has read the first page of
        // three; the next page, and any range, is gone at once.
        let (st, p1) = hist(&w.shipper_user, &format!("{range}&limit=2"));
        assert_eq!(st, 200);
        assert_eq!(p1["positions"].as_array().unwrap().len(), 2, "{p1}");
        let cursor = p1["next_cursor"].as_str().unwrap().to_string();
        let (st, _) = call(
            w.http,
            "DELETE",
            &format!("/api/v1/permissions/{pid}"),
            Some(&w.carrier),
            None,
        );
        assert_eq!(st, 204);
        let (st, _) = hist(&w.shipper_user, &format!("{range}&limit=2&cursor={cursor}"));
        assert_eq!(st, 404, "revocation ends paging through history");
        let (st, _) = hist(&w.shipper_user, &range);
        assert_eq!(st, 404, "revocation ends history reads");
        // The owner still reads everything.
        let (st, v) = hist(&w.carrier_user, &range);
        assert_eq!(st, 200);
        assert_eq!(v["positions"].as_array().unwrap().len(), 5, "{v}");
    })
    .await
    .unwrap();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_for_one_contact_person_shows_nothing_to_colleagues() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        let w = setup(http, tcp);
        // A second user of the shipper, the named contact person.
        let (st, contact) = call(
            w.http,
            "POST",
            "/api/v1/admin/companies/0815/users",
            Some(ADMIN),
            Some(json!({"name": "Dispatcher Meyer", "role": "user"})),
        );
        assert_eq!(st, 201, "{contact}");
        let contact_key = contact["api_key"].as_str().unwrap().to_string();
        let (st, p) = call(
            w.http,
            "POST",
            "/api/v1/permissions",
            Some(&w.carrier),
            Some(json!({"name": "for Meyer", "recipient_company_id": "0815",
                        "recipient_user_id": contact["id"], "device_ids": [D1]})),
        );
        assert_eq!(st, 201, "{p}");
        let pid = p["id"].as_i64().unwrap();
        report(w.tcp, D1, (now_ms() + 1000) as u64, 50.2, 8.7);
        std::thread::sleep(Duration::from_millis(200));
        let paths = [
            format!("/api/v1/devices/{D1}/position"),
            format!("/api/v1/devices/{D1}/positions"),
            format!("/api/v1/permissions/{pid}/access-log"),
        ];
        // The contact person sees the device and the permission's log.
        for path in &paths {
            let (st, v) = call(w.http, "GET", path, Some(&contact_key), None);
            assert_eq!(st, 200, "{path}: {v}");
        }
        let (_, v) = call(
            w.http,
            "GET",
            "/api/v1/devices?scope=received",
            Some(&contact_key),
            None,
        );
        assert_eq!(v["devices"][0]["device_id"], D1, "{v}");
        let (_, v) = call(
            w.http,
            "GET",
            "/api/v1/permissions?side=received",
            Some(&contact_key),
            None,
        );
        assert_eq!(v["permissions"].as_array().unwrap().len(), 1, "{v}");
        // Colleagues — even the company's admin — see none of it.
        for key in [&w.shipper_user, &w.shipper] {
            for path in &paths {
                let (st, _) = call(w.http, "GET", path, Some(key), None);
                assert_eq!(st, 404, "{path}");
            }
            for path in [
                "/api/v1/devices?scope=received",
                "/api/v1/positions?scope=received&bbox=8,50,9,51",
            ] {
                let (st, v) = call(w.http, "GET", path, Some(key), None);
                assert_eq!(st, 200);
                assert!(v["devices"].as_array().unwrap().is_empty(), "{path}: {v}");
            }
            let (_, v) = call(
                w.http,
                "GET",
                "/api/v1/permissions?side=received",
                Some(key),
                None,
            );
            assert!(v["permissions"].as_array().unwrap().is_empty(), "{v}");
            let (st, _) = call(
                w.http,
                "PUT",
                &format!("/api/v1/permissions/{pid}/devices/{D1}/shipment-number"),
                Some(key),
                Some(json!({"shipment_number": "X"})),
            );
            assert_eq!(st, 404);
        }
        // A contact person from another company is refused at grant time.
        let (st, v) = call(
            w.http,
            "POST",
            "/api/v1/permissions",
            Some(&w.carrier),
            Some(json!({"name": "wrong", "recipient_company_id": "9999",
                        "recipient_user_id": contact["id"], "device_ids": [D1]})),
        );
        assert_eq!(st, 400, "{v}");
        let why = v["message"].as_str().unwrap_or_default();
        assert!(why.contains("is not a user of company 9999"), "{v}");
    })
    .await
    .unwrap();
    gw.shutdown().await;
}

/// A company with more devices than a spatial query checks one by one goes
/// through the shared index, and still sees only its own devices; a small
/// one is answered from its own devices even where another company's
/// fleet fills the shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spatial_answers_through_the_index_for_big_fleets_and_directly_for_small_ones() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        let w = setup(http, tcp);
        let (st, _) = call(
            w.http,
            "POST",
            "/api/v1/admin/companies",
            Some(ADMIN),
            Some(json!({"id": "7000", "name": "Big Fleet"})),
        );
        assert_eq!(st, 201);
        let big = user(w.http, "7000", "admin");
        let big_ids: Vec<String> = (0..4100)
            .map(|i| format!("{}", 350_000_000_000_000u64 + i))
            .collect();
        for id in &big_ids {
            let (st, v) = call(
                w.http,
                "POST",
                "/api/v1/admin/companies/7000/devices",
                Some(ADMIN),
                Some(json!({"device_id": id, "name": "big"})),
            );
            assert_eq!(st, 201, "{v}");
        }
        let now = now_ms() as u64;
        report(w.tcp, &big_ids[0], now, 48.10, 11.50); // in the box
        report(w.tcp, &big_ids[1], now, 48.90, 11.90); // in the box, outside the circle
        report(w.tcp, &big_ids[2], now, 10.00, 10.00); // elsewhere
        report(w.tcp, D1, now, 48.20, 11.60); // the carrier's, in the box
        let ids = |key: &str, what: &str| {
            let (st, v) = call(w.http, "GET", what, Some(key), None);
            assert_eq!(st, 200, "{what}: {v}");
            let mut ids: Vec<String> = v["devices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["device_id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        };
        let bbox = "/api/v1/positions?scope=own&bbox=11,48,12,49";
        let near = "/api/v1/positions?scope=own&near=48.1,11.5&radius_m=20000";
        let world = "/api/v1/positions?scope=own&near=0,0&radius_m=20100000";
        // The index is rebuilt every 250 ms; a loaded machine may take longer.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while ids(&big, world).len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(ids(&big, bbox), [big_ids[0].clone(), big_ids[1].clone()]);
        assert_eq!(ids(&big, near), [big_ids[0].clone()]);
        assert_eq!(
            ids(&big, world).len(),
            3,
            "a whole-earth circle: only its own"
        );
        assert_eq!(ids(&w.carrier, bbox), [D1]);
        assert_eq!(ids(&w.carrier, near), [D1]);
        assert_eq!(ids(&w.carrier, world), [D1]);
    })
    .await
    .unwrap();
    gw.shutdown().await;
}

/// A company's users, a provider's open permissions and all it ever
/// granted are bounded (`[limits]`): one more is a 409 that names the
/// limit; a revoked permission frees an open place, not a place in the
/// total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_open_permissions_per_company_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    write_admin_token(dir.path(), ADMIN);
    let mut c = test_config(dir.path());
    c.ingest.accept_unregistered_devices = false;
    c.limits.max_users_per_company = 2;
    c.limits.max_open_permissions = 2;
    c.limits.max_permissions_per_company = 5;
    c.limits.max_open_shared_devices = 2;
    let gw = start(&c).await;
    let http = gw.http;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        // 4711 and 0815 have two users each after setup, 9999 one.
        let w = setup(http, tcp);
        let new_user = json!({"name": "one more", "role": "user"});
        let (st, v) = call(
            w.http,
            "POST",
            "/api/v1/admin/companies/4711/users",
            Some(ADMIN),
            Some(new_user.clone()),
        );
        assert_eq!((st, v["error"].as_str()), (409, Some("conflict")), "{v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("max_users_per_company"),
            "{v}"
        );
        let (st, v) = call(
            w.http,
            "POST",
            "/api/v1/users",
            Some(&w.carrier),
            Some(new_user.clone()),
        );
        assert_eq!(st, 409, "a company admin is bounded too: {v}");
        let (st, v) = call(
            w.http,
            "POST",
            "/api/v1/admin/companies/9999/users",
            Some(ADMIN),
            Some(new_user.clone()),
        );
        assert_eq!(st, 201, "another company has room: {v}");
        let (st, _) = call(
            w.http,
            "POST",
            "/api/v1/users",
            Some(&w.outsider),
            Some(new_user),
        );
        assert_eq!(st, 409, "and now it is full");
        // Concurrent requests cannot pass the limit together.
        let (st, _) = call(
            w.http,
            "POST",
            "/api/v1/admin/companies",
            Some(ADMIN),
            Some(json!({"id": "7777", "name": "New Co"})),
        );
        assert_eq!(st, 201);
        let burst: Vec<_> = (0..6)
            .map(|i| {
                let http = w.http;
                std::thread::spawn(move || {
                    call(
                        http,
                        "POST",
                        "/api/v1/admin/companies/7777/users",
                        Some(ADMIN),
                        Some(json!({"name": format!("u{i}"), "role": "user"})),
                    )
                    .0
                })
            })
            .collect();
        let mut statuses: Vec<u16> = burst.into_iter().map(|t| t.join().unwrap()).collect();
        statuses.sort();
        assert_eq!(statuses, [201, 201, 409, 409, 409, 409]);

        let grant = |name: &str, from: Option<i64>| {
            let mut g = json!({"name": name, "recipient_company_id": "0815", "device_ids": [D1]});
            if let Some(f) = from {
                g["valid_from"] = json!(iso(f));
            }
            call(
                w.http,
                "POST",
                "/api/v1/permissions",
                Some(&w.carrier),
                Some(g),
            )
        };
        // Two devices shared at once at most: both trucks in one
        // permission (each listed twice, counted once), then a third
        // share is too many.
        let (st, v) = call(
            w.http,
            "POST",
            "/api/v1/permissions",
            Some(&w.carrier),
            Some(json!({"name": "Fleet", "recipient_company_id": "0815", "device_ids": [D1, D2, D1, D2]})),
        );
        assert_eq!(st, 201, "{v}");
        let fleet = v["id"].clone();
        let (st, v) = grant("Load 0", None);
        assert_eq!(st, 409, "{v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("max_open_shared_devices"),
            "{v}"
        );
        let (st, _) = call(
            w.http,
            "DELETE",
            &format!("/api/v1/permissions/{fleet}"),
            Some(&w.carrier),
            None,
        );
        assert_eq!(st, 204);
        let (st, first) = grant("Load 1", None);
        assert_eq!(st, 201, "{first}");
        let (st, v) = grant("Load 2, next week", Some(now_ms() + 7 * 86_400_000));
        assert_eq!(st, 201, "a scheduled permission: {v}");
        let (st, v) = grant("Load 3", None);
        assert_eq!(st, 409, "active and scheduled ones count: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("max_open_permissions"),
            "{v}"
        );
        let (st, _) = call(
            w.http,
            "DELETE",
            &format!("/api/v1/permissions/{}", first["id"]),
            Some(&w.carrier),
            None,
        );
        assert_eq!(st, 204);
        let (st, v) = grant("Load 3", None);
        assert_eq!(st, 201, "the revoked one freed its place: {v}");
        let (_, v) = call(
            w.http,
            "GET",
            "/api/v1/permissions?side=granted",
            Some(&w.carrier),
            None,
        );
        let mut names: Vec<&str> = v["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["Fleet", "Load 1", "Load 2, next week", "Load 3"]);
        // Revoked ones still count towards the total ever granted.
        let revoke = |p: &Value| {
            let (st, _) = call(
                w.http,
                "DELETE",
                &format!("/api/v1/permissions/{}", p["id"]),
                Some(&w.carrier),
                None,
            );
            assert_eq!(st, 204);
        };
        let third = v["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Load 3")
            .unwrap()
            .clone();
        revoke(&third);
        let (st, fourth) = grant("Load 4", None);
        assert_eq!(st, 201, "{fourth}");
        revoke(&fourth);
        let (st, v) = grant("Load 5", None);
        assert_eq!(st, 409, "five granted in all, one open: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("max_permissions_per_company"),
            "{v}"
        );
    })
    .await
    .unwrap();
    gw.shutdown().await;
}
