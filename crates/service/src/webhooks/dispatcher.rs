//! The dispatcher: fans new outbox events out to the endpoints that want them (one
//! delivery each), claims due deliveries under a lease, sends them concurrently (signed
//! with the endpoint's secrets), and records each attempt with when to try again.
//! Nothing is held open across a delivery: a claim and a record are one transaction each,
//! so a node that stops mid-retry leaves its deliveries for any other node (or itself,
//! restarted) to pick up.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use plugboard_core::{
    AttemptRecord, ClaimedDelivery, DeliveryAttempt, DeliveryNext, DeliveryStatus, ProjectId,
    WebhookDelivery, WebhookEndpoint, now_millis,
};
use plugboard_store::Store;
use plugboard_webhooks::{AttemptOutcome, Deliverer, WebhookMessage, validate_endpoint_url};
use rand::Rng;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{WebhookSettings, WebhooksService};
use crate::error::{ServiceError, ServiceResult};

/// Events fanned out per store call.
const FAN_OUT_BATCH: u32 = 100;

pub struct Dispatcher {
    store: Arc<dyn Store>,
    webhooks: Arc<WebhooksService>,
    settings: WebhookSettings,
    holder: String,
    deliverer: Deliverer,
    wake: Arc<Notify>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        webhooks: Arc<WebhooksService>,
        wake: Arc<Notify>,
    ) -> ServiceResult<Self> {
        let deliverer = Deliverer::new(webhooks.settings().allow_loopback)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(Self {
            settings: webhooks.settings().clone(),
            store,
            webhooks,
            holder: format!("webhooks-{}", Uuid::new_v4().simple()),
            deliverer,
            wake,
        })
    }

    /// Creates the deliveries of events not fanned out yet; returns how many events.
    pub async fn fan_out(&self) -> ServiceResult<usize> {
        let mut total = 0;
        loop {
            let events = self.store.unfanned_events(FAN_OUT_BATCH).await?;
            let mut endpoints: HashMap<ProjectId, Vec<WebhookEndpoint>> = HashMap::new();
            for event in &events {
                if let Entry::Vacant(vacant) = endpoints.entry(event.project_id) {
                    vacant.insert(self.store.list_webhook_endpoints(event.project_id).await?);
                }
                let deliveries: Vec<WebhookDelivery> = endpoints[&event.project_id]
                    .iter()
                    // Endpoints registered after the event do not get it; a disabled one
                    // does, and its delivery waits until it is enabled again.
                    .filter(|e| e.created_at <= event.created_at && e.wants(&event.event_type))
                    .map(|e| {
                        let now = now_millis();
                        WebhookDelivery {
                            id: Uuid::now_v7(),
                            project_id: event.project_id,
                            event_id: event.id,
                            endpoint_id: e.id,
                            status: DeliveryStatus::Pending,
                            attempts: 0,
                            next_attempt_at: now,
                            last_status_code: None,
                            last_error: None,
                            created_at: now,
                            updated_at: now,
                        }
                    })
                    .collect();
                self.store.fan_out_event(event.id, &deliveries).await?;
            }
            total += events.len();
            if (events.len() as u32) < FAN_OUT_BATCH {
                return Ok(total);
            }
        }
    }

    /// Fans out new events, then claims one batch of due deliveries and makes one attempt
    /// at each; returns how many attempts it made.
    pub async fn run_once(&self) -> ServiceResult<usize> {
        self.fan_out().await?;
        let now = now_millis();
        let claimed = self
            .store
            .claim_deliveries(
                &self.holder,
                now,
                now + self.settings.lease.as_millis() as i64,
                self.settings.batch,
            )
            .await?;
        let count = claimed.len();
        futures::future::join_all(claimed.into_iter().map(|c| self.attempt(c))).await;
        Ok(count)
    }

    /// Attempts due deliveries until none is due (retries not yet due stay). Tests use
    /// it instead of waiting for the loop.
    pub async fn drain(&self) -> ServiceResult<usize> {
        let mut total = 0;
        loop {
            let made = self.run_once().await?;
            if made == 0 {
                return Ok(total);
            }
            total += made;
        }
    }

    /// Tells the running loop that deliveries became due.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until `shutdown` turns true.
    pub fn spawn(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            while !*shutdown.borrow() {
                let made = match self.run_once().await {
                    Ok(made) => made,
                    Err(e) => {
                        tracing::error!(error = %e, "webhook dispatcher could not run");
                        0
                    }
                };
                if made == 0 {
                    tokio::select! {
                        _ = tokio::time::sleep(self.settings.poll) => {}
                        _ = self.wake.notified() => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        })
    }

    async fn attempt(&self, claimed: ClaimedDelivery) {
        let ClaimedDelivery {
            delivery,
            event,
            endpoint,
        } = claimed;
        let started_at = now_millis();
        let outcome = match self.send(&event, &endpoint, started_at).await {
            Ok(outcome) => outcome,
            Err(error) => AttemptOutcome {
                error: Some(error),
                ..AttemptOutcome::default()
            },
        };
        let delivered = outcome.delivered();
        let attempt = delivery.attempts.saturating_add(1);
        let now = now_millis();
        let next = if delivered {
            DeliveryNext::Delivered
        } else {
            let jitter = rand::rng().random::<f64>();
            match self.settings.retry.next_delay(
                u32::try_from(attempt).unwrap_or(u32::MAX),
                outcome.retry_after,
                jitter,
            ) {
                Some(delay) => DeliveryNext::RetryAt(now + delay.as_millis() as i64),
                None => DeliveryNext::GiveUp,
            }
        };
        let record = AttemptRecord {
            attempt: DeliveryAttempt {
                id: Uuid::now_v7(),
                delivery_id: delivery.id,
                attempt,
                started_at,
                duration_ms: i64::try_from(outcome.duration_ms).unwrap_or(i64::MAX),
                status_code: outcome.status.map(i32::from),
                error: outcome.error.clone(),
                response_excerpt: Some(outcome.response_excerpt.clone()).filter(|e| !e.is_empty()),
            },
            next,
            disable_after_failures: i32::try_from(self.settings.disable_after_failures)
                .unwrap_or(i32::MAX),
            now,
        };
        tracing::debug!(
            delivery = %delivery.id, endpoint = %endpoint.id, attempt,
            status = ?outcome.status, ?next, "webhook attempt"
        );
        match self
            .store
            .record_delivery_attempt(&self.holder, &record)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(delivery = %delivery.id, "webhook lease lost before the attempt was recorded");
                return;
            }
            Err(e) => {
                tracing::error!(delivery = %delivery.id, error = %e, "cannot record a webhook attempt");
                return;
            }
        }
        if next == DeliveryNext::GiveUp {
            tracing::warn!(
                delivery = %delivery.id, endpoint = %endpoint.id, project = %endpoint.project_id,
                attempts = attempt, "webhook delivery failed for good"
            );
        }
        if !delivered && self.settings.disable_after_failures > 0 {
            self.warn_if_disabled(&endpoint, now).await;
        }
    }

    /// Logs once, from the attempt that crossed the threshold, that an endpoint was
    /// turned off (its id and the reason; never its secret or what was sent).
    async fn warn_if_disabled(&self, endpoint: &WebhookEndpoint, now: i64) {
        if let Ok(Some(current)) = self
            .store
            .get_webhook_endpoint(endpoint.project_id, endpoint.id)
            .await
            && current.disabled_at == Some(now)
        {
            tracing::warn!(
                endpoint = %endpoint.id, project = %endpoint.project_id,
                reason = current.disabled_reason.as_deref().unwrap_or_default(),
                "webhook endpoint disabled"
            );
        }
    }

    async fn send(
        &self,
        event: &plugboard_core::OutboxEvent,
        endpoint: &WebhookEndpoint,
        now: i64,
    ) -> Result<AttemptOutcome, String> {
        // Checked again: the URL was valid when saved, but the settings may have changed.
        let url = validate_endpoint_url(&endpoint.url, self.settings.allow_loopback)
            .map_err(|e| format!("endpoint URL refused: {e}"))?;
        let secrets = self.webhooks.signing_secrets(endpoint, now).map_err(|e| {
            tracing::error!(endpoint = %endpoint.id, error = %e, "cannot open a webhook secret");
            "cannot open the endpoint's signing secret".to_owned()
        })?;
        let body = serde_json::to_vec(&event.body()).map_err(|e| e.to_string())?;
        let message = WebhookMessage::new(event.message_id(), unix_secs(), body);
        let secrets: Vec<_> = secrets.iter().collect();
        Ok(self
            .deliverer
            .deliver(&url, &message, &secrets, self.settings.timeout)
            .await)
    }
}

fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
