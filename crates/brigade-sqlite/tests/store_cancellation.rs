//! Store calls abandoned part way, as a worker's store timeout abandons them: whatever
//! point a call was dropped at, no connection of the pool stays inside a transaction, the
//! file's write lock is free, and the store answers the next call at once; and the ends of
//! runs that share a commit with the abandoned call get that commit's real answer.

mod common;

use std::time::{Duration, Instant};

use brigade_queue::testkit::abandon_after;
use brigade_queue::{Ack, ClaimRequest, DurableId, JobState, Lease, NewJob, QueueCounts, Store};
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

/// Jobs claimed per round of the shared-commit test: one for the abandoned caller, five for
/// the callers sharing its commit.
const SHARED: usize = 6;
/// Rounds in which the abandoned caller finished before its polls ran out: past the last
/// point it could be dropped at.
const FINISHED_ROUNDS: u32 = 3;

/// Several workers' ends ride in one commit (`ends.rs`); the caller that would run it is
/// dropped after 1, 2, 3, ... polls, until it outlives the commit. Every other caller of
/// the batch hears what the commit did: recorded, never an error (whose retry would be
/// counted stale though the end had landed), and the store holds every end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_caller_does_not_abandon_the_commit_it_shares() {
    const CONNECTIONS: u32 = 2;
    let dir = common::TempDir::new();
    let store = SqliteStore::builder(dir.path().join("jobs.db"))
        .max_connections(CONNECTIONS)
        .open()
        .await
        .expect("open");
    let queue = "shared";

    let mut polls = 1;
    let (mut rounds, mut abandoned, mut finished) = (0_u64, 0_u32, 0_u32);
    let deadline = Instant::now() + TIME_BOUND;
    while finished < FINISHED_ROUNDS && rounds < u64::from(ROUNDS) && Instant::now() < deadline {
        let jobs = (0..SHARED).map(|n| NewJob::new(queue, json!(n))).collect();
        store.enqueue_batch(jobs).await.expect("enqueue");
        let claims = store
            .claim(ClaimRequest::new(queue, "w", SHARED, LEASE))
            .await
            .expect("claim");
        assert_eq!(claims.len(), SHARED, "round {rounds}: claim");
        let leases: Vec<Lease> = claims.iter().map(|claim| claim.lease()).collect();

        // The turn to write is held (by a call waiting for a connection, all of which the
        // test holds) while every end joins the list, the abandoned caller's first, so
        // that one commit carries them all and, without a task of its own, the abandoned
        // caller would be the one running it.
        let mut connections = Vec::new();
        for _ in 0..CONNECTIONS {
            connections.push(store.pool().acquire().await.expect("acquire"));
        }
        let (cancelled, dropped, completed, completed_many, retried, buried, ()) = tokio::join!(
            biased;
            store.cancel(DurableId::new(0)),
            abandon_after(store.complete(leases[0]), polls),
            store.complete(leases[1]),
            store.complete_many(&leases[2..4]),
            store.retry(leases[4], Duration::from_secs(3_600), "again"),
            store.bury(leases[5], "for good"),
            async move { drop(connections) },
        );
        assert!(!cancelled.expect("the call holding the turn"));
        match dropped {
            None => abandoned += 1,
            Some(ack) => {
                assert_eq!(ack.expect("the caller that was not dropped"), Ack::Recorded);
                finished += 1;
            }
        }
        let acks = [completed, retried, buried]
            .into_iter()
            .chain(completed_many);
        for (n, ack) in acks.enumerate() {
            match ack {
                Ok(Ack::Recorded) => {}
                other => panic!(
                    "round {rounds}, abandoned after {polls} polls: end {n} sharing the commit got {other:?}"
                ),
            }
        }

        // Each end is in the store, the abandoned caller's too: it rode in the same commit.
        let expected = [
            JobState::Completed,
            JobState::Completed,
            JobState::Completed,
            JobState::Completed,
            JobState::Available,
            JobState::Dead,
        ];
        for (claim, state) in claims.iter().zip(expected) {
            let record = store
                .job(claim.id)
                .await
                .expect("job")
                .expect("the job exists");
            assert_eq!(record.state, state, "round {rounds}: job {}", claim.id);
        }
        let done = rounds + 1;
        assert_eq!(
            store.counts(queue).await.expect("counts"),
            QueueCounts {
                completed: 4 * done,
                scheduled: done,
                dead: done,
                ..QueueCounts::default()
            },
            "round {rounds}, abandoned after {polls} polls"
        );

        rounds += 1;
        // Every point in the first polls, then steps that grow with the count.
        polls += 1 + polls / 32;
    }
    assert!(
        abandoned > 0,
        "no round dropped the caller before its commit ended"
    );
}
