//! Ruptela (FM-Eco, FM-Pro, FM-Tco, Trace…): length-prefixed binary packets
//! with CRC-16/KERMIT, the IMEI in every packet, records with IO elements
//! (command 1) and extended records (command 68), identification and
//! heartbeat. See `protocols/ruptela.md` for the wire format, reply bytes
//! and every decision taken here.
//!
//! ```text
//! frame.rs    cuts frames by the u16 length prefix
//! packet.rs   CRC check, IMEI, dispatch by command, replies chosen
//! records.rs  records, extended records, DTC records
//! io.rs       IO element → raw `io<N>`; the namer deriving named twins
//! reply.rs    the exact bytes a device gets back
//! device.rs   the device side, for `trackgate simulate`
//! read.rs     the bounds-checked cursor the parsers read through
//! ```

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

pub mod device;
mod frame;
mod io;
mod packet;
mod read;
mod records;
mod reply;

#[cfg(test)]
mod encode;
#[cfg(test)]
mod tests;

use bytes::BytesMut;

use crate::protocol::{
    self, DecodeContext, Decoded, FrameError, Protocol, Rejected, SessionConfig, Transport,
};

/// Registry name; also `Position::protocol` of everything decoded here.
pub const NAME: &str = "ruptela";

/// The Ruptela protocol (registry name `ruptela`, port 5046).
pub struct Ruptela;

impl Protocol for Ruptela {
    fn name(&self) -> &'static str {
        NAME
    }
    fn default_port(&self) -> u16 {
        5046
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

/// One TCP connection. Every packet names its device, so a session keeps
/// nothing but its frame limit.
#[derive(Debug)]
pub struct Session {
    max_frame_bytes: usize,
}

impl Session {
    pub fn new(config: &SessionConfig) -> Self {
        Self {
            max_frame_bytes: config.max_frame_bytes,
        }
    }
}

impl protocol::Session for Session {
    fn frame(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        Ok(frame::next_len(buf, self.max_frame_bytes)?.map(|len| buf.split_to(len)))
    }

    fn decode(&mut self, frame: &[u8], ctx: &DecodeContext) -> Result<Decoded, Rejected> {
        packet::decode(frame, ctx)
    }
}
