//! Backpressure (the seed's pattern 5): a fast producer feeds two slow async workers
//! through a queue of ten slots. `submit(job).await` holds the producer back while the queue
//! is full, so memory stays bounded; the example measures how long the producer waited. The
//! second half drops work instead of waiting (`try_submit`), as the seed's
//! `producerWithDrop` does.
//!
//! Run with `cargo run --example backpressure`.

use std::time::{Duration, Instant};

use brigade::prelude::*;
use brigade::tokio::TokioPool;
use brigade::{BoxAsyncJob, TrySubmitError};

const ITEMS: u64 = 100;
const QUEUE: usize = 10;

type Item = BoxAsyncJob<u64, String>;

/// A consumer's work on one item: 10 ms.
fn slow_item(n: u64) -> Item {
    BoxAsyncJob::new(move |_cx: JobContext| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(n)
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("blocking send: {ITEMS} items, queue of {QUEUE}, 2 workers of 10 ms per item");
    let pool = TokioPool::builder()
        .name("consumers")
        .workers(2)
        .queue_capacity(QUEUE)
        .build()?;
    let started = Instant::now();
    let mut waited = Duration::ZERO;
    let mut longest = Duration::ZERO;
    let mut deepest = 0;
    for n in 0..ITEMS {
        let before = Instant::now();
        pool.execute(slow_item(n)).await?; // waits while the queue is full
        let wait = before.elapsed();
        waited += wait;
        longest = longest.max(wait);
        deepest = deepest.max(pool.stats().queued);
    }
    let produced_in = started.elapsed();
    pool.shutdown().await;
    println!("  producer finished after {produced_in:?}, of which it waited {waited:?} for room");
    println!("  longest single wait {longest:?}; the queue never held more than {deepest} items");
    println!("  all {ITEMS} consumed in {:?}", started.elapsed());
    assert!(deepest <= QUEUE);

    println!("\ndropping under pressure: the same producer, try_submit, nothing waits");
    let pool = TokioPool::builder()
        .name("consumers")
        .workers(2)
        .queue_capacity(QUEUE)
        .build()?;
    let mut dropped = Vec::new();
    for n in 0..ITEMS {
        match pool.try_submit(slow_item(n)) {
            Ok(_handle) => {}
            Err(TrySubmitError::Full(_job)) => dropped.push(n),
            Err(other) => return Err(other.to_string().into()),
        }
        // The producer makes an item every millisecond: five times faster than two
        // workers of 10 ms can consume.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    pool.shutdown().await;
    let stats = pool.stats();
    println!(
        "  {} items processed, {} dropped due to backpressure (first few: {:?})",
        stats.completed,
        dropped.len(),
        &dropped[..dropped.len().min(5)]
    );
    Ok(())
}
