//! Connecting accounts and using them, as the browser SDK calls it (user token), plus the
//! public pages of the flow: the OAuth callback and connect links.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, delete, get};
use axum::{Json, Router};
use plugboard_core::{ConnectedUser, ProjectId};
use plugboard_service::ServiceError;
use plugboard_service::connect::{
    BeginConnect, CredentialRequest, ProxyRequest, ProxyResponse, SessionState, SettingsUpdate,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use url::Url;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, SdkUser};
use crate::pages;
use crate::wire::{sdk_credential, sdk_integration};

/// The SDK's credential-selection header.
pub const CREDENTIAL_HEADER: &str = "x-paragon-credential";
/// The SDK's configuration-selection header.
pub const CONFIGURATION_HEADER: &str = "x-paragon-configuration-id";
/// The credential id a poll answers once the callback page's message has reported the
/// install (see `session_state`); `GET /sdk/credentials/{it}` answers 204.
pub const ALREADY_REPORTED: Uuid = Uuid::nil();
/// Asks the proxy for the provider's answer as is, not wrapped in `{"output": …}`.
pub const RAW_RESPONSE_HEADER: &str = "x-paragon-use-raw-response";

/// Routes the SDK calls with a user token (they get the SDK's CORS layer).
pub fn sdk_router() -> Router<AppState> {
    let sdk = "/projects/{projectId}/sdk";
    Router::new()
        .route(
            "/v2/projects/{projectId}/sdk/actions/build-oauth",
            get(build_oauth),
        )
        .route(&format!("{sdk}/actions/oauth-nonce"), get(oauth_nonce))
        .route(
            &format!("{sdk}/actions/session-id/{{sid}}"),
            get(session_state).delete(forget_session),
        )
        .route(
            &format!("{sdk}/credentials"),
            get(list_credentials).post(create_credential),
        )
        .route(
            &format!("{sdk}/credentials/{{credentialId}}"),
            get(get_credential).patch(update_credential),
        )
        .route(
            &format!("{sdk}/integrations/{{integrationId}}"),
            delete(disconnect),
        )
        .route(
            &format!("{sdk}/proxy/custom/{{integrationId}}/{{*path}}"),
            any(proxy_custom),
        )
        .route(
            &format!("{sdk}/proxy/{{integration}}/{{*path}}"),
            any(proxy),
        )
        .route(&format!("{sdk}/proxy/{{integration}}"), any(proxy_root))
}

/// Public pages: no token, reached by the user's browser.
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route("/oauth/callback", get(oauth_callback))
        .route("/connect/{token}", get(link_page).post(confirm_link))
        .route("/ui", get(portal))
}

/// What the proxy forwards of a request: method, headers, query and body.
pub struct Forwarded {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Option<String>,
    pub body: Bytes,
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for Forwarded {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let method = req.method().clone();
        let headers = req.headers().clone();
        let query = req.uri().query().map(str::to_owned);
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            ApiError::new(rejection.status(), "body_too_large", rejection.body_text())
        })?;
        Ok(Self {
            method,
            headers,
            query,
            body,
        })
    }
}

/// A selection header's value, when it is a UUID (anything else is ignored, as the SDK
/// sends external ids the same way).
pub fn selected(headers: &HeaderMap, name: &str) -> Option<Uuid> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::try_parse(v.trim()).ok())
}

fn parse_json_param(raw: Option<&str>, name: &str) -> ApiResult<Map<String, Value>> {
    match raw.filter(|r| !r.is_empty() && *r != "undefined" && *r != "null") {
        None => Ok(Map::new()),
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(ApiError::bad_request(
                "invalid_query",
                format!("`{name}` must be a JSON object"),
            )),
        },
    }
}

/// An origin (`scheme://host[:port]`) exactly, or `None`.
fn origin_of(raw: Option<&str>) -> Option<String> {
    let url = Url::parse(raw?).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuildOAuthQuery {
    action: Option<String>,
    integration_id: Option<String>,
    end_user_supplied_values: Option<String>,
    origin_for_post_message: Option<String>,
    install_options: Option<String>,
    oauth_meta_key_id: Option<String>,
}

/// Starts an OAuth round trip; answers `{redirectUrl}` with the provider URL (§B.12).
async fn build_oauth(
    State(state): State<AppState>,
    auth: SdkUser,
    Query(query): Query<BuildOAuthQuery>,
) -> ApiResult<Json<Value>> {
    let integration = query
        .integration_id
        .clone()
        .filter(|id| Uuid::try_parse(id).is_ok())
        .or(query.action.clone().filter(|a| a != "custom"))
        .ok_or_else(|| {
            ApiError::bad_request("invalid_query", "give `action` or `integrationId`")
        })?;
    let inputs = parse_json_param(
        query.end_user_supplied_values.as_deref(),
        "endUserSuppliedValues",
    )?
    .into_iter()
    .filter_map(|(k, v)| Some((k, v.as_str()?.to_owned())))
    .collect::<BTreeMap<_, _>>();
    let request = BeginConnect {
        integration,
        client_session_id: query.oauth_meta_key_id,
        origin: origin_of(query.origin_for_post_message.as_deref()),
        inputs,
        options: parse_json_param(query.install_options.as_deref(), "installOptions")?,
    };
    let url = state
        .services
        .connect
        .begin_connect(auth.project, &auth.user.user_id, request)
        .await?;
    Ok(Json(json!({ "redirectUrl": url.as_str() })))
}

/// The popup's first page (§B.12 step 3). It needs no token: it only tells the opener
/// it loaded.
async fn oauth_nonce(Query(query): Query<BTreeMap<String, String>>) -> Response {
    pages::oauth_nonce(origin_of(query.get("originForPostMessage").map(String::as_str)).as_deref())
}

async fn session_state(
    State(state): State<AppState>,
    auth: SdkUser,
    Path((_, sid)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let found = state
        .services
        .connect
        .session_state(auth.project, &auth.user.user_id, &sid)
        .await?;
    // While pending: 200 `{}`, never 401/403, which would sign the SDK out.
    Ok(Json(match found {
        SessionState::Pending => json!({}),
        SessionState::Connected { credential_id } => {
            json!({ "connectCredentialId": credential_id })
        }
        // Ends the SDK's poll loop without a second `onIntegrationInstall`: the id is in
        // no state, and fetching it answers 204, which the SDK takes as nothing to add.
        SessionState::AlreadyReported => {
            json!({ "connectCredentialId": ALREADY_REPORTED })
        }
        SessionState::Failed { code, message } => {
            json!({ "status": "FAILED", "error": { "code": code, "message": message } })
        }
    }))
}

async fn forget_session(
    State(state): State<AppState>,
    auth: SdkUser,
    Path((_, sid)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    state
        .services
        .connect
        .forget_session(auth.project, &auth.user.user_id, &sid)
        .await?;
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialsQuery {
    integration: Option<String>,
    include_account_auth: Option<String>,
}

/// The user's credentials; with `?integration=` one object for that integration, as
/// `getIntegrationAccount` expects (§B.11).
async fn list_credentials(
    State(state): State<AppState>,
    auth: SdkUser,
    headers: HeaderMap,
    Query(query): Query<CredentialsQuery>,
) -> ApiResult<Json<Value>> {
    let connect = &state.services.connect;
    let Some(integration) = query.integration else {
        let all = connect
            .credentials(auth.project, &auth.user.user_id)
            .await?;
        let list = all.iter().map(|c| sdk_credential(&auth.user, c)).collect();
        return Ok(Json(Value::Array(list)));
    };
    let include_auth = query.include_account_auth.as_deref() == Some("true");
    account(
        &state,
        &auth,
        &integration,
        include_auth,
        selected(&headers, CREDENTIAL_HEADER),
    )
    .await
    .map(Json)
}

async fn account(
    state: &AppState,
    auth: &SdkUser,
    integration: &str,
    include_auth: bool,
    selected: Option<Uuid>,
) -> ApiResult<Value> {
    let connect = &state.services.connect;
    let usable = if include_auth {
        connect
            .usable(auth.project, &auth.user.user_id, integration, selected)
            .await?
    } else {
        // Reading the account must not refresh anything.
        let configured = state
            .services
            .integrations
            .find(auth.project, integration)
            .await?
            .ok_or_else(|| ServiceError::IntegrationNotFound(integration.to_owned()))?;
        let chosen = connect
            .chosen_credential(auth.project, &auth.user.user_id, &configured, selected)
            .await?;
        let mut body = sdk_integration(&configured, &[]);
        add_credential(&mut body, &auth.user, &chosen);
        return Ok(body);
    };
    let full = connect
        .credential(auth.project, &auth.user.user_id, usable.credential.id)
        .await?;
    let mut body = sdk_integration(&usable.integration, &[]);
    add_credential(&mut body, &auth.user, &full);
    if let Value::Object(map) = &mut body {
        map.insert("accountAuth".into(), account_auth(&usable.secrets));
    }
    Ok(body)
}

fn add_credential(
    body: &mut Value,
    user: &ConnectedUser,
    credential: &plugboard_core::CredentialWithConfigurations,
) {
    if let Value::Object(map) = body {
        let c = &credential.credential;
        map.insert("credentialId".into(), json!(c.id));
        map.insert("credentialStatus".into(), json!(c.status.as_str()));
        map.insert("providerId".into(), json!(c.provider_id));
        map.insert(
            "providerData".into(),
            Value::Object(c.provider_data.clone()),
        );
        map.insert("credential".into(), sdk_credential(user, credential));
    }
}

/// The secrets the SDK's file pickers read (`OAUTH_ACCESS_TOKEN`, or typed-in values
/// under upper-case keys).
fn account_auth(secrets: &plugboard_connect::credentials::CredentialSecrets) -> Value {
    use plugboard_connect::credentials::CredentialSecrets;
    match secrets {
        CredentialSecrets::Tokens(t) => json!({ "OAUTH_ACCESS_TOKEN": t.access_token }),
        CredentialSecrets::Inputs { values } => Value::Object(
            values
                .iter()
                .map(|(k, v)| (k.to_uppercase(), Value::String(v.clone())))
                .collect(),
        ),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateCredentialBody {
    integration_id: Option<String>,
    integration: Option<String>,
    #[serde(default)]
    payload: Map<String, Value>,
    code: Option<String>,
    redirect_url: Option<String>,
    #[serde(default)]
    install_options: Map<String, Value>,
    // The SDK sends these; they carry nothing Plugboard needs.
    #[serde(default, rename = "config")]
    _config: Value,
    #[serde(default, rename = "integrationOptions")]
    _integration_options: Value,
}

/// Connects an account from typed-in credentials, an authorization code, or a finished
/// OAuth round trip (§B.12).
async fn create_credential(
    State(state): State<AppState>,
    auth: SdkUser,
    JsonBody(body): JsonBody<CreateCredentialBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let integration = body
        .integration_id
        .or(body.integration)
        .ok_or_else(|| ApiError::bad_request("invalid_body", "`integrationId` is required"))?;
    let request = CredentialRequest {
        integration,
        payload: body.payload,
        code: body.code,
        redirect_url: body.redirect_url,
        options: body.install_options,
    };
    let created = state
        .services
        .connect
        .create_credential(auth.project, &auth.user.user_id, request)
        .await?;
    Ok((StatusCode::OK, Json(sdk_credential(&auth.user, &created))))
}

async fn get_credential(
    State(state): State<AppState>,
    auth: SdkUser,
    Path((_, credential)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = Uuid::try_parse(&credential).map_err(|_| ServiceError::CredentialNotFound)?;
    if id == ALREADY_REPORTED {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let found = state
        .services
        .connect
        .credential(auth.project, &auth.user.user_id, id)
        .await?;
    Ok(Json(sdk_credential(&auth.user, &found)).into_response())
}

#[derive(Debug, Deserialize)]
struct UpdateCredentialBody {
    config: CredentialConfigBody,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialConfigBody {
    workflow_settings: Option<Map<String, Value>>,
    /// The documented older name of `workflowSettings`.
    configured_workflows: Option<Map<String, Value>>,
    shared_settings: Option<Map<String, Value>>,
}

/// Replaces the user's settings of a credential's configuration (§B.16).
async fn update_credential(
    State(state): State<AppState>,
    auth: SdkUser,
    headers: HeaderMap,
    Path((_, credential)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateCredentialBody>,
) -> ApiResult<Json<Value>> {
    let id = Uuid::try_parse(&credential).map_err(|_| ServiceError::CredentialNotFound)?;
    let update = SettingsUpdate {
        workflow_settings: body
            .config
            .workflow_settings
            .or(body.config.configured_workflows),
        shared_settings: body.config.shared_settings,
    };
    let updated = state
        .services
        .connect
        .update_settings(
            auth.project,
            &auth.user.user_id,
            id,
            selected(&headers, CONFIGURATION_HEADER),
            update,
        )
        .await?;
    Ok(Json(sdk_credential(&auth.user, &updated)))
}

/// Disconnects the user from an integration (§B.4): the selected credential, or all.
async fn disconnect(
    State(state): State<AppState>,
    auth: SdkUser,
    headers: HeaderMap,
    Path((_, integration)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let removed = state
        .services
        .workflows
        .disconnect(
            auth.project,
            &auth.user.user_id,
            &integration,
            selected(&headers, CREDENTIAL_HEADER),
        )
        .await?;
    Ok(Json(json!({ "disconnected": removed })))
}

async fn proxy(
    State(state): State<AppState>,
    auth: SdkUser,
    Path((_, integration, path)): Path<(String, String, String)>,
    forwarded: Forwarded,
) -> ApiResult<Response> {
    let request = proxy_request(integration, &path, forwarded);
    run_proxy(&state, auth.project, &auth.user.user_id, request).await
}

async fn proxy_root(
    State(state): State<AppState>,
    auth: SdkUser,
    Path((_, integration)): Path<(String, String)>,
    forwarded: Forwarded,
) -> ApiResult<Response> {
    let request = proxy_request(integration, "", forwarded);
    run_proxy(&state, auth.project, &auth.user.user_id, request).await
}

/// `/sdk/proxy/custom/{integrationId}/…`: a custom integration named by its id.
async fn proxy_custom(
    State(state): State<AppState>,
    auth: SdkUser,
    Path((_, integration_id, path)): Path<(String, String, String)>,
    forwarded: Forwarded,
) -> ApiResult<Response> {
    let key = match Uuid::try_parse(&integration_id) {
        Ok(id) => state
            .services
            .integrations
            .find_by_id(auth.project, id)
            .await?
            .map(|c| c.integration.key.to_string()),
        Err(_) => None,
    }
    .ok_or_else(|| ServiceError::IntegrationNotFound(integration_id.clone()))?;
    let request = proxy_request(key, &path, forwarded);
    run_proxy(&state, auth.project, &auth.user.user_id, request).await
}

pub fn proxy_request(integration: String, path: &str, forwarded: Forwarded) -> ProxyRequest {
    let mut path_and_query = format!("/{}", path.trim_start_matches('/'));
    if let Some(query) = forwarded.query.filter(|q| !q.is_empty()) {
        path_and_query.push('?');
        path_and_query.push_str(&query);
    }
    ProxyRequest {
        selected: selected(&forwarded.headers, CREDENTIAL_HEADER),
        integration,
        method: forwarded.method,
        path_and_query,
        headers: forwarded.headers,
        body: forwarded.body,
    }
}

/// Calls the provider and shapes its answer: `{"output": …}` with the provider's status,
/// or the raw answer when the caller asks for it.
pub async fn run_proxy(
    state: &AppState,
    project: ProjectId,
    user: &plugboard_core::UserId,
    request: ProxyRequest,
) -> ApiResult<Response> {
    let raw = request
        .headers
        .get(RAW_RESPONSE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v.trim(), "1" | "true"));
    let answer = state
        .services
        .connect
        .proxy(project, user, &request)
        .await?;
    Ok(if raw {
        raw_response(answer)
    } else {
        wrapped_response(answer)
    })
}

fn status_of(answer: &ProxyResponse) -> StatusCode {
    StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY)
}

fn raw_response(answer: ProxyResponse) -> Response {
    let status = status_of(&answer);
    let mut response = (status, answer.body).into_response();
    response.headers_mut().extend(answer.headers);
    response
}

fn wrapped_response(answer: ProxyResponse) -> Response {
    let status = status_of(&answer);
    let output = if answer.body.is_empty() {
        Value::Null
    } else if answer.is_json() {
        serde_json::from_slice(&answer.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer.body).into_owned()))
    } else {
        Value::String(String::from_utf8_lossy(&answer.body).into_owned())
    };
    let mut response = (status, Json(json!({ "output": output }))).into_response();
    for name in [header::RETRY_AFTER, header::ETAG, header::LINK] {
        if let Some(value) = answer.headers.get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// Where the provider sends the user back. The page reports the outcome to the SDK's
/// window (postMessage) and closes; polling sees the same outcome.
async fn oauth_callback(
    State(state): State<AppState>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let outcome = state.services.connect.handle_callback(&params).await;
    let session = outcome.session.as_ref();
    let result = outcome.result.map_err(ApiError::from);
    if let Some(url) = session
        .and_then(|s| s.options.get("returnUrl"))
        .and_then(Value::as_str)
        .and_then(|u| Url::parse(u).ok())
    {
        return Redirect::to(return_url(url, &result).as_str()).into_response();
    }
    let origin = session.and_then(|s| s.origin.clone());
    let integration_id = session.map(|s| s.integration_id);
    match result {
        Ok(credential) => {
            let message = json!({
                "type": "oauth_success_callback",
                "credential": {
                    "integrationId": integration_id,
                    // The SDK sends the payload back (`POST /sdk/credentials`); the
                    // session id lets that confirmation stop polling from reporting
                    // the install a second time.
                    "payload": {
                        "connectCredentialId": credential.credential.id,
                        "connectSessionId": session.map(|s| s.id),
                    },
                },
            });
            pages::callback(
                StatusCode::OK,
                "Connected",
                "You can close this window.",
                origin.as_deref().map(|o| (&message, o)),
                true,
            )
        }
        Err(error) => {
            let message = json!({
                "type": "oauth_error_callback",
                "error": error.message,
                "errorResponse": { "code": error.code, "message": error.message },
                "integrationId": integration_id,
            });
            pages::callback(
                error.status,
                "Could not connect",
                &error.message,
                origin.as_deref().map(|o| (&message, o)),
                false,
            )
        }
    }
}

/// The app's return URL with the outcome added.
fn return_url(
    mut url: Url,
    result: &Result<plugboard_core::CredentialWithConfigurations, ApiError>,
) -> Url {
    {
        let mut query = url.query_pairs_mut();
        match result {
            Ok(c) => {
                query
                    .append_pair("status", "connected")
                    .append_pair("credentialId", &c.credential.id.to_string());
            }
            Err(e) => {
                query
                    .append_pair("status", "failed")
                    .append_pair("error", e.code);
            }
        }
    }
    url
}

/// `CONNECT/ui`: the SDK's hidden iframe (§F.6).
async fn portal() -> Response {
    pages::blank_portal()
}

/// Most fields a connect link's form may post (the form token and a few inputs).
const MAX_LINK_FORM_FIELDS: usize = 32;

/// A connect link's page. Opening it spends nothing (mail and chat clients fetch links
/// to preview them); the user's Connect press does.
async fn link_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    render_link_page(&state, &token, StatusCode::OK, &BTreeMap::new(), None).await
}

/// The page's form, posted by the user: spends the link and goes on to the provider.
/// A refused input shows the page again (422), the link still usable.
async fn confirm_link(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin_post(&state, &headers) {
        let error = ApiError::from(ServiceError::from(
            plugboard_service::connect::ConnectError::LinkFormMismatch,
        ));
        return pages::callback(error.status, "Cannot connect", &error.message, None, false);
    }
    let mut form_token = String::new();
    let mut typed = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(&body).take(MAX_LINK_FORM_FIELDS) {
        if name == "formToken" {
            form_token = value.into_owned();
        } else if let Some(key) = name.strip_prefix("inputs.") {
            typed
                .entry(key.to_owned())
                .or_insert_with(|| value.into_owned());
        }
    }
    match state
        .services
        .connect
        .open_link(&token, &form_token, &typed)
        .await
    {
        Ok(url) => {
            let mut response = Redirect::to(url.as_str()).into_response();
            response.headers_mut().insert(
                header::REFERRER_POLICY,
                header::HeaderValue::from_static("no-referrer"),
            );
            response
        }
        Err(ServiceError::InvalidInput(message)) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_link_page(&state, &token, status, &typed, Some(message.as_str())).await
        }
        Err(e) => link_error(e),
    }
}

async fn render_link_page(
    state: &AppState,
    token: &str,
    status: StatusCode,
    typed: &BTreeMap<String, String>,
    error: Option<&str>,
) -> Response {
    let page = match state.services.connect.link_page(token).await {
        Ok(page) => page,
        Err(e) => return link_error(e),
    };
    let fields: Vec<pages::LinkField<'_>> = page
        .missing_inputs
        .iter()
        .map(|input| pages::LinkField {
            key: &input.key,
            label: &input.label,
            help: input.help.as_deref(),
            value: typed.get(&input.key).map_or("", String::as_str),
        })
        .collect();
    pages::connect_link(
        status,
        &page.integration_name,
        &page.brand_color,
        &page.form_token,
        &fields,
        error,
    )
}

fn link_error(e: ServiceError) -> Response {
    let error = ApiError::from(e);
    pages::callback(error.status, "Cannot connect", &error.message, None, false)
}

/// Whether a browser sent the form from this server's own pages: `Sec-Fetch-Site`
/// when the browser gives it, else `Origin` against the public URL. A request with
/// neither (not a browser) still needs the form token.
fn same_origin_post(state: &AppState, headers: &HeaderMap) -> bool {
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header_text("sec-fetch-site") {
        return site == "same-origin";
    }
    match header_text("origin") {
        None => true,
        Some(origin) => {
            let public = state.services.connect.settings().public_url.origin();
            public.is_tuple() && origin == public.ascii_serialization()
        }
    }
}
