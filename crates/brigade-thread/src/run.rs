//! Running one job: its span and panic containment. What a run's end becomes (a terminal
//! state, a retry, a dead letter) is decided by `brigade_core`, for every backend alike.

use std::panic::{AssertUnwindSafe, catch_unwind};

use brigade_core::{Job, JobContext, RunEnd, panic_message};

/// Runs `job` once inside a span carrying the pool, the job id and the attempt, catching
/// a panic (and a panic in the drop of the panic's payload) so the worker survives.
pub(crate) fn run_job<J: Job>(job: &mut J, cx: &JobContext) -> RunEnd<J::Output, J::Error> {
    // With no subscriber this is a check of the callsite's cached interest.
    let span = tracing::info_span!(
        "job",
        pool = cx.pool_name(),
        id = cx.id().get(),
        attempt = cx.attempt()
    );
    let _entered = span.enter();
    match catch_unwind(AssertUnwindSafe(|| job.run(cx))) {
        Ok(result) => RunEnd::Returned(result),
        Err(payload) => {
            let message = panic_message(&*payload);
            drop_quietly(payload);
            RunEnd::Panicked(message)
        }
    }
}

/// Drops `value`, containing a panic in its `Drop`.
pub(crate) fn drop_quietly<T>(value: T) {
    if catch_unwind(AssertUnwindSafe(move || drop(value))).is_err() {
        tracing::error!("a job or its payload panicked while being dropped");
    }
}
