//! UDP: one receiving task per socket. Each datagram is one frame;
//! sessions are kept per peer address (some protocols log in once) and
//! expire when idle. The peer table is bounded by `max_udp_peers`.
//!
//! A datagram carrying positions is acked only after its commit (a
//! millisecond or more with durable history), so it is judged and answered
//! by a task of its own: the socket goes on receiving for every other
//! device meanwhile. Up to [`IN_FLIGHT`] such datagrams wait at once; past
//! that the receiving task waits too, and the kernel's buffer, then the
//! devices' resends, take the excess — memory stays bounded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

use super::ListenerCtx;
use crate::protocol::{DecodeContext, Session, SessionConfig, Transport};

/// Largest datagram read; UDP payloads cannot be larger.
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams per socket waiting for their positions' commit at once.
const IN_FLIGHT: usize = 4096;

struct Peer {
    session: Box<dyn Session>,
    last_seen: Instant,
}

/// Serves datagrams on `socket` until the stop token fires.
pub async fn serve_udp(socket: UdpSocket, ctx: ListenerCtx) {
    let (socket, ctx) = (Arc::new(socket), Arc::new(ctx));
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let protocol = ctx.protocol.name();
    let config = SessionConfig {
        transport: Transport::Udp,
        max_frame_bytes: ctx.shared.max_frame_bytes,
        ..ctx.session.clone()
    };
    let mut peers: HashMap<SocketAddr, Peer> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let idle = ctx.shared.idle_timeout;
    let mut last_sweep = Instant::now();
    let stop = ctx.shared.stop.clone();
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => break,
            r = socket.recv_from(&mut buf) => r,
        };
        let (n, peer) = match received {
            Ok(x) => x,
            Err(e) => {
                // ICMP port-unreachable from an earlier send surfaces here on some systems.
                tracing::debug!(protocol, error = %e, "udp receive failed");
                continue;
            }
        };
        let started = Instant::now();
        ctx.metrics.frames.inc();
        let Some(datagram) = buf.get(..n) else {
            continue;
        };
        if n > ctx.shared.max_frame_bytes {
            ctx.metrics.decode_error("frame_too_large");
            continue;
        }
        if last_sweep.elapsed() > idle / 4 {
            peers.retain(|_, p| p.last_seen.elapsed() < idle);
            last_sweep = Instant::now();
        }
        if !peers.contains_key(&peer) && peers.len() >= ctx.shared.max_udp_peers {
            // Bounded: drop the longest-idle peer rather than grow.
            if let Some(oldest) = peers
                .iter()
                .min_by_key(|(_, p)| p.last_seen)
                .map(|(a, _)| *a)
            {
                peers.remove(&oldest);
            }
        }
        let entry = peers.entry(peer).or_insert_with(|| Peer {
            session: ctx.protocol.session(&config),
            last_seen: started,
        });
        entry.last_seen = started;
        let decoded = entry.session.decode(datagram, &DecodeContext::now());
        let reply = match decoded {
            Ok(mut d) if !d.positions.is_empty() => {
                let permit = tokio::select! {
                    _ = stop.cancelled() => break,
                    p = Arc::clone(&in_flight).acquire_owned() => p,
                };
                let Ok(permit) = permit else { break };
                let (socket, ctx) = (Arc::clone(&socket), Arc::clone(&ctx));
                ctx.shared.tracker.clone().spawn(async move {
                    let outcome = ctx.judge(&mut d).await;
                    let reply = d.reply.for_verdict(outcome.verdict);
                    send(&socket, &ctx, reply.map(|r| &r[..]), peer, started).await;
                    drop(permit);
                });
                continue;
            }
            // No positions (a login, a keepalive): nothing to wait for.
            Ok(mut d) => {
                let outcome = ctx.judge(&mut d).await;
                d.reply.for_verdict(outcome.verdict).cloned()
            }
            Err(rejected) => {
                ctx.metrics.decode_error(rejected.error.kind());
                tracing::info!(protocol, %peer, error = %rejected.error, "datagram rejected");
                rejected.reply
            }
        };
        send(&socket, &ctx, reply.as_deref(), peer, started).await;
    }
}

/// Sends `reply` (if any) to `peer`, timing the ack from `started`.
async fn send(
    socket: &UdpSocket,
    ctx: &ListenerCtx,
    reply: Option<&[u8]>,
    peer: SocketAddr,
    started: Instant,
) {
    let Some(bytes) = reply else { return };
    if let Err(e) = socket.send_to(bytes, peer).await {
        tracing::debug!(protocol = ctx.protocol.name(), %peer, error = %e, "udp send failed");
    } else {
        ctx.metrics
            .ack_latency
            .observe(started.elapsed().as_secs_f64());
    }
}
