//! A global rate limit reads the database's clock once it holds the limit's row: a take
//! that waited for the row behind another session records its start as when it was
//! granted, not when it asked.

mod common;

use std::time::Duration;

use brigade_queue::{GlobalRate, Store};
use sqlx::{Connection, PgConnection};

/// One start per interval, burst one.
const INTERVAL: Duration = Duration::from_secs(2);

/// Longer than [`INTERVAL`]: a take that measured from before this wait would record a
/// start at least this much earlier than its grant, and leave the next start due a whole
/// interval before it should be.
const HELD: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_that_waited_for_the_row_counts_from_its_grant() {
    let url = brigade_postgres::fresh_database()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let store = brigade_postgres::PgStore::connect(&url)
        .await
        .expect("connect");
    let limit = GlobalRate::new("mailer", 1, INTERVAL).expect("rate");
    // The limit's row exists, idle since long ago, and another session holds it.
    sqlx::query("INSERT INTO brigade.rate_limits (key, tat_us) VALUES ($1, 0)")
        .bind(limit.key())
        .execute(store.pool())
        .await
        .expect("row");
    let mut holder = PgConnection::connect(&url).await.expect("connect");
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await
        .expect("pid");
    sqlx::query("BEGIN")
        .execute(&mut holder)
        .await
        .expect("begin");
    sqlx::query("SELECT 1 FROM brigade.rate_limits WHERE key = $1 FOR UPDATE")
        .bind(limit.key())
        .execute(&mut holder)
        .await
        .expect("hold the row");

    let waiting = tokio::spawn({
        let (store, limit) = (store.clone(), limit.clone());
        async move { store.take_rate(&limit, 1).await }
    });
    common::wait_until_blocked(store.pool(), holder_pid, 1).await;
    tokio::time::sleep(HELD).await;
    sqlx::query("COMMIT")
        .execute(&mut holder)
        .await
        .expect("release");
    let granted = waiting.await.expect("task").expect("take");
    assert_eq!(granted.granted, 1, "the limit was idle");

    let next = store.take_rate(&limit, 1).await.expect("take");
    assert_eq!(
        next.granted, 0,
        "one start per {INTERVAL:?}: the next is an interval after the grant"
    );
    assert!(next.retry_after > Duration::ZERO);
}
