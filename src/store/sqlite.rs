//! The embedded SQLite store: one file in the data directory, WAL journal
//! with `synchronous=FULL` (a commit survives power loss, which `NORMAL`
//! does not promise), migrations applied on open.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::log_journal::{self, LogJournal, LogWriter};
use super::*;
use std::sync::Arc;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/sqlite");

/// SQLite-backed `Store`.
pub struct SqliteStore {
    pool: SqlitePool,
    /// The access log's writer: entries are committed to the journal
    /// (`log_journal`), which a compactor copies into `access_log_chunks`.
    pub(super) log: Arc<parking_lot::Mutex<LogWriter>>,
    pub(super) journal: Arc<LogJournal>,
}

/// Maps a unique-key violation to `Conflict(what)`, anything else to `Db`.
fn conflict(what: String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what),
        _ => e.into(),
    }
}

pub(super) fn hash32(v: Vec<u8>) -> [u8; 32] {
    let mut out = [0u8; 32];
    if v.len() == 32 {
        out.copy_from_slice(&v);
    }
    out
}

impl SqliteStore {
    /// Opens (creating and migrating) `trackgate.db` in `data_dir`.
    /// The gateway owns the access-log journal: this waits for another
    /// process to let go of it and fails if none does.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, log_journal::Access::Own).await
    }

    /// For `audit verify`: owns the journal if it is free, else reads
    /// beside the gateway that owns it (see `log_journal`).
    pub async fn open_for_audit(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, log_journal::Access::OwnOrView).await
    }

    async fn open_with(data_dir: &Path, access: log_journal::Access) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join("trackgate.db");
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        // Leftover journal segments are compacted before anything is served.
        let journal = {
            let (dir, db) = (data_dir.to_path_buf(), path.clone());
            tokio::task::spawn_blocking(move || LogJournal::open(&dir, &db, access))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))??
        };
        let journal = Arc::new(journal);
        let log = LogWriter::new(Arc::clone(&journal), &rusqlite::Connection::open(&path)?)?;
        if journal.owned() {
            LogJournal::spawn_compactor(Arc::downgrade(&journal))?;
        }
        Ok(Self {
            pool,
            log: Arc::new(parking_lot::Mutex::new(log)),
            journal,
        })
    }

    /// Brings `access_log_chunks` up to every committed entry, so a reader
    /// of the log sees all of them.
    async fn flush_log(&self) -> Result<(), StoreError> {
        let journal = Arc::clone(&self.journal);
        tokio::task::spawn_blocking(move || journal.compact())
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// The entries `keep` accepts, at most `limit`, from the chunks `query`
    /// selects (`last_id, entries`) in its order; `newest_first` reverses
    /// each chunk's entries. Chunks are fetched one at a time, so a read
    /// that reaches its limit early decodes no more.
    async fn chunk_entries<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
        keep: impl Fn(&StoredEntry) -> bool,
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        use futures::TryStreamExt;
        let mut out = Vec::new();
        let mut rows = query.fetch(&self.pool);
        while out.len() < limit {
            let Some(row) = rows.try_next().await? else {
                break;
            };
            let mut entries =
                log_chunks::decode_or_err(row.try_get(0)?, row.try_get_unchecked(1)?)?;
            if newest_first {
                entries.reverse();
            }
            out.extend(
                entries
                    .into_iter()
                    .filter(|e| keep(e))
                    .take(limit - out.len()),
            );
        }
        Ok(out)
    }

    async fn permission_devices(
        &self,
        id: i64,
    ) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
        sqlx::query_as("SELECT device_id, shipment_number FROM permission_devices WHERE permission_id = ? ORDER BY device_id")
            .bind(id)
            .fetch_all(&self.pool)
            .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_company(
        &self,
        id: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<Company, StoreError> {
        sqlx::query("INSERT INTO companies (id, name, created_ms) VALUES (?, ?, ?)")
            .bind(id)
            .bind(name)
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(conflict(format!("company {id}")))?;
        Ok(Company {
            id: id.to_string(),
            name: name.to_string(),
        })
    }

    async fn create_user(
        &self,
        company_id: &str,
        name: &str,
        role: Role,
        now_ms: i64,
    ) -> Result<User, StoreError> {
        let id: i64 = sqlx::query_scalar("INSERT INTO users (company_id, name, role, created_ms) VALUES (?, ?, ?, ?) RETURNING id")
            .bind(company_id)
            .bind(name)
            .bind(role.as_str())
            .bind(now_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok(User {
            id,
            company_id: company_id.to_string(),
            name: name.to_string(),
            role,
        })
    }

    async fn create_api_key(
        &self,
        user_id: i64,
        hash: [u8; 32],
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO api_keys (user_id, hash, created_ms) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(user_id)
        .bind(hash.as_slice())
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn revoke_api_key(&self, key_id: i64, now_ms: i64) -> Result<(), StoreError> {
        let r =
            sqlx::query("UPDATE api_keys SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL")
                .bind(now_ms)
                .bind(key_id)
                .execute(&self.pool)
                .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("api key {key_id}")));
        }
        Ok(())
    }

    async fn create_device(
        &self,
        company_id: &str,
        device_id: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<Device, StoreError> {
        sqlx::query(
            "INSERT INTO devices (device_id, company_id, name, created_ms) VALUES (?, ?, ?, ?)",
        )
        .bind(device_id)
        .bind(company_id)
        .bind(name)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(conflict(format!("device {device_id}")))?;
        Ok(Device {
            device_id: device_id.to_string(),
            company_id: company_id.to_string(),
            name: name.to_string(),
        })
    }

    async fn create_permission(&self, p: &NewPermission) -> Result<Permission, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO permissions (name, provider_company_id, recipient_company_id, recipient_user_id, \
             valid_from_ms, valid_until_ms, temporary, created_ms, created_by_user_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&p.name)
        .bind(&p.provider_company_id)
        .bind(&p.recipient_company_id)
        .bind(p.recipient_user_id)
        .bind(p.valid_from_ms)
        .bind(p.valid_until_ms)
        .bind(p.temporary)
        .bind(p.created_ms)
        .bind(p.created_by_user_id)
        .fetch_one(&mut *tx)
        .await?;
        let mut devices: Vec<String> = p.device_ids.clone();
        devices.sort();
        devices.dedup();
        for d in &devices {
            sqlx::query("INSERT INTO permission_devices (permission_id, device_id) VALUES (?, ?)")
                .bind(id)
                .bind(d)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Permission {
            id,
            name: p.name.clone(),
            provider_company_id: p.provider_company_id.clone(),
            recipient_company_id: p.recipient_company_id.clone(),
            recipient_user_id: p.recipient_user_id,
            devices: devices.into_iter().map(|d| (d, None)).collect(),
            valid_from_ms: p.valid_from_ms,
            valid_until_ms: p.valid_until_ms,
            temporary: p.temporary,
            created_ms: p.created_ms,
            revoked_ms: None,
        })
    }

    async fn revoke_permission(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        let r = sqlx::query(
            "UPDATE permissions SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("permission {id}")));
        }
        Ok(())
    }

    async fn set_shipment_number(
        &self,
        permission_id: i64,
        device_id: &str,
        number: Option<&str>,
    ) -> Result<(), StoreError> {
        let r = sqlx::query("UPDATE permission_devices SET shipment_number = ? WHERE permission_id = ? AND device_id = ?")
            .bind(number)
            .bind(permission_id)
            .bind(device_id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "device {device_id} in permission {permission_id}"
            )));
        }
        Ok(())
    }

    async fn load(&self) -> Result<Loaded, StoreError> {
        let companies = sqlx::query_as::<_, (String, String)>("SELECT id, name FROM companies")
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|(id, name)| Company { id, name })
            .collect();
        let users = sqlx::query_as::<_, (i64, String, String, String)>(
            "SELECT id, company_id, name, role FROM users",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .filter_map(|(id, company_id, name, role)| {
            Some(User {
                id,
                company_id,
                name,
                role: Role::parse(&role)?,
            })
        })
        .collect();
        let api_keys = sqlx::query_as::<_, (i64, i64, Vec<u8>, Option<i64>)>(
            "SELECT id, user_id, hash, revoked_ms FROM api_keys",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(id, user_id, hash, revoked)| ApiKey {
            id,
            user_id,
            hash: hash32(hash),
            revoked: revoked.is_some(),
        })
        .collect();
        let devices = sqlx::query_as::<_, (String, String, String)>(
            "SELECT device_id, company_id, name FROM devices",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(device_id, company_id, name)| Device {
            device_id,
            company_id,
            name,
        })
        .collect();
        #[allow(clippy::type_complexity)]
        let rows: Vec<(i64, String, String, String, Option<i64>, i64, Option<i64>, bool, i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, name, provider_company_id, recipient_company_id, recipient_user_id, valid_from_ms, \
             valid_until_ms, temporary, created_ms, revoked_ms FROM permissions ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut permissions = Vec::with_capacity(rows.len());
        for (id, name, provider, recipient, ruser, from, until, temporary, created, revoked) in rows
        {
            permissions.push(Permission {
                id,
                name,
                provider_company_id: provider,
                recipient_company_id: recipient,
                recipient_user_id: ruser,
                devices: self.permission_devices(id).await?,
                valid_from_ms: from,
                valid_until_ms: until,
                temporary,
                created_ms: created,
                revoked_ms: revoked,
            });
        }
        Ok(Loaded {
            companies,
            users,
            api_keys,
            devices,
            permissions,
        })
    }

    async fn append_log(&self, entries: Vec<LogEntry>) -> Result<Vec<i64>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let log = Arc::clone(&self.log);
        tokio::task::spawn_blocking(move || log.lock().append(&entries))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    fn append_log_blocking(&self, entries: &[LogEntry]) -> Option<Result<Vec<i64>, StoreError>> {
        if entries.is_empty() {
            return Some(Ok(Vec::new()));
        }
        Some(self.log.lock().append(entries))
    }

    async fn permission_log(
        &self,
        permission_id: i64,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let window = |e: &StoredEntry| {
            e.entry.scope == "partner"
                && e.entry.permission_id == Some(permission_id)
                && e.entry.time_ms >= from_ms.unwrap_or(i64::MIN)
                && e.entry.time_ms < to_ms.unwrap_or(i64::MAX)
        };
        if !self.journal.owned() {
            // A read-only view compacts nothing: filter the merged log.
            let all = self.all_log().await?.into_iter().filter(window);
            return Ok(all.take(limit as usize).collect());
        }
        self.flush_log().await?;
        let query = sqlx::query(
            "SELECT last_id, entries FROM access_log_chunks \
             WHERE key = ? AND to_ms >= ? AND from_ms < ? ORDER BY last_id",
        )
        .bind(permission_id)
        .bind(from_ms.unwrap_or(i64::MIN))
        .bind(to_ms.unwrap_or(i64::MAX));
        self.chunk_entries(query, window, limit as usize, false)
            .await
    }

    async fn security_log(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let security = |e: &StoredEntry| {
            e.entry.scope == "security"
                && e.entry.time_ms >= from_ms.unwrap_or(i64::MIN)
                && e.entry.time_ms < to_ms.unwrap_or(i64::MAX)
        };
        if !self.journal.owned() {
            let mut found: Vec<StoredEntry> =
                self.all_log().await?.into_iter().filter(security).collect();
            found.reverse();
            found.truncate(limit as usize);
            return Ok(found);
        }
        self.flush_log().await?;
        let query = sqlx::query(
            "SELECT last_id, entries FROM access_log_chunks \
             WHERE key = ? AND to_ms >= ? AND from_ms < ? ORDER BY last_id DESC",
        )
        .bind(log_chunks::SECURITY_KEY)
        .bind(from_ms.unwrap_or(i64::MIN))
        .bind(to_ms.unwrap_or(i64::MAX));
        self.chunk_entries(query, security, limit as usize, true)
            .await
    }

    async fn all_log(&self) -> Result<Vec<StoredEntry>, StoreError> {
        // A read-only view (another process owns the journal) reads the
        // live segments before the database: an entry compacted in
        // between is then found in the database.
        let journal = Arc::clone(&self.journal);
        let live = tokio::task::spawn_blocking(move || journal.snapshot_live())
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        self.flush_log().await?;
        let rows = sqlx::query(
            "SELECT last_id, first_id, key, from_ms, to_ms, entries FROM access_log_chunks",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut stored = Vec::new();
        for r in &rows {
            let span = log_chunks::Span {
                last_id: r.try_get(0)?,
                first_id: r.try_get(1)?,
                from_ms: r.try_get(3)?,
                to_ms: r.try_get(4)?,
            };
            let entries = log_chunks::decode_or_err(span.last_id, r.try_get_unchecked(5)?)?;
            log_chunks::check(r.try_get(2)?, span, &entries)
                .map_err(|e| StoreError::Task(e.to_string()))?;
            stored.extend(entries);
        }
        // Chunks hold one permission each: their entries interleave.
        stored.sort_unstable_by_key(|e| e.id);
        Ok(log_journal::merge(live, stored))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A data dir written before the log was stored in chunks (a row per
    /// entry): the upgrade moves every row into chunks;
    /// the chain verifies as before and continues from its last entry.
    #[tokio::test]
    async fn rows_of_an_earlier_version_are_moved_into_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trackgate.db");
        // The schema as the first two migrations left it.
        let old = dir.path().join("old-migrations");
        std::fs::create_dir(&old).unwrap();
        for f in [
            "0001_tenancy_permissions_access_log.sql",
            "0002_security_log_index.sql",
        ] {
            std::fs::copy(format!("src/store/migrations/sqlite/{f}"), old.join(f)).unwrap();
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .unwrap()
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(opts).await.unwrap();
        sqlx::migrate::Migrator::new(old.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        let mut prev = GENESIS;
        let mut written = Vec::new();
        for id in 1..=300i64 {
            let entry = LogEntry {
                scope: if id == 5 { "security" } else { "partner" },
                time_ms: 1_000 + id,
                event: "read".into(),
                permission_id: Some(7),
                shipment_number: (id == 9).then(|| "S-9".to_string()),
                user_agent: Some("curl".into()),
                ..Default::default()
            };
            let hash = entry_hash(&prev, id, &entry);
            sqlx::query(
                "INSERT INTO access_log (id, scope, time_ms, event, permission_id, \
                 shipment_number, user_agent, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(entry.scope)
            .bind(entry.time_ms)
            .bind(&entry.event)
            .bind(entry.permission_id)
            .bind(&entry.shipment_number)
            .bind(&entry.user_agent)
            .bind(prev.as_slice())
            .bind(hash.as_slice())
            .execute(&pool)
            .await
            .unwrap();
            written.push(StoredEntry {
                id,
                entry,
                prev_hash: prev,
                hash,
            });
            prev = hash;
        }
        pool.close().await;

        let store = SqliteStore::open(dir.path()).await.unwrap();
        let all = store.all_log().await.unwrap();
        assert_eq!(all, written, "every row, every field");
        crate::access::verify::verify(&all).unwrap();
        let partner = store.permission_log(7, None, None, 1000).await.unwrap();
        assert_eq!(partner.len(), 299);
        assert_eq!(partner[7].entry.shipment_number.as_deref(), Some("S-9"));
        let security = store.security_log(None, None, 10).await.unwrap();
        assert_eq!(security.iter().map(|e| e.id).collect::<Vec<_>>(), [5]);
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 'access_log_rows'")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(left, 0, "the old table is dropped");
        assert_eq!(
            store
                .append_log(written[..1].iter().map(|s| s.entry.clone()).collect())
                .await
                .unwrap(),
            [301]
        );
        crate::access::verify::verify(&store.all_log().await.unwrap()).unwrap();
    }

    /// The log writer only appends to the journal; the compactor must copy
    /// it into `trackgate.db` and checkpoint, or the main file would never
    /// see a row.
    #[tokio::test]
    async fn the_compactor_moves_the_log_into_the_main_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let main = dir.path().join("trackgate.db");
        let before = std::fs::metadata(&main).unwrap().len();
        let entry = LogEntry {
            scope: "partner",
            event: "read".into(),
            user_agent: Some("x".repeat(200)),
            ..Default::default()
        };
        for _ in 0..20 {
            let ids = store.append_log(vec![entry.clone(); 100]).await.unwrap();
            assert_eq!(ids.len(), 100);
        }
        // 2,000 entries of > 200 bytes: at least 400 kB once checkpointed.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut len = before;
        while std::time::Instant::now() < deadline && len < before + 400_000 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            len = std::fs::metadata(&main).unwrap().len();
        }
        assert!(
            len >= before + 400_000,
            "main file {before} -> {len} bytes: the WAL was not checkpointed"
        );
    }
}
