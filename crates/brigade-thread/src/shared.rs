//! The state a pool's handle, workers and timer share, as a few owned parts: core's
//! `JobDriver` (the per-job logic and the books), the intake, the ready queue, the
//! signals, the roster, the idle signal, the hooks' queues and the threads.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade_core::backend::Gauges;
use brigade_core::backend::{Backend, JobDriver};
use brigade_core::{Job, Stats, instant_after};

use crate::hooks::Hooks;
use crate::idle::IdleSignal;
use crate::intake::Intake;
use crate::ready_queue::ReadyQueue;
use crate::roster::Roster;
use crate::signals::Signals;
use crate::task::Task;
use crate::threads::Threads;

/// How often a wait for idle from inside one of the pool's jobs looks again whether only
/// jobs waiting for the caller are left.
const RECHECK: Duration = Duration::from_millis(10);

/// See the module docs.
pub(crate) struct Shared<J: Job> {
    /// The per-job logic and the books (core's, as on every backend).
    pub(crate) driver: JobDriver<J, J::Output, J::Error>,
    /// The gate and the ids: what was submitted.
    pub(crate) intake: Intake,
    /// Accepted jobs waiting for a worker.
    pub(crate) ready: ReadyQueue<J>,
    /// The pool's wake-ups and stops to its workers.
    pub(crate) signals: Signals,
    /// How many workers there are, may be, and wait.
    pub(crate) roster: Roster,
    pub(crate) keep_alive: Duration,
    /// How `wait_idle` and the shutdowns sleep until nothing is in flight.
    pub(crate) idle: IdleSignal,
    /// The delay queue and the re-entry queue, in pools with layers.
    pub(crate) hooks: Option<Hooks<J>>,
    pub(crate) threads: Threads,
    /// Serialises shutdowns; `true` once one finished.
    pub(crate) shut_down: Mutex<bool>,
}

/// The thread pool as core's driver sees it: the system clock, the timer thread, the
/// re-entry queue and the idle signal.
pub(crate) struct Engine<'a, J: Job>(pub(crate) &'a Arc<Shared<J>>);

impl<J: Job> Backend<J, J::Output, J::Error> for Engine<'_, J> {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn delay(&self, task: Task<J>, at: Instant) {
        if let Err(task) = self.0.hooks().delay(task, at) {
            // The pool was shut down from inside one of its own jobs, which then failed and
            // was to run again: nothing will, so it goes back, counted as returned.
            self.0.driver.hand_back(self, task);
        }
    }

    fn requeue(&self, task: Task<J>) {
        self.0.hooks().reenter(self.0, task);
    }

    fn offer_parked_later(&self) {
        self.0.hooks().offer_parked_later();
    }

    fn job_ended(&self) {
        self.0.notify_idle();
    }
}

impl<J: Job> Shared<J> {
    /// The delay and re-entry queues. Only layers delay or park a job, and a pool with
    /// layers has them.
    fn hooks(&self) -> &Hooks<J> {
        self.hooks
            .as_ref()
            .expect("only a pool with layers delays or parks a job")
    }

    /// Publishes the pool's books to its metrics, as a worker waits for work, starts or
    /// ends (see `brigade_core::backend::PoolMetrics`).
    #[cfg(feature = "metrics")]
    pub(crate) fn publish_metrics(&self) {
        self.driver.metrics().publish(|| self.stats());
    }

    pub(crate) fn notify_idle(&self) {
        self.idle.notify(|| self.in_flight());
    }

    /// Accepted jobs not yet in a terminal state.
    pub(crate) fn in_flight(&self) -> u64 {
        self.submitted().saturating_sub(
            self.driver
                .counters()
                .snapshot(Gauges::default())
                .finished(),
        )
    }

    pub(crate) fn submitted(&self) -> u64 {
        self.intake.submitted()
    }

    /// Jobs waiting in the queues (ready queue and, with hooks, the re-entry queue).
    pub(crate) fn queued(&self) -> usize {
        self.ready.len() + self.hooks.as_ref().map_or(0, Hooks::reentry_len)
    }

    pub(crate) fn queues_are_empty(&self) -> bool {
        self.ready.is_empty() && self.hooks.as_ref().is_none_or(Hooks::reentry_is_empty)
    }

    pub(crate) fn stats(&self) -> Stats {
        let workers = self.roster.live();
        let queued = self.queued();
        let delayed = self.hooks.as_ref().map_or(0, Hooks::delayed) + self.driver.parked();
        let mut stats = self.driver.counters().snapshot(Gauges {
            workers,
            busy: 0,
            queued,
            delayed,
        });
        stats.submitted = self.submitted();
        // Derived rather than counted, to keep an extra contended atomic off the hot path:
        // what is in flight but neither queued nor delayed is running.
        stats.busy = usize::try_from(stats.in_flight())
            .unwrap_or(usize::MAX)
            .saturating_sub(queued + delayed)
            .min(workers);
        stats
    }

    /// Blocks until nothing is in flight, or until `deadline`; returns whether idle.
    ///
    /// Called from one of this pool's own jobs, the calling job does not count, and neither
    /// do the jobs that wait for it (see [`waits_only_for_the_caller`]): waiting for them
    /// would wait forever. The idle moments the pool signals do not cover that state (a job
    /// parking behind the caller's capacity ends nothing), so this wait, rare, looks again
    /// every [`RECHECK`].
    ///
    /// [`waits_only_for_the_caller`]: Self::waits_only_for_the_caller
    pub(crate) fn wait_idle_until(&self, deadline: Option<Instant>) -> bool {
        if !crate::worker::is_own_worker(self) {
            return self.idle.wait(0, || self.in_flight(), deadline);
        }
        loop {
            if self.waits_only_for_the_caller() {
                return true;
            }
            let recheck = instant_after(Instant::now(), RECHECK);
            let until = deadline.map_or(recheck, |deadline| deadline.min(recheck));
            if self.idle.wait(1, || self.in_flight(), Some(until)) {
                return true;
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return false;
            }
        }
    }

    /// For one of the pool's own jobs: whether nothing else in flight can end before it
    /// does. No other job runs, and every one left waits for the caller: for a worker,
    /// when the caller's is the pool's only one and the pool may not grow (queued, or
    /// delayed until a time), or for capacity no other run will give back (parked).
    fn waits_only_for_the_caller(&self) -> bool {
        let stats = self.stats();
        // `busy` counts the caller's run.
        if stats.busy > 1 {
            return false;
        }
        let waiting_for_time = stats.delayed.saturating_sub(self.driver.parked());
        let waiting_for_a_worker = stats.queued + waiting_for_time;
        let (_, max) = self.roster.range();
        waiting_for_a_worker == 0 || (stats.workers <= 1 && max <= 1)
    }

    /// Called after queueing: spawns a worker when the queue outruns the idle workers.
    /// The check is every submit's; the spawn, out of line, is a rare one's.
    #[inline]
    pub(crate) fn after_enqueue(self: &Arc<Self>) {
        if self.roster.should_grow(|| self.queued()) {
            self.grow();
        }
    }

    #[cold]
    #[inline(never)]
    fn grow(self: &Arc<Self>) {
        if let Err(error) = crate::worker::spawn(self) {
            self.roster.unreserve();
            tracing::error!(pool = %self.driver.name(), %error, "could not spawn a worker");
        }
    }
}
