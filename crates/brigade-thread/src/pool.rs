//! The pool handle users hold.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade_core::backend::{Reply, ResultSlot, WorkerRange};
use brigade_core::{
    BoxJob, ConfigError, Executor, InAsyncContext, Job, JobHandle, ShutdownReport, Stats,
    SubmitError, SubmitTimeoutError, TrySubmitError,
};

use crate::builder::{Builder, spawn_to_min};
use crate::shared::Shared;
use crate::shutdown::{Mode, shut_down};
use crate::submit::{Refusal, Wait, submit};

/// A pool of OS threads running jobs of type `J` from a bounded queue.
///
/// Cloning is not offered: share it with `Arc` or borrow it (every method takes `&self`
/// and the pool is `Send + Sync`). Dropping it shuts it down gracefully: it stops
/// accepting jobs, runs everything accepted (delayed retries included) and joins its
/// threads. A pool shut down (or dropped, or waited on) from one of its own jobs waits for
/// everything but that job and the jobs that wait for it (see [`wait_idle`]), and does not
/// join the thread running it.
///
/// [`wait_idle`]: Self::wait_idle
///
/// A pool typed on its job (a closure type, or your own `Job`) stores jobs inline;
/// [`BoxPool`] takes any closure at the cost of one box per job.
///
/// # Examples
///
/// ```
/// use brigade_core::JobContext;
/// use brigade_thread::ThreadPool;
///
/// fn square(n: u64) -> impl FnMut(&JobContext) -> Result<u64, String> + Send + 'static {
///     move |_| Ok(n * n)
/// }
///
/// let pool = ThreadPool::builder().workers(2).build()?;
/// let handles: Vec<_> = (1..=3).map(|n| pool.submit(square(n)).unwrap()).collect();
/// let squares: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
/// assert_eq!(squares, [1, 4, 9]);
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub struct ThreadPool<J: Job> {
    shared: Arc<Shared<J>>,
}

/// A pool of boxed jobs: any closure returning `Result<T, E>`, one allocation per job.
///
/// # Examples
///
/// ```
/// use brigade_core::{BoxJob, JobContext, job_fn};
/// use brigade_thread::BoxPool;
///
/// let pool = BoxPool::<String, String>::builder().workers(2).build()?;
/// let greeting = pool.submit(BoxJob::new(job_fn(|cx| Ok(format!("hello from {}", cx.pool_name())))));
/// assert_eq!(greeting.unwrap().join().unwrap(), "hello from brigade");
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub type BoxPool<T, E> = ThreadPool<BoxJob<T, E>>;

type Handle<J> = JobHandle<<J as Job>::Output, <J as Job>::Error>;

impl<J: Job> ThreadPool<J> {
    /// A builder with the defaults documented on [`Builder`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = brigade_thread::BoxPool::<(), String>::builder().workers(1).build()?;
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn builder() -> Builder<J> {
        Builder::new()
    }

    pub(crate) fn from_shared(shared: Arc<Shared<J>>) -> Self {
        ThreadPool { shared }
    }

    /// The pool's name.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = brigade_thread::BoxPool::<(), String>::builder().name("thumbs").workers(1).build()?;
    /// assert_eq!(pool.name(), "thumbs");
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        self.shared.driver.name()
    }

    /// Queues `job`, waiting while the queue is full (backpressure), and returns its handle.
    /// Callable from any number of threads.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] once a shutdown began (also for a submit that was waiting
    /// for room then), [`SubmitError::Rejected`] when a middleware refused the job; either
    /// way with the job.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, job_fn};
    /// let pool = brigade_thread::ThreadPool::builder().workers(1).build()?;
    /// let handle = pool.submit(job_fn(|cx| Ok::<_, String>(cx.attempt()))).unwrap();
    /// assert_eq!(handle.join().unwrap(), 1);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn submit(&self, job: J) -> Result<Handle<J>, SubmitError<J>> {
        match submit(&self.shared, job, Reply::Handle, Wait::Block) {
            Ok(handle) => Ok(handle.expect("asked for a handle")),
            Err(Refusal::Rejected(job, reason)) => Err(SubmitError::Rejected(job, reason)),
            Err(Refusal::Closed(job) | Refusal::Full(job) | Refusal::Timeout(job)) => {
                Err(SubmitError::Closed(job))
            }
        }
    }

    /// Queues `job` if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySubmitError::Full`], [`TrySubmitError::Closed`] or [`TrySubmitError::Rejected`],
    /// with the job.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_core::{BoxJob, JobContext, job_fn};
    ///
    /// let pool = brigade_thread::BoxPool::<(), String>::builder().workers(1).queue_capacity(1).build()?;
    /// let gate = brigade_core::CancellationToken::new();
    /// let wait = |gate: brigade_core::CancellationToken| {
    ///     BoxJob::new(job_fn(move |_| { gate.wait_timeout(Duration::from_secs(10)); Ok(()) }))
    /// };
    /// let running = pool.submit(wait(gate.clone())).unwrap();
    /// while pool.stats().queued > 0 { std::thread::yield_now(); } // the worker took it
    /// let queued = pool.try_submit(wait(gate.clone())).unwrap();
    /// let full = pool.try_submit(wait(gate.clone())).unwrap_err();
    /// assert!(full.is_full());
    /// gate.cancel();
    /// # drop((running, queued));
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn try_submit(&self, job: J) -> Result<Handle<J>, TrySubmitError<J>> {
        match submit(&self.shared, job, Reply::Handle, Wait::Never) {
            Ok(handle) => Ok(handle.expect("asked for a handle")),
            Err(Refusal::Rejected(job, reason)) => Err(TrySubmitError::Rejected(job, reason)),
            Err(Refusal::Closed(job)) => Err(TrySubmitError::Closed(job)),
            Err(Refusal::Full(job) | Refusal::Timeout(job)) => Err(TrySubmitError::Full(job)),
        }
    }

    /// Queues `job`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`SubmitTimeoutError::Timeout`], [`SubmitTimeoutError::Closed`] (also when a
    /// shutdown began while it waited for room) or [`SubmitTimeoutError::Rejected`], with
    /// the job.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_core::{JobContext, job_fn};
    /// let pool = brigade_thread::ThreadPool::builder().workers(1).build()?;
    /// let handle = pool.submit_timeout(job_fn(|_| Ok::<_, String>(7)), Duration::from_secs(1));
    /// assert_eq!(handle.unwrap().join().unwrap(), 7);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn submit_timeout(
        &self,
        job: J,
        timeout: Duration,
    ) -> Result<Handle<J>, SubmitTimeoutError<J>> {
        let wait = match Instant::now().checked_add(timeout) {
            Some(deadline) => Wait::Until(deadline),
            None => Wait::Block,
        };
        match submit(&self.shared, job, Reply::Handle, wait) {
            Ok(handle) => Ok(handle.expect("asked for a handle")),
            Err(Refusal::Rejected(job, reason)) => Err(SubmitTimeoutError::Rejected(job, reason)),
            Err(Refusal::Closed(job)) => Err(SubmitTimeoutError::Closed(job)),
            Err(Refusal::Full(job) | Refusal::Timeout(job)) => {
                Err(SubmitTimeoutError::Timeout(job))
            }
        }
    }

    /// Queues `job` with no handle (fire and forget), waiting while the queue is full. Its
    /// outcome is counted in [`stats`](Self::stats). On a typed pool this allocates nothing.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use brigade_core::{JobContext, job_fn};
    ///
    /// let pool = brigade_thread::ThreadPool::builder().workers(2).build()?;
    /// let sent = Arc::new(AtomicU32::new(0));
    /// for _ in 0..10 {
    ///     let sent = sent.clone();
    ///     pool.execute(job_fn(move |_| Ok::<_, String>(sent.fetch_add(1, Ordering::Relaxed)))).ok();
    /// }
    /// pool.wait_idle();
    /// assert_eq!(sent.load(Ordering::Relaxed), 10);
    /// assert_eq!(pool.stats().completed, 10);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn execute(&self, job: J) -> Result<(), SubmitError<J>> {
        self.submit_without_handle(job, Reply::Detached)
    }

    /// Queues `job` as [`execute`](Self::execute) does, its result going to `slot`, its
    /// turn in a bulk run's ordered results.
    pub(crate) fn submit_in_turn(
        &self,
        job: J,
        slot: ResultSlot<J::Output, J::Error>,
    ) -> Result<(), SubmitError<J>> {
        self.submit_without_handle(job, Reply::Slot(slot))
    }

    fn submit_without_handle(
        &self,
        job: J,
        reply: Reply<J::Output, J::Error>,
    ) -> Result<(), SubmitError<J>> {
        match submit(&self.shared, job, reply, Wait::Block) {
            Ok(_) => Ok(()),
            Err(Refusal::Rejected(job, reason)) => Err(SubmitError::Rejected(job, reason)),
            Err(Refusal::Closed(job) | Refusal::Full(job) | Refusal::Timeout(job)) => {
                Err(SubmitError::Closed(job))
            }
        }
    }

    /// A snapshot of the pool's gauges and counters; cheap enough to poll from a progress bar.
    /// `busy` is derived: what is in flight but neither queued nor delayed.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = brigade_thread::BoxPool::<(), String>::builder().workers(2).build()?;
    /// let stats = pool.stats();
    /// assert_eq!((stats.workers, stats.queued, stats.submitted), (2, 0, 0));
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Blocks until nothing is queued, delayed or running, without shutting down.
    /// Waits on a condition variable (no spinning).
    ///
    /// Called from one of the pool's own jobs, the calling job does not count, and neither
    /// do the jobs that wait for it: those queued or delayed when its worker is the pool's
    /// only one and the pool may not grow, and those parked for capacity while no other job
    /// runs. It returns once only those are left, since waiting for them would wait for
    /// ever. Nothing signals that state (a job parking behind the caller ends nothing), so
    /// this wait, rare, looks again every 10 ms.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, job_fn};
    /// let pool = brigade_thread::ThreadPool::builder().workers(2).build()?;
    /// for _ in 0..5 {
    ///     pool.execute(job_fn(|_| Ok::<_, String>(()))).ok();
    /// }
    /// pool.wait_idle();
    /// assert!(pool.stats().is_balanced());
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn wait_idle(&self) {
        self.shared.wait_idle_until(None);
    }

    /// Changes the range of workers at run time: grows to `min` at once; workers above
    /// `max` retire as soon as they finish their job (idle ones at once); those above `min`
    /// retire after `keep_alive` without work.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroWorkers`], [`ConfigError::MinAboveMax`], or
    /// [`ConfigError::ZeroDuration`] (an elastic range with a zero `keep_alive`); the range
    /// is then unchanged. [`ConfigError::Spawn`] if a worker could not be started.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = brigade_thread::BoxPool::<(), String>::builder().workers(1).build()?;
    /// pool.resize(3, 6)?;
    /// assert_eq!(pool.stats().workers, 3);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn resize(&self, min: usize, max: usize) -> Result<(), ConfigError> {
        WorkerRange { min, max }.validate(self.shared.keep_alive)?;
        self.shared.roster.set_range(min, max);
        // Nudge idle workers: those above the new maximum retire now, and those above a
        // lowered minimum, which waited with no timeout, start their keep-alive. Busy
        // workers look again between jobs, and a stale wake-up costs a worker one loop.
        let surplus = self.shared.roster.live().saturating_sub(min);
        for _ in 0..surplus {
            self.shared.signals.wake_one();
        }
        spawn_to_min(&self.shared)
    }

    /// Stops accepting jobs, runs everything accepted (delayed retries included) and joins
    /// the threads. Calling it again returns an empty report. Submitters waiting for room
    /// get their jobs back as [`SubmitError::Closed`].
    ///
    /// Called from one of the pool's own jobs, it waits as [`wait_idle`](Self::wait_idle)
    /// does from there, and hands back the jobs left waiting for the caller (their handles
    /// end as returned). Called from one of them while another shutdown is under way, it
    /// returns an empty report at once: the other shutdown waits for the calling job.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, job_fn};
    /// let pool = brigade_thread::ThreadPool::builder().workers(2).build()?;
    /// let job = job_fn(|_| Ok::<_, String>(1));
    /// let handle = pool.submit(job).unwrap();
    /// let report = pool.shutdown();
    /// assert!(report.is_clean());
    /// assert_eq!(handle.join().unwrap(), 1);
    /// assert!(pool.submit(job).is_err());
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn shutdown(&self) -> ShutdownReport<J> {
        shut_down(&self.shared, Mode::Graceful)
    }

    /// As [`shutdown`](Self::shutdown), but at `timeout` cancels the running jobs' tokens,
    /// hands back the jobs that never started (their handles end as returned), and waits
    /// for the running ones to return.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_core::{BoxJob, JobContext, job_fn};
    ///
    /// let pool = brigade_thread::BoxPool::<(), String>::builder().workers(1).build()?;
    /// let slow = || BoxJob::new(job_fn(|cx| {
    ///     cx.token().wait_timeout(Duration::from_secs(10));
    ///     Err("stopped".to_string())
    /// }));
    /// let running = pool.submit(slow()).unwrap();
    /// let queued = pool.submit(slow()).unwrap();
    /// let report = pool.shutdown_timeout(Duration::from_millis(50));
    /// assert!(report.deadline_passed);
    /// assert_eq!(report.unstarted.len() as u64 + report.finished, 2);
    /// assert!(running.join().is_err());
    /// # drop(queued);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn shutdown_timeout(&self, timeout: Duration) -> ShutdownReport<J> {
        let mode = match Instant::now().checked_add(timeout) {
            Some(deadline) => Mode::Deadline(deadline),
            None => Mode::Graceful,
        };
        shut_down(&self.shared, mode)
    }

    /// Stops accepting jobs, cancels the running ones and hands back every unstarted job
    /// at once, then waits for the running ones to return.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, job_fn};
    /// let pool = brigade_thread::ThreadPool::builder().workers(1).build()?;
    /// let report = pool.shutdown_now();
    /// assert!(report.unstarted.is_empty());
    /// assert!(pool.submit(job_fn(|_| Ok::<_, String>(()))).is_err());
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn shutdown_now(&self) -> ShutdownReport<J> {
        shut_down(&self.shared, Mode::Now)
    }
}

impl<J: Job> Executor<J> for ThreadPool<J> {
    type Output = J::Output;
    type Error = J::Error;

    fn submit(&self, job: J) -> Result<Handle<J>, SubmitError<J>> {
        ThreadPool::submit(self, job)
    }

    fn try_submit(&self, job: J) -> Result<Handle<J>, TrySubmitError<J>> {
        ThreadPool::try_submit(self, job)
    }

    fn submit_timeout(
        &self,
        job: J,
        timeout: Duration,
    ) -> Result<Handle<J>, SubmitTimeoutError<J>> {
        ThreadPool::submit_timeout(self, job, timeout)
    }

    fn execute(&self, job: J) -> Result<(), SubmitError<J>> {
        ThreadPool::execute(self, job)
    }

    fn stats(&self) -> Stats {
        ThreadPool::stats(self)
    }

    fn wait_idle(&self) -> Result<(), InAsyncContext> {
        ThreadPool::wait_idle(self);
        Ok(())
    }

    fn resize(&self, min: usize, max: usize) -> Result<(), ConfigError> {
        ThreadPool::resize(self, min, max)
    }

    fn shutdown(&self) -> Result<ShutdownReport<J>, InAsyncContext> {
        Ok(ThreadPool::shutdown(self))
    }

    fn shutdown_timeout(&self, timeout: Duration) -> Result<ShutdownReport<J>, InAsyncContext> {
        Ok(ThreadPool::shutdown_timeout(self, timeout))
    }

    fn shutdown_now(&self) -> Result<ShutdownReport<J>, InAsyncContext> {
        Ok(ThreadPool::shutdown_now(self))
    }
}

impl<J: Job> Drop for ThreadPool<J> {
    fn drop(&mut self) {
        let _ = shut_down(&self.shared, Mode::Graceful);
    }
}

impl<J: Job> fmt::Debug for ThreadPool<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (min, max) = self.shared.roster.range();
        f.debug_struct("ThreadPool")
            .field("name", self.shared.driver.name())
            .field("min_workers", &min)
            .field("max_workers", &max)
            .field("queue_capacity", &self.shared.ready.capacity())
            .field("layers", self.shared.driver.layers())
            .field("stats", &self.shared.stats())
            .finish()
    }
}
