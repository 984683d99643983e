//! The store conformance kit of brigade-queue, on Redis: one fresh key prefix per test,
//! on `REDIS_URL`'s server or a throwaway local `redis-server`.
#![cfg(feature = "testkit")]

mod common;

brigade_queue::store_conformance_tests!(common::fresh_store);

/// This store announces released units (beyond the kit, which a store without a
/// notification channel could not pass).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_units_wake_a_waiter() {
    brigade_queue::testkit::released_units_wake_a_waiter(common::fresh_store().await).await;
}
