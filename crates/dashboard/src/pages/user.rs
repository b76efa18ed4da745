//! A user's detail: metadata (secrets masked), connected integrations with their health,
//! workflows with on/off switches, recent executions; suspend, resume, disconnect, erase.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use plugboard_core::{CredentialStatus, ExecutionFilter, UserId};
use plugboard_service::ServiceError;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::CsrfForm;
use super::executions::ExecutionRow;
use crate::audit::{Outcome, recorded};
use crate::error::{PageError, PageResult};
use crate::session::ProjectSession;
use crate::templates::render;
use crate::view::{MASK, is_secret_key, redact_text, scalar, segment, when, when_opt};
use crate::{BASE, DashboardState};

/// Executions the detail page lists.
const RECENT_EXECUTIONS: u32 = 20;

fn parse_user(raw: &str) -> PageResult<UserId> {
    UserId::parse(raw).map_err(|e| PageError::Service(ServiceError::InvalidId(e)))
}

fn user_href(user: &UserId) -> String {
    format!("{BASE}/users/{}", segment(user.as_str()))
}

#[derive(Serialize)]
struct MetaRow {
    key: String,
    value: String,
    masked: bool,
}

#[derive(Serialize)]
struct CredentialRow {
    id: String,
    integration: String,
    name: String,
    status: &'static str,
    healthy: bool,
    account: String,
    connected: String,
    refreshed: String,
    failures: i32,
    disconnect: String,
}

#[derive(Serialize)]
struct WorkflowRow {
    id: String,
    name: String,
    integration: String,
    connected: bool,
    enabled: bool,
    /// The user's plan does not include it: it does not run, whatever `enabled` says.
    paused: bool,
    action: String,
}

#[derive(Deserialize)]
pub struct Notice {
    notice: Option<String>,
}

/// What an action says when it is back on the page; a fixed list, so the URL cannot put
/// arbitrary text on the page.
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "suspended" => "The user is suspended: SDK calls are refused until resumed.",
        "resumed" => "The user is resumed.",
        "workflow-on" => "The workflow is turned on.",
        "workflow-off" => "The workflow is turned off; its pending runs are cancelled.",
        "disconnected" => "The account is disconnected.",
        "erase-mismatch" => "Not erased: type the user id exactly to confirm.",
        _ => return None,
    })
}

pub async fn show(
    State(state): State<DashboardState>,
    session: ProjectSession,
    Path(raw): Path<String>,
    Query(notice): Query<Notice>,
) -> PageResult<Response> {
    let project = session.project.id;
    let user_id = parse_user(&raw)?;
    let services = &state.services;
    let user = services.users.get(project, &user_id).await?;
    let (integrations, credentials, workflows, executions) = tokio::join!(
        services.integrations.list(project),
        services.connect.credentials(project, &user_id),
        services.workflows.list(project),
        services.workflows.executions(
            project,
            ExecutionFilter {
                user_id: Some(user_id.clone()),
                limit: RECENT_EXECUTIONS,
                ..ExecutionFilter::default()
            },
        ),
    );
    let (integrations, credentials, workflows, executions) =
        (integrations?, credentials?, workflows?, executions?);
    let href = user_href(&user_id);
    let access = services.policy.access(&user).await?;

    let meta: Vec<MetaRow> = user
        .meta
        .as_map()
        .iter()
        .map(|(k, v)| {
            let masked = is_secret_key(k);
            MetaRow {
                key: k.clone(),
                value: if masked {
                    MASK.to_owned()
                } else {
                    redact_text(&scalar(v))
                },
                masked,
            }
        })
        .collect();

    let integration_of = |id: Uuid| integrations.iter().find(|i| i.integration.id == id);
    let credential_rows: Vec<CredentialRow> = credentials
        .iter()
        .map(|c| {
            let cred = &c.credential;
            let configured = integration_of(cred.integration_id);
            let key = configured
                .map(|i| i.integration.key.to_string())
                .unwrap_or_default();
            CredentialRow {
                id: cred.id.to_string(),
                name: configured.map(|i| i.spec.name.clone()).unwrap_or_default(),
                status: cred.status.as_str(),
                healthy: cred.status == CredentialStatus::Valid,
                account: cred.provider_id.clone().unwrap_or_else(|| "—".into()),
                connected: when(cred.created_at),
                refreshed: when_opt(cred.refreshed_at),
                failures: cred.refresh_failure_count,
                disconnect: format!("{href}/credentials/{}/disconnect", cred.id),
                integration: key,
            }
        })
        .collect();

    // A workflow is on for the user when the default configuration of the user's
    // credential of its integration says so (the same rule the engine applies).
    let workflow_rows: Vec<WorkflowRow> = workflows
        .iter()
        .map(|w| {
            let configured = integrations
                .iter()
                .find(|i| i.integration.key.as_str() == w.integration);
            let credential = configured.and_then(|i| {
                credentials
                    .iter()
                    .find(|c| c.credential.integration_id == i.integration.id)
            });
            let enabled = credential
                .and_then(|c| c.configurations.iter().find(|cf| cf.is_default))
                .and_then(|cf| cf.workflow_settings.get(&w.workflow_id))
                .is_some_and(|entry| entry.get("enabled") == Some(&Value::Bool(true)));
            WorkflowRow {
                name: w.definition["name"]
                    .as_str()
                    .unwrap_or(&w.workflow_id)
                    .to_owned(),
                integration: w.integration.clone(),
                connected: credential.is_some(),
                enabled,
                paused: !access.allows_workflow(&w.workflow_id, &w.integration),
                action: format!("{href}/workflows/{}", segment(&w.workflow_id)),
                id: w.workflow_id.clone(),
            }
        })
        .collect();

    let executions: Vec<ExecutionRow> = executions.iter().map(ExecutionRow::from).collect();
    let html = render(
        "user.html",
        minijinja::context! {
            layout => session.layout(&format!("User {}", user_id), "users"),
            user => minijinja::context! {
                id => user_id.to_string(),
                href => href,
                suspended => user.suspended,
                created => when(user.created_at),
                updated => when(user.updated_at),
                last_seen => when_opt(user.last_seen_at),
            },
            meta => meta,
            credentials => credential_rows,
            workflows => workflow_rows,
            executions => executions,
            history => format!("{BASE}/executions?{}", crate::view::query(&[("user", user_id.as_str())])),
            notice => notice.notice.as_deref().and_then(notice_text),
        },
    )?;
    Ok(html.into_response())
}

fn back(user: &UserId, notice: &str) -> Response {
    Redirect::to(&format!("{}?notice={notice}", user_href(user))).into_response()
}

pub async fn suspend(
    state: State<DashboardState>,
    session: ProjectSession,
    path: Path<String>,
    form: Form<CsrfForm>,
) -> PageResult<Response> {
    set_suspended(state, session, path, form, true).await
}

pub async fn resume(
    state: State<DashboardState>,
    session: ProjectSession,
    path: Path<String>,
    form: Form<CsrfForm>,
) -> PageResult<Response> {
    set_suspended(state, session, path, form, false).await
}

async fn set_suspended(
    State(state): State<DashboardState>,
    session: ProjectSession,
    Path(raw): Path<String>,
    Form(form): Form<CsrfForm>,
    suspended: bool,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let (action, verb) = match suspended {
        true => ("suspend user", "suspend"),
        false => ("resume user", "resume"),
    };
    let target = format!("users/{raw}/{verb}");
    recorded(&state, &session, action, target, async {
        let user = parse_user(&raw)?;
        let users = &state.services.users;
        let before = users.get(session.project.id, &user).await?.suspended;
        let after = users
            .set_suspended(session.project.id, &user, suspended)
            .await?
            .suspended;
        let notice = if suspended { "suspended" } else { "resumed" };
        Ok(Outcome::new(back(&user, notice))
            .before(json!({ "suspended": before }))
            .after(json!({ "suspended": after })))
    })
    .await
}

#[derive(Deserialize)]
pub struct EraseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

pub async fn erase(
    State(state): State<DashboardState>,
    session: ProjectSession,
    Path(raw): Path<String>,
    Form(form): Form<EraseForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let user = parse_user(&raw)?;
    if form.confirm != user.as_str() {
        return Ok(back(&user, "erase-mismatch"));
    }
    recorded(&state, &session, "erase user", format!("users/{raw}"), async {
        let erased = state
            .services
            .users
            .erase(session.project.id, &user)
            .await?;
        tracing::info!(user = %user, credentials = erased.credentials, "user erased from the dashboard");
        let page = Redirect::to(&format!("{BASE}/users?notice=erased")).into_response();
        Ok(Outcome::new(page).before(json!({ "user": user.as_str() })))
    })
    .await
}

#[derive(Deserialize)]
pub struct WorkflowForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: String,
}

pub async fn set_workflow(
    State(state): State<DashboardState>,
    session: ProjectSession,
    Path((raw, workflow)): Path<(String, String)>,
    Form(form): Form<WorkflowForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let enabled = match form.enabled.as_str() {
        "true" => true,
        "false" => false,
        other => {
            return Err(PageError::BadRequest(format!(
                "enabled is true or false, not `{other}`"
            )));
        }
    };
    let action = if enabled {
        "enable workflow"
    } else {
        "disable workflow"
    };
    let target = format!("users/{raw}/workflows/{workflow}");
    recorded(&state, &session, action, target, async {
        let user = parse_user(&raw)?;
        let project = session.project.id;
        state.services.users.get(project, &user).await?;
        state
            .services
            .workflows
            .set_enabled(project, &user, &workflow, enabled, None)
            .await?;
        let notice = if enabled {
            "workflow-on"
        } else {
            "workflow-off"
        };
        Ok(Outcome::new(back(&user, notice)).after(json!({ "enabled": enabled })))
    })
    .await
}

pub async fn disconnect(
    State(state): State<DashboardState>,
    session: ProjectSession,
    Path((raw, credential)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let target = format!("users/{raw}/credentials/{credential}");
    recorded(&state, &session, "disconnect", target, async {
        disconnect_credential(&state, &session, &raw, &credential).await
    })
    .await
}

async fn disconnect_credential(
    state: &DashboardState,
    session: &ProjectSession,
    raw: &str,
    credential: &str,
) -> PageResult<Outcome> {
    let user = parse_user(raw)?;
    let credential = Uuid::try_parse(credential).map_err(|_| ServiceError::CredentialNotFound)?;
    let project = session.project.id;
    let services = &state.services;
    services.users.get(project, &user).await?;
    let found = services
        .connect
        .credentials(project, &user)
        .await?
        .into_iter()
        .find(|c| c.credential.id == credential)
        .ok_or(ServiceError::CredentialNotFound)?;
    let integrations = services.integrations.list(project).await?;
    let integration = integrations
        .iter()
        .find(|i| i.integration.id == found.credential.integration_id)
        .ok_or(ServiceError::CredentialNotFound)?;
    services
        .workflows
        .disconnect(
            project,
            &user,
            integration.integration.key.as_str(),
            Some(credential),
        )
        .await?;
    Ok(Outcome::new(back(&user, "disconnected")).before(json!({ "credential": credential })))
}
