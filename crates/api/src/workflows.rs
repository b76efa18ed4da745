//! Workflows: deploying them, users enabling them (SDK and management API), app events
//! that start them, and the task history.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plugboard_core::{Execution, ExecutionFilter, ExecutionStatus, UserId, WorkflowVersion};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::connect::{CREDENTIAL_HEADER, selected};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, ProjectAdmin, SdkUser, UserIdPath};
use crate::management::ListView;
use crate::query::{parse_limit, parse_time};
use crate::wire::timestamp;

/// Routes the SDK calls with a user token (mounted under the SDK's CORS layer).
pub fn sdk_router() -> Router<AppState> {
    Router::new()
        .route(
            "/projects/{projectId}/sdk/workflows/{workflowId}",
            post(sdk_enable).delete(sdk_disable),
        )
        .route("/projects/{projectId}/sdk/events/trigger", post(sdk_event))
        .route(
            "/projects/{projectId}/sdk/triggers/{workflowId}",
            post(sdk_request_trigger),
        )
        .route(
            "/v2/projects/{projectId}/sdk/events/trigger",
            post(sdk_event),
        )
}

pub fn router() -> Router<AppState> {
    let project = "/api/v1/projects/{projectId}";
    Router::new()
        .route(&format!("{project}/workflows"), get(list_workflows))
        .route(&format!("{project}/workflows/{{workflowId}}"), put(deploy))
        .route(
            &format!("{project}/users/{{userId}}/workflows/{{workflowId}}"),
            post(admin_enable).delete(admin_disable),
        )
        .route(&format!("{project}/events"), post(admin_event))
        .route(&format!("{project}/env"), get(get_env).put(put_env))
        .route(&format!("{project}/executions"), get(list_executions))
        .route(
            &format!("{project}/executions/{{executionId}}"),
            get(get_execution),
        )
        .route(
            &format!("{project}/executions/{{executionId}}/replay"),
            post(replay_execution),
        )
}

/// A deployed workflow (its current version).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowView {
    pub id: String,
    pub version: i64,
    pub name: String,
    pub integration: String,
    /// `event`, `request`, `schedule` or `integration_enabled`.
    pub trigger: String,
    pub event: Option<String>,
    pub date_deployed: String,
    #[schema(value_type = Object)]
    pub definition: Value,
}

impl From<WorkflowVersion> for WorkflowView {
    fn from(w: WorkflowVersion) -> Self {
        Self {
            name: w.definition["name"].as_str().unwrap_or_default().to_owned(),
            id: w.workflow_id,
            version: w.version,
            integration: w.integration,
            trigger: w.trigger_kind,
            event: w.event,
            date_deployed: timestamp(w.created_at),
            definition: w.definition,
        }
    }
}

/// Deploys a workflow file (YAML or JSON) as a new version; running executions finish on
/// the version they started with.
#[utoipa::path(
    put, path = "/api/v1/projects/{projectId}/workflows/{workflowId}", tag = "workflows",
    params(("projectId" = String, Path), ("workflowId" = String, Path)),
    request_body(content = String, description = "The workflow, YAML or JSON", content_type = "application/yaml"),
    responses(
        (status = 200, body = WorkflowView),
        (status = 422, description = "`invalid_input` naming the field and the reason", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn deploy(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(path): Path<WorkflowPathWithProject>,
    body: Bytes,
) -> ApiResult<Json<WorkflowView>> {
    let source = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_body", "the workflow must be UTF-8 text"))?;
    let deployed = state
        .services
        .workflows
        .deploy(auth.project, source, Some(&path.workflow_id))
        .await?;
    Ok(Json(deployed.into()))
}

#[derive(Deserialize)]
pub struct WorkflowPathWithProject {
    #[serde(rename = "projectId")]
    _project_id: String,
    #[serde(rename = "workflowId")]
    workflow_id: String,
}

#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/workflows", tag = "workflows",
    params(("projectId" = String, Path)),
    responses((status = 200, body = ListView<WorkflowView>)),
    security(("secretKey" = []))
)]
pub async fn list_workflows(
    State(state): State<AppState>,
    auth: ProjectAdmin,
) -> ApiResult<Json<ListView<WorkflowView>>> {
    let list = state.services.workflows.list(auth.project).await?;
    Ok(Json(ListView {
        data: list.into_iter().map(WorkflowView::from).collect(),
    }))
}

async fn set_enabled(
    state: &AppState,
    project: plugboard_core::ProjectId,
    user: &UserId,
    workflow: &str,
    enabled: bool,
    headers: &HeaderMap,
) -> ApiResult<Json<Value>> {
    state
        .services
        .workflows
        .set_enabled(
            project,
            user,
            workflow,
            enabled,
            selected(headers, CREDENTIAL_HEADER),
        )
        .await?;
    Ok(Json(json!({ "workflowId": workflow, "enabled": enabled })))
}

/// `enableWorkflow` (§B.5).
async fn sdk_enable(
    State(state): State<AppState>,
    auth: SdkUser,
    headers: HeaderMap,
    Path((_, workflow)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    set_enabled(
        &state,
        auth.project,
        &auth.user.user_id,
        &workflow,
        true,
        &headers,
    )
    .await
}

/// `disableWorkflow` (§B.5).
async fn sdk_disable(
    State(state): State<AppState>,
    auth: SdkUser,
    headers: HeaderMap,
    Path((_, workflow)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    set_enabled(
        &state,
        auth.project,
        &auth.user.user_id,
        &workflow,
        false,
        &headers,
    )
    .await
}

/// Turns a workflow on for a user (on the selected credential with `X-Paragon-Credential`,
/// else the default one).
#[utoipa::path(
    post, path = "/api/v1/projects/{projectId}/users/{userId}/workflows/{workflowId}", tag = "workflows",
    params(("projectId" = String, Path), ("userId" = String, Path), ("workflowId" = String, Path)),
    responses(
        (status = 200, description = "`{workflowId, enabled}`"),
        (status = 404, description = "`workflow_not_found`, `not_connected`, `user_not_found`", body = ErrorBody),
        (status = 409, description = "`credential_invalid`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn admin_enable(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    UserIdPath(user): UserIdPath,
    headers: HeaderMap,
    Path(path): Path<UserWorkflowPath>,
) -> ApiResult<Json<Value>> {
    state.services.users.get(auth.project, &user).await?;
    set_enabled(
        &state,
        auth.project,
        &user,
        &path.workflow_id,
        true,
        &headers,
    )
    .await
}

/// Turns a workflow off for a user and cancels its pending runs.
#[utoipa::path(
    delete, path = "/api/v1/projects/{projectId}/users/{userId}/workflows/{workflowId}", tag = "workflows",
    params(("projectId" = String, Path), ("userId" = String, Path), ("workflowId" = String, Path)),
    responses((status = 200, description = "`{workflowId, enabled}`")),
    security(("secretKey" = []))
)]
pub async fn admin_disable(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    UserIdPath(user): UserIdPath,
    headers: HeaderMap,
    Path(path): Path<UserWorkflowPath>,
) -> ApiResult<Json<Value>> {
    state.services.users.get(auth.project, &user).await?;
    set_enabled(
        &state,
        auth.project,
        &user,
        &path.workflow_id,
        false,
        &headers,
    )
    .await
}

#[derive(Deserialize)]
pub struct UserWorkflowPath {
    #[serde(rename = "projectId")]
    _project_id: String,
    #[serde(rename = "userId")]
    _user_id: String,
    #[serde(rename = "workflowId")]
    workflow_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EventBody {
    /// The event name workflows subscribe to.
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// An app event from the browser SDK (`event`, §B.7).
async fn sdk_event(
    State(state): State<AppState>,
    auth: SdkUser,
    JsonBody(body): JsonBody<EventBody>,
) -> ApiResult<Json<Value>> {
    let executions = state
        .services
        .workflows
        .trigger_event(auth.project, &auth.user.user_id, &body.name, body.payload)
        .await?;
    Ok(Json(json!({ "executions": ids(&executions) })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminEventBody {
    pub user_id: String,
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// An app event for a user, from the SaaS backend: starts every workflow subscribed to
/// `name` that the user has enabled.
#[utoipa::path(
    post, path = "/api/v1/projects/{projectId}/events", tag = "workflows",
    params(("projectId" = String, Path)),
    request_body = AdminEventBody,
    responses(
        (status = 202, description = "`{executions: [id…]}`"),
        (status = 404, description = "`user_not_found`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn admin_event(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    JsonBody(body): JsonBody<AdminEventBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = UserId::parse(&body.user_id).map_err(plugboard_service::ServiceError::from)?;
    state.services.users.get(auth.project, &user).await?;
    let executions = state
        .services
        .workflows
        .trigger_event(auth.project, &user, &body.name, body.payload)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "executions": ids(&executions) })),
    ))
}

/// `workflow(...)` (§B.8): runs a request-triggered workflow and answers with its
/// `respond` step's status and body if it finishes in time, else 202 with the execution.
async fn sdk_request_trigger(
    State(state): State<AppState>,
    auth: SdkUser,
    headers: HeaderMap,
    Path((_, workflow)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    // The SDK JSON-encodes whatever it is given, so the body is JSON or empty.
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(
                "invalid_json",
                format!("request body is not valid JSON: {e}"),
            )
        })?
    };
    let query: serde_json::Map<String, Value> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
    let forwarded: serde_json::Map<String, Value> = headers
        .iter()
        .filter(|(name, _)| {
            name.as_str().starts_with("x-") && !name.as_str().starts_with("x-paragon-")
        })
        .filter_map(|(name, value)| {
            Some((
                name.to_string(),
                Value::String(value.to_str().ok()?.to_owned()),
            ))
        })
        .collect();
    let request = json!({ "body": body, "query": query, "headers": forwarded });
    let (execution, answer) = state
        .services
        .workflows
        .trigger_request(auth.project, &auth.user.user_id, &workflow, request)
        .await?;
    Ok(match answer {
        Some((status, body)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            Json(body),
        ),
        None => (
            StatusCode::ACCEPTED,
            Json(json!({ "executionId": execution.id, "status": execution.status.as_str() })),
        ),
    })
}

fn ids(executions: &[Execution]) -> Vec<Uuid> {
    executions.iter().map(|e| e.id).collect()
}

/// One execution in the task history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionView {
    pub id: Uuid,
    pub user_id: String,
    pub workflow_id: String,
    pub workflow_version: i64,
    pub integration: String,
    /// `QUEUED`, `EXECUTING`, `DELAYED`, `SUCCEEDED`, `FAILED` or `CANCELLED`.
    pub status: String,
    #[schema(value_type = Object)]
    pub trigger: Value,
    pub error: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    pub runs: i32,
    pub date_created: String,
    pub date_started: Option<String>,
    pub date_ended: Option<String>,
}

impl From<Execution> for ExecutionView {
    fn from(e: Execution) -> Self {
        Self {
            id: e.id,
            user_id: e.user_id.to_string(),
            workflow_id: e.workflow_id,
            workflow_version: e.workflow_version,
            integration: e.integration,
            status: e.status.as_str().to_owned(),
            trigger: e.trigger,
            error: e.error,
            output: e.output,
            runs: e.runs,
            date_created: timestamp(e.created_at),
            date_started: e.started_at.map(timestamp),
            date_ended: e.finished_at.map(timestamp),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionPage {
    pub data: Vec<ExecutionView>,
    /// Pass back as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// The task history, newest first: filter by `userId`, `meta.<Key>=<value>` (the user's
/// metadata, served by the metadata index), `workflowId`, `integration`, `status`,
/// `since`/`until` (RFC 3339), with `limit` (1–100, default 50) and `cursor`.
#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/executions", tag = "workflows",
    params(("projectId" = String, Path)),
    responses(
        (status = 200, body = ExecutionPage),
        (status = 400, description = "`invalid_filter`, `invalid_cursor`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn list_executions(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ExecutionPage>> {
    let filter = parse_filter(query.as_deref().unwrap_or(""))?;
    let limit = filter.limit;
    let list = state
        .services
        .workflows
        .executions(auth.project, filter)
        .await?;
    let next_cursor = (list.len() as u32 == limit)
        .then(|| list.last().map(|e| cursor_of(e.created_at, e.id)))
        .flatten();
    Ok(Json(ExecutionPage {
        data: list.into_iter().map(ExecutionView::from).collect(),
        next_cursor,
    }))
}

fn cursor_of(at: i64, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("x1:{at}:{id}"))
}

fn parse_cursor(raw: &str) -> Option<(i64, Uuid)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    let mut parts = text.splitn(3, ':');
    (parts.next()? == "x1").then_some(())?;
    let at = parts.next()?.parse().ok()?;
    let id = Uuid::try_parse(parts.next()?).ok()?;
    Some((at, id))
}

fn parse_filter(raw: &str) -> ApiResult<ExecutionFilter> {
    let invalid = |msg: String| ApiError::bad_request("invalid_filter", msg);
    let mut filter = ExecutionFilter {
        limit: 50,
        ..ExecutionFilter::default()
    };
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        match (key.as_ref(), key.strip_prefix("meta.")) {
            (_, Some(meta_key)) if !meta_key.is_empty() => {
                filter.meta.push((meta_key.to_owned(), value.into_owned()));
            }
            ("userId", _) => {
                filter.user_id =
                    Some(UserId::parse(&value).map_err(|e| invalid(format!("userId: {e}")))?)
            }
            ("workflowId", _) => filter.workflow_id = Some(value.into_owned()),
            ("integration", _) => filter.integration = Some(value.into_owned()),
            ("status", _) => {
                for one in value.split(',') {
                    filter.statuses.push(ExecutionStatus::parse(one).ok_or_else(|| {
                        invalid(format!("status must be QUEUED, EXECUTING, DELAYED, SUCCEEDED, FAILED or CANCELLED (or several, comma-separated), not `{one}`"))
                    })?)
                }
            }
            ("since", _) => filter.since = Some(parse_time("since", &value)?),
            ("until", _) => filter.until = Some(parse_time("until", &value)?),
            ("limit", _) => filter.limit = parse_limit(&value, 100)?,
            ("cursor", _) => {
                filter.after = Some(parse_cursor(&value).ok_or_else(|| {
                    ApiError::bad_request("invalid_cursor", "pass back `nextCursor` unchanged")
                })?)
            }
            (other, _) => return Err(invalid(format!("unknown query parameter `{other}`"))),
        }
    }
    if filter.meta.len() > 8 {
        return Err(invalid("at most 8 meta.* filters".into()));
    }
    Ok(filter)
}

/// One step of an execution, as recorded.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    /// The step's path (`fetch`, `each[3].push`, `check.notify`).
    pub step: String,
    #[schema(value_type = Object)]
    pub record: Value,
    pub date_updated: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionDetail {
    #[serde(flatten)]
    pub execution: ExecutionView,
    pub steps: Vec<StepView>,
}

#[derive(Deserialize)]
pub struct ExecutionPath {
    #[serde(rename = "projectId")]
    _project_id: String,
    #[serde(rename = "executionId")]
    execution_id: String,
}

#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/executions/{executionId}", tag = "workflows",
    params(("projectId" = String, Path), ("executionId" = Uuid, Path)),
    responses(
        (status = 200, body = ExecutionDetail),
        (status = 404, description = "`execution_not_found`", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn get_execution(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(path): Path<ExecutionPath>,
) -> ApiResult<Json<ExecutionDetail>> {
    let id = Uuid::try_parse(&path.execution_id)
        .map_err(|_| plugboard_service::ServiceError::ExecutionNotFound)?;
    let (execution, steps) = state.services.workflows.execution(auth.project, id).await?;
    Ok(Json(ExecutionDetail {
        execution: execution.into(),
        steps: steps
            .into_iter()
            .map(|(step, record, at)| StepView {
                step,
                record,
                date_updated: timestamp(at),
            })
            .collect(),
    }))
}

/// Runs a finished execution again (same trigger and settings, current workflow version).
#[utoipa::path(
    post, path = "/api/v1/projects/{projectId}/executions/{executionId}/replay", tag = "workflows",
    params(("projectId" = String, Path), ("executionId" = Uuid, Path)),
    responses(
        (status = 201, body = ExecutionView),
        (status = 404, description = "`execution_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_input`: not finished", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn replay_execution(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(path): Path<ExecutionPath>,
) -> ApiResult<(StatusCode, Json<ExecutionView>)> {
    let id = Uuid::try_parse(&path.execution_id)
        .map_err(|_| plugboard_service::ServiceError::ExecutionNotFound)?;
    let replay = state.services.workflows.replay(auth.project, id).await?;
    Ok((StatusCode::CREATED, Json(replay.into())))
}

/// A project environment variable as shown: its name and a preview of its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvVariableView {
    pub name: String,
    /// `…` and the value's last 4 characters (only `…` for values under 12 characters).
    pub preview: String,
}

fn env_view(
    entries: Vec<plugboard_service::workflows::env::EnvEntry>,
) -> ListView<EnvVariableView> {
    ListView {
        data: entries
            .into_iter()
            .map(|e| EnvVariableView {
                name: e.name,
                preview: e.preview,
            })
            .collect(),
    }
}

/// The project's environment variables (`env.NAME` in workflow templates), values hidden.
#[utoipa::path(
    get, path = "/api/v1/projects/{projectId}/env", tag = "workflows",
    params(("projectId" = String, Path)),
    responses((status = 200, body = ListView<EnvVariableView>)),
    security(("secretKey" = []))
)]
pub async fn get_env(
    State(state): State<AppState>,
    auth: ProjectAdmin,
) -> ApiResult<Json<ListView<EnvVariableView>>> {
    Ok(Json(env_view(
        state.services.env.describe(auth.project).await?,
    )))
}

/// Replaces all the project's environment variables: `{"NAME": "value", …}` (names of
/// A-Z, 0-9 and `_`; string values). Sealed at rest; never shown again.
#[utoipa::path(
    put, path = "/api/v1/projects/{projectId}/env", tag = "workflows",
    params(("projectId" = String, Path)),
    request_body(content = Object, description = "`{NAME: value}`"),
    responses(
        (status = 200, body = ListView<EnvVariableView>),
        (status = 422, description = "`invalid_input`: a name or value", body = ErrorBody),
    ),
    security(("secretKey" = []))
)]
pub async fn put_env(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    JsonBody(variables): JsonBody<serde_json::Map<String, Value>>,
) -> ApiResult<Json<ListView<EnvVariableView>>> {
    let entries = state.services.env.replace(auth.project, variables).await?;
    Ok(Json(env_view(entries)))
}
