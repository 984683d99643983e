//! What every Redis test starts from.
// Each test binary uses its own subset of these.
#![allow(dead_code)]

use brigade_redis::RedisStore;

/// A store on a fresh key prefix: on `REDIS_URL`'s server, or on a throwaway
/// `redis-server` from the machine's binary (the panic says what to install when neither
/// works).
pub(crate) async fn fresh_store() -> RedisStore {
    brigade_redis::fresh_store()
        .await
        .unwrap_or_else(|error| panic!("{error}"))
}
