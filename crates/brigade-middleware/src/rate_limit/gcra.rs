use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use brigade_core::ConfigError;
use brigade_core::hooks::{Middleware, Start};

use super::rate::Rate;
use crate::sync::{Arc, AtomicU64, Ordering};

/// The longest interval or burst tolerance a limiter keeps, in nanoseconds.
pub(crate) const MAX_NANOS: u64 = u64::MAX / 2;

/// The arithmetic of the Generic Cell Rate Algorithm, on nanoseconds since an epoch.
///
/// The state is one number, the theoretical arrival time (TAT) of the next start. A start
/// at `now` conforms when `max(tat, now) - now <= tolerance`, where the tolerance
/// `(burst - 1) · interval` lets `burst` starts through at once; it then moves the TAT one
/// interval on. Otherwise the start must wait until `max(tat, now) - tolerance`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GcraParams {
    pub(crate) interval: u64,
    pub(crate) tolerance: u64,
}

impl GcraParams {
    pub(crate) fn new(rate: Rate, burst: u32, setting: &'static str) -> Result<Self, ConfigError> {
        rate.validate(setting)?;
        if burst == 0 {
            return Err(ConfigError::OutOfRange {
                setting: "burst",
                expected: "at least 1",
            });
        }
        // Both saturate at half the clock's range (about 292 years), toward the strict
        // side: a TAT that saturates at `u64::MAX` then always lies more than `tolerance`
        // ahead, so it refuses. Saturating both at `u64::MAX` would admit everything.
        let interval = u64::try_from(rate.interval().as_nanos())
            .unwrap_or(u64::MAX)
            .min(MAX_NANOS);
        Ok(GcraParams {
            interval,
            tolerance: interval.saturating_mul(u64::from(burst - 1)).min(MAX_NANOS),
        })
    }

    /// The new TAT if a start at `now` conforms, or the earliest time it would.
    pub(crate) fn step(&self, tat: u64, now: u64) -> Result<u64, u64> {
        let start = tat.max(now);
        if start - now > self.tolerance {
            Err(start - self.tolerance)
        } else {
            Ok(start.saturating_add(self.interval))
        }
    }
}

/// Nanoseconds since `epoch`, saturating (a caller whose `now` lags the first one seen
/// counts as at the epoch). In 64-bit arithmetic: every job's start pays for it.
pub(crate) fn nanos_since(epoch: Instant, now: Instant) -> u64 {
    let since = now.saturating_duration_since(epoch);
    since
        .as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(since.subsec_nanos()))
}

/// A GCRA rate limit on job starts, with bursts: a cheap cloneable handle shared by all
/// the workers of a pool, and by several pools when each gets a clone.
///
/// As a layer it answers [`Start::NotBefore`] for a start that would exceed the rate: the
/// job waits in the backend's delay queue, never dropped, and no worker sleeps. The jobs it
/// defers come back one interval apart, in the order it refused them, each at its own
/// turn, rather than all at the next time a start conforms (where one would go through
/// and the rest be sent back again). Lock-free: the state is one `AtomicU64` updated by
/// compare-and-swap, and the last turn handed out another.
///
/// Add it at the very end, after every other layer that decides starts (a
/// [`WeightedLimit`](crate::WeightedLimit) included; see
/// [`Layers`](brigade_core::hooks::Layers)): a start it grants is spent even if a later
/// layer defers the job, while a layer before it gets back what it took when this one
/// defers.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use brigade_core::hooks::{Middleware, Start};
/// use brigade_middleware::{Rate, RateLimit};
///
/// let limit = RateLimit::builder(Rate::per_second(10)).burst(2).build()?;
/// let now = Instant::now();
/// assert_eq!(Middleware::<(), ()>::before_start(&limit, &(), now), Start::Now);
/// assert_eq!(Middleware::<(), ()>::before_start(&limit, &(), now), Start::Now);
/// // The burst is spent: the third start waits one interval.
/// assert!(matches!(
///     Middleware::<(), ()>::before_start(&limit, &(), now),
///     Start::NotBefore(at) if at >= now + Duration::from_millis(100)
/// ));
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RateLimit {
    inner: Arc<Gcra>,
}

struct Gcra {
    params: GcraParams,
    rate: Rate,
    burst: u32,
    epoch: OnceLock<Instant>,
    tat: AtomicU64,
    /// The latest time handed to a start this limiter deferred (see
    /// [`RateLimit::wait_turn`]), in nanoseconds since the epoch.
    last_turn: AtomicU64,
}

/// Settings of a [`RateLimit`].
///
/// # Examples
///
/// ```
/// use brigade_middleware::{Rate, RateLimit};
/// let limit = RateLimit::builder(Rate::per_minute(600)).burst(10).build()?;
/// assert_eq!(limit.burst(), 10);
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct RateLimitBuilder {
    rate: Rate,
    burst: u32,
}

impl RateLimit {
    /// Starts a limiter at `rate` with a burst of 1 (evenly spaced starts, as the seed's
    /// ticker).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{Rate, RateLimit};
    /// assert!(RateLimit::builder(Rate::per_second(0)).build().is_err());
    /// ```
    pub fn builder(rate: Rate) -> RateLimitBuilder {
        RateLimitBuilder { rate, burst: 1 }
    }

    /// Takes a start at `now` if the rate allows it; otherwise the earliest time it would.
    ///
    /// # Errors
    ///
    /// The instant at which a start would conform. Nothing is taken then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use brigade_middleware::{Rate, RateLimit};
    /// let limit = RateLimit::builder(Rate::per_second(2)).build()?;
    /// let now = Instant::now();
    /// assert!(limit.try_acquire(now).is_ok());
    /// assert_eq!(limit.try_acquire(now), Err(now + Duration::from_millis(500)));
    /// assert!(limit.try_acquire(now + Duration::from_millis(500)).is_ok());
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn try_acquire(&self, now: Instant) -> Result<(), Instant> {
        let gcra = &*self.inner;
        let epoch = *gcra.epoch.get_or_init(|| now);
        let now_ns = nanos_since(epoch, now);
        let mut tat = gcra.tat.load(Ordering::Acquire);
        loop {
            match gcra.params.step(tat, now_ns) {
                Err(at) => {
                    return Err(brigade_core::instant_after(epoch, Duration::from_nanos(at)));
                }
                Ok(next) => match gcra.tat.compare_exchange_weak(
                    tat,
                    next,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return Ok(()),
                    Err(current) => tat = current,
                },
            }
        }
    }

    /// The time a start refused at `now` comes back to ask again: the first free time
    /// after those already handed to deferred starts, one interval apart, and never
    /// before `at`, the earliest a start could conform. Deferred starts then come back one
    /// at a time, in the order they were refused, at the rate the limit lets them through;
    /// all sent back to `at` instead, every one would wake at once, one would go through,
    /// and the rest would be sent back again: N(N+1)/2 asks for N waiting starts, and an
    /// early waiter no likelier to go first than a late one. A turn is a time to ask, not
    /// a reservation: whoever asks first at a free time takes it.
    fn wait_turn(&self, at: Instant) -> Instant {
        let gcra = &*self.inner;
        let epoch = *gcra.epoch.get_or_init(|| at);
        let at_ns = nanos_since(epoch, at);
        let interval = gcra.params.interval;
        let previous = gcra
            .last_turn
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(last.saturating_add(interval).max(at_ns).min(MAX_NANOS))
            })
            .unwrap_or_else(|last| last);
        let turn = previous.saturating_add(interval).max(at_ns).min(MAX_NANOS);
        brigade_core::instant_after(epoch, Duration::from_nanos(turn))
    }

    /// The rate it enforces.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{Rate, RateLimit};
    /// let limit = RateLimit::builder(Rate::per_second(3)).build()?;
    /// assert_eq!(limit.rate(), Rate::per_second(3));
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn rate(&self) -> Rate {
        self.inner.rate
    }

    /// How many starts may go through at once after a quiet spell.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{Rate, RateLimit};
    /// assert_eq!(RateLimit::builder(Rate::per_second(3)).build()?.burst(), 1);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn burst(&self) -> u32 {
        self.inner.burst
    }

    #[cfg(test)]
    pub(crate) fn with_epoch(self, epoch: Instant) -> Self {
        let _ = self.inner.epoch.set(epoch);
        self
    }
}

impl RateLimitBuilder {
    /// How many starts may go through at once after a quiet spell (at least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{Rate, RateLimit};
    /// assert!(RateLimit::builder(Rate::per_second(3)).burst(0).build().is_err());
    /// ```
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// Builds the limiter.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRate`] for a zero, negative, infinite or NaN rate (or a zero
    /// period); [`ConfigError::OutOfRange`] for a zero burst.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::ConfigError;
    /// use brigade_middleware::{Rate, RateLimit};
    /// assert!(matches!(
    ///     RateLimit::builder(Rate::per_second(f64::NAN)).build(),
    ///     Err(ConfigError::InvalidRate { .. })
    /// ));
    /// assert!(RateLimit::builder(Rate::per_second(-1)).build().is_err());
    /// ```
    pub fn build(self) -> Result<RateLimit, ConfigError> {
        let params = GcraParams::new(self.rate, self.burst, "rate limit")?;
        Ok(RateLimit {
            inner: Arc::new(Gcra {
                params,
                rate: self.rate,
                burst: self.burst,
                epoch: OnceLock::new(),
                tat: AtomicU64::new(0),
                last_turn: AtomicU64::new(0),
            }),
        })
    }
}

impl<J, E> Middleware<J, E> for RateLimit {
    fn name(&self) -> &'static str {
        "rate-limit"
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

    /// No `admit`: submits need not come here.
    fn sees_submits(&self) -> bool {
        false
    }

    /// A start's token is spent when it is granted: nothing to give back when the run ends.
    fn holds_until_release(&self) -> bool {
        false
    }

    fn before_start(&self, _job: &J, now: Instant) -> Start {
        match self.try_acquire(now) {
            Ok(()) => Start::Now,
            Err(at) => Start::NotBefore(self.wait_turn(at)),
        }
    }
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("rate", &self.inner.rate)
            .field("burst", &self.inner.burst)
            .finish()
    }
}

#[cfg(all(test, brigade_loom))]
mod loom_model {
    use super::*;

    /// Three workers start at one instant against a burst of 2: exactly two get through.
    #[test]
    fn loom_gcra_cas_grants_exactly_the_burst() {
        let now = Instant::now();
        loom::model(move || {
            let limit = RateLimit::builder(Rate::per_minute(1))
                .burst(2)
                .build()
                .unwrap()
                .with_epoch(now);
            let threads: Vec<_> = (0..3)
                .map(|_| {
                    let limit = limit.clone();
                    loom::thread::spawn(move || limit.try_acquire(now).is_ok())
                })
                .collect();
            let granted = threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .filter(|ok| *ok)
                .count();
            assert_eq!(granted, 2);
        });
    }
}

#[cfg(all(test, not(brigade_loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// In any window of length `w`, at most `w / interval + burst` starts are granted.
        #[test]
        fn never_admits_more_than_rate_times_window_plus_burst(
            per_second in 1u32..1000,
            burst in 1u32..20,
            gaps_us in proptest::collection::vec(0u64..20_000, 1..300),
        ) {
            let base = Instant::now();
            let limit = RateLimit::builder(Rate::per_second(per_second))
                .burst(burst)
                .build()
                .unwrap()
                .with_epoch(base);
            let mut at = base;
            let mut granted = Vec::new();
            for gap in gaps_us {
                at += Duration::from_micros(gap);
                match limit.try_acquire(at) {
                    Ok(()) => granted.push(at),
                    Err(retry_at) => prop_assert!(retry_at > at),
                }
            }
            let interval = Rate::per_second(per_second).interval().as_nanos() as f64;
            for (i, start) in granted.iter().enumerate() {
                for (j, end) in granted.iter().enumerate().skip(i) {
                    let window = (*end - *start).as_nanos() as f64;
                    let count = (j - i + 1) as f64;
                    prop_assert!(
                        count <= window / interval + f64::from(burst),
                        "{count} starts in {window} ns at interval {interval}, burst {burst}"
                    );
                }
            }
        }

        /// A start refused at `now` is granted at the instant the limiter named.
        #[test]
        fn a_deferred_start_conforms_at_its_time(per_second in 1u32..100, burst in 1u32..5) {
            let base = Instant::now();
            let limit = RateLimit::builder(Rate::per_second(per_second)).burst(burst).build().unwrap().with_epoch(base);
            for _ in 0..burst {
                prop_assert!(limit.try_acquire(base).is_ok());
            }
            let at = limit.try_acquire(base).unwrap_err();
            prop_assert!(limit.try_acquire(at).is_ok());
        }
    }

    #[test]
    fn clones_share_one_limit() {
        let base = Instant::now();
        let a = RateLimit::builder(Rate::per_second(1))
            .build()
            .unwrap()
            .with_epoch(base);
        let b = a.clone();
        assert!(a.try_acquire(base).is_ok());
        assert!(b.try_acquire(base).is_err());
    }

    #[test]
    fn concurrent_workers_never_exceed_the_burst_at_one_instant() {
        let now = Instant::now();
        let limit = RateLimit::builder(Rate::per_minute(1))
            .burst(50)
            .build()
            .unwrap()
            .with_epoch(now);
        let granted = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        if limit.try_acquire(now).is_ok() {
                            granted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(granted.load(Ordering::Relaxed), 50);
    }

    #[test]
    fn invalid_rates_are_build_errors() {
        for rate in [
            Rate::per_second(0),
            Rate::per_second(-3),
            Rate::per_second(f64::NAN),
            Rate::per_second(f64::INFINITY),
            Rate::new(1, Duration::ZERO),
        ] {
            assert!(
                matches!(
                    RateLimit::builder(rate).build(),
                    Err(ConfigError::InvalidRate { .. })
                ),
                "{rate:?}"
            );
        }
    }
}
