//! Redis keeps what a script wrote before it failed. A key another client overwrote with
//! another type makes a script fail wherever it touches it; every script that touches job
//! keys is written so that such a failure leaves no job where no claim or rescue reaches
//! it, and one overwritten job hash does not stop the rest of its queue.
#![cfg(feature = "testkit")]

mod common;

use std::time::Duration;

use brigade_queue::testkit::{LONG_LEASE, SHORT_LEASE, claim, rescue_after};
use brigade_queue::{Ack, ClaimRequest, DurableId, EnqueueOptions, NewJob, Store};
use brigade_redis::RedisStore;
use serde_json::json;

fn base(store: &RedisStore, queue: &str) -> String {
    format!("{}:{{{queue}}}:", store.prefix())
}

async fn enqueue(store: &RedisStore, queue: &str, options: EnqueueOptions) -> DurableId {
    store
        .enqueue(NewJob::new(queue, json!(null)).with_options(options))
        .await
        .expect("enqueue")
        .id
}

async fn set_string(store: &RedisStore, key: String) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("not what the store wrote")
        .query_async(&mut store.connection())
        .await
        .expect("set");
}

async fn complete_all(store: &RedisStore, queue: &str, limit: usize) -> Vec<DurableId> {
    let claims = claim(store, queue, limit, LONG_LEASE).await;
    for claimed in &claims {
        assert_eq!(
            store.complete(claimed.lease()).await.expect("ack"),
            Ack::Recorded
        );
    }
    claims.iter().map(|claimed| claimed.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_that_fails_midway_promotes_every_job_later() {
    let store = common::fresh_store().await;
    let delay = Duration::from_millis(200);
    // Promoted in id order: the low level's job first, whose stream key is broken.
    let low = enqueue(
        &store,
        "promote",
        EnqueueOptions::new().delay(delay).priority(-1),
    )
    .await;
    let high = enqueue(
        &store,
        "promote",
        EnqueueOptions::new().delay(delay).priority(0),
    )
    .await;
    set_string(&store, format!("{}ready:-1", base(&store, "promote"))).await;
    tokio::time::sleep(delay * 2).await;
    store
        .claim(ClaimRequest::new("promote", "kit", 5, LONG_LEASE))
        .await
        .expect_err("the promoter meets the broken stream");

    let _: () = redis::cmd("DEL")
        .arg(format!("{}ready:-1", base(&store, "promote")))
        .query_async(&mut store.connection())
        .await
        .expect("mend the stream");
    assert_eq!(complete_all(&store, "promote", 5).await, vec![high, low]);
    let counts = store.counts("promote").await.expect("counts");
    assert_eq!(
        (counts.available, counts.scheduled, counts.completed),
        (0, 0, 2),
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwritten_job_hash_does_not_strand_its_neighbours() {
    let store = common::fresh_store().await;
    let first = enqueue(&store, "neighbours", EnqueueOptions::new()).await;
    let broken = enqueue(&store, "neighbours", EnqueueOptions::new()).await;
    let last = enqueue(&store, "neighbours", EnqueueOptions::new()).await;
    set_string(
        &store,
        format!("{}job:{}", base(&store, "neighbours"), broken.get()),
    )
    .await;

    assert_eq!(
        complete_all(&store, "neighbours", 5).await,
        vec![first, last]
    );
    assert!(claim(&store, "neighbours", 5, LONG_LEASE).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescue_outlives_unreadable_attempts_and_overwritten_hashes() {
    let store = common::fresh_store().await;
    for _ in 0..3 {
        enqueue(&store, "rescue", EnqueueOptions::new()).await;
    }
    let held = claim(&store, "rescue", 3, SHORT_LEASE).await;
    assert_eq!(held.len(), 3);
    let _: () = redis::cmd("HSET")
        .arg(format!(
            "{}job:{}",
            base(&store, "rescue"),
            held[0].id.get()
        ))
        .arg("max_attempts")
        .arg("plenty")
        .query_async(&mut store.connection())
        .await
        .expect("hset");
    set_string(
        &store,
        format!("{}job:{}", base(&store, "rescue"), held[1].id.get()),
    )
    .await;

    // The run whose attempts cannot be read ends dead; the overwritten hash is no job;
    // the third goes back to be claimed again.
    let rescued = rescue_after(&store, "rescue", SHORT_LEASE, 2).await;
    assert_eq!((rescued.requeued, rescued.dead), (1, 1), "{rescued:?}");
    let record = store.job(held[0].id).await;
    assert!(
        record.is_err(),
        "its bookkeeping cannot be read: {record:?}"
    );
    assert_eq!(complete_all(&store, "rescue", 5).await, vec![held[2].id]);
    let leases: i64 = redis::cmd("ZCARD")
        .arg(format!("{}leases", base(&store, "rescue")))
        .query_async(&mut store.connection())
        .await
        .expect("zcard");
    assert_eq!(leases, 0, "no lease left for a rescue to trip on");
}
