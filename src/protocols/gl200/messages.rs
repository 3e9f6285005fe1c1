//! Per-report-type field lists of the text protocol. Each function gets
//! the message's fields, the device model and the index of the first field
//! after the IMEI, and returns the records it carries. Field layouts follow
//! the vectors in `protocols/vectors/gl200.tsv`; see `protocols/gl200.md`.

use crate::model::AttrValue;

use super::fields::{self, Fields};
use super::location::{self, After, Cursor};
use super::models;
use super::record::Record;

/// `+RESP:GTFRI` and its siblings (GEO, RTL, DOG): an optional VIN, the
/// device name, power, report type, then `count` GNSS blocks and a tail
/// whose layout depends on the firmware.
pub(super) fn fri(f: Fields<'_>, start: usize) -> Vec<Record> {
    let mut c = Cursor::new(f, start);
    let vin = if c.peek(0).len() == 17 && c.peek(0).bytes().all(|b| b.is_ascii_alphanumeric()) {
        Some(c.next())
    } else {
        None
    };
    c.skip(1); // device name
    let power = fields::int(c.peek(0));
    let end = tail_end(&f);
    let anchors = location::anchors(&f, c.i);
    let mut records = Vec::new();
    let mut after_last = c.i;
    for j in &anchors {
        let Some(block) = j.checked_sub(4) else {
            continue;
        };
        if block < c.i {
            continue;
        }
        let mut r = Record::default();
        if let Some(v) = vin {
            r.text("vin", v);
        }
        let mut b = Cursor::new(f, block);
        location::read(&mut b, &mut r, "", After::Single);
        after_last = b.i;
        records.push(r);
    }
    if records.is_empty() {
        // No fix: the empty GNSS block(s) end where the 6-digit status or
        // the last numbers start; only the tail heuristics below apply.
        let mut r = Record::default();
        if let Some(v) = vin {
            r.text("vin", v);
        }
        records.push(r);
        after_last = end;
    }
    if let Some(last) = records.last_mut() {
        if let Some(p) = power.filter(|p| *p > 10) {
            last.float("power_v", Some(p as f64 / 1000.0));
        }
        fri_tail(last, &f, after_last, end);
    }
    records
}

/// Index of the send time (the field before the count), or of the count
/// when the send time is missing.
fn tail_end(f: &Fields<'_>) -> usize {
    let len = f.len();
    if fields::time(f.back(2)).is_some() {
        len.saturating_sub(2)
    } else {
        len.saturating_sub(1)
    }
}

/// The fields between the last GNSS block and the send time.
fn fri_tail(r: &mut Record, f: &Fields<'_>, from: usize, end: usize) {
    let tail: Vec<&str> = (from..end).map(|i| f.get(i)).collect();
    let get = |i: usize| tail.get(i).copied().unwrap_or("");
    // GV-series: mileage, hour meter, adc1, adc2, [reserved], battery %, status (6 hex), rpm, fuel…
    let status = (4..tail.len()).find(|&k| fields::is_hex(get(k), 6..=6));
    if let Some(k) = status {
        if get(0).contains('.') {
            r.float("odometer_m", fields::float(get(0)).map(|km| km * 1000.0));
        }
        r.int(
            "hours_s",
            fields::hours(get(1)).filter(|_| get(1).contains(':')),
        );
        r.float("adc1_v", fields::int(get(2)).map(|mv| mv as f64 / 1000.0));
        r.float("adc2_v", fields::int(get(3)).map(|mv| mv as f64 / 1000.0));
        battery_level(r, get(k.saturating_sub(1)));
        if let Some(s) = fields::hex(get(k)) {
            status_bits(r, s);
        }
        r.int("rpm", fields::int(get(k.saturating_add(1))));
        r.int("fuel_level", fields::int(get(k.saturating_add(3))));
    } else if tail.len() >= 6 {
        // GL-series: reserved, battery mV, battery %, mode, motion, temperature.
        r.float(
            "battery_v",
            fields::int(get(1)).map(|mv| mv as f64 / 1000.0),
        );
        battery_level(r, get(2));
        r.float("temp1_c", fields::float(get(5)));
    } else {
        // Older firmware: [rssi | mileage], battery %.
        for v in &tail {
            if v.contains('.') {
                r.float("odometer_m", fields::float(v).map(|km| km * 1000.0));
            }
        }
        if let Some(v) = tail.iter().rev().find(|v| !v.is_empty()) {
            battery_level(r, v);
        }
    }
}

fn battery_level(r: &mut Record, v: &str) {
    if fields::is_digits(v, 3) {
        r.int("battery_level_pct", fields::int(v).filter(|p| *p <= 100));
    }
}

/// The 6-hex-digit device status: ignition in the motion byte, then the
/// digital inputs and outputs.
pub(super) fn status_bits(r: &mut Record, value: u64) {
    let state = (value >> 16) & 0xff;
    if state & 0x10 != 0 {
        r.flag("ignition", false);
    } else if state & 0x20 != 0 {
        r.flag("ignition", true);
    }
    let input = (value >> 8) & 0xff;
    let output = value & 0xff;
    r.int("input", i64::try_from(input).ok());
    r.flag("in1", input & 0b10 != 0);
    r.flag("in2", input & 0b100 != 0);
    r.int("output", i64::try_from(output).ok());
    r.flag("out1", output & 1 != 0);
    r.flag("out2", output & 0b10 != 0);
}

/// An analog input: `F<n>` is a fuel sensor level, else millivolts.
fn analog(r: &mut Record, key_v: &'static str, key_fuel: &'static str, v: &str) {
    if let Some(level) = v.strip_prefix('F') {
        r.int(key_fuel, fields::int(level));
    } else {
        r.float(key_v, fields::int(v).map(|mv| mv as f64 / 1000.0));
    }
}

/// `+RESP:GTERI`: like FRI with an ERI mask announcing peripheral blocks
/// (digital fuel sensor, 1-wire temperatures, fuel sensors, BLE
/// accessories) after the status.
pub(super) fn eri(f: Fields<'_>, start: usize, model: &str) -> Vec<Record> {
    let mut c = Cursor::new(f, start);
    let vin = if model == "GV500" {
        Some(c.next())
    } else {
        None
    };
    c.skip(1); // device name
    let mask = fields::hex(c.next()).unwrap_or(0);
    let power = fields::int(c.next()).map(|mv| mv as f64 / 1000.0);
    c.skip(1); // report type
    let count = fields::int(c.next()).unwrap_or(0).clamp(0, 64);
    let mut records = Vec::new();
    for _ in 0..count {
        let mut r = Record::default();
        if let Some(v) = vin {
            r.text("vin", v);
        }
        location::read(&mut c, &mut r, model, After::Model);
        records.push(r);
    }
    let Some(r) = records.last_mut() else {
        return records;
    };
    let gl5 = model.starts_with("GL5");
    if matches!(model, "GL200" | "GL300" | "GL300W" | "GL300VC") && mask == 0 {
        battery_level(r, c.next());
        return records;
    }
    r.float("power_v", power);
    if !gl5 {
        let v = c.next();
        r.float("odometer_m", fields::float(v).map(|km| km * 1000.0));
    }
    if !gl5 && model != "GL320M" {
        let h = c.next();
        r.int("hours_s", fields::hours(h));
        analog(r, "adc1_v", "fuel1", c.next());
    }
    if model.starts_with("GV") && !model.starts_with("GV6") && model != "GV350M" {
        analog(r, "adc2_v", "fuel2", c.next());
    }
    if matches!(model, "GV200" | "GV310LAU" | "GV350CEU") {
        analog(r, "adc3_v", "fuel3", c.next());
    } else if (model.starts_with("GV3") && model.ends_with("CEU")) || model.starts_with("GV600M") {
        c.skip(1); // reserved
    }
    if gl5 {
        battery_level(r, c.next());
        c.skip(1); // mode selection
        let motion = c.next();
        if !motion.is_empty() {
            r.flag("motion", fields::int(motion).unwrap_or(0) > 0);
        }
    } else if model == "GV200" {
        r.int(
            "input",
            fields::hex(c.next()).and_then(|v| i64::try_from(v).ok()),
        );
        r.int(
            "output",
            fields::hex(c.next()).and_then(|v| i64::try_from(v).ok()),
        );
        c.skip(1); // UART device type
    } else if model == "GL320M" {
        battery_level(r, c.next());
        if mask & 0x80 != 0 {
            r.int("external_battery_pct", fields::int(c.next()));
        }
    } else {
        battery_level(r, c.next());
        if let Some(s) = fields::hex(c.next()) {
            status_bits(r, s);
        }
        c.skip(1); // reserved / UART device type
    }
    if mask & 1 != 0 && model != "GV350M" {
        r.int(
            "fuel_level",
            fields::hex(c.next()).and_then(|v| i64::try_from(v).ok()),
        );
    }
    if mask & (1 << 29) != 0 {
        c.skip(2); // reserved
        let data_mask = fields::hex(c.next()).unwrap_or(0);
        if data_mask & 1 != 0 {
            r.int(
                "fuel_level",
                fields::hex(c.next()).and_then(|v| i64::try_from(v).ok()),
            );
        }
        if data_mask & 2 != 0 {
            c.skip(1); // fuel height
        }
    }
    if mask & 2 != 0 {
        // 1-wire devices: id, type, raw value (int16 × 0.0625 °C).
        let n = fields::int(c.next()).unwrap_or(0).clamp(0, 4);
        const TEMPS: [&str; 4] = ["temp1_c", "temp2_c", "temp3_c", "temp4_c"];
        for key in TEMPS.iter().take(usize::try_from(n).unwrap_or(0)) {
            c.skip(2);
            let raw = c.next();
            if let Some(v) = fields::hex(raw).filter(|_| raw.len() == 4) {
                let signed = i16::from_be_bytes(u16::try_from(v).unwrap_or(0).to_be_bytes());
                r.float(key, Some(f64::from(signed) * 0.0625));
            }
        }
    }
    if mask & 4 != 0 {
        return records; // CAN data inside ERI: not decoded
    }
    if (mask & 0x18 != 0 || (mask & 1 != 0 && model == "GV350M")) && c.before_tail() {
        let n = fields::int(c.next()).unwrap_or(0).clamp(0, 8);
        for _ in 0..n {
            c.skip(1); // type
            if model == "GV350M" {
                c.skip(1); // UART id
                if mask & 1 != 0 {
                    r.int(
                        "fuel_level",
                        fields::hex(c.next()).and_then(|v| i64::try_from(v).ok()),
                    );
                }
            }
            if mask & 8 != 0 {
                r.float("fuel_level", fields::float(c.next()));
            }
            if mask & 0x10 != 0 {
                c.skip(1); // volume
            }
            if mask & 0x400 != 0 {
                c.skip(1); // fuel temperature
            }
        }
    }
    records
}

/// `GTIGN`/`GTIGF`/`GTVGN`/`GTVGF`: ignition on/off with its duration.
pub(super) fn ign(f: Fields<'_>, start: usize, model: &str, on: bool) -> Vec<Record> {
    let mut c = Cursor::new(f, start);
    c.skip(1); // device name
    if model == "CV200" {
        c.skip(2); // reserved, report type
    }
    c.skip(1); // duration of ignition on/off
    let mut r = Record::default();
    location::read(&mut c, &mut r, model, After::Model);
    r.flag("ignition", on);
    r.int("hours_s", fields::hours(c.next()));
    r.float("odometer_m", fields::float(c.next()).map(|km| km * 1000.0));
    vec![r]
}

/// `GTDAT`: transparent data from the serial port, then a GNSS block.
pub(super) fn dat(f: Fields<'_>, start: usize, model: &str) -> Vec<Record> {
    let mut c = Cursor::new(f, start);
    c.skip(4); // device name, report type, reserved, reserved
    let mut r = Record::default();
    r.text("data", c.next());
    location::read(&mut c, &mut r, model, After::Model);
    vec![r]
}

/// `GTINF`: device information (state, ICCID, signal, power, battery).
pub(super) fn inf(f: Fields<'_>, start: usize, model: &str) -> Vec<Record> {
    let mut c = Cursor::new(f, start);
    let mut r = Record::default();
    c.skip(1); // device name
    if let Some(state) = fields::hex(c.next()) {
        let (ignition, motion) = match state {
            0x16 | 0x1A | 0x12 => (Some(false), Some(true)),
            0x11 => (Some(false), Some(false)),
            0x21 => (Some(true), Some(false)),
            0x22 => (Some(true), Some(true)),
            0x41 => (None, Some(false)),
            0x42 => (None, Some(true)),
            _ => (None, None),
        };
        if let Some(v) = ignition {
            r.flag("ignition", v);
        }
        if let Some(v) = motion {
            r.flag("motion", v);
        }
    }
    r.text("iccid", c.next());
    r.int("rssi", fields::int(c.next()));
    c.skip(2); // signal quality, external power supply flag
    if c.peek(1).len() >= 12 {
        c.skip(1); // BLE sensor MAC
        r.int("device_temp_c", fields::int(c.next()));
        r.int("humidity_pct", fields::int(c.next()));
    }
    let v = c.next();
    if v.contains('.') {
        r.float("odometer_m", fields::float(v).map(|km| km * 1000.0));
    } else {
        r.float("power_v", fields::int(v).map(|mv| mv as f64 / 1000.0));
    }
    if model != "GV500VC" {
        if model == "GV350M" || model == "GV310LAU" {
            c.skip(1); // expand mask / network type
        } else {
            r.float(
                "power2_v",
                fields::int(c.next()).map(|mv| mv as f64 / 1000.0),
            );
        }
    }
    r.float("battery_v", fields::float(c.next()));
    if fields::int(c.next()) == Some(1) {
        r.flag("charging", true);
    }
    if model == "GV310LAU" {
        c.skip(5); // LED, power saving, antenna, last fix time, pin mask
        r.float("adc1_v", fields::int(c.next()).map(|v| v as f64));
        r.float("adc2_v", fields::int(c.next()).map(|v| v as f64));
        r.float("adc3_v", fields::int(c.next()).map(|v| v as f64));
    }
    vec![r]
}

/// `GTCAN`: the CAN report, fields present per the CAN report mask and its
/// expansion mask (decoded up to the axle weights); the GNSS block if any.
pub(super) fn can(f: Fields<'_>, start: usize, model: &str) -> Vec<Record> {
    let mut c = Cursor::new(f, start);
    let mut r = Record::default();
    c.skip(3); // device name, report type, CAN bus state
    let mask = fields::hex(c.next()).unwrap_or(0);
    let bit = |n: u32| mask & (1u64 << n) != 0;
    if let Some(v) = can_field(&mut c, mask, 0) {
        r.text("vin", v);
    }
    if let Some(v) = can_field(&mut c, mask, 1) {
        r.flag("ignition", fields::int(v).unwrap_or(0) > 0);
    }
    if let Some(v) = can_field(&mut c, mask, 2) {
        if let Some(hm) = v.strip_prefix('H') {
            r.int(
                "obd_odometer_m",
                fields::int(hm).and_then(|v| v.checked_mul(100)),
            );
        }
    }
    if let Some(v) = can_field(&mut c, mask, 3) {
        if !v.starts_with('K') {
            r.float(
                "fuel_used_l",
                fields::float(v.strip_prefix('L').unwrap_or(v)),
            );
        }
    }
    if let Some(v) = can_field(&mut c, mask, 5) {
        r.int("rpm", fields::int(v));
    }
    if let Some(v) = can_field(&mut c, mask, 4) {
        r.int("obd_speed_kmh", fields::int(v));
    }
    if let Some(v) = can_field(&mut c, mask, 6) {
        r.int("coolant_temp_c", fields::int(v));
    }
    if let Some(v) = can_field(&mut c, mask, 7) {
        if let Some(l) = v.strip_prefix("L/H") {
            r.float("fuel_consumption_lph", fields::float(l));
        }
    }
    if let Some(v) = can_field(&mut c, mask, 8) {
        r.float("fuel_level", fields::float(v.get(1..).unwrap_or("")));
    }
    if let Some(v) = can_field(&mut c, mask, 9) {
        r.int("range_m", fields::int(v).and_then(|v| v.checked_mul(100)));
    }
    if let Some(v) = can_field(&mut c, mask, 10) {
        r.int("throttle_pct", fields::int(v));
    }
    if let Some(v) = can_field(&mut c, mask, 11) {
        r.float("hours_s", fields::float(v).map(|h| h * 3600.0));
    }
    for n in 12..=21 {
        let _ = can_field(&mut c, mask, n); // driving/idle times, idle fuel, axle weight, tachograph, indicators, lights, doors, overspeeds
    }
    if model == "GV350M" {
        for n in 22..=24 {
            let _ = can_field(&mut c, mask, n);
        }
    } else if models::is_gv35x_ceu(model) {
        for n in 23..=27 {
            let _ = can_field(&mut c, mask, n);
        }
    }
    let ext = if bit(29) {
        fields::hex(c.next()).unwrap_or(0)
    } else {
        0
    };
    if ext & 1 != 0 {
        let v = c.next();
        let v = v
            .strip_prefix('L')
            .or_else(|| v.strip_prefix('P'))
            .unwrap_or(v);
        r.float("adblue_level_pct", fields::float(v));
    }
    // The GNSS block (fix flag instead of accuracy) follows far behind
    // more masks; find it by its shape.
    if let Some(&j) = location::anchors(&f, c.i).first() {
        if let Some(block) = j.checked_sub(4) {
            let mut b = Cursor::new(f, block);
            location::read(&mut b, &mut r, model, After::Single);
        }
    }
    vec![r]
}

/// The CAN field for mask bit `n`: consumed when the bit is set, `None` when empty.
fn can_field<'a>(c: &mut Cursor<'a>, mask: u64, n: u32) -> Option<&'a str> {
    if mask & (1u64 << n) != 0 {
        Some(c.next()).filter(|v| !v.is_empty())
    } else {
        None
    }
}

/// `GTBAA` / `GTBID`: a BLE accessory alarm or id report; `optionals` are
/// the append-mask bits that may carry a value, in order.
pub(super) fn accessory(
    f: Fields<'_>,
    start: usize,
    skip: usize,
    optionals: &[u32],
) -> Vec<Record> {
    let mut c = Cursor::new(f, start);
    c.skip(skip);
    let mask = fields::hex(c.next()).unwrap_or(0);
    let mut r = Record::default();
    for &b in optionals {
        if mask & (1u64 << b) == 0 {
            continue;
        }
        let v = c.next();
        match b {
            0 => r.text("accessory_name", v),
            1 => r.text("accessory_mac", v),
            2 => r.int("accessory_status", fields::int(v)),
            3 => r.float("accessory_v", fields::int(v).map(|mv| mv as f64 / 1000.0)),
            4 => r.int("accessory_temp_c", fields::int(v)),
            5 => r.int("accessory_humidity_pct", fields::int(v)),
            _ => {}
        }
    }
    located(f, c.i, &mut r);
    vec![r]
}

/// Fills the first GNSS block at or after `from` into `r`.
pub(super) fn located(f: Fields<'_>, from: usize, r: &mut Record) -> usize {
    if let Some(&j) = location::anchors(&f, from).first() {
        if let Some(block) = j.checked_sub(4) {
            let mut b = Cursor::new(f, block);
            location::read(&mut b, r, "", After::Single);
            return b.i;
        }
    }
    from
}

/// `GTDTT`: transparent data as hex; an `EcuTrack` `COMB` line carries the fuel level.
pub(super) fn dtt(f: Fields<'_>, start: usize) -> Vec<Record> {
    let mut r = Record::default();
    let data = f.get(start.saturating_add(5));
    let text = hex::decode(data).ok().map(|b| {
        b.iter()
            .map(|&c| if c.is_ascii() { char::from(c) } else { '?' })
            .collect::<String>()
    });
    if let Some(text) = text {
        if text.contains("COMB") {
            r.float("fuel_level", text.split(',').nth(2).and_then(fields::float));
        } else {
            r.text("result", &text);
        }
    }
    vec![r]
}

/// `GTDAR`: driver-assistance warning (1 = fatigue, with a degree).
pub(super) fn dar(f: Fields<'_>, start: usize) -> Vec<Record> {
    let mut r = Record::default();
    let warning = fields::int(f.get(start.saturating_add(1)));
    if warning == Some(1) {
        r.set("alarm", AttrValue::Text("fatigueDriving".into()));
        r.int(
            "fatigue_degree",
            fields::int(f.get(start.saturating_add(2))),
        );
    } else {
        r.int("warning_type", warning);
    }
    located(f, start, &mut r);
    vec![r]
}

/// `GTLBS`: cell towers only, with the battery level.
pub(super) fn lbs(f: Fields<'_>, start: usize) -> Vec<Record> {
    let mut r = Record::default();
    battery_level(&mut r, f.get(start.saturating_add(3)));
    vec![r]
}

/// `GTVER`: device type and firmware/hardware versions.
pub(super) fn ver(f: Fields<'_>, start: usize) -> Vec<Record> {
    let mut r = Record::default();
    r.text("device_type", f.get(start.saturating_add(1)));
    r.int(
        "version_fw",
        fields::hex(f.get(start.saturating_add(2))).and_then(|v| i64::try_from(v).ok()),
    );
    r.int(
        "version_hw",
        fields::hex(f.get(start.saturating_add(3))).and_then(|v| i64::try_from(v).ok()),
    );
    vec![r]
}

/// Every other report type: the first GNSS block found by its shape, the
/// serving cell, the battery level before the send time, and what the
/// report type itself means (alarms, inputs, motion).
pub(super) fn basic(f: Fields<'_>, start: usize, model: &str, ty: &str) -> Vec<Record> {
    let mut r = Record::default();
    let report_type = f.get(start.saturating_add(2));
    if fields::is_hex(report_type, 1..=2) {
        let rt = fields::hex(report_type).unwrap_or(0);
        match ty {
            "STR" | "CTN" if model == "GL500" || model == "GL530" => {
                battery_level(&mut r, f.get(start.saturating_add(5)));
            }
            "NMR" => r.flag("motion", rt == 1),
            "DIS" => {
                const INPUTS: [&str; 5] = ["in0", "in1", "in2", "in3", "in4"];
                if let Some(k) = INPUTS.get(usize::try_from(rt / 0x10).unwrap_or(usize::MAX)) {
                    r.flag(k, rt % 0x10 == 1);
                }
            }
            "IGL" => r.flag("ignition", rt % 0x10 == 1),
            "HBM" => match rt % 0x10 {
                0 | 3 => r.set("alarm", AttrValue::Text("hardBraking".into())),
                1 | 4 => r.set("alarm", AttrValue::Text("hardAcceleration".into())),
                2 => r.set("alarm", AttrValue::Text("hardCornering".into())),
                _ => {}
            },
            _ => {}
        }
    }
    let end = located(f, start, &mut r);
    if r.fix.is_none() {
        // Cell only: mcc, mnc (4 digits), lac, cid (hex).
        let mut i = start;
        while i.saturating_add(3) < f.len() {
            let (a, b, l, ci) = (
                f.get(i),
                f.get(i.saturating_add(1)),
                f.get(i.saturating_add(2)),
                f.get(i.saturating_add(3)),
            );
            if fields::is_digits(a, 4)
                && fields::is_digits(b, 4)
                && fields::is_hex(l, 4..=4)
                && fields::is_hex(ci, 4..=8)
            {
                location::cell(&mut r, a, b, l, ci);
                break;
            }
            i = i.saturating_add(1);
        }
    }
    let _ = end;
    if r.fix.is_some() && fields::time(f.back(2)).is_some() && !r.has("battery_level_pct") {
        battery_level(&mut r, f.back(3));
    }
    let alarm = match ty {
        "SOS" => Some("sos"),
        "SPD" => Some("overspeed"),
        "TOW" => Some("tow"),
        "IDL" => Some("idle"),
        "PNA" => Some("powerOn"),
        "PFA" => Some("powerOff"),
        "EPN" | "MPN" => Some("powerRestored"),
        "EPF" | "MPF" => Some("powerCut"),
        "BPL" => Some("lowBattery"),
        "STT" => Some("movement"),
        "SWG" => Some("geofence"),
        "TMP" | "TEM" => Some("temperature"),
        "JDR" | "JDS" => Some("jamming"),
        _ => None,
    };
    if let Some(a) = alarm {
        r.set("alarm", AttrValue::Text(a.into()));
    }
    match ty {
        "LSW" | "TSW" => {
            let key = if ty == "LSW" { "in1" } else { "in2" };
            r.flag(key, f.get(start.saturating_add(2)) == "1");
        }
        "IDA" => r.text("driver_unique_id", f.get(start.saturating_add(2))),
        "WIF" => battery_level(&mut r, f.back(3)),
        _ => {}
    }
    vec![r]
}
