//! The web app in a real browser (headless Chromium through ChromeDriver)
//! against the running gateway, with positions over real Teltonika TCP:
//! the provider grants in the app; the recipient is told that access is
//! logged before anything is fetched, then sees the truck (its next fix
//! live, its track since the grant), attaches a shipment number and
//! downloads the log with its session; the provider
//! sees all of it in the log (read back from the Excel file) and revokes in
//! the app; the recipient then sees nothing.
//!
//! Needs `TRACKGATE_TEST_CHROMEDRIVER` (and Chromium at
//! `TRACKGATE_TEST_CHROMIUM`, default /usr/bin/chromium); `.ci/run`
//! installs both and runs this with `--include-ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Cursor;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use support::partners::{call, gateway, report, setup, D1};
use trackgate::protocol::Transport;

const WAIT: Duration = Duration::from_secs(15);

/// ChromeDriver on a free loopback port, killed on drop.
struct Driver(Child, u16);

impl Driver {
    fn start(bin: &str) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver(child, port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The text of the first element matching `css` once it is displayed and
/// `ok` holds for its text.
async fn wait_text(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    let mut last = String::new();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if e.is_displayed().await.unwrap_or(false) {
                last = e.text().await.unwrap_or_default();
                if ok(&last) {
                    return last;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{css} never got there; last text {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn displayed(c: &Client, css: &str) -> bool {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.is_displayed().await.unwrap_or(false),
        Err(_) => false,
    }
}

async fn click(c: &Client, css: &str) {
    wait_text(c, css, |_| true).await;
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn type_into(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn sign_in(c: &Client, key: &str, who: &str) {
    wait_text(c, "#login h2", |t| t == "Sign in").await;
    type_into(c, "#api-key", key).await;
    click(c, "#sign-in").await;
    wait_text(c, "#who", |t| t.contains(who)).await;
}

async fn sign_out(c: &Client) {
    click(c, "#sign-out").await;
    wait_text(c, "#login-error", |t| t == "Signed out.").await;
}

/// The partner log of `pid` as the provider sees it over the API.
async fn partner_log(http: SocketAddr, pid: i64, key: String) -> Vec<Value> {
    tokio::task::spawn_blocking(move || support::partners::partner_log(http, pid, &key))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and ChromeDriver: set TRACKGATE_TEST_CHROMEDRIVER (.ci/run does)"]
async fn grant_notice_read_shipment_number_download_and_revoke_in_the_browser() {
    let bin = std::env::var("TRACKGATE_TEST_CHROMEDRIVER")
        .expect("TRACKGATE_TEST_CHROMEDRIVER must name chromedriver (e.g. /usr/bin/chromedriver)");
    let chromium =
        std::env::var("TRACKGATE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    let w = tokio::task::spawn_blocking(move || setup(http, tcp))
        .await
        .unwrap();

    let driver = Driver::start(&bin);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--window-size=1280,1000"
        ]}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let c = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a Chromium session through chromedriver");

    // The provider's admin grants Truck 1 to the shipper in the app.
    c.goto(&format!("http://{http}/")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/app/");
    sign_in(&c, &w.carrier, "Carrier GmbH").await;
    let own = wait_text(&c, "#own-devices tbody", |t| t.contains("Truck 2")).await;
    assert!(own.contains("Truck 1") && own.contains(D1), "{own}");
    click(&c, "#tab-granted").await;
    wait_text(&c, "#grant-form h3", |t| t == "Grant a permission").await;
    type_into(&c, "#grant-name", "Load 42").await;
    type_into(&c, "#grant-recipient", "0815").await;
    click(&c, &format!("#grant-devices input[value='{D1}']")).await;
    click(&c, "#grant").await;
    let row = wait_text(&c, "#granted-permissions tbody", |t| t.contains("Load 42")).await;
    assert!(
        row.contains("0815") && row.contains("active") && row.contains("Truck 1"),
        "{row}"
    );
    assert!(!row.contains("Truck 2"), "only the chosen device: {row}");
    let carrier = w.carrier.clone();
    let granted = tokio::task::spawn_blocking(move || {
        call(
            http,
            "GET",
            "/api/v1/permissions?side=granted",
            Some(&carrier),
            None,
        )
        .1
    })
    .await
    .unwrap();
    let pid = granted["permissions"][0]["id"].as_i64().unwrap();
    let entries = partner_log(http, pid, w.carrier.clone()).await;
    assert_eq!(entries[0]["event"], "grant");
    assert_eq!(entries[0]["channel"], "app");
    sign_out(&c).await;

    // The truck reports after the grant.
    // (Fixes in the past: a track ends now. The grant is older still.)
    let fix = chrono::Utc::now().timestamp_millis() as u64 - 1;
    tokio::task::spawn_blocking(move || report(tcp, D1, fix, 52.52, 13.405))
        .await
        .unwrap();

    // The recipient is told first; nothing is fetched before it agrees.
    sign_in(&c, &w.shipper_user, "Shipper AG").await;
    click(&c, "#tab-received").await;
    let notice = wait_text(&c, "#notice-text", |t| !t.is_empty()).await;
    assert!(notice.contains("logged for the provider"), "{notice}");
    assert!(!displayed(&c, "#received-content").await);
    let entries = partner_log(http, pid, w.carrier.clone()).await;
    assert!(entries.iter().all(|e| e["event"] != "read"), "{entries:?}");

    click(&c, "#acknowledge").await;
    let table = wait_text(&c, "#received-devices tbody", |t| t.contains("Truck 1")).await;
    assert!(
        table.contains("Load 42") && table.contains("4711"),
        "{table}"
    );
    assert!(
        table.contains("52.52000, 13.40500") && table.contains("55 km/h"),
        "{table}"
    );
    let logged = wait_text(&c, "#logged", |t| !t.is_empty()).await;
    assert!(logged.contains("access log entry"), "{logged}");

    // A newer fix reaches the open page by itself (server-sent events).
    wait_text(&c, "#live", |t| t == "Live updates on.").await;
    let fix2 = (chrono::Utc::now().timestamp_millis() as u64 - 1).max(fix + 1);
    tokio::task::spawn_blocking(move || report(tcp, D1, fix2, 52.6, 13.5))
        .await
        .unwrap();
    let table = wait_text(&c, "#received-devices tbody", |t| {
        t.contains("52.60000, 13.50000")
    })
    .await;
    assert!(!table.contains("52.52000"), "{table}");
    let live = wait_text(&c, "#live", |t| t.contains("access log entry")).await;
    assert!(live.contains("Truck 1"), "{live}");

    // An SOS sent without GPS (Wialon IPS, whole seconds), after the grant.
    let sos_at = (fix / 1000 + 1) * 1000;
    let wialon = gw.addr("wialon", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, BufReader, Write};
        while (chrono::Utc::now().timestamp_millis() as u64) <= sos_at {
            std::thread::sleep(Duration::from_millis(20));
        }
        let at = chrono::DateTime::from_timestamp_millis(sos_at as i64).unwrap();
        let mut s = BufReader::new(TcpStream::connect(wialon).unwrap());
        s.get_mut().set_read_timeout(Some(WAIT)).unwrap();
        let mut line = String::new();
        s.get_mut()
            .write_all(format!("#L#{D1};NA\r\n").as_bytes())
            .unwrap();
        s.read_line(&mut line).unwrap();
        assert_eq!(line, "#AL#1\r\n");
        let sos = format!(
            "#D#{};NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;sos:1:1\r\n",
            at.format("%d%m%y;%H%M%S")
        );
        s.get_mut().write_all(sos.as_bytes()).unwrap();
        line.clear();
        s.read_line(&mut line).unwrap();
        assert_eq!(line, "#AD#1\r\n");
    })
    .await
    .unwrap();
    // The open page hears of it at once, over the stream.
    let heard = wait_text(&c, "#live", |t| t.contains("sos=1")).await;
    assert!(
        heard.contains("Truck 1") && heard.contains("access log entry"),
        "{heard}"
    );

    // The track since the grant (the window's start), newest first, and
    // what the truck sent without a fix.
    click(&c, "#received-devices button.track").await;
    let title = wait_text(&c, "#history-title", |t| !t.is_empty()).await;
    assert!(
        title.starts_with("Track of Truck 1: 2 positions since "),
        "{title}"
    );
    let track = wait_text(&c, "#history-positions tbody", |t| !t.is_empty()).await;
    let (newer, older) = (
        track.find("52.60000").unwrap(),
        track.find("52.52000").unwrap(),
    );
    assert!(newer < older, "{track}");
    wait_text(&c, "#history-logged", |t| t.contains("access log entry")).await;
    let reports = wait_text(&c, "#history-reports tbody", |t| !t.is_empty()).await;
    assert!(
        reports.contains("sos=1") && reports.contains("wialon"),
        "{reports}"
    );
    wait_text(&c, "#history-reports-logged", |t| {
        t.contains("access log entry")
    })
    .await;
    assert!(!displayed(&c, "#history-no-reports").await);

    // A shipment number, attached in the app and shown back.
    type_into(&c, "#received-devices input.shipment", "SN-4711-77").await;
    click(&c, "#received-devices .save-shipment").await;
    wait_text(&c, "#status", |t| t.contains("SN-4711-77 saved")).await;
    let value = c
        .find(Locator::Css("#received-devices input.shipment"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("SN-4711-77"));

    // The recipient downloads the log with its session (the link's target,
    // fetched by the page itself).
    let href = c
        .find(Locator::Css("#received-logs a.log-xlsx"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        href,
        format!("/api/v1/permissions/{pid}/access-log?format=xlsx")
    );
    let got = c
        .execute_async(
            "const [href, done] = arguments; fetch(href).then(r => r.arrayBuffer().then(b => done([r.status, r.headers.get('content-type'), b.byteLength])));",
            vec![json!(href)],
        )
        .await
        .unwrap();
    assert_eq!(got[0], 200, "{got}");
    assert_eq!(
        got[1],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(got[2].as_u64().unwrap() > 1000, "{got}");
    sign_out(&c).await;

    // The provider's log: reads through the app, by that user, with the
    // shipment number once it was attached — in JSON and in the workbook.
    let entries = partner_log(http, pid, w.carrier.clone()).await;
    let reads: Vec<&Value> = entries
        .iter()
        .filter(|e| e["event"] == "read" && e["channel"] == "app" && e["query"] == "list")
        .collect();
    assert_eq!(
        reads.len(),
        2,
        "after the notice, and after saving: {entries:?}"
    );
    assert!(reads.iter().all(|r| r["device_id"] == D1));
    let track = entries
        .iter()
        .find(|e| e["event"] == "read" && e["query"] == "history")
        .expect("the track's read");
    assert_eq!(
        (track["channel"].clone(), track["positions"].clone()),
        (json!("app"), json!(2))
    );
    let sos = entries
        .iter()
        .find(|e| e["event"] == "read" && e["query"] == "reports" && e["channel"] == "app")
        .expect("the track's reports read");
    assert_eq!(
        (sos["channel"].clone(), sos["positions"].clone()),
        (json!("app"), json!(1))
    );
    let streamed: Vec<&Value> = entries
        .iter()
        .filter(|e| e["event"] == "read" && e["channel"] == "stream" && e["query"] == "stream")
        .collect();
    assert_eq!(streamed.len(), 1, "the one live update: {entries:?}");
    let heard_entry = entries
        .iter()
        .find(|e| e["event"] == "read" && e["channel"] == "stream" && e["query"] == "reports")
        .expect("the streamed report's read");
    assert_eq!(heard_entry["positions"], 1);
    assert!(
        heard.contains(&format!("entry {}", heard_entry["id"])),
        "{heard}"
    );
    assert_eq!(streamed[0]["user_id"], reads[0]["user_id"]);
    assert!(
        live.contains(&format!("entry {}", streamed[0]["id"])),
        "{live}"
    );
    assert_eq!(reads[0]["shipment_number"], Value::Null);
    assert_eq!(reads[1]["shipment_number"], "SN-4711-77");
    let sn = entries
        .iter()
        .find(|e| e["event"] == "shipment_number")
        .unwrap();
    assert_eq!(
        (sn["channel"].clone(), sn["shipment_number"].clone()),
        (json!("app"), json!("SN-4711-77"))
    );
    let downloads: Vec<&Value> = entries
        .iter()
        .filter(|e| e["event"] == "log_download" && e["user_id"] == reads[0]["user_id"])
        .collect();
    assert_eq!(downloads.len(), 1, "the recipient's one download");
    assert_eq!(downloads[0]["channel"], "export");
    assert_eq!(downloads[0]["query"], "access_log xlsx");
    let xlsx = {
        let key = w.carrier.clone();
        tokio::task::spawn_blocking(move || {
            let auth = format!("Bearer {key}");
            support::http_raw(
                http,
                "GET",
                &format!("/api/v1/permissions/{pid}/access-log?format=xlsx"),
                &[("Authorization", &auth)],
                None,
            )
        })
        .await
        .unwrap()
    };
    assert_eq!(xlsx.status, 200);
    let rows = workbook_rows(&xlsx.body);
    let with_number = rows
        .iter()
        .filter(|r| r.iter().any(|c| c == "SN-4711-77") && r.iter().any(|c| c == "Truck 1"))
        .count();
    assert!(
        with_number >= 2,
        "the read and the number's change: {rows:?}"
    );

    // The provider revokes in the app; the recipient then sees nothing.
    sign_in(&c, &w.carrier, "Carrier GmbH").await;
    click(&c, "#tab-granted").await;
    click(&c, &format!("tr[data-permission='{pid}'] button.revoke")).await;
    let deadline = Instant::now() + WAIT;
    while c.accept_alert().await.is_err() {
        assert!(Instant::now() < deadline, "no confirmation asked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_text(&c, &format!("tr[data-permission='{pid}']"), |t| {
        t.contains("revoked")
    })
    .await;
    sign_out(&c).await;
    sign_in(&c, &w.shipper_user, "Shipper AG").await;
    click(&c, "#tab-received").await;
    wait_text(&c, "#no-received", |t| t.contains("No partner")).await;
    assert!(!displayed(&c, "#received-devices").await);

    c.close().await.unwrap();
    drop(driver);
    gw.shutdown().await;
}

/// Every row of every sheet as text cells.
fn workbook_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    use calamine::{Reader, Xlsx};
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    let mut rows = Vec::new();
    for name in book.sheet_names() {
        let range = book.worksheet_range(&name).unwrap();
        for r in range.rows() {
            rows.push(r.iter().map(|c| c.to_string()).collect());
        }
    }
    rows
}
