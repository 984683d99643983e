//! Weighted concurrency: at most W units of work run at once.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::PoisonError;
use std::time::Instant;

use brigade_core::hooks::{Admission, Middleware, QueueState, Start};
use brigade_core::{ConfigError, Rejection};

use crate::sync::{Arc, Mutex};

type WeightFn<J> = dyn Fn(&J) -> u64 + Send + Sync;

/// A weighted semaphore on job starts (Go's `golang.org/x/sync/semaphore`): each job
/// weighs some units, and at most `capacity` units run at once.
///
/// A job that does not fit waits ([`Start::WhenCapacityFrees`]) off the worker until a
/// running job releases its units. A job heavier than the whole capacity could never run:
/// it is refused at submit with a [`Rejection`] that says so, and comes back to the caller.
/// As with Go's semaphore, waiters are served first in, first out: while a job waits, later
/// jobs wait behind it, and a run's end starts waiters from the front until one does not
/// fit, so a heavy job is not starved by a stream of light ones. The order is kept per
/// pool; pools sharing one limit each keep their own.
///
/// # The weight must not change while the job runs
///
/// **Compute the weight from something the job's `run` does not change** (a size fixed
/// when the job is made, not the length of a batch the run drains). The pool hands the
/// limit the job, not the run, both when it grants a start and when the run ends, and by
/// then `run(&mut self)` may have changed what the weight function reads: the limit can
/// weigh the job again, but cannot tell which run's grant is ending.
///
/// So the limit keeps the grants of the running jobs, and a run's end gives back the grant
/// of the weight the job has now if one is held, otherwise the smallest one held. With a
/// weight that stays put this is exactly the run's own grant. With one the run changed,
/// no unit outlives the runs that hold units (once none runs, none is in use) and the count
/// never goes below zero, but while runs overlap it may be off by the change: fewer units
/// free than there are (a run that shrank), or, when a run grew to exactly the weight of
/// another running job, that job's units freed early.
///
/// # Order among layers
///
/// Add it before the rate limits ([`RateLimit`](crate::RateLimit),
/// [`KeyedRateLimit`](crate::KeyedRateLimit)), which go last. A start stops at the first
/// layer that does not grant it, and the layers before that one are
/// [released](brigade_core::hooks::Layers): units taken here come back when a later rate
/// limit defers the start, but a rate limit's token, spent when it grants, would be wasted
/// if this limit, after it, parked the job.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use brigade_core::hooks::{Admission, Middleware, QueueState, Start};
/// use brigade_middleware::WeightedLimit;
///
/// // 100 units; an item weighs its size in KiB, at least 1 (the seed's rule).
/// let limit = WeightedLimit::new(100, |size: &u64| (size / 1024).max(1))?;
/// let now = Instant::now();
/// let start = |job: &u64| Middleware::<u64, ()>::before_start(&limit, job, now);
/// assert_eq!(start(&(60 * 1024)), Start::Now);
/// assert_eq!(start(&(50 * 1024)), Start::WhenCapacityFrees); // 60 + 50 > 100
/// Middleware::<u64, ()>::release(&limit, &(60 * 1024));
/// assert_eq!(start(&(50 * 1024)), Start::Now);
///
/// let queue = QueueState { len: 0, capacity: 8 };
/// assert!(matches!(
///     Middleware::<u64, ()>::admit(&limit, &(200 * 1024), queue),
///     Admission::Reject(_)
/// ));
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub struct WeightedLimit<J> {
    inner: Arc<Weighted<J>>,
}

struct Weighted<J> {
    capacity: u64,
    grants: Mutex<Grants>,
    weight: Box<WeightFn<J>>,
}

/// The grants of the running jobs: their units in all, and how many grants of each weight
/// (so a run's end can give back a grant that was made, not a weight computed anew).
#[derive(Default)]
struct Grants {
    used: u64,
    by_weight: BTreeMap<u64, u64>,
}

impl Grants {
    fn take(&mut self, weight: u64, capacity: u64) -> bool {
        match self.used.checked_add(weight) {
            Some(total) if total <= capacity => {
                self.used = total;
                *self.by_weight.entry(weight).or_insert(0) += 1;
                true
            }
            _ => false,
        }
    }

    /// Gives back the grant of `weight` if one is held, otherwise the smallest one held:
    /// the job may have changed during its run, and the smallest grant is never more than
    /// the run's own, so a changed job never frees more units than it took (unless it now
    /// weighs exactly what another running job took). Nothing held: nothing to give back.
    fn give_back(&mut self, weight: u64) {
        let held = if self.by_weight.contains_key(&weight) {
            weight
        } else {
            match self.by_weight.keys().next() {
                Some(&smallest) => smallest,
                None => return,
            }
        };
        if let Some(count) = self.by_weight.get_mut(&held) {
            *count -= 1;
            if *count == 0 {
                self.by_weight.remove(&held);
            }
            self.used -= held;
        }
    }
}

impl<J: 'static> WeightedLimit<J> {
    /// At most `capacity` units at once, a job weighing `weight(job)` units (at least one:
    /// a weight of zero counts as one, so no job passes the limit for free). `weight` must
    /// give the same answer at a run's end as at its start: see
    /// [the weight must not change](Self#the-weight-must-not-change-while-the-job-runs).
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] for a capacity of zero.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_middleware::WeightedLimit::new(0, |_: &()| 1).is_err());
    /// ```
    pub fn new(
        capacity: u64,
        weight: impl Fn(&J) -> u64 + Send + Sync + 'static,
    ) -> Result<Self, ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::OutOfRange {
                setting: "weighted capacity",
                expected: "at least 1 unit",
            });
        }
        Ok(WeightedLimit {
            inner: Arc::new(Weighted {
                capacity,
                grants: Mutex::new(Grants::default()),
                weight: Box::new(weight),
            }),
        })
    }

    /// The units that may run at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let limit = brigade_middleware::WeightedLimit::new(10, |_: &()| 1)?;
    /// assert_eq!(limit.capacity(), 10);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.inner.capacity
    }

    /// The units taken by running jobs now.
    ///
    /// # Examples
    ///
    /// ```
    /// let limit = brigade_middleware::WeightedLimit::new(10, |n: &u64| *n)?;
    /// assert!(limit.try_acquire(&4));
    /// assert_eq!(limit.in_use(), 4);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn in_use(&self) -> u64 {
        self.inner.grants().used
    }

    /// Takes `job`'s units if they fit now.
    ///
    /// # Examples
    ///
    /// ```
    /// let limit = brigade_middleware::WeightedLimit::new(10, |n: &u64| *n)?;
    /// assert!(limit.try_acquire(&7));
    /// assert!(!limit.try_acquire(&4));
    /// limit.release_units(&7);
    /// assert!(limit.try_acquire(&4));
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn try_acquire(&self, job: &J) -> bool {
        let weighted = &*self.inner;
        // Weighed outside the lock: the user's function may be slow, or panic.
        let weight = weighted.weight_of(job);
        weighted.grants().take(weight, weighted.capacity)
    }

    /// Gives back the units a start of `job` took: the grant of `job`'s weight, or, if the
    /// job weighs something no running job was granted (its run changed it), the smallest
    /// grant held (see
    /// [the weight must not change](Self#the-weight-must-not-change-while-the-job-runs)).
    /// With no grant held it gives back nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let limit = brigade_middleware::WeightedLimit::new(10, |n: &u64| *n)?;
    /// assert!(limit.try_acquire(&3));
    /// limit.release_units(&3);
    /// assert_eq!(limit.in_use(), 0);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn release_units(&self, job: &J) {
        let weighted = &*self.inner;
        let weight = weighted.weight_of(job);
        weighted.grants().give_back(weight);
    }
}

impl<J: Send + Sync + 'static, E> Middleware<J, E> for WeightedLimit<J> {
    fn name(&self) -> &'static str {
        "weighted"
    }

    /// No `after_run`: it never reads when a run started.
    fn times_runs(&self) -> bool {
        false
    }

    /// No `after_run`: successful runs need not come here.
    fn sees_successes(&self) -> bool {
        false
    }

    /// No `deadline`: runs start without asking it for one.
    fn sets_deadlines(&self) -> bool {
        false
    }

    fn admit(&self, job: &J, _queue: QueueState) -> Admission {
        let weight = self.inner.weight_of(job);
        if weight > self.inner.capacity {
            Admission::Reject(Rejection::new(format!(
                "job weight {weight} exceeds the limit of {} units",
                self.inner.capacity
            )))
        } else {
            Admission::Accept
        }
    }

    fn before_start(&self, job: &J, _now: Instant) -> Start {
        if self.try_acquire(job) {
            Start::Now
        } else {
            Start::WhenCapacityFrees
        }
    }

    fn release(&self, job: &J) {
        self.release_units(job);
    }
}

impl<J> Weighted<J> {
    fn grants(&self) -> crate::sync::MutexGuard<'_, Grants> {
        // Nothing panics while the lock is held (the weight function runs outside it).
        self.grants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A job's weight, at least one unit: a job weighing nothing would pass the limit
    /// however many run, so an extreme weight saturates toward the strict side.
    fn weight_of(&self, job: &J) -> u64 {
        (self.weight)(job).max(1)
    }
}

impl<J> Clone for WeightedLimit<J> {
    fn clone(&self) -> Self {
        WeightedLimit {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<J> fmt::Debug for WeightedLimit<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeightedLimit")
            .field("capacity", &self.inner.capacity)
            .field("in_use", &self.inner.grants().used)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, brigade_loom))]
mod loom_model {
    use super::*;

    /// Two starts race for units that fit only one of them; then both release.
    #[test]
    fn loom_weighted_never_overcommits() {
        loom::model(|| {
            let limit = WeightedLimit::new(10, |w: &u64| *w).unwrap();
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let limit = limit.clone();
                    loom::thread::spawn(move || {
                        let took = limit.try_acquire(&6);
                        assert!(limit.in_use() <= 10);
                        if took {
                            limit.release_units(&6);
                        }
                        took
                    })
                })
                .collect();
            let granted = threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .filter(|took| *took)
                .count();
            assert!(granted >= 1);
            assert_eq!(limit.in_use(), 0);
        });
    }
}

#[cfg(all(test, not(brigade_loom)))]
mod tests {
    use super::*;
    use brigade_core::hooks::Layers;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn units(running: &[u64]) -> u64 {
        running.iter().map(|weight| (*weight).max(1)).sum()
    }

    proptest! {
        /// Starts and ends in any order: the units in use never exceed the capacity and
        /// always equal the weights of the running jobs.
        #[test]
        fn weighted_never_exceeds_its_capacity(
            capacity in 1u64..50,
            ops in proptest::collection::vec((any::<bool>(), 0u64..60), 0..300),
        ) {
            let limit = WeightedLimit::new(capacity, |w: &u64| *w).unwrap();
            let layers = Layers::<u64, ()>::new().with(limit.clone());
            let now = Instant::now();
            let queue = QueueState { len: 0, capacity: 1 };
            let mut running: Vec<u64> = Vec::new();
            for (start, value) in ops {
                if start {
                    let weight = value;
                    match layers.admit(&weight, queue).0 {
                        Admission::Reject(_) => prop_assert!(weight > capacity),
                        _ => {
                            prop_assert!(weight <= capacity);
                            if layers.before_start(&weight, now) == Start::Now {
                                running.push(weight);
                            } else {
                                // A zero weight takes one unit.
                                prop_assert!(units(&running) + weight.max(1) > capacity);
                            }
                        }
                    }
                } else if !running.is_empty() {
                    let job = running.swap_remove(value as usize % running.len());
                    layers.release(&job);
                }
                prop_assert!(limit.in_use() <= capacity);
                prop_assert_eq!(limit.in_use(), units(&running));
            }
        }
    }

    proptest! {
        /// Jobs whose weight changes between their start and their end (a run that drains
        /// or grows what the weight reads): the count stays within the capacity, and once
        /// every run has ended no unit is left in use.
        #[test]
        fn changed_weights_leave_no_units_behind(
            capacity in 1u64..50,
            ops in proptest::collection::vec((any::<bool>(), 0u64..60, 0u64..60), 0..300),
        ) {
            let limit = WeightedLimit::new(capacity, |w: &u64| *w).unwrap();
            let mut running: Vec<u64> = Vec::new();
            for (start, value, weight_at_end) in ops {
                if start {
                    if limit.try_acquire(&value) {
                        running.push(weight_at_end);
                    }
                } else if !running.is_empty() {
                    let job = running.swap_remove(value as usize % running.len());
                    limit.release_units(&job);
                }
                prop_assert!(limit.in_use() <= capacity);
            }
            for job in running {
                limit.release_units(&job);
            }
            prop_assert_eq!(limit.in_use(), 0);
        }
    }

    #[test]
    fn a_changed_job_gives_back_a_grant_that_was_made() {
        let limit = WeightedLimit::new(10, |w: &u64| *w).unwrap();
        assert!(limit.try_acquire(&5));
        assert!(limit.try_acquire(&3));
        // The 5-unit job drained to 1: no 1-unit grant is held, the smallest (3) comes
        // back, which is no more than the run took.
        limit.release_units(&1);
        assert_eq!(limit.in_use(), 5);
        // The other job ends weighing 3, held no longer: the 5 comes back.
        limit.release_units(&3);
        assert_eq!(limit.in_use(), 0);

        assert!(limit.try_acquire(&2));
        assert!(limit.try_acquire(&5));
        // The 2-unit job grew to 8: the 5-unit job keeps its units.
        limit.release_units(&8);
        assert_eq!(limit.in_use(), 5);
        limit.release_units(&5);
        assert_eq!(limit.in_use(), 0);
        // Nothing held: nothing to give back, and no count below zero.
        limit.release_units(&4);
        assert_eq!(limit.in_use(), 0);
    }

    #[test]
    fn concurrent_starts_never_exceed_the_capacity() {
        let limit = WeightedLimit::new(10, |w: &u64| *w).unwrap();
        let peak = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for thread in 0..4u64 {
                let (limit, peak) = (&limit, &peak);
                scope.spawn(move || {
                    for i in 0..20_000u64 {
                        let weight = (i + thread) % 4 + 1;
                        if limit.try_acquire(&weight) {
                            peak.fetch_max(limit.in_use(), Ordering::Relaxed);
                            limit.release_units(&weight);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Relaxed) <= 10);
        assert_eq!(limit.in_use(), 0);
    }
}
