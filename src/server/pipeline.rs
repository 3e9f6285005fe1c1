//! The position pipeline: the one place every ingest path (TCP, UDP, MQTT,
//! HTTP) hands accepted positions to. A submit returns only when the
//! positions are accepted — committed to the history with `ack = "durable"` —
//! so replies are sent after acceptance.

use std::sync::Arc;

use crate::access::Directory;
use crate::config::AckMode;
use crate::engine::Engine;
use crate::history::{History, HistoryError};
use crate::model::{DeviceId, Position, Report};
use crate::mqtt::Feed;

/// Why positions were not accepted (the device gets no ack and resends).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("the pipeline is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Storage(#[from] HistoryError),
}

/// Where accepted positions go.
pub struct Pipeline {
    engine: Arc<Engine>,
    directory: Arc<Directory>,
    accept_unregistered: bool,
    /// The MQTT feed of accepted positions, when configured.
    feed: Option<Feed>,
    /// Durable history, and whether submit waits for its commit.
    history: Option<(History, AckMode)>,
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
            history: None,
        }
    }

    /// Stores every accepted position in `history`; with `AckMode::Durable`
    /// `submit` returns only after the commit.
    pub fn with_history(mut self, history: History, ack: AckMode) -> Self {
        self.history = Some((history, ack));
        self
    }

    /// Also offers every accepted position and report to `feed`.
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
    /// With durable history, returns only when the positions are committed;
    /// on a storage failure nothing reaches the engine or the feed and the
    /// caller must not ack (the device keeps its records and resends).
    pub async fn submit(&self, positions: Vec<Position>) -> Result<(), PipelineError> {
        self.submit_records(positions, &[]).await
    }

    /// [`submit`](Self::submit) with the frame's reports (records without a
    /// fix: alarms, cell lists, status), which are stored in the history
    /// beside the positions — a device deletes them once acked as well —
    /// but never become a latest position.
    pub async fn submit_records(
        &self,
        positions: Vec<Position>,
        reports: &[Report],
    ) -> Result<(), PipelineError> {
        if let Some((h, ack)) = &self.history {
            h.append_records(&positions, reports, *ack).await?;
        }
        if let Some(feed) = &self.feed {
            positions.iter().for_each(|p| feed.offer(p));
            reports.iter().for_each(|r| feed.offer_report(r));
        }
        for r in reports {
            self.engine.publish_report(r);
        }
        self.engine.update_all(positions);
        Ok(())
    }
}
