//! The job both queues carry, and the clock its timestamps come from.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A job that does nothing: what it costs is the queue's own cost per job.
///
/// `enqueued_us` is read from the wall clock just before the producer's enqueue call, so a
/// job's enqueue → start latency includes the enqueue's own round trip, as its user sees
/// it. Producer and workers run on one machine, so they share the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoopJob {
    /// The job's number in its run, from 0: every number must be seen run.
    pub seq: u64,
    /// When the producer enqueued it, in µs since the Unix epoch.
    pub enqueued_us: i64,
}

/// Microseconds since the Unix epoch: the one clock the producer, every worker process and
/// the database's `now()` share on this machine.
///
/// # Examples
///
/// ```
/// assert!(brigade_benches::durable::wall_clock_us() > 1_700_000_000_000_000);
/// ```
#[must_use]
pub fn wall_clock_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
        })
}
