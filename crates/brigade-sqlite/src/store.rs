//! The store: opening it, transactional enqueue, and every `Store` transition.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use brigade_queue::{
    Ack, Claim, ClaimRequest, DurableId, EnqueueError, Enqueued, FencingToken, GlobalConcurrency,
    GlobalRate, JobRecord, JobState, Lease, MAX_SCHEDULE_AHEAD, NewJob, QueueCounts, RateGrant,
    Rescued, Store, StoreError,
};
use sqlx::pool::PoolConnection;
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{Mutex, MutexGuard, Notify};
use tokio::time::Instant;

use crate::builder::SqliteStoreBuilder;
use crate::busy::retry_while_busy;
use crate::ends::{End, Ends};
use crate::enqueue::{Refused, insert};
use crate::error::store_error;
use crate::rows::{self, delay_micros, duration_micros};
use crate::statements::{SLICE, Statements};
use crate::wakeups::Wakeups;

/// A durable job queue in a SQLite file: a [`Store`] for [`brigade_queue`]'s `Queue` and
/// `Worker`, with no server to run, plus enqueueing inside your own transaction.
///
/// Several processes on one host may open the same file: SQLite's write lock serializes
/// their claims and acks, so a job is never claimed twice while its lease holds. Wake-ups
/// reach this process's workers only; workers in other processes find new jobs at their
/// next poll (`Worker::poll`, 1 s by default).
///
/// Cloning is cheap and shares the connection pool.
///
/// # Cancel safety
///
/// A call dropped part way (a caller's timeout) leaves no transaction open. The ends of
/// runs (`complete`, `retry`, `bury`, `release`) share commits with the other ends waiting
/// in this process, and a shared commit runs in a task of its own. Dropping one of these
/// calls abandons only its wait: its end is committed as if it had waited, and the other
/// ends of its commit get the commit's answer.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("brigade-sqlite-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use brigade_queue::{NewJob, Queue, Store};
/// use brigade_sqlite::SqliteStore;
///
/// let store = SqliteStore::open(dir.join("jobs.db")).await?; // creates and migrates the file
/// let emails = Queue::new(store.clone(), "emails");
/// emails.enqueue("ada@example.test".to_string()).await?;
///
/// // Or inside a transaction of yours: the job exists exactly when it commits.
/// let mut tx = store.begin().await?;
/// sqlx::query("CREATE TABLE IF NOT EXISTS signups (email TEXT)").execute(&mut *tx).await?;
/// sqlx::query("INSERT INTO signups VALUES ('grace@example.test')").execute(&mut *tx).await?;
/// let job = emails.encode(&"grace@example.test".to_string(), Default::default())?;
/// store.enqueue_in(&mut tx, job).await?;
/// tx.commit().await?;
/// assert_eq!(store.counts("emails").await?.available, 2);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    path: PathBuf,
    /// How long a migration retries what SQLite refuses as busy without waiting.
    busy_timeout: Duration,
    sql: Statements,
    wakeups: Arc<Wakeups>,
    /// This process's writers take turns here before they take SQLite's write lock, so
    /// they queue in order instead of sleeping in SQLite's busy handler; the busy timeout
    /// then only covers other processes.
    writer: Mutex<()>,
    /// Ends of runs waiting for a shared commit.
    ends: Ends,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the store in the file at `path` with the defaults
    /// (`synchronous=FULL`, 5 s busy timeout, 8 connections) and migrates it.
    ///
    /// # Errors
    ///
    /// As [`SqliteStoreBuilder::open`].
    ///
    /// # Examples
    ///
    /// See [`SqliteStore`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder(path).open().await
    }

    /// Starts configuring a store in the file at `path`.
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder`].
    pub fn builder(path: impl AsRef<Path>) -> SqliteStoreBuilder {
        SqliteStoreBuilder::new(path.as_ref().to_path_buf())
    }

    pub(crate) fn from_parts(
        pool: SqlitePool,
        path: PathBuf,
        busy_timeout: Duration,
        wakeups: Arc<Wakeups>,
    ) -> Self {
        SqliteStore {
            inner: Arc::new(Inner {
                pool,
                path,
                busy_timeout,
                sql: Statements::new(),
                wakeups,
                writer: Mutex::new(()),
                ends: Ends::default(),
            }),
        }
    }

    /// Brings the file's schema up to the newest version this build knows; returns the
    /// versions applied (none when it was current). Safe to run from many processes at
    /// once: the steps run under SQLite's write lock, and a run that SQLite refuses as busy
    /// without waiting is tried again until the busy timeout has passed.
    ///
    /// # Errors
    ///
    /// A store error when SQLite fails a step (the whole run is rolled back),
    /// [`StoreError::Unavailable`] when the file stays locked past the busy timeout,
    /// [`StoreError::Invalid`] when the linked SQLite is older than 3.42, or
    /// [`StoreError::Backend`] carrying a [`SchemaTooNew`](crate::SchemaTooNew) when a newer
    /// build migrated the file past what this one knows.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(store: brigade_sqlite::SqliteStore) -> Result<(), brigade_queue::StoreError> {
    /// assert!(store.migrate().await?.is_empty()); // open already migrated
    /// # Ok(())
    /// # }
    /// ```
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        self.migrate_until(Instant::now() + self.inner.busy_timeout)
            .await
    }

    /// Refuses the file if a newer build migrated it past what this one knows, migrating
    /// nothing: for a store opened without migrations.
    pub(crate) async fn check_schema(&self) -> Result<(), StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(store_error)?;
        crate::migrations::check_version(&mut conn).await
    }

    /// Migrates, trying again what SQLite refuses as busy until `deadline`.
    pub(crate) async fn migrate_until(&self, deadline: Instant) -> Result<Vec<i64>, StoreError> {
        retry_while_busy(deadline, || async {
            let _turn = self.inner.writer.lock().await;
            let mut conn = self.inner.pool.acquire().await.map_err(store_error)?;
            crate::migrations::migrate(&mut conn).await
        })
        .await
    }

    /// The connection pool, for your own queries.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(store: brigade_sqlite::SqliteStore) -> Result<(), sqlx::Error> {
    /// let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs").fetch_one(store.pool()).await?;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// The file the store lives in.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(store: brigade_sqlite::SqliteStore) {
    /// println!("jobs in {}", store.path().display());
    /// # }
    /// ```
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Begins a transaction of yours that takes SQLite's write lock at once
    /// (`BEGIN IMMEDIATE`), for [`SqliteStore::enqueue_in`].
    ///
    /// A plain `BEGIN` takes the lock at its first write; if another writer committed
    /// after it first read, that write fails with `SQLITE_BUSY` at once, whatever the busy
    /// timeout. Beginning immediately waits for the lock up front instead. While the
    /// transaction is open it holds the file's write lock: every other write, in this
    /// process or another, waits for it (up to the busy timeout), so keep it short.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the lock stays held past the busy timeout or no
    /// connection is free.
    ///
    /// # Cancel safety
    ///
    /// Cancelling the call leaves nothing open: a transaction it began is rolled back when
    /// its connection goes back to the pool, before any other call can borrow it.
    ///
    /// # Examples
    ///
    /// See [`SqliteStore`].
    pub async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.inner
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(store_error)
    }

    /// Enqueues `job` on `conn`: inside a transaction, the job exists exactly when that
    /// transaction commits (and this process's workers are woken then); a rollback leaves
    /// no trace. A refused job (depth cap, bad options) leaves the transaction usable.
    ///
    /// Begin the transaction with [`SqliteStore::begin`] (or `BEGIN IMMEDIATE` on a
    /// connection of [`SqliteStore::pool`]): on a connection of another pool the wake-up
    /// goes out at once rather than at the commit, and the workers' polling finds the job.
    ///
    /// # Errors
    ///
    /// As [`Store::enqueue`], with the job handed back. [`StoreError::Unavailable`] when
    /// the transaction could not take the write lock (see [`SqliteStore::begin`]).
    ///
    /// # Examples
    ///
    /// See [`SqliteStore`].
    pub async fn enqueue_in(
        &self,
        conn: &mut SqliteConnection,
        job: NewJob,
    ) -> Result<Enqueued, EnqueueError<NewJob>> {
        let inserted = insert(
            conn,
            &self.inner.sql,
            &self.inner.wakeups,
            std::slice::from_ref(&job),
        )
        .await;
        match inserted {
            Ok(enqueued) => enqueued.into_iter().next().ok_or_else(|| {
                EnqueueError::Store(job, StoreError::Corrupt("insert returned no row".into()))
            }),
            Err(refused) => Err(refusal(job, refused)),
        }
    }

    /// Enqueues `jobs` on `conn`, all or none, as [`SqliteStore::enqueue_in`].
    ///
    /// # Errors
    ///
    /// As [`Store::enqueue_batch`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(store: brigade_sqlite::SqliteStore, jobs: Vec<brigade_queue::NewJob>) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = store.begin().await?;
    /// store.enqueue_batch_in(&mut tx, jobs).await?;
    /// tx.commit().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn enqueue_batch_in(
        &self,
        conn: &mut SqliteConnection,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, EnqueueError<Vec<NewJob>>> {
        insert(conn, &self.inner.sql, &self.inner.wakeups, &jobs)
            .await
            .map_err(|refused| refusal(jobs, refused))
    }

    /// Deletes finished jobs older than `keep` every `every` (at least
    /// [`MIN_RETENTION_INTERVAL`](brigade_queue::MIN_RETENTION_INTERVAL)), until the
    /// returned task is aborted or the runtime stops: retention as a periodic task
    /// ([`brigade_queue::spawn_retention`]). Any number of processes may run it.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(store: brigade_sqlite::SqliteStore) {
    /// use std::time::Duration;
    /// let retention = store.spawn_retention(Duration::from_secs(600), Duration::from_secs(7 * 86_400));
    /// // ... at shutdown:
    /// retention.abort();
    /// # }
    /// ```
    pub fn spawn_retention(&self, every: Duration, keep: Duration) -> tokio::task::JoinHandle<()> {
        brigade_queue::spawn_retention(self.clone(), every, keep)
    }

    /// This process's turn to write, and a connection to write on.
    async fn writer(&self) -> Result<(MutexGuard<'_, ()>, PoolConnection<Sqlite>), StoreError> {
        let turn = self.inner.writer.lock().await;
        let conn = self.inner.pool.acquire().await.map_err(store_error)?;
        Ok((turn, conn))
    }

    /// This process's turn to write, and a transaction holding SQLite's write lock.
    async fn write_transaction(
        &self,
    ) -> Result<(MutexGuard<'_, ()>, Transaction<'static, Sqlite>), StoreError> {
        let turn = self.inner.writer.lock().await;
        let tx = self
            .inner
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(store_error)?;
        Ok((turn, tx))
    }

    /// Inserts `jobs` in a transaction of the store's own and commits it.
    async fn insert_committed(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>, Refused> {
        let (_turn, mut tx) = self.write_transaction().await.map_err(Refused::Store)?;
        let enqueued = insert(&mut tx, &self.inner.sql, &self.inner.wakeups, jobs).await?;
        tx.commit().await?;
        Ok(enqueued)
    }

    /// Records the ends of runs, in a commit shared with every other end waiting in this
    /// process (see `ends.rs`), and wakes the queues of released jobs.
    ///
    /// The commit runs in a task of its own, which the call waits for: dropping the call
    /// abandons only its wait, and the ends it added are recorded all the same.
    async fn end_runs(&self, ends: Vec<(Lease, End)>) -> Vec<Result<Ack, StoreError>> {
        // sqlx panics outside a Tokio runtime, so every call of the store needs one; here
        // the caller hears it, before any end joins a list no task would commit.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return ends
                .iter()
                .map(|_| {
                    Err(StoreError::invalid(
                        "the SQLite store is called outside a Tokio runtime",
                    ))
                })
                .collect();
        };
        let waiting: Vec<_> = ends
            .into_iter()
            .map(|(lease, end)| self.inner.ends.add(lease, end))
            .collect();
        let store = self.clone();
        let commit = runtime.spawn(async move {
            let _turn = store.inner.writer.lock().await;
            store
                .inner
                .ends
                .flush(&store.inner.pool, &store.inner.sql)
                .await;
        });
        // However the task ended, the answers it could give are in: a panic is answered by
        // the batch it took (`ends.rs`).
        let _ = commit.await;
        waiting
            .into_iter()
            .map(|waiting| {
                waiting.answer().map(|(ack, released_from)| {
                    if let Some(queue) = released_from {
                        self.inner.wakeups.wake_queue(&queue);
                    }
                    ack
                })
            })
            .collect()
    }

    async fn end_run(&self, lease: Lease, end: End) -> Result<Ack, StoreError> {
        self.end_runs(vec![(lease, end)])
            .await
            .pop()
            .unwrap_or_else(|| Err(StoreError::Corrupt("an end went unanswered".into())))
    }
}

fn refusal<T>(job: T, refused: Refused) -> EnqueueError<T> {
    match refused {
        Refused::Full => EnqueueError::Full(job),
        Refused::Store(error) => EnqueueError::Store(job, error),
    }
}

/// Leases as a JSON array of `[id, token]` pairs, read back in SQL with `json_each`.
fn leases_json(leases: &[Lease]) -> String {
    let pairs: Vec<String> = leases
        .iter()
        .map(|lease| format!("[{},{}]", lease.id.get(), lease.token.get()))
        .collect();
    format!("[{}]", pairs.join(","))
}

#[async_trait]
impl Store for SqliteStore {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, EnqueueError<NewJob>> {
        match self.insert_committed(std::slice::from_ref(&job)).await {
            Ok(mut enqueued) => enqueued.pop().ok_or_else(|| {
                EnqueueError::Store(job, StoreError::Corrupt("insert returned no row".into()))
            }),
            Err(refused) => Err(refusal(job, refused)),
        }
    }

    async fn enqueue_batch(
        &self,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, EnqueueError<Vec<NewJob>>> {
        self.insert_committed(&jobs)
            .await
            .map_err(|refused| refusal(jobs, refused))
    }

    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Vec<Claim>, StoreError> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let (_turn, mut tx) = self.write_transaction().await?;
        let rows = sqlx::query(&self.inner.sql.claim)
            .bind(request.queue)
            .bind(i64::try_from(request.limit).unwrap_or(i64::MAX))
            .bind(request.worker)
            .bind(duration_micros(request.lease))
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
        if rows.is_empty() {
            // Nothing written: let the transaction end without a commit to flush.
            tx.rollback().await.map_err(store_error)?;
            return Ok(Vec::new());
        }
        let mut claims = rows
            .iter()
            .map(rows::claim)
            .collect::<Result<Vec<_>, _>>()?;
        sqlx::query(&self.inner.sql.take_tokens)
            .bind(i64::try_from(claims.len()).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        // RETURNING keeps no order; tokens follow the claim order (priority, run-at, id).
        claims.sort_by_key(|claim| claim.token);
        Ok(claims)
    }

    async fn heartbeat(&self, leases: &[Lease], lease: Duration) -> Result<Vec<Lease>, StoreError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let (_turn, mut tx) = self.write_transaction().await?;
        let rows = sqlx::query(&self.inner.sql.heartbeat)
            .bind(leases_json(leases))
            .bind(duration_micros(lease))
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
        let renewed = rows
            .iter()
            .map(|row| {
                Ok(Lease::new(
                    DurableId::new(row.try_get("id")?),
                    FencingToken::new(row.try_get("lease_token")?),
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(store_error)?;
        if !renewed.is_empty() {
            sqlx::query(&self.inner.sql.heartbeat_units)
                .bind(leases_json(&renewed))
                .bind(duration_micros(lease))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok(renewed)
    }

    async fn complete(&self, lease: Lease) -> Result<Ack, StoreError> {
        self.end_run(lease, End::Complete).await
    }

    async fn complete_many(&self, leases: &[Lease]) -> Vec<Result<Ack, StoreError>> {
        let ends = leases.iter().map(|lease| (*lease, End::Complete)).collect();
        self.end_runs(ends).await
    }

    async fn retry(&self, lease: Lease, delay: Duration, error: &str) -> Result<Ack, StoreError> {
        // No later than an enqueue may schedule a job: past that the sum with the clock
        // leaves SQLite's integers, the column refuses it, and the whole shared commit
        // fails with it.
        let end = End::Retry {
            delay_us: delay_micros(delay.min(MAX_SCHEDULE_AHEAD)),
            error: error.to_owned(),
        };
        self.end_run(lease, end).await
    }

    async fn bury(&self, lease: Lease, error: &str) -> Result<Ack, StoreError> {
        let end = End::Bury {
            error: error.to_owned(),
        };
        self.end_run(lease, end).await
    }

    async fn release(&self, lease: Lease) -> Result<Ack, StoreError> {
        self.end_run(lease, End::Release).await
    }

    async fn rescue(&self, queue: &str) -> Result<Rescued, StoreError> {
        let states: Vec<String> = {
            let (_turn, mut conn) = self.writer().await?;
            sqlx::query_scalar(&self.inner.sql.rescue)
                .bind(queue)
                .fetch_all(&mut *conn)
                .await
                .map_err(store_error)?
        };
        let dead = states
            .iter()
            .filter(|state| state.as_str() == "dead")
            .count() as u64;
        let rescued = Rescued {
            requeued: states.len() as u64 - dead,
            dead,
        };
        if rescued.requeued > 0 {
            self.inner.wakeups.wake_queue(queue);
        }
        Ok(rescued)
    }

    fn wakeup(&self, queue: &str) -> Arc<Notify> {
        self.inner.wakeups.queue(queue)
    }

    fn units_wakeup(&self, limit: &str) -> Arc<Notify> {
        self.inner.wakeups.units(limit)
    }

    async fn counts(&self, queue: &str) -> Result<QueueCounts, StoreError> {
        let rows = sqlx::query(&self.inner.sql.counts)
            .bind(queue)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(store_error)?;
        let mut counts = QueueCounts::default();
        for row in rows {
            let state: String = row.try_get("state").map_err(store_error)?;
            let later: bool = row.try_get("later").map_err(store_error)?;
            let jobs: i64 = row.try_get("jobs").map_err(store_error)?;
            let jobs = jobs.unsigned_abs();
            let state = JobState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown state {state:?}")))?;
            counts.add(state, later, jobs);
        }
        Ok(counts)
    }

    async fn job(&self, id: DurableId) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(&self.inner.sql.job)
            .bind(id.get())
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(rows::record).transpose()
    }

    async fn dead_jobs(&self, queue: &str, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(&self.inner.sql.dead_jobs)
            .bind(queue)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(store_error)?;
        rows.iter().map(rows::record).collect()
    }

    async fn replay(&self, id: DurableId) -> Result<bool, StoreError> {
        // In a transaction, committed here: `fetch_optional` stops at the first returned
        // row and sqlx resets the statement unasked, which alone would commit it and drop
        // the commit's error (a full disk), answering "replayed" for a job still dead.
        let queue: Option<String> = {
            let (_turn, mut tx) = self.write_transaction().await?;
            let queue = sqlx::query_scalar(&self.inner.sql.replay)
                .bind(id.get())
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
            queue
        };
        if let Some(queue) = &queue {
            self.inner.wakeups.wake_queue(queue);
        }
        Ok(queue.is_some())
    }

    async fn replay_all(&self, queue: &str) -> Result<u64, StoreError> {
        let began: i64 = sqlx::query_scalar(&self.inner.sql.replay_began)
            .bind(queue)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(store_error)?;
        let mut replayed = 0;
        loop {
            // The turn is taken per slice, so claims and acks get the lock in between.
            let slice = {
                let (_turn, mut conn) = self.writer().await?;
                sqlx::query(&self.inner.sql.replay_all)
                    .bind(queue)
                    .bind(began)
                    .execute(&mut *conn)
                    .await
                    .map_err(store_error)?
                    .rows_affected()
            };
            replayed += slice;
            if slice > 0 {
                self.inner.wakeups.wake_queue(queue);
            }
            if slice < SLICE {
                return Ok(replayed);
            }
        }
    }

    async fn cancel(&self, id: DurableId) -> Result<bool, StoreError> {
        let (_turn, mut conn) = self.writer().await?;
        let result = sqlx::query(&self.inner.sql.cancel)
            .bind(id.get())
            .execute(&mut *conn)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn purge_finished(
        &self,
        older_than: Duration,
        include_dead: bool,
    ) -> Result<u64, StoreError> {
        let mut purged = 0;
        loop {
            // The turn is taken per slice, so claims and acks get the lock in between.
            let (_turn, mut conn) = self.writer().await?;
            let deleted = sqlx::query(&self.inner.sql.purge)
                .bind(duration_micros(older_than))
                .bind(include_dead)
                .execute(&mut *conn)
                .await
                .map_err(store_error)?
                .rows_affected();
            purged += deleted;
            if deleted < SLICE {
                return Ok(purged);
            }
        }
    }

    async fn take_rate(&self, limit: &GlobalRate, want: u32) -> Result<RateGrant, StoreError> {
        let (_turn, mut tx) = self.write_transaction().await?;
        let row = sqlx::query(&self.inner.sql.rate_state)
            .bind(limit.key())
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
        let now: i64 = row.try_get("now_us").map_err(store_error)?;
        let tat: Option<i64> = row.try_get("tat_us").map_err(store_error)?;
        let (grant, new_tat) = crate::limits::gcra(
            now,
            tat,
            duration_micros(limit.interval()),
            limit.burst_size(),
            want,
        );
        if let Some(new_tat) = new_tat {
            sqlx::query(&self.inner.sql.rate_store)
                .bind(limit.key())
                .bind(new_tat)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
        } else {
            tx.rollback().await.map_err(store_error)?;
        }
        Ok(grant)
    }

    async fn acquire_units(
        &self,
        limit: &GlobalConcurrency,
        holder: Lease,
        weight: u32,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let (_turn, mut tx) = self.write_transaction().await?;
        let sql = &self.inner.sql;
        sqlx::query(&sql.units_expire)
            .bind(limit.key())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        let held = sqlx::query(&sql.units_held)
            .bind(limit.key())
            .bind(holder.id.get())
            .bind(holder.token.get())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?
            .is_some();
        let granted = if held {
            true
        } else {
            let used: i64 = sqlx::query_scalar(&sql.units_used)
                .bind(limit.key())
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
            if used.saturating_add(i64::from(weight)) > i64::from(limit.capacity()) {
                false
            } else {
                sqlx::query(&sql.units_take)
                    .bind(limit.key())
                    .bind(holder.id.get())
                    .bind(holder.token.get())
                    .bind(i64::from(weight))
                    .bind(duration_micros(lease))
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                true
            }
        };
        tx.commit().await.map_err(store_error)?;
        Ok(granted)
    }

    async fn release_units(
        &self,
        limit: &GlobalConcurrency,
        holder: Lease,
    ) -> Result<(), StoreError> {
        let (_turn, mut conn) = self.writer().await?;
        let released = sqlx::query(&self.inner.sql.units_release)
            .bind(limit.key())
            .bind(holder.id.get())
            .bind(holder.token.get())
            .execute(&mut *conn)
            .await
            .map_err(store_error)?;
        if released.rows_affected() > 0 {
            self.inner.wakeups.wake_units(limit.key());
        }
        Ok(())
    }
}
