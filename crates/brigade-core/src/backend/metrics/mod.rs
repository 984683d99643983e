//! A pool's metrics through the [`metrics`](::metrics) facade, with Prometheus naming.
//!
//! The gauges and most counters are the pool's own books ([`Stats`]), published to the
//! recorder rather than counted twice: whenever a worker waits for work, starts or ends,
//! and when a shutdown returns, so a pool at rest shows exactly its `Stats`; and, while
//! every worker is busy, by a publisher thread at most once every
//! [`PUBLISH_EVERY`](PoolMetrics::PUBLISH_EVERY) after a change (module `trailing`). A job
//! pays no recorder operation for them. Two are counted as they happen instead: submits
//! (one add per job, by the submitter: a pool's `submitted` may, for an instant, include a
//! submit about to be refused, which a counter could not take back) and drops by policy,
//! which `Stats` does not split.
//!
//! The two histograms take a sample of the runs: the first run to start in each
//! [`SAMPLE_EVERY`](PoolMetrics::SAMPLE_EVERY) window, whatever its length (the choice is
//! made before the run, so long and short runs are sampled alike). Jobs that take longer
//! than the window are all sampled; a stream of microsecond jobs pays for one sample per
//! window instead of two recorder operations per job. Their `_count` is therefore the
//! number of samples, not of runs: `brigade_jobs_finished_total` counts the runs.
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

mod trailing;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, Unit};

use self::trailing::Trailing;
use crate::Stats;
use crate::hooks::DropReason;

/// The handles of one pool's series, bound to the recorder current when it was made (the
/// global one, or the one a [`with_local_recorder`](::metrics::with_local_recorder) scope
/// sets): see the module docs.
///
/// A backend gets it from [`JobDriver::metrics`](super::JobDriver::metrics) and tells it
/// where to read its books ([`publish_from`](Self::publish_from)). The driver samples runs,
/// counts drops and reports each start as a change; the backend counts submits (each a
/// change too) and publishes whenever a worker waits for work, starts or ends, and when a
/// shutdown returns.
///
/// # Examples
///
/// ```
/// use brigade_core::Stats;
/// use brigade_core::backend::PoolMetrics;
/// use metrics_exporter_prometheus::PrometheusBuilder;
///
/// let recorder = PrometheusBuilder::new().build_recorder();
/// let metrics = metrics::with_local_recorder(&recorder, || PoolMetrics::new("mailer"));
/// metrics.submitted();
/// let mut books = Stats::default();
/// (books.submitted, books.completed) = (1, 1);
/// metrics.publish(|| books);
/// let text = recorder.handle().render();
/// assert!(text.contains(r#"brigade_jobs_submitted_total{pool="mailer"} 1"#));
/// assert!(text.contains(r#"brigade_jobs_finished_total{pool="mailer",outcome="completed"} 1"#));
/// assert!(text.contains(r#"brigade_jobs_queued{pool="mailer"} 0"#));
/// ```
#[derive(Clone)]
pub struct PoolMetrics {
    series: Arc<Series>,
    sampler: Arc<Sampler>,
    trailing: Arc<Trailing>,
}

struct Series {
    submitted: Counter,
    /// By outcome, in the order of [`OUTCOMES`].
    finished: [Counter; OUTCOMES.len()],
    retried: Counter,
    dropped_newest: Counter,
    dropped_evicted: Counter,
    rejected: Counter,
    queued: Gauge,
    busy: Gauge,
    workers: Gauge,
    delayed: Gauge,
    queue_wait: Histogram,
    run_time: Histogram,
    /// Orders publishes, so that the last one to set the series read the books last.
    publishing: Mutex<()>,
}

/// When the next sample is due, in nanoseconds of the metrics' clock since `origin`.
struct Sampler {
    origin: Stamp,
    next: AtomicU64,
}

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

/// Reads one count of [`Stats`].
type Count = fn(&Stats) -> u64;

/// `outcome` label values, each with the count of [`Stats`] it publishes.
const OUTCOMES: [(&str, Count); 8] = [
    ("completed", |stats| stats.completed),
    ("failed", |stats| stats.failed),
    ("panicked", |stats| stats.panicked),
    ("cancelled", |stats| stats.cancelled),
    ("timed_out", |stats| stats.timed_out),
    ("dead_lettered", |stats| stats.dead_lettered),
    ("dropped", |stats| stats.dropped),
    ("returned", |stats| stats.returned),
];

impl Series {
    /// Sets every counter and gauge from the books `stats` reads under the publish lock;
    /// `None` from `stats` (the pool is gone) publishes nothing, and is returned.
    fn publish_books(&self, stats: impl FnOnce() -> Option<Stats>) -> Option<()> {
        let _ordered = self
            .publishing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let stats = stats()?;
        for (counter, (_, count)) in self.finished.iter().zip(OUTCOMES) {
            counter.absolute(count(&stats));
        }
        self.retried.absolute(stats.retried);
        self.rejected.absolute(stats.rejected);
        self.queued.set(stats.queued as f64);
        self.busy.set(stats.busy as f64);
        self.workers.set(stats.workers as f64);
        self.delayed.set(stats.delayed as f64);
        Some(())
    }
}

impl Sampler {
    /// Whether the run starting at `at` is the first in its window; says yes to one
    /// caller per window.
    fn claim(&self, at: Stamp) -> bool {
        let now = u64::try_from(between(self.origin, at).as_nanos()).unwrap_or(u64::MAX);
        let due = self.next.load(Ordering::Relaxed);
        let window = u64::try_from(PoolMetrics::SAMPLE_EVERY.as_nanos()).unwrap_or(u64::MAX);
        now >= due
            && self
                .next
                .compare_exchange(
                    due,
                    now.saturating_add(window),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
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
    /// Histogram, seconds: from a job's submit to the start of its first run (sampled).
    pub const QUEUE_WAIT: &'static str = "brigade_job_queue_wait_seconds";
    /// Histogram, seconds: how long each run took (sampled).
    pub const RUN_TIME: &'static str = "brigade_job_run_seconds";

    /// How often, at most, the publisher thread of a pool with jobs flowing publishes its
    /// books.
    pub const PUBLISH_EVERY: Duration = Duration::from_millis(10);
    /// The histograms sample the first run to start in each window this long.
    pub const SAMPLE_EVERY: Duration = Duration::from_micros(10);

    /// Registers the series of the pool called `pool` with the current recorder, and
    /// describes them. Call it once per pool, when it is built.
    ///
    /// # Examples
    ///
    /// With no recorder installed every handle does nothing:
    ///
    /// ```
    /// let metrics = brigade_core::backend::PoolMetrics::new("quiet");
    /// metrics.publish(brigade_core::Stats::default);
    /// metrics.submitted();
    /// ```
    #[must_use]
    pub fn new(pool: &str) -> Self {
        describe();
        let pool = pool.to_owned();
        let counter = |name: &'static str| ::metrics::counter!(name, "pool" => pool.clone());
        let gauge = |name: &'static str| ::metrics::gauge!(name, "pool" => pool.clone());
        let histogram = |name: &'static str| ::metrics::histogram!(name, "pool" => pool.clone());
        let finished = OUTCOMES.map(|(outcome, _)| {
            ::metrics::counter!(Self::FINISHED, "pool" => pool.clone(), "outcome" => outcome)
        });
        let dropped = |policy: &'static str| ::metrics::counter!(Self::DROPPED, "pool" => pool.clone(), "policy" => policy);
        let series = Series {
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
            publishing: Mutex::new(()),
        };
        let series = Arc::new(series);
        PoolMetrics {
            trailing: Arc::new(Trailing::new(Arc::clone(&series), Self::PUBLISH_EVERY)),
            series,
            sampler: Arc::new(Sampler {
                // The clock calibrates on its first read (under a millisecond): here, not
                // in the first submit.
                origin: stamp(),
                next: AtomicU64::new(0),
            }),
        }
    }

    /// Where the pool's books are read for a publish: the backend's `stats()`, through a
    /// weak reference (`None` once the pool is gone). Until it is set, only
    /// [`publish`](Self::publish) publishes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use brigade_core::Stats;
    /// use brigade_core::backend::PoolMetrics;
    ///
    /// let books = Arc::new(Stats::default());
    /// let metrics = PoolMetrics::new("p");
    /// let weak = Arc::downgrade(&books);
    /// metrics.publish_from(move || weak.upgrade().map(|books| *books));
    /// metrics.submitted(); // a change: published within `PUBLISH_EVERY`
    /// ```
    pub fn publish_from(&self, stats: impl Fn() -> Option<Stats> + Send + Sync + 'static) {
        self.trailing.set_source(Arc::new(stats));
    }

    /// [`publish_from`](Self::publish_from) the books `stats` reads off `pool`, through a
    /// weak reference, so the publisher never keeps the pool alive.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use brigade_core::Stats;
    /// use brigade_core::backend::PoolMetrics;
    ///
    /// struct Pool { metrics: PoolMetrics }
    /// impl Pool { fn stats(&self) -> Stats { Stats::default() } }
    ///
    /// let pool = Arc::new(Pool { metrics: PoolMetrics::new("p") });
    /// pool.metrics.publish_from_pool(&pool, Pool::stats);
    /// ```
    pub fn publish_from_pool<P: Send + Sync + 'static>(
        &self,
        pool: &Arc<P>,
        stats: fn(&P) -> Stats,
    ) {
        let pool = Arc::downgrade(pool);
        self.publish_from(move || Some(stats(&*pool.upgrade()?)));
    }

    /// The books changed, or are about to (a run starts, a job is rejected or dropped):
    /// they reach the recorder within [`PUBLISH_EVERY`](Self::PUBLISH_EVERY) even if nothing
    /// else happens. A relaxed load, most of the time.
    #[inline]
    pub(crate) fn touched(&self) {
        self.trailing.touched();
    }

    /// Sets every counter and gauge from the books `stats` reads, now. Publishes are
    /// ordered: of two at once, the one that sets last read the books last.
    ///
    /// Call it outside any lock `stats` takes.
    ///
    /// # Examples
    ///
    /// See [`PoolMetrics`].
    pub fn publish(&self, stats: impl FnOnce() -> Stats) {
        let _ = self.series.publish_books(|| Some(stats()));
    }

    /// Counts a job accepted, a change of the books the trailing publish hears of. The
    /// backend calls it when a submitted job enters its queue; the driver, for a job
    /// dropped as the newest, which never does.
    ///
    /// # Examples
    ///
    /// See [`PoolMetrics`].
    #[inline]
    pub fn submitted(&self) {
        self.series.submitted.increment(1);
        self.touched();
    }

    /// Whether the run starting at `at` is the histograms' sample for its window.
    #[inline]
    pub(crate) fn sample_due(&self, at: Stamp) -> bool {
        self.sampler.claim(at)
    }

    #[inline]
    pub(crate) fn dropped(&self, reason: DropReason) {
        match reason {
            DropReason::Newest => self.series.dropped_newest.increment(1),
            DropReason::Evicted => self.series.dropped_evicted.increment(1),
        }
    }

    #[inline]
    pub(crate) fn queue_wait(&self, waited: Duration) {
        self.series.queue_wait.record(waited);
    }

    #[inline]
    pub(crate) fn run_time(&self, ran: Duration) {
        self.series.run_time.record(ran);
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

impl std::fmt::Debug for PoolMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolMetrics").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    #[test]
    fn a_publish_sets_every_outcome_and_gauge_from_the_books() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let metrics = ::metrics::with_local_recorder(&recorder, || PoolMetrics::new("p"));
        let stats = Stats {
            submitted: 40,
            completed: 1,
            failed: 2,
            panicked: 3,
            cancelled: 4,
            timed_out: 5,
            dead_lettered: 6,
            dropped: 7,
            returned: 8,
            retried: 9,
            rejected: 10,
            workers: 4,
            busy: 3,
            queued: 2,
            delayed: 1,
            ..Stats::default()
        };
        metrics.publish(|| stats);
        metrics.dropped(DropReason::Newest);
        metrics.dropped(DropReason::Evicted);
        metrics.queue_wait(Duration::from_millis(2));
        metrics.run_time(Duration::from_millis(3));
        let text = recorder.handle().render();
        let mut expected = vec![
            r#"brigade_jobs_retried_total{pool="p"} 9"#.to_owned(),
            r#"brigade_jobs_rejected_total{pool="p"} 10"#.to_owned(),
            r#"brigade_workers{pool="p"} 4"#.to_owned(),
            r#"brigade_workers_busy{pool="p"} 3"#.to_owned(),
            r#"brigade_jobs_queued{pool="p"} 2"#.to_owned(),
            r#"brigade_jobs_delayed{pool="p"} 1"#.to_owned(),
            r#"brigade_job_queue_wait_seconds_count{pool="p"} 1"#.to_owned(),
        ];
        for (n, (outcome, _)) in (1..).zip(OUTCOMES) {
            expected.push(format!(
                r#"brigade_jobs_finished_total{{pool="p",outcome="{outcome}"}} {n}"#
            ));
        }
        for policy in ["drop_newest", "evict_oldest"] {
            expected.push(format!(
                r#"brigade_jobs_dropped_total{{pool="p",policy="{policy}"}} 1"#
            ));
        }
        for line in expected {
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        assert!(text.contains("# HELP brigade_job_run_seconds How long each run took."));
    }

    #[test]
    fn a_later_publish_wins_and_counters_never_go_back() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let metrics = ::metrics::with_local_recorder(&recorder, || PoolMetrics::new("p"));
        metrics.publish(|| Stats {
            completed: 5,
            queued: 5,
            ..Stats::default()
        });
        metrics.publish(|| Stats {
            completed: 3,
            queued: 0,
            ..Stats::default()
        });
        let text = recorder.handle().render();
        let completed = r#"brigade_jobs_finished_total{pool="p",outcome="completed"} 5"#;
        assert!(text.contains(completed), "{text}");
        assert!(
            text.contains(r#"brigade_jobs_queued{pool="p"} 0"#),
            "{text}"
        );
    }

    #[test]
    fn one_run_per_window_is_sampled() {
        let metrics = PoolMetrics::new("p");
        let origin = metrics.sampler.origin;
        assert!(metrics.sample_due(origin));
        assert!(!metrics.sample_due(origin));
        assert!(!metrics.sample_due(origin + PoolMetrics::SAMPLE_EVERY / 2));
        assert!(metrics.sample_due(origin + PoolMetrics::SAMPLE_EVERY));
        assert!(!metrics.sample_due(origin + PoolMetrics::SAMPLE_EVERY));
    }

    #[test]
    fn a_change_reaches_the_recorder_with_nothing_after_it() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let metrics = ::metrics::with_local_recorder(&recorder, || PoolMetrics::new("p"));
        let books = Arc::new(Mutex::new(Stats::default()));
        let source = Arc::downgrade(&books);
        metrics.publish_from(move || Some(*source.upgrade()?.lock().unwrap()));
        for queued in 1..=3 {
            books.lock().unwrap().queued = queued;
            metrics.touched();
        }
        let want = r#"brigade_jobs_queued{pool="p"} 3"#;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !recorder.handle().render().contains(want) {
            assert!(
                std::time::Instant::now() < deadline,
                "{}",
                recorder.handle().render()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
