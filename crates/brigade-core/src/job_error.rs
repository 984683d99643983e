use std::any::Any;
use std::fmt;

/// The terminal state a job reached without succeeding.
///
/// # Examples
///
/// ```
/// use brigade_core::{ErrorKind, JobError};
/// use brigade_core::backend::job_errors;
///
/// let error: JobError<String> = job_errors::cancelled(None, 0);
/// assert_eq!(error.kind(), ErrorKind::Cancelled);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The job returned an error and no policy ran it again.
    Failed,
    /// The job panicked.
    Panicked,
    /// The job's token was cancelled before it started, or while it ran and it gave up.
    Cancelled,
    /// The job ran past its deadline and gave up.
    TimedOut,
    /// The job failed for the last time and went to a dead-letter sink.
    DeadLettered,
    /// A backpressure policy dropped the job; it went to the policy's drop callback.
    Dropped,
    /// The pool shut down before the job started and handed it back in its report.
    Returned,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Failed => "job failed",
            ErrorKind::Panicked => "job panicked",
            ErrorKind::Cancelled => "job cancelled",
            ErrorKind::TimedOut => "job timed out",
            ErrorKind::DeadLettered => "job dead-lettered",
            ErrorKind::Dropped => "job dropped under backpressure",
            ErrorKind::Returned => "job handed back unstarted at shutdown",
        }
    }
}

/// Why a job did not produce its output: an opaque error with the job's own error inside,
/// when there is one.
///
/// # Examples
///
/// ```
/// use brigade_core::JobError;
/// use brigade_core::backend::job_errors;
///
/// let error = job_errors::failed("SMTP connection failed".to_string(), 3);
/// assert!(!error.is_panic());
/// assert_eq!(error.attempts(), 3);
/// assert_eq!(error.error().map(String::as_str), Some("SMTP connection failed"));
/// assert_eq!(error.to_string(), "job failed after 3 attempts: SMTP connection failed");
/// ```
pub struct JobError<E> {
    kind: ErrorKind,
    attempts: u32,
    /// Boxed: most terminal errors (cancelled, dropped, returned) carry none, and a job's
    /// handle keeps room for a whole `JobResult` from the moment it is submitted.
    detail: Option<Box<Detail<E>>>,
}

/// What a failure carries beyond its kind.
#[derive(PartialEq, Eq)]
enum Detail<E> {
    Error(E),
    Panic(String),
}

impl<E> JobError<E> {
    pub(crate) fn new(kind: ErrorKind, error: Option<E>, attempts: u32) -> Self {
        JobError {
            kind,
            attempts,
            detail: error.map(|error| Box::new(Detail::Error(error))),
        }
    }

    pub(crate) fn with_panic(kind: ErrorKind, message: String, attempts: u32) -> Self {
        JobError {
            kind,
            attempts,
            detail: Some(Box::new(Detail::Panic(message))),
        }
    }

    /// Which terminal state the job reached.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{ErrorKind, JobError};
    /// use brigade_core::backend::job_errors;
    /// assert_eq!(job_errors::failed((), 1).kind(), ErrorKind::Failed);
    /// ```
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the job panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::job_errors;
    /// assert!(!job_errors::failed((), 1).is_panic());
    /// ```
    #[must_use]
    pub fn is_panic(&self) -> bool {
        self.kind == ErrorKind::Panicked
    }

    /// Whether the job was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::job_errors;
    /// assert!(!job_errors::failed((), 1).is_cancelled());
    /// ```
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.kind == ErrorKind::Cancelled
    }

    /// Whether the job ran past its deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::job_errors;
    /// assert!(!job_errors::failed((), 1).is_timeout());
    /// ```
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::TimedOut
    }

    /// Whether the job went to a dead-letter sink.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::job_errors;
    /// assert!(!job_errors::failed((), 1).is_dead_lettered());
    /// ```
    #[must_use]
    pub fn is_dead_lettered(&self) -> bool {
        self.kind == ErrorKind::DeadLettered
    }

    /// Whether a backpressure policy dropped the job.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::job_errors;
    /// assert!(!job_errors::failed((), 1).is_dropped());
    /// ```
    #[must_use]
    pub fn is_dropped(&self) -> bool {
        self.kind == ErrorKind::Dropped
    }

    /// Whether the job was handed back unstarted at shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::job_errors;
    /// assert!(!job_errors::failed((), 1).is_returned());
    /// ```
    #[must_use]
    pub fn is_returned(&self) -> bool {
        self.kind == ErrorKind::Returned
    }

    /// The job's own error from its last run, if it returned one.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::job_errors;
    /// assert_eq!(job_errors::failed(5, 1).error(), Some(&5));
    /// ```
    #[must_use]
    pub fn error(&self) -> Option<&E> {
        match self.detail.as_deref() {
            Some(Detail::Error(error)) => Some(error),
            _ => None,
        }
    }

    /// Takes the job's own error out, if it returned one.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::job_errors;
    /// assert_eq!(job_errors::failed(5, 1).into_error(), Some(5));
    /// ```
    #[must_use]
    pub fn into_error(self) -> Option<E> {
        match self.detail.map(|detail| *detail) {
            Some(Detail::Error(error)) => Some(error),
            _ => None,
        }
    }

    /// The panic's message, when the job panicked with a string.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::job_errors;
    /// let error: brigade_core::JobError<()> = job_errors::panicked("x".into(), 1);
    /// assert_eq!(error.panic_message(), Some("x"));
    /// ```
    #[must_use]
    pub fn panic_message(&self) -> Option<&str> {
        match self.detail.as_deref() {
            Some(Detail::Panic(message)) => Some(message),
            _ => None,
        }
    }

    /// How many times the job ran (0 if it never started).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::job_errors;
    /// assert_eq!(job_errors::failed((), 2).attempts(), 2);
    /// ```
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl<E: fmt::Debug> fmt::Debug for JobError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("JobError");
        out.field("kind", &self.kind)
            .field("attempts", &self.attempts);
        match self.detail.as_deref() {
            Some(Detail::Error(error)) => out.field("error", error),
            Some(Detail::Panic(message)) => out.field("panic_message", message),
            None => &mut out,
        };
        out.finish()
    }
}

impl<E: PartialEq> PartialEq for JobError<E> {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.detail == other.detail && self.attempts == other.attempts
    }
}

impl<E: Eq> Eq for JobError<E> {}

impl<E: fmt::Display> fmt::Display for JobError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.describe())?;
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        match self.detail.as_deref() {
            Some(Detail::Error(error)) => write!(f, ": {error}"),
            Some(Detail::Panic(message)) => write!(f, ": {message}"),
            None => Ok(()),
        }
    }
}

/// A job error is an error when the job's is: its [`source`](std::error::Error::source) is
/// the job's own error, so reporters that walk the chain (and `downcast_ref`) reach it. A
/// job whose error type is not an `Error` (a `String`, say) still displays, and
/// [`error`](JobError::error) hands its error out.
///
/// # Examples
///
/// ```
/// use std::error::Error;
/// use std::io;
/// use brigade_core::JobError;
/// use brigade_core::backend::job_errors;
///
/// let error = job_errors::failed(io::Error::new(io::ErrorKind::TimedOut, "SMTP timed out"), 2);
/// let source = error.source().and_then(|s| s.downcast_ref::<io::Error>()).unwrap();
/// assert_eq!(source.kind(), io::ErrorKind::TimedOut);
/// ```
impl<E: std::error::Error + 'static> std::error::Error for JobError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.detail.as_deref() {
            Some(Detail::Error(error)) => Some(error),
            _ => None,
        }
    }
}

/// The message of a caught panic: the `&str` or `String` it carried, or a placeholder.
///
/// # Examples
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("disk full")).unwrap_err();
/// assert_eq!(brigade_core::backend::panic_message(payload.as_ref()), "disk full");
/// ```
#[must_use]
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
