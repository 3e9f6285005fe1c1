//! Durable storage behind one boundary (`Store`): tenancy, permissions, the
//! hash-chained access log. SQLite is the embedded default; a PostgreSQL
//! implementation plugs in behind the same trait (sqlx carries both
//! drivers), so the API layer never sees which one runs.

mod chain;
pub mod log_chunks;
pub mod log_journal;
mod sqlite;
mod types;

pub use chain::{entry_hash, GENESIS};
pub use sqlite::SqliteStore;
pub use types::*;

use async_trait::async_trait;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("storage task failed: {0}")]
    Task(String),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Everything trackgate keeps durably.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn create_company(
        &self,
        id: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<Company, StoreError>;
    async fn create_user(
        &self,
        company_id: &str,
        name: &str,
        role: Role,
        now_ms: i64,
    ) -> Result<User, StoreError>;
    async fn create_api_key(
        &self,
        user_id: i64,
        hash: [u8; 32],
        now_ms: i64,
    ) -> Result<i64, StoreError>;
    async fn revoke_api_key(&self, key_id: i64, now_ms: i64) -> Result<(), StoreError>;
    async fn create_device(
        &self,
        company_id: &str,
        device_id: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<Device, StoreError>;
    async fn create_permission(&self, p: &NewPermission) -> Result<Permission, StoreError>;
    async fn revoke_permission(&self, id: i64, now_ms: i64) -> Result<(), StoreError>;
    async fn set_shipment_number(
        &self,
        permission_id: i64,
        device_id: &str,
        number: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Everything the in-memory directory is built from, at start-up.
    async fn load(&self) -> Result<Loaded, StoreError>;
    /// Appends entries in one durable commit (one fsync), chaining their
    /// hashes; returns their ids in order. Once it returns, the log's
    /// readers below see the entries.
    async fn append_log(&self, entries: Vec<LogEntry>) -> Result<Vec<i64>, StoreError>;
    /// [`append_log`](Store::append_log) on the calling thread, for the log
    /// writer, which has a thread of its own: a hand-off to the blocking
    /// pool and back cost two wake-ups on every commit, each a wait for a
    /// free core under load. `None` where the store only writes async.
    fn append_log_blocking(&self, _entries: &[LogEntry]) -> Option<Result<Vec<i64>, StoreError>> {
        None
    }
    /// Partner-scope entries of one permission within [from, to), oldest
    /// first, at most `limit`.
    async fn permission_log(
        &self,
        permission_id: i64,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError>;
    /// The operator's security entries (refused calls) within [from, to),
    /// newest first, at most `limit`.
    async fn security_log(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError>;
    /// Every entry in id order (for chain verification).
    async fn all_log(&self) -> Result<Vec<StoredEntry>, StoreError>;
}
