//! The worker: claims due executions from the store under a lease, runs them with the
//! engine's interpreter (heartbeating while they run), and records how each run ended.
//! Nothing is held open across an outbound call: a claim and a release are one statement
//! each, and every step's result is saved as it completes.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use plugboard_core::{Execution, ExecutionStatus, ExecutionUpdate, ProjectId, now_millis};
use plugboard_engine::{ExecutionInput, Interpreter, RunOutcome, WorkflowDefinition};
use plugboard_store::Store;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::effects::{StoreJournal, WorkerEffects};
use super::env::{MIN_SCRUBBED_CHARS, ProjectEnv, secrets_of};
use crate::connect::ConnectService;
use crate::error::{ServiceError, ServiceResult};
use crate::policy::PolicyService;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How long a claim lasts without a heartbeat; a crashed worker's executions are
    /// taken over after this.
    pub lease: Duration,
    /// Executions claimed at once.
    pub batch: u32,
    /// Executions of one user running at once, across all workers.
    pub per_user_limit: u32,
    /// How often an idle worker looks for work.
    pub poll: Duration,
    /// Whether `http` steps may call private and loopback addresses.
    pub allow_private_addresses: bool,
    /// Time allowed for each `http` step request.
    pub http_timeout: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            batch: 32,
            per_user_limit: 4,
            poll: Duration::from_millis(200),
            allow_private_addresses: false,
            http_timeout: Duration::from_secs(30),
        }
    }
}

type InterpreterKey = (ProjectId, String, i64);

pub struct Worker {
    store: Arc<dyn Store>,
    connect: Arc<ConnectService>,
    env: Arc<ProjectEnv>,
    policy: Arc<PolicyService>,
    settings: WorkerSettings,
    holder: String,
    http: reqwest::Client,
    /// Workflow versions never change, so their compiled form is kept.
    interpreters: Cache<InterpreterKey, Arc<Interpreter>>,
    /// Rung when this node enqueued work, so its worker need not wait for the next poll.
    wake: tokio::sync::Notify,
}

impl Worker {
    pub fn new(
        store: Arc<dyn Store>,
        connect: Arc<ConnectService>,
        (env, policy): (Arc<ProjectEnv>, Arc<PolicyService>),
        settings: WorkerSettings,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(settings.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("plugboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with these settings builds");
        Self {
            store,
            connect,
            env,
            policy,
            holder: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            http,
            interpreters: Cache::new(1_000),
            wake: tokio::sync::Notify::new(),
            settings,
        }
    }

    /// Claims one batch of due executions and runs them to their next stop; returns how
    /// many it ran.
    pub async fn run_due(&self) -> ServiceResult<usize> {
        let now = now_millis();
        let claimed = self
            .store
            .claim_executions(
                &self.holder,
                now,
                now + self.settings.lease.as_millis() as i64,
                self.settings.batch,
                self.settings.per_user_limit,
            )
            .await?;
        let count = claimed.len();
        futures::future::join_all(claimed.into_iter().map(|e| self.execute(e))).await;
        Ok(count)
    }

    /// Runs due work until none is left (delays and backoffs not yet due stay). Tests
    /// use it instead of sleeping.
    pub async fn drain(&self) -> ServiceResult<usize> {
        let mut total = 0;
        loop {
            let ran = self.run_due().await?;
            if ran == 0 {
                return Ok(total);
            }
            total += ran;
        }
    }

    /// Tells the running loop that work was just enqueued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until `shutdown` turns true.
    pub fn spawn(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            while !*shutdown.borrow() {
                let ran = match self.run_due().await {
                    Ok(ran) => ran,
                    Err(e) => {
                        tracing::error!(error = %e, "worker could not claim executions");
                        0
                    }
                };
                if ran == 0 {
                    tokio::select! {
                        _ = tokio::time::sleep(self.settings.poll) => {}
                        _ = self.wake.notified() => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        })
    }

    async fn execute(&self, execution: Execution) {
        let heartbeat = self.heartbeat(&execution);
        let update = match self.run_one(&execution).await {
            Ok(Run::Ran(outcome, secrets)) => update_for(&execution, outcome, &secrets),
            Ok(Run::NotEntitled) => not_entitled(&execution),
            Err(e) => {
                tracing::warn!(execution = %execution.id, error = %e, "run interrupted; will retry");
                ExecutionUpdate {
                    status: ExecutionStatus::Queued,
                    next_run_at: now_millis() + 5_000,
                    output: None,
                    error: Some(e.to_string()),
                    response: None,
                    finished_at: None,
                    events: Vec::new(),
                }
            }
        };
        heartbeat.abort();
        tracing::debug!(execution = %execution.id, status = update.status.as_str(), holder = %self.holder, "execution ran");
        match self
            .store
            .release_execution(execution.id, &self.holder, &update)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(execution = %execution.id, "lease lost before the run was recorded")
            }
            Err(e) => tracing::error!(execution = %execution.id, error = %e, "cannot record run"),
        }
    }

    fn heartbeat(&self, execution: &Execution) -> JoinHandle<()> {
        let store = self.store.clone();
        let holder = self.holder.clone();
        let lease = self.settings.lease;
        let id = execution.id;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let until = now_millis() + lease.as_millis() as i64;
                if !matches!(
                    store.extend_execution_lease(id, &holder, until).await,
                    Ok(true)
                ) {
                    return;
                }
            }
        })
    }

    async fn run_one(&self, execution: &Execution) -> ServiceResult<Run> {
        let project = execution.project_id;
        let Some(user) = self.store.get_user(project, &execution.user_id).await? else {
            return Ok(Run::Ran(stopped("the user no longer exists"), Vec::new()));
        };
        if user.suspended {
            return Ok(Run::Ran(
                stopped("user_suspended: the user is suspended"),
                Vec::new(),
            ));
        }
        let policy = self.policy.compiled(project).await?;
        if !policy
            .access(&user.user_id, &user.meta)
            .allows_workflow(&execution.workflow_id, &execution.integration)
        {
            return Ok(Run::NotEntitled);
        }
        let interpreter = self.interpreter(execution).await?;
        let variables = self.env.variables(project).await?;
        let (meta, meta_secrets) = self.policy.revealed_meta(&user).await?;
        let mut secrets = secrets_of(&variables);
        secrets.extend(
            meta_secrets
                .into_iter()
                .filter(|s| s.chars().count() >= MIN_SCRUBBED_CHARS),
        );
        let input = ExecutionInput {
            execution_id: execution.id.to_string(),
            user: json!({ "id": user.user_id.as_str(), "meta": meta }),
            trigger: execution.trigger.clone(),
            settings: execution.settings.clone(),
            env: Value::Object((*variables).clone()),
            secrets: secrets.clone(),
        };
        // A claim counts in `runs`: 1 means no worker ran it before.
        let journal = StoreJournal::open(
            self.store.clone(),
            execution.id,
            execution.runs == 1,
            secrets.clone(),
        )
        .await?;
        let effects = WorkerEffects {
            http: self.http.clone(),
            connect: self.connect.clone(),
            project,
            user: execution.user_id.clone(),
            integration: execution.integration.clone(),
            credential: execution.credential_id,
            allow_private: self.settings.allow_private_addresses,
        };
        let outcome = interpreter
            .run(&input, &journal, &effects)
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(Run::Ran(outcome, secrets))
    }

    async fn interpreter(&self, execution: &Execution) -> ServiceResult<Arc<Interpreter>> {
        let key = (
            execution.project_id,
            execution.workflow_id.clone(),
            execution.workflow_version,
        );
        if let Some(hit) = self.interpreters.get(&key) {
            return Ok(hit);
        }
        let version = self
            .store
            .get_workflow(key.0, &key.1, Some(key.2))
            .await?
            .ok_or_else(|| ServiceError::WorkflowNotFound(key.1.clone()))?;
        let definition: WorkflowDefinition = serde_json::from_value(version.definition)
            .map_err(|e| ServiceError::Internal(format!("stored workflow: {e}")))?;
        let interpreter = Arc::new(Interpreter::new(Arc::new(definition)));
        self.interpreters.insert(key, interpreter.clone());
        Ok(interpreter)
    }
}

/// How a claimed execution went: run (with the secret values to scrub from what is
/// recorded), or not run because the user may no longer use the workflow.
enum Run {
    Ran(RunOutcome, Vec<String>),
    NotEntitled,
}

/// A run the user's entitlements no longer allow is cancelled, not failed: the workflow
/// is paused, not broken.
fn not_entitled(execution: &Execution) -> ExecutionUpdate {
    let now = now_millis();
    ExecutionUpdate {
        status: ExecutionStatus::Cancelled,
        next_run_at: now,
        output: None,
        error: Some(format!(
            "entitlement_required: the user's plan does not include `{}`",
            execution.workflow_id
        )),
        response: None,
        finished_at: Some(now),
        events: Vec::new(),
    }
}

/// An execution that must not run (its user is gone or suspended).
fn stopped(reason: &str) -> RunOutcome {
    RunOutcome::Failed {
        step: String::new(),
        error: reason.to_owned(),
    }
}

/// How the run is recorded, with secret values scrubbed; a failure also goes to the
/// outbox as `execution.failed`.
fn update_for(execution: &Execution, outcome: RunOutcome, secrets: &[String]) -> ExecutionUpdate {
    use plugboard_engine::{scrub, scrub_value};
    let now = now_millis();
    match outcome {
        RunOutcome::Completed { output, response } => ExecutionUpdate {
            status: ExecutionStatus::Succeeded,
            next_run_at: now,
            output: Some(scrub_value(output, secrets)),
            error: None,
            response: response.map(
                |(status, body)| json!({ "status": status, "body": scrub_value(body, secrets) }),
            ),
            finished_at: Some(now),
            events: Vec::new(),
        },
        RunOutcome::Failed { step, error } => {
            let error = scrub(
                &if step.is_empty() {
                    error
                } else {
                    format!("step `{step}`: {error}")
                },
                secrets,
            );
            let failed = plugboard_core::OutboxEvent::new(
                execution.project_id,
                "execution.failed",
                json!({
                    "userId": execution.user_id.as_str(),
                    "workflowId": execution.workflow_id,
                    "executionId": execution.id,
                    "error": error,
                }),
                now,
            );
            ExecutionUpdate {
                status: ExecutionStatus::Failed,
                next_run_at: now,
                output: None,
                error: Some(error),
                response: None,
                finished_at: Some(now),
                events: vec![failed],
            }
        }
        RunOutcome::Suspended { resume_at } => ExecutionUpdate {
            status: ExecutionStatus::Delayed,
            next_run_at: resume_at,
            output: None::<Value>,
            error: None,
            response: None,
            finished_at: None,
            events: Vec::new(),
        },
    }
}
