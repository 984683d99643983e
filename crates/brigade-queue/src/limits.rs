use std::time::Duration;

use brigade_core::ConfigError;

use crate::MAX_SCHEDULE_AHEAD;

/// A rate limit shared by every worker of every host, kept in the store and measured on the
/// store's clock: GCRA, `count` starts per `period` with bursts of up to `burst`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade_queue::GlobalRate;
///
/// let smtp = GlobalRate::new("smtp", 50, Duration::from_secs(1))?.burst(5)?;
/// assert_eq!(smtp.interval(), Duration::from_millis(20));
/// assert_eq!(smtp.burst_size(), 5);
/// assert!(GlobalRate::new("smtp", 0, Duration::from_secs(1)).is_err());
/// let yearly = GlobalRate::new("audit", 1, Duration::from_secs(365 * 86_400))?;
/// assert!(yearly.clone().burst(100).is_ok());
/// assert!(yearly.burst(1_000).is_err(), "a millennium of starts at once");
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalRate {
    key: String,
    interval: Duration,
    burst: u32,
}

impl GlobalRate {
    /// `count` starts per `period` under the name `key`, burst 1.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRate`] for a zero count, [`ConfigError::ZeroDuration`] for a
    /// zero period, [`ConfigError::OutOfRange`] for an empty key, an interval under a
    /// microsecond (the store's resolution) or over [`MAX_SCHEDULE_AHEAD`].
    ///
    /// # Examples
    ///
    /// See [`GlobalRate`].
    pub fn new(key: impl Into<String>, count: u32, period: Duration) -> Result<Self, ConfigError> {
        let key = key.into();
        if key.is_empty() {
            return Err(ConfigError::OutOfRange {
                setting: "global rate key",
                expected: "a name",
            });
        }
        if period.is_zero() {
            return Err(ConfigError::ZeroDuration {
                setting: "global rate period",
            });
        }
        if count == 0 {
            return Err(ConfigError::InvalidRate {
                setting: "global rate",
                value: 0.0,
            });
        }
        let interval = period / count;
        if interval < Duration::from_micros(1) {
            return Err(ConfigError::OutOfRange {
                setting: "global rate",
                expected: "at most one start per microsecond (the store's clock resolution)",
            });
        }
        if interval > MAX_SCHEDULE_AHEAD {
            return Err(ConfigError::OutOfRange {
                setting: "global rate",
                expected: "at least one start per MAX_SCHEDULE_AHEAD (a century)",
            });
        }
        Ok(Self {
            key,
            interval,
            burst: 1,
        })
    }

    /// Up to `burst` starts at once after a quiet spell (at least 1).
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] for a burst of 0, or one whose intervals add up to more
    /// than [`MAX_SCHEDULE_AHEAD`].
    ///
    /// # Examples
    ///
    /// See [`GlobalRate`].
    pub fn burst(mut self, burst: u32) -> Result<Self, ConfigError> {
        if burst == 0 {
            return Err(ConfigError::OutOfRange {
                setting: "global rate burst",
                expected: "at least 1",
            });
        }
        // The store keeps the limit as a time up to a burst of intervals ahead of now:
        // past the horizon its clock arithmetic holds, every take would fail.
        if self
            .interval
            .checked_mul(burst)
            .is_none_or(|span| span > MAX_SCHEDULE_AHEAD)
        {
            return Err(ConfigError::OutOfRange {
                setting: "global rate burst",
                expected: "a burst of intervals within MAX_SCHEDULE_AHEAD (a century)",
            });
        }
        self.burst = burst;
        Ok(self)
    }

    /// The limit's name: every worker naming it shares it.
    ///
    /// # Examples
    ///
    /// ```
    /// let rate = brigade_queue::GlobalRate::new("api", 1, std::time::Duration::from_secs(1))?;
    /// assert_eq!(rate.key(), "api");
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The steady spacing between starts.
    ///
    /// # Examples
    ///
    /// See [`GlobalRate`].
    #[must_use]
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The burst size.
    ///
    /// # Examples
    ///
    /// See [`GlobalRate`].
    #[must_use]
    pub fn burst_size(&self) -> u32 {
        self.burst
    }
}

/// What the store answered a request for rate tokens.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade_queue::RateGrant;
///
/// let grant = RateGrant { granted: 0, retry_after: Duration::from_millis(20) };
/// assert!(!grant.is_granted());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateGrant {
    /// How many starts were granted (at most the number asked for).
    pub granted: u32,
    /// When nothing was granted, how long until the next start would be.
    pub retry_after: Duration,
}

impl RateGrant {
    /// Whether at least one start was granted.
    ///
    /// # Examples
    ///
    /// See [`RateGrant`].
    #[must_use]
    pub fn is_granted(&self) -> bool {
        self.granted > 0
    }
}

/// A weighted concurrency limit shared by every worker of every host: at most `capacity`
/// units held at once under the name `key`. Each holder is a job's lease and expires with
/// it, so a crashed worker's units come back when its leases run out.
///
/// # Examples
///
/// ```
/// use brigade_queue::GlobalConcurrency;
///
/// let gpu = GlobalConcurrency::new("gpu-memory-gb", 80)?;
/// assert_eq!(gpu.capacity(), 80);
/// assert!(GlobalConcurrency::new("gpu", 0).is_err());
/// assert!(GlobalConcurrency::new("gpu", u32::MAX).is_err());
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalConcurrency {
    key: String,
    capacity: u32,
}

impl GlobalConcurrency {
    /// At most `capacity` units at once under `key`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCapacity`] for a zero capacity, [`ConfigError::OutOfRange`] for an
    /// empty key or a capacity above `i32::MAX`.
    ///
    /// # Examples
    ///
    /// See [`GlobalConcurrency`].
    pub fn new(key: impl Into<String>, capacity: u32) -> Result<Self, ConfigError> {
        let key = key.into();
        if key.is_empty() {
            return Err(ConfigError::OutOfRange {
                setting: "global concurrency key",
                expected: "a name",
            });
        }
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        if i32::try_from(capacity).is_err() {
            return Err(ConfigError::OutOfRange {
                setting: "global concurrency capacity",
                expected: "at most i32::MAX units (the widest count every store keeps)",
            });
        }
        Ok(Self { key, capacity })
    }

    /// The limit's name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_queue::GlobalConcurrency::new("db", 4)?.key(), "db");
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The units available in all.
    ///
    /// # Examples
    ///
    /// See [`GlobalConcurrency`].
    #[must_use]
    pub fn capacity(&self) -> u32 {
        self.capacity
    }
}
