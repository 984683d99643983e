//! Locks another session holds: the store waits for them a bounded time and answers with
//! a transient error, and retention that waited on a row does not delete what changed
//! under it while it waited.

use std::time::Duration;

use brigade_postgres::{PgStore, fresh_database};
use brigade_queue::{ClaimRequest, DurableId, EnqueueError, JobState, NewJob, Store, StoreError};
use serde_json::json;
use sqlx::{Connection, PgConnection};

/// The stores' acquire timeout here, which also bounds their lock waits.
const BOUND: Duration = Duration::from_secs(1);

/// Far past [`BOUND`]: a call still waiting then would have waited for as long as the
/// lock is held.
const STUCK: Duration = Duration::from_secs(30);

async fn store_on(url: &str) -> PgStore {
    PgStore::builder(url)
        .acquire_timeout(BOUND)
        .connect()
        .await
        .expect("connect and migrate")
}

/// A session of its own, outside every store's pool.
async fn session(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connect")
}

/// A store on a fresh database, and another host's session inside a transaction that
/// holds queue `capped`'s depth lock (until [`release`]), as a producer paused there.
async fn store_behind_a_held_depth_lock() -> (PgStore, PgConnection) {
    let url = fresh_database()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let store = store_on(&url).await;
    let mut holder = session(&url).await;
    for statement in [
        "BEGIN",
        "SELECT pg_advisory_xact_lock(hashtext('brigade.depth'), hashtext('capped'))",
    ] {
        sqlx::query(statement)
            .execute(&mut holder)
            .await
            .expect("take the depth lock");
    }
    (store, holder)
}

/// Ends the holder's transaction, and with it the lock.
async fn release(holder: &mut PgConnection) {
    sqlx::query("ROLLBACK")
        .execute(holder)
        .await
        .expect("release the lock");
}

fn capped(n: u32) -> NewJob {
    NewJob::new("capped", json!(n)).with_max_depth(Some(100))
}

fn assert_transient<T>(refused: EnqueueError<T>) {
    match refused {
        EnqueueError::Store(_, error) => assert!(error.is_transient(), "{error:?}"),
        EnqueueError::Full(_) => panic!("refused as full"),
        _ => panic!("refused for another reason"),
    }
}

/// A producer paused inside its transaction keeps the queue's depth lock; the other
/// producers of that queue give up after the bound, each freeing its connection, instead
/// of waiting until the pool runs dry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_enqueue_gives_up_on_a_depth_lock_held_elsewhere() {
    let (store, mut holder) = store_behind_a_held_depth_lock().await;

    let refused = tokio::time::timeout(STUCK, store.enqueue(capped(1)))
        .await
        .expect("the enqueue stops waiting")
        .expect_err("the depth lock is held");
    assert_transient(refused);
    let refused = tokio::time::timeout(STUCK, store.enqueue_batch(vec![capped(2), capped(3)]))
        .await
        .expect("the batch stops waiting")
        .expect_err("the depth lock is held");
    assert_transient(refused);
    assert_eq!(store.counts("capped").await.expect("counts").total(), 0);

    release(&mut holder).await;
    store
        .enqueue(capped(4))
        .await
        .expect("the lock is free again");
    assert_eq!(store.counts("capped").await.expect("counts").available, 1);
}

/// In the caller's transaction the wait has the same bound, and the transaction keeps
/// its own `lock_timeout` whether the enqueue gave up or went through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_enqueue_in_a_transaction_bounds_its_wait_and_leaves_the_settings() {
    let (store, mut holder) = store_behind_a_held_depth_lock().await;

    let mut tx = store.pool().begin().await.expect("begin");
    sqlx::query("SET LOCAL lock_timeout = '42s'")
        .execute(&mut *tx)
        .await
        .expect("the caller's own setting");
    let refused = tokio::time::timeout(STUCK, store.enqueue_in(&mut tx, capped(1)))
        .await
        .expect("the enqueue stops waiting")
        .expect_err("the depth lock is held");
    assert_transient(refused);
    let setting: String = sqlx::query_scalar("SELECT current_setting('lock_timeout')")
        .fetch_one(&mut *tx)
        .await
        .expect("the transaction is still usable");
    assert_eq!(setting, "42s");

    release(&mut holder).await;
    store
        .enqueue_in(&mut tx, capped(2))
        .await
        .expect("the lock is free again");
    let setting: String = sqlx::query_scalar("SELECT current_setting('lock_timeout')")
        .fetch_one(&mut *tx)
        .await
        .expect("setting");
    assert_eq!(setting, "42s");
    tx.commit().await.expect("commit");
    assert_eq!(store.counts("capped").await.expect("counts").available, 1);
}

/// The bounds are set for the store's own transaction only: the pooled connection it ran
/// on goes back with the server's settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bounds_end_with_the_stores_own_transaction() {
    let url = fresh_database()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    // One connection for the calls (the pool's other one is the listener's): the
    // settings are read on the connection the enqueue used.
    let store = PgStore::builder(url.as_str())
        .max_connections(1)
        .acquire_timeout(BOUND)
        .connect()
        .await
        .expect("connect");
    store.enqueue(capped(1)).await.expect("enqueue");
    let read = "SELECT current_setting('lock_timeout'), current_setting('idle_in_transaction_session_timeout')";
    let after: (String, String) = sqlx::query_as(read)
        .fetch_one(store.pool())
        .await
        .expect("settings");
    let defaults: (String, String) = sqlx::query_as(read)
        .fetch_one(&mut session(&url).await)
        .await
        .expect("settings");
    assert_eq!(after, defaults);
}

/// A migrator paused while it holds the migration lock does not hang every other host's
/// `connect`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_gives_up_on_a_migration_lock_held_elsewhere() {
    let url = fresh_database()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let mut holder = session(&url).await;
    let mut held = holder.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('brigade.migrate'), hashtext('brigade'))")
        .execute(&mut *held)
        .await
        .expect("take the migration lock");

    let connecting = PgStore::builder(url.as_str())
        .acquire_timeout(BOUND)
        .connect();
    let error = tokio::time::timeout(STUCK, connecting)
        .await
        .expect("connect stops waiting")
        .expect_err("the migration lock is held");
    assert!(
        matches!(error, StoreError::Unavailable(_)),
        "a transient error: {error:?}"
    );

    held.rollback().await.expect("release the lock");
    let store = store_on(&url).await;
    assert!(store.migrate().await.expect("migrate").is_empty());
}

/// A job dead long enough to be purged, its end recorded.
async fn dead_job(store: &PgStore, queue: &str) -> DurableId {
    let id = store
        .enqueue(NewJob::new(queue, json!("payload")))
        .await
        .expect("enqueue")
        .id;
    let claims = store
        .claim(ClaimRequest::new(
            queue,
            "worker",
            1,
            Duration::from_secs(30),
        ))
        .await
        .expect("claim");
    assert_eq!(claims.len(), 1);
    let ack = store
        .bury(claims[0].lease(), "failed for good")
        .await
        .expect("bury");
    assert!(ack.is_recorded());
    id
}

/// Retention that chose a dead job, then waited on its row while an operator replayed it,
/// leaves the replayed job alone: a replay the operator saw succeed is not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_keeps_a_dead_job_replayed_while_it_waited() {
    let url = fresh_database()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let store = store_on(&url).await;
    let replayed = dead_job(&store, "mail").await;
    let left_dead = dead_job(&store, "mail").await;

    // The replay, uncommitted: it holds the row's lock.
    let mut operator = session(&url).await;
    let operator_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut operator)
        .await
        .expect("pid");
    let mut replay = operator.begin().await.expect("begin");
    let changed = sqlx::query(
        "UPDATE brigade.jobs
         SET state = 'available', attempt = 0, run_at = now(), finished_at = NULL, lease_until = NULL
         WHERE id = $1 AND state = 'dead'",
    )
    .bind(replayed.get())
    .execute(&mut *replay)
    .await
    .expect("replay")
    .rows_affected();
    assert_eq!(changed, 1);

    // The purge reads the job as dead and waits on its row.
    let purging = tokio::spawn({
        let store = store.clone();
        async move { store.purge_finished(Duration::ZERO, true).await }
    });
    let blocked = async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
            )
            .bind(operator_pid)
            .fetch_one(store.pool())
            .await
            .expect("activity");
            if waiting > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(STUCK, blocked)
        .await
        .expect("the purge waits on the replayed row");
    replay.commit().await.expect("the replay commits");

    let purged = tokio::time::timeout(STUCK, purging)
        .await
        .expect("the purge ends")
        .expect("task")
        .expect("purge");
    assert_eq!(purged, 1, "only the job left dead");
    let job = store
        .job(replayed)
        .await
        .expect("job")
        .expect("the replayed job is kept");
    assert_eq!(job.state, JobState::Available);
    assert!(store.job(left_dead).await.expect("job").is_none());
}

/// The bound on lock waits does not cut short a capped enqueue that waits its turn
/// behind other producers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capped_producers_still_take_turns() {
    let url = fresh_database()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let store = store_on(&url).await;
    let mut producers = tokio::task::JoinSet::new();
    for producer in 0..4_u32 {
        let store = store.clone();
        producers.spawn(async move {
            for n in 0..25 {
                let job =
                    NewJob::new("turns", json!(producer * 100 + n)).with_max_depth(Some(1_000));
                store.enqueue(job).await.expect("enqueue");
            }
        });
    }
    while let Some(done) = producers.join_next().await {
        done.expect("producer");
    }
    assert_eq!(store.counts("turns").await.expect("counts").available, 100);
}
