//! Battery management system reports of electric vehicles, after the header:
//!
//! ```text
//! BS50  hex: header(3) count(1) 24 × cell mV (u16 LE) charge-state(1) current 0.1 A (u16 LE)
//!       battery 0.01 V (u16 LE) level %(1) overheat(1) charge-prot(1) discharge-prot(1)
//!       drop(1) balanced(1) cycles (u16 LE) fault(1) reserved(6) temp-count(1)
//!       power-temp(1) equilibrium-temp(1) 7 × temp(1) [capacity 0.01 Ah (u16 LE) discharge (u32 LE)]
//!       temperatures are °C + 40
//! BS51  key:hex pairs, comma-separated: 90 voltages/current/SOC, 91 cell extremes, 92 temp extremes
//! ```

use std::borrow::Cow;

use super::fields::malformed;
use super::header::Header;
use super::reports::without_fix;
use super::Ctx;
use crate::model::{AttrKey, AttrValue, Attributes};
use crate::protocol::{Decoded, Rejected};

/// Cells a BS50 report has room for.
const CELLS: usize = 24;
/// Temperatures a BS50 report has room for.
const TEMPS: usize = 7;

struct Reader<'a>(&'a [u8], usize);

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let v = *self.0.get(self.1)?;
        self.1 = self.1.checked_add(1)?;
        Some(v)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }
}

fn named(name: String) -> AttrKey {
    AttrKey::Named(Cow::Owned(name))
}

fn float(attrs: &mut Attributes, name: &'static str, v: f64) {
    attrs.push(AttrKey::named(name), AttrValue::Float(v));
}

fn temp(raw: u8) -> AttrValue {
    AttrValue::Int(i64::from(raw).saturating_sub(40))
}

pub(super) fn decode(h: &Header, c: &Ctx) -> Result<Decoded, Rejected> {
    let mut attrs = Attributes::new();
    if h.command == "BS50" {
        let bytes = hex::decode(h.rest.trim()).map_err(|_| malformed("BS50 hex", 0))?;
        bs50(&bytes, &mut attrs).ok_or(malformed("BS50 report (too short)", 0))?;
    } else {
        for pair in h.rest.split(',') {
            let (key, value) = pair.split_once(':').ok_or(malformed("BS51 key:value", 0))?;
            let key = u8::from_str_radix(key, 16).map_err(|_| malformed("BS51 key", 0))?;
            let bytes = hex::decode(value).map_err(|_| malformed("BS51 hex", 0))?;
            bs51(key, &bytes, &mut attrs).ok_or(malformed("BS51 value (too short)", 0))?;
        }
    }
    Ok(without_fix(h, c, c.received, attrs))
}

fn bs50(b: &[u8], attrs: &mut Attributes) -> Option<()> {
    let mut r = Reader(b, 3);
    let count = usize::from(r.u8()?);
    for i in 1..=CELLS {
        let mv = r.u16()?;
        if i <= count {
            attrs.push(
                named(format!("battery{i}_v")),
                AttrValue::Float(f64::from(mv) * 0.001),
            );
        }
    }
    attrs.push(AttrKey::named("charging"), AttrValue::Bool(r.u8()? == 0));
    float(attrs, "current_a", f64::from(r.u16()?) * 0.1);
    float(attrs, "battery_v", f64::from(r.u16()?) * 0.01);
    attrs.push(
        AttrKey::named("battery_level_pct"),
        AttrValue::Int(i64::from(r.u8()?)),
    );
    for name in [
        "battery_overheat",
        "charge_protection",
        "discharge_protection",
    ] {
        attrs.push(AttrKey::named(name), AttrValue::Bool(r.u8()? > 0));
    }
    let (_drop, _balanced) = (r.u8()?, r.u8()?);
    attrs.push(
        AttrKey::named("cycles"),
        AttrValue::Int(i64::from(r.u16()?)),
    );
    attrs.push(
        AttrKey::named("fault_alarm"),
        AttrValue::Int(i64::from(r.u8()?)),
    );
    for _ in 0..6 {
        r.u8()?;
    }
    let temps = usize::from(r.u8()?);
    attrs.push(AttrKey::named("power_temp_c"), temp(r.u8()?));
    attrs.push(AttrKey::named("equilibrium_temp_c"), temp(r.u8()?));
    for i in 1..=TEMPS {
        let t = r.u8()?;
        if i <= temps {
            attrs.push(named(format!("battery_temp{i}_c")), temp(t));
        }
    }
    if let Some(cap) = r.u16() {
        float(attrs, "calibration_capacity_ah", f64::from(cap) * 0.01);
    }
    if let Some(d) = r.u32() {
        attrs.push(
            AttrKey::named("discharge_capacity"),
            AttrValue::Int(i64::from(d)),
        );
    }
    Some(())
}

fn bs51(key: u8, b: &[u8], attrs: &mut Attributes) -> Option<()> {
    let mut r = Reader(b, 0);
    match key {
        0x90 => {
            float(attrs, "cumulative_voltage_v", f64::from(r.u16()?) * 0.1);
            float(attrs, "gather_voltage_v", f64::from(r.u16()?) * 0.1);
            float(attrs, "current_a", (f64::from(r.u16()?) - 30_000.0) * 0.1);
            float(attrs, "soc_pct", f64::from(r.u16()?) * 0.1);
        }
        0x91 => {
            float(attrs, "max_cell_voltage_v", f64::from(r.u16()?) * 0.001);
            attrs.push(
                AttrKey::named("max_cell_voltage_count"),
                AttrValue::Int(i64::from(r.u8()?)),
            );
            float(attrs, "min_cell_voltage_v", f64::from(r.u16()?) * 0.001);
            attrs.push(
                AttrKey::named("min_cell_voltage_count"),
                AttrValue::Int(i64::from(r.u8()?)),
            );
        }
        0x92 => {
            attrs.push(AttrKey::named("max_temp_c"), temp(r.u8()?));
            attrs.push(
                AttrKey::named("max_temp_count"),
                AttrValue::Int(i64::from(r.u8()?)),
            );
            attrs.push(AttrKey::named("min_temp_c"), temp(r.u8()?));
            attrs.push(
                AttrKey::named("min_temp_count"),
                AttrValue::Int(i64::from(r.u8()?)),
            );
        }
        _ => {} // other groups: not decoded (see protocols/tk103.md)
    }
    Some(())
}
