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

/// How deep a payload may nest arrays and objects: what `serde_json` parses back (its
/// recursion limit of 128 refuses the 128th level). Every store keeps the payload as JSON text and a worker parses it at
/// each claim, so a deeper payload would be stored and then fail every claim that took it.
///
/// # Examples
///
/// ```
/// use brigade_queue::{MAX_PAYLOAD_DEPTH, NewJob};
///
/// let nested = |depth| (0..depth).fold(serde_json::json!(1), |inner, _| serde_json::json!([inner]));
/// assert!(NewJob::new("trees", nested(MAX_PAYLOAD_DEPTH)).validate().is_ok());
/// assert!(NewJob::new("trees", nested(MAX_PAYLOAD_DEPTH + 1)).validate().is_err());
/// ```
pub const MAX_PAYLOAD_DEPTH: usize = 127;

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
    /// 1..=`i32::MAX` (the widest attempt counter the stores keep), a run-at more than
    /// [`MAX_SCHEDULE_AHEAD`] away (past what every store's clock arithmetic holds), and a
    /// payload nested deeper than [`MAX_PAYLOAD_DEPTH`].
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
        if nests_deeper_than(&self.payload, MAX_PAYLOAD_DEPTH) {
            return Err(StoreError::invalid(format!(
                "a payload nests arrays and objects at most MAX_PAYLOAD_DEPTH ({MAX_PAYLOAD_DEPTH}) deep"
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

/// Whether `value` nests arrays and objects more than `limit` deep, found without
/// recursion (the payload being checked may be deep enough to exhaust a stack).
fn nests_deeper_than(value: &Value, limit: usize) -> bool {
    let mut open = vec![(value, 0usize)];
    while let Some((value, depth)) = open.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(fields) => Box::new(fields.values()),
            _ => continue,
        };
        let depth = depth + 1;
        if depth > limit {
            return true;
        }
        open.extend(children.map(|child| (child, depth)));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> Value {
        (0..depth).fold(serde_json::json!({"leaf": 1}), |inner, _| {
            serde_json::json!([inner])
        })
    }

    #[test]
    fn the_depth_limit_is_what_json_parses_back() {
        // `nested(n)` is n arrays around an object: n + 1 levels.
        let deepest = serde_json::to_string(&nested(MAX_PAYLOAD_DEPTH - 1)).unwrap();
        assert!(serde_json::from_str::<Value>(&deepest).is_ok());
        let deeper = serde_json::to_string(&nested(MAX_PAYLOAD_DEPTH)).unwrap();
        assert!(serde_json::from_str::<Value>(&deeper).is_err());
        assert!(!nests_deeper_than(
            &nested(MAX_PAYLOAD_DEPTH - 1),
            MAX_PAYLOAD_DEPTH
        ));
        assert!(nests_deeper_than(
            &nested(MAX_PAYLOAD_DEPTH),
            MAX_PAYLOAD_DEPTH
        ));
    }

    #[test]
    fn scalars_and_wide_payloads_are_shallow() {
        assert!(!nests_deeper_than(&serde_json::json!(1), 0));
        let wide = Value::Array((0..10_000).map(Value::from).collect());
        assert!(!nests_deeper_than(&wide, 1));
        assert!(nests_deeper_than(&wide, 0));
    }
}
