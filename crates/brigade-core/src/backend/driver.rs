//! One job's way through a pool, written once for every backend: cancelled before its start,
//! the start the layers decide, the run's context and deadline, the run's end becoming a
//! terminal state, a retry or a dead letter, and the books. A backend keeps only how it
//! queues, waits, wakes and keeps time (the [`Backend`] it hands in).

use crate::backend::job_errors;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::{CancelWatch, CapacityWaits, JobHandles, RunTicket, Task, WorkerSeat};
use crate::backend::{RunEnd, StatsCounters};
use crate::cancel::KnownToken;
use crate::hooks::{Admission, DropReason, Layers, QueueState, Start};
use crate::run_result::{FinishedRun, Settled, settle};
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::{CancellationToken, ErrorKind, Job, JobContext, JobError, JobResult};

/// What the [`JobDriver`] needs from a backend: its clock, its queues and its wake-ups.
///
/// # Examples
///
/// A backend that runs jobs inline, on the caller's thread, with no timer:
///
/// ```
/// use std::time::Instant;
/// use brigade_core::backend::{Backend, Done, JobDriver, Task};
/// use brigade_core::{JobId, job_fn};
///
/// struct Inline;
///
/// impl<J, T, E> Backend<J, T, E> for Inline {
///     fn now(&self) -> Instant {
///         Instant::now()
///     }
///     fn delay(&self, _task: Task<J, T, E>, _at: Instant) {
///         unreachable!("no layer defers a start here")
///     }
///     fn requeue(&self, _task: Task<J, T, E>) {}
///     fn offer_parked_later(&self) {}
///     fn job_ended(&self) {}
/// }
///
/// let driver = JobDriver::new("inline".into(), Default::default());
/// let job = job_fn(|_| Ok::<_, String>(6 * 7));
/// let mut run = driver.begin(&Inline, &driver.seat(), Task::new(job, Done::Detached(JobId::new(1)))).unwrap();
/// let end = run.run_blocking();
/// assert!(end.is_success());
/// driver.end(&Inline, run, end);
/// assert_eq!(driver.counters().snapshot(Default::default()).completed, 1);
/// ```
pub trait Backend<J, T, E> {
    /// The backend's clock (under a paused tokio clock, the paused time).
    fn now(&self) -> Instant;

    /// Holds `task` off the workers until `at`, then queues it to run (a retry's backoff, a
    /// start deferred by a rate limit). It was accepted already: never refuse it.
    fn delay(&self, task: Task<J, T, E>, at: Instant);

    /// Queues `task` to run: a parked job whose start the layers just granted. It was
    /// accepted already: never refuse it.
    fn requeue(&self, task: Task<J, T, E>);

    /// No run in progress will offer the parked jobs their start: call
    /// [`JobDriver::offer_parked`] after a short while (the capacity they wait for is held
    /// elsewhere, by another pool sharing the layer).
    fn offer_parked_later(&self);

    /// A job reached its terminal state, counted and delivered: wake whoever waits for the
    /// pool to go idle.
    fn job_ended(&self);
}

/// The per-job logic and the books of one pool, shared by every backend: see the module
/// docs of [`backend`](super).
///
/// # Examples
///
/// See [`Backend`].
pub struct JobDriver<J, T, E> {
    name: Arc<str>,
    /// Cancelled only when a shutdown gives up waiting; every job's token is its child.
    token: KnownToken,
    /// Makes the jobs' handles, children of `token`.
    handles: JobHandles<T, E>,
    counters: StatsCounters,
    layers: Layers<J, E>,
    parked: CapacityWaits<Task<J, T, E>>,
    /// Hears of cancels of the jobs set aside: delayed (the backend holds them) or parked.
    cancels: CancelWatch,
    /// Jobs ended unstarted as returned, for the next shutdown's report.
    handed_back: Mutex<Vec<J>>,
    /// Set when a shutdown stops running jobs: unstarted jobs are handed back. Set before
    /// the shutdown cancels `token`, whose release the jobs' cancellation checks acquire
    /// (modelled below).
    aborting: AtomicBool,
    #[cfg(feature = "metrics")]
    metrics: super::PoolMetrics,
}

/// A job about to run, from [`JobDriver::begin`]: its context, its deadline, its span. The
/// backend runs the job and hands what the run returned to [`JobDriver::end`].
///
/// # Examples
///
/// See [`Backend`].
pub struct Run<J, T, E> {
    task: Task<J, T, E>,
    cx: JobContext,
    /// When the run started, if the layers need it ([`Layers::needs_start_time`]).
    started: Option<Instant>,
    /// With a deadline the run's token is a child of the job's, kept here.
    job_token: Option<CancellationToken>,
    ticket: Option<RunTicket>,
    /// When the run started, if the histograms sample it.
    #[cfg(feature = "metrics")]
    sampled_at: Option<super::metrics::Stamp>,
}

/// What became of a parked job offered its start.
enum Offered {
    Start,
    At(Instant),
    HookPanicked,
}

impl<J, T, E> JobDriver<J, T, E>
where
    J: Send + 'static,
    T: Send + 'static,
    E: fmt::Debug + fmt::Display + Send + 'static,
{
    /// The driver of a pool called `name` with these layers (none: every hook is skipped).
    /// With the `metrics` feature, the pool's series are registered here, with the recorder
    /// current now.
    ///
    /// # Examples
    ///
    /// ```
    /// let driver = brigade_core::backend::JobDriver::<(), (), String>::new(
    ///     "reports".into(),
    ///     Default::default(),
    /// );
    /// assert_eq!(driver.name().as_ref(), "reports");
    /// ```
    #[must_use]
    pub fn new(name: Arc<str>, layers: Layers<J, E>) -> Self {
        let token = KnownToken::root();
        JobDriver {
            #[cfg(feature = "metrics")]
            metrics: super::PoolMetrics::new(&name),
            name,
            handles: JobHandles::new(token.token()),
            token,
            counters: StatsCounters::new(),
            layers,
            parked: CapacityWaits::new(),
            cancels: CancelWatch::new(),
            handed_back: Mutex::new(Vec::new()),
            aborting: AtomicBool::new(false),
        }
    }

    /// The pool's name.
    ///
    /// # Examples
    ///
    /// See [`new`](Self::new).
    #[must_use]
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The pool's token: every job's token is its child.
    ///
    /// # Examples
    ///
    /// ```
    /// let driver = brigade_core::backend::JobDriver::<(), (), String>::new("p".into(), Default::default());
    /// assert!(!driver.token().is_cancelled());
    /// ```
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        self.token.token()
    }

    /// What the pool's jobs' handles are made with: their tokens are children of
    /// [`token`](Self::token).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::JobId;
    ///
    /// let driver = brigade_core::backend::JobDriver::<(), u8, String>::new("p".into(), Default::default());
    /// let (handle, completer) = driver.handles().make(JobId::new(1));
    /// driver.token().cancel();
    /// assert!(completer.is_cancelled());
    /// # drop(handle);
    /// ```
    #[must_use]
    pub fn handles(&self) -> &JobHandles<T, E> {
        &self.handles
    }

    /// A seat for one worker: call once per worker and pass it to every
    /// [`begin`](Self::begin) of that worker.
    ///
    /// # Examples
    ///
    /// See [`WorkerSeat`].
    #[must_use]
    pub fn seat(&self) -> WorkerSeat {
        WorkerSeat::new(Arc::from(&*self.name), KnownToken::child_of(self.token()))
    }

    /// Gives the worker a new seat if a job cancelled the one it has while the pool's token
    /// stands: a job without a handle runs under its seat's token, and may cancel it (to
    /// stop work it started), which must not start the worker's later jobs cancelled.
    /// Call it after each run.
    ///
    /// # Examples
    ///
    /// ```
    /// let driver = brigade_core::backend::JobDriver::<(), (), String>::new("p".into(), Default::default());
    /// let mut seat = driver.seat();
    /// seat.token().cancel();
    /// driver.mend_seat(&mut seat);
    /// assert!(!seat.token().is_cancelled());
    /// driver.token().cancel();
    /// driver.mend_seat(&mut seat);
    /// assert!(seat.token().is_cancelled(), "the pool's cancel stands");
    /// ```
    #[inline]
    pub fn mend_seat(&self, seat: &mut WorkerSeat) {
        // Cancelled by a job, not through the pool's token.
        if seat.is_cancelled_alone() && !self.token.is_cancelled() {
            *seat = self.seat();
        }
    }

    /// The pool's counters.
    ///
    /// # Examples
    ///
    /// ```
    /// let driver = brigade_core::backend::JobDriver::<(), (), String>::new("p".into(), Default::default());
    /// assert_eq!(driver.counters().snapshot(Default::default()).finished(), 0);
    /// ```
    #[must_use]
    pub fn counters(&self) -> &StatsCounters {
        &self.counters
    }

    /// The pool's metrics: the backend counts the submits that reach its queue, reports
    /// them as changes and publishes its books through these handles.
    ///
    /// # Examples
    ///
    /// ```
    /// use metrics_exporter_prometheus::PrometheusBuilder;
    ///
    /// let recorder = PrometheusBuilder::new().build_recorder();
    /// let driver = metrics::with_local_recorder(&recorder, || {
    ///     brigade_core::backend::JobDriver::<(), (), String>::new("p".into(), Default::default())
    /// });
    /// driver.metrics().submitted();
    /// let text = recorder.handle().render();
    /// assert!(text.contains(r#"brigade_jobs_submitted_total{pool="p"} 1"#));
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    #[must_use]
    pub fn metrics(&self) -> &super::PoolMetrics {
        &self.metrics
    }

    /// The pool's layers.
    ///
    /// # Examples
    ///
    /// ```
    /// let driver = brigade_core::backend::JobDriver::<(), (), String>::new("p".into(), Default::default());
    /// assert!(driver.layers().is_empty());
    /// ```
    #[must_use]
    pub fn layers(&self) -> &Layers<J, E> {
        &self.layers
    }

    /// How many jobs are parked, waiting for capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let driver = brigade_core::backend::JobDriver::<(), (), String>::new("p".into(), Default::default());
    /// assert_eq!(driver.parked(), 0);
    /// ```
    #[must_use]
    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    /// How the backend hears that a job it holds off the workers (in its delay queue) or
    /// that is parked was cancelled: give it a waker for the backend's timer
    /// ([`CancelWatch::wake_with`]); when [`CancelWatch::take_pending`] says so, the timer
    /// takes the jobs [`is_cancelled`](Self::is_cancelled) picks out of its delay queue
    /// and hands them to [`end_cancelled`](Self::end_cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use brigade_core::backend::{Backend, Done, JobDriver, Task};
    /// # struct Inline;
    /// # impl<J, T, E> Backend<J, T, E> for Inline {
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// #     fn delay(&self, _: Task<J, T, E>, _: Instant) {}
    /// #     fn requeue(&self, _: Task<J, T, E>) {}
    /// #     fn offer_parked_later(&self) {}
    /// #     fn job_ended(&self) {}
    /// # }
    /// use brigade_core::JobId;
    /// use brigade_core::backend::job_handle;
    ///
    /// let driver = JobDriver::<&str, (), String>::new("p".into(), Default::default());
    /// let (handle, completer) = job_handle(JobId::new(1), driver.token());
    /// let waiting = Task::new("retry me later", Done::Handle(completer));
    /// handle.cancel();
    /// // The timer, woken: the job leaves its delay queue and ends cancelled.
    /// assert!(driver.is_cancelled(&waiting));
    /// driver.end_cancelled(&Inline, vec![waiting]);
    /// assert!(handle.join().unwrap_err().is_cancelled());
    /// ```
    #[must_use]
    pub fn cancels(&self) -> &CancelWatch {
        &self.cancels
    }

    /// Whether `task` was cancelled (through its handle, or with the pool): to pick the
    /// cancelled jobs out of a delay queue.
    ///
    /// # Examples
    ///
    /// See [`cancels`](Self::cancels).
    #[must_use]
    pub fn is_cancelled(&self, task: &Task<J, T, E>) -> bool {
        task.done.is_cancelled_or(|| self.token.is_cancelled())
    }

    /// Ends the jobs a cancel reached while they waited off the workers: `delayed`, which
    /// the backend took out of its delay queue, and the parked jobs that were cancelled.
    /// Each ends as a job cancelled before its start does (counted `Cancelled`, or handed
    /// back while a shutdown aborts); the jobs parked behind one that left are offered
    /// their start, as the front of the line may have moved.
    ///
    /// # Examples
    ///
    /// See [`cancels`](Self::cancels).
    pub fn end_cancelled(&self, backend: &impl Backend<J, T, E>, delayed: Vec<Task<J, T, E>>) {
        for task in delayed {
            self.end_before_start(backend, task);
        }
        let parked = self.parked.take_where(|task| self.is_cancelled(task));
        let any_parked = !parked.is_empty();
        for task in parked {
            self.end_before_start(backend, task);
        }
        if any_parked {
            self.offer_parked(backend);
        }
    }

    /// Ends a job cancelled before its start: handed back if a shutdown is stopping the
    /// jobs (its cancel may be the shutdown's), else as cancelled.
    fn end_before_start(&self, backend: &impl Backend<J, T, E>, task: Task<J, T, E>) {
        if self.is_aborting() {
            self.hand_back(backend, task);
        } else {
            self.end_unstarted(backend, task);
        }
    }

    /// From now on unstarted jobs are handed back instead of run (a shutdown that stops
    /// running jobs).
    ///
    /// # Examples
    ///
    /// ```
    /// let driver = brigade_core::backend::JobDriver::<(), (), String>::new("p".into(), Default::default());
    /// driver.abort();
    /// assert!(driver.is_aborting());
    /// ```
    pub fn abort(&self) {
        self.aborting.store(true, Ordering::Relaxed);
    }

    /// Whether [`abort`](Self::abort) was called.
    ///
    /// # Examples
    ///
    /// See [`abort`](Self::abort).
    #[must_use]
    pub fn is_aborting(&self) -> bool {
        self.aborting.load(Ordering::Relaxed)
    }

    /// The jobs handed back since the last call, for a shutdown's report.
    ///
    /// # Examples
    ///
    /// ```
    /// let driver = brigade_core::backend::JobDriver::<(), (), String>::new("p".into(), Default::default());
    /// assert!(driver.take_handed_back().is_empty());
    /// ```
    #[must_use]
    pub fn take_handed_back(&self) -> Vec<J> {
        std::mem::take(&mut *self.handed_back())
    }

    /// Every parked job, in arrival order (for a shutdown that hands them back).
    ///
    /// # Examples
    ///
    /// ```
    /// let driver = brigade_core::backend::JobDriver::<(), (), String>::new("p".into(), Default::default());
    /// assert!(driver.take_parked().is_empty());
    /// ```
    #[must_use]
    pub fn take_parked(&self) -> Vec<Task<J, T, E>> {
        self.parked.take_all()
    }

    fn handed_back(&self) -> std::sync::MutexGuard<'_, Vec<J>> {
        self.handed_back
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the layers whether to accept `job` into a queue in `queue`'s state; counts a
    /// rejection. Returns the decision and the deciding layer's index. A layer that panics
    /// rejects the job (the submitter gets it back), as a hook's panic anywhere else ends
    /// the job it was deciding about, not the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::hooks::{Admission, QueueState};
    ///
    /// let driver = brigade_core::backend::JobDriver::<(), (), String>::new("p".into(), Default::default());
    /// let queue = QueueState { len: 0, capacity: 1 };
    /// assert!(matches!(driver.admit(&(), queue), (Admission::Accept, None)));
    /// ```
    pub fn admit(&self, job: &J, queue: QueueState) -> (Admission, Option<usize>) {
        let decision = catch_unwind(AssertUnwindSafe(|| self.layers.admit(job, queue)))
            .unwrap_or_else(|_| {
                tracing::error!(pool = %self.name, "a middleware hook panicked in admit");
                let reason = crate::Rejection::new("a middleware hook panicked in admit");
                (Admission::Reject(reason), None)
            });
        if let (Admission::Reject(_), _) = decision {
            self.counters.record_rejected();
            // A submitter's change, which no worker will publish.
            #[cfg(feature = "metrics")]
            self.metrics.touched();
        }
        decision
    }

    /// Ends an accepted job that admission dropped (the newest, or the oldest evicted for
    /// it): counted, traced, then handed to the layer at `index` that dropped it.
    ///
    /// With the `metrics` feature the newest job dropped is also counted as submitted here,
    /// since it never reaches the backend's queue, where submits are counted.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use brigade_core::backend::{Backend, Done, JobDriver, Task};
    /// # struct Inline;
    /// # impl<J, T, E> Backend<J, T, E> for Inline {
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// #     fn delay(&self, _: Task<J, T, E>, _: Instant) {}
    /// #     fn requeue(&self, _: Task<J, T, E>) {}
    /// #     fn offer_parked_later(&self) {}
    /// #     fn job_ended(&self) {}
    /// # }
    /// use brigade_core::hooks::DropReason;
    /// use brigade_core::{CancellationToken, JobHandle, JobId};
    /// use brigade_core::backend::job_handle;
    ///
    /// let driver = JobDriver::<&str, (), String>::new("p".into(), Default::default());
    /// let (handle, completer) = job_handle(JobId::new(1), driver.token());
    /// driver.drop_admitted(&Inline, Task::new("late", Done::Handle(completer)), None, DropReason::Newest);
    /// assert!(handle.join().unwrap_err().is_dropped());
    /// ```
    pub fn drop_admitted(
        &self,
        backend: &impl Backend<J, T, E>,
        mut task: Task<J, T, E>,
        index: Option<usize>,
        reason: DropReason,
    ) {
        // An evicted job may hold capacity granted while it waited: nobody else could use it.
        self.cancels.unwatch(&mut task);
        self.give_back_grant(&mut task);
        #[cfg(feature = "metrics")]
        {
            if reason == DropReason::Newest {
                self.metrics.submitted();
            }
            self.metrics.dropped(reason);
            // Its end is a change too, which no worker will publish.
            self.metrics.touched();
        }
        let Task {
            job,
            done,
            attempts,
            ..
        } = task;
        tracing::warn!(pool = %self.name, id = done.id().get(), attempts = attempts.ran(), ?reason, "job dropped under backpressure");
        // Settled first, so a panicking callback cannot unbalance the books.
        self.finish(backend, done, Err(job_errors::dropped()));
        if let Some(index) = index {
            if catch_unwind(AssertUnwindSafe(|| self.layers.dropped(index, job, reason))).is_err() {
                tracing::error!(pool = %self.name, "a middleware hook panicked in dropped");
            }
        }
    }

    /// Takes `task` to its run: `Some` when it is to run now, `None` when it went elsewhere
    /// (ended cancelled, handed back, delayed, or parked for capacity). A panicking hook is
    /// contained: the job is handed back, never lost.
    ///
    /// # Examples
    ///
    /// See [`Backend`].
    // `begin`, `end`, `finish` and their contained steps are marked `#[inline]`: left to
    // the compiler, whether they were inlined into a backend's worker loop changed with
    // unrelated edits elsewhere (the codegen units a build split into), and with it about
    // a hundred instructions per job (callgrind, the noop batch).
    #[inline]
    pub fn begin(
        &self,
        backend: &impl Backend<J, T, E>,
        seat: &WorkerSeat,
        task: Task<J, T, E>,
    ) -> Option<Run<J, T, E>> {
        let mut settled = false;
        let begun = catch_unwind(AssertUnwindSafe(|| {
            self.begin_contained(backend, seat, task, &mut settled)
        }));
        begun.unwrap_or_else(|_| {
            self.hook_panicked(backend, settled);
            None
        })
    }

    #[inline]
    fn begin_contained(
        &self,
        backend: &impl Backend<J, T, E>,
        seat: &WorkerSeat,
        mut task: Task<J, T, E>,
        settled: &mut bool,
    ) -> Option<Run<J, T, E>> {
        // The job's cancellation is read before the pool's abort mark: a shutdown that
        // stops running jobs sets the mark before it cancels the pool's token, so a job
        // that shutdown cancelled is seen aborting here and goes back with the other
        // unstarted ones, not as cancelled.
        let cancelled = task.done.is_cancelled_or(|| self.token.is_cancelled());
        if self.is_aborting() {
            *settled = true;
            self.hand_back(backend, task);
            return None;
        }
        if cancelled {
            *settled = true;
            self.end_unstarted(backend, task);
            return None;
        }
        let attempt = task.attempts.next();
        if self.layers.is_empty() {
            return Some(self.run_without_deadline(seat, task, attempt, None));
        }
        // Back from a wait off the workers: its cancel is read here from now on.
        self.cancels.unwatch(&mut task);
        if !self.layers.needs_start_time() {
            // No layer sees starts (so none parks a job for capacity), sets a deadline or
            // times runs: the run starts as in a pool without layers, reading no clock.
            return Some(self.run_without_deadline(seat, task, attempt, None));
        }
        let now = backend.now();
        if !task.attempts.take_granted_start() {
            // First in, first out: while jobs wait for capacity, this one waits behind them.
            let start = if self.parked.has_waiters() {
                Ok(Start::WhenCapacityFrees)
            } else {
                catch_unwind(AssertUnwindSafe(|| {
                    self.layers.before_start(&task.job, now)
                }))
            };
            match start {
                Ok(Start::Now) => {}
                Ok(Start::NotBefore(at)) => {
                    *settled = true;
                    self.delay(backend, task, at);
                    return None;
                }
                Ok(Start::WhenCapacityFrees) => {
                    *settled = true;
                    self.park(backend, task);
                    return None;
                }
                Err(_) => {
                    *settled = true;
                    self.hook_panicked_before_start(backend, task);
                    return None;
                }
            }
        }
        if !self.layers.sets_deadlines() {
            // The common way through layers, kept apart from the deadline's: merged, the
            // two cost a noop job on threads a tenth of its time more (alternated runs).
            let asked = Some((now, self.parked.run_started()));
            return Some(self.run_without_deadline(seat, task, attempt, asked));
        }
        let deadline = catch_unwind(AssertUnwindSafe(|| self.layers.deadline(&task.job, now)));
        let Ok(deadline) = deadline else {
            // Give back what the granted start took (a weighted limit's units).
            let _ = catch_unwind(AssertUnwindSafe(|| self.layers.release(&task.job)));
            *settled = true;
            self.hook_panicked_before_start(backend, task);
            return None;
        };
        let Some(deadline) = deadline else {
            let asked = Some((now, self.parked.run_started()));
            return Some(self.run_without_deadline(seat, task, attempt, asked));
        };
        let ticket = self.parked.run_started();
        // A deadline cancels a child of the job's token, so it ends this run only: a retry
        // gets a fresh one.
        let job_token = task.done.token(seat.token());
        let cx = JobContext::new(task.id(), Arc::clone(seat.name()), job_token.child_token())
            .with_attempt(attempt)
            .with_deadline(Some(deadline));
        Some(Run {
            #[cfg(feature = "metrics")]
            sampled_at: self.run_starts(&task, attempt),
            task,
            cx,
            started: Some(now),
            job_token: Some(job_token),
            ticket: Some(ticket),
        })
    }

    /// A run without a deadline: its token is the job's own. `asked`, when the layers were
    /// asked for its start, is when it started and its place in the count of runs in
    /// progress. A run they were not asked about (none sees starts, sets deadlines or times
    /// runs: [`Layers::needs_start_time`]) reads no clock and is not counted: only a starter
    /// parks jobs, and only their offers need the count.
    #[inline]
    fn run_without_deadline(
        &self,
        seat: &WorkerSeat,
        task: Task<J, T, E>,
        attempt: u32,
        asked: Option<(Instant, RunTicket)>,
    ) -> Run<J, T, E> {
        let (started, ticket) = asked.unzip();
        let cx = JobContext::new(
            task.id(),
            Arc::clone(seat.name()),
            task.done.token(seat.token()),
        )
        .with_attempt(attempt);
        Run {
            #[cfg(feature = "metrics")]
            sampled_at: self.run_starts(&task, attempt),
            task,
            cx,
            started,
            job_token: None,
            ticket,
        }
    }

    /// A run starts now: the books change (the trailing publish hears of it), and if the
    /// histograms sample this run, a first run records how long it waited since its submit
    /// and the run keeps when it started. On the metrics' clock, as the submit's time is,
    /// whatever the backend's clock.
    #[cfg(feature = "metrics")]
    fn run_starts(&self, task: &Task<J, T, E>, attempt: u32) -> Option<super::metrics::Stamp> {
        self.metrics.touched();
        let now = super::metrics::stamp();
        if !self.metrics.sample_due(now) {
            return None;
        }
        if attempt == 1 {
            self.metrics
                .queue_wait(super::metrics::between(task.submitted_at, now));
        }
        Some(now)
    }

    /// Takes a run's end to the job's next step: its terminal state (counted and delivered),
    /// a retry in the delay queue, or a dead letter; then offers capacity to parked jobs.
    ///
    /// # Examples
    ///
    /// See [`Backend`].
    #[inline]
    pub fn end(&self, backend: &impl Backend<J, T, E>, mut run: Run<J, T, E>, end: RunEnd<T, E>) {
        #[cfg(feature = "metrics")]
        if let Some(started) = run.sampled_at {
            self.metrics
                .run_time(super::metrics::between(started, super::metrics::stamp()));
        }
        let ticket = run.ticket.take();
        let mut settled = false;
        let ended = catch_unwind(AssertUnwindSafe(|| {
            self.end_contained(backend, run, end, &mut settled);
        }));
        if ended.is_err() {
            self.hook_panicked(backend, settled);
        }
        if let Some(ticket) = ticket {
            if self.parked.run_ended(ticket) {
                self.offer_parked(backend);
            }
        }
    }

    #[inline]
    fn end_contained(
        &self,
        backend: &impl Backend<J, T, E>,
        run: Run<J, T, E>,
        end: RunEnd<T, E>,
        settled: &mut bool,
    ) {
        let Run {
            task:
                Task {
                    job,
                    done,
                    attempts,
                    #[cfg(feature = "metrics")]
                    submitted_at,
                    ..
                },
            cx,
            started,
            job_token,
            ..
        } = run;
        let id = done.id();
        let deadline = cx.deadline();
        // Only an error reads differently once the job was cancelled (it ends `Cancelled`):
        // a run that returned its output or panicked ends so whatever the token says, so a
        // success reads no token (a walk up to the pool's).
        let cancelled = end.is_error()
            && job_token
                .as_ref()
                .map_or_else(|| cx.is_cancelled(), CancellationToken::is_cancelled);
        // These may hold the last reference to the handle's cell (when the handle is gone):
        // dropped here, the result is dropped inside `finish`, which contains its `Drop`.
        drop((cx, job_token));
        // Only a layer that sees starts holds a grant, so a run it was not asked about
        // releases nothing.
        if self.layers.holds_until_release()
            && catch_unwind(AssertUnwindSafe(|| self.layers.release(&job))).is_err()
        {
            tracing::error!(pool = %self.name, id = id.get(), "a middleware hook panicked in release");
        }
        // Without layers, or when no layer wants a successful run's end and no deadline is
        // to be compared with the clock, the run ends as it returned, reading no clock.
        let hooks_wanted = !end.is_success() || deadline.is_some() || self.layers.sees_successes();
        if self.layers.is_empty() || !hooks_wanted {
            drop_quietly(job);
            *settled = true;
            self.finish(
                backend,
                done,
                end.into_result(attempts.next(), cancelled, false),
            );
            return;
        }
        let now = backend.now();
        let attempt = attempts.next();
        let run = FinishedRun {
            id,
            end,
            attempts,
            // Read at the start only when a layer needs it (`Layers::needs_start_time`);
            // otherwise no layer reads it.
            started: started.unwrap_or(now),
            cancelled,
            past_deadline: deadline.is_some_and(|at| now >= at),
        };
        // The after-run hooks and a dead-letter sink run in there, which contains their
        // panics: the job then ends with its own outcome.
        match settle(&self.layers, job, run, now, drop_quietly, drop_quietly) {
            Settled::Finished(result) => {
                if result.as_ref().is_err_and(JobError::is_dead_lettered) {
                    tracing::debug!(pool = %self.name, id = id.get(), attempt, "dead-lettered a job");
                }
                *settled = true;
                self.finish(backend, done, result);
            }
            Settled::Retry { job, attempts, at } => {
                *settled = true;
                let task = Task {
                    job,
                    done,
                    attempts,
                    #[cfg(feature = "metrics")]
                    submitted_at,
                };
                if self.is_aborting() {
                    self.hand_back(backend, task);
                } else {
                    self.counters.record_retried();
                    tracing::debug!(pool = %self.name, id = id.get(), attempt, "run failed, retry scheduled");
                    self.delay(backend, task, at);
                }
            }
        }
    }

    /// Ends a run the backend could not see to its end because its future was dropped
    /// (tokio drops the tasks of a runtime that shuts down, jobs and all). The job ends
    /// [`Cancelled`](crate::ErrorKind::Cancelled), counted: it started, so it is not
    /// unstarted work to hand back, and it was stopped from outside, as a cancel stops it.
    /// What its start took is given back and the parked jobs are offered it; no
    /// `after_run` hook is asked, since a retry would have nothing to run it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use brigade_core::backend::{Backend, Done, JobDriver, Task};
    /// # struct Inline;
    /// # impl<J, T, E> Backend<J, T, E> for Inline {
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// #     fn delay(&self, _: Task<J, T, E>, _: Instant) {}
    /// #     fn requeue(&self, _: Task<J, T, E>) {}
    /// #     fn offer_parked_later(&self) {}
    /// #     fn job_ended(&self) {}
    /// # }
    /// use brigade_core::{ErrorKind, JobId, job_fn};
    /// use brigade_core::backend::job_handle;
    ///
    /// let driver = JobDriver::new("p".into(), Default::default());
    /// let (handle, completer) = job_handle::<u8, String>(JobId::new(1), driver.token());
    /// let job = job_fn(|_| Ok::<u8, String>(1));
    /// let run = driver.begin(&Inline, &driver.seat(), Task::new(job, Done::Handle(completer)));
    /// // The backend lost the run's future before it returned.
    /// driver.end_dropped(&Inline, run.unwrap());
    /// let error = handle.join().unwrap_err();
    /// assert_eq!((error.kind(), error.attempts()), (ErrorKind::Cancelled, 1));
    /// assert_eq!(driver.counters().snapshot(Default::default()).cancelled, 1);
    /// ```
    pub fn end_dropped(&self, backend: &impl Backend<J, T, E>, mut run: Run<J, T, E>) {
        let ticket = run.ticket.take();
        let Run {
            task:
                Task {
                    job,
                    done,
                    attempts,
                    ..
                },
            cx,
            job_token,
            ..
        } = run;
        let id = done.id();
        // They may hold the last reference to the handle's cell: see `end_contained`.
        drop((cx, job_token));
        if self.layers.holds_until_release()
            && catch_unwind(AssertUnwindSafe(|| self.layers.release(&job))).is_err()
        {
            tracing::error!(pool = %self.name, id = id.get(), "a middleware hook panicked in release");
        }
        drop_quietly(job);
        self.finish(
            backend,
            done,
            Err(job_errors::cancelled(None, attempts.next())),
        );
        if let Some(ticket) = ticket {
            if self.parked.run_ended(ticket) {
                self.offer_parked(backend);
            }
        }
    }

    /// Counts `result` as the job's terminal state, delivers it, and tells the backend. A
    /// panic in the output's or the error's `Drop` (when nobody holds the handle) is
    /// contained and the job still counted.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use brigade_core::backend::{Backend, Done, JobDriver, Task};
    /// # struct Inline;
    /// # impl<J, T, E> Backend<J, T, E> for Inline {
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// #     fn delay(&self, _: Task<J, T, E>, _: Instant) {}
    /// #     fn requeue(&self, _: Task<J, T, E>) {}
    /// #     fn offer_parked_later(&self) {}
    /// #     fn job_ended(&self) {}
    /// # }
    /// use brigade_core::JobId;
    ///
    /// let driver = JobDriver::<(), u8, String>::new("p".into(), Default::default());
    /// driver.finish(&Inline, Done::Detached(JobId::new(1)), Ok(1));
    /// assert_eq!(driver.counters().snapshot(Default::default()).completed, 1);
    /// ```
    #[inline]
    pub fn finish(
        &self,
        backend: &impl Backend<J, T, E>,
        done: super::Done<T, E>,
        result: JobResult<T, E>,
    ) {
        // Counted before the handle resolves, so whoever holds every result also sees
        // every count; the backend's idle waiters are told after.
        match &result {
            Ok(_) => self.counters.record_completed(),
            Err(error) => self.counters.record_ended(error.kind()),
        }
        if catch_unwind(AssertUnwindSafe(move || done.deliver(result))).is_err() {
            tracing::error!(pool = %self.name, "a job's result panicked while being dropped");
        }
        backend.job_ended();
    }

    /// Ends an unstarted job as returned and keeps it for the next shutdown's report.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use brigade_core::backend::{Backend, Done, JobDriver, Task};
    /// # struct Inline;
    /// # impl<J, T, E> Backend<J, T, E> for Inline {
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// #     fn delay(&self, _: Task<J, T, E>, _: Instant) {}
    /// #     fn requeue(&self, _: Task<J, T, E>) {}
    /// #     fn offer_parked_later(&self) {}
    /// #     fn job_ended(&self) {}
    /// # }
    /// use brigade_core::JobId;
    ///
    /// let driver = JobDriver::<&str, (), String>::new("p".into(), Default::default());
    /// driver.hand_back(&Inline, Task::new("unstarted", Done::Detached(JobId::new(1))));
    /// assert_eq!(driver.take_handed_back(), ["unstarted"]);
    /// ```
    pub fn hand_back(&self, backend: &impl Backend<J, T, E>, mut task: Task<J, T, E>) {
        self.cancels.unwatch(&mut task);
        self.give_back_grant(&mut task);
        self.counters.record_ended(ErrorKind::Returned);
        let Task {
            job,
            done,
            attempts,
            ..
        } = task;
        // The job is kept apart from the delivery, which runs the handle's waker (its
        // executor's code): one that panics must not take the job out of the report.
        let returned = job_errors::returned(attempts.ran());
        if catch_unwind(AssertUnwindSafe(move || done.deliver(Err(returned)))).is_err() {
            tracing::error!(pool = %self.name, "a job's handle panicked as it was handed back");
        }
        self.handed_back().push(job);
        backend.job_ended();
    }

    /// Offers capacity to the parked jobs, from the front, until one still does not fit;
    /// those that may start go back to the backend's queue.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use brigade_core::backend::{Backend, Task};
    /// # struct Inline;
    /// # impl<J, T, E> Backend<J, T, E> for Inline {
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// #     fn delay(&self, _: Task<J, T, E>, _: Instant) {}
    /// #     fn requeue(&self, _: Task<J, T, E>) {}
    /// #     fn offer_parked_later(&self) {}
    /// #     fn job_ended(&self) {}
    /// # }
    /// let driver = brigade_core::backend::JobDriver::<(), (), String>::new("p".into(), Default::default());
    /// driver.offer_parked(&Inline); // nothing parked: nothing happens
    /// ```
    pub fn offer_parked(&self, backend: &impl Backend<J, T, E>) {
        let now = backend.now();
        let offered = self.parked.start_from_front(|task| {
            match catch_unwind(AssertUnwindSafe(|| {
                self.layers.before_start(&task.job, now)
            })) {
                Ok(Start::Now) => Some(Offered::Start),
                Ok(Start::NotBefore(at)) => Some(Offered::At(at)),
                Ok(Start::WhenCapacityFrees) => None,
                Err(_) => Some(Offered::HookPanicked),
            }
        });
        for (mut task, offered) in offered {
            match offered {
                Offered::Start => {
                    task.attempts.grant_start();
                    backend.requeue(task);
                }
                Offered::At(at) => self.delay(backend, task, at),
                Offered::HookPanicked => self.hook_panicked_before_start(backend, task),
            }
        }
        // The front still does not fit and nothing here runs: its capacity is held
        // elsewhere, so only a later offer can start it.
        if self.parked.is_stranded() {
            backend.offer_parked_later();
        }
    }

    /// Puts `task` in the backend's delay queue until `at`, watched for a cancel.
    fn delay(&self, backend: &impl Backend<J, T, E>, mut task: Task<J, T, E>, at: Instant) {
        let watched = self.cancels.watch(&mut task);
        backend.delay(task, at);
        self.cancels.look_again(watched);
    }

    /// Parks `task` until capacity frees, watched for a cancel.
    fn park(&self, backend: &impl Backend<J, T, E>, mut task: Task<J, T, E>) {
        let watched = self.cancels.watch(&mut task);
        let fallback = self.parked.park(task);
        self.cancels.look_again(watched);
        if fallback {
            backend.offer_parked_later();
        }
        // A shutdown that stops the jobs marks the pool aborting before it takes the parked
        // ones, under the list's lock: a job parked after that is seen here and handed
        // back, since nothing would take it out again.
        if self.is_aborting() {
            for task in self.parked.take_all() {
                self.hand_back(backend, task);
            }
        }
    }

    /// Ends a job cancelled before its run, without running it.
    fn end_unstarted(&self, backend: &impl Backend<J, T, E>, mut task: Task<J, T, E>) {
        self.cancels.unwatch(&mut task);
        self.give_back_grant(&mut task);
        let runs = task.attempts.ran();
        drop_quietly(task.job);
        self.finish(backend, task.done, Err(job_errors::cancelled(None, runs)));
    }

    /// A job whose start was granted but will not run gives its units back.
    fn give_back_grant(&self, task: &mut Task<J, T, E>) {
        if task.attempts.take_granted_start()
            && catch_unwind(AssertUnwindSafe(|| self.layers.release(&task.job))).is_err()
        {
            tracing::error!(pool = %self.name, id = task.id().get(), "a middleware hook panicked in release");
        }
    }

    fn hook_panicked_before_start(&self, backend: &impl Backend<J, T, E>, task: Task<J, T, E>) {
        tracing::error!(pool = %self.name, id = task.id().get(), "a middleware hook panicked before a start: the job is handed back");
        self.hand_back(backend, task);
    }

    /// The last line: something panicked outside the contained hooks. A job not yet
    /// settled was dropped while unwinding, which resolved its handle as returned; count it.
    fn hook_panicked(&self, backend: &impl Backend<J, T, E>, settled: bool) {
        tracing::error!(pool = %self.name, "a middleware hook panicked");
        if !settled {
            self.counters.record_ended(ErrorKind::Returned);
            backend.job_ended();
        }
    }
}

impl<J: 'static, T, E: 'static> fmt::Debug for JobDriver<J, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobDriver")
            .field("name", &self.name)
            .field("layers", &self.layers.len())
            .field("parked", &self.parked.len())
            .finish_non_exhaustive()
    }
}

impl<J, T: Send + 'static, E: Send + 'static> Run<J, T, E> {
    /// The run's context.
    ///
    /// # Examples
    ///
    /// See [`Backend`].
    #[must_use]
    pub fn context(&self) -> &JobContext {
        &self.cx
    }

    /// The job and its context, to run it.
    ///
    /// # Examples
    ///
    /// See [`Backend`].
    pub fn job_and_context(&mut self) -> (&mut J, &JobContext) {
        (&mut self.task.job, &self.cx)
    }

    /// The run's deadline, if a layer set one: the backend cancels the context's token then.
    ///
    /// # Examples
    ///
    /// See [`Backend`].
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.cx.deadline()
    }

    /// The span every run happens in, on every backend: `job` with the fields `pool`, `id`
    /// and `attempt`. `None` while nobody could see it (no `tracing` subscriber has been
    /// set and the `log` facade would drop its lines): the run then needs no span at all,
    /// not even one that does nothing, which still costs its making, entering and drop.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use brigade_core::backend::{Backend, Done, JobDriver, Task};
    /// # struct Inline;
    /// # impl<J, T, E> Backend<J, T, E> for Inline {
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// #     fn delay(&self, _: Task<J, T, E>, _: Instant) {}
    /// #     fn requeue(&self, _: Task<J, T, E>) {}
    /// #     fn offer_parked_later(&self) {}
    /// #     fn job_ended(&self) {}
    /// # }
    /// use brigade_core::{JobId, job_fn};
    ///
    /// let driver = JobDriver::new("p".into(), Default::default());
    /// let job = job_fn(|_| Ok::<_, String>(()));
    /// let done = Done::<(), String>::Detached(JobId::new(1));
    /// let run = driver.begin(&Inline, &driver.seat(), Task::new(job, done)).unwrap();
    /// assert!(run.span().is_none(), "no subscriber, no logger");
    /// tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::new(), || {
    ///     // Once a subscriber has been set anywhere, every run gets its span.
    ///     assert!(run.span().is_some());
    /// });
    /// ```
    #[must_use]
    pub fn span(&self) -> Option<tracing::Span> {
        (!super::job_span::nobody_listens()).then(|| self.listened_span())
    }

    /// The run's `job` span, made without asking whether anyone listens.
    fn listened_span(&self) -> tracing::Span {
        super::job_span::listened_job_span(
            self.cx.pool_name(),
            self.cx.id().get(),
            self.cx.attempt(),
        )
    }
}

impl<J, T, E> Run<J, T, E>
where
    J: Job<Output = T, Error = E>,
    T: Send + 'static,
    E: Send + 'static,
{
    /// Runs the job on this thread inside its span, catching a panic (and a panic in the
    /// drop of the panic's payload) as the run's end.
    ///
    /// # Examples
    ///
    /// See [`Backend`].
    #[inline]
    pub fn run_blocking(&mut self) -> RunEnd<T, E> {
        // With nobody listening this is two atomic loads and no span: making, entering
        // and dropping even one that does nothing is ~40 instructions a run, a sixteenth
        // of what a noop job costs a worker. The span's way is out of line, so the way
        // without one holds no span to drop either.
        if super::job_span::nobody_listens() {
            return self.run_caught();
        }
        self.run_caught_in_span()
    }

    /// The run inside its `job` span, for when something listens.
    #[inline(never)]
    fn run_caught_in_span(&mut self) -> RunEnd<T, E> {
        let span = self.listened_span();
        let _entered = span.enter();
        self.run_caught()
    }

    /// The run itself: the job's return, or its panic caught.
    #[inline]
    fn run_caught(&mut self) -> RunEnd<T, E> {
        let (job, cx) = self.job_and_context();
        match catch_unwind(AssertUnwindSafe(|| job.run(cx))) {
            Ok(result) => RunEnd::Returned(result),
            Err(payload) => RunEnd::panicked(payload),
        }
    }
}

/// Drops `value`, containing a panic in its `Drop` (a job's, a result's, a panic payload's).
///
/// # Examples
///
/// ```
/// struct Grumpy;
/// impl Drop for Grumpy {
///     fn drop(&mut self) {
///         panic!("not today");
///     }
/// }
/// brigade_core::backend::drop_quietly(Grumpy); // logged, not propagated
/// ```
pub fn drop_quietly<T>(value: T) {
    if catch_unwind(AssertUnwindSafe(move || drop(value))).is_err() {
        tracing::error!("a job or its payload panicked while being dropped");
    }
}

impl<J, T, E> fmt::Debug for Run<J, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("task", &self.task)
            .field("cx", &self.cx)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

/// Model: a shutdown that aborts (marks the pool, then cancels its token) racing a worker's
/// `begin`. The worker may start the job (the abort then cancels it while it runs) or hand
/// it back, but never end it as cancelled: a job cancelled only by the abort is unstarted
/// work the shutdown report must return.
#[cfg(all(test, brigade_loom))]
mod loom_models {
    use loom::sync::Arc;

    use super::*;
    use crate::JobId;
    use crate::backend::{Done, Gauges, job_handle};

    struct NoTimer;

    impl Backend<u8, (), String> for NoTimer {
        fn now(&self) -> Instant {
            Instant::now()
        }
        fn delay(&self, _task: Task<u8, (), String>, _at: Instant) {
            unreachable!("no layer defers a start here")
        }
        fn requeue(&self, _task: Task<u8, (), String>) {}
        fn offer_parked_later(&self) {}
        fn job_ended(&self) {}
    }

    fn begin_racing_an_abort(with_handle: bool) {
        loom::model(move || {
            let driver = Arc::new(JobDriver::<u8, (), String>::new(
                "loom".into(),
                Layers::default(),
            ));
            let seat = driver.seat();
            let id = JobId::new(1);
            let (handle, done) = if with_handle {
                let (handle, completer) = job_handle(id, driver.token());
                (Some(handle), Done::Handle(completer))
            } else {
                (None, Done::Detached(id))
            };
            let shutdown = {
                let driver = Arc::clone(&driver);
                loom::thread::spawn(move || {
                    driver.abort();
                    driver.token().cancel();
                })
            };
            let started = driver.begin(&NoTimer, &seat, Task::new(7, done)).is_some();
            shutdown.join().unwrap();
            let stats = driver.counters().snapshot(Gauges::default());
            assert_eq!(stats.cancelled, 0, "an unstarted job ended as cancelled");
            assert!(
                started || stats.returned == 1,
                "the job neither started nor went back"
            );
            drop(handle);
        });
    }

    #[test]
    fn loom_a_job_begun_during_an_abort_starts_or_goes_back() {
        begin_racing_an_abort(false);
    }

    #[test]
    fn loom_a_job_with_a_handle_begun_during_an_abort_starts_or_goes_back() {
        begin_racing_an_abort(true);
    }
}

#[cfg(all(test, not(brigade_loom)))]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Wake, Waker};

    use super::*;
    use crate::JobId;
    use crate::backend::{Done, job_handle};

    struct Inline;

    impl<J, T, E> Backend<J, T, E> for Inline {
        fn now(&self) -> Instant {
            Instant::now()
        }
        fn delay(&self, _: Task<J, T, E>, _: Instant) {}
        fn requeue(&self, _: Task<J, T, E>) {}
        fn offer_parked_later(&self) {}
        fn job_ended(&self) {}
    }

    /// A waker whose wake panics (its executor's bug).
    struct PanicsOnWake;

    impl Wake for PanicsOnWake {
        fn wake(self: Arc<Self>) {
            panic!("the executor's wake panicked");
        }
    }

    #[test]
    fn a_job_handed_back_stays_in_the_report_though_its_handles_waker_panics() {
        let driver = JobDriver::<&str, (), String>::new("p".into(), Layers::default());
        let (mut handle, completer) = job_handle(JobId::new(1), driver.token());
        let panics = Waker::from(Arc::new(PanicsOnWake));
        assert!(
            Pin::new(&mut handle)
                .poll(&mut Context::from_waker(&panics))
                .is_pending()
        );
        driver.hand_back(&Inline, Task::new("unstarted", Done::Handle(completer)));
        assert_eq!(driver.take_handed_back(), ["unstarted"]);
        assert!(handle.try_join().ok().unwrap().unwrap_err().is_returned());
        let stats = driver.counters().snapshot(Default::default());
        assert_eq!(stats.returned, 1);
    }
}

/// When a run's start reads the clock: only for layers that need the time
/// ([`Layers::needs_start_time`]), and then the report's `started` is that reading.
#[cfg(all(test, not(brigade_loom)))]
mod clock_reads {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    use super::*;
    use crate::hooks::{AfterRun, Middleware, RunReport};
    use crate::{JobId, job_fn};

    /// A clock that counts its readings, each a millisecond after the one before.
    struct CountingClock {
        base: Instant,
        reads: AtomicU32,
    }

    impl<J, T, E> Backend<J, T, E> for CountingClock {
        fn now(&self) -> Instant {
            let read = self.reads.fetch_add(1, Ordering::Relaxed);
            self.base + Duration::from_millis(u64::from(read))
        }
        fn delay(&self, _: Task<J, T, E>, _: Instant) {}
        fn requeue(&self, _: Task<J, T, E>) {}
        fn offer_parked_later(&self) {}
        fn job_ended(&self) {}
    }

    /// Sees failed runs' reports (start, end); no starts, no deadlines, no successes.
    struct SeesFailures {
        times_runs: bool,
        seen: Arc<Mutex<Vec<(Instant, Instant)>>>,
    }

    impl<J, E> Middleware<J, E> for SeesFailures {
        fn after_run(&self, _: &J, run: &RunReport<'_, E>, now: Instant) -> AfterRun {
            self.seen.lock().unwrap().push((run.started, now));
            AfterRun::Done
        }
        fn sees_successes(&self) -> bool {
            false
        }
        fn sees_starts(&self) -> bool {
            false
        }
        fn sets_deadlines(&self) -> bool {
            false
        }
        fn times_runs(&self) -> bool {
            self.times_runs
        }
    }

    /// Runs one job that returns `result` through a pool with a `SeesFailures` layer:
    /// the clock's readings and what the layer saw.
    fn run_once(
        times_runs: bool,
        result: Result<u8, String>,
    ) -> (u32, Vec<(Instant, Instant)>, Instant) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let layer = SeesFailures {
            times_runs,
            seen: Arc::clone(&seen),
        };
        let driver = JobDriver::new("p".into(), Layers::new().with(layer));
        let clock = CountingClock {
            base: Instant::now(),
            reads: AtomicU32::new(0),
        };
        let job = job_fn(move |_| result.clone());
        let task = Task::new(job, crate::backend::Done::Detached(JobId::new(1)));
        let mut run = driver
            .begin(&clock, &driver.seat(), task)
            .expect("it starts");
        let end = run.run_blocking();
        driver.end(&clock, run, end);
        let seen = seen.lock().unwrap().clone();
        (clock.reads.into_inner(), seen, clock.base)
    }

    #[test]
    fn layers_that_need_no_time_leave_a_successful_run_without_a_clock_read() {
        let (reads, seen, _) = run_once(false, Ok(1));
        assert_eq!((reads, seen.len()), (0, 0));
    }

    #[test]
    fn a_failed_run_reports_its_end_as_its_start_when_no_layer_times_runs() {
        let (reads, seen, base) = run_once(false, Err("no".into()));
        assert_eq!(reads, 1, "only the end reads the clock");
        assert_eq!(seen, [(base, base)]);
    }

    #[test]
    fn a_layer_that_times_runs_sees_when_the_run_started() {
        let (reads, seen, base) = run_once(true, Err("no".into()));
        assert_eq!(reads, 2, "the start and the end read the clock");
        assert_eq!(seen, [(base, base + Duration::from_millis(1))]);
    }
}
