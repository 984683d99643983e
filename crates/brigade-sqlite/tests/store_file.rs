//! What the file is opened with: WAL mode, `synchronous=FULL` unless told otherwise, a
//! busy timeout, a bound on what the write-ahead log keeps on disk; and a second open of a
//! migrated file applies nothing.

mod common;

use std::time::Duration;

use brigade_queue::StoreError;
use brigade_sqlite::{SqliteStore, Synchronous};

async fn pragma(store: &SqliteStore, name: &str) -> String {
    let mut conn = store.pool().acquire().await.expect("connection");
    let value: sqlx::sqlite::SqliteRow = sqlx::query(&format!("PRAGMA {name}"))
        .fetch_one(&mut *conn)
        .await
        .expect("pragma");
    use sqlx::{Row, ValueRef};
    let raw = value.try_get_raw(0).expect("value");
    if raw.is_null() {
        return String::new();
    }
    value
        .try_get::<String, _>(0)
        .or_else(|_| value.try_get::<i64, _>(0).map(|n| n.to_string()))
        .expect("text or integer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_is_wal_with_full_sync_and_a_busy_timeout() {
    let dir = common::TempDir::new();
    let store = common::store_in(&dir).await;
    assert_eq!(pragma(&store, "journal_mode").await, "wal");
    assert_eq!(pragma(&store, "synchronous").await, "2", "FULL");
    assert_eq!(pragma(&store, "busy_timeout").await, "5000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_sync_and_the_busy_timeout_are_configurable() {
    let dir = common::TempDir::new();
    let store = SqliteStore::builder(dir.path().join("jobs.db"))
        .synchronous(Synchronous::Normal)
        .busy_timeout(Duration::from_millis(250))
        .open()
        .await
        .expect("open");
    assert_eq!(pragma(&store, "synchronous").await, "1", "NORMAL");
    assert_eq!(pragma(&store, "busy_timeout").await, "250");
    assert_eq!(pragma(&store, "journal_mode").await, "wal");
}

/// After a long reader held the log's checkpoints back, the log is cut back to 64 MiB at
/// the first commit once a checkpoint has caught up, rather than keeping its largest size
/// on disk for good. Every connection of the store carries the setting: whichever commits
/// first after the checkpoint cuts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_bounds_what_the_log_keeps_on_disk() {
    let dir = common::TempDir::new();
    let store = SqliteStore::builder(dir.path().join("jobs.db"))
        .max_connections(3)
        .open()
        .await
        .expect("open");
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = store.pool().acquire().await.expect("connection");
        let limit: i64 = sqlx::query_scalar("PRAGMA journal_size_limit")
            .fetch_one(&mut *conn)
            .await
            .expect("pragma");
        assert_eq!(limit, 64 * 1024 * 1024);
        held.push(conn);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_per_file() {
    let dir = common::TempDir::new();
    let path = dir.path().join("jobs.db");
    let first = SqliteStore::builder(&path)
        .migrate(false)
        .open()
        .await
        .expect("open");
    assert_eq!(first.migrate().await.expect("migrate"), vec![1, 2, 3]);
    assert!(first.migrate().await.expect("again").is_empty());
    let second = SqliteStore::open(&path).await.expect("open again");
    assert!(second.migrate().await.expect("migrate").is_empty());
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM migrations ORDER BY version")
        .fetch_all(second.pool())
        .await
        .expect("versions");
    assert_eq!(versions, vec![1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_connections_is_refused() {
    let dir = common::TempDir::new();
    let error = SqliteStore::builder(dir.path().join("jobs.db"))
        .max_connections(0)
        .open()
        .await
        .expect_err("no connections");
    assert!(!error.is_transient(), "{error}");
}

/// Settings that cannot work are refused before anything is opened: a path that names no
/// file (each pooled connection would open a database of its own, and only the one that
/// migrated would have the tables), a timeout of zero or past what the driver's clock
/// arithmetic holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_cannot_work_are_refused() {
    for path in ["", ":memory:", "file:jobs?mode=memory&cache=shared"] {
        let error = SqliteStore::builder(path)
            .open()
            .await
            .expect_err("no file");
        assert!(matches!(error, StoreError::Invalid(_)), "{path}: {error:?}");
    }
    let dir = common::TempDir::new();
    for timeout in [Duration::ZERO, Duration::MAX] {
        let busy = SqliteStore::builder(dir.path().join("jobs.db"))
            .busy_timeout(timeout)
            .open()
            .await
            .expect_err("busy timeout out of range");
        let acquire = SqliteStore::builder(dir.path().join("jobs.db"))
            .acquire_timeout(timeout)
            .open()
            .await
            .expect_err("acquire timeout out of range");
        for error in [busy, acquire] {
            assert!(matches!(error, StoreError::Invalid(_)), "{error:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edited_payload_does_not_block_its_queue() {
    use brigade_core::CancellationToken;
    use brigade_queue::{Delivery, JobState, Queue, Store, Worker};

    let dir = common::TempDir::new();
    let store = common::store_in(&dir).await;
    let ids = Queue::<SqliteStore, u64>::new(store.clone(), "edited")
        .enqueue_batch(vec![1, 2])
        .await
        .expect("enqueue");
    sqlx::query("UPDATE jobs SET payload = 'not json' WHERE id = ?1")
        .bind(ids[0].id.get())
        .execute(store.pool())
        .await
        .expect("edit by hand");
    let worker = Worker::builder(store.clone(), "edited")
        .poll(Duration::from_millis(20))
        .handle(|_: u64, _: Delivery| async { Ok::<(), String>(()) })
        .expect("worker");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let counts = store.counts("edited").await.expect("counts");
        if counts.live() == 0 {
            assert_eq!((counts.completed, counts.dead), (1, 1), "{counts:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "stuck at {counts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await.expect("worker");
    let dead = store.job(ids[0].id).await.expect("job").expect("exists");
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.payload, serde_json::json!("not json"));
}
