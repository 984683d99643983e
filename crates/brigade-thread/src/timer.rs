//! The delay queue: one thread, a binary heap ordered by time and a condvar. It exists only
//! in pools with middleware; it sleeps until the earliest entry is due (never polling).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use brigade_core::{CancellationToken, Job};

use crate::run::drop_quietly;
use crate::shared::Shared;
use crate::sync::lock_std as lock;
use crate::task::Task;

/// What happens when an entry falls due.
pub(crate) enum Due<J: Job> {
    /// The task re-enters the ready queue (a retry, or a start deferred to this time).
    Run(Task<J>),
    /// A run's deadline: cancel that run's token.
    Cancel(CancellationToken),
    /// Offer the jobs waiting for capacity again.
    Reoffer,
}

struct Entry<J: Job> {
    at: Instant,
    seq: u64,
    due: Due<J>,
}

impl<J: Job> PartialEq for Entry<J> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<J: Job> Eq for Entry<J> {}

impl<J: Job> PartialOrd for Entry<J> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<J: Job> Ord for Entry<J> {
    // Reversed: `BinaryHeap` is a max-heap and the earliest entry (then the first
    // scheduled, for equal times) must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct TimerState<J: Job> {
    heap: BinaryHeap<Entry<J>>,
    seq: u64,
    stopped: bool,
}

/// See the module docs.
pub(crate) struct Timer<J: Job> {
    state: Mutex<TimerState<J>>,
    changed: Condvar,
}

impl<J: Job> Timer<J> {
    pub(crate) fn new() -> Self {
        Timer {
            state: Mutex::new(TimerState {
                heap: BinaryHeap::new(),
                seq: 0,
                stopped: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Schedules `due` at `at`, waking the timer thread if this is now the earliest entry.
    pub(crate) fn schedule(&self, at: Instant, due: Due<J>) {
        let mut state = lock(&self.state);
        let seq = state.seq;
        state.seq += 1;
        state.heap.push(Entry { at, seq, due });
        let earliest = state.heap.peek().is_some_and(|entry| entry.seq == seq);
        drop(state);
        if earliest {
            self.changed.notify_one();
        }
    }

    /// Removes every scheduled task (for a shutdown that hands them back); other entries
    /// are dropped too, as the shutdown cancels every run and drains the waiting list itself.
    pub(crate) fn take_tasks(&self) -> Vec<Task<J>> {
        let entries = std::mem::take(&mut lock(&self.state).heap).into_sorted_vec();
        // `into_sorted_vec` is ascending by `Ord`, which is reversed time: latest first.
        entries
            .into_iter()
            .rev()
            .filter_map(|entry| match entry.due {
                Due::Run(task) => Some(task),
                Due::Cancel(token) => {
                    drop_quietly(token);
                    None
                }
                Due::Reoffer => None,
            })
            .collect()
    }

    pub(crate) fn stop(&self) {
        let mut state = lock(&self.state);
        state.stopped = true;
        // What is left are deadlines of finished runs; their tokens may own results.
        let leftovers = std::mem::take(&mut state.heap);
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
        let now = Instant::now();
        match state.heap.peek().map(|entry| entry.at) {
            None => {
                state = timer
                    .changed
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            Some(at) if at <= now => {
                let entry = state.heap.pop().expect("peeked");
                drop(state);
                // A deadline's token can hold the last reference to a finished job's result,
                // whose `Drop` may panic: contain it so the timer survives.
                let fired = catch_unwind(AssertUnwindSafe(|| match entry.due {
                    Due::Run(task) => hooks.reenter(shared, task),
                    Due::Cancel(token) => token.cancel(),
                    Due::Reoffer => hooks.reoffer(shared),
                }));
                if fired.is_err() {
                    tracing::error!(pool = %shared.name, "the timer caught a panic");
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
