use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use crate::ErrorKind;
use crate::striped_counter::StripedCounter;

/// A snapshot of a pool's gauges and counters, cheap enough to poll from a progress bar.
///
/// Counters only grow. At any quiescent point (nothing queued, delayed or running) every
/// accepted job has reached exactly one terminal state, and
/// [`is_balanced`](Self::is_balanced) holds:
///
/// `submitted = completed + failed + panicked + cancelled + timed_out + dead_lettered + dropped + returned`
///
/// # Examples
///
/// ```
/// let mut stats = brigade_core::Stats::default();
/// (stats.submitted, stats.completed, stats.failed) = (3, 2, 1);
/// assert!(stats.is_balanced());
/// assert_eq!(stats.finished(), 3);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive] // the next counter is not a breaking change
pub struct Stats {
    /// Workers alive now.
    pub workers: usize,
    /// Workers running a job now.
    pub busy: usize,
    /// Jobs waiting in the queue now.
    pub queued: usize,
    /// Jobs waiting for a time to run again (retry backoff, rate limit) or for capacity.
    pub delayed: usize,
    /// Jobs accepted.
    pub submitted: u64,
    /// Jobs that ended with their output.
    pub completed: u64,
    /// Jobs whose last run returned an error.
    pub failed: u64,
    /// Jobs that panicked.
    pub panicked: u64,
    /// Jobs cancelled before or while running.
    pub cancelled: u64,
    /// Jobs that ran past their deadline.
    pub timed_out: u64,
    /// Jobs sent to a dead-letter sink.
    pub dead_lettered: u64,
    /// Jobs dropped by a backpressure policy.
    pub dropped: u64,
    /// Jobs handed back unstarted at shutdown.
    pub returned: u64,
    /// Runs scheduled again after a failure (not a terminal state).
    pub retried: u64,
    /// Jobs refused at submit by a middleware (never accepted, so not in `submitted`).
    pub rejected: u64,
}

impl Stats {
    /// Jobs that reached a terminal state.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut stats = brigade_core::Stats::default();
    /// (stats.completed, stats.dropped) = (2, 1);
    /// assert_eq!(stats.finished(), 3);
    /// ```
    #[must_use]
    pub fn finished(&self) -> u64 {
        self.completed
            + self.failed
            + self.panicked
            + self.cancelled
            + self.timed_out
            + self.dead_lettered
            + self.dropped
            + self.returned
    }

    /// Jobs accepted but not finished: queued, delayed or running.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut stats = brigade_core::Stats::default();
    /// (stats.submitted, stats.completed) = (5, 2);
    /// assert_eq!(stats.in_flight(), 3);
    /// ```
    #[must_use]
    pub fn in_flight(&self) -> u64 {
        self.submitted.saturating_sub(self.finished())
    }

    /// Whether every accepted job is accounted for by exactly one terminal state.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut stats = brigade_core::Stats::default();
    /// stats.submitted = 1;
    /// assert!(!stats.is_balanced());
    /// ```
    #[must_use]
    pub fn is_balanced(&self) -> bool {
        self.submitted == self.finished()
    }
}

/// The counters behind [`Stats`], kept in atomics that backends bump as jobs move.
///
/// Producer-side and worker-side counters sit on separate cache lines so submitting does
/// not contend with finishing, and the completions, which every worker counts once per
/// job, are striped so that workers do not contend with each other. Backends add their
/// gauges (workers, busy, queued, delayed) when they take a [`snapshot`](Self::snapshot).
///
/// # Examples
///
/// ```
/// use brigade_core::ErrorKind;
/// use brigade_core::backend::{Gauges, StatsCounters};
///
/// let counters = StatsCounters::new();
/// counters.record_submitted();
/// counters.record_submitted();
/// counters.record_completed();
/// counters.record_ended(ErrorKind::Panicked);
/// let stats = counters.snapshot(Gauges::default());
/// assert_eq!((stats.submitted, stats.completed, stats.panicked), (2, 1, 1));
/// assert!(stats.is_balanced());
/// ```
#[derive(Debug, Default)]
pub struct StatsCounters {
    submitted: CachePadded<AtomicU64>,
    rejected: AtomicU64,
    completed: StripedCounter,
    ended: [AtomicU64; ENDED_KINDS],
    retried: AtomicU64,
}

/// The gauges a backend reads from its own state when it takes a snapshot.
///
/// # Examples
///
/// ```
/// let gauges = brigade_core::backend::Gauges { workers: 4, ..Default::default() };
/// assert_eq!(gauges.busy, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Workers alive.
    pub workers: usize,
    /// Workers running a job.
    pub busy: usize,
    /// Jobs in the queue.
    pub queued: usize,
    /// Jobs waiting for a time or for capacity.
    pub delayed: usize,
}

const ENDED_KINDS: usize = 7;

fn slot(kind: ErrorKind) -> usize {
    match kind {
        ErrorKind::Failed => 0,
        ErrorKind::Panicked => 1,
        ErrorKind::Cancelled => 2,
        ErrorKind::TimedOut => 3,
        ErrorKind::DeadLettered => 4,
        ErrorKind::Dropped => 5,
        ErrorKind::Returned => 6,
    }
}

impl StatsCounters {
    /// All counters at zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let stats = brigade_core::backend::StatsCounters::new().snapshot(Default::default());
    /// assert_eq!(stats, brigade_core::Stats::default());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A job was accepted.
    ///
    /// # Examples
    ///
    /// ```
    /// let counters = brigade_core::backend::StatsCounters::new();
    /// counters.record_submitted();
    /// assert_eq!(counters.snapshot(Default::default()).submitted, 1);
    /// ```
    pub fn record_submitted(&self) {
        self.submitted.fetch_add(1, Ordering::Release);
    }

    /// A job was refused at submit by a middleware.
    ///
    /// # Examples
    ///
    /// ```
    /// let counters = brigade_core::backend::StatsCounters::new();
    /// counters.record_rejected();
    /// assert_eq!(counters.snapshot(Default::default()).rejected, 1);
    /// ```
    pub fn record_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Release);
    }

    /// A job ended with its output.
    ///
    /// # Examples
    ///
    /// ```
    /// let counters = brigade_core::backend::StatsCounters::new();
    /// counters.record_completed();
    /// assert_eq!(counters.snapshot(Default::default()).completed, 1);
    /// ```
    pub fn record_completed(&self) {
        self.completed.increment();
    }

    /// A job ended in the terminal state `kind`.
    ///
    /// # Examples
    ///
    /// ```
    /// let counters = brigade_core::backend::StatsCounters::new();
    /// counters.record_ended(brigade_core::ErrorKind::Dropped);
    /// assert_eq!(counters.snapshot(Default::default()).dropped, 1);
    /// ```
    pub fn record_ended(&self, kind: ErrorKind) {
        self.ended[slot(kind)].fetch_add(1, Ordering::Release);
    }

    /// A failed run was scheduled to run again.
    ///
    /// # Examples
    ///
    /// ```
    /// let counters = brigade_core::backend::StatsCounters::new();
    /// counters.record_retried();
    /// assert_eq!(counters.snapshot(Default::default()).retried, 1);
    /// ```
    pub fn record_retried(&self) {
        self.retried.fetch_add(1, Ordering::Release);
    }

    /// Reads every counter, adding the backend's `gauges`.
    ///
    /// Terminal counters are read before `submitted`, so a snapshot taken while jobs move
    /// never shows more jobs finished than accepted.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::{Gauges, StatsCounters};
    /// let stats = StatsCounters::new().snapshot(Gauges { queued: 3, ..Default::default() });
    /// assert_eq!(stats.queued, 3);
    /// ```
    #[must_use]
    pub fn snapshot(&self, gauges: Gauges) -> Stats {
        let ended = |kind| self.ended[slot(kind)].load(Ordering::Acquire);
        let completed = self.completed.sum();
        let failed = ended(ErrorKind::Failed);
        let panicked = ended(ErrorKind::Panicked);
        let cancelled = ended(ErrorKind::Cancelled);
        let timed_out = ended(ErrorKind::TimedOut);
        let dead_lettered = ended(ErrorKind::DeadLettered);
        let dropped = ended(ErrorKind::Dropped);
        let returned = ended(ErrorKind::Returned);
        Stats {
            workers: gauges.workers,
            busy: gauges.busy,
            queued: gauges.queued,
            delayed: gauges.delayed,
            submitted: self.submitted.load(Ordering::Acquire),
            completed,
            failed,
            panicked,
            cancelled,
            timed_out,
            dead_lettered,
            dropped,
            returned,
            retried: self.retried.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}
