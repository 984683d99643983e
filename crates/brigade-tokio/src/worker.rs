//! A worker task: takes jobs from the queue and runs them, one at a time.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use brigade_core::AsyncJob;
use brigade_core::backend::{RunEnd, WorkerSeat, panic_message};
use tracing::Instrument;

use crate::roster::IdleWait;
use crate::shared::{Engine, JobLeft, NextJob, Shared, Task};

type Run<J> = brigade_core::backend::Run<J, <J as AsyncJob>::Output, <J as AsyncJob>::Error>;

/// The body of one worker task. A pool's concurrency is its number of workers: each runs at
/// most one job at a time, so `max_workers` bounds how many jobs run at once.
pub(crate) async fn work<J: AsyncJob>(shared: Arc<Shared<J>>) {
    #[cfg(feature = "metrics")]
    shared.publish_metrics();
    let mut seat = shared.driver.seat();
    let mut left = JobLeft::No;
    while let Some(task) = next_job(&shared, left).await {
        run_one(&shared, &seat, task).await;
        shared.driver.mend_seat(&mut seat);
        left = JobLeft::Yes;
    }
    #[cfg(feature = "metrics")]
    shared.publish_metrics();
}

/// Waits for the next job; `None` when this worker should exit (the pool is closed and
/// drained, the range shrank, or it stayed idle past its keep-alive above the minimum).
/// `left` says whether the worker's last job just left it, which the first look counts.
async fn next_job<J: AsyncJob>(shared: &Arc<Shared<J>>, left: JobLeft) -> Option<Task<J>> {
    // A first look with no wake-up registered: a worker that finds a job at once, as a
    // busy pool's do, never touches the wake-up's state, which every submit writes.
    match shared.next_job(None, left) {
        NextJob::Run(task) => return Some(task),
        NextJob::Exit => return None,
        NextJob::Wait(_) => {}
    }
    loop {
        let mut job_ready = pin!(shared.job_ready());
        let wait = match shared.next_job(Some(job_ready.as_mut()), JobLeft::No) {
            NextJob::Run(task) => return Some(task),
            NextJob::Exit => return None,
            NextJob::Wait(wait) => wait,
        };
        // It waits, after showing the books as they are (a pool whose workers all wait has
        // published everything that happened).
        #[cfg(feature = "metrics")]
        shared.publish_metrics();
        match wait {
            IdleWait::Forever => job_ready.await,
            IdleWait::KeepAlive(keep_alive) => {
                if tokio::time::timeout(keep_alive, job_ready).await.is_err()
                    && shared.keep_alive_ran_out()
                {
                    return None;
                }
            }
        }
    }
}

/// Takes one job from the queue through core's driver: its start, its run (inside its span,
/// its deadline on tokio's clock), its end.
async fn run_one<J: AsyncJob>(shared: &Arc<Shared<J>>, seat: &WorkerSeat, task: Task<J>) {
    let engine = Engine::worker(shared);
    let Some(mut run) = shared.driver.begin(&engine, seat, task) else {
        return;
    };
    let span = run.span();
    let end = run_guarded(&mut run).instrument(span).await;
    shared.driver.end(&engine, run, end);
}

/// Runs the job once, catching a panic as its outcome and cancelling its token at the
/// deadline. Returns what the run returned and whether the deadline passed.
async fn run_guarded<J: AsyncJob>(run: &mut Run<J>) -> RunEnd<J::Output, J::Error> {
    let deadline = run.deadline();
    let (job, cx) = run.job_and_context();
    let mut run = match catch_unwind(AssertUnwindSafe(move || {
        let job = job;
        job.run(cx)
    })) {
        Ok(run) => run,
        Err(payload) => return RunEnd::Panicked(panic_message(&*payload)),
    };
    let mut timer = deadline.map(|at| Box::pin(tokio::time::sleep_until(at.into())));
    poll_fn(|task| {
        if let Some(sleep) = timer.as_mut() {
            if sleep.as_mut().poll(task).is_ready() {
                // The deadline cancels cooperatively: the job sees its token and gives up.
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
    .await
}
