//! What the file is opened with: WAL mode, `synchronous=FULL` unless told otherwise, a
//! busy timeout; and a second open of a migrated file applies nothing.

mod common;

use std::time::Duration;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_per_file() {
    let dir = common::TempDir::new();
    let path = dir.path().join("jobs.db");
    let first = SqliteStore::builder(&path)
        .migrate(false)
        .open()
        .await
        .expect("open");
    assert_eq!(first.migrate().await.expect("migrate"), vec![1, 2]);
    assert!(first.migrate().await.expect("again").is_empty());
    let second = SqliteStore::open(&path).await.expect("open again");
    assert!(second.migrate().await.expect("migrate").is_empty());
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM migrations ORDER BY version")
        .fetch_all(second.pool())
        .await
        .expect("versions");
    assert_eq!(versions, vec![1, 2]);
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
