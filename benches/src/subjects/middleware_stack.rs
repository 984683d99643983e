use std::convert::Infallible;
use std::sync::Arc;

use brigade_core::hooks::Middleware;
use brigade_middleware::{Backpressure, Overflow, Rate, RateLimit, Retry};

use crate::BenchJob;

/// The stack the `middleware` workload puts in front of brigade's pools, in the order a user
/// would add it: retry (3 attempts; the noop job never fails, so it only decides "done"), a
/// rate limit too high to ever defer a start (a billion per second: every job still pays
/// the GCRA compare-and-swap, and the clock read it needs), and a backpressure layer. The
/// backpressure layer blocks rather than drops, so every job still runs and the result
/// check holds. A blocking backpressure layer screens no submits (`Middleware::sees_submits`
/// is false for it: the bounded queue already blocks the submitter), so this stack's
/// submits skip admission, as a user's with the same stack would.
///
/// # Examples
///
/// ```
/// let stack = brigade_benches::middleware_stack();
/// assert_eq!(stack.len(), 3);
/// ```
#[must_use]
pub fn middleware_stack() -> Vec<Arc<dyn Middleware<BenchJob, Infallible>>> {
    Stack::Full.layers()
}

/// The stack's rate limit: a billion starts a second with a burst of 1,000, so it never
/// defers a start, yet each start pays the clock read and the compare-and-swap of a live
/// limit. The criterion bench `hooks` times its start alone.
///
/// # Examples
///
/// ```
/// let limit = brigade_benches::unbiting_rate_limit();
/// assert!(limit.try_acquire(std::time::Instant::now()).is_ok());
/// ```
#[must_use]
pub fn unbiting_rate_limit() -> RateLimit {
    RateLimit::builder(Rate::per_second(1e9))
        .burst(1_000)
        .build()
        .expect("a billion per second is a valid rate")
}

/// Which layers a brigade subject runs its jobs through.
///
/// # Examples
///
/// ```
/// use brigade_benches::Stack;
/// assert!(Stack::Bare.layers().is_empty());
/// assert_eq!(Stack::WithoutRateLimit.layers().len(), 2);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stack {
    /// No layers.
    #[default]
    Bare,
    /// [`middleware_stack`]: retry, rate limit, backpressure.
    Full,
    /// Retry and backpressure: the stack without the one layer that needs the time, so a
    /// start reads no clock (`Layers::needs_start_time`). Beside `Full`, it shows what
    /// the rate limit's clock read and shared line cost.
    WithoutRateLimit,
}

impl Stack {
    /// The layers, in the order a pool adds them.
    #[must_use]
    pub fn layers(self) -> Vec<Arc<dyn Middleware<BenchJob, Infallible>>> {
        let retry = || -> Arc<dyn Middleware<BenchJob, Infallible>> {
            Arc::new(
                Retry::<Infallible>::builder()
                    .build()
                    .expect("default retry policy is valid"),
            )
        };
        let backpressure = || -> Arc<dyn Middleware<BenchJob, Infallible>> {
            Arc::new(Backpressure::<BenchJob>::new(Overflow::Block))
        };
        match self {
            Stack::Bare => Vec::new(),
            Stack::Full => vec![retry(), Arc::new(unbiting_rate_limit()), backpressure()],
            Stack::WithoutRateLimit => vec![retry(), backpressure()],
        }
    }
}
