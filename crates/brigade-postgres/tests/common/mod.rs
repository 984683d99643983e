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
