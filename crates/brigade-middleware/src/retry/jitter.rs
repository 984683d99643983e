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

/// How many steps of a decorrelated walk are replayed at most: the cost of one delay is
/// bounded, and the replay is exact for every attempt up to this one (and, past it, as soon
/// as the replayed walk reaches the cap: see `decorrelated`).
const MAX_REPLAYED_STEPS: u32 = 1024;

/// Spreads an attempt or step number over the seed's bits, so neighbouring numbers seed
/// unrelated draws (the 64-bit golden ratio, as in Fibonacci hashing).
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

/// The uniform draw in `[0, 1)` of a job's `seed` at `index` (an attempt, or a step of the
/// decorrelated walk): a function of the two alone, so any draw can be made again without
/// the ones before it.
fn draw(seed: u64, index: u32) -> f64 {
    fastrand::Rng::with_seed(seed ^ u64::from(index).wrapping_mul(SPREAD)).f64()
}

impl Jitter {
    /// The delay after failed run `attempt` of the job whose draws come from `seed`.
    ///
    /// `ceiling(k)` is `exp(k)`; `base` and `cap` bound the decorrelated walk.
    pub(crate) fn apply(
        self,
        attempt: u32,
        base: Duration,
        cap: Duration,
        ceiling: impl Fn(u32) -> Duration,
        seed: u64,
    ) -> Duration {
        match self {
            Jitter::None => ceiling(attempt),
            Jitter::Full => ceiling(attempt).mul_f64(draw(seed, attempt)),
            Jitter::Equal => {
                let top = ceiling(attempt);
                let half = top / 2;
                // Saturating: float rounding must not push a delay near `Duration::MAX` over.
                half.saturating_add((top - half).mul_f64(draw(seed, attempt)))
            }
            Jitter::Decorrelated => decorrelated(attempt, base, cap, seed),
        }
    }
}

/// Step `attempt` of the job's decorrelated walk, `delay(k) = min(cap, uniform in
/// [base, 3 · delay(k - 1)])` from `delay(0) = base`, each step's draw fixed by the seed
/// and the step's number.
///
/// The policy keeps no per-job state, so the walk is replayed. Up to
/// [`MAX_REPLAYED_STEPS`] it is replayed from the first failure: exact. Past that, only its
/// last `MAX_REPLAYED_STEPS` steps are, from `base`, so the cost stays bounded and each
/// attempt's delay still comes from its own steps. That replay is the walk itself as soon
/// as it touches the cap: a step is monotonic in the delay before it, so the true walk, at
/// or above the replayed one, is at the cap too at that step, and the two share every step
/// after it. A walk from `base` reaches a cap 10⁹ times larger within that many steps all
/// but always, one 10¹² times larger in more than 999 walks of 1,000 (its logarithm gains
/// about 0.1 a step on average); a replay that did not still gives a delay within
/// `[base, cap]`, at most the walk's.
fn decorrelated(attempt: u32, base: Duration, cap: Duration, seed: u64) -> Duration {
    let low = base.min(cap);
    let first = attempt.saturating_sub(MAX_REPLAYED_STEPS - 1).max(1);
    let mut delay = low;
    let mut previous = base;
    for step in first..=attempt.max(1) {
        let high = previous.saturating_mul(3).max(low);
        delay = low
            .saturating_add((high - low).mul_f64(draw(seed, step)))
            .min(cap);
        previous = delay;
    }
    delay
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole walk from the first failure, however long.
    fn full_walk(attempt: u32, base: Duration, cap: Duration, seed: u64) -> Duration {
        let low = base.min(cap);
        let mut previous = base;
        let mut delay = low;
        for step in 1..=attempt.max(1) {
            let high = previous.saturating_mul(3).max(low);
            delay = low
                .saturating_add((high - low).mul_f64(draw(seed, step)))
                .min(cap);
            previous = delay;
        }
        delay
    }

    #[test]
    fn the_bounded_replay_is_the_walk_itself() {
        let (base, cap) = (Duration::from_millis(1), Duration::from_secs(3600));
        for seed in 0..40 {
            for attempt in [1, 2, 64, 65, 1023, 1024, 1025, 1100, 2500] {
                assert_eq!(
                    decorrelated(attempt, base, cap, seed),
                    full_walk(attempt, base, cap, seed),
                    "seed {seed}, attempt {attempt}"
                );
            }
        }
    }

    #[test]
    fn each_decorrelated_delay_grows_from_the_one_before() {
        let (base, cap) = (Duration::from_millis(1), Duration::from_secs(3600));
        for seed in 0..8 {
            for attempt in (2..100).chain(1000..1100) {
                let before = decorrelated(attempt - 1, base, cap, seed);
                let delay = decorrelated(attempt, base, cap, seed);
                assert!(
                    delay >= base && delay <= before.saturating_mul(3).min(cap),
                    "seed {seed}, attempt {attempt}: {before:?} then {delay:?}"
                );
            }
        }
    }
}
