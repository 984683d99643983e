//! A heartbeat renews the units every run it renews holds, however many: one script per
//! limit, not one round trip per holder (thousands of those would outlast the worker's
//! store timeout). The server is this test's own, so its command statistics count only
//! this store's calls.
#![cfg(feature = "testkit")]

use std::collections::HashMap;

use brigade_queue::testkit::{LONG_LEASE, claim};
use brigade_queue::{GlobalConcurrency, Lease, NewJob, Store};
use brigade_redis::{LocalServer, RedisStore};
use serde_json::json;

const HOLDERS: usize = 500;

async fn expiries(store: &RedisStore, limit: &str) -> HashMap<String, f64> {
    let scored: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(format!("{}:{{units:{limit}}}:holders", store.prefix()))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut store.connection())
        .await
        .expect("zrange");
    scored.into_iter().collect()
}

/// How many scripts the server ran since its statistics were last reset.
async fn scripts_run(store: &RedisStore) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut store.connection())
        .await
        .expect("info");
    info.lines()
        .filter_map(|line| {
            let rest = line
                .strip_prefix("cmdstat_evalsha:")
                .or_else(|| line.strip_prefix("cmdstat_eval:"))?;
            rest.split(',')
                .find_map(|field| field.strip_prefix("calls="))
                .and_then(|calls| calls.parse::<u64>().ok())
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_renews_every_holder_of_a_limit_in_one_script() {
    let server = tokio::task::spawn_blocking(LocalServer::start)
        .await
        .expect("task")
        .unwrap_or_else(|error| panic!("{error}"));
    let store = RedisStore::connect(&server.url()).await.expect("connect");
    let batch = (0..HOLDERS).map(|n| NewJob::new("gpu", json!(n))).collect();
    store.enqueue_batch(batch).await.expect("enqueue");
    let leases: Vec<Lease> = claim(&store, "gpu", HOLDERS, LONG_LEASE)
        .await
        .iter()
        .map(|claim| claim.lease())
        .collect();
    assert_eq!(leases.len(), HOLDERS);
    let limit = GlobalConcurrency::new("gpu-gb", 1_000).expect("limit");
    for &lease in &leases {
        assert!(
            store
                .acquire_units(&limit, lease, 1, LONG_LEASE)
                .await
                .expect("acquire")
        );
    }
    let before = expiries(&store, "gpu-gb").await;
    assert_eq!(before.len(), HOLDERS);

    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut store.connection())
        .await
        .expect("resetstat");
    let renewed = store
        .heartbeat(&leases, LONG_LEASE * 2)
        .await
        .expect("heartbeat");
    assert_eq!(renewed.len(), HOLDERS);
    // The lease script and the limit's script, each perhaps loaded once more.
    let scripts = scripts_run(&store).await;
    assert!(scripts <= 4, "{scripts} scripts for one heartbeat");

    let after = expiries(&store, "gpu-gb").await;
    assert_eq!(after.len(), HOLDERS, "every holder keeps its units");
    let moved = (LONG_LEASE / 2).as_micros() as f64;
    for (holder, expiry) in &before {
        let renewed = after.get(holder).expect("still a holder");
        assert!(
            *renewed >= expiry + moved,
            "{holder}: expiry {expiry} became {renewed}"
        );
    }
}
