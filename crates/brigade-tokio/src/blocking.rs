//! The blocking [`Executor`] contract, for callers outside the runtime.

use std::time::Duration;

use brigade_core::{
    AsyncJob, ConfigError, Executor, InAsyncContext, ShutdownReport, Stats, SubmitError,
    SubmitTimeoutError, TrySubmitError,
};

use crate::pool::may_block;
use crate::{AsyncJobHandle, TokioPool};

/// The blocking contract shared with the thread backend: each method blocks the calling
/// thread on the async method of the same name.
///
/// Outside a runtime they block on the pool's runtime; on a thread of a multi-thread runtime
/// they block through `block_in_place`, so the runtime's other workers go on driving tasks
/// (a dead-letter replay into a tokio pool from async code works this way). On a thread
/// that drives a current-thread runtime, blocking would stall the only thread that runs the
/// pool's tasks: the submits hand the job back as `InAsyncContext`
/// ([`SubmitError::InAsyncContext`], [`SubmitTimeoutError::InAsyncContext`]), and
/// `wait_idle` and the shutdowns do nothing and return [`InAsyncContext`]; await
/// [`TokioPool::wait_idle`] or [`TokioPool::shutdown`] there.
///
/// # Examples
///
/// ```
/// use brigade_core::{Executor, JobContext, async_job_fn};
///
/// let pool = brigade_tokio::TokioPool::builder().own_runtime(2).workers(2).build().unwrap();
/// let handle = Executor::submit(&pool, async_job_fn(|_cx| async { Ok::<_, String>(4) })).unwrap();
/// assert_eq!(handle.join().unwrap(), 4);
/// assert!(Executor::shutdown(&pool).unwrap().is_clean());
/// ```
impl<J: AsyncJob> Executor<J> for TokioPool<J> {
    type Output = J::Output;
    type Error = J::Error;

    fn submit(&self, job: J) -> Result<AsyncJobHandle<J>, SubmitError<J>> {
        self.blocking_submit(job)
    }

    fn try_submit(&self, job: J) -> Result<AsyncJobHandle<J>, TrySubmitError<J>> {
        TokioPool::try_submit(self, job)
    }

    fn submit_timeout(
        &self,
        job: J,
        timeout: Duration,
    ) -> Result<AsyncJobHandle<J>, SubmitTimeoutError<J>> {
        if !may_block() {
            return Err(SubmitTimeoutError::InAsyncContext(job));
        }
        self.block_on(TokioPool::submit_timeout(self, job, timeout))
    }

    fn execute(&self, job: J) -> Result<(), SubmitError<J>> {
        if !may_block() {
            return Err(SubmitError::InAsyncContext(job));
        }
        self.block_on(TokioPool::execute(self, job))
    }

    fn stats(&self) -> Stats {
        TokioPool::stats(self)
    }

    fn wait_idle(&self) -> Result<(), InAsyncContext> {
        self.block_on_checked(TokioPool::wait_idle(self))
    }

    fn resize(&self, min: usize, max: usize) -> Result<(), ConfigError> {
        TokioPool::resize(self, min, max)
    }

    fn shutdown(&self) -> Result<ShutdownReport<J>, InAsyncContext> {
        self.block_on_checked(TokioPool::shutdown(self))
    }

    fn shutdown_timeout(&self, timeout: Duration) -> Result<ShutdownReport<J>, InAsyncContext> {
        self.block_on_checked(TokioPool::shutdown_timeout(self, timeout))
    }

    fn shutdown_now(&self) -> Result<ShutdownReport<J>, InAsyncContext> {
        self.block_on_checked(TokioPool::shutdown_now(self))
    }
}
