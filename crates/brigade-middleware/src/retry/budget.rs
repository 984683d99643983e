use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use brigade_core::ConfigError;

/// How many slots the sliding window is cut into: the window forgets old work one slot
/// at a time rather than all at once.
const SLOTS: usize = 10;

/// A cap on retries as a share of recent work, so a failing dependency cannot turn every
/// job into several (a retry storm).
///
/// Each first run deposits `ratio` of a token; each retry withdraws a whole one. On top,
/// a reserve of `min_per_second · window` retries is always allowed, so a quiet pool can
/// still retry. Deposits and withdrawals are forgotten after `window`, a slot at a time.
/// This is the budget of Finagle and tower (`tower::retry::budget::TpsBudget`).
///
/// When the budget is spent, [`Retry`](crate::Retry) ends the job instead of retrying it;
/// a [`DeadLetterQueue`](crate::DeadLetterQueue) after it then takes the job.
///
/// A budget is a cheap handle (an `Arc` inside): clone it to share one budget between the
/// retry layers of several pools that call the same dependency.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use brigade_middleware::RetryBudget;
///
/// // Retries may add 10% to the work, with no reserve.
/// let budget = RetryBudget::builder().ratio(0.1).min_per_second(0).build()?;
/// let now = Instant::now();
/// for _ in 0..20 {
///     budget.deposit(now); // 20 first runs: 2 retries' worth
/// }
/// assert!(budget.withdraw(now));
/// assert!(budget.withdraw(now));
/// assert!(!budget.withdraw(now));
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<BudgetInner>,
}

struct BudgetInner {
    ratio: f64,
    reserve: f64,
    slot_width: Duration,
    window: Mutex<Window>,
}

struct Window {
    // The first instant seen: slot numbers count from it, so a fake clock starting
    // anywhere works.
    epoch: Option<Instant>,
    slots: [Slot; SLOTS],
}

#[derive(Clone, Copy, Default)]
struct Slot {
    number: u64,
    deposits: u64,
    withdrawals: u64,
}

/// Settings of a [`RetryBudget`]; defaults are tower's: a 10 s window, 10 retries per
/// second in reserve, retries adding at most 20% to the work.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let budget = brigade_middleware::RetryBudget::builder()
///     .window(Duration::from_secs(30))
///     .min_per_second(5)
///     .ratio(0.5)
///     .build()?;
/// # let _ = budget;
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct RetryBudgetBuilder {
    window: Duration,
    min_per_second: u32,
    ratio: f64,
}

impl RetryBudget {
    /// Starts a budget with tower's defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// let budget = brigade_middleware::RetryBudget::builder().build()?;
    /// assert!(budget.withdraw(std::time::Instant::now())); // the reserve
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn builder() -> RetryBudgetBuilder {
        RetryBudgetBuilder {
            window: Duration::from_secs(10),
            min_per_second: 10,
            ratio: 0.2,
        }
    }

    /// Records a first run (fresh work) at `now`.
    ///
    /// # Examples
    ///
    /// ```
    /// let budget = brigade_middleware::RetryBudget::builder().min_per_second(0).ratio(1.0).build()?;
    /// let now = std::time::Instant::now();
    /// budget.deposit(now);
    /// assert!(budget.withdraw(now));
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn deposit(&self, now: Instant) {
        self.inner
            .with_current_slot(now, |slot, _| slot.deposits += 1);
    }

    /// Takes one retry from the budget at `now`; `false` when it is spent.
    ///
    /// # Examples
    ///
    /// ```
    /// let budget = brigade_middleware::RetryBudget::builder().min_per_second(0).build()?;
    /// assert!(!budget.withdraw(std::time::Instant::now()));
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn withdraw(&self, now: Instant) -> bool {
        let inner = &self.inner;
        inner.with_current_slot(now, |slot, balance| {
            if balance >= 1.0 {
                slot.withdrawals += 1;
                true
            } else {
                false
            }
        })
    }

    /// Retries the budget allows at `now`, rounded down.
    ///
    /// # Examples
    ///
    /// ```
    /// let budget = brigade_middleware::RetryBudget::builder()
    ///     .window(std::time::Duration::from_secs(10))
    ///     .min_per_second(2)
    ///     .build()?;
    /// assert_eq!(budget.available(std::time::Instant::now()), 20);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn available(&self, now: Instant) -> u64 {
        self.inner
            .with_current_slot(now, |_, balance| balance.max(0.0).floor() as u64)
    }
}

impl BudgetInner {
    /// Runs `f` on the current slot (reset if it held an old one) with the balance of the
    /// whole window.
    fn with_current_slot<R>(&self, now: Instant, f: impl FnOnce(&mut Slot, f64) -> R) -> R {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let epoch = *window.epoch.get_or_insert(now);
        let elapsed = now.saturating_duration_since(epoch).as_nanos();
        let number = u64::try_from(elapsed / self.slot_width.as_nanos().max(1)).unwrap_or(u64::MAX);
        let (mut deposits, mut withdrawals) = (0u64, 0u64);
        for slot in &mut window.slots {
            // A slot older than the window is stale; a slot "newer" than now can only come
            // from a caller whose `now` lagged another's, and still counts.
            if number.saturating_sub(slot.number) >= SLOTS as u64 {
                *slot = Slot::default();
            }
            deposits += slot.deposits;
            withdrawals += slot.withdrawals;
        }
        let current = &mut window.slots[(number % SLOTS as u64) as usize];
        if current.number != number {
            deposits -= current.deposits;
            withdrawals -= current.withdrawals;
            *current = Slot {
                number,
                ..Slot::default()
            };
        }
        let balance = self.reserve + self.ratio * deposits as f64 - withdrawals as f64;
        f(current, balance)
    }
}

impl RetryBudgetBuilder {
    /// How long work counts towards the budget.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = brigade_middleware::RetryBudget::builder().window(std::time::Duration::from_secs(1));
    /// assert!(builder.build().is_ok());
    /// ```
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Retries per second always allowed, whatever the recent work.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = brigade_middleware::RetryBudget::builder().min_per_second(0);
    /// assert!(builder.build().is_ok());
    /// ```
    pub fn min_per_second(mut self, retries: u32) -> Self {
        self.min_per_second = retries;
        self
    }

    /// Retries allowed per first run: 0.2 lets retries add 20% to the work.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = brigade_middleware::RetryBudget::builder().ratio(f64::NAN);
    /// assert!(builder.build().is_err());
    /// ```
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }

    /// Builds the budget.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroDuration`] for a zero window; [`ConfigError::OutOfRange`] for a
    /// ratio that is negative, infinite or NaN.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::ConfigError;
    /// let error = brigade_middleware::RetryBudget::builder()
    ///     .window(std::time::Duration::ZERO)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error, ConfigError::ZeroDuration { setting: "retry budget window" });
    /// ```
    pub fn build(self) -> Result<RetryBudget, ConfigError> {
        if self.window.is_zero() {
            return Err(ConfigError::ZeroDuration {
                setting: "retry budget window",
            });
        }
        if !self.ratio.is_finite() || self.ratio < 0.0 {
            return Err(ConfigError::OutOfRange {
                setting: "retry budget ratio",
                expected: "a finite number of at least 0",
            });
        }
        Ok(RetryBudget {
            inner: Arc::new(BudgetInner {
                ratio: self.ratio,
                reserve: f64::from(self.min_per_second) * self.window.as_secs_f64(),
                slot_width: self.window / SLOTS as u32,
                window: Mutex::new(Window {
                    epoch: None,
                    slots: [Slot::default(); SLOTS],
                }),
            }),
        })
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ratio", &self.inner.ratio)
            .field("reserve", &self.inner.reserve)
            .field(
                "window",
                &self.inner.slot_width.saturating_mul(SLOTS as u32),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reserve_refills_after_the_window() {
        let budget = RetryBudget::builder()
            .window(Duration::from_secs(1))
            .min_per_second(3)
            .ratio(0.0)
            .build()
            .unwrap();
        let base = Instant::now();
        let granted = (0..10).filter(|_| budget.withdraw(base)).count();
        assert_eq!(granted, 3);
        assert!(!budget.withdraw(base + Duration::from_millis(500)));
        // A whole window later the withdrawals are forgotten.
        let later = base + Duration::from_millis(1100);
        assert_eq!((0..10).filter(|_| budget.withdraw(later)).count(), 3);
    }

    proptest! {
        /// Within one window, retries never exceed the reserve plus `ratio` per first run.
        #[test]
        fn retries_stay_within_ratio_of_work(
            events in proptest::collection::vec((any::<bool>(), 0u64..1_000), 1..400),
            ratio in 0.0f64..1.0,
            min_per_second in 0u32..5,
        ) {
            let window = Duration::from_secs(10);
            let budget = RetryBudget::builder()
                .window(window)
                .min_per_second(min_per_second)
                .ratio(ratio)
                .build()
                .unwrap();
            let base = Instant::now();
            let (mut deposits, mut retries) = (0u64, 0u64);
            let mut at = base;
            for (is_first_run, step_ms) in events {
                at += Duration::from_millis(step_ms);
                // Stay inside the first window so nothing is forgotten.
                if at - base >= window / SLOTS as u32 * (SLOTS as u32 - 1) {
                    break;
                }
                if is_first_run {
                    budget.deposit(at);
                    deposits += 1;
                } else if budget.withdraw(at) {
                    retries += 1;
                }
            }
            let allowed = f64::from(min_per_second) * 10.0 + ratio * deposits as f64;
            prop_assert!(retries as f64 <= allowed + 1e-9, "{retries} > {allowed}");
        }
    }
}
