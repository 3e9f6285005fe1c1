//! JT/T 808 (2011/2013/2019) and the vendor variants Traccar calls "huabao":
//! `7E`-delimited, escaped binary messages with a BCD terminal id in every
//! header, registration/authentication, general responses, location reports
//! with additional-information items, batch uploads; plus the `E7` variant
//! and `(…)` text messages of some e-locks. See `protocols/jt808.md` for the
//! wire format, reply bytes and every decision taken here.
//!
//! ```text
//! frame.rs     cuts and unescapes frames (7E, E7, text)
//! header.rs    message header, XOR and body length checks, terminal id
//! messages.rs  decoding by message id, and which reply each needs
//! location.rs  0x0200 basic information, status and alarm words, batches
//! extras.rs    additional-information items → attributes
//! vendor.rs    0x5501/0x5502 e-lock reports, 0x0900 transparent data
//! text.rs      `(…)` text messages
//! record.rs    attribute/alarm collector, times, Position/Report building
//! read.rs      the bounds-checked cursor every parser reads through
//! reply.rs     the exact bytes a terminal gets back
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
mod extras;
mod frame;
mod header;
mod location;
mod messages;
mod read;
mod record;
mod reply;
mod text;
mod vendor;

#[cfg(test)]
mod encode;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::BytesMut;
use chrono::FixedOffset;

use crate::model::DeviceId;
use crate::protocol::{
    self, DecodeContext, Decoded, FrameError, Protocol, Rejected, SessionConfig, Transport,
};

/// Registry name; also `Position::protocol` of everything decoded here.
pub const NAME: &str = "jt808";

/// The JT/T 808 protocol (registry name `jt808`, port 5015).
pub struct Jt808;

impl Protocol for Jt808 {
    fn name(&self) -> &'static str {
        NAME
    }
    fn default_port(&self) -> u16 {
        5015
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

/// One TCP connection. Every binary message names its terminal; the
/// session remembers the last one for text messages, and counts the serial
/// numbers of the replies it builds.
#[derive(Debug)]
pub struct Session {
    max_frame_bytes: usize,
    time_zone: FixedOffset,
    model: Option<Arc<str>>,
    device: Option<DeviceId>,
    serial: u16,
}

impl Session {
    pub fn new(config: &SessionConfig) -> Self {
        Self {
            max_frame_bytes: config.max_frame_bytes,
            time_zone: config.time_zone,
            model: config.model.clone(),
            device: None,
            serial: 0,
        }
    }

    /// The serial for our next reply.
    fn next_serial(&mut self) -> u16 {
        let s = self.serial;
        self.serial = self.serial.wrapping_add(1);
        s
    }

    fn decode_binary(&mut self, frame: &[u8], ctx: &DecodeContext) -> Result<Decoded, Rejected> {
        let m = match header::parse(frame) {
            Ok(m) => m,
            Err(broken) => {
                let reply = broken
                    .header
                    .as_ref()
                    .map(|h| reply::general(h, self.next_serial(), reply::MESSAGE_ERROR));
                return Err(Rejected {
                    error: broken.error,
                    reply,
                    close: false,
                });
            }
        };
        let device = header::device_id(m.header.terminal).map_err(|e| Rejected::skip(e.into()))?;
        self.device = Some(device.clone());
        let c = record::Ctx {
            device: &device,
            time_zone: self.time_zone,
            model: self.model.as_deref(),
            received: ctx.received,
        };
        if m.header.packet.is_some() {
            return Err(Rejected::skip(protocol::DecodeError::Unsupported {
                what: "subpackaged message",
                value: format!("{:#06x}", m.header.msg_id),
            }));
        }
        let outcome = messages::decode(&m, &c).map_err(Rejected::skip)?;
        let auth_code = header::terminal_text(m.header.terminal);
        let serial = if outcome.answer == messages::Answer::None {
            0
        } else {
            self.next_serial()
        };
        let reply = messages::reply(&m, outcome.answer, serial, &auth_code, ctx.received);
        Ok(Decoded {
            kind: outcome.kind,
            device: Some(device),
            positions: outcome.positions,
            reports: outcome.reports,
            reply,
        })
    }
}

impl protocol::Session for Session {
    fn frame(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        frame::next(buf, self.max_frame_bytes)
    }

    fn decode(&mut self, frame: &[u8], ctx: &DecodeContext) -> Result<Decoded, Rejected> {
        match frame.first() {
            Some(&frame::TEXT_OPEN) => text::decode(frame, self.device.as_ref(), ctx),
            _ => self.decode_binary(frame, ctx),
        }
    }
}
