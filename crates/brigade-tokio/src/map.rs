//! Mapping a stream of jobs through the pool, with bounded concurrency.

use brigade_core::{AsyncJob, MapError};
use futures_core::Stream;
use futures_util::StreamExt;

use crate::TokioPool;

/// What [`TokioPool::map`] and [`TokioPool::map_unordered`] yield for each job: its output,
/// or a [`MapError`]: the job handed back if the pool refused it, or the job's error. One
/// `?` takes it apart.
pub type MapResult<J> = Result<<J as AsyncJob>::Output, MapError<J, <J as AsyncJob>::Error>>;

impl<J: AsyncJob> TokioPool<J> {
    /// Runs every job of `jobs` on the pool, at most `limit` at a time (0 counts as 1), and
    /// yields their results in the order of the input.
    ///
    /// The stream pulls a job from `jobs` only when fewer than `limit` are in flight, so a
    /// long or endless input costs no more than `limit` handles; the pool's own bounds apply
    /// on top (a full queue makes the stream wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, async_job_fn};
    /// use futures_util::StreamExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = brigade_tokio::TokioPool::builder().workers(3).build().unwrap();
    /// let jobs = futures_util::stream::iter(1..=5u64)
    ///     .map(|n| async_job_fn(move |_cx| async move { Ok::<_, String>(n * 10) }));
    /// let results: Vec<u64> = pool.map(jobs, 2).map(|result| result.unwrap()).collect().await;
    /// assert_eq!(results, vec![10, 20, 30, 40, 50]);
    /// # }
    /// ```
    pub fn map<'a, S>(
        &'a self,
        jobs: S,
        limit: usize,
    ) -> impl Stream<Item = MapResult<J>> + Send + 'a
    where
        S: Stream<Item = J> + Send + 'a,
    {
        jobs.map(move |job| self.run_one(job))
            .buffered(limit.max(1))
    }

    /// As [`map`](Self::map), but yields results in the order the jobs finish.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, async_job_fn};
    /// use futures_util::StreamExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = brigade_tokio::TokioPool::builder().workers(3).build().unwrap();
    /// let jobs = futures_util::stream::iter(1..=5u64)
    ///     .map(|n| async_job_fn(move |_cx| async move { Ok::<_, String>(n) }));
    /// let mut results: Vec<u64> =
    ///     pool.map_unordered(jobs, 2).map(|result| result.unwrap()).collect().await;
    /// results.sort();
    /// assert_eq!(results, vec![1, 2, 3, 4, 5]);
    /// # }
    /// ```
    pub fn map_unordered<'a, S>(
        &'a self,
        jobs: S,
        limit: usize,
    ) -> impl Stream<Item = MapResult<J>> + Send + 'a
    where
        S: Stream<Item = J> + Send + 'a,
    {
        jobs.map(move |job| self.run_one(job))
            .buffer_unordered(limit.max(1))
    }

    async fn run_one(&self, job: J) -> MapResult<J> {
        let handle = self.submit(job).await.map_err(MapError::Refused)?;
        handle.await.map_err(MapError::Job)
    }
}
