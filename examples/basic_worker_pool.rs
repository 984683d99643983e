//! The classic worker pool: 5 workers drain a queue of 20 jobs and stream back results.
//!
//! Ported from "Basic Worker Pool Implementation" (`basic_worker_pool.go`).
//! Run with `cargo run --example basic_worker_pool`.

use std::convert::Infallible;
use std::thread;
use std::time::{Duration, Instant};

use brigade::prelude::*;

/// A unit of work: an id and its data.
struct Task {
    id: u64,
    data: String,
}

/// What a worker reports back for a task.
struct Report {
    job_id: u64,
    output: String,
    duration: Duration,
}

impl Job for Task {
    type Output = Report;
    type Error = Infallible;

    fn run(&mut self, _cx: &JobContext) -> Result<Report, Infallible> {
        let start = Instant::now();
        thread::sleep(Duration::from_millis(50 + self.id % 100));
        let worker = thread::current().name().unwrap_or("worker").to_owned();
        Ok(Report {
            job_id: self.id,
            output: format!("{worker} processed job {}: {}", self.id, self.data),
            duration: start.elapsed(),
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const WORKERS: usize = 5;
    const JOBS: u64 = 20;

    println!("Starting {WORKERS} workers...");
    let pool = ThreadPool::builder()
        .name("basic")
        .workers(WORKERS)
        .queue_capacity(JOBS as usize)
        .thread_name("worker")
        .build()?;

    println!("Sending {JOBS} jobs...");
    let tasks = (1..=JOBS).map(|id| Task {
        id,
        data: format!("task-{id}"),
    });

    println!("\nResults:");
    for result in pool.map_unordered(tasks, JOBS as usize) {
        // The outer `?`: a job the pool refused comes back; the inner one: the job's error.
        let report = result?;
        println!(
            "  Job {} completed in {:?} ({})",
            report.job_id, report.duration, report.output
        );
    }

    let workers = pool.stats().workers;
    pool.shutdown();
    println!("{workers} workers: shutting down");
    println!("\nAll jobs completed!");
    Ok(())
}
