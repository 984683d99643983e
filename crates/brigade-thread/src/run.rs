//! Running one job: its span, panic containment, and how a run's end is classified.

use std::panic::{AssertUnwindSafe, catch_unwind};

use brigade_core::{Job, JobContext, JobError, panic_message};

/// How a run ended, before the pool decides what follows.
pub(crate) enum Ran<T, E> {
    Ok(T),
    Err(E),
    Panicked(String),
}

/// Runs `job` once inside a span carrying the pool, the job id and the attempt, catching
/// a panic (and a panic in the drop of the panic's payload) so the worker survives.
pub(crate) fn run_job<J: Job>(job: &mut J, cx: &JobContext) -> Ran<J::Output, J::Error> {
    // With no subscriber this is a check of the callsite's cached interest.
    let span = tracing::info_span!(
        "job",
        pool = cx.pool_name(),
        id = cx.id().get(),
        attempt = cx.attempt()
    );
    let _entered = span.enter();
    match catch_unwind(AssertUnwindSafe(|| job.run(cx))) {
        Ok(Ok(output)) => Ran::Ok(output),
        Ok(Err(error)) => Ran::Err(error),
        Err(payload) => {
            let message = panic_message(&*payload);
            drop_quietly(payload);
            Ran::Panicked(message)
        }
    }
}

/// Drops `value`, containing a panic in its `Drop`.
pub(crate) fn drop_quietly<T>(value: T) {
    if catch_unwind(AssertUnwindSafe(move || drop(value))).is_err() {
        tracing::error!("a job or its payload panicked while being dropped");
    }
}

/// The terminal result of a run with no middleware deciding otherwise: an error returned
/// while the job's token is cancelled counts as a cancellation.
pub(crate) fn plain_result<T, E>(
    ran: Ran<T, E>,
    cancelled: bool,
    attempt: u32,
) -> Result<T, JobError<E>> {
    match ran {
        Ran::Ok(output) => Ok(output),
        Ran::Err(error) if cancelled => Err(JobError::cancelled(Some(error), attempt)),
        Ran::Err(error) => Err(JobError::failed(error, attempt)),
        Ran::Panicked(message) => Err(JobError::panicked(message, attempt)),
    }
}
