//! Weighted concurrency: at most W units of work run at once.

use std::fmt;
use std::time::Instant;

use brigade_core::hooks::{Admission, Middleware, QueueState, Start};
use brigade_core::{ConfigError, Rejection};

use crate::sync::{Arc, AtomicU64, Ordering};

type WeightFn<J> = dyn Fn(&J) -> u64 + Send + Sync;

/// A weighted semaphore on job starts (Go's `golang.org/x/sync/semaphore`): each job
/// weighs some units, and at most `capacity` units run at once.
///
/// A job that does not fit waits ([`Start::WhenCapacityFrees`]) off the worker until a
/// running job releases its units. A job heavier than the whole capacity could never run:
/// it is refused at submit with a [`Rejection`] that says so, and comes back to the caller.
///
/// The weight function must be a pure function of the job: the units taken at start are
/// computed again at release. The used-units counter is one atomic updated by
/// compare-and-swap. As with Go's semaphore, waiters are served first in, first out: while
/// a job waits, later jobs wait behind it, and a run's end starts waiters from the front
/// until one does not fit, so a heavy job is not starved by a stream of light ones. The
/// order is kept per pool; pools sharing one limit each keep their own.
///
/// Add it last among the layers that decide starts (see
/// [`Layers`](brigade_core::hooks::Layers)); units a later layer's deferral would
/// waste are released, but a rate limit's token is not.
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
    used: AtomicU64,
    weight: Box<WeightFn<J>>,
}

impl<J: 'static> WeightedLimit<J> {
    /// At most `capacity` units at once, a job weighing `weight(job)` units (at least one:
    /// a weight of zero counts as one, so no job passes the limit for free).
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
                used: AtomicU64::new(0),
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
        self.inner.used.load(Ordering::Acquire)
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
        let weight = weighted.weight_of(job);
        weighted
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(weight)
                    .filter(|&total| total <= weighted.capacity)
            })
            .is_ok()
    }

    /// Gives back `job`'s units.
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
        let released = weighted
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_sub(weight)
            });
        debug_assert!(
            released.is_ok(),
            "released more units than were taken: is the weight function pure?"
        );
        if released.is_err() {
            // An impure weight function: never wrap below zero, which would block every
            // later start.
            weighted.used.store(0, Ordering::Release);
        }
    }
}

impl<J: Send + Sync + 'static, E> Middleware<J, E> for WeightedLimit<J> {
    fn name(&self) -> &'static str {
        "weighted"
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
            .field("in_use", &self.inner.used.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, brigade_loom))]
mod loom_model {
    use super::*;

    /// Two starts race for units that fit only one of them; then both release.
    #[test]
    fn loom_weighted_cas_never_overcommits() {
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
