use std::time::Duration;

use crate::{
    ConfigError, InAsyncContext, JobHandle, ShutdownReport, Stats, SubmitError, SubmitTimeoutError,
    TrySubmitError,
};

/// A pool that accepts jobs of type `J`: the contract every backend keeps, callable from
/// any number of threads.
///
/// A refused job always comes back inside the error. An accepted job always reaches exactly
/// one terminal state, which its handle reports and [`Stats`] counts.
///
/// Async backends implement this trait with blocking methods for callers outside their
/// runtime, and offer `async` methods of their own.
///
/// # Examples
///
/// Code written against the trait runs on any backend:
///
/// ```
/// use brigade_core::{Executor, Job, JobResult};
///
/// fn run_all<J, P>(pool: &P, jobs: Vec<J>) -> Vec<JobResult<P::Output, P::Error>>
/// where
///     P: Executor<J>,
/// {
///     let handles: Vec<_> = jobs
///         .into_iter()
///         .filter_map(|job| pool.submit(job).ok())
///         .collect();
///     handles.into_iter().map(|handle| handle.join()).collect()
/// }
/// # let _ = run_all::<(), NoPool>;
/// # struct NoPool;
/// # impl Executor<()> for NoPool {
/// #     type Output = (); type Error = ();
/// #     fn submit(&self, j: ()) -> Result<brigade_core::JobHandle<(), ()>, brigade_core::SubmitError<()>> { Err(brigade_core::SubmitError::Closed(j)) }
/// #     fn try_submit(&self, j: ()) -> Result<brigade_core::JobHandle<(), ()>, brigade_core::TrySubmitError<()>> { Err(brigade_core::TrySubmitError::Closed(j)) }
/// #     fn submit_timeout(&self, j: (), _: std::time::Duration) -> Result<brigade_core::JobHandle<(), ()>, brigade_core::SubmitTimeoutError<()>> { Err(brigade_core::SubmitTimeoutError::Closed(j)) }
/// #     fn execute(&self, j: ()) -> Result<(), brigade_core::SubmitError<()>> { Err(brigade_core::SubmitError::Closed(j)) }
/// #     fn stats(&self) -> brigade_core::Stats { Default::default() }
/// #     fn wait_idle(&self) -> Result<(), brigade_core::InAsyncContext> { Ok(()) }
/// #     fn resize(&self, _: usize, _: usize) -> Result<(), brigade_core::ConfigError> { Ok(()) }
/// #     fn shutdown(&self) -> Result<brigade_core::ShutdownReport<()>, brigade_core::InAsyncContext> { Ok(Default::default()) }
/// #     fn shutdown_timeout(&self, _: std::time::Duration) -> Result<brigade_core::ShutdownReport<()>, brigade_core::InAsyncContext> { Ok(Default::default()) }
/// #     fn shutdown_now(&self) -> Result<brigade_core::ShutdownReport<()>, brigade_core::InAsyncContext> { Ok(Default::default()) }
/// # }
/// ```
pub trait Executor<J> {
    /// What a job's successful run produces.
    type Output;
    /// What a job's failed run produces.
    type Error;

    /// Queues `job`, waiting while the queue is full (backpressure), and returns its handle.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] after shutdown began; [`SubmitError::Rejected`] when a
    /// middleware refused the job. Either way the job comes back.
    fn submit(&self, job: J) -> Result<JobHandle<Self::Output, Self::Error>, SubmitError<J>>;

    /// Queues `job` if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySubmitError::Full`], [`TrySubmitError::Closed`] or [`TrySubmitError::Rejected`],
    /// with the job.
    fn try_submit(&self, job: J)
    -> Result<JobHandle<Self::Output, Self::Error>, TrySubmitError<J>>;

    /// Queues `job`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`SubmitTimeoutError::Timeout`], [`SubmitTimeoutError::Closed`] or
    /// [`SubmitTimeoutError::Rejected`], with the job.
    fn submit_timeout(
        &self,
        job: J,
        timeout: Duration,
    ) -> Result<JobHandle<Self::Output, Self::Error>, SubmitTimeoutError<J>>;

    /// Queues `job` with no handle (fire and forget), waiting while the queue is full.
    /// Its outcome is still counted in [`Stats`].
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    fn execute(&self, job: J) -> Result<(), SubmitError<J>>;

    /// A snapshot of the pool's gauges and counters.
    fn stats(&self) -> Stats;

    /// Blocks until nothing is queued, delayed or running, without shutting down.
    ///
    /// # Errors
    ///
    /// [`InAsyncContext`] from an async backend called on a thread that drives a
    /// current-thread runtime (it waited for nothing); never from a thread pool.
    fn wait_idle(&self) -> Result<(), InAsyncContext>;

    /// Changes the elastic range of workers at run time.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroWorkers`] or [`ConfigError::MinAboveMax`]; the range is unchanged.
    fn resize(&self, min: usize, max: usize) -> Result<(), ConfigError>;

    /// Stops accepting jobs, runs everything accepted (retries included) and waits for the
    /// workers to exit. Calling it again returns an empty report.
    ///
    /// # Errors
    ///
    /// [`InAsyncContext`] as for [`wait_idle`](Self::wait_idle); the pool is left as it
    /// was, still accepting jobs.
    fn shutdown(&self) -> Result<ShutdownReport<J>, InAsyncContext>;

    /// As [`shutdown`](Self::shutdown), but at `timeout` cancels the running jobs' tokens,
    /// hands back the jobs that never started, and waits for the running ones to return.
    ///
    /// # Errors
    ///
    /// As [`shutdown`](Self::shutdown).
    fn shutdown_timeout(&self, timeout: Duration) -> Result<ShutdownReport<J>, InAsyncContext>;

    /// Stops accepting jobs, cancels the running ones and hands back all unstarted jobs
    /// at once, then waits for the running ones to return.
    ///
    /// # Errors
    ///
    /// As [`shutdown`](Self::shutdown).
    fn shutdown_now(&self) -> Result<ShutdownReport<J>, InAsyncContext>;
}
