//! The MQTT feed: every accepted position, and every report (a record
//! without a fix: an alarm sent without GPS, a status), as trackgate JSON,
//! each kind published to a topic per device. Bounded: while the broker is
//! away they wait in a fixed-size buffer, and beyond it they are dropped and
//! counted — the feed never slows ingestion or grows memory without limit.

use prometheus::IntCounter;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::link::Client;
use super::settings::PublishConfig;
use crate::model::{Position, Report};

/// One record to publish.
#[derive(Debug)]
pub enum Item {
    Position(Position),
    Report(Report),
}

/// The pipeline's end of the feed.
#[derive(Clone)]
pub struct Feed {
    tx: mpsc::Sender<Item>,
    dropped: IntCounter,
}

impl Feed {
    /// A feed holding at most `buffer` records.
    pub fn new(buffer: usize, dropped: IntCounter) -> (Self, mpsc::Receiver<Item>) {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        (Self { tx, dropped }, rx)
    }

    /// Queues `p` for publishing, or counts it dropped if the buffer is full.
    pub fn offer(&self, p: &Position) {
        self.queue(Item::Position(p.clone()));
    }

    /// Queues `r` for publishing on the reports topic, or counts it dropped.
    pub fn offer_report(&self, r: &Report) {
        self.queue(Item::Report(r.clone()));
    }

    fn queue(&self, item: Item) {
        if self.tx.try_send(item).is_err() {
            self.dropped.inc();
        }
    }
}

/// The topic for `device`: the template with `{device_id}` replaced.
pub fn topic(template: &str, device: &str) -> String {
    template.replace("{device_id}", device)
}

/// Publishes queued records until `stop`.
pub async fn publish(
    mut rx: mpsc::Receiver<Item>,
    client: Client,
    cfg: PublishConfig,
    published: IntCounter,
    stop: CancellationToken,
) {
    loop {
        let item = tokio::select! {
            _ = stop.cancelled() => break,
            item = rx.recv() => match item { Some(item) => item, None => break },
        };
        let (topic, body) = match &item {
            Item::Position(p) => (
                topic(&cfg.topic, p.device_id.as_str()),
                serde_json::to_vec(p),
            ),
            Item::Report(r) => (
                topic(&cfg.reports_topic, r.device_id.as_str()),
                serde_json::to_vec(r),
            ),
        };
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "record not serialisable; not published");
                continue;
            }
        };
        let sent = tokio::select! {
            _ = stop.cancelled() => break,
            r = client.publish(topic, cfg.qos, body) => r,
        };
        match sent {
            Ok(()) => published.inc(),
            Err(e) => tracing::warn!(error = %e, "feed publish not queued"),
        }
    }
}
