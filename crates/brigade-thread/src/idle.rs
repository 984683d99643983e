//! The wait-idle signal: how `wait_idle` (and every shutdown) sleeps until nothing is in
//! flight without a lost wake-up, while the hot path pays only a fence and a load.
//!
//! An idle moment is an event, not only a state: whoever settles a job and finds nothing
//! in flight (under the lock) starts a new idle generation, and every waiter registered
//! before it leaves, whatever the pool does next. A waiter that re-checked idleness after
//! waking instead would miss the moment whenever another waiter, released first, had
//! already submitted new work, and could miss every later one the same way.
//!
//! A waiter registers (reads the current generation) before anything it could block on,
//! the lock included: a caller asleep in `wait_idle` is registered, so the next idle
//! moment releases it even if it was still queued for the lock when the moment began.

use std::time::Instant;

use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};
use crate::sync::{Condvar, Mutex, lock};

/// See the module docs. Waiters sleep on a condvar; whoever settles a job notifies only
/// when someone waits.
#[derive(Debug)]
pub(crate) struct IdleSignal {
    waiters: AtomicUsize,
    /// Idle generations, by how many jobs in flight count as idle (0 for outside callers;
    /// 1 for a waiter inside one of the pool's own jobs, which waits for everything else).
    /// Moved only under `lock`; read by a waiter before it takes it, to register.
    generations: [AtomicU64; 2],
    /// Orders a generation's move with the waiters' checks before they sleep on `changed`.
    lock: Mutex<()>,
    changed: Condvar,
}

impl IdleSignal {
    pub(crate) fn new() -> Self {
        IdleSignal {
            waiters: AtomicUsize::new(0),
            generations: [AtomicU64::new(0), AtomicU64::new(0)],
            lock: Mutex::new(()),
            changed: Condvar::new(),
        }
    }

    /// Ends the idle generations that `in_flight` (read now, under the lock) reaches, and
    /// wakes the waiters, if there are any.
    pub(crate) fn notify(&self, in_flight: impl Fn() -> u64) {
        // Pairs with the SeqCst increment in `wait`: either the waiter's check sees our
        // update, or we see the waiter and notify it (under the lock, so not before it waits).
        fence(Ordering::SeqCst);
        // The first reading keeps the lock off the path of jobs that end in a busy pool.
        if self.waiters.load(Ordering::Relaxed) == 0 || in_flight() > 1 {
            return;
        }
        let guard = lock(&self.lock);
        // Read under the lock, so a waiter checks either before this reading (and then
        // sleeps, to be woken below) or after the new generation began.
        let in_flight = in_flight();
        if in_flight > 1 {
            return;
        }
        for (idle_at, generation) in self.generations.iter().enumerate() {
            if in_flight <= idle_at as u64 {
                generation.fetch_add(1, Ordering::SeqCst);
            }
        }
        drop(guard);
        self.changed.notify_all();
    }

    /// Blocks until at most `own` jobs are in flight (0 or 1), or until `deadline`; returns
    /// whether that happened. Returns at the first idle moment after it registered, even if
    /// the pool is busy again by the time this thread runs.
    pub(crate) fn wait(
        &self,
        own: u64,
        in_flight: impl Fn() -> u64,
        deadline: Option<Instant>,
    ) -> bool {
        let index = usize::from(own > 0);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `notify`: our checks of `in_flight` read after it.
        fence(Ordering::SeqCst);
        // Registered before the lock, which this thread may have to wait for.
        let generation = &self.generations[index];
        let registered = generation.load(Ordering::SeqCst);
        let mut guard = lock(&self.lock);
        let idle = loop {
            if generation.load(Ordering::SeqCst) != registered || in_flight() <= own {
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
    use brigade_core::JobError;
    use brigade_core::backend::RunEnd;
    use brigade_core::backend::job_errors;
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
                        Err(job_errors::cancelled(None, 0))
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
                    idle.notify(|| 1 - finished.load(Ordering::SeqCst));
                })
            };
            let canceller = {
                let cancelled = cancelled.clone();
                loom::thread::spawn(move || cancelled.store(true, Ordering::SeqCst))
            };

            assert!(idle.wait(0, || 1 - finished.load(Ordering::SeqCst), None));
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
