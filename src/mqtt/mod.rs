//! MQTT: positions in from brokers (fleet telematics providers, OwnTracks,
//! devices publishing raw Teltonika packets) through the same pipeline as
//! TCP/UDP, and positions out as a feed for other systems.
//!
//! ```text
//! settings.rs   [mqtt] config, validated at start-up
//! payload.rs    pure: topic + payload → positions (json, owntracks, teltonika)
//! link.rs       a broker connection in MQTT 3.1.1 or 5 (rumqttc), one interface
//! subscriber.rs one broker connection: reconnect/backoff, manual acks after acceptance
//! feed.rs       bounded publishing of accepted positions
//! ```

mod feed;
mod link;
pub mod payload;
pub mod settings;
mod subscriber;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use feed::{topic, Feed};
pub use settings::{BrokerConfig, MqttConfig};

use crate::metrics::Metrics;
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
    feed: Option<mpsc::Receiver<feed::Item>>,
    stop: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), MqttError> {
    for b in &cfg.brokers {
        let (client, events) = link::connect(b)?;
        tracker.spawn(subscriber::run(
            b.clone(),
            client,
            events,
            Arc::clone(&pipeline),
            metrics.clone(),
            stop.clone(),
        ));
    }
    // The feed publishes over a connection of its own: a broker that is away
    // fills the feed's request queue, never the one the subscriber's acks use.
    if let (Some(p), Some(rx)) = (&cfg.publish, feed) {
        if let Some(b) = cfg.brokers.iter().find(|b| b.name == p.broker) {
            let b = BrokerConfig {
                name: format!("{}:feed", b.name),
                client_id: format!("{}-feed", b.client_id),
                clean_session: true,
                subscriptions: Vec::new(),
                ..b.clone()
            };
            let (client, events) = link::connect(&b)?;
            tracker.spawn(feed::publish(
                rx,
                client.clone(),
                p.clone(),
                metrics.mqtt_published.clone(),
                stop.clone(),
            ));
            tracker.spawn(subscriber::run(
                b,
                client,
                events,
                Arc::clone(&pipeline),
                metrics.clone(),
                stop.clone(),
            ));
        }
    }
    Ok(())
}
