//! A job whose hash the store cannot read as a claim (a payload `serde_json` refuses, a
//! field another client wrote) can never run: a claim that meets one buries it at once,
//! saying why, and hands out the rest of its batch; operators still find it.
#![cfg(feature = "testkit")]

mod common;

use std::collections::HashMap;

use brigade_queue::testkit::{LONG_LEASE, claim};
use brigade_queue::{Ack, DurableId, NewJob, Store, StoreError};
use brigade_redis::RedisStore;
use serde_json::json;

fn job_key(store: &RedisStore, queue: &str, id: i64) -> String {
    format!("{}:{{{queue}}}:job:{id}", store.prefix())
}

async fn hash(store: &RedisStore, queue: &str, id: i64) -> HashMap<String, String> {
    redis::cmd("HGETALL")
        .arg(job_key(store, queue, id))
        .query_async(&mut store.connection())
        .await
        .expect("hgetall")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_buries_what_it_cannot_read_and_hands_out_the_rest() {
    let store = common::fresh_store().await;
    let batch = (0..4).map(|n| NewJob::new("mixed", json!(n))).collect();
    let ids: Vec<i64> = store
        .enqueue_batch(batch)
        .await
        .expect("enqueue")
        .iter()
        .map(|job| job.id.get())
        .collect();
    let mut conn = store.connection();
    // Valid JSON, nested past serde_json's recursion limit (128).
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let _: i64 = redis::cmd("HSET")
        .arg(job_key(&store, "mixed", ids[1]))
        .arg("payload")
        .arg(&deep)
        .query_async(&mut conn)
        .await
        .expect("hset");
    // A field another client wrote.
    let _: i64 = redis::cmd("HSET")
        .arg(job_key(&store, "mixed", ids[3]))
        .arg("max_attempts")
        .arg("plenty")
        .query_async(&mut conn)
        .await
        .expect("hset");

    let claims = claim(&store, "mixed", 4, LONG_LEASE).await;
    let claimed: Vec<i64> = claims.iter().map(|c| c.id.get()).collect();
    assert_eq!(claimed, vec![ids[0], ids[2]], "the readable jobs go out");

    for (bad, cause) in [(ids[1], "recursion limit"), (ids[3], "max_attempts")] {
        let fields = hash(&store, "mixed", bad).await;
        assert_eq!(fields.get("state").map(String::as_str), Some("dead"));
        let last_error = fields.get("last_error").expect("a last error");
        assert!(
            last_error.contains("cannot be read") && last_error.contains(cause),
            "job #{bad}: {last_error}"
        );
        let lease: Option<f64> = redis::cmd("ZSCORE")
            .arg(format!("{}:{{mixed}}:leases", store.prefix()))
            .arg(bad)
            .query_async(&mut conn)
            .await
            .expect("zscore");
        assert_eq!(lease, None, "job #{bad} holds no lease to be rescued");
    }
    // Operators still see the job whose payload no worker could read, as its text; the
    // one whose bookkeeping another client overwrote is named by `job`'s error.
    let dead = store.dead_jobs("mixed", 10).await.expect("dead jobs");
    let listed: Vec<i64> = dead.iter().map(|job| job.id.get()).collect();
    assert_eq!(listed, vec![ids[1]], "{dead:?}");
    assert_eq!(dead[0].payload, json!(deep));
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("recursion limit")
    );
    let record = store.job(dead[0].id).await.expect("job").expect("present");
    assert_eq!(record.payload, json!(deep));
    let overwritten = store.job(DurableId::new(ids[3])).await;
    assert!(
        matches!(overwritten, Err(StoreError::Corrupt(ref what)) if what.contains("max_attempts")),
        "{overwritten:?}"
    );

    for claim in &claims {
        assert_eq!(
            store.complete(claim.lease()).await.expect("ack"),
            Ack::Recorded
        );
    }
    assert!(claim(&store, "mixed", 4, LONG_LEASE).await.is_empty());
    let counts = store.counts("mixed").await.expect("counts");
    assert_eq!(
        (
            counts.available,
            counts.running,
            counts.completed,
            counts.dead
        ),
        (0, 0, 2, 2),
        "{counts:?}"
    );
}
