//! The store conformance kit of brigade-queue, on Redis: one fresh key prefix per test,
//! on `REDIS_URL`'s server or a throwaway local `redis-server`.
#![cfg(feature = "testkit")]

mod common;

brigade_queue::store_conformance_tests!(common::fresh_store);
