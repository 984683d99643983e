//! Depth-capped enqueues abandoned part way, as a caller's timeout or a dropped request
//! abandons them: whatever point the call was dropped at, no connection of the pool stays
//! inside a transaction or holds a queue's depth lock, and the next capped enqueue of the
//! same queue goes through.

mod common;

use std::time::{Duration, Instant};

use brigade_postgres::PgStore;
use brigade_queue::testkit::abandon_after;
use brigade_queue::{NewJob, Store};
use serde_json::json;
use sqlx::{Connection, PgConnection};

const CONNECTIONS: u32 = 3;
const ROUNDS: u32 = 1_000;
/// Bounds the rounds on a slow machine; the checks after them hold however many ran.
const TIME_BOUND: Duration = Duration::from_secs(30);

fn capped(n: u32) -> NewJob {
    NewJob::new("capped", json!(n)).with_max_depth(Some(1_000_000))
}

/// The states of this database's sessions that sit inside a transaction, seen from
/// `observer` once every pooled connection but the wake-up listener's (the pool's one
/// beyond `max_connections`) is back and held: whatever an abandoned call left running
/// has ended by then.
async fn left_in_a_transaction(store: &PgStore, observer: &mut PgConnection) -> Vec<String> {
    let mut pooled = Vec::new();
    for _ in 0..CONNECTIONS {
        pooled.push(store.pool().acquire().await.expect("acquire"));
    }
    sqlx::query_scalar(
        "SELECT state FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND state LIKE 'idle in transaction%'",
    )
    .fetch_all(observer)
    .await
    .expect("activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capped_enqueues_cancelled_at_any_point_leave_no_transaction_open() {
    let store = common::fresh_store_with(CONNECTIONS).await;
    let mut observer = PgConnection::connect_with(&store.pool().connect_options())
        .await
        .expect("connect");
    let deadline = Instant::now() + TIME_BOUND;
    let mut abandoned = 0;
    for round in 0..ROUNDS {
        if Instant::now() >= deadline {
            break;
        }
        // 1..=97 polls, alternating single jobs and batches.
        let polls = 1 + (round * 31) % 97;
        let finished = if round % 2 == 0 {
            abandon_after(store.enqueue(capped(round)), polls)
                .await
                .is_some()
        } else {
            let batch = vec![capped(round), capped(round + 1)];
            abandon_after(store.enqueue_batch(batch), polls)
                .await
                .is_some()
        };
        abandoned += u32::from(!finished);
        let open = left_in_a_transaction(&store, &mut observer).await;
        assert!(
            open.is_empty(),
            "round {round}, dropped after {polls} polls: pooled connections left in a transaction: {open:?}"
        );
    }
    assert!(abandoned > 0, "no call was abandoned before it finished");

    // A capped enqueue of the same queue needs its depth lock: it goes through only if no
    // abandoned transaction holds it. (A hang here is the failure; the runner's timeout
    // reports it.)
    store
        .enqueue(capped(u32::MAX))
        .await
        .expect("a capped enqueue after the abandoned ones");
}
