//! How a backend makes a [`JobError`]: one constructor per terminal state a job can reach
//! without its output. Users read job errors; only a backend (or a test standing in for
//! one) makes them.
//!
//! ```
//! use brigade_core::backend::job_errors;
//! use brigade_core::ErrorKind;
//!
//! let error = job_errors::failed("SMTP connection failed".to_string(), 3);
//! assert_eq!((error.kind(), error.attempts()), (ErrorKind::Failed, 3));
//! ```

use crate::{ErrorKind, JobError};

/// The job returned `error` on its last attempt.
///
/// # Examples
///
/// ```
/// let error = brigade_core::backend::job_errors::failed("boom", 1);
/// assert_eq!(error.into_error(), Some("boom"));
/// ```
#[must_use]
pub fn failed<E>(error: E, attempts: u32) -> JobError<E> {
    JobError::new(ErrorKind::Failed, Some(error), attempts)
}

/// The job panicked with `message`.
///
/// # Examples
///
/// ```
/// let error: brigade_core::JobError<()> = brigade_core::backend::job_errors::panicked("oops".into(), 1);
/// assert_eq!(error.panic_message(), Some("oops"));
/// ```
#[must_use]
pub fn panicked<E>(message: String, attempts: u32) -> JobError<E> {
    JobError::with_panic(ErrorKind::Panicked, message, attempts)
}

/// The job was cancelled; `error` is what it returned when it gave up, if it ran.
///
/// # Examples
///
/// ```
/// let error: brigade_core::JobError<()> = brigade_core::backend::job_errors::cancelled(None, 0);
/// assert!(error.is_cancelled());
/// ```
#[must_use]
pub fn cancelled<E>(error: Option<E>, attempts: u32) -> JobError<E> {
    JobError::new(ErrorKind::Cancelled, error, attempts)
}

/// The job ran past its deadline; `error` is what it returned when it gave up.
///
/// # Examples
///
/// ```
/// let error = brigade_core::backend::job_errors::timed_out(Some("late"), 1);
/// assert!(error.is_timeout());
/// ```
#[must_use]
pub fn timed_out<E>(error: Option<E>, attempts: u32) -> JobError<E> {
    JobError::new(ErrorKind::TimedOut, error, attempts)
}

/// The job failed for good with `error` and now sits in a dead-letter sink.
///
/// # Examples
///
/// ```
/// let error = brigade_core::backend::job_errors::dead_lettered("gone", 3);
/// assert!(error.is_dead_lettered());
/// ```
#[must_use]
pub fn dead_lettered<E>(error: E, attempts: u32) -> JobError<E> {
    JobError::new(ErrorKind::DeadLettered, Some(error), attempts)
}

/// The job panicked on its last run and now sits in a dead-letter sink; the panic's
/// message stays available.
///
/// # Examples
///
/// ```
/// let error: brigade_core::JobError<()> =
///     brigade_core::backend::job_errors::dead_lettered_panic("oops".into(), 2);
/// assert!(error.is_dead_lettered());
/// assert_eq!(error.panic_message(), Some("oops"));
/// ```
#[must_use]
pub fn dead_lettered_panic<E>(message: String, attempts: u32) -> JobError<E> {
    JobError::with_panic(ErrorKind::DeadLettered, message, attempts)
}

/// A backpressure policy dropped the job before it ran.
///
/// # Examples
///
/// ```
/// let error: brigade_core::JobError<()> = brigade_core::backend::job_errors::dropped();
/// assert!(error.is_dropped());
/// ```
#[must_use]
pub fn dropped<E>() -> JobError<E> {
    JobError::new(ErrorKind::Dropped, None, 0)
}

/// The pool shut down before the job started and handed the job back to its owner.
///
/// # Examples
///
/// ```
/// let error: brigade_core::JobError<()> = brigade_core::backend::job_errors::returned(0);
/// assert!(error.is_returned());
/// ```
#[must_use]
pub fn returned<E>(attempts: u32) -> JobError<E> {
    JobError::new(ErrorKind::Returned, None, attempts)
}
