use std::time::{Duration, SystemTime};

/// How a job is enqueued: when it may first run, its priority, its unique key and how many
/// runs it gets.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade_queue::EnqueueOptions;
///
/// let options = EnqueueOptions::new()
///     .delay(Duration::from_secs(60))
///     .priority(10)
///     .unique_key("invoice-2026-12")
///     .max_attempts(5);
/// assert_eq!(options.priority_value(), 10);
/// assert_eq!(options.max_attempts_value(), Some(5));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct EnqueueOptions {
    run_at: Option<RunAt>,
    priority: i16,
    unique_key: Option<String>,
    max_attempts: Option<u32>,
}

/// When a job may first run: at a wall-clock time, or after a delay measured on the
/// store's clock (so hosts with skewed clocks agree).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade_queue::{EnqueueOptions, RunAt};
///
/// let options = EnqueueOptions::new().delay(Duration::from_secs(5));
/// assert_eq!(options.run_at_value(), Some(RunAt::After(Duration::from_secs(5))));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunAt {
    /// Not before this wall-clock time.
    Time(SystemTime),
    /// Not before this long after the store accepts the job, on the store's clock.
    After(Duration),
}

impl EnqueueOptions {
    /// The defaults: run as soon as possible, priority 0, no unique key, the queue's
    /// default number of attempts.
    ///
    /// # Examples
    ///
    /// ```
    /// let options = brigade_queue::EnqueueOptions::new();
    /// assert_eq!(options.priority_value(), 0);
    /// assert!(options.unique_key_value().is_none());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Not before `time` (wall clock).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// let at = SystemTime::now() + Duration::from_secs(3600);
    /// let options = brigade_queue::EnqueueOptions::new().run_at(at);
    /// assert_eq!(options.run_at_value(), Some(brigade_queue::RunAt::Time(at)));
    /// ```
    pub fn run_at(mut self, time: SystemTime) -> Self {
        self.run_at = Some(RunAt::Time(time));
        self
    }

    /// Not before `delay` from now, on the store's clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = brigade_queue::EnqueueOptions::new().delay(Duration::from_secs(1));
    /// assert!(options.run_at_value().is_some());
    /// ```
    pub fn delay(mut self, delay: Duration) -> Self {
        self.run_at = Some(RunAt::After(delay));
        self
    }

    /// Higher runs first among the jobs that are due; default 0, negative allowed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_queue::EnqueueOptions::new().priority(-3).priority_value(), -3);
    /// ```
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    /// At most one live (waiting or running) job per queue holds this key; enqueueing a
    /// second one returns the first one's id, marked as a duplicate.
    ///
    /// # Examples
    ///
    /// ```
    /// let options = brigade_queue::EnqueueOptions::new().unique_key("user-7-welcome");
    /// assert_eq!(options.unique_key_value(), Some("user-7-welcome"));
    /// ```
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// The most runs this job gets, the first included; a lease that expires counts as a
    /// run. Zero is refused at enqueue.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_queue::EnqueueOptions::new().max_attempts(3).max_attempts_value(), Some(3));
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// When the job may first run, if set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_queue::EnqueueOptions::new().run_at_value().is_none());
    /// ```
    #[must_use]
    pub fn run_at_value(&self) -> Option<RunAt> {
        self.run_at
    }

    /// The priority.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_queue::EnqueueOptions::new().priority_value(), 0);
    /// ```
    #[must_use]
    pub fn priority_value(&self) -> i16 {
        self.priority
    }

    /// The unique key, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_queue::EnqueueOptions::new().unique_key_value().is_none());
    /// ```
    #[must_use]
    pub fn unique_key_value(&self) -> Option<&str> {
        self.unique_key.as_deref()
    }

    /// The most runs, if set here rather than by the queue's default.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_queue::EnqueueOptions::new().max_attempts_value().is_none());
    /// ```
    #[must_use]
    pub fn max_attempts_value(&self) -> Option<u32> {
        self.max_attempts
    }
}
