//! Teltonika (FMB/FMC/FMM/FMT, GH3000…): TCP IMEI login + AVL packets (codec
//! 8, 8E, 16, GH3000 = 7, and the 12/13 command responses), UDP datagrams
//! carrying the same AVL data. See `protocols/teltonika.md` for the wire
//! format, reply bytes and every decision taken here.
//!
//! ```text
//! frame.rs   cuts TCP frames (IMEI packet, AVL packet, 0xFF keepalive)
//! tcp.rs     login, AVL packet checks (length, CRC) and replies over TCP
//! udp.rs     the UDP datagram header and its reply
//! avl.rs     the AVL data field: codec, counts, records (nom)
//! gh3000.rs  codec 7 records (masks, floats, 2007 epoch)
//! command.rs codec 12/13 responses and camera packets
//! io.rs      IO element → raw `io<N>` attribute; namers deriving named ones
//! ble.rs     BLE beacon / tag lists inside variable-length IO elements
//! reply.rs   the exact bytes a device gets back
//! device.rs  the device side, for `trackgate simulate`
//! ```

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod avl;
mod ble;
mod command;
pub mod device;
mod frame;
mod gh3000;
mod io;
mod reply;
mod tcp;
mod udp;

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
pub const NAME: &str = "teltonika";

/// The Teltonika protocol (registry name `teltonika`, port 5027).
pub struct Teltonika;

impl Protocol for Teltonika {
    fn name(&self) -> &'static str {
        NAME
    }
    fn default_port(&self) -> u16 {
        5027
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

/// One TCP connection or one UDP peer. Over TCP it remembers the IMEI the
/// device logged in with; over UDP every datagram names its device.
#[derive(Debug)]
pub struct Session {
    transport: Transport,
    max_frame_bytes: usize,
    device: Option<DeviceId>,
}

impl Session {
    pub fn new(config: &SessionConfig) -> Self {
        Self {
            transport: config.transport,
            max_frame_bytes: config.max_frame_bytes,
            device: None,
        }
    }

    /// The IMEI this TCP session logged in with.
    pub fn device(&self) -> Option<&DeviceId> {
        self.device.as_ref()
    }
}

/// Decodes one complete TCP AVL packet (`00000000`, length, data, CRC) for
/// `device` without a login: for transports that name the device elsewhere
/// (an MQTT topic). Same checks and records as over TCP.
pub fn decode_avl_packet(
    device: &DeviceId,
    packet: &[u8],
    ctx: &DecodeContext,
) -> Result<Decoded, Rejected> {
    match packet {
        [0, 0, 0, 0, ..] => tcp::avl_packet(device, packet, ctx),
        _ => Err(Rejected::skip(protocol::DecodeError::Malformed {
            what: "AVL packet preamble",
            offset: 0,
        })),
    }
}

impl protocol::Session for Session {
    fn frame(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        Ok(frame::next_len(buf, self.max_frame_bytes)?.map(|len| buf.split_to(len)))
    }

    fn decode(&mut self, frame: &[u8], ctx: &DecodeContext) -> Result<Decoded, Rejected> {
        match self.transport {
            Transport::Tcp => tcp::decode(&mut self.device, frame, ctx),
            Transport::Udp => udp::decode(frame, ctx),
        }
    }
}
