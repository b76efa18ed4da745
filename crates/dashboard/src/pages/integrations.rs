//! The project's integrations and workflows, with how many users use each.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::PageResult;
use crate::session::ProjectSession;
use crate::templates::render;
use crate::view::{query, when};
use crate::{BASE, DashboardState};

#[derive(Serialize)]
struct IntegrationRow {
    key: String,
    name: String,
    active: bool,
    users: u64,
    invalid: u64,
    users_href: String,
    invalid_href: String,
}

#[derive(Serialize)]
struct WorkflowRow {
    id: String,
    name: String,
    integration: String,
    trigger: String,
    version: i64,
    deployed: String,
    enabled_users: u64,
    history_href: String,
}

pub async fn show(
    State(state): State<DashboardState>,
    session: ProjectSession,
) -> PageResult<Response> {
    let project = session.project.id;
    let services = &state.services;
    let (integrations, workflows, usage) = tokio::join!(
        services.integrations.list(project),
        services.workflows.list(project),
        services.workflows.usage(project),
    );
    let (integrations, workflows, usage) = (integrations?, workflows?, usage?);
    let integration_rows: Vec<IntegrationRow> = integrations
        .iter()
        .map(|c| {
            let used = usage
                .integrations
                .iter()
                .find(|u| u.integration_id == c.integration.id);
            let key = c.integration.key.to_string();
            IntegrationRow {
                name: c.spec.name.clone(),
                active: c.integration.active,
                users: used.map_or(0, |u| u.users),
                invalid: used.map_or(0, |u| u.invalid_users),
                users_href: format!("{BASE}/users?{}", query(&[("integration", &key)])),
                invalid_href: format!(
                    "{BASE}/users?{}",
                    query(&[("integration", &key), ("credential", "INVALID")])
                ),
                key,
            }
        })
        .collect();
    let workflow_rows: Vec<WorkflowRow> = workflows
        .iter()
        .map(|w| WorkflowRow {
            id: w.workflow_id.clone(),
            name: w.definition["name"]
                .as_str()
                .unwrap_or(&w.workflow_id)
                .to_owned(),
            integration: w.integration.clone(),
            trigger: match &w.event {
                Some(event) => format!("{} ({event})", w.trigger_kind),
                None => w.trigger_kind.clone(),
            },
            version: w.version,
            deployed: when(w.created_at),
            enabled_users: usage
                .workflows
                .iter()
                .find(|(id, _)| *id == w.workflow_id)
                .map_or(0, |(_, n)| *n),
            history_href: format!(
                "{BASE}/executions?{}",
                query(&[("workflow", &w.workflow_id)])
            ),
        })
        .collect();
    let html = render(
        "integrations.html",
        minijinja::context! {
            layout => session.layout("Integrations", "integrations"),
            integrations => integration_rows,
            workflows => workflow_rows,
        },
    )?;
    Ok(html.into_response())
}
