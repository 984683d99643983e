//! The `metrics` feature end to end: pools report through the `metrics` facade to a
//! Prometheus recorder, `/metrics` is served on 127.0.0.1 and scraped over HTTP, and every
//! counter equals the matching `Stats` field once the pool is idle (or shut down).
//!
//! Jobs reach every outcome that is easy to provoke: completed, failed, panicked, cancelled
//! before their start, retried, dropped as the newest and evicted as the oldest by
//! backpressure, rejected at submit, and handed back by a shutdown.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use brigade::hooks::{Admission, Middleware, QueueState};
use brigade::middleware::{Backoff, Backpressure, Overflow, Retry};
use brigade::prelude::*;
use brigade::{CancellationToken, Rejection, SubmitError};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// The recorder, installed once for the whole test binary; each pool's series carry its
/// own `pool` label, so the tests do not see each other's counts.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .expect("the only recorder of this process")
    })
}

/// Serves `GET /metrics` (any path, in fact) on 127.0.0.1 from the current runtime.
async fn serve_metrics(handle: PrometheusHandle) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request: Request<Incoming>| {
                    let body = handle.render();
                    async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn scrape(addr: SocketAddr) -> Exposition {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("the scrape reaches the server");
    assert!(response.status().is_success());
    Exposition::parse(&response.text().await.expect("a text body"))
}

/// The samples of a Prometheus text exposition, by name and labels.
struct Exposition {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("`series value`");
                let (name, labels) = match series.split_once('{') {
                    Some((name, labels)) => (name, labels.trim_end_matches('}')),
                    None => (series, ""),
                };
                let labels = labels
                    .split(',')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, value) = pair.split_once('=').expect("`key=\"value\"`");
                        (key.to_owned(), value.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels, value.parse().expect("a number"))
            })
            .collect();
        Exposition { samples }
    }

    /// The sum of the samples of `name` whose labels include `labels` (0 if none: a
    /// counter never moved may not be rendered).
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(sample, sample_labels, _)| {
                sample == name
                    && labels.iter().all(|(key, value)| {
                        sample_labels.get(*key).map(String::as_str) == Some(value)
                    })
            })
            .map(|(_, _, value)| value)
            .sum()
    }

    /// Checks every counter of `pool` against its `stats`.
    fn check_counters(&self, pool: &str, stats: &Stats) {
        let counter = |name: &str, more: &[(&str, &str)]| {
            let mut labels = vec![("pool", pool)];
            labels.extend_from_slice(more);
            self.sum(name, &labels) as u64
        };
        let finished = |outcome| counter("brigade_jobs_finished_total", &[("outcome", outcome)]);
        assert_eq!(
            counter("brigade_jobs_submitted_total", &[]),
            stats.submitted,
            "{pool}: submitted"
        );
        assert_eq!(finished("completed"), stats.completed, "{pool}: completed");
        assert_eq!(finished("failed"), stats.failed, "{pool}: failed");
        assert_eq!(finished("panicked"), stats.panicked, "{pool}: panicked");
        assert_eq!(finished("cancelled"), stats.cancelled, "{pool}: cancelled");
        assert_eq!(finished("timed_out"), stats.timed_out, "{pool}: timed_out");
        assert_eq!(
            finished("dead_lettered"),
            stats.dead_lettered,
            "{pool}: dead_lettered"
        );
        assert_eq!(finished("dropped"), stats.dropped, "{pool}: dropped");
        assert_eq!(finished("returned"), stats.returned, "{pool}: returned");
        assert_eq!(
            counter("brigade_jobs_finished_total", &[]),
            stats.finished(),
            "{pool}: finished"
        );
        assert_eq!(
            counter("brigade_jobs_retried_total", &[]),
            stats.retried,
            "{pool}: retried"
        );
        assert_eq!(
            counter("brigade_jobs_dropped_total", &[]),
            stats.dropped,
            "{pool}: dropped by a policy"
        );
        assert_eq!(
            counter("brigade_jobs_rejected_total", &[]),
            stats.rejected,
            "{pool}: rejected"
        );
    }

    /// Checks the gauges of an idle `pool` against its `stats`, and the histograms' counts:
    /// sampled, so at most one queue wait per job that started and one run time per run.
    fn check_idle(&self, pool: &str, stats: &Stats) {
        let value = |name: &str| self.sum(name, &[("pool", pool)]);
        assert_eq!(
            value("brigade_jobs_queued") as usize,
            stats.queued,
            "{pool}: queued"
        );
        assert_eq!(
            value("brigade_workers_busy") as usize,
            stats.busy,
            "{pool}: busy"
        );
        assert_eq!(
            value("brigade_workers") as usize,
            stats.workers,
            "{pool}: workers"
        );
        assert_eq!(
            value("brigade_jobs_delayed") as usize,
            stats.delayed,
            "{pool}: delayed"
        );
        // Here no job was cancelled or timed out while it ran. The histograms sample the
        // runs (one per window of `PoolMetrics::SAMPLE_EVERY`): at least one, at most all.
        let started = stats.completed + stats.failed + stats.panicked;
        let waits = value("brigade_job_queue_wait_seconds_count") as u64;
        assert!(
            (1..=started).contains(&waits),
            "{pool}: {waits} waits of {started} starts"
        );
        let runs = value("brigade_job_run_seconds_count") as u64;
        let ran = started + stats.retried;
        assert!(
            (1..=ran).contains(&runs),
            "{pool}: {runs} run times of {ran} runs"
        );
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Succeed,
    /// Fails its first run, succeeds on the retry.
    FailOnce,
    Fail,
    Panic,
    /// Waits for its gate (or its token), then succeeds.
    Hold,
    /// Refused at submit by `RejectMarked`.
    Reject,
}

struct Work {
    kind: Kind,
    gate: CancellationToken,
    runs: u32,
}

impl Work {
    fn new(kind: Kind) -> Self {
        Self::held(kind, CancellationToken::new())
    }

    fn held(kind: Kind, gate: CancellationToken) -> Self {
        Work {
            kind,
            gate,
            runs: 0,
        }
    }

    /// What a run of this job returns, after any wait.
    fn outcome(&mut self) -> Result<(), String> {
        self.runs += 1;
        match self.kind {
            Kind::Succeed | Kind::Hold => Ok(()),
            Kind::FailOnce if self.runs > 1 => Ok(()),
            Kind::FailOnce | Kind::Fail => Err(format!("run {} failed", self.runs)),
            Kind::Panic => panic!("a job that panics"),
            Kind::Reject => unreachable!("rejected at submit"),
        }
    }
}

impl Job for Work {
    type Output = ();
    type Error = String;

    fn run(&mut self, cx: &JobContext) -> Result<(), String> {
        if self.kind == Kind::Hold {
            let until = Instant::now() + Duration::from_secs(30);
            while !self.gate.is_cancelled() && !cx.is_cancelled() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.outcome()
    }
}

impl AsyncJob for Work {
    type Output = ();
    type Error = String;

    async fn run(&mut self, cx: &JobContext) -> Result<(), String> {
        if self.kind == Kind::Hold {
            tokio::select! {
                () = self.gate.cancelled() => {}
                () = cx.token().cancelled() => {}
                () = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
        self.outcome()
    }
}

/// Refuses the jobs marked [`Kind::Reject`].
struct RejectMarked;

impl Middleware<Work, String> for RejectMarked {
    fn admit(&self, job: &Work, _queue: QueueState) -> Admission {
        if job.kind == Kind::Reject {
            Admission::Reject(Rejection::new("marked for rejection"))
        } else {
            Admission::Accept
        }
    }
}

fn retry() -> Retry<String> {
    Retry::builder()
        .max_attempts(3)
        .backoff(Backoff::constant(Duration::from_millis(1)))
        .build()
        .expect("a valid retry policy")
}

/// The jobs run one at a time once the queue is free, so none is dropped by accident.
const SEQUENCE: [Kind; 8] = [
    Kind::Succeed,
    Kind::Succeed,
    Kind::Succeed,
    Kind::FailOnce,
    Kind::FailOnce,
    Kind::Fail,
    Kind::Fail,
    Kind::Panic,
];

fn assert_every_outcome(stats: &Stats) {
    // The held job, the one queued behind it, three successes, two after a retry.
    assert_eq!(stats.completed, 7, "{stats:?}");
    assert_eq!(
        (stats.failed, stats.panicked, stats.cancelled),
        (2, 1, 1),
        "{stats:?}"
    );
    assert_eq!((stats.dropped, stats.rejected), (1, 1), "{stats:?}");
    // Two retries for each job failing for good, one for each failing once.
    assert_eq!(stats.retried, 6, "{stats:?}");
    assert_eq!(stats.submitted, 12, "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
}

fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "the pool never got there");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn thread_pool_counters_match_stats_over_http() {
    let handle = recorder().clone();
    let server = tokio::runtime::Runtime::new().expect("a runtime for the server");
    let addr = server.block_on(serve_metrics(handle));

    let pool = ThreadPool::<Work>::builder()
        .name("metrics-thread")
        .workers(1)
        .queue_capacity(2)
        .layer(RejectMarked)
        .layer(Backpressure::new(Overflow::DropNewest))
        .layer(retry())
        .build()
        .expect("a valid pool");
    let gate = CancellationToken::new();
    let held = pool
        .submit(Work::held(Kind::Hold, gate.clone()))
        .expect("accepted");
    wait_until(|| {
        let stats = pool.stats();
        stats.busy == 1 && stats.queued == 0
    });
    let cancelled = pool.submit(Work::new(Kind::Succeed)).expect("accepted");
    cancelled.cancel();
    let queued = pool.submit(Work::new(Kind::Succeed)).expect("accepted");
    let dropped = pool
        .submit(Work::new(Kind::Succeed))
        .expect("accepted, then dropped");
    assert!(dropped.join().unwrap_err().is_dropped());
    assert!(matches!(
        pool.submit(Work::new(Kind::Reject)),
        Err(SubmitError::Rejected(..))
    ));
    gate.cancel();
    held.join().expect("released");
    assert!(cancelled.join().unwrap_err().is_cancelled());
    queued.join().expect("ran after the held job");
    for kind in SEQUENCE {
        let _ = pool.submit(Work::new(kind)).expect("accepted").join();
    }
    pool.wait_idle();
    let stats = pool.stats();
    assert_every_outcome(&stats);

    // Eviction and a shutdown's hand-back, on a pool of their own.
    let evicting = ThreadPool::<Work>::builder()
        .name("metrics-thread-evict")
        .workers(1)
        .queue_capacity(1)
        .layer(Backpressure::new(Overflow::DropOldest))
        .build()
        .expect("a valid pool");
    let gate = CancellationToken::new();
    let _held = evicting
        .submit(Work::held(Kind::Hold, gate.clone()))
        .expect("accepted");
    wait_until(|| {
        let stats = evicting.stats();
        stats.busy == 1 && stats.queued == 0
    });
    let oldest = evicting.submit(Work::new(Kind::Succeed)).expect("accepted");
    let _newest = evicting.submit(Work::new(Kind::Succeed)).expect("accepted");
    assert!(oldest.join().unwrap_err().is_dropped());
    let report = evicting.shutdown_now();
    assert_eq!(report.unstarted.len(), 1, "the newest job was handed back");
    let evicting_stats = evicting.stats();
    assert_eq!((evicting_stats.dropped, evicting_stats.returned), (1, 1));

    let scraped = server.block_on(scrape(addr));
    scraped.check_counters("metrics-thread", &stats);
    scraped.check_idle("metrics-thread", &stats);
    scraped.check_counters("metrics-thread-evict", &evicting_stats);
    assert_eq!(
        scraped.sum(
            "brigade_jobs_dropped_total",
            &[("pool", "metrics-thread"), ("policy", "drop_newest")]
        ),
        1.0
    );
    assert_eq!(
        scraped.sum(
            "brigade_jobs_dropped_total",
            &[("pool", "metrics-thread-evict"), ("policy", "evict_oldest")]
        ),
        1.0
    );
    assert_eq!(
        scraped.sum("brigade_workers", &[("pool", "metrics-thread-evict")]),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_pool_counters_match_stats_over_http() {
    let addr = serve_metrics(recorder().clone()).await;

    let pool = TokioPool::<Work>::builder()
        .name("metrics-tokio")
        .workers(1)
        .queue_capacity(2)
        .layer(RejectMarked)
        .layer(Backpressure::new(Overflow::DropNewest))
        .layer(retry())
        .build()
        .expect("a valid pool");
    let gate = CancellationToken::new();
    let held = pool
        .submit(Work::held(Kind::Hold, gate.clone()))
        .await
        .expect("accepted");
    while !(pool.stats().busy == 1 && pool.stats().queued == 0) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let cancelled = pool
        .submit(Work::new(Kind::Succeed))
        .await
        .expect("accepted");
    cancelled.cancel();
    let queued = pool
        .submit(Work::new(Kind::Succeed))
        .await
        .expect("accepted");
    let dropped = pool
        .submit(Work::new(Kind::Succeed))
        .await
        .expect("accepted, then dropped");
    assert!(dropped.await.unwrap_err().is_dropped());
    assert!(matches!(
        pool.submit(Work::new(Kind::Reject)).await,
        Err(SubmitError::Rejected(..))
    ));
    gate.cancel();
    held.await.expect("released");
    assert!(cancelled.await.unwrap_err().is_cancelled());
    queued.await.expect("ran after the held job");
    for kind in SEQUENCE {
        let _ = pool.submit(Work::new(kind)).await.expect("accepted").await;
    }
    pool.wait_idle().await;
    let stats = pool.stats();
    assert_every_outcome(&stats);

    let evicting = TokioPool::<Work>::builder()
        .name("metrics-tokio-evict")
        .workers(1)
        .queue_capacity(1)
        .layer(Backpressure::new(Overflow::DropOldest))
        .build()
        .expect("a valid pool");
    let gate = CancellationToken::new();
    let _held = evicting
        .submit(Work::held(Kind::Hold, gate.clone()))
        .await
        .expect("accepted");
    while !(evicting.stats().busy == 1 && evicting.stats().queued == 0) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let oldest = evicting
        .submit(Work::new(Kind::Succeed))
        .await
        .expect("accepted");
    let _newest = evicting
        .submit(Work::new(Kind::Succeed))
        .await
        .expect("accepted");
    assert!(oldest.await.unwrap_err().is_dropped());
    let report = evicting.shutdown_now().await;
    assert_eq!(report.unstarted.len(), 1, "the newest job was handed back");
    let evicting_stats = evicting.stats();
    assert_eq!((evicting_stats.dropped, evicting_stats.returned), (1, 1));

    let scraped = scrape(addr).await;
    scraped.check_counters("metrics-tokio", &stats);
    scraped.check_idle("metrics-tokio", &stats);
    scraped.check_counters("metrics-tokio-evict", &evicting_stats);
    assert_eq!(
        scraped.sum(
            "brigade_jobs_dropped_total",
            &[("pool", "metrics-tokio"), ("policy", "drop_newest")]
        ),
        1.0
    );
    assert_eq!(
        scraped.sum(
            "brigade_jobs_dropped_total",
            &[("pool", "metrics-tokio-evict"), ("policy", "evict_oldest")]
        ),
        1.0
    );
}
