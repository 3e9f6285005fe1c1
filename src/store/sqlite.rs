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
    /// (`log_journal`), which a compactor copies into `access_log`.
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

    /// Brings `access_log` up to every committed entry, so a reader of the
    /// log sees all of them.
    async fn flush_log(&self) -> Result<(), StoreError> {
        let journal = Arc::clone(&self.journal);
        tokio::task::spawn_blocking(move || journal.compact())
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    fn entries(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<StoredEntry>, StoreError> {
        Ok(rows
            .iter()
            .map(Self::entry_from_row)
            .collect::<Result<_, _>>()?)
    }

    fn entry_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<StoredEntry, sqlx::Error> {
        let scope: String = r.try_get("scope")?;
        Ok(StoredEntry {
            id: r.try_get("id")?,
            entry: LogEntry {
                scope: if scope == "security" {
                    "security"
                } else {
                    "partner"
                },
                time_ms: r.try_get("time_ms")?,
                event: r.try_get("event")?,
                permission_id: r.try_get("permission_id")?,
                permission_name: r.try_get("permission_name")?,
                provider_company_id: r.try_get("provider_company_id")?,
                recipient_company_id: r.try_get("recipient_company_id")?,
                user_id: r.try_get("user_id")?,
                api_key_id: r.try_get("api_key_id")?,
                device_id: r.try_get("device_id")?,
                device_name: r.try_get("device_name")?,
                channel: r.try_get("channel")?,
                query: r.try_get("query")?,
                positions: r.try_get("positions")?,
                shipment_number: r.try_get("shipment_number")?,
                client_addr: r.try_get("client_addr")?,
                user_agent: r.try_get("user_agent")?,
                detail: r.try_get("detail")?,
            },
            prev_hash: hash32(r.try_get("prev_hash")?),
            hash: hash32(r.try_get("hash")?),
        })
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
        let rows = sqlx::query(
            "SELECT * FROM access_log WHERE scope = 'partner' AND permission_id = ? \
             AND time_ms >= ? AND time_ms < ? ORDER BY id LIMIT ?",
        )
        .bind(permission_id)
        .bind(from_ms.unwrap_or(i64::MIN))
        .bind(to_ms.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Self::entries(&rows)
    }

    async fn security_log(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        if !self.journal.owned() {
            let mut found: Vec<StoredEntry> = self
                .all_log()
                .await?
                .into_iter()
                .filter(|e| {
                    e.entry.scope == "security"
                        && e.entry.time_ms >= from_ms.unwrap_or(i64::MIN)
                        && e.entry.time_ms < to_ms.unwrap_or(i64::MAX)
                })
                .collect();
            found.reverse();
            found.truncate(limit as usize);
            return Ok(found);
        }
        self.flush_log().await?;
        let rows = sqlx::query(
            "SELECT * FROM access_log WHERE scope = 'security' \
             AND time_ms >= ? AND time_ms < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(from_ms.unwrap_or(i64::MIN))
        .bind(to_ms.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Self::entries(&rows)
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
        let rows = sqlx::query("SELECT * FROM access_log ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(log_journal::merge(live, Self::entries(&rows)?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
