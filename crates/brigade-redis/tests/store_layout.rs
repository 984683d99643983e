//! What is particular to the Redis layout: every key of a queue carries its hash tag, the
//! work stream holds only live jobs (no trimming needed), retention removes every trace of
//! a job, and requests no single slot can serve (or too large for one script) are refused
//! with the jobs handed back.
#![cfg(feature = "testkit")]

mod common;

use std::time::Duration;

use brigade_queue::{ClaimRequest, EnqueueError, NewJob, Store, StoreError};
use serde_json::json;

/// `XPENDING key group`: pending entries, smallest and greatest id, per-consumer counts.
type PendingSummary = (
    u64,
    Option<String>,
    Option<String>,
    Option<Vec<(String, String)>>,
);

async fn keys(store: &brigade_redis::RedisStore) -> Vec<String> {
    let mut conn = store.connection();
    let mut found = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}:*", store.prefix()))
            .query_async(&mut conn)
            .await
            .expect("scan");
        found.extend(keys);
        if next == 0 {
            return found;
        }
        cursor = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_queue_key_is_hash_tagged_and_the_stream_holds_only_live_jobs() {
    let store = common::fresh_store().await;
    let jobs = (0..20).map(|n| NewJob::new("mail", json!(n))).collect();
    store.enqueue_batch(jobs).await.expect("enqueue");
    let claims = store
        .claim(ClaimRequest::new("mail", "w", 20, Duration::from_secs(60)))
        .await
        .expect("claim");
    assert_eq!(claims.len(), 20);
    for claim in &claims[..15] {
        assert!(
            store
                .complete(claim.lease())
                .await
                .expect("ack")
                .is_recorded()
        );
    }
    let prefix = store.prefix().to_owned();
    for key in keys(&store).await {
        let rest = key.strip_prefix(&format!("{prefix}:")).expect("prefixed");
        assert!(
            rest.starts_with("{mail}:") || rest.starts_with("{ids}:") || rest == "queues",
            "{key} has no hash tag of its own"
        );
    }
    let mut conn = store.connection();
    let stream = format!("{prefix}:{{mail}}:ready:0");
    let length: u64 = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .expect("xlen");
    assert_eq!(
        length, 5,
        "finished runs' entries are deleted, running ones stay"
    );
    // XPENDING's summary starts with how many entries are pending.
    let (pending, ..): PendingSummary = redis::cmd("XPENDING")
        .arg(&stream)
        .arg("workers")
        .query_async(&mut conn)
        .await
        .expect("xpending");
    assert_eq!(pending, 5, "running jobs are pending entries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_every_trace_of_a_job() {
    let store = common::fresh_store().await;
    let id = store
        .enqueue(NewJob::new("mail", json!("x")))
        .await
        .expect("enqueue")
        .id;
    assert!(store.cancel(id).await.expect("cancel"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        store
            .purge_finished(Duration::from_millis(1), false)
            .await
            .expect("purge"),
        1
    );
    assert!(store.job(id).await.expect("job").is_none());
    let mut conn = store.connection();
    let queue: Option<String> = redis::cmd("HGET")
        .arg(format!("{}:{{ids}}:queue", store.prefix()))
        .arg(id.get())
        .query_async(&mut conn)
        .await
        .expect("hget");
    assert_eq!(queue, None, "the id's queue entry goes with the job");
    assert_eq!(store.counts("mail").await.expect("counts").total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_no_slot_can_serve_are_refused_with_the_jobs_back() {
    let store = common::fresh_store().await;
    let batch = vec![NewJob::new("a", json!(1)), NewJob::new("b", json!(2))];
    let refused = store
        .enqueue_batch(batch.clone())
        .await
        .expect_err("two queues, two slots");
    assert!(matches!(&refused, EnqueueError::Store(_, error) if !error.is_transient()));
    assert_eq!(refused.into_inner(), batch);
    let braced = NewJob::new("a}b", json!(1));
    let refused = store.enqueue(braced.clone()).await.expect_err("brace");
    assert_eq!(refused.into_inner(), braced);
    assert!(store.counts("x{y").await.is_err());
    // One script holds the server while it runs: a batch past the cap is refused whole.
    let huge: Vec<NewJob> = (0..=brigade_redis::MAX_BATCH)
        .map(|n| NewJob::new("a", json!(n)))
        .collect();
    let refused = store.enqueue_batch(huge).await.expect_err("too many");
    assert!(matches!(
        &refused,
        EnqueueError::Store(_, StoreError::Invalid(_))
    ));
    assert_eq!(refused.into_inner().len(), brigade_redis::MAX_BATCH + 1);
    assert_eq!(store.counts("a").await.expect("counts").total(), 0);
}

async fn hexists(store: &brigade_redis::RedisStore, key: &str, field: i64) -> bool {
    redis::cmd("HEXISTS")
        .arg(key)
        .arg(field)
        .query_async(&mut store.connection())
        .await
        .expect("hexists")
}

/// An id drawn by an enqueue that failed before writing its job (the connection dropped
/// between the two scripts) leaves a `{ids}:queue` entry no job will ever use.
async fn draw_unused_id(store: &brigade_redis::RedisStore) -> i64 {
    let mut conn = store.connection();
    let id: i64 = redis::cmd("INCR")
        .arg(format!("{}:{{ids}}:next", store.prefix()))
        .query_async(&mut conn)
        .await
        .expect("incr");
    let _: i64 = redis::cmd("HSET")
        .arg(format!("{}:{{ids}}:queue", store.prefix()))
        .arg(id)
        .arg("mail")
        .query_async(&mut conn)
        .await
        .expect("hset");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_id_entries_no_job_was_written_for() {
    let store = common::fresh_store().await;
    let ids = format!("{}:{{ids}}:queue", store.prefix());
    let live = store
        .enqueue(NewJob::new("mail", json!("x")))
        .await
        .expect("enqueue")
        .id;
    let unused = draw_unused_id(&store).await;

    // A first pass only notes where the id counter stands: an enqueue may be between
    // drawing its ids and writing its jobs.
    store
        .purge_finished(Duration::from_secs(3600), false)
        .await
        .expect("purge");
    assert!(hexists(&store, &ids, unused).await, "too young to judge");

    // Once that note is older than any enqueue still in flight (backdated here), ids up
    // to it with no job are dropped; ids drawn since stay.
    let _: i64 = redis::cmd("HSET")
        .arg(format!("{}:{{ids}}:sweep", store.prefix()))
        .arg("at")
        .arg(0)
        .query_async(&mut store.connection())
        .await
        .expect("backdate");
    let in_flight = draw_unused_id(&store).await;
    store
        .purge_finished(Duration::from_secs(3600), false)
        .await
        .expect("purge");
    assert!(
        !hexists(&store, &ids, unused).await,
        "the unused id is gone"
    );
    assert!(
        hexists(&store, &ids, live.get()).await,
        "the live job's stays"
    );
    assert!(
        hexists(&store, &ids, in_flight).await,
        "an id drawn since stays"
    );
    assert!(store.job(live).await.expect("job").is_some());
}
