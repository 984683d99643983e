//! The store conformance kit of brigade-queue, on PostgreSQL: one fresh database per test,
//! on `DATABASE_URL`'s server or a throwaway local cluster.

use brigade_postgres::{PgStore, fresh_database};

async fn fresh_store() -> PgStore {
    let url = fresh_database()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    PgStore::connect(&url).await.expect("connect and migrate")
}

brigade_queue::store_conformance_tests!(fresh_store);
