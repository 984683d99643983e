//! The delay queue: one thread, core's `DelayQueue` (earliest first) and a condvar. It exists only
//! in pools with middleware; it sleeps until the earliest entry is due (never polling).
//!
//! Run deadlines live in a separate ordered map, because most runs end before theirs: the
//! run's end removes its entry, so a busy pool with long deadlines does not pile up
//! entries (and the tokens they hold) until the deadlines pass.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::task::{Wake, Waker};
use std::time::Instant;

use brigade_core::backend::{DelayQueue, drop_quietly};
use brigade_core::{CancellationToken, Job};

use crate::shared::{Engine, Shared};
use crate::sync::lock_std as lock;
use crate::task::Task;

/// What happens when an entry falls due.
pub(crate) enum Due<J: Job> {
    /// The task re-enters the ready queue (a retry, or a start deferred to this time).
    Run(Task<J>),
    /// Offer the jobs waiting for capacity their start again.
    OfferParked,
}

struct TimerState<J: Job> {
    entries: DelayQueue<Due<J>>,
    deadlines: BTreeMap<DeadlineKey, CancellationToken>,
    deadline_seq: u64,
    stopped: bool,
}

impl<J: Job> TimerState<J> {
    fn earliest(&self) -> Option<Instant> {
        let entry = self.entries.next_at();
        let deadline = self.deadlines.keys().next().map(|key| key.0);
        match (entry, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A scheduled run deadline, to remove it when the run ends first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DeadlineKey(Instant, u64);

/// See the module docs.
pub(crate) struct Timer<J: Job> {
    state: Mutex<TimerState<J>>,
    changed: Condvar,
}

impl<J: Job> Timer<J> {
    pub(crate) fn new() -> Self {
        Timer {
            state: Mutex::new(TimerState {
                entries: DelayQueue::new(),
                deadlines: BTreeMap::new(),
                deadline_seq: 0,
                stopped: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Schedules `due` at `at`, waking the timer thread if this is now the earliest entry;
    /// gives it back once the timer has stopped (the pool is shut down), as nothing would
    /// ever take it out.
    pub(crate) fn schedule(&self, at: Instant, due: Due<J>) -> Result<(), Due<J>> {
        let mut state = lock(&self.state);
        if state.stopped {
            return Err(due);
        }
        state.entries.push(at, due);
        let earliest = state.earliest() == Some(at);
        drop(state);
        if earliest {
            self.changed.notify_one();
        }
        Ok(())
    }

    /// Cancels `token` at `at` unless [`disarm`](Self::disarm)ed first.
    pub(crate) fn arm_deadline(&self, at: Instant, token: CancellationToken) -> DeadlineKey {
        let mut state = lock(&self.state);
        let key = DeadlineKey(at, state.deadline_seq);
        state.deadline_seq += 1;
        state.deadlines.insert(key, token);
        let earliest = state.earliest() == Some(at);
        drop(state);
        if earliest {
            self.changed.notify_one();
        }
        key
    }

    /// Removes a deadline whose run ended before it.
    pub(crate) fn disarm(&self, key: DeadlineKey) {
        let token = lock(&self.state).deadlines.remove(&key);
        // Dropped outside the lock: it may own a finished job's result (see `stop`).
        drop_quietly(token);
    }

    /// Removes every scheduled task (for a shutdown that hands them back); other entries
    /// are dropped too, as the shutdown cancels every run and drains the waiting list itself.
    pub(crate) fn take_tasks(&self) -> Vec<Task<J>> {
        let entries = lock(&self.state).entries.take_all();
        entries
            .into_iter()
            .filter_map(|due| match due {
                Due::Run(task) => Some(task),
                Due::OfferParked => None,
            })
            .collect()
    }

    /// Wakes the timer thread to look at what changed outside its state (a cancel).
    fn nudge(&self) {
        // Taken so that the thread is either before its look, or asleep and woken.
        drop(lock(&self.state));
        self.changed.notify_one();
    }

    /// Takes the delayed tasks whose jobs were cancelled out of the queue.
    fn take_cancelled(
        state: &mut TimerState<J>,
        is_cancelled: impl Fn(&Task<J>) -> bool,
    ) -> Vec<Task<J>> {
        let cancelled = state
            .entries
            .take_where(|due| matches!(due, Due::Run(task) if is_cancelled(task)));
        cancelled
            .into_iter()
            .filter_map(|due| match due {
                Due::Run(task) => Some(task),
                Due::OfferParked => None,
            })
            .collect()
    }

    pub(crate) fn stop(&self) {
        let mut state = lock(&self.state);
        state.stopped = true;
        // Deadline tokens can own a finished job's result, whose `Drop` may panic.
        let leftovers = (
            state.entries.take_all(),
            std::mem::take(&mut state.deadlines),
        );
        drop(state);
        self.changed.notify_all();
        drop_quietly(leftovers);
    }
}

/// The timer thread's loop.
pub(crate) fn run_timer<J: Job>(shared: &Arc<Shared<J>>) {
    let hooks = shared
        .hooks
        .as_ref()
        .expect("the timer runs only with hooks");
    let timer = &hooks.timer;
    let mut state = lock(&timer.state);
    loop {
        if state.stopped {
            return;
        }
        // Under the lock the cancel's nudge takes: a cancel is seen here or wakes the wait.
        if shared.driver.cancels().take_pending() {
            let cancelled =
                Timer::take_cancelled(&mut state, |task| shared.driver.is_cancelled(task));
            drop(state);
            let ended = catch_unwind(AssertUnwindSafe(|| hooks.end_cancelled(shared, cancelled)));
            if ended.is_err() {
                tracing::error!(pool = %shared.driver.name(), "the timer caught a panic");
            }
            state = lock(&timer.state);
            continue;
        }
        let now = Instant::now();
        match state.earliest() {
            None => {
                state = timer
                    .changed
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            Some(at) if at <= now => {
                let fired = match state.entries.next_at() {
                    Some(entry) if entry == at => state.entries.pop_due(at).map(Ok),
                    _ => state.deadlines.pop_first().map(|(_, token)| Err(token)),
                };
                drop(state);
                match fired {
                    Some(Ok(due)) => fire(shared, hooks, due),
                    Some(Err(token)) => fire_deadline(shared, token),
                    None => {}
                }
                state = lock(&timer.state);
            }
            Some(at) => {
                state = timer
                    .changed
                    .wait_timeout(state, at - now)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
        }
    }
}

/// What a cancel of a job waiting off the workers wakes (core's `CancelWatch`): the timer
/// thread, which takes the job out. The pool is held weakly: the waker sits in jobs'
/// tokens, which may outlive it.
struct CancelNudge<J: Job>(Weak<Shared<J>>);

impl<J: Job> Wake for CancelNudge<J> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(hooks) = self
            .0
            .upgrade()
            .as_ref()
            .and_then(|shared| shared.hooks.as_ref())
        {
            hooks.timer.nudge();
        }
    }
}

/// The waker a pool with hooks gives core's `CancelWatch`.
pub(crate) fn cancel_waker<J: Job>(shared: &Arc<Shared<J>>) -> Waker {
    Waker::from(Arc::new(CancelNudge(Arc::downgrade(shared))))
}

/// Cancels a run's token at its deadline, containing a panic from dropping the token (it
/// may hold the last reference to a finished job's result).
fn fire_deadline<J: Job>(shared: &Shared<J>, token: CancellationToken) {
    let fired = catch_unwind(AssertUnwindSafe(move || {
        token.cancel();
        drop(token);
    }));
    if fired.is_err() {
        tracing::error!(pool = %shared.driver.name(), "the timer caught a panic");
    }
}

/// Acts on a due entry, containing a panic so the timer survives.
fn fire<J: Job>(shared: &Arc<Shared<J>>, hooks: &crate::hooks::Hooks<J>, due: Due<J>) {
    let fired = catch_unwind(AssertUnwindSafe(|| match due {
        Due::Run(task) => hooks.due(shared, task),
        Due::OfferParked => shared.driver.offer_parked(&Engine(shared)),
    }));
    if fired.is_err() {
        tracing::error!(pool = %shared.driver.name(), "the timer caught a panic");
    }
}
