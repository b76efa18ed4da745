//! The SQL behind connected users: inserts, the metadata index and the list query.

use plugboard_core::user::search_fold;
use plugboard_core::{ConnectedUser, Metadata, ProjectId, UnixMillis, UserFilter, UserId};
use plugboard_store::{LastSeen, StoreResult};
use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::db_err;
use crate::rows::{self, user_columns};

/// An `INSERT INTO users` with an optional conflict clause, returning the new row.
macro_rules! insert_user_sql {
    ($($conflict:literal)?) => {
        concat!(
            "INSERT INTO users AS u (project_id, user_id, meta, user_id_folded, name_folded, \
             email_folded, created_at, updated_at, secrets_sealed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
            $($conflict,)?
            " RETURNING ",
            user_columns!()
        )
    };
}

/// The folded (lower-cased) search columns for a user id and its metadata.
struct Folded {
    user_id: String,
    name: Option<String>,
    email: Option<String>,
}

impl Folded {
    fn of(user: &UserId, meta: &Metadata) -> Self {
        Self {
            user_id: search_fold(user.as_str()),
            name: meta.get_str("Name").map(search_fold),
            email: meta.get_str("Email").map(search_fold),
        }
    }
}

/// Inserts a user (with its sealed secret values) and its index rows. With `if_absent`,
/// an existing user is left alone and `None` is returned; without it, an existing user is
/// a unique violation.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    project: ProjectId,
    user: &UserId,
    meta: &Metadata,
    secrets_sealed: Option<&str>,
    now: UnixMillis,
    if_absent: bool,
) -> StoreResult<Option<ConnectedUser>> {
    let sql = if if_absent {
        insert_user_sql!(" ON CONFLICT (project_id, user_id) DO NOTHING")
    } else {
        insert_user_sql!()
    };
    let folded = Folded::of(user, meta);
    let row = sqlx::query(sql)
        .bind(project.as_uuid())
        .bind(user.as_str())
        .bind(meta.to_json_string())
        .bind(folded.user_id)
        .bind(folded.name)
        .bind(folded.email)
        .bind(now)
        .bind(secrets_sealed)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    let Some(created) = row.as_ref().map(rows::user).transpose()? else {
        return Ok(None);
    };
    insert_index(conn, project, created.seq, meta).await?;
    Ok(Some(created))
}

/// Replaces a user's metadata (and its sealed secret values, when given) if
/// `expected_version` still matches; `None` otherwise.
pub(crate) async fn update_meta(
    conn: &mut PgConnection,
    project: ProjectId,
    user: &UserId,
    meta: &Metadata,
    secrets_sealed: Option<&str>,
    expected_version: i64,
    now: UnixMillis,
) -> StoreResult<Option<ConnectedUser>> {
    const UPDATE: &str = concat!(
        "UPDATE users u SET meta = $1, name_folded = $2, email_folded = $3, updated_at = $4, \
         secrets_sealed = COALESCE($8, u.secrets_sealed), version = u.version + 1 \
         WHERE u.project_id = $5 AND u.user_id = $6 AND u.version = $7 \
         RETURNING ",
        user_columns!()
    );
    let folded = Folded::of(user, meta);
    let row = sqlx::query(UPDATE)
        .bind(meta.to_json_string())
        .bind(folded.name)
        .bind(folded.email)
        .bind(now)
        .bind(project.as_uuid())
        .bind(user.as_str())
        .bind(expected_version)
        .bind(secrets_sealed)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    row.as_ref().map(rows::user).transpose()
}

/// Rewrites the metadata index rows of the user with this `seq`.
pub(crate) async fn replace_index(
    conn: &mut PgConnection,
    project: ProjectId,
    seq: i64,
    meta: &Metadata,
) -> StoreResult<()> {
    delete_index(&mut *conn, seq).await?;
    insert_index(conn, project, seq, meta).await
}

/// Removes the metadata index rows of the user with this `seq`; returns how many.
pub(crate) async fn delete_index(conn: &mut PgConnection, seq: i64) -> StoreResult<u64> {
    let deleted = sqlx::query("DELETE FROM user_meta_index WHERE user_seq = $1")
        .bind(seq)
        .execute(conn)
        .await
        .map_err(db_err)?;
    Ok(deleted.rows_affected())
}

async fn insert_index(
    conn: &mut PgConnection,
    project: ProjectId,
    seq: i64,
    meta: &Metadata,
) -> StoreResult<()> {
    let (keys, values): (Vec<String>, Vec<String>) = meta.indexed_entries().into_iter().unzip();
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO user_meta_index (project_id, key, value, user_seq) \
         SELECT $1, e.key, e.value, $2 FROM UNNEST($3::text[], $4::text[]) AS e (key, value)",
    )
    .bind(project.as_uuid())
    .bind(seq)
    .bind(keys)
    .bind(values)
    .execute(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Moves `last_seen_at` forward for every entry in one statement; unknown users are skipped.
pub(crate) async fn record_last_seen(
    executor: impl PgExecutor<'_>,
    entries: &[LastSeen],
) -> StoreResult<()> {
    let projects: Vec<Uuid> = entries.iter().map(|e| e.project_id.as_uuid()).collect();
    let users: Vec<&str> = entries.iter().map(|e| e.user_id.as_str()).collect();
    let ats: Vec<i64> = entries.iter().map(|e| e.at).collect();
    // Several entries for one user collapse to the latest, as UPDATE … FROM applies
    // only one source row per target row.
    sqlx::query(
        "UPDATE users u SET last_seen_at = GREATEST(COALESCE(u.last_seen_at, 0), e.at) \
         FROM (SELECT project_id, user_id, MAX(at) AS at \
               FROM UNNEST($1::uuid[], $2::text[], $3::bigint[]) AS t (project_id, user_id, at) \
               GROUP BY project_id, user_id) AS e \
         WHERE u.project_id = e.project_id AND u.user_id = e.user_id",
    )
    .bind(projects)
    .bind(users)
    .bind(ats)
    .execute(executor)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Upper bound for a prefix range scan: every string starting with `prefix` sorts below it
/// under the bytewise "C" collation of the folded columns.
fn prefix_upper_bound(prefix: &str) -> String {
    let mut bound = String::with_capacity(prefix.len() + 4);
    bound.push_str(prefix);
    bound.push(char::MAX);
    bound
}

/// Builds the list query: newest first, one row more than `filter.limit` so the caller
/// knows whether another page follows.
pub(crate) fn push_list(
    query: &mut QueryBuilder<Postgres>,
    project: ProjectId,
    filter: &UserFilter,
) {
    push_query(
        query,
        concat!("SELECT ", user_columns!(), " "),
        project,
        filter,
    );
}

/// What `count_users` selects.
pub(crate) const COUNT_SELECT: &str = "SELECT 1 ";

/// The list query with any select list (`count_users` selects [`COUNT_SELECT`]).
pub(crate) fn push_query(
    query: &mut QueryBuilder<Postgres>,
    select: &str,
    project: ProjectId,
    filter: &UserFilter,
) {
    query.push(select);
    // A count with only index conditions never reads the users table.
    let index_only = select == COUNT_SELECT && filter.q.is_none() && filter.suspended.is_none();
    let order_column = push_from(query, project, filter, index_only);
    if let Some(suspended) = filter.suspended {
        query.push(" AND u.suspended = ").push_bind(suspended);
    }
    if filter.integration.is_some() || filter.credential_status.is_some() {
        // `credentials_user_seq` makes this a probe per candidate user.
        query
            .push(" AND EXISTS (SELECT 1 FROM credentials c WHERE c.user_seq = ")
            .push(order_column);
        if let Some(integration) = filter.integration {
            query
                .push(" AND c.integration_id = ")
                .push_bind(integration);
        }
        if let Some(status) = filter.credential_status {
            query.push(" AND c.status = ").push_bind(status.as_str());
        }
        query.push(")");
    }
    if let Some(q) = filter.q.as_deref().filter(|q| !q.is_empty()) {
        push_prefix_search(query, &search_fold(q));
    }
    if let Some(before) = filter.before_seq {
        query.push(" AND ").push(order_column).push(" < ");
        query.push_bind(before);
    }
    query
        .push(" ORDER BY ")
        .push(order_column)
        .push(" DESC LIMIT ");
    query.push_bind(i64::try_from(filter.limit).unwrap_or(i64::MAX - 1) + 1);
}

/// Pushes the FROM clause and the project/metadata conditions; returns the column that
/// orders the page.
fn push_from(
    query: &mut QueryBuilder<Postgres>,
    project: ProjectId,
    filter: &UserFilter,
    index_only: bool,
) -> &'static str {
    let project = project.as_uuid();
    let Some(((key, value), more)) = filter.meta.split_first() else {
        query
            .push("FROM users u WHERE u.project_id = ")
            .push_bind(project);
        return "u.seq";
    };
    // Driven from the index: its primary key ends in `user_seq`, so rows come out of a
    // backward index scan already in page order.
    query.push(if index_only {
        "FROM user_meta_index m0 WHERE m0.project_id = "
    } else {
        "FROM user_meta_index m0 JOIN users u ON u.seq = m0.user_seq WHERE m0.project_id = "
    });
    query.push_bind(project);
    query.push(" AND m0.key = ").push_bind(key.as_str());
    query.push(" AND m0.value = ").push_bind(value.as_str());
    for (key, value) in more {
        query.push(" AND EXISTS (SELECT 1 FROM user_meta_index mi WHERE mi.project_id = ");
        query.push_bind(project);
        query.push(" AND mi.key = ").push_bind(key.as_str());
        query.push(" AND mi.value = ").push_bind(value.as_str());
        query.push(" AND mi.user_seq = m0.user_seq)");
    }
    "m0.user_seq"
}

/// Matches users whose folded id, `Name` or `Email` starts with `prefix`, as index ranges.
fn push_prefix_search(query: &mut QueryBuilder<Postgres>, prefix: &str) {
    let high = prefix_upper_bound(prefix);
    query.push(" AND (");
    for (i, column) in ["u.user_id_folded", "u.name_folded", "u.email_folded"]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            query.push(" OR ");
        }
        query.push("(").push(column).push(" >= ");
        query.push_bind(prefix);
        query.push(" AND ").push(column).push(" < ");
        query.push_bind(high.as_str()).push(")");
    }
    query.push(")");
}
