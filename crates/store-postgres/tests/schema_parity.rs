//! The two migration sets describe one schema: both are applied to fresh databases and
//! their catalogs compared (tables, columns with their type family, nullability and
//! primary-key membership, named indexes, unique constraints, foreign keys, CHECK
//! constraints). Types are compared modulo dialect: `UUID`, `JSONB` and `TEXT` are all
//! text to SQLite, `BIGINT` and `BOOLEAN` are integers, `BYTEA` is a blob.
//!
//! Needs `PLUGBOARD_TEST_DATABASE_URL` (as every PostgreSQL test; never skipped).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use plugboard_store_postgres::PostgresStore;
use plugboard_store_sqlite::SqliteStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::{PgPool, Row};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Column {
    name: String,
    family: &'static str,
    not_null: bool,
    in_primary_key: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    columns: BTreeSet<Column>,
    /// Named (explicitly created) indexes: name → (unique, columns in order).
    indexes: BTreeMap<String, (bool, Vec<String>)>,
    /// Column lists of UNIQUE constraints (and unique indexes made for them).
    unique: BTreeSet<Vec<String>>,
    /// (columns, referenced table, referenced columns, ON DELETE action).
    foreign_keys: BTreeSet<(Vec<String>, String, Vec<String>, String)>,
    /// (constrained column, the string literals it may take), one per CHECK.
    checks: BTreeSet<(String, Vec<String>)>,
}

type Catalog = BTreeMap<String, Table>;

fn family(declared: &str) -> &'static str {
    let t = declared.to_ascii_lowercase();
    let t = t.trim();
    match t {
        "text" | "uuid" | "json" | "jsonb" | "character varying" | "varchar" => "text",
        "integer" | "bigint" | "smallint" | "int" | "boolean" => "integer",
        "bytea" | "blob" => "blob",
        "real" | "double precision" | "float" => "real",
        _ => "unknown",
    }
}

/// The differences between the two catalogs, one line each; empty when they agree.
fn differences(sqlite: &Catalog, postgres: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    let names: BTreeSet<&String> = sqlite.keys().chain(postgres.keys()).collect();
    for name in names {
        match (sqlite.get(name), postgres.get(name)) {
            (Some(_), None) => out.push(format!("table {name}: only in SQLite")),
            (None, Some(_)) => out.push(format!("table {name}: only in PostgreSQL")),
            (Some(s), Some(p)) => table_differences(name, s, p, &mut out),
            (None, None) => {}
        }
    }
    out
}

fn table_differences(table: &str, s: &Table, p: &Table, out: &mut Vec<String>) {
    fn sides<T: Ord + std::fmt::Debug>(
        out: &mut Vec<String>,
        what: String,
        s: &BTreeSet<T>,
        p: &BTreeSet<T>,
    ) {
        for only in s.difference(p) {
            out.push(format!("{what}: only in SQLite: {only:?}"));
        }
        for only in p.difference(s) {
            out.push(format!("{what}: only in PostgreSQL: {only:?}"));
        }
    }
    sides(out, format!("{table} columns"), &s.columns, &p.columns);
    let index_set = |t: &Table| -> BTreeSet<(String, bool, Vec<String>)> {
        t.indexes
            .iter()
            .map(|(n, (u, c))| (n.clone(), *u, c.clone()))
            .collect()
    };
    sides(
        out,
        format!("{table} indexes"),
        &index_set(s),
        &index_set(p),
    );
    sides(out, format!("{table} unique"), &s.unique, &p.unique);
    sides(
        out,
        format!("{table} foreign keys"),
        &s.foreign_keys,
        &p.foreign_keys,
    );
    sides(out, format!("{table} checks"), &s.checks, &p.checks);
}

// ---------------------------------------------------------------------------------------
// Reading SQLite's catalog

async fn sqlite_catalog(pool: &SqlitePool) -> Catalog {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx_%'",
    )
    .fetch_all(pool)
    .await
    .expect("listing SQLite tables");
    let mut catalog = Catalog::new();
    for (name, sql) in tables {
        let mut table = Table::default();
        for row in sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)")
            .bind(&name)
            .fetch_all(pool)
            .await
            .expect("table_info")
        {
            let column: String = row.get(0);
            let declared: String = row.get(1);
            let pk: i64 = row.get(3);
            let not_null: bool = row.get::<i64, _>(2) != 0 || pk > 0;
            table.columns.insert(Column {
                name: column,
                family: family(&declared),
                not_null,
                in_primary_key: pk > 0,
            });
        }
        for row in sqlx::query("SELECT name, \"unique\", origin FROM pragma_index_list(?)")
            .bind(&name)
            .fetch_all(pool)
            .await
            .expect("index_list")
        {
            let index: String = row.get(0);
            let unique = row.get::<i64, _>(1) != 0;
            let origin: String = row.get(2);
            let columns: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                    .bind(&index)
                    .fetch_all(pool)
                    .await
                    .expect("index_info");
            match origin.as_str() {
                "c" => {
                    table.indexes.insert(index, (unique, columns));
                }
                "u" => {
                    table.unique.insert(columns);
                }
                _ => {} // the primary key's own index
            }
        }
        let mut keys: BTreeMap<i64, (Vec<String>, String, Vec<String>, String)> = BTreeMap::new();
        for row in sqlx::query(
            "SELECT id, \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(?) \
             ORDER BY id, seq",
        )
        .bind(&name)
        .fetch_all(pool)
        .await
        .expect("foreign_key_list")
        {
            let entry = keys
                .entry(row.get(0))
                .or_insert_with(|| (Vec::new(), row.get(1), Vec::new(), row.get::<String, _>(4)));
            entry.0.push(row.get(2));
            entry.2.push(row.get(3));
        }
        table.foreign_keys = keys.into_values().collect();
        table.checks = sqlite_checks(&sql);
        catalog.insert(name, table);
    }
    catalog
}

/// CHECK constraints as written in a SQLite `CREATE TABLE`: the column named first and
/// the quoted literals, which is what this schema's checks (`status IN (…)`) consist of.
fn sqlite_checks(sql: &str) -> BTreeSet<(String, Vec<String>)> {
    let upper = sql.to_ascii_uppercase();
    let mut checks = BTreeSet::new();
    let mut from = 0;
    while let Some(at) = upper[from..].find("CHECK") {
        let start = from + at + "CHECK".len();
        let body = balanced_parentheses(&sql[start..]);
        checks.insert(check_shape(body));
        from = start + body.len();
    }
    checks
}

fn balanced_parentheses(text: &str) -> &str {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..=i];
                }
            }
            _ => {}
        }
    }
    text
}

/// (first identifier, sorted quoted literals) of a CHECK body in either dialect.
fn check_shape(body: &str) -> (String, Vec<String>) {
    let column: String = body
        .trim_start_matches(|c: char| c == '(' || c.is_whitespace())
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let mut literals: Vec<String> = body
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect();
    literals.sort();
    (column, literals)
}

// ---------------------------------------------------------------------------------------
// Reading PostgreSQL's catalog

async fn postgres_catalog(pool: &PgPool, schema: &str) -> Catalog {
    let mut catalog = Catalog::new();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = $1 AND table_type = 'BASE TABLE' AND table_name NOT LIKE '_sqlx_%'",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("listing PostgreSQL tables");
    for name in tables {
        let relation = format!("{schema}.{name}");
        let mut table = Table::default();
        let primary: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = $1::regclass AND i.indisprimary",
        )
        .bind(&relation)
        .fetch_all(pool)
        .await
        .expect("primary key");
        for row in sqlx::query(
            "SELECT column_name::text, data_type::text, is_nullable::text \
             FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
        )
        .bind(schema)
        .bind(&name)
        .fetch_all(pool)
        .await
        .expect("columns")
        {
            let column: String = row.get(0);
            let declared: String = row.get(1);
            table.columns.insert(Column {
                family: family(&declared),
                not_null: row.get::<String, _>(2) == "NO",
                in_primary_key: primary.contains(&column),
                name: column,
            });
        }
        read_postgres_indexes(pool, &relation, &mut table).await;
        read_postgres_constraints(pool, &relation, &mut table).await;
        catalog.insert(name, table);
    }
    catalog
}

async fn read_postgres_indexes(pool: &PgPool, relation: &str, table: &mut Table) {
    // Indexes that back a constraint (primary key, UNIQUE) are compared as constraints.
    let rows = sqlx::query(
        "SELECT c.relname::text, i.indisunique, \
                ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(n, o) \
                      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n \
                      ORDER BY k.o) \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = $1::regclass \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conindid = i.indexrelid)",
    )
    .bind(relation)
    .fetch_all(pool)
    .await
    .expect("indexes");
    for row in rows {
        table.indexes.insert(row.get(0), (row.get(1), row.get(2)));
    }
}

async fn read_postgres_constraints(pool: &PgPool, relation: &str, table: &mut Table) {
    let rows = sqlx::query(
        "SELECT x.contype::text, \
                ARRAY(SELECT a.attname::text FROM unnest(x.conkey) WITH ORDINALITY k(n, o) \
                      JOIN pg_attribute a ON a.attrelid = x.conrelid AND a.attnum = k.n \
                      ORDER BY k.o), \
                COALESCE(f.relname::text, ''), \
                ARRAY(SELECT a.attname::text FROM unnest(x.confkey) WITH ORDINALITY k(n, o) \
                      JOIN pg_attribute a ON a.attrelid = x.confrelid AND a.attnum = k.n \
                      ORDER BY k.o), \
                x.confdeltype::text, pg_get_constraintdef(x.oid) \
         FROM pg_constraint x LEFT JOIN pg_class f ON f.oid = x.confrelid \
         WHERE x.conrelid = $1::regclass",
    )
    .bind(relation)
    .fetch_all(pool)
    .await
    .expect("constraints");
    for row in rows {
        let kind: String = row.get(0);
        let columns: Vec<String> = row.get(1);
        match kind.as_str() {
            "u" => {
                table.unique.insert(columns);
            }
            "f" => {
                let on_delete = match row.get::<String, _>(4).as_str() {
                    "c" => "CASCADE",
                    "n" => "SET NULL",
                    "d" => "SET DEFAULT",
                    "r" => "RESTRICT",
                    _ => "NO ACTION",
                };
                table
                    .foreign_keys
                    .insert((columns, row.get(2), row.get(3), on_delete.into()));
            }
            "c" => {
                let definition: String = row.get(5);
                let body = definition.trim_start_matches("CHECK");
                table.checks.insert(check_shape(body));
            }
            _ => {} // the primary key: compared through the columns
        }
    }
}

// ---------------------------------------------------------------------------------------
// The databases

fn postgres_url() -> String {
    std::env::var("PLUGBOARD_TEST_DATABASE_URL")
        .expect("PLUGBOARD_TEST_DATABASE_URL must name the PostgreSQL test database")
}

/// Both schemas freshly migrated by their stores; returns the SQLite file's pool, the
/// PostgreSQL pool and schema, and the temp dir that keeps the file alive.
async fn migrated() -> (SqlitePool, PgPool, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("parity.db");
    drop(SqliteStore::open(&file).await.expect("migrating SQLite"));
    let sqlite = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&file))
        .await
        .expect("opening the migrated SQLite file");

    let schema = format!("pbt_{}", uuid::Uuid::new_v4().simple());
    let url = postgres_url();
    drop(
        PostgresStore::connect_in_schema(&url, &schema)
            .await
            .expect("migrating PostgreSQL"),
    );
    let options = PgConnectOptions::from_str(&url).expect("PostgreSQL URL");
    let postgres = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .expect("connecting to PostgreSQL");
    (sqlite, postgres, schema, dir)
}

#[tokio::test]
async fn the_sqlite_and_postgres_migrations_describe_the_same_schema() {
    let (sqlite, postgres, schema, _dir) = migrated().await;
    let s = sqlite_catalog(&sqlite).await;
    let p = postgres_catalog(&postgres, &schema).await;
    assert!(
        s.len() >= 20,
        "expected the whole schema, read {} tables",
        s.len()
    );
    let found = differences(&s, &p);
    assert!(
        found.is_empty(),
        "the migration sets disagree (fix crates/store-sqlite/migrations or \
         crates/store-postgres/migrations):\n{}",
        found.join("\n")
    );
}

/// The comparison is not vacuous: a column, an index, a check value or a foreign key added
/// to one side only is reported.
#[tokio::test]
async fn a_change_to_one_migration_set_only_is_reported() {
    let (sqlite, postgres, schema, _dir) = migrated().await;
    for statement in [
        "ALTER TABLE users ADD COLUMN nickname TEXT",
        "CREATE INDEX users_created ON users (project_id, created_at)",
    ] {
        sqlx::query(statement)
            .execute(&sqlite)
            .await
            .expect(statement);
    }
    // The schema name is generated by this test (`pbt_<uuid>`), not user input.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE {schema}.secret_keys ADD COLUMN owner UUID REFERENCES {schema}.projects (id)"
    )))
    .execute(&postgres)
    .await
    .expect("altering PostgreSQL");
    let found = differences(
        &sqlite_catalog(&sqlite).await,
        &postgres_catalog(&postgres, &schema).await,
    );
    let report = found.join("\n");
    for expected in [
        "users columns: only in SQLite: Column { name: \"nickname\"",
        "users indexes: only in SQLite: (\"users_created\"",
        "secret_keys columns: only in PostgreSQL: Column { name: \"owner\"",
        "secret_keys foreign keys: only in PostgreSQL",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
}
