//! A worker pool on OS threads for brigade: a bounded queue (backpressure), elastic
//! workers, handles you can join or cancel, contained panics, graceful and deadline
//! shutdowns, and the middleware hooks of `brigade-core` driven at their points.
//!
//! ```
//! use brigade_core::JobContext;
//! use brigade_thread::ThreadPool;
//!
//! let pool = ThreadPool::builder().name("squares").workers(4).build()?;
//! let handles: Vec<_> = (1..=10u64)
//!     .map(|n| pool.submit(move |_: &JobContext| Ok::<_, String>(n * n)).unwrap())
//!     .collect();
//! let total: u64 = handles.into_iter().map(|handle| handle.join().unwrap()).sum();
//! assert_eq!(total, 385);
//! # Ok::<(), brigade_core::ConfigError>(())
//! ```
//!
//! # How it works
//!
//! Jobs wait in one bounded crossbeam channel; workers block on it (an idle pool burns no
//! CPU). A pool typed on its job stores jobs inline: `submit` allocates the handle only,
//! `execute` nothing. Workers above the minimum retire after `keep_alive` without work, and
//! a submit spawns a worker when the queue outruns the idle ones. With middleware, a timer
//! thread holds delayed jobs (retry backoff, deferred starts) and deadlines; a job coming
//! back from it re-enters through a separate unbounded channel, so it is never refused by
//! the full queue it was already accepted through. Without middleware none of that exists.
//!
//! Each run happens inside a `tracing` span `job` with the fields `pool`, `id` and
//! `attempt`.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod gate;
mod hooks;
mod idle;
mod map;
mod pool;
mod roster;
mod run;
mod shared;
mod shutdown;
mod submit;
mod sync;
mod task;
mod timer;
mod worker;

pub use builder::{Builder, DEFAULT_KEEP_ALIVE, DEFAULT_NAME, DEFAULT_QUEUE_SLOTS_PER_WORKER};
pub use pool::{BoxPool, ThreadPool};
