//! A pipeline (the seed's pipeline pattern): generate → square on 3 workers → filter > 10 →
//! collect, with a bounded channel between every two stages so no stage runs ahead, and
//! one cancellation token that stops every stage. The first run goes to the end; the second
//! is cancelled by the collector once it has three results, and each stage reports where it
//! stopped.
//!
//! Run with `cargo run --example pipeline`.

use std::time::Duration;

use brigade::prelude::*;
use brigade::tokio::TokioPool;
use brigade::{BoxAsyncJob, CancellationToken};
use futures_util::{StreamExt, stream};
use tokio::sync::mpsc;

type Square = BoxAsyncJob<u64, String>;

/// Stage 1: sends `numbers` into a channel of two slots, stopping when cancelled.
fn generate(numbers: Vec<u64>, token: CancellationToken) -> mpsc::Receiver<u64> {
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        for n in numbers {
            tokio::select! {
                sent = tx.send(n) => if sent.is_err() { return },
                () = token.cancelled() => {
                    println!("  generate: cancelled before sending {n}");
                    return;
                }
            }
        }
        println!("  generate: done");
    });
    rx
}

/// The job of stage 2: squares `n` (slowly, as real work would), unless cancelled.
fn square(n: u64) -> Square {
    BoxAsyncJob::new(move |cx: JobContext| async move {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(20)) => Ok(n * n),
            () = cx.token().cancelled() => Err(format!("square({n}) cancelled")),
        }
    })
}

/// Stage 2: squares on a pool of three workers, at most three in flight, in input order.
fn fan_out(input: mpsc::Receiver<u64>, token: CancellationToken) -> mpsc::Receiver<u64> {
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        let pool = TokioPool::builder()
            .name("square")
            .workers(3)
            .queue_capacity(3)
            .build()
            .expect("a valid pool");
        let jobs = stream::unfold(input, |mut input| async move {
            input.recv().await.map(|n| (square(n), input))
        });
        let mut squares = Box::pin(pool.map(jobs, 3));
        loop {
            tokio::select! {
                next = squares.next() => match next {
                    Some(Ok(n)) => if tx.send(n).await.is_err() { break },
                    Some(Err(error)) => println!("  square: {error}"),
                    None => {
                        println!("  square: done");
                        break;
                    }
                },
                () = token.cancelled() => {
                    println!("  square: cancelled");
                    break;
                }
            }
        }
        drop(squares);
        // Cancel what still runs and hand back what never started.
        let report = pool.shutdown_now().await;
        if !report.is_clean() {
            println!(
                "  square: {} running cancelled, {} unstarted handed back",
                report.cancelled,
                report.unstarted.len()
            );
        }
    });
    rx
}

/// Stage 3: keeps the numbers above `min`.
fn filter(
    mut input: mpsc::Receiver<u64>,
    min: u64,
    token: CancellationToken,
) -> mpsc::Receiver<u64> {
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                next = input.recv() => match next {
                    Some(n) if n > min => if tx.send(n).await.is_err() { break },
                    Some(_) => {}
                    None => {
                        println!("  filter: done");
                        break;
                    }
                },
                () = token.cancelled() => {
                    println!("  filter: cancelled");
                    break;
                }
            }
        }
    });
    rx
}

async fn pipeline(input: Vec<u64>, stop_after: Option<usize>) -> Vec<u64> {
    let token = CancellationToken::new();
    let squares = fan_out(generate(input, token.clone()), token.clone());
    let mut filtered = filter(squares, 10, token.clone());
    let mut collected = Vec::new();
    while let Some(n) = filtered.recv().await {
        collected.push(n);
        if Some(collected.len()) == stop_after {
            println!(
                "  collect: have {}, cancelling the pipeline",
                collected.len()
            );
            token.cancel();
            break;
        }
    }
    // Give the stages a moment to report how they stopped.
    tokio::time::sleep(Duration::from_millis(50)).await;
    collected
}

#[tokio::main]
async fn main() {
    println!("run to the end:");
    let all = pipeline((1..=10).collect(), None).await;
    println!("result: {all:?}\n");

    println!("cancel after three results:");
    let some = pipeline((1..=100).collect(), Some(3)).await;
    println!("result: {some:?}");
}
