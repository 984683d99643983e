//! Pool metrics for Prometheus: two pools (thumbnails on threads, fetches on tokio) run
//! under load with transient and permanent failures and retries, while this process serves
//! its own `/metrics` on 127.0.0.1. At the end it scrapes itself over HTTP, prints its
//! pools' series, and checks them against `Stats`.
//!
//! The pools report through the `metrics` facade (brigade's `metrics` feature, which `full`
//! includes); `metrics-exporter-prometheus` is the recorder here, and any other `metrics`
//! exporter works the same way. See docs/metrics.md for every series.
//!
//! Run with `cargo run --example prometheus_metrics`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use brigade::middleware::{Backoff, Retry};
use brigade::prelude::*;
use brigade::tokio::BoxPool as AsyncBoxPool;
use brigade::{BoxAsyncJob, Stats};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// Serves the recorder's text at `GET /metrics` on a free port of 127.0.0.1.
async fn serve_metrics(handle: PrometheusHandle) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let (status, body) = if request.uri().path() == "/metrics" {
                        (StatusCode::OK, handle.render())
                    } else {
                        (StatusCode::NOT_FOUND, "try /metrics\n".to_owned())
                    };
                    async move {
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = status;
                        Ok::<_, Infallible>(response)
                    }
                });
                // A scraper that hangs up early is not the server's problem.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// A thumbnail job: one in ten fails its first run (a flaky disk), one in forty-nine
/// every run (a corrupt image).
fn thumbnail(n: u64) -> BoxJob<u64, String> {
    BoxJob::new(job_fn(move |cx| {
        std::thread::sleep(Duration::from_micros(200 + n % 5 * 100));
        if n % 49 == 0 {
            Err(format!("image {n}: corrupt"))
        } else if n % 10 == 3 && cx.attempt() == 1 {
            Err(format!("image {n}: read timed out"))
        } else {
            Ok(n * 2)
        }
    }))
}

/// A fetch: one in eight is refused once (HTTP 503), then succeeds.
fn fetch(n: u64) -> BoxAsyncJob<usize, String> {
    BoxAsyncJob::new(move |cx: JobContext| async move {
        tokio::time::sleep(Duration::from_millis(1 + n % 3)).await;
        if n % 8 == 5 && cx.attempt() == 1 {
            return Err(format!("page {n}: HTTP 503"));
        }
        Ok(1024 + n as usize)
    })
}

fn retry() -> Result<Retry<String>, brigade::ConfigError> {
    Retry::builder()
        .max_attempts(3)
        .backoff(Backoff::exponential(Duration::from_millis(2)))
        .build()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Installed before the pools are built: their series bind to the recorder current then.
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Prefix("brigade_job_".to_owned()),
            &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0],
        )?
        .install_recorder()?;
    let addr = serve_metrics(handle.clone()).await?;
    println!("serving http://{addr}/metrics");

    let thumbnails = BoxPool::<u64, String>::builder()
        .name("thumbnails")
        .workers(4)
        .queue_capacity(32)
        .layer(retry()?)
        .build()?;
    let fetchers = AsyncBoxPool::<usize, String>::builder()
        .name("fetchers")
        .workers(16)
        .queue_capacity(64)
        .layer(retry()?)
        .build()?;

    // The thread pool's producer blocks on a full queue: give it a thread of its own.
    let thumbnails = tokio::task::spawn_blocking(move || {
        let handles: Vec<_> = (1..=400)
            .map(|n| thumbnails.submit(thumbnail(n)).expect("the pool is open"))
            .collect();
        for handle in handles {
            // Failures are part of the load: the metrics count them.
            let _ = handle.join();
        }
        thumbnails.wait_idle();
        thumbnails
    });
    let mut fetches = Vec::new();
    for n in 1..=400 {
        fetches.push(fetchers.submit(fetch(n)).await?);
    }
    for handle in fetches {
        let _ = handle.await;
    }
    fetchers.wait_idle().await;
    let thumbnails = thumbnails.await?;

    let body = reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .error_for_status()?
        .text()
        .await?;
    // The series that moved: counters, gauges and the histograms' counts, sorted.
    let mut moved: Vec<&str> = body
        .lines()
        .filter(|line| {
            let series = line.starts_with("brigade_jobs_")
                || line.starts_with("brigade_workers")
                || line.starts_with("brigade_job_run_seconds_count")
                || line.starts_with("brigade_job_queue_wait_seconds_count");
            series && !line.ends_with(" 0")
        })
        .collect();
    moved.sort_unstable();
    println!("\nscraped {} bytes; the series that moved:", body.len());
    for line in moved {
        println!("  {line}");
    }
    check(&body, "thumbnails", &thumbnails.stats())?;
    check(&body, "fetchers", &fetchers.stats())?;
    println!("\nevery counter agrees with Stats");
    thumbnails.shutdown();
    fetchers.shutdown().await;
    Ok(())
}

/// The value of the series `name{pool="..."[,more labels]}`.
fn sample(body: &str, name: &str, pool: &str, more: &str) -> u64 {
    let prefix = format!("{name}{{pool=\"{pool}\"{more}}} ");
    body.lines()
        .find_map(|line| line.strip_prefix(&prefix)?.parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

fn check(body: &str, pool: &str, stats: &Stats) -> Result<(), String> {
    let finished = |outcome: &str| {
        sample(
            body,
            "brigade_jobs_finished_total",
            pool,
            &format!(",outcome=\"{outcome}\""),
        )
    };
    let pairs = [
        (
            "submitted",
            sample(body, "brigade_jobs_submitted_total", pool, ""),
            stats.submitted,
        ),
        ("completed", finished("completed"), stats.completed),
        ("failed", finished("failed"), stats.failed),
        (
            "retried",
            sample(body, "brigade_jobs_retried_total", pool, ""),
            stats.retried,
        ),
    ];
    println!("\n{pool}: {stats:?}");
    for (what, scraped, counted) in pairs {
        if scraped != counted {
            return Err(format!("{pool}: {what} scraped {scraped}, Stats {counted}"));
        }
    }
    Ok(())
}
