//! How a claimed job runs on the local pool: decode, hand to the pool, wait for its end,
//! and turn that end into what the store must record.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use brigade_core::backend::panic_message;
use brigade_core::hooks::{AfterRun, RunOutcome};
use brigade_core::{ErrorKind, JobError, JobHandle, JobId};
use brigade_middleware::Retry;
use serde_json::Value;

use super::fence::{Fence, StopReason};
use crate::{Claim, DurableId, MAX_SCHEDULE_AHEAD};

/// What the store must record for a run.
#[derive(Debug, PartialEq)]
pub(crate) enum RunEnd {
    Succeeded,
    Retry {
        /// At most [`MAX_SCHEDULE_AHEAD`], the horizon every store's clock arithmetic
        /// holds: a backoff of "never" runs the job again then.
        delay: Duration,
        error: String,
    },
    Bury {
        error: String,
    },
    /// Not run, or stopped by the shutdown: back to the queue, uncharged.
    Release,
    /// The lease is lost: another claim owns the job now, so nothing is recorded.
    Abandon,
}

impl RunEnd {
    /// The end of a run that stopped before it reached the pool.
    pub(crate) fn stopped(fence: &Fence) -> Self {
        match fence.reason() {
            StopReason::LeaseLost => RunEnd::Abandon,
            StopReason::Shutdown | StopReason::None => RunEnd::Release,
        }
    }
}

/// The parts of a claim a run needs after the payload is decoded.
#[derive(Clone, Debug)]
pub(crate) struct RunMeta {
    pub(crate) id: DurableId,
    pub(crate) queue: Arc<str>,
    pub(crate) attempt: u32,
    pub(crate) max_attempts: u32,
    pub(crate) enqueued_at: SystemTime,
}

impl RunMeta {
    pub(crate) fn of(claim: &Claim, queue: &Arc<str>) -> Self {
        Self {
            id: claim.id,
            queue: Arc::clone(queue),
            attempt: claim.attempt,
            max_attempts: claim.max_attempts,
            enqueued_at: claim.enqueued_at,
        }
    }

    /// The id the retry policy seeds its jitter with: the store's ids are positive, so
    /// the conversion keeps them apart.
    fn jitter_id(&self) -> JobId {
        JobId::new(self.id.get().unsigned_abs())
    }
}

/// A decoded job, ready to start once the global limits let it.
#[async_trait]
pub(crate) trait Prepared: Send {
    /// The units of the global concurrency limit it holds while it runs.
    fn weight(&self) -> u32;
    /// Runs it on the local pool and says what the store must record.
    async fn start(self: Box<Self>, fence: Arc<Fence>) -> RunEnd;
}

/// A handler on its local pool, with the job type and error type erased, so the claim loop
/// is written once for every handler and both pools.
#[async_trait]
pub(crate) trait Dispatch: Send + Sync + 'static {
    /// Decodes the payload; the error text when it does not decode (the job is then dead:
    /// no run can succeed).
    fn prepare(&self, payload: Value, meta: RunMeta) -> Result<Box<dyn Prepared>, String>;
    /// Stops the local pool, as [`LocalPool::shut_down`](super::local_pool::LocalPool::shut_down).
    async fn shutdown(&self, timeout: Duration);
}

/// Waits for the run, passing a stop on the fence to the run's token.
pub(crate) async fn await_run<E>(
    mut handle: JobHandle<(), E>,
    fence: &Fence,
) -> Result<(), JobError<E>> {
    tokio::select! {
        biased;
        result = &mut handle => result,
        () = fence.token().cancelled() => {
            handle.cancel();
            handle.await
        }
    }
}

/// What the store must record for a run its local pool refused (a local layer's decision)
/// or did not run: a failed attempt, run again after the retry policy's backoff, so a
/// pool that refuses every job buries it at its last attempt instead of taking it back
/// and forth with the store for good. The policy's `retry_if` and budget are not asked:
/// they judge a handler's error or panic, and a refusal is neither.
pub(crate) fn refused_end<E: 'static>(reason: &str, retry: &Retry<E>, meta: &RunMeta) -> RunEnd {
    let error = format!("the local pool did not run the job: {reason}");
    if meta.attempt >= meta.max_attempts.min(retry.max_attempts()) {
        return RunEnd::Bury { error };
    }
    RunEnd::Retry {
        delay: retry
            .delay(meta.jitter_id(), meta.attempt)
            .min(MAX_SCHEDULE_AHEAD),
        error,
    }
}

/// What the store must record for a run that ended with `result`.
///
/// The job's own `max_attempts` is a hard bound; below it the worker's [`Retry`] policy
/// decides (its `retry_if`, its own attempt bound, its budget) and sets the run-again time
/// with its backoff and jitter.
pub(crate) fn run_end<E: fmt::Display + 'static>(
    result: Result<(), JobError<E>>,
    fence: &Fence,
    retry: &Retry<E>,
    meta: &RunMeta,
) -> RunEnd {
    let error = match result {
        Ok(()) => return RunEnd::Succeeded,
        Err(error) => error,
    };
    // A run the worker stopped ends as the stop decides, whatever the handler returned
    // once its token fired.
    match fence.reason() {
        StopReason::Shutdown => return RunEnd::Release,
        StopReason::LeaseLost => return RunEnd::Abandon,
        StopReason::None => {}
    }
    let outcome = match error.kind() {
        // Nothing but the local pool's shutdown cancels a run the fence did not stop.
        ErrorKind::Cancelled => return RunEnd::stopped(fence),
        // A local layer dropped the job, or the pool gave it back unrun (a hook panicked
        // before its start): the job did not run, and would not if it came straight back.
        ErrorKind::Dropped | ErrorKind::Returned => {
            return refused_end(&error.to_string(), retry, meta);
        }
        ErrorKind::Panicked => RunOutcome::Panicked(error.panic_message().unwrap_or("panic")),
        ErrorKind::TimedOut => RunOutcome::TimedOut(error.error()),
        _ => match error.error() {
            Some(inner) => RunOutcome::Failed(inner),
            None => RunOutcome::Panicked(error.panic_message().unwrap_or("failed")),
        },
    };
    let message = match error.error() {
        Some(inner) if error.kind() == ErrorKind::Failed => inner.to_string(),
        _ => error.to_string(),
    };
    if meta.attempt >= meta.max_attempts {
        return RunEnd::Bury { error: message };
    }
    let now = Instant::now();
    // The policy's `retry_if` is the user's code: a panic in it leaves no decision, and
    // would take the same path on every run, so the job is dead with both messages.
    let decided = catch_unwind(AssertUnwindSafe(|| {
        retry.decide(meta.jitter_id(), &outcome, meta.attempt, now)
    }));
    match decided {
        Ok(AfterRun::RetryAt(at)) => RunEnd::Retry {
            delay: at.saturating_duration_since(now).min(MAX_SCHEDULE_AHEAD),
            error: message,
        },
        Ok(_) => RunEnd::Bury { error: message },
        Err(panic) => RunEnd::Bury {
            error: format!(
                "{message} (the retry policy panicked judging it: {})",
                panic_message(panic.as_ref())
            ),
        },
    }
}
