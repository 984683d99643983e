use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::JobContext;

/// A unit of work an async pool runs: [`Job`](crate::Job) with an `async fn`.
///
/// `run` takes `&mut self` for the same reasons as [`Job::run`](crate::Job::run): a retry
/// runs the same job again without cloning it, and a job that failed for good is still
/// intact for a dead-letter queue.
///
/// Closures of the shape `FnMut(JobContext) -> impl Future<Output = Result<T, E>>` are async
/// jobs; the context is handed over by value (it is two reference counts) so that the
/// future can own it. [`async_job_fn`] infers the argument type, and [`BoxAsyncJob`] erases
/// the type so one pool can run different closures.
///
/// Implement it with an `async fn run`: the trait asks for a future that is `Send`, so a
/// pool can run it on any worker, and the run's future is the job's own type, not a box
/// (a pool of one job type allocates nothing per run; [`BoxAsyncJob`] boxes each run, as
/// it must to erase the type).
///
/// # Examples
///
/// ```
/// use brigade_core::{AsyncJob, JobContext};
///
/// struct Fetch {
///     url: String,
/// }
///
/// impl AsyncJob for Fetch {
///     type Output = usize;
///     type Error = String;
///
///     async fn run(&mut self, cx: &JobContext) -> Result<usize, String> {
///         if cx.is_cancelled() {
///             return Err("cancelled".into());
///         }
///         Ok(self.url.len())
///     }
/// }
///
/// # let waker = std::task::Waker::noop();
/// # let mut task = std::task::Context::from_waker(&waker);
/// let mut job = Fetch { url: "http://example.test/".into() };
/// let cx = JobContext::detached();
/// let mut run = std::pin::pin!(job.run(&cx));
/// // Any executor can drive it; this one is ready at once.
/// assert_eq!(run.as_mut().poll(&mut task), std::task::Poll::Ready(Ok(20)));
/// ```
pub trait AsyncJob: Send + 'static {
    /// What a successful run produces.
    type Output: Send + 'static;
    /// What a failed run produces. `Display` is what dead-letter sinks and traces record.
    type Error: fmt::Debug + fmt::Display + Send + 'static;

    /// Runs the job once. A pool may call it again after a failure, when a retry policy says so.
    ///
    /// # Errors
    ///
    /// Whatever the job reports as its failure.
    fn run<'a>(
        &'a mut self,
        cx: &'a JobContext,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send + 'a;
}

impl<F, Fut, T, E> AsyncJob for F
where
    F: FnMut(JobContext) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: fmt::Debug + fmt::Display + Send + 'static,
{
    type Output = T;
    type Error = E;

    fn run<'a>(&'a mut self, cx: &'a JobContext) -> impl Future<Output = Result<T, E>> + Send + 'a {
        // The closure's own future: it owns its context and holds no borrow of `self`.
        self(cx.clone())
    }
}

/// Returns `f` as an async job, with the closure's argument type inferred.
///
/// # Examples
///
/// ```
/// use brigade_core::{AsyncJob, JobContext, async_job_fn};
///
/// let mut job = async_job_fn(|cx| async move { Ok::<_, String>(cx.attempt()) });
/// # let waker = std::task::Waker::noop();
/// # let mut task = std::task::Context::from_waker(&waker);
/// let cx = JobContext::detached();
/// let mut run = std::pin::pin!(job.run(&cx));
/// assert_eq!(run.as_mut().poll(&mut task), std::task::Poll::Ready(Ok(1)));
/// ```
pub fn async_job_fn<F, Fut, T, E>(f: F) -> F
where
    F: FnMut(JobContext) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    f
}

/// An async job with its type erased, so one pool can run different kinds of job.
///
/// # Examples
///
/// ```
/// use brigade_core::{AsyncJob, BoxAsyncJob, JobContext, async_job_fn};
///
/// let jobs: Vec<BoxAsyncJob<u32, String>> = vec![
///     BoxAsyncJob::new(async_job_fn(|_cx| async { Ok(1) })),
///     BoxAsyncJob::new(async_job_fn(|_cx| async { Err("no".to_string()) })),
/// ];
/// # let waker = std::task::Waker::noop();
/// # let mut task = std::task::Context::from_waker(&waker);
/// let cx = JobContext::detached();
/// let results: Vec<_> = jobs
///     .into_iter()
///     .map(|mut job| match std::pin::pin!(job.run(&cx)).poll(&mut task) {
///         std::task::Poll::Ready(result) => result,
///         std::task::Poll::Pending => unreachable!("these jobs are ready at once"),
///     })
///     .collect();
/// assert_eq!(results, vec![Ok(1), Err("no".to_string())]);
/// ```
pub struct BoxAsyncJob<T, E> {
    inner: Box<dyn BoxedRuns<T, E>>,
}

/// What [`BoxAsyncJob`] needs of the job it erases: an [`AsyncJob`] whose runs come boxed,
/// so that jobs of different types (and so different futures) answer through one vtable.
trait BoxedRuns<T, E>: Send + 'static {
    fn run_boxed<'a>(
        &'a mut self,
        cx: &'a JobContext,
    ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'a>>;
}

impl<J: AsyncJob> BoxedRuns<J::Output, J::Error> for J {
    fn run_boxed<'a>(
        &'a mut self,
        cx: &'a JobContext,
    ) -> Pin<Box<dyn Future<Output = Result<J::Output, J::Error>> + Send + 'a>> {
        Box::pin(self.run(cx))
    }
}

impl<T, E> BoxAsyncJob<T, E>
where
    T: Send + 'static,
    E: fmt::Debug + fmt::Display + Send + 'static,
{
    /// Boxes `job`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{BoxAsyncJob, JobContext, async_job_fn};
    ///
    /// let job: BoxAsyncJob<u8, String> = BoxAsyncJob::new(async_job_fn(|_cx| async { Ok(7) }));
    /// # let _ = job;
    /// ```
    pub fn new(job: impl AsyncJob<Output = T, Error = E>) -> Self {
        BoxAsyncJob {
            inner: Box::new(job),
        }
    }
}

impl<T, E> AsyncJob for BoxAsyncJob<T, E>
where
    T: Send + 'static,
    E: fmt::Debug + fmt::Display + Send + 'static,
{
    type Output = T;
    type Error = E;

    fn run<'a>(&'a mut self, cx: &'a JobContext) -> impl Future<Output = Result<T, E>> + Send + 'a {
        self.inner.run_boxed(cx)
    }
}

impl<T, E> fmt::Debug for BoxAsyncJob<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxAsyncJob(..)")
    }
}
