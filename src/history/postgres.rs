//! The shared history backend: PostgreSQL, for several gateway nodes
//! writing one history. Same contract as the embedded one: one writer task
//! per node gathers what arrives within [`GATHER`](super::GATHER) (at most [`MAX_BATCH`](super::MAX_BATCH)
//! records) into one `INSERT … ON CONFLICT DO NOTHING` — one commit, which
//! PostgreSQL makes durable before it answers (`synchronous_commit` on, its
//! default) — and only then releases the waiting acks. A few batches
//! commit concurrently, each on its own pooled connection.
//!
//! The unique key (device, fix time, coordinates) stores a resent record
//! once, whichever node took it. `latest` holds each device's newest row
//! and is updated in the same statement, so a start-up reads one row per
//! device; its foreign key drops the entry when retention purges that row.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use super::segment::RowRef;
use super::{gather, Done, Encoded, Gathered, Request, StoredRow, QUEUE};
use super::{page_from_rows, Backend, Faults, HistoryError, Page, Range, StorageHealth};
use crate::model::Position;

/// Schema versions, applied in order under an advisory lock (nodes may
/// start together); `trackgate_history_schema` records the last.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE positions (
        id          BIGSERIAL PRIMARY KEY,
        device_id   TEXT             NOT NULL,
        fix_ms      BIGINT           NOT NULL,
        received_ms BIGINT           NOT NULL,
        lat         DOUBLE PRECISION NOT NULL,
        lon         DOUBLE PRECISION NOT NULL,
        altitude_m  DOUBLE PRECISION NOT NULL,
        speed_kmh   DOUBLE PRECISION NOT NULL,
        course_deg  DOUBLE PRECISION NOT NULL,
        satellites  INTEGER,
        valid       BOOLEAN          NOT NULL,
        protocol    TEXT             NOT NULL,
        attributes  TEXT             NOT NULL,
        UNIQUE (device_id, fix_ms, lat, lon)
    );
    CREATE INDEX positions_received ON positions (received_ms);
    CREATE TABLE latest (
        device_id   TEXT   PRIMARY KEY,
        position_id BIGINT NOT NULL REFERENCES positions (id) ON DELETE CASCADE,
        fix_ms      BIGINT NOT NULL
    );
    CREATE INDEX latest_position ON latest (position_id);
"];

/// Arbitrary, fixed: the advisory lock key migrations run under.
const MIGRATION_LOCK: i64 = 0x7472_6163_6b67_6174;

const COLUMNS: &str = "device_id, fix_ms, received_ms, lat, lon, altitude_m, speed_kmh, \
                       course_deg, satellites, valid, protocol, attributes";

/// Rows as parallel arrays into `UNNEST`: one statement for the batch; the
/// rows that went in (not duplicates) update `latest` in the same commit,
/// except fixes stamped more than `MAX_FIX_AHEAD_MS` (90,000,000 ms) after
/// their receipt and reports (latitude NaN, which PostgreSQL holds equal
/// to itself and above every number).
const INSERT: &str = "WITH ins AS (
        INSERT INTO positions (device_id, fix_ms, received_ms, lat, lon, altitude_m, speed_kmh,
                               course_deg, satellites, valid, protocol, attributes)
        SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::float8[], $5::float8[],
                             $6::float8[], $7::float8[], $8::float8[], $9::int4[], $10::bool[],
                             $11::text[], $12::text[])
        ON CONFLICT DO NOTHING
        RETURNING id, device_id, fix_ms, received_ms, lat
    )
    INSERT INTO latest (device_id, position_id, fix_ms)
    SELECT DISTINCT ON (device_id) device_id, id, fix_ms FROM ins
    WHERE fix_ms <= received_ms + 90000000 AND lat <> 'NaN'::float8
    ORDER BY device_id, fix_ms DESC, id DESC
    ON CONFLICT (device_id) DO UPDATE SET position_id = excluded.position_id,
        fix_ms = excluded.fix_ms
    WHERE excluded.fix_ms > latest.fix_ms";

const _: () = assert!(
    crate::model::MAX_FIX_AHEAD_MS == 90_000_000,
    "INSERT spells it out"
);

/// History in PostgreSQL.
pub struct Postgres {
    pool: PgPool,
    tx: mpsc::Sender<Request>,
}

impl From<sqlx::Error> for HistoryError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(format!("postgres: {e}"))
    }
}

impl Postgres {
    /// Connects to `url`, migrates, and starts the writer task.
    pub async fn open(
        url: &str,
        metrics: crate::metrics::HistoryMetrics,
        health: Arc<StorageHealth>,
        faults: Arc<Faults>,
    ) -> Result<Self, HistoryError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await?;
        migrate(&pool).await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run_writer(pool.clone(), rx, metrics, health, faults));
        Ok(Self { pool, tx })
    }

    async fn request(&self, r: Request) -> Result<(), HistoryError> {
        self.tx.send(r).await.map_err(|_| HistoryError::Stopped)
    }
}

async fn migrate(pool: &PgPool) -> Result<(), HistoryError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS trackgate_history_schema (version INTEGER NOT NULL)")
        .execute(&mut *tx)
        .await?;
    let version: Option<i32> =
        sqlx::query_scalar("SELECT MAX(version) FROM trackgate_history_schema")
            .fetch_one(&mut *tx)
            .await?;
    let start = usize::try_from(version.unwrap_or(0)).unwrap_or(usize::MAX);
    if start > MIGRATIONS.len() {
        return Err(HistoryError::Storage(format!(
            "postgres history has schema version {start}, newer than this trackgate knows"
        )));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(start) {
        sqlx::raw_sql(m).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO trackgate_history_schema (version) VALUES ($1)")
            .bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Commits in flight at once. A PostgreSQL commit of a full batch takes
/// ~20 ms here (mostly server CPU); one at a time capped a node at ~25k
/// records/s while the server had cores and connections to spare.
const IN_FLIGHT: u32 = 4;

/// Gathers batches and commits each in one statement, up to [`IN_FLIGHT`]
/// at once, answering each batch's waiters after its own commit. A flush
/// waits for every commit in flight.
async fn run_writer(
    pool: PgPool,
    mut rx: mpsc::Receiver<Request>,
    metrics: crate::metrics::HistoryMetrics,
    health: Arc<StorageHealth>,
    faults: Arc<Faults>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT as usize));
    while let Some(first) = rx.recv().await {
        // Wait for a free slot first, so what queues meanwhile joins this
        // batch and senders feel the back-pressure.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Gathered {
            rows,
            waiters,
            flushes,
            records,
        } = gather(first, &mut rx).await;
        if records > 0 {
            let (pool, metrics, health, faults) = (
                pool.clone(),
                metrics.clone(),
                Arc::clone(&health),
                Arc::clone(&faults),
            );
            tokio::spawn(async move {
                commit(&pool, rows, waiters, &metrics, &health, &faults).await;
                drop(slot);
            });
        } else {
            drop(slot);
        }
        if !flushes.is_empty() {
            // Every slot free: every earlier commit is done.
            let all = slots.acquire_many(IN_FLIGHT).await;
            drop(all);
            for done in flushes {
                let _ = done.send(Ok(()));
            }
        }
    }
}

/// Commits one batch and answers its waiters.
async fn commit(
    pool: &PgPool,
    parts: Vec<Encoded>,
    waiters: Vec<Done>,
    metrics: &crate::metrics::HistoryMetrics,
    health: &StorageHealth,
    faults: &Faults,
) {
    let mut rows = Vec::with_capacity(parts.iter().map(Encoded::len).sum());
    let mut undecodable = false;
    for p in &parts {
        match p.refs() {
            Some(r) => rows.extend(r),
            None => undecodable = true,
        }
    }
    // Concurrent batches take their index locks in one order: a record
    // resent into two batches at once must not deadlock them.
    rows.sort_by(|a, b| (a.device_id, a.fix_ms).cmp(&(b.device_id, b.fix_ms)));
    let started = Instant::now();
    let result = if faults.fail_commits.load(Ordering::Relaxed) {
        Err(HistoryError::Storage(
            "database or disk is full (injected)".into(),
        ))
    } else if undecodable {
        Err(HistoryError::Storage(
            "a batch of rows did not decode".into(),
        ))
    } else {
        super::watch(insert(pool, &rows), health, metrics, || rows.len()).await
    };
    metrics
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    match &result {
        Ok(()) => metrics.records.inc_by(rows.len() as u64),
        Err(e) => {
            metrics.errors.inc();
            tracing::error!(error = %e, records = rows.len(), "history commit failed; those records are not acked");
        }
    }
    health.set(&result);
    metrics.healthy.set(i64::from(health.is_healthy()));
    for done in waiters {
        let _ = done.send(result.clone());
    }
}

async fn insert(pool: &PgPool, rows: &[RowRef<'_>]) -> Result<(), HistoryError> {
    let col = |f: fn(&RowRef<'_>) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    sqlx::query(INSERT)
        .bind(rows.iter().map(|r| r.device_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.fix_ms).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.received_ms).collect::<Vec<_>>())
        .bind(col(|r| r.lat))
        .bind(col(|r| r.lon))
        .bind(col(|r| r.altitude_m))
        .bind(col(|r| r.speed_kmh))
        .bind(col(|r| r.course_deg))
        .bind(
            rows.iter()
                .map(|r| r.satellites.and_then(|s| i32::try_from(s).ok()))
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.valid).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.protocol).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.attributes).collect::<Vec<_>>())
        .execute(pool)
        .await?;
    Ok(())
}

fn stored(r: &sqlx::postgres::PgRow) -> Result<StoredRow, sqlx::Error> {
    Ok(StoredRow {
        device_id: r.try_get(0)?,
        fix_ms: r.try_get(1)?,
        received_ms: r.try_get(2)?,
        lat: r.try_get(3)?,
        lon: r.try_get(4)?,
        altitude_m: r.try_get(5)?,
        speed_kmh: r.try_get(6)?,
        course_deg: r.try_get(7)?,
        satellites: r.try_get::<Option<i32>, _>(8)?.map(i64::from),
        valid: r.try_get(9)?,
        protocol: r.try_get(10)?,
        attributes: r.try_get(11)?,
    })
}

#[async_trait::async_trait]
impl Backend for Postgres {
    async fn append(&self, rows: Encoded) -> Result<(), HistoryError> {
        let (done, wait) = oneshot::channel();
        self.request(Request::Append {
            rows,
            done: Some(done),
        })
        .await?;
        wait.await.map_err(|_| HistoryError::Stopped)?
    }

    async fn append_detached(&self, rows: Encoded) -> Result<(), HistoryError> {
        self.request(Request::Append { rows, done: None }).await
    }

    async fn range(&self, q: Range) -> Result<Page, HistoryError> {
        let (f, lat, lon) = q
            .after
            .map_or((i64::MIN, f64::MIN, f64::MIN), |c| (c.fix_ms, c.lat, c.lon));
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM positions \
             WHERE device_id = $1 AND fix_ms >= $2 AND fix_ms < $3 \
             AND (fix_ms, lat, lon) > ($4, $5, $6) AND (lat = 'NaN'::float8) = $8 \
             ORDER BY fix_ms, lat, lon LIMIT $7"
        ))
        .bind(q.device.as_str())
        .bind(q.from_ms)
        .bind(q.to_ms)
        .bind(f)
        .bind(lat)
        .bind(lon)
        .bind(i64::try_from(q.limit.saturating_add(1)).unwrap_or(i64::MAX))
        .bind(q.records == super::Records::Reports)
        .fetch_all(&self.pool)
        .await?;
        let rows = rows.iter().map(stored).collect::<Result<Vec<_>, _>>()?;
        Ok(page_from_rows(rows, q.limit))
    }

    async fn latest_all(&self) -> Result<Vec<Position>, HistoryError> {
        let cols = COLUMNS
            .split(", ")
            .map(|c| format!("p.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {cols} FROM latest l JOIN positions p ON p.id = l.position_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(p) = stored(r)?.into_position() {
                out.push(p);
            }
        }
        Ok(out)
    }

    async fn purge(&self, before_ms: i64, batch: usize) -> Result<usize, HistoryError> {
        let done = sqlx::query(
            "DELETE FROM positions WHERE id IN \
             (SELECT id FROM positions WHERE received_ms < $1 ORDER BY received_ms LIMIT $2)",
        )
        .bind(before_ms)
        .bind(i64::try_from(batch).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
    }

    async fn flush(&self) -> Result<(), HistoryError> {
        let (done, wait) = oneshot::channel();
        self.request(Request::Flush(done)).await?;
        wait.await.map_err(|_| HistoryError::Stopped)?
    }

    async fn count(&self) -> Result<i64, HistoryError> {
        self.flush().await?;
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM positions")
            .fetch_one(&self.pool)
            .await?)
    }
}
