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
//! A step of the host's clock (set by hand, a VM resumed; NTP's ordinary corrections slew
//! it instead) moves every lease, run-at and rate limit by the step. Forward, leases
//! shorter than the step expire at once: their heartbeats are refused, their runs
//! cancelled, their jobs rescued and run again. Back, expired leases are found the step
//! later, scheduled jobs wait the step longer, and a global rate limit grants nothing for
//! up to the step. [`Store::replay_all`](brigade_queue::Store::replay_all) still replays
//! jobs that died before a step back.
//!
//! # One file, one writer
//!
//! A process stopped inside a transaction on the file (`SIGSTOP`, a frozen cgroup, a
//! debugger) keeps its write lock: every write of every process waits the busy timeout
//! and fails as unavailable, which workers retry, and nothing is claimed, recorded or
//! redelivered until it resumes or dies. Keep your own transactions on the file short.
//!
//! A reader holding an old snapshot (a long query, a backup, a process stopped inside a
//! read) keeps checkpoints from passing it, and the write-ahead log grows with every
//! commit until it ends. SQLite reuses the log from its start afterwards but never shrinks
//! it; the store sets `journal_size_limit` to 64 MiB, so the first commit after a
//! checkpoint has caught up cuts the file back to that.
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
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod busy;
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
pub use migrations::SchemaTooNew;
pub use store::SqliteStore;
