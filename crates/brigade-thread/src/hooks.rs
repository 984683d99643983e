//! What a pool with middleware has beyond the others: the delay queue (its timer thread)
//! and the re-entry queue that jobs coming back from it go through. Pools without layers
//! never reach this module; the per-job hook logic is core's `JobDriver`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use brigade_core::{Job, instant_after};
use crossbeam_channel::{Receiver, Sender};

use crate::shared::{Engine, Shared};
use crate::task::Task;
use crate::timer::{Due, Timer};

/// How long jobs waiting for capacity wait when no run is in progress whose end would
/// offer them again (the capacity is held elsewhere, e.g. by another pool sharing the
/// layer). Only this degenerate state polls.
const REOFFER_FALLBACK: Duration = Duration::from_millis(10);

/// See the module docs.
pub(crate) struct Hooks<J: Job> {
    /// Unbounded, so a job coming back from the delay queue is never refused by a full
    /// ready queue: it was accepted already. Workers only poll it (see `worker`).
    reentry_tx: Sender<Task<J>>,
    pub(crate) reentry_rx: Receiver<Task<J>>,
    pub(crate) timer: Timer<J>,
    /// Jobs in the delay queue.
    delayed: AtomicUsize,
}

impl<J: Job> Hooks<J> {
    /// The queues of a pool with layers.
    pub(crate) fn new() -> Self {
        let (reentry_tx, reentry_rx) = crossbeam_channel::unbounded();
        Hooks {
            reentry_tx,
            reentry_rx,
            timer: Timer::new(),
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

    /// Holds `task` until `at`, without a worker; gives it back if the pool is shut down
    /// (a job that shut down its own pool, then asked to run again).
    pub(crate) fn delay(&self, task: Task<J>, at: Instant) -> Result<(), Task<J>> {
        self.delayed.fetch_add(1, Ordering::Relaxed);
        if let Err(Due::Run(task)) = self.timer.schedule(at, Due::Run(task)) {
            self.delayed.fetch_sub(1, Ordering::Relaxed);
            return Err(task);
        }
        Ok(())
    }

    /// Asks the timer to offer the parked jobs capacity again shortly (nothing to offer
    /// once the pool is shut down: its shutdown handed the parked jobs back).
    pub(crate) fn offer_parked_later(&self) {
        let _stopped = self.timer.schedule(
            instant_after(Instant::now(), REOFFER_FALLBACK),
            Due::OfferParked,
        );
    }

    /// A delayed task is due: back into the ready queues.
    pub(crate) fn due(&self, shared: &Arc<Shared<J>>, task: Task<J>) {
        self.delayed.fetch_sub(1, Ordering::Relaxed);
        self.reenter(shared, task);
    }

    /// Queues an accepted task ahead of the ready queue.
    pub(crate) fn reenter(&self, shared: &Arc<Shared<J>>, task: Task<J>) {
        // The pool holds the receiver, so this send cannot fail. Idle workers block on this
        // channel too, so one of them takes it; busy ones look here before their next job.
        let _ = self.reentry_tx.send(task);
        shared.after_enqueue();
    }

    /// The next task coming back, if any, without waiting. Workers look here before
    /// every job, and it is nearly always empty: the look reads the list's two ends
    /// before it takes the receive path.
    pub(crate) fn try_take_reentry(&self) -> Option<Task<J>> {
        if self.reentry_rx.is_empty() {
            return None;
        }
        self.reentry_rx.try_recv().ok()
    }

    /// Ends the tasks the timer took out of the delay queue because they were cancelled,
    /// and the parked ones that were (core's `JobDriver::end_cancelled`).
    pub(crate) fn end_cancelled(&self, shared: &Arc<Shared<J>>, tasks: Vec<Task<J>>) {
        // Off the gauge before their handles resolve.
        self.delayed.fetch_sub(tasks.len(), Ordering::Relaxed);
        shared.driver.end_cancelled(&Engine(shared), tasks);
    }

    /// Every unstarted task this part holds, for a shutdown that hands them back.
    pub(crate) fn take_unstarted(&self) -> Vec<Task<J>> {
        let mut tasks = self.timer.take_tasks();
        self.delayed.fetch_sub(tasks.len(), Ordering::Relaxed);
        tasks.extend(self.reentry_rx.try_iter());
        tasks
    }
}
