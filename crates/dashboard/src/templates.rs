//! The embedded templates and stylesheet, and rendering with HTML autoescape.

use std::sync::LazyLock;

use axum::response::Html;
use minijinja::Environment;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::BASE;
use crate::error::PageResult;

pub const CSS: &str = include_str!("../assets/dashboard.css");

static CSS_PATH: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(CSS.as_bytes());
    let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("/assets/dashboard-{short}.css")
});

/// The stylesheet's path under [`BASE`], naming a hash of its content.
pub fn css_path() -> String {
    CSS_PATH.clone()
}

/// Templates are compiled once; the environment is immutable afterwards.
static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // `.html` names turn HTML autoescape on.
    for (name, source) in [
        ("base.html", include_str!("../templates/base.html")),
        ("login.html", include_str!("../templates/login.html")),
        ("projects.html", include_str!("../templates/projects.html")),
        ("users.html", include_str!("../templates/users.html")),
        ("user.html", include_str!("../templates/user.html")),
        (
            "executions.html",
            include_str!("../templates/executions.html"),
        ),
        (
            "execution.html",
            include_str!("../templates/execution.html"),
        ),
        (
            "integrations.html",
            include_str!("../templates/integrations.html"),
        ),
        ("error.html", include_str!("../templates/error.html")),
    ] {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not compile: {e}"));
    }
    env
});

pub fn render(name: &str, context: minijinja::Value) -> PageResult<Html<String>> {
    Ok(Html(ENV.get_template(name)?.render(context)?))
}

/// What the layout needs: the page title, the navigation and the session's forms.
#[derive(Debug, Serialize)]
pub struct Layout {
    pub title: String,
    pub base: &'static str,
    pub css: String,
    /// `users`, `executions` or `integrations`: the current section.
    pub section: &'static str,
    pub project_name: Option<String>,
    pub project_id: Option<String>,
    pub csrf: Option<String>,
    pub admin: bool,
}

/// The layout of a page outside a session (login, errors).
pub fn bare_layout(title: &str) -> Layout {
    Layout {
        title: title.to_owned(),
        base: BASE,
        css: format!("{BASE}{}", css_path()),
        section: "",
        project_name: None,
        project_id: None,
        csrf: None,
        admin: false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_compiles() {
        assert!(super::ENV.templates().count() >= 9);
    }
}
