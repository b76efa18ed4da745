//! Lifecycle webhooks: the endpoints a project registers, their signing secrets (sealed
//! by the vault, shown in clear only when created or rotated), the outbox's events with
//! their deliveries and attempts, and redelivery. The [`dispatcher`] sends them.

pub mod dispatcher;

use std::sync::Arc;
use std::time::Duration;

use plugboard_connect::vault::Vault;
use plugboard_core::events::EVENT_TYPES;
use plugboard_core::{
    DeliveryAttempt, EventFilter, OutboxEvent, ProjectId, UnixMillis, WebhookDelivery,
    WebhookEndpoint, now_millis,
};
use plugboard_store::{Store, StoreError};
use plugboard_webhooks::{RetryPolicy, WebhookSecret, validate_endpoint_url};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};

/// Endpoints one project may register.
pub const MAX_ENDPOINTS: usize = 20;
/// Longest endpoint description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// How long a rotated-out secret is still signed with when the caller does not say.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);
/// The longest grace a rotation may ask for.
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most events one list call returns.
pub const MAX_EVENT_PAGE: u32 = 100;

/// What a secret is sealed against: one endpoint's secret never opens as another's.
pub fn secret_context(endpoint: Uuid) -> Vec<u8> {
    format!("plugboard:webhook-secret:{endpoint}").into_bytes()
}

/// Tunables of webhook delivery.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Whether endpoints may be `http://` loopback URLs (tests and local development).
    pub allow_loopback: bool,
    /// Time allowed for one attempt, response included.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// An endpoint is disabled after this many failed attempts in a row; 0 never.
    pub disable_after_failures: u32,
    /// How long a claimed delivery stays with this node; a crashed node's deliveries
    /// are taken over after this (it must exceed `timeout`).
    pub lease: Duration,
    /// How often an idle dispatcher looks for due deliveries.
    pub poll: Duration,
    /// Deliveries claimed at once (and sent concurrently).
    pub batch: u32,
    /// Events (with their deliveries and attempts) are deleted this long after they
    /// were created (by the workflow scheduler, with the task history).
    pub retention: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            disable_after_failures: 20,
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(500),
            batch: 32,
            retention: Duration::from_secs(14 * 24 * 3600),
        }
    }
}

/// A new endpoint, as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewEndpoint {
    pub url: String,
    pub description: Option<String>,
    /// Empty: every event type.
    pub event_types: Vec<String>,
}

/// Changes to an endpoint; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// `false` disables by hand; `true` re-enables and forgets the failures.
    pub enabled: Option<bool>,
}

/// An event with where it went: each delivery with its attempts, in order.
#[derive(Debug, Clone)]
pub struct EventDetail {
    pub event: OutboxEvent,
    pub deliveries: Vec<(WebhookDelivery, Vec<DeliveryAttempt>)>,
}

pub struct WebhooksService {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    settings: WebhookSettings,
    /// Rung when deliveries became due, so the dispatcher need not wait for its poll.
    wake: Arc<Notify>,
}

impl WebhooksService {
    pub fn new(
        store: Arc<dyn Store>,
        vault: Arc<Vault>,
        settings: WebhookSettings,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            vault,
            settings,
            wake,
        }
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    /// Registers an endpoint; returns it with its signing secret, the only time the
    /// secret is shown.
    pub async fn create(
        &self,
        project: ProjectId,
        new: NewEndpoint,
    ) -> ServiceResult<(WebhookEndpoint, WebhookSecret)> {
        let url = self.check_url(&new.url)?;
        let description = check_description(new.description.unwrap_or_default())?;
        let event_types = check_event_types(new.event_types)?;
        if self.store.list_webhook_endpoints(project).await?.len() >= MAX_ENDPOINTS {
            return Err(ServiceError::TooManyEndpoints(MAX_ENDPOINTS));
        }
        let id = Uuid::now_v7();
        let secret = WebhookSecret::generate();
        let now = now_millis();
        let endpoint = WebhookEndpoint {
            id,
            project_id: project,
            url,
            description,
            event_types,
            secret_sealed: self.seal(id, &secret)?,
            previous_secret_sealed: None,
            previous_secret_expires_at: None,
            disabled_at: None,
            disabled_reason: None,
            consecutive_failures: 0,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_webhook_endpoint(&endpoint).await?;
        Ok((endpoint, secret))
    }

    pub async fn list(&self, project: ProjectId) -> ServiceResult<Vec<WebhookEndpoint>> {
        Ok(self.store.list_webhook_endpoints(project).await?)
    }

    pub async fn get(&self, project: ProjectId, id: Uuid) -> ServiceResult<WebhookEndpoint> {
        self.store
            .get_webhook_endpoint(project, id)
            .await?
            .ok_or(ServiceError::WebhookEndpointNotFound)
    }

    pub async fn update(
        &self,
        project: ProjectId,
        id: Uuid,
        patch: EndpointPatch,
    ) -> ServiceResult<WebhookEndpoint> {
        let mut endpoint = self.get(project, id).await?;
        if let Some(url) = patch.url {
            endpoint.url = self.check_url(&url)?;
        }
        if let Some(description) = patch.description {
            endpoint.description = check_description(description)?;
        }
        if let Some(types) = patch.event_types {
            endpoint.event_types = check_event_types(types)?;
        }
        let now = now_millis();
        let resumed = match patch.enabled {
            Some(true) => {
                let was_disabled = endpoint.disabled_at.is_some();
                endpoint.disabled_at = None;
                endpoint.disabled_reason = None;
                endpoint.consecutive_failures = 0;
                was_disabled
            }
            Some(false) if endpoint.disabled_at.is_none() => {
                endpoint.disabled_at = Some(now);
                endpoint.disabled_reason = Some("disabled by hand".to_owned());
                false
            }
            _ => false,
        };
        endpoint.updated_at = now;
        self.store
            .update_webhook_endpoint(&endpoint)
            .await
            .map_err(not_found)?;
        if resumed {
            self.wake.notify_one();
        }
        Ok(endpoint)
    }

    pub async fn delete(&self, project: ProjectId, id: Uuid) -> ServiceResult<()> {
        self.store
            .delete_webhook_endpoint(project, id)
            .await
            .map_err(not_found)
    }

    /// Replaces the signing secret. The previous one is still signed with (each webhook
    /// then carries both signatures) for `grace` (default 24 h, at most 7 days; zero
    /// drops it at once). Returns the new secret, the only time it is shown.
    pub async fn rotate_secret(
        &self,
        project: ProjectId,
        id: Uuid,
        grace: Option<Duration>,
    ) -> ServiceResult<(WebhookEndpoint, WebhookSecret)> {
        let grace = grace.unwrap_or(DEFAULT_ROTATION_GRACE);
        if grace > MAX_ROTATION_GRACE {
            return Err(ServiceError::InvalidInput(format!(
                "graceSeconds must be 0 to {}",
                MAX_ROTATION_GRACE.as_secs()
            )));
        }
        let mut endpoint = self.get(project, id).await?;
        let secret = WebhookSecret::generate();
        let now = now_millis();
        let previous = std::mem::replace(&mut endpoint.secret_sealed, self.seal(id, &secret)?);
        if grace.is_zero() {
            endpoint.previous_secret_sealed = None;
            endpoint.previous_secret_expires_at = None;
        } else {
            endpoint.previous_secret_sealed = Some(previous);
            endpoint.previous_secret_expires_at = Some(now + grace.as_millis() as i64);
        }
        endpoint.updated_at = now;
        self.store
            .update_webhook_endpoint(&endpoint)
            .await
            .map_err(not_found)?;
        Ok((endpoint, secret))
    }

    /// The secrets a webhook to `endpoint` is signed with at `now`: the current one, and
    /// the previous one while its grace lasts.
    pub fn signing_secrets(
        &self,
        endpoint: &WebhookEndpoint,
        now: UnixMillis,
    ) -> ServiceResult<Vec<WebhookSecret>> {
        let mut secrets = vec![self.open(endpoint.id, &endpoint.secret_sealed)?];
        if let (Some(sealed), Some(until)) = (
            &endpoint.previous_secret_sealed,
            endpoint.previous_secret_expires_at,
        ) && until > now
        {
            secrets.push(self.open(endpoint.id, sealed)?);
        }
        Ok(secrets)
    }

    /// A project's events, newest first.
    pub async fn events(
        &self,
        project: ProjectId,
        filter: EventFilter,
    ) -> ServiceResult<Vec<OutboxEvent>> {
        if let Some(t) = &filter.event_type
            && !EVENT_TYPES.contains(&t.as_str())
        {
            return Err(ServiceError::InvalidFilter(format!(
                "unknown event type `{t}`"
            )));
        }
        if !(1..=MAX_EVENT_PAGE).contains(&filter.limit) {
            return Err(ServiceError::InvalidFilter(format!(
                "limit must be 1 to {MAX_EVENT_PAGE}"
            )));
        }
        Ok(self.store.list_events(project, &filter).await?)
    }

    pub async fn event(&self, project: ProjectId, id: Uuid) -> ServiceResult<EventDetail> {
        let event = self
            .store
            .get_event(project, id)
            .await?
            .ok_or(ServiceError::EventNotFound)?;
        let mut deliveries = Vec::new();
        for delivery in self.store.list_deliveries(project, id).await? {
            let attempts = self.store.list_delivery_attempts(delivery.id).await?;
            deliveries.push((delivery, attempts));
        }
        Ok(EventDetail { event, deliveries })
    }

    /// Sends an event again, now: to `endpoint`, or to every enabled endpoint that wants
    /// its type. Receivers see the same `webhook-id`. Returns how many deliveries.
    pub async fn redeliver(
        &self,
        project: ProjectId,
        event_id: Uuid,
        endpoint: Option<Uuid>,
    ) -> ServiceResult<u64> {
        let event = self
            .store
            .get_event(project, event_id)
            .await?
            .ok_or(ServiceError::EventNotFound)?;
        let targets: Vec<Uuid> = match endpoint {
            Some(id) => vec![self.get(project, id).await?.id],
            None => self
                .store
                .list_webhook_endpoints(project)
                .await?
                .into_iter()
                .filter(|e| e.disabled_at.is_none() && e.wants(&event.event_type))
                .map(|e| e.id)
                .collect(),
        };
        if targets.is_empty() {
            return Ok(0);
        }
        let count = self
            .store
            .redeliver_event(project, event_id, &targets, now_millis())
            .await?;
        self.wake.notify_one();
        Ok(count)
    }

    fn check_url(&self, raw: &str) -> ServiceResult<String> {
        validate_endpoint_url(raw, self.settings.allow_loopback)
            .map(String::from)
            .map_err(|e| ServiceError::InvalidWebhookUrl(e.to_string()))
    }

    fn seal(&self, endpoint: Uuid, secret: &WebhookSecret) -> ServiceResult<String> {
        self.vault
            .seal(secret.expose().as_bytes(), &secret_context(endpoint))
            .map_err(|e| ServiceError::Internal(format!("sealing a webhook secret: {e}")))
    }

    fn open(&self, endpoint: Uuid, sealed: &str) -> ServiceResult<WebhookSecret> {
        let internal =
            |e: String| ServiceError::Internal(format!("webhook secret of {endpoint}: {e}"));
        let opened = self
            .vault
            .open(sealed, &secret_context(endpoint))
            .map_err(|e| internal(e.to_string()))?;
        let text = opened.into_string().map_err(|e| internal(e.to_string()))?;
        WebhookSecret::parse(&text).map_err(|e| internal(e.to_string()))
    }
}

fn not_found(e: StoreError) -> ServiceError {
    match e {
        StoreError::NotFound => ServiceError::WebhookEndpointNotFound,
        other => other.into(),
    }
}

fn check_description(description: String) -> ServiceResult<String> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ServiceError::InvalidInput(format!(
            "description: at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    Ok(description)
}

/// Known types, each once, in the order given.
fn check_event_types(types: Vec<String>) -> ServiceResult<Vec<String>> {
    let mut checked: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(ServiceError::InvalidInput(format!(
                "eventTypes: unknown event type `{t}` (known: {})",
                EVENT_TYPES.join(", ")
            )));
        }
        if !checked.contains(&t) {
            checked.push(t);
        }
    }
    Ok(checked)
}
