//! The worker roster: how many worker tasks live, how many run a job, and the range the
//! pool keeps them in. Guarded by the pool's lock, like the queue it is measured against.

use std::time::Duration;

use brigade_core::ConfigError;
use brigade_core::backend::WorkerRange;

/// See the module docs.
pub(crate) struct Roster {
    live: usize,
    busy: usize,
    min: usize,
    max: usize,
    keep_alive: Duration,
}

/// What an idle worker does.
pub(crate) enum IdleWait {
    /// Wait for a job as long as it takes: the roster is at its minimum.
    Forever,
    /// Wait this long, then exit if still idle and above the minimum.
    KeepAlive(Duration),
}

impl Roster {
    pub(crate) fn new(min: usize, max: usize, keep_alive: Duration) -> Self {
        Roster {
            live: 0,
            busy: 0,
            min,
            max,
            keep_alive,
        }
    }

    pub(crate) fn live(&self) -> usize {
        self.live
    }

    pub(crate) fn busy(&self) -> usize {
        self.busy
    }

    /// Whether the pool may run two jobs at once.
    pub(crate) fn may_run_two(&self) -> bool {
        self.live > 1 || self.max > 1
    }

    /// Whether another worker should start for `queued` jobs: more are queued than idle
    /// workers will take, and the maximum allows one.
    pub(crate) fn wants_worker_for(&self, queued: usize) -> bool {
        self.live - self.busy < queued && self.live < self.max
    }

    /// Whether another worker should start to reach the minimum.
    pub(crate) fn below_min(&self) -> bool {
        self.live < self.min
    }

    /// Counts a worker about to be spawned.
    pub(crate) fn add(&mut self) {
        self.live += 1;
    }

    /// Takes a worker off the roster if it is above the maximum (after a resize); `true`
    /// when it is to exit.
    pub(crate) fn retire_if_above_max(&mut self) -> bool {
        let above = self.live > self.max;
        if above {
            self.live -= 1;
        }
        above
    }

    /// Takes an idle worker whose keep-alive ran out off the roster if it is above the
    /// minimum; `true` when it is to exit.
    pub(crate) fn retire_if_above_min(&mut self) -> bool {
        let above = self.live > self.min;
        if above {
            self.live -= 1;
        }
        above
    }

    /// Takes a worker off the roster for good (the pool is closed and drained).
    pub(crate) fn retire(&mut self) {
        self.live -= 1;
    }

    /// How an idle worker waits.
    pub(crate) fn idle_wait(&self) -> IdleWait {
        if self.live > self.min {
            IdleWait::KeepAlive(self.keep_alive)
        } else {
            IdleWait::Forever
        }
    }

    /// A worker took a job.
    pub(crate) fn job_started(&mut self) {
        self.busy += 1;
    }

    /// A worker's job left it (ended, delayed or parked).
    pub(crate) fn job_left(&mut self) {
        self.busy -= 1;
    }

    /// Moves the range; workers above a lower maximum leave as they come idle.
    pub(crate) fn resize(&mut self, min: usize, max: usize) -> Result<(), ConfigError> {
        WorkerRange { min, max }.validate(self.keep_alive)?;
        self.min = min;
        self.max = max;
        Ok(())
    }
}
