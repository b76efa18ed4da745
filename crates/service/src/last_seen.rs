//! `lastSeen` without a database write per request: SDK calls record the time in memory
//! and a background task flushes the batch every few seconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plugboard_core::{ProjectId, UnixMillis, UserId};
use plugboard_store::{LastSeen, Store, StoreResult};
use tokio::sync::watch;

#[derive(Default)]
pub struct LastSeenTracker {
    pending: Mutex<HashMap<(ProjectId, UserId), UnixMillis>>,
}

impl LastSeenTracker {
    pub fn touch(&self, project: ProjectId, user: &UserId, at: UnixMillis) {
        let mut pending = self.pending.lock().expect("last-seen lock poisoned");
        match pending.get_mut(&(project, user.clone())) {
            Some(existing) => *existing = (*existing).max(at),
            None => {
                pending.insert((project, user.clone()), at);
            }
        }
    }

    /// Drops what was recorded for an erased user, so a user re-created under the same id
    /// does not inherit it.
    pub fn forget(&self, project: ProjectId, user: &UserId) {
        let mut pending = self.pending.lock().expect("last-seen lock poisoned");
        pending.remove(&(project, user.clone()));
    }

    /// A time recorded here but not flushed yet.
    pub fn peek(&self, project: ProjectId, user: &UserId) -> Option<UnixMillis> {
        let pending = self.pending.lock().expect("last-seen lock poisoned");
        pending.get(&(project, user.clone())).copied()
    }

    /// Writes everything recorded so far. On failure the batch is put back for next time.
    pub async fn flush(&self, store: &dyn Store) -> StoreResult<usize> {
        let batch: Vec<LastSeen> = {
            let mut pending = self.pending.lock().expect("last-seen lock poisoned");
            pending
                .drain()
                .map(|((project_id, user_id), at)| LastSeen {
                    project_id,
                    user_id,
                    at,
                })
                .collect()
        };
        if let Err(e) = store.record_last_seen(&batch).await {
            for entry in batch {
                self.touch(entry.project_id, &entry.user_id, entry.at);
            }
            return Err(e);
        }
        Ok(batch.len())
    }

    /// Flushes every `interval` until `shutdown` flips to true, then flushes once more.
    pub fn spawn_flusher(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = shutdown.changed() => {}
                }
                if let Err(e) = self.flush(&*store).await {
                    tracing::warn!(error = %e, "could not record last-seen times; will retry");
                }
                if *shutdown.borrow() {
                    break;
                }
            }
        })
    }
}
