//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::{audit, connections, management, ops, sdk, webhooks, workflows};

#[derive(OpenApi)]
#[openapi(
    info(title = "Plugboard", description = "Embedded integration platform: the Paragon-compatible SDK API and Plugboard's management API."),
    paths(
        sdk::get_me, sdk::patch_me, sdk::list_integrations,
        connections::list_credentials, connections::disconnect,
        connections::create_connect_link, connections::proxy,
        workflows::deploy, workflows::list_workflows, workflows::admin_enable,
        workflows::admin_disable, workflows::admin_event, workflows::list_executions,
        workflows::get_execution, workflows::replay_execution, workflows::get_env, workflows::put_env,
        crate::policy::get_policy, crate::policy::put_policy, crate::policy::dry_run, crate::policy::user_entitlements,
        webhooks::list_endpoints, webhooks::create_endpoint, webhooks::get_endpoint,
        webhooks::update_endpoint, webhooks::delete_endpoint, webhooks::rotate_secret,
        webhooks::list_events, webhooks::get_event, webhooks::redeliver,
        management::create_project, management::get_project,
        management::list_users, management::get_user, management::put_user, management::patch_user,
        management::replace_meta, management::suspend_user, management::resume_user, management::delete_user,
        management::list_signing_keys, management::create_signing_key, management::revoke_signing_key,
        management::list_secret_keys, management::create_secret_key, management::revoke_secret_key,
        management::list_integrations, management::configure_integration,
        audit::list,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
    ),
    modifiers(&SecuritySchemes, &CommonErrors),
    tags(
        (name = "sdk", description = "Called by the browser SDK with a user token (RS256 JWT)"),
        (name = "users", description = "Connected users, managed with a project secret key"),
        (name = "projects", description = "Projects"),
        (name = "integrations", description = "Integrations a project turns on for its users"),
        (name = "keys", description = "Signing keys (verify user tokens) and secret keys (authenticate the backend)"),
        (name = "webhooks", description = "Lifecycle webhooks (Standard Webhooks): endpoints, events, deliveries"),
        (name = "audit", description = "The audit log of management and dashboard actions"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |format: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format(format)
                    .build(),
            )
        };
        components.add_security_scheme("userToken", bearer("JWT"));
        components.add_security_scheme("secretKey", bearer("pb_sk_…"));
        components.add_security_scheme("adminToken", bearer("admin token"));
    }
}

/// Adds the errors every endpoint of a family can answer, so each operation lists them
/// without repeating them in every annotation: authentication failures for the SDK and
/// management routes, and 408/500 everywhere.
struct CommonErrors;

impl CommonErrors {
    const SDK: &[(&str, &str)] = &[
        (
            "401",
            "Invalid user token: `token_missing`, `token_malformed`, `token_algorithm_not_allowed`, `token_key_unknown`, `token_signature_invalid`, `token_subject_missing`, `token_subject_invalid`, `token_expiry_missing`, `token_expired`, `token_issued_in_future`, `token_not_yet_valid`, `token_audience_invalid`",
        ),
        ("403", "`user_suspended`"),
        ("404", "`project_not_found`"),
    ];
    const MANAGEMENT: &[(&str, &str)] = &[
        (
            "401",
            "`invalid_credentials`: no, unknown or revoked secret key (or admin token)",
        ),
        ("403", "`wrong_project`: a secret key of another project"),
        ("404", "`project_not_found`"),
    ];
    const EVERYWHERE: &[(&str, &str)] = &[
        ("408", "`request_timeout`"),
        (
            "500",
            "`internal_error`, with a `correlationId` to quote; details are only in the server log",
        ),
    ];
}

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let family: &[(&str, &str)] = if path.starts_with("/projects/") {
                Self::SDK
            } else if path.starts_with("/api/v1/projects/") {
                Self::MANAGEMENT
            } else {
                &[]
            };
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, description) in family.iter().chain(Self::EVERYWHERE) {
                    add_error_if_absent(operation, status, description);
                }
            }
        }
    }
}

fn add_error_if_absent(operation: &mut Operation, status: &str, description: &str) {
    let responses = &mut operation.responses.responses;
    if responses.contains_key(status) {
        return;
    }
    let response = ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build();
    responses.insert(status.to_owned(), response.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_documents_its_errors() {
        let doc = ApiDoc::openapi();
        let schemas = &doc.components.as_ref().unwrap().schemas;
        assert!(schemas.contains_key("ErrorBody"));
        let mut checked = 0;
        for (path, item) in &doc.paths.paths {
            let operations = [&item.get, &item.put, &item.post, &item.patch, &item.delete];
            for operation in operations.into_iter().flatten() {
                let statuses: Vec<&str> = operation
                    .responses
                    .responses
                    .keys()
                    .map(String::as_str)
                    .collect();
                let has = |s: &str| statuses.contains(&s);
                assert!(has("408") && has("500"), "{path}: {statuses:?}");
                assert!(
                    statuses.iter().any(|s| s.starts_with('2')),
                    "{path}: no success answer"
                );
                if path.starts_with("/projects/") || path.starts_with("/api/v1/projects/") {
                    assert!(
                        has("401") && has("403") && has("404"),
                        "{path}: {statuses:?}"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} operations documented");
    }
}
