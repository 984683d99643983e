//! What travels through the queue: a job with where its result goes.

use brigade_core::{Attempts, CancellationToken, Completer, Job, JobError, JobId, JobResult};

/// Where a job's result goes: its handle, or nowhere (`execute`). The detached variant
/// carries only the id, so `execute` on a typed pool allocates nothing per job.
pub(crate) enum Done<T, E> {
    Handle(Completer<T, E>),
    Detached(JobId),
}

impl<T: Send + 'static, E: Send + 'static> Done<T, E> {
    pub(crate) fn id(&self) -> JobId {
        match self {
            Done::Handle(completer) => completer.id(),
            Done::Detached(id) => *id,
        }
    }

    /// Whether the job was cancelled (its handle, or the pool for detached jobs).
    pub(crate) fn is_cancelled(&self, pool_token: &CancellationToken) -> bool {
        match self {
            Done::Handle(completer) => completer.is_cancelled(),
            Done::Detached(_) => pool_token.is_cancelled(),
        }
    }

    /// The job's token: its handle's, or the pool's for detached jobs.
    pub(crate) fn token(&self, pool_token: &CancellationToken) -> CancellationToken {
        match self {
            Done::Handle(completer) => completer.token(),
            Done::Detached(_) => pool_token.clone(),
        }
    }

    /// Delivers the result (if anyone is listening).
    pub(crate) fn deliver(self, result: JobResult<T, E>) {
        match self {
            Done::Handle(completer) => completer.complete(result),
            Done::Detached(_) => drop(result),
        }
    }
}

/// A job accepted by the pool, with its run history.
pub(crate) struct Task<J: Job> {
    pub(crate) job: J,
    pub(crate) done: Done<J::Output, J::Error>,
    pub(crate) attempts: Attempts,
}

impl<J: Job> Task<J> {
    pub(crate) fn new(job: J, done: Done<J::Output, J::Error>) -> Self {
        Task {
            job,
            done,
            attempts: Attempts::default(),
        }
    }
}

/// What a worker takes next: a job from the queues, or a signal.
pub(crate) enum Message<J: Job> {
    Run(Task<J>),
    /// Nudges an idle worker to look at the roster (after a resize shrank it).
    Wake,
    /// Ends the worker that takes it (sent only at shutdown, after the queue is drained).
    Stop,
}

/// The pool's own messages to its workers. They travel on a channel of their own, never
/// through the bounded ready queue: there they would take slots meant for jobs, count in
/// `Stats::queued` (and so lower `busy`), and make admission see a fuller queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    Wake,
    Stop,
}

/// A terminal state's kind for the counters (`None` = completed).
pub(crate) fn kind_of<T, E>(result: &JobResult<T, E>) -> Option<brigade_core::ErrorKind> {
    result.as_ref().err().map(JobError::kind)
}
