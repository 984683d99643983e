use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use brigade_core::ConfigError;
use brigade_core::hooks::{Middleware, Start};

use super::gcra::{GcraParams, MAX_NANOS, nanos_since};
use super::rate::Rate;

/// Independent locks over the key space, so workers starting jobs of different keys
/// rarely wait on each other.
const SHARDS: usize = 16;

/// A shard is swept of idle keys when it has grown to twice its size after the last
/// sweep (and to at least this many keys), which keeps sweeping amortised O(1) per start.
const MIN_SWEEP_LEN: usize = 64;

/// A GCRA rate limit per key: each key (a tenant, a host, an SMTP server) gets its own
/// rate and burst, from a key function on the job.
///
/// Memory stays bounded by the keys active recently: sweeps (run as a shard grows, or by
/// [`evict_idle`](Self::evict_idle)) forget the keys whose theoretical arrival time has
/// passed at the sweep's `now`, and forgetting never lets a key start sooner than its rate
/// allows. A key's state matters only to a caller whose `now` is before its theoretical
/// arrival time, and a caller may present a `now` earlier than the sweep's (a worker that
/// read its clock just before another worker's start swept the shard, or a sweep given a
/// later time). So a forgotten key is not remembered as never seen: the latest theoretical
/// arrival time a shard forgot is where every key it does not hold starts from. For a
/// caller whose `now` is at or after that time, which is every caller that read its clock
/// after the sweep's, a forgotten key decides exactly as if it were remembered (and a new
/// key as if never seen); for one from before it, a key decides as if remembered or more
/// strictly, waiting at most until that time, which the sweep's `now` had reached.
///
/// A key's deferred jobs come back one interval apart, in the order they were refused, as
/// [`RateLimit`](crate::RateLimit)'s do.
///
/// A cheap cloneable handle, like [`RateLimit`](crate::RateLimit): clones share the keys.
/// Like it, add it at the very end, after every other layer that decides starts (a
/// [`WeightedLimit`](crate::WeightedLimit) included): a start it grants is spent even if a
/// later layer defers the job.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use brigade_core::hooks::{Middleware, Start};
/// use brigade_middleware::{KeyedRateLimit, Rate};
///
/// struct Fetch { host: &'static str }
///
/// let limit = KeyedRateLimit::builder(Rate::per_second(1), |job: &Fetch| job.host).build()?;
/// let now = Instant::now();
/// let start = |job: &Fetch| Middleware::<Fetch, ()>::before_start(&limit, job, now);
/// assert_eq!(start(&Fetch { host: "a.example" }), Start::Now);
/// assert_eq!(start(&Fetch { host: "b.example" }), Start::Now); // another key
/// assert!(matches!(start(&Fetch { host: "a.example" }), Start::NotBefore(_)));
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub struct KeyedRateLimit<J, K> {
    inner: Arc<Keyed<J, K>>,
}

type KeyFn<J, K> = dyn Fn(&J) -> K + Send + Sync;

struct Keyed<J, K> {
    params: GcraParams,
    rate: Rate,
    burst: u32,
    key: Box<KeyFn<J, K>>,
    hasher: RandomState,
    epoch: OnceLock<Instant>,
    shards: [Mutex<Shard<K>>; SHARDS],
}

struct Shard<K> {
    tats: HashMap<K, u64>,
    /// The latest theoretical arrival time among the keys swept away: the state of every
    /// key the shard does not hold, so that forgetting one never makes it less strict.
    forgotten_tat: u64,
    /// The latest time handed to a deferred start of each key that has one still ahead
    /// (see `RateLimit`'s turns: a key's waiters come back one interval apart).
    turns: HashMap<K, u64>,
    sweep_at: usize,
}

impl<K> Shard<K> {
    /// Forgets the keys idle at `now_ns`, keeping the latest of their arrival times.
    fn sweep(&mut self, now_ns: u64) {
        let mut forgotten_tat = self.forgotten_tat;
        self.tats.retain(|_, tat| {
            let idle = *tat <= now_ns;
            if idle {
                forgotten_tat = forgotten_tat.max(*tat);
            }
            !idle
        });
        self.forgotten_tat = forgotten_tat;
        // A turn already past is no constraint: the next refusal starts a new line.
        self.turns.retain(|_, turn| *turn > now_ns);
        self.sweep_at = (self.tats.len().max(self.turns.len()) * 2).max(MIN_SWEEP_LEN);
    }
}

/// Settings of a [`KeyedRateLimit`].
///
/// # Examples
///
/// ```
/// use brigade_middleware::{KeyedRateLimit, Rate};
/// let builder = KeyedRateLimit::builder(Rate::per_minute(30), |user: &u64| *user).burst(5);
/// assert!(builder.build().is_ok());
/// ```
#[must_use]
pub struct KeyedRateLimitBuilder<J, K> {
    rate: Rate,
    burst: u32,
    key: Box<KeyFn<J, K>>,
}

impl<J, K> KeyedRateLimit<J, K>
where
    J: 'static,
    K: Hash + Eq + Send + Sync + 'static,
{
    /// Starts a per-key limiter at `rate` (burst 1) keyed by `key`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{KeyedRateLimit, Rate};
    /// assert!(KeyedRateLimit::builder(Rate::per_second(0), |n: &u8| *n).build().is_err());
    /// ```
    pub fn builder(
        rate: Rate,
        key: impl Fn(&J) -> K + Send + Sync + 'static,
    ) -> KeyedRateLimitBuilder<J, K> {
        KeyedRateLimitBuilder {
            rate,
            burst: 1,
            key: Box::new(key),
        }
    }

    /// Takes a start for `key` at `now` if its rate allows it.
    ///
    /// # Errors
    ///
    /// The instant at which a start for `key` would conform; nothing is taken then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use brigade_middleware::{KeyedRateLimit, Rate};
    /// let limit = KeyedRateLimit::builder(Rate::per_second(4), |s: &String| s.clone()).build()?;
    /// let now = Instant::now();
    /// assert!(limit.try_acquire_key("alice".to_string(), now).is_ok());
    /// assert_eq!(
    ///     limit.try_acquire_key("alice".to_string(), now),
    ///     Err(now + Duration::from_millis(250))
    /// );
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn try_acquire_key(&self, key: K, now: Instant) -> Result<(), Instant> {
        self.decide(key, now, false)
    }

    /// Takes a start for `key` at `now`, or answers when to ask again: the earliest time
    /// a start would conform, or, with `take_turn`, the key's next free turn after that
    /// (one interval after the last turn handed to one of its deferred starts), so that a
    /// key's waiters come back one at a time instead of all at once.
    fn decide(&self, key: K, now: Instant, take_turn: bool) -> Result<(), Instant> {
        let keyed = &*self.inner;
        let epoch = *keyed.epoch.get_or_init(|| now);
        let now_ns = nanos_since(epoch, now);
        let shard_index = (keyed.hasher.hash_one(&key) % SHARDS as u64) as usize;
        let mut shard = keyed.shards[shard_index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.tats.len() >= shard.sweep_at {
            shard.sweep(now_ns);
        }
        let tat = shard.tats.get(&key).copied().unwrap_or(shard.forgotten_tat);
        match keyed.params.step(tat, now_ns) {
            Ok(next) => {
                shard.tats.insert(key, next);
                Ok(())
            }
            Err(at) if take_turn => {
                let interval = keyed.params.interval;
                let turn = shard.turns.get(&key).map_or(at, |last| {
                    last.saturating_add(interval).max(at).min(MAX_NANOS)
                });
                if shard.turns.len() >= shard.sweep_at {
                    shard.sweep(now_ns);
                }
                shard.turns.insert(key, turn);
                Err(brigade_core::instant_after(
                    epoch,
                    Duration::from_nanos(turn),
                ))
            }
            Err(at) => Err(brigade_core::instant_after(epoch, Duration::from_nanos(at))),
        }
    }

    /// Takes a start for `job`'s key at `now`; see [`try_acquire_key`](Self::try_acquire_key).
    ///
    /// # Errors
    ///
    /// The instant at which a start for the job's key would conform.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use brigade_middleware::{KeyedRateLimit, Rate};
    /// let limit = KeyedRateLimit::builder(Rate::per_second(1), |n: &u32| n % 2).build()?;
    /// let now = Instant::now();
    /// assert!(limit.try_acquire(&1, now).is_ok());
    /// assert!(limit.try_acquire(&3, now).is_err()); // same key: odd
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn try_acquire(&self, job: &J, now: Instant) -> Result<(), Instant> {
        self.try_acquire_key((self.inner.key)(job), now)
    }

    /// Forgets every key idle at `now` (its theoretical arrival time has passed), returning
    /// how many remain. Sweeps also run on their own as the key set grows. A caller may
    /// still present an earlier `now` afterwards: a forgotten key then decides as strictly
    /// as if it were remembered (see [`KeyedRateLimit`]), never more loosely.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use brigade_middleware::{KeyedRateLimit, Rate};
    /// let limit = KeyedRateLimit::builder(Rate::per_second(10), |n: &u32| *n).build()?;
    /// let now = Instant::now();
    /// for key in 0..100 {
    ///     limit.try_acquire(&key, now).unwrap();
    /// }
    /// assert_eq!(limit.tracked_keys(), 100);
    /// assert_eq!(limit.evict_idle(now + Duration::from_secs(1)), 0);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn evict_idle(&self, now: Instant) -> usize {
        let keyed = &*self.inner;
        let Some(&epoch) = keyed.epoch.get() else {
            return 0;
        };
        let now_ns = nanos_since(epoch, now);
        keyed
            .shards
            .iter()
            .map(|shard| {
                let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                shard.sweep(now_ns);
                shard.tats.len()
            })
            .sum()
    }

    /// How many keys the limiter remembers now.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{KeyedRateLimit, Rate};
    /// let limit = KeyedRateLimit::builder(Rate::per_second(10), |n: &u32| *n).build()?;
    /// assert_eq!(limit.tracked_keys(), 0);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn tracked_keys(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|shard| {
                shard
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .tats
                    .len()
            })
            .sum()
    }

    /// The rate each key gets.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{KeyedRateLimit, Rate};
    /// let limit = KeyedRateLimit::builder(Rate::per_second(10), |n: &u32| *n).build()?;
    /// assert_eq!(limit.rate(), Rate::per_second(10));
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn rate(&self) -> Rate {
        self.inner.rate
    }

    /// The burst each key gets.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{KeyedRateLimit, Rate};
    /// let limit = KeyedRateLimit::builder(Rate::per_second(10), |n: &u32| *n).burst(3).build()?;
    /// assert_eq!(limit.burst(), 3);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn burst(&self) -> u32 {
        self.inner.burst
    }
}

impl<J, K> KeyedRateLimitBuilder<J, K>
where
    J: 'static,
    K: Hash + Eq + Send + Sync + 'static,
{
    /// How many starts per key may go through at once (at least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{KeyedRateLimit, Rate};
    /// assert!(KeyedRateLimit::builder(Rate::per_second(1), |n: &u8| *n).burst(0).build().is_err());
    /// ```
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// Builds the limiter.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRate`] for a zero, negative, infinite or NaN rate;
    /// [`ConfigError::OutOfRange`] for a zero burst.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{KeyedRateLimit, Rate};
    /// assert!(KeyedRateLimit::builder(Rate::per_second(-2), |n: &u8| *n).build().is_err());
    /// ```
    pub fn build(self) -> Result<KeyedRateLimit<J, K>, ConfigError> {
        let params = GcraParams::new(self.rate, self.burst, "keyed rate limit")?;
        Ok(KeyedRateLimit {
            inner: Arc::new(Keyed {
                params,
                rate: self.rate,
                burst: self.burst,
                key: self.key,
                hasher: RandomState::new(),
                epoch: OnceLock::new(),
                shards: std::array::from_fn(|_| {
                    Mutex::new(Shard {
                        tats: HashMap::new(),
                        turns: HashMap::new(),
                        forgotten_tat: 0,
                        sweep_at: MIN_SWEEP_LEN,
                    })
                }),
            }),
        })
    }
}

impl<J, K, E> Middleware<J, E> for KeyedRateLimit<J, K>
where
    J: 'static,
    K: Hash + Eq + Send + Sync + 'static,
{
    fn name(&self) -> &'static str {
        "keyed-rate-limit"
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

    fn before_start(&self, job: &J, now: Instant) -> Start {
        match self.decide((self.inner.key)(job), now, true) {
            Ok(()) => Start::Now,
            Err(turn) => Start::NotBefore(turn),
        }
    }
}

impl<J, K> Clone for KeyedRateLimit<J, K> {
    fn clone(&self) -> Self {
        KeyedRateLimit {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<J, K> fmt::Debug for KeyedRateLimit<J, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimit")
            .field("rate", &self.inner.rate)
            .field("burst", &self.inner.burst)
            .finish_non_exhaustive()
    }
}

impl<J, K> fmt::Debug for KeyedRateLimitBuilder<J, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimitBuilder")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn idle_keys_are_swept_as_the_key_set_grows() {
        let limit = KeyedRateLimit::builder(Rate::per_second(100), |n: &u64| *n)
            .build()
            .unwrap();
        let base = Instant::now();
        // One fresh key every 100 ms: each is idle 10 ms after its start.
        for key in 0..10_000u64 {
            let at = base + Duration::from_millis(100 * key);
            assert!(limit.try_acquire(&key, at).is_ok());
        }
        assert!(
            limit.tracked_keys() <= SHARDS * MIN_SWEEP_LEN,
            "{} keys kept",
            limit.tracked_keys()
        );
    }

    proptest! {
        /// Forgetting idle keys never changes a decision: the limiter, swept at random
        /// moments, answers exactly as a GCRA that remembers every key forever.
        #[test]
        fn evicting_idle_keys_changes_no_decision(
            burst in 1u32..4,
            events in proptest::collection::vec((0u8..6, 0u64..80, any::<bool>()), 1..300),
        ) {
            let rate = Rate::per_second(25);
            let limit = KeyedRateLimit::builder(rate, |k: &u8| *k).burst(burst).build().unwrap();
            let params = GcraParams::new(rate, burst, "test").unwrap();
            let mut remembered: HashMap<u8, u64> = HashMap::new();
            let base = Instant::now();
            let mut at = base;
            for (key, gap_ms, sweep) in events {
                at += Duration::from_millis(gap_ms);
                if sweep {
                    let _ = limit.evict_idle(at);
                }
                let now_ns = nanos_since(base, at);
                let expected = params.step(remembered.get(&key).copied().unwrap_or(0), now_ns);
                if let Ok(next) = expected {
                    remembered.insert(key, next);
                }
                let expected = expected.map(drop).map_err(|ns| base + Duration::from_nanos(ns));
                prop_assert_eq!(limit.try_acquire(&key, at), expected);
            }
        }

        /// Sweeps at any time, callers with any `now`, earlier or later than the sweeps':
        /// the limiter never grants a start that a GCRA remembering every key forever, and
        /// fed the same starts, would refuse.
        #[test]
        fn a_sweep_at_any_now_never_grants_an_extra_start(
            burst in 1u32..4,
            events in proptest::collection::vec((0u8..6, 0u64..3_000, any::<bool>()), 1..300),
        ) {
            let rate = Rate::per_second(10);
            let limit = KeyedRateLimit::builder(rate, |k: &u8| *k).burst(burst).build().unwrap();
            let params = GcraParams::new(rate, burst, "test").unwrap();
            let mut remembered: HashMap<u8, u64> = HashMap::new();
            let base = Instant::now();
            // The first call fixes the limiter's epoch at `base`, as the model's.
            let _ = limit.evict_idle(base);
            prop_assert!(limit.try_acquire(&u8::MAX, base).is_ok());
            for (key, at_ms, sweep) in events {
                let at = base + Duration::from_millis(at_ms);
                if sweep {
                    let _ = limit.evict_idle(at);
                    continue;
                }
                if limit.try_acquire(&key, at).is_ok() {
                    let now_ns = nanos_since(base, at);
                    let tat = remembered.get(&key).copied().unwrap_or(0);
                    let next = params.step(tat, now_ns);
                    prop_assert!(next.is_ok(), "key {} granted at {} ms", key, at_ms);
                    remembered.insert(key, next.unwrap());
                }
            }
        }

        /// Per key, the single-limiter bound holds: at most `window / interval + burst`.
        #[test]
        fn each_key_keeps_its_own_bound(
            burst in 1u32..5,
            events in proptest::collection::vec((0u8..4, 0u64..30), 1..300),
        ) {
            let limit = KeyedRateLimit::builder(Rate::per_second(20), |k: &u8| *k)
                .burst(burst)
                .build()
                .unwrap();
            let base = Instant::now();
            let mut at = base;
            let mut granted: HashMap<u8, Vec<Instant>> = HashMap::new();
            for (key, gap_ms) in events {
                at += Duration::from_millis(gap_ms);
                if limit.try_acquire(&key, at).is_ok() {
                    granted.entry(key).or_default().push(at);
                }
            }
            for starts in granted.values() {
                for (i, first) in starts.iter().enumerate() {
                    for (j, last) in starts.iter().enumerate().skip(i) {
                        let window_ms = (*last - *first).as_millis() as f64;
                        prop_assert!((j - i + 1) as f64 <= window_ms / 50.0 + f64::from(burst));
                    }
                }
            }
        }
    }
}
