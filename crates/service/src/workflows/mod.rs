//! Workflows as projects deploy them and users enable them, app events that start them,
//! and the task history. Executing them is the [`worker`]'s job.

pub mod effects;
pub mod env;
pub mod schedule;
pub mod worker;

use std::sync::Arc;

use plugboard_core::{
    Access, AccessChange, ConnectedUser, CredentialStatus, CredentialWithConfigurations, Execution,
    ExecutionFilter, ExecutionStatus, IntegrationUsage, LossPolicy, OutboxEvent, ProjectId, UserId,
    WorkflowVersion, now_millis,
};
use plugboard_engine::{Trigger, WorkflowDefinition};
use plugboard_store::Store;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::connect::ConnectService;
use crate::error::{ServiceError, ServiceResult};
use crate::integrations::IntegrationsService;
use crate::policy::PolicyService;

/// Largest workflow file accepted.
pub const MAX_DEFINITION_BYTES: usize = 256 * 1024;
/// Largest event payload.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Most executions one page of the task history lists.
pub const MAX_PAGE: u32 = 100;

pub struct WorkflowsService {
    store: Arc<dyn Store>,
    integrations: Arc<IntegrationsService>,
    connect: Arc<ConnectService>,
    policy: Arc<PolicyService>,
    worker: Arc<worker::Worker>,
    /// Every event looks up the project's workflows; deploys are rare. A deploy on this
    /// node shows at once, one on another node within the cache's lifetime.
    by_project: moka::sync::Cache<ProjectId, Arc<Vec<WorkflowVersion>>>,
}

/// The answer of a finished request-triggered execution: its `respond` step's, else
/// its output (or its error) as JSON.
fn answer_of(execution: &Execution) -> Option<(u16, Value)> {
    match execution.status {
        ExecutionStatus::Succeeded => Some(match &execution.response {
            Some(response) => (
                response["status"].as_u64().unwrap_or(200) as u16,
                response["body"].clone(),
            ),
            None => (200, execution.output.clone().unwrap_or(Value::Null)),
        }),
        ExecutionStatus::Failed | ExecutionStatus::Cancelled => Some((
            500,
            json!({ "code": "workflow_failed", "message": execution.error, "executionId": execution.id }),
        )),
        _ => None,
    }
}

/// A queued execution of `workflow` for `user` on `credential`.
fn new_execution(
    project: ProjectId,
    user: &UserId,
    workflow: &WorkflowVersion,
    credential: Uuid,
    settings: Value,
    trigger: Value,
) -> Execution {
    let now = now_millis();
    Execution {
        id: Uuid::now_v7(),
        project_id: project,
        user_id: user.clone(),
        workflow_id: workflow.workflow_id.clone(),
        workflow_version: workflow.version,
        integration: workflow.integration.clone(),
        credential_id: Some(credential),
        status: ExecutionStatus::Queued,
        trigger,
        settings,
        output: None,
        error: None,
        response: None,
        runs: 0,
        next_run_at: now,
        created_at: now,
        started_at: None,
        finished_at: None,
    }
}

/// The settings a user starts with: each input's `default`.
fn default_settings(workflow: &WorkflowVersion) -> Value {
    let settings: Map<String, Value> = workflow.definition["settings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|input| {
            let default = input.get("default").filter(|d| !d.is_null())?;
            Some((input["key"].as_str()?.to_owned(), default.clone()))
        })
        .collect();
    Value::Object(settings)
}

/// The trigger document of an `integration_enabled` execution.
fn connected_trigger(integration: &str, credential: Uuid) -> Value {
    trigger_document(
        "integration_enabled",
        json!({ "integration": integration, "credentialId": credential }),
    )
}

/// What started an execution, as stored with it.
fn trigger_document(kind: &str, fields: Value) -> Value {
    let mut doc = json!({ "type": kind });
    if let (Value::Object(doc), Value::Object(fields)) = (&mut doc, fields) {
        doc.extend(fields);
    }
    doc
}

impl WorkflowsService {
    pub fn new(
        store: Arc<dyn Store>,
        (integrations, connect, policy): (
            Arc<IntegrationsService>,
            Arc<ConnectService>,
            Arc<PolicyService>,
        ),
        worker: Arc<worker::Worker>,
        cache_ttl: std::time::Duration,
    ) -> Self {
        Self {
            store,
            integrations,
            connect,
            policy,
            worker,
            by_project: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(cache_ttl)
                .build(),
        }
    }

    /// The project's current workflows, cached.
    async fn current(&self, project: ProjectId) -> ServiceResult<Arc<Vec<WorkflowVersion>>> {
        if let Some(hit) = self.by_project.get(&project) {
            return Ok(hit);
        }
        let list = Arc::new(self.store.list_workflows(project).await?);
        self.by_project.insert(project, list.clone());
        Ok(list)
    }

    /// Checks a workflow file (YAML or JSON) as a deploy would, storing nothing.
    /// `expected_id`, when given, must be the file's `id`.
    pub async fn validate(
        &self,
        project: ProjectId,
        source: &str,
        expected_id: Option<&str>,
    ) -> ServiceResult<WorkflowDefinition> {
        if source.len() > MAX_DEFINITION_BYTES {
            return Err(ServiceError::InvalidInput(format!(
                "a workflow file is at most {MAX_DEFINITION_BYTES} bytes"
            )));
        }
        let definition = WorkflowDefinition::parse(source)
            .map_err(|e| ServiceError::InvalidInput(format!("workflow: {e}")))?;
        if expected_id.is_some_and(|id| id != definition.id) {
            return Err(ServiceError::InvalidInput(format!(
                "workflow: id: `{}` does not match the URL",
                definition.id
            )));
        }
        if self
            .integrations
            .find(project, &definition.integration)
            .await?
            .is_none()
        {
            return Err(ServiceError::InvalidInput(format!(
                "workflow: integration: `{}` is not an integration of this project",
                definition.integration
            )));
        }
        Ok(definition)
    }

    /// Deploys a workflow file (YAML or JSON) as a new version, once [`Self::validate`]d.
    pub async fn deploy(
        &self,
        project: ProjectId,
        source: &str,
        expected_id: Option<&str>,
    ) -> ServiceResult<WorkflowVersion> {
        let definition = self.validate(project, source, expected_id).await?;
        let (kind, event) = match &definition.trigger {
            Trigger::Event { event } => ("event", Some(event.clone())),
            Trigger::Request { .. } => ("request", None),
            Trigger::Schedule { .. } => ("schedule", None),
            Trigger::IntegrationEnabled => ("integration_enabled", None),
        };
        let version = WorkflowVersion {
            project_id: project,
            workflow_id: definition.id.clone(),
            version: 0,
            integration: definition.integration.clone(),
            event,
            trigger_kind: kind.into(),
            definition: serde_json::to_value(&definition)
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
            created_at: now_millis(),
        };
        let deployed = self.store.deploy_workflow(&version).await?;
        self.by_project.invalidate(&project);
        Ok(deployed)
    }

    pub async fn list(&self, project: ProjectId) -> ServiceResult<Vec<WorkflowVersion>> {
        Ok(self.store.list_workflows(project).await?)
    }

    async fn workflow(&self, project: ProjectId, id: &str) -> ServiceResult<WorkflowVersion> {
        self.store
            .get_workflow(project, id, None)
            .await?
            .ok_or_else(|| ServiceError::WorkflowNotFound(id.to_owned()))
    }

    /// Turns a workflow on or off for a user, on the selected (or default) credential of
    /// its integration. Turning it off cancels the user's pending runs of it.
    pub async fn set_enabled(
        &self,
        project: ProjectId,
        user: &UserId,
        workflow_id: &str,
        enabled: bool,
        selected: Option<Uuid>,
    ) -> ServiceResult<CredentialWithConfigurations> {
        let workflow = self.workflow(project, workflow_id).await?;
        if enabled
            && !self
                .access_of(project, user)
                .await?
                .allows_workflow(workflow_id, &workflow.integration)
        {
            return Err(ServiceError::EntitlementRequired(workflow_id.to_owned()));
        }
        let credential = self
            .credential_for(project, user, &workflow.integration, selected)
            .await?;
        if enabled && credential.credential.status != CredentialStatus::Valid {
            return Err(ServiceError::CredentialInvalid(
                workflow.integration.clone(),
            ));
        }
        let default = credential
            .configurations
            .iter()
            .find(|c| c.is_default)
            .ok_or(ServiceError::CredentialNotFound)?;
        let mut settings = default.workflow_settings.clone();
        let first_time = !settings.contains_key(workflow_id);
        let entry = settings
            .entry(workflow_id.to_owned())
            .or_insert_with(|| json!({ "settings": default_settings(&workflow) }));
        if let Value::Object(entry) = entry {
            entry.insert("enabled".into(), Value::Bool(enabled));
        }
        // An `integration_enabled` workflow turned on after the connection runs then, once.
        let starts: Vec<Execution> =
            (enabled && first_time && workflow.trigger_kind == "integration_enabled")
                .then(|| {
                    let id = credential.credential.id;
                    new_execution(
                        project,
                        user,
                        &workflow,
                        id,
                        settings[workflow_id]["settings"].clone(),
                        connected_trigger(&workflow.integration, id),
                    )
                })
                .into_iter()
                .collect();
        let update = crate::connect::SettingsUpdate {
            workflow_settings: Some(settings),
            shared_settings: None,
        };
        let kind = if enabled {
            "workflow.enabled"
        } else {
            "workflow.disabled"
        };
        let event = OutboxEvent::new(
            project,
            kind,
            json!({
                "userId": user.as_str(),
                "workflowId": workflow_id,
                "integration": workflow.integration,
                "credentialId": credential.credential.id,
            }),
            now_millis(),
        );
        let updated = self
            .connect
            .update_settings_starting(
                project,
                user,
                credential.credential.id,
                None,
                update,
                (&starts, &[event]),
            )
            .await?;
        if !starts.is_empty() {
            self.worker.wake();
        }
        if !enabled {
            self.store
                .cancel_executions(project, user, &[workflow_id.to_owned()], now_millis())
                .await?;
        }
        Ok(updated)
    }

    async fn credential_for(
        &self,
        project: ProjectId,
        user: &UserId,
        integration: &str,
        selected: Option<Uuid>,
    ) -> ServiceResult<CredentialWithConfigurations> {
        let configured = self
            .integrations
            .find(project, integration)
            .await?
            .ok_or_else(|| ServiceError::IntegrationNotFound(integration.to_owned()))?;
        self.connect
            .chosen_credential(project, user, &configured, selected)
            .await
    }

    /// An app event for a user: one execution per workflow subscribed to `name` that the
    /// user has enabled, all written in one transaction. A workflow whose credential is
    /// no longer valid gets a failed execution saying so. Returns the executions.
    pub async fn trigger_event(
        &self,
        project: ProjectId,
        user: &UserId,
        name: &str,
        payload: Value,
    ) -> ServiceResult<Vec<Execution>> {
        if payload.to_string().len() > MAX_PAYLOAD_BYTES {
            return Err(ServiceError::InvalidInput(format!(
                "an event payload is at most {MAX_PAYLOAD_BYTES} bytes"
            )));
        }
        let current = self.current(project).await?;
        let subscribed: Vec<&WorkflowVersion> = current
            .iter()
            .filter(|w| w.trigger_kind == "event" && w.event.as_deref() == Some(name))
            .collect();
        if subscribed.is_empty() {
            return Ok(Vec::new());
        }
        let credentials = self.store.list_credentials(project, user).await?;
        let access = self.access_of(project, user).await?;
        let trigger = trigger_document("event", json!({ "name": name, "payload": payload }));
        let mut executions = Vec::new();
        for workflow in subscribed {
            if !access.allows_workflow(&workflow.workflow_id, &workflow.integration) {
                continue;
            }
            if let Some(execution) = self
                .execution_for(project, user, workflow, &credentials, &trigger)
                .await?
            {
                executions.push(execution);
            }
        }
        self.store.enqueue_executions(&executions).await?;
        self.worker.wake();
        Ok(executions)
    }

    /// A request trigger (`POST /sdk/triggers/{workflowId}`): runs the workflow for the
    /// user and waits up to its timeout for the answer of its `respond` step. Returns the
    /// execution and, when it finished in time, `(status, body)`.
    pub async fn trigger_request(
        &self,
        project: ProjectId,
        user: &UserId,
        workflow_id: &str,
        request: Value,
    ) -> ServiceResult<(Execution, Option<(u16, Value)>)> {
        let workflow = self.workflow(project, workflow_id).await?;
        let definition: WorkflowDefinition = serde_json::from_value(workflow.definition.clone())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let Trigger::Request { timeout_ms } = definition.trigger else {
            return Err(ServiceError::InvalidInput(format!(
                "`{workflow_id}` is not started by requests"
            )));
        };
        if !self
            .access_of(project, user)
            .await?
            .allows_workflow(workflow_id, &workflow.integration)
        {
            return Err(ServiceError::EntitlementRequired(workflow_id.to_owned()));
        }
        let credentials = self.store.list_credentials(project, user).await?;
        let trigger = trigger_document("request", request);
        let execution = self
            .execution_for(project, user, &workflow, &credentials, &trigger)
            .await?
            .ok_or_else(|| ServiceError::WorkflowNotEnabled(workflow_id.to_owned()))?;
        self.store
            .enqueue_executions(std::slice::from_ref(&execution))
            .await?;
        self.worker.wake();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
        loop {
            let current = self
                .store
                .get_execution(project, execution.id)
                .await?
                .ok_or(ServiceError::ExecutionNotFound)?;
            if current.status.is_final() || tokio::time::Instant::now() >= deadline {
                let answer = answer_of(&current);
                return Ok((current, answer));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The execution a trigger makes for `workflow`, if the user has it enabled.
    async fn execution_for(
        &self,
        project: ProjectId,
        user: &UserId,
        workflow: &WorkflowVersion,
        credentials: &[CredentialWithConfigurations],
        trigger: &Value,
    ) -> ServiceResult<Option<Execution>> {
        let Some(configured) = self
            .integrations
            .find(project, &workflow.integration)
            .await?
        else {
            return Ok(None);
        };
        let enabled = credentials.iter().find_map(|c| {
            if c.credential.integration_id != configured.integration.id {
                return None;
            }
            let config = c.configurations.iter().find(|cf| cf.is_default)?;
            let entry = config.workflow_settings.get(&workflow.workflow_id)?;
            (entry.get("enabled") == Some(&Value::Bool(true))).then(|| (c, entry.clone()))
        });
        let Some((credential, entry)) = enabled else {
            return Ok(None);
        };
        let invalid = credential.credential.status == CredentialStatus::Invalid;
        let settings = entry
            .get("settings")
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        let mut execution = new_execution(
            project,
            user,
            workflow,
            credential.credential.id,
            settings,
            trigger.clone(),
        );
        if invalid {
            execution.status = ExecutionStatus::Failed;
            execution.error = Some(format!(
                "credential_invalid: the connection to {} must be reconnected",
                workflow.integration
            ));
            execution.finished_at = Some(execution.created_at);
        }
        Ok(Some(execution))
    }

    /// Disconnects the user from an integration (see [`ConnectService::disconnect`]) and
    /// cancels the user's pending runs of that integration's workflows.
    pub async fn disconnect(
        &self,
        project: ProjectId,
        user: &UserId,
        integration: &str,
        selected: Option<Uuid>,
    ) -> ServiceResult<usize> {
        let removed = self
            .connect
            .disconnect(project, user, integration, selected)
            .await?;
        let key = self
            .connect
            .find_integration(project, integration)
            .await?
            .integration
            .key
            .to_string();
        let workflow_ids: Vec<String> = self
            .store
            .list_workflows(project)
            .await?
            .into_iter()
            .filter(|w| w.integration == key)
            .map(|w| w.workflow_id)
            .collect();
        let cancelled = self
            .store
            .cancel_executions(project, user, &workflow_ids, now_millis())
            .await?;
        if cancelled > 0 {
            tracing::info!(%integration, cancelled, "pending runs cancelled by disconnect");
        }
        Ok(removed)
    }

    /// The task history, newest first.
    pub async fn executions(
        &self,
        project: ProjectId,
        mut filter: ExecutionFilter,
    ) -> ServiceResult<Vec<Execution>> {
        filter.limit = filter.limit.clamp(1, MAX_PAGE);
        Ok(self.store.list_executions(project, &filter).await?)
    }

    /// How many executions match `filter` (its page aside).
    pub async fn count(&self, project: ProjectId, filter: &ExecutionFilter) -> ServiceResult<u64> {
        Ok(self.store.count_executions(project, filter).await?)
    }

    /// How many steps each of these executions has run (or is running).
    pub async fn step_counts(
        &self,
        executions: &[Uuid],
    ) -> ServiceResult<std::collections::HashMap<Uuid, u64>> {
        Ok(self
            .store
            .count_steps(executions)
            .await?
            .into_iter()
            .collect())
    }

    /// Runs a finished execution again, as a new execution with the same trigger and
    /// settings, on the workflow's current version.
    pub async fn replay(&self, project: ProjectId, id: Uuid) -> ServiceResult<Execution> {
        let original = self
            .store
            .get_execution(project, id)
            .await?
            .ok_or(ServiceError::ExecutionNotFound)?;
        if !original.status.is_final() {
            return Err(ServiceError::InvalidInput(
                "only a finished execution can be replayed".into(),
            ));
        }
        let workflow = self.workflow(project, &original.workflow_id).await?;
        let now = now_millis();
        let mut trigger = original.trigger.clone();
        if let Value::Object(fields) = &mut trigger {
            fields.insert("replayOf".into(), json!(original.id));
        }
        let replay = Execution {
            id: Uuid::now_v7(),
            workflow_version: workflow.version,
            status: ExecutionStatus::Queued,
            trigger,
            output: None,
            error: None,
            response: None,
            runs: 0,
            next_run_at: now,
            created_at: now,
            started_at: None,
            finished_at: None,
            ..original
        };
        self.store
            .enqueue_executions(std::slice::from_ref(&replay))
            .await?;
        self.worker.wake();
        Ok(replay)
    }

    /// One version of a workflow (`None`: the current one).
    pub async fn version(
        &self,
        project: ProjectId,
        workflow_id: &str,
        version: Option<i64>,
    ) -> ServiceResult<WorkflowVersion> {
        self.store
            .get_workflow(project, workflow_id, version)
            .await?
            .ok_or_else(|| ServiceError::WorkflowNotFound(workflow_id.to_owned()))
    }

    /// How many users connected each integration and enabled each workflow.
    pub async fn usage(&self, project: ProjectId) -> ServiceResult<IntegrationUsage> {
        Ok(self.store.integration_usage(project).await?)
    }

    /// One execution with its steps' records, in the order they ran.
    pub async fn execution(
        &self,
        project: ProjectId,
        id: Uuid,
    ) -> ServiceResult<(Execution, Vec<(String, Value, i64)>)> {
        let execution = self
            .store
            .get_execution(project, id)
            .await?
            .ok_or(ServiceError::ExecutionNotFound)?;
        let steps = self.store.list_steps(id).await?;
        Ok((execution, steps))
    }
}

#[async_trait::async_trait]
impl crate::connect::ConnectHooks for WorkflowsService {
    /// A new connection turns on the integration's workflows marked `enabled_by_default`
    /// and runs those of them started by `integration_enabled`.
    async fn plan_connection(
        &self,
        credential: &plugboard_core::Credential,
        integration: &str,
    ) -> ServiceResult<crate::connect::ConnectPlan> {
        let access = self
            .access_of(credential.project_id, &credential.user_id)
            .await?;
        if !access.allows_integration(integration) {
            return Err(ServiceError::EntitlementRequired(integration.to_owned()));
        }
        let mut plan = crate::connect::ConnectPlan::default();
        plan.events.push(OutboxEvent::new(
            credential.project_id,
            "integration.enabled",
            json!({
                "userId": credential.user_id.as_str(),
                "integration": integration,
                "credentialId": credential.id,
            }),
            now_millis(),
        ));
        let current = self.current(credential.project_id).await?;
        for workflow in current.iter().filter(|w| {
            w.integration == integration
                && w.definition["enabled_by_default"] == Value::Bool(true)
                && access.allows_workflow(&w.workflow_id, integration)
        }) {
            let settings = default_settings(workflow);
            plan.workflow_settings.insert(
                workflow.workflow_id.clone(),
                json!({ "enabled": true, "settings": settings }),
            );
            if workflow.trigger_kind == "integration_enabled" {
                plan.executions.push(new_execution(
                    credential.project_id,
                    &credential.user_id,
                    workflow,
                    credential.id,
                    settings,
                    connected_trigger(integration, credential.id),
                ));
            }
        }
        Ok(plan)
    }

    fn enqueued(&self) {
        self.worker.wake();
    }

    async fn check_entitlement(
        &self,
        project: ProjectId,
        user: &UserId,
        integration: &str,
    ) -> ServiceResult<()> {
        if self
            .access_of(project, user)
            .await?
            .allows_integration(integration)
        {
            Ok(())
        } else {
            Err(ServiceError::EntitlementRequired(integration.to_owned()))
        }
    }
}

#[async_trait::async_trait]
impl crate::users::AccessHooks for WorkflowsService {
    /// Stops what the user lost: its pending runs are cancelled (paused workflows keep
    /// their settings, and nothing runs or shows until the entitlement returns); under
    /// the `disconnect` policy, lost integrations are disconnected.
    async fn access_changed(
        &self,
        user: &ConnectedUser,
        change: &AccessChange,
        on_loss: LossPolicy,
    ) -> ServiceResult<()> {
        let project = user.project_id;
        let current = self.current(project).await?;
        let stopped: Vec<String> = current
            .iter()
            .filter(|w| {
                change.lost_workflows.contains(&w.workflow_id)
                    || change.lost_integrations.contains(&w.integration)
            })
            .map(|w| w.workflow_id.clone())
            .collect();
        if !stopped.is_empty() {
            self.store
                .cancel_executions(project, &user.user_id, &stopped, now_millis())
                .await?;
        }
        if on_loss == LossPolicy::Disconnect {
            for integration in &change.lost_integrations {
                match self
                    .disconnect(project, &user.user_id, integration, None)
                    .await
                {
                    Ok(_) | Err(ServiceError::IntegrationNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

impl WorkflowsService {
    /// What the user may not use under the project's rules. A user not stored yet (its
    /// first call may be this one) is judged on empty metadata.
    pub async fn access_of(&self, project: ProjectId, user: &UserId) -> ServiceResult<Access> {
        let compiled = self.policy.compiled(project).await?;
        if compiled.is_empty() {
            return Ok(Access::default());
        }
        Ok(match self.store.get_user(project, user).await? {
            Some(stored) => compiled.access(user, &stored.meta),
            None => compiled.access(user, &plugboard_core::Metadata::default()),
        })
    }
}
