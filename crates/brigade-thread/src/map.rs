//! Running an iterator of jobs with a bounded number in flight: results in input order
//! (`map`) or in completion order (`map_unordered`, the seeds' results channel).

use std::collections::VecDeque;

use brigade_core::{Completions, Job, JobError, JobHandle, JobId, JobResult};

use crate::pool::ThreadPool;

type Output<J> = JobResult<<J as Job>::Output, <J as Job>::Error>;

/// A job in flight, or one the pool refused (shut down, or rejected by a middleware).
enum Slot<J: Job> {
    Running(JobHandle<J::Output, J::Error>),
    Refused,
}

fn refused<T, E>() -> JobResult<T, E> {
    Err(JobError::returned(0))
}

struct Ordered<'a, J: Job, I> {
    pool: &'a ThreadPool<J>,
    jobs: I,
    limit: usize,
    in_flight: VecDeque<Slot<J>>,
}

impl<J: Job, I: Iterator<Item = J>> Iterator for Ordered<'_, J, I> {
    type Item = Output<J>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.in_flight.len() < self.limit {
            let Some(job) = self.jobs.next() else { break };
            self.in_flight.push_back(match self.pool.submit(job) {
                Ok(handle) => Slot::Running(handle),
                Err(_) => Slot::Refused,
            });
        }
        Some(match self.in_flight.pop_front()? {
            Slot::Running(handle) => handle.join(),
            Slot::Refused => refused(),
        })
    }
}

struct Unordered<'a, J: Job, I> {
    pool: &'a ThreadPool<J>,
    jobs: I,
    limit: usize,
    in_flight: Completions<J::Output, J::Error>,
    refused: usize,
}

impl<J: Job, I: Iterator<Item = J>> Iterator for Unordered<'_, J, I> {
    type Item = (JobId, Output<J>);

    fn next(&mut self) -> Option<Self::Item> {
        while self.in_flight.len() + self.refused < self.limit {
            let Some(job) = self.jobs.next() else { break };
            match self.pool.submit(job) {
                Ok(handle) => self.in_flight.push(handle),
                Err(_) => self.refused += 1,
            }
        }
        if self.refused > 0 {
            self.refused -= 1;
            return Some((JobId::new(0), refused()));
        }
        self.in_flight.next()
    }
}

impl<J: Job> ThreadPool<J> {
    /// Runs `jobs` with at most `max_in_flight` submitted and unfinished at a time, and
    /// yields their results in input order. Jobs are pulled from `jobs` lazily, as results
    /// are taken. A `max_in_flight` of 0 is taken as 1.
    ///
    /// A job the pool refuses (it is shut down, or a middleware rejected it) yields an
    /// error of kind [`Returned`](brigade_core::ErrorKind::Returned) and is dropped.
    /// Dropping the iterator early leaves the jobs already submitted running.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::JobContext;
    /// let pool = brigade_thread::ThreadPool::builder().workers(4).build()?;
    /// let jobs = (1..=5u64).map(|n| move |_: &JobContext| Ok::<_, String>(n * 10));
    /// let results: Vec<u64> = pool.map(jobs, 2).map(Result::unwrap).collect();
    /// assert_eq!(results, [10, 20, 30, 40, 50]);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn map<I>(&self, jobs: I, max_in_flight: usize) -> impl Iterator<Item = Output<J>>
    where
        I: IntoIterator<Item = J>,
    {
        Ordered {
            pool: self,
            jobs: jobs.into_iter(),
            limit: max_in_flight.max(1),
            in_flight: VecDeque::new(),
        }
    }

    /// As [`map`](Self::map), but yields `(id, result)` in completion order: the seeds'
    /// results channel. A refused job yields id `#0` and a
    /// [`Returned`](brigade_core::ErrorKind::Returned) error.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::JobContext;
    /// let pool = brigade_thread::ThreadPool::builder().workers(4).build()?;
    /// let jobs = (1..=5u64).map(|n| move |_: &JobContext| Ok::<_, String>(n));
    /// let mut results: Vec<u64> = pool.map_unordered(jobs, 3).map(|(_, r)| r.unwrap()).collect();
    /// results.sort();
    /// assert_eq!(results, [1, 2, 3, 4, 5]);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn map_unordered<I>(
        &self,
        jobs: I,
        max_in_flight: usize,
    ) -> impl Iterator<Item = (JobId, Output<J>)>
    where
        I: IntoIterator<Item = J>,
    {
        Unordered {
            pool: self,
            jobs: jobs.into_iter(),
            limit: max_in_flight.max(1),
            in_flight: Completions::new(),
            refused: 0,
        }
    }
}
