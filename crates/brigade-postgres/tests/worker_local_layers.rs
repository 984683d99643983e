//! A worker on a pool you built, with local middleware; retention as a periodic task.

mod common;

use std::time::{Duration, Instant};

use brigade_core::{BoxAsyncJob, CancellationToken};
use brigade_middleware::{Backoff, Retry, Timeout};
use brigade_queue::{Delivery, EnqueueOptions, JobState, NewJob, Store, Worker};
use brigade_tokio::BoxPool;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_timeout_layer_times_runs_out_and_the_store_retries_them() {
    let store = common::fresh_store().await;
    let id = store
        .enqueue(
            NewJob::new("slow", json!(null)).with_options(EnqueueOptions::new().max_attempts(2)),
        )
        .await
        .expect("enqueue")
        .id;
    let pool: BoxPool<(), String> = BoxPool::builder()
        .workers(2)
        .layer(
            Timeout::<BoxAsyncJob<(), String>>::after(Duration::from_millis(50)).expect("timeout"),
        )
        .build()
        .expect("pool");
    let retry = Retry::builder()
        .max_attempts(u32::MAX)
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .build()
        .expect("retry");
    let worker = Worker::builder(store.clone(), "slow")
        .concurrency(2)
        .poll(Duration::from_millis(20))
        .retry(retry)
        .handle_on(
            pool,
            |_: serde_json::Value, delivery: Delivery| async move {
                // Far longer than the local timeout, unless the run is cancelled.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(3600)) => Ok(()),
                    () = delivery.token().cancelled() => Err("gave up".to_string()),
                }
            },
        )
        .expect("worker");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.job(id).await.expect("job").expect("exists").state != JobState::Dead {
        assert!(Instant::now() < deadline, "the timed-out job never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    let report = running.await.expect("worker");
    assert_eq!((report.retried, report.dead), (1, 1), "{report:?}");
    let record = store.job(id).await.expect("job").expect("exists");
    assert_eq!(record.attempt, 2);
    assert!(
        record
            .last_error
            .is_some_and(|error| error.contains("timed out")),
        "the store says why"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_finished_jobs_periodically() {
    let store = common::fresh_store().await;
    let id = store
        .enqueue(NewJob::new("old", json!(1)))
        .await
        .expect("enqueue")
        .id;
    let claim = store
        .claim(brigade_queue::ClaimRequest::new(
            "old",
            "test",
            1,
            Duration::from_secs(60),
        ))
        .await
        .expect("claim")
        .pop()
        .expect("one job");
    assert!(
        store
            .complete(claim.lease())
            .await
            .expect("complete")
            .is_recorded()
    );
    let live = store
        .enqueue(NewJob::new("old", json!(2)))
        .await
        .expect("enqueue")
        .id;
    let retention = store.spawn_retention(Duration::from_millis(50), Duration::from_millis(100));
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.job(id).await.expect("job").is_some() {
        assert!(Instant::now() < deadline, "retention never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    retention.abort();
    assert!(
        store.job(live).await.expect("job").is_some(),
        "live jobs are kept"
    );
}
