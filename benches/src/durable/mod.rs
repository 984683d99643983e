//! The durable workloads: brigade's queue against apalis's on PostgreSQL, Redis and
//! SQLite, each pair on one server (or file), drained by real worker processes.
//!
//! A coordinator ([`run_plan`]) gives each measurement fresh storage ([`Engine`]: a fresh
//! database, a flushed Redis server, a new SQLite file), enqueues, starts worker processes
//! of this same binary ([`run_worker_process`]) and watches the queue drain through the
//! subject's own count of unfinished jobs. Workers log when each job started.
//!
//! - **throughput**: jobs enqueued up front in batches, then drained by the engine's
//!   process counts (1, 2, 4; SQLite 1, 2) at the same concurrency; jobs/s from the first
//!   start to the first look that finds no job unfinished.
//! - **throughput-prefilled**: the same on one process, brigade's PostgreSQL table already
//!   holding finished rows: claiming must not slow down as history piles up.
//! - **latency**: jobs enqueued one at a time at a steady rate well under capacity; each
//!   job's enqueue → start delay, p50 and p99.

mod apalis;
mod brigade;
mod coordinator;
mod engine;
mod job;
mod plan;
mod run_log;
mod site;
mod subject;
mod worker_process;

pub use coordinator::run_plan;
pub use engine::Engine;
pub use job::{NoopJob, wall_clock_us};
pub use plan::{DurablePlan, Measurement};
pub use run_log::{JobRun, RunLog};
pub use site::describe_server;
pub use subject::{DurableSubject, Side};
pub use worker_process::run_worker_process;

pub(crate) use subject::Producer;

/// The queue name every subject uses.
const QUEUE: &str = "noop";
