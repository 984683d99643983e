//! The ends of runs (complete, retry, bury, release) share commits.
//!
//! With `synchronous=FULL` every commit waits for a disk flush, and SQLite has one writer:
//! one commit per ack would cap a file at the disk's flushes per second. So an ack joins a
//! list and waits for this process's turn to write; whoever gets the turn records every
//! end on the list in one transaction and answers each. An end that a turn before ours
//! already carried finds its answer ready. Each end is still its own fenced `UPDATE`, so a
//! stale one changes nothing and answers `Ack::Stale`.

use std::sync::Mutex;

use brigade_queue::{Ack, Lease, StoreError};
use sqlx::sqlite::SqliteQueryResult;
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::oneshot;

use crate::error::store_error;
use crate::statements::Statements;

/// How a run ended.
#[derive(Debug)]
pub(crate) enum End {
    Complete,
    /// Runs again after the delay (µs, already rounded up for the store's clock).
    Retry {
        delay_us: i64,
        error: String,
    },
    Bury {
        error: String,
    },
    Release,
}

/// What recording an end did: the ack, and for a recorded release the job's queue (whose
/// idle workers the caller wakes).
pub(crate) type Recorded = (Ack, Option<String>);

#[derive(Debug)]
struct Pending {
    lease: Lease,
    end: End,
    answer: oneshot::Sender<Result<Recorded, StoreError>>,
}

/// The ends waiting for a commit.
#[derive(Debug, Default)]
pub(crate) struct Ends {
    pending: Mutex<Vec<Pending>>,
}

/// An end waiting for its answer.
#[derive(Debug)]
pub(crate) struct Waiting(oneshot::Receiver<Result<Recorded, StoreError>>);

impl Ends {
    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        // Every operation on the list is one push or one take: a panic elsewhere cannot
        // leave it half changed.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts an end on the list.
    pub(crate) fn add(&self, lease: Lease, end: End) -> Waiting {
        let (answer, waiting) = oneshot::channel();
        self.pending().push(Pending { lease, end, answer });
        Waiting(waiting)
    }

    /// Records every end on the list in one transaction and answers each. Call it holding
    /// this process's turn to write; an empty list (a turn before ours carried our ends)
    /// costs nothing.
    pub(crate) async fn flush(&self, pool: &SqlitePool, sql: &Statements) {
        let batch = std::mem::take(&mut *self.pending());
        if batch.is_empty() {
            return;
        }
        let recorded = match pool.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => record(tx, sql, &batch).await,
            Err(error) => Err(error),
        };
        match recorded.map_err(store_error) {
            Ok(outcomes) => {
                for (pending, outcome) in batch.into_iter().zip(outcomes) {
                    // The caller may have stopped waiting; its end is recorded all the same.
                    let _ = pending.answer.send(Ok(outcome));
                }
            }
            Err(error) => {
                for pending in batch {
                    let _ = pending.answer.send(Err(copy(&error)));
                }
            }
        }
    }
}

impl Waiting {
    /// Waits for the answer.
    pub(crate) async fn answer(self) -> Result<Recorded, StoreError> {
        self.0.await.unwrap_or_else(|_| {
            // The call that took this end onto its commit was cancelled (a store timeout)
            // before it heard the commit's answer: most often nothing was recorded (the
            // transaction is rolled back, see `builder.rs`), but a commit already on its
            // way to SQLite still lands. Trying again is safe either way: an end already
            // recorded answers `Ack::Stale`.
            Err(StoreError::Unavailable(
                "the commit carrying this end was abandoned".into(),
            ))
        })
    }
}

async fn record(
    mut tx: Transaction<'static, Sqlite>,
    sql: &Statements,
    batch: &[Pending],
) -> Result<Vec<Recorded>, sqlx::Error> {
    let mut outcomes = Vec::with_capacity(batch.len());
    for pending in batch {
        let (id, token) = (pending.lease.id.get(), pending.lease.token.get());
        let outcome = match &pending.end {
            End::Release => {
                let queue: Option<String> = sqlx::query_scalar(&sql.release)
                    .bind(id)
                    .bind(token)
                    .fetch_optional(&mut *tx)
                    .await?;
                match queue {
                    Some(queue) => (Ack::Recorded, Some(queue)),
                    None => (Ack::Stale, None),
                }
            }
            End::Complete => acked(
                sqlx::query(&sql.complete)
                    .bind(id)
                    .bind(token)
                    .execute(&mut *tx)
                    .await?,
            ),
            End::Retry { delay_us, error } => acked(
                sqlx::query(&sql.retry)
                    .bind(id)
                    .bind(token)
                    .bind(*delay_us)
                    .bind(error.as_str())
                    .execute(&mut *tx)
                    .await?,
            ),
            End::Bury { error } => acked(
                sqlx::query(&sql.bury)
                    .bind(id)
                    .bind(token)
                    .bind(error.as_str())
                    .execute(&mut *tx)
                    .await?,
            ),
        };
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// A fenced `UPDATE` changed the row only if the caller held the current lease.
fn acked(result: SqliteQueryResult) -> Recorded {
    let ack = if result.rows_affected() == 1 {
        Ack::Recorded
    } else {
        Ack::Stale
    };
    (ack, None)
}

/// The same failure for every end of a failed commit (driver errors are not `Clone`),
/// keeping whether trying again may help.
fn copy(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(source) => StoreError::Unavailable(source.to_string().into()),
        StoreError::Corrupt(what) => StoreError::Corrupt(what.clone()),
        StoreError::Invalid(reason) => StoreError::Invalid(reason.clone()),
        other => StoreError::Backend(other.to_string().into()),
    }
}
