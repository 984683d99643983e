use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::CancellationToken;

/// Identifies one accepted job within its pool: unique, numbered in the order its submit
/// began (a submit that waits for room keeps the number it was given, and a refused job's
/// number is not reused).
///
/// # Examples
///
/// ```
/// let id = brigade_core::JobId::new(7);
/// assert_eq!(id.get(), 7);
/// assert_eq!(id.to_string(), "#7");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(u64);

impl JobId {
    /// Wraps a raw id.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::JobId::new(3), brigade_core::JobId::new(3));
    /// ```
    #[must_use]
    pub const fn new(id: u64) -> Self {
        JobId(id)
    }

    /// Returns the raw id.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::JobId::new(3).get(), 3);
    /// ```
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a running job knows about itself: its id, which attempt this is, the pool it runs
/// in, its cancellation token and its deadline, if any.
///
/// Cheap to clone (two reference counts), so async jobs can own one.
///
/// # Examples
///
/// ```
/// use brigade_core::{CancellationToken, JobContext, JobId};
///
/// let cx = JobContext::new(JobId::new(1), "images".into(), CancellationToken::new())
///     .with_attempt(2);
/// assert_eq!(cx.pool_name(), "images");
/// assert_eq!(cx.attempt(), 2);
/// assert!(!cx.is_cancelled());
/// ```
#[derive(Clone, Debug)]
pub struct JobContext {
    id: JobId,
    attempt: u32,
    pool_name: Arc<str>,
    token: CancellationToken,
    deadline: Option<Instant>,
}

impl JobContext {
    /// A context for the first attempt of job `id` in the pool named `pool_name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{CancellationToken, JobContext, JobId};
    ///
    /// let cx = JobContext::new(JobId::new(1), "p".into(), CancellationToken::new());
    /// assert_eq!(cx.id(), JobId::new(1));
    /// ```
    #[must_use]
    pub fn new(id: JobId, pool_name: Arc<str>, token: CancellationToken) -> Self {
        JobContext {
            id,
            attempt: 1,
            pool_name,
            token,
            deadline: None,
        }
    }

    /// A context outside any pool, for running a job by hand (in a test, say).
    ///
    /// # Examples
    ///
    /// ```
    /// let cx = brigade_core::JobContext::detached();
    /// assert_eq!(cx.pool_name(), "detached");
    /// ```
    #[must_use]
    pub fn detached() -> Self {
        Self::new(
            JobId::new(0),
            Arc::from("detached"),
            CancellationToken::new(),
        )
    }

    /// Sets the attempt number (1 for the first run).
    ///
    /// # Examples
    ///
    /// ```
    /// let cx = brigade_core::JobContext::detached().with_attempt(3);
    /// assert_eq!(cx.attempt(), 3);
    /// ```
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// Sets the deadline after which the pool cancels the job's token.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// let at = Instant::now();
    /// let cx = brigade_core::JobContext::detached().with_deadline(Some(at));
    /// assert_eq!(cx.deadline(), Some(at));
    /// ```
    #[must_use]
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The job's id in its pool.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::JobContext::detached().id().get(), 0);
    /// ```
    #[must_use]
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Which run this is: 1 the first time, 2 on the first retry, and so on.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::JobContext::detached().attempt(), 1);
    /// ```
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The name of the pool running the job.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::JobContext::detached().pool_name(), "detached");
    /// ```
    #[must_use]
    pub fn pool_name(&self) -> &str {
        &self.pool_name
    }

    /// The job's cancellation token: cancelled by its handle, by a shutdown deadline or by
    /// the job's own deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// let cx = brigade_core::JobContext::detached();
    /// cx.token().cancel();
    /// assert!(cx.is_cancelled());
    /// ```
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Shorthand for `self.token().is_cancelled()`: jobs should check it between steps.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!brigade_core::JobContext::detached().is_cancelled());
    /// ```
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// When the pool will cancel this run, if a deadline was set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::JobContext::detached().deadline(), None);
    /// ```
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}
