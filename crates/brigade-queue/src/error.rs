use std::error::Error;
use std::fmt;

/// Why a store could not do what it was asked.
///
/// # Examples
///
/// ```
/// use brigade_queue::StoreError;
///
/// let error = StoreError::invalid("max_attempts must be at least 1");
/// assert!(!error.is_transient());
/// assert_eq!(error.to_string(), "invalid request: max_attempts must be at least 1");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or did not answer in time; the call may work later.
    Unavailable(Box<dyn Error + Send + Sync>),
    /// The store answered with an error that trying again will not fix.
    Backend(Box<dyn Error + Send + Sync>),
    /// What the store holds could not be read as a job.
    Corrupt(String),
    /// The request itself is wrong: a bad option, an empty name.
    Invalid(String),
}

impl StoreError {
    /// A request refused for `reason`.
    ///
    /// # Examples
    ///
    /// See [`StoreError`].
    #[must_use]
    pub fn invalid(reason: impl Into<String>) -> Self {
        StoreError::Invalid(reason.into())
    }

    /// The same error again, for one more of several callers it answers (a batch): the
    /// kind is kept, the source becomes its text.
    ///
    /// # Examples
    ///
    /// ```
    /// let error = brigade_queue::StoreError::Unavailable("connection reset".into());
    /// let again = error.replicate();
    /// assert!(again.is_transient());
    /// assert_eq!(again.to_string(), error.to_string());
    /// ```
    #[must_use]
    pub fn replicate(&self) -> StoreError {
        match self {
            StoreError::Unavailable(source) => StoreError::Unavailable(source.to_string().into()),
            StoreError::Backend(source) => StoreError::Backend(source.to_string().into()),
            StoreError::Corrupt(what) => StoreError::Corrupt(what.clone()),
            StoreError::Invalid(reason) => StoreError::Invalid(reason.clone()),
        }
    }

    /// Whether trying again later may succeed (the store was unreachable or timed out).
    ///
    /// # Examples
    ///
    /// ```
    /// let error = brigade_queue::StoreError::Unavailable("connection refused".into());
    /// assert!(error.is_transient());
    /// ```
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(source) => write!(f, "store unavailable: {source}"),
            StoreError::Backend(source) => write!(f, "store error: {source}"),
            StoreError::Corrupt(what) => write!(f, "store holds an unreadable job: {what}"),
            StoreError::Invalid(reason) => write!(f, "invalid request: {reason}"),
        }
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            StoreError::Unavailable(source) | StoreError::Backend(source) => Some(&**source),
            StoreError::Corrupt(_) | StoreError::Invalid(_) => None,
        }
    }
}

/// A refused enqueue, with the job handed back.
///
/// # Examples
///
/// ```
/// use brigade_queue::EnqueueError;
///
/// let error = EnqueueError::Full("welcome email");
/// assert!(error.is_full());
/// assert_eq!(error.into_inner(), "welcome email");
/// ```
#[non_exhaustive]
pub enum EnqueueError<T> {
    /// The queue holds as many live jobs as its depth cap allows.
    Full(T),
    /// The job could not be turned into a payload.
    Encode(T, serde_json::Error),
    /// The store failed. Had the connection dropped after the commit was sent, the job may
    /// have been kept all the same; a unique key makes enqueueing it again safe.
    Store(T, StoreError),
}

impl<T> EnqueueError<T> {
    /// The job that was not enqueued.
    ///
    /// # Examples
    ///
    /// See [`EnqueueError`].
    pub fn into_inner(self) -> T {
        match self {
            EnqueueError::Full(job)
            | EnqueueError::Encode(job, _)
            | EnqueueError::Store(job, _) => job,
        }
    }

    /// Whether the queue was full.
    ///
    /// # Examples
    ///
    /// See [`EnqueueError`].
    #[must_use]
    pub fn is_full(&self) -> bool {
        matches!(self, EnqueueError::Full(_))
    }

    /// The same error around another value (used to hand back a typed job for its payload).
    ///
    /// # Examples
    ///
    /// ```
    /// let error = brigade_queue::EnqueueError::Full(1).map(|n| n + 1);
    /// assert_eq!(error.into_inner(), 2);
    /// ```
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> EnqueueError<U> {
        match self {
            EnqueueError::Full(job) => EnqueueError::Full(f(job)),
            EnqueueError::Encode(job, error) => EnqueueError::Encode(f(job), error),
            EnqueueError::Store(job, error) => EnqueueError::Store(f(job), error),
        }
    }
}

impl<T> fmt::Debug for EnqueueError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnqueueError::Full(_) => f.write_str("Full(..)"),
            EnqueueError::Encode(_, error) => {
                f.debug_tuple("Encode").field(&"..").field(error).finish()
            }
            EnqueueError::Store(_, error) => {
                f.debug_tuple("Store").field(&"..").field(error).finish()
            }
        }
    }
}

impl<T> fmt::Display for EnqueueError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnqueueError::Full(_) => f.write_str("queue is at its depth cap"),
            EnqueueError::Encode(_, error) => write!(f, "job does not encode as JSON: {error}"),
            EnqueueError::Store(_, error) => write!(f, "enqueue failed: {error}"),
        }
    }
}

impl<T> Error for EnqueueError<T> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            EnqueueError::Full(_) => None,
            EnqueueError::Encode(_, error) => Some(error),
            EnqueueError::Store(_, error) => Some(error),
        }
    }
}
