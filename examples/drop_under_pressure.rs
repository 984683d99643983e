//! Dropping items under pressure: a fast producer feeds a slow pool with a small queue;
//! when the queue is full an item is dropped (and logged) instead of blocking the producer.
//!
//! Ported from "Dropping Items Under Pressure" (`producerWithDrop`).
//! Run with `cargo run --example drop_under_pressure`.
//!
//! The seed's `select { case out <- item: default: log... }` becomes a backpressure layer:
//! drop the newest item (the seed's choice) or evict the oldest queued one (fresh data
//! wins). Every dropped item reaches the `on_drop` callback and `Stats::dropped`; none is
//! lost silently.

use std::thread;
use std::time::Duration;

use brigade::middleware::{Backpressure, Overflow};
use brigade::prelude::*;

/// An item from the stream.
struct Item {
    id: String,
}

impl Job for Item {
    type Output = ();
    type Error = String;

    fn run(&mut self, _cx: &JobContext) -> Result<(), String> {
        thread::sleep(Duration::from_millis(20)); // a slow consumer
        println!("processed item {}", self.id);
        Ok(())
    }
}

fn run(overflow: Overflow, verb: &'static str) -> Result<(), Box<dyn std::error::Error>> {
    let policy = Backpressure::new(overflow).on_drop(move |item: Item, _reason| {
        println!("{verb} item {} due to backpressure", item.id);
    });
    let pool = ThreadPool::<Item>::builder()
        .workers(2)
        .queue_capacity(5)
        .layer(policy)
        .build()?;
    for n in 1..=20 {
        // Never blocks: a full queue drops an item instead.
        pool.execute(Item {
            id: format!("item-{n:02}"),
        })
        .map_err(|error| error.to_string())?;
        thread::sleep(Duration::from_millis(2)); // a fast producer
    }
    pool.shutdown();
    let stats = pool.stats();
    println!(
        "offered {}: processed {}, dropped {}\n",
        stats.submitted, stats.completed, stats.dropped
    );
    assert!(stats.is_balanced());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("Drop newest (the seed's policy), 2 workers, queue of 5:");
    run(Overflow::DropNewest, "dropping")?;
    println!("Drop oldest (fresh data wins):");
    run(Overflow::DropOldest, "evicting")?;
    Ok(())
}
