use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use brigade_core::ConfigError;
use brigade_middleware::{Backoff, Jitter, Retry};
use serde::de::DeserializeOwned;

use super::counters::WorkerCounters;
use super::dispatch::Dispatch;
use super::global_limits::GlobalLimits;
use super::local_pool::OnPool;
use super::{Settings, Worker};
use crate::{GlobalConcurrency, GlobalRate, Handler, Store};

/// How long a claim lasts without a heartbeat, unless set.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How many jobs a worker runs at once, unless set.
pub const DEFAULT_CONCURRENCY: usize = 10;
/// The most jobs a worker runs at once: [`WorkerBuilder::concurrency`] above it is a
/// `ConfigError` at build.
///
/// # Examples
///
/// ```
/// assert!(brigade_queue::DEFAULT_CONCURRENCY <= brigade_queue::MAX_CONCURRENCY);
/// ```
pub const MAX_CONCURRENCY: usize = 1 << 16;
/// The longest lease a worker takes: [`WorkerBuilder::lease`] above it is a `ConfigError`
/// at build. Its arithmetic and every store's clock stay far from overflow; a run longer
/// than this keeps a shorter lease renewed by heartbeats.
///
/// # Examples
///
/// ```
/// assert!(brigade_queue::DEFAULT_LEASE <= brigade_queue::MAX_LEASE);
/// ```
pub const MAX_LEASE: Duration = Duration::from_secs(86_400);
/// The shortest lease a worker takes: [`WorkerBuilder::lease`] below it is a
/// `ConfigError` at build. A run starts only while the worker can vouch for its lease,
/// and a lease shorter than a claim's round trip (a commit waiting for a disk flush) would
/// pass before any job started, each one charged an attempt until it died unrun.
///
/// # Examples
///
/// ```
/// assert!(brigade_queue::MIN_LEASE <= brigade_queue::DEFAULT_LEASE);
/// ```
pub const MIN_LEASE: Duration = Duration::from_secs(1);
/// The shortest heartbeat interval a worker takes: [`WorkerBuilder::heartbeat`] below it
/// is a `ConfigError` at build. Each beat is a store call; a beat every few microseconds
/// would keep the store busy renewing leases and the worker busy waiting for it.
///
/// # Examples
///
/// ```
/// assert!(brigade_queue::MIN_HEARTBEAT < brigade_queue::MIN_LEASE / 2);
/// ```
pub const MIN_HEARTBEAT: Duration = Duration::from_millis(50);
/// The shortest store timeout a worker takes: [`WorkerBuilder::store_timeout`] below it is
/// a `ConfigError` at build. Below a commit's round trip (a disk flush) every store call
/// would time out and the worker would do nothing but report the store unreachable.
///
/// # Examples
///
/// ```
/// assert!(brigade_queue::MIN_STORE_TIMEOUT <= brigade_queue::MIN_HEARTBEAT);
/// ```
pub const MIN_STORE_TIMEOUT: Duration = Duration::from_millis(50);

/// Configures a [`Worker`]; [`Worker::builder`] makes one, a `handle*` method finishes it.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(store: impl brigade_queue::Store) -> Result<(), brigade_core::ConfigError> {
/// use std::time::Duration;
/// use brigade_queue::{Delivery, Worker};
///
/// let worker = Worker::builder(store, "emails")
///     .concurrency(16)
///     .lease(Duration::from_secs(20))
///     .grace(Duration::from_secs(10))
///     .handle(|to: String, _delivery: Delivery| async move {
///         println!("sending to {to}");
///         Ok::<(), String>(())
///     })?;
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct WorkerBuilder<S, E> {
    store: S,
    queue: String,
    worker_id: Option<String>,
    concurrency: usize,
    lease: Duration,
    heartbeat: Option<Duration>,
    sweep: Duration,
    poll: Duration,
    grace: Duration,
    store_timeout: Option<Duration>,
    retry: Option<Retry<E>>,
    limits: GlobalLimits,
    error: PhantomData<fn(E)>,
}

impl<S, E> fmt::Debug for WorkerBuilder<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("queue", &self.queue)
            .field("concurrency", &self.concurrency)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl<S: Store, E> WorkerBuilder<S, E>
where
    E: fmt::Debug + fmt::Display + Send + 'static,
{
    pub(crate) fn new(store: S, queue: String) -> Self {
        Self {
            store,
            queue,
            worker_id: None,
            concurrency: DEFAULT_CONCURRENCY,
            lease: DEFAULT_LEASE,
            heartbeat: None,
            sweep: Duration::from_secs(5),
            poll: Duration::from_secs(1),
            grace: Duration::from_secs(30),
            store_timeout: None,
            retry: None,
            limits: GlobalLimits {
                rate: None,
                units: None,
            },
            error: PhantomData,
        }
    }

    /// The most jobs this worker runs at once (default 10): its local pool's workers. The
    /// worker claims only for free slots, so it never holds a job its pool cannot start
    /// soon. A slot is free again when its run ends, while the store records that end, so
    /// a worker holds at most twice this many leases: the runs, and the ends on their way.
    /// At most [`MAX_CONCURRENCY`].
    pub fn concurrency(mut self, jobs: usize) -> Self {
        self.concurrency = jobs;
        self
    }

    /// How long a claim lasts unless renewed (default 30 s), at most [`MAX_LEASE`]. A
    /// crashed worker's jobs are claimable again within the lease plus one sweep interval.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often held leases are renewed, all in one call (default: a third of the lease);
    /// at least [`MIN_HEARTBEAT`], and less than half the lease.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = Some(every);
        self
    }

    /// How often this worker looks for expired leases to rescue (default 5 s).
    pub fn sweep(mut self, every: Duration) -> Self {
        self.sweep = every;
        self
    }

    /// How often an idle worker looks for due jobs without a wake-up (default 1 s): the
    /// fallback for lost notifications and the clock for scheduled jobs.
    pub fn poll(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// How long a shutdown lets running jobs finish before it stops them and gives their
    /// jobs back uncharged (default 30 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long any one store call may take before the worker treats the store as
    /// unreachable (default: the heartbeat interval); at least [`MIN_STORE_TIMEOUT`].
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = Some(timeout);
        self
    }

    /// The name this worker's leases carry (default: host name, process id, a counter).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// The policy that sets a failed job's run-again time (backoff and jitter) and decides
    /// which failures are worth another run. The job's own `max_attempts` still bounds it.
    /// Default: exponential from 1 s, doubling, capped at 1 h, full jitter; failures and
    /// timeouts retried, panics not.
    pub fn retry(mut self, retry: Retry<E>) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Starts no more jobs than `rate` allows across every worker naming it.
    pub fn rate_limit(mut self, rate: GlobalRate) -> Self {
        self.limits.rate = Some(rate);
        self
    }

    /// Runs jobs only while their [`weight`](Handler::weight) fits in `limit`, across every
    /// worker naming it.
    pub fn concurrency_limit(mut self, limit: GlobalConcurrency) -> Self {
        self.limits.units = Some(limit);
        self
    }

    /// Finishes the worker: `handler` runs each job on a tokio pool of
    /// [`concurrency`](Self::concurrency) workers, on the current runtime.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a setting that cannot work (see [`WorkerBuilder::handle_on`]).
    pub fn handle<T, H>(self, handler: H) -> Result<Worker<S>, ConfigError>
    where
        T: DeserializeOwned + Send + 'static,
        H: Handler<T, Error = E>,
    {
        // Before the pool is built: its workers are this many tasks.
        self.check_concurrency()?;
        let pool = brigade_tokio::BoxPool::builder()
            .name(self.queue.clone())
            .workers(self.concurrency.max(1))
            .queue_capacity(self.concurrency.max(1))
            .build()?;
        self.handle_on(pool, handler)
    }

    /// Finishes the worker on a tokio pool you built, with its local middleware (a
    /// per-run timeout, a local weighted or rate limit). Give it at least
    /// [`concurrency`](Self::concurrency) workers, or claimed jobs wait in its queue while
    /// their leases run.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a concurrency of zero or above [`MAX_CONCURRENCY`], a zero
    /// sweep or poll interval, a lease under [`MIN_LEASE`] or above [`MAX_LEASE`], a heartbeat
    /// under [`MIN_HEARTBEAT`] or not under half the lease (a missed beat must leave time for
    /// the next), a store timeout under [`MIN_STORE_TIMEOUT`], or a queue name,
    /// limit name or worker id the store refuses ([`Store::check_name`]).
    pub fn handle_on<T, H>(
        mut self,
        pool: brigade_tokio::BoxPool<(), E>,
        handler: H,
    ) -> Result<Worker<S>, ConfigError>
    where
        T: DeserializeOwned + Send + 'static,
        H: Handler<T, Error = E>,
    {
        let retry = self.take_retry()?;
        let dispatch = OnPool {
            handler: Arc::new(handler),
            pool: Arc::new(pool),
            retry,
            job: PhantomData,
        };
        self.finish(Arc::new(dispatch))
    }

    /// Finishes the worker: `handler` runs each job on a thread pool of
    /// [`concurrency`](Self::concurrency) threads.
    ///
    /// # Errors
    ///
    /// As [`WorkerBuilder::handle_on`].
    #[cfg(feature = "thread")]
    #[cfg_attr(docsrs, doc(cfg(feature = "thread")))]
    pub fn handle_blocking<T, H>(self, handler: H) -> Result<Worker<S>, ConfigError>
    where
        T: DeserializeOwned + Send + 'static,
        H: crate::BlockingHandler<T, Error = E>,
    {
        // Before the pool is built: its workers are this many threads.
        self.check_concurrency()?;
        let pool = brigade_thread::BoxPool::builder()
            .name(self.queue.clone())
            .workers(self.concurrency.max(1))
            .queue_capacity(self.concurrency.max(1))
            .build()?;
        self.handle_blocking_on(pool, handler)
    }

    /// Finishes the worker on a thread pool you built, with its local middleware. Give it
    /// at least [`concurrency`](Self::concurrency) workers and as much queue room.
    ///
    /// # Errors
    ///
    /// As [`WorkerBuilder::handle_on`].
    #[cfg(feature = "thread")]
    #[cfg_attr(docsrs, doc(cfg(feature = "thread")))]
    pub fn handle_blocking_on<T, H>(
        mut self,
        pool: brigade_thread::BoxPool<(), E>,
        handler: H,
    ) -> Result<Worker<S>, ConfigError>
    where
        T: DeserializeOwned + Send + 'static,
        H: crate::BlockingHandler<T, Error = E>,
    {
        let retry = self.take_retry()?;
        let dispatch = OnPool {
            handler: Arc::new(handler),
            pool: Arc::new(pool),
            retry,
            job: PhantomData,
        };
        self.finish(Arc::new(dispatch))
    }

    fn take_retry(&mut self) -> Result<Arc<Retry<E>>, ConfigError> {
        let retry = match self.retry.take() {
            Some(retry) => retry,
            None => Retry::builder()
                .max_attempts(u32::MAX)
                .backoff(
                    Backoff::exponential(Duration::from_secs(1))
                        .cap(Duration::from_secs(3600))
                        .jitter(Jitter::Full),
                )
                .build()?,
        };
        Ok(Arc::new(retry))
    }

    fn check_concurrency(&self) -> Result<(), ConfigError> {
        if self.concurrency == 0 {
            return Err(ConfigError::ZeroWorkers);
        }
        if self.concurrency > MAX_CONCURRENCY {
            return Err(ConfigError::OutOfRange {
                setting: "concurrency",
                expected: "at most MAX_CONCURRENCY (65,536) jobs at once",
            });
        }
        Ok(())
    }

    fn finish(mut self, dispatch: Arc<dyn Dispatch>) -> Result<Worker<S>, ConfigError> {
        self.check_concurrency()?;
        self.check_names()?;
        for (setting, value) in [
            ("lease", self.lease),
            ("sweep", self.sweep),
            ("poll", self.poll),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroDuration { setting });
            }
        }
        if self.lease < MIN_LEASE {
            return Err(ConfigError::OutOfRange {
                setting: "lease",
                expected: "at least MIN_LEASE (a second): a run starts only while its lease holds",
            });
        }
        if self.lease > MAX_LEASE {
            return Err(ConfigError::OutOfRange {
                setting: "lease",
                expected: "at most MAX_LEASE (a day): longer runs keep a shorter lease with heartbeats",
            });
        }
        let heartbeat = self.heartbeat.unwrap_or(self.lease / 3);
        if heartbeat < MIN_HEARTBEAT || heartbeat >= self.lease / 2 {
            return Err(ConfigError::OutOfRange {
                setting: "heartbeat",
                expected: "at least MIN_HEARTBEAT (50 ms) and less than half the lease",
            });
        }
        let store_timeout = self.store_timeout.unwrap_or(heartbeat);
        if store_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration {
                setting: "store_timeout",
            });
        }
        if store_timeout < MIN_STORE_TIMEOUT {
            return Err(ConfigError::OutOfRange {
                setting: "store_timeout",
                expected: "at least MIN_STORE_TIMEOUT (50 ms): below a commit's round trip every store call would time out",
            });
        }
        let id = self.worker_id.take().unwrap_or_else(default_worker_id);
        Ok(Worker {
            store: self.store,
            queue: Arc::from(self.queue),
            id,
            settings: Settings {
                concurrency: self.concurrency,
                lease: self.lease,
                heartbeat,
                sweep: self.sweep,
                poll: self.poll,
                grace: self.grace,
                store_timeout,
            },
            limits: self.limits,
            dispatch,
            counters: WorkerCounters::default(),
        })
    }
}

impl<S: Store, E> WorkerBuilder<S, E> {
    /// The queue's and the limits' names, as the store takes them.
    fn check_names(&self) -> Result<(), ConfigError> {
        let names = [
            ("queue name", Some(self.queue.as_str())),
            // The id goes to the store with every claim, as the lease's holder.
            ("worker id", self.worker_id.as_deref()),
            (
                "global rate key",
                self.limits.rate.as_ref().map(GlobalRate::key),
            ),
            (
                "global concurrency key",
                self.limits.units.as_ref().map(GlobalConcurrency::key),
            ),
        ];
        for (setting, name) in names {
            let Some(name) = name else { continue };
            if name.is_empty() {
                return Err(ConfigError::OutOfRange {
                    setting,
                    expected: "a name",
                });
            }
            self.store
                .check_name(name)
                .map_err(|expected| ConfigError::OutOfRange { setting, expected })?;
        }
        Ok(())
    }
}

/// `host-pid-n`: unique among the workers of one host.
fn default_worker_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_owned());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
