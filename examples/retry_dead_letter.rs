//! A worker pool with retries and a dead-letter queue: 3 workers, 10 jobs that fail 40% of
//! the time, 3 attempts with a 100 ms · 2ⁿ backoff capped at 5 s, an alert for every job
//! that reaches the dead-letter file, then a replay of that file into a fresh pool.
//!
//! Ported from "Worker Pool with Retries and Dead Letter Queue"
//! (`worker_pool_with_retry.go`). Run with `cargo run --example retry_dead_letter`.
//!
//! The backoff never holds a worker: a failed job waits in the pool's delay queue, and
//! the worker takes the next job. The dead-letter file is JSON Lines, synced before a job
//! counts as dead-lettered, so a crash loses nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use brigade::hooks::{AfterRun, Middleware, RunOutcome, RunReport};
use brigade::middleware::{Backoff, DeadLetterQueue, JsonlSink, Retry};
use brigade::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// A job that can be retried; serde lets it go to the dead-letter file and come back.
#[derive(Debug, Serialize, Deserialize)]
struct RetryableJob {
    id: u32,
    data: String,
}

impl Job for RetryableJob {
    type Output = ();
    type Error = String;

    fn run(&mut self, cx: &JobContext) -> Result<(), String> {
        thread::sleep(Duration::from_millis(50));
        // 40% chance of failure, until the dependency recovers.
        if !RECOVERED.load(Ordering::Relaxed) && fails(self.id, cx.attempt()) {
            return Err("random processing error".to_owned());
        }
        println!(
            "{}: Job {} succeeded on attempt {}",
            worker(),
            self.id,
            cx.attempt()
        );
        debug_assert!(!self.data.is_empty());
        Ok(())
    }
}

/// Set once "the dependency" is fixed, before the replay.
static RECOVERED: AtomicBool = AtomicBool::new(false);

/// Whether run `attempt` of job `id` fails: 40% of runs, drawn from a fixed seed so every
/// run of the example shows the same story (the seed's program uses `rand.Float32()`).
fn fails(id: u32, attempt: u32) -> bool {
    StdRng::seed_from_u64(SEED ^ (u64::from(id) << 8 | u64::from(attempt))).random_bool(0.4)
}

/// A seed whose story sends two jobs to the dead-letter queue.
const SEED: u64 = 1;

/// The seeds' "Worker 2" for the thread "worker-1".
fn worker() -> String {
    let name = thread::current().name().unwrap_or_default().to_owned();
    match name
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse::<u32>().ok())
    {
        Some(n) => format!("Worker {}", n + 1),
        None => name,
    }
}

/// Wraps the retry policy to print its decisions as the seed's workers and retry
/// processor do; the policy itself decides.
struct Logged(Retry<String>);

impl Middleware<RetryableJob, String> for Logged {
    fn after_run(&self, job: &RetryableJob, run: &RunReport<'_, String>, now: Instant) -> AfterRun {
        let decision = self.0.decide(run.id, &run.outcome, run.attempt, now);
        if let RunOutcome::Failed(error) = run.outcome {
            let max = self.0.max_attempts();
            match decision {
                AfterRun::RetryAt(at) => {
                    println!(
                        "{}: Job {} failed (attempt {}/{max}), queued for retry: {error}",
                        worker(),
                        job.id,
                        run.attempt
                    );
                    println!(
                        "Retry processor: Job {} waiting {:?} before retry",
                        job.id,
                        at - now
                    );
                }
                _ => println!(
                    "{}: Job {} moved to DLQ after {} attempts: {error}",
                    worker(),
                    job.id,
                    run.attempt
                ),
            }
        }
        decision
    }
}

fn retry() -> Result<Logged, brigade::ConfigError> {
    // Exponential backoff: 100ms, 200ms, 400ms, ... capped at 5s.
    let retry = Retry::builder()
        .max_attempts(3)
        .backoff(Backoff::exponential(Duration::from_millis(100)).cap(Duration::from_secs(5)))
        .build()?;
    Ok(Logged(retry))
}

fn retrying_pool(
    dead_letters: &JsonlSink<RetryableJob>,
) -> Result<ThreadPool<RetryableJob>, brigade::ConfigError> {
    ThreadPool::builder()
        .name("retrying")
        .thread_name("worker")
        .workers(3)
        .layer(retry()?)
        .layer(
            DeadLetterQueue::new(dead_letters.clone())
                .label(|job: &RetryableJob| job.id.to_string())
                .on_alert(|alert| {
                    println!(
                        "\n*** DLQ ALERT: Job {} permanently failed: {} ***\n",
                        alert.job, alert.error
                    );
                }),
        )
        .build()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join("brigade-retry-dead-letter.jsonl");
    let _ = std::fs::remove_file(&path); // a fresh run
    let dead_letters = JsonlSink::<RetryableJob>::open(&path)?;

    let pool = retrying_pool(&dead_letters)?;
    for id in 1..=10 {
        pool.execute(RetryableJob {
            id,
            data: format!("task-{id}"),
        })
        .map_err(|error| error.to_string())?;
    }
    // Drains the queue and the retries, then stops the workers.
    pool.shutdown();
    let stats = pool.stats();
    println!(
        "\nPool shutdown complete: {} succeeded, {} retries, {} dead-lettered to {}",
        stats.completed,
        stats.retried,
        stats.dead_lettered,
        path.display()
    );

    // Later (after a fix, or a restart): replay the dead letters into a fresh pool. Each
    // letter leaves the file only once the pool accepted its job.
    let dead_letters = JsonlSink::<RetryableJob>::open(&path)?;
    RECOVERED.store(true, Ordering::Relaxed);
    println!(
        "\nThe dependency recovered. Replaying {} dead letters into a fresh pool...",
        dead_letters.pending()
    );
    let fresh = retrying_pool(&dead_letters)?;
    let report = dead_letters.replay(&fresh)?;
    for handle in report.replayed {
        let _ = handle.join();
    }
    fresh.shutdown();
    println!(
        "\nReplay complete: {} succeeded, {} dead-lettered again, {} letters in the file",
        fresh.stats().completed,
        fresh.stats().dead_lettered,
        dead_letters.pending()
    );
    Ok(())
}
