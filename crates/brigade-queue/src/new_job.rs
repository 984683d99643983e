use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::{EnqueueOptions, RunAt, StoreError};

/// How far ahead a job may be scheduled: a century, well inside every store's clock
/// arithmetic (Redis scripts count microseconds in a double, exact to about 285 years
/// after 1970).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade_queue::{EnqueueOptions, MAX_SCHEDULE_AHEAD, NewJob};
///
/// let job = |delay| {
///     NewJob::new("reports", serde_json::json!({}))
///         .with_options(EnqueueOptions::default().delay(delay))
/// };
/// assert!(job(MAX_SCHEDULE_AHEAD).validate().is_ok());
/// assert!(job(Duration::MAX).validate().is_err());
/// ```
pub const MAX_SCHEDULE_AHEAD: Duration = Duration::from_secs(100 * 365 * 86_400);

/// The number of runs a job gets when neither its options nor its queue say otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 20;

/// A job as a store receives it: its queue, its payload as JSON, its options, and the cap on
/// the queue's depth the producer asked for.
///
/// Most code enqueues through [`Queue`](crate::Queue), which builds these from a typed job.
///
/// # Examples
///
/// ```
/// use brigade_queue::{EnqueueOptions, NewJob};
///
/// let job = NewJob::new("emails", serde_json::json!({"to": "a@example.test"}))
///     .with_options(EnqueueOptions::new().priority(1))
///     .with_max_depth(Some(10_000));
/// assert_eq!(job.queue(), "emails");
/// assert_eq!(job.max_attempts(), brigade_queue::DEFAULT_MAX_ATTEMPTS);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    queue: String,
    payload: Value,
    options: EnqueueOptions,
    max_depth: Option<u64>,
}

impl NewJob {
    /// A job for `queue` carrying `payload`, with default options and no depth cap.
    ///
    /// # Examples
    ///
    /// ```
    /// let job = brigade_queue::NewJob::new("q", serde_json::json!(1));
    /// assert_eq!(job.payload(), &serde_json::json!(1));
    /// ```
    #[must_use]
    pub fn new(queue: impl Into<String>, payload: Value) -> Self {
        Self {
            queue: queue.into(),
            payload,
            options: EnqueueOptions::new(),
            max_depth: None,
        }
    }

    /// The same job with `options`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_queue::{EnqueueOptions, NewJob};
    /// let job = NewJob::new("q", serde_json::json!(1)).with_options(EnqueueOptions::new().priority(2));
    /// assert_eq!(job.options().priority_value(), 2);
    /// ```
    #[must_use]
    pub fn with_options(mut self, options: EnqueueOptions) -> Self {
        self.options = options;
        self
    }

    /// The same job, refused when the queue already holds `max_depth` live jobs.
    ///
    /// # Examples
    ///
    /// ```
    /// let job = brigade_queue::NewJob::new("q", serde_json::json!(1)).with_max_depth(Some(5));
    /// assert_eq!(job.max_depth(), Some(5));
    /// ```
    #[must_use]
    pub fn with_max_depth(mut self, max_depth: Option<u64>) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// The queue.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_queue::NewJob::new("q", serde_json::json!(1)).queue(), "q");
    /// ```
    #[must_use]
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The payload.
    ///
    /// # Examples
    ///
    /// ```
    /// let job = brigade_queue::NewJob::new("q", serde_json::json!("x"));
    /// assert_eq!(job.payload(), "x");
    /// ```
    #[must_use]
    pub fn payload(&self) -> &Value {
        &self.payload
    }

    /// The options.
    ///
    /// # Examples
    ///
    /// ```
    /// let job = brigade_queue::NewJob::new("q", serde_json::json!(1));
    /// assert_eq!(job.options().priority_value(), 0);
    /// ```
    pub fn options(&self) -> &EnqueueOptions {
        &self.options
    }

    /// The depth cap, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_queue::NewJob::new("q", serde_json::json!(1)).max_depth(), None);
    /// ```
    #[must_use]
    pub fn max_depth(&self) -> Option<u64> {
        self.max_depth
    }

    /// The most runs: the options' value, else [`DEFAULT_MAX_ATTEMPTS`].
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_queue::{EnqueueOptions, NewJob};
    /// let job = NewJob::new("q", serde_json::json!(1)).with_options(EnqueueOptions::new().max_attempts(2));
    /// assert_eq!(job.max_attempts(), 2);
    /// ```
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.options
            .max_attempts_value()
            .unwrap_or(DEFAULT_MAX_ATTEMPTS)
    }

    /// Checks what every store refuses: an empty queue name, `max_attempts` outside
    /// 1..=`i32::MAX` (the widest attempt counter the stores keep), and a run-at more than
    /// [`MAX_SCHEDULE_AHEAD`] away (past what every store's clock arithmetic holds).
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] saying which.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_queue::{EnqueueOptions, NewJob};
    /// assert!(NewJob::new("q", serde_json::json!(1)).validate().is_ok());
    /// let never = NewJob::new("q", serde_json::json!(1)).with_options(EnqueueOptions::new().max_attempts(0));
    /// assert!(never.validate().is_err());
    /// assert!(NewJob::new("", serde_json::json!(1)).validate().is_err());
    /// let later = EnqueueOptions::new().delay(std::time::Duration::MAX);
    /// assert!(NewJob::new("q", serde_json::json!(1)).with_options(later).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.queue.is_empty() {
            return Err(StoreError::invalid("a job needs a queue name"));
        }
        let ahead = match self.options.run_at_value() {
            Some(RunAt::After(delay)) => delay,
            Some(RunAt::Time(time)) => time
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
            None => Duration::ZERO,
        };
        if ahead > MAX_SCHEDULE_AHEAD {
            return Err(StoreError::invalid(format!(
                "a job runs at most MAX_SCHEDULE_AHEAD (100 years) ahead, not {ahead:?}"
            )));
        }
        let attempts = self.max_attempts();
        if attempts == 0 || i32::try_from(attempts).is_err() {
            return Err(StoreError::invalid(format!(
                "max_attempts must be 1 to {}, not {attempts}",
                i32::MAX
            )));
        }
        Ok(())
    }

    /// Takes the job apart: queue, payload, options.
    ///
    /// # Examples
    ///
    /// ```
    /// let (queue, payload, _options) = brigade_queue::NewJob::new("q", serde_json::json!(1)).into_parts();
    /// assert_eq!((queue.as_str(), payload), ("q", serde_json::json!(1)));
    /// ```
    pub fn into_parts(self) -> (String, Value, EnqueueOptions) {
        (self.queue, self.payload, self.options)
    }
}
