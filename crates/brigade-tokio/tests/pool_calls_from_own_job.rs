//! A job that awaits its own pool's `wait_idle` while other jobs wait for it (for its
//! worker, the pool's only one, or for the capacity it holds): the wait covers every
//! other job that can end before the caller, and no more, so it returns.

use std::sync::Arc;
use std::time::Duration;

use brigade_core::testkit::Units;
use brigade_core::{BoxAsyncJob, CancellationToken, JobContext, Stats};
use brigade_tokio::TokioPool;

type Job = BoxAsyncJob<u64, String>;
type Pool = TokioPool<Job>;

/// Generous: bounds waits for what takes microseconds when all is well.
const PATIENCE: Duration = Duration::from_secs(20);

fn returns(value: u64) -> Job {
    BoxAsyncJob::new(move |_cx: JobContext| async move { Ok(value) })
}

/// A job that, once `go` opens, waits for its own pool to go idle and returns `then`'s
/// reading of the pool's stats.
fn waits_for_own_pool(pool: &Arc<Pool>, go: &CancellationToken, then: fn(&Stats) -> u64) -> Job {
    let (pool, go) = (Arc::clone(pool), go.clone());
    BoxAsyncJob::new(move |_cx: JobContext| {
        let (pool, go) = (Arc::clone(&pool), go.clone());
        async move {
            go.cancelled().await;
            pool.wait_idle().await;
            Ok(then(&pool.stats()))
        }
    })
}

async fn until(pool: &Pool, what: &str, condition: impl Fn(&Stats) -> bool) {
    for _ in 0..20_000 {
        if condition(&pool.stats()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting for: {what} ({:?})", pool.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_idle_awaited_by_a_lone_job_returns() {
    let pool = Arc::new(Pool::builder().workers(2).build().unwrap());
    let go = CancellationToken::new();
    go.cancel();
    let waiting = pool
        .submit(waits_for_own_pool(&pool, &go, |stats| stats.completed))
        .await
        .unwrap();
    let completed = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("wait_idle in the pool's only job returned");
    assert_eq!(completed, Ok(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_idle_in_the_only_worker_returns_with_the_queued_job_left() {
    let pool = Arc::new(Pool::builder().workers(1).build().unwrap());
    let go = CancellationToken::new();
    let waiting = pool
        .submit(waits_for_own_pool(&pool, &go, |stats| stats.queued as u64))
        .await
        .unwrap();
    let queued = pool.submit(returns(2)).await.unwrap();
    go.cancel();
    let left = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("wait_idle returned though the queued job needs the caller's worker");
    assert_eq!(left, Ok(1), "the queued job was left for after the caller");
    assert_eq!(queued.await, Ok(2));
    pool.wait_idle().await;
    assert!(pool.stats().is_balanced());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_idle_returns_while_a_job_waits_for_the_callers_capacity() {
    let pool = Arc::new(
        Pool::builder()
            .workers(2)
            .layer(Units::new(1))
            .build()
            .unwrap(),
    );
    let go = CancellationToken::new();
    let waiting = pool
        .submit(waits_for_own_pool(&pool, &go, |stats| stats.delayed as u64))
        .await
        .unwrap();
    until(&pool, "the caller runs", |stats| stats.busy == 1).await;
    let parked = pool.submit(returns(2)).await.unwrap();
    until(&pool, "the other job waits for the unit", |stats| {
        stats.delayed == 1
    })
    .await;
    go.cancel();
    let left = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("wait_idle returned though the parked job needs the caller's unit");
    assert_eq!(left, Ok(1), "the parked job was left for after the caller");
    assert_eq!(tokio::time::timeout(PATIENCE, parked).await, Ok(Ok(2)));
    pool.wait_idle().await;
    assert!(pool.stats().is_balanced());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_idle_in_a_job_still_waits_for_what_other_workers_run() {
    let pool = Arc::new(Pool::builder().workers(2).build().unwrap());
    let go = CancellationToken::new();
    let other = {
        let go = go.clone();
        pool.submit(BoxAsyncJob::new(move |_cx: JobContext| {
            let go = go.clone();
            async move {
                go.cancelled().await;
                Ok(7)
            }
        }))
        .await
        .unwrap()
    };
    let at_once = CancellationToken::new();
    at_once.cancel();
    let mut waiting = pool
        .submit(waits_for_own_pool(&pool, &at_once, |stats| stats.completed))
        .await
        .unwrap();
    until(&pool, "both run", |stats| stats.busy == 2).await;
    let early = tokio::time::timeout(Duration::from_millis(50), &mut waiting).await;
    assert!(early.is_err(), "the caller did not wait for the other job");
    go.cancel();
    assert_eq!(other.await, Ok(7));
    assert_eq!(
        tokio::time::timeout(PATIENCE, waiting).await,
        Ok(Ok(1)),
        "the caller saw the other job end"
    );
}
