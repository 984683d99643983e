//! A batch email sender: 10 workers (10 SMTP connections) send 100 emails with about 5%
//! failures, at most 10 per second (the SMTP provider's limit, a rate-limit layer); a
//! progress line is read from the pool's stats every 500 ms.
//!
//! Ported from "Database Batch Processor" (`database_batch_processor.go`).
//! Run with `cargo run --example batch_email_sender`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use brigade::Completions;
use brigade::middleware::{Rate, RateLimit};
use brigade::prelude::*;
use rand::Rng;

/// An inactive user to win back.
struct User {
    id: u64,
    email: String,
    name: String,
}

/// One email to send.
struct EmailJob {
    user_id: u64,
    email: String,
    subject: String,
    body: String,
}

impl Job for EmailJob {
    type Output = u64;
    type Error = String;

    fn run(&mut self, _cx: &JobContext) -> Result<u64, String> {
        let mut rng = rand::rng();
        // Variable SMTP latency, and a 5% failure rate.
        thread::sleep(Duration::from_millis(rng.random_range(20..100)));
        if rng.random_bool(0.05) {
            return Err("SMTP connection failed".to_owned());
        }
        debug_assert!(!self.email.is_empty() && !self.subject.is_empty() && !self.body.is_empty());
        Ok(self.user_id)
    }
}

fn inactive_users(count: u64) -> Vec<User> {
    (1..=count)
        .map(|id| User {
            id,
            email: format!("user{id}@example.com"),
            name: format!("User {id}"),
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sender = Arc::new(
        ThreadPool::builder()
            .name("email-sender")
            .workers(10)
            .queue_capacity(100)
            // The SMTP provider allows 10 emails per second: one limit shared by all workers.
            .layer(RateLimit::builder(Rate::per_second(10)).burst(10).build()?)
            .build()?,
    );
    println!("Email sender started with 10 workers");

    // Progress reporter: reads the pool's counters, as the seed's ticker goroutine.
    let done = Arc::new(AtomicBool::new(false));
    let reporter = {
        let (sender, done) = (Arc::clone(&sender), Arc::clone(&done));
        thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                thread::sleep(Duration::from_millis(500));
                let stats = sender.stats();
                println!(
                    "Progress: {} processed, {} sent, {} failed",
                    stats.completed + stats.failed,
                    stats.completed,
                    stats.failed
                );
            }
        })
    };

    println!("Fetching inactive users...");
    let users = inactive_users(100);
    println!("Found {} inactive users\n", users.len());

    println!("Submitting email jobs...");
    let start = Instant::now();
    let mut results = Completions::new();
    let mut user_of_job = HashMap::new();
    for user in users {
        let handle = sender.submit(EmailJob {
            user_id: user.id,
            email: user.email,
            subject: "We miss you!".to_owned(),
            body: format!("Hi {}, it's been a while since we saw you...", user.name),
        })?;
        user_of_job.insert(handle.id(), user.id);
        results.push(handle);
    }

    // Result collector: report each failure as it happens.
    let mut failures = Vec::new();
    for (id, result) in results {
        if let Err(error) = result {
            let user = user_of_job[&id];
            println!(
                "  Failed to send to user {user}: {}",
                error.error().map_or("?", String::as_str)
            );
            failures.push(user);
        }
    }

    sender.shutdown();
    done.store(true, Ordering::Release);
    reporter.join().expect("reporter thread");

    let elapsed = start.elapsed();
    let stats = sender.stats();
    let processed = stats.completed + stats.failed;
    println!("\n=");
    println!("Final Results:");
    println!("  Total processed: {processed}");
    println!("  Successfully sent: {}", stats.completed);
    println!("  Failed: {} (users {:?})", stats.failed, failures);
    println!("  Total time: {elapsed:?}");
    println!(
        "  Throughput: {:.1} emails/second",
        processed as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
