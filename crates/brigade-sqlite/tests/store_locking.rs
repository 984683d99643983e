//! A file held by another writer past the busy timeout: calls fail as unavailable (so
//! workers retry them), change nothing, and succeed once the lock is free.

mod common;

use std::time::Duration;

use brigade_queue::{ClaimRequest, NewJob, Store};
use brigade_sqlite::SqliteStore;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_file_is_unavailable_then_usable() {
    let dir = common::TempDir::new();
    let path = dir.path().join("jobs.db");
    // Two stores on one file stand for two processes: they share no in-process lock.
    let holder = SqliteStore::open(&path).await.expect("open");
    let other = SqliteStore::builder(&path)
        .busy_timeout(Duration::from_millis(100))
        .open()
        .await
        .expect("open");
    other
        .enqueue(NewJob::new("locked", json!(1)))
        .await
        .expect("enqueue");

    let tx = holder.begin().await.expect("begin");
    let claimed = other
        .claim(ClaimRequest::new("locked", "w", 1, Duration::from_secs(30)))
        .await
        .expect_err("the write lock is held");
    assert!(claimed.is_transient(), "{claimed}");
    let refused = other
        .enqueue(NewJob::new("locked", json!(2)))
        .await
        .expect_err("the write lock is held");
    let error = match refused {
        brigade_queue::EnqueueError::Store(job, error) => {
            assert_eq!(job.payload(), &json!(2), "the job comes back");
            error
        }
        other => panic!("unexpected {other:?}"),
    };
    assert!(error.is_transient(), "{error}");
    // Readers never wait for the writer.
    assert_eq!(other.counts("locked").await.expect("counts").available, 1);
    tx.rollback().await.expect("rollback");

    let claims = other
        .claim(ClaimRequest::new("locked", "w", 1, Duration::from_secs(30)))
        .await
        .expect("the lock is free");
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].attempt, 1, "the failed claim charged nothing");
}
