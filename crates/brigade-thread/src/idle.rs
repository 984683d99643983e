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
//! A waiter that finds the pool idle by its own look (under the lock, before the job that
//! emptied it got there) starts the moment itself, exactly as that job would have.

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
        if !self.begin_moment(in_flight()) {
            return;
        }
        drop(guard);
        self.changed.notify_all();
    }

    /// Ends the idle generations that `in_flight` (read under the lock) reaches; returns
    /// whether it ended any.
    fn begin_moment(&self, in_flight: u64) -> bool {
        let mut began = false;
        for (idle_at, generation) in self.generations.iter().enumerate() {
            if in_flight <= idle_at as u64 {
                generation.fetch_add(1, Ordering::SeqCst);
                began = true;
            }
        }
        began
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
        self.wait_registered(self.register(own), in_flight, deadline)
    }

    /// Counts a waiter in and notes the generation it waits to see end; done before
    /// anything the waiter could block on, the lock included.
    fn register(&self, own: u64) -> Registration {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `notify`: our checks of `in_flight` read after it.
        fence(Ordering::SeqCst);
        let index = usize::from(own > 0);
        Registration {
            own,
            index,
            generation: self.generations[index].load(Ordering::SeqCst),
        }
    }

    fn wait_registered(
        &self,
        registered: Registration,
        in_flight: impl Fn() -> u64,
        deadline: Option<Instant>,
    ) -> bool {
        let generation = &self.generations[registered.index];
        let mut guard = lock(&self.lock);
        let mut began_moment = false;
        let idle = loop {
            if generation.load(Ordering::SeqCst) != registered.generation {
                break true;
            }
            let now_in_flight = in_flight();
            if now_in_flight <= registered.own {
                // This thread saw the moment before the job that made it did (that job's
                // `notify` waits for the lock): it starts the moment for every waiter, or
                // one that submits as it leaves would leave the others registered on a
                // generation the job's `notify` then finds busy again and never ends.
                began_moment = self.begin_moment(now_in_flight);
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
        if began_moment && self.waiters.load(Ordering::SeqCst) > 1 {
            self.changed.notify_all();
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        idle
    }
}

/// A waiter's place: what counts as idle for it, and the generation it saw at its start.
struct Registration {
    own: u64,
    index: usize,
    generation: u64,
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

    /// Model: two jobs end on two workers while two callers wait; the first caller out
    /// submits again at once. The second is released all the same: whoever sees the pool
    /// idle, a waiter included, starts the moment for everyone registered.
    #[test]
    fn loom_a_waiter_that_sees_idle_first_and_submits_releases_the_others() {
        loom::model(|| {
            let idle = Arc::new(IdleSignal::new());
            let submitted = Arc::new(AtomicU64::new(2));
            let finished = Arc::new(AtomicU64::new(0));
            // Both callers wait before either job ends, as in `pool_wait_idle.rs`.
            let (registered, first_registered) = (idle.register(0), idle.register(0));
            let in_flight = |submitted: &AtomicU64, finished: &AtomicU64| {
                let submitted = submitted.load(Ordering::SeqCst);
                submitted.saturating_sub(finished.load(Ordering::SeqCst))
            };
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let (idle, submitted, finished) =
                        (idle.clone(), submitted.clone(), finished.clone());
                    loom::thread::spawn(move || {
                        finished.fetch_add(1, Ordering::SeqCst);
                        idle.notify(|| in_flight(&submitted, &finished));
                    })
                })
                .collect();
            let first = {
                let (idle, submitted, finished) =
                    (idle.clone(), submitted.clone(), finished.clone());
                loom::thread::spawn(move || {
                    let wait = || in_flight(&submitted, &finished);
                    assert!(idle.wait_registered(first_registered, wait, None));
                    // The next round's job, never finished in this model.
                    submitted.fetch_add(1, Ordering::SeqCst);
                })
            };
            // A deadlock here (this waiter never woken) is loom's failure.
            let wait = || in_flight(&submitted, &finished);
            assert!(idle.wait_registered(registered, wait, None));
            for worker in workers {
                worker.join().unwrap();
            }
            first.join().unwrap();
        });
    }

    /// Model: the last two jobs end on two workers that count them on stripes of their own
    /// (as `StatsCounters` counts completions: a release increment each, a reader summing
    /// acquire loads), while a caller waits for idle. Neither worker sees the other's count
    /// in its increment, only the SeqCst fence in `notify` orders them: the later fence's
    /// reads see both counts, so the waiter is released.
    #[test]
    fn loom_the_last_two_jobs_counted_on_their_own_stripes_release_a_waiter() {
        loom::model(|| {
            let idle = Arc::new(IdleSignal::new());
            let stripes = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
            let in_flight = |stripes: &[AtomicU64; 2]| {
                let finished: u64 = stripes.iter().map(|s| s.load(Ordering::Acquire)).sum();
                2u64.saturating_sub(finished)
            };
            let workers: Vec<_> = (0..2)
                .map(|stripe| {
                    let (idle, stripes) = (idle.clone(), stripes.clone());
                    loom::thread::spawn(move || {
                        stripes[stripe].fetch_add(1, Ordering::Release);
                        idle.notify(|| in_flight(&stripes));
                    })
                })
                .collect();
            // A deadlock here (the waiter never woken) is loom's failure.
            assert!(idle.wait(0, || in_flight(&stripes), None));
            for worker in workers {
                worker.join().unwrap();
            }
        });
    }
}
