//! The store conformance kit of brigade-queue, on PostgreSQL: one fresh database per test,
//! on `DATABASE_URL`'s server or a throwaway local cluster.

mod common;

brigade_queue::store_conformance_tests!(common::fresh_store);

/// This store announces released units (beyond the kit, which a store without a
/// notification channel could not pass).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_units_wake_a_waiter() {
    brigade_queue::testkit::released_units_wake_a_waiter(common::fresh_store().await).await;
}
