//! `wait_idle` with several waiters: an idle moment releases every task waiting at it, even
//! when the first one out submits new work at once (the `threadpool` crate's "join
//! wavesurfer" scenario, on tasks).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brigade_core::{BoxAsyncJob, CancellationToken, JobContext};
use brigade_tokio::TokioPool;

type Job = BoxAsyncJob<u64, String>;

const WAITERS: usize = 4;
const ROUNDS: usize = 4;

fn waits_for(gate: &CancellationToken) -> Job {
    let gate = gate.clone();
    BoxAsyncJob::new(move |_cx: JobContext| {
        let gate = gate.clone();
        async move {
            gate.cancelled().await;
            Ok(0)
        }
    })
}

/// Yields until `condition` holds, failing after a generous bound.
async fn until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..20_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "current_thread")]
async fn every_waiter_leaves_at_each_idle_moment_though_the_first_submits_at_once() {
    let pool = Arc::new(
        TokioPool::<Job>::builder()
            .workers(2)
            .queue_capacity(64)
            .build()
            .unwrap(),
    );
    let gates: Arc<Vec<CancellationToken>> =
        Arc::new((0..=ROUNDS).map(|_| CancellationToken::new()).collect());
    let waiting = Arc::new(AtomicUsize::new(0));
    let released = Arc::new(AtomicUsize::new(0));
    pool.execute(waits_for(&gates[0])).await.unwrap();

    let waiters: Vec<_> = (0..WAITERS)
        .map(|_| {
            let (pool, gates) = (Arc::clone(&pool), Arc::clone(&gates));
            let (waiting, released) = (Arc::clone(&waiting), Arc::clone(&released));
            tokio::spawn(async move {
                for round in 1..=ROUNDS {
                    // Counted and registered in the same poll: once the count shows, this
                    // task waits inside `wait_idle`.
                    waiting.fetch_add(1, Ordering::SeqCst);
                    pool.wait_idle().await;
                    released.fetch_add(1, Ordering::SeqCst);
                    pool.execute(waits_for(&gates[round])).await.unwrap();
                }
            })
        })
        .collect();

    for round in 1..=ROUNDS {
        until("every waiter waits", || {
            waiting.load(Ordering::SeqCst) == WAITERS * round
        })
        .await;
        gates[round - 1].cancel();
        until("every waiter was released by this idle moment", || {
            released.load(Ordering::SeqCst) == WAITERS * round
        })
        .await;
    }
    gates[ROUNDS].cancel();
    for waiter in waiters {
        waiter.await.unwrap();
    }
    pool.wait_idle().await;
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats:?}");
    assert_eq!(stats.completed, 1 + (WAITERS * ROUNDS) as u64);
}
