//! The pure replay driver: feed bytes through a session exactly as the
//! server does, without sockets, and collect each frame's outcome and reply.

use bytes::{Bytes, BytesMut};

use super::{
    DecodeContext, Decoded, FrameError, Protocol, Rejected, SessionConfig, Transport, Verdict,
};

/// One frame's journey through a session.
#[derive(Debug, Clone)]
pub struct Step {
    pub frame: Bytes,
    pub outcome: Result<Decoded, Rejected>,
    /// What the server would send back, given every device is accepted.
    pub reply: Option<Bytes>,
}

/// Feeds `chunks` (TCP: stream segments; UDP: datagrams) through a fresh
/// session and returns every frame's step. A framing error ends the replay
/// with the steps so far in `Err`'s companion: the server closes there too.
pub fn replay<'a>(
    protocol: &dyn Protocol,
    transport: Transport,
    chunks: impl IntoIterator<Item = &'a [u8]>,
    ctx: &DecodeContext,
) -> (Vec<Step>, Option<FrameError>) {
    replay_with(protocol, &SessionConfig::new(transport), chunks, ctx)
}

/// [`replay`] with a session configured as a listener would (model, time zone).
pub fn replay_with<'a>(
    protocol: &dyn Protocol,
    config: &SessionConfig,
    chunks: impl IntoIterator<Item = &'a [u8]>,
    ctx: &DecodeContext,
) -> (Vec<Step>, Option<FrameError>) {
    let transport = config.transport;
    let mut session = protocol.session(config);
    let mut steps = Vec::new();
    let mut buf = BytesMut::new();
    let mut step = |frame: Bytes, session: &mut dyn super::Session| {
        let outcome = session.decode(&frame, ctx);
        let reply = match &outcome {
            Ok(d) => d.reply.for_verdict(Verdict::Accepted).cloned(),
            Err(r) => r.reply.clone(),
        };
        let close = matches!(&outcome, Err(r) if r.close);
        steps.push(Step {
            frame,
            outcome,
            reply,
        });
        close
    };
    for chunk in chunks {
        match transport {
            Transport::Udp => {
                if step(Bytes::copy_from_slice(chunk), session.as_mut()) {
                    break;
                }
            }
            Transport::Tcp => {
                buf.extend_from_slice(chunk);
                loop {
                    match session.frame(&mut buf) {
                        Ok(Some(frame)) => {
                            if step(frame.freeze(), session.as_mut()) {
                                return (steps, None);
                            }
                        }
                        Ok(None) => break,
                        Err(e) => return (steps, Some(e)),
                    }
                }
            }
        }
    }
    (steps, None)
}
