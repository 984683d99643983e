//! Enqueueing inside the caller's own transaction: the job exists exactly when it commits.

mod common;

use std::time::Duration;

use brigade_postgres::PgStore;
use brigade_queue::{EnqueueOptions, NewJob, Queue, Store};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_transaction_keeps_its_jobs() {
    let store = common::fresh_store().await;
    sqlx::query("CREATE TABLE accounts (id int PRIMARY KEY, welcomed bool NOT NULL DEFAULT false)")
        .execute(store.pool())
        .await
        .expect("table");
    let mut tx = store.pool().begin().await.expect("begin");
    sqlx::query("INSERT INTO accounts (id) VALUES (7)")
        .execute(&mut *tx)
        .await
        .expect("insert");
    let one = store
        .enqueue_in(&mut tx, NewJob::new("welcome", json!({"account": 7})))
        .await
        .expect("enqueue");
    let batch = vec![
        NewJob::new("welcome", json!(1)),
        NewJob::new("audit", json!(2)),
    ];
    let more = store
        .enqueue_batch_in(&mut tx, batch)
        .await
        .expect("enqueue batch");
    assert_eq!(more.len(), 2);
    // Invisible to everyone else until the commit.
    assert!(store.job(one.id).await.expect("job").is_none());
    assert_eq!(store.counts("welcome").await.expect("counts").total(), 0);
    tx.commit().await.expect("commit");
    assert!(store.job(one.id).await.expect("job").is_some());
    assert_eq!(store.counts("welcome").await.expect("counts").available, 2);
    assert_eq!(store.counts("audit").await.expect("counts").available, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_transaction_leaves_no_job() {
    let store = common::fresh_store().await;
    let mut tx = store.pool().begin().await.expect("begin");
    let enqueued = store
        .enqueue_in(&mut tx, NewJob::new("welcome", json!(1)))
        .await
        .expect("enqueue");
    tx.rollback().await.expect("rollback");
    assert!(store.job(enqueued.id).await.expect("job").is_none());
    assert_eq!(store.counts("welcome").await.expect("counts").total(), 0);
    // Dropping an unfinished transaction rolls it back too.
    {
        let mut tx = store.pool().begin().await.expect("begin");
        store
            .enqueue_in(&mut tx, NewJob::new("welcome", json!(2)))
            .await
            .expect("enqueue");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.counts("welcome").await.expect("counts").total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_enqueue_inside_a_transaction_sees_the_cap() {
    let store = common::fresh_store().await;
    let queue = Queue::<PgStore, u32>::new(store.clone(), "capped").max_depth(2);
    let mut tx = store.pool().begin().await.expect("begin");
    for n in 0..2 {
        let job = queue.encode(&n, EnqueueOptions::new()).expect("encode");
        store.enqueue_in(&mut tx, job).await.expect("room");
    }
    let third = queue.encode(&2, EnqueueOptions::new()).expect("encode");
    let refused = store
        .enqueue_in(&mut tx, third.clone())
        .await
        .expect_err("full");
    assert!(refused.is_full());
    assert_eq!(refused.into_inner(), third, "the job comes back");
    tx.commit()
        .await
        .expect("a refused capped enqueue leaves the transaction usable");
    assert_eq!(store.counts("capped").await.expect("counts").available, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commit_wakes_an_idle_worker() {
    use brigade_core::CancellationToken;
    use brigade_queue::{Delivery, Worker};

    let store = common::fresh_store().await;
    let (ran, mut ran_rx) = tokio::sync::mpsc::unbounded_channel();
    // Polling once an hour: only the notification can wake this worker in time.
    let worker = Worker::builder(store.clone(), "woken")
        .poll(Duration::from_secs(3600))
        .handle(move |n: u32, _: Delivery| {
            let ran = ran.clone();
            async move {
                let _ = ran.send(n);
                Ok::<(), String>(())
            }
        })
        .expect("worker");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await; // the worker has found nothing and waits
    let mut tx = store.pool().begin().await.expect("begin");
    store
        .enqueue_in(&mut tx, NewJob::new("woken", json!(5)))
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    let n = tokio::time::timeout(Duration::from_secs(60), ran_rx.recv())
        .await
        .expect("woken by NOTIFY");
    assert_eq!(n, Some(5));
    shutdown.cancel();
    let report = running.await.expect("worker");
    assert_eq!(report.completed, 1);
}
