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
use crate::{Claim, DurableId, JobRecord, JobState, MAX_SCHEDULE_AHEAD};

/// What the store must record for a run.
#[derive(Clone, Debug, PartialEq)]
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
    /// Not run, and the worker can no longer vouch for the lease (not renewed in time, or
    /// revoked): back to the queue, uncharged, if the lease still holds; the store refuses
    /// it if not, and the lease is lost.
    ReleaseIfHeld,
    /// The lease is lost: another claim owns the job now, so nothing is recorded.
    Abandon,
}

impl RunEnd {
    /// The end of a run that stopped before its handler ran.
    ///
    /// A run stopped for its lease goes back all the same. The lease is only in doubt:
    /// its renewal may have failed or come late (a slow claim's answer, a long wait at the
    /// limits), and left to expire it would be charged a run that never happened, so a
    /// job on its last attempt would die without a run. A lease that is really gone
    /// (revoked, or claimed again) makes the store refuse the release, which changes
    /// nothing.
    pub(crate) fn unstarted(fence: &Fence) -> Self {
        match fence.reason() {
            StopReason::LeaseLost => RunEnd::ReleaseIfHeld,
            StopReason::Shutdown | StopReason::None => RunEnd::Release,
        }
    }

    /// Whether `job`, as the store now has it, shows this end recorded for the claim
    /// that ran its `attempt`. For an end whose first sending failed without an answer
    /// (it may have been recorded all the same) and whose second was refused: refused
    /// because the first took, or because the lease had passed to another claim.
    ///
    /// Each end leaves a mark no other claim's leaves. Every store charges an attempt at a
    /// claim, gives one back at a release, keeps it at a rescue (writing the rescue's own
    /// error) and keeps the last error through claims and completions. If this end did
    /// not take, the refusal means a rescue (the job at `attempt` with the rescue's error,
    /// every later claim past `attempt`, any later failure's error at an attempt past it)
    /// or a cancel (the job's life is over). So:
    ///
    /// - a completion or a burial keeps the attempt it ran at (a later claim would have
    ///   counted one more), a burial its error too;
    /// - a retry keeps its attempt and error, and a claim that takes the job again (and
    ///   the completion of that run) counts one attempt more and keeps the error: the job
    ///   at `attempt + 1`, claimed or completed, with this run's error, can only follow a
    ///   retry that took. Further on (that run failed or was rescued too) the retry no
    ///   longer shows;
    /// - a release takes its attempt back, and a claim that takes the job again counts it
    ///   once more: a job at `attempt`, claimed or completed, can only follow a release
    ///   that took (after a rescue, claims count from `attempt + 1`). Further on (that run
    ///   failed, or was released or rescued in turn) the release no longer shows.
    ///
    /// An end that took and no longer shows is counted stale. An operator's replay resets
    /// a dead job's attempts, and an end judged across one may be miscounted either way.
    pub(crate) fn shows_in(&self, job: &JobRecord, attempt: u32) -> bool {
        let error_is = |error: &str| job.last_error.as_deref() == Some(error);
        let claimed_since = matches!(job.state, JobState::Running | JobState::Completed);
        match self {
            RunEnd::Succeeded => job.state == JobState::Completed && job.attempt == attempt,
            RunEnd::Retry { error, .. } => {
                error_is(error)
                    && match job.state {
                        JobState::Available => job.attempt == attempt,
                        _ => claimed_since && Some(job.attempt) == attempt.checked_add(1),
                    }
            }
            RunEnd::Bury { error } => {
                job.state == JobState::Dead && job.attempt == attempt && error_is(error)
            }
            RunEnd::Release | RunEnd::ReleaseIfHeld => match job.state {
                JobState::Available => job.attempt.saturating_add(1) == attempt,
                _ => claimed_since && job.attempt == attempt,
            },
            RunEnd::Abandon => false,
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
        ErrorKind::Cancelled => {
            return match fence.reason() {
                StopReason::LeaseLost => RunEnd::Abandon,
                StopReason::Shutdown | StopReason::None => RunEnd::Release,
            };
        }
        // A local layer dropped the job, or the pool gave it back unrun (a hook panicked
        // before its start): the job did not run, and would not if it came straight back.
        ErrorKind::Dropped | ErrorKind::Returned => {
            return refused_end(&displayed(|| error.to_string()), retry, meta);
        }
        ErrorKind::Panicked => RunOutcome::Panicked(error.panic_message().unwrap_or("panic")),
        ErrorKind::TimedOut => RunOutcome::TimedOut(error.error()),
        _ => match error.error() {
            Some(inner) => RunOutcome::Failed(inner),
            None => RunOutcome::Panicked(error.panic_message().unwrap_or("failed")),
        },
    };
    let message = displayed(|| match error.error() {
        Some(inner) if error.kind() == ErrorKind::Failed => inner.to_string(),
        _ => error.to_string(),
    });
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

/// The text of a handler's error, from its `Display`. That is the user's code, run in the
/// worker's own task: a panic in it would leave the run without an end and its job to
/// wait out the lease, so the job's error is the panic's message instead.
fn displayed(display: impl FnOnce() -> String) -> String {
    catch_unwind(AssertUnwindSafe(display)).unwrap_or_else(|panic| {
        format!(
            "the job failed, and displaying its error panicked: {}",
            panic_message(panic.as_ref())
        )
    })
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn job(state: JobState, attempt: u32, last_error: Option<&str>) -> JobRecord {
        JobRecord {
            id: DurableId::new(1),
            queue: "q".into(),
            state,
            payload: Value::Null,
            attempt,
            max_attempts: 5,
            priority: 0,
            unique_key: None,
            run_at: SystemTime::now(),
            enqueued_at: SystemTime::now(),
            finished_at: None,
            last_error: last_error.map(str::to_owned),
        }
    }

    #[test]
    fn an_end_shows_only_where_its_own_claim_recorded_it() {
        let retry = RunEnd::Retry {
            delay: Duration::from_secs(1),
            error: "boom".into(),
        };
        let bury = RunEnd::Bury {
            error: "boom".into(),
        };
        let rescued = "lease expired: w stopped renewing it";
        for (end, job, shows) in [
            (RunEnd::Succeeded, job(JobState::Completed, 2, None), true),
            // Completed by a later claim (one more attempt).
            (RunEnd::Succeeded, job(JobState::Completed, 3, None), false),
            (RunEnd::Succeeded, job(JobState::Running, 2, None), false),
            (
                retry.clone(),
                job(JobState::Available, 2, Some("boom")),
                true,
            ),
            // Rescued after the lease expired: the rescue's error, not the run's.
            (
                retry.clone(),
                job(JobState::Available, 2, Some(rescued)),
                false,
            ),
            // Retried, then claimed again (and completed): one attempt more, the error
            // kept.
            (retry.clone(), job(JobState::Running, 3, Some("boom")), true),
            (
                retry.clone(),
                job(JobState::Completed, 3, Some("boom")),
                true,
            ),
            // Rescued, then claimed again: the rescue's error.
            (
                retry.clone(),
                job(JobState::Running, 3, Some(rescued)),
                false,
            ),
            // Failed again since, or rescued and failed since with the same error: no
            // telling which.
            (
                retry.clone(),
                job(JobState::Available, 3, Some("boom")),
                false,
            ),
            (retry.clone(), job(JobState::Dead, 3, Some("boom")), false),
            (
                retry.clone(),
                job(JobState::Running, 4, Some("boom")),
                false,
            ),
            // Cancelled while it ran: the error may be the run before's.
            (
                retry.clone(),
                job(JobState::Cancelled, 2, Some("boom")),
                false,
            ),
            (retry, job(JobState::Running, 2, Some("boom")), false),
            (bury.clone(), job(JobState::Dead, 2, Some("boom")), true),
            (bury, job(JobState::Dead, 2, Some(rescued)), false),
            (RunEnd::Release, job(JobState::Available, 1, None), true),
            // Rescued: the expired run stays charged.
            (RunEnd::Release, job(JobState::Available, 2, None), false),
            (
                RunEnd::ReleaseIfHeld,
                job(JobState::Available, 1, None),
                true,
            ),
            // Released, then claimed again (and completed): the attempt given back is
            // charged once more.
            (RunEnd::Release, job(JobState::Running, 2, None), true),
            (RunEnd::Release, job(JobState::Completed, 2, None), true),
            // Rescued, then claimed again: one attempt past.
            (
                RunEnd::Release,
                job(JobState::Running, 3, Some(rescued)),
                false,
            ),
            (RunEnd::Release, job(JobState::Dead, 2, Some("boom")), false),
            (RunEnd::Release, job(JobState::Cancelled, 2, None), false),
            (RunEnd::ReleaseIfHeld, job(JobState::Running, 2, None), true),
            (RunEnd::Abandon, job(JobState::Available, 1, None), false),
        ] {
            assert_eq!(end.shows_in(&job, 2), shows, "{end:?} in {job:?}");
        }
    }

    #[test]
    fn a_run_stopped_for_its_lease_before_it_started_goes_back_if_it_can() {
        let fence = Fence::new();
        assert_eq!(RunEnd::unstarted(&fence), RunEnd::Release);
        fence.stop(StopReason::LeaseLost);
        assert_eq!(RunEnd::unstarted(&fence), RunEnd::ReleaseIfHeld);
        let shutdown = Fence::new();
        shutdown.stop(StopReason::Shutdown);
        assert_eq!(RunEnd::unstarted(&shutdown), RunEnd::Release);
    }

    #[test]
    fn an_error_that_panics_when_displayed_is_the_panic() {
        let message = displayed(|| panic!("no words"));
        assert!(message.contains("no words"), "{message}");
        assert_eq!(displayed(|| "fine".to_owned()), "fine");
    }
}
