//! Dashboard sessions: a random id in an `HttpOnly; SameSite=Strict` cookie scoped to
//! `/dashboard`, of which only a SHA-256 hash is stored, with the principal (a project's
//! secret key, or the admin), a CSRF token and an expiry. Logging out deletes the row, so
//! a copied cookie stops working at once; so does revoking the secret key it logged in
//! with.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plugboard_core::{DashboardPrincipal, DashboardSession, Project, now_millis};
use plugboard_service::keys::secrets_match;
use sha2::{Digest, Sha256};

use crate::error::{PageError, PageResult};
use crate::templates::{Layout, css_path};
use crate::{BASE, DashboardSettings, DashboardState};

pub const SESSION_COOKIE: &str = "pb_session";
/// Double-submit token of the login form, which has no session yet.
pub const LOGIN_COOKIE: &str = "pb_login";

/// 256 random bits, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a session id.
pub fn hash_id(id: &str) -> String {
    Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn attributes(settings: &DashboardSettings, path: &str, max_age: u64) -> String {
    let secure = if settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    format!("; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age}{secure}")
}

/// `Set-Cookie` for a new session.
pub fn session_cookie(settings: &DashboardSettings, id: &str) -> String {
    format!(
        "{SESSION_COOKIE}={id}{}",
        attributes(settings, BASE, settings.session_ttl.as_secs())
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie(settings: &DashboardSettings) -> String {
    format!("{SESSION_COOKIE}={}", attributes(settings, BASE, 0))
}

/// `Set-Cookie` for the login form's token (or its removal with `None`).
pub fn login_cookie(settings: &DashboardSettings, token: Option<&str>) -> String {
    let path = format!("{BASE}/login");
    match token {
        Some(token) => format!(
            "{LOGIN_COOKIE}={token}{}",
            attributes(settings, &path, 3600)
        ),
        None => format!("{LOGIN_COOKIE}={}", attributes(settings, &path, 0)),
    }
}

/// Starts a session for `principal`; returns the id to put in the cookie.
pub async fn start(state: &DashboardState, principal: DashboardPrincipal) -> PageResult<String> {
    let store = &state.services.store;
    let now = now_millis();
    // Expired sessions go at each login, so the table holds live ones only.
    store
        .purge_dashboard_sessions(now)
        .await
        .map_err(plugboard_service::ServiceError::from)?;
    let id = random_token();
    let ttl = i64::try_from(state.settings.session_ttl.as_millis()).unwrap_or(i64::MAX / 2);
    let session = DashboardSession {
        id_hash: hash_id(&id),
        principal,
        csrf_token: random_token(),
        created_at: now,
        expires_at: now.saturating_add(ttl),
    };
    store
        .insert_dashboard_session(&session)
        .await
        .map_err(plugboard_service::ServiceError::from)?;
    Ok(id)
}

/// A live session, with or without a project picked.
pub struct AnySession(pub DashboardSession);

impl FromRequestParts<DashboardState> for AnySession {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, Self::Rejection> {
        let id = cookie(&parts.headers, SESSION_COOKIE).ok_or(PageError::LoginRequired)?;
        let store = &state.services.store;
        let session = store
            .get_dashboard_session(&hash_id(id), now_millis())
            .await
            .map_err(plugboard_service::ServiceError::from)?
            .ok_or(PageError::LoginRequired)?;
        if let DashboardPrincipal::SecretKey { project, key_id } = session.principal
            && !state
                .services
                .projects
                .secret_key_is_active(project, key_id)
                .await?
        {
            store
                .delete_dashboard_session(&session.id_hash)
                .await
                .map_err(plugboard_service::ServiceError::from)?;
            return Err(PageError::LoginRequired);
        }
        Ok(Self(session))
    }
}

impl AnySession {
    /// Refuses a form whose token is not this session's.
    pub fn check_csrf(&self, token: &str) -> PageResult<()> {
        if !token.is_empty() && secrets_match(&self.0.csrf_token, token) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self.0.principal, DashboardPrincipal::Admin { .. })
    }
}

/// A live session working on a project: the only way a page reaches a project's data.
pub struct ProjectSession {
    pub session: AnySession,
    pub project: Project,
}

impl FromRequestParts<DashboardState> for ProjectSession {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, Self::Rejection> {
        let session = AnySession::from_request_parts(parts, state).await?;
        let project_id = session
            .0
            .principal
            .project()
            .ok_or(PageError::PickProject)?;
        let project = state.services.projects.get(project_id).await?;
        Ok(Self { session, project })
    }
}

impl ProjectSession {
    pub fn check_csrf(&self, token: &str) -> PageResult<()> {
        self.session.check_csrf(token)
    }

    pub fn layout(&self, title: &str, section: &'static str) -> Layout {
        Layout {
            title: title.to_owned(),
            base: BASE,
            css: format!("{BASE}{}", css_path()),
            section,
            project_name: Some(self.project.name.clone()),
            project_id: Some(self.project.id.to_string()),
            csrf: Some(self.session.0.csrf_token.clone()),
            admin: self.session.is_admin(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, "a=1; pb_session=abc ; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        headers.insert(COOKIE, "pb_session=".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), None);
    }

    #[test]
    fn cookie_attributes() {
        let mut settings = DashboardSettings::default();
        let plain = session_cookie(&settings, "x");
        assert!(plain.contains("HttpOnly; SameSite=Strict; Path=/dashboard;"));
        assert!(!plain.contains("Secure"));
        settings.secure_cookies = true;
        assert!(session_cookie(&settings, "x").ends_with("; Secure"));
        assert!(clear_session_cookie(&settings).contains("Max-Age=0"));
    }
}
