//! Group commit for the workers' hot writes (step records, releases, lease renewals).
//!
//! SQLite has one writer, and each transaction costs a round trip to the connection's
//! thread to begin, one per statement and one to commit. Workers running many executions
//! at once write small rows concurrently; queued here, the writes that arrive while a
//! transaction is being written go together into the next one. Every caller still waits
//! for its own write to be committed, so "stored before the next step starts" holds.

use plugboard_core::{ExecutionUpdate, UnixMillis};
use plugboard_store::{StoreError, StoreResult};
use serde_json::Value;
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{db_err, workflows};

/// Most writes in one transaction; more wait for the next.
const MAX_BATCH: usize = 256;
/// Writes queued before callers wait for room.
const QUEUE: usize = 4096;

pub(crate) enum Write {
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
    /// Applies the write; `true` when it changed a row it had to (a lease still held).
    async fn apply(&self, conn: &mut SqliteConnection) -> StoreResult<bool> {
        match self {
            Write::SaveStep {
                execution,
                key,
                record,
                now,
            } => workflows::save_step(conn, *execution, key, record, *now)
                .await
                .map(|()| true),
            Write::Release { id, holder, update } => {
                workflows::release(conn, *id, holder, update).await
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

/// The whole batch in one transaction; any failure rolls all of it back.
async fn write_together(
    writer: &SqlitePool,
    batch: &[Pending],
) -> StoreResult<Vec<StoreResult<bool>>> {
    let mut conn = writer.acquire().await.map_err(db_err)?;
    if batch.len() == 1 {
        return Ok(vec![batch[0].write.apply(&mut conn).await]);
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db_err)?;
    let mut results = Vec::with_capacity(batch.len());
    for pending in batch {
        results.push(Ok(pending.write.apply(&mut tx).await?));
    }
    tx.commit().await.map_err(db_err)?;
    Ok(results)
}

async fn write_alone(writer: &SqlitePool, batch: &[Pending]) -> Vec<StoreResult<bool>> {
    let mut results = Vec::with_capacity(batch.len());
    for pending in batch {
        let result = match writer.acquire().await {
            Ok(mut conn) => pending.write.apply(&mut conn).await,
            Err(e) => Err(db_err(e)),
        };
        results.push(result);
    }
    results
}
