//! The access-log writer: one task that drains every queued entry, commits
//! them at once (one frame and one fsync in the store's journal) and then
//! releases every waiter. A read that serves partner data awaits its
//! entry's commit before the response leaves, so no answer is ever sent without its log entry, and
//! the log does not cap throughput: concurrent reads share a commit.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::metrics::AccessLogMetrics;
use crate::store::{LogEntry, Store};

/// Entries after which the writer stops gathering and commits (a request
/// with many entries may carry the batch past it).
const MAX_BATCH: usize = 1024;

/// Why an entry could not be logged (the data must then not be served).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    #[error("access log unavailable: {0}")]
    Store(String),
    #[error("access log writer stopped")]
    Stopped,
}

struct Request {
    entries: Vec<LogEntry>,
    done: Done,
}

/// Where a request's entry ids (or the commit's error) are answered.
type Done = oneshot::Sender<Result<Vec<i64>, LogError>>;

/// Handle to the writer task.
#[derive(Clone)]
pub struct AccessLog {
    tx: mpsc::Sender<Request>,
    metrics: AccessLogMetrics,
}

impl AccessLog {
    /// Starts the writer on `store`. It stops when every handle is dropped.
    pub fn spawn(store: Arc<dyn Store>, metrics: AccessLogMetrics) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(4096);
        let (release, released) = mpsc::unbounded_channel();
        tokio::spawn(relay(released));
        crate::dedicated::spawn("access-log", writer(store, rx, release, metrics.clone()))?;
        Ok(Self { tx, metrics })
    }

    /// Appends `entries` durably; returns their ids once committed.
    pub async fn append(&self, entries: Vec<LogEntry>) -> Result<Vec<i64>, LogError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let t = Instant::now();
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request { entries, done })
            .await
            .map_err(|_| LogError::Stopped)?;
        let committed = wait.await.map_err(|_| LogError::Stopped)?;
        self.metrics.wait_seconds.observe(t.elapsed().as_secs_f64());
        committed
    }

    /// Queues an entry without waiting for its commit (denied attempts:
    /// nothing is served). While the queue is full — the log stalls under
    /// a flood of refused requests — the entry is dropped and counted
    /// rather than held in memory without bound.
    pub fn append_detached(&self, entry: LogEntry) {
        let (done, _) = oneshot::channel();
        let request = Request {
            entries: vec![entry],
            done,
        };
        if self.tx.try_send(request).is_err() {
            self.metrics.dropped.inc();
            let n = self.metrics.dropped.get();
            if n == 1 || n % 1000 == 0 {
                tracing::warn!(
                    dropped = n,
                    "access-log queue full: security log entries dropped"
                );
            }
        }
    }

    /// Security log entries dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.metrics.dropped.get()
    }
}

/// One commit's answers, released together.
type Answers = Vec<(Done, Result<Vec<i64>, LogError>)>;

/// Releases each commit's waiters from a runtime task. Woken from the
/// writer's own thread, every waiting request went through tokio's shared
/// inject queue; released from a worker, they go to its run queue.
async fn relay(mut released: mpsc::UnboundedReceiver<Answers>) {
    while let Some(answers) = released.recv().await {
        answer(answers);
    }
}

fn answer(answers: Answers) {
    for (done, result) in answers {
        let _ = done.send(result);
    }
}

async fn writer(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Request>,
    release: mpsc::UnboundedSender<Answers>,
    metrics: AccessLogMetrics,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut n = batch[0].entries.len();
        while n < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => {
                    n += r.entries.len();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let lens: Vec<usize> = batch.iter().map(|r| r.entries.len()).collect();
        let all: Vec<LogEntry> = batch
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.entries))
            .collect();
        // The writer owns its thread (see `dedicated`): commit right here.
        let t = Instant::now();
        let count = all.len() as u64;
        let result = match store.append_log_blocking(&all) {
            Some(r) => r,
            None => store.append_log(all).await,
        };
        metrics.commit_seconds.observe(t.elapsed().as_secs_f64());
        let answers: Answers = match result {
            Ok(ids) => {
                metrics.entries.inc_by(count);
                let mut ids = ids.into_iter();
                batch
                    .into_iter()
                    .zip(lens)
                    .map(|(r, len)| (r.done, Ok(ids.by_ref().take(len).collect())))
                    .collect()
            }
            Err(e) => {
                metrics.errors.inc();
                tracing::error!(error = %e, "access log commit failed; reads are refused until it recovers");
                let e = LogError::Store(e.to_string());
                batch
                    .into_iter()
                    .map(|r| (r.done, Err(e.clone())))
                    .collect()
            }
        };
        if let Err(mpsc::error::SendError(answers)) = release.send(answers) {
            // The runtime is gone: answer from here.
            answer(answers);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stalled writer (nobody drains the queue): detached entries beyond
    /// the queue's bound are dropped and counted, not held.
    #[tokio::test]
    async fn detached_entries_never_queue_without_bound() {
        let (tx, mut rx) = mpsc::channel(2);
        let log = AccessLog {
            tx,
            metrics: AccessLogMetrics::detached(),
        };
        for n in 0..5 {
            log.append_detached(LogEntry {
                event: format!("denied {n}"),
                ..LogEntry::default()
            });
        }
        assert_eq!(log.dropped(), 3);
        let queued: Vec<String> = [rx.recv().await, rx.recv().await]
            .into_iter()
            .flatten()
            .map(|r| r.entries[0].event.clone())
            .collect();
        assert_eq!(queued, ["denied 0", "denied 1"]);
        assert!(rx.try_recv().is_err());
    }
}
