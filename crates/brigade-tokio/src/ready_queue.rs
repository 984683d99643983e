//! The ready queue: accepted jobs waiting for a free worker, bounded by the pool's capacity.

use std::collections::VecDeque;

use brigade_core::AsyncJob;
use brigade_core::hooks::QueueState;

use crate::shared::Task;

/// Jobs ready to start, first in first out. Only a submit is refused when it is full: a job
/// coming back (its retry time came, or it was granted capacity) always re-enters.
pub(crate) struct ReadyQueue<J: AsyncJob> {
    tasks: VecDeque<Task<J>>,
    /// How many jobs at the front were granted capacity: they start before the rest, in the
    /// order they were granted.
    granted: usize,
    capacity: usize,
}

impl<J: AsyncJob> ReadyQueue<J> {
    pub(crate) fn new(capacity: usize) -> Self {
        ReadyQueue {
            tasks: VecDeque::with_capacity(capacity.min(1024)),
            granted: 0,
            capacity,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Whether a new submit must wait (or be refused).
    pub(crate) fn is_full(&self) -> bool {
        self.tasks.len() >= self.capacity
    }

    /// How many more jobs fit before the queue is full.
    pub(crate) fn room(&self) -> usize {
        self.capacity.saturating_sub(self.tasks.len())
    }

    /// Its length and capacity, as admission middleware sees them.
    pub(crate) fn state(&self) -> QueueState {
        QueueState {
            len: self.tasks.len(),
            capacity: self.capacity,
        }
    }

    pub(crate) fn push_back(&mut self, task: Task<J>) {
        self.tasks.push_back(task);
    }

    /// Puts a job that already holds its start (granted capacity, which nobody else can use
    /// while it waits) ahead of every job not granted, behind those granted before it.
    pub(crate) fn push_granted(&mut self, task: Task<J>) {
        self.tasks.insert(self.granted, task);
        self.granted += 1;
    }

    pub(crate) fn pop_front(&mut self) -> Option<Task<J>> {
        let task = self.tasks.pop_front()?;
        self.granted = self.granted.saturating_sub(1);
        Some(task)
    }

    /// Takes the oldest job out to make room (backpressure's evict-oldest).
    pub(crate) fn evict_oldest(&mut self) -> Option<Task<J>> {
        self.pop_front()
    }

    /// Empties the queue, in queue order.
    pub(crate) fn take_all(&mut self) -> Vec<Task<J>> {
        self.granted = 0;
        self.tasks.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use brigade_core::backend::Done;
    use brigade_core::{BoxAsyncJob, JobId};

    use super::*;

    fn task(id: u64) -> Task<BoxAsyncJob<(), String>> {
        let job = BoxAsyncJob::new(|_: brigade_core::JobContext| async { Ok(()) });
        Task::new(job, Done::Detached(JobId::new(id)))
    }

    fn ids(queue: &mut ReadyQueue<BoxAsyncJob<(), String>>) -> Vec<u64> {
        std::iter::from_fn(|| queue.pop_front().map(|task| task.id().get())).collect()
    }

    #[test]
    fn granted_jobs_start_first_in_the_order_granted() {
        let mut queue = ReadyQueue::new(8);
        queue.push_back(task(1));
        queue.push_back(task(2));
        // One run's end grants three parked jobs, front of the wait list first.
        queue.push_granted(task(10));
        queue.push_granted(task(11));
        queue.push_granted(task(12));
        assert_eq!(ids(&mut queue), [10, 11, 12, 1, 2]);
    }

    #[test]
    fn a_grant_after_some_granted_jobs_started_goes_behind_those_left() {
        let mut queue = ReadyQueue::new(8);
        queue.push_back(task(1));
        queue.push_granted(task(10));
        queue.push_granted(task(11));
        assert_eq!(queue.pop_front().map(|task| task.id().get()), Some(10));
        queue.push_granted(task(12));
        assert_eq!(ids(&mut queue), [11, 12, 1]);
    }
}
