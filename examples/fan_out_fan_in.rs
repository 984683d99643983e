//! Fan-out / fan-in (the seed's pattern 4): twenty page fetches fan out to five async
//! workers, and their results fan back in, in the order they finish. In the second run one
//! fetch fails: as the seed's errgroup does, the first error stops the rest — the running
//! fetches are cancelled and the ones not yet started are handed back.
//!
//! Run with `cargo run --example fan_out_fan_in`.

use std::time::{Duration, Instant};

use brigade::prelude::*;
use brigade::tokio::TokioPool;
use brigade::{BoxAsyncJob, Completions, ErrorKind};

const WORKERS: usize = 5;

type Fetch = BoxAsyncJob<String, String>;

/// A simulated fetch of `url`: takes a while, fails for `bad`, stops when cancelled.
fn fetch(page: u64, url: String, bad: Option<&'static str>) -> Fetch {
    BoxAsyncJob::new(move |cx: JobContext| {
        let url = url.clone();
        async move {
            let latency = Duration::from_millis(30 + (page * 37) % 50);
            tokio::select! {
                () = tokio::time::sleep(latency) => {}
                () = cx.token().cancelled() => return Err(format!("{url}: cancelled")),
            }
            if bad == Some(url.as_str()) {
                return Err(format!("{url}: connection reset"));
            }
            Ok(format!("{url} ({} ms)", latency.as_millis()))
        }
    })
}

/// Fans `urls` out to the pool and in again; on the first error, stops everything.
async fn fan_out_fan_in(urls: &[String], bad: Option<&'static str>) -> Result<Vec<String>, String> {
    let pool = TokioPool::builder()
        .name("fan-out")
        .workers(WORKERS)
        .queue_capacity(urls.len())
        .build()
        .map_err(|e| e.to_string())?;
    let mut fan_in = Completions::new();
    for (page, url) in (1..).zip(urls) {
        let job = fetch(page, url.clone(), bad);
        fan_in.push(pool.submit(job).await.map_err(|e| e.to_string())?);
    }
    let mut results = Vec::new();
    while let Some((_, result)) = fan_in.next().await {
        match result {
            Ok(page) => results.push(page),
            Err(error) => {
                let first = error.to_string();
                // The first error cancels the running fetches and hands back the rest.
                let report = pool.shutdown_now().await;
                let (mut finished_anyway, mut cancelled, mut handed_back) = (0, 0, 0);
                while let Some((_, rest)) = fan_in.next().await {
                    match rest.map_err(|e| e.kind()) {
                        Ok(_) => finished_anyway += 1,
                        Err(ErrorKind::Cancelled) => cancelled += 1,
                        Err(ErrorKind::Returned) => handed_back += 1,
                        Err(_) => {}
                    }
                }
                println!(
                    "  first error after {} pages; then {finished_anyway} finished anyway, \
                     {cancelled} running fetches were cancelled, {handed_back} never started",
                    results.len(),
                );
                assert_eq!(handed_back, report.unstarted.len());
                return Err(first);
            }
        }
    }
    pool.shutdown().await;
    Ok(results)
}

#[tokio::main]
async fn main() {
    let urls: Vec<String> = (1..=20)
        .map(|i| format!("https://example.test/page/{i}"))
        .collect();

    println!("fetching {} pages with {WORKERS} workers", urls.len());
    let started = Instant::now();
    match fan_out_fan_in(&urls, None).await {
        Ok(pages) => {
            for page in &pages {
                println!("  {page}");
            }
            println!("  {} pages in {:?}", pages.len(), started.elapsed());
        }
        Err(error) => println!("  error: {error}"),
    }

    println!("\nfetching again; page 7 fails");
    match fan_out_fan_in(&urls, Some("https://example.test/page/7")).await {
        Ok(pages) => println!("  {} pages", pages.len()),
        Err(error) => println!("  error: {error}"),
    }
}
