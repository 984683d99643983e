//! The async backend of brigade: a bounded, elastic pool of async jobs on tokio, with the
//! same contracts as the thread backend (`brigade-thread`).
//!
//! ```
//! use brigade_core::{JobContext, async_job_fn};
//! use brigade_tokio::TokioPool;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let pool = TokioPool::builder().name("squares").workers(3).queue_capacity(8).build().unwrap();
//! let job = async_job_fn(|cx| async move { Ok::<_, String>(cx.id().get() * 2) });
//! let handle = pool.submit(job).await.unwrap(); // waits while the queue is full
//! assert_eq!(handle.await.unwrap(), 2);         // handles are futures
//! assert!(pool.shutdown().await.is_clean());    // drains, then every task has exited
//! # }
//! ```
//!
//! - Jobs implement [`AsyncJob`](brigade_core::AsyncJob) (closures returning futures do);
//!   [`BoxAsyncJob`](brigade_core::BoxAsyncJob) mixes kinds in one pool.
//! - At most `max_workers` jobs run at once; [`TokioPool::submit`] waits while the queue is
//!   full, [`TokioPool::try_submit`] and [`TokioPool::submit_timeout`] don't (or not for
//!   long), and [`TokioPool::blocking_submit`] serves synchronous callers.
//! - Handles ([`JobHandle`](brigade_core::JobHandle)) are futures and cancel their job;
//!   [`Completions`](brigade_core::Completions) yields results as a `Stream` in completion
//!   order; [`TokioPool::map`] / [`TokioPool::map_unordered`] run a `Stream` of jobs.
//! - Each job's [`CancellationToken`](brigade_core::CancellationToken) is a child of the
//!   pool's, which a shutdown deadline cancels.
//! - Middleware from `brigade-middleware` plugs in with [`Builder::layer`]; its decisions are
//!   carried out with tokio's clock, and a job waiting for a retry or a start time waits in
//!   a delay queue, never on a worker.
//! - [`ErrGroup`]: a bounded group of tasks where the first error cancels the rest.
//!
//! # Features
//!
//! - `metrics`: the pool emits its counters, gauges and histograms through the
//!   [`metrics`](https://docs.rs/metrics) facade, Prometheus-named and labelled with the
//!   pool's name, to whatever recorder is installed when the pool is built
//!   (`docs/metrics.md` lists every series). Off, nothing of it is compiled in.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod blocking;
mod builder;
mod errgroup;
mod map;
mod pool;
mod ready_queue;
mod roster;
mod schedule;
mod shared;
mod timer;
mod worker;

pub use builder::Builder;
pub use errgroup::ErrGroup;
pub use map::MapResult;
pub use pool::{AsyncJobHandle, BoxPool, TokioPool};
