//! A durable brigade job queue on PostgreSQL.
//!
//! [`PgStore`] implements [`brigade_queue::Store`]: the jobs live in one table of a schema
//! of yours, claimed with `FOR UPDATE SKIP LOCKED` in batches, leased under fencing tokens,
//! renewed by batched heartbeats, rescued when a worker dies, and woken by `LISTEN/NOTIFY`
//! with polling behind it. Enqueue inside your own transaction with
//! [`PgStore::enqueue_in`]. Rate and concurrency limits shared by every host live in the
//! same schema, on the database's clock. It needs PostgreSQL 12 or newer (its statements
//! use `WITH … AS MATERIALIZED`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use brigade_core::CancellationToken;
//! use brigade_postgres::PgStore;
//! use brigade_queue::{Delivery, Queue, Worker};
//!
//! let store = PgStore::connect(&std::env::var("DATABASE_URL")?).await?;
//! Queue::new(store.clone(), "thumbnails").enqueue_batch(vec![1_u64, 2, 3]).await?;
//!
//! let worker = Worker::builder(store, "thumbnails").concurrency(4).handle(
//!     |image: u64, delivery: Delivery| async move {
//!         println!("thumbnail of image {image}, run {}", delivery.attempt());
//!         Ok::<(), String>(())
//!     },
//! )?;
//! let shutdown = CancellationToken::new();
//! let report = worker.run(shutdown).await;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `local-cluster`: [`LocalCluster`], a throwaway server started from the machine's
//!   PostgreSQL binaries, and [`fresh_database`], for tests and examples.
//! - `testkit`: `local-cluster` plus the store conformance kit of `brigade-queue`.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod enqueue;
mod error;
#[cfg(feature = "local-cluster")]
mod local_cluster;
mod lock_wait;
mod migrations;
mod rows;
mod schema;
mod statements;
mod store;
mod wakeups;

#[cfg(feature = "local-cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "local-cluster")))]
pub use local_cluster::{LocalCluster, LocalClusterError, fresh_database};
pub use store::{DEFAULT_SCHEMA, MAX_ACQUIRE_TIMEOUT, PgStore, PgStoreBuilder};
