//! gl200 (Queclink @Track): every vector row through the replay driver the
//! server uses, over TCP and UDP, then the running gateway over real
//! sockets.
//!
//! - Text rows are sent over TCP with their `$` (appended where the row
//!   omits it, as a device always sends it) and must come out as one frame
//!   (the row without `$`); over UDP the row is one datagram as is.
//! - Binary rows are whole frames on both transports.
//! - Replies: `+ACK:GTHBD` gets `+SACK:GTHBD,<ver>,<count>$`, nothing else
//!   is answered with the default settings; with the port set to SACK mode
//!   (`model = "sack"`) every text message gets `+SACK:<count>$`.
//! - Traccar's attribute names are mapped to ours by `KEY_MAP`.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use trackgate::model::DeviceId;
use trackgate::protocol::testkit::{self, Vector};
use trackgate::protocol::{
    replay_with, DecodeContext, MessageKind, Protocol, SessionConfig, Step, Transport,
};
use trackgate::protocols::gl200::Gl200;

use crate::support::{metric, start, test_config};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/protocols/vectors/gl200.tsv");

/// Traccar's attribute name in a vector → ours (beyond testkit::COMMON_KEYS).
const KEY_MAP: &[(&str, &str)] = &[
    ("fuel", "fuel_level"),
    ("adBlueLevel", "adblue_level_pct"),
    ("power2", "power2_v"),
    ("adc3", "adc3_v"),
    ("accessoryVoltage", "accessory_v"),
    ("warningType", "warning_type"),
    ("data", "data"),
    ("in1", "in1"),
];

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    }
}

fn config(transport: Transport, model: Option<&str>) -> SessionConfig {
    let mut c = SessionConfig::new(transport);
    c.model = model.map(Arc::from);
    c
}

fn is_text(v: &Vector) -> bool {
    v.message.first() == Some(&b'+') && v.message.get(4..6).is_some_and(|s| s.contains(&b':'))
}

/// The row as a device sends it over TCP: text always ends with `$`.
fn on_wire(v: &Vector) -> Vec<u8> {
    let mut m = v.message.clone();
    if is_text(v) && m.last() != Some(&b'$') {
        m.push(b'$');
    }
    m
}

/// The frame the TCP framer must cut from `on_wire`.
fn expected_frame(v: &Vector) -> Vec<u8> {
    let m = on_wire(v);
    if is_text(v) {
        m[..m.len() - 1].to_vec()
    } else {
        m
    }
}

fn text_fields(v: &Vector) -> Vec<String> {
    let s = String::from_utf8_lossy(&expected_frame(v)).into_owned();
    s.split(',').map(str::to_string).collect()
}

#[test]
fn every_vector_row_meets_its_expectation() {
    let mut checked = 0;
    let rows = testkit::run_file(VECTORS, |v| {
        checked += 1;
        check(v)
    });
    assert_eq!(checked, rows.len());
    assert_eq!(rows.len(), 203);
}

fn check(v: &Vector) -> Result<(), String> {
    let model = v.tag("model");
    if testkit::is_framer_row(v) {
        let mut session = Gl200.session(&config(Transport::Tcp, model));
        return testkit::check_framer(session.as_mut(), v);
    }
    for transport in [Transport::Tcp, Transport::Udp] {
        let chunk = match transport {
            Transport::Tcp => on_wire(v),
            Transport::Udp => v.message.clone(),
        };
        let (steps, err) = replay_with(
            &Gl200,
            &config(transport, model),
            [chunk.as_slice()],
            &ctx(),
        );
        if let Some(e) = err {
            return Err(format!("{transport}: framing failed: {e}"));
        }
        let [step] = steps.as_slice() else {
            return Err(format!(
                "{transport}: expected one frame, got {}",
                steps.len()
            ));
        };
        if transport == Transport::Tcp && step.frame.as_ref() != expected_frame(v).as_slice() {
            return Err("tcp: the frame cut differs from the row".into());
        }
        let d = step
            .outcome
            .as_ref()
            .map_err(|r| format!("{transport}: rejected: {r:?}"))?;
        common(v, d, step).map_err(|e| format!("{transport}: {e}"))?;
        testkit::check_expectation(&v.expectation, d, KEY_MAP)
            .map_err(|e| format!("{transport}: {e}"))?;
    }
    if is_text(v) {
        check_sack(v)?;
    }
    Ok(())
}

/// Identity, protocol, received time and reply bytes of an accepted frame.
fn common(v: &Vector, d: &trackgate::protocol::Decoded, step: &Step) -> Result<(), String> {
    let device = d.device.clone().ok_or("no device id")?;
    if is_text(v) {
        let f = text_fields(v);
        let imei = if f[1].len() == 15 { &f[1] } else { &f[2] };
        if device.as_str() != imei {
            return Err(format!("device {device}, expected {imei}"));
        }
    }
    for p in &d.positions {
        if p.device_id != device || p.protocol != "gl200" || p.received_time != ctx().received {
            return Err(format!("position identity wrong: {p:?}"));
        }
        let buffered = p.attributes.get("buffered").is_some();
        if buffered != v.message.starts_with(b"+BUFF") && is_text(v) {
            return Err("buffered flag must follow +BUFF".into());
        }
    }
    for r in &d.reports {
        if r.device_id != device || r.protocol != "gl200" {
            return Err(format!("report identity wrong: {r:?}"));
        }
    }
    let expected: Option<Vec<u8>> = if v.message.starts_with(b"+ACK:GTHBD") {
        let f = text_fields(v);
        Some(format!("+SACK:GTHBD,{},{}$", f[1], f[f.len() - 1]).into_bytes())
    } else {
        None
    };
    if step.reply.as_deref() != expected.as_deref() {
        return Err(format!(
            "reply {:?}, expected {:?}",
            step.reply.as_deref().map(String::from_utf8_lossy),
            expected.as_deref().map(String::from_utf8_lossy)
        ));
    }
    if d.reply.refuse.is_some() {
        return Err("queclink has no negative reply".into());
    }
    if v.message.starts_with(b"+ACK:GTHBD") && d.kind != MessageKind::Keepalive {
        return Err(format!("heartbeat kind {:?}", d.kind));
    }
    Ok(())
}

/// In SACK mode every text message is acknowledged with its count.
fn check_sack(v: &Vector) -> Result<(), String> {
    let (steps, _) = replay_with(
        &Gl200,
        &config(Transport::Tcp, Some("sack")),
        [on_wire(v).as_slice()],
        &ctx(),
    );
    let [step] = steps.as_slice() else {
        return Err("sack: expected one frame".into());
    };
    let f = text_fields(v);
    let count = &f[f.len() - 1];
    let expected = if v.message.starts_with(b"+ACK:GTHBD") {
        format!("+SACK:GTHBD,{},{count}$", f[1])
    } else if count.len() == 4 && count.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("+SACK:{count}$")
    } else {
        return if step.reply.is_none() {
            Ok(())
        } else {
            Err("sack without a count".into())
        };
    };
    if step.reply.as_deref() != Some(expected.as_bytes()) {
        return Err(format!("sack reply {:?}, expected {expected}", step.reply));
    }
    Ok(())
}

#[test]
fn key_map_targets_are_snake_case() {
    for (traccar, ours) in KEY_MAP {
        assert!(
            ours.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{traccar} → {ours}"
        );
    }
}

// ---- the running gateway over real sockets ----

const HBD: &[u8] = b"+ACK:GTHBD,1A0401,135790246811220,,20250214093254,11F0$";
const HBD_REPLY: &[u8] = b"+SACK:GTHBD,1A0401,11F0$";
const FRI: &[u8] = b"+RESP:GTFRI,060100,135790246811220,,12500,10,1,1,36.0,92,70.0,121.354335,31.222073,20250214013254,0460,0000,18d8,6141,00,2000.0,,,,80,210100,,,,20250214093254,11F1$";
/// Protocol Pro report (the vector's bytes): 865134050947226 at
/// 44.833422,-91.543308 on 2026-06-26T19:45:53Z.
const PRO: &str = "2b000038000865134050947226820300030000216a3ed6f101895000521629fa8b28f402ac1a8e6a3ed6f100001600000010f505010ff824";
const UDP_FRI: &[u8] = b"+BUFF:GTFRI,060100,862894020180553,,,10,1,1,54.0,180,12.5,-63.287717,-17.662410,20250116234031,0736,0003,6ABA,8305,00,3326.8,,,,94,220100,,,,20250116234035,4D83$";

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let start = Instant::now();
    let mut buf = [0u8; 64];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
    false
}

fn wait_for(engine: &trackgate::engine::Engine, imei: &str) -> trackgate::model::Position {
    let id = DeviceId::new(imei).unwrap();
    let start = Instant::now();
    loop {
        if let Some(p) = engine.get(&id) {
            return p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no position for {imei}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_acks_heartbeats_stores_reports_and_drops_bad_frames() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&test_config(dir.path())).await;
    let tcp = gw.addr("gl200", Transport::Tcp).unwrap();
    let udp = gw.addr("gl200", Transport::Udp).unwrap();
    let http = gw.http;
    let text = tokio::task::spawn_blocking(move || {
        let mut s = connect(tcp);
        // Heartbeat: the exact SACK.
        s.write_all(HBD).unwrap();
        assert_eq!(read_n(&mut s, HBD_REPLY.len()), HBD_REPLY);

        // A report split across segments gets no reply (SACK mode off):
        // the next bytes we read are the following heartbeat's answer.
        s.write_all(&FRI[..40]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(&FRI[40..]).unwrap();
        s.write_all(HBD).unwrap();
        assert_eq!(read_n(&mut s, HBD_REPLY.len()), HBD_REPLY);

        // Protocol Pro with a broken CRC: rejected, not answered, the
        // connection stays; the good frame after it is stored.
        let good = hex::decode(PRO).unwrap();
        let mut bad = good.clone();
        let at = bad.len() - 2;
        bad[at] ^= 0x55;
        s.write_all(&bad).unwrap();
        s.write_all(&good).unwrap();
        s.write_all(HBD).unwrap();
        assert_eq!(read_n(&mut s, HBD_REPLY.len()), HBD_REPLY);

        // UDP: heartbeat answered to the sender, a buffered report stored.
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        u.send_to(HBD, udp).unwrap();
        let mut buf = [0u8; 128];
        let (n, from) = u.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], HBD_REPLY);
        assert_eq!(from, udp);
        u.send_to(UDP_FRI, udp).unwrap();

        // Garbage closes that connection only.
        let mut g = connect(tcp);
        g.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert!(
            closed_within(&mut g, Duration::from_secs(5)),
            "garbage closes"
        );
        s.write_all(HBD).unwrap();
        assert_eq!(
            read_n(&mut s, HBD_REPLY.len()),
            HBD_REPLY,
            "other connection unaffected"
        );
        // The buffered UDP report gets no reply: wait for its commit.
        crate::support::metrics_when(http, |t| {
            metric(t, "trackgate_positions_total", "protocol=\"gl200\"") >= 3.0
        })
    })
    .await
    .unwrap();

    let p = wait_for(&gw.engine, "135790246811220");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2025, 2, 14, 1, 32, 54).unwrap()
    );
    assert_eq!(
        (p.lat, p.lon),
        (31.222073, 121.354335),
        "lon comes before lat"
    );
    assert_eq!(
        (p.speed_kmh, p.course_deg, p.altitude_m),
        (36.0, 92.0, 70.0)
    );
    assert_eq!(p.protocol, "gl200");
    assert!(p.valid);

    let p = wait_for(&gw.engine, "865134050947226");
    assert_eq!(
        p.fix_time,
        Utc.with_ymd_and_hms(2026, 6, 26, 19, 45, 53).unwrap()
    );
    assert_eq!((p.lat, p.lon), (44.833422, -91.543308));
    assert_eq!(p.satellites, Some(5));

    let p = wait_for(&gw.engine, "862894020180553");
    assert_eq!((p.lat, p.lon), (-17.66241, -63.287717));
    assert_eq!(p.speed_kmh, 54.0);
    assert_eq!(
        p.attributes.get("buffered"),
        Some(&trackgate::model::AttrValue::Bool(true))
    );

    let l = "protocol=\"gl200\"";
    assert_eq!(metric(&text, "trackgate_positions_total", l), 3.0);
    assert_eq!(
        metric(
            &text,
            "trackgate_decode_errors_total",
            "kind=\"checksum\",protocol=\"gl200\""
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "trackgate_decode_errors_total",
            "kind=\"frame_garbage\",protocol=\"gl200\""
        ),
        1.0
    );
    gw.shutdown().await;
}
