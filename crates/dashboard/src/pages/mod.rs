//! One module per page family.

pub mod executions;
pub mod integrations;
pub mod login;
pub mod user;
pub mod users;

use serde::Deserialize;

/// The body of a form that only carries its CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}
