//! Recording the dashboard's form actions in the audit log, as the management API's are:
//! actor `dashboard:admin` or `dashboard:key:<id>`, target as the API names it. The
//! digests are of a small JSON of the state the form changes, when the handler has it.

use std::future::Future;

use axum::response::{IntoResponse, Response};
use plugboard_core::DashboardPrincipal;
use plugboard_service::audit::{NewAuditEntry, digest};
use serde_json::Value;

use crate::DashboardState;
use crate::error::PageResult;
use crate::session::ProjectSession;

/// What a form action answered, with digests of its target's state.
pub struct Outcome {
    pub response: Response,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl Outcome {
    pub fn new(response: Response) -> Self {
        Self {
            response,
            before: None,
            after: None,
        }
    }

    pub fn before(mut self, state: Value) -> Self {
        self.before = Some(state_digest(&state));
        self
    }

    pub fn after(mut self, state: Value) -> Self {
        self.after = Some(state_digest(&state));
        self
    }
}

fn state_digest(state: &Value) -> String {
    digest(state.to_string().as_bytes())
}

/// Runs `work` (after the CSRF check) and records its outcome, failures included; a
/// failed audit write is logged, never shown.
pub async fn recorded(
    state: &DashboardState,
    session: &ProjectSession,
    action: &str,
    target: String,
    work: impl Future<Output = PageResult<Outcome>>,
) -> PageResult<Response> {
    let outcome = work
        .await
        .unwrap_or_else(|e| Outcome::new(e.into_response()));
    let actor = match session.session.0.principal {
        DashboardPrincipal::Admin { .. } => "dashboard:admin".to_owned(),
        DashboardPrincipal::SecretKey { key_id, .. } => format!("dashboard:key:{key_id}"),
    };
    let entry = NewAuditEntry {
        actor,
        action: format!("dashboard: {action}"),
        target,
        before_digest: outcome.before,
        after_digest: outcome.after,
        status: outcome.response.status().as_u16(),
    };
    if let Err(error) = state.services.audit.record(session.project.id, entry).await {
        tracing::error!(%error, "could not write an audit entry");
    }
    Ok(outcome.response)
}
