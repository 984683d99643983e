//! The ends of runs (complete, retry, bury, release) share commits.
//!
//! With `synchronous=FULL` every commit waits for a disk flush, and SQLite has one writer:
//! one commit per ack would cap a file at the disk's flushes per second. So an ack joins a
//! list and waits for this process's turn to write; whoever gets the turn records every
//! end on the list in one transaction and answers each. An end that a turn before ours
//! already carried finds its answer ready. Each end is still its own fenced `UPDATE`, so a
//! stale one changes nothing and answers `Ack::Stale`.
//!
//! The turn is taken, and the commit run, by a task of its own (`SqliteStore::end_runs`),
//! not by the future of the call that added an end: that future is dropped wherever its
//! caller stops waiting (a worker's store timeout, a `select!`), and a commit it ran would
//! go with it, leaving the other ends of the batch without an answer though the commit may
//! have landed; their retries would then be refused as stale. The task runs the commit to
//! its end whoever still waits, and every end of the batch hears what the commit did.

use std::sync::Mutex;

use brigade_queue::{Ack, Lease, StoreError};
use sqlx::sqlite::SqliteQueryResult;
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::oneshot::{self, error::TryRecvError};

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

/// Ends taken off the list for one commit. Dropped with ends still in it, it answers them:
/// the commit carrying them panicked, or its task was dropped (the runtime shut down), and
/// their callers hear so instead of a closed channel.
#[derive(Debug)]
struct Batch(Vec<Pending>);

impl Drop for Batch {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        // Unavailable, so that workers try again: an end dropped with a panic is rolled
        // back with its transaction (`builder.rs`) and may not be the one that panicked,
        // so its next commit can land; one already recorded answers `Ack::Stale`.
        let why = if std::thread::panicking() {
            "the commit carrying this end panicked"
        } else {
            "the commit carrying this end stopped with its runtime"
        };
        for pending in self.0.drain(..) {
            let _ = pending
                .answer
                .send(Err(StoreError::Unavailable(why.into())));
        }
    }
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

    /// Takes every end on the list for one commit.
    fn take(&self) -> Batch {
        Batch(std::mem::take(&mut *self.pending()))
    }

    /// Records every end on the list in one transaction and answers each. Run it in a task
    /// of its own holding this process's turn to write (see the module docs); an empty list
    /// (a turn before ours carried our ends) costs nothing.
    pub(crate) async fn flush(&self, pool: &SqlitePool, sql: &Statements) {
        let mut batch = self.take();
        if batch.0.is_empty() {
            return;
        }
        let recorded = match pool.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => record(tx, sql, &batch.0).await,
            Err(error) => Err(error),
        };
        // Answered from here on, whatever happens: the batch no longer answers them.
        let ends = std::mem::take(&mut batch.0);
        match recorded.map_err(store_error) {
            Ok(outcomes) => {
                for (pending, outcome) in ends.into_iter().zip(outcomes) {
                    // The caller may have stopped waiting; its end is recorded all the same.
                    let _ = pending.answer.send(Ok(outcome));
                }
            }
            Err(error) => {
                for pending in ends {
                    let _ = pending.answer.send(Err(error.replicate()));
                }
            }
        }
    }
}

impl Waiting {
    /// The answer, read once the task that took this process's turn for this end has
    /// ended: that turn, or one before it, carried the end and answered it.
    pub(crate) fn answer(mut self) -> Result<Recorded, StoreError> {
        match self.0.try_recv() {
            Ok(answer) => answer,
            // The task was dropped before it took the turn: the runtime is shutting down.
            // The end stays on the list, for a later commit of this store if one comes.
            Err(TryRecvError::Empty) => Err(StoreError::Unavailable(
                "the runtime shut down before a commit carried this end".into(),
            )),
            // Every batch answers its ends, even when dropped (`Batch`).
            Err(TryRecvError::Closed) => Err(StoreError::Corrupt("an end went unanswered".into())),
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use brigade_queue::{DurableId, FencingToken};

    use super::*;

    fn lease(id: i64) -> Lease {
        Lease::new(DurableId::new(id), FencingToken::new(1))
    }

    fn assert_answered(waiting: Waiting, why: &str) {
        match waiting.answer() {
            Err(StoreError::Unavailable(source)) => assert_eq!(source.to_string(), why),
            other => panic!("expected a retryable error, got {other:?}"),
        }
    }

    /// A commit that panics part way, in its task as the store runs it, answers every end
    /// it took with an error that invites a retry, not a closed channel.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_that_panics_answers_every_end_it_took() {
        let ends = Arc::new(Ends::default());
        let waiting = [
            ends.add(lease(1), End::Complete),
            ends.add(lease(2), End::Release),
        ];
        let task = tokio::spawn({
            let ends = Arc::clone(&ends);
            async move {
                let _batch = ends.take();
                tokio::task::yield_now().await;
                panic!("a bug while recording the batch");
            }
        });
        assert!(task.await.expect_err("the task panics").is_panic());
        for waiting in waiting {
            assert_answered(waiting, "the commit carrying this end panicked");
        }
        assert!(ends.pending().is_empty());
    }

    /// A commit whose task is dropped with its runtime answers the ends it took.
    #[test]
    fn a_commit_stopped_with_its_runtime_answers_every_end_it_took() {
        let ends = Arc::new(Ends::default());
        let waiting = ends.add(lease(1), End::Complete);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let (took, taken) = oneshot::channel();
        runtime.spawn({
            let ends = Arc::clone(&ends);
            async move {
                let _batch = ends.take();
                let _ = took.send(());
                std::future::pending::<()>().await;
            }
        });
        runtime.block_on(taken).expect("the task took the batch");
        drop(runtime);
        assert_answered(
            waiting,
            "the commit carrying this end stopped with its runtime",
        );
    }
}
