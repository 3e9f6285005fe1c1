//! The web app's server side over real HTTP: an API key signs in for an
//! HttpOnly, SameSite=Strict session cookie; calls made with it are the
//! `app` channel in the access log and see exactly what the key sees;
//! signing out and revoking the key end the session; the static app is
//! served without authentication but with a strict content security policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use serde_json::{json, Value};
use support::partners::{call, gateway, grant, partner_log, report, setup, ADMIN, D1, D2};
use support::{http_raw, metric, metrics_when, HttpResponse};
use trackgate::protocol::Transport;

/// A call carrying `cookie` (and optionally a bearer key).
fn with_cookie(
    http: SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (HttpResponse, Value) {
    let cookie = format!("theme=dark; tg_session={cookie}");
    let auth = bearer.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("User-Agent", "trackgate-browser/1"), ("Cookie", &cookie)];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let body = body.map(|b| b.to_string());
    let r = http_raw(http, method, path, &headers, body.as_deref());
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r, v)
}

/// Signs in with `key`; returns the answer and the session token.
fn sign_in(http: SocketAddr, key: &str) -> (HttpResponse, Option<String>) {
    let body = json!({"api_key": key}).to_string();
    let r = http_raw(http, "POST", "/api/v1/session", &[], Some(&body));
    let token = r.header("set-cookie").and_then(|c| {
        let v = c.split(';').next()?.strip_prefix("tg_session=")?;
        (!v.is_empty()).then(|| v.to_string())
    });
    (r, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cookie_reads_as_the_app_channel_until_sign_out_or_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    let tcp = gw.addr("teltonika", Transport::Tcp).unwrap();
    tokio::task::spawn_blocking(move || {
        let w = setup(http, tcp);
        let pid = grant(http, &w.carrier, "Load 42", "0815", &[D1]);
        let fix = chrono::Utc::now().timestamp_millis() as u64 + 1000;
        report(tcp, D1, fix, 52.52, 13.405);

        // Wrong keys and malformed bodies get no cookie.
        let (r, token) = sign_in(http, "tg_not_a_key");
        assert_eq!(r.status, 401);
        assert_eq!(token, None);
        let r = http_raw(
            http,
            "POST",
            "/api/v1/session",
            &[],
            Some(r#"{"key": "x"}"#),
        );
        assert_eq!(r.status, 400);
        assert!(r.header("set-cookie").is_none());

        // The recipient's user signs in.
        let (r, token) = sign_in(http, &w.shipper_user);
        assert_eq!(r.status, 201);
        let token = token.expect("a session cookie");
        assert!(token.starts_with("tgs_") && token.len() == 68, "{token}");
        let set = r.header("set-cookie").unwrap();
        for flag in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/api/v1",
            "Max-Age=43200",
        ] {
            assert!(set.contains(flag), "{flag} missing in {set}");
        }
        assert!(!set.contains("Secure"), "served over plain HTTP: {set}");
        let held = |t: &str| metric(t, "trackgate_web_sessions", "");
        assert_eq!(held(&metrics_when(http, |t| held(t) == 1.0)), 1.0);
        let me: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(me["company_id"], "0815");
        assert_eq!(me["company_name"], "Shipper AG");
        assert_eq!(me["role"], "user");
        assert_eq!(me["channel"], "app");
        let (r, v) = with_cookie(http, "GET", "/api/v1/session", &token, None, None);
        assert_eq!(r.status, 200);
        assert_eq!(
            (v["user_id"].clone(), v["channel"].clone()),
            (me["user_id"].clone(), json!("app"))
        );
        let (st, v) = call(http, "GET", "/api/v1/session", Some(&w.shipper_user), None);
        assert_eq!((st, v["channel"].clone()), (200, json!("api")));

        // The cookie reads what the key may read, and is logged as `app`.
        let (r, v) = with_cookie(
            http,
            "GET",
            "/api/v1/devices?scope=received",
            &token,
            None,
            None,
        );
        assert_eq!(r.status, 200, "{v}");
        let app_entry: i64 = r.header("x-access-logged").unwrap().parse().unwrap();
        assert_eq!(v["devices"][0]["device_id"], D1);
        assert_eq!(v["devices"][0]["position"]["lat"], 52.52);
        let (st, _) = call(
            http,
            "GET",
            "/api/v1/devices?scope=received",
            Some(&w.shipper_user),
            None,
        );
        assert_eq!(st, 200);
        let (r, _) = with_cookie(
            http,
            "GET",
            &format!("/api/v1/devices/{D2}/position"),
            &token,
            None,
            None,
        );
        assert_eq!(r.status, 404, "a device outside the permission");
        let (r, v) = with_cookie(
            http,
            "PUT",
            &format!("/api/v1/permissions/{pid}/devices/{D1}/shipment-number"),
            &token,
            None,
            Some(json!({"shipment_number": "SN-77"})),
        );
        assert_eq!(r.status, 200, "{v}");
        // A page of another origin (another port of this host is the
        // same site, so SameSite lets the cookie through) gets nothing.
        let cookie = format!("tg_session={token}");
        for (from, want) in [
            ("same-site", 401),
            ("cross-site", 401),
            ("same-origin", 200),
        ] {
            let r = http_raw(
                http,
                "GET",
                "/api/v1/session",
                &[("Cookie", &cookie), ("Sec-Fetch-Site", from)],
                None,
            );
            assert_eq!(r.status, want, "Sec-Fetch-Site: {from}");
        }
        // A wrong bearer key is not rescued by a valid cookie.
        let (r, _) = with_cookie(
            http,
            "GET",
            "/api/v1/session",
            &token,
            Some("tg_wrong"),
            None,
        );
        assert_eq!(r.status, 401);

        let entries = partner_log(http, pid, &w.carrier);
        let reads: Vec<&Value> = entries.iter().filter(|e| e["event"] == "read").collect();
        assert_eq!(reads.len(), 2, "{entries:?}");
        assert_eq!(reads[0]["id"], app_entry);
        assert_eq!(reads[0]["channel"], "app");
        assert_eq!(reads[0]["user_id"], me["user_id"]);
        assert_eq!(reads[0]["user_agent"], "trackgate-browser/1");
        assert_eq!(reads[1]["channel"], "api");
        let sn = entries
            .iter()
            .find(|e| e["event"] == "shipment_number")
            .unwrap();
        assert_eq!(
            (sn["channel"].clone(), sn["shipment_number"].clone()),
            (json!("app"), json!("SN-77"))
        );

        // Signing out ends the session and clears the cookie.
        let (r, _) = with_cookie(http, "DELETE", "/api/v1/session", &token, None, None);
        assert_eq!(r.status, 204);
        assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
        assert_eq!(held(&metrics_when(http, |t| held(t) == 0.0)), 0.0);
        // Behind a TLS-terminating proxy the cookie is Secure.
        let body = json!({"api_key": w.shipper_user}).to_string();
        let r2 = http_raw(
            http,
            "POST",
            "/api/v1/session",
            &[("X-Forwarded-Proto", "https")],
            Some(&body),
        );
        assert_eq!(r2.status, 201);
        let set2 = r2.header("set-cookie").unwrap();
        assert!(set2.ends_with("; Secure"), "{set2}");
        let (r, _) = with_cookie(
            http,
            "GET",
            "/api/v1/devices?scope=received",
            &token,
            None,
            None,
        );
        assert_eq!(r.status, 401);
        let after = partner_log(http, pid, &w.carrier);
        let reads_after = after.iter().filter(|e| e["event"] == "read").count();
        assert_eq!(reads_after, 2, "nothing read after signing out");

        // Revoking the key ends every session opened with it.
        let (_, token) = sign_in(http, &w.shipper_user);
        let token = token.unwrap();
        let (r, _) = with_cookie(http, "GET", "/api/v1/session", &token, None, None);
        assert_eq!(r.status, 200);
        let (st, _) = call(
            http,
            "DELETE",
            &format!("/api/v1/api-keys/{}", me["api_key_id"]),
            Some(&w.shipper_user),
            None,
        );
        assert_eq!(st, 204);
        let (r, _) = with_cookie(http, "GET", "/api/v1/session", &token, None, None);
        assert_eq!(r.status, 401);

        // The operator's token is not a company user's key: no session.
        let (r, _) = sign_in(http, ADMIN);
        assert_eq!(r.status, 401);
    })
    .await
    .unwrap();
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_served_with_a_strict_content_security_policy() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let http = gw.http;
    tokio::task::spawn_blocking(move || {
        let r = http_raw(http, "GET", "/", &[], None);
        assert_eq!(r.status, 303);
        assert_eq!(r.header("location").as_deref(), Some("/app/"));
        let r = http_raw(http, "GET", "/app/", &[], None);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("text/html; charset=utf-8")
        );
        let csp = r.header("content-security-policy").unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        let page = String::from_utf8(r.body).unwrap();
        assert!(page.contains(r#"<script src="app.js" defer></script>"#));
        assert!(!page.contains("<script>"), "no inline script");
        let r = http_raw(http, "GET", "/app/app.js", &[], None);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("text/javascript; charset=utf-8")
        );
        let script = String::from_utf8(r.body).unwrap();
        assert!(script.contains("x-access-logged") && !script.contains("innerHTML"));
        let r = http_raw(http, "GET", "/app/app.css", &[], None);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("text/css; charset=utf-8")
        );

        // The API documents the session routes and the cookie scheme.
        let (st, doc) = call(http, "GET", "/api/v1/openapi.json", Some(ADMIN), None);
        assert_eq!(st, 200);
        let session = &doc["paths"]["/api/v1/session"];
        for m in ["get", "post", "delete"] {
            assert!(session[m].is_object(), "{m} /api/v1/session");
        }
        let scheme = &doc["components"]["securitySchemes"]["session"];
        assert_eq!(
            (scheme["in"].clone(), scheme["name"].clone()),
            (json!("cookie"), json!("tg_session"))
        );
        let security = doc["paths"]["/api/v1/devices"]["get"]["security"]
            .as_array()
            .unwrap();
        assert!(
            security.iter().any(|s| s.get("session").is_some()),
            "{security:?}"
        );
        let security = doc["paths"]["/api/v1/admin/companies"]["post"]["security"]
            .as_array()
            .unwrap();
        assert!(
            security.iter().all(|s| s.get("session").is_none()),
            "the operator has no session"
        );
    })
    .await
    .unwrap();
    gw.shutdown().await;
}
