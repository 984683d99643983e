//! The bounded ready queue: accepted jobs waiting for a worker, and nothing else, so its
//! length is the number of queued jobs (the pool's own messages travel in `signals`).
//!
//! A submit that waits for room also waits for the pool to close: a shutdown turns it back
//! with its job (as the tokio pool's does), rather than waiting for it, since the room it
//! waits for may never come (its own job's worker is the one that would make it).
//!
//! With the `metrics` feature it also counts, for the pool's series, the submits that
//! reach it and the jobs it holds (`brigade_jobs_queued`, moved as jobs come and go).

use std::sync::Mutex;
use std::time::Instant;

use brigade_core::Job;
use brigade_core::backend::JobDriver;
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError, select};
use crossbeam_utils::Backoff;

use crate::sync::lock_std as lock;
use crate::task::Task;

/// Why a task did not enter the queue; it comes back inside.
pub(crate) enum PushError<J: Job> {
    /// No room, at once (`Wait::Never`) or by the deadline (`Wait::Until`).
    NoRoom(Task<J>),
    /// The receiving end is gone: the pool no longer takes jobs. (The pool holds the
    /// receiver for as long as it lives, so a submit should never see this.)
    Disconnected(Task<J>),
    /// The pool closed while the submit waited for room.
    Closed(Task<J>),
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
    /// Never sends: [`close`](Self::close) drops it, which every waiting submit hears.
    closing: Mutex<Option<Sender<()>>>,
    closed: Receiver<()>,
    #[cfg(feature = "metrics")]
    metrics: brigade_core::backend::PoolMetrics,
}

impl<J: Job> ReadyQueue<J> {
    /// A queue of `capacity` jobs; `driver` lends it the pool's metrics, when compiled in.
    pub(crate) fn new(capacity: usize, driver: &JobDriver<J, J::Output, J::Error>) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        // One slot, though nothing is ever sent: waiting on a zero-capacity channel
        // allocates per wait.
        let (closing, closed) = crossbeam_channel::bounded(1);
        #[cfg(not(feature = "metrics"))]
        let _ = driver;
        ReadyQueue {
            tx,
            rx,
            capacity,
            closing: Mutex::new(Some(closing)),
            closed,
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

    #[inline]
    fn send(&self, task: Task<J>, wait: Wait) -> Result<(), PushError<J>> {
        // Room at once is the common case of a pool that keeps up, and this is all it
        // costs: the spin and the waits stay out of line, with their stack frame. A
        // producer that finds the queue full waits anyway; one call more is nothing beside
        // its wait.
        match self.tx.try_send(task) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(task)) => self.send_when_full(task, wait),
            Err(TrySendError::Disconnected(task)) => Err(PushError::Disconnected(task)),
        }
    }

    #[cold]
    #[inline(never)]
    fn send_when_full(&self, task: Task<J>, wait: Wait) -> Result<(), PushError<J>> {
        // Tried again first, with the brief spin a plain send makes before it blocks: a
        // producer that keeps a queue full hands most jobs over here. Only then does it
        // wait, for room or the close, whichever comes first.
        let backoff = Backoff::new();
        let mut task = task;
        loop {
            if matches!(wait, Wait::Never) || backoff.is_completed() {
                break;
            }
            backoff.snooze();
            match self.tx.try_send(task) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(back)) => task = back,
                Err(TrySendError::Disconnected(task)) => {
                    return Err(PushError::Disconnected(task));
                }
            }
        }
        let (tx, closed) = (&self.tx, &self.closed);
        // `select!` hands the task to the send only if the send is the operation chosen.
        match wait {
            Wait::Never => Err(PushError::NoRoom(task)),
            Wait::Block => select! {
                send(tx, task) -> sent => {
                    sent.map_err(|error| PushError::Disconnected(error.into_inner()))
                }
                recv(closed) -> _ => Err(PushError::Closed(task)),
            },
            Wait::Until(deadline) => select! {
                send(tx, task) -> sent => {
                    sent.map_err(|error| PushError::Disconnected(error.into_inner()))
                }
                recv(closed) -> _ => Err(PushError::Closed(task)),
                default(deadline.saturating_duration_since(Instant::now())) => {
                    Err(PushError::NoRoom(task))
                }
            },
        }
    }

    /// Turns back every submit waiting for room, now and from now on, with
    /// [`PushError::Closed`]; a queue with room still takes a job (the submit gate is what
    /// refuses new submits).
    pub(crate) fn close(&self) {
        drop(lock(&self.closing).take());
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
