//! What a backend is built from, for those who write one (the thread and tokio pools):
//! users of a pool never need this module.
//!
//! - [`JobDriver`]: one job's way through a pool, the same on every backend (cancelled
//!   before its start, the layers' start decision, the run's context, deadline and span,
//!   the run's end becoming a terminal state, a retry or a dead letter, contained hook
//!   panics) and the pool's books. A backend implements [`Backend`] (its clock, its queues,
//!   its wake-ups), calls [`JobDriver::begin`], runs the job its own way, and hands the
//!   run's end to [`JobDriver::end`].
//! - [`Task`] and [`Done`]: what travels through a backend's queues.
//! - [`OrderedResults`]: a bulk run's results in submission order, with no handle per job;
//!   [`InFlightLimit`]: how many of its jobs it keeps in flight, and when it tops them up.
//! - [`CapacityWaits`]: jobs waiting for capacity, served first in, first out.
//! - [`DelayQueue`]: jobs waiting for a time, earliest first.
//! - [`CancelWatch`]: how a cancel reaches a job waiting in either, at once.
//! - [`job_errors`]: the constructors of a [`JobError`](crate::JobError), one per terminal
//!   state.
//! - `PoolMetrics` (feature `metrics`): the pool's series in the `metrics` facade: its books
//!   published to the recorder, and sampled histograms of queue wait and run time.

mod cancel_watch;
mod capacity_waits;
mod delay_queue;
mod driver;
mod in_flight_limit;
pub mod job_errors;
mod job_span;
#[cfg(feature = "metrics")]
mod metrics;
mod ordered_results;
mod task;
mod worker_seat;

#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub use self::metrics::PoolMetrics;
pub use cancel_watch::CancelWatch;
pub use capacity_waits::{CapacityWaits, RunTicket};
pub use delay_queue::DelayQueue;
pub use driver::{Backend, JobDriver, Run, drop_quietly};
pub use in_flight_limit::InFlightLimit;
pub use ordered_results::{OrderedResults, ResultSlot};
pub use task::{Done, Reply, Task};
pub use worker_seat::WorkerSeat;

// The vocabulary only a backend speaks: how a handle is completed, the counters and gauges
// behind `Stats`, the settings and worker range both builders check, what `ErrGroup`s share, and what a
// run returned.
pub use crate::errgroup_state::ErrGroupState;
pub use crate::handle::{Completer, JobHandles, job_handle};
pub use crate::job_error::panic_message;
pub use crate::pool_settings::{
    DEFAULT_KEEP_ALIVE, DEFAULT_POOL_NAME, DEFAULT_QUEUE_SLOTS_PER_WORKER, PoolSettings,
    ResolvedSettings,
};
pub use crate::run_result::RunEnd;
pub use crate::stats::{Gauges, StatsCounters};
pub use crate::worker_range::WorkerRange;
