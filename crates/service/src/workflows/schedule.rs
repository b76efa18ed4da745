//! Schedule triggers: each tick of a workflow's cron (in its time zone) runs once for
//! every user who enabled it. A tick is recorded in the same transaction as its
//! executions, under a primary key, so two schedulers, or one restarted, never run it
//! twice; ticks missed while no scheduler ran are caught up (at most
//! [`MAX_CATCH_UP`] per workflow).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use plugboard_core::{CredentialWithConfigurations, UnixMillis, UserId, WorkflowVersion};
use plugboard_engine::{Trigger, WorkflowDefinition};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{WorkflowsService, trigger_document};
use crate::error::{ServiceError, ServiceResult};

/// Most missed ticks of one workflow run when a scheduler comes back.
pub const MAX_CATCH_UP: usize = 10;

impl WorkflowsService {
    /// Runs every schedule tick due at `now`; returns how many executions it enqueued.
    pub async fn run_schedules_at(&self, now: UnixMillis) -> ServiceResult<usize> {
        let mut enqueued = 0;
        for workflow in self.store.list_scheduled_workflows().await? {
            match self.run_ticks(&workflow, now).await {
                Ok(count) => enqueued += count,
                Err(e) => {
                    tracing::warn!(workflow = %workflow.workflow_id, error = %e, "schedule skipped")
                }
            }
        }
        if enqueued > 0 {
            self.worker.wake();
        }
        Ok(enqueued)
    }

    async fn run_ticks(&self, workflow: &WorkflowVersion, now: UnixMillis) -> ServiceResult<usize> {
        let definition: WorkflowDefinition = serde_json::from_value(workflow.definition.clone())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let Trigger::Schedule { cron, timezone } = &definition.trigger else {
            return Ok(0);
        };
        let since = self
            .store
            .last_schedule_tick(workflow.project_id, &workflow.workflow_id)
            .await?
            .unwrap_or(workflow.created_at);
        let ticks = due_ticks(cron, timezone, since, now)?;
        let mut enqueued = 0;
        for tick in ticks {
            let executions = self.tick_executions(workflow, tick).await?;
            let count = executions.len();
            let recorded = self
                .store
                .record_schedule_tick(
                    workflow.project_id,
                    &workflow.workflow_id,
                    tick,
                    &executions,
                    now,
                )
                .await?;
            if recorded {
                enqueued += count;
            }
        }
        Ok(enqueued)
    }

    /// One execution per user who has the workflow enabled.
    async fn tick_executions(
        &self,
        workflow: &WorkflowVersion,
        tick: UnixMillis,
    ) -> ServiceResult<Vec<plugboard_core::Execution>> {
        let Some(configured) = self
            .integrations
            .find(workflow.project_id, &workflow.integration)
            .await?
        else {
            return Ok(Vec::new());
        };
        let mut by_user: BTreeMap<UserId, Vec<CredentialWithConfigurations>> = BTreeMap::new();
        for credential in self
            .store
            .list_integration_credentials(workflow.project_id, configured.integration.id)
            .await?
        {
            by_user
                .entry(credential.credential.user_id.clone())
                .or_default()
                .push(credential);
        }
        let trigger = trigger_document(
            "schedule",
            json!({ "tickAt": plugboard_core::millis_to_datetime(tick).to_rfc3339() }),
        );
        let mut executions = Vec::new();
        for (user, credentials) in by_user {
            // Paused by the user's plan: no run (rather than a cancelled one per tick).
            if !self
                .access_of(workflow.project_id, &user)
                .await?
                .allows_workflow(&workflow.workflow_id, &workflow.integration)
            {
                continue;
            }
            if let Some(execution) = self
                .execution_for(workflow.project_id, &user, workflow, &credentials, &trigger)
                .await?
            {
                executions.push(execution);
            }
        }
        Ok(executions)
    }

    /// Deletes executions that ended more than `retention` ago.
    pub async fn purge_history(&self, retention: Duration) -> ServiceResult<u64> {
        let before = plugboard_core::now_millis() - retention.as_millis() as i64;
        let purged = self.store.purge_executions(before).await?;
        if purged > 0 {
            tracing::info!(purged, "old executions deleted");
        }
        Ok(purged)
    }

    /// Deletes lifecycle events (with their webhook deliveries and attempts) created more
    /// than `retention` ago.
    pub async fn purge_events(&self, retention: Duration) -> ServiceResult<u64> {
        let before = plugboard_core::now_millis() - retention.as_millis() as i64;
        let purged = self.store.purge_events(before).await?;
        if purged > 0 {
            tracing::info!(purged, "old webhook events deleted");
        }
        Ok(purged)
    }

    /// Runs schedules every `every`, and the retention of the task history (`retention`)
    /// and of webhook events (`event_retention`) about hourly, until `shutdown` turns true.
    pub fn spawn_scheduler(
        self: Arc<Self>,
        every: Duration,
        retention: Duration,
        event_retention: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut last_purge: Option<std::time::Instant> = None;
            while !*shutdown.borrow() {
                if let Err(e) = self.run_schedules_at(plugboard_core::now_millis()).await {
                    tracing::error!(error = %e, "scheduler could not run");
                }
                if last_purge.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
                    last_purge = Some(std::time::Instant::now());
                    if let Err(e) = self.purge_history(retention).await {
                        tracing::error!(error = %e, "retention cleanup failed");
                    }
                    if let Err(e) = self.purge_events(event_retention).await {
                        tracing::error!(error = %e, "webhook event retention cleanup failed");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => {}
                }
            }
        })
    }
}

/// The cron's ticks after `since` and at or before `now`, oldest first, at most
/// [`MAX_CATCH_UP`] (the newest ones).
pub fn due_ticks(
    cron: &str,
    timezone: &str,
    since: UnixMillis,
    now: UnixMillis,
) -> ServiceResult<Vec<UnixMillis>> {
    let bad = |e: String| ServiceError::Internal(format!("schedule: {e}"));
    let cron = croner::Cron::from_str(cron).map_err(|e| bad(e.to_string()))?;
    let zone = chrono_tz::Tz::from_str(timezone).map_err(|e| bad(e.to_string()))?;
    // Whole seconds: from an instant with milliseconds, croner skips the next tick.
    let mut cursor = zone
        .timestamp_millis_opt(since - since.rem_euclid(1000))
        .single()
        .ok_or_else(|| bad("bad instant".into()))?;
    let mut ticks = Vec::new();
    loop {
        let next = cron
            .find_next_occurrence(&cursor, false)
            .map_err(|e| bad(e.to_string()))?;
        let at = next.timestamp_millis();
        if at > now {
            break;
        }
        ticks.push(at);
        if ticks.len() > MAX_CATCH_UP {
            ticks.remove(0);
        }
        cursor = next;
    }
    Ok(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_in_a_time_zone() {
        // 2026-01-05 is a Monday; 09:00 in Paris is 08:00 UTC in winter.
        let since = chrono::Utc
            .with_ymd_and_hms(2026, 1, 5, 7, 0, 0)
            .unwrap()
            .timestamp_millis();
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 1, 7, 12, 0, 0)
            .unwrap()
            .timestamp_millis();
        let ticks = due_ticks("0 9 * * *", "Europe/Paris", since, now).unwrap();
        let hours: Vec<String> = ticks
            .iter()
            .map(|t| {
                plugboard_core::millis_to_datetime(*t)
                    .format("%d %H:%M")
                    .to_string()
            })
            .collect();
        assert_eq!(hours, ["05 08:00", "06 08:00", "07 08:00"]);
        let many = due_ticks("* * * * *", "UTC", since, now).unwrap();
        assert_eq!(many.len(), MAX_CATCH_UP, "only the newest missed ticks");
        assert_eq!(*many.last().unwrap(), now, "a tick exactly at `now` is due");
        // A start time with milliseconds (a deploy) does not skip the next tick.
        let next = due_ticks("* * * * *", "UTC", since + 1_425, since + 60_000).unwrap();
        assert_eq!(next, [since + 60_000]);
    }
}
