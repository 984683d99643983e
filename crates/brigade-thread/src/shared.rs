//! The state a pool's handle, workers and timer share: core's `JobDriver` (the per-job
//! logic and the books), the queues, the roster of workers and the shutdown's parts.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use brigade_core::backend::{Backend, JobDriver};
use brigade_core::{Gauges, Job, Stats};
use crossbeam_channel::{Receiver, Sender};
use crossbeam_utils::CachePadded;

use crate::gate::Gate;
use crate::hooks::Hooks;
pub(crate) use crate::idle::IdleSignal;
use crate::roster::Roster;
use crate::task::{Signal, Task};

/// See the module docs.
pub(crate) struct Shared<J: Job> {
    pub(crate) driver: JobDriver<J, J::Output, J::Error>,
    /// Submits that got an id (the next id is this plus one).
    pub(crate) entered: CachePadded<AtomicU64>,
    /// Submits that got an id and then handed their job back (full, timed out).
    pub(crate) refused: AtomicU64,
    pub(crate) capacity: usize,
    pub(crate) keep_alive: Duration,
    /// The bounded ready queue: jobs only, so its length is the number of queued jobs.
    pub(crate) tx: Sender<Task<J>>,
    pub(crate) rx: Receiver<Task<J>>,
    /// Wake-ups and stops (unbounded; at most a few per worker and per resize). Idle
    /// workers block on both channels.
    pub(crate) signals_tx: Sender<Signal>,
    pub(crate) signals_rx: Receiver<Signal>,
    pub(crate) gate: Gate,
    pub(crate) roster: Roster,
    pub(crate) idle: IdleSignal,
    /// The delay queue and the re-entry queue, in pools with layers.
    pub(crate) hooks: Option<Hooks<J>>,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    pub(crate) thread_seq: AtomicUsize,
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
        self.0.hooks().delay(task, at);
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
        // Read `refused` first: every refusal follows its entry, so the later read of
        // `entered` covers it and the difference cannot underflow.
        let refused = self.refused.load(Ordering::Acquire);
        self.entered.load(Ordering::Acquire).saturating_sub(refused)
    }

    /// Jobs waiting in the queues (ready queue and, with hooks, the re-entry queue).
    pub(crate) fn queued(&self) -> usize {
        self.rx.len() + self.hooks.as_ref().map_or(0, Hooks::reentry_len)
    }

    pub(crate) fn queues_are_empty(&self) -> bool {
        self.rx.is_empty() && self.hooks.as_ref().is_none_or(Hooks::reentry_is_empty)
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
    /// Called from one of this pool's own jobs, the calling job does not count: waiting
    /// for it would wait forever.
    pub(crate) fn wait_idle_until(&self, deadline: Option<Instant>) -> bool {
        let own = u64::from(crate::worker::is_own_worker(self));
        self.idle.wait(own, || self.in_flight(), deadline)
    }

    /// Wakes one idle worker (if any waits; otherwise the next one to wait sees it).
    pub(crate) fn wake_one(&self) {
        // The pool holds the receiver, so this cannot fail.
        let _ = self.signals_tx.send(Signal::Wake);
    }

    /// Called after queueing: spawns a worker when the queue outruns the idle workers.
    pub(crate) fn after_enqueue(self: &Arc<Self>) {
        if self.roster.should_grow(|| self.queued()) {
            if let Err(error) = crate::worker::spawn(self) {
                self.roster.unreserve();
                tracing::error!(pool = %self.driver.name(), %error, "could not spawn a worker");
            }
        }
    }
}
