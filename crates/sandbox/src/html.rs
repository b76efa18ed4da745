//! The consent and error pages. Every value put in them goes through [`escape`].

use std::fmt::Write;

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, X_FRAME_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

const TITLE: &str = "Sandbox provider — development only";

/// No scripts, no framing (a consent page must not be clickjacked). No `form-action`: browsers
/// apply it to the redirect after the form too, which would block the client's callback.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;\
padding:0 1rem;color:#222}.dev{background:#b00020;color:#fff;padding:.6rem 1rem;\
border-radius:4px;font-weight:bold}code{background:#eee;padding:0 .2rem}\
button{font-size:1rem;padding:.4rem 1.2rem;margin-right:.5rem}";

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the consent page shows and sends back.
pub(crate) struct Consent<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a str,
    /// The authorization request's parameters, posted back as hidden fields.
    pub hidden: Vec<(&'a str, &'a str)>,
}

pub(crate) fn consent_page(consent: &Consent) -> Response {
    let mut body = format!(
        "<h2>Authorize <code>{}</code></h2>\n<p>It asks for access to your sandbox account, \
         then returns you to <code>{}</code>.</p>\n",
        escape(consent.client_id),
        escape(consent.redirect_uri)
    );
    body.push_str(&scope_list(consent.scopes));
    // Relative action: the page is served at `…/oauth/authorize`, wherever it is mounted.
    body.push_str("<form method=\"post\" action=\"authorize\">\n");
    for (name, value) in &consent.hidden {
        let (name, value) = (escape(name), escape(value));
        let _ = writeln!(
            body,
            "<input type=\"hidden\" name=\"{name}\" value=\"{value}\">"
        );
    }
    body.push_str(
        "<p><label>Account name <input name=\"account_name\" value=\"Sandbox User\" \
         maxlength=\"100\"></label></p>\n\
         <button name=\"decision\" value=\"allow\">Allow</button>\
         <button name=\"decision\" value=\"deny\">Deny</button>\n</form>\n",
    );
    page(StatusCode::OK, &body)
}

fn scope_list(scopes: &str) -> String {
    if scopes.is_empty() {
        return "<p>No scopes requested.</p>\n".to_owned();
    }
    let items: String = scopes
        .split(' ')
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    format!("<p>Scopes:</p>\n<ul>{items}</ul>\n")
}

/// An authorization error that must not be redirected (unknown client, unverified redirect URI).
pub(crate) fn error_page(message: &str) -> Response {
    let body = format!(
        "<h2>Authorization request refused</h2>\n<p>{}</p>\n",
        escape(message)
    );
    page(StatusCode::BAD_REQUEST, &body)
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"robots\" content=\"noindex\"><title>{TITLE}</title>\
         <style>{STYLE}</style></head><body>\n<p class=\"dev\">{TITLE}: Plugboard's built-in fake \
         OAuth provider. Never use it with real accounts or data.</p>\n<h1>Sandbox provider</h1>\n{body}\
         </body></html>\n"
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_the_five_characters() {
        assert_eq!(
            super::escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
