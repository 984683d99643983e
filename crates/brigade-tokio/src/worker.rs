//! A worker task: takes jobs from the queue and runs them, one at a time.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use brigade_core::middleware::Start;
use brigade_core::{
    AsyncJob, ErrorKind, FinishedRun, JobContext, JobError, JobResult, RunEnd, Settled,
    panic_message, settle,
};
use futures_util::FutureExt;
use tracing::Instrument;

use crate::shared::{Queued, Shared, now};

/// The body of one worker task. A pool's concurrency is its number of workers: each runs at
/// most one job at a time, so `max_workers` bounds how many jobs run at once.
pub(crate) async fn work<J: AsyncJob>(shared: Arc<Shared<J>>) {
    while let Some(queued) = next_job(&shared).await {
        // A job's own panic is its outcome (see `run_guarded`); this catches a panicking
        // middleware hook, so the worker, the count of busy workers and the books survive it.
        let mut settled = false;
        let run = AssertUnwindSafe(run_one(&shared, queued, &mut settled));
        if run.catch_unwind().await.is_err() {
            tracing::error!(pool = %shared.name, "a middleware hook panicked");
            if !settled {
                // The job was dropped while unwinding, which resolved its handle `Returned`.
                shared.counters.record_ended(ErrorKind::Returned);
                finish(&shared, false);
            }
        }
    }
}

/// Waits for the next job; `None` when this worker should exit (the pool is closed and
/// drained, the range shrank, or it stayed idle past its keep-alive above the minimum).
async fn next_job<J: AsyncJob>(shared: &Arc<Shared<J>>) -> Option<Queued<J>> {
    loop {
        let mut notified = pin!(shared.job_ready.notified());
        let keep_alive = {
            let mut state = shared.lock();
            if state.workers > state.max {
                state.workers -= 1;
                drop(state);
                // The timer exits once the last worker has; let it look.
                shared.timer_wake.notify_one();
                return None;
            }
            if let Some(queued) = state.queue.pop_front() {
                state.busy += 1;
                drop(state);
                shared.room.notify_one();
                return Some(queued);
            }
            if state.is_drained() {
                state.workers -= 1;
                drop(state);
                // Let the other idle workers and the timer see the pool is done.
                shared.job_ready.notify_waiters();
                shared.timer_wake.notify_one();
                return None;
            }
            notified.as_mut().enable();
            (state.workers > state.min).then_some(state.keep_alive)
        };
        let Some(keep_alive) = keep_alive else {
            notified.await;
            continue;
        };
        if tokio::time::timeout(keep_alive, notified).await.is_err() {
            let mut state = shared.lock();
            if state.queue.is_empty() && state.workers > state.min {
                state.workers -= 1;
                drop(state);
                shared.timer_wake.notify_one();
                return None;
            }
        }
    }
}

/// Runs one job taken from the queue, through the layers, to its next step: a terminal
/// state, the delay queue or the waiting list.
///
/// `settled` turns true once the job has left this worker's hands (ended, delayed or put on
/// the waiting list) and its slot is freed; no hook runs after that.
async fn run_one<J: AsyncJob>(shared: &Arc<Shared<J>>, queued: Queued<J>, settled: &mut bool) {
    let Queued {
        mut job,
        completer,
        attempts,
    } = queued;
    if completer.is_cancelled() {
        shared.counters.record_ended(ErrorKind::Cancelled);
        completer.complete(Err(JobError::cancelled(None, attempts.ran())));
        *settled = true;
        finish(shared, false);
        return;
    }
    let layered = !shared.layers.is_empty();
    if layered {
        // A hook that panics before the run must not take the job with it: it never ran
        // to an end, so it is handed back (counted returned, and in the shutdown report).
        let Ok(start) = catch_unwind(AssertUnwindSafe(|| shared.layers.before_start(&job, now())))
        else {
            hand_back_after_panic(shared, job, completer, attempts, settled);
            return;
        };
        match start {
            Start::Now => {}
            Start::NotBefore(at) => {
                let mut state = shared.lock();
                state.busy -= 1;
                *settled = true;
                shared.delay(
                    &mut state,
                    at,
                    Queued {
                        job,
                        completer,
                        attempts,
                    },
                );
                return;
            }
            Start::WhenCapacityFrees => {
                let mut state = shared.lock();
                state.busy -= 1;
                *settled = true;
                shared.wait_for_capacity(
                    &mut state,
                    Queued {
                        job,
                        completer,
                        attempts,
                    },
                );
                return;
            }
        }
    }

    let started = now();
    let deadline = if layered {
        match catch_unwind(AssertUnwindSafe(|| shared.layers.deadline(&job, started))) {
            Ok(deadline) => deadline,
            Err(_) => {
                // Give back what the granted start took (a weighted limit's units).
                let _ = catch_unwind(AssertUnwindSafe(|| shared.layers.release(&job)));
                hand_back_after_panic(shared, job, completer, attempts, settled);
                return;
            }
        }
    } else {
        None
    };
    let id = completer.id();
    let attempt = attempts.next();
    // With a deadline the run gets a token of its own, a child of the job's: the deadline
    // cancels this run only, and a retry starts with a fresh one.
    let job_token = completer.token();
    let run_token = match deadline {
        Some(_) => job_token.child_token(),
        None => job_token,
    };
    let cx = JobContext::new(id, Arc::clone(&shared.name), run_token)
        .with_attempt(attempt)
        .with_deadline(deadline);
    let span = tracing::info_span!("job", pool = %shared.name, id = id.get(), attempt);
    let (end, past_deadline) = run_guarded(&mut job, &cx, deadline).instrument(span).await;
    if layered && catch_unwind(AssertUnwindSafe(|| shared.layers.release(&job))).is_err() {
        tracing::error!(pool = %shared.name, job = id.get(), "a middleware hook panicked in release");
    }
    let run = FinishedRun {
        id,
        end,
        attempts,
        started,
        cancelled: completer.is_cancelled(),
        past_deadline,
    };
    match settle(&shared.layers, job, run, now()) {
        Settled::Finished(result) => {
            record(shared, &result);
            completer.complete(result);
            *settled = true;
            finish(shared, layered);
        }
        Settled::Retry { job, attempts, at } => {
            shared.counters.record_retried();
            tracing::debug!(pool = %shared.name, job = id.get(), attempt, "run failed, retry scheduled");
            let mut state = shared.lock();
            state.busy -= 1;
            *settled = true;
            shared.delay(
                &mut state,
                at,
                Queued {
                    job,
                    completer,
                    attempts,
                },
            );
            if layered {
                shared.reoffer_waiting(&mut state);
            }
        }
    }
}

/// Ends a job whose hook panicked before its start as returned, and keeps it for the
/// shutdown report.
fn hand_back_after_panic<J: AsyncJob>(
    shared: &Arc<Shared<J>>,
    job: J,
    completer: brigade_core::Completer<J::Output, J::Error>,
    attempts: brigade_core::Attempts,
    settled: &mut bool,
) {
    tracing::error!(pool = %shared.name, job = completer.id().get(), "a middleware hook panicked before a start: the job is handed back");
    let mut state = shared.lock();
    let job = Queued {
        job,
        completer,
        attempts,
    }
    .hand_back(&shared.counters);
    state.handed_back.push(job);
    drop(state);
    *settled = true;
    finish(shared, true);
}

/// Counts a terminal result.
pub(crate) fn record<T, E>(shared: &Shared<impl AsyncJob>, result: &JobResult<T, E>) {
    match result {
        Ok(_) => shared.counters.record_completed(),
        Err(error) => shared.counters.record_ended(error.kind()),
    }
}

/// A run ended: free the worker's slot, give the waiting list another chance, and wake
/// `wait_idle` callers when the pool has nothing left.
fn finish<J: AsyncJob>(shared: &Arc<Shared<J>>, layered: bool) {
    let mut state = shared.lock();
    state.busy -= 1;
    if layered {
        shared.reoffer_waiting(&mut state);
    }
    shared.check_idle(&mut state);
}

/// Runs the job once, catching a panic as its outcome and cancelling its token at the
/// deadline. Returns what the run returned and whether the deadline passed.
async fn run_guarded<J: AsyncJob>(
    job: &mut J,
    cx: &JobContext,
    deadline: Option<Instant>,
) -> (RunEnd<J::Output, J::Error>, bool) {
    let mut run = match catch_unwind(AssertUnwindSafe(move || {
        let job = job;
        job.run(cx)
    })) {
        Ok(run) => run,
        Err(payload) => return (RunEnd::Panicked(panic_message(&*payload)), false),
    };
    let mut timer = deadline.map(|at| Box::pin(tokio::time::sleep_until(at.into())));
    let mut past_deadline = false;
    let end = poll_fn(|task| {
        if let Some(sleep) = timer.as_mut() {
            if sleep.as_mut().poll(task).is_ready() {
                // The deadline cancels cooperatively: the job sees its token and gives up.
                past_deadline = true;
                cx.token().cancel();
                timer = None;
            }
        }
        match catch_unwind(AssertUnwindSafe(|| run.as_mut().poll(task))) {
            Ok(Poll::Ready(result)) => Poll::Ready(RunEnd::Returned(result)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(RunEnd::Panicked(panic_message(&*payload))),
        }
    })
    .await;
    (end, past_deadline)
}
