//! How many workers? Size a pool by its bottleneck: cores for CPU-bound work, more for
//! work that waits, the outside limit for work that holds a scarce resource.
//!
//! Ported from "Best Practice 1: Size your worker pool appropriately"
//! (`worker_pool_best_practices.go`).
//! Run with `cargo run --example sizing`.

use std::thread;
use std::time::Duration;

use brigade::Workload;
use brigade::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("Recommended worker counts:");
    println!("  CPU-bound: {}", Workload::CpuBound.recommended_workers());
    println!("  IO-bound: {}", Workload::IoBound.recommended_workers());
    println!("  Mixed: {}", Workload::Mixed.recommended_workers());
    println!(
        "  External-limited: {}",
        Workload::ExternalLimit(25).recommended_workers()
    );

    println!("\nDemonstrating graceful shutdown:");
    let pool: BoxPool<u32, String> = ThreadPool::builder()
        .name("sized")
        .workers(3)
        .queue_capacity(3 * 10)
        .thread_name("worker")
        .build()?;
    for job in 1..=20 {
        pool.execute(BoxJob::new(job_fn(move |_| {
            let worker = thread::current().name().unwrap_or("worker").to_owned();
            println!("{worker}: processing job {job}");
            thread::sleep(Duration::from_millis(10));
            Ok(job)
        })))?;
    }
    let report = pool.shutdown_timeout(Duration::from_secs(5));
    if report.deadline_passed {
        println!("Shutdown error: shutdown timed out");
    } else {
        println!("Shutdown completed gracefully");
    }
    Ok(())
}
