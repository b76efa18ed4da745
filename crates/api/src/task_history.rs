//! Paragon's Task History API (`/projects/{projectId}/task-history/…`, secret key), in its
//! shapes: offset pages of 100 with `total` and `nextLink`, its four statuses, steps as
//! "step executions". Our own `/api/v1/…/executions` is the richer twin (cursor pages,
//! metadata filters); both read the same [`plugboard_service::workflows`] calls.

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use plugboard_core::{Execution, ExecutionFilter, ExecutionStatus, UserId};
use plugboard_service::ServiceError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::ProjectAdmin;
use crate::wire::timestamp;

/// Executions per page, as Paragon's.
pub const PAGE_SIZE: u32 = 100;
/// A step's input or output larger than this is flagged `isLarge…` and not sent.
pub const MAX_SHOWN_BYTES: usize = 64 * 1024;
/// Deepest `offset` accepted: past it, filter by date instead.
pub const MAX_OFFSET: u32 = 100_000;

pub fn router() -> Router<AppState> {
    let base = "/projects/{projectId}/task-history/workflow-executions";
    Router::new()
        .route(base, get(list))
        .route(&format!("{base}/{{executionId}}"), get(detail))
        .route(
            &format!("{base}/{{executionId}}/step-executions/{{stepId}}"),
            get(step_detail),
        )
        .route(&format!("{base}/{{executionId}}/replay"), post(replay))
}

/// Paragon's four statuses: a queued run is `EXECUTING`, a cancelled one `FAILED`.
fn paragon_status(status: ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::Queued | ExecutionStatus::Executing => "EXECUTING",
        ExecutionStatus::Delayed => "DELAYED",
        ExecutionStatus::Succeeded => "SUCCEEDED",
        ExecutionStatus::Failed | ExecutionStatus::Cancelled => "FAILED",
    }
}

fn statuses_for(paragon: &str) -> Option<Vec<ExecutionStatus>> {
    use ExecutionStatus::*;
    Some(match paragon {
        "EXECUTING" => vec![Queued, Executing],
        "DELAYED" => vec![Delayed],
        "SUCCEEDED" => vec![Succeeded],
        "FAILED" => vec![Failed, Cancelled],
        _ => return None,
    })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionSummary {
    id: Uuid,
    user_id: String,
    workflow_id: String,
    integration: String,
    status: &'static str,
    task_count: u64,
    /// Milliseconds from start to end (to now while it runs); `null` before it starts.
    run_duration: Option<i64>,
    date_started: String,
    date_ended: Option<String>,
    error: Option<String>,
}

fn summary(e: &Execution, task_count: u64) -> ExecutionSummary {
    let started = e.started_at.unwrap_or(e.created_at);
    let run_duration = e.started_at.map(|start| {
        e.finished_at
            .unwrap_or_else(plugboard_core::now_millis)
            .saturating_sub(start)
    });
    ExecutionSummary {
        id: e.id,
        user_id: e.user_id.to_string(),
        workflow_id: e.workflow_id.clone(),
        integration: e.integration.clone(),
        status: paragon_status(e.status),
        task_count,
        run_duration,
        date_started: timestamp(started),
        date_ended: e.finished_at.map(timestamp),
        error: e.error.clone(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionList {
    workflow_executions: Vec<ExecutionSummary>,
    next_link: Option<String>,
    total: u64,
}

struct ListQuery {
    filter: ExecutionFilter,
    /// The query as received, minus `offset`, to build `nextLink` from.
    kept: Vec<(String, String)>,
}

fn parse_date(name: &str, raw: &str) -> ApiResult<i64> {
    let parsed = chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.timestamp_millis())
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp_millis())
        });
    parsed.ok_or_else(|| {
        ApiError::bad_request(
            "invalid_filter",
            format!("{name} must be an ISO 8601 date or date-time, not `{raw}`"),
        )
    })
}

fn parse_list_query(raw: &str) -> ApiResult<ListQuery> {
    let invalid = |msg: String| ApiError::bad_request("invalid_filter", msg);
    let mut filter = ExecutionFilter {
        limit: PAGE_SIZE,
        ..ExecutionFilter::default()
    };
    let mut kept = Vec::new();
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        match key.as_ref() {
            "userId" => {
                filter.user_id =
                    Some(UserId::parse(&value).map_err(|e| invalid(format!("userId: {e}")))?)
            }
            "workflowId" => filter.workflow_id = Some(value.to_string()),
            "integration" => filter.integration = Some(value.to_string()),
            "status" => {
                filter.statuses = statuses_for(&value).ok_or_else(|| {
                    invalid(format!(
                        "status must be EXECUTING, DELAYED, SUCCEEDED or FAILED, not `{value}`"
                    ))
                })?
            }
            "afterDate" => filter.since = Some(parse_date("afterDate", &value)?),
            "beforeDate" => filter.until = Some(parse_date("beforeDate", &value)?),
            "sortBy" => {
                filter.oldest_first = match value.as_ref() {
                    "ASC" => true,
                    "DESC" => false,
                    other => {
                        return Err(invalid(format!(
                            "sortBy must be ASC or DESC, not `{other}`"
                        )));
                    }
                }
            }
            "offset" => {
                filter.offset = value
                    .parse::<u32>()
                    .ok()
                    .filter(|o| *o <= MAX_OFFSET)
                    .ok_or_else(|| {
                        invalid(format!(
                            "offset must be 0 to {MAX_OFFSET} (narrow the dates to go further), not `{value}`"
                        ))
                    })?;
                continue;
            }
            other => return Err(invalid(format!("unknown query parameter `{other}`"))),
        }
        kept.push((key.into_owned(), value.into_owned()));
    }
    Ok(ListQuery { filter, kept })
}

/// `GET …/task-history/workflow-executions`: newest first unless `sortBy=ASC`; filters
/// `userId`, `workflowId`, `integration`, `status`, `afterDate`/`beforeDate` (when the
/// execution was started by its trigger); `offset` pages of 100.
async fn list(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ExecutionList>> {
    let ListQuery { filter, kept } = parse_list_query(query.as_deref().unwrap_or(""))?;
    let workflows = &state.services.workflows;
    let total = workflows.count(auth.project, &filter).await?;
    let offset = filter.offset;
    let page = workflows.executions(auth.project, filter).await?;
    let ids: Vec<Uuid> = page.iter().map(|e| e.id).collect();
    let tasks = workflows.step_counts(&ids).await?;
    let next_offset = u64::from(offset) + page.len() as u64;
    let next_link = (next_offset < total && !page.is_empty()).then(|| {
        let mut link = state.services.connect.settings().public_url.clone();
        link.set_path(&format!(
            "/projects/{}/task-history/workflow-executions",
            auth.project
        ));
        link.query_pairs_mut()
            .extend_pairs(kept.iter())
            .append_pair("offset", &next_offset.to_string());
        link.to_string()
    });
    Ok(Json(ExecutionList {
        workflow_executions: page
            .iter()
            .map(|e| summary(e, tasks.get(&e.id).copied().unwrap_or(0)))
            .collect(),
        next_link,
        total,
    }))
}

#[derive(Deserialize)]
struct ExecutionPath {
    #[serde(rename = "projectId")]
    _project_id: String,
    #[serde(rename = "executionId")]
    execution_id: String,
}

#[derive(Deserialize)]
struct StepPath {
    #[serde(rename = "projectId")]
    _project_id: String,
    #[serde(rename = "executionId")]
    execution_id: String,
    #[serde(rename = "stepId")]
    step_id: String,
}

fn execution_id(raw: &str) -> ApiResult<Uuid> {
    Ok(Uuid::try_parse(raw).map_err(|_| ServiceError::ExecutionNotFound)?)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StepExecution {
    /// Stable for this step of this execution.
    id: Uuid,
    /// The step's path in the workflow (`fetch`, `each[3].push`).
    step_id: String,
    workflow_execution_id: Uuid,
    status: &'static str,
    #[serde(rename = "type")]
    kind: String,
    attempts: u64,
    start: Option<String>,
    end: Option<String>,
    next: Vec<String>,
    prev: Option<String>,
    input_size: usize,
    output_size: usize,
    error: Option<String>,
}

/// A step record's state in Paragon's words.
fn step_status(record: &Value) -> &'static str {
    match record["state"].as_str() {
        Some("done") => "SUCCEEDED",
        Some("failed") => "FAILED",
        Some("retrying") | Some("waiting") => "DELAYED",
        _ => "EXECUTING",
    }
}

fn size_of(value: &Value) -> usize {
    if value.is_null() {
        0
    } else {
        value.to_string().len()
    }
}

fn step_uuid(execution: Uuid, key: &str) -> Uuid {
    Uuid::new_v5(&execution, key.as_bytes())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionDetail {
    #[serde(flatten)]
    summary: ExecutionSummary,
    step_executions: Vec<StepExecution>,
}

/// `GET …/workflow-executions/{id}`: the execution and its steps in the order they ran.
async fn detail(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(path): Path<ExecutionPath>,
) -> ApiResult<Json<ExecutionDetail>> {
    let id = execution_id(&path.execution_id)?;
    let (execution, steps) = state.services.workflows.execution(auth.project, id).await?;
    let keys: Vec<&str> = steps.iter().map(|(k, _, _)| k.as_str()).collect();
    let step_executions = steps
        .iter()
        .enumerate()
        .map(|(i, (key, record, _))| {
            let trace = &record["trace"];
            let time = |field: &str| trace[field].as_i64().filter(|t| *t > 0).map(timestamp);
            StepExecution {
                id: step_uuid(id, key),
                step_id: key.clone(),
                workflow_execution_id: id,
                status: step_status(record),
                kind: trace["type"].as_str().unwrap_or_default().to_owned(),
                attempts: record["attempts"].as_u64().unwrap_or(0),
                start: time("startedAt"),
                end: time("endedAt"),
                next: keys
                    .get(i + 1)
                    .map(|k| vec![(*k).to_owned()])
                    .unwrap_or_default(),
                prev: i.checked_sub(1).map(|p| keys[p].to_owned()),
                input_size: size_of(&trace["input"]),
                output_size: size_of(&record["output"]),
                error: record["error"].as_str().map(str::to_owned),
            }
        })
        .collect();
    Ok(Json(ExecutionDetail {
        summary: summary(&execution, steps.len() as u64),
        step_executions,
    }))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StepData {
    is_large_input: bool,
    is_large_output: bool,
    input: Value,
    output: Value,
}

/// A value as shown, and whether it was too large to show.
fn shown(value: &Value) -> (bool, Value) {
    if size_of(value) > MAX_SHOWN_BYTES {
        (true, Value::Null)
    } else {
        (false, value.clone())
    }
}

/// `GET …/workflow-executions/{id}/step-executions/{stepId}`: what one step was given (its
/// request, credentials redacted) and what it gave. `stepId` is the step's path or the
/// `id` of its step execution.
async fn step_detail(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(path): Path<StepPath>,
) -> ApiResult<Json<StepData>> {
    let id = execution_id(&path.execution_id)?;
    let (_, steps) = state.services.workflows.execution(auth.project, id).await?;
    let (_, record, _) = steps
        .iter()
        .find(|(key, _, _)| *key == path.step_id || step_uuid(id, key).to_string() == path.step_id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "step_not_found",
                format!("execution {id} has no step `{}`", path.step_id),
            )
        })?;
    let (is_large_input, input) = shown(&record["trace"]["input"]);
    let (is_large_output, output) = shown(&record["output"]);
    Ok(Json(StepData {
        is_large_input,
        is_large_output,
        input,
        output,
    }))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Replayed {
    id: Uuid,
    user_id: String,
    workflow_id: String,
    status: &'static str,
    date_started: String,
}

/// `POST …/workflow-executions/{id}/replay`: 201 and the new execution.
async fn replay(
    State(state): State<AppState>,
    auth: ProjectAdmin,
    Path(path): Path<ExecutionPath>,
) -> ApiResult<(StatusCode, Json<Replayed>)> {
    let id = execution_id(&path.execution_id)?;
    let replay = state.services.workflows.replay(auth.project, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(Replayed {
            id: replay.id,
            user_id: replay.user_id.to_string(),
            workflow_id: replay.workflow_id.clone(),
            status: paragon_status(replay.status),
            date_started: timestamp(replay.created_at),
        }),
    ))
}
