use std::fmt;
use std::io;
use std::sync::Arc;

/// A setting a builder cannot work with, reported by `build()` instead of a panic.
///
/// # Examples
///
/// ```
/// use brigade_core::ConfigError;
///
/// let error = ConfigError::MinAboveMax { min: 4, max: 2 };
/// assert_eq!(error.to_string(), "minimum workers (4) exceed maximum workers (2)");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// A pool needs at least one worker.
    ZeroWorkers,
    /// The elastic range is empty.
    MinAboveMax {
        /// The minimum asked for.
        min: usize,
        /// The maximum asked for.
        max: usize,
    },
    /// A queue of capacity zero cannot hold a job.
    ZeroCapacity,
    /// A duration setting that must be positive was zero.
    ZeroDuration {
        /// Which setting.
        setting: &'static str,
    },
    /// A rate (jobs per period) that is zero, negative, infinite or NaN.
    InvalidRate {
        /// Which setting.
        setting: &'static str,
        /// The value given.
        value: f64,
    },
    /// Any other value out of its range.
    OutOfRange {
        /// Which setting.
        setting: &'static str,
        /// What the setting accepts.
        expected: &'static str,
    },
    /// A tokio pool was built outside a tokio runtime, with no runtime handle given and
    /// no runtime of its own asked for.
    NoRuntime,
    /// The operating system refused to start a worker thread or a runtime; the system's
    /// error is the [`source`](std::error::Error::source).
    Spawn(Arc<io::Error>),
}

impl ConfigError {
    /// A [`Spawn`](Self::Spawn) error from the system's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::error::Error;
    /// use brigade_core::ConfigError;
    ///
    /// let error = ConfigError::spawn(std::io::Error::other("no threads left"));
    /// assert_eq!(error.to_string(), "could not start a worker");
    /// assert_eq!(error.source().unwrap().to_string(), "no threads left");
    /// ```
    #[must_use]
    pub fn spawn(error: io::Error) -> Self {
        ConfigError::Spawn(Arc::new(error))
    }
}

/// Equal when the same setting is wrong the same way; two spawn errors are equal when the
/// system's errors have the same kind and message.
impl PartialEq for ConfigError {
    fn eq(&self, other: &Self) -> bool {
        use ConfigError::*;
        match (self, other) {
            (ZeroWorkers, ZeroWorkers) | (ZeroCapacity, ZeroCapacity) | (NoRuntime, NoRuntime) => {
                true
            }
            (MinAboveMax { min: a, max: b }, MinAboveMax { min: c, max: d }) => a == c && b == d,
            (ZeroDuration { setting: a }, ZeroDuration { setting: b }) => a == b,
            (
                InvalidRate {
                    setting: a,
                    value: x,
                },
                InvalidRate {
                    setting: b,
                    value: y,
                },
            ) => a == b && x.to_bits() == y.to_bits(),
            (
                OutOfRange {
                    setting: a,
                    expected: x,
                },
                OutOfRange {
                    setting: b,
                    expected: y,
                },
            ) => a == b && x == y,
            (Spawn(a), Spawn(b)) => a.kind() == b.kind() && a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroWorkers => f.write_str("a pool needs at least one worker"),
            ConfigError::MinAboveMax { min, max } => {
                write!(f, "minimum workers ({min}) exceed maximum workers ({max})")
            }
            ConfigError::ZeroCapacity => f.write_str("queue capacity must be at least 1"),
            ConfigError::ZeroDuration { setting } => write!(f, "{setting} must be positive"),
            ConfigError::InvalidRate { setting, value } => {
                write!(f, "{setting} must be a positive, finite rate, not {value}")
            }
            ConfigError::OutOfRange { setting, expected } => {
                write!(f, "{setting} must be {expected}")
            }
            ConfigError::NoRuntime => f.write_str(
                "no tokio runtime: build inside one, or set runtime_handle or own_runtime",
            ),
            ConfigError::Spawn(_) => f.write_str("could not start a worker"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Spawn(error) => Some(&**error),
            _ => None,
        }
    }
}
