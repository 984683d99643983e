//! A worker task: takes jobs from the queue and runs them, one at a time.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use brigade_core::AsyncJob;
use brigade_core::backend::{RunEnd, WorkerSeat};
use tracing::Instrument;

use crate::roster::IdleWait;
use crate::shared::{Engine, JobLeft, NextJob, Run, Shared, Task};

/// A worker's place in the pool, given up however its task ends. Tokio drops a task whose
/// runtime shuts down, before its first poll or at any await, and with it the run it
/// holds: made before the task is spawned and moved into it, this settles that run and
/// takes the worker off the roster even then (`Shared::worker_dropped`), so the books
/// balance and the pool does not count a worker, or a busy one, that is gone.
pub(crate) struct Enlisted<J: AsyncJob> {
    shared: Arc<Shared<J>>,
    /// Counted among the live workers; `next_job` takes it off the roster when it exits.
    on_roster: bool,
    /// Counted busy: the roster hears the job left at the worker's next look for work.
    busy: bool,
    /// The run in progress, kept here rather than on the task's stack so a dropped task
    /// hands it over.
    run: Option<Run<J>>,
}

impl<J: AsyncJob> Enlisted<J> {
    /// A worker the roster has just counted (`Roster::add`).
    pub(crate) fn new(shared: Arc<Shared<J>>) -> Self {
        Enlisted {
            shared,
            on_roster: true,
            busy: false,
            run: None,
        }
    }

    /// Whether the worker's last job left it, for its next look for work, which tells the
    /// roster before it can be interrupted.
    fn job_left(&mut self) -> JobLeft {
        if std::mem::take(&mut self.busy) {
            JobLeft::Yes
        } else {
            JobLeft::No
        }
    }
}

impl<J: AsyncJob> Drop for Enlisted<J> {
    fn drop(&mut self) {
        if self.on_roster {
            self.shared.worker_dropped(self.run.take(), self.busy);
        }
    }
}

thread_local! {
    /// The pool whose job this thread is polling (its shared state's address), if any.
    static POLLING_JOB_OF: Cell<usize> = const { Cell::new(0) };
}

/// Whether the caller is being polled by one of this pool's jobs (not a task it spawned):
/// such a caller is itself in flight.
pub(crate) fn in_own_job<J: AsyncJob>(shared: &Shared<J>) -> bool {
    POLLING_JOB_OF.with(|pool| pool.get() == std::ptr::from_ref(shared).addr())
}

/// The body of one worker task. A pool's concurrency is its number of workers: each runs at
/// most one job at a time, so `max_workers` bounds how many jobs run at once.
pub(crate) async fn work<J: AsyncJob>(mut worker: Enlisted<J>) {
    let shared = Arc::clone(&worker.shared);
    #[cfg(feature = "metrics")]
    shared.publish_metrics();
    let mut seat = shared.driver.seat();
    loop {
        let left = worker.job_left();
        let Some(task) = next_job(&shared, left).await else {
            break;
        };
        worker.busy = true;
        run_one(&shared, &seat, task, &mut worker.run).await;
        shared.driver.mend_seat(&mut seat);
    }
    // `next_job` took it off the roster.
    worker.on_roster = false;
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
/// its deadline on tokio's clock), its end. The run waits in `slot`, the worker's, while
/// it is awaited.
async fn run_one<J: AsyncJob>(
    shared: &Arc<Shared<J>>,
    seat: &WorkerSeat,
    task: Task<J>,
    slot: &mut Option<Run<J>>,
) {
    let engine = Engine::worker(shared);
    let Some(run) = shared.driver.begin(&engine, seat, task) else {
        return;
    };
    let run = slot.insert(run);
    let span = run.span();
    let guarded = run_guarded(run, Arc::as_ptr(shared).addr());
    let end = match span {
        Some(span) => guarded.instrument(span).await,
        None => guarded.await,
    };
    let run = slot
        .take()
        .expect("the run waits in its slot until it ends");
    shared.driver.end(&engine, run, end);
}

/// Runs the job once, catching a panic as its outcome and cancelling its token at the
/// deadline. Returns what the run returned and whether the deadline passed. While the job
/// is polled, the thread notes that it polls a job of `pool` (see [`in_own_job`]).
async fn run_guarded<J: AsyncJob>(run: &mut Run<J>, pool: usize) -> RunEnd<J::Output, J::Error> {
    let deadline = run.deadline();
    let (job, cx) = run.job_and_context();
    let run = match catch_unwind(AssertUnwindSafe(move || {
        let job = job;
        job.run(cx)
    })) {
        Ok(run) => run,
        Err(payload) => return RunEnd::panicked(payload),
    };
    // Pinned in place: the run's future is the job's own type, kept in the worker's task.
    let mut run = pin!(run);
    let mut timer = deadline.map(|at| Box::pin(tokio::time::sleep_until(at.into())));
    poll_fn(|task| {
        if let Some(sleep) = timer.as_mut() {
            if sleep.as_mut().poll(task).is_ready() {
                // The deadline cancels cooperatively: the job sees its token and gives up.
                cx.token().cancel();
                timer = None;
            }
        }
        let outer = POLLING_JOB_OF.replace(pool);
        let polled = catch_unwind(AssertUnwindSafe(|| run.as_mut().poll(task)));
        POLLING_JOB_OF.set(outer);
        match polled {
            Ok(Poll::Ready(result)) => Poll::Ready(RunEnd::Returned(result)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(RunEnd::panicked(payload)),
        }
    })
    .await
}
