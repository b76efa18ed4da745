//! The few HTML pages of the connect flow: the SDK's popup start page, the OAuth callback
//! page that reports back to the opener, and connect-link errors. Each page carries its
//! script inline under a per-response CSP nonce; every value is escaped for its context.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// Text for HTML element content and quoted attributes.
pub fn escape_html(text: &str) -> String {
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

/// A JSON value safe inside `<script>`: no `<`, `>` or `&` can close the element or
/// open a comment, and U+2028/9 are escaped for older parsers.
pub fn script_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A small page with an optional inline script.
pub fn page(status: StatusCode, title: &str, body_html: &str, script: Option<&str>) -> Response {
    let nonce = nonce();
    let script = script
        .map(|s| format!("<script nonce=\"{nonce}\">{s}</script>"))
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    );
    html_response(
        status,
        title,
        &format!("{body_html}{script}"),
        &csp,
        "no-referrer",
    )
}

fn html_response(
    status: StatusCode,
    title: &str,
    body_html: &str,
    csp: &str,
    referrer_policy: &'static str,
) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>body{{font:16px/1.5 system-ui,sans-serif;margin:2rem;\
         color:#1f2328}}h1{{font-size:1.25rem}}.error{{color:#b42318}}{LINK_STYLE}</style>\
         </head><body>{body_html}</body></html>",
        title = escape_html(title),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(referrer_policy),
    );
    if let Ok(value) = HeaderValue::from_str(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// The connect link page's look (no script: a plain form).
const LINK_STYLE: &str = ".card{max-width:26rem;margin:3rem auto;padding:1.5rem 2rem;\
    border:1px solid #d0d7de;border-radius:12px;border-top:6px solid var(--brand,#0969da)}\
    label{display:block;font-weight:600;margin-top:1rem}\
    input[type=text]{width:100%;box-sizing:border-box;font:inherit;padding:.45rem .6rem;\
    border:1px solid #d0d7de;border-radius:6px}.help{color:#59636e;font-size:.875rem;margin:.25rem 0 0}\
    button{margin-top:1.5rem;font:inherit;font-weight:600;padding:.55rem 1.4rem;border:0;\
    border-radius:6px;background:var(--brand,#0969da);color:#fff;cursor:pointer}";

/// One field of a connect link's page.
pub struct LinkField<'a> {
    pub key: &'a str,
    pub label: &'a str,
    pub help: Option<&'a str>,
    /// What the user typed last time (after a refused confirmation).
    pub value: &'a str,
}

/// A connect link's page: names the integration and waits for the user to press
/// Connect, which posts the form (with `form_token` and a field per missing input) back
/// to the same URL. No script; the form may only post to this origin, and the answer
/// redirects to the provider.
pub fn connect_link(
    status: StatusCode,
    integration: &str,
    brand_color: &str,
    form_token: &str,
    fields: &[LinkField<'_>],
    error: Option<&str>,
) -> Response {
    let name = escape_html(integration);
    let color = if is_hex_color(brand_color) {
        format!(" style=\"--brand:{brand_color}\"")
    } else {
        String::new()
    };
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape_html(e)))
        .unwrap_or_default();
    let mut inputs = String::new();
    for field in fields {
        let id = format!("input-{}", escape_html(field.key));
        inputs.push_str(&format!(
            "<label for=\"{id}\">{label}</label><input type=\"text\" id=\"{id}\" \
             name=\"inputs.{key}\" value=\"{value}\" required maxlength=\"{max}\" \
             autocomplete=\"off\" spellcheck=\"false\">",
            label = escape_html(field.label),
            key = escape_html(field.key),
            value = escape_html(field.value),
            max = plugboard_service::connect::MAX_INPUT_CHARS,
        ));
        if let Some(help) = field.help {
            inputs.push_str(&format!("<p class=\"help\">{}</p>", escape_html(help)));
        }
    }
    let body = format!(
        "<main class=\"card\"{color}><h1>Connect {name}</h1>\
         <p>You are about to connect your {name} account. Nothing happens until you press \
         Connect; you will then sign in to {name} and choose what to allow.</p>{error}\
         <form method=\"post\"><input type=\"hidden\" name=\"formToken\" value=\"{token}\">\
         {inputs}<button type=\"submit\">Connect</button></form></main>",
        token = escape_html(form_token),
    );
    // No script at all. `form-action` is left out: it would also govern the redirect to
    // the provider that answers the form. `same-origin` referrers let the form's POST
    // carry its origin (checked) while the provider sees none.
    let csp = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; \
               base-uri 'none'";
    html_response(
        status,
        &format!("Connect {integration}"),
        &body,
        csp,
        "same-origin",
    )
}

fn is_hex_color(text: &str) -> bool {
    text.len() == 7 && text.starts_with('#') && text[1..].chars().all(|c| c.is_ascii_hexdigit())
}

/// `CONNECT/ui`, which the SDK loads in a hidden iframe on every page. Plugboard has no
/// hosted portal (headless mode only), so the page is empty; unlike the others, any app
/// may frame it.
pub fn blank_portal() -> Response {
    let html = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                <title>Plugboard</title></head><body></body></html>";
    let mut response = (StatusCode::OK, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; base-uri 'none'; form-action 'none'"),
    );
    response
}

/// The page the SDK opens first: it tells the opener it has loaded, and the SDK then
/// sends it on to the provider.
pub fn oauth_nonce(origin: Option<&str>) -> Response {
    let Some(origin) = origin else {
        return page(
            StatusCode::BAD_REQUEST,
            "Cannot connect",
            "<h1 class=\"error\">Cannot connect</h1><p>originForPostMessage is missing or is not an origin.</p>",
            None,
        );
    };
    let script = format!(
        "if(window.opener){{window.opener.postMessage({{type:\"oauth-nonce-loaded\"}},{});}}",
        script_json(&Value::String(origin.to_owned()))
    );
    page(
        StatusCode::OK,
        "Connecting…",
        "<p>Connecting…</p>",
        Some(&script),
    )
}

/// The end of a connect attempt in the popup: posts `message` to the opener at `origin`
/// (when both exist), then closes itself on success.
pub fn callback(
    status: StatusCode,
    heading: &str,
    detail: &str,
    message: Option<(&Value, &str)>,
    close: bool,
) -> Response {
    let mut script = String::new();
    if let Some((message, origin)) = message {
        script.push_str(&format!(
            "if(window.opener){{window.opener.postMessage({},{});}}",
            script_json(message),
            script_json(&Value::String(origin.to_owned()))
        ));
    }
    if close {
        script.push_str("setTimeout(function(){window.close();},200);");
    }
    let class = if status.is_success() {
        ""
    } else {
        " class=\"error\""
    };
    let body = format!(
        "<h1{class}>{}</h1><p>{}</p>",
        escape_html(heading),
        escape_html(detail)
    );
    page(
        status,
        heading,
        &body,
        (!script.is_empty()).then_some(script.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script() {
        let hostile = Value::String("</script><script>alert(1)</script>".into());
        let out = script_json(&hostile);
        assert!(!out.contains("</script"));
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, hostile);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
