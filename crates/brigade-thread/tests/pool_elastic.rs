//! Elastic sizing: growth under load, retirement after keep-alive, resize at run time,
//! and no job stranded when the last worker retires as work arrives.

mod common;

use std::time::Duration;

use brigade_core::CancellationToken;
use brigade_thread::BoxPool;
use common::{eventually, returns, waits_for};

fn elastic(min: usize, max: usize, keep_alive_ms: u64) -> BoxPool<u64, String> {
    BoxPool::builder()
        .name("elastic-test")
        .min_workers(min)
        .max_workers(max)
        .keep_alive(Duration::from_millis(keep_alive_ms))
        .queue_capacity(100)
        .build()
        .unwrap()
}

#[test]
fn grows_under_a_burst_then_shrinks_to_min_after_keep_alive() {
    let pool = elastic(2, 10, 100);
    assert_eq!(pool.stats().workers, 2);
    let gate = CancellationToken::new();
    let handles: Vec<_> = (0..100)
        .map(|i| pool.submit(waits_for(&gate, i)).unwrap())
        .collect();
    eventually("the pool grows to max and all are busy", || {
        pool.stats().busy == 10
    });
    let stats = pool.stats();
    assert_eq!((stats.busy, stats.queued), (10, 90), "{stats:?}");
    gate.cancel();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.join(), Ok(i as u64));
    }
    eventually("idle workers retire down to min", || {
        pool.stats().workers == 2
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(pool.stats().workers, 2, "never below min");
}

#[test]
fn does_not_grow_while_idle_workers_keep_up() {
    let pool = elastic(2, 8, 10_000);
    for i in 0..50 {
        assert_eq!(pool.submit(returns(i)).unwrap().join(), Ok(i));
        // Growth reads the idle count without a lock; give the worker that just finished
        // time to wait again, so this checks the policy rather than a scheduling race.
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        pool.stats().workers,
        2,
        "one job at a time never outruns two idle workers"
    );
}

#[test]
fn a_pool_with_min_zero_serves_jobs_arriving_as_its_last_worker_retires() {
    // Keep-alive short enough that many submits land right as the only worker retires.
    let pool = elastic(0, 1, 1);
    assert_eq!(pool.stats().workers, 0);
    for round in 0..300u64 {
        let handle = pool.submit(returns(round)).unwrap();
        assert_eq!(
            handle
                .join_timeout(common::PATIENCE)
                .expect("no stranded job"),
            Ok(round)
        );
        std::thread::sleep(Duration::from_micros(round % 7 * 300));
    }
    eventually("the pool shrinks back to zero", || {
        pool.stats().workers == 0
    });
}

#[test]
fn resize_grows_to_the_new_min_at_once_and_shrinks_promptly() {
    let pool = elastic(1, 2, 60_000);
    pool.resize(5, 8).unwrap();
    assert_eq!(pool.stats().workers, 5, "grown at once");
    // The keep-alive is a minute: shrinking must not wait for it.
    pool.resize(1, 2).unwrap();
    eventually("workers above the new max retire", || {
        pool.stats().workers <= 2
    });
    assert_eq!(pool.submit(returns(4)).unwrap().join(), Ok(4));
}

#[test]
fn resize_of_a_busy_pool_retires_workers_as_their_jobs_end() {
    let pool = elastic(4, 4, 60_000);
    let gate = CancellationToken::new();
    let handles: Vec<_> = (0..4)
        .map(|i| pool.submit(waits_for(&gate, i)).unwrap())
        .collect();
    eventually("all four busy", || pool.stats().busy == 4);
    pool.resize(1, 1).unwrap();
    gate.cancel();
    for handle in handles {
        assert!(handle.join().is_ok());
    }
    eventually("down to one worker", || pool.stats().workers == 1);
    let results: Vec<_> = pool.map((0..20).map(returns), 4).collect();
    assert_eq!(results.len(), 20);
}

#[test]
fn elastic_pools_shut_down_cleanly_with_zero_workers() {
    let pool = elastic(0, 3, 10);
    assert!(pool.shutdown().is_clean());
    let pool = elastic(0, 3, 10);
    let handle = pool.submit(returns(1)).unwrap();
    let report = pool.shutdown();
    assert!(report.is_clean());
    assert_eq!(handle.join(), Ok(1));
}

#[test]
fn lowering_the_minimum_lets_idle_workers_retire_after_keep_alive() {
    // A fixed pool's idle workers wait with no timeout at all...
    let pool = elastic(4, 4, 50);
    assert_eq!(pool.map((0..8).map(returns), 4).count(), 8);
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(pool.stats().workers, 4);
    // ...until a lower minimum gives them a keep-alive to run out.
    pool.resize(1, 4).unwrap();
    eventually("idle workers retire down to the new minimum", || {
        pool.stats().workers == 1
    });
    assert_eq!(pool.submit(returns(3)).unwrap().join(), Ok(3));
}
