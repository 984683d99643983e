//! What every PostgreSQL test starts from.
// Each test binary uses its own subset of these.
#![allow(dead_code)]

use brigade_postgres::{PgStore, fresh_database};

/// A store on a fresh, empty database: on `DATABASE_URL`'s server, or on a throwaway
/// cluster from the machine's binaries (the panic says what to install when neither works).
pub(crate) async fn fresh_store() -> PgStore {
    fresh_store_with(10).await
}

/// [`fresh_store`] with a pool of `connections`.
pub(crate) async fn fresh_store_with(connections: u32) -> PgStore {
    let url = fresh_database()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    PgStore::builder(url)
        .max_connections(connections)
        .connect()
        .await
        .expect("connect and migrate")
}

/// Waits until `count` sessions wait on a lock that the session of backend `holder`
/// holds: the calls under test have reached the point the test means to stop them at.
///
/// # Panics
///
/// When they are not all there within half a minute.
pub(crate) async fn wait_until_blocked(pool: &sqlx::PgPool, holder: i32, count: i64) {
    let blocked = async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
            )
            .bind(holder)
            .fetch_one(pool)
            .await
            .expect("activity");
            if waiting >= count {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), blocked)
        .await
        .unwrap_or_else(|_| panic!("{count} sessions never waited on backend {holder}"));
}
