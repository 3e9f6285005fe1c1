//! Decoding of one checked binary message, by message id, with the reply
//! each one needs. The table of ids, kinds and replies is in
//! `protocols/jt808.md`.

use chrono::{DateTime, Utc};

use super::header::{Message, LOCATION_2, LOCATION_BLIND, REPLY_WANTED};
use super::location::{self, malformed};
use super::read::{Reader, Res};
use super::record::{Ctx, Fix, Rec};
use super::reply;
use super::vendor;
use crate::model::{Position, Report};
use crate::protocol::{DecodeError, MessageKind, Reply};

pub(super) const TERMINAL_RESPONSE: u16 = 0x0001;
pub(super) const HEARTBEAT: u16 = 0x0002;
pub(super) const LOGOUT: u16 = 0x0003;
pub(super) const REGISTER: u16 = 0x0100;
pub(super) const AUTH: u16 = 0x0102;
pub(super) const PARAMETERS: u16 = 0x0104;
pub(super) const ATTRIBUTES: u16 = 0x0107;
pub(super) const TIME_SYNC: u16 = 0x0109;
pub(super) const LOCATION: u16 = 0x0200;
pub(super) const LOCATION_QUERY_RESPONSE: u16 = 0x0201;
pub(super) const LOCATION_BATCH_2: u16 = 0x0210;
pub(super) const HEARTBEAT_2: u16 = 0x0506;
pub(super) const WAYBILL: u16 = 0x0701;
pub(super) const DRIVER_IDENTITY: u16 = 0x0702;
pub(super) const LOCATION_BATCH: u16 = 0x0704;
pub(super) const TRANSPARENT: u16 = 0x0900;
pub(super) const TIMEZONE_SYNC: u16 = 0x1007;
pub(super) const TEXT_RESPONSE: u16 = 0x1300;
pub(super) const ACCELERATION: u16 = 0x2070;
pub(super) const TEXT_REPORT: u16 = 0x6006;
pub(super) const PHOTO: u16 = 0x8888;

/// What a message carried and how to answer it.
pub(super) struct Outcome {
    pub kind: MessageKind,
    pub positions: Vec<Position>,
    pub reports: Vec<Report>,
    pub answer: Answer,
}

/// The reply a message needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    None,
    /// 0x8001: success when accepted, failure when refused.
    General,
    /// 0x8001 "not supported" either way (unknown message id).
    NotSupported,
    /// 0x8100 with the terminal id as auth code; "no such terminal" when refused.
    Register,
    /// 0x4401 when the header asked for it.
    Vendor,
    /// 0x8109 with the current time.
    TimeSync,
}

impl Outcome {
    fn control(kind: MessageKind, answer: Answer) -> Self {
        Self {
            kind,
            positions: Vec::new(),
            reports: Vec::new(),
            answer,
        }
    }

    fn position(p: Position, answer: Answer) -> Self {
        Self {
            kind: MessageKind::Data,
            positions: vec![p],
            reports: Vec::new(),
            answer,
        }
    }

    fn report(kind: MessageKind, r: Report, answer: Answer) -> Self {
        Self {
            kind,
            positions: Vec::new(),
            reports: vec![r],
            answer,
        }
    }
}

/// Decodes `m`'s body.
pub(super) fn decode(m: &Message<'_>, c: &Ctx<'_>) -> Result<Outcome, DecodeError> {
    let mut r = Reader::new(m.body, m.body_offset);
    let id = m.header.msg_id;
    Ok(match id {
        REGISTER => Outcome::control(MessageKind::Login, Answer::Register),
        AUTH => Outcome::control(MessageKind::Login, Answer::General),
        HEARTBEAT if m.body.len() >= 3 => {
            let mut rec = Rec::new();
            rec.int("battery_level_pct", r.u8().map_err(malformed("heartbeat"))?);
            rec.int("rssi", r.u8().map_err(malformed("heartbeat"))?);
            rec.int("status", r.u8().map_err(malformed("heartbeat"))?);
            Outcome::report(
                MessageKind::Keepalive,
                rec.into_report(c, None),
                Answer::General,
            )
        }
        HEARTBEAT | HEARTBEAT_2 => Outcome::control(MessageKind::Keepalive, Answer::General),
        LOGOUT | PHOTO | TIMEZONE_SYNC => Outcome::control(MessageKind::Other, Answer::General),
        TERMINAL_RESPONSE => Outcome::control(MessageKind::CommandResponse, Answer::None),
        TIME_SYNC => Outcome::control(MessageKind::Other, Answer::TimeSync),
        LOCATION => Outcome::position(location::location(&mut r, c)?, Answer::General),
        LOCATION_QUERY_RESPONSE => {
            r.u16().map_err(malformed("response serial"))?;
            Outcome::position(location::location(&mut r, c)?, Answer::None)
        }
        LOCATION_2 | LOCATION_BLIND => Outcome::position(
            vendor::location2(&mut r, c, id == LOCATION_2).map_err(malformed("location"))?,
            if m.header.attrs & REPLY_WANTED != 0 {
                Answer::Vendor
            } else {
                Answer::None
            },
        ),
        LOCATION_BATCH_2 if m.body.len() == 7 => {
            let mut rec = Rec::new();
            let level = r.u8().map_err(malformed("battery level"))?;
            rec.int("battery_level_pct", level);
            let time = r.take(6).ok().and_then(|t| c.bcd_time(t));
            Outcome::report(MessageKind::Data, rec.into_report(c, time), Answer::General)
        }
        LOCATION_BATCH | LOCATION_BATCH_2 => Outcome {
            kind: MessageKind::Data,
            positions: location::batch(&mut r, c, id == LOCATION_BATCH)?,
            reports: Vec::new(),
            answer: Answer::General,
        },
        TRANSPARENT => vendor::transparent(&mut r, c)?,
        TEXT_REPORT => {
            r.skip(1).map_err(malformed("text encoding"))?;
            let mut rec = Rec::new();
            rec.text("result", String::from_utf8_lossy(r.rest()).into_owned());
            Outcome::report(
                MessageKind::CommandResponse,
                rec.into_report(c, None),
                Answer::General,
            )
        }
        TEXT_RESPONSE => {
            r.skip(2).map_err(malformed("response serial"))?;
            let units: Vec<u16> = r
                .rest()
                .chunks_exact(2)
                .map(|p| {
                    u16::from_be_bytes([
                        p.first().copied().unwrap_or(0),
                        p.last().copied().unwrap_or(0),
                    ])
                })
                .collect();
            let text: String = char::decode_utf16(units)
                .map(|ch| ch.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect();
            let mut rec = Rec::new();
            rec.text("result", text.trim_matches(super::read::blank));
            Outcome::report(
                MessageKind::CommandResponse,
                rec.into_report(c, None),
                Answer::None,
            )
        }
        ATTRIBUTES => {
            let mut rec = Rec::new();
            r.skip(2 + 5 + 20 + 7)
                .map_err(malformed("terminal attributes"))?;
            rec.text("iccid", r.hex(10).map_err(malformed("ICCID"))?);
            Outcome::report(
                MessageKind::Other,
                rec.into_report(c, None),
                Answer::General,
            )
        }
        WAYBILL => {
            let mut rec = Rec::new();
            let text = super::read::attempt(|| -> Res<String> {
                let n = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
                r.latin1(n)
            })
            .map_err(malformed("waybill"))?;
            rec.text("result", text);
            Outcome::report(
                MessageKind::CommandResponse,
                rec.into_report(c, None),
                Answer::General,
            )
        }
        DRIVER_IDENTITY => {
            let (rec, time) = driver_identity(&mut r, c).map_err(malformed("driver identity"))?;
            Outcome::report(MessageKind::Data, rec.into_report(c, time), Answer::General)
        }
        PARAMETERS => Outcome::report(
            MessageKind::CommandResponse,
            parameters(&mut r)
                .map_err(malformed("parameters"))?
                .into_report(c, None),
            Answer::None,
        ),
        ACCELERATION => Outcome::report(
            MessageKind::Data,
            acceleration(&mut r)
                .map_err(malformed("acceleration"))?
                .into_report(c, None),
            Answer::None,
        ),
        _ => Outcome::control(MessageKind::Other, Answer::NotSupported),
    })
}

/// The two replies for `answer`; `serial` is ours.
pub(super) fn reply(
    m: &Message<'_>,
    answer: Answer,
    serial: u16,
    auth_code: &str,
    now: DateTime<Utc>,
) -> Reply {
    let h = &m.header;
    match answer {
        Answer::None => Reply::NONE,
        Answer::General => Reply::both(
            reply::general(h, serial, reply::SUCCESS),
            reply::general(h, serial, reply::FAILURE),
        ),
        Answer::NotSupported => {
            let b = reply::general(h, serial, reply::NOT_SUPPORTED);
            Reply::both(b.clone(), b)
        }
        Answer::Register => Reply::both(
            reply::register(h, serial, reply::SUCCESS, auth_code),
            reply::register(h, serial, reply::NO_SUCH_TERMINAL, auth_code),
        ),
        Answer::Vendor => Reply::accept_only(reply::vendor(h, reply::SUCCESS)),
        Answer::TimeSync => Reply::accept_only(reply::time_sync(h, serial, now, reply::SUCCESS)),
    }
}

fn driver_identity(r: &mut Reader<'_>, c: &Ctx<'_>) -> Res<(Rec, Option<DateTime<Utc>>)> {
    let mut rec = Rec::new();
    rec.int("card_status", r.u8()?);
    let time = c.bcd_time(r.take(6)?);
    rec.int("card_result", r.u8()?);
    let n = usize::from(r.u8()?);
    rec.text("driver", r.latin1(n)?);
    rec.text("card_code", r.latin1(20)?.trim_matches(super::read::blank));
    let n = usize::from(r.u8()?);
    rec.text("card_agency", r.latin1(n)?);
    rec.text("card_validity", r.hex(4)?);
    Ok((rec, time))
}

/// 0x0104: serial, count, then `id u32 | len u8 | value` parameters.
fn parameters(r: &mut Reader<'_>) -> Res<Rec> {
    let mut rec = Rec::new();
    r.skip(3)?;
    while r.remaining() >= 5 {
        let id = r.u32()?;
        let l = usize::from(r.u8()?);
        let Ok(mut v) = r.sub(l) else { break };
        let text = |v: &mut Reader<'_>| {
            v.latin1(l)
                .map(|s| s.trim_matches(super::read::blank).to_string())
        };
        let _ = super::read::attempt(|| -> Res<()> {
            match id {
                0x0001 => rec.int("heartbeat_interval_s", v.u32()?),
                0x0010 => rec.text("apn", text(&mut v)?),
                0x0013 => rec.text("server", text(&mut v)?),
                0x0018 => rec.int("port", v.u32()?),
                0x0027 => rec.int("sleep_report_interval_s", v.u32()?),
                0x0028 => rec.int("emergency_report_interval_s", v.u32()?),
                0x0029 => rec.int("default_report_interval_s", v.u32()?),
                0x0055 => rec.int("overspeed_threshold_kmh", v.u32()?),
                0x0056 => rec.int("speed_limit_duration_s", v.u32()?),
                0x0080 => rec.int("odometer_m", i64::from(v.u32()?).saturating_mul(100)),
                0x0083 => rec.text("plate_number", text(&mut v)?),
                _ => {}
            }
            Ok(())
        });
    }
    Ok(rec)
}

/// 0x2070: `time(6) | x | y | z` samples, sign-magnitude 16-bit axes.
fn acceleration(r: &mut Reader<'_>) -> Res<Rec> {
    let axis = |v: u16| {
        let m = i32::from(v & 0x7fff);
        if v & 0x8000 != 0 {
            0i32.saturating_sub(m)
        } else {
            m
        }
    };
    let mut samples = Vec::new();
    while r.remaining() >= 12 {
        r.skip(6)?;
        let (x, y, z) = (axis(r.u16()?), axis(r.u16()?), axis(r.u16()?));
        samples.push(format!("[{x},{y},{z}]"));
    }
    let mut rec = Rec::new();
    rec.text("g_sensor", format!("[{}]", samples.join(",")));
    Ok(rec)
}

/// A fix from a status word and coordinates only (transparent 0xF0 data).
pub(super) fn status_fix(
    r: &mut Reader<'_>,
    c: &Ctx<'_>,
    rec: &mut Rec,
    time: Option<DateTime<Utc>>,
) -> Res<Fix> {
    let status = r.u32()?;
    let (lat, lon, valid) = location::coordinates(r, c, rec, status)?;
    Ok(Fix {
        time,
        lat,
        lon,
        altitude_m: 0.0,
        speed_kmh: 0.0,
        course_deg: 0.0,
        valid,
    })
}
