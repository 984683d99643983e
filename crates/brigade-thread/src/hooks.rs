//! Driving the middleware hooks: before start, deadline, after run (retry, dead letter),
//! the delay queue and the list of jobs waiting for capacity. All of this exists only in
//! pools built with at least one layer; other pools never reach this module.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use brigade_core::middleware::{
    AfterRunDecision, DeadLetter, Layers, RunOutcome, RunReport, Start,
};
use brigade_core::{CancellationToken, Job, JobContext, JobError};
use crossbeam_channel::{Receiver, Sender};

use crate::capacity::{CapacityWaits, RunTicket};
use crate::run::{Ran, drop_quietly, run_job};
use crate::shared::Shared;
use crate::task::{Message, Task};
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
    pub(crate) reentry_tx: Sender<Message<J>>,
    pub(crate) reentry_rx: Receiver<Message<J>>,
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

/// A run's end, classified, owning the error.
enum Ended<T, E> {
    Succeeded(T),
    Failed(E),
    TimedOut(E),
    Cancelled(E),
    Panicked(String),
}

impl<T, E> Ended<T, E> {
    fn outcome(&self) -> RunOutcome<'_, E> {
        match self {
            Ended::Succeeded(_) => RunOutcome::Succeeded,
            Ended::Failed(error) => RunOutcome::Failed(error),
            Ended::TimedOut(error) => RunOutcome::TimedOut(Some(error)),
            Ended::Cancelled(error) => RunOutcome::Cancelled(Some(error)),
            Ended::Panicked(message) => RunOutcome::Panicked(message),
        }
    }

    fn into_result(self, attempt: u32) -> Result<T, JobError<E>> {
        match self {
            Ended::Succeeded(output) => Ok(output),
            Ended::Failed(error) => Err(JobError::failed(error, attempt)),
            Ended::TimedOut(error) => Err(JobError::timed_out(Some(error), attempt)),
            Ended::Cancelled(error) => Err(JobError::cancelled(Some(error), attempt)),
            Ended::Panicked(message) => Err(JobError::panicked(message, attempt)),
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
        // The pool holds the receiver, so this send cannot fail.
        let _ = self.reentry_tx.send(Message::Run(task));
        // Workers block on the ready queue alone (cheaper than selecting over two), so wake
        // one through it. If it is full, every worker has a job and looks at the re-entries
        // before its next one.
        let _ = shared.tx.try_send(Message::Wake);
        shared.after_enqueue();
    }

    /// Parks `task` until some run ends (`Start::WhenCapacityFrees`), without a worker.
    fn park(&self, task: Task<J>) {
        self.delayed.fetch_add(1, Ordering::Relaxed);
        if self.waiting.park(task) {
            self.timer
                .schedule(Instant::now() + REOFFER_FALLBACK, Due::Reoffer);
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
        while let Ok(message) = self.reentry_rx.try_recv() {
            if let Message::Run(task) = message {
                tasks.push(task);
            }
        }
        tasks
    }

    /// Runs `task` through the hooks: before start, the run with its deadline, after run.
    pub(crate) fn process(&self, shared: &Arc<Shared<J>>, task: Task<J>) {
        contain_hook_panic(shared, |settled| self.process_inner(shared, task, settled));
    }

    fn process_inner(&self, shared: &Arc<Shared<J>>, mut task: Task<J>, settled: &mut bool) {
        if task.done.is_cancelled(&shared.token) {
            let runs = task.runs();
            let Task { job, done, .. } = task;
            drop_quietly(job);
            *settled = true;
            shared.finish(done, Err(JobError::cancelled(None, runs)));
            return;
        }
        let started = Instant::now();
        match self.layers.before_start(&task.job, started) {
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

        let deadline = self.layers.deadline(&task.job, started);
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
        let attempt = task.attempt;
        let cx = JobContext::new(id, Arc::clone(&shared.name), run_token)
            .with_attempt(attempt)
            .with_deadline(deadline);
        let ran = run_job(&mut task.job, &cx);
        let cancelled = job_token
            .as_ref()
            .map_or_else(|| cx.is_cancelled(), CancellationToken::is_cancelled);
        if let Some(armed) = armed {
            self.timer.disarm(armed);
        }
        // These may hold the last reference to the handle's cell; see `worker::run_plain`.
        drop((cx, job_token));
        self.layers.release(&task.job);
        let now = Instant::now();
        let ended = match ran {
            Ran::Ok(output) => Ended::Succeeded(output),
            Ran::Panicked(message) => Ended::Panicked(message),
            Ran::Err(error) if deadline.is_some_and(|at| now >= at) => Ended::TimedOut(error),
            Ran::Err(error) if cancelled => Ended::Cancelled(error),
            Ran::Err(error) => Ended::Failed(error),
        };
        let report = RunReport {
            id,
            outcome: ended.outcome(),
            attempt,
            started,
            first_failure: task.first_failure,
        };
        let decision = self.layers.after_run(&task.job, &report, now);

        match decision {
            AfterRunDecision::RetryAt(at) if !matches!(ended, Ended::Succeeded(_)) => {
                drop_quietly(ended);
                task.attempt += 1;
                task.first_failure.get_or_insert(now);
                *settled = true;
                if shared.aborting.load(Ordering::Relaxed) {
                    shared.hand_back(task);
                } else {
                    shared.counters.record_retried();
                    self.delay(task, at);
                }
            }
            AfterRunDecision::DeadLetter(index) if !matches!(ended, Ended::Succeeded(_)) => {
                *settled = true;
                self.dead_letter(shared, task, ended, index, now);
            }
            _ => {
                let Task { job, done, .. } = task;
                drop_quietly(job);
                *settled = true;
                shared.finish(done, ended.into_result(attempt));
            }
        }
    }

    fn dead_letter(
        &self,
        shared: &Shared<J>,
        task: Task<J>,
        ended: Ended<J::Output, J::Error>,
        index: usize,
        now: Instant,
    ) {
        let Task {
            job,
            done,
            attempt,
            first_failure,
        } = task;
        let error = match &ended {
            Ended::Failed(error) | Ended::TimedOut(error) | Ended::Cancelled(error) => {
                error.to_string()
            }
            Ended::Panicked(message) => message.clone(),
            Ended::Succeeded(_) => unreachable!("successful runs are never dead-lettered"),
        };
        let wall_now = SystemTime::now();
        let wall = |at: Instant| {
            wall_now
                .checked_sub(now.saturating_duration_since(at))
                .unwrap_or(wall_now)
        };
        let letter = DeadLetter {
            job,
            id: done.id(),
            error,
            attempts: attempt,
            first_failure: wall(first_failure.unwrap_or(now)),
            last_failure: wall_now,
        };
        tracing::debug!(pool = %shared.name, id = %done.id(), layer = self.layers.name(index), "dead-lettering a job");
        let result = match self.layers.dead_letter(index, letter) {
            Ok(()) => match ended {
                Ended::Failed(error) | Ended::TimedOut(error) | Ended::Cancelled(error) => {
                    Err(JobError::dead_lettered(error, attempt))
                }
                Ended::Panicked(message) => Err(JobError::dead_lettered_panic(message, attempt)),
                Ended::Succeeded(_) => unreachable!("successful runs are never dead-lettered"),
            },
            Err(letter) => {
                drop_quietly(letter.job);
                ended.into_result(attempt)
            }
        };
        shared.finish(done, result);
    }
}
