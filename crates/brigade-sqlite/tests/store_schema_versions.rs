//! A build refuses a file that a newer build migrated past what it knows: its statements
//! may not fit that schema, so it must not run on it silently.

mod common;

use brigade_queue::StoreError;
use brigade_sqlite::{SchemaTooNew, SqliteStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_migrated_by_a_newer_build_is_refused() {
    let dir = common::TempDir::new();
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let known: i64 = sqlx::query_scalar("SELECT max(version) FROM migrations")
        .fetch_one(store.pool())
        .await
        .expect("the version");
    sqlx::query(
        "INSERT INTO migrations (version, name, applied_at)
         VALUES (?1, 'from a newer build', 0)",
    )
    .bind(known + 1)
    .execute(store.pool())
    .await
    .expect("a newer build's migration");

    // A program that keeps running learns it at its next migration.
    refused(store.migrate().await.expect_err("a newer schema"), known);
    drop(store);
    refused(
        SqliteStore::open(&path).await.expect_err("a newer schema"),
        known,
    );
    // Migrations left to a deploy step: this build still must not run on the file.
    let unmigrated = SqliteStore::builder(&path).migrate(false).open().await;
    refused(unmigrated.expect_err("a newer schema"), known);
}

/// The typed error, naming both versions.
fn refused(error: StoreError, known: i64) {
    let text = error.to_string();
    assert!(
        text.contains(&format!("version {}", known + 1))
            && text.contains(&format!("version {known}")),
        "{text}"
    );
    assert!(!error.is_transient(), "trying again will not help: {error}");
    let StoreError::Backend(source) = &error else {
        panic!("expected a backend error, got {error:?}");
    };
    let too_new = source
        .downcast_ref::<SchemaTooNew>()
        .unwrap_or_else(|| panic!("expected SchemaTooNew, got {source:?}"));
    assert_eq!(
        (too_new.file_version(), too_new.newest_known()),
        (known + 1, known)
    );
}
