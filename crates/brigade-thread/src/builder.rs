//! Configuring and starting a pool.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brigade_core::backend::{JobDriver, PoolSettings, WorkerRange};
use brigade_core::hooks::{Layers, Middleware};
use brigade_core::{ConfigError, Job};

use crate::hooks::Hooks;
use crate::idle::IdleSignal;
use crate::intake::Intake;
use crate::pool::ThreadPool;
use crate::ready_queue::ReadyQueue;
use crate::roster::Roster;
use crate::shared::Shared;
use crate::shutdown::{Mode, shut_down};
use crate::signals::Signals;
use crate::threads::Threads;

/// The default name of a pool, and the prefix of its threads' names.
///
/// # Examples
///
/// ```
/// let pool = brigade_thread::BoxPool::<(), String>::builder().workers(1).build()?;
/// assert_eq!(pool.name(), brigade_thread::DEFAULT_NAME);
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub const DEFAULT_NAME: &str = brigade_core::backend::DEFAULT_POOL_NAME;

/// The default keep-alive of workers above the minimum.
///
/// # Examples
///
/// ```
/// assert_eq!(brigade_thread::DEFAULT_KEEP_ALIVE, std::time::Duration::from_secs(60));
/// ```
pub const DEFAULT_KEEP_ALIVE: Duration = brigade_core::backend::DEFAULT_KEEP_ALIVE;

/// Queue slots per worker when no capacity is set: enough to keep every worker fed between
/// two submits, small enough that a fast producer feels backpressure early.
///
/// # Examples
///
/// ```
/// use brigade_core::{BoxJob, JobContext, TrySubmitError, job_fn};
/// use brigade_thread::{BoxPool, DEFAULT_QUEUE_SLOTS_PER_WORKER};
///
/// // One worker, held by a job that waits for `gate`: the queue takes 10 more jobs.
/// let pool = BoxPool::<(), String>::builder().workers(1).build()?;
/// let gate = brigade_core::CancellationToken::new();
/// let held = gate.clone();
/// pool.execute(BoxJob::new(job_fn(move |_| { held.wait_timeout(std::time::Duration::from_secs(10)); Ok(()) }))).ok();
/// while pool.stats().queued > 0 { std::thread::yield_now(); }
/// for _ in 0..DEFAULT_QUEUE_SLOTS_PER_WORKER {
///     pool.execute(BoxJob::new(job_fn(|_| Ok(())))).ok();
/// }
/// assert!(matches!(pool.try_submit(BoxJob::new(job_fn(|_| Ok(())))), Err(TrySubmitError::Full(_))));
/// gate.cancel();
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub const DEFAULT_QUEUE_SLOTS_PER_WORKER: usize =
    brigade_core::backend::DEFAULT_QUEUE_SLOTS_PER_WORKER;

/// The largest queue a pool takes: its slots are allocated when the pool is built (the
/// channel is a ring buffer), so a larger one is refused rather than attempted. It holds
/// sixteen million jobs; the default capacity never exceeds it.
///
/// # Examples
///
/// ```
/// use brigade_core::ConfigError;
/// use brigade_thread::{BoxPool, MAX_QUEUE_CAPACITY};
///
/// let error = BoxPool::<(), String>::builder()
///     .workers(1)
///     .queue_capacity(MAX_QUEUE_CAPACITY + 1)
///     .build()
///     .unwrap_err();
/// assert!(matches!(error, ConfigError::OutOfRange { setting: "queue_capacity", .. }));
/// ```
pub const MAX_QUEUE_CAPACITY: usize = 1 << 24;

/// Configures a [`ThreadPool`]; [`build`](Self::build) checks the settings and starts it.
///
/// Defaults: `workers` = [`std::thread::available_parallelism`] (1 if unknown), fixed;
/// `queue_capacity` = [`DEFAULT_QUEUE_SLOTS_PER_WORKER`] × the maximum of workers (at most
/// [`MAX_QUEUE_CAPACITY`]);
/// `keep_alive` = [`DEFAULT_KEEP_ALIVE`]; name and thread-name prefix
/// [`DEFAULT_NAME`]; the platform's stack size; no middleware.
///
/// With only [`min_workers`](Self::min_workers) set, the maximum is the larger of it and the
/// default; with only [`max_workers`](Self::max_workers) set, the minimum is the smaller of
/// it and the default.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade_thread::BoxPool;
///
/// let pool = BoxPool::<u32, String>::builder()
///     .name("resize")
///     .min_workers(1)
///     .max_workers(4)
///     .keep_alive(Duration::from_secs(5))
///     .queue_capacity(100)
///     .build()?;
/// assert_eq!(pool.name(), "resize");
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub struct Builder<J: Job> {
    settings: PoolSettings<J, J::Error>,
    thread_name: Option<String>,
    stack_size: Option<usize>,
}

impl<J: Job> Builder<J> {
    pub(crate) fn new() -> Self {
        Builder {
            settings: PoolSettings::new(),
            thread_name: None,
            stack_size: None,
        }
    }

    /// The pool's name, in [`JobContext::pool_name`](brigade_core::JobContext::pool_name),
    /// traces, and (unless [`thread_name`](Self::thread_name) is set) thread names.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = brigade_thread::BoxPool::<(), String>::builder().name("mailer").workers(1).build()?;
    /// assert_eq!(pool.name(), "mailer");
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.settings.name = Arc::from(name.into());
        self
    }

    /// A fixed number of workers (`min = max = n`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = brigade_thread::BoxPool::<(), String>::builder().workers(3).build()?;
    /// assert_eq!(pool.stats().workers, 3);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn workers(mut self, n: usize) -> Self {
        self.settings.min = Some(n);
        self.settings.max = Some(n);
        self
    }

    /// The workers kept even when idle; started by `build`. May be 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = brigade_thread::BoxPool::<(), String>::builder()
    ///     .min_workers(0)
    ///     .max_workers(2)
    ///     .build()?;
    /// assert_eq!(pool.stats().workers, 0);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn min_workers(mut self, n: usize) -> Self {
        self.settings.min = Some(n);
        self
    }

    /// The most workers the pool grows to while its queue outruns its idle workers.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = brigade_thread::BoxPool::<(), String>::builder().min_workers(1).max_workers(8).build()?;
    /// assert_eq!(pool.stats().workers, 1);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn max_workers(mut self, n: usize) -> Self {
        self.settings.max = Some(n);
        self
    }

    /// How long a worker above the minimum waits for a job before it retires.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = brigade_thread::BoxPool::<(), String>::builder()
    ///     .min_workers(0)
    ///     .max_workers(2)
    ///     .keep_alive(Duration::from_millis(100))
    ///     .build()?;
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.settings.keep_alive = keep_alive;
        self
    }

    /// How many jobs may wait in the queue; `submit` blocks (and `try_submit` fails) while
    /// it is full. At most [`MAX_QUEUE_CAPACITY`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = brigade_thread::BoxPool::<(), String>::builder().workers(1).queue_capacity(1).build()?;
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.settings.capacity = Some(capacity);
        self
    }

    /// The prefix of worker thread names (`{prefix}-{n}`); defaults to the pool's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, job_fn};
    /// let pool = brigade_thread::ThreadPool::builder().workers(1).thread_name("img").build()?;
    /// let name = pool
    ///     .submit(job_fn(|_| Ok::<_, String>(std::thread::current().name().map(String::from))))
    ///     .unwrap()
    ///     .join()
    ///     .unwrap();
    /// assert!(name.unwrap().starts_with("img-"));
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = Some(prefix.into());
        self
    }

    /// The stack size of worker threads, in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = brigade_thread::BoxPool::<(), String>::builder().workers(1).stack_size(256 * 1024).build()?;
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Adds a middleware after those already added (see
    /// [`Layers`](brigade_core::hooks::Layers) for how they compose).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::hooks::{Admission, Middleware, QueueState};
    /// use brigade_core::{BoxJob, Rejection};
    ///
    /// struct RejectAll;
    /// impl Middleware<BoxJob<(), String>, String> for RejectAll {
    ///     fn admit(&self, _: &BoxJob<(), String>, _: QueueState) -> Admission {
    ///         Admission::Reject(Rejection::new("closed for maintenance"))
    ///     }
    /// }
    ///
    /// let pool = brigade_thread::BoxPool::builder().workers(1).layer(RejectAll).build()?;
    /// let refused = pool.submit(BoxJob::new(|_: &brigade_core::JobContext| Ok::<_, String>(())));
    /// assert!(matches!(refused, Err(brigade_core::SubmitError::Rejected(..))));
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn layer(mut self, layer: impl Middleware<J, J::Error>) -> Self {
        self.settings.layers = self.settings.layers.with(layer);
        self
    }

    /// Adds a middleware shared with other pools (one rate limit for several pools).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use brigade_core::hooks::Middleware;
    /// use brigade_core::BoxJob;
    ///
    /// struct Nothing;
    /// impl Middleware<BoxJob<(), String>, String> for Nothing {}
    /// let shared: Arc<dyn Middleware<BoxJob<(), String>, String>> = Arc::new(Nothing);
    ///
    /// let a = brigade_thread::BoxPool::builder().workers(1).layer_shared(shared.clone()).build()?;
    /// let b = brigade_thread::BoxPool::builder().workers(1).layer_shared(shared).build()?;
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn layer_shared(mut self, layer: Arc<dyn Middleware<J, J::Error>>) -> Self {
        self.settings.layers = self.settings.layers.with_shared(layer);
        self
    }

    /// Uses a whole middleware stack built elsewhere, replacing the layers added so far
    /// (`Layers` cannot be taken apart to append it).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::hooks::{Layers, Middleware};
    /// use brigade_core::BoxJob;
    ///
    /// struct Nothing;
    /// impl Middleware<BoxJob<(), String>, String> for Nothing {}
    ///
    /// let stack = Layers::new().with(Nothing).with(Nothing);
    /// let pool = brigade_thread::BoxPool::builder().workers(1).layers(stack).build()?;
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn layers(mut self, layers: Layers<J, J::Error>) -> Self {
        self.settings.layers = layers;
        self
    }

    /// Checks the settings and starts the pool's minimum workers.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::ZeroWorkers`]: a maximum of 0 workers.
    /// - [`ConfigError::MinAboveMax`]: more minimum than maximum workers.
    /// - [`ConfigError::ZeroCapacity`]: a queue capacity of 0.
    /// - [`ConfigError::OutOfRange`]: a queue capacity above [`MAX_QUEUE_CAPACITY`].
    /// - [`ConfigError::ZeroDuration`]: a zero `keep_alive` with an elastic range.
    /// - [`ConfigError::OutOfRange`]: a stack size of 0 (or above half the address space),
    ///   or a name with a NUL byte.
    /// - [`ConfigError::Spawn`]: the system refused to start a thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::ConfigError;
    /// let error = brigade_thread::BoxPool::<(), String>::builder().workers(0).build().unwrap_err();
    /// assert_eq!(error, ConfigError::ZeroWorkers);
    /// ```
    pub fn build(self) -> Result<ThreadPool<J>, ConfigError> {
        // The channel allocates every slot up front (and panics past what its indices
        // hold): the settings refuse a queue it could not build.
        let settings = self.settings.resolve(MAX_QUEUE_CAPACITY)?;
        let (capacity, WorkerRange { min, max }) = (settings.capacity, settings.workers);
        // The upper bound keeps the platform's page rounding of the size from overflowing.
        if self
            .stack_size
            .is_some_and(|size| size == 0 || size > usize::MAX / 2)
        {
            return Err(ConfigError::OutOfRange {
                setting: "stack_size",
                expected: "between one byte and half the address space",
            });
        }
        let thread_name = self
            .thread_name
            .unwrap_or_else(|| settings.name.to_string());
        if thread_name.contains('\0') {
            return Err(ConfigError::OutOfRange {
                setting: "thread_name",
                expected: "free of NUL bytes",
            });
        }

        // Built first: with the `metrics` feature it registers the pool's series, which the
        // ready queue counts submits in.
        let driver = JobDriver::new(settings.name, settings.layers.clone());
        let shared = Arc::new(Shared {
            intake: Intake::new(),
            ready: ReadyQueue::new(capacity, &driver),
            signals: Signals::new(),
            roster: Roster::new(min, max),
            keep_alive: settings.keep_alive,
            idle: IdleSignal::new(),
            hooks: (!settings.layers.is_empty()).then(Hooks::new),
            driver,
            threads: Threads::new(thread_name, self.stack_size),
            shut_down: Mutex::new(false),
        });
        #[cfg(feature = "metrics")]
        shared
            .driver
            .metrics()
            .publish_from_pool(&shared, Shared::stats);
        if let Err(error) = start(&shared) {
            shut_down(&shared, Mode::Now);
            return Err(error);
        }
        Ok(ThreadPool::from_shared(shared))
    }
}

/// Starts the timer (with hooks) and the minimum workers.
fn start<J: Job>(shared: &Arc<Shared<J>>) -> Result<(), ConfigError> {
    if shared.hooks.is_some() {
        shared
            .driver
            .cancels()
            .wake_with(crate::timer::cancel_waker(shared));
        let timer = Arc::clone(shared);
        shared
            .threads
            .spawn_timer(move || crate::timer::run_timer(&timer))
            .map_err(ConfigError::spawn)?;
    }
    spawn_to_min(shared)
}

/// Spawns workers up to the minimum.
pub(crate) fn spawn_to_min<J: Job>(shared: &Arc<Shared<J>>) -> Result<(), ConfigError> {
    let wanted = shared.roster.reserve_to_min();
    for spawned in 0..wanted {
        if let Err(error) = crate::worker::spawn(shared) {
            for _ in spawned..wanted {
                shared.roster.unreserve();
            }
            return Err(ConfigError::spawn(error));
        }
    }
    Ok(())
}

impl<J: Job> fmt::Debug for Builder<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("settings", &self.settings)
            .field("thread_name", &self.thread_name)
            .field("stack_size", &self.stack_size)
            .finish()
    }
}
