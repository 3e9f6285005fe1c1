//! H02. Not implemented yet: every frame is refused, so no device
//! is ever acknowledged for data we did not decode.

use bytes::BytesMut;

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
    fn session(&self, _config: &SessionConfig) -> Box<dyn protocol::Session> {
        Box::new(Session)
    }
}

/// One connection or UDP peer.
#[derive(Debug)]
pub struct Session;

impl protocol::Session for Session {
    fn frame(&mut self, _buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        Err(FrameError::Garbage("h02 is not implemented".into()))
    }

    fn decode(&mut self, _frame: &[u8], _ctx: &DecodeContext) -> Result<Decoded, Rejected> {
        Err(Rejected::fatal(DecodeError::Unsupported {
            what: "protocol",
            value: NAME.into(),
        }))
    }
}
