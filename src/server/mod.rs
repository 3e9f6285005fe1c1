//! Sockets, sessions, limits and timeouts. Knows no protocol's bytes: it
//! drives a protocol `Session`, passes what it decoded to the `Pipeline`,
//! and writes the reply the session prepared for the pipeline's verdict.

pub mod http;
mod pipeline;
mod tcp;
mod udp;

pub use pipeline::{Pipeline, PipelineError};
pub use tcp::{accept as accept_tcp, bind as bind_tcp, serve_tcp};
pub use udp::serve_udp;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::ProtocolMetrics;
use crate::protocol::{Decoded, MessageKind, Protocol, SessionConfig, Verdict};

/// What every listener shares.
#[derive(Clone)]
pub struct Shared {
    pub pipeline: Arc<Pipeline>,
    /// Caps open device connections (TCP) across protocols.
    pub connections: Arc<Semaphore>,
    /// Bound on remembered UDP peers per socket.
    pub max_udp_peers: usize,
    pub idle_timeout: Duration,
    pub max_frame_bytes: usize,
    pub stop: CancellationToken,
    pub tracker: TaskTracker,
}

/// A listener's view: the shared state plus its protocol and metric handles.
#[derive(Clone)]
pub struct ListenerCtx {
    pub shared: Shared,
    pub protocol: &'static dyn Protocol,
    pub metrics: ProtocolMetrics,
    /// Per-port session settings (time zone, model); transport is set by the listener.
    pub session: SessionConfig,
}

/// The server's decision on one decoded frame.
pub(crate) struct Outcome {
    pub verdict: Verdict,
    /// Close the connection after replying (a refused login).
    pub close: bool,
}

impl ListenerCtx {
    /// Decides on a decoded frame: refuses unknown devices, submits
    /// positions and reports and waits until the pipeline accepted them.
    pub(crate) async fn judge(&self, decoded: &mut Decoded) -> Outcome {
        let pipeline = &self.shared.pipeline;
        let claimed = decoded
            .device
            .iter()
            .chain(decoded.positions.iter().map(|p| &p.device_id))
            .chain(decoded.reports.iter().map(|r| &r.device_id));
        // A frame's records nearly always share one id: look each run up once,
        // not once per record (a Teltonika packet carries up to 255).
        let mut last: Option<&crate::model::DeviceId> = None;
        for device in claimed {
            if last == Some(device) {
                continue;
            }
            last = Some(device);
            if !pipeline.admits(device, self.protocol.name()) {
                self.metrics.unknown_devices.inc();
                return Outcome {
                    verdict: Verdict::Refused,
                    close: decoded.kind == MessageKind::Login,
                };
            }
        }
        // A report without attributes (a bare heartbeat) carries nothing
        // to keep.
        decoded.reports.retain(|r| !r.attributes.is_empty());
        if decoded.positions.is_empty() && decoded.reports.is_empty() {
            return Outcome {
                verdict: Verdict::Accepted,
                close: false,
            };
        }
        let n = decoded.positions.len() as u64;
        let reports = std::mem::take(&mut decoded.reports);
        match pipeline
            .submit_records(std::mem::take(&mut decoded.positions), &reports)
            .await
        {
            Ok(()) => {
                self.metrics.positions.inc_by(n);
                self.metrics.reports.inc_by(reports.len() as u64);
                Outcome {
                    verdict: Verdict::Accepted,
                    close: false,
                }
            }
            Err(e) => {
                tracing::warn!(protocol = self.protocol.name(), error = %e, "positions not accepted; no ack sent");
                Outcome {
                    verdict: Verdict::Failed,
                    close: false,
                }
            }
        }
    }
}
