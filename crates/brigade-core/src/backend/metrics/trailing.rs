//! The trailing publish: a pool's books reach the recorder within a period of every change,
//! even when nothing happens after it.
//!
//! Workers publish when they wait for work, start or end, which leaves a pool at rest
//! exact. What they cannot see is a change while every worker is busy: submits filling the
//! queue behind long jobs, say. Each submit and each start calls [`Trailing::touched`]; the
//! first after a publish wakes this pool's publisher thread, which lets the period's other
//! changes gather, then publishes once. A job pays one relaxed load of a flag that changes
//! at most twice a period; a pool where nothing happens has its publisher asleep (and a
//! pool that never sees an event, none at all: the thread starts on the first).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::Stats;

use super::Series;

/// Reads the pool's books: `None` once the pool is gone.
pub(super) type Source = Arc<dyn Fn() -> Option<Stats> + Send + Sync>;

/// A pool's publisher: see the module docs. Dropping it stops the thread.
pub(super) struct Trailing {
    inner: Arc<Inner>,
}

struct Inner {
    /// A change happened since the publisher last cleared it.
    pending: AtomicBool,
    state: Mutex<State>,
    wake: Condvar,
    series: Arc<Series>,
    period: Duration,
}

#[derive(Default)]
struct State {
    source: Option<Source>,
    /// The thread runs, or could not be started (then nothing trails).
    started: bool,
    stopped: bool,
}

impl Trailing {
    pub(super) fn new(series: Arc<Series>, period: Duration) -> Self {
        Trailing {
            inner: Arc::new(Inner {
                pending: AtomicBool::new(false),
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                series,
                period,
            }),
        }
    }

    /// Where the publisher reads the books; until this is set, nothing trails.
    pub(super) fn set_source(&self, source: Source) {
        self.inner.lock().source = Some(source);
    }

    /// The books changed (or are about to): a publish follows within a period.
    #[inline]
    pub(super) fn touched(&self) {
        if self.inner.pending.load(Ordering::Relaxed) {
            return;
        }
        self.wake_publisher();
    }

    #[cold]
    fn wake_publisher(&self) {
        self.inner.pending.store(true, Ordering::Relaxed);
        let mut state = self.inner.lock();
        if state.source.is_none() || state.stopped {
            return;
        }
        if !state.started {
            state.started = true;
            let inner = Arc::clone(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("brigade-metrics".to_owned())
                .spawn(move || inner.publish_while_changing());
            if let Err(error) = spawned {
                tracing::warn!(%error, "no metrics publisher thread: gauges update only as workers wait");
            }
        }
        self.inner.wake.notify_one();
    }
}

impl Drop for Trailing {
    fn drop(&mut self) {
        self.inner.lock().stopped = true;
        self.inner.wake.notify_one();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The publisher thread: asleep until a change, then one publish a period later.
    fn publish_while_changing(&self) {
        let mut state = self.lock();
        loop {
            state = self
                .wake
                .wait_while(state, |state| {
                    !state.stopped && !self.pending.load(Ordering::Relaxed)
                })
                .unwrap_or_else(PoisonError::into_inner);
            // Let the period's other changes gather.
            state = self
                .wake
                .wait_timeout_while(state, self.period, |state| !state.stopped)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            if state.stopped {
                return;
            }
            // Cleared before the books are read: a change after this sets it again.
            self.pending.store(false, Ordering::Relaxed);
            let Some(source) = state.source.clone() else {
                continue;
            };
            // The source may take the pool's locks, and a submit under one may call
            // `touched`: read it with this lock let go.
            drop(state);
            let gone = self.series.publish_books(|| source()).is_none();
            state = self.lock();
            if gone {
                return;
            }
        }
    }
}
