//! Login (a project secret key or the admin token), logout, and the admin's project picker.

use std::time::Duration;

use axum::Form;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use plugboard_core::{DashboardPrincipal, ProjectId};
use plugboard_service::ServiceError;
use plugboard_service::keys::secrets_match;
use serde::{Deserialize, Serialize};

use super::CsrfForm;
use crate::error::{PageError, PageResult};
use crate::session::{self, AnySession, LOGIN_COOKIE, cookie, random_token};
use crate::templates::{bare_layout, render};
use crate::view::when;
use crate::{BASE, DashboardState};

/// A failed login waits this long, so guessing costs time (keys are 256-bit anyway).
const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(300);
/// Most projects the admin's picker lists.
const MAX_PROJECTS: u32 = 500;

fn login_page(
    state: &DashboardState,
    status: StatusCode,
    token: &str,
    error: Option<&str>,
) -> PageResult<Response> {
    let html = render(
        "login.html",
        minijinja::context! {
            layout => bare_layout("Log in"),
            login_csrf => token,
            error => error,
            admin_enabled => state.settings.admin_token.is_some(),
        },
    )?;
    Ok((
        status,
        [(
            SET_COOKIE,
            session::login_cookie(&state.settings, Some(token)),
        )],
        html,
    )
        .into_response())
}

pub async fn show(State(state): State<DashboardState>, headers: HeaderMap) -> PageResult<Response> {
    let token = cookie(&headers, LOGIN_COOKIE)
        .map(str::to_owned)
        .unwrap_or_else(random_token);
    login_page(&state, StatusCode::OK, &token, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    csrf: String,
}

pub async fn submit(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> PageResult<Response> {
    let expected = cookie(&headers, LOGIN_COOKIE).ok_or(PageError::Csrf)?;
    if form.csrf.is_empty() || !secrets_match(expected, &form.csrf) {
        return Err(PageError::Csrf);
    }
    let key = form.key.trim();
    let principal = match authenticate(&state, key).await {
        Ok(principal) => principal,
        Err(PageError::Service(ServiceError::InvalidCredentials)) => {
            tokio::time::sleep(FAILED_LOGIN_DELAY).await;
            return login_page(
                &state,
                StatusCode::UNAUTHORIZED,
                expected,
                Some(
                    "That key was not accepted. Use an active secret key of the project (pb_sk_…) or the admin token.",
                ),
            );
        }
        Err(e) => return Err(e),
    };
    let next = match principal {
        DashboardPrincipal::Admin { .. } => format!("{BASE}/projects"),
        DashboardPrincipal::SecretKey { .. } => format!("{BASE}/users"),
    };
    let id = session::start(&state, principal).await?;
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    for value in [
        session::session_cookie(&state.settings, &id),
        session::login_cookie(&state.settings, None),
    ] {
        headers.append(
            SET_COOKIE,
            value.parse().expect("cookie values are header-safe"),
        );
    }
    Ok(response)
}

/// A secret key names its project; anything else must be the admin token (compared in
/// constant time).
async fn authenticate(state: &DashboardState, key: &str) -> PageResult<DashboardPrincipal> {
    if key.is_empty() {
        return Err(ServiceError::InvalidCredentials.into());
    }
    if key.starts_with(plugboard_service::keys::SECRET_KEY_PREFIX) {
        let record = state.services.projects.identify_secret_key(key).await?;
        return Ok(DashboardPrincipal::SecretKey {
            project: record.project_id,
            key_id: record.id,
        });
    }
    match &state.settings.admin_token {
        Some(admin) if secrets_match(admin, key) => Ok(DashboardPrincipal::Admin { project: None }),
        _ => Err(ServiceError::InvalidCredentials.into()),
    }
}

pub async fn logout(
    State(state): State<DashboardState>,
    session: AnySession,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    state
        .services
        .store
        .delete_dashboard_session(&session.0.id_hash)
        .await
        .map_err(ServiceError::from)?;
    Ok((
        [(SET_COOKIE, session::clear_session_cookie(&state.settings))],
        Redirect::to(&format!("{BASE}/login")),
    )
        .into_response())
}

#[derive(Serialize)]
struct ProjectRow {
    id: String,
    name: String,
    created: String,
    current: bool,
}

pub async fn projects(
    State(state): State<DashboardState>,
    session: AnySession,
) -> PageResult<Response> {
    if !session.is_admin() {
        return Ok(Redirect::to(&format!("{BASE}/users")).into_response());
    }
    let current = session.0.principal.project();
    let rows: Vec<ProjectRow> = state
        .services
        .projects
        .list(MAX_PROJECTS)
        .await?
        .into_iter()
        .map(|p| ProjectRow {
            id: p.id.to_string(),
            current: Some(p.id) == current,
            name: p.name,
            created: when(p.created_at),
        })
        .collect();
    let mut layout = bare_layout("Projects");
    layout.csrf = Some(session.0.csrf_token.clone());
    layout.admin = true;
    Ok(render(
        "projects.html",
        minijinja::context! { layout => layout, projects => rows, max => MAX_PROJECTS },
    )?
    .into_response())
}

#[derive(Deserialize)]
pub struct PickForm {
    #[serde(default)]
    project: String,
    #[serde(default)]
    csrf: String,
}

pub async fn pick_project(
    State(state): State<DashboardState>,
    session: AnySession,
    Form(form): Form<PickForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    if !session.is_admin() {
        return Err(PageError::BadRequest(
            "a session opened with a secret key stays on that key's project".into(),
        ));
    }
    let project =
        ProjectId::parse(form.project.trim()).map_err(|_| ServiceError::ProjectNotFound)?;
    state.services.projects.get(project).await?;
    state
        .services
        .store
        .set_dashboard_session_project(&session.0.id_hash, project)
        .await
        .map_err(ServiceError::from)?;
    Ok(Redirect::to(&format!("{BASE}/users")).into_response())
}
