//! Durable job queues for brigade: jobs kept in a database or broker that many worker
//! processes, on many hosts, drain together, and that no crash loses.
//!
//! This crate is engine-agnostic. It holds the durable job ([`NewJob`], [`Claim`],
//! [`JobRecord`]), the [`Store`] trait an engine implements (`brigade-postgres` for
//! PostgreSQL), the typed producer [`Queue`], and the [`Worker`] that claims jobs from a
//! store and runs them on a local brigade pool (tokio for [`Handler`]s, threads for
//! [`BlockingHandler`]s).
//!
//! ```no_run
//! # async fn demo(store: impl brigade_queue::Store) -> Result<(), Box<dyn std::error::Error>> {
//! use brigade_core::CancellationToken;
//! use brigade_queue::{Delivery, Queue, Worker};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Email { to: String }
//!
//! // Any process: enqueue. The job is kept once `enqueue` returns.
//! let emails = Queue::new(store.clone(), "emails");
//! emails.enqueue(Email { to: "ada@example.test".into() }).await?;
//!
//! // Every worker host: claim and run, until told to stop.
//! let worker = Worker::builder(store, "emails").concurrency(8).handle(
//!     |email: Email, _delivery: Delivery| async move { send(&email.to).await },
//! )?;
//! let report = worker.run(CancellationToken::new()).await;
//! # Ok(())
//! # }
//! # async fn send(_to: &str) -> Result<(), String> { Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! At least once: an enqueue the store acknowledged ends in exactly one terminal state
//! (completed, dead or cancelled) after at least one run, through worker crashes, pauses,
//! partitions and store restarts. A run can happen twice (a worker paused past its lease
//! finishes after another worker ran the job again); its end is then refused by the
//! fencing token and counted as [`WorkerReport::stale`]. Make handlers idempotent.
//!
//! # Features
//!
//! - `thread` (default): blocking handlers on a `brigade-thread` pool.
//! - `testkit`: the store conformance kit ([`testkit`]), the contracts every store keeps,
//!   written once as checks.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod claim;
mod delivery;
mod depth_demand;
mod error;
mod handler;
mod id;
mod limits;
mod new_job;
mod options;
mod queue;
mod record;
mod retention;
mod store;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
mod wakeups;
mod worker;

pub use claim::{Claim, ClaimRequest};
pub use delivery::Delivery;
pub use depth_demand::DepthDemand;
pub use error::{EnqueueError, StoreError};
pub use handler::{BlockingHandler, Handler};
pub use id::{DurableId, FencingToken, Lease};
pub use limits::{GlobalConcurrency, GlobalRate, RateGrant};
pub use new_job::{DEFAULT_MAX_ATTEMPTS, MAX_PAYLOAD_DEPTH, MAX_SCHEDULE_AHEAD, NewJob};
pub use options::{EnqueueOptions, RunAt};
pub use queue::Queue;
pub use record::{JobRecord, JobState, QueueCounts};
pub use retention::{MIN_RETENTION_INTERVAL, spawn_retention};
pub use store::{Ack, Enqueued, Rescued, Store};
pub use wakeups::Wakeups;
pub use worker::{
    DEFAULT_CONCURRENCY, DEFAULT_LEASE, MAX_CONCURRENCY, MAX_LEASE, MIN_HEARTBEAT, MIN_LEASE,
    MIN_STORE_TIMEOUT, Worker, WorkerBuilder, WorkerCounters, WorkerReport,
};
