use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use brigade_queue::{
    Ack, Claim, ClaimRequest, DurableId, EnqueueError, Enqueued, GlobalConcurrency, GlobalRate,
    JobRecord, Lease, NewJob, QueueCounts, RateGrant, Rescued, RunAt, Store, StoreError, Wakeups,
};
use redis::aio::ConnectionManager;
use redis::{Script, ScriptInvocation, Value};
use tokio::sync::{Notify, watch};

use crate::connection::{connect, store_error};
use crate::keys::{self, Keys};
use crate::limits::UnitHolders;
use crate::records::{self, ClaimRow, duration_micros, to_micros};
use crate::scripts::Scripts;
use crate::wakeups::{Channels, listen};

/// The key prefix a store uses unless told otherwise.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), brigade_queue::StoreError> {
/// let store = brigade_redis::RedisStore::connect("redis://127.0.0.1:6379").await?;
/// assert_eq!(store.prefix(), brigade_redis::DEFAULT_PREFIX);
/// # Ok(())
/// # }
/// ```
pub const DEFAULT_PREFIX: &str = "brigade";

/// How many jobs one pass of retention, replay-all or rescue handles in one script, so no
/// script holds the server for long.
const SLICE: usize = 1000;

/// A durable job queue in Redis (7.0 or newer): a [`Store`] for [`brigade_queue`]'s `Queue`
/// and `Worker`.
///
/// Each queue is a set of keys sharing the hash tag `{queue}`: a stream per priority level
/// read through a consumer group, a hash per job, sorted sets of scheduled jobs, leases and
/// dead letters. Every transition is one Lua script, so it is atomic and fenced by the
/// job's current token. See the crate docs for the data model and what persistence
/// settings guarantee.
///
/// Cloning is cheap and shares the connection.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use brigade_queue::Queue;
/// use brigade_redis::RedisStore;
///
/// let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
/// let emails = Queue::new(store.clone(), "emails");
/// emails.enqueue("ada@example.test".to_string()).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    keys: Keys,
    scripts: Scripts,
    wakeups: Arc<Wakeups>,
    /// Dropped with the last clone of the store: stops the wake-up subscriber.
    _closed: watch::Sender<()>,
    /// The queue of each job this process holds a lease on: acks and heartbeats name only
    /// the job, and its queue picks the keys (a job never changes queue, so this can only
    /// be missing, never wrong).
    leased_queues: Mutex<HashMap<i64, Arc<str>>>,
    /// Queues already recorded in the store's queue set by this process.
    known_queues: Mutex<HashSet<String>>,
    units: UnitHolders,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.keys.prefix())
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisStore`]: the key prefix and how long a call may wait for the server.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), brigade_queue::StoreError> {
/// use std::time::Duration;
///
/// let store = brigade_redis::RedisStore::builder("redis://127.0.0.1:6379")
///     .prefix("billing")
///     .response_timeout(Duration::from_secs(2))
///     .connect()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    response_timeout: Duration,
}

impl RedisStoreBuilder {
    /// The prefix of every key the store writes (default `brigade`); no braces. Stores with
    /// different prefixes on one server are independent.
    ///
    /// # Examples
    ///
    /// See [`RedisStoreBuilder`].
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a call waits to connect or for an answer before it fails as unavailable
    /// (default 5 s).
    ///
    /// # Examples
    ///
    /// See [`RedisStoreBuilder`].
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Connects.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for a bad URL or prefix; [`StoreError::Unavailable`] when the
    /// server cannot be reached.
    ///
    /// # Examples
    ///
    /// See [`RedisStoreBuilder`].
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let keys = Keys::new(&self.prefix)?;
        let (client, conn) = connect(&self.url, self.response_timeout).await?;
        let wakeups = Arc::new(Wakeups::default());
        let (closed, closed_rx) = watch::channel(());
        tokio::spawn(listen(
            client,
            Channels {
                jobs: keys.jobs_channel(),
                units: keys.units_channel(),
            },
            Arc::downgrade(&wakeups),
            closed_rx,
        ));
        Ok(RedisStore {
            inner: Arc::new(Inner {
                conn,
                keys,
                scripts: Scripts::new(),
                wakeups,
                _closed: closed,
                leased_queues: Mutex::default(),
                known_queues: Mutex::default(),
                units: UnitHolders::default(),
            }),
        })
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://[user:password@]host:port[/db]`) with the default
    /// prefix. TLS (`rediss://`) needs one of the `redis` crate's TLS features turned on in
    /// your build.
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::connect`].
    ///
    /// # Examples
    ///
    /// See [`RedisStore`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// Starts configuring a store on `url`.
    ///
    /// # Examples
    ///
    /// See [`RedisStoreBuilder`].
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            response_timeout: Duration::from_secs(5),
        }
    }

    /// The prefix of every key of this store.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(store: brigade_redis::RedisStore) {
    /// assert_eq!(store.prefix(), "brigade");
    /// # }
    /// ```
    #[must_use]
    pub fn prefix(&self) -> &str {
        self.inner.keys.prefix()
    }

    /// The store's connection, for your own commands (it reconnects by itself).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(store: brigade_redis::RedisStore) -> redis::RedisResult<()> {
    /// let mut conn = store.connection();
    /// let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
    /// assert_eq!(pong, "PONG");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn connection(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// Deletes finished jobs older than `keep` every `every`, until the returned task is
    /// aborted or the runtime stops: retention as a periodic task. Any number of hosts may
    /// run it.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(store: brigade_redis::RedisStore) {
    /// use std::time::Duration;
    /// let retention = store.spawn_retention(Duration::from_secs(600), Duration::from_secs(86_400));
    /// // ... at shutdown:
    /// retention.abort();
    /// # }
    /// ```
    pub fn spawn_retention(&self, every: Duration, keep: Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                match store.purge_finished(keep, false).await {
                    Ok(0) => {}
                    Ok(purged) => tracing::info!(purged, "retention deleted finished jobs"),
                    Err(error) => {
                        tracing::warn!(%error, "retention failed; trying again next round")
                    }
                }
                tokio::time::sleep(every).await;
            }
        })
    }

    /// Claims from a claim script's rows; this process remembers each claimed job's queue.
    fn claimed(&self, rows: Vec<ClaimRow>, queue: &str) -> Result<Vec<Claim>, StoreError> {
        let claims = rows
            .into_iter()
            .map(|row| records::claim(row, queue))
            .collect::<Result<Vec<_>, _>>()?;
        if !claims.is_empty() {
            let queue: Arc<str> = Arc::from(queue);
            let mut leased = lock(&self.inner.leased_queues);
            for claim in &claims {
                leased.insert(claim.id.get(), Arc::clone(&queue));
            }
        }
        Ok(claims)
    }

    /// The indices of `leases` by queue; a lease whose job is gone or whose queue cannot be
    /// read gets its answer here.
    async fn by_queue(
        &self,
        leases: &[Lease],
        answers: &mut Answers,
    ) -> HashMap<Arc<str>, Vec<usize>> {
        let mut by_queue: HashMap<Arc<str>, Vec<usize>> = HashMap::new();
        for (at, lease) in leases.iter().enumerate() {
            match self.queue_of(lease.id).await {
                Ok(Some(queue)) => by_queue.entry(queue).or_default().push(at),
                Ok(None) => answers.set(at, Ok(Ack::Stale)),
                Err(error) => answers.set(at, Err(error)),
            }
        }
        by_queue
    }

    /// Answers the acks at `indices` of `leases` from one script's reply (1 recorded, 0
    /// stale); a recorded job's queue is forgotten.
    fn acked(
        &self,
        leases: &[Lease],
        indices: &[usize],
        acked: Result<Vec<i64>, StoreError>,
        answers: &mut Answers,
    ) {
        match acked {
            Ok(done) if done.len() == indices.len() => {
                let mut leased = lock(&self.inner.leased_queues);
                for (&at, done) in indices.iter().zip(done) {
                    leased.remove(&leases[at].id.get());
                    answers.set(at, Ok(if done == 1 { Ack::Recorded } else { Ack::Stale }));
                }
            }
            Ok(done) => {
                let error = StoreError::Corrupt(format!(
                    "{} answers to {} acks",
                    done.len(),
                    indices.len()
                ));
                for &at in indices {
                    answers.set(at, Err(error.replicate()));
                }
            }
            // One script: nothing of this queue was recorded, and every ack hears why.
            Err(error) => {
                for &at in indices {
                    answers.set(at, Err(error.replicate()));
                }
            }
        }
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut conn = self.inner.conn.clone();
        invocation
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)
    }

    async fn command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.inner.conn.clone();
        cmd.query_async(&mut conn).await.map_err(store_error)
    }

    /// The queue of job `id`: from the leases this process holds, else from the store.
    async fn queue_of(&self, id: DurableId) -> Result<Option<Arc<str>>, StoreError> {
        if let Some(queue) = lock(&self.inner.leased_queues).get(&id.get()) {
            return Ok(Some(Arc::clone(queue)));
        }
        let queue: Option<String> = self
            .command(
                redis::cmd("HGET")
                    .arg(self.inner.keys.id_queues())
                    .arg(id.get()),
            )
            .await?;
        Ok(queue.map(Arc::from))
    }

    async fn remember_queue(&self, queue: &str) -> Result<(), StoreError> {
        if lock(&self.inner.known_queues).contains(queue) {
            return Ok(());
        }
        let _: i64 = self
            .command(redis::cmd("SADD").arg(self.inner.keys.queues()).arg(queue))
            .await?;
        lock(&self.inner.known_queues).insert(queue.to_owned());
        Ok(())
    }

    async fn forget_ids(&self, ids: &[i64]) -> Result<(), StoreError> {
        for slice in ids.chunks(SLICE) {
            let _: i64 = self
                .command(
                    redis::cmd("HDEL")
                        .arg(self.inner.keys.id_queues())
                        .arg(slice),
                )
                .await?;
        }
        Ok(())
    }

    /// Enqueues a batch of one queue's jobs.
    async fn insert(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>, Refused> {
        check_options(jobs)?;
        let Some(first) = jobs.first() else {
            return Ok(Vec::new());
        };
        let queue = first.queue();
        let base = self.inner.keys.queue_base(queue)?;
        self.remember_queue(queue).await?;
        let count = jobs.len() as i64;
        let last: i64 = self
            .run(&invocation!(self.inner.scripts.allocate_ids, keys: [&self.inner.keys.id_counter(), &self.inner.keys.id_queues()], args: [&queue, &count]))
            .await?;
        let ids: Vec<i64> = (last - count + 1..=last).collect();

        let capped: Vec<u64> = jobs.iter().filter_map(NewJob::max_depth).collect();
        let cap = capped.iter().min().map_or(String::new(), u64::to_string);
        let mut invocation = self.inner.scripts.enqueue.prepare_invoke();
        invocation
            .arg(&base)
            .arg(queue)
            .arg(cap)
            .arg(capped.len())
            .arg(jobs.len());
        for (job, id) in jobs.iter().zip(&ids) {
            let options = job.options();
            let (run_at, delay) = match options.run_at_value() {
                Some(RunAt::Time(time)) => (to_micros(time).to_string(), String::new()),
                Some(RunAt::After(delay)) => (String::new(), duration_micros(delay).to_string()),
                None => (String::new(), String::new()),
            };
            let payload = serde_json::to_string(job.payload())
                .map_err(|error| StoreError::invalid(format!("payload: {error}")))?;
            invocation
                .arg(id)
                .arg(payload)
                .arg(options.priority_value())
                .arg(run_at)
                .arg(delay)
                .arg(
                    options
                        .unique_key_value()
                        .map_or(String::new(), |key| format!("={key}")),
                )
                .arg(job.max_attempts());
        }
        let mut conn = self.inner.conn.clone();
        let answer: Value = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)?;
        if let Value::Int(-1) = answer {
            self.forget_ids(&ids).await?;
            return Err(Refused::Full);
        }
        let rows: Vec<(i64, i64)> = redis::FromRedisValue::from_redis_value(answer)
            .map_err(|error| StoreError::Corrupt(format!("enqueue answer: {error}")))?;
        let unused: Vec<i64> = ids
            .iter()
            .zip(&rows)
            .filter(|(_, (_, added))| *added == 0)
            .map(|(id, _)| *id)
            .collect();
        if !unused.is_empty() {
            self.forget_ids(&unused).await?;
        }
        self.inner.wakeups.wake_queue(queue);
        Ok(rows
            .into_iter()
            .map(|(id, added)| Enqueued {
                id: DurableId::new(id),
                duplicate: added == 0,
            })
            .collect())
    }

    /// Runs a transition that ends the run under `lease`: `extra` are the script's
    /// arguments after the queue's base, the id and the token.
    async fn end_run(
        &self,
        script: &Script,
        lease: Lease,
        extra: &[String],
    ) -> Result<(Ack, Option<Arc<str>>), StoreError> {
        let Some(queue) = self.queue_of(lease.id).await? else {
            return Ok((Ack::Stale, None));
        };
        let base = self.inner.keys.queue_base(&queue)?;
        let id = lease.id.get();
        let mut invocation = invocation!(script, keys: [], args: [&base, id, lease.token.get()]);
        for arg in extra {
            invocation.arg(arg);
        }
        let done: i64 = self.run(&invocation).await?;
        lock(&self.inner.leased_queues).remove(&id);
        let ack = if done == 1 { Ack::Recorded } else { Ack::Stale };
        Ok((ack, Some(queue)))
    }
}

/// An invocation of `script` with `keys` and `args`.
macro_rules! invocation {
    ($script:expr, keys: [$($key:expr),*], args: [$($arg:expr),*]) => {{
        let mut invocation = $script.prepare_invoke();
        $(invocation.key($key);)*
        $(invocation.arg($arg);)*
        invocation
    }};
}
use invocation;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The most jobs one batch enqueues on Redis. A batch is one script, and a script holds
/// the whole server while it runs: other clients' calls, workers' heartbeats among them,
/// wait behind it. A larger batch is refused whole (`StoreError::Invalid`, every job
/// handed back): split it, each part enqueued all or nothing.
///
/// # Examples
///
/// ```
/// use brigade_queue::NewJob;
///
/// let jobs: Vec<NewJob> = (0..25_000)
///     .map(|n| NewJob::new("emails", serde_json::json!(n)))
///     .collect();
/// // One `enqueue_batch` call per part.
/// assert_eq!(jobs.chunks(brigade_redis::MAX_BATCH).count(), 3);
/// ```
pub const MAX_BATCH: usize = 10_000;

/// The options no script should see: an empty queue name, zero attempts, a batch
/// spanning queues (one script runs on one queue's slot) or larger than [`MAX_BATCH`].
fn check_options(jobs: &[NewJob]) -> Result<(), StoreError> {
    if jobs.len() > MAX_BATCH {
        return Err(StoreError::invalid(format!(
            "a batch on Redis holds at most MAX_BATCH ({MAX_BATCH}) jobs, not {}: one script \
             holds the server while it runs",
            jobs.len()
        )));
    }
    let queue = jobs.first().map(NewJob::queue);
    for job in jobs {
        job.validate()?;
        if Some(job.queue()) != queue {
            return Err(StoreError::invalid(
                "a batch on Redis holds jobs of one queue: each queue is one hash slot, and a \
                 batch is atomic only within one",
            ));
        }
    }
    Ok(())
}

/// Why an enqueue script added nothing.
enum Refused {
    Full,
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(error: StoreError) -> Self {
        Refused::Store(error)
    }
}

fn refusal<T>(job: T, refused: Refused) -> EnqueueError<T> {
    match refused {
        Refused::Full => EnqueueError::Full(job),
        Refused::Store(error) => EnqueueError::Store(job, error),
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, EnqueueError<NewJob>> {
        match self.insert(std::slice::from_ref(&job)).await {
            Ok(enqueued) => enqueued.into_iter().next().ok_or_else(|| {
                EnqueueError::Store(job, StoreError::Corrupt("enqueue returned no job".into()))
            }),
            Err(refused) => Err(refusal(job, refused)),
        }
    }

    async fn enqueue_batch(
        &self,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, EnqueueError<Vec<NewJob>>> {
        self.insert(&jobs)
            .await
            .map_err(|refused| refusal(jobs, refused))
    }

    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Vec<Claim>, StoreError> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let base = self.inner.keys.queue_base(request.queue)?;
        let rows: Vec<ClaimRow> = self
            .run(&invocation!(self.inner.scripts.claim, keys: [], args: [&base, request.worker, request.limit, duration_micros(request.lease)]))
            .await?;
        self.claimed(rows, request.queue)
    }

    async fn heartbeat(&self, leases: &[Lease], lease: Duration) -> Result<Vec<Lease>, StoreError> {
        let mut by_queue: HashMap<Arc<str>, Vec<Lease>> = HashMap::new();
        for held in leases {
            if let Some(queue) = self.queue_of(held.id).await? {
                by_queue.entry(queue).or_default().push(*held);
            }
        }
        let lease_us = duration_micros(lease);
        let mut renewed = Vec::with_capacity(leases.len());
        for (queue, held) in by_queue {
            let base = self.inner.keys.queue_base(&queue)?;
            let mut invocation = self.inner.scripts.heartbeat.prepare_invoke();
            invocation.arg(&base).arg(lease_us);
            for lease in &held {
                invocation.arg(lease.id.get()).arg(lease.token.get());
            }
            let mut conn = self.inner.conn.clone();
            let ids: Vec<i64> = invocation
                .invoke_async(&mut conn)
                .await
                .map_err(store_error)?;
            let ids: HashSet<i64> = ids.into_iter().collect();
            renewed.extend(
                held.into_iter()
                    .filter(|lease| ids.contains(&lease.id.get())),
            );
        }
        for held in &renewed {
            for limit in self.inner.units.held_by(*held) {
                let (holders, _) = self.inner.keys.units(&limit)?;
                let _: i64 = self
                    .run(&invocation!(self.inner.scripts.renew_units, keys: [&holders], args: [&UnitHolders::member(*held), &lease_us]))
                    .await?;
            }
        }
        Ok(renewed)
    }

    async fn complete(&self, lease: Lease) -> Result<Ack, StoreError> {
        Ok(self
            .end_run(&self.inner.scripts.complete, lease, &[])
            .await?
            .0)
    }

    async fn complete_many(&self, leases: &[Lease]) -> Vec<Result<Ack, StoreError>> {
        // One script per queue (one slot each): usually all the leases are of one queue.
        let mut answers = Answers::new(leases.len());
        for (queue, indices) in self.by_queue(leases, &mut answers).await {
            let acked = match self.inner.keys.queue_base(&queue) {
                Ok(base) => {
                    let mut invocation =
                        invocation!(self.inner.scripts.complete_many, keys: [], args: [&base]);
                    for &at in &indices {
                        invocation
                            .arg(leases[at].id.get())
                            .arg(leases[at].token.get());
                    }
                    self.run::<Vec<i64>>(&invocation).await
                }
                Err(error) => Err(error),
            };
            self.acked(leases, &indices, acked, &mut answers);
        }
        answers.finish()
    }

    /// One script records the acks and claims: one round trip, one write to the
    /// append-only file (with `appendfsync always`, one flush of the disk) for both.
    fn claims_carry_acks(&self) -> bool {
        true
    }

    async fn complete_and_claim(
        &self,
        completed: &[Lease],
        request: ClaimRequest<'_>,
    ) -> (Vec<Result<Ack, StoreError>>, Result<Vec<Claim>, StoreError>) {
        let base = match self.inner.keys.queue_base(request.queue) {
            Ok(base) if request.limit > 0 => base,
            _ => {
                let acks = self.complete_many(completed).await;
                return (acks, self.claim(request).await);
            }
        };
        let mut answers = Answers::new(completed.len());
        let mut claimed = None;
        for (queue, indices) in self.by_queue(completed, &mut answers).await {
            if *queue != *request.queue {
                // A store shared by workers of several queues: these go on their own.
                let others: Vec<Lease> = indices.iter().map(|&at| completed[at]).collect();
                for (&at, answer) in indices.iter().zip(self.complete_many(&others).await) {
                    answers.set(at, answer);
                }
                continue;
            }
            let mut invocation = invocation!(self.inner.scripts.complete_and_claim, keys: [], args: [&base, request.worker, request.limit, duration_micros(request.lease)]);
            for &at in &indices {
                invocation
                    .arg(completed[at].id.get())
                    .arg(completed[at].token.get());
            }
            match self.run::<(Vec<i64>, Vec<ClaimRow>)>(&invocation).await {
                Ok((acked, rows)) => {
                    self.acked(completed, &indices, Ok(acked), &mut answers);
                    claimed = Some(self.claimed(rows, request.queue));
                }
                Err(error) => {
                    self.acked(completed, &indices, Err(error.replicate()), &mut answers);
                    claimed = Some(Err(error));
                }
            }
        }
        let claimed = match claimed {
            Some(claimed) => claimed,
            None => self.claim(request).await,
        };
        (answers.finish(), claimed)
    }

    async fn retry(&self, lease: Lease, delay: Duration, error: &str) -> Result<Ack, StoreError> {
        let delay = duration_micros(delay);
        Ok(self
            .end_run(
                &self.inner.scripts.retry,
                lease,
                &[delay.to_string(), error.to_owned()],
            )
            .await?
            .0)
    }

    async fn bury(&self, lease: Lease, error: &str) -> Result<Ack, StoreError> {
        Ok(self
            .end_run(&self.inner.scripts.bury, lease, &[error.to_owned()])
            .await?
            .0)
    }

    async fn release(&self, lease: Lease) -> Result<Ack, StoreError> {
        let (ack, queue) = self
            .end_run(&self.inner.scripts.release, lease, &[])
            .await?;
        if let (Ack::Recorded, Some(queue)) = (ack, queue) {
            self.inner.wakeups.wake_queue(&queue);
        }
        Ok(ack)
    }

    async fn rescue(&self, queue: &str) -> Result<Rescued, StoreError> {
        let base = self.inner.keys.queue_base(queue)?;
        let (requeued, dead): (u64, u64) = self
            .run(&invocation!(self.inner.scripts.rescue, keys: [], args: [&base]))
            .await?;
        if requeued > 0 {
            self.inner.wakeups.wake_queue(queue);
        }
        Ok(Rescued { requeued, dead })
    }

    fn wakeup(&self, queue: &str) -> Arc<Notify> {
        self.inner.wakeups.queue(queue)
    }

    fn units_wakeup(&self, limit: &str) -> Arc<Notify> {
        self.inner.wakeups.units(limit)
    }

    fn check_name(&self, name: &str) -> Result<(), &'static str> {
        if keys::is_valid_name(name) {
            Ok(())
        } else {
            Err(keys::NAME_RULE)
        }
    }

    async fn counts(&self, queue: &str) -> Result<QueueCounts, StoreError> {
        let base = self.inner.keys.queue_base(queue)?;
        let counts: Vec<i64> = self
            .run(&invocation!(self.inner.scripts.counts, keys: [], args: [&base]))
            .await?;
        let at = |index: usize| {
            counts
                .get(index)
                .copied()
                .unwrap_or(0)
                .max(0)
                .unsigned_abs()
        };
        Ok(QueueCounts {
            available: at(0),
            scheduled: at(1),
            running: at(2),
            completed: at(3),
            dead: at(4),
            cancelled: at(5),
        })
    }

    async fn job(&self, id: DurableId) -> Result<Option<JobRecord>, StoreError> {
        let Some(queue) = self.queue_of(id).await? else {
            return Ok(None);
        };
        let base = self.inner.keys.queue_base(&queue)?;
        let fields: HashMap<String, String> = self
            .command(redis::cmd("HGETALL").arg(format!("{base}job:{}", id.get())))
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        records::record(id.get(), &fields).map(Some)
    }

    async fn dead_jobs(&self, queue: &str, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let base = self.inner.keys.queue_base(queue)?;
        let stop = i64::try_from(limit).unwrap_or(i64::MAX) - 1;
        let ids: Vec<i64> = self
            .command(
                redis::cmd("ZREVRANGE")
                    .arg(format!("{base}dead"))
                    .arg(0)
                    .arg(stop),
            )
            .await?;
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HGETALL").arg(format!("{base}job:{id}"));
        }
        let mut conn = self.inner.conn.clone();
        let hashes: Vec<HashMap<String, String>> =
            pipe.query_async(&mut conn).await.map_err(store_error)?;
        ids.iter()
            .zip(&hashes)
            .filter(|(_, fields)| !fields.is_empty())
            .map(|(id, fields)| records::record(*id, fields))
            .collect()
    }

    async fn replay(&self, id: DurableId) -> Result<bool, StoreError> {
        let Some(queue) = self.queue_of(id).await? else {
            return Ok(false);
        };
        let base = self.inner.keys.queue_base(&queue)?;
        let replayed: i64 = self
            .run(&invocation!(self.inner.scripts.replay, keys: [], args: [&base, &id.get()]))
            .await?;
        if replayed == 1 {
            self.inner.wakeups.wake_queue(&queue);
        }
        Ok(replayed == 1)
    }

    async fn replay_all(&self, queue: &str) -> Result<u64, StoreError> {
        let base = self.inner.keys.queue_base(queue)?;
        let (mut start, mut total) = (0_u64, 0_u64);
        loop {
            let (replayed, seen): (u64, u64) = self
                .run(&invocation!(self.inner.scripts.replay_all, keys: [], args: [&base, &start, &SLICE]))
                .await?;
            total += replayed;
            // Jobs a live unique key held back stay dead and are skipped next time.
            start += seen - replayed;
            if seen < SLICE as u64 {
                break;
            }
        }
        if total > 0 {
            self.inner.wakeups.wake_queue(queue);
        }
        Ok(total)
    }

    async fn cancel(&self, id: DurableId) -> Result<bool, StoreError> {
        let Some(queue) = self.queue_of(id).await? else {
            return Ok(false);
        };
        let base = self.inner.keys.queue_base(&queue)?;
        let cancelled: i64 = self
            .run(&invocation!(self.inner.scripts.cancel, keys: [], args: [&base, &id.get()]))
            .await?;
        Ok(cancelled == 1)
    }

    async fn purge_finished(
        &self,
        older_than: Duration,
        include_dead: bool,
    ) -> Result<u64, StoreError> {
        let queues: Vec<String> = self
            .command(redis::cmd("SMEMBERS").arg(self.inner.keys.queues()))
            .await?;
        let older_than = duration_micros(older_than);
        let include_dead = i64::from(include_dead);
        let mut purged = 0;
        for queue in queues {
            let Ok(base) = self.inner.keys.queue_base(&queue) else {
                continue;
            };
            loop {
                let deleted: Vec<i64> = self
                    .run(&invocation!(self.inner.scripts.purge, keys: [], args: [&base, &older_than, &include_dead, &SLICE]))
                    .await?;
                self.forget_ids(&deleted).await?;
                purged += deleted.len() as u64;
                if deleted.len() < SLICE {
                    break;
                }
            }
        }
        Ok(purged)
    }

    async fn take_rate(&self, limit: &GlobalRate, want: u32) -> Result<RateGrant, StoreError> {
        let key = self.inner.keys.rate(limit.key())?;
        let (granted, retry_after): (i64, i64) = self
            .run(&invocation!(self.inner.scripts.take_rate, keys: [&key], args: [&duration_micros(limit.interval()), &limit.burst_size(), &want]))
            .await?;
        Ok(RateGrant {
            granted: u32::try_from(granted.max(0)).unwrap_or(u32::MAX),
            retry_after: Duration::from_micros(retry_after.max(0).unsigned_abs()),
        })
    }

    async fn acquire_units(
        &self,
        limit: &GlobalConcurrency,
        holder: Lease,
        weight: u32,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let (holders, weights) = self.inner.keys.units(limit.key())?;
        let taken: i64 = self
            .run(&invocation!(self.inner.scripts.acquire_units, keys: [&holders, &weights], args: [&limit.capacity(), &UnitHolders::member(holder), &weight, &duration_micros(lease)]))
            .await?;
        if taken == 1 {
            self.inner.units.took(holder, limit.key());
        }
        Ok(taken == 1)
    }

    async fn release_units(
        &self,
        limit: &GlobalConcurrency,
        holder: Lease,
    ) -> Result<(), StoreError> {
        let (holders, weights) = self.inner.keys.units(limit.key())?;
        let _: i64 = self
            .run(&invocation!(self.inner.scripts.release_units, keys: [&holders, &weights], args: [&UnitHolders::member(holder), &self.inner.keys.units_channel(), limit.key()]))
            .await?;
        self.inner.units.gave_back(holder, limit.key());
        Ok(())
    }
}

/// One answer per ack of a batch, filled in as the scripts of its queues reply.
struct Answers(Vec<Option<Result<Ack, StoreError>>>);

impl Answers {
    fn new(len: usize) -> Self {
        Self(std::iter::repeat_with(|| None).take(len).collect())
    }

    fn set(&mut self, at: usize, answer: Result<Ack, StoreError>) {
        self.0[at] = Some(answer);
    }

    /// The answers in order; an ack no script answered is stale.
    fn finish(self) -> Vec<Result<Ack, StoreError>> {
        self.0
            .into_iter()
            .map(|answer| answer.unwrap_or(Ok(Ack::Stale)))
            .collect()
    }
}
