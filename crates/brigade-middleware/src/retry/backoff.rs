use std::time::Duration;

use brigade_core::ConfigError;

use super::jitter::Jitter;

/// Exponential backoff: how long a job waits before its next run, from `base`, growing by
/// `factor` per failed run, never above `cap`, randomised by a [`Jitter`].
///
/// After failed run `n` (1 for the first run) the ceiling is
/// `min(cap, base · factor^(n-1))`; the seeds' `100ms << (attempts-1)` capped at 5 s is
/// `Backoff::exponential(100ms).cap(5s)`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade_middleware::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_millis(100)).cap(Duration::from_secs(5));
/// assert_eq!(backoff.delay(1, 0), Duration::from_millis(100));
/// assert_eq!(backoff.delay(3, 0), Duration::from_millis(400));
/// assert_eq!(backoff.delay(20, 0), Duration::from_secs(5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    base: Duration,
    factor: f64,
    cap: Duration,
    jitter: Jitter,
}

impl Backoff {
    /// Doubling delays from `base`, capped at 30 s, without jitter.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let backoff = brigade_middleware::Backoff::exponential(Duration::from_millis(50));
    /// assert_eq!(backoff.delay(2, 0), Duration::from_millis(100));
    /// ```
    #[must_use]
    pub fn exponential(base: Duration) -> Self {
        Backoff {
            base,
            factor: 2.0,
            cap: Duration::from_secs(30),
            jitter: Jitter::None,
        }
    }

    /// The same delay after every failure (a factor of 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let backoff = brigade_middleware::Backoff::constant(Duration::from_millis(10));
    /// assert_eq!(backoff.delay(5, 0), Duration::from_millis(10));
    /// ```
    #[must_use]
    pub fn constant(delay: Duration) -> Self {
        Backoff {
            base: delay,
            factor: 1.0,
            cap: delay,
            jitter: Jitter::None,
        }
    }

    /// Sets how much the delay grows per failed run (at least 1, finite).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let backoff = brigade_middleware::Backoff::exponential(Duration::from_millis(10)).factor(3.0);
    /// assert_eq!(backoff.delay(3, 0), Duration::from_millis(90));
    /// ```
    #[must_use]
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// Sets the longest delay.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let backoff = brigade_middleware::Backoff::exponential(Duration::from_secs(1))
    ///     .cap(Duration::from_secs(2));
    /// assert_eq!(backoff.delay(10, 0), Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self
    }

    /// Sets how the delay is randomised.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_middleware::{Backoff, Jitter};
    /// let backoff = Backoff::exponential(Duration::from_millis(100)).jitter(Jitter::Full);
    /// assert!(backoff.delay(1, 42) <= Duration::from_millis(100));
    /// ```
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The first delay.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let backoff = brigade_middleware::Backoff::exponential(Duration::from_millis(100));
    /// assert_eq!(backoff.base(), Duration::from_millis(100));
    /// ```
    #[must_use]
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The longest delay.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let backoff = brigade_middleware::Backoff::exponential(Duration::from_millis(100));
    /// assert_eq!(backoff.max_delay(), Duration::from_secs(30));
    /// ```
    #[must_use]
    pub fn max_delay(&self) -> Duration {
        self.cap
    }

    /// The jitter mode.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_middleware::{Backoff, Jitter};
    /// assert_eq!(Backoff::exponential(Duration::from_millis(1)).jitter_mode(), Jitter::None);
    /// ```
    #[must_use]
    pub fn jitter_mode(&self) -> Jitter {
        self.jitter
    }

    /// The delay before jitter after failed run `attempt`: `min(cap, base · factor^(attempt-1))`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let backoff = brigade_middleware::Backoff::exponential(Duration::from_millis(100));
    /// assert_eq!(backoff.ceiling(2), Duration::from_millis(200));
    /// ```
    #[must_use]
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = f64::from(attempt.max(1) - 1);
        let seconds = self.base.as_secs_f64() * self.factor.powf(exponent);
        // Compare in floating point first: `from_secs_f64` panics past `Duration::MAX`,
        // and a large attempt number overflows long before that.
        if !seconds.is_finite() || seconds >= self.cap.as_secs_f64() {
            self.cap
        } else {
            // A factor the builder would refuse (below zero) gives no negative delay here.
            Duration::from_secs_f64(seconds.max(0.0)).min(self.cap)
        }
    }

    /// The delay after failed run `attempt`, with the randomness of jitter drawn from
    /// `seed` (the same seed gives the same delays, so a job's walk can be replayed).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_middleware::{Backoff, Jitter};
    /// let backoff = Backoff::exponential(Duration::from_millis(100)).jitter(Jitter::Decorrelated);
    /// assert_eq!(backoff.delay(3, 9), backoff.delay(3, 9));
    /// ```
    #[must_use]
    pub fn delay(&self, attempt: u32, seed: u64) -> Duration {
        self.jitter
            .apply(attempt, self.base, self.cap, |n| self.ceiling(n), seed)
    }

    /// Checks the settings: a positive base, a cap no smaller than the base, a finite
    /// factor of at least 1.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroDuration`] for a zero base, [`ConfigError::OutOfRange`] for a
    /// cap below the base or a bad factor.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_middleware::Backoff;
    /// assert!(Backoff::exponential(Duration::ZERO).validate().is_err());
    /// assert!(Backoff::exponential(Duration::from_millis(1)).factor(0.5).validate().is_err());
    /// assert!(Backoff::exponential(Duration::from_millis(1)).validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.base.is_zero() {
            return Err(ConfigError::ZeroDuration {
                setting: "backoff base",
            });
        }
        if self.cap < self.base {
            return Err(ConfigError::OutOfRange {
                setting: "backoff cap",
                expected: "at least the backoff base",
            });
        }
        if !self.factor.is_finite() || self.factor < 1.0 {
            return Err(ConfigError::OutOfRange {
                setting: "backoff factor",
                expected: "a finite number of at least 1",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated),
        ]
    }

    proptest! {
        #[test]
        fn delay_stays_within_its_bounds_and_cap(
            base_ms in 1u64..10_000,
            cap_extra_ms in 0u64..100_000,
            factor in 1.0f64..10.0,
            attempt in 1u32..200,
            seed in any::<u64>(),
            jitter in jitter(),
        ) {
            let base = Duration::from_millis(base_ms);
            let cap = base + Duration::from_millis(cap_extra_ms);
            let backoff = Backoff::exponential(base).factor(factor).cap(cap).jitter(jitter);
            prop_assert!(backoff.validate().is_ok());
            let ceiling = backoff.ceiling(attempt);
            prop_assert!(ceiling <= cap);
            prop_assert!(ceiling >= base.min(cap));
            let delay = backoff.delay(attempt, seed);
            prop_assert!(delay <= cap, "{delay:?} above cap {cap:?}");
            match jitter {
                Jitter::None => prop_assert_eq!(delay, ceiling),
                Jitter::Full => prop_assert!(delay <= ceiling),
                Jitter::Equal => prop_assert!(delay >= ceiling / 2 && delay <= ceiling),
                Jitter::Decorrelated => prop_assert!(delay >= base.min(cap)),
            }
        }

        #[test]
        fn ceiling_never_shrinks(base_ms in 1u64..1000, factor in 1.0f64..4.0, attempt in 1u32..100) {
            let backoff = Backoff::exponential(Duration::from_millis(base_ms))
                .factor(factor)
                .cap(Duration::from_secs(60));
            prop_assert!(backoff.ceiling(attempt + 1) >= backoff.ceiling(attempt));
        }
    }

    #[test]
    fn seed_schedule_is_100ms_doubling_capped_at_5s() {
        let backoff = Backoff::exponential(Duration::from_millis(100)).cap(Duration::from_secs(5));
        let delays: Vec<_> = (1..=8).map(|n| backoff.delay(n, 0).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn jitter_differs_between_seeds() {
        let backoff = Backoff::exponential(Duration::from_secs(1)).jitter(Jitter::Full);
        let delays: std::collections::HashSet<_> =
            (0..32).map(|seed| backoff.delay(3, seed)).collect();
        assert!(delays.len() > 16, "full jitter should spread: {delays:?}");
    }

    #[test]
    fn a_job_draws_afresh_for_each_attempt() {
        let backoff = Backoff::exponential(Duration::from_secs(1))
            .factor(1.0)
            .cap(Duration::from_secs(1))
            .jitter(Jitter::Full);
        let delays: std::collections::HashSet<_> =
            (1..=16).map(|attempt| backoff.delay(attempt, 7)).collect();
        assert!(
            delays.len() > 8,
            "same ceiling, same seed: the attempt must still change the draw"
        );
    }

    #[test]
    fn huge_attempt_numbers_saturate_at_the_cap() {
        let backoff = Backoff::exponential(Duration::from_secs(1)).factor(10.0);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(30));
        let decorrelated = backoff.jitter(Jitter::Decorrelated);
        assert!(decorrelated.delay(500, 1) <= Duration::from_secs(30));
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let base = Duration::from_millis(10);
        assert_eq!(
            Backoff::exponential(base)
                .cap(Duration::from_millis(5))
                .validate(),
            Err(ConfigError::OutOfRange {
                setting: "backoff cap",
                expected: "at least the backoff base"
            })
        );
        assert!(
            Backoff::exponential(base)
                .factor(f64::NAN)
                .validate()
                .is_err()
        );
        assert!(
            Backoff::exponential(base)
                .factor(f64::INFINITY)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn an_unvalidated_negative_factor_gives_no_delay_rather_than_a_panic() {
        let backoff = Backoff::exponential(Duration::from_millis(100)).factor(-2.0);
        assert!(backoff.validate().is_err());
        assert_eq!(backoff.ceiling(2), Duration::ZERO);
        assert_eq!(backoff.ceiling(3), Duration::from_millis(400));
        assert_eq!(backoff.delay(2, 7), Duration::ZERO);
    }
}
