//! Conversions from PostgreSQL rows to domain values.

use plugboard_core::{
    ConnectedUser, Credential, CredentialConfiguration, CredentialStatus,
    CredentialWithConfigurations, IntegrationKey, Metadata, Project, ProjectId, ProjectIntegration,
    SecretKeyRecord, SigningKeyRecord, UserId,
};
use plugboard_store::{StoreError, StoreResult};
use serde_json::{Map, Value};
use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};
use uuid::Uuid;

use crate::db_err;

/// The user columns every user query returns, as a literal so queries stay `&'static str`.
macro_rules! user_columns {
    () => {
        "u.seq, u.project_id, u.user_id, u.meta, u.suspended, u.version, \
         u.created_at, u.updated_at, u.last_seen_at"
    };
}
pub(crate) use user_columns;

pub(crate) fn get<'r, T>(row: &'r PgRow, column: &str) -> StoreResult<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(column).map_err(db_err)
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

fn project_id(row: &PgRow, column: &str) -> StoreResult<ProjectId> {
    let id: Uuid = get(row, column)?;
    Ok(ProjectId::from_uuid(id))
}

pub(crate) fn user(row: &PgRow) -> StoreResult<ConnectedUser> {
    let user_id: String = get(row, "user_id")?;
    let meta: String = get(row, "meta")?;
    let meta: Map<String, Value> = serde_json::from_str(&meta).map_err(corrupt)?;
    Ok(ConnectedUser {
        project_id: project_id(row, "project_id")?,
        user_id: UserId::parse(&user_id).map_err(corrupt)?,
        meta: Metadata::from_stored(meta),
        suspended: get(row, "suspended")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        last_seen_at: get(row, "last_seen_at")?,
        seq: get(row, "seq")?,
        version: get(row, "version")?,
    })
}

pub(crate) fn project(row: &PgRow) -> StoreResult<Project> {
    Ok(Project {
        id: project_id(row, "id")?,
        name: get(row, "name")?,
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn signing_key(row: &PgRow) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        id: get(row, "id")?,
        project_id: project_id(row, "project_id")?,
        public_key_pem: get(row, "public_key_pem")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

pub(crate) fn secret_key(row: &PgRow) -> StoreResult<SecretKeyRecord> {
    Ok(SecretKeyRecord {
        id: get(row, "id")?,
        project_id: project_id(row, "project_id")?,
        name: get(row, "name")?,
        prefix: get(row, "prefix")?,
        hash: get(row, "hash")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

/// The columns of `project_integrations`.
macro_rules! integration_columns {
    () => {
        "id, project_id, key, oauth_client_id, oauth_client_secret_sealed, scopes, active, \
         created_at, updated_at, custom_spec"
    };
}
pub(crate) use integration_columns;

/// A credential's columns; `u` is the joined `users` row that owns it.
macro_rules! credential_columns {
    () => {
        "c.id, c.project_id, u.user_id, c.integration_id, c.status, c.provider_id, \
         c.provider_data, c.secrets_sealed, c.expires_at, c.refresh_failure_count, \
         c.external_id, c.created_at, c.updated_at, c.refreshed_at, c.version"
    };
}
pub(crate) use credential_columns;

/// A configuration's columns under `cf_` names (they sit beside a credential's in joins);
/// `$table` is the qualifier to read them from (`"cf."`, or `""` in a RETURNING clause).
macro_rules! configuration_columns {
    ($table:literal) => {
        concat!(
            $table,
            "id AS cf_id, ",
            $table,
            "credential_id AS cf_credential_id, ",
            $table,
            "is_default AS cf_is_default, ",
            $table,
            "workflow_settings AS cf_workflow_settings, ",
            $table,
            "shared_settings AS cf_shared_settings, ",
            $table,
            "external_id AS cf_external_id, ",
            $table,
            "created_at AS cf_created_at, ",
            $table,
            "updated_at AS cf_updated_at"
        )
    };
}
pub(crate) use configuration_columns;

fn json_map(raw: &str) -> StoreResult<Map<String, Value>> {
    serde_json::from_str(raw).map_err(corrupt)
}

pub(crate) fn integration(row: &PgRow) -> StoreResult<ProjectIntegration> {
    let key: String = get(row, "key")?;
    let scopes: Option<String> = get(row, "scopes")?;
    Ok(ProjectIntegration {
        id: get(row, "id")?,
        project_id: project_id(row, "project_id")?,
        key: IntegrationKey::parse(&key).map_err(corrupt)?,
        oauth_client_id: get(row, "oauth_client_id")?,
        oauth_client_secret_sealed: get(row, "oauth_client_secret_sealed")?,
        scopes: scopes
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(corrupt)?,
        active: get(row, "active")?,
        custom_spec: get(row, "custom_spec")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn credential(row: &PgRow) -> StoreResult<Credential> {
    let user_id: String = get(row, "user_id")?;
    let status: String = get(row, "status")?;
    let provider_data: String = get(row, "provider_data")?;
    Ok(Credential {
        id: get(row, "id")?,
        project_id: project_id(row, "project_id")?,
        user_id: UserId::parse(&user_id).map_err(corrupt)?,
        integration_id: get(row, "integration_id")?,
        status: CredentialStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown credential status `{status}`")))?,
        provider_id: get(row, "provider_id")?,
        provider_data: json_map(&provider_data)?,
        secrets_sealed: get(row, "secrets_sealed")?,
        expires_at: get(row, "expires_at")?,
        refresh_failure_count: get(row, "refresh_failure_count")?,
        external_id: get(row, "external_id")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        refreshed_at: get(row, "refreshed_at")?,
        version: get(row, "version")?,
    })
}

/// The configuration in a row, or `None` for a credential without any (outer join).
pub(crate) fn configuration(row: &PgRow) -> StoreResult<Option<CredentialConfiguration>> {
    let Some(id) = get::<Option<Uuid>>(row, "cf_id")? else {
        return Ok(None);
    };
    let workflow: String = get(row, "cf_workflow_settings")?;
    let shared: String = get(row, "cf_shared_settings")?;
    Ok(Some(CredentialConfiguration {
        id,
        credential_id: get(row, "cf_credential_id")?,
        is_default: get(row, "cf_is_default")?,
        workflow_settings: json_map(&workflow)?,
        shared_settings: json_map(&shared)?,
        external_id: get(row, "cf_external_id")?,
        created_at: get(row, "cf_created_at")?,
        updated_at: get(row, "cf_updated_at")?,
    }))
}

/// Folds joined rows, ordered by credential, into credentials with their configurations.
pub(crate) fn credentials_with_configurations(
    rows: &[PgRow],
) -> StoreResult<Vec<CredentialWithConfigurations>> {
    let mut out: Vec<CredentialWithConfigurations> = Vec::new();
    for row in rows {
        let id: Uuid = get(row, "id")?;
        if out.last().is_none_or(|last| last.credential.id != id) {
            out.push(CredentialWithConfigurations {
                credential: credential(row)?,
                configurations: Vec::new(),
            });
        }
        if let Some(configuration) = configuration(row)?
            && let Some(last) = out.last_mut()
        {
            last.configurations.push(configuration);
        }
    }
    Ok(out)
}
