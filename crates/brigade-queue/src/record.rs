use std::fmt;
use std::time::SystemTime;

use serde_json::Value;

use crate::DurableId;

/// Where a durable job is in its life.
///
/// `Available` jobs wait (perhaps for a run-again time), `Running` ones are leased to a
/// worker; the other three are terminal: each acknowledged enqueue ends in exactly one of
/// them.
///
/// # Examples
///
/// ```
/// use brigade_queue::JobState;
///
/// assert!(JobState::Dead.is_terminal());
/// assert!(!JobState::Running.is_terminal());
/// assert_eq!(JobState::parse("completed"), Some(JobState::Completed));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobState {
    /// Waiting to be claimed, now or at its run-again time.
    Available,
    /// Leased to a worker.
    Running,
    /// Ran to success.
    Completed,
    /// Failed its last allowed run, or failed for good; kept for inspection and replay.
    Dead,
    /// Cancelled by an operator.
    Cancelled,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 5] = [
        JobState::Available,
        JobState::Running,
        JobState::Completed,
        JobState::Dead,
        JobState::Cancelled,
    ];

    /// The state's name as stores write it.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_queue::JobState::Dead.as_str(), "dead");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    /// The state named `name`, if there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_queue::JobState::parse("nope"), None);
    /// ```
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// Whether the job's life is over.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_queue::JobState::Cancelled.is_terminal());
    /// ```
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Dead | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One job as an operator sees it.
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use brigade_queue::{DurableId, JobRecord, JobState};
///
/// let record = JobRecord {
///     id: DurableId::new(3),
///     queue: "emails".into(),
///     state: JobState::Dead,
///     payload: serde_json::json!({}),
///     attempt: 3,
///     max_attempts: 3,
///     priority: 0,
///     unique_key: None,
///     run_at: SystemTime::now(),
///     enqueued_at: SystemTime::now(),
///     finished_at: Some(SystemTime::now()),
///     last_error: Some("smtp: mailbox unavailable".into()),
/// };
/// assert_eq!(record.last_error.as_deref(), Some("smtp: mailbox unavailable"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    /// The job.
    pub id: DurableId,
    /// Its queue.
    pub queue: String,
    /// Where it is.
    pub state: JobState,
    /// Its payload.
    pub payload: Value,
    /// Runs charged so far.
    pub attempt: u32,
    /// The most runs it gets.
    pub max_attempts: u32,
    /// Its priority.
    pub priority: i16,
    /// Its unique key, if any.
    pub unique_key: Option<String>,
    /// Not claimed before this time.
    pub run_at: SystemTime,
    /// When the store accepted it.
    pub enqueued_at: SystemTime,
    /// When it reached its terminal state, if it has.
    pub finished_at: Option<SystemTime>,
    /// The error of its last failed run, if any.
    pub last_error: Option<String>,
}

/// How many jobs of one queue are in each state.
///
/// # Examples
///
/// ```
/// let counts = brigade_queue::QueueCounts { available: 2, scheduled: 1, running: 1, ..Default::default() };
/// assert_eq!(counts.live(), 4);
/// assert_eq!(counts.total(), 4);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Due now, waiting for a worker.
    pub available: u64,
    /// Waiting for a run-at or run-again time in the future.
    pub scheduled: u64,
    /// Leased to a worker.
    pub running: u64,
    /// Finished well.
    pub completed: u64,
    /// Dead.
    pub dead: u64,
    /// Cancelled.
    pub cancelled: u64,
}

impl QueueCounts {
    /// Adds `jobs` jobs in `state` (an available one `due_later` counts as scheduled): how
    /// a store folds its per-state counts into one value.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_queue::{JobState, QueueCounts};
    /// let mut counts = QueueCounts::default();
    /// counts.add(JobState::Available, true, 2);
    /// counts.add(JobState::Running, false, 1);
    /// assert_eq!((counts.scheduled, counts.running), (2, 1));
    /// ```
    pub fn add(&mut self, state: JobState, due_later: bool, jobs: u64) {
        let count = match state {
            JobState::Available if due_later => &mut self.scheduled,
            JobState::Available => &mut self.available,
            JobState::Running => &mut self.running,
            JobState::Completed => &mut self.completed,
            JobState::Dead => &mut self.dead,
            JobState::Cancelled => &mut self.cancelled,
        };
        *count += jobs;
    }

    /// Jobs whose life is not over: available, scheduled and running.
    ///
    /// # Examples
    ///
    /// See [`QueueCounts`].
    #[must_use]
    pub fn live(&self) -> u64 {
        self.available + self.scheduled + self.running
    }

    /// Every job the queue holds.
    ///
    /// # Examples
    ///
    /// See [`QueueCounts`].
    #[must_use]
    pub fn total(&self) -> u64 {
        self.live() + self.completed + self.dead + self.cancelled
    }
}
