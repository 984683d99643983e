//! The durable workloads: brigade's PostgreSQL queue against apalis's, on one database
//! server, drained by real worker processes.
//!
//! A coordinator ([`run_plan`]) gives each measurement a fresh database, enqueues, starts
//! worker processes of this same binary ([`run_worker_process`]) and watches the table
//! drain. Workers log when each job started; the database records when each ended.
//!
//! - **throughput**: jobs enqueued up front in batches, then drained by 1, 2 and 4
//!   processes of the same concurrency; jobs/s from the first start to the last recorded
//!   end.
//! - **throughput-prefilled**: the same on one process, brigade's table already holding
//!   finished rows: claiming must not slow down as history piles up.
//! - **latency**: jobs enqueued one at a time at a steady rate well under capacity; each
//!   job's enqueue → start delay, p50 and p99.

mod apalis;
mod brigade;
mod coordinator;
mod job;
mod plan;
mod run_log;
mod subject;
mod worker_process;

pub use coordinator::{describe_server, run_plan};
pub use job::{NoopJob, wall_clock_us};
pub use plan::{DurablePlan, Measurement};
pub use run_log::{JobRun, RunLog};
pub use subject::DurableSubject;
pub use worker_process::run_worker_process;

pub(crate) use subject::Producer;

/// The queue name both subjects use.
const QUEUE: &str = "noop";
