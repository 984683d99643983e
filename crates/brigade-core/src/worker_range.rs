use std::time::Duration;

use crate::{ConfigError, available_cores};

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
    /// [`ConfigError::ZeroWorkers`] when `max` is 0, [`ConfigError::MinAboveMax`] when the
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
