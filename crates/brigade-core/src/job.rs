use std::fmt;

use crate::JobContext;

/// A unit of work a pool runs.
///
/// `run` takes `&mut self` so that a job can run again (a retry) without being cloned, and
/// stays intact after its last failure, ready for a dead-letter queue.
///
/// Closures of the shape `FnMut(&JobContext) -> Result<T, E>` are jobs. [`job_fn`] builds
/// one with the argument type inferred, and [`BoxJob`] erases the type so that one pool can
/// run different closures.
///
/// # Examples
///
/// ```
/// use brigade_core::{Job, JobContext};
///
/// struct Resize {
///     width: u32,
/// }
///
/// impl Job for Resize {
///     type Output = u32;
///     type Error = String;
///
///     fn run(&mut self, _cx: &JobContext) -> Result<u32, String> {
///         if self.width > 4000 {
///             return Err(format!("image too large: {} px", self.width));
///         }
///         Ok(self.width / 2)
///     }
/// }
///
/// let cx = JobContext::detached();
/// assert_eq!(Resize { width: 800 }.run(&cx), Ok(400));
/// assert!(Resize { width: 5000 }.run(&cx).is_err());
/// ```
pub trait Job: Send + 'static {
    /// What a successful run produces.
    type Output: Send + 'static;
    /// What a failed run produces. `Display` is what dead-letter sinks and traces record.
    type Error: fmt::Debug + fmt::Display + Send + 'static;

    /// Runs the job once. A pool may call it again after a failure, when a retry policy says so.
    ///
    /// # Errors
    ///
    /// Whatever the job reports as its failure.
    fn run(&mut self, cx: &JobContext) -> Result<Self::Output, Self::Error>;
}

impl<F, T, E> Job for F
where
    F: FnMut(&JobContext) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: fmt::Debug + fmt::Display + Send + 'static,
{
    type Output = T;
    type Error = E;

    fn run(&mut self, cx: &JobContext) -> Result<T, E> {
        self(cx)
    }
}

/// Returns `f` as a job, with the closure's argument type inferred.
///
/// A closure passed straight to a pool whose job type is still generic needs its argument
/// written out (`|cx: &JobContext| ...`); `job_fn` spares that.
///
/// # Examples
///
/// ```
/// use brigade_core::{Job, JobContext, job_fn};
///
/// let mut job = job_fn(|cx| Ok::<_, String>(cx.attempt()));
/// assert_eq!(job.run(&JobContext::detached()), Ok(1));
/// ```
pub fn job_fn<F, T, E>(f: F) -> F
where
    F: FnMut(&JobContext) -> Result<T, E> + Send + 'static,
{
    f
}

/// A job with its type erased, so one pool can run different kinds of job.
///
/// # Examples
///
/// ```
/// use brigade_core::{BoxJob, Job, JobContext, job_fn};
///
/// let jobs: Vec<BoxJob<u32, String>> = vec![
///     BoxJob::new(job_fn(|_| Ok(1))),
///     BoxJob::new(job_fn(|_| Err("no".to_string()))),
/// ];
/// let cx = JobContext::detached();
/// let results: Vec<_> = jobs.into_iter().map(|mut job| job.run(&cx)).collect();
/// assert_eq!(results, vec![Ok(1), Err("no".to_string())]);
/// ```
pub struct BoxJob<T, E> {
    inner: Box<dyn Job<Output = T, Error = E>>,
}

impl<T, E> BoxJob<T, E>
where
    T: Send + 'static,
    E: fmt::Debug + fmt::Display + Send + 'static,
{
    /// Boxes `job`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{BoxJob, JobContext, job_fn};
    ///
    /// let job: BoxJob<u8, String> = BoxJob::new(job_fn(|_| Ok(7)));
    /// # let _ = job;
    /// ```
    pub fn new(job: impl Job<Output = T, Error = E>) -> Self {
        BoxJob {
            inner: Box::new(job),
        }
    }
}

impl<T, E> Job for BoxJob<T, E>
where
    T: Send + 'static,
    E: fmt::Debug + fmt::Display + Send + 'static,
{
    type Output = T;
    type Error = E;

    fn run(&mut self, cx: &JobContext) -> Result<T, E> {
        self.inner.run(cx)
    }
}

impl<T, E> fmt::Debug for BoxJob<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxJob(..)")
    }
}
