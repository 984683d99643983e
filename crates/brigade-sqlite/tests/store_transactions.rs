//! Enqueueing inside the caller's own SQLite transaction: the job exists exactly when it
//! commits, and this process's idle workers are woken at the commit.

mod common;

use std::time::Duration;

use brigade_queue::{EnqueueOptions, NewJob, Queue, Store};
use brigade_sqlite::SqliteStore;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_transaction_keeps_its_jobs() {
    let dir = common::TempDir::new();
    let store = common::store_in(&dir).await;
    sqlx::query(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, welcomed INTEGER NOT NULL DEFAULT 0)",
    )
    .execute(store.pool())
    .await
    .expect("table");
    let mut tx = store.begin().await.expect("begin");
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
    // Invisible to every other connection until the commit (WAL readers see the last
    // committed state, and do not wait for the writer).
    assert!(store.job(one.id).await.expect("job").is_none());
    assert_eq!(store.counts("welcome").await.expect("counts").total(), 0);
    tx.commit().await.expect("commit");
    assert!(store.job(one.id).await.expect("job").is_some());
    assert_eq!(store.counts("welcome").await.expect("counts").available, 2);
    assert_eq!(store.counts("audit").await.expect("counts").available, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_transaction_leaves_no_job() {
    let dir = common::TempDir::new();
    let store = common::store_in(&dir).await;
    let mut tx = store.begin().await.expect("begin");
    let enqueued = store
        .enqueue_in(&mut tx, NewJob::new("welcome", json!(1)))
        .await
        .expect("enqueue");
    tx.rollback().await.expect("rollback");
    assert!(store.job(enqueued.id).await.expect("job").is_none());
    assert_eq!(store.counts("welcome").await.expect("counts").total(), 0);
    // Dropping an unfinished transaction rolls it back too.
    {
        let mut tx = store.begin().await.expect("begin");
        store
            .enqueue_in(&mut tx, NewJob::new("welcome", json!(2)))
            .await
            .expect("enqueue");
    }
    // The store still writes: the dropped transaction released the write lock.
    store
        .enqueue(NewJob::new("other", json!(3)))
        .await
        .expect("enqueue after a dropped transaction");
    assert_eq!(store.counts("welcome").await.expect("counts").total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_deferred_transaction_and_a_bare_connection_work_too() {
    let dir = common::TempDir::new();
    let store = common::store_in(&dir).await;
    let mut tx = store.pool().begin().await.expect("begin");
    let enqueued = store
        .enqueue_in(&mut tx, NewJob::new("plain", json!(1)))
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    assert!(store.job(enqueued.id).await.expect("job").is_some());
    // And on a connection outside any transaction: the enqueue commits on its own.
    let mut conn = store.pool().acquire().await.expect("connection");
    let alone = store
        .enqueue_in(&mut conn, NewJob::new("plain", json!(2)))
        .await
        .expect("enqueue");
    drop(conn);
    assert!(store.job(alone.id).await.expect("job").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_enqueue_inside_a_transaction_sees_the_cap() {
    let dir = common::TempDir::new();
    let store = common::store_in(&dir).await;
    let queue = Queue::<SqliteStore, u32>::new(store.clone(), "capped").max_depth(2);
    let mut tx = store.begin().await.expect("begin");
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

    let dir = common::TempDir::new();
    let store = common::store_in(&dir).await;
    let (ran, mut ran_rx) = tokio::sync::mpsc::unbounded_channel();
    // Polling once an hour: only the wake-up at the commit can start this job in time.
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
    let mut tx = store.begin().await.expect("begin");
    store
        .enqueue_in(&mut tx, NewJob::new("woken", json!(5)))
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    let n = tokio::time::timeout(Duration::from_secs(60), ran_rx.recv())
        .await
        .expect("woken at the commit");
    assert_eq!(n, Some(5));
    shutdown.cancel();
    let report = running.await.expect("worker");
    assert_eq!(report.completed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_file_keeps_its_jobs_and_schema() {
    let dir = common::TempDir::new();
    let id = {
        let store = common::store_in(&dir).await;
        let enqueued = store
            .enqueue(NewJob::new("kept", json!("survives")))
            .await
            .expect("enqueue");
        store.pool().close().await;
        enqueued.id
    };
    let store = common::store_in(&dir).await;
    assert!(
        store.migrate().await.expect("migrate").is_empty(),
        "nothing left to apply"
    );
    let record = store.job(id).await.expect("job").expect("still there");
    assert_eq!(record.payload, json!("survives"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_ups_wait_for_the_commit_and_die_with_a_rollback() {
    let dir = common::TempDir::new();
    let store = common::store_in(&dir).await;
    let notify = store.wakeup("hinted");

    let committed = notify.notified();
    tokio::pin!(committed);
    committed.as_mut().enable();
    let mut tx = store.begin().await.expect("begin");
    store
        .enqueue_in(&mut tx, NewJob::new("hinted", json!(1)))
        .await
        .expect("enqueue");
    assert!(
        tokio::time::timeout(Duration::from_millis(100), committed.as_mut())
            .await
            .is_err(),
        "no wake-up before the commit: the job is not there yet"
    );
    tx.commit().await.expect("commit");
    tokio::time::timeout(Duration::from_secs(10), committed.as_mut())
        .await
        .expect("woken at the commit");

    let rolled_back = notify.notified();
    tokio::pin!(rolled_back);
    rolled_back.as_mut().enable();
    let mut tx = store.begin().await.expect("begin");
    store
        .enqueue_in(&mut tx, NewJob::new("hinted", json!(2)))
        .await
        .expect("enqueue");
    tx.rollback().await.expect("rollback");
    assert!(
        tokio::time::timeout(Duration::from_millis(100), rolled_back.as_mut())
            .await
            .is_err(),
        "a rolled back enqueue wakes nobody"
    );
    // The next commit on that connection does not carry the rolled back wake-up either.
    store
        .enqueue(NewJob::new("elsewhere", json!(3)))
        .await
        .expect("enqueue");
    assert!(
        tokio::time::timeout(Duration::from_millis(100), rolled_back.as_mut())
            .await
            .is_err()
    );
}
