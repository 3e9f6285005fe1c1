//! H02 (Sinotrack ST-90x, many "HQ" clones): text reports `*HQ,<id>,<cmd>,…#`
//! and binary `$` records of fixed length with BCD fields, on TCP and UDP.
//! See `protocols/h02.md` for the wire format, reply bytes and decisions.
//!
//! ```text
//! frame.rs   cuts TCP frames: `*…#` text, `$` records (length latched), `X` records
//! text.rs    the text envelope, command dispatch and the V1/V4/V… position report
//! lbs.rs     reports without a fix: NBR / V3 cell lists, LINK, VP1 cells, HTBT, SMS
//! binary.rs  the BCD `$` / `X` record
//! fields.rs  shared field readers: coordinates, device-local time, numbers
//! status.rs  the 32-bit status word → alarm, ignition, status
//! reply.rs   the exact bytes a device gets back
//! ```

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod binary;
mod fields;
mod frame;
mod lbs;
mod reply;
mod status;
mod text;

#[cfg(test)]
mod encode;
#[cfg(test)]
mod tests;

use bytes::BytesMut;
use chrono::FixedOffset;

use crate::model::DeviceId;
use crate::protocol::{
    self, DecodeContext, DecodeError, Decoded, FrameError, Protocol, Rejected, SessionConfig,
    Transport,
};

/// Registry name; also `Position::protocol` of everything decoded here.
pub const NAME: &str = "h02";

/// The H02 protocol (registry name `h02`, port 5013).
pub struct H02;

impl Protocol for H02 {
    fn name(&self) -> &'static str {
        NAME
    }
    fn default_port(&self) -> u16 {
        5013
    }
    fn transports(&self) -> &'static [Transport] {
        &[Transport::Tcp, Transport::Udp]
    }
    fn session(&self, config: &SessionConfig) -> Box<dyn protocol::Session> {
        Box::new(Session::new(config))
    }
}

/// One TCP connection or UDP peer. Every H02 message names its device,
/// except text reports with an empty id field (`*HQ,,V1,…#`): those belong
/// to the device last named on the same session.
#[derive(Debug)]
pub struct Session {
    max_frame_bytes: usize,
    time_zone: FixedOffset,
    /// Length of `$` records on this TCP stream, once decided.
    binary_len: Option<usize>,
    device: Option<DeviceId>,
}

impl Session {
    pub fn new(config: &SessionConfig) -> Self {
        Self {
            max_frame_bytes: config.max_frame_bytes,
            time_zone: config.time_zone,
            binary_len: None,
            device: None,
        }
    }
}

/// What every message decoder needs besides the bytes.
pub(super) struct Ctx<'a> {
    pub received: chrono::DateTime<chrono::Utc>,
    /// Offset of the device's clock (H02 devices can be set to local time).
    pub time_zone: FixedOffset,
    /// The device last named on this session, for messages without an id.
    pub last_device: Option<&'a DeviceId>,
}

impl protocol::Session for Session {
    fn frame(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        frame::next(buf, &mut self.binary_len, self.max_frame_bytes)
    }

    fn decode(&mut self, frame: &[u8], ctx: &DecodeContext) -> Result<Decoded, Rejected> {
        let c = Ctx {
            received: ctx.received,
            time_zone: self.time_zone,
            last_device: self.device.as_ref(),
        };
        let decoded = match frame.first() {
            Some(&frame::TEXT) => text::decode(frame, &c),
            Some(&frame::BINARY) | Some(&frame::BINARY_X) => binary::decode(frame, &c),
            _ => Err(Rejected::skip(DecodeError::Malformed {
                what: "message marker (expected '*', '$' or 'X')",
                offset: 0,
            })),
        }?;
        if let Some(device) = &decoded.device {
            self.device = Some(device.clone());
        }
        Ok(decoded)
    }
}
