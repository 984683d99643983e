//! The store conformance kit of brigade-queue, on PostgreSQL: one fresh database per test,
//! on `DATABASE_URL`'s server or a throwaway local cluster.

mod common;

brigade_queue::store_conformance_tests!(common::fresh_store);
