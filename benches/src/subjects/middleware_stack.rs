use std::convert::Infallible;
use std::sync::Arc;

use brigade_core::hooks::Middleware;
use brigade_middleware::{Backpressure, Overflow, Rate, RateLimit, Retry};

use crate::BenchJob;

/// The stack the `middleware` workload puts in front of brigade's pools, in the order a user
/// would add it: retry (3 attempts; the noop job never fails, so it only decides "done"), a
/// rate limit too high to ever defer a start (a billion per second: every job still pays
/// the GCRA compare-and-swap), and a backpressure layer. The backpressure layer blocks
/// rather than drops, so every job still runs and the result check holds. A blocking
/// backpressure layer screens no submits (`Middleware::sees_submits` is false for it: the
/// bounded queue already blocks the submitter), so this stack's submits skip admission, as
/// a user's with the same stack would.
///
/// # Examples
///
/// ```
/// let stack = brigade_benches::middleware_stack();
/// assert_eq!(stack.len(), 3);
/// ```
#[must_use]
pub fn middleware_stack() -> Vec<Arc<dyn Middleware<BenchJob, Infallible>>> {
    let retry = Retry::<Infallible>::builder()
        .build()
        .expect("default retry policy is valid");
    let rate_limit = RateLimit::builder(Rate::per_second(1e9))
        .burst(1_000)
        .build()
        .expect("a billion per second is a valid rate");
    let backpressure = Backpressure::<BenchJob>::new(Overflow::Block);
    vec![
        Arc::new(retry),
        Arc::new(rate_limit),
        Arc::new(backpressure),
    ]
}
