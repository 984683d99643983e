use std::time::Duration;

/// A number of job starts per period: `Rate::per_second(10)`, `Rate::per_minute(600)`,
/// `Rate::new(3, Duration::from_millis(250))`.
///
/// A rate is only checked when a limiter is built: zero, negative, infinite or NaN
/// counts, and zero periods, are [`ConfigError::InvalidRate`](brigade_core::ConfigError::InvalidRate)
/// from `build()`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade_middleware::Rate;
///
/// assert_eq!(Rate::per_second(10).interval(), Duration::from_millis(100));
/// assert_eq!(Rate::per_minute(120).interval(), Duration::from_millis(500));
/// assert_eq!(Rate::new(1.5, Duration::from_secs(3)).interval(), Duration::from_secs(2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    count: f64,
    period: Duration,
}

impl Rate {
    /// `count` starts per `period`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rate = brigade_middleware::Rate::new(5, std::time::Duration::from_secs(1));
    /// assert_eq!(rate, brigade_middleware::Rate::per_second(5));
    /// ```
    #[must_use]
    pub fn new(count: impl Into<f64>, period: Duration) -> Self {
        Rate {
            count: count.into(),
            period,
        }
    }

    /// `count` starts per second.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_middleware::Rate::per_second(4).per_period(), 4.0);
    /// ```
    #[must_use]
    pub fn per_second(count: impl Into<f64>) -> Self {
        Self::new(count, Duration::from_secs(1))
    }

    /// `count` starts per minute.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(brigade_middleware::Rate::per_minute(60).interval(), Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn per_minute(count: impl Into<f64>) -> Self {
        Self::new(count, Duration::from_secs(60))
    }

    /// `count` starts per hour.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(brigade_middleware::Rate::per_hour(3600).interval(), Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn per_hour(count: impl Into<f64>) -> Self {
        Self::new(count, Duration::from_secs(3600))
    }

    /// The count per period, as given.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_middleware::Rate::per_minute(3).per_period(), 3.0);
    /// ```
    #[must_use]
    pub fn per_period(&self) -> f64 {
        self.count
    }

    /// The period, as given.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(brigade_middleware::Rate::per_minute(3).period(), Duration::from_secs(60));
    /// ```
    #[must_use]
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The steady spacing between starts (GCRA's emission interval), at least 1 ns.
    ///
    /// Extremes saturate toward the strict side: a rate too slow for a `Duration` (say
    /// `1e-300` per second, whose interval overflows to infinity) gets
    /// [`Duration::MAX`], never the shortest interval; so does an invalid rate (zero,
    /// negative or NaN), which limiters refuse at build time anyway.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_middleware::Rate;
    /// assert_eq!(Rate::per_second(1000).interval(), Duration::from_millis(1));
    /// assert_eq!(Rate::per_second(1e-300).interval(), Duration::MAX);
    /// ```
    #[must_use]
    pub fn interval(&self) -> Duration {
        let nanos = self.period.as_nanos() as f64 / self.count;
        if nanos.is_nan() || nanos < 0.0 {
            Duration::MAX
        } else if nanos < 1.0 {
            // Faster than the clock resolves: one start per nanosecond, the most it can say.
            Duration::from_nanos(1)
        } else if nanos < u64::MAX as f64 {
            Duration::from_nanos(nanos as u64)
        } else {
            Duration::try_from_secs_f64(nanos / 1e9).unwrap_or(Duration::MAX)
        }
    }

    /// Checks the rate for a limiter, naming the setting in the error.
    pub(crate) fn validate(&self, setting: &'static str) -> Result<(), brigade_core::ConfigError> {
        if !self.count.is_finite() || self.count <= 0.0 {
            return Err(brigade_core::ConfigError::InvalidRate {
                setting,
                value: self.count,
            });
        }
        if self.period.is_zero() {
            // A zero period is an infinite rate.
            return Err(brigade_core::ConfigError::InvalidRate {
                setting,
                value: f64::INFINITY,
            });
        }
        Ok(())
    }
}
