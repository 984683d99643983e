//! Runtime-free policies for brigade pools: retry with backoff and a retry budget, a
//! dead-letter queue, GCRA rate limits, backpressure drop, weighted concurrency and
//! timeouts.
//!
//! ```
//! use std::time::Duration;
//! use brigade_core::{BoxJob, JobContext, job_fn};
//! use brigade_middleware::{Backoff, DeadLetterQueue, MemorySink, Rate, RateLimit, Retry};
//!
//! let dead_letters = MemorySink::new(1_000)?;
//! let pool = brigade_thread::BoxPool::<u32, String>::builder()
//!     .workers(3)
//!     .layer(Retry::builder()                                  // 1. run failures again…
//!         .max_attempts(3)
//!         .backoff(Backoff::exponential(Duration::from_millis(1)).cap(Duration::from_secs(5)))
//!         .build()?)
//!     .layer(DeadLetterQueue::new(dead_letters.clone()))     // 2. …then dead-letter them
//!     .layer(RateLimit::builder(Rate::per_second(1_000)).burst(10).build()?) // 3. pace starts
//!     .build()?;
//!
//! let ok = pool.submit(BoxJob::new(job_fn(|_| Ok(7)))).unwrap();
//! let bad = pool.submit(BoxJob::new(job_fn(|_| Err("SMTP connection failed".to_string())))).unwrap();
//! assert_eq!(ok.join().unwrap(), 7);
//! assert!(bad.join().unwrap_err().is_dead_lettered());
//! pool.shutdown();
//! assert_eq!((pool.stats().retried, pool.stats().dead_lettered), (2, 1));
//! assert_eq!(dead_letters.drain()[0].attempts, 3);
//! # Ok::<(), brigade_core::ConfigError>(())
//! ```
//!
//! Each policy is a [`Middleware`](brigade_core::hooks::Middleware): the backend
//! (`brigade-thread`, `brigade-tokio`) calls it at a job's admission, start and end,
//! passing the current time, and acts on its decision with its own clock and timers. No
//! policy owns a thread, sleeps, or needs a runtime, so one implementation serves both
//! backends and is tested on a fake clock (the policies take `now: Instant`).
//!
//! # Composition order
//!
//! Layers compose in the order they are added, by the rules of
//! [`Layers`](brigade_core::hooks::Layers):
//!
//! 1. **[`Backpressure`] first.** Admission stops at the first layer that does not accept;
//!    a drop policy placed after a rejecting layer would never see those jobs, and one
//!    placed before decides on the queue as the submitter found it.
//! 2. **[`Timeout`] anywhere.** The earliest deadline of all layers wins.
//! 3. **[`Retry`] before [`DeadLetterQueue`].** After a run every layer sees the outcome and
//!    the first that does not say "done" decides: retry keeps the job while attempts and
//!    budget remain, then the dead-letter layer takes it.
//! 4. **[`WeightedLimit`], then [`RateLimit`] / [`KeyedRateLimit`] at the very end.** A
//!    start stops at the first layer that defers it, and the layers before it that granted
//!    are released. A weighted limit's units come back on release; a rate limit's token
//!    does not (it is spent when granted), so a rate limit followed by a deferring layer,
//!    such as a weighted limit that parks the job, would spend tokens on starts that did
//!    not happen. The other way round, a rate limit that defers only makes the weighted
//!    limit before it give its units back. Of two rate limits, the earlier one spends a
//!    token on each start the later one defers: no order avoids that.
//!
//! # Sharing
//!
//! [`RateLimit`], [`KeyedRateLimit`], [`WeightedLimit`], [`RetryBudget`] and the sinks are
//! cheap handles (an `Arc` inside): clone one into several pools to share one limit, one
//! budget, one dead-letter file.
//!
//! # Features
//!
//! All on by default.
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `retry` | [`Retry`], [`Backoff`], [`Jitter`], [`RetryBudget`] |
//! | `dead-letter` | [`DeadLetterQueue`], [`MemorySink`] |
//! | `dead-letter-jsonl` | [`JsonlSink`]: durable letters in a JSON Lines file, with replay (serde, serde_json) |
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
#[cfg(any(feature = "rate-limit", feature = "weighted"))]
mod sync;
#[cfg(feature = "timeout")]
mod timeout;
#[cfg(feature = "weighted")]
mod weighted;

#[cfg(feature = "dead-letter")]
#[cfg_attr(docsrs, doc(cfg(feature = "dead-letter")))]
pub use dead_letter::{
    DeadLetterAlert, DeadLetterQueue, DeadLetterSink, MemorySink, ReplayReport, SinkError,
};
#[cfg(feature = "dead-letter-jsonl")]
#[cfg_attr(docsrs, doc(cfg(feature = "dead-letter-jsonl")))]
pub use dead_letter::{JsonlSink, StoredLetter};
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
