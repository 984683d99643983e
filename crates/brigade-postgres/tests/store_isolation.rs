//! A database whose sessions default to REPEATABLE READ: the store's own transactions
//! still see what committed while they waited for a lock, and a depth cap the caller's
//! transaction cannot keep is refused rather than overfilled.

mod common;

use brigade_postgres::{PgStore, fresh_database};
use brigade_queue::{EnqueueError, NewJob, Store, StoreError};
use serde_json::json;
use sqlx::{Connection, PgConnection};

/// A fresh database on which every new session starts its transactions in REPEATABLE
/// READ, as `ALTER DATABASE ... SET default_transaction_isolation` makes it.
async fn repeatable_read_database() -> String {
    let url = fresh_database()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let mut admin = session(&url).await;
    sqlx::query(
        "DO $$ BEGIN
             EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = %L',
                            current_database(), 'repeatable read');
         END $$",
    )
    .execute(&mut admin)
    .await
    .expect("alter database");
    let mut check = session(&url).await;
    let default: String = sqlx::query_scalar("SHOW default_transaction_isolation")
        .fetch_one(&mut check)
        .await
        .expect("show");
    assert_eq!(default, "repeatable read");
    url
}

/// A session of its own, outside every store's pool.
async fn session(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connect")
}

async fn backend_pid(conn: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await
        .expect("pid")
}

/// Takes `lock` (an advisory-lock statement) in a transaction left open on `holder`.
async fn hold(holder: &mut PgConnection, lock: &str) {
    for statement in ["BEGIN", lock] {
        sqlx::query(statement)
            .execute(&mut *holder)
            .await
            .expect("take the lock");
    }
}

fn capped(n: u32) -> NewJob {
    NewJob::new("capped", json!(n)).with_max_depth(Some(3))
}

/// Two producers wait for the depth lock with the queue one short of its cap: the one
/// served second counts the first one's job, whatever the database's default isolation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capped_enqueues_keep_the_cap_on_a_repeatable_read_database() {
    let url = repeatable_read_database().await;
    let store = PgStore::connect(&url).await.expect("connect");
    for n in 0..2 {
        store.enqueue(capped(n)).await.expect("room");
    }

    let mut holder = session(&url).await;
    let holder_pid = backend_pid(&mut holder).await;
    hold(
        &mut holder,
        "SELECT pg_advisory_xact_lock(hashtext('brigade.depth'), hashtext('capped'))",
    )
    .await;
    let producers: Vec<_> = (10..12)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.enqueue(capped(n)).await })
        })
        .collect();
    common::wait_until_blocked(store.pool(), holder_pid, 2).await;
    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("release");

    let mut full = 0;
    for producer in producers {
        match producer.await.expect("task") {
            Ok(_) => {}
            Err(refused) if refused.is_full() => full += 1,
            Err(other) => panic!("refused for another reason: {other:?}"),
        }
    }
    assert_eq!(full, 1, "one of the two finds the queue full");
    assert_eq!(store.counts("capped").await.expect("counts").available, 3);
}

/// Two processes start on a fresh schema at once: the one served second finds the
/// migrations the first applied instead of applying them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connects_migrate_one_fresh_schema_on_a_repeatable_read_database() {
    let url = repeatable_read_database().await;
    let mut holder = session(&url).await;
    let holder_pid = backend_pid(&mut holder).await;
    hold(
        &mut holder,
        "SELECT pg_advisory_xact_lock(hashtext('brigade.migrate'), hashtext('brigade'))",
    )
    .await;
    let connects: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgStore::connect(&url).await })
        })
        .collect();
    let watcher = sqlx::PgPool::connect(&url).await.expect("connect");
    common::wait_until_blocked(&watcher, holder_pid, 2).await;
    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("release");

    for connect in connects {
        let store = connect.await.expect("task").expect("connect and migrate");
        assert!(store.migrate().await.expect("migrate").is_empty());
    }
}

/// In a transaction of the caller's at REPEATABLE READ or SERIALIZABLE, the count would
/// read the snapshot the transaction took before the depth lock was granted, missing
/// jobs other producers committed since: a capped job is refused as invalid, and the
/// transaction stays usable. An uncapped job needs no count and goes in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_enqueue_in_a_snapshot_transaction_is_refused() {
    let store = common::fresh_store().await;
    for level in ["REPEATABLE READ", "SERIALIZABLE"] {
        let mut tx = store
            .pool()
            .begin_with(format!("BEGIN ISOLATION LEVEL {level}"))
            .await
            .expect("begin");
        let refused = store
            .enqueue_in(&mut tx, capped(1))
            .await
            .expect_err("the cap cannot be kept");
        match &refused {
            EnqueueError::Store(_, StoreError::Invalid(reason)) => {
                assert!(reason.contains("READ COMMITTED"), "{level}: {reason}");
            }
            other => panic!("{level}: refused for another reason: {other:?}"),
        }
        assert_eq!(refused.into_inner(), capped(1), "the job comes back");
        store
            .enqueue_in(&mut tx, NewJob::new("uncapped", json!(level)))
            .await
            .expect("an uncapped job goes in");
        tx.commit()
            .await
            .expect("the refusal leaves the transaction usable");
    }
    assert_eq!(store.counts("capped").await.expect("counts").total(), 0);
    assert_eq!(store.counts("uncapped").await.expect("counts").available, 2);
}

/// READ COMMITTED, said explicitly on a database defaulting to REPEATABLE READ, keeps
/// the cap inside the caller's transaction as the default does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_enqueue_in_a_read_committed_transaction_goes_in() {
    let url = repeatable_read_database().await;
    let store = PgStore::connect(&url).await.expect("connect");
    let mut tx = store
        .pool()
        .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .expect("begin");
    store.enqueue_in(&mut tx, capped(1)).await.expect("room");
    tx.commit().await.expect("commit");
    assert_eq!(store.counts("capped").await.expect("counts").available, 1);
}
