//! Connected Users: search by id, `Name` or `Email`; filter by metadata, integration,
//! credential status and suspension; totals; pages.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plugboard_core::ConnectedUser;
use plugboard_service::ServiceError;
use plugboard_service::users::UserListQuery;
use serde::Serialize;

use crate::DashboardState;
use crate::error::{PageError, PageResult};
use crate::session::ProjectSession;
use crate::templates::render;
use crate::view::{query, segment, when, when_opt};

/// Users per page.
pub const PAGE_SIZE: usize = 50;
/// Totals are counted up to this many users; above it the page says "10,000+". Counting
/// walks the matching index entries (the metadata index alone for metadata filters), so
/// the cap bounds the cost however large the project: exact where a support person reads
/// the number, bounded where it would only say "a lot".
pub const COUNT_CAP: u64 = 10_000;

/// The filters as typed in the form, echoed back into it.
#[derive(Debug, Default, Serialize)]
pub struct Filters {
    pub q: String,
    pub meta: Vec<String>,
    pub integration: String,
    pub credential: String,
    pub suspended: String,
    pub cursor: String,
}

impl Filters {
    pub fn parse(raw: &str) -> PageResult<Self> {
        let mut filters = Self::default();
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            let value = value.trim().to_owned();
            match key.as_ref() {
                "q" => filters.q = value,
                "meta" if !value.is_empty() => filters.meta.push(value),
                "meta" => {}
                "integration" => filters.integration = value,
                "credential" => filters.credential = value,
                "suspended" => filters.suspended = value,
                "cursor" => filters.cursor = value,
                "notice" => {}
                other => {
                    return Err(PageError::BadRequest(format!("unknown filter `{other}`")));
                }
            }
        }
        Ok(filters)
    }

    /// The service's query: the one the management API builds from its parameters.
    pub fn to_query(&self) -> PageResult<UserListQuery> {
        let meta = self
            .meta
            .iter()
            .map(|pair| {
                pair.split_once('=')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| {
                        PageError::BadRequest(format!(
                            "metadata filters are written key=value, not `{pair}`"
                        ))
                    })
            })
            .collect::<PageResult<Vec<_>>>()?;
        let suspended = match self.suspended.as_str() {
            "" => None,
            "yes" => Some(true),
            "no" => Some(false),
            other => {
                return Err(PageError::BadRequest(format!(
                    "suspended is yes or no, not `{other}`"
                )));
            }
        };
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Ok(UserListQuery {
            q: non_empty(&self.q),
            meta,
            suspended,
            integration: non_empty(&self.integration),
            credential_status: non_empty(&self.credential),
            limit: Some(PAGE_SIZE),
            cursor: non_empty(&self.cursor),
        })
    }

    /// This search's link with another cursor.
    fn link(&self, cursor: &str) -> String {
        let mut pairs: Vec<(&str, &str)> = vec![("q", &self.q)];
        pairs.extend(self.meta.iter().map(|m| ("meta", m.as_str())));
        pairs.extend([
            ("integration", self.integration.as_str()),
            ("credential", self.credential.as_str()),
            ("suspended", self.suspended.as_str()),
            ("cursor", cursor),
        ]);
        format!("?{}", query(&pairs))
    }
}

#[derive(Serialize)]
pub struct UserRow {
    pub id: String,
    pub href: String,
    pub name: String,
    pub email: String,
    pub suspended: bool,
    pub created: String,
    pub last_seen: String,
}

impl From<&ConnectedUser> for UserRow {
    fn from(u: &ConnectedUser) -> Self {
        let text = |key: &str| {
            u.meta
                .as_map()
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        Self {
            id: u.user_id.to_string(),
            href: format!("{}/users/{}", crate::BASE, segment(u.user_id.as_str())),
            name: text("Name"),
            email: text("Email"),
            suspended: u.suspended,
            created: when(u.created_at),
            last_seen: when_opt(u.last_seen_at),
        }
    }
}

#[derive(Serialize)]
struct Choice {
    value: String,
    label: String,
}

pub async fn list(
    State(state): State<DashboardState>,
    session: ProjectSession,
    RawQuery(raw): RawQuery,
) -> PageResult<Response> {
    let project = session.project.id;
    let services = &state.services;
    let filters = Filters::parse(raw.as_deref().unwrap_or(""))?;
    let integrations: Vec<Choice> = services
        .integrations
        .list(project)
        .await?
        .iter()
        .map(|c| Choice {
            value: c.integration.key.to_string(),
            label: format!("{} ({})", c.spec.name, c.integration.key),
        })
        .collect();
    let outcome = match filters.to_query() {
        Ok(query) => {
            let (page, total) = tokio::join!(
                services.users.list(project, query.clone()),
                services.users.count(project, query, COUNT_CAP),
            );
            page.and_then(|p| total.map(|t| (p, t)))
                .map_err(PageError::from)
        }
        Err(e) => Err(e),
    };
    // A bad filter shows the form again with the reason, not an error page.
    let (rows, next, total, error) = match outcome {
        Ok((page, total)) => (
            page.users.iter().map(UserRow::from).collect::<Vec<_>>(),
            page.next_cursor.map(|c| filters.link(&c)),
            Some(total),
            None,
        ),
        Err(PageError::Service(
            e @ (ServiceError::InvalidFilter(_)
            | ServiceError::InvalidCursor
            | ServiceError::IntegrationNotFound(_)
            | ServiceError::Metadata(_)),
        )) => (Vec::new(), None, None, Some(e.to_string())),
        Err(e @ PageError::BadRequest(_)) => (Vec::new(), None, None, Some(e.to_string())),
        Err(e) => return Err(e),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let html = render(
        "users.html",
        minijinja::context! {
            layout => session.layout("Connected users", "users"),
            filters => &filters,
            meta_text => filters.meta.join(", "),
            integrations => integrations,
            users => rows,
            total => total.map(|t| format_count(t.count)),
            capped => total.is_some_and(|t| t.capped),
            next => next,
            paged => !filters.cursor.is_empty(),
            first => filters.link(""),
            error => error,
        },
    )?;
    Ok((status, html).into_response())
}

/// `100000` → `100,000`.
pub fn format_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(100_000), "100,000");
        assert_eq!(format_count(1_234_567), "1,234,567");
    }

    #[test]
    fn filters_parse_into_the_services_query() {
        let f = Filters::parse(
            "q=john&meta=Email%3Dj%40b.com&meta=plan=pro&credential=INVALID&suspended=no",
        )
        .unwrap();
        let q = f.to_query().unwrap();
        assert_eq!(q.q.as_deref(), Some("john"));
        assert_eq!(
            q.meta,
            vec![
                ("Email".into(), "j@b.com".into()),
                ("plan".into(), "pro".into())
            ]
        );
        assert_eq!(q.credential_status.as_deref(), Some("INVALID"));
        assert_eq!(q.suspended, Some(false));
        assert!(Filters::parse("meta=nope").unwrap().to_query().is_err());
        assert!(Filters::parse("bogus=1").is_err());
    }
}
