//! Every row of `protocols/vectors/teltonika.tsv` (captures from Traccar's
//! test suite) through the same replay driver the server uses, checked
//! against the row's expectation with exact values where the row has them.
//!
//! - TCP rows are fed after the IMEI login `000f333536333037303432343431303133`
//!   (unless the row is a login), in one chunk, as a device would send them.
//! - `@integrity` rows (bytes that fail Teltonika's own CRC or length) must
//!   never be acknowledged as good: every frame cut from them is rejected
//!   with the `00000000` resend reply on an open connection, and the row's
//!   bytes handed to `decode` whole are rejected the same way. (A row whose
//!   declared length exceeds its bytes yields no frame at all from the
//!   framer, which is waiting for the rest: nothing is acknowledged.)
//! - Traccar's attribute names are mapped to ours by `KEY_MAP`.

// Helpers below panic on malformed vector files, which is what a test should do.
#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use trackgate::model::DeviceId;
use trackgate::protocol::testkit::{self, Vector};
use trackgate::protocol::{
    replay, DecodeContext, Decoded, MessageKind, Protocol, SessionConfig, Step, Transport,
};
use trackgate::protocols::teltonika::Teltonika;

const LOGIN: &str = "000f333536333037303432343431303133";
const IMEI: &str = "356307042441013";
const RESEND: &[u8] = &[0, 0, 0, 0];
const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/protocols/vectors/teltonika.tsv"
);

/// Traccar's attribute name in a vector → trackgate's (beyond testkit::COMMON_KEYS).
const KEY_MAP: &[(&str, &str)] = &[
    ("tag1Voltage", "tag1_voltage_mv"),
    ("tag1Battery", "tag1_battery_mv"),
    ("eyeTemp1", "eye_temp1_c"),
];

fn ctx() -> DecodeContext {
    DecodeContext {
        received: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    }
}

fn imei() -> DeviceId {
    DeviceId::new(IMEI).unwrap()
}

#[test]
fn every_vector_row_meets_its_expectation() {
    let text = std::fs::read_to_string(VECTORS).unwrap();
    let rows = testkit::parse_tsv(&text).unwrap();
    let lines = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(rows.len(), lines, "every line parses to a row");

    let mut checked = 0;
    let mut integrity = 0;
    let mut failures = Vec::new();
    for v in &rows {
        match check(v) {
            Ok(()) => {
                checked += 1;
                if v.integrity().is_some() {
                    integrity += 1;
                }
            }
            Err(e) => failures.push(format!("line {}: {e}", v.line)),
        }
    }
    println!("teltonika vectors: {checked} of {lines} rows checked ({integrity} @integrity rows rejected with 00000000)");
    assert!(
        failures.is_empty(),
        "{} failing rows:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, lines);
}

fn check(v: &Vector) -> Result<(), String> {
    if testkit::is_framer_row(v) {
        let mut session = Teltonika.session(&SessionConfig::new(Transport::Tcp));
        return testkit::check_framer(session.as_mut(), v);
    }
    let (transport, chunks, logged_in) = match v.transport.as_str() {
        "udp" => (Transport::Udp, vec![v.message.clone()], false),
        "tcp" if is_login(&v.message) || v.message == [0xff] => {
            (Transport::Tcp, vec![v.message.clone()], false)
        }
        "tcp" => (
            Transport::Tcp,
            vec![hex::decode(LOGIN).unwrap(), v.message.clone()],
            true,
        ),
        other => return Err(format!("unexpected transport {other}")),
    };
    let (steps, frame_error) = replay(
        &Teltonika,
        transport,
        chunks.iter().map(Vec::as_slice),
        &ctx(),
    );
    let mut steps = steps.as_slice();
    if logged_in {
        let (first, rest) = steps.split_first().ok_or("no step for the login")?;
        let d = first
            .outcome
            .as_ref()
            .map_err(|r| format!("login rejected: {r:?}"))?;
        if d.kind != MessageKind::Login || first.reply.as_deref() != Some(&[1u8][..]) {
            return Err(format!("login step: {first:?}"));
        }
        steps = rest;
    }
    if v.integrity().is_some() {
        return check_integrity(v, steps);
    }
    if let Some(e) = frame_error {
        return Err(format!("framing failed: {e}"));
    }
    let [step] = steps else {
        return Err(format!(
            "expected one frame, got {}: {steps:?}",
            steps.len()
        ));
    };
    if step.frame.as_ref() != v.message.as_slice() {
        return Err("the frame cut differs from the row's bytes".into());
    }
    let d = step
        .outcome
        .as_ref()
        .map_err(|r| format!("rejected: {r:?}"))?;
    check_common(v, d, step)?;
    testkit::check_expectation(&v.expectation, d, KEY_MAP)
}

fn is_login(message: &[u8]) -> bool {
    matches!(message, [0, n, ..] if *n != 0)
}

/// Facts that hold for every accepted frame: identity, protocol, times,
/// reply bytes.
fn check_common(v: &Vector, d: &Decoded, step: &Step) -> Result<(), String> {
    let expected_device = if v.transport == "udp" {
        let len = usize::from(u16::from_be_bytes([v.message[6], v.message[7]]));
        Some(DeviceId::new(std::str::from_utf8(&v.message[8..8 + len]).unwrap()).unwrap())
    } else if is_login(&v.message) {
        let len = usize::from(v.message[1]);
        Some(DeviceId::new(std::str::from_utf8(&v.message[2..2 + len]).unwrap()).unwrap())
    } else if v.message == [0xff] {
        None
    } else {
        Some(imei())
    };
    if d.device != expected_device {
        return Err(format!(
            "device {:?}, expected {expected_device:?}",
            d.device
        ));
    }
    let device = expected_device.clone();
    for p in &d.positions {
        if Some(&p.device_id) != device.as_ref()
            || p.protocol != "teltonika"
            || p.received_time != ctx().received
        {
            return Err(format!("position identity/received time wrong: {p:?}"));
        }
        if p.valid != (p.satellites != Some(0)) {
            return Err(format!("valid must follow satellites != 0: {p:?}"));
        }
    }
    for r in &d.reports {
        if Some(&r.device_id) != device.as_ref() || r.protocol != "teltonika" {
            return Err(format!("report identity wrong: {r:?}"));
        }
    }
    let expected_reply: Option<Vec<u8>> = match d.kind {
        MessageKind::Login => Some(vec![1]),
        MessageKind::Keepalive | MessageKind::CommandResponse | MessageKind::Other => None,
        MessageKind::Data if v.transport == "udp" => {
            // 00 05 | packet id | 01 | AVL packet id | record count
            let imei_len = usize::from(u16::from_be_bytes([v.message[6], v.message[7]]));
            let count = v.message[8 + imei_len + 1];
            Some(vec![
                0x00,
                0x05,
                v.message[2],
                v.message[3],
                0x01,
                v.message[5],
                count,
            ])
        }
        MessageKind::Data => Some(u32::from(v.message[9]).to_be_bytes().to_vec()),
    };
    if step.reply.as_deref() != expected_reply.as_deref() {
        return Err(format!(
            "reply {:?}, expected {:?}",
            step.reply.as_deref().map(hex::encode),
            expected_reply.map(hex::encode)
        ));
    }
    if d.kind == MessageKind::Login && d.reply.refuse.as_deref() != Some(&[0u8][..]) {
        return Err("login refusal must be 00".into());
    }
    Ok(())
}

/// `@integrity` rows: no frame cut from them is acknowledged as good, and
/// the row's bytes as one frame are rejected with the resend reply.
fn check_integrity(v: &Vector, steps: &[Step]) -> Result<(), String> {
    for s in steps {
        match &s.outcome {
            Ok(d) => return Err(format!("integrity row accepted: {d:?}")),
            Err(r)
                if r.close
                    || r.reply.as_deref() != Some(RESEND)
                    || s.reply.as_deref() != Some(RESEND) =>
            {
                return Err(format!(
                    "integrity row rejected without the 00000000 resend: {r:?}"
                ))
            }
            Err(_) => {}
        }
    }
    let mut session = Teltonika.session(&SessionConfig::new(Transport::Tcp));
    session
        .decode(&hex::decode(LOGIN).unwrap(), &ctx())
        .map_err(|r| format!("login: {r:?}"))?;
    match session.decode(&v.message, &ctx()) {
        Ok(d) => Err(format!("integrity row accepted when decoded whole: {d:?}")),
        Err(r) if r.close || r.reply.as_deref() != Some(RESEND) => Err(format!(
            "integrity row decoded whole: rejected without the 00000000 resend: {r:?}"
        )),
        Err(r) => {
            let kind = r.error.kind();
            let expected: &[&str] = match v.integrity() {
                Some("crc_mismatch") => &["checksum"],
                Some(_) => &["length", "checksum", "malformed"],
                None => &[],
            };
            if expected.contains(&kind) {
                Ok(())
            } else {
                Err(format!(
                    "integrity {:?} rejected as {kind}: {}",
                    v.integrity(),
                    r.error
                ))
            }
        }
    }
}

#[test]
fn key_map_targets_are_snake_case_with_units() {
    for (traccar, ours) in KEY_MAP {
        assert!(
            ours.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{traccar} → {ours}"
        );
    }
}
