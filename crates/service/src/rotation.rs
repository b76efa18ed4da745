//! Master key rotation: re-seals every stored secret that is not sealed under the current
//! master key (credentials, project integrations' client secrets, project environments,
//! users' secret metadata, webhook signing secrets).

use plugboard_connect::vault::Vault;
use plugboard_core::{ProjectId, SealedColumn};
use plugboard_store::Store;
use serde::Serialize;
use uuid::Uuid;

use crate::connect::credential_context;
use crate::error::{ServiceError, ServiceResult};
use crate::integrations::secret_context_for;

const PAGE: u32 = 500;

/// What a rotation did, per kind of secret.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResealReport {
    /// Values re-sealed under the current key.
    pub resealed: u64,
    /// Values already under the current key.
    pub current: u64,
    /// Values that changed while being re-sealed (a refresh wrote new, current ones).
    pub changed_meanwhile: u64,
}

/// Re-seals every secret under the vault's current key. Safe to run while servers run
/// and to run again: each row is replaced only if it still holds what was read.
pub async fn reseal_all(store: &dyn Store, vault: &Vault) -> ServiceResult<RotationReport> {
    Ok(RotationReport {
        credentials: reseal_column(store, vault, SealedColumn::CredentialSecrets).await?,
        client_secrets: reseal_column(store, vault, SealedColumn::IntegrationClientSecret).await?,
        project_env: reseal_column(store, vault, SealedColumn::ProjectEnv).await?,
        user_secrets: reseal_column(store, vault, SealedColumn::UserSecrets).await?,
        webhook_secrets: reseal_column(store, vault, SealedColumn::WebhookSecret).await?,
        previous_webhook_secrets: reseal_column(store, vault, SealedColumn::WebhookPreviousSecret)
            .await?,
    })
}

/// What a rotation did, per column.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationReport {
    pub credentials: ResealReport,
    pub client_secrets: ResealReport,
    pub project_env: ResealReport,
    pub user_secrets: ResealReport,
    pub webhook_secrets: ResealReport,
    /// Secrets a rotation keeps signing with for a while.
    pub previous_webhook_secrets: ResealReport,
}

async fn reseal_column(
    store: &dyn Store,
    vault: &Vault,
    column: SealedColumn,
) -> ServiceResult<ResealReport> {
    let mut report = ResealReport::default();
    let mut after: Option<Uuid> = None;
    loop {
        let page = store.list_sealed(column, after, PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(report);
        };
        after = Some(last.id);
        for row in &page {
            if !vault.needs_reseal(&row.sealed) {
                report.current += 1;
                continue;
            }
            let context = context_of(column, row.project_id, row.id, row.key.as_deref());
            let resealed = vault.reseal(&row.sealed, &context).map_err(|e| {
                ServiceError::Internal(format!("cannot open {column:?} {}: {e}", row.id))
            })?;
            if store
                .replace_sealed(column, row.id, &row.sealed, &resealed)
                .await?
            {
                report.resealed += 1;
            } else {
                report.changed_meanwhile += 1;
            }
        }
    }
}

/// How many stored values of each kind the start-up check looks at.
const CHECK_SAMPLE: u32 = 50;

/// Why a server must not start with its configured master keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    #[error(
        "the stored {what} are sealed under master key {found}, which is neither `master_key` \
         (key {current}) nor one of `previous_master_keys`; configure the key they were sealed \
         with (after `plugboard keys rotate`, the new one)"
    )]
    UnknownKey {
        what: &'static str,
        found: String,
        current: String,
    },
    #[error(
        "a stored {what} value (id {id}) does not open with the configured master keys: {reason}"
    )]
    Unopenable {
        what: &'static str,
        id: Uuid,
        reason: String,
    },
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Checks, before a server starts, that its master keys open the stored secrets: a
/// sample of each kind must name a configured key, and the first of each must open.
/// Without this, a server started with an old key after a rotation would answer 500 on
/// every use of a credential.
pub async fn check_master_keys(store: &dyn Store, vault: &Vault) -> Result<(), KeyCheckError> {
    for column in ALL_COLUMNS {
        let what = column_name(column);
        let sample = store
            .list_sealed(column, None, CHECK_SAMPLE)
            .await
            .map_err(ServiceError::from)?;
        for row in &sample {
            if let Err(plugboard_connect::vault::VaultError::UnknownKey(found)) =
                vault.check_key_of(&row.sealed)
            {
                return Err(KeyCheckError::UnknownKey {
                    what,
                    found,
                    current: vault.current_key_id().to_owned(),
                });
            }
        }
        if let Some(row) = sample.first() {
            let context = context_of(column, row.project_id, row.id, row.key.as_deref());
            vault
                .open(&row.sealed, &context)
                .map_err(|e| KeyCheckError::Unopenable {
                    what,
                    id: row.id,
                    reason: e.to_string(),
                })?;
        }
    }
    Ok(())
}

const ALL_COLUMNS: [SealedColumn; 6] = [
    SealedColumn::CredentialSecrets,
    SealedColumn::IntegrationClientSecret,
    SealedColumn::ProjectEnv,
    SealedColumn::UserSecrets,
    SealedColumn::WebhookSecret,
    SealedColumn::WebhookPreviousSecret,
];

fn column_name(column: SealedColumn) -> &'static str {
    match column {
        SealedColumn::CredentialSecrets => "credentials",
        SealedColumn::IntegrationClientSecret => "OAuth client secrets",
        SealedColumn::ProjectEnv => "project environments",
        SealedColumn::UserSecrets => "users' secret metadata",
        SealedColumn::WebhookSecret | SealedColumn::WebhookPreviousSecret => {
            "webhook signing secrets"
        }
    }
}

fn context_of(column: SealedColumn, project: ProjectId, id: Uuid, key: Option<&str>) -> Vec<u8> {
    match column {
        SealedColumn::CredentialSecrets => credential_context(project, id),
        SealedColumn::IntegrationClientSecret => {
            secret_context_for(project, key.unwrap_or_default())
        }
        SealedColumn::ProjectEnv => crate::workflows::env::env_context(project),
        SealedColumn::UserSecrets => match plugboard_core::UserId::parse(key.unwrap_or_default()) {
            Ok(user) => crate::policy::secrets_context(project, &user),
            Err(_) => Vec::new(),
        },
        SealedColumn::WebhookSecret | SealedColumn::WebhookPreviousSecret => {
            crate::webhooks::secret_context(id)
        }
    }
}
