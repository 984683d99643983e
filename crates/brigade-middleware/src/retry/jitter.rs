use std::time::Duration;

/// How a retry delay is randomised around its exponential ceiling, so that jobs that failed
/// together do not all come back together (the "thundering herd").
///
/// With `exp(n) = min(cap, base · factor^(n-1))` the ceiling after the `n`-th failed run:
///
/// | jitter | delay after run `n` | bounds |
/// | --- | --- | --- |
/// | [`None`](Jitter::None) | `exp(n)` | exactly `exp(n)` |
/// | [`Full`](Jitter::Full) | uniform in `[0, exp(n)]` | `0 ..= exp(n)` |
/// | [`Equal`](Jitter::Equal) | `exp(n)/2 +` uniform in `[0, exp(n)/2]` | `exp(n)/2 ..= exp(n)` |
/// | [`Decorrelated`](Jitter::Decorrelated) | `min(cap,` uniform in `[base, 3 · previous])` | `min(base, cap) ..= cap` |
///
/// The names and formulas are those of the AWS Architecture Blog's "Exponential Backoff And
/// Jitter"; full jitter spreads load best, equal jitter keeps a guaranteed minimum wait.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brigade_middleware::{Backoff, Jitter};
///
/// let backoff = Backoff::exponential(Duration::from_millis(100)).jitter(Jitter::Equal);
/// let delay = backoff.delay(2, 7); // after the second failed run, job seed 7
/// assert!(delay >= Duration::from_millis(100) && delay <= Duration::from_millis(200));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// No randomness: the plain exponential delay (the seeds' `100ms << n`).
    #[default]
    None,
    /// Anywhere between zero and the exponential delay.
    Full,
    /// Half the exponential delay, plus up to the other half.
    Equal,
    /// Grows from the previous delay of the same job rather than from the attempt number.
    Decorrelated,
}

/// How many steps of a decorrelated walk are replayed at most.
const MAX_REPLAYED_STEPS: u32 = 64;

/// One uniform draw in `[0, 1)` per call; the jitter modes take as many as they need.
pub(crate) trait UnitSource {
    fn next_unit(&mut self) -> f64;
}

impl UnitSource for fastrand::Rng {
    fn next_unit(&mut self) -> f64 {
        self.f64()
    }
}

impl Jitter {
    /// The delay after failed run `attempt`, given the ceilings of every run so far.
    ///
    /// `ceiling(k)` is `exp(k)`; `base` and `cap` bound the decorrelated walk.
    pub(crate) fn apply(
        self,
        attempt: u32,
        base: Duration,
        cap: Duration,
        ceiling: impl Fn(u32) -> Duration,
        units: &mut impl UnitSource,
    ) -> Duration {
        match self {
            Jitter::None => ceiling(attempt),
            Jitter::Full => ceiling(attempt).mul_f64(units.next_unit()),
            Jitter::Equal => {
                let top = ceiling(attempt);
                let half = top / 2;
                // Saturating: float rounding must not push a delay near `Duration::MAX` over.
                half.saturating_add((top - half).mul_f64(units.next_unit()))
            }
            Jitter::Decorrelated => {
                // The walk is replayed from the first failure with the job's own draws, so
                // the policy keeps no per-job state and still sees "the previous delay". Past
                // a few dozen steps the walk has long reached the cap, so the replay is bounded.
                let low = base.min(cap);
                let mut previous = base;
                let mut delay = low;
                for _ in 0..attempt.clamp(1, MAX_REPLAYED_STEPS) {
                    let high = previous.saturating_mul(3).max(low);
                    delay = low
                        .saturating_add((high - low).mul_f64(units.next_unit()))
                        .min(cap);
                    previous = delay;
                }
                delay
            }
        }
    }
}
