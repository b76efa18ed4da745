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
