//! Queclink @Track (GL/GV/GB/CV series), registry name `gl200`: the text
//! protocol (`+RESP:`/`+BUFF:`/`+ACK:` … `$`), the legacy binary protocol
//! (`+RSP`/`+EVT`/`+INF`/`+ACK`/`+HBD` with a length at a fixed offset) and
//! Protocol Pro binary frames, on TCP and UDP. See `protocols/gl200.md` for
//! the wire format, reply bytes and every decision taken here.
//!
//! ```text
//! frame.rs     cuts TCP frames (text up to `$`, binary by length)
//! text.rs      text header, identity, dispatch by report type, replies
//! messages.rs  per-report-type field lists (FRI, ERI, IGN, INF, CAN, …)
//! location.rs  the GNSS block (lon before lat) and the walks over it
//! fields.rs    bounds-safe field access and number/time parsing
//! models.rs    protocol version → device model
//! binary.rs    legacy binary reports
//! pro.rs       Protocol Pro frames (CRC-8)
//! reader.rs    bounds-checked big-endian reads
//! record.rs    fix + attributes → Position / Report
//! reply.rs     the exact bytes a device gets back
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
mod location;
mod messages;
mod models;
mod pro;
mod reader;
mod record;
mod reply;
mod text;

#[cfg(test)]
mod encode;
#[cfg(test)]
mod tests;

use bytes::BytesMut;

use crate::protocol::{
    self, DecodeContext, Decoded, FrameError, Protocol, Rejected, SessionConfig, Transport,
};

use record::LastFix;

/// Registry name; also `Position::protocol` of everything decoded here.
pub const NAME: &str = "gl200";

/// The Queclink @Track protocol (registry name `gl200`, port 5004).
pub struct Gl200;

impl Protocol for Gl200 {
    fn name(&self) -> &'static str {
        NAME
    }
    fn default_port(&self) -> u16 {
        5004
    }
    fn transports(&self) -> &'static [Transport] {
        &[Transport::Tcp, Transport::Udp]
    }
    fn session(&self, config: &SessionConfig) -> Box<dyn protocol::Session> {
        Box::new(Session::new(config))
    }
}

/// What a port's `model` setting says: a device model overriding the one
/// derived from the protocol version, and/or `sack` for devices configured
/// to wait for a server acknowledgement of every message. Tokens are
/// separated by `+`, `,` or spaces: `GV350M`, `sack`, `GV350M+sack`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    pub model: Option<String>,
    pub sack: bool,
}

impl Settings {
    pub(crate) fn from_model(model: Option<&str>) -> Self {
        let mut s = Self::default();
        for token in model
            .unwrap_or_default()
            .split(['+', ',', ' '])
            .filter(|t| !t.is_empty())
        {
            if token.eq_ignore_ascii_case("sack") {
                s.sack = true;
            } else {
                s.model = Some(token.to_ascii_uppercase());
            }
        }
        s
    }
}

/// One TCP connection or UDP peer. Every message names its device, so the
/// only state is the last fix (for reports sent without one).
#[derive(Debug)]
pub struct Session {
    max_frame_bytes: usize,
    settings: Settings,
    last_fix: Option<LastFix>,
}

impl Session {
    pub fn new(config: &SessionConfig) -> Self {
        Self {
            max_frame_bytes: config.max_frame_bytes,
            settings: Settings::from_model(config.model.as_deref()),
            last_fix: None,
        }
    }
}

impl protocol::Session for Session {
    fn frame(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        frame::next(buf, self.max_frame_bytes)
    }

    fn decode(&mut self, frame: &[u8], ctx: &DecodeContext) -> Result<Decoded, Rejected> {
        if pro::is_pro(frame) {
            pro::decode(frame, ctx, &mut self.last_fix)
        } else if frame.len() >= 5 && frame::is_binary(frame) {
            binary::decode(frame, ctx, &mut self.last_fix)
        } else {
            text::decode(frame, &self.settings, ctx, &mut self.last_fix)
        }
    }
}
