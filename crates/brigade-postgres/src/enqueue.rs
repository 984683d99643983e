//! Inserting jobs: one statement for any number of jobs, unique keys resolved by the
//! partial unique index, and the depth cap checked under a per-queue advisory lock, waited
//! for no longer than the store's lock-wait bound.

use brigade_queue::{DepthDemand, DurableId, Enqueued, NewJob, RunAt, StoreError};
use serde_json::Value;
use sqlx::postgres::PgTransactionManager;
use sqlx::types::Json;
use sqlx::{Connection, PgConnection, Row, TransactionManager};

use crate::error::store_error;
use crate::lock_wait::LockWait;
use crate::rows::{duration_micros, to_micros};
use crate::statements::Statements;

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
/// exist exactly when it commits), notifying their queues' workers on commit.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    sql: &Statements,
    lock_wait: LockWait,
    jobs: &[NewJob],
) -> Result<Vec<Enqueued>, Refused> {
    check_options(jobs).map_err(Refused::Store)?;
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let callers = PgTransactionManager::get_transaction_depth(conn) > 0;
    let capped = jobs.iter().any(|job| job.max_depth().is_some());
    if !capped && (callers || !needs_transaction(jobs)) {
        // One statement, or the caller's transaction: all or nothing either way.
        return insert_rows(conn, sql, jobs).await;
    }
    // A savepoint inside the caller's transaction, or a transaction of our own: the count
    // and the insert must see the same queue, and a batch's follow-up statements must not
    // leave its first ones committed when they fail. A depth cap's locks are waited for
    // no longer than the bound (see `lock_wait.rs`).
    let mut tx = if callers {
        conn.begin().await?
    } else if capped {
        conn.begin_with(lock_wait.begin()).await?
    } else {
        conn.begin_with(lock_wait.begin_idle_bounded()).await?
    };
    if capped {
        check_depth(&mut tx, sql, lock_wait, callers, jobs).await?;
    }
    let enqueued = insert_rows(&mut tx, sql, jobs).await?;
    tx.commit().await?;
    Ok(enqueued)
}

/// Whether inserting `jobs` outside a caller's transaction takes one of the store's own:
/// for a depth cap, and for a batch whose unique keys may call for statements after the
/// insert (reading a duplicate's id, inserting again a job whose key came free), which
/// must not leave the batch half in when they fail.
pub(crate) fn needs_transaction(jobs: &[NewJob]) -> bool {
    jobs.iter().any(|job| job.max_depth().is_some())
        || (jobs.len() > 1
            && jobs
                .iter()
                .any(|job| job.options().unique_key_value().is_some()))
}

/// Refuses the batch as [`Refused::Full`] when it would take a queue past the lowest cap
/// of its jobs for that queue, holding each queue's depth lock until `tx` ends.
async fn check_depth(
    tx: &mut PgConnection,
    sql: &Statements,
    lock_wait: LockWait,
    callers: bool,
    jobs: &[NewJob],
) -> Result<(), Refused> {
    // The caller's transaction outlives this call, and so would a `SET LOCAL` of ours: its
    // own `lock_timeout` is put back once the locks are held. Should anything fail before
    // that, rolling back the savepoint puts it back.
    let callers_lock_timeout = if callers {
        let (saved, isolation): (String, String) = sqlx::query_as(&sql.bound_lock_wait)
            .bind(lock_wait.setting())
            .fetch_one(&mut *tx)
            .await?;
        // The caller's transaction took its snapshot at its first statement, before the
        // depth lock below is granted: counted under it, the jobs other producers
        // committed since would be missed and the cap overrun. READ UNCOMMITTED is READ
        // COMMITTED in PostgreSQL.
        if !matches!(isolation.as_str(), "read committed" | "read uncommitted") {
            return Err(Refused::Store(StoreError::invalid(format!(
                "a depth-capped enqueue in a {} transaction cannot keep its cap (the \
                 depth is read in the transaction's snapshot, taken before the depth \
                 lock); enqueue it in a READ COMMITTED transaction, or outside one",
                isolation.to_uppercase()
            ))));
        }
        Some(saved)
    } else {
        None
    };
    for (queue, demand) in &DepthDemand::of(jobs) {
        // Sorted by queue name, so two batches lock their queues in the same order.
        sqlx::query(&sql.lock_depth)
            .bind(*queue)
            .execute(&mut *tx)
            .await?;
        let cap_i64 = i64::try_from(demand.cap).unwrap_or(i64::MAX);
        let keys: Vec<&str> = demand.keys.iter().copied().collect();
        let (live, taken): (i64, i64) = sqlx::query_as(&sql.live_depth)
            .bind(*queue)
            .bind(cap_i64)
            .bind(&keys)
            .fetch_one(&mut *tx)
            .await?;
        // A taken key whose job ends before the insert is taken by the batch's job
        // instead: one leaves the count as the other enters it.
        if !demand.fits(live.unsigned_abs(), taken.unsigned_abs()) {
            return Err(Refused::Full);
        }
    }
    if let Some(saved) = callers_lock_timeout {
        sqlx::query(&sql.restore_lock_wait)
            .bind(saved)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

fn check_options(jobs: &[NewJob]) -> Result<(), StoreError> {
    jobs.iter().try_for_each(NewJob::validate)
}

async fn insert_rows(
    conn: &mut PgConnection,
    sql: &Statements,
    jobs: &[NewJob],
) -> Result<Vec<Enqueued>, Refused> {
    let mut queues = Vec::with_capacity(jobs.len());
    let mut payloads: Vec<Json<&Value>> = Vec::with_capacity(jobs.len());
    let mut priorities = Vec::with_capacity(jobs.len());
    let mut run_at = Vec::with_capacity(jobs.len());
    let mut delays = Vec::with_capacity(jobs.len());
    let mut unique_keys = Vec::with_capacity(jobs.len());
    let mut max_attempts = Vec::with_capacity(jobs.len());
    for job in jobs {
        let options = job.options();
        queues.push(job.queue());
        payloads.push(Json(job.payload()));
        priorities.push(options.priority_value());
        let (at, delay) = match options.run_at_value() {
            Some(RunAt::Time(time)) => (Some(to_micros(time)), None),
            Some(RunAt::After(delay)) => (None, Some(duration_micros(delay))),
            None => (None, None),
        };
        run_at.push(at);
        delays.push(delay);
        unique_keys.push(options.unique_key_value());
        max_attempts.push(i32::try_from(job.max_attempts()).unwrap_or(i32::MAX));
    }
    let rows = sqlx::query(&sql.insert)
        .bind(&queues)
        .bind(&payloads)
        .bind(&priorities)
        .bind(&run_at)
        .bind(&delays)
        .bind(&unique_keys)
        .bind(&max_attempts)
        .bind(&sql.channel)
        .fetch_all(&mut *conn)
        .await?;
    let mut enqueued = Vec::with_capacity(rows.len());
    for (row, job) in rows.iter().zip(jobs) {
        let id: i64 = row.try_get("id")?;
        let fresh: bool = row.try_get("fresh")?;
        if fresh {
            enqueued.push(Enqueued {
                id: DurableId::new(id),
                duplicate: false,
            });
            continue;
        }
        // Not inserted: a live job holds the unique key. Its id is the answer.
        let key = job.options().unique_key_value().unwrap_or_default();
        let existing: Option<i64> = sqlx::query_scalar(&sql.live_with_key)
            .bind(job.queue())
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
        match existing {
            Some(existing) => enqueued.push(Enqueued {
                id: DurableId::new(existing),
                duplicate: true,
            }),
            // It ended between the insert and this read: the key is free again.
            None => {
                let again = Box::pin(insert_rows(conn, sql, std::slice::from_ref(job))).await?;
                enqueued.extend(again);
            }
        }
    }
    Ok(enqueued)
}
