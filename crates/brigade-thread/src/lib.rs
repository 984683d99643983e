//! A worker pool on OS threads for brigade: a bounded queue (backpressure), elastic
//! workers, handles you can join or cancel, contained panics, graceful and deadline
//! shutdowns, and the middleware hooks of `brigade-core` driven at their points.
//!
//! ```
//! use brigade_core::{JobContext, job_fn};
//! use brigade_thread::ThreadPool;
//!
//! let pool = ThreadPool::builder().name("squares").workers(4).build()?;
//! let handles: Vec<_> = (1..=10u64)
//!     .map(|n| pool.submit(job_fn(move |_| Ok::<_, String>(n * n))).unwrap())
//!     .collect();
//! let total: u64 = handles.into_iter().map(|handle| handle.join().unwrap()).sum();
//! assert_eq!(total, 385);
//! # Ok::<(), brigade_core::ConfigError>(())
//! ```
//!
//! # What a pool does
//!
//! - **Backpressure.** Jobs wait in one bounded queue: [`ThreadPool::submit`] blocks
//!   while it is full, [`ThreadPool::try_submit`] and [`ThreadPool::submit_timeout`] give
//!   the job back instead; [`ThreadPool::execute`] runs a job with no handle.
//! - **Handles.** Join (blocking, with a timeout, or not at all), `.await`, or cancel a
//!   job through its `JobHandle`; a job cancelled before it starts never runs. Dropping a
//!   handle neither cancels the job nor leaks it. [`ThreadPool::map`] and
//!   [`ThreadPool::map_unordered`] run an iterator of jobs with a bound on those in flight,
//!   handing back any job the pool refuses ([`MapResult`]).
//! - **Panics** are contained: a panicking job ends with a `JobError` carrying the panic's
//!   message and the worker carries on.
//! - **Shutdown.** [`ThreadPool::shutdown`] (graceful: everything accepted runs, delayed
//!   retries included), [`ThreadPool::shutdown_timeout`] (then cancels the running jobs'
//!   tokens and hands back the unstarted jobs), [`ThreadPool::shutdown_now`]. Dropping
//!   the pool is a graceful shutdown that joins its threads.
//! - **Elastic workers.** Between `min_workers` and `max_workers`: a submit spawns a
//!   worker when the queue outruns the idle ones; a worker above the minimum retires after
//!   `keep_alive` without work; [`ThreadPool::resize`] changes the range at run time.
//! - **Observable.** [`ThreadPool::stats`] is a snapshot of atomics; each run happens in a
//!   `tracing` span `job` with the fields `pool`, `id` and `attempt`.
//! - **Middleware.** Layers added with [`Builder::layer`] are asked at their hooks: admit
//!   at submit, before start, a run's deadline, after run (retry at a later time, dead
//!   letter). Waiting jobs never hold a worker.
//!
//! # How it works
//!
//! Workers block on a crossbeam channel, so an idle pool burns no CPU. A pool typed on its
//! job stores jobs inline in the queue: `submit` allocates the handle only, `execute`
//! nothing. With middleware, a timer thread keeps a heap of delayed jobs and deadlines; a
//! job coming back from it re-enters through a separate unbounded queue that workers look
//! at before the ready queue, so a full queue never refuses a job it already accepted.
//! Without middleware none of that exists and no hook is consulted.
//!
//! A submit racing a shutdown either gets its job back (`Closed`) or has it accepted and
//! finished: submitters pass a gate (one atomic word: a closed bit and a count) that a
//! shutdown closes and waits to empty before it drains anything. A worker retiring as a job
//! arrives looks at the queue again after leaving the roster, so no job is left without a
//! worker, even with `min_workers(0)`. These protocols are checked with loom
//! (`RUSTFLAGS="--cfg brigade_loom" cargo test -p brigade-thread --release --lib loom`).
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

mod builder;
mod errgroup;
mod hooks;
mod idle;
mod intake;
mod map;
mod pool;
mod ready_queue;
mod roster;
mod shared;
mod shutdown;
mod signals;
mod submit;
mod submit_gate;
mod sync;
mod task;
mod threads;
mod timer;
mod worker;

pub use builder::{
    Builder, DEFAULT_KEEP_ALIVE, DEFAULT_NAME, DEFAULT_QUEUE_SLOTS_PER_WORKER, MAX_QUEUE_CAPACITY,
};
pub use errgroup::ErrGroup;
pub use map::MapResult;
pub use pool::{BoxPool, ThreadPool};
