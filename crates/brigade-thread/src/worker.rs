//! A worker thread: take a job, run it, repeat; wait blocked (never spinning) when there is
//! none, and retire after `keep_alive` without work when the pool may shrink.

use std::cell::Cell;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use brigade_core::Job;
use brigade_core::backend::WorkerSeat;
use crossbeam_channel::{Receiver, TryRecvError, never, select};
use crossbeam_utils::Backoff;

use crate::roster::Retire;
use crate::shared::{Engine, Shared};
use crate::signals::Signal;
use crate::task::{Message, Task};

/// Spawns one worker into a slot already reserved in the roster.
pub(crate) fn spawn<J: Job>(shared: &Arc<Shared<J>>) -> io::Result<()> {
    let worker = Arc::clone(shared);
    shared.threads.spawn_worker(move || work(&worker))
}

/// Takes the worker off the roster if its thread unwinds through pool code (it should not:
/// jobs and hooks run under `catch_unwind`), so shutdown does not wait for it.
struct Enrolled<'a, J: Job> {
    shared: &'a Shared<J>,
    enrolled: bool,
    /// Whether the roster counts this worker as idle (a new worker starts so).
    idle: bool,
    /// When the worker began waiting with nothing to do: a wake-up that brings no job does
    /// not restart its keep-alive. `None` after a job, set when it next blocks, so the hot
    /// path reads no clock.
    idle_since: Option<Instant>,
}

impl<J: Job> Enrolled<'_, J> {
    fn begin_wait(&mut self) {
        if !self.idle {
            self.shared.roster.begin_wait();
            self.idle = true;
        }
    }

    fn end_wait(&mut self) {
        if self.idle {
            self.shared.roster.end_wait();
            self.idle = false;
        }
    }
}

impl<J: Job> Drop for Enrolled<'_, J> {
    fn drop(&mut self) {
        // The thread ends, whichever way: by a stop, retiring, or unwinding.
        self.end_wait();
        if self.enrolled {
            self.shared.roster.worker_exited();
        }
        #[cfg(feature = "metrics")]
        self.shared.publish_metrics();
    }
}

thread_local! {
    /// The pool whose worker this thread is (its shared state's address), if any.
    static WORKER_OF: Cell<usize> = const { Cell::new(0) };
}

/// Whether the calling thread is one of this pool's workers, i.e. the caller is one of its
/// jobs (or hooks) and is itself in flight.
pub(crate) fn is_own_worker<J: Job>(shared: &Shared<J>) -> bool {
    WORKER_OF.with(|pool| pool.get() == std::ptr::from_ref(shared) as usize)
}

fn work<J: Job>(shared: &Arc<Shared<J>>) {
    WORKER_OF.with(|pool| pool.set(Arc::as_ptr(shared) as usize));
    #[cfg(feature = "metrics")]
    shared.publish_metrics();
    let mut enrolled = Enrolled {
        shared,
        enrolled: true,
        idle: true,
        idle_since: None,
    };
    let mut seat = shared.driver.seat();
    loop {
        if shared.roster.above_max()
            && shared
                .roster
                .try_retire(false, || shared.queues_are_empty())
                == Retire::Exit
        {
            enrolled.enrolled = false;
            return;
        }
        match next_message(&mut enrolled) {
            Some(Message::Run(task)) => {
                // Jobs, results and hooks are contained closer in; this is the last line
                // of defence, so that a bug cannot cost the pool a worker.
                if catch_unwind(AssertUnwindSafe(|| run(shared, &seat, task))).is_err() {
                    tracing::error!(pool = %shared.driver.name(), "a worker caught a panic");
                }
                shared.driver.mend_seat(&mut seat);
                enrolled.idle_since = None;
            }
            Some(Message::Wake) => {}
            Some(Message::Stop) => {
                // `Enrolled` takes the worker off the roster.
                return;
            }
            None => {
                if shared.roster.try_retire(true, || shared.queues_are_empty()) == Retire::Exit {
                    enrolled.enrolled = false;
                    // Idle workers that began waiting at the minimum wait with no timeout;
                    // wake one to take over the keep-alive while the pool is above it.
                    if shared.roster.may_retire() {
                        shared.signals.wake_one();
                    }
                    return;
                }
            }
        }
    }
}

/// The next message, or `None` after `keep_alive` without one. With hooks, jobs coming
/// back from the delay queue go first. A worker with nothing to do blocks on the ready
/// queue, the re-entry queue and the pool's signals at once, so none of them needs to
/// send a wake-up through another (see `Signal`).
fn next_message<J: Job>(worker: &mut Enrolled<'_, J>) -> Option<Message<J>> {
    let shared = worker.shared;
    if let Some(hooks) = &shared.hooks {
        if let Some(task) = hooks.try_take_reentry() {
            worker.end_wait();
            return Some(Message::Run(task));
        }
    }
    // A worker coming from a job that finds the next one at once takes it without telling
    // the roster it waited: under load that is every job, and the roster's idle count is a
    // line every worker writes (15% of the execute bench's profile). Submits read that
    // count only to decide whether to grow, and a worker between two jobs is busy to them
    // already.
    if !worker.idle {
        if let Ok(task) = shared.ready.try_pop() {
            return Some(Message::Run(task));
        }
    }
    // A brief, bounded spin before parking: a submitter keeping up hands the next job over
    // without a futex wake-up on either side. An idle pool still parks within microseconds.
    // A spinning worker is idle to the roster: it takes the next job as surely as a parked
    // one, so a submit that finds it spinning must not start another worker.
    worker.begin_wait();
    let backoff = Backoff::new();
    loop {
        match shared.ready.try_pop() {
            Ok(task) => {
                worker.end_wait();
                return Some(Message::Run(task));
            }
            Err(TryRecvError::Empty) => {}
            // The pool holds a sender for as long as workers live.
            Err(TryRecvError::Disconnected) => return Some(Message::Stop),
        }
        if backoff.is_completed() {
            break;
        }
        backoff.snooze();
    }
    // Nothing came while it spun: it blocks, after showing the books as they are (a pool
    // whose workers all wait has published everything that happened).
    #[cfg(feature = "metrics")]
    shared.publish_metrics();
    // A pool without hooks has no re-entry queue: wait on one that never delivers.
    let never = never();
    let reentry: &Receiver<Task<J>> = shared
        .hooks
        .as_ref()
        .map_or(&never, |hooks| &hooks.reentry_rx);
    let timeout = if shared.roster.may_retire() {
        let idle_for = worker.idle_since.get_or_insert_with(Instant::now).elapsed();
        // Past the keep-alive the wait below still looks at every channel once (a zero
        // timeout) before it gives up: a shutdown's stop must reach a worker the roster
        // will not let retire, or that worker would loop here for ever.
        Some(shared.keep_alive.saturating_sub(idle_for))
    } else {
        // At or below the minimum: nothing to time out for, so no periodic wake-ups.
        None
    };
    let (ready, signals) = (shared.ready.receiver(), shared.signals.receiver());
    // `select!` keeps its operations on the stack: blocking allocates nothing.
    let message = match timeout {
        Some(remaining) => select! {
            recv(ready) -> task => Some(task.map_or(Message::Stop, Message::Run)),
            recv(reentry) -> task => Some(task.map_or(Message::Stop, Message::Run)),
            recv(signals) -> signal => Some(signal.map_or(Message::Stop, from_signal)),
            default(remaining) => None,
        },
        None => select! {
            recv(ready) -> task => Some(task.map_or(Message::Stop, Message::Run)),
            recv(reentry) -> task => Some(task.map_or(Message::Stop, Message::Run)),
            recv(signals) -> signal => Some(signal.map_or(Message::Stop, from_signal)),
        },
    };
    worker.end_wait();
    message
}

fn from_signal<J: Job>(signal: Signal) -> Message<J> {
    match signal {
        Signal::Wake => Message::Wake,
        Signal::Stop => Message::Stop,
    }
}

/// Takes one dequeued task through core's driver: its start, its run (with the deadline
/// armed on the timer), its end.
pub(crate) fn run<J: Job>(shared: &Arc<Shared<J>>, seat: &WorkerSeat, task: Task<J>) {
    let engine = Engine(shared);
    let Some(mut run) = shared.driver.begin(&engine, seat, task) else {
        return;
    };
    let armed = run.deadline().and_then(|at| {
        let timer = &shared.hooks.as_ref()?.timer;
        Some((timer, timer.arm_deadline(at, run.context().token().clone())))
    });
    let end = run.run_blocking();
    if let Some((timer, armed)) = armed {
        timer.disarm(armed);
    }
    shared.driver.end(&engine, run, end);
}
