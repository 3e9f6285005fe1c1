//! TCP: an accept loop per protocol and a task per connection. A connection
//! reads one frame, decodes it, waits for the pipeline's verdict and writes
//! the reply before it reads the next frame — so replies keep frame order
//! and a slow store slows the device down instead of buffering without end.

use std::net::SocketAddr;
use std::time::Instant;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::FramedRead;

use super::ListenerCtx;
use crate::protocol::{DecodeContext, FrameCodec, SessionConfig, Transport};

/// Accepts connections on `listener` until the stop token fires.
pub async fn serve_tcp(listener: TcpListener, ctx: ListenerCtx) {
    let stop = ctx.shared.stop.clone();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and similar: back off briefly.
                tracing::warn!(protocol = ctx.protocol.name(), error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = ctx.shared.connections.clone().try_acquire_owned() else {
            ctx.metrics.connections_refused.inc();
            tracing::warn!(protocol = ctx.protocol.name(), %peer, "max_connections reached; connection closed");
            drop(stream);
            continue;
        };
        let c = ctx.clone();
        ctx.shared.tracker.spawn(async move {
            c.metrics.connections.inc();
            serve_connection(stream, peer, &c).await;
            c.metrics.connections.dec();
            drop(permit);
        });
    }
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, ctx: &ListenerCtx) {
    let _ = stream.set_nodelay(true);
    let protocol = ctx.protocol.name();
    let config = SessionConfig {
        transport: Transport::Tcp,
        max_frame_bytes: ctx.shared.max_frame_bytes,
        ..ctx.session.clone()
    };
    let (rd, mut wr) = stream.into_split();
    let mut frames = FramedRead::with_capacity(
        rd,
        FrameCodec {
            session: ctx.protocol.session(&config),
        },
        4096,
    );
    let stop = &ctx.shared.stop;
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => break,
            r = tokio::time::timeout(ctx.shared.idle_timeout, frames.next()) => r,
        };
        let frame = match next {
            Err(_) => {
                tracing::debug!(protocol, %peer, "idle timeout; closing");
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                ctx.metrics.decode_error(e.kind());
                tracing::info!(protocol, %peer, error = %e, "framing failed; closing");
                break;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let started = Instant::now();
        ctx.metrics.frames.inc();
        let decoded = frames
            .decoder_mut()
            .session
            .decode(&frame, &DecodeContext::now());
        let (reply, close) = match decoded {
            Ok(mut d) => {
                let outcome = ctx.judge(&mut d).await;
                (d.reply.for_verdict(outcome.verdict).cloned(), outcome.close)
            }
            Err(rejected) => {
                ctx.metrics.decode_error(rejected.error.kind());
                tracing::info!(protocol, %peer, error = %rejected.error, "frame rejected");
                (rejected.reply, rejected.close)
            }
        };
        if let Some(bytes) = reply {
            if let Err(e) = wr.write_all(&bytes).await {
                tracing::debug!(protocol, %peer, error = %e, "write failed; closing");
                break;
            }
            ctx.metrics
                .ack_latency
                .observe(started.elapsed().as_secs_f64());
        }
        if close {
            break;
        }
    }
    let _ = wr.shutdown().await;
}
