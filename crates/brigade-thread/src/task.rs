//! What travels through the queues: a job with where its result goes (core's `Task`), and
//! what a worker takes next.

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
