//! A pool's metrics through the [`metrics`](::metrics) facade, with Prometheus naming: the
//! handles are registered once, when the pool is built, so a job pays an atomic add per
//! series it moves, never a lookup by name and labels.
//!
//! The series, every one labelled `pool` with the pool's name (docs/metrics.md has the
//! table):
//!
//! | name | type | more labels |
//! | --- | --- | --- |
//! | `brigade_jobs_submitted_total` | counter | |
//! | `brigade_jobs_finished_total` | counter | `outcome` |
//! | `brigade_jobs_retried_total` | counter | |
//! | `brigade_jobs_dropped_total` | counter | `policy` |
//! | `brigade_jobs_rejected_total` | counter | |
//! | `brigade_jobs_queued` | gauge | |
//! | `brigade_workers_busy` | gauge | |
//! | `brigade_workers` | gauge | |
//! | `brigade_jobs_delayed` | gauge | |
//! | `brigade_job_queue_wait_seconds` | histogram | |
//! | `brigade_job_run_seconds` | histogram | |

use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, Unit};

use crate::ErrorKind;
use crate::hooks::DropReason;

/// The handles of one pool's series, bound to the recorder current when it was made (the
/// global one, or the one a [`with_local_recorder`](::metrics::with_local_recorder) scope
/// sets): see the module docs.
///
/// A backend gets it from [`JobDriver::metrics`](super::JobDriver::metrics); the driver
/// counts what it sees (terminal states, retries, drops, rejections, run and queue-wait
/// times, jobs parked for capacity) and the backend the rest: submits that reach its queue,
/// its queue, its workers, its delay queue.
///
/// # Examples
///
/// ```
/// use brigade_core::backend::PoolMetrics;
/// use metrics_exporter_prometheus::PrometheusBuilder;
///
/// let recorder = PrometheusBuilder::new().build_recorder();
/// let metrics = metrics::with_local_recorder(&recorder, || PoolMetrics::new("mailer"));
/// metrics.submitted();
/// metrics.queued().add(1);
/// let text = recorder.handle().render();
/// assert!(text.contains(r#"brigade_jobs_submitted_total{pool="mailer"} 1"#));
/// assert!(text.contains(r#"brigade_jobs_queued{pool="mailer"} 1"#));
/// ```
#[derive(Clone)]
pub struct PoolMetrics {
    submitted: Counter,
    /// By outcome: completed first, then each [`ErrorKind`] (see `outcome_slot`).
    finished: [Counter; OUTCOMES.len()],
    retried: Counter,
    dropped_newest: Counter,
    dropped_evicted: Counter,
    rejected: Counter,
    queued: CountGauge,
    busy: CountGauge,
    workers: CountGauge,
    delayed: CountGauge,
    queue_wait: Histogram,
    run_time: Histogram,
}

/// A gauge of a count (jobs, workers), moved by whole steps or set.
///
/// # Examples
///
/// ```
/// use brigade_core::backend::PoolMetrics;
/// use metrics_exporter_prometheus::PrometheusBuilder;
///
/// let recorder = PrometheusBuilder::new().build_recorder();
/// let metrics = metrics::with_local_recorder(&recorder, || PoolMetrics::new("p"));
/// metrics.workers().set(4);
/// metrics.workers().sub(1);
/// assert!(recorder.handle().render().contains(r#"brigade_workers{pool="p"} 3"#));
/// ```
#[derive(Clone)]
pub struct CountGauge(Gauge);

/// A time on the metrics' clock: when a job was submitted, or a run started.
///
/// A job's submit, start and end are three clock reads, the largest part of what the
/// feature costs a short job, so the clock is quanta's: the CPU's time-stamp counter,
/// calibrated against the OS clock and falling back to it where the counter is not
/// invariant. Monotonic, and the wall clock's pace on every backend (a paused tokio test
/// clock does not stop it). Eight bytes in each queued job, where `std`'s is sixteen.
pub(crate) type Stamp = quanta::Instant;

/// The metrics' clock now.
#[inline]
pub(crate) fn stamp() -> Stamp {
    quanta::Instant::now()
}

/// From `earlier` to `later`, zero if the clock went back.
#[inline]
pub(crate) fn between(earlier: Stamp, later: Stamp) -> Duration {
    later.saturating_duration_since(earlier)
}

/// `outcome` label values, in slot order.
const OUTCOMES: [&str; 8] = [
    "completed",
    "failed",
    "panicked",
    "cancelled",
    "timed_out",
    "dead_lettered",
    "dropped",
    "returned",
];

fn outcome_slot(kind: Option<ErrorKind>) -> usize {
    match kind {
        None => 0,
        Some(ErrorKind::Failed) => 1,
        Some(ErrorKind::Panicked) => 2,
        Some(ErrorKind::Cancelled) => 3,
        Some(ErrorKind::TimedOut) => 4,
        Some(ErrorKind::DeadLettered) => 5,
        Some(ErrorKind::Dropped) => 6,
        Some(ErrorKind::Returned) => 7,
    }
}

impl PoolMetrics {
    /// Counter: jobs accepted (`Stats::submitted`).
    pub const SUBMITTED: &'static str = "brigade_jobs_submitted_total";
    /// Counter: jobs that reached a terminal state, by `outcome`: `completed`, `failed`,
    /// `panicked`, `cancelled`, `timed_out`, `dead_lettered`, `dropped`, `returned`.
    pub const FINISHED: &'static str = "brigade_jobs_finished_total";
    /// Counter: failed runs scheduled to run again (`Stats::retried`).
    pub const RETRIED: &'static str = "brigade_jobs_retried_total";
    /// Counter: jobs dropped by a backpressure policy, by `policy`: `drop_newest` (the
    /// incoming job) or `evict_oldest` (the oldest queued job, for the incoming one).
    pub const DROPPED: &'static str = "brigade_jobs_dropped_total";
    /// Counter: jobs a middleware refused at submit (`Stats::rejected`).
    pub const REJECTED: &'static str = "brigade_jobs_rejected_total";
    /// Gauge: jobs waiting in the queue (`Stats::queued`).
    pub const QUEUED: &'static str = "brigade_jobs_queued";
    /// Gauge: workers holding a job (`Stats::busy`).
    pub const BUSY: &'static str = "brigade_workers_busy";
    /// Gauge: workers alive (`Stats::workers`).
    pub const WORKERS: &'static str = "brigade_workers";
    /// Gauge: jobs waiting for a time or for capacity (`Stats::delayed`).
    pub const DELAYED: &'static str = "brigade_jobs_delayed";
    /// Histogram, seconds: from a job's submit to the start of its first run.
    pub const QUEUE_WAIT: &'static str = "brigade_job_queue_wait_seconds";
    /// Histogram, seconds: how long each run took.
    pub const RUN_TIME: &'static str = "brigade_job_run_seconds";

    /// Registers the series of the pool called `pool` with the current recorder, and
    /// describes them. Call it once per pool, when it is built.
    ///
    /// # Examples
    ///
    /// With no recorder installed every handle does nothing:
    ///
    /// ```
    /// let metrics = brigade_core::backend::PoolMetrics::new("quiet");
    /// metrics.submitted();
    /// ```
    #[must_use]
    pub fn new(pool: &str) -> Self {
        describe();
        // The clock calibrates on its first read (under a millisecond): here, not in the
        // first submit.
        let _ = stamp();
        let pool = pool.to_owned();
        let counter = |name: &'static str| ::metrics::counter!(name, "pool" => pool.clone());
        let gauge =
            |name: &'static str| CountGauge(::metrics::gauge!(name, "pool" => pool.clone()));
        let histogram = |name: &'static str| ::metrics::histogram!(name, "pool" => pool.clone());
        let finished = OUTCOMES
            .map(|outcome| ::metrics::counter!(Self::FINISHED, "pool" => pool.clone(), "outcome" => outcome));
        let dropped = |policy: &'static str| ::metrics::counter!(Self::DROPPED, "pool" => pool.clone(), "policy" => policy);
        PoolMetrics {
            submitted: counter(Self::SUBMITTED),
            finished,
            retried: counter(Self::RETRIED),
            dropped_newest: dropped("drop_newest"),
            dropped_evicted: dropped("evict_oldest"),
            rejected: counter(Self::REJECTED),
            queued: gauge(Self::QUEUED),
            busy: gauge(Self::BUSY),
            workers: gauge(Self::WORKERS),
            delayed: gauge(Self::DELAYED),
            queue_wait: histogram(Self::QUEUE_WAIT),
            run_time: histogram(Self::RUN_TIME),
        }
    }

    /// Counts a job accepted. The backend calls it when a submitted job enters its queue;
    /// the driver, for a job dropped as the newest, which never does.
    ///
    /// # Examples
    ///
    /// See [`PoolMetrics`].
    #[inline]
    pub fn submitted(&self) {
        self.submitted.increment(1);
    }

    /// Jobs waiting in the backend's queue (the backend moves it).
    ///
    /// # Examples
    ///
    /// See [`PoolMetrics`].
    #[inline]
    #[must_use]
    pub fn queued(&self) -> &CountGauge {
        &self.queued
    }

    /// Workers holding a job (the backend moves it).
    ///
    /// # Examples
    ///
    /// See [`CountGauge`].
    #[inline]
    #[must_use]
    pub fn busy(&self) -> &CountGauge {
        &self.busy
    }

    /// Workers alive (the backend moves it).
    ///
    /// # Examples
    ///
    /// See [`CountGauge`].
    #[inline]
    #[must_use]
    pub fn workers(&self) -> &CountGauge {
        &self.workers
    }

    /// Jobs waiting for a time or for capacity: the backend moves it for its delay queue,
    /// the driver for the jobs parked for capacity, so both only add and subtract.
    ///
    /// # Examples
    ///
    /// See [`CountGauge`].
    #[inline]
    #[must_use]
    pub fn delayed(&self) -> &CountGauge {
        &self.delayed
    }

    /// A job reached its terminal state: `None` completed, else the error's kind.
    #[inline]
    pub(crate) fn finished(&self, kind: Option<ErrorKind>) {
        self.finished[outcome_slot(kind)].increment(1);
    }

    #[inline]
    pub(crate) fn retried(&self) {
        self.retried.increment(1);
    }

    #[inline]
    pub(crate) fn rejected(&self) {
        self.rejected.increment(1);
    }

    #[inline]
    pub(crate) fn dropped(&self, reason: DropReason) {
        match reason {
            DropReason::Newest => self.dropped_newest.increment(1),
            DropReason::Evicted => self.dropped_evicted.increment(1),
        }
    }

    #[inline]
    pub(crate) fn queue_wait(&self, waited: Duration) {
        self.queue_wait.record(waited);
    }

    #[inline]
    pub(crate) fn run_time(&self, ran: Duration) {
        self.run_time.record(ran);
    }
}

/// Help text and units, given to the recorder each time a pool registers (recorders keep
/// the last description of a name).
fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        PoolMetrics::SUBMITTED,
        Unit::Count,
        "Jobs accepted by the pool."
    );
    describe_counter!(
        PoolMetrics::FINISHED,
        Unit::Count,
        "Jobs that reached a terminal state, by outcome."
    );
    describe_counter!(
        PoolMetrics::RETRIED,
        Unit::Count,
        "Failed runs scheduled to run again."
    );
    describe_counter!(
        PoolMetrics::DROPPED,
        Unit::Count,
        "Jobs dropped by a backpressure policy, by policy."
    );
    describe_counter!(
        PoolMetrics::REJECTED,
        Unit::Count,
        "Jobs refused at submit by a middleware."
    );
    describe_gauge!(
        PoolMetrics::QUEUED,
        Unit::Count,
        "Jobs waiting in the queue."
    );
    describe_gauge!(PoolMetrics::BUSY, Unit::Count, "Workers holding a job.");
    describe_gauge!(PoolMetrics::WORKERS, Unit::Count, "Workers alive.");
    describe_gauge!(
        PoolMetrics::DELAYED,
        Unit::Count,
        "Jobs waiting for a time (retry backoff, rate limit) or for capacity."
    );
    describe_histogram!(
        PoolMetrics::QUEUE_WAIT,
        Unit::Seconds,
        "From a job's submit to the start of its first run."
    );
    describe_histogram!(
        PoolMetrics::RUN_TIME,
        Unit::Seconds,
        "How long each run took."
    );
}

impl CountGauge {
    /// Adds `n`.
    ///
    /// # Examples
    ///
    /// See [`CountGauge`].
    #[inline]
    pub fn add(&self, n: usize) {
        self.0.increment(n as f64);
    }

    /// Subtracts `n`.
    ///
    /// # Examples
    ///
    /// See [`CountGauge`].
    #[inline]
    pub fn sub(&self, n: usize) {
        self.0.decrement(n as f64);
    }

    /// Sets it to `n`: for a backend that reads the count under the lock that guards it, so
    /// the last value set is the current one.
    ///
    /// # Examples
    ///
    /// See [`CountGauge`].
    #[inline]
    pub fn set(&self, n: usize) {
        self.0.set(n as f64);
    }
}

impl std::fmt::Debug for PoolMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolMetrics").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CountGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CountGauge").finish()
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    #[test]
    fn every_outcome_and_policy_has_its_series() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let metrics = ::metrics::with_local_recorder(&recorder, || PoolMetrics::new("p"));
        metrics.finished(None);
        for kind in [
            ErrorKind::Failed,
            ErrorKind::Panicked,
            ErrorKind::Cancelled,
            ErrorKind::TimedOut,
            ErrorKind::DeadLettered,
            ErrorKind::Dropped,
            ErrorKind::Returned,
        ] {
            metrics.finished(Some(kind));
        }
        metrics.dropped(DropReason::Newest);
        metrics.dropped(DropReason::Evicted);
        metrics.queue_wait(Duration::from_millis(2));
        metrics.run_time(Duration::from_millis(3));
        let text = recorder.handle().render();
        for outcome in OUTCOMES {
            let line = format!(r#"brigade_jobs_finished_total{{pool="p",outcome="{outcome}"}} 1"#);
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        for policy in ["drop_newest", "evict_oldest"] {
            let line = format!(r#"brigade_jobs_dropped_total{{pool="p",policy="{policy}"}} 1"#);
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        assert!(text.contains("# HELP brigade_job_run_seconds How long each run took."));
        assert!(text.contains(r#"brigade_job_queue_wait_seconds_count{pool="p"} 1"#));
    }
}
