//! What the pool's timer task serves: jobs waiting for a time, and the fallback offer to
//! jobs parked for capacity held elsewhere. Guarded by the pool's lock.

use std::time::Instant;

use brigade_core::AsyncJob;
use brigade_core::backend::DelayQueue;

use crate::shared::Task;

/// See the module docs.
pub(crate) struct Schedule<J: AsyncJob> {
    /// Jobs waiting for a time (retry backoff, a start deferred by a rate limit).
    delayed: DelayQueue<Task<J>>,
    /// When the timer offers the parked jobs (core's driver keeps them) their start again,
    /// when no run in progress will.
    offer_parked_at: Option<Instant>,
    /// Whether the timer task runs; it starts with the first job put aside and exits once
    /// the pool is done.
    timer_running: bool,
}

impl<J: AsyncJob> Schedule<J> {
    pub(crate) fn new() -> Self {
        Schedule {
            delayed: DelayQueue::new(),
            offer_parked_at: None,
            timer_running: false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.delayed.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.delayed.is_empty()
    }

    /// Puts `task` aside until `at`; `true` when it is now the earliest (the timer must
    /// wake to see it).
    pub(crate) fn delay(&mut self, at: Instant, task: Task<J>) -> bool {
        self.delayed.push(at, task)
    }

    /// The next job whose time came, earliest first.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Task<J>> {
        self.delayed.pop_due(now)
    }

    /// Asks for an offer to the parked jobs at `at` (or earlier, if one was asked for).
    pub(crate) fn offer_parked_at(&mut self, at: Instant) {
        self.offer_parked_at = Some(self.offer_parked_at.map_or(at, |earlier| earlier.min(at)));
    }

    /// Whether the parked jobs' offer is due; it is taken when it is.
    pub(crate) fn take_due_offer(&mut self, now: Instant) -> bool {
        let due = self.offer_parked_at.is_some_and(|at| at <= now);
        if due {
            self.offer_parked_at = None;
        }
        due
    }

    /// When the timer must wake next, if anything waits for a time.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        match (self.delayed.next_at(), self.offer_parked_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Marks the timer as running; `true` when it was not (the caller spawns it).
    pub(crate) fn start_timer(&mut self) -> bool {
        !std::mem::replace(&mut self.timer_running, true)
    }

    /// The timer task exits.
    pub(crate) fn timer_stopped(&mut self) {
        self.timer_running = false;
    }

    /// Takes the jobs `is_cancelled` picks out of the delay queue, earliest first.
    pub(crate) fn take_cancelled(
        &mut self,
        is_cancelled: impl Fn(&Task<J>) -> bool,
    ) -> Vec<Task<J>> {
        self.delayed.take_where(is_cancelled)
    }

    /// Empties the delay queue, earliest first.
    pub(crate) fn take_all(&mut self) -> Vec<Task<J>> {
        self.delayed.take_all()
    }
}
