//! A job waiting off the workers (a retry's backoff, a start deferred to a time, a start
//! waiting for capacity) whose handle is cancelled ends cancelled at once, counted once,
//! not when its wait would have ended; nor does a shutdown wait it out.

use std::time::Duration;

use brigade_core::hooks::Middleware;
use brigade_core::testkit::{RetryAfter, StartAfter, Units};
use brigade_core::{BoxAsyncJob, CancellationToken, ErrorKind, JobContext, Stats};
use brigade_tokio::TokioPool;

type Job = BoxAsyncJob<u64, String>;

/// Generous: bounds waits for what takes microseconds when all is well.
const PATIENCE: Duration = Duration::from_secs(20);

const AN_HOUR: Duration = Duration::from_secs(3600);

fn pool(layer: impl Middleware<Job, String>) -> TokioPool<Job> {
    TokioPool::<Job>::builder()
        .workers(2)
        .layer(layer)
        .build()
        .unwrap()
}

fn fails() -> Job {
    BoxAsyncJob::new(|_cx: JobContext| async { Err("no".to_string()) })
}

fn returns(value: u64) -> Job {
    BoxAsyncJob::new(move |_cx: JobContext| async move { Ok(value) })
}

/// Waits until `condition` holds of the pool's stats, failing after a generous bound.
async fn until(pool: &TokioPool<Job>, what: &str, condition: impl Fn(&Stats) -> bool) {
    for _ in 0..20_000 {
        if condition(&pool.stats()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting for: {what} ({:?})", pool.stats());
}

/// Shuts the pool down gracefully, failing if it waits out an hour.
async fn shuts_down(pool: &TokioPool<Job>) {
    let report = tokio::time::timeout(PATIENCE, pool.shutdown())
        .await
        .expect("the graceful shutdown waited for nothing cancelled");
    assert!(report.is_clean(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_job_waiting_out_its_retry_backoff_ends_it_at_once() {
    let pool = pool(RetryAfter(AN_HOUR));
    let handle = pool.submit(fails()).await.unwrap();
    until(&pool, "the job waits for its retry", |stats| {
        stats.delayed == 1
    })
    .await;
    handle.cancel();
    let error = tokio::time::timeout(PATIENCE, handle)
        .await
        .expect("the cancel ended the wait")
        .unwrap_err();
    assert_eq!((error.kind(), error.attempts()), (ErrorKind::Cancelled, 1));
    let stats = pool.stats();
    assert_eq!(
        (stats.cancelled, stats.retried, stats.delayed),
        (1, 1, 0),
        "{stats:?}"
    );
    assert!(stats.is_balanced(), "{stats:?}");
    shuts_down(&pool).await;
    assert_eq!(pool.stats().cancelled, 1, "counted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_job_whose_start_is_deferred_ends_it_at_once() {
    let pool = pool(StartAfter(AN_HOUR));
    let handle = pool.submit(returns(1)).await.unwrap();
    let other = pool.submit(returns(2)).await.unwrap();
    until(&pool, "both jobs wait for their start", |stats| {
        stats.delayed == 2
    })
    .await;
    handle.cancel();
    let error = tokio::time::timeout(PATIENCE, handle)
        .await
        .expect("the cancel ended the wait")
        .unwrap_err();
    assert_eq!((error.kind(), error.attempts()), (ErrorKind::Cancelled, 0));
    let stats = pool.stats();
    assert_eq!(
        (stats.cancelled, stats.delayed),
        (1, 1),
        "the other job still waits"
    );
    other.cancel();
    assert!(other.await.unwrap_err().is_cancelled());
    shuts_down(&pool).await;
    let stats = pool.stats();
    assert_eq!(stats.cancelled, 2, "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_job_parked_for_capacity_ends_it_at_once() {
    let pool = pool(Units::new(1));
    let (gate, started) = (CancellationToken::new(), CancellationToken::new());
    let holder = {
        let (gate, started) = (gate.clone(), started.clone());
        pool.submit(BoxAsyncJob::new(move |cx: JobContext| {
            let (gate, started) = (gate.clone(), started.clone());
            async move {
                started.cancel();
                // Longer than the test's patience: only the cancel can end the wait.
                tokio::select! {
                    () = gate.cancelled() => Ok(1),
                    () = cx.token().cancelled() => Err("stopped".to_string()),
                }
            }
        }))
        .await
        .unwrap()
    };
    // Its body, not only a worker taking it: a worker counts busy before the layers grant
    // the start, and a job submitted in between would take the unit first.
    tokio::time::timeout(PATIENCE, started.cancelled())
        .await
        .expect("the holder runs");
    let parked = pool.submit(returns(2)).await.unwrap();
    let behind = pool.submit(returns(3)).await.unwrap();
    until(&pool, "both wait for the unit", |stats| stats.delayed == 2).await;
    parked.cancel();
    let error = tokio::time::timeout(PATIENCE, parked)
        .await
        .expect("the cancel ended the wait while the holder runs")
        .unwrap_err();
    assert_eq!((error.kind(), error.attempts()), (ErrorKind::Cancelled, 0));
    assert_eq!(pool.stats().delayed, 1, "the job behind it still waits");
    gate.cancel();
    assert_eq!(holder.await, Ok(1));
    assert_eq!(
        behind.await,
        Ok(3),
        "the job behind the cancelled one starts"
    );
    shuts_down(&pool).await;
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.cancelled), (2, 1), "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
}
