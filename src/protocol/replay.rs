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
    /// Where the frame starts in the input (TCP: the stream; UDP: the
    /// datagrams one after another).
    pub offset: usize,
}

/// Everything a replay saw, including where the input stopped making sense.
#[derive(Debug)]
pub struct Replay {
    pub steps: Vec<Step>,
    /// The framing error that ended the stream (the server closes there).
    pub error: Option<FrameError>,
    /// Offset of the first byte not taken into a frame: the framing
    /// error's position, or the start of an incomplete last frame.
    pub stopped_at: usize,
    /// Bytes after `stopped_at` that never made a whole frame (TCP).
    pub unframed: usize,
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
    let r = replay_input(protocol, config, chunks, ctx);
    (r.steps, r.error)
}

/// [`replay_with`], also telling where in the input each frame starts and
/// where framing stopped: what `trackgate decode` reports on bad input.
pub fn replay_input<'a>(
    protocol: &dyn Protocol,
    config: &SessionConfig,
    chunks: impl IntoIterator<Item = &'a [u8]>,
    ctx: &DecodeContext,
) -> Replay {
    let transport = config.transport;
    let mut session = protocol.session(config);
    let mut steps = Vec::new();
    let mut buf = BytesMut::new();
    // Bytes fed so far; `fed - buf.len()` is the offset of `buf[0]`.
    let mut fed = 0usize;
    let mut step = |frame: Bytes, offset: usize, session: &mut dyn super::Session| {
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
            offset,
        });
        close
    };
    let mut error = None;
    'input: for chunk in chunks {
        match transport {
            Transport::Udp => {
                let offset = fed;
                fed += chunk.len();
                if step(Bytes::copy_from_slice(chunk), offset, session.as_mut()) {
                    break;
                }
            }
            Transport::Tcp => {
                buf.extend_from_slice(chunk);
                fed += chunk.len();
                loop {
                    // Where the framer starts: skipped bytes count as the frame's.
                    let offset = fed - buf.len();
                    match session.frame(&mut buf) {
                        Ok(Some(frame)) => {
                            if step(frame.freeze(), offset, session.as_mut()) {
                                break 'input;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            error = Some(e);
                            break 'input;
                        }
                    }
                }
            }
        }
    }
    Replay {
        steps,
        error,
        stopped_at: fed - buf.len(),
        unframed: buf.len(),
    }
}
