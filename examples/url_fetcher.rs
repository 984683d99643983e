//! Concurrent HTTP fetching with controlled parallelism (the seed's "URL fetcher"): a pool
//! of three async workers fetches twelve URLs from a real HTTP server this example starts on
//! 127.0.0.1. Some URLs are slow, some fail; the results come back in the order the fetches
//! finish, and the server confirms it never saw more than three requests at once.
//!
//! Run with `cargo run --example url_fetcher`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use brigade::Completions;
use brigade::prelude::*;
use brigade::tokio::TokioPool;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const WORKERS: usize = 3;

/// One URL to fetch.
struct Fetch {
    client: reqwest::Client,
    url: String,
}

/// What a successful fetch found.
struct Page {
    url: String,
    status: u16,
    bytes: usize,
    took: Duration,
}

impl AsyncJob for Fetch {
    type Output = Page;
    type Error = String;

    async fn run(&mut self, cx: &JobContext) -> Result<Page, String> {
        let started = Instant::now();
        let request = self.client.get(&self.url).send();
        // A cancelled job (pool shutdown, a cancelled handle) stops waiting for the server.
        let response = tokio::select! {
            response = request => response.map_err(|e| describe(&self.url, &e))?,
            () = cx.token().cancelled() => return Err(format!("{}: cancelled", self.url)),
        };
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{}: HTTP {}", self.url, status.as_u16()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("{}: {e}", self.url))?;
        Ok(Page {
            url: self.url.clone(),
            status: status.as_u16(),
            bytes: body.len(),
            took: started.elapsed(),
        })
    }
}

/// A client error in a line.
fn describe(url: &str, error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("{url}: timed out")
    } else {
        format!("{url}: {error}")
    }
}

/// Requests the server is handling now, and the most it ever handled at once.
#[derive(Default)]
struct Load {
    now: AtomicUsize,
    peak: AtomicUsize,
}

async fn serve(
    request: Request<Incoming>,
    load: Arc<Load>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let now = load.now.fetch_add(1, Ordering::SeqCst) + 1;
    load.peak.fetch_max(now, Ordering::SeqCst);
    let path = request.uri().path().to_owned();
    let (status, body) = if path.starts_with("/slow/") {
        tokio::time::sleep(Duration::from_millis(400)).await;
        (StatusCode::OK, format!("slow page {path}"))
    } else if path.starts_with("/fail/") {
        tokio::time::sleep(Duration::from_millis(20)).await;
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error".to_owned(),
        )
    } else if path.starts_with("/hang/") {
        // Longer than the client's timeout.
        tokio::time::sleep(Duration::from_secs(3)).await;
        (StatusCode::OK, "too late".to_owned())
    } else if path.starts_with("/page/") {
        tokio::time::sleep(Duration::from_millis(50)).await;
        (StatusCode::OK, format!("<html>page {path}</html>"))
    } else {
        (StatusCode::NOT_FOUND, "not found".to_owned())
    };
    load.now.fetch_sub(1, Ordering::SeqCst);
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}

/// Starts the test server on a free port of 127.0.0.1.
async fn start_server(
    load: Arc<Load>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let load = Arc::clone(&load);
            tokio::spawn(async move {
                let service = service_fn(move |request| serve(request, Arc::clone(&load)));
                // A client that hangs up early is not the server's problem.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, server))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let load = Arc::new(Load::default());
    let (addr, server) = start_server(Arc::clone(&load)).await?;
    println!("test server on http://{addr}");

    let paths = [
        "/page/1",
        "/slow/2",
        "/page/3",
        "/fail/4",
        "/page/5",
        "/slow/6",
        "/missing/7",
        "/page/8",
        "/hang/9",
        "/page/10",
        "/slow/11",
        "/page/12",
    ];
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()?;
    let pool = TokioPool::builder()
        .name("fetchers")
        .workers(WORKERS)
        .queue_capacity(4)
        .build()?;

    let started = Instant::now();
    let mut results = Completions::new();
    for path in paths {
        let job = Fetch {
            client: client.clone(),
            url: format!("http://{addr}{path}"),
        };
        // Waits while four fetches are already queued: the producer never runs ahead.
        results.push(pool.submit(job).await?);
    }

    let (mut fetched, mut failed) = (0, 0);
    while let Some((id, result)) = results.next().await {
        match result {
            Ok(page) => {
                fetched += 1;
                println!(
                    "ok   {id:>3} {} -> {} ({} bytes) in {:?}",
                    page.url, page.status, page.bytes, page.took
                );
            }
            Err(error) => {
                failed += 1;
                println!("fail {id:>3} {error}");
            }
        }
    }
    let elapsed = started.elapsed();
    pool.shutdown().await;
    server.abort();

    println!(
        "\n{fetched} fetched, {failed} failed, {} URLs in {elapsed:?} with {WORKERS} workers",
        paths.len()
    );
    println!(
        "the server saw at most {} requests at once",
        load.peak.load(Ordering::SeqCst)
    );
    assert!(load.peak.load(Ordering::SeqCst) <= WORKERS);
    Ok(())
}
