//! A rate-limited worker: items are processed at most 10 per second, however many workers
//! are free — the seed's `time.Ticker` loop, as a GCRA rate-limit layer on the pool.
//!
//! Ported from "Rate Limiting with time.Ticker" (`rateLimitedWorker`).
//! Run with `cargo run --example rate_limited_worker`.
//!
//! Unlike the ticker, the limit is shared by all workers (and could be by several pools),
//! a start that comes too early waits in the pool's delay queue instead of holding a
//! worker, and a per-key limit gives each key (a host, a tenant) its own rate.

use std::time::{Duration, Instant};

use brigade::middleware::{KeyedRateLimit, Rate, RateLimit};
use brigade::prelude::*;

/// An item to process.
struct Item {
    id: u32,
    host: &'static str,
    submitted: Instant,
}

impl Job for Item {
    type Output = Duration;
    type Error = String;

    fn run(&mut self, _cx: &JobContext) -> Result<Duration, String> {
        let at = self.submitted.elapsed();
        println!(
            "processed item {:>2} from {} at {:>4} ms",
            self.id,
            self.host,
            at.as_millis()
        );
        Ok(at)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rate_per_second = 10;
    println!("One limit of {rate_per_second} items per second for 4 workers:");
    let limit = RateLimit::builder(Rate::per_second(rate_per_second)).build()?;
    let pool = ThreadPool::<Item>::builder()
        .workers(4)
        .layer(limit.clone())
        .build()?;
    let start = Instant::now();
    for id in 1..=20 {
        pool.execute(Item {
            id,
            host: "api.example",
            submitted: start,
        })
        .map_err(|error| error.to_string())?;
    }
    pool.shutdown();
    let elapsed = start.elapsed();
    println!(
        "{} items in {:.1} s: {:.1} per second\n",
        pool.stats().completed,
        elapsed.as_secs_f64(),
        pool.stats().completed as f64 / elapsed.as_secs_f64()
    );

    println!("A limit per host, 5 per second each, burst of 2:");
    let per_host = KeyedRateLimit::builder(Rate::per_second(5), |item: &Item| item.host)
        .burst(2)
        .build()?;
    let pool = ThreadPool::<Item>::builder()
        .workers(4)
        .layer(per_host)
        .build()?;
    let start = Instant::now();
    for id in 1..=12 {
        let host = if id % 2 == 0 {
            "a.example"
        } else {
            "b.example"
        };
        pool.execute(Item {
            id,
            host,
            submitted: start,
        })
        .map_err(|error| error.to_string())?;
    }
    pool.shutdown();
    println!(
        "{} items from 2 hosts in {:.1} s",
        pool.stats().completed,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
