//! TCP: an accept loop per protocol and a task per connection. A connection
//! reads one frame, decodes it, waits for the pipeline's verdict and writes
//! the reply before it reads the next frame — so replies keep frame order
//! and a slow store slows the device down instead of buffering without end.

use std::net::SocketAddr;
use std::time::Instant;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::codec::FramedRead;

use super::ListenerCtx;
use crate::protocol::{DecodeContext, FrameCodec, SessionConfig, Transport};

/// Connections the kernel may hold waiting for `accept` (capped by
/// `net.core.somaxconn`). Trackers reconnect together after a gateway
/// restart or a cellular outage, partners' pollers after an API restart;
/// `TcpListener::bind` asks for 128, and SYNs beyond the queue are dropped,
/// each such client retrying a second or more later.
const BACKLOG: u32 = 4096;

/// Binds a listener on `addr` with room for a reconnection storm.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restart may rebind at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// The next connection on `listener` (device or HTTP, named `what` in the
/// log), or `None` once `stop` fires. A failed accept (out of file
/// descriptors and similar) is logged and retried after a short pause.
pub async fn accept(
    listener: &TcpListener,
    stop: &tokio_util::sync::CancellationToken,
    what: &str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return None,
            r = listener.accept() => r,
        };
        match accepted {
            Ok(x) => return Some(x),
            Err(e) => {
                tracing::warn!(listener = what, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Accepts connections on `listener` until the stop token fires.
pub async fn serve_tcp(listener: TcpListener, ctx: ListenerCtx) {
    let stop = ctx.shared.stop.clone();
    while let Some((stream, peer)) = accept(&listener, &stop, ctx.protocol.name()).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A storm of connections nobody accepts yet all complete: the queue
    /// holds them. With `TcpListener::bind`'s 128 the 130th would hang in
    /// its handshake (the kernel drops its SYN).
    #[tokio::test]
    async fn the_accept_queue_holds_a_reconnection_storm() {
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4096);
        // Below this test process's usual limit of 1024 descriptors.
        let storm = 600.min(somaxconn);
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let connected = tokio::task::spawn_blocking(move || {
            (0..storm)
                .map(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(connected.len(), storm);
        // And they are served once accepted, in order of arrival.
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, connected[0].local_addr().unwrap());
    }
}
