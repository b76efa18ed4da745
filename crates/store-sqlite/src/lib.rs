//! The [`Store`] interface on one SQLite file: the embedded default.
//!
//! Writes go through a single-connection pool so SQLite never has to arbitrate between
//! writers (no `SQLITE_BUSY` upgrades); reads use a pool of their own in WAL mode.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use plugboard_core::user::search_fold;
use plugboard_core::{
    AttemptRecord, AuditEntry, AuditFilter, ClaimedDelivery, ConnectLink, ConnectReport,
    ConnectSession, ConnectedUser, Credential, CredentialConfiguration, CredentialStatus,
    CredentialWithConfigurations, DashboardSession, DeliveryAttempt, ErasedCounts, EventFilter,
    Execution, ExecutionFilter, ExecutionUpdate, IntegrationKey, IntegrationUsage, Metadata,
    OutboxEvent, Project, ProjectId, ProjectIntegration, SealedColumn, SealedRow, SecretKeyRecord,
    SigningKeyRecord, UnixMillis, UserCount, UserFilter, UserId, UserPage, WebhookDelivery,
    WebhookEndpoint, WorkflowVersion,
};
use plugboard_store::{
    ConnectOutcome, CredentialSecretsWrite, LastSeen, MetadataWrite, Store, StoreError, StoreResult,
};
use serde_json::{Map, Value};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use uuid::Uuid;

mod connect;
mod dashboard;
mod events;
mod group;
mod integrations;
mod workflows;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The user columns every query reads, as a literal so queries stay `&'static str`.
macro_rules! user_columns {
    () => {
        "u.seq, u.project_id, u.user_id, u.meta, u.suspended, u.version, \
         u.created_at, u.updated_at, u.last_seen_at"
    };
}

pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    group: group::GroupWriter,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and applies migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new().filename(path);
        Self::open_with(options).await
    }

    /// Opens a `sqlite://PATH` URL.
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url).map_err(db_err)?;
        Self::open_with(options).await
    }

    async fn open_with(options: SqliteConnectOptions) -> StoreResult<Self> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        // A file on this machine does not go stale: no ping before each use.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(db_err)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .map_err(db_err)?;
        Ok(Self {
            reader,
            group: group::GroupWriter::start(writer.clone()),
            writer,
        })
    }

    /// The query plan SQLite picks for a `meta.<key>=<value>` search (for tests and benches).
    pub async fn explain_meta_search(&self, project: ProjectId) -> StoreResult<String> {
        let filter = UserFilter {
            meta: vec![("Email".into(), "x".into())],
            limit: 10,
            ..UserFilter::default()
        };
        let mut query = QueryBuilder::new("EXPLAIN QUERY PLAN ");
        push_list_users(&mut query, project, &filter);
        let rows = query
            .build()
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

fn db_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return StoreError::Conflict(db.message().to_owned());
    }
    StoreError::Database(e.to_string())
}

fn user_from_row(row: &SqliteRow) -> StoreResult<ConnectedUser> {
    let project: String = row.try_get("project_id").map_err(db_err)?;
    let user: String = row.try_get("user_id").map_err(db_err)?;
    let meta: String = row.try_get("meta").map_err(db_err)?;
    let meta = serde_json::from_str(&meta).map_err(|e| StoreError::Database(e.to_string()))?;
    Ok(ConnectedUser {
        project_id: ProjectId::parse(&project).map_err(|e| StoreError::Database(e.to_string()))?,
        user_id: UserId::parse(&user).map_err(|e| StoreError::Database(e.to_string()))?,
        meta: Metadata::from_stored(meta),
        suspended: row.try_get("suspended").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
        last_seen_at: row.try_get("last_seen_at").map_err(db_err)?,
        seq: row.try_get("seq").map_err(db_err)?,
        version: row.try_get("version").map_err(db_err)?,
    })
}

fn project_from_row(row: &SqliteRow) -> StoreResult<Project> {
    let id: String = row.try_get("id").map_err(db_err)?;
    Ok(Project {
        id: ProjectId::parse(&id).map_err(|e| StoreError::Database(e.to_string()))?,
        name: row.try_get("name").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

fn uuid_col(row: &SqliteRow, col: &str) -> StoreResult<Uuid> {
    let raw: String = row.try_get(col).map_err(db_err)?;
    Uuid::parse_str(&raw).map_err(|e| StoreError::Database(e.to_string()))
}

fn signing_key_from_row(row: &SqliteRow) -> StoreResult<SigningKeyRecord> {
    let project: String = row.try_get("project_id").map_err(db_err)?;
    Ok(SigningKeyRecord {
        id: uuid_col(row, "id")?,
        project_id: ProjectId::parse(&project).map_err(|e| StoreError::Database(e.to_string()))?,
        public_key_pem: row.try_get("public_key_pem").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        revoked_at: row.try_get("revoked_at").map_err(db_err)?,
    })
}

fn secret_key_from_row(row: &SqliteRow) -> StoreResult<SecretKeyRecord> {
    let project: String = row.try_get("project_id").map_err(db_err)?;
    Ok(SecretKeyRecord {
        id: uuid_col(row, "id")?,
        project_id: ProjectId::parse(&project).map_err(|e| StoreError::Database(e.to_string()))?,
        name: row.try_get("name").map_err(db_err)?,
        prefix: row.try_get("prefix").map_err(db_err)?,
        hash: row.try_get("hash").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        revoked_at: row.try_get("revoked_at").map_err(db_err)?,
    })
}

/// Upper bound for a prefix range scan: every string starting with `prefix` sorts below it.
fn prefix_upper_bound(prefix: &str) -> String {
    format!("{prefix}{}", char::MAX)
}

fn push_list_users(query: &mut QueryBuilder<Sqlite>, project: ProjectId, filter: &UserFilter) {
    push_users_query(
        query,
        concat!("SELECT ", user_columns!(), " "),
        project,
        filter,
    );
}

/// What `count_users` selects.
pub(crate) const COUNT_SELECT: &str = "SELECT 1 ";

/// The users query with any select list (`count_users` selects [`COUNT_SELECT`]).
pub(crate) fn push_users_query(
    query: &mut QueryBuilder<Sqlite>,
    select: &str,
    project: ProjectId,
    filter: &UserFilter,
) {
    let project = project.to_string();
    query.push(select);
    // With a metadata filter, drive the query from the index: its primary key ends in
    // `user_seq`, so rows come out already in page order.
    let order_column = if let Some((key, value)) = filter.meta.first() {
        // A count with only index conditions never reads the users table.
        let index_only = select == COUNT_SELECT && filter.q.is_none() && filter.suspended.is_none();
        query.push(if index_only {
            "FROM user_meta_index m0 WHERE m0.project_id = "
        } else {
            "FROM user_meta_index m0 JOIN users u ON u.seq = m0.user_seq WHERE m0.project_id = "
        });
        query.push_bind(project.clone());
        query.push(" AND m0.key = ").push_bind(key.as_str());
        query.push(" AND m0.value = ").push_bind(value.as_str());
        for (key, value) in &filter.meta[1..] {
            query.push(" AND EXISTS (SELECT 1 FROM user_meta_index mi WHERE mi.project_id = ");
            query.push_bind(project.clone());
            query.push(" AND mi.key = ").push_bind(key.as_str());
            query.push(" AND mi.value = ").push_bind(value.as_str());
            query.push(" AND mi.user_seq = m0.user_seq)");
        }
        "m0.user_seq"
    } else {
        query
            .push("FROM users u WHERE u.project_id = ")
            .push_bind(project);
        "u.seq"
    };
    if let Some(suspended) = filter.suspended {
        query.push(" AND u.suspended = ").push_bind(suspended);
    }
    if filter.integration.is_some() || filter.credential_status.is_some() {
        // `credentials_user_seq` makes this a probe per candidate user.
        query.push(format!(
            " AND EXISTS (SELECT 1 FROM credentials c WHERE c.user_seq = {order_column}"
        ));
        if let Some(integration) = filter.integration {
            query
                .push(" AND c.integration_id = ")
                .push_bind(integration.to_string());
        }
        if let Some(status) = filter.credential_status {
            query.push(" AND c.status = ").push_bind(status.as_str());
        }
        query.push(")");
    }
    if let Some(q) = filter.q.as_deref().filter(|q| !q.is_empty()) {
        let low = search_fold(q);
        let high = prefix_upper_bound(&low);
        query.push(" AND (");
        for (i, column) in ["u.user_id_folded", "u.name_folded", "u.email_folded"]
            .iter()
            .enumerate()
        {
            if i > 0 {
                query.push(" OR ");
            }
            query.push(format!("({column} >= ")).push_bind(low.clone());
            query
                .push(format!(" AND {column} < "))
                .push_bind(high.clone())
                .push(")");
        }
        query.push(")");
    }
    if let Some(before) = filter.before_seq {
        query
            .push(format!(" AND {order_column} < "))
            .push_bind(before);
    }
    query.push(format!(" ORDER BY {order_column} DESC LIMIT "));
    query.push_bind(filter.limit as i64 + 1);
}

impl SqliteStore {
    /// Runs a `SET revoked_at` statement; `NotFound` when no unrevoked key matched.
    async fn revoke(
        &self,
        sql: &'static str,
        project: ProjectId,
        id: Uuid,
        at: UnixMillis,
    ) -> StoreResult<()> {
        let done = sqlx::query(sql)
            .bind(at)
            .bind(project.to_string())
            .bind(id.to_string())
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn fetch_user(
        &self,
        project: ProjectId,
        user: &UserId,
        pool: &SqlitePool,
    ) -> StoreResult<Option<ConnectedUser>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE u.project_id = ? AND u.user_id = ?"
        ))
        .bind(project.to_string())
        .bind(user.as_str())
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn insert_user(
        tx: &mut sqlx::SqliteConnection,
        project: ProjectId,
        user: &UserId,
        meta: &Metadata,
        secrets_sealed: Option<&str>,
        now: UnixMillis,
        on_conflict_ignore: bool,
    ) -> StoreResult<Option<i64>> {
        const INSERT: &str = "INSERT INTO users (project_id, user_id, meta, user_id_folded, \
            name_folded, email_folded, created_at, updated_at, secrets_sealed) \
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq";
        const INSERT_OR_IGNORE: &str = "INSERT INTO users (project_id, user_id, meta, user_id_folded, \
            name_folded, email_folded, created_at, updated_at, secrets_sealed) \
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project_id, user_id) DO NOTHING RETURNING seq";
        let sql = if on_conflict_ignore {
            INSERT_OR_IGNORE
        } else {
            INSERT
        };
        let seq: Option<i64> = sqlx::query_scalar(sql)
            .bind(project.to_string())
            .bind(user.as_str())
            .bind(meta.to_json_string())
            .bind(search_fold(user.as_str()))
            .bind(meta.get_str("Name").map(search_fold))
            .bind(meta.get_str("Email").map(search_fold))
            .bind(now)
            .bind(now)
            .bind(secrets_sealed)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if let Some(seq) = seq {
            write_index(tx, project, seq, meta).await?;
        }
        Ok(seq)
    }
}

async fn write_index(
    tx: &mut sqlx::SqliteConnection,
    project: ProjectId,
    seq: i64,
    meta: &Metadata,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM user_meta_index WHERE user_seq = ?")
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    let entries = meta.indexed_entries();
    if entries.is_empty() {
        return Ok(());
    }
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO user_meta_index (project_id, key, value, user_seq) ",
    );
    insert.push_values(entries, |mut row, (key, value)| {
        row.push_bind(project.to_string())
            .push_bind(key)
            .push_bind(value)
            .push_bind(seq);
    });
    insert.build().execute(&mut *tx).await.map_err(db_err)?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn create_project(&self, project: &Project) -> StoreResult<()> {
        sqlx::query("INSERT INTO projects (id, name, created_at) VALUES (?, ?, ?)")
            .bind(project.id.to_string())
            .bind(&project.name)
            .bind(project.created_at)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn get_project(&self, id: ProjectId) -> StoreResult<Option<Project>> {
        let row = sqlx::query("SELECT id, name, created_at FROM projects WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        row.as_ref().map(project_from_row).transpose()
    }

    async fn find_project_by_name(&self, name: &str) -> StoreResult<Option<Project>> {
        let row = sqlx::query(
            "SELECT id, name, created_at FROM projects WHERE name = ? ORDER BY created_at LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        row.as_ref().map(project_from_row).transpose()
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        sqlx::query("INSERT INTO signing_keys (id, project_id, public_key_pem, created_at, revoked_at) VALUES (?, ?, ?, ?, ?)")
            .bind(key.id.to_string())
            .bind(key.project_id.to_string())
            .bind(&key.public_key_pem)
            .bind(key.created_at)
            .bind(key.revoked_at)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn list_signing_keys(&self, project: ProjectId) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows =
            sqlx::query("SELECT * FROM signing_keys WHERE project_id = ? ORDER BY created_at, id")
                .bind(project.to_string())
                .fetch_all(&self.reader)
                .await
                .map_err(db_err)?;
        rows.iter().map(signing_key_from_row).collect()
    }

    async fn revoke_signing_key(
        &self,
        project: ProjectId,
        id: Uuid,
        at: UnixMillis,
    ) -> StoreResult<()> {
        self.revoke(
            "UPDATE signing_keys SET revoked_at = ? WHERE project_id = ? AND id = ? AND revoked_at IS NULL",
            project,
            id,
            at,
        )
        .await
    }

    async fn insert_secret_key(&self, key: &SecretKeyRecord) -> StoreResult<()> {
        sqlx::query("INSERT INTO secret_keys (id, project_id, name, prefix, hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(key.id.to_string())
            .bind(key.project_id.to_string())
            .bind(&key.name)
            .bind(&key.prefix)
            .bind(&key.hash)
            .bind(key.created_at)
            .bind(key.revoked_at)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn find_active_secret_key(&self, hash: &str) -> StoreResult<Option<SecretKeyRecord>> {
        let row = sqlx::query("SELECT * FROM secret_keys WHERE hash = ? AND revoked_at IS NULL")
            .bind(hash)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        row.as_ref().map(secret_key_from_row).transpose()
    }

    async fn list_secret_keys(&self, project: ProjectId) -> StoreResult<Vec<SecretKeyRecord>> {
        let rows =
            sqlx::query("SELECT * FROM secret_keys WHERE project_id = ? ORDER BY created_at, id")
                .bind(project.to_string())
                .fetch_all(&self.reader)
                .await
                .map_err(db_err)?;
        rows.iter().map(secret_key_from_row).collect()
    }

    async fn revoke_secret_key(
        &self,
        project: ProjectId,
        id: Uuid,
        at: UnixMillis,
    ) -> StoreResult<()> {
        self.revoke(
            "UPDATE secret_keys SET revoked_at = ? WHERE project_id = ? AND id = ? AND revoked_at IS NULL",
            project,
            id,
            at,
        )
        .await
    }

    async fn get_user(
        &self,
        project: ProjectId,
        user: &UserId,
    ) -> StoreResult<Option<ConnectedUser>> {
        self.fetch_user(project, user, &self.reader).await
    }

    async fn ensure_user(
        &self,
        project: ProjectId,
        user: &UserId,
        now: UnixMillis,
        created: Option<&OutboxEvent>,
    ) -> StoreResult<ConnectedUser> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let inserted = Self::insert_user(
            &mut tx,
            project,
            user,
            &Metadata::default(),
            None,
            now,
            true,
        )
        .await?;
        if inserted.is_some() {
            events::insert_events(
                &mut tx,
                created.map(std::slice::from_ref).unwrap_or_default(),
            )
            .await?;
        }
        tx.commit().await.map_err(db_err)?;
        self.fetch_user(project, user, &self.writer)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn create_user(
        &self,
        project: ProjectId,
        user: &UserId,
        meta: &Metadata,
        secrets_sealed: Option<&str>,
        now: UnixMillis,
        events: &[OutboxEvent],
    ) -> StoreResult<ConnectedUser> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        Self::insert_user(&mut tx, project, user, meta, secrets_sealed, now, false).await?;
        events::insert_events(&mut tx, events).await?;
        tx.commit().await.map_err(db_err)?;
        self.fetch_user(project, user, &self.writer)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn write_metadata(&self, write: MetadataWrite<'_>) -> StoreResult<ConnectedUser> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let seq: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET meta = ?, name_folded = ?, email_folded = ?, updated_at = ?, \
             secrets_sealed = COALESCE(?, secrets_sealed), version = version + 1 \
             WHERE project_id = ? AND user_id = ? AND version = ? RETURNING seq",
        )
        .bind(write.meta.to_json_string())
        .bind(write.meta.get_str("Name").map(search_fold))
        .bind(write.meta.get_str("Email").map(search_fold))
        .bind(write.now)
        .bind(write.secrets_sealed)
        .bind(write.project_id.to_string())
        .bind(write.user_id.as_str())
        .bind(write.expected_version)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(seq) = seq else {
            drop(tx);
            return match self
                .fetch_user(write.project_id, write.user_id, &self.writer)
                .await?
            {
                Some(_) => Err(StoreError::Conflict("the user changed concurrently".into())),
                None => Err(StoreError::NotFound),
            };
        };
        write_index(&mut tx, write.project_id, seq, write.meta).await?;
        events::insert_events(&mut tx, write.events).await?;
        tx.commit().await.map_err(db_err)?;
        self.fetch_user(write.project_id, write.user_id, &self.writer)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn set_suspended(
        &self,
        project: ProjectId,
        user: &UserId,
        suspended: bool,
        now: UnixMillis,
        events: &[OutboxEvent],
    ) -> StoreResult<ConnectedUser> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let done = sqlx::query(
            "UPDATE users SET suspended = ?, updated_at = ?, version = version + 1 \
             WHERE project_id = ? AND user_id = ?",
        )
        .bind(suspended)
        .bind(now)
        .bind(project.to_string())
        .bind(user.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        events::insert_events(&mut tx, events).await?;
        tx.commit().await.map_err(db_err)?;
        self.fetch_user(project, user, &self.writer)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn delete_user(
        &self,
        project: ProjectId,
        user: &UserId,
        events: &[OutboxEvent],
    ) -> StoreResult<ErasedCounts> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM users WHERE project_id = ? AND user_id = ?")
                .bind(project.to_string())
                .bind(user.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        let seq = seq.ok_or(StoreError::NotFound)?;
        let (credentials, configurations) =
            integrations::delete_user_credentials(&mut tx, seq).await?;
        let index = sqlx::query("DELETE FROM user_meta_index WHERE user_seq = ?")
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let users = sqlx::query("DELETE FROM users WHERE seq = ?")
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        events::insert_events(&mut tx, events).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(ErasedCounts {
            users: users.rows_affected(),
            metadata_index_entries: index.rows_affected(),
            credentials,
            configurations,
        })
    }

    async fn list_users(&self, project: ProjectId, filter: &UserFilter) -> StoreResult<UserPage> {
        let mut query = QueryBuilder::new("");
        push_list_users(&mut query, project, filter);
        let rows = query
            .build()
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        let mut users = rows
            .iter()
            .map(user_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let next_before_seq = if users.len() > filter.limit {
            users.truncate(filter.limit);
            users.last().map(|u| u.seq)
        } else {
            None
        };
        Ok(UserPage {
            users,
            next_before_seq,
        })
    }

    async fn record_last_seen(&self, entries: &[LastSeen]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        for entry in entries {
            sqlx::query(
                "UPDATE users SET last_seen_at = MAX(COALESCE(last_seen_at, 0), ?) WHERE project_id = ? AND user_id = ?",
            )
            .bind(entry.at)
            .bind(entry.project_id.to_string())
            .bind(entry.user_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn upsert_project_integration(
        &self,
        integration: &ProjectIntegration,
    ) -> StoreResult<ProjectIntegration> {
        integrations::upsert_integration(&self.writer, integration).await
    }

    async fn list_project_integrations(
        &self,
        project: ProjectId,
    ) -> StoreResult<Vec<ProjectIntegration>> {
        integrations::list_integrations(&self.reader, project).await
    }

    async fn get_project_integration(
        &self,
        project: ProjectId,
        key: &IntegrationKey,
    ) -> StoreResult<Option<ProjectIntegration>> {
        integrations::get_integration(&self.reader, project, key).await
    }

    async fn get_project_integration_by_id(
        &self,
        project: ProjectId,
        id: Uuid,
    ) -> StoreResult<Option<ProjectIntegration>> {
        integrations::get_integration_by_id(&self.reader, project, id).await
    }

    async fn insert_credential(
        &self,
        credential: &Credential,
        default_configuration: &CredentialConfiguration,
        executions: &[Execution],
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        integrations::insert_credential(
            &self.writer,
            credential,
            default_configuration,
            executions,
            events,
        )
        .await
    }

    async fn list_credentials(
        &self,
        project: ProjectId,
        user: &UserId,
    ) -> StoreResult<Vec<CredentialWithConfigurations>> {
        integrations::list_credentials(&self.reader, project, user).await
    }

    async fn get_credential(
        &self,
        project: ProjectId,
        user: &UserId,
        credential_id: Uuid,
    ) -> StoreResult<Option<CredentialWithConfigurations>> {
        integrations::get_credential(&self.reader, project, user, credential_id).await
    }

    async fn update_credential_secrets(
        &self,
        write: CredentialSecretsWrite<'_>,
    ) -> StoreResult<Credential> {
        integrations::update_secrets(&self.writer, write).await
    }

    async fn set_credential_status(
        &self,
        project: ProjectId,
        credential_id: Uuid,
        status: CredentialStatus,
        refresh_failure_count: i32,
        now: UnixMillis,
        events: &[OutboxEvent],
    ) -> StoreResult<Credential> {
        integrations::set_status(
            &self.writer,
            project,
            credential_id,
            (status, refresh_failure_count),
            now,
            events,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)] // the settings, their time and what they start
    async fn update_configuration(
        &self,
        project: ProjectId,
        credential_id: Uuid,
        configuration_id: Uuid,
        workflow_settings: Option<Map<String, Value>>,
        shared_settings: Option<Map<String, Value>>,
        now: UnixMillis,
        executions: &[Execution],
        events: &[OutboxEvent],
    ) -> StoreResult<CredentialConfiguration> {
        integrations::update_configuration(
            &self.writer,
            project,
            (credential_id, configuration_id),
            workflow_settings.as_ref(),
            shared_settings.as_ref(),
            now,
            (executions, events),
        )
        .await
    }

    async fn delete_credential(
        &self,
        project: ProjectId,
        user: &UserId,
        credential_id: Uuid,
        events: &[OutboxEvent],
    ) -> StoreResult<u64> {
        integrations::delete_credential(&self.writer, project, user, credential_id, events).await
    }

    async fn try_acquire_refresh_lease(
        &self,
        credential_id: Uuid,
        holder: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> StoreResult<bool> {
        integrations::try_acquire_lease(&self.writer, credential_id, holder, now, lease_until).await
    }

    async fn release_refresh_lease(&self, credential_id: Uuid, holder: &str) -> StoreResult<()> {
        integrations::release_lease(&self.writer, credential_id, holder).await
    }

    async fn insert_connect_session(&self, session: &ConnectSession) -> StoreResult<()> {
        connect::insert_session(&self.writer, session).await
    }

    async fn consume_connect_session(
        &self,
        id: Uuid,
        now: UnixMillis,
    ) -> StoreResult<Option<ConnectSession>> {
        connect::consume_session(&self.writer, id, now).await
    }

    async fn finish_connect_session(
        &self,
        id: Uuid,
        outcome: &ConnectOutcome,
        at: UnixMillis,
    ) -> StoreResult<()> {
        connect::finish_session(&self.writer, id, outcome, at).await
    }

    async fn claim_connect_report(
        &self,
        id: Uuid,
        credential: Uuid,
        via: ConnectReport,
    ) -> StoreResult<Option<ConnectReport>> {
        connect::claim_report(&self.writer, id, credential, via).await
    }

    async fn find_connect_session(
        &self,
        project: ProjectId,
        user: &UserId,
        client_session_id: &str,
    ) -> StoreResult<Option<ConnectSession>> {
        connect::find_session(&self.reader, project, user, client_session_id).await
    }

    async fn delete_connect_sessions(
        &self,
        project: ProjectId,
        user: &UserId,
        client_session_id: &str,
    ) -> StoreResult<u64> {
        connect::delete_sessions(&self.writer, project, user, client_session_id).await
    }

    async fn purge_expired_connect_records(&self, before: UnixMillis) -> StoreResult<u64> {
        connect::purge_expired(&self.writer, before).await
    }

    async fn insert_connect_link(&self, link: &ConnectLink) -> StoreResult<()> {
        connect::insert_link(&self.writer, link).await
    }

    async fn find_connect_link(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> StoreResult<Option<ConnectLink>> {
        connect::find_link(&self.writer, token_hash, now).await
    }

    async fn consume_connect_link(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> StoreResult<Option<ConnectLink>> {
        connect::consume_link(&self.writer, token_hash, now).await
    }

    async fn list_sealed(
        &self,
        column: SealedColumn,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<SealedRow>> {
        connect::list_sealed(&self.reader, column, after, limit).await
    }

    async fn replace_sealed(
        &self,
        column: SealedColumn,
        id: Uuid,
        expected: &str,
        replacement: &str,
    ) -> StoreResult<bool> {
        connect::replace_sealed(&self.writer, column, id, expected, replacement).await
    }

    async fn deploy_workflow(&self, workflow: &WorkflowVersion) -> StoreResult<WorkflowVersion> {
        workflows::deploy(&self.writer, workflow).await
    }

    async fn list_workflows(&self, project: ProjectId) -> StoreResult<Vec<WorkflowVersion>> {
        workflows::list(&self.reader, project).await
    }

    async fn get_workflow(
        &self,
        project: ProjectId,
        workflow_id: &str,
        version: Option<i64>,
    ) -> StoreResult<Option<WorkflowVersion>> {
        workflows::get(&self.reader, project, workflow_id, version).await
    }

    async fn enqueue_executions(&self, executions: &[Execution]) -> StoreResult<()> {
        if executions.is_empty() {
            return Ok(());
        }
        self.group
            .write(group::Write::Enqueue(executions.to_vec()))
            .await
            .map(|_| ())
    }

    async fn claim_executions(
        &self,
        holder: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: u32,
        per_user_limit: u32,
    ) -> StoreResult<Vec<Execution>> {
        workflows::claim(
            &self.writer,
            holder,
            now,
            lease_until,
            limit,
            per_user_limit,
        )
        .await
    }

    async fn extend_execution_lease(
        &self,
        id: Uuid,
        holder: &str,
        lease_until: UnixMillis,
    ) -> StoreResult<bool> {
        self.group
            .write(group::Write::ExtendLease {
                id,
                holder: holder.to_owned(),
                until: lease_until,
            })
            .await
    }

    async fn release_execution(
        &self,
        id: Uuid,
        holder: &str,
        update: &ExecutionUpdate,
    ) -> StoreResult<bool> {
        self.group
            .write(group::Write::Release {
                id,
                holder: holder.to_owned(),
                update: update.clone(),
            })
            .await
    }

    async fn cancel_executions(
        &self,
        project: ProjectId,
        user: &UserId,
        workflow_ids: &[String],
        now: UnixMillis,
    ) -> StoreResult<u64> {
        workflows::cancel(&self.writer, project, user, workflow_ids, now).await
    }

    async fn get_execution(&self, project: ProjectId, id: Uuid) -> StoreResult<Option<Execution>> {
        workflows::get_execution(&self.reader, project, id).await
    }

    async fn list_executions(
        &self,
        project: ProjectId,
        filter: &ExecutionFilter,
    ) -> StoreResult<Vec<Execution>> {
        workflows::list_executions(&self.reader, project, filter).await
    }

    async fn count_executions(
        &self,
        project: ProjectId,
        filter: &ExecutionFilter,
    ) -> StoreResult<u64> {
        workflows::count_executions(&self.reader, project, filter).await
    }

    async fn load_step(&self, execution: Uuid, step_key: &str) -> StoreResult<Option<Value>> {
        workflows::load_step(&self.reader, execution, step_key).await
    }

    async fn save_step(
        &self,
        execution: Uuid,
        step_key: &str,
        record: &Value,
        now: UnixMillis,
    ) -> StoreResult<()> {
        self.group
            .write(group::Write::SaveStep {
                execution,
                key: step_key.to_owned(),
                record: record.clone(),
                now,
            })
            .await
            .map(|_| ())
    }

    async fn get_project_env(&self, project: ProjectId) -> StoreResult<Option<(Uuid, String)>> {
        connect::get_project_env(&self.reader, project).await
    }

    async fn put_project_env(
        &self,
        project: ProjectId,
        id: Uuid,
        sealed: &str,
        now: UnixMillis,
    ) -> StoreResult<()> {
        connect::put_project_env(&self.writer, project, id, sealed, now).await
    }

    async fn count_steps(&self, executions: &[Uuid]) -> StoreResult<Vec<(Uuid, u64)>> {
        workflows::count_steps(&self.reader, executions).await
    }

    async fn list_steps(&self, execution: Uuid) -> StoreResult<Vec<(String, Value, UnixMillis)>> {
        workflows::list_steps(&self.reader, execution).await
    }

    async fn list_projects(&self, limit: u32) -> StoreResult<Vec<Project>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at FROM projects ORDER BY created_at, id LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        rows.iter().map(project_from_row).collect()
    }

    async fn count_users(
        &self,
        project: ProjectId,
        filter: &UserFilter,
        cap: u64,
    ) -> StoreResult<UserCount> {
        dashboard::count_users(&self.reader, project, filter, cap).await
    }

    async fn integration_usage(&self, project: ProjectId) -> StoreResult<IntegrationUsage> {
        dashboard::integration_usage(&self.reader, project).await
    }

    async fn insert_dashboard_session(&self, session: &DashboardSession) -> StoreResult<()> {
        dashboard::insert_session(&self.writer, session).await
    }

    async fn get_dashboard_session(
        &self,
        id_hash: &str,
        now: UnixMillis,
    ) -> StoreResult<Option<DashboardSession>> {
        dashboard::get_session(&self.reader, id_hash, now).await
    }

    async fn set_dashboard_session_project(
        &self,
        id_hash: &str,
        project: ProjectId,
    ) -> StoreResult<()> {
        dashboard::set_session_project(&self.writer, id_hash, project).await
    }

    async fn delete_dashboard_session(&self, id_hash: &str) -> StoreResult<()> {
        dashboard::delete_session(&self.writer, id_hash).await
    }

    async fn purge_dashboard_sessions(&self, before: UnixMillis) -> StoreResult<u64> {
        dashboard::purge_sessions(&self.writer, before).await
    }

    async fn list_integration_credentials(
        &self,
        project: ProjectId,
        integration: Uuid,
    ) -> StoreResult<Vec<CredentialWithConfigurations>> {
        integrations::list_integration_credentials(&self.reader, project, integration).await
    }

    async fn list_scheduled_workflows(&self) -> StoreResult<Vec<WorkflowVersion>> {
        workflows::scheduled(&self.reader).await
    }

    async fn last_schedule_tick(
        &self,
        project: ProjectId,
        workflow_id: &str,
    ) -> StoreResult<Option<UnixMillis>> {
        workflows::last_tick(&self.writer, project, workflow_id).await
    }

    async fn record_schedule_tick(
        &self,
        project: ProjectId,
        workflow_id: &str,
        tick_at: UnixMillis,
        executions: &[Execution],
        now: UnixMillis,
    ) -> StoreResult<bool> {
        workflows::record_tick(&self.writer, project, workflow_id, tick_at, executions, now).await
    }

    async fn purge_executions(&self, before: UnixMillis) -> StoreResult<u64> {
        workflows::purge(&self.writer, before).await
    }

    async fn get_user_secrets(
        &self,
        project: ProjectId,
        user: &UserId,
    ) -> StoreResult<Option<String>> {
        let sealed: Option<Option<String>> = sqlx::query_scalar(
            "SELECT secrets_sealed FROM users WHERE project_id = ? AND user_id = ?",
        )
        .bind(project.to_string())
        .bind(user.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(db_err)?;
        Ok(sealed.flatten())
    }

    async fn get_project_policy(&self, project: ProjectId) -> StoreResult<Option<Value>> {
        events::get_policy(&self.reader, project).await
    }

    async fn put_project_policy(
        &self,
        project: ProjectId,
        policy: &Value,
        now: UnixMillis,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        events::put_policy(&self.writer, project, policy, now, events).await
    }

    async fn insert_events(&self, events: &[OutboxEvent]) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        events::insert_events(&mut tx, events).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn unfanned_events(&self, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
        events::unfanned_events(&self.reader, limit).await
    }

    async fn fan_out_event(
        &self,
        event_id: Uuid,
        deliveries: &[WebhookDelivery],
    ) -> StoreResult<bool> {
        events::fan_out_event(&self.writer, event_id, deliveries).await
    }

    async fn get_event(&self, project: ProjectId, id: Uuid) -> StoreResult<Option<OutboxEvent>> {
        events::get_event(&self.reader, project, id).await
    }

    async fn list_events(
        &self,
        project: ProjectId,
        filter: &EventFilter,
    ) -> StoreResult<Vec<OutboxEvent>> {
        events::list_events(&self.reader, project, filter).await
    }

    async fn purge_events(&self, before: UnixMillis) -> StoreResult<u64> {
        events::purge_events(&self.writer, before).await
    }

    async fn insert_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        events::insert_endpoint(&self.writer, endpoint).await
    }

    async fn list_webhook_endpoints(
        &self,
        project: ProjectId,
    ) -> StoreResult<Vec<WebhookEndpoint>> {
        events::list_endpoints(&self.reader, project).await
    }

    async fn get_webhook_endpoint(
        &self,
        project: ProjectId,
        id: Uuid,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        events::get_endpoint(&self.reader, project, id).await
    }

    async fn update_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        events::update_endpoint(&self.writer, endpoint).await
    }

    async fn delete_webhook_endpoint(&self, project: ProjectId, id: Uuid) -> StoreResult<()> {
        events::delete_endpoint(&self.writer, project, id).await
    }

    async fn claim_deliveries(
        &self,
        holder: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        events::claim_deliveries(&self.writer, holder, now, lease_until, limit).await
    }

    async fn record_delivery_attempt(
        &self,
        holder: &str,
        record: &AttemptRecord,
    ) -> StoreResult<bool> {
        events::record_attempt(&self.writer, holder, record).await
    }

    async fn list_deliveries(
        &self,
        project: ProjectId,
        event_id: Uuid,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        events::list_deliveries(&self.reader, project, event_id).await
    }

    async fn list_delivery_attempts(&self, delivery_id: Uuid) -> StoreResult<Vec<DeliveryAttempt>> {
        events::list_attempts(&self.reader, delivery_id).await
    }

    async fn redeliver_event(
        &self,
        project: ProjectId,
        event_id: Uuid,
        endpoints: &[Uuid],
        now: UnixMillis,
    ) -> StoreResult<u64> {
        events::redeliver(&self.writer, project, event_id, endpoints, now).await
    }

    async fn insert_audit_entry(&self, entry: &AuditEntry) -> StoreResult<()> {
        events::insert_audit(&self.writer, entry).await
    }

    async fn list_audit_entries(
        &self,
        project: ProjectId,
        filter: &AuditFilter,
    ) -> StoreResult<Vec<AuditEntry>> {
        events::list_audit(&self.reader, project, filter).await
    }
}
