//! The access log against the real binary: every answer that named a log
//! entry still has it after `kill -9` mid-load, and `trackgate audit
//! verify` detects an edited row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use support::{http_request, write_admin_token, Process};

const ADMIN: &str = "tga_durability_admin";
const D1: &str = "356307042441013";

fn call(gw: &Process, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let auth = format!("Bearer {key}");
    let body = body.map(|b| b.to_string());
    let (st, text) = http_request(
        gw.http,
        method,
        path,
        &[("Authorization", &auth)],
        body.as_deref(),
    );
    (st, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// GET `path`; the ids of the access-log entries a 200 answer names in
/// `x-access-logged` (`7`, or `7-9` for several).
fn logged_read(http: std::net::SocketAddr, key: &str, path: &str) -> Option<Vec<i64>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(http).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    if !text.starts_with("HTTP/1.1 200") {
        return None;
    }
    let v = text.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("x-access-logged: ")
            .map(|v| v.trim().to_string())
    })?;
    let (first, last) = v.split_once('-').unwrap_or((&v, &v));
    Some((first.parse().ok()?..=last.parse().ok()?).collect())
}

fn spawn(dir: &std::path::Path) -> Process {
    Process::spawn(&[
        "--data-dir",
        dir.to_str().unwrap(),
        "--http",
        "127.0.0.1:0",
        "--listen",
        "teltonika=127.0.0.1:0",
    ])
}

fn verify(dir: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trackgate"))
        .args(["audit", "verify", "--data-dir", dir.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn answered_reads_survive_kill_9_and_tampering_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    write_admin_token(dir.path(), ADMIN);
    let mut gw = spawn(dir.path());
    for (id, name) in [("4711", "Carrier"), ("0815", "Shipper")] {
        assert_eq!(
            call(
                &gw,
                "POST",
                "/api/v1/admin/companies",
                ADMIN,
                Some(json!({"id": id, "name": name}))
            )
            .0,
            201
        );
    }
    let (st, _) = call(
        &gw,
        "POST",
        "/api/v1/admin/companies/4711/devices",
        ADMIN,
        Some(json!({"device_id": D1, "name": "Truck 1"})),
    );
    assert_eq!(st, 201);
    let key = |company: &str| {
        let (st, v) = call(
            &gw,
            "POST",
            &format!("/api/v1/admin/companies/{company}/users"),
            ADMIN,
            Some(json!({"name": "u", "role": "admin"})),
        );
        assert_eq!(st, 201);
        v["api_key"].as_str().unwrap().to_string()
    };
    let carrier = key("4711");
    let shipper = key("0815");
    let (st, p) = call(
        &gw,
        "POST",
        "/api/v1/permissions",
        &carrier,
        Some(json!({"name": "Load 1", "recipient_company_id": "0815", "device_ids": [D1]})),
    );
    assert_eq!(st, 201);
    let pid = p["id"].as_i64().unwrap();
    // A fix after the grant, so every kind of read below returns it.
    let now = chrono::Utc::now().timestamp_millis();
    let mut tcp = support::login_teltonika(gw.addr("teltonika", "tcp"), D1.parse().unwrap());
    let packet =
        trackgate::protocols::teltonika::device::codec8_packet(&[(now, 52.5, 13.4, 60, 90)]);
    let acked = support::send_avl(&mut tcp, &packet, std::time::Duration::from_secs(5));
    assert_eq!(acked, Some(1));
    std::thread::sleep(std::time::Duration::from_millis(300)); // the spatial index catches up

    // Eight clients read as fast as they can, two on each kind of read that
    // logs (one device, the list, a box, the history); the server is
    // killed mid-load.
    let paths = [
        format!("/api/v1/devices/{D1}/position"),
        "/api/v1/devices?scope=received".to_string(),
        "/api/v1/positions?scope=received&bbox=13,52,14,53".to_string(),
        format!("/api/v1/devices/{D1}/positions"),
    ];
    for path in &paths {
        let ids = logged_read(gw.http, &shipper, path);
        assert_eq!(ids.map(|v| v.len()), Some(1), "{path} logs one entry");
    }
    let seen = Arc::new(Mutex::new(Vec::<i64>::new()));
    let http = gw.http;
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let seen = Arc::clone(&seen);
            let shipper = shipper.clone();
            let path = paths[i % paths.len()].clone();
            std::thread::spawn(move || {
                for _ in 0..2_000 {
                    match logged_read(http, &shipper, &path) {
                        Some(ids) => seen.lock().unwrap().extend(ids),
                        None => break,
                    }
                }
            })
        })
        .collect();
    // Killed once the load is well under way, however fast this machine is.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while seen.lock().unwrap().len() < 200 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    gw.child.kill().unwrap(); // SIGKILL
    gw.child.wait().unwrap();
    for w in workers {
        w.join().unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.len() > 50,
        "load was running when killed: {} answers",
        seen.len()
    );

    // Restarted on the same data: every answered read's entry is there.
    let gw = spawn(dir.path());
    let (st, log) = call(
        &gw,
        "GET",
        &format!("/api/v1/permissions/{pid}/access-log"),
        &carrier,
        None,
    );
    assert_eq!(st, 200);
    let stored: std::collections::HashSet<i64> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "read")
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let missing: Vec<&i64> = seen.iter().filter(|id| !stored.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} answered reads lost their entry: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    drop(gw);

    // The chain is intact; it prints its head for keeping elsewhere.
    let (ok, out) = verify(dir.path(), &[]);
    assert!(ok, "{out}");
    assert!(out.contains("intact"), "{out}");
    let head = out
        .split_whitespace()
        .skip_while(|w| *w != "head")
        .nth(1)
        .unwrap()
        .to_string();
    let (head_id, _) = head.split_once(':').unwrap();
    let head_id: i64 = head_id.parse().unwrap();
    assert!(head_id as usize > seen.len(), "{out}");
    let (ok, out) = verify(dir.path(), &["--expect", &head]);
    assert!(ok, "{out}");
    let (ok, out) = verify(dir.path(), &["--expect", "12:zz"]);
    assert!(!ok, "{out}");
    assert!(out.contains("is not ID:HASH"), "{out}");

    // The log is stored in chunks, each of one permission's entries (or
    // the security log's); tampering goes through SQLite.
    let db = rusqlite::Connection::open(dir.path().join("trackgate.db")).unwrap();
    let spans: Vec<(i64, i64)> = db
        .prepare("SELECT first_id, last_id FROM access_log_chunks")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // Cut at an id no chunk straddles, so exactly the entries from it on
    // go: the last chunks' earliest entry, until no chunk reaching past
    // the cut starts before it.
    let mut cut = head_id;
    while let Some(first) = spans
        .iter()
        .filter(|&&(first, last)| last >= cut && first < cut)
        .map(|&(first, _)| first)
        .min()
    {
        cut = first;
    }
    // An answered read's entry that the cut leaves in place.
    let target = *seen.iter().rev().find(|&&id| id < cut).unwrap();

    // Entries cut off the end leave a shorter valid chain; the head kept
    // from before finds the cut.
    let cut_chunks = db
        .execute("DELETE FROM access_log_chunks WHERE last_id >= ?", [cut])
        .unwrap();
    assert!(cut_chunks >= 1);
    let (ok, out) = verify(dir.path(), &[]);
    assert!(ok, "a shorter chain is still a chain: {out}");
    let (ok, out) = verify(dir.path(), &["--expect", &head]);
    assert!(!ok, "the cut must be found: {out}");
    assert!(
        out.contains(&format!("entry {head_id}, recorded earlier, is gone")),
        "{out}"
    );

    // A chunk moved to another permission (or its span narrowed) would
    // hide it from its permission's log while the chain stays whole:
    // verification checks each chunk's row against its entries.
    let (target_chunk, mut entries) = db
        .prepare(
            "SELECT last_id, entries FROM access_log_chunks \
             WHERE first_id <= ?1 AND last_id >= ?1 AND key > 0",
        )
        .unwrap()
        .query_map([target], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .map(|(last, bytes)| (last, trackgate::store::log_chunks::decode(&bytes).unwrap()))
        .find(|(_, entries)| entries.iter().any(|e| e.id == target))
        .unwrap();
    let rekey = "UPDATE access_log_chunks SET key = key + ? WHERE last_id = ?";
    assert_eq!(db.execute(rekey, [1000, target_chunk]).unwrap(), 1);
    let (ok, out) = verify(dir.path(), &[]);
    assert!(
        !ok,
        "a chunk given another key must fail verification: {out}"
    );
    assert!(
        out.contains(&format!(
            "chunk ending at entry {target_chunk}: its key or span does not match"
        )),
        "{out}"
    );
    assert_eq!(db.execute(rekey, [-1000, target_chunk]).unwrap(), 1);
    let (ok, out) = verify(dir.path(), &[]);
    assert!(ok, "the key restored: {out}");

    // An edited entry is found and named.
    let edited = entries.iter_mut().find(|e| e.id == target).unwrap();
    edited.entry.shipment_number = Some("forged".into());
    let forged = trackgate::store::log_chunks::encode(&entries);
    assert_eq!(
        db.execute(
            "UPDATE access_log_chunks SET entries = ? WHERE last_id = ?",
            rusqlite::params![forged, target_chunk],
        )
        .unwrap(),
        1
    );
    drop(db);
    let (ok, out) = verify(dir.path(), &[]);
    assert!(!ok, "an edited row must fail verification: {out}");
    assert!(
        out.contains(&target.to_string()),
        "names the edited entry {target}: {out}"
    );
}
