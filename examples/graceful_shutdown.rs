//! Shutdown with a deadline: quick jobs drain, a slow job overruns the deadline and is
//! cancelled through its token, and the jobs that never started come back in the report.
//!
//! Ported from "Best Practice 4: Graceful shutdown pattern" (`worker_pool_best_practices.go`).
//! Run with `cargo run --example graceful_shutdown`.

use std::thread;
use std::time::{Duration, Instant};

use brigade::prelude::*;

/// A job of `work` duration that stops early when its token is cancelled.
struct Step {
    id: u32,
    work: Duration,
}

impl Job for Step {
    type Output = u32;
    type Error = String;

    fn run(&mut self, cx: &JobContext) -> Result<u32, String> {
        let worker = thread::current().name().unwrap_or("worker").to_owned();
        println!("{worker}: processing job {}", self.id);
        if cx.token().wait_timeout(self.work) {
            println!("{worker}: job {} cancelled", self.id);
            return Err(format!("job {} cancelled after the deadline", self.id));
        }
        Ok(self.id)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::builder()
        .name("graceful")
        .workers(3)
        .queue_capacity(30)
        .thread_name("worker")
        .build()?;

    // One slow job among quick ones: it holds a worker far past the deadline.
    pool.execute(Step {
        id: 0,
        work: Duration::from_secs(30),
    })?;
    for id in 1..=20 {
        pool.execute(Step {
            id,
            work: Duration::from_millis(40),
        })?;
    }

    let deadline = Duration::from_millis(150);
    let start = Instant::now();
    let report = pool.shutdown_timeout(deadline);
    if report.deadline_passed {
        println!("Shutdown error: shutdown timed out after {deadline:?}");
    } else {
        println!("Shutdown completed gracefully");
    }
    let handed_back: Vec<u32> = report.unstarted.iter().map(|step| step.id).collect();
    println!(
        "Report: {} jobs ended while draining ({} of them cancelled at the deadline), {} handed back unstarted {:?} (took {:?})",
        report.finished,
        report.cancelled,
        handed_back.len(),
        handed_back,
        start.elapsed(),
    );
    let stats = pool.stats();
    println!(
        "Stats: {} submitted = {} completed + {} cancelled + {} returned",
        stats.submitted, stats.completed, stats.cancelled, stats.returned
    );
    Ok(())
}
