//! Building blocks many message types share: date-time, the GPS block, the
//! LBS (cell) block, the status byte, alarm codes; and the per-frame
//! context (time zone, configured model, detected firmware variant).

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};

use super::reader::Reader;
use super::record::{Cell, Fix, Record};
use crate::protocol::DecodeError;

type R<T> = Result<T, DecodeError>;

/// Coordinates are in units of 1/30000 minute.
pub(super) const COORD_UNITS_PER_DEG: f64 = 60.0 * 30_000.0;

/// Models (per port, `SessionConfig::model`) whose frames differ.
#[derive(Debug, Clone, Default)]
pub(super) struct Model {
    pub name: Option<String>,
    /// LW4G family (`LW…`): power in the status packet, own alarm codes.
    pub lw: bool,
    /// SEEWORLD: power in the status packet, own alarm codes.
    pub sw: bool,
    /// NT/XT family: a second header (source, IMEI, device time) in 0x22/0x25.
    pub nt: bool,
    /// VL103 family: own alarm codes, driver id and events in 0x16/0x36.
    pub vl: bool,
}

const NT_MODELS: &[&str] = &["NT11", "NT20", "NT26", "NT40", "NT46", "VL100", "XT40"];
const VL_MODELS: &[&str] = &["VL103", "LL303", "VL512", "G18"];

impl Model {
    pub(super) fn new(name: Option<&str>) -> Self {
        let Some(name) = name.map(str::to_ascii_uppercase) else {
            return Self::default();
        };
        Self {
            lw: name.starts_with("LW"),
            sw: name == "SEEWORLD",
            nt: NT_MODELS.contains(&name.as_str()),
            vl: VL_MODELS.contains(&name.as_str()),
            name: Some(name),
        }
    }

    pub(super) fn is(&self, name: &str) -> bool {
        self.name.as_deref() == Some(name)
    }
}

/// Firmware variants recognised by a frame's length and protocol number
/// (no configuration needed; the same detection as Traccar's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Variant {
    Vxt01,
    WanwayS20,
    Sr411Mini,
    Gt06eCard,
    Benway,
    S5,
    Space10x,
    Obd6,
    Wetrust,
    Jc400,
    Sl4x,
    Seeworld,
    Rfid,
    Lw4g,
    Standard,
}

impl Variant {
    /// From a `78 78` frame's length field, protocol number and first
    /// content bytes.
    pub(super) fn detect(extended: bool, length: usize, protocol: u8, content: &[u8]) -> Self {
        if extended {
            return Self::Standard;
        }
        match (protocol, length) {
            (0x12, 0x24) | (0x16, 0x24) => Self::Vxt01,
            (0x24, 0x31) => Self::WanwayS20,
            (0x24, 0x2e) => Self::Sr411Mini,
            (0x12, l) if l >= 0x71 => Self::Gt06eCard,
            (0x12, 0x21) => Self::Benway,
            (0x12, 0x2b) => Self::S5,
            (0x19, l) if l >= 0x17 => Self::Space10x,
            (0x13, 0x13) => Self::Obd6,
            (0x12, 0x29) => Self::Wetrust,
            (0x95, _) if content.get(..2) == Some(&[0xff, 0xff]) => Self::Jc400,
            (0x34, 0x37) | (0x31, 0x2a) | (0x32, 0x27) | (0x32, 0x29) => Self::Sl4x,
            (0x22, 0x2f) | (0x16, 0x26) | (0xa3, 0x0c) => Self::Seeworld,
            (0x17, 0x28) => Self::Rfid,
            (0xa2, 0x40) => Self::Lw4g,
            _ => Self::Standard,
        }
    }
}

/// Everything a message decoder needs besides the bytes.
#[derive(Debug, Clone)]
pub(super) struct Ctx {
    pub tz: FixedOffset,
    pub model: Model,
    pub variant: Variant,
    pub received: DateTime<Utc>,
}

/// `yy MM dd HH mm ss` in the device's time zone → UTC; `None` when the
/// fields do not form a date (zeroed blocks).
pub(super) fn date(r: &mut Reader<'_>, tz: FixedOffset) -> R<Option<DateTime<Utc>>> {
    let b = r.bytes(6, "date-time")?;
    let [y, mo, d, h, mi, s] = <[u8; 6]>::try_from(b).unwrap_or_default();
    Ok(local(
        tz,
        2000i32.saturating_add(i32::from(y)),
        mo,
        d,
        h,
        mi,
        s,
    ))
}

/// The same six fields in BCD (Wi-Fi packets), always UTC.
pub(super) fn bcd_date(r: &mut Reader<'_>) -> R<Option<DateTime<Utc>>> {
    let b = r.bytes(6, "BCD date-time")?;
    let v: Vec<u8> = b
        .iter()
        .map(|x| (x >> 4).saturating_mul(10).saturating_add(x & 0x0f))
        .collect();
    let [y, mo, d, h, mi, s] = <[u8; 6]>::try_from(v.as_slice()).unwrap_or_default();
    Ok(local(
        Utc.fix(),
        2000i32.saturating_add(i32::from(y)),
        mo,
        d,
        h,
        mi,
        s,
    ))
}

pub(super) fn local(
    tz: FixedOffset,
    y: i32,
    mo: u8,
    d: u8,
    h: u8,
    mi: u8,
    s: u8,
) -> Option<DateTime<Utc>> {
    let naive = NaiveDate::from_ymd_opt(y, mo.into(), d.into())?.and_hms_opt(
        h.into(),
        mi.into(),
        s.into(),
    )?;
    tz.from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

use chrono::Offset;

/// How a GPS block is laid out.
#[derive(Debug, Clone, Copy)]
pub(super) struct GpsLayout {
    /// A length byte after the date; 0 means "no fix follows".
    pub has_length: bool,
    pub has_satellites: bool,
    pub has_speed: bool,
    /// Speed as u16 instead of u8.
    pub long_speed: bool,
    /// Course/flags word before the speed.
    pub swap_flags: bool,
}

impl GpsLayout {
    pub(super) const STANDARD: Self = Self {
        has_length: false,
        has_satellites: true,
        has_speed: true,
        long_speed: false,
        swap_flags: false,
    };
}

/// Decodes a GPS block into `rec.fix`. Returns false when a length-prefixed
/// block says no fix follows.
pub(super) fn gps(
    rec: &mut Record,
    r: &mut Reader<'_>,
    tz: FixedOffset,
    layout: GpsLayout,
) -> R<bool> {
    let time = date(r, tz)?;
    if layout.has_length && r.u8("GPS length")? == 0 {
        rec.time = time;
        return Ok(false);
    }
    let satellites = if layout.has_satellites {
        Some(r.u8("satellites")? & 0x0f)
    } else {
        None
    };
    let lat_raw = r.u32("latitude")?;
    let lon_raw = r.u32("longitude")?;
    let mut flags = 0;
    if layout.swap_flags {
        flags = r.u16("course and flags")?;
    }
    let speed = if !layout.has_speed {
        0
    } else if layout.long_speed {
        r.u16("speed")?
    } else {
        u16::from(r.u8("speed")?)
    };
    if !layout.swap_flags {
        flags = r.u16("course and flags")?;
    }
    let mut lat = f64::from(lat_raw) / COORD_UNITS_PER_DEG;
    let mut lon = f64::from(lon_raw) / COORD_UNITS_PER_DEG;
    if flags & (1 << 10) == 0 {
        lat = -lat;
    }
    if flags & (1 << 11) != 0 {
        lon = -lon;
    }
    if flags & (1 << 14) != 0 {
        rec.flag("ignition", flags & (1 << 15) != 0);
    }
    match time {
        Some(time) => {
            rec.fix = Some(Fix {
                time,
                lat,
                lon,
                speed_kmh: f64::from(speed),
                course_deg: f64::from(flags & 0x03ff),
                valid: flags & (1 << 12) != 0,
                satellites,
            })
        }
        None => {
            if let Some(s) = satellites {
                rec.int("satellites", s);
            }
        }
    }
    Ok(true)
}

/// The protocol numbers the LBS block layout depends on.
pub(super) mod proto {
    pub const GPS_LBS_6: u8 = 0x11;
    pub const GPS_LBS_DRIVER: u8 = 0x25;
    pub const GPS_LBS_8: u8 = 0x38;
    pub const ALARM_MODULE: u8 = 0x39;
    pub const IBUTTON: u8 = 0x61;
    pub const GPS_LBS_7: u8 = 0xa0;
    pub const GPS_LBS_STATUS_5: u8 = 0xa2;
    pub const LBS_ALARM: u8 = 0xa5;
}

/// Decodes an LBS block (serving cell). Returns false when a
/// length-prefixed block is empty.
pub(super) fn lbs(
    rec: &mut Record,
    r: &mut Reader<'_>,
    ctx: &Ctx,
    protocol: u8,
    has_length: bool,
) -> R<bool> {
    use proto::*;
    let mut length = 0usize;
    if has_length {
        length = usize::from(r.u8("LBS length")?);
        if length == 0 {
            // Zeroed cell data follows an empty length on some firmwares.
            let rest = r.rest();
            let zeroed = rest.len() >= 45 && rest.iter().skip(9).take(36).all(|b| *b == 0);
            if zeroed {
                let n = r.remaining().min(45);
                r.skip(n, "zeroed LBS")?;
            }
            return Ok(false);
        }
    }
    if has_length && ctx.variant == Variant::Sl4x {
        // SL4X: the length counts the cell bytes (u16 MCC, MNC, LAC, then the cell id).
        let body = r.bytes(length, "LBS")?;
        let mut b = Reader::new(body, 0);
        let mcc = b.u16("MCC")?;
        let mnc = b.u16("MNC")?;
        let lac = b.u16("LAC")?;
        let cid = b
            .rest()
            .iter()
            .take(8)
            .fold(0i64, |a, x| a.wrapping_shl(8) | i64::from(*x));
        rec.cell(Cell {
            mcc: mcc & 0x7fff,
            mnc,
            lac: lac.into(),
            cid,
            rssi: None,
        });
        return Ok(true);
    }
    let cell_type = if matches!(protocol, GPS_LBS_8 | ALARM_MODULE) {
        r.u8("cell type")?
    } else {
        0
    };
    let mcc = r.u16("MCC")?;
    let mnc = if mcc & 0x8000 != 0 || protocol == GPS_LBS_6 || ctx.variant == Variant::Sl4x {
        r.u16("MNC")?
    } else {
        u16::from(r.u8("MNC")?)
    };
    let wide = cell_type >= 3 || matches!(protocol, LBS_ALARM | GPS_LBS_7 | GPS_LBS_STATUS_5);
    let lac = if wide {
        i64::from(r.i32("LAC")?)
    } else {
        i64::from(r.u16("LAC")?)
    };
    let cid = if wide || ctx.variant == Variant::Sl4x {
        i64::try_from(r.u64("cell id")?).unwrap_or(i64::MAX)
    } else if matches!(protocol, GPS_LBS_6 | IBUTTON | GPS_LBS_DRIVER)
        || ctx.variant == Variant::Seeworld
    {
        i64::from(r.u32("cell id")?)
    } else {
        i64::from(r.u24("cell id")?)
    };
    if cell_type >= 3 {
        r.skip(2, "cell RSSI")?;
    } else if matches!(protocol, GPS_LBS_8 | ALARM_MODULE) {
        r.skip(1, "cell RSSI")?;
    }
    rec.cell(Cell {
        mcc: mcc & 0x7fff,
        mnc,
        lac,
        cid,
        rssi: None,
    });
    if length > 9 {
        r.skip(length.saturating_sub(9), "LBS extension")?;
    }
    Ok(true)
}

/// The terminal information byte.
pub(super) fn status(rec: &mut Record, r: &mut Reader<'_>, variant: Variant) -> R<()> {
    let status = r.u8("status")?;
    rec.int("status", status);
    rec.flag("ignition", status & 0x02 != 0);
    rec.flag("charging", status & 0x04 != 0);
    rec.flag("blocked", status & 0x80 != 0);
    rec.alarm(match (status >> 3) & 0x07 {
        1 => Some("vibration"),
        2 => Some("powerCut"),
        3 => Some("lowBattery"),
        4 => Some("sos"),
        6 => Some("geofence"),
        7 if variant == Variant::Vxt01 => Some("overspeed"),
        7 => Some("removing"),
        _ => None,
    });
    Ok(())
}

/// The alarm byte of status packets (Traccar's names, so dashboards agree).
pub(super) fn alarm(value: u16, model: &Model) -> Option<&'static str> {
    let (lw, sw, vl) = (model.lw, model.sw, model.vl);
    Some(match value {
        0x01 => "sos",
        0x02 => "powerCut",
        0x03 => "vibration",
        0x04 => "geofenceEnter",
        0x05 => "geofenceExit",
        0x06 => "overspeed",
        0x09 if vl => "tow",
        0x09 => "vibration",
        0x0e | 0x0f => "lowBattery",
        0x11 => "powerOff",
        0x0c | 0x13 | 0x25 | 0x32 => "tampering",
        0x14 => "door",
        0x18 if lw => "accident",
        0x18 => "removing",
        0x19 if lw => "hardAcceleration",
        0x19 => "lowBattery",
        0x1a | 0x27 => "hardBraking",
        0x1b | 0x2a | 0x2b | 0x2e => "hardCornering",
        0x23 => "fallDown",
        0x26 => "hardAcceleration",
        0x28 if sw => "hardCornering",
        0x28 if vl => "powerOff",
        0x28 => "hardBraking",
        0x29 if sw => "accident",
        0x29 => "hardAcceleration",
        0x2c => "accident",
        0x30 if vl => "hardBraking",
        0x30 => "jamming",
        0x33 => "lock",
        0x34 => "unlock",
        0x53 => "fuelLeak",
        0x5b | 0x5c => "temperature",
        0xc9 => "idle",
        0x0107 | 0x010b => "jamming",
        _ => return None,
    })
}

/// Lower-case hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
