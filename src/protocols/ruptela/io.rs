//! IO elements → attributes. Every element is stored raw as `io<N>`
//! (unsigned, 8-byte values keep their bit pattern as `i64`), like
//! Teltonika; the named twin of a well-known id is derived on read by
//! [`namer`]. The table follows Ruptela's IO list as Traccar reads it (see
//! `protocols/ruptela.md`). Signed readings use the smallest of 1/2/4/8
//! bytes that holds the raw value as their width.

use crate::model::AttrValue;

/// The named twin of `io<id>`.
pub(super) fn namer(id: u32, value: &AttrValue) -> Option<(&'static str, AttrValue)> {
    let AttrValue::Int(raw) = value else {
        return None;
    };
    let raw = *raw as u64;
    let f = raw as f64;
    let flag = raw > 0;
    Some(match id {
        2 => ("din1", AttrValue::Int(raw as i64)),
        3 => ("din2", AttrValue::Int(raw as i64)),
        4 => ("din3", AttrValue::Int(raw as i64)),
        5 => ("din4", AttrValue::Int(raw as i64)),
        13 | 173 => ("motion", AttrValue::Bool(flag)),
        20 => ("adc3_mv", AttrValue::Int(raw as i64)),
        21 => ("adc4_mv", AttrValue::Int(raw as i64)),
        22 => ("adc1_mv", AttrValue::Int(raw as i64)),
        23 => ("adc2_mv", AttrValue::Int(raw as i64)),
        29 => ("power_v", AttrValue::Float(f * 0.001)),
        30 => ("battery_v", AttrValue::Float(f * 0.001)),
        32 => ("device_temp_c", AttrValue::Int(signed(raw))),
        39 => ("engine_load_pct", AttrValue::Int(raw as i64)),
        65 => ("odometer_m", AttrValue::Int(raw as i64)),
        74 => ("temp3_c", AttrValue::Float(signed(raw) as f64 * 0.1)),
        78 => ("temp0_c", AttrValue::Float(signed(raw) as f64 * 0.1)),
        79 => ("temp1_c", AttrValue::Float(signed(raw) as f64 * 0.1)),
        80 => ("temp2_c", AttrValue::Float(signed(raw) as f64 * 0.1)),
        88 if flag => ("alarm", AttrValue::Text("jamming".into())),
        94 => ("rpm", AttrValue::Float(f * 0.25)),
        95 => ("obd_speed_kmh", AttrValue::Int(raw as i64)),
        98 => ("fuel_level_pct", AttrValue::Float(f * 100.0 / 255.0)),
        100 => ("fuel_consumption_l_h", AttrValue::Float(f / 20.0)),
        134 if flag => ("alarm", AttrValue::Text("hardBraking".into())),
        136 if flag => ("alarm", AttrValue::Text("hardAcceleration".into())),
        150 => ("gsm_operator", AttrValue::Int(raw as i64)),
        163 => ("odometer_m", AttrValue::Int((raw as i64).saturating_mul(5))),
        164 => (
            "trip_odometer_m",
            AttrValue::Int((raw as i64).saturating_mul(5)),
        ),
        165 => ("obd_speed_kmh", AttrValue::Float(f / 256.0)),
        166 | 197 => ("rpm", AttrValue::Float(f * 0.125)),
        170 => ("charging", AttrValue::Bool(flag)),
        205 => ("fuel_level_pct", AttrValue::Int(raw as i64)),
        207 => ("fuel_level_pct", AttrValue::Float(f * 0.4)),
        208 => ("fuel_used_l", AttrValue::Float(f * 0.5)),
        251 | 409 => ("ignition", AttrValue::Bool(flag)),
        410 if flag => ("alarm", AttrValue::Text("tow".into())),
        411 if flag => ("alarm", AttrValue::Text("accident".into())),
        415 if raw == 0 => ("alarm", AttrValue::Text("gpsAntennaCut".into())),
        645 => (
            "obd_odometer_m",
            AttrValue::Int((raw as i64).saturating_mul(1000)),
        ),
        758 if raw == 1 => ("alarm", AttrValue::Text("tampering".into())),
        _ => return None,
    })
}

/// `raw` read as a two's-complement number of the smallest width that holds it.
fn signed(raw: u64) -> i64 {
    match raw {
        0..=0xff => i64::from(raw as u8 as i8),
        0x100..=0xffff => i64::from(raw as u16 as i16),
        0x1_0000..=0xffff_ffff => i64::from(raw as u32 as i32),
        _ => raw as i64,
    }
}
