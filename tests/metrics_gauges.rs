//! The `metrics` feature's gauges and its trailing publish, step by step, on both pools:
//! the same jobs and the same layer walk each pool through a held job, two jobs queued
//! behind it, one deferred and one parked for capacity, and a shutdown, and the gauges
//! must follow. A rejection on an idle pool, which no worker publishes, must reach the
//! recorder too.

use std::time::{Duration, Instant};

use brigade::hooks::{Admission, Middleware, QueueState, Start};
use brigade::thread::ThreadPool;
use brigade::tokio::TokioPool;
use brigade::{AsyncJob, CancellationToken, Executor, Job, JobContext, Rejection};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

/// Every pool here is called this, each with a recorder of its own.
const POOL: &str = "gauges";

/// A job that waits for its gate, or one that [`PutAside`] puts aside.
enum Step {
    Hold(CancellationToken),
    /// Deferred an hour.
    Later,
    /// Parked for capacity, never granted.
    WhenCapacity,
}

impl Job for Step {
    type Output = ();
    type Error = String;

    fn run(&mut self, _cx: &JobContext) -> Result<(), String> {
        if let Step::Hold(gate) = self {
            gate.wait_timeout(Duration::from_secs(30));
        }
        Ok(())
    }
}

impl AsyncJob for Step {
    type Output = ();
    type Error = String;

    async fn run(&mut self, _cx: &JobContext) -> Result<(), String> {
        if let Step::Hold(gate) = self {
            gate.cancelled().await;
        }
        Ok(())
    }
}

struct PutAside;

impl Middleware<Step, String> for PutAside {
    fn before_start(&self, job: &Step, now: Instant) -> Start {
        match job {
            Step::Hold(_) => Start::Now,
            Step::Later => Start::NotBefore(now + Duration::from_secs(3600)),
            Step::WhenCapacity => Start::WhenCapacityFrees,
        }
    }
}

struct RejectAll;

impl Middleware<Step, String> for RejectAll {
    fn admit(&self, _: &Step, _: QueueState) -> Admission {
        Admission::Reject(Rejection::new("closed for the test"))
    }
}

/// The value of the series `name` of [`POOL`], 0 while it was never set.
fn read(recorder: &PrometheusRecorder, name: &str) -> f64 {
    let prefix = format!("{name}{{pool=\"{POOL}\"}} ");
    recorder
        .handle()
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits for the gauges `(queued, busy, workers, delayed)` to read `expected`.
fn wait_for(recorder: &PrometheusRecorder, expected: [f64; 4]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let gauges = [
            "brigade_jobs_queued",
            "brigade_workers_busy",
            "brigade_workers",
            "brigade_jobs_delayed",
        ]
        .map(|name| read(recorder, name));
        if gauges == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "gauges {gauges:?}, want {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits for the series `name` to read `expected`.
fn wait_for_series(recorder: &PrometheusRecorder, name: &str, expected: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while read(recorder, name) != expected {
        assert!(
            Instant::now() < deadline,
            "{name} is not {expected}:\n{}",
            recorder.handle().render()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Walks `pool` (one worker, room for 4, [`PutAside`] as its layer) through a held job, two
/// jobs queued behind it, one deferred and one parked, and a shutdown, checking the
/// gauges at each step.
fn gauges_follow_the_queue_the_workers_and_the_jobs_put_aside(
    recorder: &PrometheusRecorder,
    pool: &impl Executor<Step, Error = String>,
) {
    wait_for(recorder, [0.0, 0.0, 1.0, 0.0]);
    let gate = CancellationToken::new();
    let held = pool.submit(Step::Hold(gate.clone())).expect("accepted");
    wait_for(recorder, [0.0, 1.0, 1.0, 0.0]);
    // Queued behind the held job, with no worker free to publish: the trailing publish.
    pool.execute(Step::Later).expect("accepted");
    pool.execute(Step::WhenCapacity).expect("accepted");
    wait_for(recorder, [2.0, 1.0, 1.0, 0.0]);
    gate.cancel();
    held.join().expect("released");
    // One waits for its time, the other for capacity: both count as delayed.
    wait_for(recorder, [0.0, 0.0, 1.0, 2.0]);
    assert_eq!(pool.stats().delayed, 2);
    let report = pool.shutdown_now().expect("called outside any runtime");
    assert_eq!(report.unstarted.len(), 2);
    wait_for(recorder, [0.0, 0.0, 0.0, 0.0]);
}

/// A thread pool called [`POOL`] of one worker, room for 4 and `layer`, reporting to
/// `recorder`.
fn thread_pool(
    recorder: &PrometheusRecorder,
    layer: impl Middleware<Step, String>,
) -> ThreadPool<Step> {
    metrics::with_local_recorder(recorder, || {
        ThreadPool::builder()
            .name(POOL)
            .workers(1)
            .queue_capacity(4)
            .layer(layer)
            .build()
    })
    .expect("a valid pool")
}

/// As [`thread_pool`], a tokio pool on a runtime of its own.
fn tokio_pool(
    recorder: &PrometheusRecorder,
    layer: impl Middleware<Step, String>,
) -> TokioPool<Step> {
    metrics::with_local_recorder(recorder, || {
        TokioPool::builder()
            .name(POOL)
            .own_runtime(2)
            .workers(1)
            .queue_capacity(4)
            .layer(layer)
            .build()
    })
    .expect("a valid pool")
}

#[test]
fn thread_pool_gauges_follow_the_queue_the_workers_and_the_jobs_put_aside() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let pool = thread_pool(&recorder, PutAside);
    gauges_follow_the_queue_the_workers_and_the_jobs_put_aside(&recorder, &pool);
}

#[test]
fn tokio_pool_gauges_follow_the_queue_the_workers_and_the_jobs_put_aside() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let pool = tokio_pool(&recorder, PutAside);
    gauges_follow_the_queue_the_workers_and_the_jobs_put_aside(&recorder, &pool);
}

/// A rejection changes the books with no worker to publish after it: the trailing
/// publish must carry it.
fn a_rejection_reaches_the_recorder(recorder: &PrometheusRecorder, pool: &impl Executor<Step>) {
    wait_for(recorder, [0.0, 0.0, 1.0, 0.0]);
    assert!(pool.submit(Step::Later).is_err());
    wait_for_series(recorder, "brigade_jobs_rejected_total", 1.0);
}

#[test]
fn a_rejection_on_an_idle_pool_reaches_the_recorder() {
    let recorder = PrometheusBuilder::new().build_recorder();
    a_rejection_reaches_the_recorder(&recorder, &thread_pool(&recorder, RejectAll));
    let recorder = PrometheusBuilder::new().build_recorder();
    a_rejection_reaches_the_recorder(&recorder, &tokio_pool(&recorder, RejectAll));
}
