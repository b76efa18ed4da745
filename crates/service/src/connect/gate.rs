//! The refresh gate: every use of a connection's token comes through here. Tokens about
//! to expire (or refused by the provider) are refreshed by exactly one caller across all
//! nodes, chosen by a lease on the credential's row; the others wait for its result.

use std::time::{Duration, Instant};

use plugboard_connect::catalog::AuthSpec;
use plugboard_connect::credentials::CredentialSecrets;
use plugboard_connect::oauth::{OAuthError, TokenSet};
use plugboard_core::{
    Credential, CredentialStatus, CredentialWithConfigurations, ProjectId, UserId, now_millis,
};
use plugboard_store::{CredentialSecretsWrite, StoreError};
use rand::Rng;
use uuid::Uuid;

use super::manage::app_of;
use super::{ConnectService, UpstreamError, UsableCredential, inputs_of, of_integration};
use crate::connect::flow::client_credentials_scopes;
use crate::error::{ServiceError, ServiceResult};
use crate::integrations::ConfiguredIntegration;

/// How often a caller waiting on another's refresh looks at the credential again.
const WAIT_POLL: Duration = Duration::from_millis(40);
/// The longest `Retry-After` a refresh waits out; longer ones fail at once.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

impl ConnectService {
    /// The user's credential for `integration` (the selected one when it belongs to this
    /// integration, else the oldest), with secrets fresh enough to use.
    pub async fn usable(
        &self,
        project: ProjectId,
        user: &UserId,
        integration: &str,
        selected: Option<Uuid>,
    ) -> ServiceResult<UsableCredential> {
        let configured = self.active_integration(project, integration).await?;
        let chosen = self
            .chosen_credential(project, user, &configured, selected)
            .await?;
        if chosen.credential.status == CredentialStatus::Invalid {
            return Err(ServiceError::CredentialInvalid(integration.to_owned()));
        }
        self.ensure_fresh(configured, chosen.credential, false)
            .await
    }

    /// The user's credential of `configured`: the selected one when it belongs to this
    /// integration (a header naming another one is ignored, §E11), else the oldest.
    pub async fn chosen_credential(
        &self,
        project: ProjectId,
        user: &UserId,
        configured: &ConfiguredIntegration,
        selected: Option<Uuid>,
    ) -> ServiceResult<CredentialWithConfigurations> {
        let mut all = of_integration(
            self.store.list_credentials(project, user).await?,
            configured.integration.id,
        );
        let index = selected
            .and_then(|id| all.iter().position(|c| c.credential.id == id))
            .unwrap_or(0);
        if index >= all.len() {
            return Err(ServiceError::NotConnected(
                configured.integration.key.to_string(),
            ));
        }
        Ok(all.swap_remove(index))
    }

    /// `credential` with fresh secrets. `force` refreshes even an unexpired token (the
    /// provider refused it), unless someone else refreshed it since it was read.
    pub(crate) async fn ensure_fresh(
        &self,
        configured: ConfiguredIntegration,
        credential: Credential,
        force: bool,
    ) -> ServiceResult<UsableCredential> {
        let secrets = self.open_secrets(&credential)?;
        let refreshable = matches!(secrets, CredentialSecrets::Tokens(_));
        if !refreshable || (!force && !self.needs_refresh(&secrets)) {
            return Ok(UsableCredential {
                integration: configured,
                credential,
                secrets,
            });
        }
        self.refresh_single_flight(configured, credential, force)
            .await
    }

    fn needs_refresh(&self, secrets: &CredentialSecrets) -> bool {
        let margin = self.settings.refresh_margin.as_millis() as i64;
        secrets
            .tokens()
            .and_then(|t| t.expires_at)
            .is_some_and(|at| at - now_millis() < margin)
    }

    /// Long enough for every attempt of one refresh, so a lease never lapses under a
    /// holder that is still working.
    fn lease_length(&self) -> Duration {
        let attempts = self.settings.refresh_attempts.max(1);
        let work = (self.settings.provider_timeout + MAX_RETRY_AFTER) * attempts;
        self.settings
            .refresh_lease
            .max(work + Duration::from_secs(5))
    }

    async fn refresh_single_flight(
        &self,
        configured: ConfiguredIntegration,
        seen: Credential,
        force: bool,
    ) -> ServiceResult<UsableCredential> {
        let holder = Uuid::new_v4().to_string();
        let lease = self.lease_length();
        let give_up = Instant::now() + lease + Duration::from_secs(5);
        loop {
            let now = now_millis();
            let until = now + lease.as_millis() as i64;
            if self
                .store
                .try_acquire_refresh_lease(seen.id, &holder, now, until)
                .await?
            {
                let result = self.refresh_holding_lease(&configured, &seen, force).await;
                if let Err(e) = self.store.release_refresh_lease(seen.id, &holder).await {
                    tracing::warn!(credential = %seen.id, error = %e, "could not release the refresh lease; it lapses by itself");
                }
                return result.map(|(credential, secrets)| UsableCredential {
                    integration: configured,
                    credential,
                    secrets,
                });
            }
            tokio::time::sleep(WAIT_POLL).await;
            let current = self.reread(&seen).await?;
            if current.version != seen.version {
                if current.status == CredentialStatus::Invalid {
                    return Err(invalid(&configured));
                }
                let secrets = self.open_secrets(&current)?;
                if !self.needs_refresh(&secrets) {
                    return Ok(UsableCredential {
                        integration: configured,
                        credential: current,
                        secrets,
                    });
                }
            }
            if Instant::now() > give_up {
                return Err(UpstreamError::Unavailable(
                    "another refresh of this credential did not finish in time".into(),
                )
                .into());
            }
        }
    }

    async fn reread(&self, seen: &Credential) -> ServiceResult<Credential> {
        self.store
            .get_credential(seen.project_id, &seen.user_id, seen.id)
            .await?
            .map(|c| c.credential)
            .ok_or(ServiceError::CredentialNotFound)
    }

    async fn refresh_holding_lease(
        &self,
        configured: &ConfiguredIntegration,
        seen: &Credential,
        force: bool,
    ) -> ServiceResult<(Credential, CredentialSecrets)> {
        let current = self.reread(seen).await?;
        if current.status == CredentialStatus::Invalid {
            return Err(invalid(configured));
        }
        let secrets = self.open_secrets(&current)?;
        let refreshed_meanwhile = current.version != seen.version;
        if (refreshed_meanwhile || !force) && !self.needs_refresh(&secrets) {
            return Ok((current, secrets));
        }
        let CredentialSecrets::Tokens(tokens) = &secrets else {
            return Ok((current, secrets));
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.request_tokens(configured, &current, tokens).await {
                Ok(fresh) => return self.store_refreshed(configured, &current, fresh).await,
                Err(e) if e.is_permanent() => {
                    tracing::warn!(credential = %current.id, error = %e, "refresh refused for good; credential marked INVALID");
                    self.store
                        .set_credential_status(
                            current.project_id,
                            current.id,
                            CredentialStatus::Invalid,
                            current.refresh_failure_count + 1,
                            now_millis(),
                            &[credential_invalid_event(configured, &current)],
                        )
                        .await?;
                    return Err(invalid(configured));
                }
                Err(e) => {
                    let wait = backoff(attempt, e.retry_after());
                    if attempt >= self.settings.refresh_attempts || wait.is_none() {
                        tracing::warn!(credential = %current.id, error = %e, attempt, "refresh failed; will try again on next use");
                        self.store
                            .set_credential_status(
                                current.project_id,
                                current.id,
                                current.status,
                                current.refresh_failure_count + 1,
                                now_millis(),
                                &[],
                            )
                            .await?;
                        return Err(transient(e).into());
                    }
                    tokio::time::sleep(wait.unwrap_or_default()).await;
                }
            }
        }
    }

    async fn request_tokens(
        &self,
        configured: &ConfiguredIntegration,
        credential: &Credential,
        tokens: &TokenSet,
    ) -> Result<TokenSet, OAuthError> {
        let secret = self
            .integrations
            .client_secret(configured)
            .map_err(|e| OAuthError::BadResponse(e.to_string()))?;
        let app = app_of(configured, secret.as_deref());
        let inputs = inputs_of(&credential.provider_data);
        match &configured.spec.auth {
            AuthSpec::Oauth2ClientCredentials(_) => {
                let scopes = client_credentials_scopes(configured);
                self.client
                    .client_credentials(&configured.spec, app, &scopes, &inputs)
                    .await
            }
            _ => {
                self.client
                    .refresh(&configured.spec, app, tokens, &inputs)
                    .await
            }
        }
    }

    /// Stores new tokens before anyone uses them, so a rotated refresh token is never
    /// lost.
    async fn store_refreshed(
        &self,
        configured: &ConfiguredIntegration,
        current: &Credential,
        fresh: TokenSet,
    ) -> ServiceResult<(Credential, CredentialSecrets)> {
        let now = now_millis();
        let expires_at = fresh.expires_at;
        let secrets = CredentialSecrets::Tokens(fresh);
        let sealed = self.seal_secrets(current.project_id, current.id, &secrets)?;
        let written = self
            .store
            .update_credential_secrets(CredentialSecretsWrite {
                project_id: current.project_id,
                credential_id: current.id,
                secrets_sealed: &sealed,
                expires_at,
                refreshed_at: Some(now),
                expected_version: current.version,
                now,
            })
            .await;
        match written {
            Ok(credential) => {
                tracing::info!(credential = %credential.id, integration = %configured.integration.key, "tokens refreshed");
                Ok((credential, secrets))
            }
            // The user reconnected meanwhile: their new tokens win.
            Err(StoreError::Conflict(_)) => {
                let latest = self.reread(current).await?;
                let secrets = self.open_secrets(&latest)?;
                Ok((latest, secrets))
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn invalid(configured: &ConfiguredIntegration) -> ServiceError {
    ServiceError::CredentialInvalid(configured.integration.key.to_string())
}

fn transient(e: OAuthError) -> UpstreamError {
    match e {
        OAuthError::RateLimited { retry_after } => UpstreamError::RateLimited { retry_after },
        other => UpstreamError::Unavailable(other.to_string()),
    }
}

/// The wait before try `attempt + 1`: exponential from 200 ms with jitter, or what the
/// provider asked for. `None` when the provider asked for longer than is worth waiting.
fn backoff(attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
    if let Some(asked) = retry_after {
        return (asked <= MAX_RETRY_AFTER).then_some(asked);
    }
    let base = Duration::from_millis(200) * 2u32.saturating_pow(attempt.saturating_sub(1));
    let jitter = Duration::from_millis(rand::rng().random_range(0..100));
    Some(base.min(Duration::from_secs(3)) + jitter)
}

/// `credential.invalid`: the user must connect the integration again.
fn credential_invalid_event(
    configured: &ConfiguredIntegration,
    credential: &Credential,
) -> plugboard_core::OutboxEvent {
    plugboard_core::OutboxEvent::new(
        credential.project_id,
        "credential.invalid",
        serde_json::json!({
            "userId": credential.user_id.as_str(),
            "integration": configured.integration.key.as_str(),
            "credentialId": credential.id,
        }),
        now_millis(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        let first = backoff(1, None).unwrap();
        let third = backoff(3, None).unwrap();
        assert!(first >= Duration::from_millis(200) && first < Duration::from_millis(300));
        assert!(third >= Duration::from_millis(800));
        assert_eq!(
            backoff(1, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(backoff(1, Some(Duration::from_secs(60))), None);
    }
}
