use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one worker, cheap to read while it runs.
///
/// # Examples
///
/// ```
/// let counters = brigade_queue::WorkerCounters::default();
/// assert_eq!(counters.snapshot().claimed, 0);
/// ```
#[derive(Clone, Debug, Default)]
pub struct WorkerCounters {
    inner: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    claimed: AtomicU64,
    completed: AtomicU64,
    retried: AtomicU64,
    dead: AtomicU64,
    released: AtomicU64,
    stale: AtomicU64,
    lost_leases: AtomicU64,
    unrecorded: AtomicU64,
    store_errors: AtomicU64,
    unstopped: AtomicU64,
}

/// A snapshot of a worker's counters. Each claimed run ends as exactly one of completed,
/// retried, dead, released, stale, lost or unrecorded once the worker has stopped.
///
/// # Examples
///
/// ```
/// let mut report = brigade_queue::WorkerReport::default();
/// report.claimed = 3;
/// report.completed = 2;
/// report.dead = 1;
/// assert_eq!(report.ended(), report.claimed);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerReport {
    /// Runs claimed.
    pub claimed: u64,
    /// Runs recorded as completed.
    pub completed: u64,
    /// Runs recorded as failed, to run again later.
    pub retried: u64,
    /// Runs recorded as the job's last (failed for good, attempts used up, undecodable).
    pub dead: u64,
    /// Jobs given back unrun or stopped by the shutdown, uncharged.
    pub released: u64,
    /// Runs whose end the store refused: the lease had passed to another claim (a
    /// duplicate run, explained). Also an end refused when sent again after its first
    /// sending went unanswered, if the job has moved on too far since for the worker to
    /// tell that the first took (see `docs/durable.md`, "An end's answer is lost").
    pub stale: u64,
    /// Runs stopped because their lease was lost or could not be renewed (nothing
    /// recorded; the store redelivers the job).
    pub lost_leases: u64,
    /// Runs whose end could not be recorded before the lease ran out (the store was
    /// unreachable); the store redelivers the job.
    pub unrecorded: u64,
    /// Store calls that failed (each retried or given up as above).
    pub store_errors: u64,
    /// Runs still going when the worker returned: they ignored the shutdown's stop, so the
    /// worker gave their jobs back (counted in `released`) and did not wait for them.
    /// Anything they record later is refused as stale. Not an end of its own.
    pub unstopped: u64,
}

impl WorkerReport {
    /// Runs whose end is accounted for.
    ///
    /// # Examples
    ///
    /// See [`WorkerReport`].
    #[must_use]
    pub fn ended(&self) -> u64 {
        self.completed
            + self.retried
            + self.dead
            + self.released
            + self.stale
            + self.lost_leases
            + self.unrecorded
    }
}

impl std::ops::AddAssign for WorkerReport {
    fn add_assign(&mut self, other: Self) {
        self.claimed += other.claimed;
        self.completed += other.completed;
        self.retried += other.retried;
        self.dead += other.dead;
        self.released += other.released;
        self.stale += other.stale;
        self.lost_leases += other.lost_leases;
        self.unrecorded += other.unrecorded;
        self.store_errors += other.store_errors;
        self.unstopped += other.unstopped;
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Count {
    Claimed,
    Completed,
    Retried,
    Dead,
    Released,
    Stale,
    LostLease,
    Unrecorded,
    StoreError,
    Unstopped,
}

impl WorkerCounters {
    pub(crate) fn add(&self, count: Count, n: u64) {
        let counter = match count {
            Count::Claimed => &self.inner.claimed,
            Count::Completed => &self.inner.completed,
            Count::Retried => &self.inner.retried,
            Count::Dead => &self.inner.dead,
            Count::Released => &self.inner.released,
            Count::Stale => &self.inner.stale,
            Count::LostLease => &self.inner.lost_leases,
            Count::Unrecorded => &self.inner.unrecorded,
            Count::StoreError => &self.inner.store_errors,
            Count::Unstopped => &self.inner.unstopped,
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters now.
    ///
    /// # Examples
    ///
    /// See [`WorkerCounters`].
    #[must_use]
    pub fn snapshot(&self) -> WorkerReport {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        WorkerReport {
            claimed: read(&self.inner.claimed),
            completed: read(&self.inner.completed),
            retried: read(&self.inner.retried),
            dead: read(&self.inner.dead),
            released: read(&self.inner.released),
            stale: read(&self.inner.stale),
            lost_leases: read(&self.inner.lost_leases),
            unrecorded: read(&self.inner.unrecorded),
            store_errors: read(&self.inner.store_errors),
            unstopped: read(&self.inner.unstopped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_reports_sums_every_count() {
        let counters = WorkerCounters::default();
        for count in [
            Count::Claimed,
            Count::Completed,
            Count::Retried,
            Count::Dead,
            Count::Released,
            Count::Stale,
            Count::LostLease,
            Count::Unrecorded,
            Count::StoreError,
            Count::Unstopped,
        ] {
            counters.add(count, 1);
        }
        let one = counters.snapshot();
        let mut sum = WorkerReport::default();
        sum += one;
        sum += one;
        assert_eq!(
            sum,
            WorkerReport {
                claimed: 2,
                completed: 2,
                retried: 2,
                dead: 2,
                released: 2,
                stale: 2,
                lost_leases: 2,
                unrecorded: 2,
                store_errors: 2,
                unstopped: 2,
            }
        );
    }
}
