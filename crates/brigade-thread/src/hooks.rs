//! Driving the middleware hooks: before start, deadline, after run (retry, dead letter),
//! the delay queue and the list of jobs waiting for capacity. All of this exists only in
//! pools built with at least one layer; other pools never reach this module.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use brigade_core::middleware::{Layers, Start};
use brigade_core::{
    CancellationToken, FinishedRun, Job, JobContext, JobError, Settled, instant_after,
};
use crossbeam_channel::{Receiver, Sender};

use crate::capacity::{CapacityWaits, RunTicket};
use crate::run::{drop_quietly, run_job};
use crate::shared::Shared;
use crate::task::Task;
use crate::timer::{Due, Timer};
use crate::worker::contain_hook_panic;

/// How long jobs waiting for capacity wait when no run is in progress whose end would
/// offer them again (the capacity is held elsewhere, e.g. by another pool sharing the
/// layer). Only this degenerate state polls.
const REOFFER_FALLBACK: Duration = Duration::from_millis(10);

/// See the module docs.
pub(crate) struct Hooks<J: Job> {
    pub(crate) layers: Layers<J, J::Error>,
    /// Unbounded, so a job coming back from the delay queue is never refused by a full
    /// ready queue: it was accepted already. Workers only poll it (see `reenter`).
    pub(crate) reentry_tx: Sender<Task<J>>,
    pub(crate) reentry_rx: Receiver<Task<J>>,
    pub(crate) timer: Timer<J>,
    waiting: CapacityWaits<Task<J>>,
    delayed: AtomicUsize,
}

/// A run in progress; its end offers the jobs waiting for capacity again.
struct Running<'a, J: Job> {
    hooks: &'a Hooks<J>,
    shared: &'a Arc<Shared<J>>,
    ticket: Option<RunTicket>,
}

impl<J: Job> Drop for Running<'_, J> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            for task in self.hooks.waiting.run_ended(ticket) {
                self.hooks.reoffer_one(self.shared, task);
            }
        }
    }
}

impl<J: Job> Hooks<J> {
    pub(crate) fn new(layers: Layers<J, J::Error>) -> Self {
        let (reentry_tx, reentry_rx) = crossbeam_channel::unbounded();
        Hooks {
            layers,
            reentry_tx,
            reentry_rx,
            timer: Timer::new(),
            waiting: CapacityWaits::new(),
            delayed: AtomicUsize::new(0),
        }
    }

    pub(crate) fn reentry_len(&self) -> usize {
        self.reentry_rx.len()
    }

    pub(crate) fn reentry_is_empty(&self) -> bool {
        self.reentry_rx.is_empty()
    }

    pub(crate) fn delayed(&self) -> usize {
        self.delayed.load(Ordering::Relaxed)
    }

    /// Holds `task` until `at`, without a worker.
    fn delay(&self, task: Task<J>, at: Instant) {
        self.delayed.fetch_add(1, Ordering::Relaxed);
        self.timer.schedule(at, Due::Run(task));
    }

    /// A delayed task is due: back into the ready queues.
    pub(crate) fn reenter(&self, shared: &Arc<Shared<J>>, task: Task<J>) {
        self.delayed.fetch_sub(1, Ordering::Relaxed);
        if shared.aborting.load(Ordering::Relaxed) {
            shared.hand_back(task);
            return;
        }
        // The pool holds the receiver, so this send cannot fail. Idle workers block on this
        // channel too, so one of them takes it; busy ones look here before their next job.
        let _ = self.reentry_tx.send(task);
        shared.after_enqueue();
    }

    /// Parks `task` until some run ends (`Start::WhenCapacityFrees`), without a worker.
    fn park(&self, task: Task<J>) {
        self.delayed.fetch_add(1, Ordering::Relaxed);
        if self.waiting.park(task) {
            self.timer.schedule(
                instant_after(Instant::now(), REOFFER_FALLBACK),
                Due::Reoffer,
            );
        }
    }

    /// Offers every job waiting for capacity again.
    pub(crate) fn reoffer(&self, shared: &Arc<Shared<J>>) {
        for task in self.waiting.take_all() {
            self.reoffer_one(shared, task);
        }
    }

    fn reoffer_one(&self, shared: &Arc<Shared<J>>, task: Task<J>) {
        // `reenter` counts it out of `delayed`, as for a due retry.
        self.reenter(shared, task);
    }

    /// Everything not started, for a shutdown that hands it back.
    pub(crate) fn take_unstarted(&self) -> Vec<Task<J>> {
        let mut tasks = self.timer.take_tasks();
        tasks.extend(self.waiting.take_all());
        self.delayed.fetch_sub(tasks.len(), Ordering::Relaxed);
        tasks.extend(self.reentry_rx.try_iter());
        tasks
    }

    /// Runs `task` through the hooks: before start, the run with its deadline, after run.
    pub(crate) fn process(&self, shared: &Arc<Shared<J>>, task: Task<J>) {
        contain_hook_panic(shared, |settled| self.process_inner(shared, task, settled));
    }

    fn process_inner(&self, shared: &Arc<Shared<J>>, mut task: Task<J>, settled: &mut bool) {
        if task.done.is_cancelled(&shared.token) {
            *settled = true;
            shared.finish_unstarted(task);
            return;
        }
        let started = Instant::now();
        // A hook that panics before the run must not take the job with it: it never ran to
        // an end, so it is handed back (counted returned, and in the shutdown report).
        let before = catch_unwind(AssertUnwindSafe(|| {
            self.layers.before_start(&task.job, started)
        }));
        let deadline = match &before {
            Ok(Start::Now) => {
                let deadline = catch_unwind(AssertUnwindSafe(|| {
                    self.layers.deadline(&task.job, started)
                }));
                if deadline.is_err() {
                    // Give back what the granted start took (a weighted limit's units).
                    let _ = catch_unwind(AssertUnwindSafe(|| self.layers.release(&task.job)));
                }
                deadline
            }
            _ => Ok(None),
        };
        let (Ok(start), Ok(deadline)) = (before, deadline) else {
            tracing::error!(pool = %shared.name, id = %task.done.id(), "a middleware hook panicked before a start: the job is handed back");
            *settled = true;
            shared.hand_back(task);
            return;
        };
        match start {
            Start::Now => {}
            Start::NotBefore(at) => {
                *settled = true;
                self.delay(task, at);
                return;
            }
            Start::WhenCapacityFrees => {
                *settled = true;
                self.park(task);
                return;
            }
        }
        let _running = Running {
            hooks: self,
            shared,
            ticket: Some(self.waiting.run_started()),
        };

        let job_token = task.done.token(&shared.token);
        // A deadline cancels a child of the job's token, so it ends this run only: a retry
        // gets a fresh one. Without a deadline the run uses the job's token itself.
        let (run_token, job_token, armed) = match deadline {
            Some(at) => {
                let token = job_token.child_token();
                let armed = self.timer.arm_deadline(at, token.clone());
                (token, Some(job_token), Some(armed))
            }
            None => (job_token, None, None),
        };
        let id = task.done.id();
        let attempt = task.attempts.next();
        let cx = JobContext::new(id, Arc::clone(&shared.name), run_token)
            .with_attempt(attempt)
            .with_deadline(deadline);
        let end = run_job(&mut task.job, &cx);
        let cancelled = job_token
            .as_ref()
            .map_or_else(|| cx.is_cancelled(), CancellationToken::is_cancelled);
        if let Some(armed) = armed {
            self.timer.disarm(armed);
        }
        // These may hold the last reference to the handle's cell; see `worker::run_plain`.
        drop((cx, job_token));
        if catch_unwind(AssertUnwindSafe(|| self.layers.release(&task.job))).is_err() {
            tracing::error!(pool = %shared.name, %id, "a middleware hook panicked in release");
        }
        let now = Instant::now();
        let Task {
            job,
            done,
            attempts,
        } = task;
        let run = FinishedRun {
            id,
            end,
            attempts,
            started,
            cancelled,
            past_deadline: deadline.is_some_and(|at| now >= at),
        };
        // Hooks run in there (after run, a dead-letter sink), which contains their panics:
        // the job then ends with its own outcome. `contain_hook_panic` stays the last line.
        match run.settle_with(&self.layers, job, now, drop_quietly, drop_quietly) {
            Settled::Finished(result) => {
                *settled = true;
                if result.as_ref().is_err_and(JobError::is_dead_lettered) {
                    tracing::debug!(pool = %shared.name, %id, "dead-lettered a job");
                }
                shared.finish(done, result);
            }
            Settled::Retry { job, attempts, at } => {
                *settled = true;
                let task = Task {
                    job,
                    done,
                    attempts,
                };
                if shared.aborting.load(Ordering::Relaxed) {
                    shared.hand_back(task);
                } else {
                    shared.counters.record_retried();
                    self.delay(task, at);
                }
            }
        }
    }
}
