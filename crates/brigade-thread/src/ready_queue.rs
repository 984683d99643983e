//! The bounded ready queue: accepted jobs waiting for a worker, and nothing else, so its
//! length is the number of queued jobs (the pool's own messages travel in `signals`).
//!
//! With the `metrics` feature it also counts, for the pool's series, the submits that
//! reach it and the jobs it holds (`brigade_jobs_queued`, moved as jobs come and go).

use std::time::Instant;

use brigade_core::Job;
use brigade_core::backend::JobDriver;
use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TryRecvError, TrySendError};

use crate::task::Task;

/// Why a task did not enter the queue; it comes back inside.
pub(crate) enum PushError<J: Job> {
    /// No room, at once (`Wait::Never`) or by the deadline (`Wait::Until`).
    NoRoom(Task<J>),
    /// The receiving end is gone: the pool no longer takes jobs. (The pool holds the
    /// receiver for as long as it lives, so a submit should never see this.)
    Disconnected(Task<J>),
}

/// How long a submit may wait for room.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    Block,
    Never,
    Until(Instant),
}

/// See the module docs.
pub(crate) struct ReadyQueue<J: Job> {
    tx: Sender<Task<J>>,
    rx: Receiver<Task<J>>,
    capacity: usize,
    #[cfg(feature = "metrics")]
    metrics: brigade_core::backend::PoolMetrics,
}

impl<J: Job> ReadyQueue<J> {
    /// A queue of `capacity` jobs; `driver` lends it the pool's metrics, when compiled in.
    pub(crate) fn new(capacity: usize, driver: &JobDriver<J, J::Output, J::Error>) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        #[cfg(not(feature = "metrics"))]
        let _ = driver;
        ReadyQueue {
            tx,
            rx,
            capacity,
            #[cfg(feature = "metrics")]
            metrics: driver.metrics().clone(),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.rx.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.tx.is_full()
    }

    /// Queues `task`, waiting for room as `wait` says; gives it back, saying why, if it
    /// could not.
    pub(crate) fn push(&self, task: Task<J>, wait: Wait) -> Result<(), PushError<J>> {
        let pushed = self.send(task, wait);
        // Counted once in: a job refused here was never accepted.
        #[cfg(feature = "metrics")]
        if pushed.is_ok() {
            self.metrics.submitted();
        }
        pushed
    }

    fn send(&self, task: Task<J>, wait: Wait) -> Result<(), PushError<J>> {
        match wait {
            Wait::Block => self
                .tx
                .send(task)
                .map_err(|error| PushError::Disconnected(error.into_inner())),
            Wait::Never => self.tx.try_send(task).map_err(|error| match error {
                TrySendError::Full(task) => PushError::NoRoom(task),
                TrySendError::Disconnected(task) => PushError::Disconnected(task),
            }),
            Wait::Until(deadline) => self
                .tx
                .send_timeout(task, deadline.saturating_duration_since(Instant::now()))
                .map_err(|error| match error {
                    SendTimeoutError::Timeout(task) => PushError::NoRoom(task),
                    SendTimeoutError::Disconnected(task) => PushError::Disconnected(task),
                }),
        }
    }

    /// The oldest queued task, if any, without waiting.
    pub(crate) fn try_pop(&self) -> Result<Task<J>, TryRecvError> {
        self.rx.try_recv()
    }

    /// The receiving end, for a worker to block on with its other channels.
    pub(crate) fn receiver(&self) -> &Receiver<Task<J>> {
        &self.rx
    }
}
