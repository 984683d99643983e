//! Per-job deadlines.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade_core::ConfigError;
use brigade_core::hooks::Middleware;

type TimeoutFn<J> = dyn Fn(&J) -> Option<Duration> + Send + Sync;

/// A deadline for each run: past it the backend cancels the job's token, and a run that
/// gives up ends [`TimedOut`](brigade_core::ErrorKind::TimedOut) — an outcome
/// ([`RunOutcome::TimedOut`](brigade_core::hooks::RunOutcome::TimedOut)) that a
/// [`Retry`](crate::Retry) layer may act on.
///
/// Cancellation is cooperative: a job sees the deadline in
/// [`JobContext::deadline`](brigade_core::JobContext::deadline) and its token, and must
/// check them. Each run gets its own deadline, counted from its start.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use brigade_core::hooks::Middleware;
/// use brigade_middleware::Timeout;
///
/// let timeout = Timeout::after(Duration::from_secs(2))?;
/// let started = Instant::now();
/// assert_eq!(
///     Middleware::<(), ()>::deadline(&timeout, &(), started),
///     Some(started + Duration::from_secs(2))
/// );
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub struct Timeout<J> {
    limit: Limit<J>,
}

enum Limit<J> {
    Fixed(Duration),
    PerJob(Arc<TimeoutFn<J>>),
}

impl<J: 'static> Timeout<J> {
    /// The same time limit for every run.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroDuration`] for a zero limit (every run would time out at once).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_middleware::Timeout::<()>::after(std::time::Duration::ZERO).is_err());
    /// ```
    pub fn after(limit: Duration) -> Result<Self, ConfigError> {
        if limit.is_zero() {
            return Err(ConfigError::ZeroDuration { setting: "timeout" });
        }
        Ok(Timeout {
            limit: Limit::Fixed(limit),
        })
    }

    /// A time limit chosen per job; `None` lets the job run without one. A zero limit
    /// times the run out at its start.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use brigade_core::hooks::Middleware;
    ///
    /// struct Upload { megabytes: u64 }
    /// let timeout = brigade_middleware::Timeout::per_job(|job: &Upload| {
    ///     Some(Duration::from_secs(1 + job.megabytes / 10))
    /// });
    /// let now = Instant::now();
    /// let deadline = Middleware::<Upload, ()>::deadline(&timeout, &Upload { megabytes: 50 }, now);
    /// assert_eq!(deadline, Some(now + Duration::from_secs(6)));
    /// ```
    #[must_use]
    pub fn per_job(limit: impl Fn(&J) -> Option<Duration> + Send + Sync + 'static) -> Self {
        Timeout {
            limit: Limit::PerJob(Arc::new(limit)),
        }
    }

    /// The time limit for `job`'s runs, if it has one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let timeout = brigade_middleware::Timeout::after(Duration::from_millis(10))?;
    /// assert_eq!(timeout.limit(&()), Some(Duration::from_millis(10)));
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn limit(&self, job: &J) -> Option<Duration> {
        match &self.limit {
            Limit::Fixed(limit) => Some(*limit),
            Limit::PerJob(limit) => limit(job),
        }
    }
}

impl<J: 'static, E> Middleware<J, E> for Timeout<J> {
    fn name(&self) -> &'static str {
        "timeout"
    }

    /// No `after_run`: it never reads when a run started.
    fn times_runs(&self) -> bool {
        false
    }

    /// No `after_run`: successful runs need not come here.
    fn sees_successes(&self) -> bool {
        false
    }

    /// No `before_start`: starts need not come here.
    fn sees_starts(&self) -> bool {
        false
    }

    /// No `admit`: submits need not come here.
    fn sees_submits(&self) -> bool {
        false
    }

    fn deadline(&self, job: &J, started: Instant) -> Option<Instant> {
        self.limit(job).and_then(|limit| started.checked_add(limit))
    }
}

impl<J> fmt::Debug for Timeout<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.limit {
            Limit::Fixed(limit) => f.debug_tuple("Timeout").field(limit).finish(),
            Limit::PerJob(_) => f.write_str("Timeout(per job)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brigade_core::hooks::Layers;

    #[test]
    fn the_earliest_deadline_of_the_layers_wins() {
        let layers = Layers::<u64, ()>::new()
            .with(Timeout::after(Duration::from_secs(10)).unwrap())
            .with(Timeout::per_job(|secs: &u64| {
                (*secs > 0).then(|| Duration::from_secs(*secs))
            }));
        let now = Instant::now();
        assert_eq!(layers.deadline(&3, now), Some(now + Duration::from_secs(3)));
        assert_eq!(
            layers.deadline(&0, now),
            Some(now + Duration::from_secs(10))
        );
        assert_eq!(
            layers.deadline(&30, now),
            Some(now + Duration::from_secs(10))
        );
    }

    #[test]
    fn a_huge_limit_means_no_deadline_rather_than_a_panic() {
        let timeout = Timeout::after(Duration::MAX).unwrap();
        assert_eq!(
            Middleware::<(), ()>::deadline(&timeout, &(), Instant::now()),
            None
        );
    }
}
