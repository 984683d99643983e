//! Inserting jobs: all of a batch in one transaction (a savepoint inside the caller's),
//! unique keys resolved by the partial unique index, and the depth cap counted under the
//! same write lock as the insert: the jobs the batch would add, so a duplicate of a live
//! job adds none, and a key the batch carries twice adds one.

use brigade_queue::{DepthDemand, DurableId, Enqueued, NewJob, RunAt, StoreError};
use sqlx::sqlite::SqliteTransactionManager;
use sqlx::{Connection, SqliteConnection, TransactionManager};

use crate::error::store_error;
use crate::rows::{delay_micros, to_micros};
use crate::statements::Statements;
use crate::wakeups::Wakeups;

/// Why an insert did not happen.
pub(crate) enum Refused {
    /// A queue is at its depth cap.
    Full,
    Store(StoreError),
}

impl From<sqlx::Error> for Refused {
    fn from(error: sqlx::Error) -> Self {
        Refused::Store(store_error(error))
    }
}

/// Inserts `jobs` on `conn` (inside the caller's transaction, if it has one: the jobs then
/// exist exactly when it commits), waking their queues' workers on commit.
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    sql: &Statements,
    wakeups: &Wakeups,
    jobs: &[NewJob],
) -> Result<Vec<Enqueued>, Refused> {
    check_options(jobs).map_err(Refused::Store)?;
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let payloads = jobs
        .iter()
        .map(|job| serde_json::to_string(job.payload()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| Refused::Store(StoreError::invalid(format!("payload: {error}"))))?;
    // A savepoint inside the caller's transaction, or a transaction of our own: the batch is
    // all or nothing, and the depth count and the insert see the same queue. Our own takes
    // the write lock up front: a deferred one that counts and then inserts would fail at
    // once, not wait, if another process wrote in between.
    let mut tx = if SqliteTransactionManager::get_transaction_depth(conn) == 0 {
        conn.begin_with("BEGIN IMMEDIATE").await?
    } else {
        conn.begin().await?
    };
    match check_depth(&mut tx, sql, jobs).await {
        Ok(()) => {}
        Err(Refused::Full) => {
            tx.rollback().await?;
            return Err(Refused::Full);
        }
        Err(refused) => return Err(refused),
    }
    let mut enqueued = Vec::with_capacity(jobs.len());
    for (job, payload) in jobs.iter().zip(&payloads) {
        enqueued.push(insert_one(&mut tx, sql, job, payload).await?);
    }
    let mut queues: Vec<&str> = jobs.iter().map(NewJob::queue).collect();
    queues.sort_unstable();
    queues.dedup();
    wakeups.on_commit(&mut tx, queues).await?;
    tx.commit().await?;
    Ok(enqueued)
}

/// Refuses the batch as [`Refused::Full`] when it would take a queue past the lowest cap
/// of its jobs for that queue. Counted on `tx`, which holds the file's write lock, so the
/// queue cannot change before the insert.
async fn check_depth(
    tx: &mut SqliteConnection,
    sql: &Statements,
    jobs: &[NewJob],
) -> Result<(), Refused> {
    for (queue, demand) in &DepthDemand::of(jobs) {
        let keys = serde_json::to_string(&demand.keys).map_err(|error| {
            Refused::Store(StoreError::invalid(format!("unique keys: {error}")))
        })?;
        let (live, taken): (i64, i64) = sqlx::query_as(&sql.live_depth)
            .bind(*queue)
            .bind(i64::try_from(demand.cap).unwrap_or(i64::MAX))
            .bind(keys)
            .fetch_one(&mut *tx)
            .await?;
        if !demand.fits(live.unsigned_abs(), taken.unsigned_abs()) {
            return Err(Refused::Full);
        }
    }
    Ok(())
}

async fn insert_one(
    conn: &mut SqliteConnection,
    sql: &Statements,
    job: &NewJob,
    payload: &str,
) -> Result<Enqueued, Refused> {
    let options = job.options();
    let (at, delay) = match options.run_at_value() {
        Some(RunAt::Time(time)) => (Some(to_micros(time)), None),
        Some(RunAt::After(delay)) => (None, Some(delay_micros(delay))),
        None => (None, None),
    };
    let inserted: Option<i64> = sqlx::query_scalar(&sql.insert)
        .bind(job.queue())
        .bind(payload)
        .bind(options.priority_value())
        .bind(options.unique_key_value())
        .bind(at)
        .bind(delay)
        .bind(i64::from(job.max_attempts()))
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(id) = inserted {
        return Ok(Enqueued {
            id: DurableId::new(id),
            duplicate: false,
        });
    }
    // Not inserted: a live job holds the unique key. The insert took the write lock, so
    // that job is still live now.
    let key = options.unique_key_value().unwrap_or_default();
    let existing: Option<i64> = sqlx::query_scalar(&sql.live_with_key)
        .bind(job.queue())
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
    existing
        .map(|id| Enqueued {
            id: DurableId::new(id),
            duplicate: true,
        })
        .ok_or_else(|| {
            Refused::Store(StoreError::Corrupt(format!(
                "unique key {key:?} of queue {:?} conflicts with no live job",
                job.queue()
            )))
        })
}

/// The most jobs one batch enqueues on SQLite. A batch is one transaction, and it holds
/// the file's write lock while it inserts: every claim, ack and heartbeat of every process
/// on the file waits behind it, and a batch long enough would cost every worker its leases.
/// A larger batch is refused whole (`StoreError::Invalid`, every job handed back): split
/// it, each part enqueued all or nothing.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use brigade_queue::{EnqueueError, NewJob, Store};
/// use brigade_sqlite::{MAX_BATCH, SqliteStore};
///
/// let path = std::env::temp_dir().join(format!("brigade-max-batch-{}.db", std::process::id()));
/// let store = SqliteStore::open(&path).await.unwrap();
/// let jobs = |n: usize| (0..n).map(|i| NewJob::new("bulk", serde_json::json!(i))).collect::<Vec<_>>();
/// let refused = store.enqueue_batch(jobs(MAX_BATCH + 1)).await;
/// assert!(matches!(refused, Err(EnqueueError::Store(jobs, _)) if jobs.len() == MAX_BATCH + 1));
/// for part in jobs(MAX_BATCH + 1).chunks(MAX_BATCH) {
///     store.enqueue_batch(part.to_vec()).await.unwrap();
/// }
/// # drop(store);
/// # let _ = std::fs::remove_file(&path);
/// # }
/// ```
pub const MAX_BATCH: usize = 10_000;

fn check_options(jobs: &[NewJob]) -> Result<(), StoreError> {
    if jobs.len() > MAX_BATCH {
        return Err(StoreError::invalid(format!(
            "a batch is at most MAX_BATCH ({MAX_BATCH}) jobs on SQLite, not {}: split it",
            jobs.len()
        )));
    }
    jobs.iter().try_for_each(NewJob::validate)
}
