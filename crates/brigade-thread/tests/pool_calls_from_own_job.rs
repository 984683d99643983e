//! A job that waits for its own pool to go idle, or shuts it down, while other jobs wait
//! for it (for its worker, the pool's only one, or for the capacity it holds): the wait
//! covers every other job that can end before the caller, and no more, so it returns.

mod common;

use std::sync::Arc;

use brigade_core::testkit::Units;
use brigade_core::{BoxJob, CancellationToken, ErrorKind, JobContext};
use brigade_thread::BoxPool;
use common::{Job, PATIENCE, eventually, returns, sleeper_until};

type Pool = BoxPool<u64, String>;

/// A job that, once `go` opens, calls `then` on its own pool and returns what it says.
fn calls_own_pool(
    pool: &Arc<Pool>,
    go: &CancellationToken,
    then: impl Fn(&Pool) -> u64 + Send + 'static,
) -> Job {
    let (pool, go) = (Arc::clone(pool), go.clone());
    BoxJob::new(move |_: &JobContext| {
        go.wait_timeout(PATIENCE);
        Ok(then(&pool))
    })
}

#[test]
fn wait_idle_in_the_only_worker_returns_with_the_queued_job_left() {
    let pool = Arc::new(Pool::builder().workers(1).build().unwrap());
    let go = CancellationToken::new();
    let waiting = pool
        .submit(calls_own_pool(&pool, &go, |pool| {
            pool.wait_idle();
            pool.stats().queued as u64
        }))
        .unwrap();
    let queued = pool.submit(returns(2)).unwrap();
    go.cancel();
    let left = waiting
        .join_timeout(PATIENCE)
        .expect("wait_idle returned though the queued job needs the caller's worker");
    assert_eq!(left, Ok(1), "the queued job was left for after the caller");
    assert_eq!(queued.join(), Ok(2));
    pool.wait_idle();
    assert!(pool.stats().is_balanced());
}

#[test]
fn wait_idle_returns_while_a_job_waits_for_the_callers_capacity() {
    let pool = Arc::new(
        Pool::builder()
            .workers(2)
            .layer(Units::new(1))
            .build()
            .unwrap(),
    );
    let go = CancellationToken::new();
    let waiting = pool
        .submit(calls_own_pool(&pool, &go, |pool| {
            pool.wait_idle();
            pool.stats().delayed as u64
        }))
        .unwrap();
    eventually("the caller runs", || pool.stats().busy == 1);
    let parked = pool.submit(returns(2)).unwrap();
    eventually("the other job waits for the unit", || {
        pool.stats().delayed == 1
    });
    go.cancel();
    let left = waiting
        .join_timeout(PATIENCE)
        .expect("wait_idle returned though the parked job needs the caller's unit");
    assert_eq!(left, Ok(1), "the parked job was left for after the caller");
    assert_eq!(parked.join_timeout(PATIENCE).ok(), Some(Ok(2)));
    pool.wait_idle();
    assert!(pool.stats().is_balanced());
}

#[test]
fn wait_idle_in_a_job_still_waits_for_what_other_workers_run() {
    let pool = Arc::new(Pool::builder().workers(2).build().unwrap());
    let go = CancellationToken::new();
    let other = pool.submit(sleeper_until(&go, 7)).unwrap();
    let at_once = CancellationToken::new();
    at_once.cancel();
    let waiting = pool
        .submit(calls_own_pool(&pool, &at_once, |pool| {
            pool.wait_idle();
            pool.stats().completed
        }))
        .unwrap();
    // The caller waits on the pool until the other job, which another worker runs, ends.
    eventually("both run", || pool.stats().busy == 2);
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(
        !waiting.is_finished(),
        "the caller did not wait for the other job"
    );
    go.cancel();
    assert_eq!(other.join(), Ok(7));
    assert_eq!(
        waiting.join_timeout(PATIENCE).ok(),
        Some(Ok(1)),
        "the caller saw the other job end"
    );
}

#[test]
fn a_job_shutting_down_its_single_worker_pool_hands_back_the_queued_job() {
    let pool = Arc::new(Pool::builder().workers(1).build().unwrap());
    let go = CancellationToken::new();
    let shutting = pool
        .submit(calls_own_pool(&pool, &go, |pool| {
            pool.shutdown().unstarted.len() as u64
        }))
        .unwrap();
    let queued = pool.submit(returns(2)).unwrap();
    go.cancel();
    let handed_back = shutting
        .join_timeout(PATIENCE)
        .expect("the shutdown returned though the queued job needs the caller's worker");
    assert_eq!(handed_back, Ok(1));
    assert_eq!(queued.join().unwrap_err().kind(), ErrorKind::Returned);
    eventually("the caller's end is counted", || pool.stats().is_balanced());
}
