//! Meitrack (MVT/T/P/TC series): `$$`-framed text messages and the binary
//! `CCC`/`CCE` batches inside the same envelope, over TCP and UDP. See
//! `protocols/meitrack.md` for the wire format, reply bytes and every
//! decision taken here.
//!
//! ```text
//! frame.rs     cuts one `$$<flag><len>,…` frame off the TCP stream
//! envelope.rs  length and sum checks, IMEI, command, payload
//! text.rs      AAA / AFF position records
//! batch.rs     CCC (fixed 52-byte records) and CCE (tagged records)
//! reader.rs    bounds-checked little-endian reads
//! names.rs     attribute names and event → alarm
//! reply.rs     the exact bytes a device gets back
//! device.rs    the tracker's side, for `trackgate simulate`
//! ```

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod batch;
mod device;
mod envelope;
mod frame;
mod names;
mod reader;
mod reply;
mod text;

#[cfg(test)]
mod encode;
#[cfg(test)]
mod tests;

use bytes::BytesMut;

use crate::model::{AttrKey, AttrValue, Attributes, Report};
use crate::protocol::{
    self, DecodeContext, DecodeError, Decoded, FrameError, MessageKind, Protocol, Rejected, Reply,
    SessionConfig, Transport,
};

/// Registry name; also `Position::protocol` of everything decoded here.
pub const NAME: &str = "meitrack";

/// The Meitrack protocol (registry name `meitrack`, port 5020).
pub struct Meitrack;

impl Protocol for Meitrack {
    fn name(&self) -> &'static str {
        NAME
    }
    fn default_port(&self) -> u16 {
        5020
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

/// One TCP connection or UDP peer. Every message names its device, so
/// nothing is remembered between frames.
#[derive(Debug)]
pub struct Session {
    max_frame_bytes: usize,
    /// Scales the hex analog battery/power readings (`protocols.meitrack.model`).
    model: Option<std::sync::Arc<str>>,
}

impl Session {
    pub fn new(config: &SessionConfig) -> Self {
        Self {
            max_frame_bytes: config.max_frame_bytes,
            model: config.model.clone(),
        }
    }
}

impl protocol::Session for Session {
    fn frame(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        frame::next(buf, self.max_frame_bytes)
    }

    fn decode(&mut self, frame: &[u8], ctx: &DecodeContext) -> Result<Decoded, Rejected> {
        let env = envelope::parse(frame).map_err(Rejected::skip)?;
        let device = env.device().map_err(Rejected::skip)?;
        match env.command {
            b"AAA" | b"AFF" => {
                let position = text::parse(&env, &device, self.model.as_deref(), ctx)
                    .map_err(Rejected::skip)?;
                let mut d = Decoded::control(MessageKind::Data, Some(device), Reply::NONE);
                d.positions.push(position);
                Ok(d)
            }
            b"CCC" => {
                let positions = batch::ccc(&env, &device, ctx).map_err(Rejected::skip)?;
                let reply = reply::ccc_ack(env.flag, &device, positions.len());
                let mut d = Decoded::control(MessageKind::Data, Some(device), reply);
                d.positions = positions;
                Ok(d)
            }
            b"CCE" => {
                let (positions, reports) =
                    batch::cce(&env, &device, ctx).map_err(Rejected::skip)?;
                let mut d = Decoded::control(MessageKind::Data, Some(device), Reply::NONE);
                d.positions = positions;
                d.reports = reports;
                Ok(d)
            }
            b"AAC" => {
                let reply = reply::aac_ack(&device);
                Ok(Decoded::control(MessageKind::Other, Some(device), reply))
            }
            b"D00" => Err(Rejected::skip(DecodeError::Unsupported {
                what: "command",
                value: "D00 (photo upload)".into(),
            })),
            other => {
                // Answers to commands the server sent (`D03,OK`, `D82,0`, …).
                let mut attributes = Attributes::new();
                let result = format!(
                    "{},{}",
                    String::from_utf8_lossy(other),
                    String::from_utf8_lossy(env.payload)
                );
                attributes.push(AttrKey::named(names::RESULT), AttrValue::Text(result));
                let mut d = Decoded::control(
                    MessageKind::CommandResponse,
                    Some(device.clone()),
                    Reply::NONE,
                );
                d.reports.push(Report {
                    device_id: device,
                    time: ctx.received,
                    protocol: NAME,
                    attributes,
                });
                Ok(d)
            }
        }
    }
}
