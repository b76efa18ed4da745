//! Task History: executions filtered by user, metadata, workflow, integration, status and
//! time; one execution's step timeline; replay.

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use plugboard_core::{Execution, ExecutionFilter, ExecutionStatus, UnixMillis, UserId};
use plugboard_service::ServiceError;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::CsrfForm;
use crate::error::{PageError, PageResult};
use crate::session::ProjectSession;
use crate::templates::render;
use crate::view::{pretty, query, redact_text, segment, when, when_opt};
use crate::{BASE, DashboardState};

/// Executions per page.
const PAGE_SIZE: u32 = 50;
const STATUSES: [&str; 6] = [
    "QUEUED",
    "EXECUTING",
    "DELAYED",
    "SUCCEEDED",
    "FAILED",
    "CANCELLED",
];

#[derive(Serialize)]
pub struct ExecutionRow {
    pub id: String,
    pub href: String,
    pub user: String,
    pub user_href: String,
    pub workflow: String,
    pub integration: String,
    pub status: &'static str,
    pub created: String,
    pub duration: String,
    pub error: String,
}

impl From<&Execution> for ExecutionRow {
    fn from(e: &Execution) -> Self {
        Self {
            id: e.id.to_string(),
            href: format!("{BASE}/executions/{}", e.id),
            user: e.user_id.to_string(),
            user_href: format!("{BASE}/users/{}", segment(e.user_id.as_str())),
            workflow: e.workflow_id.clone(),
            integration: e.integration.clone(),
            status: e.status.as_str(),
            created: when(e.created_at),
            duration: match (e.started_at, e.finished_at) {
                (Some(start), Some(end)) => duration(end - start),
                _ => "—".to_owned(),
            },
            error: e.error.as_deref().map(redact_text).unwrap_or_default(),
        }
    }
}

fn duration(ms: i64) -> String {
    match ms {
        ms if ms < 1_000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{:.1} min", ms as f64 / 60_000.0),
    }
}

/// The filters as typed, echoed back into the form.
#[derive(Debug, Default, Serialize)]
struct Filters {
    user: String,
    meta: String,
    workflow: String,
    integration: String,
    status: String,
    since: String,
    until: String,
    after: String,
}

impl Filters {
    fn parse(raw: &str) -> PageResult<Self> {
        let mut f = Self::default();
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            let value = value.trim().to_owned();
            match key.as_ref() {
                "user" => f.user = value,
                "meta" => f.meta = value,
                "workflow" => f.workflow = value,
                "integration" => f.integration = value,
                "status" => f.status = value,
                "since" => f.since = value,
                "until" => f.until = value,
                "after" => f.after = value,
                other => return Err(PageError::BadRequest(format!("unknown filter `{other}`"))),
            }
        }
        Ok(f)
    }

    /// The task-history filter the management API builds from the same parameters.
    fn to_filter(&self) -> PageResult<ExecutionFilter> {
        let bad = PageError::BadRequest;
        let mut filter = ExecutionFilter {
            limit: PAGE_SIZE,
            ..ExecutionFilter::default()
        };
        if !self.user.is_empty() {
            filter.user_id =
                Some(UserId::parse(&self.user).map_err(|e| bad(format!("user: {e}")))?);
        }
        for pair in self
            .meta
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair
                .split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .ok_or_else(|| {
                    bad(format!(
                        "metadata filters are written key=value, not `{pair}`"
                    ))
                })?;
            filter.meta.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        if filter.meta.len() > 8 {
            return Err(bad("at most 8 metadata filters".into()));
        }
        filter.workflow_id = (!self.workflow.is_empty()).then(|| self.workflow.clone());
        filter.integration = (!self.integration.is_empty()).then(|| self.integration.clone());
        if !self.status.is_empty() {
            filter.statuses = vec![
                ExecutionStatus::parse(&self.status)
                    .ok_or_else(|| bad(format!("unknown status `{}`", self.status)))?,
            ];
        }
        filter.since = parse_time("from", &self.since)?;
        filter.until = parse_time("to", &self.until)?;
        if !self.after.is_empty() {
            filter.after =
                Some(parse_after(&self.after).ok_or_else(|| bad("bad page link".into()))?);
        }
        Ok(filter)
    }

    fn link(&self, after: &str) -> String {
        format!(
            "?{}",
            query(&[
                ("user", &self.user),
                ("meta", &self.meta),
                ("workflow", &self.workflow),
                ("integration", &self.integration),
                ("status", &self.status),
                ("since", &self.since),
                ("until", &self.until),
                ("after", after),
            ])
        )
    }
}

/// A `datetime-local` value (`2026-01-02T03:04`, seconds optional) or RFC 3339, as UTC.
fn parse_time(name: &str, raw: &str) -> PageResult<Option<UnixMillis>> {
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.timestamp_millis()));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(raw, format) {
            return Ok(Some(t.and_utc().timestamp_millis()));
        }
    }
    Err(PageError::BadRequest(format!(
        "{name}: `{raw}` is not a date and time (YYYY-MM-DDTHH:MM, UTC)"
    )))
}

fn parse_after(raw: &str) -> Option<(UnixMillis, Uuid)> {
    let (at, id) = raw.split_once('_')?;
    Some((at.parse().ok()?, Uuid::try_parse(id).ok()?))
}

pub async fn list(
    State(state): State<DashboardState>,
    session: ProjectSession,
    RawQuery(raw): RawQuery,
) -> PageResult<Response> {
    let project = session.project.id;
    let filters = Filters::parse(raw.as_deref().unwrap_or(""))?;
    let (workflows, integrations) = tokio::join!(
        state.services.workflows.list(project),
        state.services.integrations.list(project),
    );
    let workflows: Vec<String> = workflows?.into_iter().map(|w| w.workflow_id).collect();
    let integrations: Vec<String> = integrations?
        .iter()
        .map(|i| i.integration.key.to_string())
        .collect();
    let outcome = match filters.to_filter() {
        Ok(filter) => state
            .services
            .workflows
            .executions(project, filter)
            .await
            .map_err(PageError::from),
        Err(e) => Err(e),
    };
    let (rows, next, error) = match outcome {
        Ok(list) => {
            let next = (list.len() as u32 == PAGE_SIZE)
                .then(|| list.last())
                .flatten()
                .map(|e| filters.link(&format!("{}_{}", e.created_at, e.id)));
            (list.iter().map(ExecutionRow::from).collect(), next, None)
        }
        Err(
            e @ (PageError::BadRequest(_) | PageError::Service(ServiceError::InvalidFilter(_))),
        ) => (Vec::new(), None, Some(e.to_string())),
        Err(e) => return Err(e),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let html = render(
        "executions.html",
        minijinja::context! {
            layout => session.layout("Task history", "executions"),
            filters => &filters,
            workflows => workflows,
            integrations => integrations,
            statuses => STATUSES,
            executions => rows,
            next => next,
            paged => !filters.after.is_empty(),
            first => filters.link(""),
            error => error,
        },
    )?;
    Ok((status, html).into_response())
}

#[derive(Serialize)]
struct StepRow {
    key: String,
    state: String,
    attempts: String,
    recorded: String,
    /// Time since the previous record (or the start of the run).
    elapsed: String,
    output: Option<String>,
    error: Option<String>,
    retry_at: Option<String>,
    input: Option<String>,
    /// Whether `input` is the request as sent (redacted) rather than the definition.
    input_rendered: bool,
    /// The step's `type` and how long its last attempt took, from its trace.
    kind: String,
    took: Option<String>,
}

/// The step definition at a journal key (`fetch`, `each[3].push`, `check.notify`): the
/// step's input as configured (templates not rendered), for the timeline.
fn step_definition<'a>(definition: &'a Value, key: &str) -> Option<&'a Value> {
    let mut siblings: Vec<&Value> = definition["steps"].as_array()?.iter().collect();
    let mut found = None;
    for part in key.split('.') {
        let id = part.split('[').next().unwrap_or(part);
        let step = *siblings.iter().find(|s| s["id"] == id)?;
        found = Some(step);
        siblings = ["steps", "then", "else"]
            .iter()
            .filter_map(|k| step[*k].as_array())
            .flatten()
            .collect();
    }
    found
}

fn step_input(step: &Value) -> Value {
    let mut input = step.clone();
    if let Value::Object(map) = &mut input {
        for k in ["id", "steps", "then", "else"] {
            map.remove(k);
        }
    }
    input
}

pub async fn show(
    State(state): State<DashboardState>,
    session: ProjectSession,
    Path(raw): Path<String>,
) -> PageResult<Response> {
    let project = session.project.id;
    let id = Uuid::try_parse(&raw).map_err(|_| ServiceError::ExecutionNotFound)?;
    let (execution, steps) = state.services.workflows.execution(project, id).await?;
    let definition = state
        .services
        .workflows
        .version(
            project,
            &execution.workflow_id,
            Some(execution.workflow_version),
        )
        .await
        .map(|w| w.definition)
        .unwrap_or(Value::Null);
    let mut previous = execution.started_at.unwrap_or(execution.created_at);
    let step_rows: Vec<StepRow> = steps
        .iter()
        .map(|(key, record, at)| {
            let elapsed = duration((at - previous).max(0));
            previous = *at;
            let trace = &record["trace"];
            let took = match (trace["startedAt"].as_i64(), trace["endedAt"].as_i64()) {
                (Some(start), Some(end)) if start > 0 && end >= start => {
                    Some(duration(end - start))
                }
                _ => None,
            };
            let recorded_input = trace.get("input").filter(|i| !i.is_null());
            StepRow {
                input_rendered: recorded_input.is_some(),
                kind: trace["type"].as_str().unwrap_or_default().to_owned(),
                took,
                key: key.clone(),
                state: record["state"].as_str().unwrap_or("?").to_owned(),
                attempts: record["attempts"]
                    .as_u64()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "—".into()),
                recorded: when(*at),
                elapsed,
                output: record.get("output").map(pretty),
                error: record["error"].as_str().map(redact_text),
                retry_at: record["retry_at"]
                    .as_i64()
                    .or_else(|| record["until"].as_i64())
                    .map(when),
                input: recorded_input
                    .map(pretty)
                    .or_else(|| step_definition(&definition, key).map(|s| pretty(&step_input(s)))),
            }
        })
        .collect();
    let row = ExecutionRow::from(&execution);
    let html = render(
        "execution.html",
        minijinja::context! {
            layout => session.layout("Execution", "executions"),
            execution => row,
            version => execution.workflow_version,
            runs => execution.runs,
            started => when_opt(execution.started_at),
            finished => when_opt(execution.finished_at),
            trigger => pretty(&execution.trigger),
            settings => pretty(&execution.settings),
            output => execution.output.as_ref().map(pretty),
            replayable => execution.status.is_final(),
            replay => format!("{BASE}/executions/{}/replay", execution.id),
            replay_of => execution.trigger["replayOf"].as_str().map(|id| format!("{BASE}/executions/{}", segment(id))),
            steps => step_rows,
        },
    )?;
    Ok(html.into_response())
}

pub async fn replay(
    State(state): State<DashboardState>,
    session: ProjectSession,
    Path(raw): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let target = format!("executions/{raw}/replay");
    crate::audit::recorded(&state, &session, "replay execution", target, async {
        let id = Uuid::try_parse(&raw).map_err(|_| ServiceError::ExecutionNotFound)?;
        let replay = state
            .services
            .workflows
            .replay(session.project.id, id)
            .await?;
        let page = Redirect::to(&format!("{BASE}/executions/{}", replay.id)).into_response();
        Ok(crate::audit::Outcome::new(page).after(serde_json::json!({ "replay": replay.id })))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn step_keys_find_their_definitions() {
        let def = json!({"steps": [
            {"id": "fetch", "type": "http", "url": "u"},
            {"id": "each", "type": "map", "steps": [{"id": "push", "type": "http", "url": "p"}]},
            {"id": "check", "type": "condition", "then": [{"id": "notify", "type": "http", "url": "n"}]}
        ]});
        assert_eq!(step_definition(&def, "fetch").unwrap()["url"], "u");
        assert_eq!(step_definition(&def, "each[3].push").unwrap()["url"], "p");
        assert_eq!(step_definition(&def, "check.notify").unwrap()["url"], "n");
        assert!(step_definition(&def, "nope").is_none());
        assert_eq!(
            step_input(step_definition(&def, "each").unwrap()),
            json!({"type": "map"})
        );
    }

    #[test]
    fn times_parse_as_utc() {
        assert_eq!(
            parse_time("from", "1970-01-01T00:01").unwrap(),
            Some(60_000)
        );
        assert_eq!(parse_time("from", "").unwrap(), None);
        assert!(parse_time("from", "yesterday").is_err());
    }
}
