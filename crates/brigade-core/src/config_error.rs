use std::fmt;

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
#[derive(Clone, Debug, PartialEq)]
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
    /// The operating system refused to start a worker thread or a runtime.
    Spawn(String),
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
            ConfigError::Spawn(reason) => write!(f, "could not start a worker: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}
