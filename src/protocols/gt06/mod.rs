//! GT06 / Concox / Jimi: `78 78` (u8 length) and `79 79` (u16 length)
//! frames with a protocol number, a serial number and a CRC-16/X-25. The
//! device logs in with its BCD IMEI (0x01), then sends heartbeats (0x13,
//! 0x23), GPS/LBS/status/alarm messages in many model-specific variants,
//! and command results. See `protocols/gt06.md` for the wire format, the
//! reply bytes and every decision taken here.
//!
//! ```text
//! frame.rs     cuts frames (declared length first, 0D 0A fallback)
//! packet.rs    envelope checks: start, terminator, CRC, length
//! login.rs     0x01: IMEI, time zone extension
//! messages.rs  every other message type, in Traccar's order
//! text.rs      79 79 family and text-carrying messages
//! fields.rs    date, GPS, LBS, status, alarm codes; model and variant
//! record.rs    decoded fields → Position or Report
//! reader.rs    bounds-checked cursor
//! reply.rs     the exact bytes a device gets back
//! device.rs    the device side, for `trackgate simulate`
//! ```

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

pub mod device;
mod fields;
mod frame;
mod login;
mod messages;
mod packet;
mod reader;
mod record;
mod reply;
mod text;

#[cfg(test)]
mod encode;
#[cfg(test)]
mod tests;

use bytes::BytesMut;
use chrono::FixedOffset;

use crate::model::DeviceId;
use crate::protocol::{
    self, DecodeContext, DecodeError, Decoded, FrameError, MessageKind, Protocol, Rejected, Reply,
    SessionConfig, Transport,
};
use fields::{Ctx, Model, Variant};
use record::Output;

/// Registry name; also `Position::protocol` of everything decoded here.
pub const NAME: &str = "gt06";

/// The GT06 / Concox / Jimi protocol (registry name `gt06`, port 5023).
pub struct Gt06;

impl Protocol for Gt06 {
    fn name(&self) -> &'static str {
        NAME
    }
    fn default_port(&self) -> u16 {
        5023
    }
    fn transports(&self) -> &'static [Transport] {
        &[Transport::Tcp]
    }
    fn session(&self, config: &SessionConfig) -> Box<dyn protocol::Session> {
        Box::new(Session::new(config))
    }
    fn device_side(&self) -> Option<&'static dyn crate::protocol::device::DeviceSide> {
        Some(&device::Device)
    }
}

/// One TCP connection: the IMEI it logged in with and the time zone its
/// local time stamps are in.
#[derive(Debug)]
pub struct Session {
    max_frame_bytes: usize,
    device: Option<DeviceId>,
    /// The port's configured zone (`SessionConfig::time_zone`).
    configured_tz: FixedOffset,
    /// The zone in use: the configured one, or the login's when the port
    /// is left at UTC and the login carries one.
    tz: FixedOffset,
    model: Model,
}

impl Session {
    pub fn new(config: &SessionConfig) -> Self {
        Self {
            max_frame_bytes: config.max_frame_bytes,
            device: None,
            configured_tz: config.time_zone,
            tz: config.time_zone,
            model: Model::new(config.model.as_deref()),
        }
    }

    /// The IMEI this session logged in with.
    pub fn device(&self) -> Option<&DeviceId> {
        self.device.as_ref()
    }
}

impl protocol::Session for Session {
    fn frame(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        Ok(frame::next_len(buf, self.max_frame_bytes)?.map(|len| buf.split_to(len)))
    }

    fn decode(&mut self, frame: &[u8], ctx: &DecodeContext) -> Result<Decoded, Rejected> {
        let pk = packet::parse(frame).map_err(Rejected::skip)?;
        if pk.protocol == messages::p::LOGIN {
            let login = login::decode(&pk).map_err(Rejected::skip)?;
            self.device = Some(login.imei.clone());
            self.tz = match login.time_zone {
                Some(tz) if self.configured_tz.local_minus_utc() == 0 => tz,
                _ => self.configured_tz,
            };
            return Ok(Decoded::control(
                MessageKind::Login,
                Some(login.imei),
                Reply::accept_only(reply::ack(pk.extended, pk.protocol, pk.serial)),
            ));
        }
        let Some(device) = self.device.clone() else {
            return Err(Rejected::skip(DecodeError::NotIdentified));
        };
        let fctx = Ctx {
            tz: self.tz,
            model: self.model.clone(),
            variant: Variant::detect(pk.extended, pk.length, pk.protocol, pk.content),
            received: ctx.received,
        };
        let msg = messages::decode(&pk, &fctx).map_err(Rejected::skip)?;
        let mut decoded = Decoded::control(
            msg.kind,
            Some(device.clone()),
            Reply {
                accept: msg.reply,
                ..Reply::NONE
            },
        );
        if let Some(rec) = msg.record.filter(|r| !r.is_empty()) {
            match rec.finish(&device, ctx.received) {
                Output::Position(p) => decoded.positions.push(p),
                Output::Report(r) => decoded.reports.push(r),
            }
        }
        Ok(decoded)
    }
}
