//! errgroup with a limit (the seed's pattern 2): process fifty items, at most five at a
//! time; the first failure cancels the group's token, the items still running or not yet
//! started stop early, and `wait` returns the first error.
//!
//! Run with `cargo run --example errgroup`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use brigade::CancellationToken;
use brigade::tokio::ErrGroup;

const LIMIT: usize = 5;

/// Counts what happened to the items.
#[derive(Default)]
struct Tally {
    processed: AtomicUsize,
    skipped: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
}

/// Processes one item, checking the group's token before and during the work, as the
/// seed's `process(ctx, item)` checks `ctx.Done()`.
async fn process(item: u32, token: CancellationToken, tally: Arc<Tally>) -> Result<(), String> {
    if token.is_cancelled() {
        tally.skipped.fetch_add(1, Ordering::SeqCst);
        return Ok(());
    }
    let now = tally.running.fetch_add(1, Ordering::SeqCst) + 1;
    tally.peak.fetch_max(now, Ordering::SeqCst);
    let work = Duration::from_millis(20 + u64::from(item % 4) * 10);
    let result = tokio::select! {
        () = tokio::time::sleep(work) => {
            if item == 23 {
                Err(format!("item {item}: upstream returned 503"))
            } else {
                tally.processed.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }
        () = token.cancelled() => {
            tally.skipped.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    };
    tally.running.fetch_sub(1, Ordering::SeqCst);
    result
}

async fn run(items: u32) -> (Result<(), String>, Arc<Tally>, Duration) {
    let started = Instant::now();
    let tally = Arc::new(Tally::default());
    let mut group = ErrGroup::with_limit(LIMIT).expect("a limit above zero");
    for item in 0..items {
        let tally = Arc::clone(&tally);
        // Waits while LIMIT items are in flight, as `g.Go` does after `g.SetLimit`.
        group.spawn(move |token| process(item, token, tally)).await;
    }
    let result = group.wait().await;
    (result, tally, started.elapsed())
}

fn report(name: &str, (result, tally, elapsed): (Result<(), String>, Arc<Tally>, Duration)) {
    println!("{name}:");
    println!("  result:    {result:?}");
    println!(
        "  processed: {}, stopped early: {}",
        tally.processed.load(Ordering::SeqCst),
        tally.skipped.load(Ordering::SeqCst)
    );
    println!(
        "  at most {} items at once (limit {LIMIT}), {elapsed:?}",
        tally.peak.load(Ordering::SeqCst)
    );
}

#[tokio::main]
async fn main() {
    report("20 items, none fails", run(20).await);
    report("50 items, item 23 fails", run(50).await);
}
