//! Group commit for the workers' hot writes (step records, releases, lease renewals).
//!
//! SQLite has one writer, and each transaction costs a round trip to the connection's
//! thread to begin, one per statement and one to commit. Workers running many executions
//! at once write small rows concurrently; queued here, the writes that arrive while a
//! transaction is being written go together into the next one. Every caller still waits
//! for its own write to be committed, so "stored before the next step starts" holds.

use std::collections::HashSet;

use plugboard_core::{Execution, ExecutionUpdate, UnixMillis};
use plugboard_store::{StoreError, StoreResult};
use serde_json::Value;
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{db_err, events, workflows};

/// Most writes in one transaction; more wait for the next.
const MAX_BATCH: usize = 256;
/// Writes queued before callers wait for room.
const QUEUE: usize = 4096;

pub(crate) enum Write {
    /// All or none: a missing user fails the whole write.
    Enqueue(Vec<Execution>),
    SaveStep {
        execution: Uuid,
        key: String,
        record: Value,
        now: UnixMillis,
    },
    Release {
        id: Uuid,
        holder: String,
        update: ExecutionUpdate,
    },
    ExtendLease {
        id: Uuid,
        holder: String,
        until: UnixMillis,
    },
}

impl Write {
    /// One statement is atomic without a transaction of its own.
    fn is_one_statement(&self) -> bool {
        match self {
            Write::Enqueue(executions) => executions.len() <= 1,
            Write::Release { update, .. } => update.events.is_empty(),
            _ => true,
        }
    }

    /// Applies the write alone; `true` when it changed a row it had to (a lease still held).
    async fn apply(&self, conn: &mut SqliteConnection) -> StoreResult<bool> {
        match self {
            Write::Enqueue(executions) => {
                let rows: Vec<&Execution> = executions.iter().collect();
                workflows::insert_executions(conn, &rows)
                    .await
                    .map(|()| true)
            }
            Write::SaveStep {
                execution,
                key,
                record,
                now,
            } => workflows::save_steps(conn, &[(*execution, key, record, *now)])
                .await
                .map(|()| true),
            Write::Release { id, holder, update } => {
                let released = workflows::release_many(conn, &[(*id, holder, update)]).await?;
                if released.contains(id) {
                    events::insert_events(conn, &update.events).await?;
                }
                Ok(released.contains(id))
            }
            Write::ExtendLease { id, holder, until } => {
                workflows::extend_lease(conn, *id, holder, *until).await
            }
        }
    }
}

struct Pending {
    write: Write,
    done: oneshot::Sender<StoreResult<bool>>,
}

#[derive(Clone)]
pub(crate) struct GroupWriter {
    queue: mpsc::Sender<Pending>,
}

impl GroupWriter {
    /// Starts the task that writes through `writer`; it ends when every handle is gone.
    pub(crate) fn start(writer: SqlitePool) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(writer, receiver));
        Self { queue }
    }

    pub(crate) async fn write(&self, write: Write) -> StoreResult<bool> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Pending { write, done })
            .await
            .map_err(|_| StoreError::Database("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Database("the writer has stopped".into()))?
    }
}

async fn run(writer: SqlitePool, mut receiver: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let results = match write_together(&writer, &batch).await {
            Ok(results) => results,
            // One bad write must not fail the others: each on its own, then.
            Err(_) => write_alone(&writer, &batch).await,
        };
        for (pending, result) in batch.drain(..).zip(results) {
            let _ = pending.done.send(result);
        }
    }
}

/// The whole batch in one transaction, each kind of write as few multi-row statements;
/// any failure rolls all of it back.
async fn write_together(
    writer: &SqlitePool,
    batch: &[Pending],
) -> StoreResult<Vec<StoreResult<bool>>> {
    if let [one] = batch {
        return Ok(vec![write_one(writer, &one.write).await]);
    }
    let mut executions = Vec::new();
    let mut steps = Vec::new();
    let mut releases = Vec::new();
    for pending in batch {
        match &pending.write {
            Write::Enqueue(new) => executions.extend(new.iter()),
            Write::SaveStep {
                execution,
                key,
                record,
                now,
            } => steps.push((*execution, key.as_str(), record, *now)),
            Write::Release { id, holder, update } => releases.push((*id, holder.as_str(), update)),
            Write::ExtendLease { .. } => {}
        }
    }
    let mut tx = writer.begin().await.map_err(db_err)?;
    workflows::insert_executions(&mut tx, &executions).await?;
    workflows::save_steps(&mut tx, &steps).await?;
    let mut extended = Vec::new();
    for pending in batch {
        if let Write::ExtendLease { id, holder, until } = &pending.write {
            extended.push(workflows::extend_lease(&mut tx, *id, holder, *until).await?);
        }
    }
    let released: HashSet<Uuid> = workflows::release_many(&mut tx, &releases)
        .await?
        .into_iter()
        .collect();
    let outbox: Vec<_> = releases
        .iter()
        .filter(|(id, _, _)| released.contains(id))
        .flat_map(|(_, _, update)| update.events.iter().cloned())
        .collect();
    events::insert_events(&mut tx, &outbox).await?;
    tx.commit().await.map_err(db_err)?;
    let mut extended = extended.into_iter();
    Ok(batch
        .iter()
        .map(|pending| {
            Ok(match &pending.write {
                Write::Enqueue(_) | Write::SaveStep { .. } => true,
                Write::Release { id, .. } => released.contains(id),
                Write::ExtendLease { .. } => extended.next().unwrap_or(false),
            })
        })
        .collect())
}

/// Each write in its own transaction.
async fn write_alone(writer: &SqlitePool, batch: &[Pending]) -> Vec<StoreResult<bool>> {
    let mut results = Vec::with_capacity(batch.len());
    for pending in batch {
        results.push(write_one(writer, &pending.write).await);
    }
    results
}

async fn write_one(writer: &SqlitePool, write: &Write) -> StoreResult<bool> {
    if write.is_one_statement() {
        let mut conn = writer.acquire().await.map_err(db_err)?;
        return write.apply(&mut conn).await;
    }
    let mut tx = writer.begin().await.map_err(db_err)?;
    let written = write.apply(&mut tx).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(write: Write) -> (Pending, oneshot::Receiver<StoreResult<bool>>) {
        let (done, answer) = oneshot::channel();
        (Pending { write, done }, answer)
    }

    /// A refused write (a step of no execution breaks the foreign key) rolls its batch
    /// back, and the batch is written again one by one: the others land.
    #[tokio::test]
    async fn one_refused_write_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("group.db"))
            .await
            .unwrap();
        let no_execution = Uuid::now_v7();
        let (bad, _) = pending(Write::SaveStep {
            execution: no_execution,
            key: "a".into(),
            record: serde_json::json!({}),
            now: 1,
        });
        let (good, _) = pending(Write::ExtendLease {
            id: no_execution,
            holder: "w".into(),
            until: 2,
        });
        let batch = [bad, good];
        assert!(write_together(&store.writer, &batch).await.is_err());
        let results = write_alone(&store.writer, &batch).await;
        assert!(results[0].is_err());
        assert!(matches!(results[1], Ok(false)), "{:?}", results[1]);
    }
}
