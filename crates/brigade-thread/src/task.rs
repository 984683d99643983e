//! What travels through the queues: a job with where its result goes (core's `Task`), and
//! the pool's own messages to its workers.

use brigade_core::Job;

/// A job accepted by the pool, with its run history.
pub(crate) type Task<J> = brigade_core::backend::Task<J, <J as Job>::Output, <J as Job>::Error>;

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
