//! The state a pool's handle, workers and timer share, and the bookkeeping every job goes
//! through exactly once when it reaches a terminal state.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use brigade_core::{
    CancellationToken, ErrorKind, Gauges, Job, JobError, JobResult, Stats, StatsCounters,
};
use crossbeam_channel::{Receiver, Sender};
use crossbeam_utils::CachePadded;

use crate::gate::Gate;
use crate::hooks::Hooks;
pub(crate) use crate::idle::IdleSignal;
use crate::roster::Roster;
use crate::run::drop_quietly;
use crate::sync::lock_std as lock;
use crate::task::{Done, Signal, Task, kind_of};

/// See the module docs.
pub(crate) struct Shared<J: Job> {
    pub(crate) name: Arc<str>,
    /// Cancelled only when a shutdown gives up waiting; every job's token is its child.
    pub(crate) token: CancellationToken,
    pub(crate) counters: StatsCounters,
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
    /// Set when a shutdown stops running jobs: workers hand back what they dequeue.
    pub(crate) aborting: AtomicBool,
    pub(crate) handed_back: Mutex<Vec<J>>,
    pub(crate) hooks: Option<Hooks<J>>,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    pub(crate) thread_seq: AtomicUsize,
    /// Serialises shutdowns; `true` once one finished.
    pub(crate) shut_down: Mutex<bool>,
}

impl<J: Job> Shared<J> {
    /// Records a job's terminal state, after its result was delivered.
    pub(crate) fn settle(&self, kind: Option<ErrorKind>) {
        self.count(kind);
        self.notify_idle();
    }

    fn count(&self, kind: Option<ErrorKind>) {
        match kind {
            None => self.counters.record_completed(),
            Some(kind) => self.counters.record_ended(kind),
        }
    }

    fn notify_idle(&self) {
        self.idle.notify(|| self.in_flight());
    }

    /// Delivers `result` to the job's handle and records it. A panic in the output's or the
    /// error's `Drop` (when nobody holds the handle) is contained and still counted.
    pub(crate) fn finish(
        &self,
        done: Done<J::Output, J::Error>,
        result: JobResult<J::Output, J::Error>,
    ) {
        // Counted before the handle resolves, so whoever holds every result also sees
        // every count; the idle waiters are told after, once the handle has it too.
        self.count(kind_of(&result));
        let delivered = catch_unwind(AssertUnwindSafe(move || done.deliver(result)));
        if delivered.is_err() {
            tracing::error!(pool = %self.name, "a job's result panicked while being dropped");
        }
        self.notify_idle();
    }

    /// Ends an unstarted job as returned and keeps it for the shutdown report.
    pub(crate) fn hand_back(&self, task: Task<J>) {
        let Task {
            job,
            done,
            attempts,
        } = task;
        lock(&self.handed_back).push(job);
        self.count(Some(ErrorKind::Returned));
        let _ = catch_unwind(AssertUnwindSafe(move || {
            done.deliver(Err(JobError::returned(attempts.ran())));
        }));
        self.notify_idle();
    }

    /// Ends a job cancelled before its run started, without running it.
    pub(crate) fn finish_unstarted(&self, task: Task<J>) {
        let runs = task.attempts.ran();
        drop_quietly(task.job);
        self.finish(task.done, Err(JobError::cancelled(None, runs)));
    }

    /// Accepted jobs not yet in a terminal state.
    pub(crate) fn in_flight(&self) -> u64 {
        self.submitted()
            .saturating_sub(self.counters.snapshot(Gauges::default()).finished())
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
        let delayed = self.hooks.as_ref().map_or(0, Hooks::delayed);
        let mut stats = self.counters.snapshot(Gauges {
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
                tracing::error!(pool = %self.name, %error, "could not spawn a worker");
            }
        }
    }
}
