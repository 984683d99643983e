//! "From now" is from the statement that enqueues, not from the start of the transaction
//! it runs in: a job enqueued late in a long transaction, or after a wait for its queue's
//! depth lock, is neither due early nor recorded as enqueued before it was.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use brigade_queue::{ClaimRequest, EnqueueOptions, NewJob, Store};
use serde_json::json;
use sqlx::{Connection, PgConnection};

const DELAY: Duration = Duration::from_millis(1_500);

fn delayed(queue: &str) -> NewJob {
    NewJob::new(queue, json!("later")).with_options(EnqueueOptions::new().delay(DELAY))
}

/// The database clock, as microseconds since the epoch.
const SERVER_NOW_US: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_in_a_long_transaction_counts_from_the_enqueue() {
    let store = common::fresh_store().await;
    let mut tx = store.pool().begin().await.expect("begin");
    sqlx::query("SELECT pg_sleep(1.5)")
        .execute(&mut *tx)
        .await
        .expect("the caller's long work");
    let before: i64 = sqlx::query_scalar(SERVER_NOW_US)
        .fetch_one(&mut *tx)
        .await
        .expect("clock");
    let id = store
        .enqueue_in(&mut tx, delayed("later"))
        .await
        .expect("enqueue")
        .id;
    tx.commit().await.expect("commit");

    let due = store
        .claim(ClaimRequest::new(
            "later",
            "worker",
            1,
            Duration::from_secs(30),
        ))
        .await
        .expect("claim");
    assert!(
        due.is_empty(),
        "due {DELAY:?} after the enqueue, not before"
    );
    let record = store.job(id).await.expect("job").expect("committed");
    let enqueued_us = record
        .enqueued_at
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_micros();
    assert!(
        enqueued_us >= u128::try_from(before).expect("positive"),
        "enqueued_at is the enqueue's time, not the transaction's start"
    );
    assert_eq!(
        record.run_at.duration_since(record.enqueued_at).ok(),
        Some(DELAY)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_after_a_wait_for_the_depth_lock_counts_from_the_enqueue() {
    let url = brigade_postgres::fresh_database()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let store = brigade_postgres::PgStore::connect(&url)
        .await
        .expect("connect");
    let mut holder = PgConnection::connect(&url).await.expect("connect");
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await
        .expect("pid");
    for statement in [
        "BEGIN",
        "SELECT pg_advisory_xact_lock(hashtext('brigade.depth'), hashtext('waited'))",
    ] {
        sqlx::query(statement)
            .execute(&mut holder)
            .await
            .expect("take the depth lock");
    }
    let enqueue = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .enqueue(delayed("waited").with_max_depth(Some(10)))
                .await
        }
    });
    common::wait_until_blocked(store.pool(), holder_pid, 1).await;
    tokio::time::sleep(DELAY).await;
    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("release");
    enqueue.await.expect("task").expect("enqueue");

    let due = store
        .claim(ClaimRequest::new(
            "waited",
            "worker",
            1,
            Duration::from_secs(30),
        ))
        .await
        .expect("claim");
    assert!(
        due.is_empty(),
        "due {DELAY:?} after the enqueue, not before"
    );
}
