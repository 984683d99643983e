//! A weighted semaphore: items weigh their size in KiB (at least 1 unit), and at most 100
//! units are processed at once, whatever the number of workers.
//!
//! Ported from "golang.org/x/sync/semaphore for Weighted Limits"
//! (`processWithWeightedSemaphore`). Run with `cargo run --example weighted_semaphore`.
//!
//! An item that does not fit waits off the worker until running items give their units
//! back; an item heavier than the whole limit could never run, so it is refused at submit
//! with the item handed back.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use brigade::SubmitError;
use brigade::middleware::WeightedLimit;
use brigade::prelude::*;

/// An item to process, of `size` bytes.
struct Item {
    id: u32,
    size: u64,
    limit: Arc<WeightedLimit<Item>>,
}

/// Heavier items take more capacity.
fn weight(item: &Item) -> u64 {
    (item.size / 1024).max(1)
}

impl Job for Item {
    type Output = ();
    type Error = String;

    fn run(&mut self, _cx: &JobContext) -> Result<(), String> {
        println!(
            "item {:>2} ({:>3} units) started: {:>3}/100 units in use",
            self.id,
            weight(self),
            self.limit.in_use()
        );
        thread::sleep(Duration::from_millis(30));
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Allow 100 "units" of concurrent work.
    let limit = Arc::new(WeightedLimit::new(100, weight)?);
    let pool = ThreadPool::<Item>::builder()
        .workers(8)
        .layer((*limit).clone())
        .build()?;

    let sizes_kib = [10, 60, 5, 40, 80, 1, 30, 20, 200, 50, 0, 90, 15, 25];
    for (id, kib) in (1..).zip(sizes_kib) {
        let item = Item {
            id,
            size: kib * 1024,
            limit: Arc::clone(&limit),
        };
        match pool.submit(item) {
            Ok(_handle) => {}
            Err(SubmitError::Rejected(item, reason)) => {
                println!("item {:>2} refused: {reason}", item.id);
            }
            Err(error) => return Err(error.to_string().into()),
        }
    }
    pool.shutdown();
    let stats = pool.stats();
    println!(
        "\n{} items processed, {} refused, {} units in use at the end",
        stats.completed,
        stats.rejected,
        limit.in_use()
    );
    Ok(())
}
