//! An elastic pool: 2 to 10 workers. A burst of 100 jobs makes it grow; once idle longer
//! than its keep-alive, the extra workers retire back to the minimum.
//!
//! Ported from "Dynamic Worker Pool with Auto-Scaling" (`dynamic_worker_pool.go`), with a
//! one-second keep-alive where the seed waits 30 s.
//! Run with `cargo run --example dynamic_pool`.

use std::convert::Infallible;
use std::thread;
use std::time::Duration;

use brigade::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keep_alive = Duration::from_secs(1);
    let pool: BoxPool<usize, Infallible> = ThreadPool::builder()
        .name("dynamic")
        .min_workers(2)
        .max_workers(10)
        .keep_alive(keep_alive)
        .queue_capacity(1000)
        .build()?;
    println!("Starting with {} workers", pool.stats().workers);

    let burst = (0..100).map(|job| {
        BoxJob::new(job_fn(move |_| {
            thread::sleep(Duration::from_millis(100)); // simulate work
            Ok(job)
        }))
    });
    for result in pool.map_unordered(burst, 100) {
        // Each job returns its own number; `?` passes on a job the pool refused.
        let job = result?;
        let stats = pool.stats();
        println!(
            "Job {job} completed (workers: {}, queue: {})",
            stats.workers, stats.queued
        );
    }

    println!("\nAll jobs done. Workers: {}", pool.stats().workers);
    println!("Waiting for idle workers to scale down...");
    thread::sleep(keep_alive * 2);
    println!("After idle period. Workers: {}", pool.stats().workers);
    pool.shutdown();
    Ok(())
}
