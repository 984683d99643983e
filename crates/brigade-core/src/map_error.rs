use std::fmt;

use crate::{JobError, SubmitError};

/// Why an item of a pool's `map` or `map_unordered` carries no output: the pool refused the
/// job (it comes back), or the job ran and did not succeed. One error type, so one `?`
/// takes an item apart.
///
/// # Examples
///
/// ```
/// use brigade_core::{JobError, MapError, SubmitError};
/// use brigade_core::backend::job_errors;
///
/// fn total(items: Vec<Result<u32, MapError<&'static str, String>>>) -> Result<u32, MapError<&'static str, String>> {
///     let mut sum = 0;
///     for item in items {
///         sum += item?; // one `?`, whichever way the item failed
///     }
///     Ok(sum)
/// }
///
/// assert_eq!(total(vec![Ok(1), Ok(2)]).unwrap(), 3);
/// let refused = total(vec![Ok(1), Err(MapError::Refused(SubmitError::Closed("job")))]);
/// assert_eq!(refused.unwrap_err().into_job(), Some("job"));
/// let failed = total(vec![Err(MapError::Job(job_errors::failed("boom".to_string(), 1)))]);
/// assert_eq!(failed.unwrap_err().to_string(), "job failed: boom");
/// ```
pub enum MapError<J, E> {
    /// The pool refused the job (it is shut down, or a middleware rejected it); the job
    /// comes back inside.
    Refused(SubmitError<J>),
    /// The job was accepted and ended without its output.
    Job(JobError<E>),
}

impl<J, E> MapError<J, E> {
    /// The refused job, handed back; `None` for a job that ran.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{MapError, SubmitError};
    /// let error = MapError::<u8, String>::Refused(SubmitError::Closed(7));
    /// assert_eq!(error.into_job(), Some(7));
    /// ```
    #[must_use]
    pub fn into_job(self) -> Option<J> {
        match self {
            MapError::Refused(refused) => Some(refused.into_inner()),
            MapError::Job(_) => None,
        }
    }

    /// The job's error, for a job that ran; `None` for a refused one.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{ErrorKind, JobError, MapError};
    /// use brigade_core::backend::job_errors;
    /// let error = MapError::<u8, String>::Job(job_errors::cancelled(None, 0));
    /// assert_eq!(error.job_error().map(JobError::kind), Some(ErrorKind::Cancelled));
    /// ```
    #[must_use]
    pub fn job_error(&self) -> Option<&JobError<E>> {
        match self {
            MapError::Refused(_) => None,
            MapError::Job(error) => Some(error),
        }
    }
}

impl<J, E> From<SubmitError<J>> for MapError<J, E> {
    fn from(refused: SubmitError<J>) -> Self {
        MapError::Refused(refused)
    }
}

impl<J, E> From<JobError<E>> for MapError<J, E> {
    fn from(error: JobError<E>) -> Self {
        MapError::Job(error)
    }
}

impl<J, E: fmt::Debug> fmt::Debug for MapError<J, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::Refused(refused) => f.debug_tuple("Refused").field(refused).finish(),
            MapError::Job(error) => f.debug_tuple("Job").field(error).finish(),
        }
    }
}

impl<J, E: fmt::Display> fmt::Display for MapError<J, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::Refused(refused) => fmt::Display::fmt(refused, f),
            MapError::Job(error) => fmt::Display::fmt(error, f),
        }
    }
}

/// Transparent: the message and the source are those of the error inside.
impl<J, E: fmt::Debug + fmt::Display> std::error::Error for MapError<J, E>
where
    JobError<E>: std::error::Error,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MapError::Refused(refused) => refused.source(),
            MapError::Job(error) => error.source(),
        }
    }
}
