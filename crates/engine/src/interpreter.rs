//! Runs one execution of a workflow. Every step's result is saved in a [`Journal`] before
//! the next step starts; running the same execution again replays saved results and
//! continues at the first step without one. So a worker that crashed mid-step leaves an
//! execution that the next worker finishes, repeating at most the unfinished step (whose
//! HTTP calls carry an `Idempotency-Key` derived from the execution and step).
//!
//! Waiting (a `delay`, a retry's backoff) never holds a worker: the run returns
//! [`RunOutcome::Suspended`] and is started again when due.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::future::BoxFuture;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::definition::{Action, HttpAction, Step, WorkflowDefinition};
use crate::template::Templates;
use crate::transform::Transform;

/// Tries of a step whose definition does not say.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// First retry delay; doubled each time, with jitter, up to [`MAX_BACKOFF`].
pub const BASE_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Largest output a step may produce (as JSON); later steps read it, so it is kept whole,
/// and a larger one fails the step.
pub const MAX_STEP_OUTPUT_BYTES: usize = 1024 * 1024;
/// Largest step input kept for the task history; a larger one is kept as a preview.
pub const MAX_RECORDED_INPUT_BYTES: usize = 64 * 1024;
/// Header values never written to the task history.
const REDACTED: &str = "[redacted]";

/// What the journal holds for one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StepRecord {
    Done {
        output: Value,
        attempts: u32,
        #[serde(default)]
        trace: StepTrace,
    },
    /// Failed transiently; the next try is not before `retry_at` (ms since the epoch).
    Retrying {
        attempts: u32,
        retry_at: i64,
        error: String,
        #[serde(default)]
        trace: StepTrace,
    },
    /// A `delay` step, over at `until` (ms since the epoch).
    Waiting { until: i64 },
    Failed {
        attempts: u32,
        error: String,
        #[serde(default)]
        trace: StepTrace,
    },
}

/// For the task history: what the step's last attempt was given and when it ran. Not read
/// back when an execution resumes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepTrace {
    /// The step's `type`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Ms since the epoch.
    #[serde(default)]
    pub started_at: i64,
    #[serde(default)]
    pub ended_at: i64,
    /// The rendered request of an `http` or `integration_request` step, with credentials
    /// redacted and at most [`MAX_RECORDED_INPUT_BYTES`] kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
}

#[derive(Debug, thiserror::Error)]
#[error("journal: {0}")]
pub struct JournalError(pub String);

/// Where step results are kept (the database, in the server).
#[async_trait]
pub trait Journal: Send + Sync {
    async fn load(&self, step_key: &str) -> Result<Option<StepRecord>, JournalError>;
    async fn save(&self, step_key: &str, record: &StepRecord) -> Result<(), JournalError>;
}

/// An outbound request of an `http` or `integration_request` step.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: String,
    /// A full URL (`http`) or a path under the integration's API (`integration_request`).
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<Value>,
    /// Stable across retries and resumptions of this step of this execution.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<Duration>,
}

/// Why a side effect failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EffectError {
    /// Worth another try (network, timeout, 5xx, 429).
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Never going to work (4xx, an invalid credential, a refused address).
    #[error("{0}")]
    Permanent(String),
}

/// The outside world, as steps reach it.
#[async_trait]
pub trait Effects: Send + Sync {
    async fn http(&self, request: HttpRequest) -> Result<HttpResponse, EffectError>;
    /// A request with the user's credential for the workflow's integration.
    async fn integration(&self, request: HttpRequest) -> Result<HttpResponse, EffectError>;
    /// Milliseconds since the epoch.
    fn now_ms(&self) -> i64;
}

/// What one run ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    Completed {
        /// The last top-level step's output.
        output: Value,
        /// What a `respond` step answered, if one ran.
        response: Option<(u16, Value)>,
    },
    Failed {
        step: String,
        error: String,
    },
    /// Run again at `resume_at` (ms since the epoch).
    Suspended {
        resume_at: i64,
    },
}

/// The values an execution starts with; templates see them as `user`, `trigger`,
/// `settings` and `env`.
#[derive(Debug, Clone, Default)]
pub struct ExecutionInput {
    /// Part of every idempotency key.
    pub execution_id: String,
    pub user: Value,
    pub trigger: Value,
    pub settings: Value,
    pub env: Value,
    /// Values never written to the journal's traces and errors (the project's
    /// environment variables); replaced by `[redacted]` wherever they appear.
    pub secrets: Vec<String>,
}

pub struct Interpreter {
    definition: Arc<WorkflowDefinition>,
    templates: Templates,
    /// Every jq program of the workflow, compiled once.
    programs: std::collections::HashMap<String, Transform>,
}

/// How a sequence of steps ended.
enum Flow {
    /// All done; the last step's output.
    Done(Value),
    Stop(RunOutcome),
}

/// Where a sequence runs: its key prefix and the step outputs it can see.
#[derive(Clone)]
struct Scope {
    prefix: String,
    context: Value,
}

impl Scope {
    fn key(&self, step: &Step) -> String {
        format!("{}{}", self.prefix, step.id)
    }

    fn record_output(&mut self, step: &Step, output: &Value) {
        if let Some(steps) = self.context.get_mut("steps").and_then(Value::as_object_mut) {
            steps.insert(step.id.clone(), json!({ "output": output }));
        }
    }
}

impl Interpreter {
    pub fn new(definition: Arc<WorkflowDefinition>) -> Self {
        let mut programs = std::collections::HashMap::new();
        collect_programs(&definition.steps, &mut programs);
        Self {
            definition,
            templates: Templates::new(),
            programs,
        }
    }

    fn jq(&self, source: &str, input: &Value) -> Result<Value, String> {
        match self.programs.get(source) {
            Some(program) => program.run(input),
            None => Transform::compile(source)?.run(input),
        }
    }

    /// Runs (or resumes) the execution as far as it can go now.
    pub async fn run(
        &self,
        input: &ExecutionInput,
        journal: &dyn Journal,
        effects: &dyn Effects,
    ) -> Result<RunOutcome, JournalError> {
        let scope = Scope {
            prefix: String::new(),
            context: json!({
                "user": input.user, "trigger": input.trigger, "settings": input.settings,
                "env": input.env, "steps": {},
            }),
        };
        let run = Run {
            interpreter: self,
            input,
            journal,
            effects,
        };
        let mut response = None;
        match run
            .sequence(&self.definition.steps, scope, &mut response)
            .await?
        {
            Flow::Done(output) => Ok(RunOutcome::Completed { output, response }),
            Flow::Stop(outcome) => Ok(outcome),
        }
    }
}

struct Run<'a> {
    interpreter: &'a Interpreter,
    input: &'a ExecutionInput,
    journal: &'a dyn Journal,
    effects: &'a dyn Effects,
}

impl Run<'_> {
    fn sequence<'s>(
        &'s self,
        steps: &'s [Step],
        mut scope: Scope,
        response: &'s mut Option<(u16, Value)>,
    ) -> BoxFuture<'s, Result<Flow, JournalError>> {
        Box::pin(async move {
            let mut last = Value::Null;
            for step in steps {
                match self.step(step, &scope, response).await? {
                    Flow::Done(output) => {
                        scope.record_output(step, &output);
                        last = output;
                    }
                    stop => return Ok(stop),
                }
            }
            Ok(Flow::Done(last))
        })
    }

    async fn step(
        &self,
        step: &Step,
        scope: &Scope,
        response: &mut Option<(u16, Value)>,
    ) -> Result<Flow, JournalError> {
        let key = scope.key(step);
        let record = self.journal.load(&key).await?;
        let now = self.effects.now_ms();
        let attempts = match &record {
            Some(StepRecord::Done { output, .. }) => {
                if let Action::Respond { status, .. } = &step.action {
                    response.get_or_insert((*status, output.clone()));
                }
                return self.after_done(step, scope, output, response).await;
            }
            Some(StepRecord::Failed { error, .. }) => return Ok(failed(&key, error)),
            Some(StepRecord::Waiting { until }) if *until > now => {
                return Ok(Flow::Stop(RunOutcome::Suspended { resume_at: *until }));
            }
            Some(StepRecord::Waiting { .. }) => {
                let trace = StepTrace {
                    kind: step.action.kind().to_owned(),
                    started_at: now,
                    ended_at: now,
                    input: None,
                };
                return self
                    .finish(step, scope, &key, Value::Null, 1, trace, response)
                    .await;
            }
            Some(StepRecord::Retrying { retry_at, .. }) if *retry_at > now => {
                return Ok(Flow::Stop(RunOutcome::Suspended {
                    resume_at: *retry_at,
                }));
            }
            Some(StepRecord::Retrying { attempts, .. }) => *attempts,
            None => 0,
        };
        self.attempt(step, scope, &key, attempts + 1, response)
            .await
    }

    /// A step already done: nested steps of a condition or map may still be unfinished.
    async fn after_done(
        &self,
        step: &Step,
        scope: &Scope,
        output: &Value,
        response: &mut Option<(u16, Value)>,
    ) -> Result<Flow, JournalError> {
        match &step.action {
            Action::Condition {
                then, otherwise, ..
            } => {
                let branch = if output["branch"] == "then" {
                    then
                } else {
                    otherwise
                };
                let inner = Scope {
                    prefix: format!("{}.", scope.key(step)),
                    context: scope.context.clone(),
                };
                self.sequence(branch, inner, response).await
            }
            Action::Map {
                concurrency, steps, ..
            } => self.iterate(step, scope, output, *concurrency, steps).await,
            _ => Ok(Flow::Done(output.clone())),
        }
    }

    async fn attempt(
        &self,
        step: &Step,
        scope: &Scope,
        key: &str,
        attempt: u32,
        response: &mut Option<(u16, Value)>,
    ) -> Result<Flow, JournalError> {
        let templates = &self.interpreter.templates;
        let context = &scope.context;
        let mut trace = StepTrace {
            kind: step.action.kind().to_owned(),
            started_at: self.effects.now_ms(),
            ..StepTrace::default()
        };
        let result: Result<Value, EffectError> = match &step.action {
            Action::Http(http) => self.call(http, key, context, false, &mut trace).await,
            Action::IntegrationRequest(http) => {
                self.call(http, key, context, true, &mut trace).await
            }
            Action::Condition { condition, .. } => templates
                .truthy(condition, context)
                .map(|yes| json!({ "branch": if yes { "then" } else { "else" } }))
                .map_err(EffectError::Permanent),
            Action::Map { items, .. } => self
                .interpreter
                .jq(items, context)
                .map_err(EffectError::Permanent)
                .and_then(|items| match items {
                    Value::Array(_) => Ok(items),
                    Value::Null => Ok(json!([])),
                    other => Err(EffectError::Permanent(format!(
                        "`items` must give an array, not {other}"
                    ))),
                }),
            Action::Transform { jq } => self
                .interpreter
                .jq(jq, context)
                .map_err(EffectError::Permanent),
            Action::Delay { seconds } => {
                let until = self.effects.now_ms() + (*seconds as i64) * 1000;
                let record = StepRecord::Waiting { until };
                self.journal.save(key, &record).await?;
                return Ok(Flow::Stop(RunOutcome::Suspended { resume_at: until }));
            }
            Action::Respond { status, body } => templates
                .render_value(body, context)
                .inspect(|body| {
                    response.get_or_insert((*status, body.clone()));
                })
                .map_err(EffectError::Permanent),
        };
        trace.ended_at = self.effects.now_ms();
        match result.and_then(within_output_limit) {
            Ok(output) => {
                self.finish(step, scope, key, output, attempt, trace, response)
                    .await
            }
            Err(error) => self.failure(step, key, attempt, error, trace).await,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        step: &Step,
        scope: &Scope,
        key: &str,
        output: Value,
        attempts: u32,
        trace: StepTrace,
        response: &mut Option<(u16, Value)>,
    ) -> Result<Flow, JournalError> {
        let record = StepRecord::Done {
            output: output.clone(),
            attempts,
            trace,
        };
        self.journal.save(key, &record).await?;
        self.after_done(step, scope, &output, response).await
    }

    async fn failure(
        &self,
        step: &Step,
        key: &str,
        attempt: u32,
        error: EffectError,
        trace: StepTrace,
    ) -> Result<Flow, JournalError> {
        let error = match error {
            EffectError::Transient {
                message,
                retry_after,
            } => EffectError::Transient {
                message: scrub(&message, &self.input.secrets),
                retry_after,
            },
            EffectError::Permanent(message) => {
                EffectError::Permanent(scrub(&message, &self.input.secrets))
            }
        };
        let max = step.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        let (retry_after, message) = match &error {
            EffectError::Transient {
                retry_after,
                message,
            } if attempt < max => (*retry_after, message.clone()),
            _ => {
                let record = StepRecord::Failed {
                    attempts: attempt,
                    error: error.to_string(),
                    trace,
                };
                self.journal.save(key, &record).await?;
                return Ok(failed(key, &error.to_string()));
            }
        };
        let wait = retry_after.unwrap_or_else(|| backoff(attempt));
        let retry_at = self.effects.now_ms() + wait.as_millis() as i64;
        let record = StepRecord::Retrying {
            attempts: attempt,
            retry_at,
            error: message,
            trace,
        };
        self.journal.save(key, &record).await?;
        Ok(Flow::Stop(RunOutcome::Suspended {
            resume_at: retry_at,
        }))
    }

    async fn call(
        &self,
        http: &HttpAction,
        key: &str,
        context: &Value,
        integration: bool,
        trace: &mut StepTrace,
    ) -> Result<Value, EffectError> {
        let templates = &self.interpreter.templates;
        let render = |text: &str| {
            templates
                .render(text, context)
                .map_err(EffectError::Permanent)
        };
        let mut headers = BTreeMap::new();
        for (name, value) in &http.headers {
            headers.insert(name.clone(), render(value)?);
        }
        let body = http
            .body
            .as_ref()
            .map(|b| templates.render_value(b, context))
            .transpose()
            .map_err(EffectError::Permanent)?;
        let request = HttpRequest {
            method: render(&http.method)?.to_uppercase(),
            url: render(&http.url)?,
            headers,
            body,
            idempotency_key: format!("{}:{key}", self.input.execution_id),
        };
        trace.input = Some(scrub_value(recorded_input(&request), &self.input.secrets));
        let answer = if integration {
            self.effects.integration(request).await?
        } else {
            self.effects.http(request).await?
        };
        classify(answer)
    }

    /// Runs a map step's iterations (each its own scope) at most `concurrency` at a time.
    async fn iterate(
        &self,
        step: &Step,
        scope: &Scope,
        items: &Value,
        concurrency: usize,
        steps: &[Step],
    ) -> Result<Flow, JournalError> {
        let items = items.as_array().cloned().unwrap_or_default();
        let base = scope.key(step);
        let runs = items.into_iter().enumerate().map(|(index, item)| {
            let mut context = scope.context.clone();
            if let Value::Object(map) = &mut context {
                map.insert("item".into(), item);
                map.insert("index".into(), json!(index));
                map.insert("steps".into(), Value::Object(Map::new()));
            }
            let inner = Scope {
                prefix: format!("{base}[{index}]."),
                context,
            };
            async move {
                let mut ignored = None;
                self.sequence(steps, inner, &mut ignored).await
            }
        });
        let results: Vec<Result<Flow, JournalError>> = futures::stream::iter(runs)
            .buffered(concurrency.max(1))
            .collect()
            .await;
        let mut outputs = Vec::new();
        let mut resume_at: Option<i64> = None;
        for result in results {
            match result? {
                Flow::Done(output) => outputs.push(output),
                Flow::Stop(RunOutcome::Suspended { resume_at: at }) => {
                    resume_at = Some(resume_at.map_or(at, |r| r.min(at)));
                }
                stop => return Ok(stop),
            }
        }
        match resume_at {
            Some(at) => Ok(Flow::Stop(RunOutcome::Suspended { resume_at: at })),
            None => Ok(Flow::Done(Value::Array(outputs))),
        }
    }
}

fn collect_programs(steps: &[Step], out: &mut std::collections::HashMap<String, Transform>) {
    for step in steps {
        match &step.action {
            Action::Transform { jq } => {
                if let Ok(program) = Transform::compile(jq) {
                    out.insert(jq.clone(), program);
                }
            }
            Action::Map { items, steps, .. } => {
                if let Ok(program) = Transform::compile(items) {
                    out.insert(items.clone(), program);
                }
                collect_programs(steps, out);
            }
            Action::Condition {
                then, otherwise, ..
            } => {
                collect_programs(then, out);
                collect_programs(otherwise, out);
            }
            _ => {}
        }
    }
}

fn failed(key: &str, error: &str) -> Flow {
    Flow::Stop(RunOutcome::Failed {
        step: key.to_owned(),
        error: error.to_owned(),
    })
}

/// 2xx is the step's output; 429 and 5xx are worth retrying; other statuses are final.
fn classify(answer: HttpResponse) -> Result<Value, EffectError> {
    match answer.status {
        200..=299 => Ok(json!({ "status": answer.status, "body": answer.body })),
        429 | 500..=599 => Err(EffectError::Transient {
            message: format!("HTTP {}", answer.status),
            retry_after: answer.retry_after,
        }),
        status => Err(EffectError::Permanent(format!(
            "HTTP {status}: {}",
            truncate(&answer.body.to_string(), 300)
        ))),
    }
}

/// `text` with every secret replaced by `[redacted]`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), REDACTED)
        })
}

/// Every string of `value` scrubbed.
pub fn scrub_value(value: Value, secrets: &[String]) -> Value {
    if secrets.is_empty() {
        return value;
    }
    match value {
        Value::String(text) => Value::String(scrub(&text, secrets)),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| scrub_value(v, secrets)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, scrub_value(v, secrets)))
                .collect(),
        ),
        other => other,
    }
}

/// A step output larger than [`MAX_STEP_OUTPUT_BYTES`] fails the step.
fn within_output_limit(output: Value) -> Result<Value, EffectError> {
    let size = output.to_string().len();
    if size > MAX_STEP_OUTPUT_BYTES {
        return Err(EffectError::Permanent(format!(
            "the output is {size} bytes; a step's output is at most {MAX_STEP_OUTPUT_BYTES}"
        )));
    }
    Ok(output)
}

/// Whether a header's value is a secret by its name (`Authorization`, `X-Api-Key`,
/// `Cookie`, anything naming a token, secret, password or signature).
fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "key",
        "token",
        "secret",
        "password",
        "signature",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// The request as the task history keeps it: secret headers redacted, a large body cut to
/// a preview.
fn recorded_input(request: &HttpRequest) -> Value {
    let headers: Map<String, Value> = request
        .headers
        .iter()
        .map(|(name, value)| {
            let shown = if is_secret_header(name) {
                REDACTED
            } else {
                value
            };
            (name.clone(), Value::String(shown.to_owned()))
        })
        .collect();
    let mut input = json!({
        "method": request.method,
        "url": request.url,
        "headers": headers,
        "idempotencyKey": request.idempotency_key,
    });
    if let Some(body) = &request.body {
        let text = body.to_string();
        input["body"] = if text.len() > MAX_RECORDED_INPUT_BYTES {
            json!({
                "truncated": true,
                "bytes": text.len(),
                "preview": truncate(&text, 4096),
            })
        } else {
            body.clone()
        };
    }
    input
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Exponential from [`BASE_BACKOFF`], capped, with up to 25% jitter so retries of many
/// executions do not arrive together.
pub fn backoff(attempt: u32) -> Duration {
    let exp = BASE_BACKOFF.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
    let capped = exp.min(MAX_BACKOFF);
    let jitter = rand::rng().random_range(0.0..0.25);
    capped.mul_f64(1.0 + jitter)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;

    #[derive(Default)]
    struct MemoryJournal(Mutex<HashMap<String, StepRecord>>);

    #[async_trait]
    impl Journal for MemoryJournal {
        async fn load(&self, key: &str) -> Result<Option<StepRecord>, JournalError> {
            Ok(self.0.lock().unwrap().get(key).cloned())
        }
        async fn save(&self, key: &str, record: &StepRecord) -> Result<(), JournalError> {
            self.0
                .lock()
                .unwrap()
                .insert(key.to_owned(), record.clone());
            Ok(())
        }
    }

    /// Answers from a script (default 200 `{"ok": true}`) and remembers every request.
    #[derive(Default)]
    struct Upstream {
        script: Mutex<VecDeque<HttpResponse>>,
        seen: Mutex<Vec<HttpRequest>>,
        clock: AtomicI64,
    }

    impl Upstream {
        fn answer(&self, status: u16, retry_after: Option<u64>) {
            self.script.lock().unwrap().push_back(HttpResponse {
                status,
                body: json!({"status": status}),
                retry_after: retry_after.map(Duration::from_secs),
            });
        }
        fn calls(&self) -> usize {
            self.seen.lock().unwrap().len()
        }
        fn advance(&self, ms: i64) {
            self.clock.fetch_add(ms, Ordering::SeqCst);
        }
        fn respond(&self, request: HttpRequest) -> HttpResponse {
            let body = json!({"echo": request.body, "contacts": [{"email": "a@x"}, {"email": null}, {"email": "b@x"}]});
            self.seen.lock().unwrap().push(request);
            self.script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(HttpResponse {
                    status: 200,
                    body,
                    retry_after: None,
                })
        }
    }

    #[async_trait]
    impl Effects for Upstream {
        async fn http(&self, request: HttpRequest) -> Result<HttpResponse, EffectError> {
            Ok(self.respond(request))
        }
        async fn integration(&self, request: HttpRequest) -> Result<HttpResponse, EffectError> {
            Ok(self.respond(request))
        }
        fn now_ms(&self) -> i64 {
            1_000_000 + self.clock.load(Ordering::SeqCst)
        }
    }

    fn workflow(yaml: &str) -> Interpreter {
        Interpreter::new(Arc::new(WorkflowDefinition::parse(yaml).unwrap()))
    }

    fn input() -> ExecutionInput {
        ExecutionInput {
            execution_id: "ex1".into(),
            user: json!({"id": "u1", "meta": {"apiKey": "k_secret", "Email": "john@bookface.com"}}),
            trigger: json!({"name": "contact.created", "payload": {"n": 2}}),
            settings: json!({"list": "vip"}),
            env: json!({}),
            secrets: Vec::new(),
        }
    }

    const SYNC: &str = r#"
id: sync
name: Sync
integration: custom.crm
trigger: { type: event, event: contact.created }
steps:
  - { id: fetch, type: integration_request, path: /contacts }
  - id: pick
    type: transform
    jq: '[.steps.fetch.output.body.contacts[] | select(.email != null)]'
  - id: each
    type: map
    items: .steps.pick.output
    concurrency: 2
    steps:
      - id: push
        type: http
        method: post
        url: "https://api.saas.example/contacts"
        headers: { Authorization: "Bearer {{ user.meta.apiKey }}" }
        body: { email: "{{ item.email }}", list: "{{ settings.list }}", n: "{{ index }}" }
"#;

    #[tokio::test]
    async fn the_launch_example_runs_and_replays_without_repeating() {
        let interpreter = workflow(SYNC);
        let journal = MemoryJournal::default();
        let upstream = Upstream::default();
        let outcome = interpreter
            .run(&input(), &journal, &upstream)
            .await
            .unwrap();
        let RunOutcome::Completed { output, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(output.as_array().unwrap().len(), 2);
        let seen = upstream.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3);
        let pushes: Vec<_> = seen
            .iter()
            .filter(|r| r.url.starts_with("https://"))
            .collect();
        assert_eq!(pushes[0].method, "POST");
        assert_eq!(pushes[0].headers["Authorization"], "Bearer k_secret");
        assert_eq!(pushes[0].body.as_ref().unwrap()["email"], "a@x");
        assert_eq!(
            pushes[1].body.as_ref().unwrap()["n"],
            json!(1),
            "a lone expression keeps its type"
        );
        assert_ne!(pushes[0].idempotency_key, pushes[1].idempotency_key);
        assert_eq!(pushes[0].idempotency_key, "ex1:each[0].push");

        // Running again (a resumed execution) repeats nothing.
        let again = interpreter
            .run(&input(), &journal, &upstream)
            .await
            .unwrap();
        assert!(matches!(again, RunOutcome::Completed { .. }));
        assert_eq!(upstream.calls(), 3);
    }

    #[tokio::test]
    async fn a_crash_mid_run_resumes_at_the_unfinished_step() {
        let interpreter = workflow(SYNC);
        let journal = MemoryJournal::default();
        let upstream = Upstream::default();
        interpreter
            .run(&input(), &journal, &upstream)
            .await
            .unwrap();
        // Forget the last iteration, as if the worker died before saving it.
        journal.0.lock().unwrap().remove("each[1].push");
        journal.0.lock().unwrap().remove("each");
        let resumed = interpreter
            .run(&input(), &journal, &upstream)
            .await
            .unwrap();
        assert!(matches!(resumed, RunOutcome::Completed { .. }));
        let seen = upstream.seen.lock().unwrap();
        assert_eq!(seen.len(), 4, "only the unfinished step ran again");
        assert_eq!(
            seen[3].idempotency_key, "ex1:each[1].push",
            "with the same key"
        );
    }

    const ONE_CALL: &str = r#"
id: one
name: One
integration: custom.crm
trigger: { type: event, event: e }
steps:
  - { id: call, type: http, method: POST, url: "https://x.example/a", max_attempts: 3 }
  - { id: after, type: transform, jq: '.steps.call.output.status' }
"#;

    #[tokio::test]
    async fn transient_failures_back_off_and_honour_retry_after() {
        let interpreter = workflow(ONE_CALL);
        let journal = MemoryJournal::default();
        let upstream = Upstream::default();
        upstream.answer(503, None);
        upstream.answer(429, Some(7));
        let first = interpreter
            .run(&input(), &journal, &upstream)
            .await
            .unwrap();
        let RunOutcome::Suspended { resume_at } = first else {
            panic!("{first:?}")
        };
        let wait = resume_at - upstream.now_ms();
        assert!(
            (1000..=1250).contains(&wait),
            "first backoff ~1 s with jitter: {wait}"
        );
        // Not due yet: nothing is called.
        assert!(matches!(
            interpreter
                .run(&input(), &journal, &upstream)
                .await
                .unwrap(),
            RunOutcome::Suspended { .. }
        ));
        assert_eq!(upstream.calls(), 1);
        upstream.advance(wait);
        let second = interpreter
            .run(&input(), &journal, &upstream)
            .await
            .unwrap();
        assert_eq!(
            second,
            RunOutcome::Suspended {
                resume_at: upstream.now_ms() + 7000
            },
            "Retry-After wins"
        );
        upstream.advance(7000);
        let done = interpreter
            .run(&input(), &journal, &upstream)
            .await
            .unwrap();
        assert_eq!(
            done,
            RunOutcome::Completed {
                output: json!(200),
                response: None
            }
        );
        assert!(matches!(
            journal.0.lock().unwrap()["call"],
            StepRecord::Done { attempts: 3, .. }
        ));
    }

    #[tokio::test]
    async fn permanent_failures_and_exhausted_attempts_fail_the_execution() {
        let interpreter = workflow(ONE_CALL);
        let journal = MemoryJournal::default();
        let upstream = Upstream::default();
        upstream.answer(400, None);
        let failed = interpreter
            .run(&input(), &journal, &upstream)
            .await
            .unwrap();
        assert!(
            matches!(failed, RunOutcome::Failed { ref step, ref error } if step == "call" && error.starts_with("HTTP 400"))
        );
        assert_eq!(
            interpreter
                .run(&input(), &journal, &upstream)
                .await
                .unwrap(),
            failed
        );
        assert_eq!(upstream.calls(), 1);

        let journal = MemoryJournal::default();
        for _ in 0..3 {
            upstream.answer(500, Some(0));
        }
        let mut outcome = interpreter
            .run(&input(), &journal, &upstream)
            .await
            .unwrap();
        while let RunOutcome::Suspended { .. } = outcome {
            outcome = interpreter
                .run(&input(), &journal, &upstream)
                .await
                .unwrap();
        }
        assert!(matches!(outcome, RunOutcome::Failed { .. }), "{outcome:?}");
        assert_eq!(upstream.calls(), 4, "three tries, max_attempts 3");
    }

    #[tokio::test]
    async fn delays_conditions_and_respond() {
        let interpreter = workflow(
            r#"
id: req
name: Req
integration: custom.crm
trigger: { type: request }
steps:
  - { id: wait, type: delay, seconds: 60 }
  - id: check
    type: condition
    if: "{{ trigger.payload.n > 1 }}"
    then:
      - { id: big, type: respond, status: 201, body: { size: big, n: "{{ trigger.payload.n }}" } }
    else:
      - { id: small, type: respond, body: { size: small } }
"#,
        );
        let journal = MemoryJournal::default();
        let upstream = Upstream::default();
        let first = interpreter
            .run(&input(), &journal, &upstream)
            .await
            .unwrap();
        assert_eq!(
            first,
            RunOutcome::Suspended {
                resume_at: upstream.now_ms() + 60_000
            }
        );
        upstream.advance(30_000);
        assert!(matches!(
            interpreter
                .run(&input(), &journal, &upstream)
                .await
                .unwrap(),
            RunOutcome::Suspended { .. }
        ));
        upstream.advance(30_000);
        let done = interpreter
            .run(&input(), &journal, &upstream)
            .await
            .unwrap();
        let RunOutcome::Completed { response, .. } = done else {
            panic!("{done:?}")
        };
        assert_eq!(response, Some((201, json!({"size": "big", "n": 2}))));
        assert!(journal.0.lock().unwrap().contains_key("check.big"));
    }
}
