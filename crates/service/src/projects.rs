use std::sync::Arc;

use plugboard_core::{Project, ProjectId, SecretKeyRecord, SigningKeyRecord, now_millis};
use plugboard_store::{Store, StoreError};
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};
use crate::keys::{self, SECRET_KEY_PREFIX};
use crate::tokens::TokenVerifier;

pub const MAX_NAME_CHARS: usize = 100;

/// A signing key just added: its record, and the private key if Plugboard generated it
/// (returned this once, never stored).
#[derive(Debug)]
pub struct NewSigningKey {
    pub record: SigningKeyRecord,
    pub private_pem: Option<String>,
}

#[derive(Debug)]
pub struct NewProject {
    pub project: Project,
    pub secret_key: String,
    pub signing_key: NewSigningKey,
}

pub struct ProjectsService {
    store: Arc<dyn Store>,
    tokens: Arc<TokenVerifier>,
}

impl ProjectsService {
    pub fn new(store: Arc<dyn Store>, tokens: Arc<TokenVerifier>) -> Self {
        Self { store, tokens }
    }

    /// Creates a project with one secret key and one signing key: the given public key, or
    /// a generated pair whose private half is returned.
    pub async fn create(
        &self,
        name: &str,
        public_key_pem: Option<&str>,
    ) -> ServiceResult<NewProject> {
        let name = parse_name(name)?;
        let public_key = public_key_pem.map(keys::parse_public_key).transpose()?;
        let project = Project {
            id: ProjectId::new_random(),
            name,
            created_at: now_millis(),
        };
        self.store.create_project(&project).await?;
        self.tokens.invalidate_project(project.id).await;
        let signing_key = self.add_signing_key_parsed(project.id, public_key).await?;
        let (_, secret_key) = self.create_secret_key(project.id, "default").await?;
        Ok(NewProject {
            project,
            secret_key,
            signing_key,
        })
    }

    pub async fn get(&self, id: ProjectId) -> ServiceResult<Project> {
        self.store
            .get_project(id)
            .await?
            .ok_or(ServiceError::ProjectNotFound)
    }

    pub async fn find_by_name(&self, name: &str) -> ServiceResult<Option<Project>> {
        Ok(self.store.find_project_by_name(name).await?)
    }

    /// Resolves a secret key to its record, checking that it belongs to `project`.
    pub async fn authenticate_secret_key(
        &self,
        project: ProjectId,
        plain: &str,
    ) -> ServiceResult<SecretKeyRecord> {
        let record = self.identify_secret_key(plain).await?;
        if record.project_id != project {
            return Err(ServiceError::WrongProject);
        }
        Ok(record)
    }

    /// The active secret key `plain` is, whatever its project (the dashboard's login, where
    /// the key alone names the project).
    pub async fn identify_secret_key(&self, plain: &str) -> ServiceResult<SecretKeyRecord> {
        if !plain.starts_with(SECRET_KEY_PREFIX) {
            return Err(ServiceError::InvalidCredentials);
        }
        self.store
            .find_active_secret_key(&keys::hash_secret(plain))
            .await?
            .ok_or(ServiceError::InvalidCredentials)
    }

    /// Whether the project's secret key `id` exists and is not revoked.
    pub async fn secret_key_is_active(&self, project: ProjectId, id: Uuid) -> ServiceResult<bool> {
        Ok(self
            .store
            .list_secret_keys(project)
            .await?
            .iter()
            .any(|k| k.id == id && k.revoked_at.is_none()))
    }

    /// Up to `limit` projects, oldest first.
    pub async fn list(&self, limit: u32) -> ServiceResult<Vec<Project>> {
        Ok(self.store.list_projects(limit).await?)
    }

    pub async fn add_signing_key(
        &self,
        project: ProjectId,
        public_key_pem: Option<&str>,
    ) -> ServiceResult<NewSigningKey> {
        self.get(project).await?;
        let public_key = public_key_pem.map(keys::parse_public_key).transpose()?;
        self.add_signing_key_parsed(project, public_key).await
    }

    async fn add_signing_key_parsed(
        &self,
        project: ProjectId,
        public_key: Option<String>,
    ) -> ServiceResult<NewSigningKey> {
        let (public_key_pem, private_pem) = match public_key {
            Some(public) => (public, None),
            None => {
                let pair = tokio::task::spawn_blocking(keys::generate_signing_key)
                    .await
                    .map_err(|e| ServiceError::Internal(e.to_string()))??;
                (pair.public_pem, Some(pair.private_pem))
            }
        };
        let record = SigningKeyRecord {
            id: Uuid::new_v4(),
            project_id: project,
            public_key_pem,
            created_at: now_millis(),
            revoked_at: None,
        };
        self.store.insert_signing_key(&record).await?;
        self.tokens.invalidate_project(project).await;
        Ok(NewSigningKey {
            record,
            private_pem,
        })
    }

    pub async fn list_signing_keys(
        &self,
        project: ProjectId,
    ) -> ServiceResult<Vec<SigningKeyRecord>> {
        Ok(self.store.list_signing_keys(project).await?)
    }

    pub async fn revoke_signing_key(&self, project: ProjectId, id: Uuid) -> ServiceResult<()> {
        let result = self
            .store
            .revoke_signing_key(project, id, now_millis())
            .await;
        self.tokens.invalidate_project(project).await;
        result.map_err(not_found_as(ServiceError::KeyNotFound))
    }

    pub async fn create_secret_key(
        &self,
        project: ProjectId,
        name: &str,
    ) -> ServiceResult<(SecretKeyRecord, String)> {
        let name = parse_name(name)?;
        let new_key = keys::generate_secret_key();
        let record = SecretKeyRecord {
            id: Uuid::new_v4(),
            project_id: project,
            name,
            prefix: new_key.prefix,
            hash: new_key.hash,
            created_at: now_millis(),
            revoked_at: None,
        };
        self.store.insert_secret_key(&record).await?;
        Ok((record, new_key.plain))
    }

    pub async fn list_secret_keys(
        &self,
        project: ProjectId,
    ) -> ServiceResult<Vec<SecretKeyRecord>> {
        Ok(self.store.list_secret_keys(project).await?)
    }

    pub async fn revoke_secret_key(&self, project: ProjectId, id: Uuid) -> ServiceResult<()> {
        self.store
            .revoke_secret_key(project, id, now_millis())
            .await
            .map_err(not_found_as(ServiceError::KeyNotFound))
    }
}

fn parse_name(name: &str) -> ServiceResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ServiceError::InvalidInput(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(name.to_owned())
}

pub(crate) fn not_found_as(replacement: ServiceError) -> impl FnOnce(StoreError) -> ServiceError {
    move |e| match e {
        StoreError::NotFound => replacement,
        other => other.into(),
    }
}
