//! The MQTT feed: every accepted position, as trackgate JSON, published to
//! a topic per device. Bounded: while the broker is away positions wait in
//! a fixed-size buffer, and beyond it they are dropped and counted — the
//! feed never slows ingestion or grows memory without limit.

use prometheus::IntCounter;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::link::Client;
use super::settings::PublishConfig;
use crate::model::Position;

/// The pipeline's end of the feed.
#[derive(Clone)]
pub struct Feed {
    tx: mpsc::Sender<Position>,
    dropped: IntCounter,
}

impl Feed {
    /// A feed holding at most `buffer` positions.
    pub fn new(buffer: usize, dropped: IntCounter) -> (Self, mpsc::Receiver<Position>) {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        (Self { tx, dropped }, rx)
    }

    /// Queues `p` for publishing, or counts it dropped if the buffer is full.
    pub fn offer(&self, p: &Position) {
        if self.tx.try_send(p.clone()).is_err() {
            self.dropped.inc();
        }
    }
}

/// The topic for `device`: the template with `{device_id}` replaced.
pub fn topic(template: &str, device: &str) -> String {
    template.replace("{device_id}", device)
}

/// Publishes queued positions until `stop`.
pub async fn publish(
    mut rx: mpsc::Receiver<Position>,
    client: Client,
    cfg: PublishConfig,
    published: IntCounter,
    stop: CancellationToken,
) {
    loop {
        let p = tokio::select! {
            _ = stop.cancelled() => break,
            p = rx.recv() => match p { Some(p) => p, None => break },
        };
        let body = match serde_json::to_vec(&p) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "position not serialisable; not published");
                continue;
            }
        };
        let sent = tokio::select! {
            _ = stop.cancelled() => break,
            r = client.publish(topic(&cfg.topic, p.device_id.as_str()), cfg.qos, body) => r,
        };
        match sent {
            Ok(()) => published.inc(),
            Err(e) => tracing::warn!(error = %e, "feed publish not queued"),
        }
    }
}
