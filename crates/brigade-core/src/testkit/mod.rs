//! The conformance kit: the contracts of `design.md` written once, as checks each backend
//! runs against itself.
//!
//! A backend describes how to build a pool and how to wrap a [`KitJob`] by implementing
//! [`Backend`], then generates one `#[test]` per contract with [`conformance_tests!`]:
//!
//! ```ignore
//! #[derive(Default)]
//! struct ThreadBackend;
//!
//! impl brigade_core::testkit::Backend for ThreadBackend { /* ... */ }
//!
//! brigade_core::conformance_tests!(ThreadBackend);
//! ```
//!
//! The checks call the blocking [`Executor`] methods from plain threads, so async backends
//! run them through their blocking entry points.
//!
//! [`conformance_tests!`]: crate::conformance_tests

mod checks;
mod job;
mod layers;
mod tally;
mod trace;

pub use checks::*;
pub use job::{Behaviour, Gate, KitJob, Probe};
pub use layers::{RetryAfter, StartAfter, Units};
pub use tally::Tally;
pub use trace::{TraceRecord, TraceRecorder, expected_retry_trace};

use std::time::Duration;

use crate::hooks::Layers;
use crate::{ConfigError, Executor};

/// The pool settings a check asks for.
///
/// # Examples
///
/// ```
/// let config = brigade_core::testkit::KitConfig::fixed(4, 16);
/// assert_eq!((config.min_workers, config.max_workers), (4, 4));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KitConfig {
    /// Workers kept alive when idle.
    pub min_workers: usize,
    /// Workers at most.
    pub max_workers: usize,
    /// Jobs the queue holds at most.
    pub queue_capacity: usize,
    /// How long a worker above the minimum stays idle before it retires.
    pub keep_alive: Duration,
}

impl KitConfig {
    /// A fixed-size pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = brigade_core::testkit::KitConfig::fixed(1, 2);
    /// assert_eq!(config.queue_capacity, 2);
    /// ```
    #[must_use]
    pub fn fixed(workers: usize, queue_capacity: usize) -> Self {
        KitConfig {
            min_workers: workers,
            max_workers: workers,
            queue_capacity,
            keep_alive: Duration::from_secs(60),
        }
    }
}

/// How the kit builds a backend's pools and wraps its jobs.
///
/// # Examples
///
/// See the [module docs](self).
pub trait Backend: Sync + 'static {
    /// The backend's job type wrapping a [`KitJob`].
    type Job: Send + 'static;
    /// The backend's pool.
    type Pool: Executor<Self::Job, Output = u64, Error = String> + Send + Sync + 'static;

    /// Builds a pool with these settings and middleware.
    ///
    /// # Errors
    ///
    /// The backend's [`ConfigError`] for settings it cannot work with.
    fn build(
        &self,
        config: KitConfig,
        layers: Layers<Self::Job, String>,
    ) -> Result<Self::Pool, ConfigError>;

    /// Wraps a kit job in the backend's job type.
    fn job(&self, spec: KitJob) -> Self::Job;

    /// Looks inside a wrapped job, to recognise jobs handed back.
    fn spec<'a>(&self, job: &'a Self::Job) -> &'a KitJob;
}

/// Generates one `#[test]` per contract for a backend (a type implementing
/// [`testkit::Backend`](crate::testkit::Backend) and `Default`).
///
/// # Examples
///
/// ```ignore
/// brigade_core::conformance_tests!(ThreadBackend);
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($backend:ty) => {
        $crate::conformance_tests!(@each $backend;
            completes_every_job,
            hands_back_refused_jobs,
            queue_is_bounded,
            contains_panics,
            reports_failures,
            cancels_before_start,
            cancels_running_jobs,
            dropping_a_handle_keeps_the_job,
            executes_without_a_handle,
            waits_until_idle,
            shutdown_runs_everything,
            shutdown_deadline_cancels_and_hands_back,
            shutdown_now_hands_back_unstarted,
            dropping_the_pool_drains_it,
            rejects_bad_configuration,
            grows_and_shrinks,
            resizes_at_run_time,
            accounts_for_every_job,
            submit_racing_shutdown_loses_nothing,
            hook_retries_failed_runs,
            hook_dead_letters,
            hook_admission_policies,
            hook_delays_starts,
            hook_waits_for_capacity,
            hook_deadline_times_out,
        );
    };
    (@each $backend:ty; $($check:ident,)*) => {
        $(
            #[test]
            fn $check() {
                let backend = <$backend as ::core::default::Default>::default();
                $crate::testkit::$check(&backend);
            }
        )*
    };
}
