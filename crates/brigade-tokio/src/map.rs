//! Mapping a stream of jobs through the pool, with bounded concurrency: results in input
//! order (`map`, through a result cell per job in flight and no handle per job) or in
//! completion order (`map_unordered`).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use brigade_core::backend::{OrderedResults, Reply};
use brigade_core::{AsyncJob, MapError, SubmitError};
use futures_core::Stream;
use futures_util::StreamExt;
use tokio::sync::futures::Notified;

use crate::TokioPool;
use crate::shared::{Offer, Unplaced};

/// What [`TokioPool::map`] and [`TokioPool::map_unordered`] yield for each job: its output,
/// or a [`MapError`]: the job handed back if the pool refused it, or the job's error. One
/// `?` takes it apart.
pub type MapResult<J> = Result<<J as AsyncJob>::Output, MapError<J, <J as AsyncJob>::Error>>;

impl<J: AsyncJob> TokioPool<J> {
    /// Runs every job of `jobs` on the pool, at most `limit` at a time (0 counts as 1), and
    /// yields their results in the order of the input.
    ///
    /// The stream pulls a job from `jobs` only when fewer than `limit` are in flight, so a
    /// long or endless input costs no more than `limit` result cells, reused from job to
    /// job (no handle per job); the pool's own bounds apply on top (a full queue makes the
    /// stream wait). A job the pool refuses yields [`MapError::Refused`] in its turn.
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
        Ordered {
            pool: self,
            jobs: Some(Box::pin(jobs)),
            limit: limit.max(1),
            results: OrderedResults::new(),
            turns: VecDeque::new(),
            waiting: None,
        }
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

/// A refused job's error in its turn; `None` for a job the pool accepted.
type Refused<J> = Option<SubmitError<J>>;

/// [`TokioPool::map`]'s stream.
struct Ordered<'a, J: AsyncJob, S> {
    pool: &'a TokioPool<J>,
    /// The input, until it ends.
    jobs: Option<Pin<Box<S>>>,
    limit: usize,
    results: OrderedResults<J::Output, J::Error>,
    /// One entry per job offered, oldest first, beside its turn in `results`.
    turns: VecDeque<Refused<J>>,
    /// The next job, given back by a full queue with its id and turn: offered again when
    /// there is room, before any later job.
    waiting: Option<Waiting<'a, J>>,
}

struct Waiting<'a, J: AsyncJob> {
    unplaced: Unplaced<J>,
    room: Pin<Box<Notified<'a>>>,
}

// Nothing is pinned in place: the input and the wake-up are pinned in boxes of their own.
impl<J: AsyncJob, S> Unpin for Ordered<'_, J, S> {}

impl<'a, J: AsyncJob, S: Stream<Item = J>> Ordered<'a, J, S> {
    /// Offers jobs from the input while fewer than `limit` are in flight, stopping at a
    /// full queue (woken when it has room) or an input with nothing ready.
    fn submit_while_room(&mut self, cx: &mut Context<'_>) {
        loop {
            let unplaced = if let Some(mut waiting) = self.waiting.take() {
                if waiting.room.as_mut().poll(cx).is_pending() {
                    self.waiting = Some(waiting);
                    return;
                }
                waiting.unplaced
            } else {
                if self.turns.len() >= self.limit {
                    return;
                }
                let Some(jobs) = self.jobs.as_mut() else {
                    return;
                };
                match jobs.as_mut().poll_next(cx) {
                    Poll::Ready(Some(job)) => {
                        let turn = Reply::Slot(self.results.issue());
                        self.pool.shared.prepare(job, turn)
                    }
                    Poll::Ready(None) => {
                        self.jobs = None;
                        return;
                    }
                    Poll::Pending => return,
                }
            };
            self.offer(unplaced);
        }
    }

    /// Offers a job in its turn, or keeps it waiting for room if the queue is full.
    fn offer(&mut self, unplaced: Unplaced<J>) {
        let pool: &'a TokioPool<J> = self.pool;
        let unplaced = match turn_of(pool.shared.offer(unplaced, None)) {
            Ok(refused) => return self.turns.push_back(refused),
            Err(full) => full,
        };
        // Full: ask to be woken for room, then offer again, so room freed in between is
        // not missed. The wake-up is boxed only on this path.
        let mut room = Box::pin(pool.shared.room());
        match turn_of(pool.shared.offer(unplaced, Some(room.as_mut()))) {
            Ok(refused) => self.turns.push_back(refused),
            Err(unplaced) => self.waiting = Some(Waiting { unplaced, room }),
        }
    }
}

/// The turn an offer took (`Ok(None)` accepted, `Ok(Some(_))` refused), or the job back
/// from a full queue.
fn turn_of<J: AsyncJob>(offer: Offer<J>) -> Result<Refused<J>, Unplaced<J>> {
    match offer {
        Offer::Accepted(_) => Ok(None),
        Offer::Closed(job) => Ok(Some(SubmitError::Closed(job))),
        Offer::Rejected(job, reason) => Ok(Some(SubmitError::Rejected(job, reason))),
        Offer::Full(unplaced) => Err(unplaced),
    }
}

impl<J: AsyncJob, S: Stream<Item = J>> Stream for Ordered<'_, J, S> {
    type Item = MapResult<J>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.submit_while_room(cx);
        if this.turns.is_empty() {
            let ended = this.jobs.is_none() && this.waiting.is_none();
            return if ended {
                Poll::Ready(None)
            } else {
                Poll::Pending
            };
        }
        // The oldest turn's cell is the oldest in `results`: turns and cells are issued in
        // the same order, and a job waiting for room holds the newest cell.
        let Poll::Ready(Some(result)) = this.results.poll_take(cx) else {
            return Poll::Pending;
        };
        // A refused job's slot was dropped with its turn unfilled, which delivered
        // `Returned` into the turn: taken above to free the cell, and the refusal kept.
        Poll::Ready(Some(match this.turns.pop_front().flatten() {
            Some(refused) => Err(MapError::Refused(refused)),
            None => result.map_err(MapError::Job),
        }))
    }
}
