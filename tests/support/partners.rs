//! A partner world over the real API: the operator's token, a carrier
//! (4711) with two trucks, a shipper (0815) and an outsider (9999) with one
//! truck each, their users' keys, and positions sent over real Teltonika.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use nom_teltonika::encoder::{encode_avl_frame, AvlRecordFields};
use nom_teltonika::protocol::{AvlCodec, AvlTimestamp, GpsElement, Priority};
use serde_json::{json, Value};

use super::{http_request, start, test_config, write_admin_token};

pub const ADMIN: &str = "tga_test_admin_token";
pub const D1: &str = "356307042441013";
pub const D2: &str = "356307042441014";
pub const D9: &str = "356307042441099";

/// A JSON call; returns status, headers text and parsed body (Null if none).
pub fn call(
    http: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("User-Agent", "trackgate-test/1")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let body = body.map(|b| b.to_string());
    let (status, text) = http_request(http, method, path, &headers, body.as_deref());
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Raw GET returning status, the x-access-logged header and the body bytes.
pub fn get_raw(http: SocketAddr, path: &str, key: &str) -> (u16, Option<String>, Vec<u8>) {
    let auth = format!("Bearer {key}");
    let r = super::http_raw(
        http,
        "GET",
        path,
        &[("User-Agent", "trackgate-test/1"), ("Authorization", &auth)],
        None,
    );
    (r.status, r.header("x-access-logged"), r.body)
}

/// Sends one record for `imei` at `fix_ms` over Teltonika TCP; asserts the ack.
pub fn report(tcp: SocketAddr, imei: &str, fix_ms: u64, lat: f64, lon: f64) {
    let mut s = TcpStream::connect(tcp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut login = (imei.len() as u16).to_be_bytes().to_vec();
    login.extend_from_slice(imei.as_bytes());
    s.write_all(&login).unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    assert_eq!(b, [1], "{imei} accepted");
    let gps = GpsElement {
        longitude_raw: (lon * 1e7).round() as i32,
        latitude_raw: (lat * 1e7).round() as i32,
        altitude_meters: 100,
        angle_degrees: 90,
        satellites: 8,
        speed_kph: 55,
    };
    let rec = [AvlRecordFields::new(
        AvlTimestamp::from(fix_ms),
        Priority::Low,
        gps,
    )];
    s.write_all(&encode_avl_frame(AvlCodec::Codec8, &rec).unwrap())
        .unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(ack, [0, 0, 0, 1]);
}

pub struct World {
    pub http: SocketAddr,
    pub tcp: SocketAddr,
    pub carrier: String,
    pub carrier_user: String,
    pub shipper: String,
    pub shipper_user: String,
    pub outsider: String,
}

pub fn user(http: SocketAddr, company: &str, role: &str) -> String {
    let (st, v) = call(
        http,
        "POST",
        &format!("/api/v1/admin/companies/{company}/users"),
        Some(ADMIN),
        Some(json!({"name": format!("{role} of {company}"), "role": role})),
    );
    assert_eq!(st, 201, "{v}");
    v["api_key"].as_str().unwrap().to_string()
}

pub fn setup(http: SocketAddr, tcp: SocketAddr) -> World {
    for (id, name) in [
        ("4711", "Carrier GmbH"),
        ("0815", "Shipper AG"),
        ("9999", "Outsider Ltd"),
    ] {
        let (st, v) = call(
            http,
            "POST",
            "/api/v1/admin/companies",
            Some(ADMIN),
            Some(json!({"id": id, "name": name})),
        );
        assert_eq!(st, 201, "{v}");
    }
    let (st, _) = call(
        http,
        "POST",
        "/api/v1/admin/companies",
        Some(ADMIN),
        Some(json!({"id": "4711", "name": "dup"})),
    );
    assert_eq!(st, 409, "duplicate company id");
    for (company, id, name) in [
        ("4711", D1, "Truck 1"),
        ("4711", D2, "Truck 2"),
        ("9999", D9, "Their truck"),
    ] {
        let (st, v) = call(
            http,
            "POST",
            &format!("/api/v1/admin/companies/{company}/devices"),
            Some(ADMIN),
            Some(json!({"device_id": id, "name": name})),
        );
        assert_eq!(st, 201, "{v}");
    }
    let (st, _) = call(
        http,
        "POST",
        "/api/v1/admin/companies/9999/devices",
        Some(ADMIN),
        Some(json!({"device_id": D1, "name": "steal"})),
    );
    assert_eq!(st, 409, "a device already owned");
    World {
        http,
        tcp,
        carrier: user(http, "4711", "admin"),
        carrier_user: user(http, "4711", "user"),
        shipper: user(http, "0815", "admin"),
        shipper_user: user(http, "0815", "user"),
        outsider: user(http, "9999", "admin"),
    }
}

pub async fn gateway(dir: &std::path::Path) -> trackgate::app::Running {
    write_admin_token(dir, ADMIN);
    let mut c = test_config(dir);
    c.ingest.accept_unregistered_devices = false;
    start(&c).await
}

/// The provider (`key`) grants `devices` to `recipient` as an open partner
/// permission named `name`; returns its id.
pub fn grant(http: SocketAddr, key: &str, name: &str, recipient: &str, devices: &[&str]) -> i64 {
    let (st, p) = call(
        http,
        "POST",
        "/api/v1/permissions",
        Some(key),
        Some(json!({"name": name, "recipient_company_id": recipient, "device_ids": devices})),
    );
    assert_eq!(st, 201, "{p}");
    p["id"].as_i64().unwrap()
}

/// The entries of permission `pid`'s access log as a party (`key`) sees
/// them. (Reading it is itself logged, as a `log_download`.)
pub fn partner_log(http: SocketAddr, pid: i64, key: &str) -> Vec<Value> {
    let (st, v) = call(
        http,
        "GET",
        &format!("/api/v1/permissions/{pid}/access-log"),
        Some(key),
        None,
    );
    assert_eq!(st, 200, "{v}");
    v["entries"].as_array().unwrap().clone()
}
