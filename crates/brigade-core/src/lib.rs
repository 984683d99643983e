//! The vocabulary of brigade: jobs, their context and handles, the errors that hand a job
//! back, the stats every pool keeps, and the hooks middleware plugs into.
//!
//! This crate has no threads and no runtime; the backends (`brigade-thread`,
//! `brigade-tokio`) run jobs, and the policies of `brigade-middleware` decide through
//! [`hooks::Middleware`]. A job written against this crate runs on either backend.
//!
//! ```
//! use brigade_core::{CancellationToken, Job, JobContext, JobHandle, JobId};
//! use brigade_core::backend::job_handle;
//! use brigade_core::backend::job_errors;
//!
//! // A job: a closure from its context to a result.
//! let mut job = |cx: &JobContext| -> Result<String, String> {
//!     Ok(format!("job {} ran on attempt {}", cx.id(), cx.attempt()))
//! };
//!
//! // What a backend does with it: run it and complete its handle.
//! let pool_token = CancellationToken::new();
//! let (handle, completer) = job_handle(JobId::new(1), &pool_token);
//! let cx = JobContext::new(completer.id(), "demo".into(), completer.token());
//! completer.complete(job.run(&cx).map_err(|e| job_errors::failed(e, 1)));
//! assert_eq!(handle.join().unwrap(), "job #1 ran on attempt 1");
//! ```
//!
//! # Features
//!
//! - `testkit`: the conformance kit, the design's contracts written once as checks that
//!   each backend runs against itself.
//! - `metrics`: the pool's series in the [`metrics`](https://docs.rs/metrics) facade
//!   (`backend::PoolMetrics`), which the pools' own `metrics` features turn on; the names
//!   are listed in `docs/metrics.md`.
#![warn(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod async_job;
pub mod backend;
mod cancel;
mod completions;
mod config_error;
mod context;
mod errgroup_state;
mod executor;
mod handle;
pub mod hooks;
mod in_async_context;
mod instant_after;
mod job;
// The handle cell's layout and protocol: the crate's only `unsafe` code.
#[allow(unsafe_code)]
mod job_cell;
mod job_error;
mod map_error;
mod pool_settings;
mod run_result;
mod shutdown;
mod sizing;
mod stats;
mod striped_counter;
mod submit_error;
mod sync;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
mod thread_waker;
mod worker_range;

pub use async_job::{AsyncJob, BoxAsyncJob, async_job_fn};
pub use cancel::{CancellationToken, Cancelled};
pub use completions::Completions;
pub use config_error::ConfigError;
pub use context::{JobContext, JobId};
pub use errgroup_state::ErrGroupCounts;
pub use executor::Executor;
pub use handle::{JobHandle, JobResult};
pub use in_async_context::InAsyncContext;
pub use instant_after::instant_after;
pub use job::{BoxJob, Job, job_fn};
pub use job_error::{ErrorKind, JobError};
pub use map_error::MapError;
pub use run_result::Attempts;
pub use shutdown::ShutdownReport;
pub use sizing::{Workload, available_cores};
pub use stats::Stats;
pub use submit_error::{Rejection, SubmitError, SubmitTimeoutError, TrySubmitError};
pub use worker_range::MAX_WORKERS;
