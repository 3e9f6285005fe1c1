//! The position pipeline: the one place every ingest path (TCP, UDP, later
//! MQTT and HTTP) hands accepted positions to. A submit returns only when
//! the positions are accepted, so replies are sent after acceptance.

use std::sync::Arc;

use crate::access::Directory;
use crate::engine::Engine;
use crate::model::{DeviceId, Position};
use crate::mqtt::Feed;

/// Why positions were not accepted (the device gets no ack and resends).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("the pipeline is shutting down")]
    ShuttingDown,
}

/// Where accepted positions go.
pub struct Pipeline {
    engine: Arc<Engine>,
    directory: Arc<Directory>,
    accept_unregistered: bool,
    /// The MQTT feed of accepted positions, when configured.
    feed: Option<Feed>,
}

impl Pipeline {
    /// `accept_unregistered`: take data from devices nobody registered
    /// (trials and protocol tests only; production refuses them).
    pub fn new(engine: Arc<Engine>, directory: Arc<Directory>, accept_unregistered: bool) -> Self {
        Self {
            engine,
            directory,
            accept_unregistered,
            feed: None,
        }
    }

    /// Also offers every accepted position to `feed`.
    pub fn with_feed(mut self, feed: Feed) -> Self {
        self.feed = Some(feed);
        self
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Whether data from `device` is accepted: only registered devices'
    /// data is stored and acknowledged. Others are remembered for the
    /// operator (`GET /api/v1/admin/unknown-devices`).
    pub fn admits(&self, device: &DeviceId, protocol: &'static str) -> bool {
        if self.accept_unregistered || self.directory.is_registered(device.as_str()) {
            return true;
        }
        self.directory.saw_unknown(
            device.as_str(),
            protocol,
            chrono::Utc::now().timestamp_millis(),
        );
        false
    }

    /// Accepts positions into the live engine.
    pub async fn submit(&self, positions: Vec<Position>) -> Result<(), PipelineError> {
        if let Some(feed) = &self.feed {
            positions.iter().for_each(|p| feed.offer(p));
        }
        for p in positions {
            self.engine.update(p);
        }
        Ok(())
    }
}
