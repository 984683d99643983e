//! Mapping a stream of jobs through the pool, with bounded concurrency: results in input
//! order (`map`, through a result cell per job in flight and no handle per job) or in
//! completion order (`map_unordered`, through `Completions`). Both feed the pool with one
//! `Feeder`: pull the jobs the input has ready while there is room in flight, queue them
//! as one run under the pool's lock, and keep the jobs a full queue gave back, in order,
//! until there is room in the queue.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use brigade_core::backend::{InFlightLimit, OrderedResults, Reply};
use brigade_core::{AsyncJob, Completions, MapError, SubmitError};
use futures_core::Stream;
use tokio::sync::futures::Notified;

use crate::TokioPool;
use crate::shared::{Handle_, JobReply, Offer, Unplaced};

/// What [`TokioPool::map`] and [`TokioPool::map_unordered`] yield for each job: its output,
/// or a [`MapError`]: the job handed back if the pool refused it, or the job's error. One
/// `?` takes it apart.
pub type MapResult<J> = Result<<J as AsyncJob>::Output, MapError<J, <J as AsyncJob>::Error>>;

impl<J: AsyncJob> TokioPool<J> {
    /// Runs every job of `jobs` on the pool, at most `limit` at a time (0 counts as 1), and
    /// yields their results in the order of the input.
    ///
    /// The stream pulls jobs from `jobs` only when fewer than `limit` are in flight (once
    /// full, when a sixteenth of them, at least one, have come back), so a
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
        Mapped {
            feeder: Feeder::new(self, jobs, limit),
            turns: InOrder {
                results: OrderedResults::new(),
                refusals: VecDeque::new(),
            },
        }
    }

    /// As [`map`](Self::map), but yields results in the order the jobs finish. Each job in
    /// flight holds its handle (one allocation, freed as its result comes out); a job the
    /// pool refuses is handed back before the next result.
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
        Mapped {
            feeder: Feeder::new(self, jobs, limit),
            turns: AsTheyEnd {
                in_flight: Completions::new(),
                refused: VecDeque::new(),
            },
        }
    }
}

/// What a stream keeps of the jobs it offered, and how much more it takes.
trait Turns<J: AsyncJob> {
    /// The jobs offered and not yet yielded, which the feeder's limit bounds.
    fn in_flight(&self) -> usize;
    /// Where the next job's result goes.
    fn reply(&mut self) -> JobReply<J>;
    /// What became of an offer: accepted (with its handle, if the reply asked for one),
    /// or refused. A full queue's answer never comes here.
    fn offered(&mut self, outcome: Outcome<J>);
    /// The next result to yield; `Ready(None)` when no offered job is left to yield.
    fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<Option<MapResult<J>>>;
}

/// [`TokioPool::map`]'s and [`TokioPool::map_unordered`]'s stream: a feeder and the turns
/// it fills, which say the order results come out in.
struct Mapped<'a, J: AsyncJob, S, T> {
    feeder: Feeder<'a, J, S>,
    turns: T,
}

// Nothing is pinned in place: the input and the wake-up are pinned in boxes of their own.
impl<J: AsyncJob, S, T> Unpin for Mapped<'_, J, S, T> {}

impl<J: AsyncJob, S: Stream<Item = J>, T: Turns<J>> Stream for Mapped<'_, J, S, T> {
    type Item = MapResult<J>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.feeder.feed(cx, &mut this.turns);
        match this.turns.poll_result(cx) {
            // Nothing offered is left: the end, unless jobs are still to come (the feeder
            // then waits on the input or for room, and is woken by it).
            Poll::Ready(None) if !this.feeder.is_done() => Poll::Pending,
            polled => polled,
        }
    }
}

/// The most jobs `map` queues under one lock. A first fill of a large limit goes in
/// several runs, so the first jobs start while later ones are still pulled from the input.
const MOST_PER_RUN: usize = 64;

/// Pulls jobs from the input and offers them to the pool while its limit leaves room in
/// its [`Turns`].
struct Feeder<'a, J: AsyncJob, S> {
    pool: &'a TokioPool<J>,
    /// The input, until it ends.
    jobs: Option<Pin<Box<S>>>,
    /// The next job, given back by a full queue with its id and reply: offered again when
    /// there is room, before any later job.
    waiting: Option<Waiting<'a, J>>,
    /// How many turns may be in flight, and when to top them up.
    limit: InFlightLimit,
    /// Jobs pulled for a top-up and not yet offered, oldest first: behind `waiting` when
    /// the queue filled in the middle of the run.
    run: VecDeque<Unplaced<J>>,
    /// The handles of the jobs a run queued, handed to the turns as it returns.
    accepted: VecDeque<Option<Handle_<J>>>,
}

struct Waiting<'a, J: AsyncJob> {
    unplaced: Unplaced<J>,
    room: Pin<Box<Notified<'a>>>,
}

impl<'a, J: AsyncJob, S: Stream<Item = J>> Feeder<'a, J, S> {
    fn new(pool: &'a TokioPool<J>, jobs: S, limit: usize) -> Self {
        Feeder {
            pool,
            jobs: Some(Box::pin(jobs)),
            waiting: None,
            limit: InFlightLimit::new(limit),
            run: VecDeque::new(),
            accepted: VecDeque::new(),
        }
    }

    /// Whether every job was offered and none waits for room.
    fn is_done(&self) -> bool {
        self.jobs.is_none() && self.waiting.is_none() && self.run.is_empty()
    }

    /// Offers jobs while the limit leaves room in `turns`, stopping at a full queue (woken
    /// when it has room) or an input with nothing ready (woken when it has). Once full, it
    /// starts again only when the limit says to top up, and queues each top-up as one run
    /// (`Shared::offer_run`): one lock for the run, not one per job.
    fn feed(&mut self, cx: &mut Context<'_>, turns: &mut impl Turns<J>) {
        if self.waiting.is_none()
            && self.run.is_empty()
            && self.limit.top_up(turns.in_flight()) == 0
        {
            return;
        }
        loop {
            if let Some(mut waiting) = self.waiting.take() {
                if waiting.room.as_mut().poll(cx).is_pending() {
                    self.waiting = Some(waiting);
                    return;
                }
                match outcome_of(self.pool.shared.offer(waiting.unplaced, None)) {
                    Ok(outcome) => turns.offered(outcome),
                    Err(unplaced) => {
                        self.wait_for_room(unplaced, turns);
                        continue;
                    }
                }
            }
            if self.run.is_empty() && !self.pull_run(cx, turns) {
                return;
            }
            self.pool
                .shared
                .offer_run(&mut self.run, &mut self.accepted);
            for handle in self.accepted.drain(..) {
                turns.offered(Ok(handle));
            }
            // What the run could not place goes one job at a time: the first a full queue
            // gives back waits for room, the rest of the run behind it.
            while self.waiting.is_none() {
                let Some(unplaced) = self.run.pop_front() else {
                    break;
                };
                match outcome_of(self.pool.shared.offer(unplaced, None)) {
                    Ok(outcome) => turns.offered(outcome),
                    Err(unplaced) => self.wait_for_room(unplaced, turns),
                }
            }
        }
    }

    /// Pulls the jobs the input has ready, as many as the limit leaves room for and at
    /// most [`MOST_PER_RUN`], into the run, each given its id and turn. Whether it pulled
    /// any.
    fn pull_run(&mut self, cx: &mut Context<'_>, turns: &mut impl Turns<J>) -> bool {
        let Some(jobs) = self.jobs.as_mut() else {
            return false;
        };
        while self.run.len() < MOST_PER_RUN
            && self.limit.has_room(turns.in_flight() + self.run.len())
        {
            match jobs.as_mut().poll_next(cx) {
                Poll::Ready(Some(job)) => {
                    let unplaced = self.pool.shared.prepare(job, turns.reply());
                    self.run.push_back(unplaced);
                }
                Poll::Ready(None) => {
                    self.jobs = None;
                    break;
                }
                Poll::Pending => break,
            }
        }
        !self.run.is_empty()
    }

    /// A full queue gave `unplaced` back: ask to be woken for room, then offer it again,
    /// so room freed in between is not missed. The wake-up is boxed only on this path;
    /// the caller's loop polls it next, which registers the task's waker.
    fn wait_for_room(&mut self, unplaced: Unplaced<J>, turns: &mut impl Turns<J>) {
        let pool: &'a TokioPool<J> = self.pool;
        let mut room = Box::pin(pool.shared.room());
        match outcome_of(pool.shared.offer(unplaced, Some(room.as_mut()))) {
            Ok(outcome) => turns.offered(outcome),
            Err(unplaced) => self.waiting = Some(Waiting { unplaced, room }),
        }
    }
}

/// What became of an offer a stream made: accepted (with its handle, if one was asked
/// for) or refused.
type Outcome<J> = Result<Option<Handle_<J>>, SubmitError<J>>;

/// An offer's outcome for a stream's [`Turns`], or the job back from a full queue.
fn outcome_of<J: AsyncJob>(offer: Offer<J>) -> Result<Outcome<J>, Unplaced<J>> {
    match offer {
        Offer::Accepted(handle) => Ok(Ok(handle)),
        Offer::Closed(job) => Ok(Err(SubmitError::Closed(job))),
        Offer::Rejected(job, reason) => Ok(Err(SubmitError::Rejected(job, reason))),
        Offer::Full(unplaced) => Err(unplaced),
    }
}

/// [`TokioPool::map`]'s turns: a result cell per job in flight, taken in input order.
struct InOrder<J: AsyncJob> {
    results: OrderedResults<J::Output, J::Error>,
    /// One entry per job offered, oldest first, beside its turn in `results`: the
    /// refusal of a job the pool refused.
    refusals: VecDeque<Option<SubmitError<J>>>,
}

impl<J: AsyncJob> Turns<J> for InOrder<J> {
    fn in_flight(&self) -> usize {
        self.refusals.len()
    }

    fn reply(&mut self) -> JobReply<J> {
        Reply::Slot(self.results.issue())
    }

    fn offered(&mut self, outcome: Outcome<J>) {
        self.refusals.push_back(outcome.err());
    }

    fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<Option<MapResult<J>>> {
        if self.refusals.is_empty() {
            return Poll::Ready(None);
        }
        // The oldest turn's cell is the oldest in `results`: turns and cells are issued in
        // the same order, and a job waiting for room holds the newest cell.
        let Poll::Ready(Some(result)) = self.results.poll_take(cx) else {
            return Poll::Pending;
        };
        // A refused job's slot was dropped with its turn unfilled, which delivered
        // `Returned` into the turn: taken above to free the cell, and the refusal kept.
        Poll::Ready(Some(match self.refusals.pop_front().flatten() {
            Some(refused) => Err(MapError::Refused(refused)),
            None => result.map_err(MapError::Job),
        }))
    }
}

/// [`TokioPool::map_unordered`]'s turns: the handles in flight, taken as their jobs end,
/// and the refused jobs, handed back first.
struct AsTheyEnd<J: AsyncJob> {
    in_flight: Completions<J::Output, J::Error>,
    refused: VecDeque<SubmitError<J>>,
}

impl<J: AsyncJob> Turns<J> for AsTheyEnd<J> {
    fn in_flight(&self) -> usize {
        self.in_flight.len() + self.refused.len()
    }

    fn reply(&mut self) -> JobReply<J> {
        Reply::Handle
    }

    fn offered(&mut self, outcome: Outcome<J>) {
        match outcome {
            Ok(Some(handle)) => self.in_flight.push(handle),
            // Not asked for: this stream's reply is always a handle.
            Ok(None) => {}
            Err(refused) => self.refused.push_back(refused),
        }
    }

    fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<Option<MapResult<J>>> {
        if let Some(refused) = self.refused.pop_front() {
            return Poll::Ready(Some(Err(MapError::Refused(refused))));
        }
        Pin::new(&mut self.in_flight)
            .poll_next(cx)
            .map(|ended| ended.map(|(_, result)| result.map_err(MapError::Job)))
    }
}
