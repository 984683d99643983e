//! Running an iterator of jobs with a bounded number in flight: results in input order
//! (`map`) or in completion order (`map_unordered`, the seeds' results channel).

use std::collections::VecDeque;

use brigade_core::backend::{InFlightLimit, OrderedResults};
use brigade_core::{Completions, Job, MapError, SubmitError};

use crate::pool::ThreadPool;

/// What [`ThreadPool::map`] and [`ThreadPool::map_unordered`] yield for each job: its output,
/// or a [`MapError`]: the job handed back if the pool refused it (shut down, or rejected by
/// a middleware), or the job's error. One `?` takes it apart.
///
/// # Examples
///
/// ```
/// use brigade_core::{BoxJob, JobContext, MapError, SubmitError, job_fn};
/// use brigade_thread::{BoxPool, MapResult, ThreadPool};
///
/// let pool: BoxPool<u64, String> = ThreadPool::builder().workers(2).build()?;
/// let _ = pool.shutdown();
/// let job = BoxJob::new(job_fn(|_| Ok(1)));
/// let result: MapResult<BoxJob<u64, String>> = pool.map([job], 1).next().unwrap();
/// assert!(matches!(result, Err(MapError::Refused(SubmitError::Closed(_)))), "the job comes back");
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub type MapResult<J> = Result<<J as Job>::Output, MapError<J, <J as Job>::Error>>;

/// The refused job of a turn, if the pool refused it: kept for that turn in the input order.
type Refused<J> = Option<SubmitError<J>>;

/// Results in input order through [`OrderedResults`]: a result cell per job in flight,
/// reused from turn to turn, so that a job costs no handle (no allocation, no free, no
/// token of its own) and its result is taken in its turn.
struct Ordered<'a, J: Job, I> {
    pool: &'a ThreadPool<J>,
    jobs: I,
    limit: InFlightLimit,
    results: OrderedResults<J::Output, J::Error>,
    /// One entry per turn issued and not yet taken.
    turns: VecDeque<Refused<J>>,
}

impl<J: Job, I: Iterator<Item = J>> Iterator for Ordered<'_, J, I> {
    type Item = MapResult<J>;

    fn next(&mut self) -> Option<Self::Item> {
        let wanted = self.limit.top_up(self.turns.len());
        for job in self.jobs.by_ref().take(wanted) {
            let slot = self.results.issue();
            self.turns
                .push_back(self.pool.submit_in_turn(job, slot).err());
        }
        let refused = self.turns.pop_front()?;
        // A refused job's slot was dropped with its turn unfilled, which delivered
        // `Returned` into the turn: taken here to free the cell, and the refusal kept.
        let result = self.results.take()?;
        Some(match refused {
            Some(refused) => Err(MapError::Refused(refused)),
            None => result.map_err(MapError::Job),
        })
    }
}

struct Unordered<'a, J: Job, I> {
    pool: &'a ThreadPool<J>,
    jobs: I,
    limit: InFlightLimit,
    in_flight: Completions<J::Output, J::Error>,
    /// Refused jobs not yet handed back; they count against the limit until they are.
    refused: VecDeque<SubmitError<J>>,
}

impl<J: Job, I: Iterator<Item = J>> Iterator for Unordered<'_, J, I> {
    type Item = MapResult<J>;

    fn next(&mut self) -> Option<Self::Item> {
        let wanted = self.limit.top_up(self.in_flight.len() + self.refused.len());
        for job in self.jobs.by_ref().take(wanted) {
            match self.pool.submit(job) {
                Ok(handle) => self.in_flight.push(handle),
                Err(refused) => self.refused.push_back(refused),
            }
        }
        if let Some(refused) = self.refused.pop_front() {
            return Some(Err(MapError::Refused(refused)));
        }
        let (_, result) = self.in_flight.blocking_next()?;
        Some(result.map_err(MapError::Job))
    }
}

impl<J: Job> ThreadPool<J> {
    /// Runs `jobs` with at most `max_in_flight` submitted and unfinished at a time, and
    /// yields their results in input order. Jobs are pulled from `jobs` lazily, as results
    /// are taken, in runs: once `max_in_flight` are in flight, more are pulled when a
    /// sixteenth of them (at least one) have been taken. A `max_in_flight` of 0 is taken
    /// as 1.
    ///
    /// Each item is a [`MapResult`]: `Ok` with the job's output, or `Err` with a
    /// [`MapError`]: the job's error, or the job handed back if the pool refused it (it is
    /// shut down, or a middleware rejected it), in that job's place in the order. Dropping
    /// the iterator early leaves the jobs already submitted running.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, job_fn};
    /// let pool = brigade_thread::ThreadPool::builder().workers(4).build()?;
    /// let jobs = (1..=5u64).map(|n| job_fn(move |_| Ok::<_, std::convert::Infallible>(n * 10)));
    /// let results: Vec<u64> = pool.map(jobs, 2).collect::<Result<_, _>>()?;
    /// assert_eq!(results, [10, 20, 30, 40, 50]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map<I>(&self, jobs: I, max_in_flight: usize) -> impl Iterator<Item = MapResult<J>>
    where
        I: IntoIterator<Item = J>,
    {
        Ordered {
            pool: self,
            jobs: jobs.into_iter(),
            limit: InFlightLimit::new(max_in_flight),
            results: OrderedResults::new(),
            turns: VecDeque::new(),
        }
    }

    /// As [`map`](Self::map), but yields results in the order the jobs finish: the seeds'
    /// results channel. A refused job comes back at the next call. Items carry no job id:
    /// a job whose caller needs to know which one it was puts that in its output or error.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{JobContext, job_fn};
    /// let pool = brigade_thread::ThreadPool::builder().workers(4).build()?;
    /// let jobs = (1..=5u64).map(|n| job_fn(move |_| Ok::<_, std::convert::Infallible>(n)));
    /// let mut results: Vec<u64> = pool.map_unordered(jobs, 3).collect::<Result<_, _>>()?;
    /// results.sort();
    /// assert_eq!(results, [1, 2, 3, 4, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_unordered<I>(
        &self,
        jobs: I,
        max_in_flight: usize,
    ) -> impl Iterator<Item = MapResult<J>>
    where
        I: IntoIterator<Item = J>,
    {
        Unordered {
            pool: self,
            jobs: jobs.into_iter(),
            limit: InFlightLimit::new(max_in_flight),
            in_flight: Completions::new(),
            refused: VecDeque::new(),
        }
    }
}
