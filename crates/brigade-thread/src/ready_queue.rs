//! The bounded ready queue: accepted jobs waiting for a worker, and nothing else, so its
//! length is the number of queued jobs (the pool's own messages travel in `signals`).

use std::time::Instant;

use brigade_core::Job;
use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TryRecvError, TrySendError};

use crate::task::Task;

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
}

impl<J: Job> ReadyQueue<J> {
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        ReadyQueue { tx, rx, capacity }
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

    /// Queues `task`, waiting for room as `wait` says; gives it back if there was none.
    pub(crate) fn push(&self, task: Task<J>, wait: Wait) -> Result<(), Task<J>> {
        // The pool holds the receiver, so the queue never disconnects while it lives.
        match wait {
            Wait::Block => self.tx.send(task).map_err(|error| error.into_inner()),
            Wait::Never => self.tx.try_send(task).map_err(|error| match error {
                TrySendError::Full(task) | TrySendError::Disconnected(task) => task,
            }),
            Wait::Until(deadline) => self
                .tx
                .send_timeout(task, deadline.saturating_duration_since(Instant::now()))
                .map_err(|error| match error {
                    SendTimeoutError::Timeout(task) | SendTimeoutError::Disconnected(task) => task,
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
