//! A durable brigade job queue in a SQLite file: no server to run.
//!
//! [`SqliteStore`] implements [`brigade_queue::Store`] on one file in WAL mode: a service
//! or a CLI keeps its queued jobs through a crash, a deploy or a reboot, and several worker
//! processes on the same host can drain the same file. Claims, acks and heartbeats take
//! SQLite's write lock (`BEGIN IMMEDIATE`), so a job is never claimed twice while its
//! lease holds; every claim gets a fencing token from a counter in the file; leases,
//! run-at times and the global rate limit run on SQLite's clock. Enqueue inside your own
//! transaction with [`SqliteStore::enqueue_in`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use brigade_core::CancellationToken;
//! use brigade_queue::{Delivery, Queue, Worker};
//! use brigade_sqlite::SqliteStore;
//!
//! let store = SqliteStore::open("jobs.db").await?; // creates and migrates the file
//! Queue::new(store.clone(), "thumbnails").enqueue_batch(vec![1_u64, 2, 3]).await?;
//!
//! let worker = Worker::builder(store, "thumbnails").concurrency(4).handle(
//!     |image: u64, delivery: Delivery| async move {
//!         println!("thumbnail of image {image}, run {}", delivery.attempt());
//!         Ok::<(), String>(())
//!     },
//! )?;
//! let report = worker.run(CancellationToken::new()).await;
//! # Ok(())
//! # }
//! ```
//!
//! # Durability
//!
//! [`Synchronous::Full`] (the default) flushes every commit to the disk before it returns:
//! an acknowledged enqueue survives a power loss. [`Synchronous::Normal`] flushes at
//! checkpoints only: a power loss can lose the last transactions (never corrupt the file);
//! a process crash loses nothing either way.
//!
//! # Clock
//!
//! Every time that decides anything is computed in SQL from `unixepoch('subsec')`: the
//! host's clock as SQLite reads it, at millisecond resolution, stored as microseconds
//! since the epoch. A delay is rounded up to the next millisecond so nothing runs early.
//! All processes sharing a file share a host, so they share that clock.
//!
//! # Wake-ups
//!
//! An enqueue wakes this process's idle workers of that queue when its transaction
//! commits. Workers in other processes are not notified (SQLite has no channel between
//! processes): they find the job at their next poll.
//!
//! # Features
//!
//! - `testkit`: the store conformance kit of `brigade-queue`.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod ends;
mod enqueue;
mod error;
mod limits;
mod migrations;
mod rows;
mod statements;
mod store;
mod wakeups;

pub use builder::{MAX_TIMEOUT, SqliteStoreBuilder, Synchronous};
pub use enqueue::MAX_BATCH;
pub use store::SqliteStore;
