//! The settings every process of a run shares: the worker's timings and the global limits
//! the checker holds the ledgers against.

use std::time::Duration;

use brigade_queue::{GlobalConcurrency, GlobalRate};

/// The queue all jobs go through.
pub(crate) const QUEUE: &str = "chaos";
/// The store's schema (the default one, so the table is `brigade.jobs`).
pub(crate) const SCHEMA: &str = brigade_postgres::DEFAULT_SCHEMA;

/// Short, so that faults past the lease fit in a few seconds each.
pub(crate) const LEASE: Duration = Duration::from_secs(2);
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(400);
pub(crate) const SWEEP: Duration = Duration::from_millis(500);
pub(crate) const POLL: Duration = Duration::from_millis(200);
/// Longer than the heartbeat (the default): on two cores shared with the server and four
/// other processes, a store call now and then takes longer than 400 ms, and each such
/// timeout would cost a lease for no fault of the store.
pub(crate) const STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a SIGTERM lets running jobs finish before the worker stops them and gives their
/// jobs back. Short, so that a graceful restart meets runs that outlast it (the producer
/// sends one on request, and one flow job in six takes 0.5–1.5 s) and takes little of the
/// run's time. (It was 3 s until the graceful-restart fault: only the retirement, on a
/// drained queue, sent SIGTERM then.)
pub(crate) const GRACE: Duration = Duration::from_secs(1);

/// Jobs each worker process holds at once; four workers hold twice the global units, so
/// the concurrency limit binds.
pub(crate) const WORKER_CONCURRENCY: usize = 4;
/// Units of the global concurrency limit (every job weighs 1).
pub(crate) const UNITS: u32 = 8;
/// Starts per second of the global rate limit, and its burst. The producer's batches
/// arrive faster than this, so the limit binds.
pub(crate) const RATE_PER_SECOND: u32 = 100;
pub(crate) const RATE_BURST: u32 = 20;

/// Runs a poison job gets: each one kills the worker that runs it.
pub(crate) const POISON_MAX_ATTEMPTS: u32 = 3;
/// Runs a job that always fails gets: it must be dead after exactly this many.
pub(crate) const ALWAYS_FAILING_MAX_ATTEMPTS: u32 = 3;
/// The priority of the job past the grace the producer sends before a graceful restart:
/// ahead of any backlog, so that it is running when the SIGTERM comes.
pub(crate) const PAST_GRACE_PRIORITY: i16 = 10;

/// The bound on the time from a kill -9 to the next start of each job the killed worker
/// held: the lease runs out, one sweep finds it, the next sweep interval covers the claim
/// and the trip through the gate, and one store call's timeout covers a claim or a sweep
/// that waits on a busy store (on two cores shared with debug builds of every process, a
/// SQLite writer lock or a PostgreSQL commit now and then takes several hundred ms).
pub(crate) fn redelivery_bound() -> Duration {
    LEASE + SWEEP * 2 + STORE_TIMEOUT
}

/// How long a worker asked to stop (SIGTERM) may take to exit: the grace, the wait for
/// stopped runs to heed their token (two store timeouts), a claim still unanswered (a
/// lease and a store timeout), the local pool's stop (a store timeout), and a margin.
pub(crate) fn exit_patience() -> Duration {
    GRACE + STORE_TIMEOUT * 4 + LEASE + Duration::from_secs(1)
}

/// How long after a run's end its ack can still be unsettled: the worker first gives back
/// the run's units (one store call), then records the end, retrying while it can still
/// vouch for the lease — a lease at most once the store stops answering — with one more
/// call's timeout for the last try. A fault of the worker or of the store after this
/// window cannot have cost that ack, so it does not explain a rerun of the job.
pub(crate) fn ack_window() -> Duration {
    LEASE + STORE_TIMEOUT * 2
}

/// The global rate limit every worker names.
pub(crate) fn global_rate() -> Result<GlobalRate, String> {
    GlobalRate::new("chaos-rate", RATE_PER_SECOND, Duration::from_secs(1))
        .and_then(|rate| rate.burst(RATE_BURST))
        .map_err(|error| format!("global rate: {error}"))
}

/// The global concurrency limit every worker names.
pub(crate) fn global_units() -> Result<GlobalConcurrency, String> {
    GlobalConcurrency::new("chaos-units", UNITS)
        .map_err(|error| format!("global concurrency: {error}"))
}
