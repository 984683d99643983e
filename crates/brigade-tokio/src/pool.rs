use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use brigade_core::backend::Reply;
use brigade_core::{
    AsyncJob, BoxAsyncJob, ConfigError, InAsyncContext, JobHandle, ShutdownReport, Stats,
    SubmitError, SubmitTimeoutError, TrySubmitError,
};
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use crate::Builder;
use crate::shared::{Engine, Offer, Shared};

/// A bounded pool of async jobs on tokio: a queue of at most `queue_capacity` jobs drained
/// by `min_workers..=max_workers` worker tasks, each running one job at a time.
///
/// Every accepted job reaches exactly one terminal state, reported by its
/// [`JobHandle`] (a future: `.await` it) and counted in [`stats`](Self::stats). A refused
/// job comes back inside the error.
///
/// # Dropping the pool
///
/// Dropping a pool shuts it down gracefully: it stops accepting jobs and its workers run
/// everything already accepted (retries included), then exit. On the caller's runtime the
/// drop does not block (blocking would stall that runtime): the workers finish in the
/// background, tracked, and [`drained`](Self::drained), taken before the drop, resolves
/// when the last of them has exited. A pool that owns its runtime
/// ([`Builder::own_runtime`]) blocks in `drop` until drained, then shuts its runtime down
/// (from inside another runtime it hands that wait to a thread). Either way no task of the
/// pool outlives it unnoticed.
///
/// # When its runtime shuts down
///
/// Tokio drops the tasks of a runtime that shuts down, jobs and all. If the runtime the
/// pool runs on goes first, a job it was running ends
/// [`Cancelled`](brigade_core::ErrorKind::Cancelled), the jobs it had not started (queued,
/// waiting for a retry's or a deferred start's time, or parked for capacity) end
/// [`Returned`](brigade_core::ErrorKind::Returned) (the next shutdown's report hands them
/// back, and it may run on another runtime), every one counted, even when no worker was
/// left to run them; the pool then turns new jobs away as `Closed`, since nothing would run
/// them.
///
/// # Examples
///
/// ```
/// use brigade_core::{JobContext, async_job_fn};
/// use brigade_tokio::TokioPool;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = TokioPool::builder().workers(4).queue_capacity(16).build().unwrap();
/// let mut handles = Vec::new();
/// for n in 1..=5u64 {
///     let job = async_job_fn(move |_cx| async move { Ok::<_, String>(n * n) });
///     handles.push(pool.submit(job).await.unwrap());
/// }
/// let mut squares = Vec::new();
/// for handle in handles {
///     squares.push(handle.await.unwrap());
/// }
/// assert_eq!(squares, vec![1, 4, 9, 16, 25]);
/// assert!(pool.shutdown().await.is_clean());
/// # }
/// ```
pub struct TokioPool<J: AsyncJob> {
    pub(crate) shared: Arc<Shared<J>>,
    own_runtime: Option<Runtime>,
}

/// How often a `wait_idle` or a shutdown awaited by one of the pool's own jobs looks again
/// whether only jobs waiting for the caller are left.
const RECHECK_FROM_OWN_JOB: Duration = Duration::from_millis(10);

/// A pool of boxed async jobs, for mixing different closures in one pool (the thread
/// backend's `BoxPool` on tokio).
///
/// # Examples
///
/// ```
/// use brigade_core::{BoxAsyncJob, JobContext, async_job_fn};
/// use brigade_tokio::BoxPool;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool: BoxPool<u32, String> = BoxPool::builder().workers(2).build().unwrap();
/// let one = pool.submit(BoxAsyncJob::new(async_job_fn(|_cx| async { Ok(1) }))).await.unwrap();
/// let two = pool.submit(BoxAsyncJob::new(async_job_fn(|cx| async move { Ok(cx.attempt() + 1) }))).await.unwrap();
/// assert_eq!((one.await, two.await), (Ok(1), Ok(2)));
/// # }
/// ```
pub type BoxPool<T, E> = TokioPool<BoxAsyncJob<T, E>>;

/// The handle of one job in a [`TokioPool`]: a [`JobHandle`] of the job's output and error
/// (not a tokio runtime `Handle`).
pub type AsyncJobHandle<J> = JobHandle<<J as AsyncJob>::Output, <J as AsyncJob>::Error>;

impl<J: AsyncJob> TokioPool<J> {
    /// Starts configuring a pool.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::BoxAsyncJob;
    /// let builder = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder();
    /// # let _ = builder;
    /// ```
    pub fn builder() -> Builder<J> {
        Builder::new()
    }

    pub(crate) fn from_parts(shared: Arc<Shared<J>>, own_runtime: Option<Runtime>) -> Self {
        TokioPool {
            shared,
            own_runtime,
        }
    }

    /// The pool's name.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::BoxAsyncJob;
    /// let pool = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder()
    ///     .name("mailer").own_runtime(1).build().unwrap();
    /// assert_eq!(pool.name(), "mailer");
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        self.shared.driver.name()
    }

    /// The runtime the pool's tasks run on.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::BoxAsyncJob;
    /// let pool = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder().own_runtime(1).build().unwrap();
    /// let _handle: tokio::runtime::Handle = pool.runtime_handle().clone();
    /// ```
    #[must_use]
    pub fn runtime_handle(&self) -> &Handle {
        self.shared.runtime()
    }

    /// Queues `job`, waiting while the queue is full, and returns its handle.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] once shutdown began (also for a submit that was waiting for
    /// room then) or the pool's runtime shut down, [`SubmitError::Rejected`] when a
    /// middleware refused the job; the job comes back either way.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a job is accepted in one step, under the pool's lock, and the future
    /// returns at once with its handle. Dropping the future before that (say, a
    /// `tokio::select!` branch that lost) drops the job with it: it was never accepted, never
    /// counted, and nothing of it is left in the pool. A future that was woken for room and
    /// is then dropped passes the wake-up on to the next waiting submitter.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_core::{JobContext, async_job_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = brigade_tokio::TokioPool::builder().workers(1).queue_capacity(1).build().unwrap();
    /// let job = async_job_fn(|_cx| async { Ok::<_, String>("done") });
    /// let handle = pool.submit(job).await.unwrap();
    /// assert_eq!(handle.await.unwrap(), "done");
    /// # }
    /// ```
    pub async fn submit(&self, job: J) -> Result<AsyncJobHandle<J>, SubmitError<J>> {
        let handle = self.enqueue(job, true).await?;
        Ok(handle.expect("asked for a handle"))
    }

    /// Queues `job`, waiting while the queue is full; with a handle when `with_handle`.
    async fn enqueue(
        &self,
        job: J,
        with_handle: bool,
    ) -> Result<Option<AsyncJobHandle<J>>, SubmitError<J>> {
        let reply = if with_handle {
            Reply::Handle
        } else {
            Reply::Detached
        };
        let mut unplaced = self.shared.prepare(job, reply);
        loop {
            let mut room = pin!(self.shared.room());
            match self.shared.offer(unplaced, Some(room.as_mut())) {
                Offer::Accepted(handle) => return Ok(handle),
                Offer::Closed(job) => return Err(SubmitError::Closed(job)),
                Offer::Rejected(job, reason) => return Err(SubmitError::Rejected(job, reason)),
                Offer::Full(back) => {
                    unplaced = back;
                    room.await;
                }
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
    /// use brigade_core::{JobContext, async_job_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = brigade_tokio::TokioPool::builder().workers(1).queue_capacity(1).build().unwrap();
    /// let job = async_job_fn(|_cx| async { Ok::<_, String>(1) });
    /// let handle = pool.try_submit(job).unwrap();
    /// assert_eq!(handle.await.unwrap(), 1);
    /// # }
    /// ```
    pub fn try_submit(&self, job: J) -> Result<AsyncJobHandle<J>, TrySubmitError<J>> {
        match self
            .shared
            .offer(self.shared.prepare(job, Reply::Handle), None)
        {
            Offer::Accepted(handle) => Ok(handle.expect("asked for a handle")),
            Offer::Full(unplaced) => Err(TrySubmitError::Full(unplaced.into_job())),
            Offer::Closed(job) => Err(TrySubmitError::Closed(job)),
            Offer::Rejected(job, reason) => Err(TrySubmitError::Rejected(job, reason)),
        }
    }

    /// Queues `job`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`SubmitTimeoutError::Timeout`], [`SubmitTimeoutError::Closed`] or
    /// [`SubmitTimeoutError::Rejected`], with the job.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`submit`](Self::submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_core::{JobContext, SubmitTimeoutError, async_job_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = brigade_tokio::TokioPool::builder().workers(1).queue_capacity(1).build().unwrap();
    /// let slow = || async_job_fn(|cx| async move { cx.token().cancelled().await; Ok::<_, String>(0) });
    /// let running = pool.submit(slow()).await.unwrap();
    /// tokio::task::yield_now().await; // let the worker take it
    /// let queued = pool.submit(slow()).await.unwrap();
    /// let refused = pool.submit_timeout(slow(), Duration::from_millis(10)).await;
    /// assert!(matches!(refused, Err(SubmitTimeoutError::Timeout(_))));
    /// pool.shutdown_now().await;
    /// # drop((running, queued));
    /// # }
    /// ```
    pub async fn submit_timeout(
        &self,
        job: J,
        timeout: Duration,
    ) -> Result<AsyncJobHandle<J>, SubmitTimeoutError<J>> {
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        let mut unplaced = self.shared.prepare(job, Reply::Handle);
        loop {
            let mut room = pin!(self.shared.room());
            match self.shared.offer(unplaced, Some(room.as_mut())) {
                Offer::Accepted(handle) => return Ok(handle.expect("asked for a handle")),
                Offer::Closed(job) => return Err(SubmitTimeoutError::Closed(job)),
                Offer::Rejected(job, reason) => {
                    return Err(SubmitTimeoutError::Rejected(job, reason));
                }
                Offer::Full(back) => {
                    unplaced = back;
                    let Some(deadline) = deadline else {
                        room.await;
                        continue;
                    };
                    tokio::select! {
                        () = room => {}
                        () = tokio::time::sleep_until(deadline) => {
                            return Err(SubmitTimeoutError::Timeout(unplaced.into_job()));
                        }
                    }
                }
            }
        }
    }

    /// Queues `job` with no handle (fire and forget), waiting while the queue is full. Its
    /// outcome is still counted in [`stats`](Self::stats).
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`submit`](Self::submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, async_job_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = brigade_tokio::TokioPool::builder().workers(2).build().unwrap();
    /// pool.execute(async_job_fn(|_cx| async { Ok::<_, String>(()) })).await.unwrap();
    /// pool.wait_idle().await;
    /// assert_eq!(pool.stats().completed, 1);
    /// # }
    /// ```
    pub async fn execute(&self, job: J) -> Result<(), SubmitError<J>> {
        self.enqueue(job, false).await.map(drop)
    }

    /// Queues `job` from synchronous code, blocking the thread while the queue is full.
    ///
    /// Outside a runtime it blocks on the pool's runtime. Inside a multi-thread runtime it
    /// tells tokio first that this worker thread blocks (`block_in_place`), so the other
    /// workers go on driving tasks, the pool's included. Inside a current-thread runtime
    /// blocking would stall the only thread that runs them: the job comes back as
    /// [`SubmitError::InAsyncContext`].
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit), and [`SubmitError::InAsyncContext`].
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, async_job_fn};
    ///
    /// let pool = brigade_tokio::TokioPool::builder().own_runtime(1).workers(1).build().unwrap();
    /// let handle = pool
    ///     .blocking_submit(async_job_fn(|_cx| async { Ok::<_, String>(3) }))
    ///     .unwrap();
    /// assert_eq!(handle.join().unwrap(), 3);
    /// ```
    pub fn blocking_submit(&self, job: J) -> Result<AsyncJobHandle<J>, SubmitError<J>> {
        if !may_block() {
            return Err(SubmitError::InAsyncContext(job));
        }
        self.block_on(self.submit(job))
    }

    /// As [`block_on`](Self::block_on) where the calling thread may block, else
    /// [`InAsyncContext`] without polling `future`.
    pub(crate) fn block_on_checked<F: Future>(
        &self,
        future: F,
    ) -> Result<F::Output, InAsyncContext> {
        if may_block() {
            Ok(self.block_on(future))
        } else {
            Err(InAsyncContext)
        }
    }

    /// Blocks the calling thread on `future`, on the pool's runtime: directly outside any
    /// runtime, through `block_in_place` on a multi-thread runtime's thread.
    ///
    /// # Panics
    ///
    /// On a thread that drives a current-thread runtime (see [`may_block`]), where nothing
    /// could run the pool's tasks while it waits; callers that can hand the job back check
    /// first.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        let runtime = self.shared.runtime();
        match Handle::try_current() {
            Err(_) => runtime.block_on(future),
            Ok(current) if current.runtime_flavor() == RuntimeFlavor::CurrentThread => panic!(
                "a blocking TokioPool method was called inside a current-thread runtime, \
                 which it would stall: await the async method of the same name instead"
            ),
            Ok(_) => tokio::task::block_in_place(|| runtime.block_on(future)),
        }
    }

    /// A snapshot of the pool's gauges and counters: a lock and a few atomic loads.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::BoxAsyncJob;
    /// let pool = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder()
    ///     .own_runtime(1).workers(3).build().unwrap();
    /// let stats = pool.stats();
    /// assert_eq!((stats.workers, stats.submitted), (3, 0));
    /// ```
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Waits until nothing is queued, delayed or running, without shutting down.
    ///
    /// Awaited by one of the pool's own jobs (in the job's future, not in a task it spawned),
    /// the calling job does not count, and neither do the jobs that wait for it: those
    /// queued or delayed when its worker is the pool's only one and the pool may not grow,
    /// and those parked for capacity while no other job runs. It returns once only those
    /// are left, since waiting for them would wait for ever. Nothing signals that state
    /// (a job parking behind the caller ends nothing), so this wait, rare, looks again every
    /// 10 ms.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, async_job_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = brigade_tokio::TokioPool::builder().workers(2).build().unwrap();
    /// for _ in 0..10 {
    ///     pool.execute(async_job_fn(|_cx| async { Ok::<_, String>(()) })).await.unwrap();
    /// }
    /// pool.wait_idle().await;
    /// assert_eq!(pool.stats().completed, 10);
    /// # }
    /// ```
    pub async fn wait_idle(&self) {
        if crate::worker::in_own_job(&self.shared) {
            self.only_the_caller_left().await;
            return;
        }
        let mut began = None;
        loop {
            let mut idle = pin!(self.shared.became_idle());
            if self.shared.idle_since(&mut began, idle.as_mut()) {
                return;
            }
            idle.await;
        }
    }

    /// Changes the range of workers at run time: starts workers up to the new minimum at
    /// once; workers above the new maximum exit when they finish their current job.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroWorkers`] or [`ConfigError::MinAboveMax`]; the range is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::BoxAsyncJob;
    /// let pool = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder()
    ///     .own_runtime(1).workers(1).build().unwrap();
    /// pool.resize(3, 6).unwrap();
    /// assert_eq!(pool.stats().workers, 3);
    /// assert!(pool.resize(4, 2).is_err());
    /// ```
    pub fn resize(&self, min: usize, max: usize) -> Result<(), ConfigError> {
        self.shared.resize(min, max)
    }

    /// Stops accepting jobs, runs everything accepted (retries included) and waits for every
    /// task of the pool to exit. Calling it again returns an empty report.
    ///
    /// # From one of the pool's own jobs
    ///
    /// Awaited by one of this pool's jobs (in the job's future, not in a task it spawned),
    /// it cannot wait for the calling job, nor for the jobs that wait for it: those queued
    /// or delayed when the caller's worker is the pool's only one and the pool may not grow,
    /// and those parked for capacity while no other job runs. It closes intake and waits
    /// for every other job, as from outside; once only those are left it hands them back
    /// (their handles end [`Returned`](brigade_core::ErrorKind::Returned); they are in the
    /// report) and returns, while the caller runs on. Nothing starts after that: a retry
    /// the caller's run asks for goes back too. The caller's end is counted as any job's,
    /// then its worker and the pool's timer exit; [`drained`](Self::drained) or a shutdown
    /// from outside waits for that. Nothing signals that only the caller is left, so this
    /// wait, rare, looks again every 10 ms, as [`wait_idle`](Self::wait_idle) does. Called
    /// from a job while another shutdown is under way, it returns at once with an empty
    /// report: the other one waits for the caller.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: intake closes at the first poll and the pool drains whether or not the
    /// future is kept; awaiting [`drained`](Self::drained) or `shutdown` again waits for it.
    /// A job that drops it before it returns leaves the jobs waiting for it in the pool,
    /// to run after it.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, async_job_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = brigade_tokio::TokioPool::builder().workers(2).build().unwrap();
    /// let handle = pool.submit(async_job_fn(|_cx| async { Ok::<_, String>(5) })).await.unwrap();
    /// let report = pool.shutdown().await;
    /// assert!(report.is_clean());
    /// assert_eq!(handle.await.unwrap(), 5);
    /// # }
    /// ```
    ///
    /// A job shutting down its own pool, whose only worker it holds:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use brigade_core::{BoxAsyncJob, ErrorKind, JobContext};
    /// use brigade_tokio::BoxPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool: Arc<BoxPool<usize, String>> = Arc::new(BoxPool::builder().workers(1).build().unwrap());
    /// let own = Arc::clone(&pool);
    /// let closer = pool
    ///     .submit(BoxAsyncJob::new(move |_cx: JobContext| {
    ///         let pool = Arc::clone(&own);
    ///         async move { Ok(pool.shutdown().await.unstarted.len()) }
    ///     }))
    ///     .await
    ///     .unwrap();
    /// let queued = pool.submit(BoxAsyncJob::new(|_cx: JobContext| async { Ok(0) })).await.unwrap();
    /// // The queued job waits for the closer's worker: it comes back in the closer's report.
    /// assert_eq!(closer.await, Ok(1));
    /// assert_eq!(queued.await.unwrap_err().kind(), ErrorKind::Returned);
    /// pool.drained().await;
    /// assert!(pool.stats().is_balanced());
    /// # }
    /// ```
    pub async fn shutdown(&self) -> ShutdownReport<J> {
        self.shutdown_with(None).await
    }

    /// As [`shutdown`](Self::shutdown), but at `timeout` it cancels the running jobs' tokens
    /// (through the pool's token, their parent), hands back the jobs that never started
    /// (their handles end [`Returned`](brigade_core::ErrorKind::Returned)) and waits for the
    /// running ones to return.
    ///
    /// Called while another shutdown is under way (a graceful one whose caller gave up
    /// waiting, say), it still stops the jobs at its own deadline.
    ///
    /// Awaited by one of the pool's own jobs, it waits as [`shutdown`](Self::shutdown) does
    /// from there, for every job but the caller and those that wait for it, and stops the
    /// jobs at the deadline if they have not ended: the caller's own token is cancelled
    /// then too, and it counts among the report's `cancelled`. Called from a job while
    /// another shutdown is under way, it stops the jobs at its deadline if need be, then
    /// returns with an empty report: what it hands back goes out in the other's.
    ///
    /// # Cancel safety
    ///
    /// Intake closes at the first poll. Dropping the future before the deadline leaves the
    /// pool draining gracefully; dropping it after the deadline may drop jobs already taken
    /// out of the pool for the report: their handles then end `Returned`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_core::{JobContext, async_job_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = brigade_tokio::TokioPool::builder().workers(1).build().unwrap();
    /// let stubborn = pool
    ///     .submit(async_job_fn(|cx| async move {
    ///         cx.token().cancelled().await;
    ///         Err::<(), _>("stopped".to_string())
    ///     }))
    ///     .await
    ///     .unwrap();
    /// let report = pool.shutdown_timeout(Duration::from_millis(20)).await;
    /// assert!(report.deadline_passed);
    /// assert!(stubborn.await.unwrap_err().is_cancelled());
    /// # }
    /// ```
    pub async fn shutdown_timeout(&self, timeout: Duration) -> ShutdownReport<J> {
        self.shutdown_with(Some(timeout)).await
    }

    /// Stops accepting jobs, hands back every unstarted job, cancels the running ones and
    /// waits for them to return.
    ///
    /// Awaited by one of the pool's own jobs, it cancels the caller's token with the others
    /// and waits for every running job but the caller (see [`shutdown`](Self::shutdown)).
    ///
    /// # Cancel safety
    ///
    /// As [`shutdown_timeout`](Self::shutdown_timeout) past its deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, async_job_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = brigade_tokio::TokioPool::builder().workers(1).build().unwrap();
    /// for _ in 0..3 {
    ///     pool.execute(async_job_fn(|_cx| async { Ok::<_, String>(()) })).await.unwrap();
    /// }
    /// let report = pool.shutdown_now().await;
    /// // Nothing ran yet on this single-threaded runtime: all three come back.
    /// assert_eq!(report.unstarted.len(), 3);
    /// # }
    /// ```
    pub async fn shutdown_now(&self) -> ShutdownReport<J> {
        self.shutdown_with(Some(Duration::ZERO)).await
    }

    async fn shutdown_with(&self, timeout: Option<Duration>) -> ShutdownReport<J> {
        let shared = &self.shared;
        // Read at the first poll, which a job awaiting this runs inside its own.
        let from_own_job = crate::worker::in_own_job(shared);
        let first = shared.close();
        let mut report = ShutdownReport::default();
        if !first && from_own_job {
            // The shutdown under way waits for the calling job, so the caller cannot wait
            // for it: it stops the jobs at its own deadline if it has one, and returns. What
            // it hands back goes out in the other's report.
            if timeout.is_some() && !self.others_end(true, timeout).await {
                self.stop_jobs(timeout, &mut ShutdownReport::default());
                self.others_end(true, None).await;
            }
            return report;
        }
        if !first && timeout.is_none() {
            shared.tracker().wait().await;
            return report;
        }
        // A shutdown with a deadline after another began (a graceful one, perhaps given up
        // by its caller, or waiting for jobs that will not end) stops what it waits for
        // past its own deadline: its steps below may all run twice.
        // Jobs handed back earlier (a hook panicked before their start) come back in this
        // report too, but count as finished before it.
        let earlier = shared.driver.take_handed_back();
        let finished_before = shared
            .driver
            .counters()
            .snapshot(brigade_core::backend::Gauges::default())
            .finished();
        if !self.others_end(from_own_job, timeout).await {
            self.stop_jobs(timeout, &mut report);
            self.others_end(from_own_job, None).await;
        }
        if from_own_job {
            // Only the caller runs, and what is left waits for it: for its worker or its
            // capacity. Nothing starts any more (the caller's own retry included: it goes
            // back too), and what waits goes back now.
            shared.driver.abort();
            let (unstarted, _) = shared.take_unstarted();
            let engine = Engine::outside(shared);
            for task in unstarted {
                shared.driver.hand_back(&engine, task);
            }
            // A job that started before the mark (a parked one the timer's fallback offer
            // let go) ends before the report, as any other.
            self.others_end(true, None).await;
        }
        let finished_after = shared
            .driver
            .counters()
            .snapshot(brigade_core::backend::Gauges::default())
            .finished();
        let handed_back_now = shared.driver.take_handed_back();
        report.finished =
            (finished_after - finished_before).saturating_sub(handed_back_now.len() as u64);
        report.unstarted = earlier.into_iter().chain(handed_back_now).collect();
        // The pool is at rest (but for a calling job): its books as the report leaves them.
        #[cfg(feature = "metrics")]
        shared.publish_metrics();
        report
    }

    /// Waits at most `timeout` (`None`: as long as it takes; zero: not at all) for what a
    /// shutdown waits for to end; `true` if it did. From outside, that is every task of the
    /// pool. From one of the pool's own jobs, every job but the caller and the jobs that
    /// wait for it, as in [`wait_idle`](Self::wait_idle).
    async fn others_end(&self, from_own_job: bool, timeout: Option<Duration>) -> bool {
        let others = async {
            if from_own_job {
                self.only_the_caller_left().await;
            } else {
                self.shared.tracker().wait().await;
            }
        };
        match timeout {
            None => {
                others.await;
                true
            }
            Some(timeout) if timeout.is_zero() => false,
            Some(timeout) => tokio::time::timeout(timeout, others).await.is_ok(),
        }
    }

    /// For one of the pool's own jobs: resolves once nothing else in flight can end before
    /// the caller does (`Shared::waits_only_for_the_caller`). Nothing signals that state, so
    /// it looks again every [`RECHECK_FROM_OWN_JOB`].
    async fn only_the_caller_left(&self) {
        while !self.shared.waits_only_for_the_caller() {
            tokio::time::sleep(RECHECK_FROM_OWN_JOB).await;
        }
    }

    /// Stops the jobs: those a worker takes from now on are handed back, not run; the
    /// unstarted ones are handed back now, and the running ones cancelled.
    fn stop_jobs(&self, timeout: Option<Duration>, report: &mut ShutdownReport<J>) {
        let shared = &self.shared;
        shared.driver.abort();
        let (unstarted, running) = shared.take_unstarted();
        // Running jobs' tokens are children of the pool's: this cancels each of them.
        shared.driver.token().cancel();
        report.deadline_passed = timeout.is_some_and(|t| !t.is_zero());
        report.cancelled = running as u64;
        let engine = Engine::outside(shared);
        for task in unstarted {
            shared.driver.hand_back(&engine, task);
        }
    }

    /// Resolves once the pool is closed and every task it started has exited. Owns what it
    /// needs, so it can be taken before dropping the pool and awaited after.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, async_job_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = brigade_tokio::TokioPool::builder().workers(2).build().unwrap();
    /// let handle = pool.submit(async_job_fn(|_cx| async { Ok::<_, String>(1) })).await.unwrap();
    /// let drained = pool.drained();
    /// drop(pool); // closes intake; the workers finish the queue in the background
    /// drained.await;
    /// assert_eq!(handle.await.unwrap(), 1);
    /// # }
    /// ```
    pub fn drained(&self) -> impl Future<Output = ()> + Send + 'static {
        let tracker = self.shared.tracker().clone();
        async move { tracker.wait().await }
    }

    /// How many tasks of the pool (workers and the delay-queue timer) are alive.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::BoxAsyncJob;
    /// let pool = brigade_tokio::TokioPool::<BoxAsyncJob<(), String>>::builder()
    ///     .own_runtime(1).workers(2).build().unwrap();
    /// assert_eq!(pool.tasks(), 2);
    /// pool.runtime_handle().clone().block_on(pool.shutdown());
    /// assert_eq!(pool.tasks(), 0);
    /// ```
    #[must_use]
    pub fn tasks(&self) -> usize {
        self.shared.tracker().len()
    }
}

impl<J: AsyncJob> Drop for TokioPool<J> {
    fn drop(&mut self) {
        self.shared.close();
        let Some(runtime) = self.own_runtime.take() else {
            return;
        };
        let tracker = self.shared.tracker().clone();
        if Handle::try_current().is_err() {
            runtime.block_on(tracker.wait());
            drop(runtime);
        } else {
            // Blocking here would stall the runtime we are in, and a runtime cannot be
            // dropped from async code: a thread waits for the drain, then shuts ours down.
            std::thread::spawn(move || {
                runtime.block_on(tracker.wait());
                drop(runtime);
            });
        }
    }
}

impl<J: AsyncJob> fmt::Debug for TokioPool<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioPool")
            .field("name", self.shared.driver.name())
            .field("stats", &self.stats())
            .field("layers", self.shared.driver.layers())
            .field("owns_runtime", &self.own_runtime.is_some())
            .finish()
    }
}

/// Whether the calling thread may block on a pool: outside any runtime, or on a thread of a
/// multi-thread runtime (through `block_in_place`); not on a current-thread runtime's.
pub(crate) fn may_block() -> bool {
    Handle::try_current().map_or(true, |current| {
        current.runtime_flavor() != RuntimeFlavor::CurrentThread
    })
}
