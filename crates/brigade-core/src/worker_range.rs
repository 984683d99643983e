use std::time::Duration;

use crate::{ConfigError, available_cores};

/// The most workers a pool starts up front (its minimum): far more than any machine runs
/// threads, and a bound that keeps a mistyped count a [`ConfigError`] instead of a pool
/// that spawns until memory runs out. An elastic maximum may be larger (`usize::MAX`
/// for "as many as the work needs"): those workers start one by one, as jobs come.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade_core::backend::WorkerRange;
/// let too_many = WorkerRange { min: brigade_core::MAX_WORKERS + 1, max: usize::MAX };
/// assert!(too_many.validate(Duration::from_secs(1)).is_err());
/// let unbounded = WorkerRange { min: 1, max: usize::MAX };
/// assert!(unbounded.validate(Duration::from_secs(1)).is_ok());
/// ```
pub const MAX_WORKERS: usize = 1 << 20;

/// How many workers a pool keeps (`min`) and may grow to (`max`), resolved and checked the
/// same way by every backend's builder and `resize`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade_core::ConfigError;
/// use brigade_core::backend::WorkerRange;
///
/// let range = WorkerRange::resolve(Some(2), Some(10));
/// assert_eq!((range.min, range.max), (2, 10));
/// assert!(range.validate(Duration::from_secs(30)).is_ok());
/// assert_eq!(
///     WorkerRange::resolve(Some(4), Some(2)).validate(Duration::from_secs(30)),
///     Err(ConfigError::MinAboveMax { min: 4, max: 2 })
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerRange {
    /// Workers kept alive when idle.
    pub min: usize,
    /// Workers at most.
    pub max: usize,
}

impl WorkerRange {
    /// The range a builder asked for, with what it left out filled in from the core count:
    /// neither given, a fixed pool of one worker per core; only `min`, up to at least the
    /// core count; only `max`, down to at most the core count.
    ///
    /// # Examples
    ///
    /// ```
    /// let cores = brigade_core::available_cores();
    /// let range = brigade_core::backend::WorkerRange::resolve(None, None);
    /// assert_eq!((range.min, range.max), (cores, cores));
    /// ```
    #[must_use]
    pub fn resolve(min: Option<usize>, max: Option<usize>) -> Self {
        let cores = available_cores();
        let (min, max) = match (min, max) {
            (Some(min), Some(max)) => (min, max),
            (Some(min), None) => (min, min.max(cores)),
            (None, Some(max)) => (max.min(cores), max),
            (None, None) => (cores, cores),
        };
        WorkerRange { min, max }
    }

    /// Checks the range a pool is built or resized with.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroWorkers`] when `max` is 0, [`ConfigError::OutOfRange`] when `min`
    /// is above [`MAX_WORKERS`], [`ConfigError::MinAboveMax`] when the
    /// range is empty, [`ConfigError::ZeroDuration`] when an elastic range has a zero
    /// `keep_alive` (its extra workers would retire the moment they are idle).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_core::ConfigError;
    /// use brigade_core::backend::WorkerRange;
    ///
    /// let elastic = WorkerRange { min: 1, max: 4 };
    /// assert_eq!(
    ///     elastic.validate(Duration::ZERO),
    ///     Err(ConfigError::ZeroDuration { setting: "keep_alive" })
    /// );
    /// ```
    pub fn validate(self, keep_alive: Duration) -> Result<Self, ConfigError> {
        let WorkerRange { min, max } = self;
        if max == 0 {
            return Err(ConfigError::ZeroWorkers);
        }
        // Only the workers started up front: an elastic maximum of `usize::MAX` means
        // "as many as the work needs", and they start one by one as it comes.
        if min > MAX_WORKERS {
            return Err(ConfigError::OutOfRange {
                setting: "min_workers",
                expected: "at most MAX_WORKERS (1,048,576)",
            });
        }
        if min > max {
            return Err(ConfigError::MinAboveMax { min, max });
        }
        if min < max && keep_alive.is_zero() {
            return Err(ConfigError::ZeroDuration {
                setting: "keep_alive",
            });
        }
        Ok(self)
    }
}
