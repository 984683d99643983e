use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use brigade_queue::{
    Ack, Claim, ClaimRequest, DurableId, EnqueueError, Enqueued, GlobalConcurrency, GlobalRate,
    JobRecord, Lease, MAX_SCHEDULE_AHEAD, NewJob, QueueCounts, RateGrant, Rescued, RunAt, Store,
    StoreError, Wakeups,
};
use redis::aio::ConnectionManager;
use redis::{Script, ScriptInvocation, Value};
use tokio::sync::{Notify, watch};

use crate::connection::{connect, store_error};
use crate::keys::{self, Keys};
use crate::limits::UnitHolders;
use crate::records::{self, Unreadable, duration_micros, to_micros};
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

/// How long ago the id counter must have been read before retention judges the ids up to
/// that reading: an enqueue draws its ids in one script and writes its jobs in the next,
/// and an id's queue dropped between the two would hide the job that then arrives.
const UNUSED_ID_GRACE: Duration = Duration::from_secs(3600);

/// The most `HSCAN` calls (of [`SLICE`] fields each) one retention pass makes over the
/// id → queue hash; the next pass resumes where it stopped.
const UNUSED_ID_SCANS: usize = 10;

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

    /// Deletes finished jobs older than `keep` every `every` (at least
    /// [`MIN_RETENTION_INTERVAL`](brigade_queue::MIN_RETENTION_INTERVAL)), until the
    /// returned task is aborted or the runtime stops: retention as a periodic task
    /// ([`brigade_queue::spawn_retention`]). Any number of hosts may run it.
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
        brigade_queue::spawn_retention(self.clone(), every, keep)
    }

    /// Claims from a claim script's rows; this process remembers each claimed job's queue.
    ///
    /// A row that cannot be read is a job no worker can ever run. Failing the whole claim
    /// would strand the batch the script has already leased, every job of it to be rescued
    /// and charged an attempt, again and again; so that job is buried at once under the
    /// token it was just given, and the rest go out.
    async fn claimed(&self, base: &str, rows: Vec<Value>, queue: &str) -> Vec<Claim> {
        let mut claims = Vec::with_capacity(rows.len());
        for row in rows {
            match records::claim(row, queue) {
                Ok(claim) => claims.push(claim),
                Err(unreadable) => self.bury_unreadable(base, unreadable).await,
            }
        }
        if !claims.is_empty() {
            let queue: Arc<str> = Arc::from(queue);
            let mut leased = lock(&self.inner.leased_queues);
            for claim in &claims {
                leased.insert(claim.id.get(), Arc::clone(&queue));
            }
        }
        claims
    }

    /// Forgets the queues and units of the `asked` leases a heartbeat did not renew: the
    /// worker cancels those runs, and nothing of theirs is renewed again.
    fn forget_lost(&self, asked: &[Lease], renewed: &[Lease]) {
        let kept: HashSet<Lease> = renewed.iter().copied().collect();
        let kept_ids: HashSet<i64> = renewed.iter().map(|lease| lease.id.get()).collect();
        let mut leased = lock(&self.inner.leased_queues);
        for lost in asked.iter().filter(|lease| !kept.contains(lease)) {
            // A job this process claimed again under a new token keeps its entry.
            if !kept_ids.contains(&lost.id.get()) {
                leased.remove(&lost.id.get());
            }
            self.inner.units.forget(*lost);
        }
    }

    /// Buries a claimed job whose hash cannot be read, with why as its last error.
    async fn bury_unreadable(&self, base: &str, unreadable: Unreadable) {
        let Unreadable { lease, reason } = unreadable;
        let Some(lease) = lease else {
            // Nothing names the run: its lease runs out, and the rescuer gives it back.
            tracing::error!(%reason, "a claim answered a row that names no job");
            return;
        };
        let id = lease.id.get();
        let error = format!("this job cannot be read, so it can never run: {reason}");
        let buried = self
            .run::<i64>(&invocation!(self.inner.scripts.bury, keys: [], args: [base, id, lease.token.get(), &error]))
            .await;
        match buried {
            Ok(_) => tracing::warn!(id, %error, "buried a job no worker can read"),
            // Its lease runs out and a later claim meets it again.
            Err(store) => tracing::warn!(id, %error, %store, "could not bury an unreadable job"),
        }
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
    /// stale); their jobs' queues are forgotten.
    fn acked(
        &self,
        leases: &[Lease],
        indices: &[usize],
        acked: Result<Vec<i64>, StoreError>,
        answers: &mut Answers,
    ) {
        // Forgotten whatever the answer: a recorded or stale end leaves no lease to renew,
        // and an ack tried again after an error finds the queue in the store.
        {
            let mut leased = lock(&self.inner.leased_queues);
            for &at in indices {
                leased.remove(&leases[at].id.get());
            }
        }
        match acked {
            Ok(done) if done.len() == indices.len() => {
                for (&at, done) in indices.iter().zip(done) {
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

    /// Drops the id → queue entries of `ids`, drawn by an enqueue that wrote no job under
    /// them, once the enqueue's own answer is in: its jobs are added or refused whatever
    /// becomes of this, so a failure here is logged, not answered (the jobs of a batch
    /// answered as failed would be enqueued twice by a caller trying again), and the
    /// sweep of unused ids drops them later.
    async fn forget_unused_ids(&self, ids: &[i64]) {
        if let Err(error) = self.forget_ids(ids).await {
            tracing::warn!(%error, ids = ids.len(), "unused job ids left for the sweep");
        }
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

    /// Drops the id → queue entries of ids no job was written for (an enqueue that failed
    /// between drawing its ids and writing its jobs), at most [`UNUSED_ID_SCANS`] slices a
    /// pass, the next pass resuming where this one stopped. Returns how many it dropped.
    ///
    /// Only ids up to a reading of the id counter at least [`UNUSED_ID_GRACE`] old are
    /// judged, so an enqueue still between its two scripts keeps its ids; each complete
    /// sweep takes a new reading for the next one.
    async fn sweep_unused_ids(&self) -> Result<u64, StoreError> {
        let keys = &self.inner.keys;
        let (id_queues, mark) = (keys.id_queues(), keys.id_sweep());
        let mut conn = self.inner.conn.clone();
        // The counter before the clock: every id up to it was drawn by that time.
        let (counter, (seconds, micros), swept): (
            Option<i64>,
            (i64, i64),
            HashMap<String, String>,
        ) = redis::pipe()
            .cmd("GET")
            .arg(keys.id_counter())
            .cmd("TIME")
            .cmd("HGETALL")
            .arg(&mark)
            .query_async(&mut conn)
            .await
            .map_err(store_error)?;
        let now = seconds.saturating_mul(1_000_000).saturating_add(micros);
        let reading = |field: &str| swept.get(field).and_then(|value| value.parse::<i64>().ok());
        let (Some(below), Some(at)) = (reading("below"), reading("at")) else {
            self.mark_id_sweep(counter.unwrap_or(0), now).await?;
            return Ok(0);
        };
        if now.saturating_sub(at) < duration_micros(UNUSED_ID_GRACE) {
            return Ok(0);
        }
        let mut cursor = swept
            .get("cursor")
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0);
        let mut dropped = 0;
        for _ in 0..UNUSED_ID_SCANS {
            let (next, fields): (u64, Vec<String>) = self
                .command(
                    redis::cmd("HSCAN")
                        .arg(&id_queues)
                        .arg(cursor)
                        .arg("COUNT")
                        .arg(SLICE),
                )
                .await?;
            let judged: Vec<(&str, String)> = fields
                .chunks_exact(2)
                .filter_map(|pair| {
                    let id = pair[0].parse::<i64>().ok().filter(|id| *id <= below)?;
                    // An entry naming no valid queue names no job key to look for.
                    let base = keys.queue_base(&pair[1]).ok()?;
                    Some((pair[0].as_str(), format!("{base}job:{id}")))
                })
                .collect();
            if !judged.is_empty() {
                let mut exists = redis::pipe();
                for (_, job) in &judged {
                    exists.cmd("EXISTS").arg(job);
                }
                let found: Vec<bool> = exists.query_async(&mut conn).await.map_err(store_error)?;
                let unused: Vec<&str> = judged
                    .iter()
                    .zip(&found)
                    .filter(|(_, found)| !**found)
                    .map(|((id, _), _)| *id)
                    .collect();
                if !unused.is_empty() {
                    let gone: u64 = self
                        .command(redis::cmd("HDEL").arg(&id_queues).arg(&unused))
                        .await?;
                    dropped += gone;
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        if cursor == 0 {
            self.mark_id_sweep(counter.unwrap_or(0), now).await?;
        } else {
            let _: i64 = self
                .command(redis::cmd("HSET").arg(&mark).arg("cursor").arg(cursor))
                .await?;
        }
        Ok(dropped)
    }

    /// Starts the next sweep of unused ids: it judges ids up to `counter`, read at `now`.
    async fn mark_id_sweep(&self, counter: i64, now: i64) -> Result<(), StoreError> {
        let _: i64 = self
            .command(
                redis::cmd("HSET")
                    .arg(self.inner.keys.id_sweep())
                    .arg("below")
                    .arg(counter)
                    .arg("at")
                    .arg(now)
                    .arg("cursor")
                    .arg(0),
            )
            .await?;
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

        let cap = jobs
            .iter()
            .filter_map(NewJob::max_depth)
            .min()
            .map_or(String::new(), |cap| cap.to_string());
        let mut invocation = self.inner.scripts.enqueue.prepare_invoke();
        invocation.arg(&base).arg(queue).arg(cap).arg(jobs.len());
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
                .arg(job.max_attempts())
                .arg(u8::from(job.max_depth().is_some()));
        }
        let mut conn = self.inner.conn.clone();
        let answer: Value = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)?;
        if let Value::Int(-1) = answer {
            self.forget_unused_ids(&ids).await;
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
            self.forget_unused_ids(&unused).await;
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
        let id = lease.id.get();
        let done: Result<i64, StoreError> = async {
            let base = self.inner.keys.queue_base(&queue)?;
            let mut invocation =
                invocation!(script, keys: [], args: [&base, id, lease.token.get()]);
            for arg in extra {
                invocation.arg(arg);
            }
            self.run(&invocation).await
        }
        .await;
        // Forgotten whatever the answer, as in `acked`.
        lock(&self.inner.leased_queues).remove(&id);
        let ack = if done? == 1 {
            Ack::Recorded
        } else {
            Ack::Stale
        };
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

/// The most jobs one batch enqueues on Redis, and the most one claim takes. A batch is one
/// script, and a script holds the whole server while it runs: other clients' calls,
/// workers' heartbeats among them, wait behind it. A larger batch is refused whole
/// (`StoreError::Invalid`, every job handed back): split it, each part enqueued all or
/// nothing. A claim for more takes up to this many (a claim may always take fewer than
/// asked).
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

/// How many jobs a claim for `limit` asks its script for: at most [`MAX_BATCH`], a count
/// `XREADGROUP` takes (a script that fails midway keeps what it did before failing).
fn claim_limit(limit: usize) -> usize {
    limit.min(MAX_BATCH)
}

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
        let rows: Vec<Value> = self
            .run(&invocation!(self.inner.scripts.claim, keys: [], args: [&base, request.worker, claim_limit(request.limit), duration_micros(request.lease)]))
            .await?;
        Ok(self.claimed(&base, rows, request.queue).await)
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
            let positions: Vec<usize> = invocation
                .invoke_async(&mut conn)
                .await
                .map_err(store_error)?;
            renewed.extend(positions.into_iter().filter_map(|at| held.get(at).copied()));
        }
        self.forget_lost(leases, &renewed);
        // One script per limit, whatever its number of holders: a round trip per holder
        // would, with thousands of runs, outlast the worker's store timeout.
        for (limit, holders_of_limit) in self.inner.units.by_limit(&renewed) {
            let (holders, _) = self.inner.keys.units(&limit)?;
            let mut invocation =
                invocation!(self.inner.scripts.renew_units, keys: [&holders], args: [lease_us]);
            for held in holders_of_limit {
                invocation.arg(UnitHolders::member(held));
            }
            let _: i64 = self.run(&invocation).await?;
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
            let mut invocation = invocation!(self.inner.scripts.complete_and_claim, keys: [], args: [&base, request.worker, claim_limit(request.limit), duration_micros(request.lease)]);
            for &at in &indices {
                invocation
                    .arg(completed[at].id.get())
                    .arg(completed[at].token.get());
            }
            match self.run::<(Vec<i64>, Vec<Value>)>(&invocation).await {
                Ok((acked, rows)) => {
                    self.acked(completed, &indices, Ok(acked), &mut answers);
                    claimed = Some(Ok(self.claimed(&base, rows, request.queue).await));
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
        // The horizon an enqueue's delay is held to: past it, now + delay leaves the range
        // the job hash's times are read back in.
        let delay = duration_micros(delay.min(MAX_SCHEDULE_AHEAD));
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
        // A hash whose bookkeeping another client overwrote (its payload is read whatever
        // it holds) is left out and logged, rather than hiding every other dead job;
        // `job` on its id answers why.
        let records = ids
            .iter()
            .zip(&hashes)
            .filter(|(_, fields)| !fields.is_empty())
            .filter_map(|(id, fields)| match records::record(*id, fields) {
                Ok(record) => Some(record),
                Err(error) => {
                    tracing::error!(id, queue, %error, "a dead job cannot be listed");
                    None
                }
            })
            .collect();
        Ok(records)
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
        let dropped = self.sweep_unused_ids().await?;
        if dropped > 0 {
            tracing::debug!(dropped, "retention dropped ids no job was written for");
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
        // Forgotten whatever the answer: the run is over, and units this process stops
        // renewing come back when their lease runs out, if this release did not give them.
        self.inner.units.gave_back(holder, limit.key());
        let (holders, weights) = self.inner.keys.units(limit.key())?;
        let _: i64 = self
            .run(&invocation!(self.inner.scripts.release_units, keys: [&holders, &weights], args: [&UnitHolders::member(holder), &self.inner.keys.units_channel(), limit.key()]))
            .await?;
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

#[cfg(all(test, feature = "local-server"))]
mod tests {
    use brigade_queue::{ClaimRequest, GlobalConcurrency, Lease, NewJob, Store};
    use serde_json::json;

    use super::*;

    const LEASE: Duration = Duration::from_secs(60);

    async fn store() -> RedisStore {
        crate::fresh_store()
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Enqueues `n` jobs of `queue` and claims them.
    async fn leases(store: &RedisStore, queue: &str, n: usize) -> Vec<Lease> {
        let jobs = (0..n).map(|i| NewJob::new(queue, json!(i))).collect();
        store.enqueue_batch(jobs).await.expect("enqueue");
        let claims = store
            .claim(ClaimRequest::new(queue, "w", n, LEASE))
            .await
            .expect("claim");
        assert_eq!(claims.len(), n);
        claims.iter().map(Claim::lease).collect()
    }

    fn knows_queue_of(store: &RedisStore, lease: Lease) -> bool {
        lock(&store.inner.leased_queues).contains_key(&lease.id.get())
    }

    /// Replaces a key with a string, so every script that touches it fails.
    async fn break_key(store: &RedisStore, key: String) {
        let _: () = store
            .command(redis::cmd("SET").arg(key).arg("not what you expect"))
            .await
            .expect("set");
    }

    fn job_key(store: &RedisStore, queue: &str, lease: Lease) -> String {
        format!(
            "{}job:{}",
            store.inner.keys.queue_base(queue).expect("queue"),
            lease.id.get()
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_heartbeat_forgets_the_leases_it_could_not_renew() {
        let store = store().await;
        let held = leases(&store, "lost", 2).await;
        let limit = GlobalConcurrency::new("lost-units", 10).expect("limit");
        for &lease in &held {
            assert!(
                store
                    .acquire_units(&limit, lease, 1, LEASE)
                    .await
                    .expect("units")
            );
        }
        assert!(store.cancel(held[0].id).await.expect("cancel"));

        let renewed = store.heartbeat(&held, LEASE).await.expect("heartbeat");
        assert_eq!(renewed, vec![held[1]]);
        assert!(!knows_queue_of(&store, held[0]));
        assert!(store.inner.units.held_by(held[0]).is_empty());
        assert!(knows_queue_of(&store, held[1]));
        assert_eq!(store.inner.units.held_by(held[1]), vec!["lost-units"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_end_that_fails_forgets_the_lease() {
        let store = store().await;
        let held = leases(&store, "failing", 3).await;
        for &lease in &held {
            break_key(&store, job_key(&store, "failing", lease)).await;
        }
        assert!(store.complete(held[0]).await.is_err());
        assert!(!knows_queue_of(&store, held[0]));
        for answer in store.complete_many(&held[1..]).await {
            assert!(answer.is_err());
        }
        assert!(!knows_queue_of(&store, held[1]));
        assert!(!knows_queue_of(&store, held[2]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_release_of_units_that_fails_forgets_them() {
        let store = store().await;
        let held = leases(&store, "units", 1).await;
        let limit = GlobalConcurrency::new("broken-units", 10).expect("limit");
        assert!(
            store
                .acquire_units(&limit, held[0], 1, LEASE)
                .await
                .expect("units")
        );
        let (holders, _) = store.inner.keys.units("broken-units").expect("key");
        break_key(&store, holders).await;
        assert!(store.release_units(&limit, held[0]).await.is_err());
        assert!(store.inner.units.held_by(held[0]).is_empty());
    }
}
