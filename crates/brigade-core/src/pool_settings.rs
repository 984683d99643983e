use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::ConfigError;
use crate::hooks::Layers;
use crate::worker_range::WorkerRange;

/// The name of a pool that was not given one.
///
/// # Examples
///
/// ```
/// use brigade_core::backend::{DEFAULT_POOL_NAME, PoolSettings};
/// let settings = PoolSettings::<brigade_core::BoxJob<(), String>, String>::new();
/// assert_eq!(&*settings.name, DEFAULT_POOL_NAME);
/// ```
pub const DEFAULT_POOL_NAME: &str = "brigade";

/// How long a worker above the minimum stays when it finds nothing to do, unless the
/// builder says otherwise.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// assert_eq!(brigade_core::backend::DEFAULT_KEEP_ALIVE, Duration::from_secs(60));
/// ```
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(60);

/// Queue slots per maximum worker when no capacity is set: enough to keep every worker fed
/// between two submits, small enough that a fast producer feels backpressure early.
///
/// # Examples
///
/// ```
/// use brigade_core::backend::{DEFAULT_QUEUE_SLOTS_PER_WORKER, PoolSettings};
/// let mut settings = PoolSettings::<brigade_core::BoxJob<(), String>, String>::new();
/// settings.max = Some(4);
/// let resolved = settings.resolve(usize::MAX)?;
/// assert_eq!(resolved.capacity, 4 * DEFAULT_QUEUE_SLOTS_PER_WORKER);
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub const DEFAULT_QUEUE_SLOTS_PER_WORKER: usize = 10;

/// What every pool's builder collects, whatever runs its jobs: the pool's name, its worker
/// range, the keep-alive of workers above the minimum, the queue's capacity and the
/// middleware. A backend's builder keeps one beside its own settings (thread names, a
/// runtime) and [`resolve`](Self::resolve)s it when it builds.
///
/// # Examples
///
/// ```
/// use brigade_core::BoxJob;
/// use brigade_core::backend::PoolSettings;
///
/// let mut settings = PoolSettings::<BoxJob<(), String>, String>::new();
/// settings.min = Some(1);
/// settings.max = Some(4);
/// let resolved = settings.resolve(usize::MAX)?;
/// assert_eq!((resolved.workers.min, resolved.workers.max), (1, 4));
/// assert_eq!(resolved.capacity, 40);
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub struct PoolSettings<J, E> {
    /// The pool's name, for traces, metrics and job contexts.
    pub name: Arc<str>,
    /// The workers kept when idle, if the builder set it.
    pub min: Option<usize>,
    /// The workers at most, if the builder set it.
    pub max: Option<usize>,
    /// How long a worker above `min` waits for work before it retires.
    pub keep_alive: Duration,
    /// How many jobs the queue holds, if the builder set it.
    pub capacity: Option<usize>,
    /// The middleware, outermost first.
    pub layers: Layers<J, E>,
}

/// [`PoolSettings`] checked, with what the builder left out filled in.
///
/// # Examples
///
/// ```
/// use brigade_core::BoxJob;
/// use brigade_core::backend::PoolSettings;
///
/// let mut settings = PoolSettings::<BoxJob<(), String>, String>::new();
/// settings.capacity = Some(5);
/// assert_eq!(settings.resolve(usize::MAX)?.capacity, 5);
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub struct ResolvedSettings<J, E> {
    /// The pool's name.
    pub name: Arc<str>,
    /// The worker range, checked against the keep-alive.
    pub workers: WorkerRange,
    /// How long a worker above the minimum waits for work before it retires.
    pub keep_alive: Duration,
    /// How many jobs the queue holds: at least one.
    pub capacity: usize,
    /// The middleware, outermost first.
    pub layers: Layers<J, E>,
}

impl<J: 'static, E: 'static> PoolSettings<J, E> {
    /// The defaults: [`DEFAULT_POOL_NAME`], one worker per core, [`DEFAULT_KEEP_ALIVE`],
    /// [`DEFAULT_QUEUE_SLOTS_PER_WORKER`] per maximum worker, no middleware.
    ///
    /// # Examples
    ///
    /// ```
    /// let settings = brigade_core::backend::PoolSettings::<brigade_core::BoxJob<(), String>, String>::new();
    /// assert_eq!((settings.min, settings.max, settings.capacity), (None, None, None));
    /// ```
    #[must_use]
    pub fn new() -> Self {
        PoolSettings {
            name: Arc::from(DEFAULT_POOL_NAME),
            min: None,
            max: None,
            keep_alive: DEFAULT_KEEP_ALIVE,
            capacity: None,
            layers: Layers::new(),
        }
    }

    /// Checks the settings and fills in what was left out: the worker range from the core
    /// count ([`WorkerRange::resolve`]), the capacity from the maximum of workers, up to
    /// `largest_capacity`: the largest queue the backend can build (a queue allocated up
    /// front has one; a backend without a limit passes `usize::MAX`).
    ///
    /// # Errors
    ///
    /// What [`WorkerRange::validate`] refuses, [`ConfigError::ZeroCapacity`] for a queue of
    /// no jobs, and [`ConfigError::OutOfRange`] for a capacity set above
    /// `largest_capacity`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{BoxJob, ConfigError};
    /// use brigade_core::backend::PoolSettings;
    ///
    /// let mut settings = PoolSettings::<BoxJob<(), String>, String>::new();
    /// settings.capacity = Some(0);
    /// assert_eq!(settings.resolve(usize::MAX).err(), Some(ConfigError::ZeroCapacity));
    ///
    /// let mut settings = PoolSettings::<BoxJob<(), String>, String>::new();
    /// settings.capacity = Some(1_000);
    /// assert!(matches!(
    ///     settings.resolve(100),
    ///     Err(ConfigError::OutOfRange { setting: "queue_capacity", .. })
    /// ));
    /// ```
    pub fn resolve(self, largest_capacity: usize) -> Result<ResolvedSettings<J, E>, ConfigError> {
        let workers = WorkerRange::resolve(self.min, self.max).validate(self.keep_alive)?;
        let capacity = self.capacity.unwrap_or_else(|| {
            workers
                .max
                .saturating_mul(DEFAULT_QUEUE_SLOTS_PER_WORKER)
                .min(largest_capacity)
        });
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        if capacity > largest_capacity {
            return Err(ConfigError::OutOfRange {
                setting: "queue_capacity",
                expected: "at most the largest queue the backend builds (on threads, MAX_QUEUE_CAPACITY: 16,777,216 jobs)",
            });
        }
        Ok(ResolvedSettings {
            name: self.name,
            workers,
            keep_alive: self.keep_alive,
            capacity,
            layers: self.layers,
        })
    }
}

impl<J: 'static, E: 'static> Default for PoolSettings<J, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<J: 'static, E: 'static> fmt::Debug for PoolSettings<J, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolSettings")
            .field("name", &self.name)
            .field("min_workers", &self.min)
            .field("max_workers", &self.max)
            .field("keep_alive", &self.keep_alive)
            .field("queue_capacity", &self.capacity)
            .field("layers", &self.layers)
            .finish()
    }
}

impl<J: 'static, E: 'static> fmt::Debug for ResolvedSettings<J, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedSettings")
            .field("name", &self.name)
            .field("workers", &self.workers)
            .field("keep_alive", &self.keep_alive)
            .field("capacity", &self.capacity)
            .field("layers", &self.layers)
            .finish()
    }
}
