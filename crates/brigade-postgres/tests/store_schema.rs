//! Migrations: versioned, idempotent, safe to run from many processes at once, in a schema
//! of the user's choosing; bad settings are typed errors.

use brigade_postgres::{PgStore, fresh_database};
use brigade_queue::{NewJob, Store, StoreError};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_however_many_stores_start_at_once() {
    let url = fresh_database()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let mut starting = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let url = url.clone();
        starting.spawn(async move {
            PgStore::builder(url)
                .schema("jobs_a")
                .max_connections(2)
                .connect()
                .await
        });
    }
    while let Some(store) = starting.join_next().await {
        store
            .expect("task")
            .expect("concurrent migrations all succeed");
    }
    let store = PgStore::builder(url.clone())
        .schema("jobs_a")
        .connect()
        .await
        .expect("connect");
    assert!(
        store.migrate().await.expect("migrate").is_empty(),
        "nothing left to apply"
    );
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM jobs_a.migrations ORDER BY version")
            .fetch_all(store.pool())
            .await
            .expect("versions");
    assert_eq!(versions, vec![1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_are_independent_queues() {
    let url = fresh_database()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let a = PgStore::builder(url.clone())
        .schema("tenant_a")
        .connect()
        .await
        .expect("a");
    let b = PgStore::builder(url.clone())
        .schema("tenant_b")
        .connect()
        .await
        .expect("b");
    a.enqueue(NewJob::new("q", json!(1)))
        .await
        .expect("enqueue");
    assert_eq!(a.counts("q").await.expect("counts").available, 1);
    assert_eq!(b.counts("q").await.expect("counts").available, 0);
    assert_eq!(a.schema(), "tenant_a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_migrate_a_missing_schema_is_a_store_error() {
    let url = fresh_database()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let store = PgStore::builder(url)
        .schema("never_made")
        .migrate(false)
        .connect()
        .await
        .expect("connect");
    let error = store.counts("q").await.expect_err("no table");
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn bad_settings_are_typed_errors() {
    for schema in ["", "Upper", "drop table x;--", "1abc"] {
        let error = PgStore::builder("postgres://127.0.0.1:1/x")
            .schema(schema)
            .connect()
            .await
            .expect_err(schema);
        assert!(
            matches!(error, StoreError::Invalid(_)),
            "refused before connecting: {schema}: {error:?}"
        );
    }
    let error = PgStore::connect("not a url").await.expect_err("bad url");
    assert!(matches!(error, StoreError::Invalid(_)), "{error:?}");
    let error = PgStore::builder("postgres://127.0.0.1:1/x")
        .max_connections(0)
        .connect()
        .await
        .expect_err("zero");
    assert!(matches!(error, StoreError::Invalid(_)), "{error:?}");
    for timeout in [std::time::Duration::ZERO, std::time::Duration::MAX] {
        let error = PgStore::builder("postgres://127.0.0.1:1/x")
            .acquire_timeout(timeout)
            .connect()
            .await
            .expect_err("acquire timeout out of range");
        assert!(matches!(error, StoreError::Invalid(_)), "{error:?}");
    }
    // Nothing listens on port 1: unreachable, and said so as transient.
    let error = PgStore::builder("postgres://postgres@127.0.0.1:1/x")
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect()
        .await
        .expect_err("unreachable");
    assert!(error.is_transient(), "{error:?}");
}

/// `LISTEN` keeps a connection of the store's pool for the store's life: a store of one
/// connection still has one for its calls, and a pool too small to spare one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_does_not_starve_a_one_connection_store() {
    let url = fresh_database()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let store = PgStore::builder(url.clone())
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect()
        .await
        .expect("connect");
    // Long enough for the listener to take its connection.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for n in 0..3 {
        store
            .enqueue(NewJob::new("one-connection", json!(n)))
            .await
            .expect("a call gets a connection beside LISTEN");
    }
    assert_eq!(
        store
            .counts("one-connection")
            .await
            .expect("counts")
            .available,
        3
    );

    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("pool");
    let error = PgStore::with_pool(pool, "brigade", false)
        .await
        .expect_err("one connection cannot serve LISTEN and the calls");
    assert!(matches!(error, StoreError::Invalid(_)), "{error:?}");
}
