use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use brigade_core::backend::{PoolSettings, WorkerRange};
use brigade_core::hooks::{Layers, Middleware};
use brigade_core::{AsyncJob, ConfigError};
use tokio::runtime::{Handle, Runtime};

use crate::TokioPool;
use crate::shared::Shared;

/// Configures a [`TokioPool`].
///
/// Defaults, as on the thread backend: as many workers as the machine has cores (a bound set
/// alone moves the other only as far as needed), a queue of 10 jobs per maximum worker, a
/// keep-alive of 60 s, no middleware, the name `"brigade"`, and the runtime of the caller of
/// [`build`](Self::build).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade_core::{BoxAsyncJob, ConfigError};
/// use brigade_tokio::TokioPool;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ConfigError> {
/// let pool = TokioPool::<BoxAsyncJob<u32, String>>::builder()
///     .name("fetchers")
///     .min_workers(1)
///     .max_workers(8)
///     .keep_alive(Duration::from_secs(5))
///     .queue_capacity(100)
///     .build()?;
/// assert_eq!(pool.stats().workers, 1);
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder<J: AsyncJob> {
    settings: PoolSettings<J, J::Error>,
    runtime: RuntimeChoice,
}

enum RuntimeChoice {
    Current,
    Handle(Handle),
    Own(usize),
}

impl<J: AsyncJob> Builder<J> {
    pub(crate) fn new() -> Self {
        Builder {
            settings: PoolSettings::new(),
            runtime: RuntimeChoice::Current,
        }
    }

    /// Names the pool, for traces and job contexts.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::BoxAsyncJob;
    /// let builder = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder().name("mailer");
    /// # let _ = builder;
    /// ```
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.settings.name = name.into();
        self
    }

    /// A fixed number of workers: at most `n` jobs run at once (`min = max = n`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::BoxAsyncJob;
    /// let builder = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder().workers(4);
    /// # let _ = builder;
    /// ```
    pub fn workers(mut self, n: usize) -> Self {
        self.settings.min = Some(n);
        self.settings.max = Some(n);
        self
    }

    /// Workers kept alive when idle.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::BoxAsyncJob;
    /// let builder = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder().min_workers(0);
    /// # let _ = builder;
    /// ```
    pub fn min_workers(mut self, n: usize) -> Self {
        self.settings.min = Some(n);
        self
    }

    /// Workers at most: the bound on jobs running at once.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::BoxAsyncJob;
    /// let builder = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder().max_workers(16);
    /// # let _ = builder;
    /// ```
    pub fn max_workers(mut self, n: usize) -> Self {
        self.settings.max = Some(n);
        self
    }

    /// How long a worker above the minimum waits for a job before it exits.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use brigade_core::BoxAsyncJob;
    /// let builder = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder()
    ///     .keep_alive(Duration::from_millis(500));
    /// # let _ = builder;
    /// ```
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.settings.keep_alive = keep_alive;
        self
    }

    /// How many jobs wait in the queue at most; `submit` waits while it is full.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::BoxAsyncJob;
    /// let builder = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder().queue_capacity(8);
    /// # let _ = builder;
    /// ```
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.settings.capacity = Some(capacity);
        self
    }

    /// Adds a middleware after those already added (see [`Layers`] for how they compose).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::BoxAsyncJob;
    /// use brigade_core::hooks::Middleware;
    ///
    /// struct Audit;
    /// impl<J, E> Middleware<J, E> for Audit {}
    ///
    /// let builder = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder().layer(Audit);
    /// # let _ = builder;
    /// ```
    pub fn layer(mut self, layer: impl Middleware<J, J::Error>) -> Self {
        self.settings.layers = self.settings.layers.with(layer);
        self
    }

    /// Adds a middleware shared with other pools (one rate limit across pools, say).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use brigade_core::BoxAsyncJob;
    /// use brigade_core::hooks::Middleware;
    ///
    /// struct Audit;
    /// impl<J, E> Middleware<J, E> for Audit {}
    ///
    /// let shared: Arc<dyn Middleware<BoxAsyncJob<(), String>, String>> = Arc::new(Audit);
    /// let builder = brigade_tokio::TokioPool::builder().layer_shared(shared);
    /// # let _ = builder;
    /// ```
    pub fn layer_shared(mut self, layer: Arc<dyn Middleware<J, J::Error>>) -> Self {
        self.settings.layers = self.settings.layers.with_shared(layer);
        self
    }

    /// Replaces the middleware with `layers`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::BoxAsyncJob;
    /// use brigade_core::hooks::Layers;
    ///
    /// let builder = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder().layers(Layers::new());
    /// # let _ = builder;
    /// ```
    pub fn layers(mut self, layers: Layers<J, J::Error>) -> Self {
        self.settings.layers = layers;
        self
    }

    /// Runs the pool's tasks on this runtime rather than the caller's.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::BoxAsyncJob;
    /// let runtime = tokio::runtime::Runtime::new().unwrap();
    /// let pool = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder()
    ///     .runtime_handle(runtime.handle().clone())
    ///     .workers(2)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(pool.stats().workers, 2);
    /// # drop(pool);
    /// ```
    pub fn runtime_handle(mut self, handle: Handle) -> Self {
        self.runtime = RuntimeChoice::Handle(handle);
        self
    }

    /// Builds a multi-thread runtime with `threads` threads that the pool owns, for
    /// programs with no runtime of their own. The pool's blocking methods (the
    /// [`Executor`](brigade_core::Executor) impl, [`TokioPool::blocking_submit`]) then serve
    /// plain threads, and dropping the pool drains it and shuts the runtime down.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{BoxAsyncJob, Executor, JobContext, async_job_fn};
    ///
    /// let pool = brigade_tokio::TokioPool::builder().own_runtime(2).workers(2).build().unwrap();
    /// let handle = pool.blocking_submit(BoxAsyncJob::new(async_job_fn(|_cx| async { Ok::<_, String>(7) }))).unwrap();
    /// assert_eq!(handle.join().unwrap(), 7);
    /// ```
    pub fn own_runtime(mut self, threads: usize) -> Self {
        self.runtime = RuntimeChoice::Own(threads);
        self
    }

    /// Checks the settings and starts the minimum number of workers.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroWorkers`] when `max_workers` is 0, [`ConfigError::MinAboveMax`],
    /// [`ConfigError::ZeroCapacity`], [`ConfigError::ZeroDuration`] for a zero keep-alive
    /// on an elastic pool, [`ConfigError::OutOfRange`] for an own runtime of 0 threads or a
    /// name with a NUL byte with an own runtime (its threads carry the name), and
    /// [`ConfigError::NoRuntime`] when `build` was called outside a runtime with neither
    /// [`runtime_handle`](Self::runtime_handle) nor [`own_runtime`](Self::own_runtime), and
    /// [`ConfigError::Spawn`] (the system's error as its source) when the own runtime could
    /// not start.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{BoxAsyncJob, ConfigError};
    /// use brigade_tokio::TokioPool;
    ///
    /// let error = TokioPool::<BoxAsyncJob<(), String>>::builder().workers(0).build().unwrap_err();
    /// assert_eq!(error, ConfigError::ZeroWorkers);
    /// ```
    pub fn build(self) -> Result<TokioPool<J>, ConfigError> {
        let settings = self.settings.resolve(usize::MAX)?;
        let (handle, own) = match self.runtime {
            RuntimeChoice::Handle(handle) => (handle, None),
            RuntimeChoice::Current => match Handle::try_current() {
                Ok(handle) => (handle, None),
                Err(_) => return Err(ConfigError::NoRuntime),
            },
            RuntimeChoice::Own(0) => {
                return Err(ConfigError::OutOfRange {
                    setting: "own_runtime threads",
                    expected: "at least 1",
                });
            }
            RuntimeChoice::Own(threads) => {
                // Its threads carry the pool's name; std panics at spawn on a NUL byte.
                if settings.name.contains('\0') {
                    return Err(ConfigError::OutOfRange {
                        setting: "name",
                        expected: "free of NUL bytes (it names the runtime's threads)",
                    });
                }
                let runtime = own_runtime(&settings.name, threads)?;
                (runtime.handle().clone(), Some(runtime))
            }
        };
        let WorkerRange { min, max } = settings.workers;
        let shared = Shared::new(
            settings.name,
            settings.capacity,
            (min, max, settings.keep_alive),
            settings.layers,
            handle,
        );
        shared.start_workers();
        Ok(TokioPool::from_parts(shared, own))
    }
}

fn own_runtime(name: &str, threads: usize) -> Result<Runtime, ConfigError> {
    // tokio panics when the system refuses one of its worker threads ("OS can't spawn
    // worker thread"), which an extreme thread count reaches: that is a spawn error too.
    let built = std::panic::catch_unwind(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(format!("{name}-rt"))
            .enable_all()
            .build()
    });
    match built {
        Ok(built) => built.map_err(ConfigError::spawn),
        Err(payload) => Err(ConfigError::spawn(std::io::Error::other(
            brigade_core::backend::panic_message(&*payload),
        ))),
    }
}

impl<J: AsyncJob> fmt::Debug for Builder<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}
