//! `/api/v1`: the management API the SaaS backend calls with a project secret key.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use plugboard_core::{ConnectedUser, ErasedCounts, SecretKeyRecord, SigningKeyRecord};
use plugboard_service::integrations::{ConfiguredIntegration, IntegrationSettings};
use plugboard_service::users::UserListQuery;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Admin, JsonBody, ProjectAdmin, UserIdPath};

pub fn router() -> Router<AppState> {
    let project = "/api/v1/projects/{projectId}";
    Router::new()
        .route("/api/v1/projects", post(create_project))
        .route(project, get(get_project))
        .route(&format!("{project}/users"), get(list_users))
        .route(
            &format!("{project}/users/{{userId}}"),
            get(get_user)
                .put(put_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route(
            &format!("{project}/users/{{userId}}/meta"),
            put(replace_meta),
        )
        .route(
            &format!("{project}/users/{{userId}}/suspend"),
            post(suspend_user),
        )
        .route(
            &format!("{project}/users/{{userId}}/resume"),
            post(resume_user),
        )
        .route(
            &format!("{project}/signing-keys"),
            get(list_signing_keys).post(create_signing_key),
        )
        .route(
            &format!("{project}/signing-keys/{{keyId}}"),
            delete(revoke_signing_key),
        )
        .route(
            &format!("{project}/secret-keys"),
            get(list_secret_keys).post(create_secret_key),
        )
        .route(
            &format!("{project}/secret-keys/{{keyId}}"),
            delete(revoke_secret_key),
        )
        .route(&format!("{project}/integrations"), get(list_integrations))
        .route(
            &format!("{project}/integrations/{{key}}"),
            put(configure_integration),
        )
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-01-01T00:00:00.000Z`.
type Timestamp = String;

use crate::wire::timestamp;

/// A connected user as the management API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub user_id: String,
    #[schema(value_type = Object)]
    pub meta: Map<String, Value>,
    pub suspended: bool,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
    /// When an SDK call last authenticated as this user (recorded within a few seconds).
    pub last_seen: Option<Timestamp>,
}

impl From<ConnectedUser> for UserView {
    fn from(user: ConnectedUser) -> Self {
        Self {
            user_id: user.user_id.to_string(),
            meta: user.meta.as_map().clone(),
            suspended: user.suspended,
            date_created: timestamp(user.created_at),
            date_updated: timestamp(user.updated_at),
            last_seen: user.last_seen_at.map(timestamp),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserListView {
    pub data: Vec<UserView>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetaBody {
    /// Metadata (for PUT, the whole object; for PATCH, a JSON Merge Patch).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub meta: Value,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErasedView {
    pub deleted: ErasedCountsView,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErasedCountsView {
    pub users: u64,
    pub metadata_index_entries: u64,
    pub credentials: u64,
    pub configurations: u64,
}

impl From<ErasedCounts> for ErasedView {
    fn from(c: ErasedCounts) -> Self {
        Self {
            deleted: ErasedCountsView {
                users: c.users,
                metadata_index_entries: c.metadata_index_entries,
                credentials: c.credentials,
                configurations: c.configurations,
            },
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateProjectBody {
    pub name: String,
    /// An RSA public key (PEM) to verify user tokens with; omit to have one generated.
    pub public_key_pem: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedProjectView {
    pub project_id: String,
    pub name: String,
    /// Shown once; only its hash is stored.
    pub secret_key: String,
    pub signing_key: CreatedSigningKeyView,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    pub project_id: String,
    pub name: String,
    pub date_created: Timestamp,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSigningKeyBody {
    /// An RSA public key (PEM, at least 2048 bits); omit to have a pair generated.
    pub public_key_pem: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedSigningKeyView {
    /// Put this in the token header's `kid`.
    pub id: Uuid,
    pub public_key_pem: String,
    /// Only when generated, and only in this answer: Plugboard does not keep it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key_pem: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyView {
    pub id: Uuid,
    pub public_key_pem: String,
    pub date_created: Timestamp,
    pub date_revoked: Option<Timestamp>,
}

impl From<SigningKeyRecord> for SigningKeyView {
    fn from(k: SigningKeyRecord) -> Self {
        Self {
            id: k.id,
            public_key_pem: k.public_key_pem,
            date_created: timestamp(k.created_at),
            date_revoked: k.revoked_at.map(timestamp),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSecretKeyBody {
    #[serde(default = "default_key_name")]
    pub name: String,
}

fn default_key_name() -> String {
    "unnamed".to_owned()
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyView {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub date_created: Timestamp,
    pub date_revoked: Option<Timestamp>,
}

impl From<SecretKeyRecord> for SecretKeyView {
    fn from(k: SecretKeyRecord) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            date_created: timestamp(k.created_at),
            date_revoked: k.revoked_at.map(timestamp),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedSecretKeyView {
    #[serde(flatten)]
    pub key: SecretKeyView,
    /// Shown once; only its hash is stored.
    pub secret_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListView<T> {
    pub data: Vec<T>,
}

/// Creates a project (admin token only).
#[utoipa::path(
    post, path = "/api/v1/projects", tag = "projects",
    request_body = CreateProjectBody,
    responses(
        (status = 201, body = CreatedProjectView),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 403, description = "`admin_disabled`", body = ErrorBody),
        (status = 422, description = "`invalid_public_key`, `invalid_input`, `invalid_body`", body = ErrorBody),
    ),
    security(("adminToken" = []))
)]
pub async fn create_project(
    State(state): State<AppState>,
    _admin: Admin,
    JsonBody(body): JsonBody<CreateProjectBody>,
) -> ApiResult<(StatusCode, Json<CreatedProjectView>)> {
    let created = state
        .services
        .projects
        .create(&body.name, body.public_key_pem.as_deref())
        .await?;
    let view = CreatedProjectView {
        project_id: created.project.id.to_string(),
        name: created.project.name,
        secret_key: created.secret_key,
        signing_key: CreatedSigningKeyView {
            id: created.signing_key.record.id,
            public_key_pem: created.signing_key.record.public_key_pem,
            private_key_pem: created.signing_key.private_pem,
        },
    };
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}", tag = "projects",
    params(("projectId" = String, Path)),
    responses(
        (status = 200, body = ProjectView),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 403, description = "`wrong_project`", body = ErrorBody),
        (status = 404, description = "`project_not_found`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn get_project(
    State(state): State<AppState>,
    auth: ProjectAdmin,
) -> ApiResult<Json<ProjectView>> {
    let project = state.services.projects.get(auth.project).await?;
    Ok(Json(ProjectView {
        project_id: project.id.to_string(),
        name: project.name,
        date_created: timestamp(project.created_at),
    }))
}

/// Lists users, newest first. Query: `q` (case-insensitive prefix of user id, `Name` or
/// `Email`), `meta.<Key>=<value>` (exact match on a top-level scalar; several combine
/// with AND; at most 8), `suspended=true|false`, `integration=<key>` (users who connected
/// it), `credentialStatus=VALID|INVALID|PENDING` (users holding such a credential, of
/// `integration` when given), `limit` (1–500, default 50), `cursor`.
#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/users", tag = "users",
    params(
        ("projectId" = String, Path),
        ("q" = Option<String>, Query, description = "Case-insensitive prefix of user id, Name or Email (≤ 256 chars)"),
        ("suspended" = Option<bool>, Query),
        ("integration" = Option<String>, Query, description = "Only users who connected this integration (its key)"),
        ("credentialStatus" = Option<String>, Query, description = "VALID, INVALID or PENDING: only users holding such a credential"),
        ("limit" = Option<usize>, Query, description = "1 to 500, default 50"),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page"),
    ),
    responses(
        (status = 200, body = UserListView),
        (status = 400, description = "`invalid_filter`, `invalid_cursor`", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 403, description = "`wrong_project`", body = ErrorBody),
        (status = 404, description = "`integration_not_found`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn list_users(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<UserListView>> {
    let query = parse_user_query(query.as_deref().unwrap_or(""))?;
    let list = state.services.users.list(auth.project, query).await?;
    Ok(Json(UserListView {
        data: list.users.into_iter().map(UserView::from).collect(),
        next_cursor: list.next_cursor,
    }))
}

fn parse_user_query(raw: &str) -> ApiResult<UserListQuery> {
    let invalid = |msg: String| ApiError::bad_request("invalid_filter", msg);
    let mut query = UserListQuery::default();
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        match (key.as_ref(), key.strip_prefix("meta.")) {
            (_, Some(meta_key)) if !meta_key.is_empty() => {
                query.meta.push((meta_key.to_owned(), value.into_owned()))
            }
            ("q", _) => query.q = Some(value.into_owned()),
            ("integration", _) => query.integration = Some(value.into_owned()),
            ("credentialStatus", _) => query.credential_status = Some(value.into_owned()),
            ("cursor", _) => query.cursor = Some(value.into_owned()),
            ("limit", _) => {
                query.limit = Some(
                    value
                        .parse()
                        .map_err(|_| invalid(format!("limit must be a number, not `{value}`")))?,
                )
            }
            ("suspended", _) => {
                query.suspended = Some(match value.as_ref() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(invalid(format!(
                            "suspended must be true or false, not `{value}`"
                        )));
                    }
                })
            }
            (other, _) => {
                return Err(invalid(format!(
                    "unknown query parameter `{other}`; expected q, meta.<Key>, suspended, integration, credentialStatus, limit or cursor"
                )));
            }
        }
    }
    Ok(query)
}

#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/users/{userId}", tag = "users",
    params(("projectId" = String, Path), ("userId" = String, Path)),
    responses(
        (status = 200, body = UserView),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 404, description = "`user_not_found`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn get_user(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    UserIdPath(user): UserIdPath,
) -> ApiResult<Json<UserView>> {
    Ok(Json(
        state.services.users.get(auth.project, &user).await?.into(),
    ))
}

/// Creates the user ahead of its first login, or replaces its metadata if it exists.
#[utoipa::path(
    put, path = "/api/v1/projects/{projectId}/users/{userId}", tag = "users",
    params(("projectId" = String, Path), ("userId" = String, Path)),
    request_body = MetaBody,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 200, description = "Existed; metadata replaced", body = UserView),
        (status = 400, description = "`invalid_json`, `invalid_user_id`", body = ErrorBody),
        (status = 413, description = "`metadata_too_large`", body = ErrorBody),
        (status = 422, description = "metadata limit violated", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn put_user(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    UserIdPath(user): UserIdPath,
    JsonBody(body): JsonBody<MetaBody>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let (user, created) = state
        .services
        .users
        .put(auth.project, &user, body.meta)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(user.into())))
}

/// Merges `meta` into the user's metadata (JSON Merge Patch, RFC 7396).
#[utoipa::path(
    patch, path = "/api/v1/projects/{projectId}/users/{userId}", tag = "users",
    params(("projectId" = String, Path), ("userId" = String, Path)),
    request_body = MetaBody,
    responses(
        (status = 200, body = UserView),
        (status = 404, description = "`user_not_found`", body = ErrorBody),
        (status = 409, description = "`concurrent_update`", body = ErrorBody),
        (status = 413, description = "`metadata_too_large`", body = ErrorBody),
        (status = 422, description = "metadata limit violated", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn patch_user(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    UserIdPath(user): UserIdPath,
    JsonBody(body): JsonBody<MetaBody>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(
        state
            .services
            .users
            .patch_meta(auth.project, &user, body.meta)
            .await?
            .into(),
    ))
}

/// Replaces the user's metadata; the body is the new metadata object.
#[utoipa::path(
    put, path = "/api/v1/projects/{projectId}/users/{userId}/meta", tag = "users",
    params(("projectId" = String, Path), ("userId" = String, Path)),
    request_body(content = Object),
    responses(
        (status = 200, body = UserView),
        (status = 404, description = "`user_not_found`", body = ErrorBody),
        (status = 413, description = "`metadata_too_large`", body = ErrorBody),
        (status = 422, description = "metadata limit violated", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn replace_meta(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    UserIdPath(user): UserIdPath,
    JsonBody(meta): JsonBody<Value>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(
        state
            .services
            .users
            .replace_meta(auth.project, &user, meta)
            .await?
            .into(),
    ))
}

/// Suspends the user: its data stays, every SDK call answers 403 `user_suspended`.
#[utoipa::path(
    post, path = "/api/v1/projects/{projectId}/users/{userId}/suspend", tag = "users",
    params(("projectId" = String, Path), ("userId" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, description = "`user_not_found`", body = ErrorBody)),
    security(("secretKey" = []))
)]
pub async fn suspend_user(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    UserIdPath(user): UserIdPath,
) -> ApiResult<Json<UserView>> {
    Ok(Json(
        state
            .services
            .users
            .set_suspended(auth.project, &user, true)
            .await?
            .into(),
    ))
}

#[utoipa::path(
    post, path = "/api/v1/projects/{projectId}/users/{userId}/resume", tag = "users",
    params(("projectId" = String, Path), ("userId" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, description = "`user_not_found`", body = ErrorBody)),
    security(("secretKey" = []))
)]
pub async fn resume_user(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    UserIdPath(user): UserIdPath,
) -> ApiResult<Json<UserView>> {
    Ok(Json(
        state
            .services
            .users
            .set_suspended(auth.project, &user, false)
            .await?
            .into(),
    ))
}

/// Erases the user and everything tied to it; answers with what was deleted.
#[utoipa::path(
    delete, path = "/api/v1/projects/{projectId}/users/{userId}", tag = "users",
    params(("projectId" = String, Path), ("userId" = String, Path)),
    responses((status = 200, body = ErasedView), (status = 404, description = "`user_not_found`", body = ErrorBody)),
    security(("secretKey" = []))
)]
pub async fn delete_user(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    UserIdPath(user): UserIdPath,
) -> ApiResult<Json<ErasedView>> {
    Ok(Json(
        state
            .services
            .users
            .erase(auth.project, &user)
            .await?
            .into(),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/signing-keys", tag = "keys",
    params(("projectId" = String, Path)),
    responses((status = 200, body = ListView<SigningKeyView>), (status = 401, body = ErrorBody)),
    security(("secretKey" = []))
)]
pub async fn list_signing_keys(
    State(state): State<AppState>,
    auth: ProjectAdmin,
) -> ApiResult<Json<ListView<SigningKeyView>>> {
    let keys = state
        .services
        .projects
        .list_signing_keys(auth.project)
        .await?;
    Ok(Json(ListView {
        data: keys.into_iter().map(Into::into).collect(),
    }))
}

/// Registers a public key, or generates a pair and returns the private key once.
#[utoipa::path(
    post, path = "/api/v1/projects/{projectId}/signing-keys", tag = "keys",
    params(("projectId" = String, Path)),
    request_body = CreateSigningKeyBody,
    responses(
        (status = 201, body = CreatedSigningKeyView),
        (status = 422, description = "`invalid_public_key`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn create_signing_key(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    JsonBody(body): JsonBody<CreateSigningKeyBody>,
) -> ApiResult<(StatusCode, Json<CreatedSigningKeyView>)> {
    let key = state
        .services
        .projects
        .add_signing_key(auth.project, body.public_key_pem.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSigningKeyView {
            id: key.record.id,
            public_key_pem: key.record.public_key_pem,
            private_key_pem: key.private_pem,
        }),
    ))
}

/// Revokes a signing key: tokens it signed stop verifying.
#[utoipa::path(
    delete, path = "/api/v1/projects/{projectId}/signing-keys/{keyId}", tag = "keys",
    params(("projectId" = String, Path), ("keyId" = Uuid, Path)),
    responses((status = 204), (status = 404, description = "`key_not_found`", body = ErrorBody)),
    security(("secretKey" = []))
)]
pub async fn revoke_signing_key(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(params): Path<KeyPath>,
) -> ApiResult<StatusCode> {
    let key = parse_key_id(&params.key_id)?;
    state
        .services
        .projects
        .revoke_signing_key(auth.project, key)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/secret-keys", tag = "keys",
    params(("projectId" = String, Path)),
    responses((status = 200, body = ListView<SecretKeyView>), (status = 401, body = ErrorBody)),
    security(("secretKey" = []))
)]
pub async fn list_secret_keys(
    State(state): State<AppState>,
    auth: ProjectAdmin,
) -> ApiResult<Json<ListView<SecretKeyView>>> {
    let keys = state
        .services
        .projects
        .list_secret_keys(auth.project)
        .await?;
    Ok(Json(ListView {
        data: keys.into_iter().map(Into::into).collect(),
    }))
}

/// Creates a secret key; the key itself is in this answer only.
#[utoipa::path(
    post, path = "/api/v1/projects/{projectId}/secret-keys", tag = "keys",
    params(("projectId" = String, Path)),
    request_body = CreateSecretKeyBody,
    responses((status = 201, body = CreatedSecretKeyView), (status = 422, body = ErrorBody)),
    security(("secretKey" = []))
)]
pub async fn create_secret_key(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    JsonBody(body): JsonBody<CreateSecretKeyBody>,
) -> ApiResult<(StatusCode, Json<CreatedSecretKeyView>)> {
    let (record, plain) = state
        .services
        .projects
        .create_secret_key(auth.project, &body.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSecretKeyView {
            key: record.into(),
            secret_key: plain,
        }),
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/projects/{projectId}/secret-keys/{keyId}", tag = "keys",
    params(("projectId" = String, Path), ("keyId" = Uuid, Path)),
    responses((status = 204), (status = 404, description = "`key_not_found`", body = ErrorBody)),
    security(("secretKey" = []))
)]
pub async fn revoke_secret_key(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(params): Path<KeyPath>,
) -> ApiResult<StatusCode> {
    let key = parse_key_id(&params.key_id)?;
    state
        .services
        .projects
        .revoke_secret_key(auth.project, key)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPath {
    key_id: String,
}

fn parse_key_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "key_not_found", "key ids are UUIDs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_query_parses_dynamic_meta_keys() {
        let q = parse_user_query(
            "q=jo&meta.Email=a%40b.c&meta.plan=pro&suspended=false&limit=10&cursor=abc",
        )
        .unwrap();
        assert_eq!(q.q.as_deref(), Some("jo"));
        assert_eq!(
            q.meta,
            vec![
                ("Email".into(), "a@b.c".into()),
                ("plan".into(), "pro".into())
            ]
        );
        assert_eq!(q.suspended, Some(false));
        assert_eq!(q.limit, Some(10));
        assert_eq!(q.cursor.as_deref(), Some("abc"));
        assert!(parse_user_query("suspended=yes").is_err());
        assert!(parse_user_query("limit=ten").is_err());
        assert!(parse_user_query("email=x").is_err());
        assert!(parse_user_query("meta.=x").is_err());
    }
}

/// An integration as the management API shows it; the client secret never leaves the server.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationView {
    /// The id the SDK uses (`integrationId`).
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub active: bool,
    pub oauth_client_id: Option<String>,
    pub has_oauth_client_secret: bool,
    /// Scopes requested at connect time: the override if set, else the provider's defaults.
    pub scopes: Option<Vec<String>>,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

impl From<&ConfiguredIntegration> for IntegrationView {
    fn from(ci: &ConfiguredIntegration) -> Self {
        let i = &ci.integration;
        Self {
            id: i.id,
            key: i.key.to_string(),
            name: ci.spec.name.clone(),
            active: i.active,
            oauth_client_id: i.oauth_client_id.clone(),
            has_oauth_client_secret: i.oauth_client_secret_sealed.is_some(),
            scopes: i.scopes.clone(),
            date_created: timestamp(i.created_at),
            date_updated: timestamp(i.updated_at),
        }
    }
}

/// Settings of a project integration; omitted fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigureIntegrationBody {
    pub oauth_client_id: Option<String>,
    /// Stored encrypted; never returned.
    pub oauth_client_secret: Option<String>,
    /// Replaces the provider's default scopes.
    pub scopes: Option<Vec<String>>,
    pub active: Option<bool>,
    /// For a custom integration (`custom.<slug>`): its definition, with the fields of a
    /// provider file (`name`, `brand_color`, `category`, `auth`, `api_base_url`,
    /// `account_id`…; see `providers/README.md`). Required the first time.
    #[schema(value_type = Option<Object>)]
    pub definition: Option<Value>,
}

#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/integrations", tag = "integrations",
    params(("projectId" = String, Path)),
    responses((status = 200, body = ListView<IntegrationView>)),
    security(("secretKey" = []))
)]
pub async fn list_integrations(
    State(state): State<AppState>,
    auth: ProjectAdmin,
) -> ApiResult<Json<ListView<IntegrationView>>> {
    let configured = state.services.integrations.list(auth.project).await?;
    Ok(Json(ListView {
        data: configured.iter().map(IntegrationView::from).collect(),
    }))
}

/// Turns an integration on for the project (or changes it), with the project's OAuth app:
/// a catalog provider by its key, or a custom integration (`custom.<slug>`) with its
/// `definition`. The SDK lists it from then on.
#[utoipa::path(
    put, path = "/api/v1/projects/{projectId}/integrations/{key}", tag = "integrations",
    params(("projectId" = String, Path), ("key" = String, Path, description = "Provider key, e.g. `salesforce`")),
    request_body = ConfigureIntegrationBody,
    responses(
        (status = 200, body = IntegrationView),
        (status = 422, description = "`unknown_integration`, `invalid_input`, `invalid_body`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn configure_integration(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(params): Path<IntegrationPath>,
    JsonBody(body): JsonBody<ConfigureIntegrationBody>,
) -> ApiResult<Json<IntegrationView>> {
    let settings = IntegrationSettings {
        oauth_client_id: body.oauth_client_id,
        oauth_client_secret: body.oauth_client_secret,
        scopes: body.scopes,
        active: body.active,
        definition: body.definition,
    };
    let configured = state
        .services
        .integrations
        .configure(auth.project, &params.key, settings)
        .await?;
    Ok(Json(IntegrationView::from(&configured)))
}

#[derive(Deserialize)]
pub struct IntegrationPath {
    key: String,
}
