use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use brigade_core::hooks::{AfterRun, Middleware, RunOutcome, RunReport};
use brigade_core::{ConfigError, JobId};

use super::backoff::Backoff;
use super::budget::RetryBudget;

type RetryIf<E> = dyn Fn(&RunOutcome<'_, E>) -> bool + Send + Sync;

/// Runs a failed job again after an exponential backoff, up to a number of attempts, for
/// the failures a predicate calls retryable, within an optional [`RetryBudget`].
///
/// The backoff never parks a worker: the layer answers [`AfterRun::RetryAt`] and the
/// backend keeps the job in its delay queue until then. The run number is in
/// [`JobContext::attempt`](brigade_core::JobContext::attempt) and in the job's span.
///
/// When the layer does not retry (attempts used up, a permanent error, the budget spent)
/// it answers [`AfterRun::Done`], and the next layer decides: add a
/// [`DeadLetterQueue`](crate::DeadLetterQueue) *after* the retry layer to catch those jobs.
///
/// By default `Failed` and `TimedOut` runs are retried; panics are not (a panic is
/// usually a bug that another run repeats). [`RetryBuilder::retry_if`] changes that.
///
/// # Examples
///
/// The seeds' policy: three attempts, 100 ms · 2ⁿ capped at 5 s.
///
/// ```
/// use std::time::{Duration, Instant};
/// use brigade_core::JobId;
/// use brigade_core::hooks::{AfterRun, RunOutcome};
/// use brigade_middleware::{Backoff, Retry};
///
/// let retry = Retry::<String>::builder()
///     .max_attempts(3)
///     .backoff(Backoff::exponential(Duration::from_millis(100)).cap(Duration::from_secs(5)))
///     .build()?;
/// let now = Instant::now();
/// let error = "random processing error".to_string();
/// let failed = RunOutcome::Failed(&error);
/// assert_eq!(
///     retry.decide(JobId::new(1), &failed, 1, now),
///     AfterRun::RetryAt(now + Duration::from_millis(100))
/// );
/// assert_eq!(retry.decide(JobId::new(1), &failed, 3, now), AfterRun::Done);
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub struct Retry<E> {
    max_attempts: u32,
    backoff: Backoff,
    retry_if: Arc<RetryIf<E>>,
    budget: Option<RetryBudget>,
    seed: u64,
    budget_refusals: AtomicU64,
}

/// Settings of a [`Retry`] layer.
///
/// # Examples
///
/// ```
/// use brigade_core::hooks::RunOutcome;
/// let retry = brigade_middleware::Retry::<std::io::Error>::builder()
///     .max_attempts(5)
///     .retry_if(|outcome| match outcome {
///         RunOutcome::Failed(error) => error.kind() != std::io::ErrorKind::NotFound,
///         _ => false,
///     })
///     .build()?;
/// # let _ = retry;
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
#[must_use]
pub struct RetryBuilder<E> {
    max_attempts: u32,
    backoff: Backoff,
    retry_if: Arc<RetryIf<E>>,
    budget: Option<RetryBudget>,
    seed: Option<u64>,
}

impl<E: 'static> Retry<E> {
    /// Starts a policy of 3 attempts, backoff from 100 ms doubling up to 30 s, no jitter,
    /// retrying `Failed` and `TimedOut` runs, with no budget.
    ///
    /// # Examples
    ///
    /// ```
    /// let retry = brigade_middleware::Retry::<String>::builder().build()?;
    /// assert_eq!(retry.max_attempts(), 3);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn builder() -> RetryBuilder<E> {
        RetryBuilder {
            max_attempts: 3,
            backoff: Backoff::exponential(Duration::from_millis(100)),
            retry_if: Arc::new(|outcome: &RunOutcome<'_, E>| {
                matches!(outcome, RunOutcome::Failed(_) | RunOutcome::TimedOut(_))
            }),
            budget: None,
            seed: None,
        }
    }

    /// The most runs a job gets, the first included.
    ///
    /// # Examples
    ///
    /// ```
    /// let retry = brigade_middleware::Retry::<String>::builder().max_attempts(7).build()?;
    /// assert_eq!(retry.max_attempts(), 7);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// How many retries the budget refused so far.
    ///
    /// # Examples
    ///
    /// ```
    /// let retry = brigade_middleware::Retry::<String>::builder().build()?;
    /// assert_eq!(retry.budget_refusals(), 0);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn budget_refusals(&self) -> u64 {
        self.budget_refusals.load(Ordering::Relaxed)
    }

    /// The wait before the next run of job `id` after its failed run `attempt`.
    ///
    /// Jitter is drawn from the policy's seed and the job's id, so a job's delays are
    /// reproducible with [`RetryBuilder::seed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let retry = brigade_middleware::Retry::<String>::builder().build()?;
    /// assert_eq!(retry.delay(brigade_core::JobId::new(1), 2), Duration::from_millis(200));
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn delay(&self, id: JobId, attempt: u32) -> Duration {
        self.backoff.delay(attempt, job_seed(self.seed, id))
    }

    /// The decision after run `attempt` of job `id` ended with `outcome` at `now`; what
    /// the layer answers the backend.
    ///
    /// A first run deposits into the budget whatever its outcome; a retry withdraws.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use brigade_core::JobId;
    /// use brigade_core::hooks::{AfterRun, RunOutcome};
    ///
    /// let retry = brigade_middleware::Retry::<String>::builder().build()?;
    /// let outcome = RunOutcome::Panicked("bug");
    /// assert_eq!(retry.decide(JobId::new(1), &outcome, 1, Instant::now()), AfterRun::Done);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn decide(
        &self,
        id: JobId,
        outcome: &RunOutcome<'_, E>,
        attempt: u32,
        now: Instant,
    ) -> AfterRun {
        if attempt <= 1 {
            if let Some(budget) = &self.budget {
                budget.deposit(now);
            }
        }
        let retryable = !matches!(outcome, RunOutcome::Succeeded | RunOutcome::Cancelled(_))
            && attempt < self.max_attempts
            && (self.retry_if)(outcome);
        if !retryable {
            return AfterRun::Done;
        }
        if let Some(budget) = &self.budget {
            if !budget.withdraw(now) {
                self.budget_refusals.fetch_add(1, Ordering::Relaxed);
                return AfterRun::Done;
            }
        }
        // Saturating: a delay past what `Instant` holds (a `Duration::MAX` backoff) means
        // "not in this process's life", and `+` would panic inside the pool.
        AfterRun::RetryAt(brigade_core::instant_after(now, self.delay(id, attempt)))
    }
}

/// Mixes the policy seed with the job id (splitmix64's finaliser) so neighbouring ids
/// get unrelated jitter.
fn job_seed(seed: u64, id: JobId) -> u64 {
    let mut z = seed ^ id.get().wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<E: 'static> RetryBuilder<E> {
    /// The most runs a job gets, the first included (at least 1; 1 means no retry).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_middleware::Retry::<String>::builder().max_attempts(0).build().is_err());
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// How long to wait between runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_middleware::{Backoff, Jitter, Retry};
    /// let retry = Retry::<String>::builder()
    ///     .backoff(Backoff::exponential(Duration::from_millis(10)).jitter(Jitter::Full))
    ///     .build()?;
    /// # let _ = retry;
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Which outcomes are worth another run; the others end the job at once (permanent
    /// errors). Cancelled runs are never retried, whatever the predicate says.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::hooks::RunOutcome;
    /// // Retry everything, panics and timeouts included.
    /// let retry = brigade_middleware::Retry::<String>::builder().retry_if(|_| true).build()?;
    /// # let _ = retry;
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn retry_if(
        mut self,
        retryable: impl Fn(&RunOutcome<'_, E>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.retry_if = Arc::new(retryable);
        self
    }

    /// Caps retries as a share of recent work; clone one budget into several layers to
    /// share it.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{Retry, RetryBudget};
    /// let budget = RetryBudget::builder().ratio(0.1).build()?;
    /// let retry = Retry::<String>::builder().budget(budget.clone()).build()?;
    /// # let _ = retry;
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Fixes the jitter's randomness (tests, reproducible runs); by default each policy
    /// draws a random seed.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::JobId;
    /// use brigade_middleware::{Backoff, Jitter, Retry};
    /// let backoff = Backoff::exponential(std::time::Duration::from_millis(100)).jitter(Jitter::Full);
    /// let a = Retry::<String>::builder().backoff(backoff).seed(1).build()?;
    /// let b = Retry::<String>::builder().backoff(backoff).seed(1).build()?;
    /// assert_eq!(a.delay(JobId::new(4), 2), b.delay(JobId::new(4), 2));
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds the policy.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] for zero attempts; the backoff's own errors
    /// (see [`Backoff::validate`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_middleware::{Backoff, Retry};
    /// let bad = Retry::<String>::builder().backoff(Backoff::exponential(Duration::ZERO)).build();
    /// assert!(bad.is_err());
    /// ```
    pub fn build(self) -> Result<Retry<E>, ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::OutOfRange {
                setting: "max attempts",
                expected: "at least 1",
            });
        }
        self.backoff.validate()?;
        Ok(Retry {
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            retry_if: self.retry_if,
            budget: self.budget,
            seed: self.seed.unwrap_or_else(|| fastrand::u64(..)),
            budget_refusals: AtomicU64::new(0),
        })
    }
}

impl<J, E: 'static> Middleware<J, E> for Retry<E> {
    fn name(&self) -> &'static str {
        "retry"
    }

    fn after_run(&self, _job: &J, run: &RunReport<'_, E>, now: Instant) -> AfterRun {
        self.decide(run.id, &run.outcome, run.attempt, now)
    }

    /// Its decisions read how a run ended and when, never when it started.
    fn times_runs(&self) -> bool {
        false
    }

    /// Only a retry budget, which every first run pays into, needs the successes.
    fn sees_successes(&self) -> bool {
        self.budget.is_some()
    }

    /// No `before_start`: starts need not come here.
    fn sees_starts(&self) -> bool {
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
}

impl<E> fmt::Debug for Retry<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl<E> fmt::Debug for RetryBuilder<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brigade_core::hooks::{AfterRun, Layers};

    fn report<'a>(
        attempt: u32,
        outcome: RunOutcome<'a, String>,
        now: Instant,
    ) -> RunReport<'a, String> {
        RunReport {
            id: JobId::new(1),
            outcome,
            attempt,
            started: now,
            first_failure: None,
        }
    }

    #[test]
    fn retries_until_the_last_attempt_then_lets_the_next_layer_decide() {
        let retry = Retry::<String>::builder()
            .max_attempts(3)
            .seed(5)
            .build()
            .unwrap();
        let layers = Layers::<(), String>::new().with(retry);
        let now = Instant::now();
        let error = "e".to_string();
        for attempt in 1..3 {
            let decision =
                layers.after_run(&(), &report(attempt, RunOutcome::Failed(&error), now), now);
            assert!(matches!(decision, (AfterRun::RetryAt(at), Some(0)) if at > now));
        }
        let last = layers.after_run(&(), &report(3, RunOutcome::Failed(&error), now), now);
        assert_eq!(last, (AfterRun::Done, None));
    }

    #[test]
    fn predicate_tells_permanent_errors_apart() {
        let retry = Retry::<String>::builder()
            .retry_if(
                |outcome| matches!(outcome, RunOutcome::Failed(e) if !e.starts_with("permanent")),
            )
            .build()
            .unwrap();
        let now = Instant::now();
        let (transient, permanent) = ("timeout".to_string(), "permanent: bad input".to_string());
        assert!(matches!(
            retry.decide(JobId::new(1), &RunOutcome::Failed(&transient), 1, now),
            AfterRun::RetryAt(_)
        ));
        assert_eq!(
            retry.decide(JobId::new(1), &RunOutcome::Failed(&permanent), 1, now),
            AfterRun::Done
        );
        assert_eq!(
            retry.decide(JobId::new(1), &RunOutcome::Cancelled(None), 1, now),
            AfterRun::Done
        );
    }

    #[test]
    fn timed_out_runs_are_retried_by_default_and_panics_are_not() {
        let retry = Retry::<String>::builder().build().unwrap();
        let now = Instant::now();
        assert!(matches!(
            retry.decide(JobId::new(1), &RunOutcome::TimedOut(None), 1, now),
            AfterRun::RetryAt(_)
        ));
        assert_eq!(
            retry.decide(JobId::new(1), &RunOutcome::Panicked("p"), 1, now),
            AfterRun::Done
        );
    }

    #[test]
    fn spent_budget_ends_the_job_instead_of_retrying() {
        let budget = RetryBudget::builder()
            .min_per_second(0)
            .ratio(0.5)
            .build()
            .unwrap();
        let retry = Retry::<String>::builder()
            .max_attempts(10)
            .budget(budget)
            .build()
            .unwrap();
        let now = Instant::now();
        let error = "dependency down".to_string();
        // 10 jobs fail their first run: 5 retries' worth of budget.
        let retried = (1..=10)
            .filter(|&id| {
                matches!(
                    retry.decide(JobId::new(id), &RunOutcome::Failed(&error), 1, now),
                    AfterRun::RetryAt(_)
                )
            })
            .count();
        assert_eq!(retried, 5);
        assert_eq!(retry.budget_refusals(), 5);
    }
}
