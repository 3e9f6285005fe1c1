//! Every message type after login: which fields each carries, in the order
//! Traccar (the reference decoder for this family) tries them, and which
//! ones are acknowledged. Byte layouts are in `protocols/gt06.md`.

use bytes::Bytes;

use super::fields::{self, Ctx, GpsLayout, Variant};
use super::packet::Packet;
use super::reader::Reader;
use super::record::Record;
use super::reply;
use super::text;
use crate::protocol::{DecodeError, MessageKind};

type R<T> = Result<T, DecodeError>;

/// Protocol numbers (Concox/Jimi names where known).
pub(super) mod p {
    pub const LOGIN: u8 = 0x01;
    pub const GPS: u8 = 0x10;
    pub const GPS_LBS_6: u8 = 0x11;
    pub const GPS_LBS_1: u8 = 0x12;
    pub const STATUS: u8 = 0x13;
    pub const STRING: u8 = 0x15;
    pub const GPS_LBS_STATUS_1: u8 = 0x16;
    pub const WIFI: u8 = 0x17;
    pub const LBS_EXTEND: u8 = 0x18;
    pub const LBS_STATUS: u8 = 0x19;
    pub const GPS_PHONE: u8 = 0x1a;
    pub const GPS_LBS_EXTEND: u8 = 0x1e;
    pub const STRING_INFO: u8 = 0x21;
    pub const GPS_LBS_2: u8 = 0x22;
    pub const HEARTBEAT: u8 = 0x23;
    pub const LBS_MULTIPLE_3: u8 = 0x24;
    pub const GPS_LBS_DRIVER: u8 = 0x25;
    pub const GPS_LBS_STATUS_2: u8 = 0x26;
    pub const GPS_LBS_STATUS_3: u8 = 0x27;
    pub const LBS_MULTIPLE_1: u8 = 0x28;
    pub const ADDRESS_REQUEST: u8 = 0x2a;
    pub const LBS_WIFI: u8 = 0x2c;
    pub const GPS_LBS_4: u8 = 0x2d;
    pub const LBS_MULTIPLE_2: u8 = 0x2e;
    pub const GPS_LBS_5: u8 = 0x31;
    pub const GPS_LBS_STATUS_4: u8 = 0x32;
    pub const WIFI_5: u8 = 0x33;
    pub const X1_GPS: u8 = 0x34;
    pub const X1_PHOTO_INFO: u8 = 0x35;
    pub const STATUS_2: u8 = 0x36;
    pub const GPS_LBS_3: u8 = 0x37;
    pub const GPS_LBS_8: u8 = 0x38;
    pub const ALARM_MODULE: u8 = 0x39;
    pub const MULTIMEDIA: u8 = 0x41;
    pub const IBUTTON: u8 = 0x61;
    pub const WIFI_2: u8 = 0x69;
    pub const GPS_MODULAR: u8 = 0x70;
    pub const COMMAND_0: u8 = 0x80;
    pub const COMMAND_1: u8 = 0x81;
    pub const COMMAND_2: u8 = 0x82;
    pub const TIME_REQUEST: u8 = 0x8a;
    pub const OBD: u8 = 0x8c;
    pub const INFO: u8 = 0x94;
    pub const ALARM: u8 = 0x95;
    pub const ADDRESS_RESPONSE: u8 = 0x97;
    pub const SERIAL: u8 = 0x9b;
    pub const GPS_LBS_7: u8 = 0xa0;
    pub const LBS_2: u8 = 0xa1;
    pub const WIFI_3: u8 = 0xa2;
    pub const GPS_LBS_STATUS_5: u8 = 0xa2;
    pub const FENCE_SINGLE: u8 = 0xa3;
    pub const FENCE_MULTI: u8 = 0xa4;
    pub const LBS_ALARM: u8 = 0xa5;
    pub const LBS_ADDRESS: u8 = 0xa7;
    pub const WIFI_ALARM: u8 = 0xa9;
    pub const BLUETOOTH_CLOCK: u8 = 0xb2;
    pub const DEVICE_STATUS: u8 = 0xf1;
    pub const PERIPHERAL: u8 = 0xf2;
    pub const WIFI_4: u8 = 0xf3;
}
use p::*;

/// What one message meant.
#[derive(Debug)]
pub(super) struct Message {
    pub kind: MessageKind,
    pub record: Option<Record>,
    pub reply: Option<Bytes>,
}

impl Message {
    fn data(record: Record, reply: Option<Bytes>) -> Self {
        Self {
            kind: MessageKind::Data,
            record: Some(record),
            reply,
        }
    }
    fn other(reply: Option<Bytes>) -> Self {
        Self {
            kind: MessageKind::Other,
            record: None,
            reply,
        }
    }
}

fn has_gps(t: u8, v: Variant) -> bool {
    matches!(
        t,
        GPS | GPS_LBS_1
            | GPS_LBS_2
            | GPS_LBS_DRIVER
            | GPS_LBS_3
            | GPS_LBS_4
            | GPS_LBS_5
            | GPS_LBS_6
            | GPS_LBS_STATUS_1
            | GPS_LBS_STATUS_2
            | GPS_LBS_STATUS_3
            | GPS_LBS_STATUS_4
            | GPS_LBS_STATUS_5
            | GPS_PHONE
            | GPS_LBS_EXTEND
            | GPS_LBS_7
            | WIFI
            | FENCE_MULTI
            | ALARM_MODULE
    ) || (t == FENCE_SINGLE && v != Variant::Seeworld)
}

fn has_lbs(t: u8, v: Variant) -> bool {
    matches!(
        t,
        LBS_STATUS
            | GPS_LBS_1
            | GPS_LBS_2
            | GPS_LBS_DRIVER
            | GPS_LBS_3
            | GPS_LBS_4
            | GPS_LBS_5
            | GPS_LBS_6
            | GPS_LBS_STATUS_1
            | GPS_LBS_STATUS_2
            | GPS_LBS_STATUS_3
            | GPS_LBS_STATUS_4
            | GPS_LBS_STATUS_5
            | GPS_LBS_7
            | WIFI
            | FENCE_MULTI
            | ALARM_MODULE
            | LBS_ALARM
            | LBS_ADDRESS
    ) || (t == FENCE_SINGLE && v != Variant::Seeworld)
}

fn has_status(t: u8, ctx: &Ctx) -> bool {
    matches!(
        t,
        STATUS
            | STATUS_2
            | LBS_STATUS
            | GPS_LBS_STATUS_1
            | GPS_LBS_STATUS_2
            | GPS_LBS_STATUS_3
            | GPS_LBS_STATUS_4
            | GPS_LBS_STATUS_5
            | FENCE_MULTI
            | ALARM_MODULE
            | LBS_ALARM
    ) || (matches!(t, GPS_LBS_2 | GPS_LBS_DRIVER) && ctx.model.nt)
        || (t == FENCE_SINGLE && ctx.variant == Variant::Seeworld)
}

/// Decodes a logged-in device's message.
pub(super) fn decode(pk: &Packet<'_>, ctx: &Ctx) -> R<Message> {
    let t = pk.protocol;
    let ext = pk.extended;
    let v = ctx.variant;
    let ack = || Some(reply::ack(ext, t, pk.serial));
    let mut r = Reader::new(pk.content, pk.content_offset);
    let mut rec = Record::default();

    match t {
        HEARTBEAT => {
            let status = r.u8("status")?;
            rec.flag("armed", status & 0x01 != 0);
            rec.flag("ignition", status & 0x02 != 0);
            rec.flag("charging", status & 0x04 != 0);
            if r.remaining() >= 2 {
                rec.float("battery_v", f64::from(r.u16("battery")?) * 0.01);
            }
            if r.remaining() >= 1 {
                rec.int("rssi", r.u8("rssi")?);
            }
            return Ok(Message {
                kind: MessageKind::Keepalive,
                record: Some(rec),
                reply: ack(),
            });
        }
        ADDRESS_REQUEST => {
            // "No address": the device shows nothing rather than waiting.
            let text = b"NA&&NA&&0##";
            let mut content = vec![u8::try_from(text.len()).unwrap_or(0), 0, 0, 0, 0];
            content.extend_from_slice(text);
            return Ok(Message::other(Some(reply::with_content(
                true,
                ADDRESS_RESPONSE,
                &content,
                0,
            ))));
        }
        TIME_REQUEST => {
            use chrono::{Datelike, Timelike};
            let now = ctx.received;
            let b = |x: u32| u8::try_from(x).unwrap_or(0);
            let content = [
                b(u32::try_from(now.year().saturating_sub(2000)).unwrap_or(0)),
                b(now.month()),
                b(now.day()),
                b(now.hour()),
                b(now.minute()),
                b(now.second()),
            ];
            return Ok(Message::other(Some(reply::with_content(
                false,
                TIME_REQUEST,
                &content,
                0,
            ))));
        }
        X1_GPS if v != Variant::Sl4x && !ext => {
            r.u32("data and alarm")?;
            fields::gps(&mut rec, &mut r, ctx.tz, GpsLayout::STANDARD)?;
            r.u16("terminal info")?;
            rec.int("odometer_m", r.u32("odometer")?);
            let mcc = r.u16("MCC")?;
            let mnc = r.u8("MNC")?;
            let lac = r.u16("LAC")?;
            let cid = r.u32("cell id")?;
            rec.cell(super::record::Cell {
                mcc,
                mnc: mnc.into(),
                lac: lac.into(),
                cid: cid.into(),
                rssi: None,
            });
            let driver = r.u32("driver id")?;
            if driver > 0 {
                rec.text("driver_unique_id", driver.to_string());
            }
            rec.float("battery_v", f64::from(r.u16("battery")?) * 0.01);
            rec.float("power_v", f64::from(r.u16("power")?) * 0.01);
            let port_info = r.u32("port info")?;
            rec.int("input", r.u8("input")?);
            rec.int("output", r.u8("output")?);
            let adcs = (port_info >> 20) & 0x0f;
            for i in 1..=adcs {
                let value = f64::from(r.u16("ADC")?) * 0.01;
                match i {
                    1 => rec.float("adc1_v", value),
                    2 => rec.float("adc2_v", value),
                    3 => rec.float("adc3_v", value),
                    _ => rec.float("adc4_v", value),
                }
            }
            return Ok(Message::data(rec, None));
        }
        X1_PHOTO_INFO if !ext => {
            // Photo transfer is not supported: no request for the data.
            return Ok(Message::other(None));
        }
        _ => {}
    }

    if (t == WIFI && v != Variant::Rfid) || t == WIFI_2 || t == WIFI_4 {
        return wifi(pk, ctx, &mut r, rec);
    }
    if t == INFO && !ext {
        rec.float("power_v", f64::from(r.i16("power")?) * 0.01);
        return Ok(Message::data(rec, None));
    }
    if t == LBS_MULTIPLE_3 && v == Variant::Sr411Mini {
        fields::gps(&mut rec, &mut r, ctx.tz, GpsLayout::STANDARD)?;
        fields::lbs(&mut rec, &mut r, ctx, t, false)?;
        rec.flag("ignition", r.u8("ignition")? > 0);
        rec.float("power_v", f64::from(r.u16("power")?) * 0.01);
        rec.float("battery_v", f64::from(r.u16("battery")?) * 0.01);
        return Ok(Message::data(rec, None));
    }
    if matches!(
        t,
        LBS_MULTIPLE_1
            | LBS_MULTIPLE_2
            | LBS_MULTIPLE_3
            | LBS_EXTEND
            | LBS_WIFI
            | LBS_2
            | WIFI_ALARM
    ) || (t == X1_GPS && v == Variant::Sl4x)
        || (t == WIFI_3 && v != Variant::Lw4g)
        || (t == WIFI_5 && !ext)
    {
        lbs_multiple(&mut rec, &mut r, ctx, t)?;
        return Ok(Message::data(rec, ack()));
    }
    if t == BLUETOOTH_CLOCK {
        rec.time = fields::date(&mut r, ctx.tz)?;
        rec.int("rssi", r.u8("rssi")? as i8);
        rec.text("tag_mac", fields::hex(r.bytes(6, "tag MAC")?));
        rec.text("tag_uuid", fields::hex(r.bytes(16, "tag UUID")?));
        rec.int("tag_major", r.u16("tag major")?);
        rec.int("tag_minor", r.u16("tag minor")?);
        rec.float("tag_battery_v", f64::from(r.u16("tag battery")?) * 0.01);
        rec.int("clock", (r.u8("clock")? >> 2) & 0x0f);
        return Ok(Message::data(rec, ack()));
    }
    if t == STRING && !ext {
        let len = usize::from(r.u8("command length")?);
        if len == 0 && r.remaining() > 4 {
            // Some firmwares leave the length 0 and pad the text with NULs.
            r.u32("server flag")?;
            let text = r.rest().split(|b| *b == 0).next().unwrap_or_default();
            if !text.is_empty() {
                rec.text("result", String::from_utf8_lossy(text).into_owned());
            }
        } else if len > 0 {
            r.u32("server flag")?;
            let data = r.bytes(len.saturating_sub(4), "command text")?;
            let data = String::from_utf8_lossy(data).into_owned();
            match data.strip_prefix("<ICCID:") {
                Some(rest) => rec.text("iccid", rest.chars().take(20).collect::<String>()),
                None => rec.text("result", data),
            }
        }
        return Ok(Message {
            kind: MessageKind::CommandResponse,
            record: Some(rec),
            reply: ack(),
        });
    }
    if t == STATUS && r.remaining() == 16 {
        r.u8("information content")?;
        r.u16("satellites")?;
        r.u8("alarm")?;
        r.u8("language")?;
        rec.int("battery_level_pct", r.u8("battery level")?);
        r.u8("working mode")?;
        r.u16("working voltage")?;
        r.u8("reserved")?;
        r.u16("working times")?;
        r.u16("working time")?;
        let value = r.u16("temperature")?;
        let temp = f64::from(value & 0x7fff) * 0.1;
        rec.float("temp1_c", if value & 0x8000 != 0 { temp } else { -temp });
        return Ok(keepalive(rec, ack()));
    }
    if t == FENCE_SINGLE && !ext && pk.length == 0x18 {
        // GL21L-style status with a step counter (layout inferred from a capture).
        r.skip(11, "status")?;
        rec.int("steps", r.u16("steps")?);
        return Ok(Message::data(rec, ack()));
    }
    if t == IBUTTON && !ext {
        r.skip(8, "IMEI")?;
        fields::gps(&mut rec, &mut r, ctx.tz, GpsLayout::STANDARD)?;
        fields::lbs(&mut rec, &mut r, ctx, t, false)?;
        let hi = u64::from(r.u32("driver id")?);
        let lo = u64::from(r.u16("driver id")?);
        rec.text("driver_unique_id", (hi << 16 | lo).to_string());
        return Ok(Message::data(rec, ack()));
    }
    if t == STATUS_2 && !ext && ctx.model.vl {
        vl_status(&mut rec, &mut r, ctx)?;
        return Ok(Message::data(rec, ack()));
    }
    let supported = has_gps(t, v) || has_lbs(t, v) || has_status(t, ctx);
    if supported && !(ext && matches!(t, GPS_LBS_STATUS_4 | STATUS_2)) {
        if t == LBS_STATUS && v == Variant::Space10x {
            // Multi-cell LBS list: nothing we store.
            return Ok(Message::other(ack()));
        }
        location(&mut rec, &mut r, pk, ctx)?;
        let kind = if t == STATUS {
            MessageKind::Keepalive
        } else {
            MessageKind::Data
        };
        return Ok(Message {
            kind,
            record: Some(rec),
            reply: ack(),
        });
    }
    if t == ALARM {
        alarm(&mut rec, &mut r, pk, ctx)?;
        return Ok(Message::data(rec, ack()));
    }
    if ext
        || matches!(
            t,
            STRING_INFO
                | INFO
                | GPS_MODULAR
                | SERIAL
                | OBD
                | PERIPHERAL
                | DEVICE_STATUS
                | GPS_LBS_STATUS_4
                | WIFI_5
        )
    {
        if let Some(m) = text::decode(pk, ctx, &mut r, &mut rec)? {
            return Ok(m);
        }
    }
    if t == GPS_LBS_8 {
        fields::gps(&mut rec, &mut r, ctx.tz, GpsLayout::STANDARD)?;
        r.u8("upload mode")?;
        r.u8("re-upload")?;
        fields::lbs(&mut rec, &mut r, ctx, t, false)?;
        return Ok(Message::data(rec, None));
    }
    if t == MULTIMEDIA {
        return Ok(Message::other(ack()));
    }
    // Anything else is acknowledged on 78 78 framing (the device moves on),
    // except command responses, which expect nothing.
    let reply = if !ext && !matches!(t, COMMAND_0 | COMMAND_1 | COMMAND_2) {
        ack()
    } else {
        None
    };
    let kind = if matches!(t, COMMAND_0 | COMMAND_1 | COMMAND_2) {
        MessageKind::CommandResponse
    } else {
        MessageKind::Other
    };
    Ok(Message {
        kind,
        record: None,
        reply,
    })
}

fn keepalive(rec: Record, reply: Option<Bytes>) -> Message {
    Message {
        kind: MessageKind::Keepalive,
        record: Some(rec),
        reply,
    }
}

/// Wi-Fi access point lists (no fix).
fn wifi(pk: &Packet<'_>, ctx: &Ctx, r: &mut Reader<'_>, mut rec: Record) -> R<Message> {
    let t = pk.protocol;
    let time_bytes = r.rest().get(..6).map(<[u8]>::to_vec).unwrap_or_default();
    rec.time = fields::bcd_date(r)?;
    let count = if t == WIFI_4 {
        r.u8("Wi-Fi count")?
    } else {
        u8::try_from(pk.length).unwrap_or(0)
    };
    for _ in 0..count {
        if t == WIFI_4 {
            r.skip(2, "Wi-Fi entry")?;
        }
        let mac = r.bytes(6, "Wi-Fi MAC")?;
        let mac = mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        let rssi = if t == WIFI_4 {
            None
        } else {
            Some(i64::from(r.u8("Wi-Fi RSSI")?))
        };
        rec.wifi(mac, rssi);
    }
    if t == WIFI_4 {
        return Ok(Message::data(rec, None));
    }
    let cells = r.u8("cell count")?;
    let mcc = r.u16("MCC")?;
    let mnc = r.u8("MNC")?;
    for _ in 0..cells {
        let lac = r.u16("LAC")?;
        let cid = r.u16("cell id")?;
        let rssi = r.u8("cell RSSI")?;
        rec.cell(super::record::Cell {
            mcc,
            mnc: mnc.into(),
            lac: lac.into(),
            cid: cid.into(),
            rssi: Some(rssi.into()),
        });
    }
    let _ = ctx;
    // The device expects its time stamp echoed: 78 78 00 <proto> <time> 0D 0A.
    let mut out = vec![0x78, 0x78, 0x00, t];
    out.extend_from_slice(&time_bytes);
    out.extend_from_slice(&[0x0d, 0x0a]);
    Ok(Message::data(rec, Some(Bytes::from(out))))
}

/// Lists of neighbouring cells (and Wi-Fi) with a time stamp, no fix.
fn lbs_multiple(rec: &mut Record, r: &mut Reader<'_>, ctx: &Ctx, t: u8) -> R<()> {
    let v = ctx.variant;
    rec.time = fields::date(r, ctx.tz)?;
    if matches!(v, Variant::WanwayS20 | Variant::Sl4x) {
        r.u8("timing advance")?;
    }
    let mcc = r.u16("MCC")?;
    let mnc = if mcc & 0x8000 != 0 || v == Variant::Sl4x {
        r.u16("MNC")?
    } else {
        u16::from(r.u8("MNC")?)
    };
    let cell_4g = t == WIFI_ALARM && r.u8("cell type")? > 0;
    let count = if v == Variant::WanwayS20 || t == WIFI_ALARM {
        r.u8("cell count")?
    } else if t == WIFI_5 {
        6
    } else {
        7
    };
    for _ in 0..count {
        let (lac, cid) = if t == LBS_2 || t == WIFI_3 || cell_4g {
            (
                i64::from(r.i32("LAC")?),
                i64::try_from(r.u64("cell id")?).unwrap_or(i64::MAX),
            )
        } else if t == WIFI_5 || t == X1_GPS {
            (i64::from(r.u16("LAC")?), i64::from(r.u32("cell id")?))
        } else {
            (i64::from(r.u16("LAC")?), i64::from(r.u24("cell id")?))
        };
        let rssi = i16::from(r.u8("cell RSSI")?).saturating_neg();
        if lac > 0 {
            rec.cell(super::record::Cell {
                mcc: mcc & 0x7fff,
                mnc,
                lac,
                cid,
                rssi: Some(rssi),
            });
        }
    }
    if !matches!(v, Variant::WanwayS20 | Variant::Sl4x) {
        r.u8("timing advance")?;
    }
    if !matches!(
        t,
        LBS_MULTIPLE_1 | LBS_MULTIPLE_2 | LBS_MULTIPLE_3 | LBS_2 | X1_GPS
    ) {
        let n = r.u8("Wi-Fi count")?;
        for _ in 0..n {
            let mac = r.bytes(6, "Wi-Fi MAC")?;
            let mac = mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":");
            let rssi = i64::from(r.u8("Wi-Fi RSSI")?);
            rec.wifi(mac, Some(rssi));
        }
    }
    if t == WIFI_ALARM {
        let alarm = u16::from(r.u8("alarm")?);
        let language = u16::from(r.u8("language")?);
        rec.alarm(fields::alarm((language >> 4) << 8 | alarm, &ctx.model));
    }
    Ok(())
}

/// VL103-family 0x36: GPS, LBS (u32 cell id), ignition and driver id
/// (layout inferred from captures).
fn vl_status(rec: &mut Record, r: &mut Reader<'_>, ctx: &Ctx) -> R<()> {
    fields::gps(rec, r, ctx.tz, GpsLayout::STANDARD)?;
    let mcc = r.u16("MCC")?;
    let mnc = if mcc & 0x8000 != 0 {
        r.u16("MNC")?
    } else {
        u16::from(r.u8("MNC")?)
    };
    let lac = r.u16("LAC")?;
    let cid = r.u32("cell id")?;
    rec.cell(super::record::Cell {
        mcc: mcc & 0x7fff,
        mnc,
        lac: lac.into(),
        cid: cid.into(),
        rssi: None,
    });
    rec.flag("ignition", r.u8("ignition")? > 0);
    r.u8("upload mode")?;
    if r.u8("re-upload")? > 0 {
        rec.flag("archive", true);
    }
    r.u32("reserved")?;
    r.u8("voltage level")?;
    rec.int("rssi", r.u8("rssi")?);
    rec.float("battery_v", f64::from(r.u8("battery")?) * 0.1);
    r.u16("reserved")?;
    r.u8("driver id type")?;
    let driver = r.bytes(8, "driver id")?;
    if driver.iter().any(|b| *b != 0) {
        rec.text("driver_unique_id", fields::hex(driver));
    }
    Ok(())
}

/// The large family of GPS / LBS / status messages.
fn location(rec: &mut Record, r: &mut Reader<'_>, pk: &Packet<'_>, ctx: &Ctx) -> R<()> {
    let t = pk.protocol;
    let v = ctx.variant;
    let m = &ctx.model;
    rec.int("message_type", t);
    let nt = m.nt && matches!(t, GPS_LBS_2 | GPS_LBS_DRIVER);
    if t == GPS_LBS_1 && m.is("QH302R") {
        r.skip(8, "IMEI")?;
    }
    if nt {
        r.u8("location source")?;
        r.skip(8, "IMEI")?;
        rec.time = fields::date(r, ctx.tz)?;
    }
    if has_gps(t, v) {
        fields::gps(rec, r, ctx.tz, GpsLayout::STANDARD)?;
    }
    let status = has_status(t, ctx);
    if has_lbs(t, v) && r.remaining() > 0 {
        let has_length = status
            && t != LBS_STATUS
            && t != LBS_ALARM
            && t != ALARM_MODULE
            && !(t == GPS_LBS_STATUS_1 && v == Variant::Vxt01)
            && t != GPS_LBS_STATUS_5;
        fields::lbs(rec, r, ctx, t, has_length)?;
    }
    if status {
        if t == GPS_LBS_STATUS_5 {
            r.u8("network indicator")?;
        }
        fields::status(rec, r, v)?;
        if v == Variant::Obd6 {
            let signal = r.u16("signal")?;
            rec.int(
                "satellites",
                ((signal >> 10) & 0x1f).saturating_add((signal >> 5) & 0x1f),
            );
            rec.int("rssi", signal & 0x1f);
            rec.alarm(fields::alarm(r.u8("alarm")?.into(), m));
            r.u8("language")?;
            rec.int("battery_level_pct", r.u8("battery level")?);
            let mode = r.u8("working mode")?;
            rec.float("power_v", f64::from(r.u16("power")?) / 100.0);
            r.u8("reserved")?;
            r.u16("working time")?;
            if mode == 4 {
                rec.float("temp1_c", f64::from(r.i16("temperature")?) / 10.0);
            }
        } else {
            if t == GPS_LBS_STATUS_5 || nt {
                rec.float("power_v", f64::from(r.u16("power")?) / 100.0);
            }
            if t == STATUS && m.is("R11") {
                rec.float("power_v", f64::from(r.u16("power")?) / 100.0);
            } else {
                let battery = r.u8("battery")?;
                if nt {
                    rec.float("battery_v", f64::from(battery) / 10.0);
                } else if battery <= 6 {
                    rec.int(
                        "battery_level_pct",
                        i64::from(battery)
                            .saturating_mul(100)
                            .checked_div(6)
                            .unwrap_or(0),
                    );
                } else if battery <= 100 {
                    rec.int("battery_level_pct", battery);
                }
            }
            rec.int("rssi", r.u8("rssi")?);
            if t == STATUS && m.lw {
                rec.float("power_v", f64::from(r.u16("power")? & 0x0fff) / 10.0);
            } else {
                let mut extension = u16::from(r.u8("alarm extension")?);
                if matches!(t, GPS_LBS_STATUS_3 | FENCE_MULTI | ALARM_MODULE) {
                    extension |= u16::from(r.peek(0).unwrap_or(0) >> 4) << 8;
                }
                if t == STATUS && m.sw {
                    rec.float("power_v", f64::from(extension));
                } else if v != Variant::Vxt01 {
                    rec.alarm(fields::alarm(extension, m));
                }
                if t == GPS_LBS_STATUS_1 && m.vl && r.remaining() >= 9 {
                    rec.int("event", extension);
                    r.u8("driver id type")?;
                    rec.text("driver_unique_id", fields::hex(r.bytes(8, "driver id")?));
                }
            }
        }
    }
    if matches!(
        t,
        STATUS_2 | GPS_LBS_STATUS_5 | GPS_LBS_STATUS_3 | FENCE_MULTI | ALARM_MODULE
    ) || nt
    {
        r.u8("language")?;
    }
    if matches!(t, STATUS_2 | ALARM_MODULE) {
        while r.remaining() > 0 {
            let module = r.u16("module type")?;
            let len = usize::from(r.u8("module length")?);
            match module {
                0x0018 => rec.float("battery_v", f64::from(r.u16("battery")?) / 100.0),
                0x0032 => rec.int("startup_status", r.u8("startup status")?),
                0x006a => rec.int("battery_level_pct", r.u8("battery level")?),
                _ => r.skip(len, "module")?,
            }
        }
    }
    if t == GPS_LBS_STATUS_5 {
        rec.int("odometer_m", r.u32("odometer")?);
        rec.int(
            "engine_hours_ms",
            i64::from(r.u32("hours")?).saturating_mul(1000),
        );
        r.skip(8, "terminal id")?;
        rec.int("input", r.u16("input")?);
    }
    if t == GPS_LBS_1 {
        gps_lbs_1_tail(rec, r, ctx)?;
    }
    if t == GPS_LBS_2 && v == Variant::Seeworld {
        rec.flag("ignition", r.u8("ignition")? > 0);
        r.u8("reporting mode")?;
        r.u8("supplementary transmission")?;
        rec.int("odometer_m", r.u32("odometer")?);
        r.u32("travel time")?;
        let raw = r.u16("temperature")?;
        let temp = if raw & 0x8000 != 0 {
            i32::from(raw & 0x7fff).saturating_neg()
        } else {
            i32::from(raw)
        };
        rec.float("temp1_c", f64::from(temp) / 100.0);
        rec.float("humidity_pct", f64::from(r.u16("humidity")?) / 100.0);
    }
    if t == GPS_LBS_STATUS_4 && v == Variant::Sl4x {
        if r.remaining() >= 3 {
            r.u8("language")?;
        }
        if r.remaining() >= 2 {
            rec.altitude_m = f64::from(r.i16("altitude")?);
        }
    }
    if matches!(t, GPS_LBS_2 | GPS_LBS_3 | GPS_LBS_4 | GPS_LBS_5) && r.remaining() >= 3 && !m.nt {
        rec.flag("ignition", r.u8("ignition")? > 0);
        rec.int("event", r.u8("event")?);
        if r.u8("archive")? > 0 {
            rec.flag("archive", true);
        }
        if v == Variant::Sl4x {
            if r.remaining() > 2 {
                rec.int("odometer_m", r.u32("odometer")?);
            }
            rec.altitude_m = f64::from(r.i16("altitude")?);
        }
    }
    if t == GPS_LBS_3 {
        let module = r.u16("module")?;
        let len = usize::from(r.u8("module length")?);
        match module {
            0x0027 => rec.float("power_v", f64::from(r.u16("power")?) / 100.0),
            0x002e => rec.int("odometer_m", r.u32("odometer")?),
            0x003b => rec.float("accuracy_m", f64::from(r.u16("accuracy")?) / 100.0),
            _ => r.skip(len, "module")?,
        }
    }
    if t == WIFI {
        rec.text("driver_unique_id", fields::hex(r.bytes(8, "RFID")?));
        r.u8("RFID validity")?;
    }
    if nt {
        rec.int("odometer_m", r.u24("odometer")?);
        rec.int(
            "engine_hours_ms",
            i64::from(r.u24("hours")?).saturating_mul(60_000),
        );
    }
    if nt && t == GPS_LBS_DRIVER {
        let len = usize::from(r.u8("driver length")?);
        if len > 0 {
            r.u8("driver id type")?;
            rec.text(
                "driver_unique_id",
                fields::hex(r.bytes(len.saturating_sub(1), "driver id")?),
            );
        }
    }
    if r.remaining() == 3 || r.remaining() == 7 {
        rec.flag("ignition", r.u8("ignition")? > 0);
        r.u8("upload mode")?;
        if r.u8("archive")? > 0 {
            rec.flag("archive", true);
        }
    }
    if r.remaining() == 4 {
        rec.int("odometer_m", r.u32("odometer")?);
    }
    if matches!(t, GPS_LBS_STATUS_3 | FENCE_MULTI) && r.remaining() > 0 {
        rec.int("geofence", r.u8("geofence")?);
    }
    Ok(())
}

/// Variant-specific tails of 0x12.
fn gps_lbs_1_tail(rec: &mut Record, r: &mut Reader<'_>, ctx: &Ctx) -> R<()> {
    let m = &ctx.model;
    match ctx.variant {
        Variant::Gt06eCard => {
            rec.int("odometer_m", r.u32("odometer")?);
            let n = usize::from(r.u8("card length")?);
            let card = String::from_utf8_lossy(r.bytes(n, "card")?)
                .trim()
                .to_string();
            r.u8("alarm")?;
            r.u8("swiped")?;
            rec.text("card", card);
        }
        Variant::Benway => {
            let mask = r.u16("mask")?;
            rec.flag("ignition", mask & (1 << 15) != 0);
            rec.flag("in2", mask & (1 << 14) != 0);
            if mask & (1 << 12) != 0 {
                let mut value = i64::from(mask & 0x01ff);
                if mask & (1 << 9) != 0 {
                    value = value.saturating_neg();
                }
                rec.float("temp1_c", value as f64);
            } else {
                let value = f64::from(mask & 0x03ff);
                if mask & (1 << 13) != 0 {
                    rec.float("adc1_v", value);
                } else {
                    rec.float("adc1_v", value / 10.0);
                }
            }
        }
        Variant::Vxt01 => {
            fields::status(rec, r, ctx.variant)?;
            rec.float("power_v", f64::from(r.u16("power")?) / 100.0);
            rec.int("rssi", r.u8("rssi")?);
            r.u8("alarm extension")?;
        }
        Variant::S5 => {
            fields::status(rec, r, ctx.variant)?;
            rec.float("power_v", f64::from(r.u16("power")?) / 100.0);
            rec.int("rssi", r.u8("rssi")?);
            rec.alarm(fields::alarm(r.u8("alarm")?.into(), m));
            rec.int("oil", r.u16("oil")?);
            let raw = r.u8("temperature")?;
            let temp = if raw & 0x80 != 0 {
                i32::from(raw & 0x7f).saturating_neg()
            } else {
                i32::from(raw)
            };
            rec.float("temp1_c", f64::from(temp));
            rec.int(
                "odometer_m",
                i64::from(r.u32("odometer")?).saturating_mul(10),
            );
        }
        Variant::Wetrust => {
            rec.int("odometer_m", r.u32("odometer")?);
            let n = usize::from(r.u8("card length")?);
            rec.text(
                "card",
                String::from_utf8_lossy(r.bytes(n, "card")?).into_owned(),
            );
            if r.u8("alarm")? > 0 {
                rec.alarm(Some("general"));
            }
            rec.int("card_status", r.u8("card status")?);
            rec.int("driving_time_s", r.u16("driving time")?);
        }
        _ => {}
    }
    Ok(())
}

/// 0x95 alarm (JC100/JC400 dash cameras).
fn alarm(rec: &mut Record, r: &mut Reader<'_>, pk: &Packet<'_>, ctx: &Ctx) -> R<()> {
    let jc400 = ctx.variant == Variant::Jc400;
    let extended_alarm = pk.content.len() > 7;
    if extended_alarm {
        if jc400 {
            r.u16("marker")?;
            r.u8("version")?;
        }
        let layout = GpsLayout {
            has_length: false,
            has_satellites: jc400,
            has_speed: jc400,
            long_speed: jc400,
            swap_flags: jc400,
        };
        fields::gps(rec, r, ctx.tz, layout)?;
    } else {
        rec.time = fields::date(r, ctx.tz)?;
    }
    if jc400 {
        rec.float("power_v", f64::from(r.u16("power")?) / 10.0);
    }
    let event = r.u8("event")?;
    rec.int("event", event);
    if r.remaining() >= 2 {
        rec.int("event_data", r.u16("event data")?);
    }
    rec.alarm(match event {
        0x01 if extended_alarm => Some("sos"),
        0x01 => Some("general"),
        0x0e => Some("lowPower"),
        0x76 => Some("temperature"),
        0x80 => Some("vibration"),
        0x87 => Some("overspeed"),
        0x88 => Some("powerCut"),
        0x90 => Some("hardAcceleration"),
        0x91 => Some("hardBraking"),
        0x92 => Some("hardCornering"),
        0x93 => Some("accident"),
        _ => None,
    });
    if r.remaining() > 0 {
        let files = String::from_utf8_lossy(r.rest()).into_owned();
        rec.text("event_files", files);
    }
    Ok(())
}
