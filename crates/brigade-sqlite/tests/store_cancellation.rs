//! Store calls abandoned part way, as a worker's store timeout abandons them: whatever
//! point a call was dropped at, no connection of the pool stays inside a transaction, the
//! file's write lock is free, and the store answers the next call at once.

mod common;

use std::time::{Duration, Instant};

use brigade_queue::testkit::abandon_after;
use brigade_queue::{Ack, ClaimRequest, Lease, NewJob, Store};
use brigade_sqlite::SqliteStore;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteTransactionManager};
use sqlx::{Connection, SqliteConnection, TransactionManager};

const CONNECTIONS: u32 = 3;
const ROUNDS: u32 = 5_000;
/// Bounds the rounds on a slow machine; the checks after them hold however many ran.
const TIME_BOUND: Duration = Duration::from_secs(30);
const LEASE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cancelled_at_any_point_leave_no_transaction_open() {
    let dir = common::TempDir::new();
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::builder(&path)
        .max_connections(CONNECTIONS)
        // A call left waiting for the lock gives its connection back soon after.
        .busy_timeout(Duration::from_millis(250))
        .open()
        .await
        .expect("open");
    store
        .enqueue_batch(
            (0..50)
                .map(|n| NewJob::new("cancelled", json!(n)))
                .collect(),
        )
        .await
        .expect("enqueue");

    let mut held: Vec<Lease> = Vec::new();
    let deadline = Instant::now() + TIME_BOUND;
    for round in 0..ROUNDS {
        if Instant::now() >= deadline {
            break;
        }
        // 1..=293 polls, in an order that does not repeat with the five operations.
        let polls = 1 + (round * 31) % 293;
        match round % 5 {
            0 => {
                let job = NewJob::new("cancelled", json!(round));
                abandon_after(store.enqueue(job), polls).await;
            }
            1 => {
                let request = ClaimRequest::new("cancelled", "w", 2, LEASE);
                if let Some(Ok(claims)) = abandon_after(store.claim(request), polls).await {
                    held.extend(claims.iter().map(|claim| claim.lease()));
                }
            }
            2 => {
                if let Some(lease) = held.pop() {
                    abandon_after(store.complete(lease), polls).await;
                }
            }
            3 => {
                abandon_after(store.heartbeat(&held, LEASE), polls).await;
            }
            _ => {
                // A transaction of the caller's that ends as it began (dropped unused).
                abandon_after(store.begin(), polls).await;
            }
        }
    }

    // Every connection of the pool, held at once so none is busy elsewhere (a connection
    // comes back to the pool once what its abandoned call left running is done): out of
    // any transaction, both as sqlx counts it and as SQLite has it.
    let mut connections = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut conn = store.pool().acquire().await.expect("acquire");
        assert_eq!(
            SqliteTransactionManager::get_transaction_depth(&conn),
            0,
            "a pooled connection was left inside a transaction"
        );
        // Past sqlx's count: SQLite refuses a `BEGIN` inside a transaction.
        sqlx::raw_sql("BEGIN")
            .execute(&mut *conn)
            .await
            .expect("SQLite has a transaction open on a pooled connection");
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut *conn)
            .await
            .expect("rollback");
        connections.push(conn);
    }

    // With the pool idle in our hands, another connection that does not wait for the lock
    // at all can write: no transaction of the store holds it.
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .busy_timeout(Duration::ZERO);
    let mut other = SqliteConnection::connect_with(&options)
        .await
        .expect("connect");
    let mut tx = other
        .begin_with("BEGIN IMMEDIATE")
        .await
        .expect("the write lock is free");
    sqlx::query("CREATE TABLE IF NOT EXISTS outside (round INTEGER)")
        .execute(&mut *tx)
        .await
        .expect("write");
    tx.commit().await.expect("commit");
    other.close().await.expect("close");

    drop(connections);

    // And the store answers every kind of call.
    let enqueued = store
        .enqueue(NewJob::new("after", json!("after")))
        .await
        .expect("enqueue after the cancellations");
    let claims = store
        .claim(ClaimRequest::new("after", "w", 1, LEASE))
        .await
        .expect("claim after the cancellations");
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].id, enqueued.id);
    let renewed = store
        .heartbeat(&[claims[0].lease()], LEASE)
        .await
        .expect("heartbeat after the cancellations");
    assert_eq!(renewed, vec![claims[0].lease()]);
    let ack = store
        .complete(claims[0].lease())
        .await
        .expect("ack after the cancellations");
    assert_eq!(ack, Ack::Recorded);
    let tx = store.begin().await.expect("begin after the cancellations");
    tx.rollback().await.expect("rollback");
}
