//! Wialon IPS 1.1 and 2.0: text lines `#<type>#<body>\r\n` over TCP and UDP.
//! See `protocols/wialon.md` for the wire format, reply bytes and every
//! decision taken here.
//!
//! ```text
//! frame.rs    cuts one line off the TCP stream
//! message.rs  the envelope: optional `IMEI#` prefix, type, body, CRC16
//! record.rs   one `#SD#`/`#D#` record → Position (or Report without a fix)
//! params.rs   `name:type:value` parameters → attributes
//! reply.rs    the exact bytes a device gets back
//! device.rs   the tracker's side, for `trackgate simulate`
//! ```

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod device;
mod frame;
mod message;
mod params;
mod record;
mod reply;

#[cfg(test)]
mod encode;
#[cfg(test)]
mod tests;

use bytes::BytesMut;

use crate::model::DeviceId;
use crate::protocol::{
    self, DecodeContext, Decoded, FrameError, Protocol, Rejected, SessionConfig, Transport,
};

/// Registry name; also `Position::protocol` of everything decoded here.
pub const NAME: &str = "wialon";

/// The Wialon IPS 1.1 / 2.0 protocol (registry name `wialon`, port 5039).
pub struct Wialon;

impl Protocol for Wialon {
    fn name(&self) -> &'static str {
        NAME
    }
    fn default_port(&self) -> u16 {
        5039
    }
    fn transports(&self) -> &'static [Transport] {
        &[Transport::Tcp, Transport::Udp]
    }
    fn session(&self, config: &SessionConfig) -> Box<dyn protocol::Session> {
        Box::new(Session::new(config))
    }
    fn device_side(&self) -> Option<&'static dyn protocol::device::DeviceSide> {
        Some(&device::Device)
    }
}

/// One TCP connection or UDP peer: remembers the id of the last `#L#`
/// (messages may also name their device with an `IMEI#` prefix).
#[derive(Debug)]
pub struct Session {
    max_frame_bytes: usize,
    device: Option<DeviceId>,
}

impl Session {
    pub fn new(config: &SessionConfig) -> Self {
        Self {
            max_frame_bytes: config.max_frame_bytes,
            device: None,
        }
    }
}

impl protocol::Session for Session {
    fn frame(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        frame::next(buf, self.max_frame_bytes)
    }

    fn decode(&mut self, frame: &[u8], ctx: &DecodeContext) -> Result<Decoded, Rejected> {
        message::decode(&mut self.device, frame, ctx)
    }
}
