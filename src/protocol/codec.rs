//! Adapter from a protocol `Session` to a `tokio_util` decoder, so the
//! server reads frames with `FramedRead` and hands them back to the same
//! session to decode.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use super::{FrameError, Session};

/// A `Decoder` that cuts frames with a protocol session's framer.
pub struct FrameCodec {
    pub session: Box<dyn Session>,
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        self.session.frame(src)
    }
}
