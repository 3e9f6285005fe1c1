//! TK103 (Xexun/Coban-style "TK-102B/103" and the many clones using its
//! `(…)` framing): a 12-character id and a 4-character command, positions
//! in fixed-width or comma-separated text. See `protocols/tk103.md`.
//!
//! ```text
//! frame.rs     cuts `(` … `)` frames; `)` inside `$…$` free text does not end one
//! header.rs    id and command of a frame (fixed-width or comma form) and dispatch
//! position.rs  the position report (BR00, BP05, BO01, BQ81, ZCxx, DWxx, …)
//! reports.rs   frames without a fix: battery, cells, Wi-Fi, command results, VIN
//! bms.rs       battery management system reports (BS50 binary, BS51 key:value)
//! reply.rs     the exact bytes a device gets back
//! ```

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod bms;
mod fields;
mod frame;
mod header;
mod position;
mod reply;
mod reports;

#[cfg(test)]
mod encode;
#[cfg(test)]
mod tests;

use bytes::BytesMut;
use chrono::FixedOffset;

use crate::model::Position;
use crate::protocol::{
    self, DecodeContext, Decoded, FrameError, Protocol, Rejected, SessionConfig, Transport,
};

/// Registry name; also `Position::protocol` of everything decoded here.
pub const NAME: &str = "tk103";

/// The TK103 protocol (registry name `tk103`, port 5002).
pub struct Tk103;

impl Protocol for Tk103 {
    fn name(&self) -> &'static str {
        NAME
    }
    fn default_port(&self) -> u16 {
        5002
    }
    fn transports(&self) -> &'static [Transport] {
        &[Transport::Tcp, Transport::Udp]
    }
    fn session(&self, config: &SessionConfig) -> Box<dyn protocol::Session> {
        Box::new(Session::new(config))
    }
}

/// One TCP connection or UDP peer. Every frame names its device; the
/// session remembers the last fix, which cell/Wi-Fi-only reports of the
/// same device are attached to (as an invalid fix at the last location).
#[derive(Debug)]
pub struct Session {
    max_frame_bytes: usize,
    time_zone: FixedOffset,
    last_fix: Option<Position>,
}

impl Session {
    pub fn new(config: &SessionConfig) -> Self {
        Self {
            max_frame_bytes: config.max_frame_bytes,
            time_zone: config.time_zone,
            last_fix: None,
        }
    }
}

/// What every message decoder needs besides the bytes.
pub(super) struct Ctx<'a> {
    pub received: chrono::DateTime<chrono::Utc>,
    /// Offset of the device's clock.
    pub time_zone: FixedOffset,
    /// The last fix decoded on this session.
    pub last_fix: Option<&'a Position>,
}

impl protocol::Session for Session {
    fn frame(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        frame::next(buf, self.max_frame_bytes)
    }

    fn decode(&mut self, frame: &[u8], ctx: &DecodeContext) -> Result<Decoded, Rejected> {
        let c = Ctx {
            received: ctx.received,
            time_zone: self.time_zone,
            last_fix: self.last_fix.as_ref(),
        };
        let decoded = header::decode(frame, &c)?;
        if let Some(p) = decoded.positions.iter().rev().find(|p| p.valid) {
            self.last_fix = Some(p.clone());
        }
        Ok(decoded)
    }
}
