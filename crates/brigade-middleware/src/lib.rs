//! Runtime-free policies for brigade pools: retry with backoff and a retry budget, a
//! dead-letter queue, GCRA rate limits, backpressure drop, weighted concurrency and
//! timeouts.
//!
//! Each policy is a [`Middleware`](brigade_core::middleware::Middleware): the backend
//! (`brigade-thread`, `brigade-tokio`) calls it at a job's admission, start and end,
//! passing the current time, and acts on its decision with its own clock and timers. No
//! policy owns a thread, sleeps, or needs a runtime, so one implementation serves both
//! backends and is tested on a fake clock.
//!
//! # Features
//!
//! All on by default.
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `retry` | [`Retry`], [`Backoff`], [`Jitter`], [`RetryBudget`] |
//! | `dead-letter` | [`DeadLetterQueue`], [`MemorySink`], [`JsonlSink`] (serde, serde_json) |
//! | `rate-limit` | [`RateLimit`], [`KeyedRateLimit`], [`Rate`] |
//! | `drop` | [`Backpressure`], [`Overflow`] |
//! | `weighted` | [`WeightedLimit`] |
//! | `timeout` | [`Timeout`] |
#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "dead-letter")]
mod dead_letter;
#[cfg(feature = "drop")]
mod drop;
#[cfg(feature = "rate-limit")]
mod rate_limit;
#[cfg(feature = "retry")]
mod retry;
#[cfg(feature = "timeout")]
mod timeout;
#[cfg(feature = "weighted")]
mod weighted;

#[cfg(feature = "dead-letter")]
#[cfg_attr(docsrs, doc(cfg(feature = "dead-letter")))]
pub use dead_letter::{
    DeadLetterAlert, DeadLetterQueue, DeadLetterSink, JsonlSink, MemorySink, ReplayReport,
    SinkError, StoredLetter,
};
#[cfg(feature = "drop")]
#[cfg_attr(docsrs, doc(cfg(feature = "drop")))]
pub use drop::{Backpressure, Overflow};
#[cfg(feature = "rate-limit")]
#[cfg_attr(docsrs, doc(cfg(feature = "rate-limit")))]
pub use rate_limit::{KeyedRateLimit, KeyedRateLimitBuilder, Rate, RateLimit, RateLimitBuilder};
#[cfg(feature = "retry")]
#[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
pub use retry::{Backoff, Jitter, Retry, RetryBudget, RetryBudgetBuilder, RetryBuilder};
#[cfg(feature = "timeout")]
#[cfg_attr(docsrs, doc(cfg(feature = "timeout")))]
pub use timeout::Timeout;
#[cfg(feature = "weighted")]
#[cfg_attr(docsrs, doc(cfg(feature = "weighted")))]
pub use weighted::WeightedLimit;
