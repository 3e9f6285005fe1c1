//! MQTT: positions in from brokers (fleet telematics providers, OwnTracks,
//! devices publishing raw Teltonika packets) through the same pipeline as
//! TCP/UDP, and positions out as a feed for other systems.
//!
//! ```text
//! settings.rs   [mqtt] config, validated at start-up
//! payload.rs    pure: topic + payload → positions (json, owntracks, teltonika)
//! subscriber.rs one broker connection: reconnect/backoff, manual acks after acceptance
//! feed.rs       bounded publishing of accepted positions
//! ```

mod feed;
pub mod payload;
pub mod settings;
mod subscriber;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use feed::{topic, Feed};
pub use settings::MqttConfig;

use crate::metrics::Metrics;
use crate::model::Position;
use crate::server::Pipeline;

/// Why MQTT could not start.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("mqtt broker {0}: tls needs ca_file")]
    NoCa(String),
    #[error("mqtt broker {broker}: reading CA file {path}: {source}")]
    Ca {
        broker: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Starts one task per broker and, if configured, the feed publisher.
pub fn start(
    cfg: &MqttConfig,
    pipeline: Arc<Pipeline>,
    metrics: &Metrics,
    feed: Option<mpsc::Receiver<Position>>,
    stop: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), MqttError> {
    let mut feed = feed;
    for b in &cfg.brokers {
        let (client, events) = rumqttc::AsyncClient::new(subscriber::options(b)?, 256);
        if let (Some(p), true) = (
            &cfg.publish,
            cfg.publish.as_ref().is_some_and(|p| p.broker == b.name),
        ) {
            if let Some(rx) = feed.take() {
                tracker.spawn(feed::publish(
                    rx,
                    client.clone(),
                    p.clone(),
                    metrics.mqtt_published.clone(),
                    stop.clone(),
                ));
            }
        }
        tracker.spawn(subscriber::run(
            b.clone(),
            client,
            events,
            Arc::clone(&pipeline),
            metrics.clone(),
            stop.clone(),
        ));
    }
    Ok(())
}
