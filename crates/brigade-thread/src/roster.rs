//! The worker roster: how many workers live, how many wait idle, and the protocol that keeps
//! a worker retiring at the moment a job arrives from stranding that job.
//!
//! Growth: after queueing a job, a submitter issues a SeqCst fence and reads `live` and
//! `idle`; when the queue holds more jobs than there are idle workers and `live < max`, it
//! reserves a slot under the lock and spawns a worker.
//!
//! Retirement: a worker whose wait timed out (or that finds `live > max` after a resize)
//! first takes itself off `live` under the lock, then issues a SeqCst fence and looks at the
//! queue. If a job is there it takes its slot back (or, when the roster is full again,
//! leaves the job to the worker that filled it).
//!
//! The two fences make the race safe: either the submitter's reads come after the worker
//! left (it sees the free slot and spawns) or the worker's look at the queue comes after the
//! job was queued (it stays). A job is never left in a queue with no worker to take it, even
//! with `min = 0`.

use crossbeam_utils::CachePadded;

use crate::sync::atomic::{AtomicUsize, Ordering, fence};
use crate::sync::{Mutex, lock};

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Roster {
    // Written only under `state`'s lock; read without it on the submit path.
    live: AtomicUsize,
    min: AtomicUsize,
    max: AtomicUsize,
    // Workers write it as they wait; keep it off the line submitters read `live` from.
    idle: CachePadded<AtomicUsize>,
    state: Mutex<Range>,
}

#[derive(Debug)]
struct Range {
    min: usize,
    max: usize,
    stopping: bool,
}

/// What a worker does after a wait that found no job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retire {
    /// Keep serving.
    Stay,
    /// Exit: the roster no longer counts this worker.
    Exit,
}

impl Roster {
    pub(crate) fn new(min: usize, max: usize) -> Self {
        Roster {
            live: AtomicUsize::new(0),
            min: AtomicUsize::new(min),
            max: AtomicUsize::new(max),
            idle: CachePadded::new(AtomicUsize::new(0)),
            state: Mutex::new(Range {
                min,
                max,
                stopping: false,
            }),
        }
    }

    /// Workers alive (including slots reserved for workers being spawned).
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The current `(min, max)`.
    pub(crate) fn range(&self) -> (usize, usize) {
        let range = lock(&self.state);
        (range.min, range.max)
    }

    /// Called by a submitter after queueing: whether to spawn a worker. A `true` reserved a
    /// slot; the caller spawns or gives the slot back with [`unreserve`](Self::unreserve).
    pub(crate) fn should_grow(&self, queued: impl FnOnce() -> usize) -> bool {
        // Pairs with the fence in `try_retire` (module docs).
        fence(Ordering::SeqCst);
        let live = self.live.load(Ordering::Relaxed);
        if live >= self.max.load(Ordering::Relaxed) {
            return false;
        }
        if queued() <= self.idle.load(Ordering::Relaxed) {
            return false;
        }
        self.reserve_one()
    }

    fn reserve_one(&self) -> bool {
        let range = lock(&self.state);
        let live = self.live.load(Ordering::Relaxed);
        if range.stopping || live >= range.max {
            return false;
        }
        // A new worker counts as idle until it takes its first job, so submits arriving
        // before its thread starts waiting do not spawn more.
        self.idle.fetch_add(1, Ordering::SeqCst);
        self.live.store(live + 1, Ordering::SeqCst);
        true
    }

    /// Reserves the slots needed to reach `min`; returns how many workers to spawn.
    pub(crate) fn reserve_to_min(&self) -> usize {
        let range = lock(&self.state);
        let live = self.live.load(Ordering::Relaxed);
        if range.stopping || live >= range.min {
            return 0;
        }
        self.idle.fetch_add(range.min - live, Ordering::SeqCst);
        self.live.store(range.min, Ordering::SeqCst);
        range.min - live
    }

    /// Gives back a slot whose worker could not be spawned.
    pub(crate) fn unreserve(&self) {
        let _range = lock(&self.state);
        self.idle.fetch_sub(1, Ordering::SeqCst);
        self.live.fetch_sub(1, Ordering::SeqCst);
    }

    /// Sets a new range; workers above `max` retire as they next look for work.
    pub(crate) fn set_range(&self, min: usize, max: usize) {
        let mut range = lock(&self.state);
        range.min = min;
        range.max = max;
        self.min.store(min, Ordering::SeqCst);
        self.max.store(max, Ordering::SeqCst);
    }

    /// A worker is about to block waiting for a job (a new worker starts counted).
    pub(crate) fn begin_wait(&self) {
        self.idle.fetch_add(1, Ordering::SeqCst);
    }

    /// A worker stopped waiting (it got a job, or its wait timed out).
    pub(crate) fn end_wait(&self) {
        self.idle.fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether a worker could retire after a keep-alive without work; if not, it waits for
    /// a job with no timeout at all (a resize that changes this wakes the idle workers).
    pub(crate) fn may_retire(&self) -> bool {
        self.live.load(Ordering::Relaxed) > self.min.load(Ordering::Relaxed)
    }

    /// Whether there are more workers than the maximum (after a resize): a cheap check each
    /// worker makes between jobs.
    pub(crate) fn above_max(&self) -> bool {
        self.live.load(Ordering::Relaxed) > self.max.load(Ordering::Relaxed)
    }

    /// A worker found no job for `keep_alive` (`timed_out`) or is above the maximum: retire
    /// it if the range allows, unless work arrived meanwhile (module docs).
    pub(crate) fn try_retire(&self, timed_out: bool, queue_is_empty: impl Fn() -> bool) -> Retire {
        {
            let range = lock(&self.state);
            let live = self.live.load(Ordering::Relaxed);
            let retire = (timed_out && live > range.min) || live > range.max;
            if range.stopping || !retire {
                return Retire::Stay;
            }
            self.live.store(live - 1, Ordering::SeqCst);
        }
        // Pairs with the fence in `should_grow` (module docs).
        fence(Ordering::SeqCst);
        if queue_is_empty() {
            return Retire::Exit;
        }
        let range = lock(&self.state);
        let live = self.live.load(Ordering::Relaxed);
        if range.stopping || live >= range.max {
            // Either shutdown takes over the queue, or a worker spawned for this very job
            // filled the last slot.
            return Retire::Exit;
        }
        self.live.store(live + 1, Ordering::SeqCst);
        Retire::Stay
    }

    /// Starts stopping: no more growth or retirement. Returns the workers to stop.
    pub(crate) fn stop(&self) -> usize {
        let mut range = lock(&self.state);
        range.stopping = true;
        self.live.load(Ordering::Relaxed)
    }

    /// A worker exits (it took a stop message, or it is unwinding).
    pub(crate) fn worker_exited(&self) {
        let _range = lock(&self.state);
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_stops_at_max_and_retirement_at_min() {
        let roster = Roster::new(1, 2);
        assert_eq!(roster.reserve_to_min(), 1);
        assert!(roster.should_grow(|| 5));
        assert!(!roster.should_grow(|| 5), "already at max");
        assert_eq!(roster.try_retire(true, || true), Retire::Exit);
        assert_eq!(roster.try_retire(true, || true), Retire::Stay, "at min");
        assert_eq!(roster.live(), 1);
    }

    #[test]
    fn a_retiring_worker_that_sees_a_job_stays() {
        let roster = Roster::new(0, 1);
        assert!(roster.should_grow(|| 1));
        assert_eq!(roster.try_retire(true, || false), Retire::Stay);
        assert_eq!(roster.live(), 1);
    }

    #[test]
    fn shrinking_the_range_retires_workers_above_max() {
        let roster = Roster::new(3, 3);
        assert_eq!(roster.reserve_to_min(), 3);
        roster.set_range(1, 1);
        assert!(roster.above_max());
        assert_eq!(roster.try_retire(false, || false), Retire::Exit);
        assert_eq!(roster.try_retire(false, || true), Retire::Exit);
        assert!(!roster.above_max());
        assert_eq!(roster.stop(), 1);
    }
}

/// Model: a worker retiring while a job arrives never strands the job.
#[cfg(all(test, brigade_loom))]
mod loom_models {
    use std::collections::VecDeque;

    use super::*;
    use loom::sync::Arc;

    #[test]
    fn loom_retiring_worker_racing_an_arrival_strands_nothing() {
        loom::model(|| {
            // min 0, max 1, one live idle worker whose keep-alive just expired.
            let roster = Arc::new(Roster::new(0, 1));
            assert!(
                roster.should_grow(|| 1),
                "spawned, counted idle until it takes a job"
            );
            let queue = Arc::new(Mutex::new(VecDeque::new()));

            let submitter = {
                let (roster, queue) = (roster.clone(), queue.clone());
                loom::thread::spawn(move || {
                    let queued = {
                        let mut queue = lock(&queue);
                        queue.push_back(1u8);
                        queue.len()
                    };
                    roster.should_grow(|| queued)
                })
            };

            roster.end_wait();
            let retired = roster.try_retire(true, || lock(&queue).is_empty());
            let spawned = submitter.join().unwrap();

            let stays = retired == Retire::Stay;
            let workers = usize::from(stays) + usize::from(spawned);
            assert_eq!(
                roster.live(),
                workers,
                "the roster counts exactly the serving workers"
            );
            assert!(workers <= 1, "never above max");
            assert!(workers >= 1, "the queued job has a worker to take it");
        });
    }
}
