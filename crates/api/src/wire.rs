//! The Paragon Connect SDK's wire shapes (`@useparagon/connect` 2.4.0). Only this module
//! knows them; the rest of the code speaks Plugboard's own types.

use plugboard_core::{ConnectedUser, ProjectId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Features this server implements, in the SDK's vocabulary. The SDK gates headless
/// install/uninstall on `headless-cp`.
pub const ACCESSIBLE_FEATURES: &[&str] = &["headless-cp", "user-metadata"];

/// The plan name reported to the SDK; it only reads `accessibleFeatures`.
pub const BILLING_PLAN: &str = "connect_enterprise";

/// `GET /projects/{projectId}/sdk/me`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SdkMe {
    pub authenticated: bool,
    pub user_id: String,
    #[schema(value_type = Object)]
    pub meta: Map<String, Value>,
    #[schema(value_type = Vec<Object>)]
    pub resources: Vec<Value>,
    pub project: SdkProject,
    /// One entry per integration the project configures, keyed by integration name.
    #[schema(value_type = Object)]
    pub integrations: Map<String, Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SdkProject {
    pub id: String,
    pub billing_plan: &'static str,
    pub accessible_features: &'static [&'static str],
}

impl SdkMe {
    pub fn new(project: ProjectId, user: &ConnectedUser) -> Self {
        Self {
            authenticated: true,
            user_id: user.user_id.to_string(),
            meta: user.meta.as_map().clone(),
            resources: Vec::new(),
            project: SdkProject {
                id: project.to_string(),
                billing_plan: BILLING_PLAN,
                accessible_features: ACCESSIBLE_FEATURES,
            },
            integrations: Map::new(),
        }
    }
}

/// `PATCH /projects/{projectId}/sdk/me` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SdkMetaPatch {
    /// A JSON Merge Patch for the user's metadata.
    #[schema(value_type = Object)]
    pub meta: Value,
}
