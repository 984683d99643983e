//! Bounded-concurrency job processing: a fixed or elastic set of workers draining a bounded
//! queue, on OS threads or on tokio, with middleware for retry with backoff, dead-letter
//! queues, rate limits and backpressure drop.
//!
//! ```
//! # #[cfg(feature = "thread")] {
//! use brigade::prelude::*;
//!
//! let pool = ThreadPool::builder().name("resize").workers(4).queue_capacity(64).build()?;
//! let handles: Vec<_> = (1..=8u32)
//!     .map(|width| pool.submit(job_fn(move |_cx| Ok::<_, String>(width * 100))))
//!     .collect::<Result<_, _>>()?;
//! let widths: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
//! assert_eq!(widths, vec![100, 200, 300, 400, 500, 600, 700, 800]);
//! pool.shutdown();
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Jobs are values implementing [`Job`] (or closures); a pool accepts jobs of one type and
//! hands back every job it refuses. See the crate map below for where each piece lives;
//! every sub-crate can also be used on its own.
//!
//! # Features
//!
//! | feature | default | enables |
//! | --- | --- | --- |
//! | `thread` | yes | [`thread`]: the OS-thread backend (`brigade-thread`, on crossbeam) |
//! | `tokio` | no | [`tokio`]: the async backend (`brigade-tokio`) |
//! | `retry` | no | [`middleware`] retry with exponential backoff, jitter and a retry budget |
//! | `dead-letter` | no | [`middleware`] dead-letter queue with the in-memory sink, replay |
//! | `dead-letter-jsonl` | no | the durable JSON Lines dead-letter sink, replay (serde) |
//! | `rate-limit` | no | [`middleware`] GCRA rate limit, shared or per key |
//! | `drop` | no | [`middleware`] backpressure policies for a full queue |
//! | `weighted` | no | [`middleware`] weighted concurrency |
//! | `timeout` | no | [`middleware`] per-job deadlines |
//! | `middleware` | no | all of the middleware above |
//! | `queue` | no | [`queue`]: durable queues (`brigade-queue`): `Queue`, `Worker`, the `Store` trait |
//! | `postgres` | no | [`postgres`]: the durable store on PostgreSQL (`brigade-postgres`) |
//! | `redis` | no | [`redis`]: the durable store on Redis (`brigade-redis`) |
//! | `sqlite` | no | [`sqlite`]: the durable store in a SQLite file, no server to run (`brigade-sqlite`) |
//! | `metrics` | no | pool metrics through the [`metrics`](https://docs.rs/metrics) facade, Prometheus naming, for the pools enabled (`docs/metrics.md`) |
//! | `full` | no | everything |
//!
//! # Crate map
//!
//! | crate | what it holds |
//! | --- | --- |
//! | `brigade-core` | the vocabulary: jobs, contexts, handles, errors, stats, the middleware [`hooks`] |
//! | `brigade-thread` | the OS-thread pool |
//! | `brigade-tokio` | the async pool |
//! | `brigade-middleware` | the runtime-free policies both pools drive |
//! | `brigade-queue` | durable jobs, the `Store` trait, the `Worker` that feeds a pool from a store |
//! | `brigade-postgres` | the durable store on PostgreSQL |
//! | `brigade-redis` | the durable store on Redis |
//! | `brigade-sqlite` | the durable store in a SQLite file |
#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use brigade_core::{
    AsyncJob, BoxAsyncJob, BoxJob, CancellationToken, Completions, ConfigError, ErrorKind,
    Executor, InAsyncContext, Job, JobContext, JobError, JobHandle, JobId, JobResult, MapError,
    Rejection, ShutdownReport, Stats, SubmitError, SubmitTimeoutError, TrySubmitError, Workload,
    async_job_fn, available_cores, job_fn,
};

/// The hooks through which backends drive middleware (`brigade_core::hooks`).
#[doc(inline)]
pub use brigade_core::hooks;

#[cfg(feature = "thread")]
#[cfg_attr(docsrs, doc(cfg(feature = "thread")))]
#[doc(inline)]
pub use brigade_thread as thread;

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
#[doc(inline)]
pub use brigade_tokio as tokio;

#[cfg(any(
    feature = "retry",
    feature = "dead-letter",
    feature = "rate-limit",
    feature = "drop",
    feature = "weighted",
    feature = "timeout"
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "retry",
        feature = "dead-letter",
        feature = "rate-limit",
        feature = "drop",
        feature = "weighted",
        feature = "timeout"
    )))
)]
#[doc(inline)]
pub use brigade_middleware as middleware;

#[cfg(feature = "queue")]
#[cfg_attr(docsrs, doc(cfg(feature = "queue")))]
#[doc(inline)]
pub use brigade_queue as queue;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[doc(inline)]
pub use brigade_postgres as postgres;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[doc(inline)]
pub use brigade_redis as redis;

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
#[doc(inline)]
pub use brigade_sqlite as sqlite;

/// The names most programs need: `use brigade::prelude::*;`.
pub mod prelude {
    #[doc(no_inline)]
    pub use brigade_core::{
        BoxJob, Executor, Job, JobContext, JobError, JobHandle, MapError, Stats, job_fn,
    };

    #[cfg(feature = "thread")]
    #[doc(no_inline)]
    pub use brigade_thread::{BoxPool, ThreadPool};

    #[cfg(feature = "tokio")]
    #[doc(no_inline)]
    pub use brigade_core::AsyncJob;
    #[cfg(feature = "tokio")]
    #[doc(no_inline)]
    pub use brigade_tokio::TokioPool;
}
