//! The position pipeline: the one place every ingest path (TCP, UDP, later
//! MQTT and HTTP) hands accepted positions to. A submit returns only when
//! the positions are accepted, so replies are sent after acceptance.

use std::sync::Arc;

use crate::engine::Engine;
use crate::model::{DeviceId, Position};

/// Why positions were not accepted (the device gets no ack and resends).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("the pipeline is shutting down")]
    ShuttingDown,
}

/// Where accepted positions go.
pub struct Pipeline {
    engine: Arc<Engine>,
}

impl Pipeline {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Whether data from `device` is accepted. Every device is, until device
    /// registration arrives with the permissions work.
    pub fn admits(&self, _device: &DeviceId) -> bool {
        true
    }

    /// Accepts positions into the live engine.
    pub async fn submit(&self, positions: Vec<Position>) -> Result<(), PipelineError> {
        for p in positions {
            self.engine.update(p);
        }
        Ok(())
    }
}
