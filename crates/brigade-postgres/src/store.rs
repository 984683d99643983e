use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use brigade_queue::{
    Ack, Claim, ClaimRequest, DurableId, EnqueueError, Enqueued, GlobalConcurrency, GlobalRate,
    JobRecord, JobState, Lease, MAX_SCHEDULE_AHEAD, NewJob, QueueCounts, RateGrant, Rescued, Store,
    StoreError, Wakeups,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::{Notify, watch};

use crate::enqueue::{Refused, insert, needs_transaction};
use crate::error::{store_error, takes_a_live_key};
use crate::lock_wait::LockWait;
use crate::rows::{self, duration_micros, storable_text};
use crate::schema::Schema;
use crate::statements::Statements;
use crate::wakeups::{Channels, listen};

/// The schema a store uses unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "brigade";

/// The longest [`PgStoreBuilder::acquire_timeout`]: a call that waits longer for a
/// connection is better told the store is unavailable, and the pool's own arithmetic
/// stays far from overflow.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use brigade_postgres::{MAX_ACQUIRE_TIMEOUT, PgStore};
/// use brigade_queue::StoreError;
///
/// // Refused before anything connects: no server is asked.
/// let refused = PgStore::builder("postgres://127.0.0.1:1/nowhere")
///     .acquire_timeout(MAX_ACQUIRE_TIMEOUT + Duration::from_secs(1))
///     .connect()
///     .await;
/// assert!(matches!(refused, Err(StoreError::Invalid(_))));
/// # }
/// ```
pub const MAX_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3600);

/// A durable job queue in PostgreSQL: a [`Store`] for [`brigade_queue`]'s `Queue` and
/// `Worker`, plus enqueueing inside your own transaction.
///
/// Cloning is cheap and shares the connection pool.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use brigade_postgres::PgStore;
/// use brigade_queue::Queue;
///
/// let store = PgStore::connect("postgres://localhost/app").await?; // migrates the schema
/// let emails = Queue::new(store.clone(), "emails");
/// emails.enqueue("ada@example.test".to_string()).await?;
///
/// // Or inside a transaction of yours: the job exists exactly when it commits.
/// let mut tx = store.pool().begin().await?;
/// sqlx::query("UPDATE accounts SET welcomed = true WHERE id = 7").execute(&mut *tx).await?;
/// let job = emails.encode(&"grace@example.test".to_string(), Default::default())?;
/// store.enqueue_in(&mut tx, job).await?;
/// tx.commit().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    schema: Schema,
    sql: Statements,
    /// How long a call waits for a lock another session holds: the pool's acquire timeout.
    lock_wait: LockWait,
    wakeups: Arc<Wakeups>,
    /// Dropped with the last clone of the store: stops the listener.
    _closed: watch::Sender<()>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.inner.schema.name())
            .finish_non_exhaustive()
    }
}

/// Configures a [`PgStore`]: the schema, the pool, whether to migrate.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), brigade_queue::StoreError> {
/// let store = brigade_postgres::PgStore::builder("postgres://localhost/app")
///     .schema("jobs")
///     .max_connections(20)
///     .connect()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub struct PgStoreBuilder {
    url: String,
    schema: String,
    max_connections: u32,
    acquire_timeout: Duration,
    migrate: bool,
}

impl PgStoreBuilder {
    /// The schema holding the store's tables (default `brigade`): lowercase letters,
    /// digits and `_`. Stores on different schemas of one database are independent.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The most connections the store's calls use (default 10); the pool opens one more,
    /// which `LISTEN` keeps.
    pub fn max_connections(mut self, connections: u32) -> Self {
        self.max_connections = connections;
        self
    }

    /// How long a call waits for a free connection before it fails as unavailable
    /// (default 5 s; more than zero, at most [`MAX_ACQUIRE_TIMEOUT`]).
    ///
    /// It also bounds how long a call waits for a lock another session holds: a
    /// depth-capped enqueue for its queue's depth lock, a migration for the migration lock
    /// (and for the table locks its steps take). A call that waits longer fails as
    /// [`StoreError::Unavailable`], and a transaction of the store's own that sits idle
    /// for as long (its process paused or cut off) is ended by the server, so that the
    /// locks it holds do not stop every other host. Raise it if a migration of yours
    /// runs longer than that while other hosts start.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Whether `connect` brings the schema up to date (default true). Turn it off where
    /// migrations run as a deploy step ([`PgStore::migrate`]).
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Opens the pool, migrates unless told not to, and starts listening for wake-ups.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for a bad URL or schema name, zero connections or an
    /// acquire timeout out of range; [`StoreError::Unavailable`] when the server cannot be
    /// reached.
    pub async fn connect(self) -> Result<PgStore, StoreError> {
        if self.max_connections == 0 {
            return Err(StoreError::invalid("max_connections must be at least 1"));
        }
        if self.acquire_timeout.is_zero() || self.acquire_timeout > MAX_ACQUIRE_TIMEOUT {
            return Err(StoreError::invalid(
                "acquire_timeout must be more than zero and at most MAX_ACQUIRE_TIMEOUT (an hour)",
            ));
        }
        Schema::new(&self.schema)?;
        let options: PgConnectOptions = self
            .url
            .parse()
            .map_err(|error| StoreError::invalid(format!("bad PostgreSQL URL: {error}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections.saturating_add(1))
            .acquire_timeout(self.acquire_timeout)
            // A broken connection fails its query and is dropped then; a ping before every
            // use would double the round trips of every claim and ack.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(store_error)?;
        PgStore::with_pool(pool, &self.schema, self.migrate).await
    }
}

impl PgStore {
    /// Connects to `url` with the defaults (schema `brigade`, 10 connections) and migrates.
    ///
    /// # Errors
    ///
    /// As [`PgStoreBuilder::connect`].
    ///
    /// # Examples
    ///
    /// See [`PgStore`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// Starts configuring a store on `url`.
    ///
    /// # Examples
    ///
    /// See [`PgStoreBuilder`].
    pub fn builder(url: impl Into<String>) -> PgStoreBuilder {
        PgStoreBuilder {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            migrate: true,
        }
    }

    /// A store on a pool you already have, in `schema`, migrating it first when `migrate`.
    /// Its `LISTEN` keeps one of the pool's connections for as long as the store lives, so
    /// the pool needs at least two.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for a bad schema name or a pool of fewer than two
    /// connections; a store error if migrating fails.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(pool: sqlx::PgPool) -> Result<(), brigade_queue::StoreError> {
    /// let store = brigade_postgres::PgStore::with_pool(pool, "brigade", true).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn with_pool(pool: PgPool, schema: &str, migrate: bool) -> Result<Self, StoreError> {
        let schema = Schema::new(schema)?;
        if pool.options().get_max_connections() < 2 {
            return Err(StoreError::invalid(
                "the pool needs at least 2 connections: LISTEN keeps one for the store's life",
            ));
        }
        let sql = Statements::new(&schema);
        let lock_wait = LockWait::new(pool.options().get_acquire_timeout());
        let wakeups = Arc::new(Wakeups::default());
        let (closed, closed_rx) = watch::channel(());
        let store = PgStore {
            inner: Arc::new(Inner {
                pool,
                schema,
                sql,
                lock_wait,
                wakeups,
                _closed: closed,
            }),
        };
        if migrate {
            store.migrate().await?;
        }
        tokio::spawn(listen(
            store.inner.pool.clone(),
            Channels {
                jobs: store.inner.sql.channel.clone(),
                units: store.inner.sql.units_channel.clone(),
            },
            Arc::downgrade(&store.inner.wakeups),
            closed_rx,
        ));
        Ok(store)
    }

    /// Brings the schema up to the newest version this build knows; returns the versions
    /// applied (none when it was current). Safe to run from many processes at once: one
    /// migrates, the others wait for it, then find nothing left to do.
    ///
    /// # Errors
    ///
    /// A store error when the server fails or refuses a step (the whole run is rolled
    /// back); [`StoreError::Unavailable`] when another process held the migration lock
    /// (or a step waited on a table's lock) past the pool's acquire timeout
    /// ([`PgStoreBuilder::acquire_timeout`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(store: brigade_postgres::PgStore) -> Result<(), brigade_queue::StoreError> {
    /// assert!(store.migrate().await?.is_empty()); // connect already migrated
    /// # Ok(())
    /// # }
    /// ```
    pub async fn migrate(&self) -> Result<Vec<i32>, StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(store_error)?;
        crate::migrations::migrate(&mut conn, &self.inner.schema, self.inner.lock_wait)
            .await
            .map_err(store_error)
    }

    /// The connection pool, for your own queries and transactions.
    ///
    /// # Examples
    ///
    /// See [`PgStore`].
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The schema's name.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(store: brigade_postgres::PgStore) {
    /// assert_eq!(store.schema(), "brigade");
    /// # }
    /// ```
    #[must_use]
    pub fn schema(&self) -> &str {
        self.inner.schema.name()
    }

    /// Enqueues `job` on `conn`: inside a transaction, the job exists exactly when that
    /// transaction commits (and workers are woken then); a rollback leaves no trace.
    ///
    /// # Errors
    ///
    /// As [`Store::enqueue`], with the job handed back. A statement error aborts the
    /// caller's transaction, as any failed statement does in PostgreSQL, except for a
    /// depth-capped job: it is inserted in a savepoint, so a full queue, or a depth lock
    /// held elsewhere past the acquire timeout ([`StoreError::Unavailable`]), leaves the
    /// transaction usable, its own settings as they were.
    ///
    /// A depth-capped job is refused with [`StoreError::Invalid`] (the transaction left
    /// usable) in a REPEATABLE READ or SERIALIZABLE transaction: the queue's depth would
    /// be read in the transaction's snapshot, taken before the depth lock was granted, so
    /// the jobs other producers committed since would not count and the cap could be
    /// overrun. Enqueue it in a READ COMMITTED transaction (PostgreSQL's default, unless
    /// `default_transaction_isolation` says otherwise), or outside one.
    ///
    /// # Examples
    ///
    /// See [`PgStore`].
    pub async fn enqueue_in(
        &self,
        conn: &mut PgConnection,
        job: NewJob,
    ) -> Result<Enqueued, EnqueueError<NewJob>> {
        let inserted = insert(
            conn,
            &self.inner.sql,
            self.inner.lock_wait,
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

    /// Enqueues `jobs` on `conn`, all or none, as [`PgStore::enqueue_in`].
    ///
    /// # Errors
    ///
    /// As [`Store::enqueue_batch`], and as [`PgStore::enqueue_in`] for depth-capped jobs
    /// in the caller's transaction.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(store: brigade_postgres::PgStore, jobs: Vec<brigade_queue::NewJob>) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = store.pool().begin().await?;
    /// store.enqueue_batch_in(&mut tx, jobs).await?;
    /// tx.commit().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn enqueue_batch_in(
        &self,
        conn: &mut PgConnection,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, EnqueueError<Vec<NewJob>>> {
        insert(conn, &self.inner.sql, self.inner.lock_wait, &jobs)
            .await
            .map_err(|refused| refusal(jobs, refused))
    }

    /// Deletes finished jobs older than `keep` every `every` (at least
    /// [`MIN_RETENTION_INTERVAL`](brigade_queue::MIN_RETENTION_INTERVAL)), until the
    /// returned task is aborted or the runtime stops: retention as a periodic task
    /// ([`brigade_queue::spawn_retention`]). Any number of hosts may run it.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(store: brigade_postgres::PgStore) {
    /// use std::time::Duration;
    /// let retention = store.spawn_retention(Duration::from_secs(600), Duration::from_secs(7 * 86_400));
    /// // ... at shutdown:
    /// retention.abort();
    /// # }
    /// ```
    pub fn spawn_retention(&self, every: Duration, keep: Duration) -> tokio::task::JoinHandle<()> {
        brigade_queue::spawn_retention(self.clone(), every, keep)
    }

    async fn transition(
        &self,
        statement: &str,
        lease: Lease,
        extra: impl FnOnce(Query<'_>) -> Query<'_>,
    ) -> Result<Ack, StoreError> {
        let query = sqlx::query(statement)
            .bind(lease.id.get())
            .bind(lease.token.get());
        let result = extra(query)
            .execute(&self.inner.pool)
            .await
            .map_err(store_error)?;
        Ok(if result.rows_affected() == 1 {
            Ack::Recorded
        } else {
            Ack::Stale
        })
    }

    async fn notify(&self, queue: &str) {
        let sent = sqlx::query(&self.inner.sql.notify)
            .bind(&self.inner.sql.channel)
            .bind(queue)
            .execute(&self.inner.pool)
            .await;
        if let Err(error) = sent {
            // Only a hint: the workers' polling finds the job anyway.
            tracing::debug!(%error, "wake-up not sent");
        }
    }
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// How many times [`Store::replay_all`] runs when enqueues keep taking the keys of the
/// dead jobs it replays while it runs; past that it answers as unavailable (try later).
const REPLAY_ALL_TRIES: u32 = 5;

fn refusal<T>(job: T, refused: Refused) -> EnqueueError<T> {
    match refused {
        Refused::Full => EnqueueError::Full(job),
        Refused::Store(error) => EnqueueError::Store(job, error),
    }
}

#[async_trait]
impl Store for PgStore {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, EnqueueError<NewJob>> {
        if needs_transaction(std::slice::from_ref(&job)) {
            // Through the batch's own task (below), as a batch of one.
            let spare = job.clone();
            return match self.enqueue_batch(vec![job]).await {
                Ok(enqueued) => enqueued.into_iter().next().ok_or_else(|| {
                    EnqueueError::Store(spare, StoreError::Corrupt("insert returned no row".into()))
                }),
                Err(refused) => Err(refused.map(|_| spare)),
            };
        }
        let mut conn = match self.inner.pool.acquire().await {
            Ok(conn) => conn,
            Err(error) => return Err(EnqueueError::Store(job, store_error(error))),
        };
        self.enqueue_in(&mut conn, job).await
    }

    async fn enqueue_batch(
        &self,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, EnqueueError<Vec<NewJob>>> {
        let mut conn = match self.inner.pool.acquire().await {
            Ok(conn) => conn,
            Err(error) => return Err(EnqueueError::Store(jobs, store_error(error))),
        };
        if !needs_transaction(&jobs) {
            return self.enqueue_batch_in(&mut conn, jobs).await;
        }
        // A depth cap takes a transaction (the count and the insert must see the same
        // queue), and so does a batch with unique keys (a duplicate's follow-up statements
        // must not leave the rest of the batch committed when they fail). A dropped future
        // does not end one cleanly on sqlx 0.8: a `BEGIN` dropped while it waits for the
        // server's answer leaves the session in a transaction sqlx does not count, and a
        // transaction dropped later only queues its rollback until the connection's next
        // use. Either way the connection goes back to the pool idle in a transaction, in
        // the second case holding the queue's depth lock (or the batch's unique keys),
        // which every later capped enqueue of that queue (or enqueue of those keys) then
        // waits on. So the transaction runs in a task of its own: a caller that stops
        // waiting (a timeout, a dropped request) abandons only the wait, and the
        // transaction commits or rolls back as if it had waited. The caller's own
        // transactions (`enqueue_in`) end with the caller's `Transaction`.
        // The task borrows the jobs through an `Arc`; once it has ended (finished or
        // dropped), the caller owns them again to hand back with a refusal.
        let jobs = Arc::new(jobs);
        let task = {
            let (store, jobs) = (self.clone(), Arc::clone(&jobs));
            tokio::spawn(async move {
                let mut conn = conn;
                insert(&mut conn, &store.inner.sql, store.inner.lock_wait, &jobs).await
            })
        };
        let ended = task.await;
        let jobs = Arc::try_unwrap(jobs).unwrap_or_else(|jobs| jobs.as_ref().clone());
        match ended {
            Ok(inserted) => inserted.map_err(|refused| refusal(jobs, refused)),
            Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
            Err(cancelled) => Err(EnqueueError::Store(
                jobs,
                StoreError::Unavailable(cancelled.to_string().into()),
            )),
        }
    }

    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Vec<Claim>, StoreError> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&self.inner.sql.claim)
            .bind(request.queue)
            .bind(i64::try_from(request.limit).unwrap_or(i64::MAX))
            .bind(request.worker)
            .bind(duration_micros(request.lease))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(store_error)?;
        // In the order they were picked (the statement sorts them).
        rows.iter()
            .map(rows::claim)
            .collect::<Result<Vec<_>, _>>()
            .map_err(store_error)
    }

    async fn heartbeat(&self, leases: &[Lease], lease: Duration) -> Result<Vec<Lease>, StoreError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = leases.iter().map(|lease| lease.id.get()).collect();
        let tokens: Vec<i64> = leases.iter().map(|lease| lease.token.get()).collect();
        let rows = sqlx::query(&self.inner.sql.heartbeat)
            .bind(&ids)
            .bind(&tokens)
            .bind(duration_micros(lease))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                let id = row.try_get("id")?;
                let token = row.try_get("lease_token")?;
                Ok(Lease::new(
                    DurableId::new(id),
                    brigade_queue::FencingToken::new(token),
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(store_error)
    }

    async fn complete(&self, lease: Lease) -> Result<Ack, StoreError> {
        self.transition(&self.inner.sql.complete, lease, |query| query)
            .await
    }

    async fn complete_many(&self, leases: &[Lease]) -> Vec<Result<Ack, StoreError>> {
        let ids: Vec<i64> = leases.iter().map(|lease| lease.id.get()).collect();
        let tokens: Vec<i64> = leases.iter().map(|lease| lease.token.get()).collect();
        let recorded = sqlx::query(&self.inner.sql.complete_many)
            .bind(&ids)
            .bind(&tokens)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(store_error)
            .and_then(|rows| {
                rows.iter()
                    .map(|row| {
                        Ok((
                            row.try_get::<i64, _>("id")?,
                            row.try_get::<i64, _>("lease_token")?,
                        ))
                    })
                    .collect::<Result<HashSet<(i64, i64)>, sqlx::Error>>()
                    .map_err(store_error)
            });
        match recorded {
            // A lease listed twice was recorded once: its second ack is refused, as a
            // second ack sent on its own would be.
            Ok(mut recorded) => leases
                .iter()
                .map(|lease| {
                    let done = recorded.remove(&(lease.id.get(), lease.token.get()));
                    Ok(if done { Ack::Recorded } else { Ack::Stale })
                })
                .collect(),
            // One statement: nothing was recorded, and every ack hears why.
            Err(error) => leases.iter().map(|_| Err(error.replicate())).collect(),
        }
    }

    async fn retry(&self, lease: Lease, delay: Duration, error: &str) -> Result<Ack, StoreError> {
        let error = storable_text(error);
        // No later than an enqueue may schedule a job: past that the server's time
        // arithmetic fails, the end would never be recorded, and the job would run again
        // as soon as its lease ran out.
        let delay = delay.min(MAX_SCHEDULE_AHEAD);
        self.transition(&self.inner.sql.retry, lease, |query| {
            query.bind(duration_micros(delay)).bind(error)
        })
        .await
    }

    async fn bury(&self, lease: Lease, error: &str) -> Result<Ack, StoreError> {
        let error = storable_text(error);
        self.transition(&self.inner.sql.bury, lease, |query| query.bind(error))
            .await
    }

    async fn release(&self, lease: Lease) -> Result<Ack, StoreError> {
        let queue: Option<String> = sqlx::query_scalar(&self.inner.sql.release)
            .bind(lease.id.get())
            .bind(lease.token.get())
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(store_error)?;
        match queue {
            Some(queue) => {
                self.notify(&queue).await;
                Ok(Ack::Recorded)
            }
            None => Ok(Ack::Stale),
        }
    }

    async fn rescue(&self, queue: &str) -> Result<Rescued, StoreError> {
        let states: Vec<String> = sqlx::query_scalar(&self.inner.sql.rescue)
            .bind(queue)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(store_error)?;
        let dead = states
            .iter()
            .filter(|state| state.as_str() == "dead")
            .count() as u64;
        let rescued = Rescued {
            requeued: states.len() as u64 - dead,
            dead,
        };
        if rescued.requeued > 0 {
            self.notify(queue).await;
        }
        Ok(rescued)
    }

    fn wakeup(&self, queue: &str) -> Arc<Notify> {
        self.inner.wakeups.queue(queue)
    }

    fn units_wakeup(&self, limit: &str) -> Arc<Notify> {
        self.inner.wakeups.units(limit)
    }

    fn check_name(&self, name: &str) -> Result<(), &'static str> {
        if rows::is_valid_name(name) {
            Ok(())
        } else {
            Err(rows::NAME_RULE)
        }
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
        let replayed = sqlx::query_scalar(&self.inner.sql.replay)
            .bind(id.get())
            .fetch_optional(&self.inner.pool)
            .await;
        let queue: Option<String> = match replayed {
            Ok(queue) => queue,
            // An enqueue (or another replay) of the key committed first: the job stays
            // dead, as when the key was taken before the replay began.
            Err(error) if takes_a_live_key(&error) => None,
            Err(error) => return Err(store_error(error)),
        };
        if let Some(queue) = &queue {
            self.notify(queue).await;
        }
        Ok(queue.is_some())
    }

    async fn replay_all(&self, queue: &str) -> Result<u64, StoreError> {
        // A key taken by a transaction that committed while the statement ran fails the
        // whole statement; run again, it sees that job live and leaves the dead one. Only
        // keys committed during the previous try fail the next one, so a few tries
        // suffice unless producers keep taking the dead jobs' keys at that very moment.
        let mut tries = 0;
        let replayed = loop {
            let replayed = sqlx::query(&self.inner.sql.replay_all)
                .bind(queue)
                .execute(&self.inner.pool)
                .await;
            match replayed {
                Ok(done) => break done.rows_affected(),
                Err(error) if takes_a_live_key(&error) && tries + 1 < REPLAY_ALL_TRIES => {
                    tries += 1;
                }
                Err(error) if takes_a_live_key(&error) => {
                    return Err(StoreError::Unavailable(Box::new(error)));
                }
                Err(error) => return Err(store_error(error)),
            }
        };
        if replayed > 0 {
            self.notify(queue).await;
        }
        Ok(replayed)
    }

    async fn cancel(&self, id: DurableId) -> Result<bool, StoreError> {
        let result = sqlx::query(&self.inner.sql.cancel)
            .bind(id.get())
            .execute(&self.inner.pool)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn purge_finished(
        &self,
        older_than: Duration,
        include_dead: bool,
    ) -> Result<u64, StoreError> {
        // Nothing finished more than a century ago, and a longer span leaves the range of
        // PostgreSQL's interval arithmetic: keeping everything is keeping a century.
        let older_than = older_than.min(MAX_SCHEDULE_AHEAD);
        let mut purged = 0;
        loop {
            let deleted = sqlx::query(&self.inner.sql.purge)
                .bind(duration_micros(older_than))
                .bind(include_dead)
                .execute(&self.inner.pool)
                .await
                .map_err(store_error)?
                .rows_affected();
            purged += deleted;
            if deleted < 10_000 {
                return Ok(purged);
            }
        }
    }

    async fn take_rate(&self, limit: &GlobalRate, want: u32) -> Result<RateGrant, StoreError> {
        let row = sqlx::query(&self.inner.sql.take_rate)
            .bind(limit.key())
            .bind(duration_micros(limit.interval()))
            .bind(i32::try_from(limit.burst_size()).unwrap_or(i32::MAX))
            .bind(i32::try_from(want).unwrap_or(i32::MAX))
            .fetch_one(&self.inner.pool)
            .await
            .map_err(store_error)?;
        let granted: i32 = row.try_get("granted").map_err(store_error)?;
        let retry_after: i64 = row.try_get("retry_after_us").map_err(store_error)?;
        Ok(RateGrant {
            granted: granted.unsigned_abs(),
            retry_after: Duration::from_micros(retry_after.unsigned_abs()),
        })
    }

    async fn acquire_units(
        &self,
        limit: &GlobalConcurrency,
        holder: Lease,
        weight: u32,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        sqlx::query_scalar(&self.inner.sql.acquire_units)
            .bind(limit.key())
            .bind(i32::try_from(limit.capacity()).unwrap_or(i32::MAX))
            .bind(holder.id.get())
            .bind(holder.token.get())
            .bind(i32::try_from(weight).unwrap_or(i32::MAX))
            .bind(duration_micros(lease))
            .fetch_one(&self.inner.pool)
            .await
            .map_err(store_error)
    }

    async fn release_units(
        &self,
        limit: &GlobalConcurrency,
        holder: Lease,
    ) -> Result<(), StoreError> {
        sqlx::query(&self.inner.sql.release_units)
            .bind(limit.key())
            .bind(holder.id.get())
            .bind(holder.token.get())
            .bind(&self.inner.sql.units_channel)
            .execute(&self.inner.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
