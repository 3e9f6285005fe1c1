//! OsmAnd / Traccar Client: one HTTP/1.1 request per fix (GET query, form
//! POST, or the background-geolocation JSON POST), answered with an HTTP
//! response on a keep-alive connection. See `protocols/osmand.md` for the
//! parameters, replies and every decision taken here.
//!
//! ```text
//! frame.rs    cuts one request (head, then Content-Length body) off the stream
//! request.rs  the parsed request: method, target, headers, body
//! query.rs    query / form parameters → position or report
//! json.rs     background-geolocation JSON → positions
//! time.rs     unix seconds, milliseconds or ISO 8601 timestamps
//! reply.rs    the HTTP responses
//! ```

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod frame;
mod json;
mod query;
mod reply;
mod request;
mod time;

#[cfg(test)]
mod tests;

use bytes::BytesMut;

use crate::protocol::{
    self, DecodeContext, Decoded, FrameError, Protocol, Rejected, SessionConfig, Transport,
};

/// Registry name; also `Position::protocol` of everything decoded here.
pub const NAME: &str = "osmand";

/// The OsmAnd / Traccar Client (HTTP) protocol (registry name `osmand`, port 5055).
pub struct Osmand;

impl Protocol for Osmand {
    fn name(&self) -> &'static str {
        NAME
    }
    fn default_port(&self) -> u16 {
        5055
    }
    fn transports(&self) -> &'static [Transport] {
        &[Transport::Tcp]
    }
    fn session(&self, config: &SessionConfig) -> Box<dyn protocol::Session> {
        Box::new(Session::new(config))
    }
}

/// One HTTP connection. Every request names its device.
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
        let req = request::parse(frame)?;
        if req.is_json() {
            json::decode(&req, ctx)
        } else {
            query::decode(&req, ctx)
        }
    }
}
