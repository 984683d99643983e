use std::fmt;
use std::time::{Instant, SystemTime};

use crate::{JobId, Rejection};

/// The queue as a submitter found it.
///
/// # Examples
///
/// ```
/// let queue = brigade_core::hooks::QueueState { len: 8, capacity: 8 };
/// assert!(queue.is_full());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueState {
    /// Jobs waiting in the queue.
    pub len: usize,
    /// How many jobs the queue holds at most.
    pub capacity: usize,
}

impl QueueState {
    /// Whether the queue has no room.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = brigade_core::hooks::QueueState { len: 1, capacity: 8 };
    /// assert!(!queue.is_full());
    /// ```
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.len >= self.capacity
    }
}

/// What [`admit`](super::Middleware::admit) decides about a submitted job.
///
/// # Examples
///
/// ```
/// use brigade_core::hooks::{Admission, QueueState};
///
/// fn drop_when_full(queue: QueueState) -> Admission {
///     if queue.is_full() { Admission::DropNewest } else { Admission::Accept }
/// }
/// assert!(matches!(drop_when_full(QueueState { len: 4, capacity: 4 }), Admission::DropNewest));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Admission {
    /// Enqueue the job (waiting for room if the queue is full and the caller can wait).
    Accept,
    /// Refuse the job: it goes back to the caller with the reason.
    Reject(Rejection),
    /// Accept the job and drop it at once: it is counted, traced and given to
    /// [`dropped`](super::Middleware::dropped).
    DropNewest,
    /// Make room by dropping the oldest queued job, then enqueue this one.
    EvictOldest,
}

/// What [`before_start`](super::Middleware::before_start) decides about a job a worker took.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use brigade_core::hooks::Start;
///
/// let now = Instant::now();
/// let decision = Start::NotBefore(now + Duration::from_millis(100));
/// assert_ne!(decision, Start::Now);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Start {
    /// Run it now.
    Now,
    /// Put it aside and ask again at this time; the worker moves on to other jobs.
    NotBefore(Instant),
    /// Put it aside and ask again when some running job ends (a weighted limit is full).
    WhenCapacityFrees,
}

/// How a run ended, as seen by [`after_run`](super::Middleware::after_run).
///
/// # Examples
///
/// ```
/// use brigade_core::hooks::RunOutcome;
///
/// let outcome: RunOutcome<'_, String> = RunOutcome::Panicked("index out of bounds");
/// assert!(!outcome.is_success());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RunOutcome<'a, E> {
    /// The job returned its output.
    Succeeded,
    /// The job returned an error.
    Failed(&'a E),
    /// The job panicked with this message.
    Panicked(&'a str),
    /// The job ran past its deadline and gave up, returning this error if any.
    TimedOut(Option<&'a E>),
    /// The job's token was cancelled and it gave up; never run again.
    Cancelled(Option<&'a E>),
}

impl<E> RunOutcome<'_, E> {
    /// Whether the run produced the job's output.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_core::hooks::RunOutcome::<()>::Succeeded.is_success());
    /// ```
    #[must_use]
    pub fn is_success(&self) -> bool {
        matches!(self, RunOutcome::Succeeded)
    }
}

/// One finished run, as seen by [`after_run`](super::Middleware::after_run).
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use brigade_core::JobId;
/// use brigade_core::hooks::{RunOutcome, RunReport};
///
/// let now = Instant::now();
/// let report = RunReport::<String> {
///     id: JobId::new(1),
///     outcome: RunOutcome::Succeeded,
///     attempt: 1,
///     started: now,
///     first_failure: None,
/// };
/// assert_eq!(report.attempt, 1);
/// ```
#[derive(Debug)]
pub struct RunReport<'a, E> {
    /// The job's id.
    pub id: JobId,
    /// How the run ended.
    pub outcome: RunOutcome<'a, E>,
    /// Which run this was (1 for the first).
    pub attempt: u32,
    /// When the run started; when it ended instead, in a pool none of whose layers
    /// [times runs](super::Middleware::times_runs) (none reads this).
    pub started: Instant,
    /// When the job first failed, if an earlier run failed.
    pub first_failure: Option<Instant>,
}

/// What [`after_run`](super::Middleware::after_run) decides after a run that did not succeed.
///
/// # Examples
///
/// ```
/// use brigade_core::hooks::AfterRun;
/// assert_eq!(AfterRun::default(), AfterRun::Done);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum AfterRun {
    /// The job ends with this run's outcome.
    #[default]
    Done,
    /// Run the job again, not before this time. It waits in a delay queue, not on a worker.
    RetryAt(Instant),
    /// Hand the job to this layer's dead-letter sink.
    DeadLetter,
}

/// A job that failed for good, with what is known of its failures, on its way to a sink.
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use brigade_core::JobId;
/// use brigade_core::hooks::DeadLetter;
///
/// let now = SystemTime::now();
/// let letter = DeadLetter {
///     job: "send mail to user 12",
///     id: JobId::new(12),
///     error: "SMTP connection failed".to_string(),
///     attempts: 3,
///     first_failure: now,
///     last_failure: now,
/// };
/// assert_eq!(letter.attempts, 3);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DeadLetter<J> {
    /// The job, intact.
    pub job: J,
    /// The job's id in the pool it failed in.
    pub id: JobId,
    /// The last error, as displayed (or the panic message).
    pub error: String,
    /// How many times the job ran.
    pub attempts: u32,
    /// When it first failed.
    pub first_failure: SystemTime,
    /// When it last failed.
    pub last_failure: SystemTime,
}

impl<J> fmt::Debug for DeadLetter<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("id", &self.id)
            .field("error", &self.error)
            .field("attempts", &self.attempts)
            .field("first_failure", &self.first_failure)
            .field("last_failure", &self.last_failure)
            .finish_non_exhaustive()
    }
}

/// Why a job was dropped.
///
/// # Examples
///
/// ```
/// assert_ne!(brigade_core::hooks::DropReason::Newest, brigade_core::hooks::DropReason::Evicted);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The queue was full and the incoming job was dropped.
    Newest,
    /// The job was the oldest in a full queue and was evicted to make room.
    Evicted,
}
