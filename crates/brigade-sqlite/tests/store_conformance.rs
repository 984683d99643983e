//! The store conformance kit of brigade-queue, on SQLite: one fresh file per test.

mod common;

brigade_queue::store_conformance_tests!(common::fresh_store);
