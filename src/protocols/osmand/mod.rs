//! OsmAnd / Traccar Client (HTTP). Not implemented yet: every frame is refused, so no device
//! is ever acknowledged for data we did not decode.

use bytes::BytesMut;

use crate::protocol::{
    self, DecodeContext, DecodeError, Decoded, FrameError, Protocol, Rejected, SessionConfig,
    Transport,
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
    fn session(&self, _config: &SessionConfig) -> Box<dyn protocol::Session> {
        Box::new(Session)
    }
}

/// One connection or UDP peer.
#[derive(Debug)]
pub struct Session;

impl protocol::Session for Session {
    fn frame(&mut self, _buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        Err(FrameError::Garbage("osmand is not implemented".into()))
    }

    fn decode(&mut self, _frame: &[u8], _ctx: &DecodeContext) -> Result<Decoded, Rejected> {
        Err(Rejected::fatal(DecodeError::Unsupported {
            what: "protocol",
            value: NAME.into(),
        }))
    }
}
