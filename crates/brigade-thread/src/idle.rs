//! The wait-idle signal: how `wait_idle` (and every shutdown) sleeps until nothing is in
//! flight without a lost wake-up, while the hot path pays only a fence and a load.

use std::time::Instant;

use crate::sync::atomic::{AtomicUsize, Ordering, fence};
use crate::sync::{Condvar, Mutex, lock};

/// See the module docs. Waiters sleep on a condvar; whoever settles a job notifies only
/// when someone waits.
#[derive(Debug)]
pub(crate) struct IdleSignal {
    waiters: AtomicUsize,
    lock: Mutex<()>,
    changed: Condvar,
}

impl IdleSignal {
    pub(crate) fn new() -> Self {
        IdleSignal {
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            changed: Condvar::new(),
        }
    }

    /// Wakes the waiters if there are any and `is_idle` now holds.
    pub(crate) fn notify(&self, is_idle: impl FnOnce() -> bool) {
        // Pairs with the SeqCst increment in `wait`: either the waiter's check sees our
        // update, or we see the waiter and notify it (under the lock, so not before it waits).
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 && is_idle() {
            drop(lock(&self.lock));
            self.changed.notify_all();
        }
    }

    /// Blocks until `is_idle`, or until `deadline`; returns whether it held.
    pub(crate) fn wait(&self, is_idle: impl Fn() -> bool, deadline: Option<Instant>) -> bool {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `notify`: our checks of `is_idle` read after it.
        fence(Ordering::SeqCst);
        let mut guard = lock(&self.lock);
        let idle = loop {
            if is_idle() {
                break true;
            }
            match deadline {
                None => {
                    guard = self
                        .changed
                        .wait(guard)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break false;
                    }
                    guard = self
                        .changed
                        .wait_timeout(guard, deadline - now)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
            }
        };
        drop(guard);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        idle
    }
}

/// Model: a job completing (possibly cancelled) racing a waiter: the waiter wakes, and the
/// job's handle holds exactly one result.
#[cfg(all(test, brigade_loom))]
mod loom_models {
    use brigade_core::{JobError, RunEnd};
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, AtomicU64};

    use super::*;

    type Slot = Mutex<Vec<Result<u64, JobError<String>>>>;

    #[test]
    fn loom_completion_racing_cancel_and_wait_idle() {
        loom::model(|| {
            let idle = Arc::new(IdleSignal::new());
            let cancelled = Arc::new(AtomicBool::new(false));
            let finished = Arc::new(AtomicU64::new(0));
            let slot: Arc<Slot> = Arc::new(Mutex::new(Vec::new()));
            let ran = Arc::new(AtomicBool::new(false));

            let worker = {
                let (idle, cancelled, finished, slot, ran) = (
                    idle.clone(),
                    cancelled.clone(),
                    finished.clone(),
                    slot.clone(),
                    ran.clone(),
                );
                loom::thread::spawn(move || {
                    // As `worker::run_plain`: cancelled before start never runs.
                    let result = if cancelled.load(Ordering::SeqCst) {
                        Err(JobError::cancelled(None, 0))
                    } else {
                        ran.store(true, Ordering::SeqCst);
                        let end = RunEnd::Returned(if cancelled.load(Ordering::SeqCst) {
                            Err("noticed".to_string())
                        } else {
                            Ok(7)
                        });
                        end.into_result(1, cancelled.load(Ordering::SeqCst), false)
                    };
                    lock(&slot).push(result);
                    finished.fetch_add(1, Ordering::SeqCst);
                    idle.notify(|| finished.load(Ordering::SeqCst) == 1);
                })
            };
            let canceller = {
                let cancelled = cancelled.clone();
                loom::thread::spawn(move || cancelled.store(true, Ordering::SeqCst))
            };

            assert!(idle.wait(|| finished.load(Ordering::SeqCst) == 1, None));
            let results = std::mem::take(&mut *lock(&slot));
            assert_eq!(results.len(), 1, "exactly one result");
            match &results[0] {
                Ok(value) => assert_eq!(*value, 7),
                Err(error) => {
                    assert!(error.is_cancelled(), "{error:?}");
                    assert_eq!(error.attempts() == 0, !ran.load(Ordering::SeqCst));
                }
            }
            worker.join().unwrap();
            canceller.join().unwrap();
        });
    }
}
