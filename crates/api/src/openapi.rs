//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{management, ops, sdk};

#[derive(OpenApi)]
#[openapi(
    info(title = "Plugboard", description = "Embedded integration platform: the Paragon-compatible SDK API and Plugboard's management API."),
    paths(
        sdk::get_me, sdk::patch_me, sdk::list_integrations,
        management::create_project, management::get_project,
        management::list_users, management::get_user, management::put_user, management::patch_user,
        management::replace_meta, management::suspend_user, management::resume_user, management::delete_user,
        management::list_signing_keys, management::create_signing_key, management::revoke_signing_key,
        management::list_secret_keys, management::create_secret_key, management::revoke_secret_key,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "sdk", description = "Called by the browser SDK with a user token (RS256 JWT)"),
        (name = "users", description = "Connected users, managed with a project secret key"),
        (name = "projects", description = "Projects"),
        (name = "keys", description = "Signing keys (verify user tokens) and secret keys (authenticate the backend)"),
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
