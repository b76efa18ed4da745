//! The Paragon Connect SDK's wire shapes (`@useparagon/connect` 2.4.0). Only this module
//! knows them; the rest of the code speaks Plugboard's own types.

use plugboard_core::{ConnectedUser, CredentialStatus, CredentialWithConfigurations, ProjectId};
use plugboard_service::integrations::ConfiguredIntegration;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
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
    pub fn new(project: ProjectId, user: &ConnectedUser, integrations: Map<String, Value>) -> Self {
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
            integrations,
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

/// RFC 3339 in UTC with milliseconds, e.g. `2026-01-01T00:00:00.000Z`, as Paragon writes
/// dates.
pub fn timestamp(ms: i64) -> String {
    plugboard_core::millis_to_datetime(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One entry of `GET /sdk/integrations` (§D.2), with the project's workflows of this
/// integration (`workflows[]` and `configs[0].values.workflowMeta`).
pub fn sdk_integration(
    configured: &ConfiguredIntegration,
    all_workflows: &[plugboard_core::WorkflowVersion],
) -> Value {
    let i = &configured.integration;
    let spec = &configured.spec;
    let workflows: Vec<&plugboard_core::WorkflowVersion> = all_workflows
        .iter()
        .filter(|w| w.integration == i.key.as_str())
        .collect();
    // The SDK keys custom integrations by `customIntegration.slug` (§D.2).
    let custom = i.key.is_custom().then(|| {
        json!({
            "id": i.id, "slug": i.key.as_str(), "name": spec.name,
            "icon": null, "inputFields": []
        })
    });
    json!({
        "id": i.id,
        "type": if custom.is_some() { "custom" } else { i.key.as_str() },
        "name": spec.name,
        "brandColor": spec.brand_color,
        "isActive": i.active,
        "authenticationType": if spec.auth.type_name() == "oauth2" { "oauth" } else { spec.auth.type_name() },
        "needPreOauthInputs": !spec.user_inputs.is_empty(),
        "projectId": i.project_id,
        "dateCreated": timestamp(i.created_at),
        "dateUpdated": timestamp(i.updated_at),
        "customIntegrationId": custom.as_ref().map(|_| i.id),
        "customIntegration": custom,
        "hasCredential": i.oauth_client_id.is_some(),
        "connectedUserLimitOnDevCred": 0,
        "connectedUserLimitReached": false,
        "sdkIntegrationConfig": {
            "accountTypes": [], "oauthInputs": [], "authConfigInputs": [],
            "postOauthInputs": [], "dataSources": {}
        },
        "configs": [{
            "id": i.id,
            "integrationId": i.id,
            "values": {
                "description": "", "overview": "", "accentColor": spec.brand_color,
                "sharedMeta": { "inputs": [] },
                "workflowMeta": workflow_meta(&workflows)
            }
        }],
        "workflows": workflows.iter().map(|w| json!({
            "id": w.workflow_id,
            "description": w.definition["name"],
            "integrationId": i.id,
        })).collect::<Vec<_>>()
    })
}

/// `workflowMeta`: per workflow, the settings a user fills in (§B.5 needs an entry for
/// every workflow the SDK may enable).
fn workflow_meta(workflows: &[&plugboard_core::WorkflowVersion]) -> Map<String, Value> {
    workflows
        .iter()
        .map(|w| {
            let inputs: Vec<Value> = w.definition["settings"]
                .as_array()
                .map(|settings| {
                    settings
                        .iter()
                        .map(|s| json!({ "id": s["key"], "title": s["label"], "required": s["required"] }))
                        .collect()
                })
                .unwrap_or_default();
            (
                w.workflow_id.clone(),
                json!({ "id": w.workflow_id, "inputs": inputs, "defaultEnabled": false, "hidden": false }),
            )
        })
        .collect()
}

/// A credential in the SDK's shape (§D.3).
pub fn sdk_credential(user: &ConnectedUser, c: &CredentialWithConfigurations) -> Value {
    let cred = &c.credential;
    let configurations: Vec<Value> = c
        .configurations
        .iter()
        .map(|config| {
            json!({
                "id": config.id,
                "connectCredentialId": cred.id,
                "isDefault": config.is_default,
                "workflowSettings": config.workflow_settings,
                "sharedSettings": config.shared_settings,
                "configMeta": {},
                "externalId": config.external_id,
                "dateCreated": timestamp(config.created_at),
                "dateUpdated": timestamp(config.updated_at),
            })
        })
        .collect();
    json!({
        "id": cred.id,
        "projectId": cred.project_id,
        "integrationId": cred.integration_id,
        "personaId": user.user_id.as_str(),
        "isPreviewCredential": false,
        "status": cred.status.as_str(),
        "providerId": cred.provider_id,
        "providerData": cred.provider_data,
        "externalId": cred.external_id,
        "refreshFailureCount": cred.refresh_failure_count,
        "dateCreated": timestamp(cred.created_at),
        "dateUpdated": timestamp(cred.updated_at),
        "dateRefreshed": cred.refreshed_at.map(timestamp),
        "configurations": configurations,
    })
}

/// The `/sdk/me` `integrations` map: an entry for every configured integration, with the
/// user's credentials for it. The oldest credential is the default one.
pub fn sdk_me_integrations(
    user: &ConnectedUser,
    configured: &[ConfiguredIntegration],
    credentials: &[CredentialWithConfigurations],
) -> Map<String, Value> {
    configured
        .iter()
        .map(|ci| {
            let mine: Vec<&CredentialWithConfigurations> = credentials
                .iter()
                .filter(|c| c.credential.integration_id == ci.integration.id)
                .collect();
            (
                ci.integration.key.to_string(),
                integration_entry(user, &mine),
            )
        })
        .collect()
}

fn integration_entry(user: &ConnectedUser, credentials: &[&CredentialWithConfigurations]) -> Value {
    let Some(default) = credentials.first() else {
        return json!({
            "enabled": false, "workflowSettings": {}, "configuredWorkflows": {},
            "allCredentials": []
        });
    };
    let cred = &default.credential;
    let config = default.configurations.iter().find(|c| c.is_default);
    let workflow_settings = config.map_or_else(Map::new, |c| c.workflow_settings.clone());
    json!({
        "enabled": cred.status == CredentialStatus::Valid,
        "credentialId": cred.id,
        "credentialStatus": cred.status.as_str(),
        "credentialConfigId": config.map(|c| c.id),
        "providerId": cred.provider_id,
        "providerData": cred.provider_data,
        "workflowSettings": workflow_settings,
        "configuredWorkflows": workflow_settings,
        "sharedSettings": config.map_or_else(Map::new, |c| c.shared_settings.clone()),
        "configMeta": {},
        "allCredentials": credentials.iter().map(|c| sdk_credential(user, c)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugboard_connect::Catalog;
    use plugboard_core::{
        Credential, CredentialConfiguration, IntegrationKey, Metadata, ProjectIntegration, UserId,
    };
    use uuid::Uuid;

    fn configured(project: ProjectId, key: &str) -> ConfiguredIntegration {
        ConfiguredIntegration {
            integration: ProjectIntegration {
                id: Uuid::new_v4(),
                project_id: project,
                key: IntegrationKey::parse(key).unwrap(),
                oauth_client_id: Some("c".into()),
                oauth_client_secret_sealed: None,
                scopes: None,
                active: true,
                custom_spec: None,
                created_at: 0,
                updated_at: 0,
            },
            spec: Catalog::embedded().get(key).unwrap().clone(),
        }
    }

    fn credential(
        user: &ConnectedUser,
        integration: Uuid,
        created_at: i64,
    ) -> CredentialWithConfigurations {
        let id = Uuid::new_v4();
        CredentialWithConfigurations {
            credential: Credential {
                id,
                project_id: user.project_id,
                user_id: user.user_id.clone(),
                integration_id: integration,
                status: CredentialStatus::Valid,
                provider_id: Some("T123".into()),
                provider_data: Map::new(),
                secrets_sealed: "v1.x.y".into(),
                expires_at: None,
                refresh_failure_count: 0,
                external_id: None,
                created_at,
                updated_at: created_at,
                refreshed_at: None,
                version: 1,
            },
            configurations: vec![CredentialConfiguration {
                id: Uuid::new_v4(),
                credential_id: id,
                is_default: true,
                workflow_settings: Map::new(),
                shared_settings: Map::new(),
                external_id: None,
                created_at,
                updated_at: created_at,
            }],
        }
    }

    fn user(project: ProjectId) -> ConnectedUser {
        ConnectedUser {
            project_id: project,
            user_id: UserId::parse("u1").unwrap(),
            meta: Metadata::default(),
            suspended: false,
            created_at: 0,
            updated_at: 0,
            last_seen_at: None,
            seq: 1,
            version: 1,
        }
    }

    #[test]
    fn me_entries_follow_the_sdk_contract() {
        let project = ProjectId::new_random();
        let user = user(project);
        let slack = configured(project, "slack");
        let hubspot = configured(project, "hubspot");
        let first = credential(&user, slack.integration.id, 1);
        let second = credential(&user, slack.integration.id, 2);
        let map = sdk_me_integrations(&user, &[slack, hubspot], &[first.clone(), second]);

        let entry = &map["slack"];
        assert_eq!(entry["enabled"], true);
        assert_eq!(entry["credentialId"], json!(first.credential.id));
        assert_eq!(entry["credentialStatus"], "VALID");
        assert_eq!(entry["providerId"], "T123");
        assert_eq!(entry["allCredentials"].as_array().unwrap().len(), 2);
        let config = &entry["allCredentials"][0]["configurations"][0];
        assert_eq!(config["isDefault"], true);
        assert_eq!(config["connectCredentialId"], json!(first.credential.id));
        assert!(entry["workflowSettings"].is_object());
        // Every configured integration has an entry, connected or not.
        assert_eq!(map["hubspot"]["enabled"], false);
        assert_eq!(map["hubspot"]["allCredentials"], json!([]));
    }

    #[test]
    fn invalid_default_credential_is_not_enabled() {
        let project = ProjectId::new_random();
        let user = user(project);
        let slack = configured(project, "slack");
        let mut invalid = credential(&user, slack.integration.id, 1);
        invalid.credential.status = CredentialStatus::Invalid;
        let map = sdk_me_integrations(&user, &[slack], &[invalid]);
        assert_eq!(map["slack"]["enabled"], false);
        assert_eq!(map["slack"]["credentialStatus"], "INVALID");
    }
}
